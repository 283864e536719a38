//! The SMT reading of the semantics: [`Domain`] instantiated with Z3 64-bit
//! vectors and booleans, so that running [`crate::semantics::exec::step`]
//! builds the formula of what a block computes instead of a value.
//!
//! Memory maps 64-bit addresses to bytes. Original and candidate start from
//! the same initial contents and the same map of which bytes exist
//! (`mapped`), both uninterpreted functions of the address ([`Initial`]):
//! the map is left unconstrained, so a proof holds for every memory layout,
//! and a rewrite that touches one byte the original did not (or drops an
//! access that could fault) is not equivalent, as the validator judges it
//! (a run that faults is compared by its exit alone). Each run keeps its
//! stores as a list ([`Memory`]): a load reads the newest store to its
//! address, else the initial contents, and the list is the set of written
//! addresses the validator compares. No array theory: with the functions
//! Ackermann-reduced, a query stays in bit-vectors, where Z3 bit-blasts
//! (with arrays, a multiply in a block with stores ran past the timeout).
//!
//! Products and quotients can be read as uninterpreted functions instead
//! ([`Smt::new`]'s `abstract_arith`): see [`super::Prover`] for why.

use crate::semantics::domain::{BinOp, CmpOp, Domain, Fault, UnOp};
use z3::ast::{Ast, Bool, BV};
use z3::{Context, FuncDecl, Sort};

/// What both runs start from in memory: its contents and which bytes are
/// mapped, as functions of the address. (Z3 identifies declarations by
/// name, so every `Initial` of a context is the same one.)
pub struct Initial<'ctx> {
    contents: FuncDecl<'ctx>,
    mapped: FuncDecl<'ctx>,
}

impl<'ctx> Initial<'ctx> {
    pub fn new(ctx: &'ctx Context) -> Initial<'ctx> {
        let addr = Sort::bitvector(ctx, 64);
        Initial {
            contents: FuncDecl::new(ctx, "mem", &[&addr], &Sort::bitvector(ctx, 8)),
            mapped: FuncDecl::new(ctx, "mapped", &[&addr], &Sort::bool(ctx)),
        }
    }

    /// The byte at `a` before either run.
    pub fn byte(&self, a: &BV<'ctx>) -> BV<'ctx> {
        self.contents.apply(&[a]).as_bv().expect("bytes")
    }

    /// Whether the byte at `a` may be accessed without a fault.
    pub fn mapped(&self, a: &BV<'ctx>) -> Bool<'ctx> {
        self.mapped.apply(&[a]).as_bool().expect("booleans")
    }
}

/// The memory side of one run.
#[derive(Clone, Debug)]
pub struct Memory<'ctx> {
    /// Its stores, oldest first: (byte address, byte).
    pub writes: Vec<(BV<'ctx>, BV<'ctx>)>,
    /// Whether an access so far touched a byte that is not mapped: the run
    /// faulted there, and nothing after the fault is observable.
    pub faulted: Bool<'ctx>,
    /// Every byte address accessed, in order (to name the faulting one).
    pub touched: Vec<BV<'ctx>>,
}

impl<'ctx> Memory<'ctx> {
    /// The byte at `a` now: the newest store to it, else the initial one.
    pub fn byte(&self, init: &Initial<'ctx>, a: &BV<'ctx>) -> BV<'ctx> {
        self.writes
            .iter()
            .fold(init.byte(a), |v, (w, b)| a._eq(w).ite(b, &v))
    }

    /// Whether this run wrote the byte at `a`.
    pub fn written(&self, ctx: &'ctx Context, a: &BV<'ctx>) -> Bool<'ctx> {
        let hits: Vec<Bool<'ctx>> = self.writes.iter().map(|(w, _)| a._eq(w)).collect();
        Bool::or(ctx, &hits.iter().collect::<Vec<_>>())
    }
}

/// The domain: Z3 terms over the symbolic initial state.
pub struct Smt<'ctx> {
    ctx: &'ctx Context,
    init: Initial<'ctx>,
    pub mem: Memory<'ctx>,
    /// With `Some`, `mul`, `umulh`, `smulh`, `udiv` and `sdiv` are these
    /// uninterpreted functions (Z3 shares a declaration by name, so both
    /// runs apply the same ones).
    uninterpreted: Option<[FuncDecl<'ctx>; 5]>,
    /// Whether an operation was read as an uninterpreted function.
    pub abstracted: bool,
}

impl<'ctx> Smt<'ctx> {
    /// A run from the [`Initial`] memory; with `abstract_arith`, products
    /// and quotients are uninterpreted.
    pub fn new(ctx: &'ctx Context, abstract_arith: bool) -> Smt<'ctx> {
        let addr = Sort::bitvector(ctx, 64);
        let f = |name: &str| FuncDecl::new(ctx, name, &[&addr, &addr], &addr);
        Smt {
            ctx,
            uninterpreted: abstract_arith.then(|| ["mul", "umulh", "smulh", "udiv", "sdiv"].map(f)),
            abstracted: false,
            init: Initial::new(ctx),
            mem: Memory {
                writes: Vec::new(),
                faulted: Bool::from_bool(ctx, false),
                touched: Vec::new(),
            },
        }
    }

    fn bv(&self, v: u64) -> BV<'ctx> {
        BV::from_u64(self.ctx, v, 64)
    }

    /// The byte addresses of an access of `bytes` bytes at `addr`; each one
    /// that is not mapped makes the run fault.
    fn access(&mut self, addr: &BV<'ctx>, bytes: u8) -> Vec<BV<'ctx>> {
        let at: Vec<BV<'ctx>> = (0..bytes as u64)
            .map(|k| {
                if k == 0 {
                    addr.clone()
                } else {
                    addr.bvadd(&self.bv(k))
                }
            })
            .collect();
        for a in &at {
            let ok = self.init.mapped(a);
            self.mem.faulted = Bool::or(self.ctx, &[&self.mem.faulted, &ok.not()]);
        }
        self.mem.touched.extend(at.iter().cloned());
        at
    }

    /// A shift or rotate amount, taken modulo 64 as the domain requires.
    fn amount(&self, b: &BV<'ctx>) -> BV<'ctx> {
        b.bvand(&self.bv(63))
    }
}

impl<'ctx> Domain for Smt<'ctx> {
    type Bv = BV<'ctx>;
    type Bool = Bool<'ctx>;

    fn lit(&mut self, v: u64) -> BV<'ctx> {
        self.bv(v)
    }
    fn bool_lit(&mut self, b: bool) -> Bool<'ctx> {
        Bool::from_bool(self.ctx, b)
    }
    fn bin(&mut self, op: BinOp, a: &BV<'ctx>, b: &BV<'ctx>) -> BV<'ctx> {
        let slot = match op {
            BinOp::Mul => Some(0),
            BinOp::UMulH => Some(1),
            BinOp::SMulH => Some(2),
            BinOp::UDiv => Some(3),
            BinOp::SDiv => Some(4),
            _ => None,
        };
        if let (Some(k), Some(fs)) = (slot, &self.uninterpreted) {
            self.abstracted = true;
            return fs[k].apply(&[a, b]).as_bv().expect("a bit-vector function");
        }
        match op {
            BinOp::Add => a.bvadd(b),
            BinOp::Sub => a.bvsub(b),
            BinOp::Mul => a.bvmul(b),
            BinOp::UMulH => a.zero_ext(64).bvmul(&b.zero_ext(64)).extract(127, 64),
            BinOp::SMulH => a.sign_ext(64).bvmul(&b.sign_ext(64)).extract(127, 64),
            // SMT-LIB divides by zero to all ones (udiv) or ±1 (sdiv);
            // AArch64 gives 0. INT64_MIN / -1 wraps in both.
            BinOp::UDiv | BinOp::SDiv => {
                let zero = self.bv(0);
                let q = if op == BinOp::UDiv {
                    a.bvudiv(b)
                } else {
                    a.bvsdiv(b)
                };
                b._eq(&zero).ite(&zero, &q)
            }
            BinOp::And => a.bvand(b),
            BinOp::Or => a.bvor(b),
            BinOp::Xor => a.bvxor(b),
            BinOp::Shl => a.bvshl(&self.amount(b)),
            BinOp::LShr => a.bvlshr(&self.amount(b)),
            BinOp::AShr => a.bvashr(&self.amount(b)),
            BinOp::Ror => a.bvrotr(&self.amount(b)),
        }
    }
    fn un(&mut self, op: UnOp, a: &BV<'ctx>) -> BV<'ctx> {
        match op {
            UnOp::Not => a.bvnot(),
            UnOp::Neg => a.bvneg(),
            UnOp::Clz => {
                // The highest set bit decides: scan upwards, later bits win.
                let mut r = self.bv(64);
                for i in 0..64u32 {
                    let set = self.bit(a, i);
                    r = set.ite(&self.bv(63 - i as u64), &r);
                }
                r
            }
            UnOp::Rbit => (1..64u32).fold(a.extract(0, 0), |r, i| r.concat(&a.extract(i, i))),
            UnOp::Rev => (1..8u32).fold(a.extract(7, 0), |r, i| {
                r.concat(&a.extract(8 * i + 7, 8 * i))
            }),
            UnOp::Sext(n) | UnOp::Zext(n) if n >= 64 => a.clone(),
            UnOp::Sext(n) => a.extract(n as u32 - 1, 0).sign_ext(64 - n as u32),
            UnOp::Zext(n) => a.extract(n as u32 - 1, 0).zero_ext(64 - n as u32),
        }
    }
    fn cmp(&mut self, op: CmpOp, a: &BV<'ctx>, b: &BV<'ctx>) -> Bool<'ctx> {
        match op {
            CmpOp::Eq => a._eq(b),
            CmpOp::Ult => a.bvult(b),
            CmpOp::Slt => a.bvslt(b),
        }
    }
    fn ite(&mut self, c: &Bool<'ctx>, t: &BV<'ctx>, e: &BV<'ctx>) -> BV<'ctx> {
        c.ite(t, e)
    }
    fn and(&mut self, a: &Bool<'ctx>, b: &Bool<'ctx>) -> Bool<'ctx> {
        Bool::and(self.ctx, &[a, b])
    }
    fn or(&mut self, a: &Bool<'ctx>, b: &Bool<'ctx>) -> Bool<'ctx> {
        Bool::or(self.ctx, &[a, b])
    }
    fn not(&mut self, a: &Bool<'ctx>) -> Bool<'ctx> {
        a.not()
    }
    fn bit(&mut self, a: &BV<'ctx>, i: u32) -> Bool<'ctx> {
        a.extract(i, i)._eq(&BV::from_u64(self.ctx, 1, 1))
    }
    fn bool_to_bv(&mut self, b: &Bool<'ctx>) -> BV<'ctx> {
        b.ite(&self.bv(1), &self.bv(0))
    }
    /// Never a fault here: a fault is a condition on the initial state,
    /// accumulated in [`Memory::faulted`].
    fn load(&mut self, addr: &BV<'ctx>, bytes: u8) -> Result<BV<'ctx>, Fault> {
        let at = self.access(addr, bytes);
        let mut v: Option<BV<'ctx>> = None;
        for a in &at {
            let byte = self.mem.byte(&self.init, a);
            // Little-endian: each later byte goes above the ones read so far.
            v = Some(match v {
                None => byte,
                Some(lo) => byte.concat(&lo),
            });
        }
        let v = v.expect("an access reads at least one byte");
        let width = v.get_size();
        Ok(if width < 64 {
            v.zero_ext(64 - width)
        } else {
            v
        })
    }
    fn store(&mut self, addr: &BV<'ctx>, bytes: u8, v: &BV<'ctx>) -> Result<(), Fault> {
        let at = self.access(addr, bytes);
        for (k, a) in at.into_iter().enumerate() {
            let k = k as u32;
            self.mem.writes.push((a, v.extract(8 * k + 7, 8 * k)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The SMT domain agrees with the concrete one (itself checked against
    //! Unicorn) on every operation, at boundary and random values: a proof
    //! is only as good as this agreement.

    use super::*;
    use crate::semantics::concrete::{eval_bin, eval_un};
    use z3::Config;

    const BIN: [BinOp; 14] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::UMulH,
        BinOp::SMulH,
        BinOp::UDiv,
        BinOp::SDiv,
        BinOp::And,
        BinOp::Or,
        BinOp::Xor,
        BinOp::Shl,
        BinOp::LShr,
        BinOp::AShr,
        BinOp::Ror,
    ];

    fn values() -> Vec<u64> {
        let mut v = vec![
            0,
            1,
            2,
            3,
            31,
            32,
            63,
            64,
            65,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            u32::MAX as u64,
            1 << 31,
            0x8000_0000_0000_0001,
            0x0123_4567_89ab_cdef,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x);
        }
        v
    }

    fn value(t: &BV) -> u64 {
        t.simplify().as_u64().expect("a literal")
    }

    #[test]
    fn operations_agree_with_the_concrete_domain() {
        let ctx = Context::new(&Config::new());
        let mut d = Smt::new(&ctx, false);
        let vs = values();
        for &a in &vs {
            let ta = d.lit(a);
            for &b in &vs {
                let tb = d.lit(b);
                for op in BIN {
                    let got = value(&d.bin(op, &ta, &tb));
                    assert_eq!(got, eval_bin(op, a, b), "{op:?} {a:#x} {b:#x}");
                }
                for (op, want) in [
                    (CmpOp::Eq, a == b),
                    (CmpOp::Ult, a < b),
                    (CmpOp::Slt, (a as i64) < (b as i64)),
                ] {
                    let got = d.cmp(op, &ta, &tb).simplify().as_bool();
                    assert_eq!(got, Some(want), "{op:?} {a:#x} {b:#x}");
                }
            }
            let mut ops = vec![UnOp::Not, UnOp::Neg, UnOp::Clz, UnOp::Rbit, UnOp::Rev];
            for n in [1, 8, 16, 31, 32, 63, 64] {
                ops.push(UnOp::Sext(n));
                ops.push(UnOp::Zext(n));
            }
            for op in ops {
                assert_eq!(value(&d.un(op, &ta)), eval_un(op, a), "{op:?} {a:#x}");
            }
            for i in [0, 1, 31, 32, 63] {
                let got = d.bit(&ta, i).simplify().as_bool();
                assert_eq!(got, Some(a >> i & 1 == 1));
            }
        }
    }

    #[test]
    fn memory_is_little_endian_and_records_writes() {
        let ctx = Context::new(&Config::new());
        let mut d = Smt::new(&ctx, false);
        let at = d.lit(0x1000);
        let v = d.lit(0x1122_3344_5566_7788);
        d.store(&at, 8, &v).unwrap();
        let at2 = d.lit(0x1002);
        assert_eq!(value(&d.load(&at2, 2).unwrap()), 0x5566);
        assert_eq!(value(&d.load(&at, 8).unwrap()), 0x1122_3344_5566_7788);
        let w = |d: &Smt, a: u64| {
            let a = BV::from_u64(&ctx, a, 64);
            d.mem.written(&ctx, &a).simplify().as_bool()
        };
        assert_eq!(w(&d, 0x1007), Some(true));
        assert_eq!(w(&d, 0x1008), Some(false));
        // Faults only where the (unconstrained) map says a byte is unmapped.
        assert_eq!(d.mem.touched.len(), 8 + 2 + 8);
        assert!(d.mem.faulted.simplify().as_bool().is_none());
    }
}
