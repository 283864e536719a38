//! Decoding code sections with capstone, and finding block leaders.
//!
//! Capstone supplies only instruction *text*; which words are code comes from
//! the `$x`/`$d` mapping symbols, and PC-relative targets are computed from
//! the encoding here (the fields are simple and fixed), never from capstone's
//! register lists (which are wrong in places, e.g. `cmp` "writes" its first
//! operand).

use super::read::{Binary, RelocTarget};
use anyhow::{anyhow, Result};
use capstone::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// How an instruction depends on its own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcRel {
    /// `b`, `bl`, `b.cond`, `bc.cond`, `cbz`/`cbnz`, `tbz`/`tbnz`.
    Branch,
    /// `adr`, `adrp`.
    Address,
    /// Load-literal forms (`ldr`, `ldrsw`, `prfm`, SIMD `ldr` with a label).
    Literal,
}

/// Classify a word: its PC-relative kind, target, and the mask of the bits
/// that do not encode the offset (for comparing re-assembled encodings).
pub fn pc_relative(word: u32, pc: u64) -> Option<(PcRel, u64, u32)> {
    let sext = |v: u64, bits: u32| -> i64 { ((v << (64 - bits)) as i64) >> (64 - bits) };
    let w = u64::from(word);
    let rel = |off: i64| pc.wrapping_add(off as u64);
    if word & 0x7C00_0000 == 0x1400_0000 {
        // b, bl: imm26
        return Some((
            PcRel::Branch,
            rel(sext(w & 0x3ff_ffff, 26) << 2),
            0xFC00_0000,
        ));
    }
    if word & 0xFF00_0000 == 0x5400_0000 {
        // b.cond, bc.cond: imm19
        return Some((
            PcRel::Branch,
            rel(sext((w >> 5) & 0x7ffff, 19) << 2),
            0xFF00_001F,
        ));
    }
    if word & 0x7E00_0000 == 0x3400_0000 {
        // cbz, cbnz: imm19
        return Some((
            PcRel::Branch,
            rel(sext((w >> 5) & 0x7ffff, 19) << 2),
            0xFF00_001F,
        ));
    }
    if word & 0x7E00_0000 == 0x3600_0000 {
        // tbz, tbnz: imm14
        return Some((
            PcRel::Branch,
            rel(sext((w >> 5) & 0x3fff, 14) << 2),
            0xFFF8_001F,
        ));
    }
    if word & 0x1F00_0000 == 0x1000_0000 {
        let imm = sext(((w >> 5) & 0x7ffff) << 2 | ((w >> 29) & 3), 21);
        let target = if word & 0x8000_0000 != 0 {
            (pc & !0xfff).wrapping_add((imm << 12) as u64)
        } else {
            rel(imm)
        };
        return Some((PcRel::Address, target, 0x9F00_001F));
    }
    if word & 0x3B00_0000 == 0x1800_0000 {
        return Some((
            PcRel::Literal,
            rel(sext((w >> 5) & 0x7ffff, 19) << 2),
            0xFF00_001F,
        ));
    }
    None
}

/// One decoded item of a code section.
#[derive(Clone, Debug)]
pub enum Item {
    /// A decoded instruction: capstone's text (`mnemonic op_str`).
    Insn { addr: u64, word: u32, text: String },
    /// Data (mapping symbol `$d`, undecodable word, or a partial word).
    Data { addr: u64, bytes: Vec<u8> },
}

impl Item {
    pub fn addr(&self) -> u64 {
        match self {
            Item::Insn { addr, .. } | Item::Data { addr, .. } => *addr,
        }
    }
}

/// The decoded code sections of a binary (same order as `Binary::sections`).
#[derive(Clone, Debug)]
pub struct Listing {
    pub sections: Vec<Vec<Item>>,
    /// Addresses where a basic block must start.
    pub leaders: BTreeSet<u64>,
    /// Function starts and names (symbol names, or `fn_<hex>` from FDEs).
    pub functions: BTreeMap<u64, String>,
}

/// Whether the byte at `addr` is code according to the mapping symbols
/// (code when there are none before it in its section).
fn is_code(bin: &Binary, section_start: u64, addr: u64) -> bool {
    match bin.mapping.range(section_start..=addr).next_back() {
        Some((_, &code)) => code,
        None => true,
    }
}

/// Decode every code section.
pub fn decode(bin: &Binary) -> Result<Listing> {
    let cs = Capstone::new()
        .arm64()
        .mode(arch::arm64::ArchMode::Arm)
        .detail(false)
        .build()
        .map_err(|e| anyhow!("capstone: {e}"))?;
    let mut sections = Vec::new();
    for s in &bin.sections {
        let bytes = bin.section_bytes(s);
        let mut items = Vec::new();
        let mut pos: u64 = 0;
        while pos < s.size {
            let addr = s.addr + pos;
            // Next mapping change, to cut data runs at it.
            let next_map = bin
                .mapping
                .range(addr + 1..s.addr + s.size)
                .next()
                .map(|(&a, _)| a - s.addr)
                .unwrap_or(s.size);
            if is_code(bin, s.addr, addr)
                && addr.is_multiple_of(4)
                && pos + 4 <= s.size
                && next_map >= pos + 4
            {
                let w = &bytes[pos as usize..pos as usize + 4];
                let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                let decoded = cs.disasm_count(w, addr, 1).ok().and_then(|is| {
                    is.iter().next().map(|i| {
                        let m = i.mnemonic().unwrap_or("");
                        let o = i.op_str().unwrap_or("");
                        if o.is_empty() {
                            m.to_string()
                        } else {
                            format!("{m} {o}")
                        }
                    })
                });
                items.push(match decoded {
                    Some(text) if !text.is_empty() => Item::Insn { addr, word, text },
                    _ => Item::Data {
                        addr,
                        bytes: w.to_vec(),
                    },
                });
                pos += 4;
            } else {
                // Data up to the next word boundary or mapping change.
                let end = ((pos + 4) & !3).min(next_map).min(s.size).max(pos + 1);
                items.push(Item::Data {
                    addr,
                    bytes: bytes[pos as usize..end as usize].to_vec(),
                });
                pos = end;
            }
        }
        sections.push(items);
    }
    let functions = function_starts(bin);
    let leaders = leaders(bin, &sections, &functions);
    Ok(Listing {
        sections,
        leaders,
        functions,
    })
}

/// A label-safe name: GNU-as identifier characters only.
pub fn is_plain_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn function_starts(bin: &Binary) -> BTreeMap<u64, String> {
    let mut out: BTreeMap<u64, String> = BTreeMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for s in &bin.symbols {
        if !(s.is_func || s.is_global) || out.contains_key(&s.addr) {
            continue;
        }
        let mut name = if is_plain_name(&s.name) && !s.name.starts_with(".L") {
            s.name.clone()
        } else {
            format!("fn_{:x}", s.addr)
        };
        if !used.insert(name.clone()) {
            name = format!("{name}_{:x}", s.addr);
            used.insert(name.clone());
        }
        out.insert(s.addr, name);
    }
    for &(start, _) in &bin.fde_ranges {
        if bin.section_of(start).is_some() && !out.contains_key(&start) {
            out.insert(start, format!("fn_{start:x}"));
        }
    }
    out
}

/// Indirect jumps (not returns, not calls): their targets are unknown.
fn is_indirect_jump(text: &str) -> bool {
    let m = text.split_whitespace().next().unwrap_or("");
    matches!(m, "br" | "braa" | "brab" | "braaz" | "brabz")
}

/// Every address where a block must start. Missing one is a miscompile
/// hazard (a rewrite could span an entry point), so this over-approximates:
/// direct branch targets, code addresses from `adr`, symbols, FDE starts,
/// relocation targets and code pointers in data, the first code word after
/// data, and — in any function with an indirect jump (a jump table or
/// computed goto, whose targets we cannot see) — every instruction.
fn leaders(
    bin: &Binary,
    sections: &[Vec<Item>],
    functions: &BTreeMap<u64, String>,
) -> BTreeSet<u64> {
    let mut l = BTreeSet::new();
    l.extend(bin.sections.iter().map(|s| s.addr));
    l.extend(bin.symbols.iter().map(|s| s.addr));
    l.extend(functions.keys().copied());
    l.extend(bin.fde_ranges.iter().map(|r| r.0));
    l.extend(bin.entry_points.iter().copied());
    for t in bin.reloc_sites.values() {
        if let RelocTarget::Addr(a) = t {
            l.insert(*a);
        }
    }
    let mut jumpy_functions: BTreeSet<u64> = BTreeSet::new();
    for items in sections {
        let mut after_data = false;
        for it in items {
            match it {
                Item::Data { .. } => after_data = true,
                Item::Insn { addr, word, text } => {
                    if after_data {
                        l.insert(*addr);
                        after_data = false;
                    }
                    if let Some((kind, target, _)) = pc_relative(*word, *addr) {
                        let relocated = bin.reloc_sites.contains_key(addr);
                        if matches!(kind, PcRel::Branch | PcRel::Address) && !relocated {
                            l.insert(target);
                        }
                    }
                    if is_indirect_jump(text) {
                        let f = functions.range(..=*addr).next_back().map(|(&a, _)| a);
                        jumpy_functions.insert(f.unwrap_or(0));
                    }
                }
            }
        }
    }
    if !jumpy_functions.is_empty() {
        for items in sections {
            for it in items {
                if let Item::Insn { addr, .. } = it {
                    let f = functions.range(..=*addr).next_back().map(|(&a, _)| a);
                    if jumpy_functions.contains(&f.unwrap_or(0)) {
                        l.insert(*addr);
                    }
                }
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc_relative_targets() {
        // b .+8
        assert_eq!(pc_relative(0x1400_0002, 0x1000).unwrap().1, 0x1008);
        // bl .-4
        assert_eq!(pc_relative(0x97ff_ffff, 0x1000).unwrap().1, 0xffc);
        // b.eq .+16
        assert_eq!(pc_relative(0x5400_0080, 0x1000).unwrap().1, 0x1010);
        // cbz x0, .+8
        assert_eq!(pc_relative(0xb400_0040, 0x1000).unwrap().1, 0x1008);
        // tbz w0, #3, .+8
        assert_eq!(pc_relative(0x3618_0040, 0x1000).unwrap().1, 0x1008);
        // adrp x0, page+0x1000 (immlo = 1)
        let (k, t, _) = pc_relative(0xb000_0000, 0x1234).unwrap();
        assert_eq!((k, t), (PcRel::Address, 0x2000));
        // adr x0, .+4
        assert_eq!(pc_relative(0x1000_0020, 0x1000).unwrap().1, 0x1004);
        // ldr x0, .+8 (literal)
        assert_eq!(
            pc_relative(0x5800_0040, 0x1000).unwrap(),
            (PcRel::Literal, 0x1008, 0xFF00_001F)
        );
        // add x0, x0, #1 is not PC-relative
        assert!(pc_relative(0x9100_0400, 0x1000).is_none());
    }
}
