//! Assembling instruction text with GNU as, in one batched run: the ground
//! truth for "does this text mean these bytes" (render) and for the bytes of
//! accepted rewrites (patch).

use anyhow::{bail, Context, Result};
use goblin::elf::Elf;
use std::collections::BTreeSet;
use std::process::Command;

/// The assembler; `PEEPHOLE_AS` overrides it.
pub fn assembler() -> String {
    std::env::var("PEEPHOLE_AS").unwrap_or_else(|_| "aarch64-linux-gnu-as".to_string())
}

/// Every extension a distribution binary may use, so that any instruction
/// capstone decodes can be re-assembled.
const MARCH: &str = "-march=armv9.2-a+sve2+sve2-aes+sve2-sha3+sve2-sm4+sve2-bitperm+memtag+crypto+sha3+sm4+fp16+fp16fml+rng+ls64+sme+i8mm+bf16+f64mm+pauth+flagm+predres+ssbs";

/// The outcome of assembling one instruction per line.
pub enum Assembled {
    /// One word per line.
    Words(Vec<u32>),
    /// These lines (0-based) were rejected.
    Rejected(BTreeSet<usize>),
}

/// Assemble `lines` (one instruction each) and return one word per line, or
/// the lines the assembler rejected. Any line that does not produce exactly
/// one word makes the whole call an error.
pub fn assemble(lines: &[String]) -> Result<Assembled> {
    if lines.is_empty() {
        return Ok(Assembled::Words(Vec::new()));
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let src = dir.path().join("check.s");
    let obj = dir.path().join("check.o");
    let mut text = String::from("\t.text\n");
    for l in lines {
        if l.contains('\n') || l.contains(';') {
            bail!("instruction text `{l}` spans several statements");
        }
        text.push('\t');
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&src, &text)?;
    let out = Command::new(assembler())
        .arg(MARCH)
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .output()
        .with_context(|| format!("cannot run {}", assembler()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `check.s:LINE: Error: ...`; line 1 is `.text`.
        let prefix = format!("{}:", src.display());
        let mut bad = BTreeSet::new();
        for l in stderr.lines() {
            let Some(rest) = l.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(n) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) {
                if n >= 2 && n - 2 < lines.len() {
                    bad.insert(n - 2);
                }
            }
        }
        if bad.is_empty() {
            bail!("{} failed: {}", assembler(), stderr.trim());
        }
        return Ok(Assembled::Rejected(bad));
    }
    let bytes = std::fs::read(&obj)?;
    let elf = Elf::parse(&bytes).context("assembler output is not ELF")?;
    let sh = elf
        .section_headers
        .iter()
        .find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(".text"))
        .context("assembler output has no .text")?;
    let text = bytes
        .get(sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize)
        .context("assembler output is truncated")?;
    if text.len() != 4 * lines.len() {
        bail!(
            "{} lines assembled to {} bytes, not one word each",
            lines.len(),
            text.len()
        );
    }
    Ok(Assembled::Words(
        text.chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect(),
    ))
}
