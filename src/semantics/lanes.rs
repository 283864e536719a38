//! The concrete semantics on [`LANES`] test states at once: a value is one
//! `u64` per test, a boolean one bit per test.
//!
//! The superoptimizer runs every candidate on the same set of tests. Read
//! with [`super::concrete::Concrete`] that is one dispatch on the
//! instruction per test; read here it is one dispatch per instruction and a
//! loop over the tests for each operation, which the compiler can
//! vectorize. The per-value arithmetic is still [`eval_bin`], [`eval_un`]
//! and [`eval_cmp`]: this module only moves the dispatch on the operation
//! out of the loop.
//!
//! Memory is read-only: the search pool has loads but no stores, so a store
//! faults (a candidate with one is rejected, never accepted).

use super::concrete::{eval_bin, eval_cmp, eval_un, Machine, Memory};
use super::domain::{BinOp, CmpOp, Domain, Fault, Flags, UnOp};
use super::exec::Regs;

/// Tests evaluated together.
pub const LANES: usize = 16;

/// One value per test.
pub type Lane = [u64; LANES];

/// One boolean per test (bit k for test k).
pub type Mask = u16;

/// All lanes true.
pub const ALL: Mask = Mask::MAX;

/// Registers and flags of [`LANES`] tests.
pub type LaneMachine = Regs<Lane, Mask>;

/// The lane domain: shared read-only memory.
#[derive(Clone, Debug, Default)]
pub struct Lanes {
    pub mem: Memory,
}

#[inline(always)]
fn map1(a: &Lane, f: impl Fn(u64) -> u64) -> Lane {
    std::array::from_fn(|k| f(a[k]))
}

#[inline(always)]
fn map2(a: &Lane, b: &Lane, f: impl Fn(u64, u64) -> u64) -> Lane {
    std::array::from_fn(|k| f(a[k], b[k]))
}

#[inline(always)]
fn mask(f: impl Fn(usize) -> bool) -> Mask {
    (0..LANES).fold(0, |m, k| m | (f(k) as Mask) << k)
}

/// Which lanes of `a` and `b` are equal.
#[inline]
pub fn equal(a: &Lane, b: &Lane) -> Mask {
    mask(|k| eval_cmp(CmpOp::Eq, a[k], b[k]))
}

/// Up to [`LANES`] booleans as a mask; missing lanes repeat the first, as
/// [`gather`] pads.
pub fn bits(values: &[bool]) -> Mask {
    mask(|k| values[if k < values.len() { k } else { 0 }])
}

/// Dispatch once on a constant operation, then run it on every lane.
macro_rules! per_lane_bin {
    ($op:expr, $a:expr, $b:expr, [$($v:ident),*]) => {
        match $op {
            $(BinOp::$v => map2($a, $b, |x, y| eval_bin(BinOp::$v, x, y)),)*
        }
    };
}

impl Domain for Lanes {
    type Bv = Lane;
    type Bool = Mask;

    #[inline]
    fn lit(&mut self, v: u64) -> Lane {
        [v; LANES]
    }
    #[inline]
    fn bool_lit(&mut self, b: bool) -> Mask {
        if b {
            ALL
        } else {
            0
        }
    }
    #[inline]
    fn bin(&mut self, op: BinOp, a: &Lane, b: &Lane) -> Lane {
        per_lane_bin!(
            op,
            a,
            b,
            [Add, Sub, Mul, UMulH, SMulH, UDiv, SDiv, And, Or, Xor, Shl, LShr, AShr, Ror]
        )
    }
    #[inline]
    fn un(&mut self, op: UnOp, a: &Lane) -> Lane {
        match op {
            UnOp::Not => map1(a, |x| eval_un(UnOp::Not, x)),
            UnOp::Neg => map1(a, |x| eval_un(UnOp::Neg, x)),
            UnOp::Clz => map1(a, |x| eval_un(UnOp::Clz, x)),
            UnOp::Rbit => map1(a, |x| eval_un(UnOp::Rbit, x)),
            UnOp::Rev => map1(a, |x| eval_un(UnOp::Rev, x)),
            UnOp::Sext(n) => map1(a, |x| eval_un(UnOp::Sext(n), x)),
            UnOp::Zext(n) => map1(a, |x| eval_un(UnOp::Zext(n), x)),
        }
    }
    #[inline]
    fn cmp(&mut self, op: CmpOp, a: &Lane, b: &Lane) -> Mask {
        match op {
            CmpOp::Eq => equal(a, b),
            CmpOp::Ult => mask(|k| eval_cmp(CmpOp::Ult, a[k], b[k])),
            CmpOp::Slt => mask(|k| eval_cmp(CmpOp::Slt, a[k], b[k])),
        }
    }
    #[inline]
    fn ite(&mut self, c: &Mask, t: &Lane, e: &Lane) -> Lane {
        std::array::from_fn(|k| if c >> k & 1 == 1 { t[k] } else { e[k] })
    }
    #[inline]
    fn and(&mut self, a: &Mask, b: &Mask) -> Mask {
        a & b
    }
    #[inline]
    fn or(&mut self, a: &Mask, b: &Mask) -> Mask {
        a | b
    }
    #[inline]
    fn not(&mut self, a: &Mask) -> Mask {
        !a
    }
    #[inline]
    fn bit(&mut self, a: &Lane, i: u32) -> Mask {
        mask(|k| a[k] >> i & 1 == 1)
    }
    #[inline]
    fn bool_to_bv(&mut self, b: &Mask) -> Lane {
        std::array::from_fn(|k| (b >> k & 1) as u64)
    }
    fn load(&mut self, addr: &Lane, bytes: u8) -> Result<Lane, Fault> {
        let mut out = [0; LANES];
        for (o, &a) in out.iter_mut().zip(addr) {
            *o = self.mem.load(a, bytes)?;
        }
        Ok(out)
    }
    fn store(&mut self, addr: &Lane, _bytes: u8, _v: &Lane) -> Result<(), Fault> {
        Err(Fault::Memory { addr: addr[0] })
    }
}

/// Gather up to [`LANES`] machines into one; missing lanes repeat the
/// first machine (a duplicate test changes no verdict).
pub fn gather(ms: &[Machine]) -> LaneMachine {
    let at = |k: usize| &ms[if k < ms.len() { k } else { 0 }];
    let lane = |f: &dyn Fn(&Machine) -> u64| std::array::from_fn(|k| f(at(k)));
    let flag = |f: &dyn Fn(&Machine) -> bool| bits(&ms.iter().map(f).collect::<Vec<_>>());
    Regs {
        x: std::array::from_fn(|r| lane(&|m| m.x[r])),
        sp: lane(&|m| m.sp),
        flags: Flags {
            n: flag(&|m| m.flags.n),
            z: flag(&|m| m.flags.z),
            c: flag(&|m| m.flags.c),
            v: flag(&|m| m.flags.v),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Insn;
    use crate::semantics::concrete::Concrete;
    use crate::semantics::exec::step;
    use crate::semantics::inst::Inst;

    /// Lane `k` of `m` as one machine.
    pub fn lane(m: &LaneMachine, k: usize) -> Machine {
        Regs {
            x: std::array::from_fn(|r| m.x[r][k]),
            sp: m.sp[k],
            flags: Flags {
                n: m.flags.n >> k & 1 == 1,
                z: m.flags.z >> k & 1 == 1,
                c: m.flags.c >> k & 1 == 1,
                v: m.flags.v >> k & 1 == 1,
            },
        }
    }

    /// Every lane of the lane reading equals the one-test reading.
    #[test]
    fn lanes_agree_with_the_concrete_reading() {
        let lines = [
            "adds x0, x1, #1",
            "subs w2, w1, w3",
            "csel x4, x1, x3, lt",
            "cneg w5, w3, mi",
            "ubfx x6, x1, #4, #8",
            "sbfiz x7, x3, #3, #20",
            "udiv w8, w1, w3",
            "sdiv x9, x1, x3",
            "ccmp x1, #5, #2, ne",
            "eor x10, x1, x3, ror #7",
            "umulh x11, x1, x3",
            "clz w12, w3",
            "tbnz x1, #63, .L1",
            "ldrsh x13, [x14, #2]",
        ];
        let mem = Memory {
            base: 0x1000,
            bytes: (0..64).map(|b| b * 37).collect(),
        };
        let ms: Vec<Machine> = (0..LANES as u64)
            .map(|k| {
                let mut m = Machine::zeroed();
                for r in 0..31 {
                    m.x[r] = (k + 1)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .rotate_left(r as u32 * 5)
                        ^ if k % 3 == 0 { u64::MAX } else { 0 };
                }
                m.x[3] = [0, 1, u64::MAX, 7][k as usize % 4] ^ m.x[3] >> 60;
                m.x[14] = 0x1000 + 2 * k;
                m.set_nzcv(k << 28);
                m
            })
            .collect();
        for l in lines {
            let inst = Inst::decode(&Insn::parse_plain(l).unwrap()).unwrap();
            let mut lanes = gather(&ms);
            let taken = step(&mut Lanes { mem: mem.clone() }, &mut lanes, &inst).unwrap();
            for (k, m) in ms.iter().enumerate() {
                let mut one = m.clone();
                let t = step(&mut Concrete { mem: mem.clone() }, &mut one, &inst).unwrap();
                assert_eq!(lane(&lanes, k), one, "{l}, lane {k}");
                assert_eq!(taken.map(|t| t >> k & 1 == 1), t, "{l}, lane {k}");
            }
        }
    }

    #[test]
    fn a_fault_in_one_lane_faults_and_stores_fault() {
        let mut ms = vec![Machine::zeroed(); 2];
        ms[0].x[1] = 0x1000;
        ms[1].x[1] = 0x2000;
        let mut lanes = gather(&ms);
        let mem = Memory {
            base: 0x1000,
            bytes: vec![0; 16],
        };
        let mut d = Lanes { mem };
        let ld = Inst::decode(&Insn::parse_plain("ldr x0, [x1]").unwrap()).unwrap();
        assert!(step(&mut d, &mut lanes, &ld).is_err());
        let st = Inst::decode(&Insn::parse_plain("str x0, [x1]").unwrap()).unwrap();
        assert!(step(&mut d, &mut gather(&ms[..1]), &st).is_err());
    }
}
