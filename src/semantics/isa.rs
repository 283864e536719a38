//! The ISA table: every fact the project keeps about an AArch64 mnemonic, in
//! one place.
//!
//! Liveness ([`super::effects`]), the built-in cost model, the validator's
//! sandbox check and the assembly parser (which mnemonics end in a condition)
//! all read this table instead of keeping their own lists, so they cannot
//! disagree about what an instruction touches. Each [`OpInfo`] row gives a
//! mnemonic's [`Class`] (how its operands map to reads and writes), its
//! [`Flags`] (NZCV, accumulating destinations, condition operands) and
//! whether the validator may run it ([`Sandbox`]).
//!
//! Built-in latencies are the one column kept elsewhere: they live in
//! `src/cost/builtin_timings.tsv`, keyed by these mnemonics (a test there
//! checks that every timed mnemonic is in this table).
//!
//! A mnemonic that is not here has no [`Opcode`]: macro invocations and
//! instructions we do not model stay opaque (they read everything, may write
//! everything and may branch anywhere).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// How an instruction's operands map to what it reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Operand 0 is the destination, the rest are sources.
    Data,
    /// No destination: reads its operands, writes NZCV.
    Compare,
    /// Every operand before the memory operand is a destination.
    Load,
    /// Every register operand is a source; memory may change.
    Store,
    /// A store whose operand 0 receives a success status.
    StoreExclusive,
    /// `ld<op>`/`swp`: reads and updates memory, old value into operand 1.
    AtomicRmw,
    /// `cas`: compares and swaps memory, old value into operand 0.
    CompareSwap,
    /// `st<op>`: updates memory, no register result.
    AtomicStore,
    /// `b`, `b.cond`, `bc.cond` to a label.
    Branch,
    /// `cbz`/`cbnz`/`tbz`/`tbnz`: test a register, branch to a label.
    CompareBranch,
    /// `bl`/`blr`: returns to the next instruction; AAPCS64 clobbers.
    Call,
    /// `ret`: leaves the function.
    Return,
    /// `br`: may go anywhere.
    IndirectBranch,
    /// `brk`/`udf`/`hlt`: does not continue.
    Stop,
    /// Signs or authenticates x30 with sp as the modifier.
    PacLr,
    /// `mrs`: modelled only for `nzcv`.
    SysRegRead,
    /// `msr`: modelled only for `nzcv`.
    SysRegWrite,
    /// No architectural effect we model.
    Hint,
    /// Orders memory: reads and may change it.
    Barrier,
    /// Known by name (so the sandbox can refuse it) but its effects are not
    /// modelled: opaque, like an unknown mnemonic.
    Unmodelled,
}

/// Properties that cut across classes, as a small bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// Reads the condition flags (carry users, conditional selects and
    /// compares).
    pub const READS_NZCV: Flags = Flags(1);
    /// Overwrites the condition flags.
    pub const SETS_NZCV: Flags = Flags(2);
    /// Also reads its destination besides its named sources (`movk`, `bfi`,
    /// accumulates, narrowing `...2` forms that write only the upper half).
    pub const READS_DEST: Flags = Flags(4);
    /// The operand list ends with a condition name (`csel w0, w1, w2, lt`),
    /// which the parser must not take for a symbol.
    pub const COND_OPERAND: Flags = Flags(8);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets together (a `const` `|`, usable in the table).
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        self.with(o)
    }
}

/// Whether the validator may run an instruction on made-up machine states
/// with a private memory (see `verify::support`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sandbox {
    Runs,
    /// Escapes the sandbox (system calls, barriers, calls, returns, ...).
    Refused,
    /// Refused, and so is every mnemonic that starts with the family's stem
    /// even if the table does not list it (`ldapursw`, `pacia1716`): an
    /// unlisted atomic or exclusive must not be judged by running it alone.
    RefusedFamily,
    /// Runs only when the system register is `nzcv`.
    NzcvOnly,
    /// `hint #n`: its effect depends on the number, some are system-wide.
    SystemHint,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpInfo {
    pub mnemonic: String,
    pub class: Class,
    pub flags: Flags,
    pub sandbox: Sandbox,
}

/// Rows as written in the source: every stem × every suffix is a mnemonic,
/// so atomic and exclusive families are spelled once.
struct Family {
    stems: &'static [&'static str],
    suffixes: &'static [&'static str],
    class: Class,
    flags: Flags,
    sandbox: Sandbox,
}

/// A family of plain mnemonics (no suffixes) that share every column.
const fn names(
    class: Class,
    flags: Flags,
    sandbox: Sandbox,
    stems: &'static [&'static str],
) -> Family {
    Family {
        stems,
        suffixes: &[""],
        class,
        flags,
        sandbox,
    }
}

const NO: Flags = Flags::NONE;
const READS: Flags = Flags::READS_NZCV;
const SETS: Flags = Flags::SETS_NZCV;
const COND: Flags = Flags::READS_NZCV.with(Flags::COND_OPERAND);

/// Ordering and size suffixes of the LSE atomics (`ldaddalh`, `caspal`).
const ATOMIC_SUFFIXES: &[&str] = &[
    "", "a", "al", "l", "b", "h", "ab", "ah", "alb", "alh", "lb", "lh", "p", "pa", "pal", "pl",
];

/// Byte and halfword forms of the exclusive and ordered accesses.
const SIZES: &[&str] = &["", "b", "h"];

use Class::*;
use Sandbox::{NzcvOnly, Refused, RefusedFamily, Runs, SystemHint};

/// The table.
const FAMILIES: &[Family] = &[
    // Control flow.
    names(Branch, NO, Runs, &["b", "bc"]),
    names(CompareBranch, NO, Runs, &["cbz", "cbnz", "tbz", "tbnz"]),
    names(Call, NO, Refused, &["bl", "blr"]),
    names(Return, NO, Refused, &["ret"]),
    names(IndirectBranch, NO, Refused, &["br"]),
    names(Stop, NO, Refused, &["brk", "udf", "hlt"]),
    names(
        Unmodelled,
        NO,
        Refused,
        &[
            "retaa", "retab", "braa", "brab", "blraa", "blrab", "braaz", "brabz", "blraaz",
            "blrabz", "eretaa", "eretab",
        ],
    ),
    // Exceptions, system instructions and maintenance.
    names(SysRegRead, NO, NzcvOnly, &["mrs"]),
    names(SysRegWrite, NO, NzcvOnly, &["msr"]),
    names(
        Unmodelled,
        NO,
        Refused,
        &[
            "svc", "hvc", "smc", "eret", "drps", "dcps1", "dcps2", "dcps3", "wfit", "wfet", "psb",
            "tsb", "sys", "sysl", "dc", "ic", "tlbi", "at", "cfinv",
        ],
    ),
    // Hints and barriers.
    names(Hint, NO, Runs, &["nop", "yield", "bti", "prfm", "prfum"]),
    names(Hint, NO, SystemHint, &["hint"]),
    names(
        Hint,
        NO,
        Refused,
        &[
            "csdb", "esb", "sev", "sevl", "wfe", "wfi", "clrex", "ssbb", "pssbb", "sb",
        ],
    ),
    names(Barrier, NO, Refused, &["dmb", "dsb", "isb"]),
    // Pointer authentication and memory tagging depend on system state.
    Family {
        stems: &["pac", "aut"],
        suffixes: &["iasp", "ibsp"],
        class: PacLr,
        flags: NO,
        sandbox: RefusedFamily,
    },
    names(Unmodelled, NO, Refused, &["xpaci", "xpacd", "xpaclri"]),
    names(
        Unmodelled,
        NO,
        Refused,
        &[
            "irg", "gmi", "subp", "subps", "addg", "subg", "stg", "stzg", "st2g", "stz2g", "ldg",
            "stgp",
        ],
    ),
    names(Unmodelled, NO, RefusedFamily, &["ld64b", "st64b"]),
    // Compares.
    names(Compare, SETS, Runs, &["cmp", "cmn", "tst", "fcmp", "fcmpe"]),
    names(
        Compare,
        SETS.with(COND),
        Runs,
        &["ccmp", "ccmn", "fccmp", "fccmpe"],
    ),
    // Loads.
    names(
        Load,
        NO,
        Runs,
        &[
            "ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrsw", "ldur", "ldurb", "ldurh", "ldursb",
            "ldursh", "ldursw", "ldp", "ldpsw", "ldnp", "ldtr", "ldtrb", "ldtrh", "ldtrsb",
            "ldtrsh", "ldtrsw", "ld1", "ld2", "ld3", "ld4", "ld1r", "ld2r", "ld3r", "ld4r",
        ],
    ),
    Family {
        stems: &["ldar", "ldapr", "ldapur", "ldlar", "ldxr", "ldaxr"],
        suffixes: SIZES,
        class: Load,
        flags: NO,
        sandbox: RefusedFamily,
    },
    names(Load, NO, RefusedFamily, &["ldxp", "ldaxp"]),
    // Stores.
    names(
        Store,
        NO,
        Runs,
        &[
            "str", "strb", "strh", "stur", "sturb", "sturh", "stp", "stnp", "sttr", "sttrb",
            "sttrh", "st1", "st2", "st3", "st4",
        ],
    ),
    Family {
        stems: &["stlr", "stlur", "stllr"],
        suffixes: SIZES,
        class: Store,
        flags: NO,
        sandbox: RefusedFamily,
    },
    Family {
        stems: &["stxr", "stlxr"],
        suffixes: SIZES,
        class: StoreExclusive,
        flags: NO,
        sandbox: RefusedFamily,
    },
    names(StoreExclusive, NO, RefusedFamily, &["stxp", "stlxp"]),
    // LSE atomics.
    Family {
        stems: &[
            "ldadd", "ldclr", "ldeor", "ldset", "ldsmax", "ldsmin", "ldumax", "ldumin", "swp",
        ],
        suffixes: ATOMIC_SUFFIXES,
        class: AtomicRmw,
        flags: NO,
        sandbox: RefusedFamily,
    },
    Family {
        stems: &["cas"],
        suffixes: ATOMIC_SUFFIXES,
        class: CompareSwap,
        flags: NO,
        sandbox: RefusedFamily,
    },
    Family {
        stems: &[
            "stadd", "stclr", "steor", "stset", "stsmax", "stsmin", "stumax", "stumin",
        ],
        suffixes: ATOMIC_SUFFIXES,
        class: AtomicStore,
        flags: NO,
        sandbox: RefusedFamily,
    },
    // Integer data processing.
    names(Data, SETS, Runs, &["adds", "subs", "negs", "ands", "bics"]),
    names(Data, SETS.with(READS), Runs, &["adcs", "sbcs", "ngcs"]),
    names(Data, READS, Runs, &["adc", "sbc", "ngc"]),
    names(
        Data,
        COND,
        Runs,
        &[
            "csel", "csinc", "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg", "fcsel",
        ],
    ),
    names(
        Data,
        NO,
        Runs,
        &[
            "add", "sub", "neg", "and", "orr", "orn", "eor", "eon", "bic", "mvn", "mov", "movz",
            "movn", "lsl", "lsr", "asr", "ror", "lslv", "lsrv", "asrv", "rorv", "mul", "madd",
            "msub", "mneg", "smull", "umull", "smulh", "umulh", "smaddl", "smsubl", "umaddl",
            "umsubl", "smnegl", "umnegl", "sdiv", "udiv", "cls", "clz", "rbit", "rev", "rev16",
            "rev32", "rev64", "sxtb", "sxth", "sxtw", "uxtb", "uxth", "uxtw", "sbfm", "ubfm",
            "sbfx", "ubfx", "sbfiz", "ubfiz", "extr", "adr", "adrp", "crc32b", "crc32h", "crc32w",
            "crc32x", "crc32cb", "crc32ch", "crc32cw", "crc32cx", "abs", "cnt", "ctz", "smax",
            "smin", "umax", "umin",
        ],
    ),
    // Floating point.
    names(
        Data,
        NO,
        Runs,
        &[
            "fmov", "fadd", "fsub", "fmul", "fdiv", "fneg", "fabs", "fsqrt", "fmadd", "fmsub",
            "fnmadd", "fnmsub", "fnmul", "fmax", "fmin", "fmaxnm", "fminnm", "frinta", "frinti",
            "frintm", "frintn", "frintp", "frintx", "frintz", "fcvt", "fcvtzs", "fcvtzu", "fcvtas",
            "fcvtau", "fcvtms", "fcvtmu", "fcvtns", "fcvtnu", "fcvtps", "fcvtpu", "scvtf", "ucvtf",
            "fabd", "frecpe", "frsqrte", "frecps", "frsqrts", "faddp", "fmaxp", "fminp", "fmaxv",
            "fminv", "fmaxnmv", "fminnmv", "fmaxnmp", "fminnmp", "fcmeq", "fcmge", "fcmgt",
            "fcmle", "fcmlt", "facge", "facgt", "fcvtl", "fcvtl2", "fcvtn", "fcvtxn", "frecpx",
            "fmulx",
        ],
    ),
    // SIMD integer.
    names(
        Data,
        NO,
        Runs,
        &[
            "addp", "addv", "uaddlv", "saddlv", "umaxv", "uminv", "smaxv", "sminv", "not", "movi",
            "mvni", "dup", "umov", "smov", "ext", "zip1", "zip2", "uzp1", "uzp2", "trn1", "trn2",
            "tbl", "cmeq", "cmge", "cmgt", "cmhi", "cmhs", "cmle", "cmlt", "cmtst", "shl", "sshr",
            "ushr", "srshr", "urshr", "sshll", "ushll", "sshll2", "ushll2", "sxtl", "uxtl",
            "sxtl2", "uxtl2", "xtn", "sqxtn", "uqxtn", "sqxtun", "shrn", "rshrn", "sqshrn",
            "uqshrn", "sqrshrn", "uqrshrn", "sqshrun", "sqrshrun", "saddl", "uaddl", "ssubl",
            "usubl", "saddw", "uaddw", "ssubw", "usubw", "smull2", "umull2", "saddl2", "uaddl2",
            "ssubl2", "usubl2", "saddw2", "uaddw2", "ssubw2", "usubw2", "sqadd", "uqadd", "sqsub",
            "uqsub", "sabd", "uabd", "sabdl", "uabdl", "sabdl2", "uabdl2", "shadd", "uhadd",
            "srhadd", "urhadd", "shsub", "uhsub", "smaxp", "sminp", "umaxp", "uminp", "sqabs",
            "sqneg", "uaddlp", "saddlp", "sqdmulh", "sqrdmulh", "sqdmull", "sqdmull2", "pmul",
            "pmull", "pmull2", "sshl", "ushl", "srshl", "urshl", "sqshl", "uqshl", "sqrshl",
            "uqrshl", "sqshlu", "urecpe", "ursqrte", "addhn", "subhn", "raddhn", "rsubhn",
        ],
    ),
    // Destinations that are also read: inserts, accumulates, narrowing
    // `...2` forms (upper half only), crypto rounds.
    names(
        Data,
        Flags::READS_DEST,
        Runs,
        &[
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
        ],
    ),
];

/// A mnemonic the table knows: an index into it, so copying and comparing
/// is free and [`Opcode::info`] is one array access.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Opcode(u16);

/// The expanded rows and the name index, built once.
struct Table {
    rows: Vec<OpInfo>,
    by_name: HashMap<String, Opcode>,
}

fn expand() -> Vec<OpInfo> {
    let mut rows = Vec::new();
    for f in FAMILIES {
        for stem in f.stems {
            for suffix in f.suffixes {
                rows.push(OpInfo {
                    mnemonic: format!("{stem}{suffix}"),
                    class: f.class,
                    flags: f.flags,
                    sandbox: f.sandbox,
                });
            }
        }
    }
    rows
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let rows = expand();
        let by_name = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.mnemonic.clone(), Opcode(i as u16)))
            .collect();
        Table { rows, by_name }
    })
}

impl Opcode {
    /// The opcode of a lower-case mnemonic (`add`, `b` for `b.ne`), or `None`
    /// for a mnemonic the table does not know, which callers treat as opaque.
    pub fn of(mnemonic: &str) -> Option<Opcode> {
        table().by_name.get(mnemonic).copied()
    }

    /// Every opcode, in table order.
    pub fn all() -> impl Iterator<Item = Opcode> {
        (0..table().rows.len()).map(|i| Opcode(i as u16))
    }

    pub fn info(self) -> &'static OpInfo {
        &table().rows[self.0 as usize]
    }

    pub fn mnemonic(self) -> &'static str {
        &self.info().mnemonic
    }

    pub fn class(self) -> Class {
        self.info().class
    }

    /// Whether the row has every flag of `f`.
    pub fn has(self, f: Flags) -> bool {
        self.info().flags.contains(f)
    }
}

impl fmt::Debug for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opcode({})", self.mnemonic())
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mnemonic())
    }
}

/// Whether `mnemonic` has every flag of `f`; `false` for unknown mnemonics.
pub fn has_flags(mnemonic: &str, f: Flags) -> bool {
    Opcode::of(mnemonic).is_some_and(|op| op.has(f))
}

/// How the validator treats `mnemonic`. An unknown mnemonic runs (the
/// assembler decides whether it exists) unless it starts with the stem of a
/// [`Sandbox::RefusedFamily`].
pub fn sandbox(mnemonic: &str) -> Sandbox {
    if let Some(op) = Opcode::of(mnemonic) {
        return op.info().sandbox;
    }
    let in_family = FAMILIES
        .iter()
        .filter(|f| f.sandbox == Sandbox::RefusedFamily)
        .flat_map(|f| f.stems)
        .any(|stem| mnemonic.starts_with(stem));
    if in_family {
        Sandbox::RefusedFamily
    } else {
        Sandbox::Runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_mnemonic_is_listed_once() {
        let rows = expand();
        let mut seen = HashSet::new();
        for r in &rows {
            assert!(seen.insert(r.mnemonic.as_str()), "{} twice", r.mnemonic);
            assert_eq!(r.mnemonic, r.mnemonic.to_ascii_lowercase());
        }
        assert_eq!(Opcode::all().count(), rows.len());
    }

    #[test]
    fn lookups() {
        let add = Opcode::of("add").unwrap();
        assert_eq!((add.mnemonic(), add.class()), ("add", Class::Data));
        assert_eq!(add.to_string(), "add");
        assert!(Opcode::of("my_macro").is_none());
        assert!(Opcode::of("ADD").is_none(), "the parser lower-cases first");
        for op in Opcode::all() {
            assert_eq!(Opcode::of(op.mnemonic()), Some(op));
        }
    }

    #[test]
    fn families_expand() {
        assert_eq!(Opcode::of("ldaddalh").unwrap().class(), Class::AtomicRmw);
        assert_eq!(Opcode::of("caspal").unwrap().class(), Class::CompareSwap);
        assert_eq!(Opcode::of("stsminl").unwrap().class(), Class::AtomicStore);
        assert_eq!(Opcode::of("stlxrb").unwrap().class(), Class::StoreExclusive);
        assert_eq!(Opcode::of("autibsp").unwrap().class(), Class::PacLr);
    }

    #[test]
    fn flags() {
        assert!(has_flags("adcs", Flags::READS_NZCV | Flags::SETS_NZCV));
        assert!(has_flags("ccmp", Flags::COND_OPERAND | Flags::SETS_NZCV));
        assert!(!has_flags("adc", Flags::COND_OPERAND));
        assert!(has_flags("movk", Flags::READS_DEST));
        assert!(!has_flags("my_macro", Flags::NONE));
    }

    /// The status result is what the old cost table missed.
    #[test]
    fn store_exclusives_write_their_status() {
        let store_exclusives = Opcode::all().filter(|op| op.class() == Class::StoreExclusive);
        for op in store_exclusives {
            let insn = crate::asm::Insn::parse_plain(&format!("{op} w3, x1, [x2]")).unwrap();
            let e = crate::semantics::effects(&insn);
            assert!(e.writes.contains(crate::semantics::Loc::X(3)), "{op}");
        }
    }

    #[test]
    fn sandbox_families_cover_unlisted_members() {
        assert_eq!(sandbox("add"), Sandbox::Runs);
        assert_eq!(sandbox("svc"), Sandbox::Refused);
        assert_eq!(sandbox("ldapursw"), Sandbox::RefusedFamily);
        assert_eq!(sandbox("pacia1716"), Sandbox::RefusedFamily);
        assert_eq!(sandbox("my_macro"), Sandbox::Runs);
    }
}
