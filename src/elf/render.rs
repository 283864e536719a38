//! Rendering decoded code as assembly text our front end parses, with a map
//! back to addresses and the statements that must never change.
//!
//! Every instruction's canonical text (`Insn` Display) is re-assembled with
//! GNU as and compared with the original word; anything that does not parse,
//! does not assemble, or assembles to other bits is rendered as `.inst`
//! (data to our front end: a barrier that is never rewritten). So the
//! pipeline never reasons about an instruction other than the one in the file.

use super::disasm::{decode, is_plain_name, pc_relative, Item, PcRel};
use super::gas::{assemble, Assembled};
use super::read::{Binary, RelocTarget};
use crate::asm::{Insn, Operand, Source, StmtKind};
use crate::semantics::{effects, Loc};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

/// A binary rendered as assembly source.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub source: Source,
    /// Address of every instruction and data statement.
    pub addr_of_stmt: HashMap<usize, u64>,
    /// Statements that must never be rewritten: PC-relative instructions,
    /// branches, instructions carrying relocations, linker stubs, data.
    pub frozen: HashSet<usize>,
    pub stats: RenderStats,
}

/// Counts for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderStats {
    /// Instructions rendered as instructions.
    pub insns: usize,
    /// Words or bytes rendered as data (mapping symbols, undecodable).
    pub data: usize,
    /// Decoded instructions our parser cannot read, or that GNU as rejects.
    pub unparsed: usize,
    /// Decoded instructions whose canonical text assembles to other bits.
    pub mismatched: usize,
    /// Up to 20 examples of unparsed or mismatched instructions (capstone
    /// text and why), for reports.
    pub samples: Vec<String>,
}

impl RenderStats {
    fn sample(&mut self, s: String) {
        if self.samples.len() < 20 {
            self.samples.push(s);
        }
    }
}

/// Label of a leader address.
pub fn label(addr: u64) -> String {
    format!(".Lx{addr:x}")
}

/// What one output line is, for mapping statements back.
#[derive(Clone, Copy)]
struct LineInfo {
    addr: u64,
    frozen: bool,
}

/// Per-instruction rendering decision before the assembler check.
struct Candidate {
    addr: u64,
    text: String,
    word: u32,
    insn: Option<Insn>,
    frozen: bool,
}

fn is_indirect_or_return(m: &str) -> bool {
    m.starts_with("br") || m.starts_with("blr") || m.starts_with("ret") || m.starts_with("eret")
}

/// Writes sp, the frame pointer or the link register: the binary's unwind
/// tables (which we do not render as CFI) describe these instructions by
/// address, so like CFI-described code in source mode they are never changed.
fn sets_frame(i: &Insn) -> bool {
    let w = effects(i).writes;
    w.contains(Loc::Sp) || w.contains(Loc::X(29)) || w.contains(Loc::X(30))
}

/// Section kinds that are linker-generated stubs: nothing to gain there.
fn is_stub_section(name: &str) -> bool {
    name.starts_with(".plt") || name == ".iplt" || name.starts_with(".got")
}

/// Turn capstone's text into our instruction, with PC-relative targets as
/// labels. `None` when it cannot be expressed.
fn to_insn(
    bin: &Binary,
    text: &str,
    word: u32,
    addr: u64,
    insn_at: &HashSet<u64>,
    function_names: &HashSet<&str>,
) -> Option<Insn> {
    let pc = pc_relative(word, addr);
    let text = match pc {
        None => text.to_string(),
        Some((kind, target, _)) => {
            let operand = match bin.reloc_sites.get(&addr) {
                Some(RelocTarget::Addr(a)) if insn_at.contains(a) => label(*a),
                Some(RelocTarget::Extern(n))
                    if kind == PcRel::Branch
                        && is_plain_name(n)
                        && !n.starts_with(".L")
                        && !function_names.contains(n.as_str()) =>
                {
                    n.clone()
                }
                Some(_) if kind == PcRel::Branch => return None,
                Some(_) => label(target),
                None if kind == PcRel::Branch && !insn_at.contains(&target) => return None,
                None => label(target),
            };
            // Capstone prints the target last: `tbz w0, #3, #0x400a10`.
            let (mn, ops) = text.split_once(' ')?;
            let (head, last) = match ops.rsplit_once(", ") {
                Some((h, l)) => (Some(h), l),
                None => (None, ops),
            };
            if !last.starts_with('#') {
                return None;
            }
            match head {
                Some(h) => format!("{mn} {h}, {operand}"),
                None => format!("{mn} {operand}"),
            }
        }
    };
    Insn::parse_plain(&text).ok()
}

/// The check line for an instruction: its canonical text, with a
/// PC-relative target replaced by `.` (compared under a mask).
fn check_text(insn: &Insn, pcrel: bool) -> String {
    if !pcrel {
        return insn.to_string();
    }
    let mut i = insn.clone();
    if let Some(last) = i.operands.last_mut() {
        *last = Operand::Sym(".".into());
    }
    i.to_string()
}

/// Re-assemble every candidate; those that fail or differ become `None`.
fn round_trip(cands: &mut [Candidate], stats: &mut RenderStats) -> Result<()> {
    for _ in 0..4 {
        let idx: Vec<usize> = (0..cands.len())
            .filter(|&i| cands[i].insn.is_some())
            .collect();
        let lines: Vec<String> = idx
            .iter()
            .map(|&i| {
                let c = &cands[i];
                let pcrel = pc_relative(c.word, c.addr).is_some();
                check_text(c.insn.as_ref().expect("filtered"), pcrel)
            })
            .collect();
        match assemble(&lines)? {
            Assembled::Rejected(bad) => {
                for b in bad {
                    let c = &mut cands[idx[b]];
                    stats.sample(format!("{}: as rejects `{}`", c.text, lines[b]));
                    c.insn = None;
                    stats.unparsed += 1;
                }
            }
            Assembled::Words(words) => {
                for (k, &i) in idx.iter().enumerate() {
                    let c = &mut cands[i];
                    let mask = pc_relative(c.word, c.addr).map(|p| p.2).unwrap_or(u32::MAX);
                    if words[k] & mask != c.word & mask {
                        stats.sample(format!(
                            "{}: `{}` assembles to {:08x}, not {:08x}",
                            c.text, lines[k], words[k], c.word
                        ));
                        c.insn = None;
                        stats.mismatched += 1;
                    }
                }
                return Ok(());
            }
        }
    }
    bail!("the assembler kept rejecting instructions")
}

/// Render a binary as assembly source.
pub fn render(bin: &Binary) -> Result<Rendered> {
    let listing = decode(bin)?;
    let insn_at: HashSet<u64> = listing
        .sections
        .iter()
        .flatten()
        .filter_map(|it| match it {
            Item::Insn { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect();
    let function_names: HashSet<&str> = listing.functions.values().map(|s| s.as_str()).collect();
    let mut stats = RenderStats::default();

    // Decide each instruction's text, then check them all in one batch.
    let mut cands = Vec::new();
    for (s, items) in bin.sections.iter().zip(&listing.sections) {
        let stub = is_stub_section(&s.name);
        for it in items {
            if let Item::Insn { addr, word, text } = it {
                let insn = to_insn(bin, text, *word, *addr, &insn_at, &function_names);
                if insn.is_none() {
                    stats.unparsed += 1;
                    stats.sample(format!("{text}: not parsed"));
                }
                let frozen = stub
                    || pc_relative(*word, *addr).is_some()
                    || bin.reloc_sites.contains_key(addr)
                    || insn
                        .as_ref()
                        .is_some_and(|i| is_indirect_or_return(&i.mnemonic) || sets_frame(i));
                cands.push(Candidate {
                    addr: *addr,
                    text: text.clone(),
                    word: *word,
                    insn,
                    frozen,
                });
            }
        }
    }
    round_trip(&mut cands, &mut stats)?;
    let by_addr: HashMap<u64, &Candidate> = cands.iter().map(|c| (c.addr, c)).collect();

    // Labels used as operands: the rest of the leaders are listed at the end
    // so that our CFG sees them referenced and starts blocks there.
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for c in &cands {
        if let Some(i) = &c.insn {
            for o in &i.operands {
                if let Operand::Sym(s) = o {
                    referenced.insert(s.clone());
                }
            }
        }
    }

    let mut text = String::new();
    let mut lines: HashMap<usize, LineInfo> = HashMap::new();
    let mut line_no = 0usize;
    let mut push = |text: &mut String, l: &str, info: Option<LineInfo>| {
        line_no += 1;
        text.push_str(l);
        text.push('\n');
        if let Some(i) = info {
            lines.insert(line_no, i);
        }
    };
    let name = bin
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<elf>".into());
    push(
        &mut text,
        &format!("// rendered from {name} by peephole"),
        None,
    );
    let mut unreferenced_leaders = Vec::new();
    for (k, (s, items)) in bin.sections.iter().zip(&listing.sections).enumerate() {
        let sec_name = if s.name.starts_with('.')
            && s.name[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            s.name.clone()
        } else {
            format!(".text.peephole{k}")
        };
        push(
            &mut text,
            &format!("\t.section {sec_name},\"ax\",%progbits"),
            None,
        );
        for it in items {
            let addr = it.addr();
            if let Some(f) = listing.functions.get(&addr) {
                push(&mut text, &format!("\t.type {f}, %function"), None);
                push(&mut text, &format!("{f}:"), None);
            }
            if listing.leaders.contains(&addr) || referenced.contains(&label(addr)) {
                let l = label(addr);
                if !referenced.contains(&l) {
                    unreferenced_leaders.push(l.clone());
                }
                push(&mut text, &format!("{l}:"), None);
            }
            match it {
                Item::Insn { word, .. } => {
                    let c = by_addr[&addr];
                    match &c.insn {
                        Some(i) => {
                            stats.insns += 1;
                            let info = LineInfo {
                                addr,
                                frozen: c.frozen,
                            };
                            push(&mut text, &format!("\t{i}"), Some(info));
                        }
                        None => {
                            let info = LineInfo { addr, frozen: true };
                            push(&mut text, &format!("\t.inst 0x{word:08x}"), Some(info));
                        }
                    }
                }
                Item::Data { bytes, .. } => {
                    stats.data += 1;
                    let l = if bytes.len() == 4 {
                        let w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                        format!("\t.word 0x{w:08x}")
                    } else {
                        let bs: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
                        format!("\t.byte {}", bs.join(", "))
                    };
                    push(&mut text, &l, Some(LineInfo { addr, frozen: true }));
                }
            }
        }
    }
    if !unreferenced_leaders.is_empty() {
        push(
            &mut text,
            "// entry points known from symbols, relocations and data",
            None,
        );
        push(
            &mut text,
            "\t.section .note.peephole.entries,\"\",%note",
            None,
        );
        for chunk in unreferenced_leaders.chunks(8) {
            let mut l = String::from("\t.quad ");
            for (i, x) in chunk.iter().enumerate() {
                if i > 0 {
                    l.push_str(", ");
                }
                let _ = write!(l, "{x}");
            }
            push(&mut text, &l, None);
        }
    }

    let source = Source::parse(&name, text).context("rendered assembly does not parse")?;
    let mut addr_of_stmt = HashMap::new();
    let mut frozen = HashSet::new();
    for (i, st) in source.stmts.iter().enumerate() {
        if let Some(info) = lines.get(&st.line) {
            addr_of_stmt.insert(i, info.addr);
            let is_insn = matches!(st.kind, StmtKind::Insn(_));
            if info.frozen || !is_insn {
                frozen.insert(i);
            }
        }
    }
    Ok(Rendered {
        source,
        addr_of_stmt,
        frozen,
        stats,
    })
}
