//! Whether two runs agree on everything observable, and a description of the
//! first thing they do not agree on.
//!
//! Observable: the exit taken (or a fault), live-out registers as whole
//! registers, NZCV when live, and memory: the set of bytes written and their
//! values. Memory is compared whether or not it is live, and a candidate may
//! not write a byte the original did not write, even with the value already
//! there, because another thread or a device could see that store.

use super::exec::{Exit, Outcome};
use super::state::MachineState;
use crate::asm::Insn;
use crate::semantics::{Loc, LocSet};
use std::fmt::Write as _;

/// The first observable difference between an original's and a candidate's
/// run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    Exit {
        original: Exit,
        candidate: Exit,
    },
    Register {
        loc: Loc,
        original: u128,
        candidate: u128,
    },
    WrittenOnlyBy {
        original: bool,
        addr: u64,
        value: u8,
    },
    MemoryValue {
        addr: u64,
        original: u8,
        candidate: u8,
    },
}

/// `None` if the runs agree. Two faulting runs agree: the program would
/// crash either way.
pub fn difference(a: &Outcome, b: &Outcome, live_out: LocSet) -> Option<Difference> {
    match (&a.exit, &b.exit) {
        (Exit::Fault(_), Exit::Fault(_)) => return None,
        (x, y) if x != y => {
            return Some(Difference::Exit {
                original: x.clone(),
                candidate: y.clone(),
            })
        }
        _ => {}
    }
    for loc in live_out.iter() {
        let (x, y) = match loc {
            Loc::X(n) => (u128::from(a.x[n as usize]), u128::from(b.x[n as usize])),
            Loc::Sp => (u128::from(a.sp), u128::from(b.sp)),
            Loc::Nzcv => (u128::from(a.nzcv), u128::from(b.nzcv)),
            Loc::V(n) => match (&a.v, &b.v) {
                (Some(va), Some(vb)) => (va[n as usize], vb[n as usize]),
                _ => continue,
            },
            Loc::Mem => continue,
        };
        if x != y {
            return Some(Difference::Register {
                loc,
                original: x,
                candidate: y,
            });
        }
    }
    // Both write lists are sorted by address: merge them.
    let (mut i, mut j) = (0, 0);
    while i < a.writes.len() || j < b.writes.len() {
        match (a.writes.get(i), b.writes.get(j)) {
            (Some(&(pa, va)), Some(&(pb, vb))) if pa == pb => {
                if va != vb {
                    return Some(Difference::MemoryValue {
                        addr: pa,
                        original: va,
                        candidate: vb,
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(&(pa, va)), Some(&(pb, _))) if pa < pb => {
                return Some(Difference::WrittenOnlyBy {
                    original: true,
                    addr: pa,
                    value: va,
                })
            }
            (Some(&(pa, va)), None) => {
                return Some(Difference::WrittenOnlyBy {
                    original: true,
                    addr: pa,
                    value: va,
                })
            }
            (_, Some(&(pb, vb))) => {
                return Some(Difference::WrittenOnlyBy {
                    original: false,
                    addr: pb,
                    value: vb,
                })
            }
            (None, None) => break,
        }
    }
    None
}

fn flags(nzcv: u64) -> String {
    "NZCV"
        .chars()
        .enumerate()
        .map(|(k, c)| {
            if nzcv & (1 << (31 - k)) != 0 {
                c
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn value(loc: Loc, v: u128) -> String {
    match loc {
        Loc::Nzcv => flags(v as u64),
        Loc::V(_) => format!("{v:#034x}"),
        _ => format!("{v:#x}"),
    }
}

/// Registers (and flags) a block mentions, in a stable order: the input
/// state that matters for a human reading the counterexample.
fn mentioned(block: &[Insn]) -> LocSet {
    let mut set = LocSet::EMPTY;
    for insn in block {
        for r in insn.regs() {
            if let Some(l) = r.loc() {
                set.insert(l);
            }
        }
        // Flags are never named: the semantics say who reads them.
        if crate::semantics::effects(insn).reads.contains(Loc::Nzcv) {
            set.insert(Loc::Nzcv);
        }
    }
    set
}

/// A one-paragraph description: the input registers the original mentions,
/// then what differs with both values.
pub fn describe(st: &MachineState, original: &[Insn], diff: &Difference) -> String {
    let mut s = String::from("input:");
    let inputs = mentioned(original);
    if inputs.is_empty() {
        s.push_str(" (the original reads no registers)");
    }
    for loc in inputs.iter() {
        let v = match loc {
            Loc::X(n) => u128::from(st.x[n as usize]),
            Loc::Sp => u128::from(st.sp),
            Loc::V(n) => st.v[n as usize],
            Loc::Nzcv => u128::from(st.nzcv),
            Loc::Mem => continue,
        };
        let _ = write!(s, " {loc}={}", value(loc, v));
    }
    s.push_str("; ");
    match diff {
        Difference::Exit {
            original,
            candidate,
        } => {
            let _ = write!(
                s,
                "exit differs: original {original}, candidate {candidate}"
            );
        }
        Difference::Register {
            loc,
            original,
            candidate,
        } => {
            let _ = write!(
                s,
                "{loc} differs: original {}, candidate {}",
                value(*loc, *original),
                value(*loc, *candidate)
            );
        }
        Difference::WrittenOnlyBy {
            original: true,
            addr,
            value,
        } => {
            let _ = write!(
                s,
                "memory at {addr:#x}: original writes {value:#04x}, candidate does not write it"
            );
        }
        Difference::WrittenOnlyBy { addr, value, .. } => {
            let _ = write!(
                s,
                "memory at {addr:#x}: candidate writes {value:#04x}, original does not write it"
            );
        }
        Difference::MemoryValue {
            addr,
            original,
            candidate,
        } => {
            let _ = write!(
                s,
                "memory at {addr:#x} differs: original {original:#04x}, candidate {candidate:#04x}"
            );
        }
    }
    s
}
