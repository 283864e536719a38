//! The instructions a search may use for one problem: every integer
//! data-processing form the semantics execute, instantiated over the
//! problem's registers and constants.
//!
//! Each entry is rendered, parsed and decoded again, and kept only if that
//! round trip gives the same instruction: the text handed to the validator
//! is then exactly what was evaluated. What an entry reads and writes comes
//! from the project's one effects table, not from a list here.

use super::render;
use crate::asm::{Cond, Insn};
use crate::cost::builtin::timing;
use crate::propose::rules::imm;
use crate::semantics::inst::*;
use crate::semantics::{effects, Loc};

/// One usable instruction with what the search needs to know about it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub inst: Inst,
    /// Registers read (bit n for xn).
    pub reads: u32,
    pub reads_flags: bool,
    /// Register written, if any.
    pub writes: Option<R>,
    pub sets_flags: bool,
    pub latency: f64,
}

/// What a problem offers the pool.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Registers that may be read (inputs, outputs, scratch).
    pub sources: Vec<R>,
    /// Registers that may be written (outputs, scratch).
    pub dests: Vec<R>,
    /// Operation widths to use (true: 64-bit).
    pub widths: Vec<bool>,
    /// Constants of the window and ones derived from them.
    pub consts: Vec<u64>,
    /// Shift amounts and bit positions.
    pub shifts: Vec<u8>,
    /// Whether flag-reading and flag-setting forms are of use.
    pub flags: bool,
    /// Base registers of the original's loads (none: no loads in the pool).
    pub loads: Vec<R>,
}

const CONDS: [Cond; 14] = [
    Cond::Eq,
    Cond::Ne,
    Cond::Hs,
    Cond::Lo,
    Cond::Mi,
    Cond::Pl,
    Cond::Vs,
    Cond::Vc,
    Cond::Hi,
    Cond::Ls,
    Cond::Ge,
    Cond::Lt,
    Cond::Gt,
    Cond::Le,
];

/// The entry for `inst`, if it renders and round-trips.
pub fn entry(inst: Inst, label: &str) -> Option<Entry> {
    let text = render::text(&inst, label)?;
    let insn = Insn::parse_plain(&text).ok()?;
    if Inst::decode(&insn).ok()? != inst {
        return None;
    }
    let e = effects(&insn);
    let mut reads = 0u32;
    for l in e.reads.iter() {
        match l {
            Loc::X(n) => reads |= 1 << n,
            Loc::Nzcv | Loc::Mem => {}
            _ => return None,
        }
    }
    let writes = e.writes.iter().find_map(|l| match l {
        Loc::X(n) => Some(n),
        _ => None,
    });
    Some(Entry {
        inst,
        reads,
        reads_flags: e.reads.contains(Loc::Nzcv),
        writes,
        sets_flags: e.writes.contains(Loc::Nzcv),
        latency: timing(&insn).latency,
    })
}

/// Every data-processing entry for `shape`, cheapest first.
pub fn data_entries(shape: &Shape) -> Vec<Entry> {
    finish(data_insts(shape), "")
}

/// The data-processing instructions `shape` offers, before rendering.
fn data_insts(shape: &Shape) -> Vec<Inst> {
    let mut insts = Vec::new();
    if !shape.loads.is_empty() {
        for &rd in &shape.dests {
            loads(shape, rd, &mut insts);
        }
    }
    for &sf in &shape.widths {
        // Compares first: among equally fast entries they write no register.
        if shape.flags {
            compares(shape, sf, &mut insts);
        }
        for &rd in &shape.dests {
            one_source(shape, sf, rd, &mut insts);
            two_sources(shape, sf, rd, &mut insts);
        }
    }
    insts
}

/// Branches that may end a window to `label`.
pub fn branch_entries(shape: &Shape, label: &str) -> Vec<Entry> {
    let mut insts = Vec::new();
    if shape.flags {
        for cond in CONDS {
            insts.push(Inst {
                op: Op::BranchCond { cond },
                sf: true,
            });
        }
    }
    for &sf in &shape.widths {
        for &rt in &shape.sources {
            for nonzero in [false, true] {
                insts.push(Inst {
                    op: Op::BranchZero { nonzero, rt },
                    sf,
                });
                for bit in 0..if sf { 64 } else { 32 } {
                    insts.push(Inst {
                        op: Op::BranchBit { nonzero, rt, bit },
                        sf,
                    });
                }
            }
        }
    }
    finish(insts, label)
}

fn finish(insts: Vec<Inst>, label: &str) -> Vec<Entry> {
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(insts.len());
    // Rendering, parsing and decoding an entry is most of a cold run on
    // compiled code, and its verdict, effects and latency are the same for
    // every choice of registers with the same equalities: a pool of 100k
    // entries has a few thousand such forms.
    let mut forms = rustc_hash::FxHashMap::default();
    let mut out: Vec<Entry> = insts
        .into_iter()
        .filter(|i| seen.insert(*i))
        .filter_map(|i| {
            let (form, back) = by_first_use(&i);
            let e = forms
                .entry(form)
                .or_insert_with(|| entry(form, label))
                .as_ref()?;
            Some(Entry {
                inst: i,
                reads: (0..32)
                    .filter(|&p| e.reads >> p & 1 == 1)
                    .fold(0, |m, p| m | 1 << back[p]),
                writes: e.writes.map(|p| back[p as usize]),
                ..*e
            })
        })
        .collect();
    out.sort_by(|a, b| a.latency.total_cmp(&b.latency));
    out
}

/// `inst` with its general registers renamed x0, x1, … by first use (SP
/// and ZR kept), and the map back from those names.
fn by_first_use(inst: &Inst) -> (Inst, [R; 33]) {
    let mut back: [R; 33] = std::array::from_fn(|r| r as R);
    let mut to: [Option<R>; 33] = [None; 33];
    let mut next = 0;
    let form = super::problem::rename_with(inst, &mut |r| {
        if r == SP || r == ZR {
            return r;
        }
        *to[r as usize].get_or_insert_with(|| {
            back[next as usize] = r;
            next += 1;
            next - 1
        })
    });
    (form, back)
}

fn shifted(rm: R) -> Operand2 {
    Operand2::Shifted {
        rm,
        kind: ShiftKind::Lsl,
        amount: 0,
    }
}

fn width_of(sf: bool) -> u32 {
    if sf {
        64
    } else {
        32
    }
}

/// Immediates `add`/`sub` encode.
fn arith_imm(v: u64) -> bool {
    v < 4096 || (v & 0xfff == 0 && v >> 12 < 4096)
}

fn one_source(s: &Shape, sf: bool, rd: R, out: &mut Vec<Inst>) {
    let w = width_of(sf);
    let mask = imm::mask(w);
    for &c in &s.consts {
        let c = c & mask;
        if imm::is_mov_imm(c, w) || c == 0 {
            out.push(Inst {
                op: Op::MovImm { rd, value: c },
                sf,
            });
        }
    }
    let flag_forms: &[bool] = if s.flags { &[false, true] } else { &[false] };
    for &rn in s.sources.iter().chain([ZR].iter()) {
        let logic = |kind, invert, flags, op2| Op::Logic {
            kind,
            invert,
            flags,
            rd,
            rn,
            op2,
        };
        if rn != ZR {
            // `mov rd, rn` is `orr rd, zr, rn` (not `orr rd, rn, rn`, which
            // computes the same but reads oddly in a diff).
            let mov = Op::Logic {
                kind: LogicKind::Orr,
                invert: false,
                flags: false,
                rd,
                rn: ZR,
                op2: shifted(rn),
            };
            out.push(Inst { op: mov, sf });
            let mvn = Op::Logic {
                kind: LogicKind::Orr,
                invert: true,
                flags: false,
                rd,
                rn: ZR,
                op2: shifted(rn),
            };
            out.push(Inst { op: mvn, sf });
            for &flags in flag_forms {
                let op = Op::AddSub {
                    sub: true,
                    flags,
                    rd,
                    rn: ZR,
                    op2: shifted(rn),
                };
                out.push(Inst { op, sf });
            }
            for kind in [
                UnaryKind::Clz,
                UnaryKind::Cls,
                UnaryKind::Rbit,
                UnaryKind::Rev,
                UnaryKind::Rev16,
            ] {
                out.push(Inst {
                    op: Op::Unary { kind, rd, rn },
                    sf,
                });
            }
            extensions(s, sf, rd, rn, out);
        }
        for &c in &s.consts {
            let c = c & mask;
            for &flags in flag_forms {
                if arith_imm(c) && rn != ZR {
                    for sub in [false, true] {
                        out.push(Inst {
                            op: Op::AddSub {
                                sub,
                                flags,
                                rd,
                                rn,
                                op2: Operand2::Imm(c),
                            },
                            sf,
                        });
                    }
                }
                if imm::is_logical_imm(c, w) && rn != ZR {
                    let kinds: &[LogicKind] = if flags {
                        &[LogicKind::And]
                    } else {
                        &[LogicKind::And, LogicKind::Orr, LogicKind::Eor]
                    };
                    for &kind in kinds {
                        out.push(Inst {
                            op: logic(kind, false, flags, Operand2::Imm(c)),
                            sf,
                        });
                    }
                }
            }
        }
        if rn == ZR {
            continue;
        }
        for &a in &s.shifts {
            if (a as u32) < w && a > 0 {
                for kind in [
                    ShiftKind::Lsl,
                    ShiftKind::Lsr,
                    ShiftKind::Asr,
                    ShiftKind::Ror,
                ] {
                    out.push(Inst {
                        op: Op::Shift {
                            kind,
                            rd,
                            rn,
                            amount: ShiftAmount::Imm(a),
                        },
                        sf,
                    });
                }
            }
        }
        if s.flags {
            for cond in CONDS {
                for kind in [SelKind::Csinc, SelKind::Csinv, SelKind::Csneg] {
                    out.push(Inst {
                        op: Op::CondSel {
                            kind,
                            rd,
                            rn,
                            rm: rn,
                            cond,
                        },
                        sf,
                    });
                }
            }
        }
    }
    if s.flags {
        for cond in CONDS {
            for kind in [SelKind::Csinc, SelKind::Csinv] {
                out.push(Inst {
                    op: Op::CondSel {
                        kind,
                        rd,
                        rn: ZR,
                        rm: ZR,
                        cond,
                    },
                    sf,
                });
            }
        }
    }
}

/// Bitfield extracts, inserts and extensions of `rn` into `rd`.
fn extensions(s: &Shape, sf: bool, rd: R, rn: R, out: &mut Vec<Inst>) {
    let w = width_of(sf) as u8;
    let mut positions: Vec<u8> = s.shifts.iter().copied().filter(|&p| p < w).collect();
    positions.push(0);
    let widths: Vec<u8> = s
        .consts
        .iter()
        .filter_map(|&c| u8::try_from(c).ok())
        .chain([1, 8, 16, 32])
        .chain(s.shifts.iter().copied())
        .filter(|&c| c >= 1 && c < w)
        .collect();
    for &lsb in &positions {
        for &width in &widths {
            if lsb as u32 + width as u32 > w as u32 {
                continue;
            }
            let at_bottom = (lsb, lsb + width - 1);
            let placed = ((w - lsb) % w, width - 1);
            for kind in [BfmKind::Unsigned, BfmKind::Signed, BfmKind::Insert] {
                for (immr, imms) in [at_bottom, placed] {
                    out.push(Inst {
                        op: Op::Bfm {
                            kind,
                            rd,
                            rn,
                            immr,
                            imms,
                        },
                        sf,
                    });
                }
            }
        }
    }
}

fn two_sources(s: &Shape, sf: bool, rd: R, out: &mut Vec<Inst>) {
    let w = width_of(sf) as u8;
    let flag_forms: &[bool] = if s.flags { &[false, true] } else { &[false] };
    let mut amounts: Vec<u8> = vec![0];
    amounts.extend(s.shifts.iter().copied().filter(|&a| a > 0 && a < w));
    for &rn in &s.sources {
        for &rm in &s.sources {
            for &flags in flag_forms {
                for &amount in &amounts {
                    for kind in [ShiftKind::Lsl, ShiftKind::Lsr, ShiftKind::Asr] {
                        if amount == 0 && kind != ShiftKind::Lsl {
                            continue;
                        }
                        let op2 = Operand2::Shifted { rm, kind, amount };
                        // Commutative forms: one operand order only.
                        let swapped = amount == 0 && rn > rm;
                        for sub in [false, true] {
                            if swapped && !sub {
                                continue;
                            }
                            out.push(Inst {
                                op: Op::AddSub {
                                    sub,
                                    flags,
                                    rd,
                                    rn,
                                    op2,
                                },
                                sf,
                            });
                        }
                        for (kind, invert) in [
                            (LogicKind::And, false),
                            (LogicKind::And, true),
                            (LogicKind::Orr, false),
                            (LogicKind::Orr, true),
                            (LogicKind::Eor, false),
                            (LogicKind::Eor, true),
                        ] {
                            if (flags && kind != LogicKind::And) || (swapped && !invert) {
                                continue;
                            }
                            out.push(Inst {
                                op: Op::Logic {
                                    kind,
                                    invert,
                                    flags,
                                    rd,
                                    rn,
                                    op2,
                                },
                                sf,
                            });
                        }
                    }
                }
            }
            extended_sources(s, sf, rd, rn, rm, out);
            for kind in [
                ShiftKind::Lsl,
                ShiftKind::Lsr,
                ShiftKind::Asr,
                ShiftKind::Ror,
            ] {
                out.push(Inst {
                    op: Op::Shift {
                        kind,
                        rd,
                        rn,
                        amount: ShiftAmount::Reg(rm),
                    },
                    sf,
                });
            }
            for sub in [false, true] {
                out.push(Inst {
                    op: Op::MulAdd {
                        sub,
                        rd,
                        rn,
                        rm,
                        ra: ZR,
                    },
                    sf,
                });
                for &ra in &s.sources {
                    out.push(Inst {
                        op: Op::MulAdd {
                            sub,
                            rd,
                            rn,
                            rm,
                            ra,
                        },
                        sf,
                    });
                }
            }
            for signed in [false, true] {
                out.push(Inst {
                    op: Op::Div { signed, rd, rn, rm },
                    sf,
                });
                if sf {
                    out.push(Inst {
                        op: Op::MulHigh { signed, rd, rn, rm },
                        sf,
                    });
                }
            }
            for &lsb in &amounts {
                out.push(Inst {
                    op: Op::Extr { rd, rn, rm, lsb },
                    sf,
                });
            }
            if s.flags {
                for cond in CONDS {
                    for kind in [
                        SelKind::Csel,
                        SelKind::Csinc,
                        SelKind::Csinv,
                        SelKind::Csneg,
                    ] {
                        out.push(Inst {
                            op: Op::CondSel {
                                kind,
                                rd,
                                rn,
                                rm,
                                cond,
                            },
                            sf,
                        });
                    }
                }
            }
        }
    }
}

/// Loads into `rd` from the original's bases: every size and extension,
/// with the original's offsets or a register index (scaled or extended).
fn loads(s: &Shape, rd: R, out: &mut Vec<Inst>) {
    const SIZES: [(u8, bool, bool); 9] = [
        (1, false, false),
        (1, true, false),
        (1, true, true),
        (2, false, false),
        (2, true, false),
        (2, true, true),
        (4, false, false),
        (4, true, true),
        (8, false, true),
    ];
    let mut offsets: Vec<i64> = vec![0];
    offsets.extend(
        s.consts
            .iter()
            .map(|&c| c as i64)
            .filter(|c| (-256..4096).contains(c)),
    );
    for &base in &s.loads {
        for (bytes, signed, sf) in SIZES {
            let scale = bytes.trailing_zeros() as u8;
            let mut addrs: Vec<AddrOffset> = offsets
                .iter()
                .filter(|&&o| o % bytes as i64 == 0 || (-256..256).contains(&o))
                .map(|&o| AddrOffset::Imm(o))
                .collect();
            for &rm in s.sources.iter().filter(|&&r| r != base) {
                for (signed_ext, bits) in [(false, 64), (false, 32), (true, 32)] {
                    for amount in [0, scale] {
                        let ext = Extend {
                            signed: signed_ext,
                            bits,
                        };
                        addrs.push(AddrOffset::Reg { rm, ext, amount });
                    }
                }
            }
            for offset in addrs {
                let addr = Addr {
                    base,
                    offset,
                    mode: Writeback::None,
                };
                out.push(Inst {
                    op: Op::Load {
                        rt: rd,
                        rt2: None,
                        bytes,
                        signed,
                        addr,
                    },
                    sf,
                });
            }
        }
    }
}

/// `add`/`sub` (and their compares) with an extended register.
fn extended_sources(s: &Shape, sf: bool, rd: R, rn: R, rm: R, out: &mut Vec<Inst>) {
    let flag_forms: &[bool] = if s.flags { &[false, true] } else { &[false] };
    let bits: &[u8] = if sf { &[8, 16, 32] } else { &[8, 16] };
    for &b in bits {
        for signed in [false, true] {
            let ext = Extend { signed, bits: b };
            for amount in [0u8, 1, 2, 3] {
                if amount > 0 && !s.shifts.contains(&amount) {
                    continue;
                }
                let op2 = Operand2::Extended { rm, ext, amount };
                for &flags in flag_forms {
                    for sub in [false, true] {
                        out.push(Inst {
                            op: Op::AddSub {
                                sub,
                                flags,
                                rd,
                                rn,
                                op2,
                            },
                            sf,
                        });
                        if flags {
                            out.push(Inst {
                                op: Op::AddSub {
                                    sub,
                                    flags,
                                    rd: ZR,
                                    rn,
                                    op2,
                                },
                                sf,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// Flag-only instructions: compares and tests.
fn compares(s: &Shape, sf: bool, out: &mut Vec<Inst>) {
    let w = width_of(sf);
    for &rn in &s.sources {
        for &rm in s.sources.iter().chain([ZR].iter()) {
            for sub in [false, true] {
                out.push(Inst {
                    op: Op::AddSub {
                        sub,
                        flags: true,
                        rd: ZR,
                        rn,
                        op2: shifted(rm),
                    },
                    sf,
                });
            }
            let op2 = shifted(rm);
            out.push(Inst {
                op: Op::Logic {
                    kind: LogicKind::And,
                    invert: false,
                    flags: true,
                    rd: ZR,
                    rn,
                    op2,
                },
                sf,
            });
        }
        for &c in &s.consts {
            let c = c & imm::mask(w);
            if arith_imm(c) {
                for sub in [false, true] {
                    out.push(Inst {
                        op: Op::AddSub {
                            sub,
                            flags: true,
                            rd: ZR,
                            rn,
                            op2: Operand2::Imm(c),
                        },
                        sf,
                    });
                }
            }
            if imm::is_logical_imm(c, w) {
                let op2 = Operand2::Imm(c);
                out.push(Inst {
                    op: Op::Logic {
                        kind: LogicKind::And,
                        invert: false,
                        flags: true,
                        rd: ZR,
                        rn,
                        op2,
                    },
                    sf,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries built once per register form are the entries built one by
    /// one: same instructions, reads, writes, flags and latencies.
    #[test]
    fn entries_by_form_equal_entries_one_by_one() {
        let shape = Shape {
            sources: vec![0, 1, 2],
            dests: vec![0, 3],
            widths: vec![true, false],
            consts: vec![0, 1, 5, 0xff, u64::MAX, 0x8000_0000_0000_0000],
            shifts: vec![1, 3, 31, 63],
            flags: true,
            loads: vec![1],
        };
        let insts = data_insts(&shape);
        let mut seen = std::collections::HashSet::new();
        let mut want: Vec<Entry> = insts
            .iter()
            .filter(|i| seen.insert(**i))
            .filter_map(|&i| entry(i, ""))
            .collect();
        want.sort_by(|a, b| a.latency.total_cmp(&b.latency));
        let got = finish(insts, "");
        assert!(got.len() > 1000, "{} entries", got.len());
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
}
