//! Instructions decoded for execution: the typed form the semantics
//! ([`super::exec`]) run, made once from a parsed [`Insn`].
//!
//! Aliases are resolved here, once (`cmp` is `subs` to the zero register,
//! `ubfx` is `ubfm`, `cset` is `csinc`), so the semantics define each
//! operation a single time. Anything outside the integer subset decodes to
//! an error, and callers treat the block as opaque.

use crate::asm::{AddrMode, Cond, Insn, Mem, Operand, Reg, RegKind};
use std::fmt;

/// A general register operand: 0–30, [`SP`] or [`ZR`].
pub type R = u8;
/// The stack pointer.
pub const SP: R = 31;
/// The zero register (reads 0, writes are discarded).
pub const ZR: R = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShiftKind {
    Lsl,
    Lsr,
    Asr,
    Ror,
}

/// A register extension: sign or zero, from `bits` (8, 16, 32 or 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Extend {
    pub signed: bool,
    pub bits: u8,
}

/// The flexible second operand of data-processing instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand2 {
    Imm(u64),
    Shifted { rm: R, kind: ShiftKind, amount: u8 },
    Extended { rm: R, ext: Extend, amount: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogicKind {
    And,
    Orr,
    Eor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BfmKind {
    Signed,
    Unsigned,
    /// `bfm`: inserts into the old destination.
    Insert,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryKind {
    Clz,
    Cls,
    Rbit,
    /// Byte reverse of the whole register (`rev`, `rev64`).
    Rev,
    Rev16,
    /// Byte reverse within each 32-bit word (`rev32`, 64-bit only).
    Rev32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SelKind {
    Csel,
    Csinc,
    Csinv,
    Csneg,
}

/// Where a memory access goes and how its base is updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Addr {
    pub base: R,
    pub offset: AddrOffset,
    pub mode: Writeback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrOffset {
    Imm(i64),
    Reg { rm: R, ext: Extend, amount: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Writeback {
    None,
    /// Base updated to the address before the access.
    Pre,
    /// Base advanced by this amount after the access.
    Post(PostAmount),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostAmount {
    Imm(i64),
    Reg(R),
}

/// One operation, with aliases resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    AddSub {
        sub: bool,
        flags: bool,
        rd: R,
        rn: R,
        op2: Operand2,
    },
    /// `adc`, `sbc` and their flag-setting forms.
    Carry {
        sub: bool,
        flags: bool,
        rd: R,
        rn: R,
        rm: R,
    },
    Logic {
        kind: LogicKind,
        invert: bool,
        flags: bool,
        rd: R,
        rn: R,
        op2: Operand2,
    },
    /// `mov`/`movz`/`movn` of an immediate: the value written.
    MovImm {
        rd: R,
        value: u64,
    },
    Movk {
        rd: R,
        imm16: u16,
        shift: u8,
    },
    /// Shifts by a register (amount masked to the width) or an immediate.
    Shift {
        kind: ShiftKind,
        rd: R,
        rn: R,
        amount: ShiftAmount,
    },
    Extr {
        rd: R,
        rn: R,
        rm: R,
        lsb: u8,
    },
    Bfm {
        kind: BfmKind,
        rd: R,
        rn: R,
        immr: u8,
        imms: u8,
    },
    /// `madd`/`msub` (and `mul`, `mneg` with `ra` the zero register).
    MulAdd {
        sub: bool,
        rd: R,
        rn: R,
        rm: R,
        ra: R,
    },
    /// `smaddl` & co.: 32×32→64 products added to a 64-bit accumulator.
    MulLong {
        signed: bool,
        sub: bool,
        rd: R,
        rn: R,
        rm: R,
        ra: R,
    },
    MulHigh {
        signed: bool,
        rd: R,
        rn: R,
        rm: R,
    },
    Div {
        signed: bool,
        rd: R,
        rn: R,
        rm: R,
    },
    Unary {
        kind: UnaryKind,
        rd: R,
        rn: R,
    },
    CondSel {
        kind: SelKind,
        rd: R,
        rn: R,
        rm: R,
        cond: Cond,
    },
    /// `ccmp`/`ccmn`: compare if `cond`, else set flags to `nzcv`.
    CondCmp {
        neg: bool,
        rn: R,
        op2: Operand2,
        nzcv: u8,
        cond: Cond,
    },
    Load {
        rt: R,
        rt2: Option<R>,
        bytes: u8,
        signed: bool,
        addr: Addr,
    },
    Store {
        rt: R,
        rt2: Option<R>,
        bytes: u8,
        addr: Addr,
    },
    /// `b.cond` (or `b` with `Al`): taken when the condition holds.
    BranchCond {
        cond: Cond,
    },
    /// `cbz`/`cbnz`.
    BranchZero {
        nonzero: bool,
        rt: R,
    },
    /// `tbz`/`tbnz`.
    BranchBit {
        nonzero: bool,
        rt: R,
        bit: u8,
    },
    Nop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShiftAmount {
    Imm(u8),
    Reg(R),
}

/// A decoded instruction: the operation and its width (`sf`: 64-bit).
/// For loads the width is that of the destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inst {
    pub op: Op,
    pub sf: bool,
}

/// Why an instruction has no executable semantics here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotModelled(pub String);

impl fmt::Display for NotModelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no executable semantics for `{}`", self.0)
    }
}

type Decoded = Result<Inst, NotModelled>;

/// The operands of an instruction being decoded, with the error to give.
struct Args<'a> {
    insn: &'a Insn,
}

impl<'a> Args<'a> {
    fn fail<T>(&self) -> Result<T, NotModelled> {
        Err(NotModelled(self.insn.to_string()))
    }
    fn len(&self) -> usize {
        self.insn.operands.len()
    }
    fn op(&self, i: usize) -> Result<&'a Operand, NotModelled> {
        self.insn.operands.get(i).map_or_else(|| self.fail(), Ok)
    }
    /// General register `i` and whether it is a 64-bit view.
    fn reg(&self, i: usize) -> Result<(R, bool), NotModelled> {
        match self.op(i)? {
            Operand::Reg(r) => general(r).map_or_else(|| self.fail(), Ok),
            _ => self.fail(),
        }
    }
    fn r(&self, i: usize) -> Result<R, NotModelled> {
        self.reg(i).map(|(r, _)| r)
    }
    fn imm(&self, i: usize) -> Result<i64, NotModelled> {
        self.op(i)?.imm_value().map_or_else(|| self.fail(), Ok)
    }
    fn is_imm(&self, i: usize) -> bool {
        matches!(self.insn.operands.get(i), Some(Operand::Imm(_)))
    }
    fn cond(&self, i: usize) -> Result<Cond, NotModelled> {
        match self.op(i)? {
            Operand::Cond(c) => Ok(*c),
            _ => self.fail(),
        }
    }
    /// The optional modifier at `i`: (name, amount).
    fn modifier(&self, i: usize) -> Result<Option<(&'a str, u8)>, NotModelled> {
        match self.insn.operands.get(i) {
            None => Ok(None),
            Some(Operand::Modifier { op, amount }) => {
                let a = match amount {
                    Some(a) => a.value.map_or_else(|| self.fail(), Ok)?,
                    None => 0,
                };
                Ok(Some((
                    op.as_str(),
                    u8::try_from(a).or_else(|_| self.fail())?,
                )))
            }
            Some(_) => self.fail(),
        }
    }
}

/// A general register's number and width; `None` for SIMD/FP registers.
fn general(r: &Reg) -> Option<(R, bool)> {
    Some(match r.kind {
        RegKind::X => (r.num, true),
        RegKind::W => (r.num, false),
        RegKind::Sp => (SP, true),
        RegKind::Wsp => (SP, false),
        RegKind::Xzr => (ZR, true),
        RegKind::Wzr => (ZR, false),
        _ => return None,
    })
}

/// The extension an operand or mnemonic name (`uxtb` .. `sxtx`) stands for:
/// the one table of them (the trace reads it too).
pub fn extend_named(name: &str) -> Option<Extend> {
    let (signed, bits) = match name {
        "uxtb" => (false, 8),
        "uxth" => (false, 16),
        "uxtw" => (false, 32),
        "uxtx" => (false, 64),
        "sxtb" => (true, 8),
        "sxth" => (true, 16),
        "sxtw" => (true, 32),
        "sxtx" => (true, 64),
        _ => return None,
    };
    Some(Extend { signed, bits })
}

fn shift_named(name: &str) -> Option<ShiftKind> {
    Some(match name {
        "lsl" => ShiftKind::Lsl,
        "lsr" => ShiftKind::Lsr,
        "asr" => ShiftKind::Asr,
        "ror" => ShiftKind::Ror,
        _ => return None,
    })
}

/// Mask of the operation's width.
fn width_mask(sf: bool) -> u64 {
    if sf {
        u64::MAX
    } else {
        u32::MAX as u64
    }
}

impl<'a> Args<'a> {
    /// Operand 2 starting at `i`: an immediate (optionally `lsl #12`), a
    /// shifted register, or (when `extend_ok`) an extended register.
    fn op2(&self, i: usize, sf: bool, extend_ok: bool) -> Result<Operand2, NotModelled> {
        if self.is_imm(i) {
            let v = self.imm(i)? as u64;
            let v = match self.modifier(i + 1)? {
                None => v,
                Some(("lsl", s)) if s < 64 => v << s,
                _ => return self.fail(),
            };
            return Ok(Operand2::Imm(v & width_mask(sf)));
        }
        let rm = self.r(i)?;
        match self.modifier(i + 1)? {
            None => Ok(Operand2::Shifted {
                rm,
                kind: ShiftKind::Lsl,
                amount: 0,
            }),
            Some((name, amount)) => {
                if let Some(kind) = shift_named(name) {
                    if amount >= if sf { 64 } else { 32 } {
                        return self.fail();
                    }
                    return Ok(Operand2::Shifted { rm, kind, amount });
                }
                match extend_named(name) {
                    Some(ext) if extend_ok && amount <= 4 => {
                        Ok(Operand2::Extended { rm, ext, amount })
                    }
                    _ => self.fail(),
                }
            }
        }
    }
}

impl Inst {
    /// Decode a parsed instruction, or say why it has no semantics here.
    pub fn decode(insn: &Insn) -> Decoded {
        let a = Args { insn };
        let m = insn.mnemonic.as_str();
        if let Some(d) = decode_branch(&a, m) {
            return d;
        }
        if m.starts_with("ld") || m.starts_with("st") {
            return decode_memory(&a, m);
        }
        decode_data(&a, m)
    }
}

fn decode_branch(a: &Args, m: &str) -> Option<Decoded> {
    let sym = |i: usize| matches!(a.insn.operands.get(i), Some(Operand::Sym(_)));
    let d = match m {
        "b" if sym(0) => Ok(Inst {
            op: Op::BranchCond {
                cond: a.insn.cond.unwrap_or(Cond::Al),
            },
            sf: true,
        }),
        "cbz" | "cbnz" if sym(1) => a.reg(0).map(|(rt, sf)| Inst {
            op: Op::BranchZero {
                nonzero: m == "cbnz",
                rt,
            },
            sf,
        }),
        "tbz" | "tbnz" if sym(2) => (|| {
            let (rt, sf) = a.reg(0)?;
            let bit = u8::try_from(a.imm(1)?).or_else(|_| a.fail())?;
            if bit >= if sf { 64 } else { 32 } {
                return a.fail();
            }
            Ok(Inst {
                op: Op::BranchBit {
                    nonzero: m == "tbnz",
                    rt,
                    bit,
                },
                sf,
            })
        })(),
        "nop" => Ok(Inst {
            op: Op::Nop,
            sf: true,
        }),
        _ => return None,
    };
    Some(d)
}

fn decode_memory(a: &Args, m: &str) -> Decoded {
    let pair = matches!(m, "ldp" | "ldpsw" | "ldnp" | "stp" | "stnp");
    let load = m.starts_with("ld");
    let stem = m
        .trim_start_matches("ldp")
        .trim_start_matches("ldnp")
        .trim_start_matches("ldur")
        .trim_start_matches("ldr")
        .trim_start_matches("stp")
        .trim_start_matches("stnp")
        .trim_start_matches("stur")
        .trim_start_matches("str");
    let known = matches!(
        m,
        "ldr"
            | "ldrb"
            | "ldrh"
            | "ldrsb"
            | "ldrsh"
            | "ldrsw"
            | "ldur"
            | "ldurb"
            | "ldurh"
            | "ldursb"
            | "ldursh"
            | "ldursw"
            | "ldp"
            | "ldpsw"
            | "ldnp"
            | "str"
            | "strb"
            | "strh"
            | "stur"
            | "sturb"
            | "sturh"
            | "stp"
            | "stnp"
    );
    if !known {
        return a.fail();
    }
    let (rt, sf) = a.reg(0)?;
    let rt2 = if pair { Some(a.reg(1)?) } else { None };
    if rt2.is_some_and(|(_, sf2)| sf2 != sf) || rt == SP || rt2.is_some_and(|(r, _)| r == SP) {
        return a.fail();
    }
    let (bytes, signed) = match stem {
        "b" => (1, false),
        "h" => (2, false),
        "sb" => (1, true),
        "sh" => (2, true),
        "sw" => (4, true),
        _ if sf => (8, false),
        _ => (4, false),
    };
    if signed && !load {
        return a.fail();
    }
    let mem_at = if pair { 2 } else { 1 };
    let Operand::Mem(mem) = a.op(mem_at)? else {
        return a.fail();
    };
    if a.len() != mem_at + 1 {
        return a.fail();
    }
    let addr = decode_addr(a, mem)?;
    let rt2 = rt2.map(|(r, _)| r);
    let op = if load {
        Op::Load {
            rt,
            rt2,
            bytes,
            signed,
            addr,
        }
    } else {
        Op::Store {
            rt,
            rt2,
            bytes,
            addr,
        }
    };
    Ok(Inst { op, sf })
}

fn decode_addr(a: &Args, mem: &Mem) -> Result<Addr, NotModelled> {
    let Some((base, true)) = general(&mem.base) else {
        return a.fail();
    };
    if base == ZR {
        return a.fail();
    }
    let offset = match (&mem.offset, &mem.index) {
        (Some(i), None) => AddrOffset::Imm(i.value.map_or_else(|| a.fail(), Ok)?),
        (None, None) => AddrOffset::Imm(0),
        (None, Some((r, modifier))) => {
            let (rm, wide) = general(r).map_or_else(|| a.fail(), Ok)?;
            let (name, amount) = match modifier.as_deref() {
                None => ("lsl", 0),
                Some(Operand::Modifier { op, amount }) => {
                    let v = amount.as_ref().and_then(|i| i.value).unwrap_or(0);
                    (op.as_str(), u8::try_from(v).or_else(|_| a.fail())?)
                }
                Some(_) => return a.fail(),
            };
            let ext = match name {
                "lsl" if wide => Extend {
                    signed: false,
                    bits: 64,
                },
                _ => extend_named(name).map_or_else(|| a.fail(), Ok)?,
            };
            if rm == SP || amount > 4 {
                return a.fail();
            }
            AddrOffset::Reg { rm, ext, amount }
        }
        _ => return a.fail(),
    };
    let mode = match &mem.mode {
        AddrMode::Offset => Writeback::None,
        AddrMode::PreIndex => Writeback::Pre,
        AddrMode::PostIndex(p) => match p.as_ref() {
            Operand::Imm(i) => {
                Writeback::Post(PostAmount::Imm(i.value.map_or_else(|| a.fail(), Ok)?))
            }
            Operand::Reg(r) => match general(r) {
                Some((rm, true)) if rm != SP => Writeback::Post(PostAmount::Reg(rm)),
                _ => return a.fail(),
            },
            _ => return a.fail(),
        },
    };
    Ok(Addr { base, offset, mode })
}

fn decode_data(a: &Args, m: &str) -> Decoded {
    let (rd, sf) = a.reg(0)?;
    let op = match m {
        "add" | "adds" | "sub" | "subs" => {
            let flags = m.ends_with('s');
            let op2 = a.op2(2, sf, true)?;
            Op::AddSub {
                sub: m.starts_with("sub"),
                flags,
                rd,
                rn: a.r(1)?,
                op2,
            }
        }
        "cmp" | "cmn" => {
            let op2 = a.op2(1, sf, true)?;
            Op::AddSub {
                sub: m == "cmp",
                flags: true,
                rd: ZR,
                rn: rd,
                op2,
            }
        }
        "neg" | "negs" => {
            let op2 = a.op2(1, sf, false)?;
            Op::AddSub {
                sub: true,
                flags: m == "negs",
                rd,
                rn: ZR,
                op2,
            }
        }
        "adc" | "adcs" | "sbc" | "sbcs" => Op::Carry {
            sub: m.starts_with("sbc"),
            flags: m.ends_with('s'),
            rd,
            rn: a.r(1)?,
            rm: a.r(2)?,
        },
        "ngc" | "ngcs" => Op::Carry {
            sub: true,
            flags: m == "ngcs",
            rd,
            rn: ZR,
            rm: a.r(1)?,
        },
        "and" | "ands" | "orr" | "eor" | "bic" | "bics" | "orn" | "eon" => {
            let kind = match &m[..2] {
                "an" | "bi" => LogicKind::And,
                "or" => LogicKind::Orr,
                _ => LogicKind::Eor,
            };
            let invert = matches!(m, "bic" | "bics" | "orn" | "eon");
            let op2 = a.op2(2, sf, false)?;
            if invert && matches!(op2, Operand2::Imm(_)) {
                return a.fail();
            }
            let flags = m.ends_with('s');
            Op::Logic {
                kind,
                invert,
                flags,
                rd,
                rn: a.r(1)?,
                op2,
            }
        }
        "tst" => {
            let op2 = a.op2(1, sf, false)?;
            Op::Logic {
                kind: LogicKind::And,
                invert: false,
                flags: true,
                rd: ZR,
                rn: rd,
                op2,
            }
        }
        "mvn" => {
            let op2 = a.op2(1, sf, false)?;
            Op::Logic {
                kind: LogicKind::Orr,
                invert: true,
                flags: false,
                rd,
                rn: ZR,
                op2,
            }
        }
        "mov" => decode_mov(a, rd, sf)?,
        "movz" | "movn" | "movk" => decode_movw(a, m, rd, sf)?,
        "lsl" | "lsr" | "asr" | "ror" | "lslv" | "lsrv" | "asrv" | "rorv" => {
            let kind = shift_named(&m[..3]).map_or_else(|| a.fail(), Ok)?;
            let amount = if a.is_imm(2) {
                let s = a.imm(2)?;
                if !(0..if sf { 64 } else { 32 }).contains(&s) || m.ends_with('v') {
                    return a.fail();
                }
                ShiftAmount::Imm(s as u8)
            } else {
                ShiftAmount::Reg(a.r(2)?)
            };
            Op::Shift {
                kind,
                rd,
                rn: a.r(1)?,
                amount,
            }
        }
        "extr" => {
            let lsb = u8::try_from(a.imm(3)?).or_else(|_| a.fail())?;
            if lsb >= if sf { 64 } else { 32 } {
                return a.fail();
            }
            Op::Extr {
                rd,
                rn: a.r(1)?,
                rm: a.r(2)?,
                lsb,
            }
        }
        "ubfm" | "sbfm" | "bfm" | "ubfx" | "sbfx" | "ubfiz" | "sbfiz" | "bfi" | "bfxil" | "bfc"
        | "sxtb" | "sxth" | "sxtw" | "uxtb" | "uxth" | "uxtw" => decode_bitfield(a, m, rd, sf)?,
        "mul" | "mneg" | "madd" | "msub" => {
            let ra = if m.starts_with('m') && a.len() == 4 {
                a.r(3)?
            } else {
                ZR
            };
            Op::MulAdd {
                sub: matches!(m, "mneg" | "msub"),
                rd,
                rn: a.r(1)?,
                rm: a.r(2)?,
                ra,
            }
        }
        "smull" | "umull" | "smnegl" | "umnegl" | "smaddl" | "umaddl" | "smsubl" | "umsubl" => {
            let ra = if a.len() == 4 { a.r(3)? } else { ZR };
            let sub = m.contains("neg") || m.contains("sub");
            Op::MulLong {
                signed: m.starts_with('s'),
                sub,
                rd,
                rn: a.r(1)?,
                rm: a.r(2)?,
                ra,
            }
        }
        "smulh" | "umulh" => Op::MulHigh {
            signed: m == "smulh",
            rd,
            rn: a.r(1)?,
            rm: a.r(2)?,
        },
        "sdiv" | "udiv" => Op::Div {
            signed: m == "sdiv",
            rd,
            rn: a.r(1)?,
            rm: a.r(2)?,
        },
        "clz" | "cls" | "rbit" | "rev" | "rev64" | "rev16" | "rev32" => {
            let kind = match m {
                "clz" => UnaryKind::Clz,
                "cls" => UnaryKind::Cls,
                "rbit" => UnaryKind::Rbit,
                "rev16" => UnaryKind::Rev16,
                "rev32" if sf => UnaryKind::Rev32,
                "rev" => UnaryKind::Rev,
                "rev64" if sf => UnaryKind::Rev,
                _ => return a.fail(),
            };
            Op::Unary {
                kind,
                rd,
                rn: a.r(1)?,
            }
        }
        "csel" | "csinc" | "csinv" | "csneg" => {
            let kind = sel_kind(m);
            Op::CondSel {
                kind,
                rd,
                rn: a.r(1)?,
                rm: a.r(2)?,
                cond: a.cond(3)?,
            }
        }
        "cset" | "csetm" => {
            let kind = if m == "cset" {
                SelKind::Csinc
            } else {
                SelKind::Csinv
            };
            let cond = a.cond(1)?.invert();
            Op::CondSel {
                kind,
                rd,
                rn: ZR,
                rm: ZR,
                cond,
            }
        }
        "cinc" | "cinv" | "cneg" => {
            let kind = sel_kind(&format!("cs{}", &m[1..]));
            let rn = a.r(1)?;
            Op::CondSel {
                kind,
                rd,
                rn,
                rm: rn,
                cond: a.cond(2)?.invert(),
            }
        }
        "ccmp" | "ccmn" => {
            let op2 = if a.is_imm(1) {
                Operand2::Imm(a.imm(1)? as u64 & 31)
            } else {
                Operand2::Shifted {
                    rm: a.r(1)?,
                    kind: ShiftKind::Lsl,
                    amount: 0,
                }
            };
            let nzcv = u8::try_from(a.imm(2)?).ok().filter(|v| *v < 16);
            let nzcv = nzcv.map_or_else(|| a.fail(), Ok)?;
            Op::CondCmp {
                neg: m == "ccmn",
                rn: rd,
                op2,
                nzcv,
                cond: a.cond(3)?,
            }
        }
        _ => return a.fail(),
    };
    Ok(Inst { op, sf })
}

fn sel_kind(m: &str) -> SelKind {
    match m {
        "csinc" => SelKind::Csinc,
        "csinv" => SelKind::Csinv,
        "csneg" => SelKind::Csneg,
        _ => SelKind::Csel,
    }
}

fn decode_mov(a: &Args, rd: R, sf: bool) -> Result<Op, NotModelled> {
    if a.is_imm(1) {
        let value = a.imm(1)? as u64 & width_mask(sf);
        return Ok(Op::MovImm { rd, value });
    }
    let rn = a.r(1)?;
    let zero_shift = Operand2::Shifted {
        rm: rn,
        kind: ShiftKind::Lsl,
        amount: 0,
    };
    Ok(if rd == SP || rn == SP {
        Op::AddSub {
            sub: false,
            flags: false,
            rd,
            rn,
            op2: Operand2::Imm(0),
        }
    } else {
        Op::Logic {
            kind: LogicKind::Orr,
            invert: false,
            flags: false,
            rd,
            rn: ZR,
            op2: zero_shift,
        }
    })
}

fn decode_movw(a: &Args, m: &str, rd: R, sf: bool) -> Result<Op, NotModelled> {
    let imm = u16::try_from(a.imm(1)?).or_else(|_| a.fail())?;
    let shift = match a.modifier(2)? {
        None => 0,
        Some(("lsl", s)) if s % 16 == 0 && s < if sf { 64 } else { 32 } => s,
        _ => return a.fail(),
    };
    let v = (imm as u64) << shift;
    Ok(match m {
        "movz" => Op::MovImm { rd, value: v },
        "movn" => Op::MovImm {
            rd,
            value: !v & width_mask(sf),
        },
        _ => Op::Movk {
            rd,
            imm16: imm,
            shift,
        },
    })
}

fn decode_bitfield(a: &Args, m: &str, rd: R, sf: bool) -> Result<Op, NotModelled> {
    let size: i64 = if sf { 64 } else { 32 };
    let byte = |i: usize| -> Result<i64, NotModelled> {
        let v = a.imm(i)?;
        if (0..size).contains(&v) {
            Ok(v)
        } else {
            a.fail()
        }
    };
    let kind = match m.as_bytes()[0] {
        b's' => BfmKind::Signed,
        b'u' => BfmKind::Unsigned,
        _ => BfmKind::Insert,
    };
    let (rn, immr, imms) = match m {
        "ubfm" | "sbfm" | "bfm" => (a.r(1)?, byte(2)?, byte(3)?),
        "sxtb" | "uxtb" => (a.r(1)?, 0, 7),
        "sxth" | "uxth" => (a.r(1)?, 0, 15),
        // `uxtw x0, w1` is not an architectural alias, but GNU as takes
        // it (as `mov w0, w1`): the zero extension `ubfm x0, x1, #0, #31`.
        "sxtw" | "uxtw" if sf => (a.r(1)?, 0, 31),
        "bfc" => {
            let (lsb, width) = (byte(1)?, a.imm(2)?);
            if width < 1 || lsb + width > size {
                return a.fail();
            }
            (ZR, (size - lsb) % size, width - 1)
        }
        _ => {
            let (lsb, width) = (byte(2)?, a.imm(3)?);
            if width < 1 || lsb + width > size {
                return a.fail();
            }
            match m {
                "ubfx" | "sbfx" | "bfxil" => (a.r(1)?, lsb, lsb + width - 1),
                "ubfiz" | "sbfiz" | "bfi" => (a.r(1)?, (size - lsb) % size, width - 1),
                _ => return a.fail(),
            }
        }
    };
    Ok(Op::Bfm {
        kind,
        rd,
        rn,
        immr: immr as u8,
        imms: imms as u8,
    })
}
