//! What each decoded instruction computes: the project's one executable
//! semantics of the integer AArch64 subset, written once over a
//! [`Domain`] (see that trait for the instances).
//!
//! The definitions follow the Arm ARM's pseudocode (AddWithCarry, the
//! bitfield move, ConditionHolds), specialised to the 64-bit carrier the
//! domain provides: a 32-bit form reads the low halves of its sources and
//! its result is zero-extended, as the architecture writes a `w` register.

use super::domain::{BinOp, CmpOp, Domain, Fault, Flags, UnOp};
use super::inst::*;
use crate::asm::Cond;

/// The register state a block reads and writes (memory lives in the domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regs<V, B> {
    /// x0–x30.
    pub x: [V; 31],
    pub sp: V,
    pub flags: Flags<B>,
}

/// What an instruction does to control: branches give whether they are taken.
pub type Taken<D> = Option<<D as Domain>::Bool>;

type St<D> = Regs<<D as Domain>::Bv, <D as Domain>::Bool>;

/// Execute one instruction.
pub fn step<D: Domain>(d: &mut D, s: &mut St<D>, i: &Inst) -> Result<Taken<D>, Fault> {
    let sf = i.sf;
    match i.op {
        Op::AddSub {
            sub,
            flags,
            rd,
            rn,
            op2,
        } => {
            let a = read(d, s, rn, sf);
            let b = operand2(d, s, op2, sf);
            let sum = add_sub(d, &a, &b, sub, None, sf);
            if flags {
                s.flags = sum_flags(d, &a, &sum, sf);
            }
            write(d, s, rd, sf, sum.r);
        }
        Op::Carry {
            sub,
            flags,
            rd,
            rn,
            rm,
        } => {
            let a = read(d, s, rn, sf);
            let b = read(d, s, rm, sf);
            let c = s.flags.c.clone();
            let sum = add_sub(d, &a, &b, sub, Some(c), sf);
            if flags {
                s.flags = sum_flags(d, &a, &sum, sf);
            }
            write(d, s, rd, sf, sum.r);
        }
        Op::Logic {
            kind,
            invert,
            flags,
            rd,
            rn,
            op2,
        } => {
            let a = read(d, s, rn, sf);
            let mut b = operand2(d, s, op2, sf);
            if invert {
                b = d.un(UnOp::Not, &b);
                b = trunc(d, &b, sf);
            }
            let op = match kind {
                LogicKind::And => BinOp::And,
                LogicKind::Orr => BinOp::Or,
                LogicKind::Eor => BinOp::Xor,
            };
            let r = d.bin(op, &a, &b);
            if flags {
                s.flags = logic_flags(d, &r, sf);
            }
            write(d, s, rd, sf, r);
        }
        Op::MovImm { rd, value } => {
            let v = d.lit(value);
            write(d, s, rd, sf, v);
        }
        Op::Movk { rd, imm16, shift } => {
            let old = read(d, s, rd, sf);
            let keep = d.lit(!(0xffffu64 << shift));
            let kept = d.bin(BinOp::And, &old, &keep);
            let new = d.lit((imm16 as u64) << shift);
            let r = d.bin(BinOp::Or, &kept, &new);
            write(d, s, rd, sf, r);
        }
        Op::Shift {
            kind,
            rd,
            rn,
            amount,
        } => {
            let v = read(d, s, rn, sf);
            let amt = match amount {
                ShiftAmount::Imm(a) => d.lit(a as u64),
                ShiftAmount::Reg(rm) => {
                    let a = read(d, s, rm, sf);
                    let m = d.lit(width(sf) - 1);
                    d.bin(BinOp::And, &a, &m)
                }
            };
            let r = shift(d, kind, &v, &amt, sf);
            write(d, s, rd, sf, r);
        }
        Op::Extr { rd, rn, rm, lsb } => {
            let hi = read(d, s, rn, sf);
            let lo = read(d, s, rm, sf);
            let r = extr(d, &hi, &lo, lsb, sf);
            write(d, s, rd, sf, r);
        }
        Op::Bfm {
            kind,
            rd,
            rn,
            immr,
            imms,
        } => {
            let src = read(d, s, rn, sf);
            let dst = read(d, s, rd, sf);
            let r = bitfield(d, kind, &src, &dst, immr, imms, sf);
            write(d, s, rd, sf, r);
        }
        Op::MulAdd {
            sub,
            rd,
            rn,
            rm,
            ra,
        } => {
            let a = read(d, s, rn, sf);
            let b = read(d, s, rm, sf);
            let acc = read(d, s, ra, sf);
            let p = d.bin(BinOp::Mul, &a, &b);
            let r = d.bin(if sub { BinOp::Sub } else { BinOp::Add }, &acc, &p);
            write(d, s, rd, sf, r);
        }
        Op::MulLong {
            signed,
            sub,
            rd,
            rn,
            rm,
            ra,
        } => {
            let ext = if signed {
                UnOp::Sext(32)
            } else {
                UnOp::Zext(32)
            };
            let a = read(d, s, rn, false);
            let a = d.un(ext, &a);
            let b = read(d, s, rm, false);
            let b = d.un(ext, &b);
            let acc = read(d, s, ra, true);
            let p = d.bin(BinOp::Mul, &a, &b);
            let r = d.bin(if sub { BinOp::Sub } else { BinOp::Add }, &acc, &p);
            write(d, s, rd, true, r);
        }
        Op::MulHigh { signed, rd, rn, rm } => {
            let a = read(d, s, rn, true);
            let b = read(d, s, rm, true);
            let r = d.bin(if signed { BinOp::SMulH } else { BinOp::UMulH }, &a, &b);
            write(d, s, rd, true, r);
        }
        Op::Div { signed, rd, rn, rm } => {
            let mut a = read(d, s, rn, sf);
            let mut b = read(d, s, rm, sf);
            if signed && !sf {
                a = d.un(UnOp::Sext(32), &a);
                b = d.un(UnOp::Sext(32), &b);
            }
            let r = d.bin(if signed { BinOp::SDiv } else { BinOp::UDiv }, &a, &b);
            write(d, s, rd, sf, r);
        }
        Op::Unary { kind, rd, rn } => {
            let v = read(d, s, rn, sf);
            let r = unary(d, kind, &v, sf);
            write(d, s, rd, sf, r);
        }
        Op::CondSel {
            kind,
            rd,
            rn,
            rm,
            cond,
        } => {
            let c = cond_holds(d, &s.flags, cond);
            let t = read(d, s, rn, sf);
            let e = read(d, s, rm, sf);
            let e = match kind {
                SelKind::Csel => e,
                SelKind::Csinc => {
                    let one = d.lit(1);
                    d.bin(BinOp::Add, &e, &one)
                }
                SelKind::Csinv => d.un(UnOp::Not, &e),
                SelKind::Csneg => d.un(UnOp::Neg, &e),
            };
            let r = d.ite(&c, &t, &e);
            write(d, s, rd, sf, r);
        }
        Op::CondCmp {
            neg,
            rn,
            op2,
            nzcv,
            cond,
        } => {
            let c = cond_holds(d, &s.flags, cond);
            let a = read(d, s, rn, sf);
            let b = operand2(d, s, op2, sf);
            let sum = add_sub(d, &a, &b, !neg, None, sf);
            let f = sum_flags(d, &a, &sum, sf);
            s.flags = select_flags(d, &c, f, nzcv);
        }
        Op::Load {
            rt,
            rt2,
            bytes,
            signed,
            addr,
        } => {
            let at = address(d, s, &addr);
            let v = load(d, &at, bytes, signed)?;
            let v2 = match rt2 {
                Some(_) => {
                    let off = d.lit(bytes as u64);
                    let at2 = d.bin(BinOp::Add, &at, &off);
                    Some(load(d, &at2, bytes, signed)?)
                }
                None => None,
            };
            writeback(d, s, &addr, at);
            write(d, s, rt, sf, v);
            if let (Some(r2), Some(v2)) = (rt2, v2) {
                write(d, s, r2, sf, v2);
            }
        }
        Op::Store {
            rt,
            rt2,
            bytes,
            addr,
        } => {
            let at = address(d, s, &addr);
            let v = read(d, s, rt, true);
            d.store(&at, bytes, &v)?;
            if let Some(r2) = rt2 {
                let v2 = read(d, s, r2, true);
                let off = d.lit(bytes as u64);
                let at2 = d.bin(BinOp::Add, &at, &off);
                d.store(&at2, bytes, &v2)?;
            }
            writeback(d, s, &addr, at);
        }
        Op::BranchCond { cond } => return Ok(Some(cond_holds(d, &s.flags, cond))),
        Op::BranchZero { nonzero, rt } => {
            let v = read(d, s, rt, sf);
            let z = d.lit(0);
            let is_zero = d.cmp(CmpOp::Eq, &v, &z);
            return Ok(Some(if nonzero { d.not(&is_zero) } else { is_zero }));
        }
        Op::BranchBit { nonzero, rt, bit } => {
            let v = read(d, s, rt, sf);
            let set = d.bit(&v, bit as u32);
            return Ok(Some(if nonzero { set } else { d.not(&set) }));
        }
        Op::Nop => {}
    }
    Ok(None)
}

fn width(sf: bool) -> u64 {
    if sf {
        64
    } else {
        32
    }
}

/// Keep the operation's width: the low 32 bits for a 32-bit form.
fn trunc<D: Domain>(d: &mut D, v: &D::Bv, sf: bool) -> D::Bv {
    if sf {
        v.clone()
    } else {
        d.un(UnOp::Zext(32), v)
    }
}

/// Read a register as an operand of the given width.
pub fn read<D: Domain>(d: &mut D, s: &St<D>, r: R, sf: bool) -> D::Bv {
    let v = match r {
        ZR => return d.lit(0),
        SP => s.sp.clone(),
        n => s.x[n as usize].clone(),
    };
    trunc(d, &v, sf)
}

/// Write a result; a 32-bit write zeroes the upper half.
fn write<D: Domain>(d: &mut D, s: &mut St<D>, r: R, sf: bool, v: D::Bv) {
    let v = trunc(d, &v, sf);
    match r {
        ZR => {}
        SP => s.sp = v,
        n => s.x[n as usize] = v,
    }
}

fn operand2<D: Domain>(d: &mut D, s: &St<D>, op2: Operand2, sf: bool) -> D::Bv {
    match op2 {
        Operand2::Imm(v) => d.lit(v),
        Operand2::Shifted { rm, kind, amount } => {
            let v = read(d, s, rm, sf);
            if amount == 0 {
                return v;
            }
            let a = d.lit(amount as u64);
            shift(d, kind, &v, &a, sf)
        }
        Operand2::Extended { rm, ext, amount } => {
            let v = read(d, s, rm, true);
            let v = extend(d, &v, ext, amount);
            trunc(d, &v, sf)
        }
    }
}

fn extend<D: Domain>(d: &mut D, v: &D::Bv, ext: Extend, amount: u8) -> D::Bv {
    let v = match (ext.bits, ext.signed) {
        (64, _) => v.clone(),
        (b, true) => d.un(UnOp::Sext(b), v),
        (b, false) => d.un(UnOp::Zext(b), v),
    };
    if amount == 0 {
        return v;
    }
    let a = d.lit(amount as u64);
    d.bin(BinOp::Shl, &v, &a)
}

/// A shift of a width-sized value by an amount already below the width.
fn shift<D: Domain>(d: &mut D, kind: ShiftKind, v: &D::Bv, amt: &D::Bv, sf: bool) -> D::Bv {
    if sf {
        let op = match kind {
            ShiftKind::Lsl => BinOp::Shl,
            ShiftKind::Lsr => BinOp::LShr,
            ShiftKind::Asr => BinOp::AShr,
            ShiftKind::Ror => BinOp::Ror,
        };
        return d.bin(op, v, amt);
    }
    let r = match kind {
        ShiftKind::Lsl => d.bin(BinOp::Shl, v, amt),
        ShiftKind::Lsr => d.bin(BinOp::LShr, v, amt),
        ShiftKind::Asr => {
            let s = d.un(UnOp::Sext(32), v);
            d.bin(BinOp::AShr, &s, amt)
        }
        ShiftKind::Ror => {
            let thirty_two = d.lit(32);
            let back = d.bin(BinOp::Sub, &thirty_two, amt);
            let lo = d.bin(BinOp::LShr, v, amt);
            let hi = d.bin(BinOp::Shl, v, &back);
            d.bin(BinOp::Or, &lo, &hi)
        }
    };
    d.un(UnOp::Zext(32), &r)
}

/// AddWithCarry's result, with what its flags are computed from.
struct Sum<D: Domain> {
    /// The second addend: `b`, or `!b` for a subtraction.
    y: D::Bv,
    cin: D::Bool,
    /// `a + y + cin` on 64 bits.
    wide: D::Bv,
    /// The result at the operation's width.
    r: D::Bv,
}

/// AddWithCarry: `a + b` (or `a - b` as `a + !b + 1`), with the carry-in
/// of `adc`/`sbc` when given. The flags are a separate step
/// ([`sum_flags`]): most additions set none, and a domain that evaluates
/// many tests at once should not pay for them.
fn add_sub<D: Domain>(
    d: &mut D,
    a: &D::Bv,
    b: &D::Bv,
    sub: bool,
    carry: Option<D::Bool>,
    sf: bool,
) -> Sum<D> {
    let y = if sub {
        let n = d.un(UnOp::Not, b);
        trunc(d, &n, sf)
    } else {
        b.clone()
    };
    let cin = match carry {
        Some(c) => c,
        None => d.bool_lit(sub),
    };
    let cin_v = d.bool_to_bv(&cin);
    let xy = d.bin(BinOp::Add, a, &y);
    let wide = d.bin(BinOp::Add, &xy, &cin_v);
    let r = trunc(d, &wide, sf);
    Sum { y, cin, wide, r }
}

/// The NZCV flags AddWithCarry sets for `a` and the sum `s`.
fn sum_flags<D: Domain>(d: &mut D, a: &D::Bv, s: &Sum<D>, sf: bool) -> Flags<D::Bool> {
    let c = if sf {
        // Unsigned overflow: the sum wrapped below `a`, or equals it with a
        // carry-in (then `y` was all ones).
        let below = d.cmp(CmpOp::Ult, &s.wide, a);
        let same = d.cmp(CmpOp::Eq, &s.wide, a);
        let same_c = d.and(&s.cin, &same);
        d.or(&below, &same_c)
    } else {
        d.bit(&s.wide, 32)
    };
    let top = if sf { 63 } else { 31 };
    let ar = d.bin(BinOp::Xor, a, &s.r);
    let yr = d.bin(BinOp::Xor, &s.y, &s.r);
    let both = d.bin(BinOp::And, &ar, &yr);
    let v = d.bit(&both, top);
    let n = d.bit(&s.r, top);
    let zero = d.lit(0);
    let z = d.cmp(CmpOp::Eq, &s.r, &zero);
    Flags { n, z, c, v }
}

fn logic_flags<D: Domain>(d: &mut D, r: &D::Bv, sf: bool) -> Flags<D::Bool> {
    let n = d.bit(r, if sf { 63 } else { 31 });
    let zero = d.lit(0);
    let z = d.cmp(CmpOp::Eq, r, &zero);
    let f = d.bool_lit(false);
    Flags {
        n,
        z,
        c: f.clone(),
        v: f,
    }
}

/// `ccmp`'s flags: the comparison's where `c` holds, else the immediate.
fn select_flags<D: Domain>(d: &mut D, c: &D::Bool, f: Flags<D::Bool>, nzcv: u8) -> Flags<D::Bool> {
    let mut pick = |x: D::Bool, bit: u8| {
        let k = d.bool_lit(nzcv & bit != 0);
        let a = d.and(c, &x);
        let nc = d.not(c);
        let b = d.and(&nc, &k);
        d.or(&a, &b)
    };
    Flags {
        n: pick(f.n, 8),
        z: pick(f.z, 4),
        c: pick(f.c, 2),
        v: pick(f.v, 1),
    }
}

/// ConditionHolds.
pub fn cond_holds<D: Domain>(d: &mut D, f: &Flags<D::Bool>, cond: Cond) -> D::Bool {
    let eq_nv = |d: &mut D| {
        let both = d.and(&f.n, &f.v);
        let nn = d.not(&f.n);
        let nv = d.not(&f.v);
        let neither = d.and(&nn, &nv);
        d.or(&both, &neither)
    };
    let base = |d: &mut D, c: Cond| -> D::Bool {
        match c {
            Cond::Eq => f.z.clone(),
            Cond::Hs => f.c.clone(),
            Cond::Mi => f.n.clone(),
            Cond::Vs => f.v.clone(),
            Cond::Hi => {
                let nz = d.not(&f.z);
                d.and(&f.c, &nz)
            }
            Cond::Ge => eq_nv(d),
            Cond::Gt => {
                let ge = eq_nv(d);
                let nz = d.not(&f.z);
                d.and(&ge, &nz)
            }
            _ => d.bool_lit(true),
        }
    };
    match cond {
        Cond::Eq | Cond::Hs | Cond::Mi | Cond::Vs | Cond::Hi | Cond::Ge | Cond::Gt => base(d, cond),
        Cond::Al | Cond::Nv => d.bool_lit(true),
        negated => {
            let b = base(d, negated.invert());
            d.not(&b)
        }
    }
}

fn extr<D: Domain>(d: &mut D, hi: &D::Bv, lo: &D::Bv, lsb: u8, sf: bool) -> D::Bv {
    if !sf {
        // Concatenate the two words in the 64-bit carrier.
        let k = d.lit(32);
        let h = d.bin(BinOp::Shl, hi, &k);
        let both = d.bin(BinOp::Or, &h, lo);
        let a = d.lit(lsb as u64);
        let r = d.bin(BinOp::LShr, &both, &a);
        return d.un(UnOp::Zext(32), &r);
    }
    if lsb == 0 {
        return lo.clone();
    }
    let a = d.lit(lsb as u64);
    let b = d.lit(64 - lsb as u64);
    let l = d.bin(BinOp::LShr, lo, &a);
    let h = d.bin(BinOp::Shl, hi, &b);
    d.bin(BinOp::Or, &l, &h)
}

fn low_mask(len: u32) -> u64 {
    if len >= 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    }
}

/// The bitfield move (`ubfm`, `sbfm`, `bfm`): a field of `src` moved to
/// the bottom (`imms >= immr`) or to position `width - immr`.
fn bitfield<D: Domain>(
    d: &mut D,
    kind: BfmKind,
    src: &D::Bv,
    dst: &D::Bv,
    immr: u8,
    imms: u8,
    sf: bool,
) -> D::Bv {
    let w = width(sf) as u32;
    let (immr, imms) = (immr as u32, imms as u32);
    let (from, len, pos) = if imms >= immr {
        (immr, imms - immr + 1, 0)
    } else {
        (0, imms + 1, w - immr)
    };
    let f = d.lit(from as u64);
    let shifted = d.bin(BinOp::LShr, src, &f);
    let field = match kind {
        BfmKind::Signed => d.un(UnOp::Sext(len as u8), &shifted),
        _ => d.un(UnOp::Zext(len as u8), &shifted),
    };
    let p = d.lit(pos as u64);
    let placed = d.bin(BinOp::Shl, &field, &p);
    let placed = trunc(d, &placed, sf);
    match kind {
        BfmKind::Insert => {
            let hole = d.lit(!(low_mask(len) << pos));
            let kept = d.bin(BinOp::And, dst, &hole);
            d.bin(BinOp::Or, &kept, &placed)
        }
        _ => placed,
    }
}

fn unary<D: Domain>(d: &mut D, kind: UnaryKind, v: &D::Bv, sf: bool) -> D::Bv {
    let k32 = d.lit(32);
    match kind {
        UnaryKind::Clz => {
            let c = d.un(UnOp::Clz, v);
            if sf {
                c
            } else {
                d.bin(BinOp::Sub, &c, &k32)
            }
        }
        UnaryKind::Cls => {
            let x = if sf {
                v.clone()
            } else {
                d.un(UnOp::Sext(32), v)
            };
            let one = d.lit(1);
            let half = d.bin(BinOp::AShr, &x, &one);
            let diff = d.bin(BinOp::Xor, &x, &half);
            let c = d.un(UnOp::Clz, &diff);
            let bias = d.lit(if sf { 1 } else { 33 });
            d.bin(BinOp::Sub, &c, &bias)
        }
        UnaryKind::Rbit | UnaryKind::Rev => {
            let op = if kind == UnaryKind::Rbit {
                UnOp::Rbit
            } else {
                UnOp::Rev
            };
            let r = d.un(op, v);
            if sf {
                r
            } else {
                d.bin(BinOp::LShr, &r, &k32)
            }
        }
        UnaryKind::Rev16 => {
            let eight = d.lit(8);
            let lo_bytes = d.lit(0x00ff_00ff_00ff_00ff);
            let hi_bytes = d.lit(0xff00_ff00_ff00_ff00);
            let down = d.bin(BinOp::LShr, v, &eight);
            let down = d.bin(BinOp::And, &down, &lo_bytes);
            let up = d.bin(BinOp::Shl, v, &eight);
            let up = d.bin(BinOp::And, &up, &hi_bytes);
            let r = d.bin(BinOp::Or, &down, &up);
            trunc(d, &r, sf)
        }
        UnaryKind::Rev32 => {
            let r = d.un(UnOp::Rev, v);
            d.bin(BinOp::Ror, &r, &k32)
        }
    }
}

fn address<D: Domain>(d: &mut D, s: &St<D>, a: &Addr) -> D::Bv {
    let base = read(d, s, a.base, true);
    if matches!(a.mode, Writeback::Post(_)) {
        return base;
    }
    let off = match a.offset {
        AddrOffset::Imm(0) => return base,
        AddrOffset::Imm(i) => d.lit(i as u64),
        AddrOffset::Reg { rm, ext, amount } => {
            let v = read(d, s, rm, true);
            extend(d, &v, ext, amount)
        }
    };
    d.bin(BinOp::Add, &base, &off)
}

fn writeback<D: Domain>(d: &mut D, s: &mut St<D>, a: &Addr, at: D::Bv) {
    let new = match a.mode {
        Writeback::None => return,
        Writeback::Pre => at,
        Writeback::Post(p) => {
            let amt = match p {
                PostAmount::Imm(i) => d.lit(i as u64),
                PostAmount::Reg(r) => read(d, s, r, true),
            };
            d.bin(BinOp::Add, &at, &amt)
        }
    };
    write(d, s, a.base, true, new);
}

fn load<D: Domain>(d: &mut D, at: &D::Bv, bytes: u8, signed: bool) -> Result<D::Bv, Fault> {
    let v = d.load(at, bytes)?;
    Ok(if signed && bytes < 8 {
        d.un(UnOp::Sext(bytes * 8), &v)
    } else {
        v
    })
}
