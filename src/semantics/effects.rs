//! Per-instruction effects: which locations an instruction reads, which it
//! overwrites entirely, which it may change, and where control goes next.
//!
//! The operand roles come from the project's own ISA table ([`super::isa`]),
//! not capstone's (capstone reports `cmp x1, x2` as writing x1). Anything the
//! table does not model is *opaque*: it reads everything, kills nothing and
//! may branch anywhere, so liveness stays sound for macro invocations and
//! instructions we do not model.

use super::isa::{self, Class, Flags, Opcode};
use super::locs::{Loc, LocSet};
use crate::asm::{AddrMode, Insn, Operand, Reg};

/// Where control may go after an instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Falls through to the next instruction.
    Next,
    /// Direct branch to a label; `conditional` branches may also fall through.
    Branch { target: String, conditional: bool },
    /// `bl`/`blr`: returns to the next instruction, caller-saved state clobbered.
    Call,
    /// `ret`: leaves the function.
    Return,
    /// `br` or an unknown instruction: may go anywhere.
    Indirect,
    /// `brk`/`udf`/`hlt`: does not continue.
    Stop,
}

/// What one instruction does to machine state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    /// Locations whose value the instruction depends on.
    pub reads: LocSet,
    /// Locations entirely overwritten (they kill liveness).
    pub writes: LocSet,
    /// Locations that may change (superset of `writes`; includes memory for
    /// stores and caller-saved state for calls).
    pub clobbers: LocSet,
    pub flow: Flow,
    /// False for instructions this table does not model.
    pub known: bool,
}

impl Effects {
    /// What is live before the instruction, given what is live after it:
    /// the backward liveness transfer, defined once for blocks, windows and
    /// pieces (`clobbers` do not kill: a may-write leaves the old value
    /// observable).
    pub fn live_before(&self, live_after: LocSet) -> LocSet {
        self.reads.union(live_after.minus(self.writes))
    }

    /// Whether the instruction can be deleted when nothing it writes is in
    /// `live_after`: the one definition of a dead instruction (the rule
    /// proposer's `dead_insn` guard).
    /// Loads are kept (removing one would hide a fault), as is anything
    /// that may write more than it surely writes (stores, calls) or changes
    /// the flow.
    pub fn removable_if_dead(&self, live_after: LocSet) -> bool {
        self.known
            && self.flow == Flow::Next
            && !self.writes.is_empty()
            && self.clobbers == self.writes
            && !self.reads.contains(Loc::Mem)
            && self.writes.intersect(live_after).is_empty()
    }

    fn opaque() -> Effects {
        Effects {
            reads: LocSet::ALL,
            writes: LocSet::EMPTY,
            clobbers: LocSet::ALL,
            flow: Flow::Indirect,
            known: false,
        }
    }
}

/// Locations live after each instruction of a straight-line run whose
/// live-out set is `live_out` (same length as `effs`).
pub fn live_after_each(effs: &[Effects], live_out: LocSet) -> Vec<LocSet> {
    let mut out = vec![LocSet::EMPTY; effs.len()];
    let mut live = live_out;
    for (i, e) in effs.iter().enumerate().rev() {
        out[i] = live;
        live = e.live_before(live);
    }
    out
}

/// Does `mnemonic` read its destination besides its named sources (`movk`,
/// `bfi`, accumulates)? The chain-of-code trace shows the old value as an
/// argument for these.
pub fn reads_destination(mnemonic: &str) -> bool {
    isa::has_flags(mnemonic, Flags::READS_DEST)
}

fn loc_of(r: &Reg) -> LocSet {
    r.loc().map(LocSet::single).unwrap_or_default()
}

/// All register locations an operand mentions (for sources).
fn operand_reads(o: &Operand) -> LocSet {
    match o {
        Operand::Reg(r) => loc_of(r),
        Operand::RegList { regs, .. } => regs.iter().map(loc_of).fold(LocSet::EMPTY, LocSet::union),
        Operand::Mem(m) => {
            let mut s = loc_of(&m.base);
            if let Some((r, _)) = &m.index {
                s = s.union(loc_of(r));
            }
            if let AddrMode::PostIndex(p) = &m.mode {
                s = s.union(operand_reads(p));
            }
            s
        }
        _ => LocSet::EMPTY,
    }
}

/// Union of the locations `ops` read.
fn reads_of(ops: &[Operand]) -> LocSet {
    ops.iter()
        .map(operand_reads)
        .fold(LocSet::EMPTY, LocSet::union)
}

/// A destination operand: what it overwrites, and whether it also keeps part
/// of the old value (lane writes), in which case it is read too.
fn dest(o: &Operand) -> (LocSet, bool) {
    match o {
        Operand::Reg(r) => (loc_of(r), r.is_partial_write()),
        Operand::RegList { regs, lane } => (
            regs.iter().map(loc_of).fold(LocSet::EMPTY, LocSet::union),
            lane.is_some(),
        ),
        _ => (LocSet::EMPTY, false),
    }
}

fn mem_writeback(insn: &Insn) -> LocSet {
    insn.operands
        .iter()
        .filter_map(|o| match o {
            Operand::Mem(m) if m.writes_back() => Some(loc_of(&m.base)),
            _ => None,
        })
        .fold(LocSet::EMPTY, LocSet::union)
}

fn label_operand(insn: &Insn) -> Option<String> {
    match insn.operands.last() {
        Some(Operand::Sym(s)) => Some(s.clone()),
        _ => None,
    }
}

fn nzcv() -> LocSet {
    LocSet::single(Loc::Nzcv)
}

fn mem() -> LocSet {
    LocSet::single(Loc::Mem)
}

/// The effects of one instruction: its [`isa`] row decides how its operands
/// are read.
pub fn effects(insn: &Insn) -> Effects {
    let Some(op) = Opcode::of(&insn.mnemonic) else {
        return Effects::opaque();
    };
    let class = op.class();
    let e = match class {
        Class::Branch | Class::CompareBranch => branch(insn, class),
        Class::Call | Class::Return | Class::IndirectBranch | Class::Stop => leave(insn, class),
        Class::PacLr | Class::SysRegRead | Class::SysRegWrite => system(insn, class),
        Class::Hint | Class::Barrier => hint(insn, class),
        Class::Compare => compare(insn, op),
        Class::Load => load(insn),
        Class::Store | Class::StoreExclusive => store(insn, class),
        Class::AtomicRmw | Class::CompareSwap | Class::AtomicStore => atomic(insn, class),
        Class::Data => data(insn, op),
        Class::Unmodelled => None,
    };
    let Some(mut e) = e else {
        return Effects::opaque();
    };
    e.clobbers = e.clobbers.union(e.writes);
    e
}

/// Effects that read `reads`, write nothing and fall through.
fn reading(reads: LocSet) -> Effects {
    Effects {
        reads,
        writes: LocSet::EMPTY,
        clobbers: LocSet::EMPTY,
        flow: Flow::Next,
        known: true,
    }
}

/// `b`/`b.cond` and the register tests; `None` without a label target.
fn branch(insn: &Insn, class: Class) -> Option<Effects> {
    let target = label_operand(insn)?;
    let (reads, conditional) = if class == Class::CompareBranch {
        (reads_of(&insn.operands), true)
    } else if insn.cond.is_some() {
        let always = matches!(insn.cond, Some(crate::asm::Cond::Al));
        (nzcv(), !always)
    } else {
        (LocSet::EMPTY, false)
    };
    let flow = Flow::Branch {
        target,
        conditional,
    };
    Some(Effects {
        flow,
        ..reading(reads)
    })
}

/// Calls, returns, register branches and stops.
fn leave(insn: &Insn, class: Class) -> Option<Effects> {
    let all = reads_of(&insn.operands);
    Some(match class {
        Class::Call => Effects {
            reads: LocSet::call_reads().union(all),
            writes: LocSet::call_clobbers(),
            clobbers: LocSet::call_clobbers().union(mem()),
            flow: Flow::Call,
            known: true,
        },
        Class::Return => Effects {
            flow: Flow::Return,
            ..reading(LocSet::at_return().union(all))
        },
        Class::IndirectBranch => Effects {
            flow: Flow::Indirect,
            ..reading(LocSet::ALL)
        },
        _ => Effects {
            flow: Flow::Stop,
            ..reading(LocSet::ALL)
        },
    })
}

fn is_nzcv(o: &Operand) -> bool {
    matches!(o, Operand::Sym(s) if s.eq_ignore_ascii_case("nzcv"))
}

/// x30 signing, and `mrs`/`msr` (modelled for `nzcv` only).
fn system(insn: &Insn, class: Class) -> Option<Effects> {
    let ops = &insn.operands;
    match class {
        Class::PacLr => Some(Effects {
            writes: LocSet::single(Loc::X(30)),
            ..reading([Loc::X(30), Loc::Sp].into_iter().collect())
        }),
        _ if ops.len() != 2 => None,
        Class::SysRegRead => Some(Effects {
            writes: dest(&ops[0]).0,
            ..reading(if is_nzcv(&ops[1]) {
                nzcv()
            } else {
                LocSet::EMPTY
            })
        }),
        _ if !is_nzcv(&ops[0]) => None,
        _ => Some(Effects {
            writes: nzcv(),
            ..reading(operand_reads(&ops[1]))
        }),
    }
}

/// Hints read their operands; barriers also order memory.
fn hint(insn: &Insn, class: Class) -> Option<Effects> {
    let mut e = reading(reads_of(&insn.operands));
    if class == Class::Barrier {
        e.reads = e.reads.union(mem());
        e.clobbers = mem();
    }
    Some(e)
}

fn compare(insn: &Insn, op: Opcode) -> Option<Effects> {
    let mut e = reading(reads_of(&insn.operands));
    e.writes = flags_written(op);
    e.reads = e.reads.union(flags_read(op));
    Some(e)
}

fn flags_read(op: Opcode) -> LocSet {
    if op.has(Flags::READS_NZCV) {
        nzcv()
    } else {
        LocSet::EMPTY
    }
}

fn flags_written(op: Opcode) -> LocSet {
    if op.has(Flags::SETS_NZCV) {
        nzcv()
    } else {
        LocSet::EMPTY
    }
}

/// Destinations are every operand before the memory operand.
fn load(insn: &Insn) -> Option<Effects> {
    let ops = &insn.operands;
    let mem_at = ops.iter().position(|o| matches!(o, Operand::Mem(_)));
    let n_dest = mem_at.unwrap_or(1).min(ops.len());
    let mut e = reading(mem().union(reads_of(&ops[n_dest..])));
    for o in &ops[..n_dest] {
        let (d, partial) = dest(o);
        e.writes = e.writes.union(d);
        if partial {
            e.reads = e.reads.union(d);
        }
    }
    e.writes = e.writes.union(mem_writeback(insn));
    Some(e)
}

/// Stores read their registers; a store-exclusive's first operand is its
/// status result instead.
fn store(insn: &Insn, class: Class) -> Option<Effects> {
    let ops = &insn.operands;
    let mut e = reading(reads_of(ops).union(mem()));
    if class == Class::StoreExclusive {
        if let Some(o) = ops.first() {
            e.writes = dest(o).0;
            e.reads = reads_of(&ops[1..]).union(mem());
        }
    }
    e.writes = e.writes.union(mem_writeback(insn));
    e.clobbers = mem();
    Some(e)
}

/// LSE atomics read every operand and memory; the old value goes to operand
/// 1 (`ldadd`, `swp`), operand 0 (`cas`) or nowhere (`stadd`).
fn atomic(insn: &Insn, class: Class) -> Option<Effects> {
    let ops = &insn.operands;
    let mut e = reading(reads_of(ops).union(mem()));
    e.writes = match class {
        Class::CompareSwap => ops.first().map(|o| dest(o).0).unwrap_or_default(),
        Class::AtomicRmw if ops.len() >= 2 => dest(&ops[1]).0,
        _ => LocSet::EMPTY,
    };
    e.clobbers = mem();
    Some(e)
}

/// Operand 0 is written (and read too for partial writes and
/// [`Flags::READS_DEST`]); the rest are read.
fn data(insn: &Insn, op: Opcode) -> Option<Effects> {
    let ops = &insn.operands;
    let (d, partial) = dest(ops.first()?);
    let mut e = reading(reads_of(&ops[1..]).union(flags_read(op)));
    if partial || op.has(Flags::READS_DEST) {
        e.reads = e.reads.union(d);
    }
    e.writes = d.union(flags_written(op));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(s: &str) -> Effects {
        effects(&Insn::parse_plain(s).unwrap())
    }
    fn set(s: &str) -> LocSet {
        LocSet::parse_list(s).unwrap()
    }

    #[test]
    fn compare_writes_only_flags() {
        let e = fx("cmp x1, x2");
        assert_eq!(e.reads, set("x1,x2"));
        assert_eq!(e.writes, set("nzcv"));
        let e = fx("tst w3, #4");
        assert_eq!((e.reads, e.writes), (set("x3"), set("nzcv")));
        let e = fx("ccmp x0, #3, #4, ne");
        assert_eq!((e.reads, e.writes), (set("x0,nzcv"), set("nzcv")));
    }

    #[test]
    fn flag_setters_and_consumers() {
        assert_eq!(fx("adds x0, x1, x2").writes, set("x0,nzcv"));
        assert_eq!(fx("csel w0, w1, w2, lt").reads, set("x1,x2,nzcv"));
        assert_eq!(fx("cset w0, eq").reads, set("nzcv"));
        assert_eq!(fx("cset w0, eq").writes, set("x0"));
        assert_eq!(fx("b.ne .L3").reads, set("nzcv"));
        assert_eq!(fx("adc x0, x1, x2").reads, set("x1,x2,nzcv"));
    }

    #[test]
    fn w_write_writes_whole_x() {
        let e = fx("add w0, w1, #1");
        assert_eq!(e.writes, set("x0"));
        assert_eq!(e.reads, set("x1"));
    }

    #[test]
    fn partial_writes_read_destination() {
        assert_eq!(fx("movk x0, #1, lsl #16").reads, set("x0"));
        assert_eq!(fx("mov v0.s[1], w2").reads, set("v0,x2"));
        assert_eq!(fx("mla v0.4s, v1.4s, v2.4s").reads, set("v0,v1,v2"));
        assert_eq!(fx("fmadd d0, d1, d2, d3").reads, set("v1,v2,v3"));
        assert_eq!(fx("ld1 {v0.s}[1], [x1]").reads, set("v0,x1,mem"));
    }

    #[test]
    fn memory_and_writeback() {
        let e = fx("ldr w0, [sp, #12]");
        assert_eq!((e.reads, e.writes), (set("sp,mem"), set("x0")));
        let e = fx("stp x29, x30, [sp, #-16]!");
        assert_eq!(e.reads, set("x29,x30,sp,mem"));
        assert_eq!(e.writes, set("sp"));
        assert!(e.clobbers.contains(Loc::Mem));
        let e = fx("ldp x1, x2, [x0], #16");
        assert_eq!(e.writes, set("x0,x1,x2"));
        let e = fx("str xzr, [x1, x2, lsl #3]");
        assert_eq!(e.reads, set("x1,x2,mem"));
        assert_eq!(fx("stxr w3, x1, [x2]").writes, set("x3"));
    }

    #[test]
    fn control_flow() {
        assert_eq!(
            fx("cbz w0, .L2").flow,
            Flow::Branch {
                target: ".L2".into(),
                conditional: true
            }
        );
        assert_eq!(
            fx("b .L2").flow,
            Flow::Branch {
                target: ".L2".into(),
                conditional: false
            }
        );
        let call = fx("bl printf");
        assert_eq!(call.flow, Flow::Call);
        assert!(call.writes.contains(Loc::X(0)) && call.writes.contains(Loc::Nzcv));
        assert!(!call.writes.contains(Loc::X(19)));
        assert_eq!(fx("ret").flow, Flow::Return);
        assert_eq!(fx("br x3").reads, LocSet::ALL);
    }

    #[test]
    fn unknown_is_opaque() {
        let e = fx("my_macro x0, x1");
        assert!(!e.known);
        assert_eq!(e.reads, LocSet::ALL);
        assert!(e.writes.is_empty());
        assert_eq!(e.flow, Flow::Indirect);
    }
}
