//! Patching accepted rewrites into a binary in place.
//!
//! Nothing moves: a replacement takes its window's first words and the
//! words it frees become `nop`, so every address, branch offset and
//! relocation in the file stays valid. Only non-frozen instruction words may
//! change, and replacements must be position-independent (no branches, no
//! PC-relative or symbolic operands), so assembling them anywhere gives the
//! bytes they have at the window's address.

use super::disasm::pc_relative;
use super::gas::{assemble, Assembled};
use super::read::Binary;
use super::render::Rendered;
use crate::asm::{Insn, Operand, StmtKind};
use crate::patch::source::Edit;
use crate::report::output::write_atomic;
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::Path;

/// `nop`.
pub const NOP: u32 = 0xd503_201f;

/// Why a replacement instruction cannot be placed at a fixed address.
fn position_dependent(i: &Insn) -> Option<&'static str> {
    let m = i.mnemonic.as_str();
    if matches!(
        m,
        "b" | "bl" | "bc" | "cbz" | "cbnz" | "tbz" | "tbnz" | "adr" | "adrp"
    ) || m.starts_with("br")
        || m.starts_with("blr")
        || m.starts_with("ret")
        || m.starts_with("eret")
    {
        return Some("control flow or PC-relative address");
    }
    if i.operands.iter().any(|o| matches!(o, Operand::Sym(_))) {
        return Some("symbolic operand");
    }
    None
}

/// Apply `edits` to a copy of the binary's bytes and return it.
pub fn patch(bin: &Binary, rendered: &Rendered, edits: &[Edit]) -> Result<Vec<u8>> {
    let mut taken: HashSet<u64> = HashSet::new();
    // (window start address, window words, replacement) per edit.
    let mut plans: Vec<(u64, usize, &[Insn])> = Vec::new();
    for e in edits {
        let Some(&first) = e.stmts.first() else {
            bail!("an edit with no statements");
        };
        for (k, &si) in e.stmts.iter().enumerate() {
            let Some(&addr) = rendered.addr_of_stmt.get(&si) else {
                bail!("statement {si} is not an instruction of the binary");
            };
            if rendered.frozen.contains(&si) {
                bail!("statement {si} (address {addr:#x}) is frozen and may not be rewritten");
            }
            if !matches!(
                rendered.source.stmts.get(si).map(|s| &s.kind),
                Some(StmtKind::Insn(_))
            ) {
                bail!("statement {si} is not an instruction");
            }
            let start = rendered.addr_of_stmt[&first];
            if addr != start + 4 * k as u64 {
                bail!("edit at {start:#x}: its statements are not consecutive instructions");
            }
            if !taken.insert(addr) {
                bail!("two edits overlap at address {addr:#x}");
            }
        }
        if e.replacement.len() > e.stmts.len() {
            bail!(
                "edit at {:#x}: {} replacement instructions do not fit a window of {}",
                rendered.addr_of_stmt[&first],
                e.replacement.len(),
                e.stmts.len()
            );
        }
        for i in &e.replacement {
            if let Some(why) = position_dependent(i) {
                bail!("replacement `{i}` cannot be patched in place: {why}");
            }
        }
        plans.push((rendered.addr_of_stmt[&first], e.stmts.len(), &e.replacement));
    }

    let lines: Vec<String> = plans
        .iter()
        .flat_map(|(_, _, r)| r.iter().map(|i| i.to_string()))
        .collect();
    let words = match assemble(&lines)? {
        Assembled::Words(w) => w,
        Assembled::Rejected(bad) => {
            let names: Vec<&str> = bad.iter().map(|&b| lines[b].as_str()).collect();
            bail!("the assembler rejects: {}", names.join("; "));
        }
    };
    let mut out = bin.bytes.clone();
    let mut next = words.into_iter();
    for (start, len, repl) in plans {
        for k in 0..len {
            let addr = start + 4 * k as u64;
            let word = if k < repl.len() {
                let w = next.next().context("assembler returned too few words")?;
                if pc_relative(w, addr).is_some() {
                    bail!("replacement `{}` assembled to a PC-relative word", repl[k]);
                }
                w
            } else {
                NOP
            };
            let off = bin
                .offset_of(addr)
                .with_context(|| format!("address {addr:#x} is not in a code section"))?;
            out[off..off + 4].copy_from_slice(&word.to_le_bytes());
        }
    }
    Ok(out)
}

/// Write patched bytes to `out` atomically, with the input file's mode when
/// `out` is a new file (an existing `out`, including the input itself, keeps
/// its own).
pub fn write_output(bin: &Binary, out: &Path, bytes: &[u8]) -> Result<()> {
    let existed = out.exists();
    write_atomic(out, bytes)?;
    if !existed {
        if let Some(p) = &bin.path {
            let mode = std::fs::metadata(p)
                .with_context(|| format!("cannot read the mode of {}", p.display()))?
                .permissions();
            std::fs::set_permissions(out, mode)
                .with_context(|| format!("cannot set the mode of {}", out.display()))?;
        }
    }
    Ok(())
}
