//! Per-instruction effects: which locations an instruction reads, which it
//! overwrites entirely, which it may change, and where control goes next.
//!
//! This is the project's own table, not capstone's (capstone reports
//! `cmp x1, x2` as writing x1). Anything not listed here is *opaque*: it reads
//! everything, kills nothing and may branch anywhere, so liveness stays sound
//! for macro invocations and instructions we do not model.

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

/// Integer, FP and SIMD data-processing instructions: operand 0 is the
/// destination, the rest are sources.
const DATA: &[&str] = &[
    "add", "adds", "sub", "subs", "adc", "adcs", "sbc", "sbcs", "neg", "negs", "ngc", "ngcs",
    "and", "ands", "orr", "orn", "eor", "eon", "bic", "bics", "mvn", "mov", "movz", "movn", "lsl",
    "lsr", "asr", "ror", "lslv", "lsrv", "asrv", "rorv", "mul", "madd", "msub", "mneg", "smull",
    "umull", "smulh", "umulh", "smaddl", "smsubl", "umaddl", "umsubl", "smnegl", "umnegl", "sdiv",
    "udiv", "cls", "clz", "rbit", "rev", "rev16", "rev32", "rev64", "sxtb", "sxth", "sxtw", "uxtb",
    "uxth", "uxtw", "sbfm", "ubfm", "sbfx", "ubfx", "sbfiz", "ubfiz", "extr", "csel", "csinc",
    "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg", "adr", "adrp", "crc32b", "crc32h",
    "crc32w", "crc32x", "crc32cb", "crc32ch", "crc32cw", "crc32cx", "abs", "cnt", "ctz", "smax",
    "smin", "umax", "umin", // floating point
    "fmov", "fadd", "fsub", "fmul", "fdiv", "fneg", "fabs", "fsqrt", "fmadd", "fmsub", "fnmadd",
    "fnmsub", "fnmul", "fmax", "fmin", "fmaxnm", "fminnm", "frinta", "frinti", "frintm", "frintn",
    "frintp", "frintx", "frintz", "fcvt", "fcvtzs", "fcvtzu", "fcvtas", "fcvtau", "fcvtms",
    "fcvtmu", "fcvtns", "fcvtnu", "fcvtps", "fcvtpu", "scvtf", "ucvtf", "fcsel", "fabd", "frecpe",
    "frsqrte", "frecps", "frsqrts", "faddp", "fmaxp", "fminp", "fmaxv", "fminv", "fmaxnmv",
    "fminnmv", "fmaxnmp", "fminnmp", "fcmeq", "fcmge", "fcmgt", "fcmle", "fcmlt", "facge", "facgt",
    "fcvtl", "fcvtl2", "fcvtn", "fcvtxn", "frecpx", // SIMD integer
    "addp", "addv", "uaddlv", "saddlv", "umaxv", "uminv", "smaxv", "sminv", "not", "movi", "mvni",
    "dup", "umov", "smov", "ext", "zip1", "zip2", "uzp1", "uzp2", "trn1", "trn2", "tbl", "cmeq",
    "cmge", "cmgt", "cmhi", "cmhs", "cmle", "cmlt", "cmtst", "shl", "sshr", "ushr", "srshr",
    "urshr", "sshll", "ushll", "sshll2", "ushll2", "sxtl", "uxtl", "sxtl2", "uxtl2", "xtn",
    "sqxtn", "uqxtn", "sqxtun", "shrn", "rshrn", "sqshrn", "uqshrn", "sqrshrn", "uqrshrn",
    "sqshrun", "sqrshrun", "saddl", "uaddl", "ssubl", "usubl", "saddw", "uaddw", "ssubw", "usubw",
    "smull2", "umull2", "saddl2", "uaddl2", "ssubl2", "usubl2", "saddw2", "uaddw2", "ssubw2",
    "usubw2", "sqadd", "uqadd", "sqsub", "uqsub", "sabd", "uabd", "sabdl", "uabdl", "sabdl2",
    "uabdl2", "shadd", "uhadd", "srhadd", "urhadd", "shsub", "uhsub", "smaxp", "sminp", "umaxp",
    "uminp", "sqabs", "sqneg", "uaddlp", "saddlp", "sqdmulh", "sqrdmulh", "sqdmull", "sqdmull2",
    "pmul", "pmull", "pmull2", "sshl", "ushl", "srshl", "urshl", "sqshl", "uqshl", "sqrshl",
    "uqrshl", "sqshlu", "urecpe", "ursqrte", "addhn", "subhn", "raddhn", "rsubhn", "fmulx",
    "fcvtzs", "fcvtzu",
];

/// Instructions that also read their destination: accumulators, inserts,
/// and narrowing `...2` forms that write only the upper half.
const READS_DEST: &[&str] = &[
    "movk",
    "bfi",
    "bfxil",
    "bfm",
    "bfc",
    "ins",
    "mla",
    "mls",
    "sdot",
    "udot",
    "usdot",
    "bif",
    "bit",
    "bsl",
    "sli",
    "sri",
    "tbx",
    "saba",
    "uaba",
    "sabal",
    "uabal",
    "sabal2",
    "uabal2",
    "sadalp",
    "uadalp",
    "smlal",
    "umlal",
    "smlal2",
    "umlal2",
    "smlsl",
    "umlsl",
    "smlsl2",
    "umlsl2",
    "sqdmlal",
    "sqdmlsl",
    "sqdmlal2",
    "sqdmlsl2",
    "fmla",
    "fmls",
    "fmlal",
    "fmlsl",
    "fmlal2",
    "fmlsl2",
    "ssra",
    "usra",
    "srsra",
    "ursra",
    "sqrdmlah",
    "sqrdmlsh",
    "aese",
    "aesd",
    "sha1c",
    "sha1m",
    "sha1p",
    "sha1su0",
    "sha1su1",
    "sha256h",
    "sha256h2",
    "sha256su0",
    "sha256su1",
    "xtn2",
    "sqxtn2",
    "uqxtn2",
    "sqxtun2",
    "shrn2",
    "rshrn2",
    "sqshrn2",
    "uqshrn2",
    "sqrshrn2",
    "uqrshrn2",
    "sqshrun2",
    "sqrshrun2",
    "addhn2",
    "subhn2",
    "raddhn2",
    "rsubhn2",
    "fcvtn2",
    "fcvtxn2",
];

/// Data-processing instructions that set NZCV.
const SETS_FLAGS: &[&str] = &[
    "adds", "subs", "adcs", "sbcs", "ands", "bics", "negs", "ngcs",
];

/// Instructions that read NZCV.
const READS_FLAGS: &[&str] = &[
    "adc", "adcs", "sbc", "sbcs", "ngc", "ngcs", "csel", "csinc", "csinv", "csneg", "cset",
    "csetm", "cinc", "cinv", "cneg", "fcsel", "ccmp", "ccmn", "fccmp", "fccmpe",
];

/// Compares: no destination, set NZCV.
const COMPARES: &[&str] = &[
    "cmp", "cmn", "tst", "ccmp", "ccmn", "fcmp", "fcmpe", "fccmp", "fccmpe",
];

const LOADS: &[&str] = &[
    "ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrsw", "ldur", "ldurb", "ldurh", "ldursb", "ldursh",
    "ldursw", "ldp", "ldpsw", "ldnp", "ldtr", "ldtrb", "ldtrh", "ldtrsb", "ldtrsh", "ldtrsw",
    "ldar", "ldarb", "ldarh", "ldapr", "ldaprb", "ldaprh", "ldapur", "ldapurb", "ldapurh", "ldxr",
    "ldxrb", "ldxrh", "ldaxr", "ldaxrb", "ldaxrh", "ldxp", "ldaxp", "ld1", "ld2", "ld3", "ld4",
    "ld1r", "ld2r", "ld3r", "ld4r", "ldlar", "ldlarb", "ldlarh",
];

const STORES: &[&str] = &[
    "str", "strb", "strh", "stur", "sturb", "sturh", "stp", "stnp", "sttr", "sttrb", "sttrh",
    "stlr", "stlrb", "stlrh", "stlur", "stlurb", "stlurh", "st1", "st2", "st3", "st4", "stllr",
    "stllrb", "stllrh",
];

/// Store-exclusives: the first operand receives a status.
const STORE_EXCLUSIVE: &[&str] = &[
    "stxr", "stxrb", "stxrh", "stlxr", "stlxrb", "stlxrh", "stxp", "stlxp",
];

/// No architectural effect we model (hints).
const HINTS: &[&str] = &[
    "nop", "hint", "yield", "bti", "prfm", "prfum", "csdb", "esb", "sev", "sevl", "wfe", "wfi",
    "isb", "dmb", "dsb", "clrex", "ssbb", "pssbb", "sb",
];

fn has(list: &[&str], m: &str) -> bool {
    list.contains(&m)
}

/// Does `mnemonic` read its destination besides its named sources (`movk`,
/// `bfi`, accumulates)? The chain-of-code trace shows the old value as an
/// argument for these.
pub fn reads_destination(mnemonic: &str) -> bool {
    has(READS_DEST, mnemonic)
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

/// The effects of one instruction.
pub fn effects(insn: &Insn) -> Effects {
    let m = insn.mnemonic.as_str();
    let ops = &insn.operands;
    let all_reads = ops
        .iter()
        .map(operand_reads)
        .fold(LocSet::EMPTY, LocSet::union);
    let mut e = Effects {
        reads: LocSet::EMPTY,
        writes: LocSet::EMPTY,
        clobbers: LocSet::EMPTY,
        flow: Flow::Next,
        known: true,
    };
    let flag = LocSet::single(Loc::Nzcv);
    match m {
        "b" | "bc" => {
            let Some(target) = label_operand(insn) else {
                return Effects::opaque();
            };
            if insn.cond.is_some() {
                e.reads = flag;
            }
            e.flow = Flow::Branch {
                target,
                conditional: insn
                    .cond
                    .is_some_and(|c| !matches!(c, crate::asm::Cond::Al)),
            };
        }
        "cbz" | "cbnz" | "tbz" | "tbnz" => {
            let Some(target) = label_operand(insn) else {
                return Effects::opaque();
            };
            e.reads = all_reads;
            e.flow = Flow::Branch {
                target,
                conditional: true,
            };
        }
        "bl" | "blr" => {
            e.reads = LocSet::call_reads().union(all_reads);
            e.writes = LocSet::call_clobbers();
            e.clobbers = LocSet::call_clobbers().union(LocSet::single(Loc::Mem));
            e.flow = Flow::Call;
        }
        "ret" => {
            e.reads = LocSet::at_return().union(all_reads);
            e.flow = Flow::Return;
        }
        "br" => {
            e.reads = LocSet::ALL;
            e.flow = Flow::Indirect;
        }
        "brk" | "udf" | "hlt" => {
            e.reads = LocSet::ALL;
            e.flow = Flow::Stop;
        }
        "paciasp" | "pacibsp" | "autiasp" | "autibsp" => {
            e.reads = [Loc::X(30), Loc::Sp].into_iter().collect();
            e.writes = LocSet::single(Loc::X(30));
        }
        "mrs" if ops.len() == 2 => {
            let (d, _) = dest(&ops[0]);
            let sys = matches!(&ops[1], Operand::Sym(s) if s.eq_ignore_ascii_case("nzcv"));
            e.reads = if sys { flag } else { LocSet::EMPTY };
            e.writes = d;
        }
        "msr" if ops.len() == 2 => {
            let sys = matches!(&ops[0], Operand::Sym(s) if s.eq_ignore_ascii_case("nzcv"));
            if !sys {
                return Effects::opaque();
            }
            e.reads = operand_reads(&ops[1]);
            e.writes = flag;
        }
        _ if has(HINTS, m) => {
            e.reads = all_reads;
            if matches!(m, "dmb" | "dsb" | "isb") {
                e.reads = e.reads.union(LocSet::single(Loc::Mem));
                e.clobbers = LocSet::single(Loc::Mem);
            }
        }
        _ if has(COMPARES, m) => {
            e.reads = all_reads;
            e.writes = flag;
            if has(READS_FLAGS, m) {
                e.reads.insert(Loc::Nzcv);
            }
        }
        _ if has(LOADS, m) => {
            // Destinations are every operand before the memory operand.
            let mem_at = ops.iter().position(|o| matches!(o, Operand::Mem(_)));
            let n_dest = mem_at.unwrap_or(1).min(ops.len());
            let mut reads = LocSet::single(Loc::Mem);
            for o in &ops[..n_dest] {
                let (d, partial) = dest(o);
                e.writes = e.writes.union(d);
                if partial {
                    reads = reads.union(d);
                }
            }
            for o in &ops[n_dest..] {
                reads = reads.union(operand_reads(o));
            }
            e.reads = reads;
            e.writes = e.writes.union(mem_writeback(insn));
        }
        _ if has(STORES, m) || has(STORE_EXCLUSIVE, m) => {
            e.reads = all_reads.union(LocSet::single(Loc::Mem));
            if has(STORE_EXCLUSIVE, m) {
                if let Some(o) = ops.first() {
                    let (d, _) = dest(o);
                    e.writes = d;
                    e.reads = ops[1..]
                        .iter()
                        .map(operand_reads)
                        .fold(LocSet::single(Loc::Mem), LocSet::union);
                }
            }
            e.writes = e.writes.union(mem_writeback(insn));
            e.clobbers = LocSet::single(Loc::Mem);
        }
        _ if is_atomic_rmw(m) => {
            // ldadd/swp/cas families: rs (and for cas, rt) read; destination written.
            e.reads = all_reads.union(LocSet::single(Loc::Mem));
            if m.starts_with("st") {
                // stadd & co: no register result
            } else if m.starts_with("cas") {
                e.writes = ops.first().map(|o| dest(o).0).unwrap_or_default();
            } else if ops.len() >= 2 {
                e.writes = dest(&ops[1]).0;
            }
            e.clobbers = LocSet::single(Loc::Mem);
        }
        _ if has(DATA, m) || has(READS_DEST, m) => {
            let Some(first) = ops.first() else {
                return Effects::opaque();
            };
            let (d, partial) = dest(first);
            let mut reads = ops[1..]
                .iter()
                .map(operand_reads)
                .fold(LocSet::EMPTY, LocSet::union);
            if partial || has(READS_DEST, m) {
                reads = reads.union(d);
            }
            if has(READS_FLAGS, m) {
                reads.insert(Loc::Nzcv);
            }
            e.reads = reads;
            e.writes = d;
            if has(SETS_FLAGS, m) {
                e.writes.insert(Loc::Nzcv);
            }
        }
        _ => return Effects::opaque(),
    }
    e.clobbers = e.clobbers.union(e.writes);
    e
}

fn is_atomic_rmw(m: &str) -> bool {
    const STEMS: &[&str] = &[
        "ldadd", "ldclr", "ldeor", "ldset", "ldsmax", "ldsmin", "ldumax", "ldumin", "swp", "cas",
        "stadd", "stclr", "steor", "stset", "stsmax", "stsmin", "stumax", "stumin",
    ];
    STEMS.iter().any(|s| {
        m.strip_prefix(s).is_some_and(|rest| {
            matches!(
                rest,
                "" | "a"
                    | "al"
                    | "l"
                    | "b"
                    | "h"
                    | "ab"
                    | "ah"
                    | "alb"
                    | "alh"
                    | "lb"
                    | "lh"
                    | "p"
                    | "pa"
                    | "pal"
                    | "pl"
            )
        })
    })
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
