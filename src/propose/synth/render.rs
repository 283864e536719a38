//! Decoded instructions back to assembly text, for the forms the
//! superoptimizer builds. Every rendering is parsed and decoded again by
//! the pool ([`super::pool`]) and kept only if it round-trips to the same
//! [`Inst`], so a wrong spelling here loses a candidate, never changes one.

use crate::semantics::inst::*;

/// Register names by number: rendering the pools' 100k+ entries per shape
/// formatted (and allocated) each name, a tenth of a cold run.
const X_NAMES: [&str; 31] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "x29", "x30",
];
const W_NAMES: [&str; 31] = [
    "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10", "w11", "w12", "w13", "w14",
    "w15", "w16", "w17", "w18", "w19", "w20", "w21", "w22", "w23", "w24", "w25", "w26", "w27",
    "w28", "w29", "w30",
];

fn reg(r: R, sf: bool) -> &'static str {
    match (r, sf) {
        (ZR, true) => "xzr",
        (ZR, false) => "wzr",
        (SP, true) => "sp",
        (SP, false) => "wsp",
        (n, true) => X_NAMES[n as usize],
        (n, false) => W_NAMES[n as usize],
    }
}

fn shift_name(k: ShiftKind) -> &'static str {
    match k {
        ShiftKind::Lsl => "lsl",
        ShiftKind::Lsr => "lsr",
        ShiftKind::Asr => "asr",
        ShiftKind::Ror => "ror",
    }
}

fn extend_name(e: Extend) -> &'static str {
    match (e.signed, e.bits) {
        (false, 8) => "uxtb",
        (false, 16) => "uxth",
        (false, 32) => "uxtw",
        (false, _) => "uxtx",
        (true, 8) => "sxtb",
        (true, 16) => "sxth",
        (true, 32) => "sxtw",
        (true, _) => "sxtx",
    }
}

fn op2(o: Operand2, sf: bool) -> String {
    match o {
        Operand2::Imm(v) => format!("#{v}"),
        Operand2::Shifted { rm, amount: 0, .. } => reg(rm, sf).to_string(),
        Operand2::Shifted { rm, kind, amount } => {
            format!("{}, {} #{amount}", reg(rm, sf), shift_name(kind))
        }
        Operand2::Extended { rm, ext, amount } => {
            let src = reg(rm, ext.bits == 64);
            match amount {
                0 => format!("{src}, {}", extend_name(ext)),
                a => format!("{src}, {} #{a}", extend_name(ext)),
            }
        }
    }
}

/// The text of `i`, with `label` as a branch's target; `None` for forms
/// this renderer does not spell.
pub fn text(i: &Inst, label: &str) -> Option<String> {
    let sf = i.sf;
    let r = |x: R| reg(x, sf);
    Some(match i.op {
        Op::AddSub {
            sub,
            flags,
            rd,
            rn,
            op2: o,
        } => match (rd, rn, sub) {
            (ZR, _, true) if flags => format!("cmp {}, {}", r(rn), op2(o, sf)),
            (ZR, _, false) if flags => format!("cmn {}, {}", r(rn), op2(o, sf)),
            (_, ZR, true) if !matches!(o, Operand2::Imm(_)) => {
                let m = if flags { "negs" } else { "neg" };
                format!("{m} {}, {}", r(rd), op2(o, sf))
            }
            _ => {
                let m = match (sub, flags) {
                    (false, false) => "add",
                    (false, true) => "adds",
                    (true, false) => "sub",
                    (true, true) => "subs",
                };
                format!("{m} {}, {}, {}", r(rd), r(rn), op2(o, sf))
            }
        },
        Op::Logic {
            kind,
            invert,
            flags,
            rd,
            rn,
            op2: o,
        } => {
            let m = match (kind, invert, flags) {
                (LogicKind::And, false, false) => "and",
                (LogicKind::And, false, true) => "ands",
                (LogicKind::And, true, false) => "bic",
                (LogicKind::And, true, true) => "bics",
                (LogicKind::Orr, false, _) => "orr",
                (LogicKind::Orr, true, _) => "orn",
                (LogicKind::Eor, false, _) => "eor",
                (LogicKind::Eor, true, _) => "eon",
            };
            if flags && rd == ZR && m == "ands" {
                return Some(format!("tst {}, {}", r(rn), op2(o, sf)));
            }
            match (m, rn, o) {
                ("orr", ZR, Operand2::Shifted { rm, amount: 0, .. }) => {
                    format!("mov {}, {}", r(rd), r(rm))
                }
                ("orn", ZR, _) => format!("mvn {}, {}", r(rd), op2(o, sf)),
                _ => format!("{m} {}, {}, {}", r(rd), r(rn), op2(o, sf)),
            }
        }
        Op::MovImm { rd, value } => {
            let v = if sf {
                value as i64
            } else {
                value as u32 as i32 as i64
            };
            format!("mov {}, #{v}", r(rd))
        }
        Op::Shift {
            kind,
            rd,
            rn,
            amount,
        } => match amount {
            ShiftAmount::Imm(a) => format!("{} {}, {}, #{a}", shift_name(kind), r(rd), r(rn)),
            ShiftAmount::Reg(rm) => format!("{} {}, {}, {}", shift_name(kind), r(rd), r(rn), r(rm)),
        },
        Op::Extr { rd, rn, rm, lsb } => format!("extr {}, {}, {}, #{lsb}", r(rd), r(rn), r(rm)),
        Op::Bfm {
            kind,
            rd,
            rn,
            immr,
            imms,
        } => bitfield(kind, rd, rn, immr, imms, sf),
        Op::MulAdd {
            sub,
            rd,
            rn,
            rm,
            ra,
        } => match (ra, sub) {
            (ZR, false) => format!("mul {}, {}, {}", r(rd), r(rn), r(rm)),
            (ZR, true) => format!("mneg {}, {}, {}", r(rd), r(rn), r(rm)),
            (_, s) => format!(
                "{} {}, {}, {}, {}",
                if s { "msub" } else { "madd" },
                r(rd),
                r(rn),
                r(rm),
                r(ra)
            ),
        },
        Op::MulHigh { signed, rd, rn, rm } => {
            let m = if signed { "smulh" } else { "umulh" };
            format!("{m} {}, {}, {}", r(rd), r(rn), r(rm))
        }
        Op::Div { signed, rd, rn, rm } => {
            let m = if signed { "sdiv" } else { "udiv" };
            format!("{m} {}, {}, {}", r(rd), r(rn), r(rm))
        }
        Op::Unary { kind, rd, rn } => {
            let m = match kind {
                UnaryKind::Clz => "clz",
                UnaryKind::Cls => "cls",
                UnaryKind::Rbit => "rbit",
                UnaryKind::Rev => "rev",
                UnaryKind::Rev16 => "rev16",
                UnaryKind::Rev32 => "rev32",
            };
            format!("{m} {}, {}", r(rd), r(rn))
        }
        Op::CondSel {
            kind,
            rd,
            rn,
            rm,
            cond,
        } => cond_sel(kind, rd, rn, rm, cond, sf),
        Op::CondCmp {
            neg,
            rn,
            op2: o,
            nzcv,
            cond,
        } => format!(
            "{} {}, {}, #{nzcv}, {}",
            if neg { "ccmn" } else { "ccmp" },
            r(rn),
            op2(o, sf),
            cond.name()
        ),
        Op::Load {
            rt,
            rt2: None,
            bytes,
            signed,
            addr,
        } => {
            let m = match (bytes, signed) {
                (1, false) => "ldrb",
                (1, true) => "ldrsb",
                (2, false) => "ldrh",
                (2, true) => "ldrsh",
                (4, true) => "ldrsw",
                _ => "ldr",
            };
            format!("{m} {}, {}", r(rt), address(&addr)?)
        }
        Op::BranchCond { cond } => format!("b.{} {label}", cond.name()),
        Op::BranchZero { nonzero, rt } => {
            format!(
                "{} {}, {label}",
                if nonzero { "cbnz" } else { "cbz" },
                r(rt)
            )
        }
        Op::BranchBit { nonzero, rt, bit } => {
            format!(
                "{} {}, #{bit}, {label}",
                if nonzero { "tbnz" } else { "tbz" },
                r(rt)
            )
        }
        _ => return None,
    })
}

/// An address without writeback.
fn address(a: &Addr) -> Option<String> {
    if a.mode != Writeback::None {
        return None;
    }
    let base = reg(a.base, true);
    Some(match a.offset {
        AddrOffset::Imm(0) => format!("[{base}]"),
        AddrOffset::Imm(o) => format!("[{base}, #{o}]"),
        AddrOffset::Reg { rm, ext, amount } => {
            let wide = ext.bits == 64;
            let idx = reg(rm, wide);
            match (wide, amount) {
                (true, 0) => format!("[{base}, {idx}]"),
                (true, a) => format!("[{base}, {idx}, lsl #{a}]"),
                (false, 0) => format!("[{base}, {idx}, {}]", extend_name(ext)),
                (false, a) => format!("[{base}, {idx}, {} #{a}]", extend_name(ext)),
            }
        }
    })
}

fn bitfield(kind: BfmKind, rd: R, rn: R, immr: u8, imms: u8, sf: bool) -> String {
    let size = if sf { 64 } else { 32 };
    let (d, n) = (reg(rd, sf), reg(rn, sf));
    let (immr, imms) = (immr as u32, imms as u32);
    if imms >= immr {
        let (lsb, width) = (immr, imms - immr + 1);
        match kind {
            BfmKind::Signed if lsb == 0 && matches!(width, 8 | 16 | 32) && width < size => {
                let m = ["sxtb", "sxth", "sxtw"][(width / 16) as usize];
                format!("{m} {d}, {}", reg(rn, false))
            }
            BfmKind::Unsigned if lsb == 0 && matches!(width, 8 | 16) && !sf => {
                format!("{} {d}, {n}", if width == 8 { "uxtb" } else { "uxth" })
            }
            BfmKind::Signed => format!("sbfx {d}, {n}, #{lsb}, #{width}"),
            BfmKind::Unsigned => format!("ubfx {d}, {n}, #{lsb}, #{width}"),
            BfmKind::Insert => format!("bfxil {d}, {n}, #{lsb}, #{width}"),
        }
    } else {
        let (lsb, width) = (size - immr, imms + 1);
        let m = match kind {
            BfmKind::Signed => "sbfiz",
            BfmKind::Unsigned => "ubfiz",
            BfmKind::Insert => "bfi",
        };
        format!("{m} {d}, {n}, #{lsb}, #{width}")
    }
}

fn cond_sel(kind: SelKind, rd: R, rn: R, rm: R, cond: crate::asm::Cond, sf: bool) -> String {
    let (d, n, m) = (reg(rd, sf), reg(rn, sf), reg(rm, sf));
    let inv = cond.invert().name();
    match (kind, rn, rm) {
        (SelKind::Csinc, ZR, ZR) => format!("cset {d}, {inv}"),
        (SelKind::Csinv, ZR, ZR) => format!("csetm {d}, {inv}"),
        (SelKind::Csinc, a, b) if a == b => format!("cinc {d}, {n}, {inv}"),
        (SelKind::Csinv, a, b) if a == b => format!("cinv {d}, {n}, {inv}"),
        (SelKind::Csneg, a, b) if a == b => format!("cneg {d}, {n}, {inv}"),
        _ => {
            let mn = match kind {
                SelKind::Csel => "csel",
                SelKind::Csinc => "csinc",
                SelKind::Csinv => "csinv",
                SelKind::Csneg => "csneg",
            };
            format!("{mn} {d}, {n}, {m}, {}", cond.name())
        }
    }
}
