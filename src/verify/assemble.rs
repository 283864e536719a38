//! Assembling many (original, candidate) pairs into machine code with one run
//! of GNU as and one of ld.
//!
//! Each job's two blocks are laid out next to each other, followed by one
//! pad per exit label and one small data area per other symbol. Symbols are
//! renamed into a per-job namespace (`__pj<N>_<name>`), so original and
//! candidate of a job resolve every symbol to the same address, with the same
//! bytes behind it, while jobs cannot collide. Linking (rather than reading
//! the object) resolves `adrp`/`:lo12:`/`:got:`/literal relocations exactly
//! as they would be in a real program.

use crate::asm::{Imm, Insn, Operand};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::Command;

/// Where the linked code and its data areas start.
pub const CODE_BASE: u64 = 0x0010_0000;
/// Size of the region mapped for code; batches are cut to fit.
pub const CODE_SIZE: u64 = 0x0800_0000;
/// Bytes of data behind each non-exit symbol. A global reached through
/// `adrp` is read at offsets up to a few KiB (an anchor over several
/// globals: `adrp x3, .LANCHOR0; ...; ldr w0, [x3, 2048]`). The bytes are
/// written afresh for every test state ([`super::state::symbol_data`]):
/// with one fixed content (64 random bytes per symbol, zeros past them) a
/// load from a global returned the same value on every state, and an LLM
/// rewrite that replaced `ldr w0, [x3, 2048]; add w0, w0, 1; str ...;
/// mov w0, 1` by the same without the `mov` passed 300 tests (the load
/// read zero) and changed a program's output.
pub const SYMBOL_DATA: usize = 4096;

/// The machine code of one side of a job.
#[derive(Clone, Debug)]
pub struct Block {
    pub start: u64,
    /// The fall-through exit: the address just past the block.
    pub end: u64,
}

/// One assembled job: both blocks and the exits they share.
#[derive(Clone, Debug)]
pub struct AssembledJob {
    pub original: Block,
    pub candidate: Block,
    /// Branch-target exits by address, with their names as written.
    pub exits: Vec<(u64, String)>,
    /// Start of each data symbol's [`SYMBOL_DATA`] bytes.
    pub data: Vec<u64>,
}

/// A linked batch: memory image plus per-job addresses.
#[derive(Debug)]
pub struct Image {
    /// (address, bytes) of each loadable segment.
    pub segments: Vec<(u64, Vec<u8>)>,
    /// Per job in input order: its addresses, or why it did not assemble.
    pub jobs: Vec<Result<AssembledJob, String>>,
}

/// Symbols a job's blocks mention, split into branch targets and data.
#[derive(Default)]
struct Symbols {
    /// Original name -> is it a branch target.
    names: BTreeMap<String, bool>,
}

/// Rename every symbol in `text` into the job's namespace. Relocation
/// operators (`:lo12:`) and numbers are kept; `.` (the location counter) is
/// refused because it would differ between original and candidate.
fn mangle_expr(text: &str, job: usize, syms: &mut Symbols, branch: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    // Leading relocation operator(s) `:name:`.
    while let Some(r) = rest.strip_prefix(':') {
        let close = r
            .find(':')
            .ok_or_else(|| format!("bad relocation operator in `{text}`"))?;
        out.push(':');
        out.push_str(&r[..=close]);
        rest = &r[close + 1..];
    }
    if let Some(r) = rest.strip_prefix('=') {
        out.push('=');
        rest = r;
    }
    // A numeric local label (`1f`, `2b`) as a whole operand.
    let t = rest.trim();
    if t.len() >= 2
        && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && t.ends_with(['f', 'b'])
    {
        let name = t.to_string();
        syms.names
            .entry(name.clone())
            .and_modify(|b| *b |= branch)
            .or_insert(branch);
        out.push_str(&symbol_name(job, &name));
        return Ok(out);
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '$' {
            let start = i;
            while i < bytes.len() && {
                let d = bytes[i] as char;
                d.is_ascii_alphanumeric() || d == '_' || d == '.' || d == '$'
            } {
                i += 1;
            }
            let name = &rest[start..i];
            if name == "." {
                return Err(format!("`{text}` uses the location counter `.`"));
            }
            syms.names
                .entry(name.to_string())
                .and_modify(|b| *b |= branch)
                .or_insert(branch);
            out.push_str(&symbol_name(job, name));
        } else if c.is_ascii_digit() {
            // Skip a whole number (including hex digits and suffix letters).
            while i < bytes.len() && (bytes[i] as char).is_ascii_alphanumeric() {
                out.push(bytes[i] as char);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn symbol_name(job: usize, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("__pj{job}_{safe}")
}

fn mangle_imm(imm: &Imm, job: usize, syms: &mut Symbols) -> Result<Imm, String> {
    // Floating-point immediates (`fmov d0, #0.5`) are numbers, not symbols.
    if imm.value.is_some()
        || imm.text.trim().parse::<f64>().is_ok()
        || !imm
            .text
            .chars()
            .any(|c| c.is_ascii_alphabetic() || c == '_' || c == '.')
    {
        return Ok(imm.clone());
    }
    Ok(Imm {
        text: mangle_expr(&imm.text, job, syms, false)?,
        value: None,
        hash: imm.hash,
    })
}

/// The instruction with its symbols renamed, as assembler text.
fn mangle_insn(insn: &Insn, job: usize, syms: &mut Symbols) -> Result<String, String> {
    let target = super::support::branch_target_operand(insn);
    // Operands that are names but not symbols: system registers, prefetch
    // and barrier options.
    let keep_names = matches!(insn.mnemonic.as_str(), "mrs" | "msr" | "bti" | "hint");
    let prefetch = insn.mnemonic.starts_with("prf");
    let mut out = insn.clone();
    for (k, op) in out.operands.iter_mut().enumerate() {
        match op {
            Operand::Sym(_) if keep_names || (prefetch && k == 0) => {}
            Operand::Sym(s) => *s = mangle_expr(s, job, syms, Some(k) == target)?,
            Operand::Imm(i) => *i = mangle_imm(i, job, syms)?,
            Operand::Mem(m) => {
                if let Some(o) = &m.offset {
                    m.offset = Some(mangle_imm(o, job, syms)?);
                }
            }
            _ => {}
        }
    }
    Ok(out.to_string())
}

/// Source text of one job; `Err` if a symbol cannot be sandboxed.
fn job_source(job: usize, original: &[Insn], candidate: &[Insn]) -> Result<String, String> {
    let mut syms = Symbols::default();
    let orig: Vec<String> = original
        .iter()
        .map(|i| mangle_insn(i, job, &mut syms))
        .collect::<Result<_, _>>()?;
    let cand: Vec<String> = candidate
        .iter()
        .map(|i| mangle_insn(i, job, &mut syms))
        .collect::<Result<_, _>>()?;
    let mut s = String::new();
    let _ = writeln!(s, "\t.p2align 4\n__pj{job}__o:");
    for l in &orig {
        let _ = writeln!(s, "\t{l}");
    }
    // Every exit pad (fall-through and labels) is a `brk`: the run stops
    // with an exception there, which [`super::exec`] reads as that exit.
    let _ = writeln!(
        s,
        "__pj{job}__oe:\n\tbrk #0x7ff\n\t.ltorg\n\t.p2align 4\n__pj{job}__c:"
    );
    for l in &cand {
        let _ = writeln!(s, "\t{l}");
    }
    let _ = writeln!(s, "__pj{job}__ce:\n\tbrk #0x7ff\n\t.ltorg");
    for (name, is_exit) in &syms.names {
        let m = symbol_name(job, name);
        if *is_exit {
            let _ = writeln!(
                s,
                "{m}:\n__pj{job}__x_{}:\n\tbrk #0x7fe",
                &m[format!("__pj{job}_").len()..]
            );
        }
    }
    for (k, (name, _)) in syms.names.iter().filter(|(_, exit)| !**exit).enumerate() {
        let m = symbol_name(job, name);
        // Global: ld fills GOT slots of local symbols wrongly in this
        // static, headerless (-N) link. The contents are written per test
        // state when the block runs.
        let _ = writeln!(
            s,
            "\t.p2align 4\n\t.globl {m}\n{m}:\n__pj{job}__d{k}:\n\t.skip {SYMBOL_DATA}"
        );
    }
    Ok(s)
}

/// Assemble and link `jobs` (original, candidate) in one run of each tool.
/// A job whose text does not assemble gets `Err(reason)` and the rest are
/// assembled again without it; only tool failures are `Err` overall.
pub fn assemble_batch(jobs: &[(&[Insn], &[Insn])]) -> Result<Image> {
    let mut results: Vec<Option<Result<AssembledJob, String>>> = vec![None; jobs.len()];
    let mut sources: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    for (k, (o, c)) in jobs.iter().enumerate() {
        match job_source(k, o, c) {
            Ok(s) => sources.push(Some(s)),
            Err(e) => {
                results[k] = Some(Err(e));
                sources.push(None);
            }
        }
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    loop {
        // Source text, remembering which lines belong to which job.
        let mut text = String::from("\t.text\n\t.globl _start\n_start:\n");
        let mut line_owner: Vec<(usize, usize)> = Vec::new(); // (first line, job)
        for (k, s) in sources.iter().enumerate() {
            if let Some(s) = s {
                line_owner.push((text.lines().count() + 1, k));
                text.push_str(s);
            }
        }
        let src = dir.path().join("batch.s");
        std::fs::write(&src, &text)?;
        let obj = dir.path().join("batch.o");
        let out = Command::new("aarch64-linux-gnu-as")
            .arg("-o")
            .arg(&obj)
            .arg(&src)
            .output()
            .context("running aarch64-linux-gnu-as (install binutils-aarch64-linux-gnu)")?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let bad = blame_lines(&stderr, &text, &line_owner);
            if bad.is_empty() {
                bail!("aarch64-linux-gnu-as failed: {stderr}");
            }
            for (k, msg) in bad {
                results[k] = Some(Err(msg));
                sources[k] = None;
            }
            continue;
        }
        let elf = dir.path().join("batch.elf");
        let out = Command::new("aarch64-linux-gnu-ld")
            .args([
                "-static",
                "-nostdlib",
                "-N",
                "--no-relax",
                "--build-id=none",
            ])
            .arg(format!("-Ttext={CODE_BASE:#x}"))
            .arg("-o")
            .arg(&elf)
            .arg(&obj)
            .output()
            .context("running aarch64-linux-gnu-ld")?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let live: Vec<usize> = (0..jobs.len()).filter(|&k| sources[k].is_some()).collect();
            if live.len() <= 1 {
                for k in live {
                    results[k] = Some(Err(format!("does not link: {}", stderr.trim())));
                }
                return finish(Vec::new(), results);
            }
            // Rare (e.g. a relocation out of range): find the culprits by
            // linking each job alone.
            let mut removed = false;
            for k in live {
                let one = assemble_batch(&[jobs[k]])?;
                if let Some(Err(e)) = one.jobs.into_iter().next() {
                    results[k] = Some(Err(e));
                    sources[k] = None;
                    removed = true;
                }
            }
            if !removed {
                bail!("aarch64-linux-gnu-ld failed: {stderr}");
            }
            continue;
        }
        let bytes = std::fs::read(&elf)?;
        return read_image(&bytes, jobs.len(), results);
    }
}

fn finish(
    segments: Vec<(u64, Vec<u8>)>,
    results: Vec<Option<Result<AssembledJob, String>>>,
) -> Result<Image> {
    Ok(Image {
        segments,
        jobs: results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("not assembled".into())))
            .collect(),
    })
}

/// Map assembler error lines (`batch.s:123: Error: ...`) to jobs.
fn blame_lines(stderr: &str, text: &str, owners: &[(usize, usize)]) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<(usize, String)> = Vec::new();
    for l in stderr.lines() {
        let Some(pos) = l.find("batch.s:") else {
            continue;
        };
        let rest = &l[pos + 8..];
        let Some((num, msg)) = rest.split_once(':') else {
            continue;
        };
        let Ok(n) = num.trim().parse::<usize>() else {
            continue;
        };
        let Some(&(_, job)) = owners.iter().rev().find(|(first, _)| *first <= n) else {
            continue;
        };
        if out.iter().any(|(j, _)| *j == job) {
            continue;
        }
        let msg = msg.trim().trim_start_matches("Error:").trim();
        let src = lines.get(n - 1).map(|s| s.trim()).unwrap_or("");
        out.push((
            job,
            format!("does not assemble: {msg} (`{}`)", demangle(src)),
        ));
    }
    out
}

/// Undo the symbol renaming for messages.
fn demangle(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(p) = rest.find("__pj") {
        out.push_str(&rest[..p]);
        let tail = &rest[p + 4..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        rest = tail[digits..].strip_prefix('_').unwrap_or(&tail[digits..]);
    }
    out.push_str(rest);
    out
}

fn read_image(
    bytes: &[u8],
    n: usize,
    mut results: Vec<Option<Result<AssembledJob, String>>>,
) -> Result<Image> {
    let elf = goblin::elf::Elf::parse(bytes).context("reading the linked ELF")?;
    let mut segments = Vec::new();
    for ph in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
    {
        let mut data = vec![0u8; ph.p_memsz as usize];
        let file = ph.p_offset as usize..(ph.p_offset + ph.p_filesz) as usize;
        data[..ph.p_filesz as usize].copy_from_slice(&bytes[file]);
        if ph.p_vaddr < CODE_BASE || ph.p_vaddr + ph.p_memsz > CODE_BASE + CODE_SIZE {
            bail!(
                "linked image at {:#x}+{:#x} does not fit the code region",
                ph.p_vaddr,
                ph.p_memsz
            );
        }
        segments.push((ph.p_vaddr, data));
    }
    let mut syms: HashMap<&str, u64> = HashMap::new();
    for s in elf.syms.iter() {
        if let Some(name) = elf.strtab.get_at(s.st_name) {
            if name.starts_with("__pj") {
                syms.insert(name, s.st_value);
            }
        }
    }
    for (k, r) in results.iter_mut().enumerate().take(n) {
        if r.is_some() {
            continue;
        }
        let get = |suffix: &str| syms.get(format!("__pj{k}__{suffix}").as_str()).copied();
        let (Some(o), Some(oe), Some(c), Some(ce)) = (get("o"), get("oe"), get("c"), get("ce"))
        else {
            *r = Some(Err("block symbols missing from the linked image".into()));
            continue;
        };
        let prefix = format!("__pj{k}__x_");
        let exits = syms
            .iter()
            .filter_map(|(name, &a)| {
                name.strip_prefix(prefix.as_str())
                    .map(|n| (a, n.to_string()))
            })
            .collect();
        let data_prefix = format!("__pj{k}__d");
        let mut data: Vec<u64> = syms
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(data_prefix.as_str())
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, &a)| a)
            .collect();
        data.sort_unstable();
        *r = Some(Ok(AssembledJob {
            original: Block { start: o, end: oe },
            candidate: Block { start: c, end: ce },
            exits,
            data,
        }));
    }
    finish(segments, results)
}

/// Whether the assembler can be found (for tests that need it).
pub fn assembler_available() -> bool {
    Command::new("aarch64-linux-gnu-as")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
