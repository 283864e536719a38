//! One parsed instruction: mnemonic, condition, operands.

use super::operand::{parse_operands, Cond, Operand, OperandError};
use super::reg::Reg;
use crate::semantics::isa::{self, Flags};
use std::collections::HashMap;
use std::fmt;

/// A parsed instruction. `Display` gives its canonical text (lower-case
/// mnemonic, `", "` between operands), which is what proposers, the validator
/// and the cost model exchange; the source keeps its own spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Insn {
    /// Lower-case mnemonic without the condition suffix (`b` for `b.eq`).
    pub mnemonic: String,
    /// Condition of `b.cond` / `bc.cond`.
    pub cond: Option<Cond>,
    pub operands: Vec<Operand>,
}

impl Insn {
    /// Parse one statement (no comments, no label) such as `ldr w0, [sp, 12]`.
    pub fn parse(text: &str, aliases: &HashMap<String, Reg>) -> Result<Insn, OperandError> {
        let text = text.trim();
        let (mn, rest) = match text.find(|c: char| c.is_whitespace()) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text, ""),
        };
        if mn.is_empty()
            || !mn
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(OperandError(format!("cannot tokenize `{text}`")));
        }
        let lower = mn.to_ascii_lowercase();
        let (mnemonic, cond) = match lower.split_once('.') {
            Some((m @ ("b" | "bc"), c)) => match Cond::parse(c) {
                Some(c) => (m.to_string(), Some(c)),
                None => return Err(OperandError(format!("unknown condition in `{mn}`"))),
            },
            // Legacy spelling without the dot: `blt`, `bne`, `bhs` ...
            None if lower.len() == 3
                && lower.starts_with('b')
                && Cond::parse(&lower[1..]).is_some() =>
            {
                ("b".to_string(), Cond::parse(&lower[1..]))
            }
            _ => (lower, None),
        };
        // `csel w0, w1, w2, lt`: the ISA table says which end in a condition.
        let takes_cond = isa::has_flags(&mnemonic, Flags::COND_OPERAND);
        let operands = parse_operands(rest, takes_cond, aliases)?;
        Ok(Insn {
            mnemonic,
            cond,
            operands,
        })
    }

    /// Parse with no aliases in force: for candidate text from proposers.
    pub fn parse_plain(text: &str) -> Result<Insn, OperandError> {
        Insn::parse(text, &HashMap::new())
    }

    pub fn op(&self, i: usize) -> Option<&Operand> {
        self.operands.get(i)
    }

    /// Every immediate the instruction names, as 64-bit patterns: operands,
    /// shift amounts, memory offsets and post-index steps. The values on
    /// which a rewrite of it most often goes wrong are these and their
    /// neighbours, so test states are drawn near them.
    pub fn immediates(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for o in &self.operands {
            match o {
                Operand::Imm(v) => out.extend(v.value.map(|v| v as u64)),
                Operand::Modifier {
                    amount: Some(a), ..
                } => out.extend(a.value.map(|v| v as u64)),
                Operand::Mem(m) => {
                    out.extend(m.offset.as_ref().and_then(|o| o.value).map(|v| v as u64));
                    if let super::operand::AddrMode::PostIndex(p) = &m.mode {
                        out.extend(p.imm_value().map(|v| v as u64));
                    }
                }
                _ => {}
            }
        }
        out
    }

    pub fn regs(&self) -> impl Iterator<Item = &Reg> {
        self.operands.iter().flat_map(|o| -> Vec<&Reg> {
            match o {
                Operand::Reg(r) => vec![r],
                Operand::RegList { regs, .. } => regs.iter().collect(),
                Operand::Mem(m) => {
                    let mut v = vec![&m.base];
                    if let Some((r, _)) = &m.index {
                        v.push(r);
                    }
                    if let super::operand::AddrMode::PostIndex(p) = &m.mode {
                        if let Operand::Reg(r) = p.as_ref() {
                            v.push(r);
                        }
                    }
                    v
                }
                _ => vec![],
            }
        })
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mnemonic)?;
        if let Some(c) = self.cond {
            write!(f, ".{}", c.name())?;
        }
        for (i, o) in self.operands.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{o}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::operand::AddrMode;

    fn p(s: &str) -> Insn {
        Insn::parse_plain(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn canonical_round_trip() {
        for s in [
            "add x0, x1, #1",
            "ldr w0, [sp, #12]",
            "ldr x1, [x2, x3, lsl #3]",
            "ldr w1, [x2, w3, sxtw #2]",
            "stp x29, x30, [sp, #-16]!",
            "ldp x29, x30, [sp], #16",
            "ldr x0, [x1], x2",
            "b.eq .L3",
            "csel w0, w1, w2, lt",
            "ccmp x0, #3, #4, ne",
            "adrp x0, :got:foo",
            "ldr x0, [x0, :got_lo12:foo]",
            "add x0, x0, :lo12:.LC0",
            "ld1 {v0.4s, v1.4s}, [x0], #32",
            "ld1 {v0.s}[1], [x1]",
            "mov v0.s[1], w2",
            "fmov d0, #1.0",
            "ret",
            "cbz w0, 1f",
            "tbnz x3, #63, .Lneg",
            "movk x0, #0x1234, lsl #16",
            "add x0, x1, w2, uxtw #2",
            "ldr x0, =0x123456789",
            "bl printf",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn typed_operands() {
        let i = p("ldr w0, [sp, 12]");
        match &i.operands[1] {
            Operand::Mem(m) => {
                assert_eq!(m.base.to_string(), "sp");
                assert_eq!(m.offset.as_ref().unwrap().value, Some(12));
                assert_eq!(m.mode, AddrMode::Offset);
            }
            o => panic!("{o:?}"),
        }
        let i = p("ldp x29, x30, [sp], 16");
        assert!(matches!(&i.operands[2], Operand::Mem(m) if m.writes_back()));
        let i = p("blt .L3");
        assert_eq!((i.mnemonic.as_str(), i.cond), ("b", Some(Cond::Lt)));
        assert_eq!(p("bls .L1").cond, Some(Cond::Ls));
        assert_eq!(p("bl foo").cond, None);
        assert_eq!(p("bic x0, x0, x1").cond, None);
        let i = p("B.NE .L2");
        assert_eq!(i.mnemonic, "b");
        assert_eq!(i.cond, Some(Cond::Ne));
        assert_eq!(p("mov x0, #-1").operands[1].imm_value(), Some(-1));
        assert_eq!(
            p("mov x0, #0xffffffffffffffff").operands[1].imm_value(),
            Some(-1)
        );
    }

    #[test]
    fn aliases_resolve() {
        let mut a = HashMap::new();
        a.insert("ptr".to_string(), Reg::parse("x5").unwrap());
        let i = Insn::parse("ldr w0, [ptr, #4]", &a).unwrap();
        assert_eq!(i.to_string(), "ldr w0, [x5, #4]");
    }

    #[test]
    fn rejects_foreign_syntax() {
        for s in [
            "movl %eax, %ebx",
            "push {r4, lr}",
            "ldr r0, [r1]",
            "add x0, x1,",
            "ldr x0, [x1",
            "mov r0, r1",
        ] {
            assert!(Insn::parse_plain(s).is_err(), "{s}");
        }
    }
}
