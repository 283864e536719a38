//! The concrete reading of the semantics: `u64` registers, `bool` flags and
//! a flat memory region. This is the fast interpreter of straight-line
//! blocks that the superoptimizer evaluates candidates with; Unicorn stays
//! the reference it is tested against (`tests/semantics_vs_unicorn.rs`).

use super::domain::{BinOp, CmpOp, Domain, Fault, Flags, UnOp};
use super::exec::{step, Regs};
use super::inst::Inst;

/// Registers and flags with concrete values.
pub type Machine = Regs<u64, bool>;

impl Machine {
    /// All registers zero, flags clear.
    pub fn zeroed() -> Machine {
        Regs {
            x: [0; 31],
            sp: 0,
            flags: Flags {
                n: false,
                z: false,
                c: false,
                v: false,
            },
        }
    }

    /// NZCV as the `mrs x, nzcv` value (bits 31..28).
    pub fn nzcv(&self) -> u64 {
        let f = &self.flags;
        (f.n as u64) << 31 | (f.z as u64) << 30 | (f.c as u64) << 29 | (f.v as u64) << 28
    }

    pub fn set_nzcv(&mut self, v: u64) {
        self.flags = Flags {
            n: v >> 31 & 1 == 1,
            z: v >> 30 & 1 == 1,
            c: v >> 29 & 1 == 1,
            v: v >> 28 & 1 == 1,
        };
    }
}

/// A flat, byte-addressed memory region; accesses outside it fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl Memory {
    fn index(&self, addr: u64, len: u8) -> Result<usize, Fault> {
        let off = addr.wrapping_sub(self.base);
        if off
            .checked_add(len as u64)
            .is_some_and(|end| end <= self.bytes.len() as u64)
        {
            Ok(off as usize)
        } else {
            Err(Fault::Memory { addr })
        }
    }

    /// Little-endian load of `bytes` bytes at `addr`, zero-extended.
    pub fn load(&self, addr: u64, bytes: u8) -> Result<u64, Fault> {
        let i = self.index(addr, bytes)?;
        let mut v = 0u64;
        for (k, b) in self.bytes[i..i + bytes as usize].iter().enumerate() {
            v |= (*b as u64) << (8 * k);
        }
        Ok(v)
    }
}

/// The concrete domain: plain machine arithmetic.
#[derive(Clone, Debug, Default)]
pub struct Concrete {
    pub mem: Memory,
}

impl Domain for Concrete {
    type Bv = u64;
    type Bool = bool;

    #[inline]
    fn lit(&mut self, v: u64) -> u64 {
        v
    }
    #[inline]
    fn bool_lit(&mut self, b: bool) -> bool {
        b
    }
    #[inline]
    fn bin(&mut self, op: BinOp, a: &u64, b: &u64) -> u64 {
        eval_bin(op, *a, *b)
    }
    #[inline]
    fn un(&mut self, op: UnOp, a: &u64) -> u64 {
        eval_un(op, *a)
    }
    #[inline]
    fn cmp(&mut self, op: CmpOp, a: &u64, b: &u64) -> bool {
        eval_cmp(op, *a, *b)
    }
    #[inline]
    fn ite(&mut self, c: &bool, t: &u64, e: &u64) -> u64 {
        if *c {
            *t
        } else {
            *e
        }
    }
    #[inline]
    fn and(&mut self, a: &bool, b: &bool) -> bool {
        *a && *b
    }
    #[inline]
    fn or(&mut self, a: &bool, b: &bool) -> bool {
        *a || *b
    }
    #[inline]
    fn not(&mut self, a: &bool) -> bool {
        !*a
    }
    #[inline]
    fn bit(&mut self, a: &u64, i: u32) -> bool {
        a >> i & 1 == 1
    }
    #[inline]
    fn bool_to_bv(&mut self, b: &bool) -> u64 {
        *b as u64
    }
    fn load(&mut self, addr: &u64, bytes: u8) -> Result<u64, Fault> {
        self.mem.load(*addr, bytes)
    }
    fn store(&mut self, addr: &u64, bytes: u8, v: &u64) -> Result<(), Fault> {
        let i = self.mem.index(*addr, bytes)?;
        for (k, b) in self.mem.bytes[i..i + bytes as usize].iter_mut().enumerate() {
            *b = (v >> (8 * k)) as u8;
        }
        Ok(())
    }
}

/// A binary operation on concrete values (AArch64's division rules).
#[inline]
pub fn eval_bin(op: BinOp, a: u64, b: u64) -> u64 {
    match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::UMulH => ((a as u128 * b as u128) >> 64) as u64,
        BinOp::SMulH => ((a as i64 as i128 * b as i64 as i128) >> 64) as u64,
        BinOp::UDiv => a.checked_div(b).unwrap_or(0),
        BinOp::SDiv => match b {
            0 => 0,
            _ => (a as i64).wrapping_div(b as i64) as u64,
        },
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a << (b & 63),
        BinOp::LShr => a >> (b & 63),
        BinOp::AShr => ((a as i64) >> (b & 63)) as u64,
        BinOp::Ror => a.rotate_right((b & 63) as u32),
    }
}

/// A comparison of concrete values.
#[inline]
pub fn eval_cmp(op: CmpOp, a: u64, b: u64) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ult => a < b,
        CmpOp::Slt => (a as i64) < (b as i64),
    }
}

/// A unary operation on concrete values.
#[inline]
pub fn eval_un(op: UnOp, a: u64) -> u64 {
    match op {
        UnOp::Not => !a,
        UnOp::Neg => a.wrapping_neg(),
        UnOp::Clz => a.leading_zeros() as u64,
        UnOp::Rbit => a.reverse_bits(),
        UnOp::Rev => a.swap_bytes(),
        UnOp::Sext(n) if n >= 64 => a,
        UnOp::Sext(n) => (((a << (64 - n)) as i64) >> (64 - n)) as u64,
        UnOp::Zext(n) if n >= 64 => a,
        UnOp::Zext(n) => a & ((1u64 << n) - 1),
    }
}

/// How a straight-line block ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Ran off its end (or its final branch was not taken).
    FellThrough,
    /// Its final branch was taken.
    Branched,
}

/// Run a block whose only branch, if any, is its last instruction.
pub fn run(block: &[Inst], regs: &mut Machine, dom: &mut Concrete) -> Result<Ending, Fault> {
    let mut ending = Ending::FellThrough;
    for i in block {
        if let Some(taken) = step(dom, regs, i)? {
            ending = if taken {
                Ending::Branched
            } else {
                Ending::FellThrough
            };
        }
    }
    Ok(ending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Insn;

    fn run_text(lines: &[&str], m: &mut Machine) -> Ending {
        let block: Vec<Inst> = lines
            .iter()
            .map(|l| Inst::decode(&Insn::parse_plain(l).unwrap()).unwrap())
            .collect();
        run(&block, m, &mut Concrete::default()).unwrap()
    }

    #[test]
    fn arithmetic_flags_and_w_forms() {
        let mut m = Machine::zeroed();
        m.x[1] = u64::MAX;
        run_text(&["adds x0, x1, #1"], &mut m);
        assert_eq!(m.x[0], 0);
        assert_eq!(m.nzcv() >> 28, 0b0110);
        m.x[1] = 0xffff_ffff_8000_0000;
        run_text(&["subs w0, w1, #1"], &mut m);
        assert_eq!(m.x[0], 0x7fff_ffff);
        assert_eq!(m.nzcv() >> 28, 0b0011, "no borrow, signed overflow");
        run_text(&["mov x2, #-1", "add w3, w2, w2"], &mut m);
        assert_eq!(m.x[3], 0xffff_fffe, "w write zeroes the upper half");
    }

    #[test]
    fn division_and_bitfields() {
        let mut m = Machine::zeroed();
        m.x[1] = i64::MIN as u64;
        m.x[2] = u64::MAX;
        run_text(&["sdiv x0, x1, x2", "udiv x3, x1, xzr"], &mut m);
        assert_eq!((m.x[0], m.x[3]), (i64::MIN as u64, 0));
        m.x[1] = 0xabcd;
        run_text(
            &[
                "ubfx x0, x1, #4, #8",
                "sbfx x3, x1, #8, #8",
                "bfi x1, x1, #16, #4",
            ],
            &mut m,
        );
        assert_eq!(m.x[0], 0xbc);
        assert_eq!(m.x[3], 0xffff_ffff_ffff_ffab);
        assert_eq!(m.x[1], 0xdabcd);
        m.x[4] = 0x0123_4567_89ab_cdef;
        run_text(
            &["rev32 x5, x4", "rev16 w6, w4", "clz w7, w4", "cls x8, x4"],
            &mut m,
        );
        assert_eq!(m.x[5], 0x6745_2301_efcd_ab89);
        assert_eq!(m.x[6], 0xab89_efcd);
        assert_eq!((m.x[7], m.x[8]), (0, 6));
    }

    #[test]
    fn conditions_and_branches() {
        let mut m = Machine::zeroed();
        m.x[0] = 5;
        m.x[1] = 7;
        let e = run_text(
            &["cmp x0, x1", "cset w2, lt", "cneg x3, x1, lt", "b.ge .L1"],
            &mut m,
        );
        assert_eq!((m.x[2], m.x[3] as i64, e), (1, -7, Ending::FellThrough));
        assert_eq!(run_text(&["tbnz x3, #63, .L2"], &mut m), Ending::Branched);
        run_text(&["ccmp x0, #5, #0, ne"], &mut m);
        assert_eq!(m.nzcv() >> 28, 0b0110, "ne held: compare 5 with 5");
    }

    #[test]
    fn memory_and_writeback() {
        let mut m = Machine::zeroed();
        let mut dom = Concrete {
            mem: Memory {
                base: 0x1000,
                bytes: (0..64).collect(),
            },
        };
        m.x[1] = 0x1000;
        let block: Vec<Inst> = [
            "ldp w2, w3, [x1, #4]!",
            "ldrsb x4, [x1], #-4",
            "strh w4, [x1, #62]",
        ]
        .iter()
        .map(|l| Inst::decode(&Insn::parse_plain(l).unwrap()).unwrap())
        .collect();
        run(&block, &mut m, &mut dom).unwrap();
        assert_eq!((m.x[2], m.x[3]), (0x0706_0504, 0x0b0a_0908));
        assert_eq!((m.x[1], m.x[4]), (0x1000, 4));
        assert_eq!(&dom.mem.bytes[62..64], &[4, 0]);
        m.x[1] = 0x2000;
        assert_eq!(
            run(&block, &mut m, &mut dom),
            Err(Fault::Memory { addr: 0x2004 })
        );
    }
}
