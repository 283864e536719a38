//! The executable semantics (`src/semantics`, read concretely by
//! `semantics::concrete`) against Unicorn, the reference.
//!
//! Every instruction form the decoder supports is generated from a table of
//! operand templates (random registers, the same register as source and
//! destination, `xzr`/`sp` where the encoding allows them, boundary
//! immediates), in instances of [`INSTANCES`] each run on
//! [`STATES_PER_INSTANCE`] states, so every form sees at least
//! [`MIN_STATES_PER_FORM`] states. Random straight-line blocks of 1–8
//! instructions drawn from the same table, some ending in a branch, follow.
//! After each run the two must agree on x0–x30, sp, NZCV, every byte of the
//! data region, which way the final branch went, and whether the run faulted
//! (an access outside the data region).
//!
//! Register values mix random bits, boundary values (0, 1, -1, INT64_MIN and
//! MAX, the 32-bit edges, shift amounts 31/32/63/64...), small integers and
//! copies of other registers; NZCV is random. Memory bases point near the
//! middle of a 64 KiB data region, on a few states anywhere (mostly
//! faulting) or just across one of its edges. Two faulting runs must still
//! agree on registers and memory, except on the bytes within 16 bytes of
//! the region's edges: Unicorn (QEMU) writes the in-bounds part of a store
//! that straddles an edge before it faults, the interpreter writes none of
//! it. Those bytes are UNKNOWN architecturally, and the validator counts any
//! two faulting runs as agreeing (`src/verify/compare.rs`).
//!
//! All the code is assembled once, by `aarch64-linux-gnu-as`, and mapped once
//! into one Unicorn engine per thread: every block ends in `brk #0` (fell
//! through) followed by `1: brk #1` (its branch was taken), so a run stops
//! with an exception at one of the two and Unicorn keeps its translations
//! cached between runs (see `src/verify/exec.rs`). The code region is mapped
//! execute-only, so a data access that strays into it faults in Unicorn as it
//! does in the interpreter, whose memory is the data region only.
//!
//! Run with `--nocapture` to see the summary line. `SEMANTICS_DIFF_SEED`
//! picks another seed.

use peephole::asm::{Insn, RegKind};
use peephole::semantics::concrete::{self, Concrete, Ending, Machine, Memory};
use peephole::semantics::inst::{AddrOffset, Inst, Op, Writeback, SP, ZR};
use peephole::verify::state::{boundary_values, SplitMix64};
use std::collections::BTreeSet;
use std::ffi::c_void;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;
use unicorn_engine::{uc_error as UcError, Arch, HookType, Mode, Prot, RegisterARM64, Unicorn};

/// Instances (random operands) generated per form.
const INSTANCES: usize = 50;
/// States each instance runs on.
const STATES_PER_INSTANCE: usize = 200;
/// What the two above give every form.
const MIN_STATES_PER_FORM: usize = 10_000;
/// Random blocks, and the states each runs on.
const BLOCKS: usize = 20_000;
const STATES_PER_BLOCK: usize = 100;

const CODE_BASE: u64 = 0x5a00_0000;
const DATA_BASE: u64 = 0x3000_0000;
const DATA_SIZE: u64 = 0x1_0000;
/// Pointers into the data region: its middle, give or take this much.
const POINTER_SPREAD: u64 = 1024;

/// Registers blocks draw ordinary operands from (x0–x26): x27 is their
/// memory index and x28 (with sp) their memory base, which nothing else in a
/// block writes, so most block runs complete.
const BLOCK_REGS: u64 = 27;
const BLOCK_INDEX: u8 = 27;
const BLOCK_BASE: u8 = 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Data,
    Mem,
    Branch,
}

type GenFn = Box<dyn Fn(&mut Gen) -> String>;
/// The address operand of a load or store: (generator, base, access size).
type AddrGen = fn(&mut Gen, u8, u64) -> String;

struct Form {
    name: String,
    kind: Kind,
    gen: GenFn,
}

/// Operand generator for one instruction (or, in a block, for all of its
/// instructions, so that they share registers).
struct Gen<'a> {
    rng: &'a mut SplitMix64,
    sf: bool,
    block: bool,
    used: Vec<u8>,
}

const CONDS: [&str; 16] = [
    "eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv",
];

fn reg_name(n: u8, wide: bool) -> String {
    match (n, wide) {
        (ZR, true) => "xzr".into(),
        (ZR, false) => "wzr".into(),
        (SP, true) => "sp".into(),
        (SP, false) => "wsp".into(),
        (n, true) => format!("x{n}"),
        (n, false) => format!("w{n}"),
    }
}

impl Gen<'_> {
    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.rng.chance(pct)
    }
    fn width(&self) -> u64 {
        if self.sf {
            64
        } else {
            32
        }
    }
    /// A general register number, often one already used (so sources and
    /// destinations coincide).
    fn num(&mut self) -> u8 {
        let n = if !self.used.is_empty() && self.chance(30) {
            self.rng.pick(&self.used)
        } else {
            self.below(if self.block { BLOCK_REGS } else { 31 }) as u8
        };
        self.used.push(n);
        n
    }
    /// General or zero register of the given width.
    fn rz_w(&mut self, wide: bool) -> String {
        if self.chance(6) {
            return reg_name(ZR, wide);
        }
        let n = self.num();
        reg_name(n, wide)
    }
    /// General register only.
    fn rg_w(&mut self, wide: bool) -> String {
        let n = self.num();
        reg_name(n, wide)
    }
    /// General or stack pointer; a destination is never sp in a block.
    fn rsp_w(&mut self, wide: bool, dest: bool) -> String {
        if !(dest && self.block) && self.chance(8) {
            return reg_name(SP, wide);
        }
        self.rg_w(wide)
    }
    /// Register operands of the form's width.
    fn r(&mut self) -> String {
        self.rz_w(self.sf)
    }
    fn g(&mut self) -> String {
        self.rg_w(self.sf)
    }
    fn s(&mut self) -> String {
        self.rsp_w(self.sf, false)
    }
    fn sd(&mut self) -> String {
        self.rsp_w(self.sf, true)
    }
    fn x(&mut self) -> String {
        self.rz_w(true)
    }
    fn w(&mut self) -> String {
        self.rz_w(false)
    }
    /// 0..n, biased to both ends and the middle.
    fn biased(&mut self, n: u64) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => n - 1,
            2 => self.rng.pick(&[1, 31, 32, n / 2]).min(n - 1),
            _ => self.below(n),
        }
    }
    fn amt(&mut self) -> u64 {
        let w = self.width();
        self.biased(w)
    }
    fn imm12(&mut self) -> u64 {
        self.biased(4096)
    }
    fn cond(&mut self, all: bool) -> &'static str {
        CONDS[self.below(if all { 16 } else { 14 }) as usize]
    }
    /// `, <shift> #n` from `kinds` (sometimes nothing for a plain lsl).
    fn shift(&mut self, kinds: &[&str]) -> String {
        if self.chance(10) {
            return String::new();
        }
        let k = self.rng.pick(kinds);
        let a = self.amt();
        format!(", {k} #{a}")
    }
    /// An extended register operand: `wN, uxtb #2`, `xN, sxtx`...
    fn extended(&mut self) -> String {
        let n = if self.sf { 8 } else { 6 };
        let ext = [
            "uxtb", "uxth", "uxtw", "sxtb", "sxth", "sxtw", "uxtx", "sxtx",
        ][self.below(n) as usize];
        let m = self.rz_w(ext.ends_with('x'));
        if self.chance(20) {
            format!("{m}, {ext}")
        } else {
            let a = self.below(5);
            format!("{m}, {ext} #{a}")
        }
    }
    /// A logical (bitmask) immediate of the form's width.
    fn bitmask(&mut self) -> u64 {
        let sizes: &[u32] = if self.sf {
            &[2, 4, 8, 16, 32, 64]
        } else {
            &[2, 4, 8, 16, 32]
        };
        let e = self.rng.pick(sizes);
        let ones = 1 + self.below(e as u64 - 1) as u32;
        let rot = self.below(e as u64) as u32;
        let emask = if e == 64 { u64::MAX } else { (1u64 << e) - 1 };
        let mut elem = (1u64 << ones) - 1;
        if rot > 0 {
            elem = ((elem >> rot) | (elem << (e - rot))) & emask;
        }
        let mut v = 0u64;
        let mut at = 0;
        while at < self.width() as u32 {
            v |= elem << at;
            at += e;
        }
        v
    }
    fn imm16(&mut self) -> u64 {
        match self.below(5) {
            0 => 0xffff,
            1 => 0x8000,
            2 => 1,
            _ => self.below(0x10000),
        }
    }
    /// A memory base: any x register or sp; x28 or sp in a block.
    fn base(&mut self) -> u8 {
        if self.block {
            return if self.chance(50) { SP } else { BLOCK_BASE };
        }
        if self.chance(20) {
            return SP;
        }
        // Remembered, so that the transfer register is often the base.
        let n = self.below(31) as u8;
        self.used.push(n);
        n
    }
    /// An index register (x27 in a block), not `base` unless by chance.
    fn index(&mut self, base: u8) -> u8 {
        if self.block {
            return BLOCK_INDEX;
        }
        if self.chance(3) {
            return ZR;
        }
        loop {
            let n = self.below(31) as u8;
            if n != base || self.chance(5) {
                return n;
            }
        }
    }
    /// A transfer register: not the base when the base is written back,
    /// not the pair's first register for a load pair (both unpredictable).
    fn rt(&mut self, avoid: &[u8]) -> u8 {
        loop {
            let n = if self.chance(4) { ZR } else { self.num() };
            if !avoid.contains(&n) {
                return n;
            }
            if n != ZR {
                self.used.pop();
            }
        }
    }
    fn simm9(&mut self) -> i64 {
        match self.below(6) {
            0 => -256,
            1 => 255,
            2 => 0,
            _ => self.below(512) as i64 - 256,
        }
    }
}

/// Both widths of a form.
fn both(
    v: &mut Vec<Form>,
    name: &str,
    kind: Kind,
    f: impl Fn(&mut Gen) -> String + Clone + 'static,
) {
    for sf in [false, true] {
        let f = f.clone();
        v.push(Form {
            name: format!("{name} ({})", if sf { "x" } else { "w" }),
            kind,
            gen: Box::new(move |g: &mut Gen| {
                g.sf = sf;
                f(g)
            }),
        });
    }
}

/// One width only.
fn one(
    v: &mut Vec<Form>,
    name: &str,
    sf: bool,
    kind: Kind,
    f: impl Fn(&mut Gen) -> String + 'static,
) {
    v.push(Form {
        name: format!("{name} ({})", if sf { "x" } else { "w" }),
        kind,
        gen: Box::new(move |g: &mut Gen| {
            g.sf = sf;
            f(g)
        }),
    });
}

/// The transfer sizes of single-register loads and stores:
/// (mnemonic, 64-bit register, access bytes).
const LDST: [(&str, bool, u64); 13] = [
    ("ldr", true, 8),
    ("ldr", false, 4),
    ("ldrb", false, 1),
    ("ldrh", false, 2),
    ("ldrsb", false, 1),
    ("ldrsb", true, 1),
    ("ldrsh", false, 2),
    ("ldrsh", true, 2),
    ("ldrsw", true, 4),
    ("str", true, 8),
    ("str", false, 4),
    ("strb", false, 1),
    ("strh", false, 2),
];

const PAIRS: [(&str, bool, u64); 5] = [
    ("ldp", true, 8),
    ("ldp", false, 4),
    ("ldpsw", true, 4),
    ("stp", true, 8),
    ("stp", false, 4),
];

fn forms() -> Vec<Form> {
    use Kind::*;
    let mut forms: Vec<Form> = Vec::new();
    let v = &mut forms;
    // Add/subtract.
    for op in ["add", "sub", "adds", "subs"] {
        let flags = op.ends_with('s');
        let dest = move |g: &mut Gen| if flags { g.r() } else { g.sd() };
        both(v, &format!("{op} imm"), Data, move |g| {
            let (d, n, i) = (dest(g), g.s(), g.imm12());
            format!("{op} {d}, {n}, #{i}")
        });
        both(v, &format!("{op} imm lsl 12"), Data, move |g| {
            let (d, n, i) = (dest(g), g.s(), g.imm12());
            format!("{op} {d}, {n}, #{i}, lsl #12")
        });
        both(v, &format!("{op} shifted"), Data, move |g| {
            let (d, n, m, s) = (g.r(), g.r(), g.r(), g.shift(&["lsl", "lsr", "asr"]));
            format!("{op} {d}, {n}, {m}{s}")
        });
        both(v, &format!("{op} extended"), Data, move |g| {
            let (d, n, e) = (dest(g), g.s(), g.extended());
            format!("{op} {d}, {n}, {e}")
        });
        both(v, &format!("{op} extended lsl sp"), Data, move |g| {
            let sp = if g.sf { "sp" } else { "wsp" };
            let (d, m, a) = (dest(g), g.r(), g.below(5));
            format!("{op} {d}, {sp}, {m}, lsl #{a}")
        });
    }
    for op in ["cmp", "cmn"] {
        both(v, &format!("{op} imm"), Data, move |g| {
            let (n, i) = (g.s(), g.imm12());
            let lsl = if g.chance(30) { ", lsl #12" } else { "" };
            format!("{op} {n}, #{i}{lsl}")
        });
        both(v, &format!("{op} shifted"), Data, move |g| {
            let (n, m, s) = (g.r(), g.r(), g.shift(&["lsl", "lsr", "asr"]));
            format!("{op} {n}, {m}{s}")
        });
        both(v, &format!("{op} extended"), Data, move |g| {
            let (n, e) = (g.s(), g.extended());
            format!("{op} {n}, {e}")
        });
    }
    for op in ["neg", "negs"] {
        both(v, op, Data, move |g| {
            let (d, m, s) = (g.r(), g.r(), g.shift(&["lsl", "lsr", "asr"]));
            format!("{op} {d}, {m}{s}")
        });
    }
    for op in ["adc", "adcs", "sbc", "sbcs"] {
        both(v, op, Data, move |g| {
            let (d, n, m) = (g.r(), g.r(), g.r());
            format!("{op} {d}, {n}, {m}")
        });
    }
    for op in ["ngc", "ngcs"] {
        both(v, op, Data, move |g| {
            let (d, m) = (g.r(), g.r());
            format!("{op} {d}, {m}")
        });
    }
    // Logical.
    for op in ["and", "orr", "eor", "ands"] {
        both(v, &format!("{op} imm"), Data, move |g| {
            let d = if op == "ands" { g.r() } else { g.sd() };
            let (n, i) = (g.r(), g.bitmask());
            format!("{op} {d}, {n}, #{i:#x}")
        });
    }
    both(v, "tst imm", Data, |g| {
        let (n, i) = (g.r(), g.bitmask());
        format!("tst {n}, #{i:#x}")
    });
    for op in ["and", "orr", "eor", "bic", "orn", "eon", "ands", "bics"] {
        both(v, &format!("{op} shifted"), Data, move |g| {
            let (d, n, m, s) = (g.r(), g.r(), g.r(), g.shift(&["lsl", "lsr", "asr", "ror"]));
            format!("{op} {d}, {n}, {m}{s}")
        });
    }
    for op in ["tst", "mvn"] {
        both(v, &format!("{op} shifted"), Data, move |g| {
            let (n, m, s) = (g.r(), g.r(), g.shift(&["lsl", "lsr", "asr", "ror"]));
            format!("{op} {n}, {m}{s}")
        });
    }
    // Moves.
    both(v, "mov imm movz", Data, |g| {
        let d = g.r();
        let v = g.imm16() << (16 * g.below(g.width() / 16));
        format!("mov {d}, #{v:#x}")
    });
    both(v, "mov imm movn", Data, |g| {
        let d = g.r();
        let mask = if g.sf { u64::MAX } else { u32::MAX as u64 };
        let v = !(g.imm16() << (16 * g.below(g.width() / 16))) & mask;
        format!("mov {d}, #{v:#x}")
    });
    both(v, "mov imm bitmask", Data, |g| {
        let (d, i) = (g.sd(), g.bitmask());
        format!("mov {d}, #{i:#x}")
    });
    both(v, "mov reg", Data, |g| {
        let (d, n) = (g.r(), g.r());
        format!("mov {d}, {n}")
    });
    both(v, "mov sp", Data, |g| {
        let sp = if g.sf { "sp" } else { "wsp" };
        let r = g.g();
        if g.block || g.chance(50) {
            format!("mov {r}, {sp}")
        } else {
            format!("mov {sp}, {r}")
        }
    });
    for op in ["movz", "movn", "movk"] {
        both(v, op, Data, move |g| {
            let (d, i) = (g.r(), g.imm16());
            let s = 16 * g.below(g.width() / 16);
            if s == 0 && g.chance(50) {
                format!("{op} {d}, #{i:#x}")
            } else {
                format!("{op} {d}, #{i:#x}, lsl #{s}")
            }
        });
    }
    // Shifts.
    for op in ["lsl", "lsr", "asr", "ror"] {
        both(v, &format!("{op} imm"), Data, move |g| {
            let (d, n, a) = (g.r(), g.r(), g.amt());
            format!("{op} {d}, {n}, #{a}")
        });
        both(v, &format!("{op} reg"), Data, move |g| {
            let (d, n, m) = (g.r(), g.r(), g.r());
            format!("{op} {d}, {n}, {m}")
        });
        both(v, &format!("{op}v"), Data, move |g| {
            let (d, n, m) = (g.r(), g.r(), g.r());
            format!("{op}v {d}, {n}, {m}")
        });
    }
    both(v, "extr", Data, |g| {
        let (d, n, m, a) = (g.r(), g.r(), g.r(), g.amt());
        format!("extr {d}, {n}, {m}, #{a}")
    });
    // Bitfields.
    for op in ["ubfm", "sbfm", "bfm"] {
        both(v, op, Data, move |g| {
            let (d, n, r, s) = (g.r(), g.r(), g.amt(), g.amt());
            format!("{op} {d}, {n}, #{r}, #{s}")
        });
    }
    for op in ["ubfx", "sbfx", "ubfiz", "sbfiz", "bfi", "bfxil", "bfc"] {
        both(v, op, Data, move |g| {
            let d = g.r();
            let n = if op == "bfc" {
                String::new()
            } else {
                format!("{}, ", g.r())
            };
            let lsb = g.amt();
            let width = 1 + g.biased(g.width() - lsb);
            format!("{op} {d}, {n}#{lsb}, #{width}")
        });
    }
    for (op, widths) in [
        ("sxtb", &[false, true][..]),
        ("sxth", &[false, true][..]),
        ("sxtw", &[true][..]),
        ("uxtb", &[false][..]),
        ("uxth", &[false][..]),
        // Not an architectural alias; GNU as takes it as `mov w, w`.
        ("uxtw", &[true][..]),
    ] {
        for &sf in widths {
            one(v, op, sf, Data, move |g| {
                let (d, n) = (g.r(), g.w());
                format!("{op} {d}, {n}")
            });
        }
    }
    // Multiply and divide.
    for op in ["mul", "mneg", "madd", "msub"] {
        both(v, op, Data, move |g| {
            let (d, n, m) = (g.r(), g.r(), g.r());
            if op.starts_with("ma") || op.starts_with("ms") {
                let a = g.r();
                format!("{op} {d}, {n}, {m}, {a}")
            } else {
                format!("{op} {d}, {n}, {m}")
            }
        });
    }
    for op in [
        "smull", "umull", "smnegl", "umnegl", "smaddl", "umaddl", "smsubl", "umsubl",
    ] {
        one(v, op, true, Data, move |g| {
            let (d, n, m) = (g.x(), g.w(), g.w());
            if op.contains("add") || op.contains("sub") {
                let a = g.x();
                format!("{op} {d}, {n}, {m}, {a}")
            } else {
                format!("{op} {d}, {n}, {m}")
            }
        });
    }
    for op in ["smulh", "umulh"] {
        one(v, op, true, Data, move |g| {
            let (d, n, m) = (g.x(), g.x(), g.x());
            format!("{op} {d}, {n}, {m}")
        });
    }
    for op in ["udiv", "sdiv"] {
        both(v, op, Data, move |g| {
            let (d, n, m) = (g.r(), g.r(), g.r());
            format!("{op} {d}, {n}, {m}")
        });
    }
    // Bit and byte operations.
    for op in ["clz", "cls", "rbit", "rev", "rev16"] {
        both(v, op, Data, move |g| {
            let (d, n) = (g.r(), g.r());
            format!("{op} {d}, {n}")
        });
    }
    for op in ["rev32", "rev64"] {
        one(v, op, true, Data, move |g| {
            let (d, n) = (g.x(), g.x());
            format!("{op} {d}, {n}")
        });
    }
    // Conditional select and compare.
    for op in ["csel", "csinc", "csinv", "csneg"] {
        both(v, op, Data, move |g| {
            let (d, n, m, c) = (g.r(), g.r(), g.r(), g.cond(true));
            format!("{op} {d}, {n}, {m}, {c}")
        });
    }
    for op in ["cset", "csetm"] {
        both(v, op, Data, move |g| {
            let (d, c) = (g.r(), g.cond(false));
            format!("{op} {d}, {c}")
        });
    }
    for op in ["cinc", "cinv", "cneg"] {
        both(v, op, Data, move |g| {
            let (d, n, c) = (g.r(), g.r(), g.cond(false));
            format!("{op} {d}, {n}, {c}")
        });
    }
    for op in ["ccmp", "ccmn"] {
        both(v, &format!("{op} reg"), Data, move |g| {
            let (n, m, f, c) = (g.r(), g.r(), g.below(16), g.cond(true));
            format!("{op} {n}, {m}, #{f}, {c}")
        });
        both(v, &format!("{op} imm"), Data, move |g| {
            let (n, i, f, c) = (g.r(), g.biased(32), g.below(16), g.cond(true));
            format!("{op} {n}, #{i}, #{f}, {c}")
        });
    }
    one(v, "nop", true, Data, |_| "nop".into());
    // Loads and stores.
    for (op, wide, size) in LDST {
        let addr_forms: [(&str, AddrGen); 7] = [
            ("uoff", |g, b, size| {
                let k = g.biased(4096);
                if k == 0 && g.chance(50) {
                    format!("[{}]", reg_name(b, true))
                } else {
                    format!("[{}, #{}]", reg_name(b, true), k * size)
                }
            }),
            ("reg lsl", |g, b, size| {
                let i = g.index(b);
                let a = if g.chance(50) {
                    size.trailing_zeros()
                } else {
                    0
                };
                if a == 0 && g.chance(50) {
                    format!("[{}, {}]", reg_name(b, true), reg_name(i, true))
                } else {
                    format!("[{}, {}, lsl #{a}]", reg_name(b, true), reg_name(i, true))
                }
            }),
            ("reg uxtw", |g, b, size| reg_ext(g, b, size, "uxtw")),
            ("reg sxtw", |g, b, size| reg_ext(g, b, size, "sxtw")),
            ("reg sxtx", |g, b, size| reg_ext(g, b, size, "sxtx")),
            ("pre", |g, b, _| {
                format!("[{}, #{}]!", reg_name(b, true), g.simm9())
            }),
            ("post", |g, b, _| {
                format!("[{}], #{}", reg_name(b, true), g.simm9())
            }),
        ];
        for (mode, addr) in addr_forms {
            let wb = matches!(mode, "pre" | "post");
            one(v, &format!("{op} {mode}"), wide, Mem, move |g| {
                let b = g.base();
                let avoid = if wb { vec![b] } else { vec![] };
                let t = g.rt(&avoid);
                let a = addr(g, b, size);
                format!("{op} {}, {a}", reg_name(t, wide))
            });
        }
        let uop = op.replacen("ldr", "ldur", 1).replacen("str", "stur", 1);
        one(v, &uop.clone(), wide, Mem, move |g| {
            let b = g.base();
            let t = g.rt(&[]);
            let o = g.simm9();
            format!("{uop} {}, [{}, #{o}]", reg_name(t, wide), reg_name(b, true))
        });
    }
    for (op, wide, size) in PAIRS {
        for mode in ["off", "pre", "post"] {
            one(v, &format!("{op} {mode}"), wide, Mem, move |g| {
                let b = g.base();
                let wb = mode != "off";
                let avoid1: Vec<u8> = if wb { vec![b] } else { vec![] };
                let t1 = g.rt(&avoid1);
                let mut avoid2 = avoid1.clone();
                if op.starts_with("ld") {
                    avoid2.push(t1);
                }
                let t2 = g.rt(&avoid2);
                let o = (g.below(128) as i64 - 64) * size as i64;
                let base = reg_name(b, true);
                let a = match mode {
                    "off" => format!("[{base}, #{o}]"),
                    "pre" => format!("[{base}, #{o}]!"),
                    _ => format!("[{base}], #{o}"),
                };
                format!("{op} {}, {}, {a}", reg_name(t1, wide), reg_name(t2, wide))
            });
        }
    }
    for (op, wide, size) in [
        ("ldnp", true, 8i64),
        ("ldnp", false, 4),
        ("stnp", true, 8),
        ("stnp", false, 4),
    ] {
        one(v, op, wide, Mem, move |g| {
            let b = g.base();
            let t1 = g.rt(&[]);
            let avoid = if op == "ldnp" { vec![t1] } else { vec![] };
            let t2 = g.rt(&avoid);
            let o = (g.below(128) as i64 - 64) * size;
            format!(
                "{op} {}, {}, [{}, #{o}]",
                reg_name(t1, wide),
                reg_name(t2, wide),
                reg_name(b, true)
            )
        });
    }
    // Branches (the target is the `1:` pad right after the block).
    for c in CONDS {
        one(v, &format!("b.{c}"), true, Branch, move |_| {
            format!("b.{c} 1f")
        });
    }
    one(v, "b", true, Branch, |_| "b 1f".into());
    for op in ["cbz", "cbnz"] {
        both(v, op, Branch, move |g| {
            let r = g.r();
            format!("{op} {r}, 1f")
        });
    }
    for op in ["tbz", "tbnz"] {
        both(v, op, Branch, move |g| {
            let (r, b) = (g.r(), g.amt());
            format!("{op} {r}, #{b}, 1f")
        });
    }
    forms
}

fn reg_ext(g: &mut Gen, b: u8, size: u64, ext: &str) -> String {
    let i = g.index(b);
    let iw = ext.ends_with('x');
    let base = reg_name(b, true);
    let idx = reg_name(i, iw);
    match g.below(3) {
        0 => format!("[{base}, {idx}, {ext}]"),
        1 => format!("[{base}, {idx}, {ext} #0]"),
        _ => format!("[{base}, {idx}, {ext} #{}]", size.trailing_zeros()),
    }
}

/// One block to run: a form instance or a random block.
struct Case {
    /// Index into the form table, or `None` for a random block.
    form: Option<usize>,
    lines: Vec<String>,
    insts: Vec<Inst>,
    /// Address of the first instruction; the fall-through `brk` is at
    /// `start + 4 * len`, the taken one 4 bytes after.
    start: u64,
    bases: Vec<u8>,
    indices: Vec<u8>,
    mentioned: Vec<u8>,
}

impl Case {
    fn pad(&self) -> u64 {
        self.start + 4 * self.insts.len() as u64
    }
}

fn decode(lines: &[String]) -> Result<(Vec<Inst>, Vec<u8>), String> {
    let mut insts = Vec::new();
    let mut mentioned = BTreeSet::new();
    for l in lines {
        let insn = Insn::parse_plain(l).map_err(|e| format!("`{l}` does not parse: {e:?}"))?;
        for r in insn.regs() {
            match r.kind {
                RegKind::X | RegKind::W => {
                    mentioned.insert(r.num);
                }
                RegKind::Sp | RegKind::Wsp => {
                    mentioned.insert(SP);
                }
                _ => {}
            }
        }
        insts.push(Inst::decode(&insn).map_err(|e| format!("`{l}`: {e}"))?);
    }
    Ok((insts, mentioned.into_iter().collect()))
}

/// The registers a block uses as memory bases and as indices.
fn mem_roles(insts: &[Inst]) -> (Vec<u8>, Vec<u8>) {
    let (mut bases, mut indices) = (Vec::new(), Vec::new());
    for i in insts {
        let addr = match i.op {
            Op::Load { addr, .. } => addr,
            Op::Store { addr, .. } => addr,
            _ => continue,
        };
        if !bases.contains(&addr.base) {
            bases.push(addr.base);
        }
        if let AddrOffset::Reg { rm, .. } = addr.offset {
            if rm != ZR && !indices.contains(&rm) {
                indices.push(rm);
            }
        }
    }
    (bases, indices)
}

/// Generate every case: `INSTANCES` per form, then `BLOCKS` random blocks.
fn cases(forms: &[Form], seed: u64) -> (Vec<Case>, Vec<String>) {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut push =
        |form: Option<usize>, lines: Vec<String>, out: &mut Vec<Case>| match decode(&lines) {
            Ok((insts, mentioned)) => {
                let (bases, indices) = mem_roles(&insts);
                out.push(Case {
                    form,
                    lines,
                    insts,
                    start: 0,
                    bases,
                    indices,
                    mentioned,
                })
            }
            Err(e) => errors.push(format!(
                "{}: {e}",
                form.map_or("block".to_string(), |f| forms[f].name.clone())
            )),
        };
    for (fi, f) in forms.iter().enumerate() {
        for _ in 0..INSTANCES {
            let mut g = Gen {
                rng: &mut rng,
                sf: true,
                block: false,
                used: Vec::new(),
            };
            let line = (f.gen)(&mut g);
            push(Some(fi), vec![line], &mut out);
        }
    }
    let straight: Vec<usize> = (0..forms.len())
        .filter(|&i| forms[i].kind != Kind::Branch)
        .collect();
    let branches: Vec<usize> = (0..forms.len())
        .filter(|&i| forms[i].kind == Kind::Branch)
        .collect();
    for _ in 0..BLOCKS {
        let n = 1 + rng.below(8) as usize;
        let branch = rng.chance(40);
        let mut g = Gen {
            rng: &mut rng,
            sf: true,
            block: true,
            used: Vec::new(),
        };
        let mut lines = Vec::new();
        for k in 0..n {
            let f = if branch && k == n - 1 {
                g.rng.pick(&branches)
            } else {
                g.rng.pick(&straight)
            };
            lines.push((forms[f].gen)(&mut g));
        }
        push(None, lines, &mut out);
    }
    (out, errors)
}

/// Assemble all cases into one image, filling in their start addresses.
fn assemble(cases: &mut [Case]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut src = String::from(".text\n");
    let mut at = CODE_BASE;
    let mut line_of = Vec::new();
    for (i, c) in cases.iter_mut().enumerate() {
        c.start = at;
        for l in &c.lines {
            src.push_str(l);
            src.push('\n');
            line_of.push(i);
        }
        src.push_str("brk #0\n1: brk #1\n");
        line_of.push(i);
        line_of.push(i);
        at += 4 * (c.lines.len() as u64 + 2);
    }
    let s = dir.path().join("all.s");
    let o = dir.path().join("all.o");
    let bin = dir.path().join("all.bin");
    std::fs::write(&s, &src).unwrap();
    let as_out = Command::new("aarch64-linux-gnu-as")
        .args(["-march=armv8.2-a", "-o"])
        .arg(&o)
        .arg(&s)
        .output()
        .expect(
            "aarch64-linux-gnu-as is required (tools/setup.sh installs binutils-aarch64-linux-gnu)",
        );
    if !as_out.status.success() {
        let err = String::from_utf8_lossy(&as_out.stderr);
        let lines: Vec<&str> = src.lines().collect();
        let mut msg = String::new();
        for l in err.lines().take(20) {
            // "all.s:123: Error: ..."
            let n = l.split(':').nth(1).and_then(|n| n.parse::<usize>().ok());
            let text = n.and_then(|n| lines.get(n - 1)).copied().unwrap_or("");
            let _ = writeln!(msg, "{l}    [{text}]");
        }
        panic!("aarch64-linux-gnu-as failed:\n{msg}");
    }
    let st = Command::new("aarch64-linux-gnu-objcopy")
        .args(["-O", "binary", "-j", ".text"])
        .arg(&o)
        .arg(&bin)
        .status()
        .expect("aarch64-linux-gnu-objcopy is required");
    assert!(st.success(), "objcopy failed");
    let code = std::fs::read(&bin).unwrap();
    assert_eq!(
        code.len() as u64,
        at - CODE_BASE,
        "every line should assemble to one instruction"
    );
    code
}

/// Initial register state.
#[derive(Clone, Debug)]
struct State {
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
}

/// Values where integer semantics go wrong: signs, carries out of bit 31
/// and 63, shift amounts around 32 and 64.
const EDGES: &[u64] = &[
    0,
    1,
    2,
    u64::MAX,
    u64::MAX - 1,
    i64::MIN as u64,
    i64::MAX as u64,
    i64::MIN as u64 + 1,
    i64::MAX as u64 - 1,
    i32::MIN as i64 as u64,
    i32::MAX as u64,
    0x8000_0000,
    0x8000_0001,
    0xffff_ffff,
    0xffff_fffe,
    0x1_0000_0000,
    0x1_0000_0001,
    0xffff_ffff_0000_0000,
    0xffff_ffff_7fff_ffff,
    0x8000_0000_7fff_ffff,
    0x7fff_ffff_8000_0000,
    31,
    32,
    33,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0xffff_ffff_ffff_ff80,
    0xffff_ffff_ffff_8000,
];

fn value(rng: &mut SplitMix64, earlier: &[u64]) -> u64 {
    match rng.below(100) {
        0..=29 => rng.next_u64(),
        30..=54 => rng.pick(EDGES),
        55..=69 => boundary_values(rng),
        70..=79 => (rng.below(129) as i64 - 64) as u64,
        80..=87 => {
            let w = rng.next_u64() as u32;
            if rng.chance(50) {
                w as u64
            } else {
                w as i32 as i64 as u64
            }
        }
        _ if !earlier.is_empty() => {
            let v = rng.pick(earlier);
            v.wrapping_add(rng.pick(&[0, 0, 1, u64::MAX]))
        }
        _ => 0,
    }
}

fn pointer(rng: &mut SplitMix64, sp: bool) -> u64 {
    let p = DATA_BASE + DATA_SIZE / 2 - POINTER_SPREAD + rng.below(2 * POINTER_SPREAD);
    match rng.below(10) {
        0..=6 => p & if sp { !15 } else { !7 },
        7 => p & !3,
        _ => p,
    }
}

fn set(st: &mut State, r: u8, v: u64) {
    match r {
        SP => st.sp = v,
        ZR => {}
        n => st.x[n as usize] = v,
    }
}

fn get(st: &State, r: u8) -> u64 {
    match r {
        SP => st.sp,
        ZR => 0,
        n => st.x[n as usize],
    }
}

fn gen_state(rng: &mut SplitMix64, case: &Case) -> State {
    let mut st = State {
        x: [0; 31],
        sp: 0,
        nzcv: rng.below(16) << 28,
    };
    for i in 0..31 {
        st.x[i] = value(rng, &st.x[..i]);
    }
    st.sp = value(rng, &st.x);
    for &b in &case.bases {
        set(&mut st, b, pointer(rng, b == SP));
    }
    for &i in &case.indices {
        if case.bases.contains(&i) {
            continue;
        }
        let v = match rng.below(10) {
            0..=7 => rng.below(65),
            8 => (rng.below(64) as i64 - 64) as u64,
            _ => value(rng, &[]),
        };
        set(&mut st, i, v);
    }
    if case.bases.is_empty() {
        return st;
    }
    match rng.below(100) {
        // A base anywhere: these mostly fault.
        0..=2 => {
            let b = rng.pick(&case.bases);
            let v = value(rng, &st.x);
            set(&mut st, b, v);
        }
        // A single access placed across or next to an edge of the region.
        3..=5 if case.insts.len() == 1 => {
            let (bytes, addr) = match case.insts[0].op {
                Op::Load {
                    rt2, bytes, addr, ..
                }
                | Op::Store {
                    rt2, bytes, addr, ..
                } => (bytes as u64 * if rt2.is_some() { 2 } else { 1 }, addr),
                _ => unreachable!(),
            };
            let off = match (addr.mode, addr.offset) {
                (Writeback::Post(_), _) => 0,
                (_, AddrOffset::Imm(i)) => i as u64,
                (_, AddrOffset::Reg { rm, ext, amount }) => {
                    let v = get(&st, rm);
                    let v = match (ext.bits, ext.signed) {
                        (64, _) => v,
                        (b, true) => ((v << (64 - b)) as i64 >> (64 - b)) as u64,
                        (b, false) => v & ((1u64 << b) - 1),
                    };
                    v << amount
                }
            };
            let edge = if rng.chance(50) {
                DATA_BASE
            } else {
                DATA_BASE + DATA_SIZE
            };
            let target = edge
                .wrapping_add(rng.below(2 * bytes + 1))
                .wrapping_sub(bytes);
            set(&mut st, addr.base, target.wrapping_sub(off));
        }
        _ => {}
    }
    st
}

const X_IDS: [RegisterARM64; 31] = {
    use RegisterARM64::*;
    [
        X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X19,
        X20, X21, X22, X23, X24, X25, X26, X27, X28, X29, X30,
    ]
};

type Uc = Unicorn<'static, Vec<(u64, usize)>>;

struct Reference {
    uc: Uc,
    ids: [i32; 34],
}

/// What a run ended with: registers, flags, and how it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    x: [u64; 31],
    sp: u64,
    nzcv: u64,
    /// `Ok(true)` when the final branch was taken; `Err` when it faulted.
    end: Result<bool, String>,
}

impl Reference {
    fn new(code: &[u8], pattern: &[u8]) -> Reference {
        let mut uc: Uc =
            Unicorn::new_with_data(Arch::ARM64, Mode::ARM, Vec::new()).expect("unicorn");
        let code_size = (code.len() as u64).div_ceil(0x1000) * 0x1000;
        uc.mem_map(CODE_BASE, code_size, Prot::EXEC)
            .expect("map code");
        uc.mem_write(CODE_BASE, code).expect("load code");
        uc.mem_map(DATA_BASE, DATA_SIZE, Prot::READ | Prot::WRITE)
            .expect("map data");
        uc.mem_write(DATA_BASE, pattern).expect("fill data");
        uc.add_mem_hook(
            HookType::MEM_WRITE,
            DATA_BASE,
            DATA_BASE + DATA_SIZE - 1,
            |uc, _, addr, size, _| {
                uc.get_data_mut().push((addr, size));
                true
            },
        )
        .expect("hook");
        let mut ids = [0i32; 34];
        for (k, r) in X_IDS.iter().enumerate() {
            ids[k] = *r as i32;
        }
        ids[31] = RegisterARM64::SP as i32;
        ids[32] = RegisterARM64::NZCV as i32;
        ids[33] = RegisterARM64::PC as i32;
        Reference { uc, ids }
    }

    fn run(&mut self, case: &Case, st: &State) -> Outcome {
        let mut vals = [0u64; 33];
        vals[..31].copy_from_slice(&st.x);
        vals[31] = st.sp;
        vals[32] = st.nzcv;
        let ptrs: Vec<*mut c_void> = vals
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        let h = self.uc.get_handle();
        // SAFETY: every pointer refers to a live u64 for the call's duration.
        unsafe {
            unicorn_engine::uc_reg_write_batch(h, self.ids.as_ptr(), ptrs.as_ptr(), 33);
        }
        let res = self.uc.emu_start(case.start, 0, 0, 0);
        let mut out = [0u64; 34];
        let mut ptrs: Vec<*mut c_void> = out
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        // SAFETY: as above.
        unsafe {
            unicorn_engine::uc_reg_read_batch(h, self.ids.as_ptr(), ptrs.as_mut_ptr(), 34);
        }
        let pc = out[33];
        let end = match res {
            Err(UcError::EXCEPTION) if pc == case.pad() => Ok(false),
            Err(UcError::EXCEPTION) if pc == case.pad() + 4 => Ok(true),
            Err(e) => Err(format!("{e:?} at pc {pc:#x}")),
            Ok(()) => Err(format!("stopped at pc {pc:#x}")),
        };
        let mut x = [0u64; 31];
        x.copy_from_slice(&out[..31]);
        Outcome {
            x,
            sp: out[31],
            nzcv: out[32] & 0xf000_0000,
            end,
        }
    }
}

fn interpret(case: &Case, st: &State, dom: &mut Concrete) -> Outcome {
    let mut m = Machine::zeroed();
    m.x = st.x;
    m.sp = st.sp;
    m.set_nzcv(st.nzcv);
    let end = match concrete::run(&case.insts, &mut m, dom) {
        Ok(e) => Ok(e == Ending::Branched),
        Err(f) => Err(format!("{f:?}")),
    };
    Outcome {
        x: m.x,
        sp: m.sp,
        nzcv: m.nzcv(),
        end,
    }
}

/// Per-form (or per-block-set) counts.
#[derive(Clone, Debug, Default)]
struct Counts {
    states: usize,
    faults: usize,
    taken: usize,
    mismatches: usize,
}

struct Worker<'a> {
    reference: Reference,
    dom: Concrete,
    pattern: &'a [u8],
    reports: Vec<String>,
}

fn describe(case: &Case, st: &State) -> String {
    let mut s = String::new();
    for &r in &case.mentioned {
        let _ = write!(s, "{}={:#x} ", reg_name(r, true), get(st, r));
    }
    let _ = write!(s, "nzcv={:#x}", st.nzcv >> 28);
    s
}

impl Worker<'_> {
    /// Run one case on one state both ways; a description of every
    /// difference, empty if none.
    fn check(&mut self, case: &Case, st: &State) -> (Outcome, Vec<String>) {
        let want = self.reference.run(case, st);
        let got = interpret(case, st, &mut self.dom);
        let mut diffs = Vec::new();
        match (&want.end, &got.end) {
            (Ok(a), Ok(b)) if a != b => {
                diffs.push(format!("branch taken: unicorn {a}, interpreter {b}"))
            }
            (Ok(_), Err(e)) => diffs.push(format!("interpreter faulted ({e}), unicorn did not")),
            (Err(e), Ok(_)) => diffs.push(format!("unicorn faulted ({e}), interpreter did not")),
            _ => {}
        }
        for r in 0..31 {
            if want.x[r] != got.x[r] {
                diffs.push(format!(
                    "x{r}: unicorn {:#x}, interpreter {:#x}",
                    want.x[r], got.x[r]
                ));
            }
        }
        if want.sp != got.sp {
            diffs.push(format!(
                "sp: unicorn {:#x}, interpreter {:#x}",
                want.sp, got.sp
            ));
        }
        if want.nzcv != got.nzcv {
            diffs.push(format!(
                "nzcv: unicorn {:04b}, interpreter {:04b}",
                want.nzcv >> 28,
                got.nzcv >> 28
            ));
        }
        let faulted = want.end.is_err() && got.end.is_err();
        self.memory(faulted, &mut diffs);
        (want, diffs)
    }

    /// Compare every byte of the data region: the bytes Unicorn wrote (its
    /// write hook logs them) with the interpreter's, and every other byte
    /// of the interpreter's with the initial contents; then put both
    /// memories back.
    fn memory(&mut self, faulted: bool, diffs: &mut Vec<String>) {
        // After a fault, the bytes an access that straddles an edge of the
        // region would have written inside it are UNKNOWN architecturally:
        // Unicorn writes them, the interpreter does not (both fault).
        let unknown =
            |addr: u64| faulted && !(DATA_BASE + 16..DATA_BASE + DATA_SIZE - 16).contains(&addr);
        let mut log = std::mem::take(self.reference.uc.get_data_mut());
        for &(a, n) in &log {
            let lo = a.max(DATA_BASE);
            let hi = a.saturating_add(n as u64).min(DATA_BASE + DATA_SIZE);
            if lo >= hi {
                continue;
            }
            let (i, j) = ((lo - DATA_BASE) as usize, (hi - DATA_BASE) as usize);
            let mut buf = vec![0u8; j - i];
            self.reference.uc.mem_read(lo, &mut buf).expect("read data");
            for (k, b) in buf.iter().enumerate() {
                let mine = self.dom.mem.bytes[i + k];
                if *b != mine && !unknown(lo + k as u64) {
                    diffs.push(format!(
                        "memory {:#x}: unicorn {b:#04x}, interpreter {mine:#04x}",
                        lo + k as u64
                    ));
                }
            }
            self.reference
                .uc
                .mem_write(lo, &self.pattern[i..j])
                .expect("restore data");
            self.dom.mem.bytes[i..j].copy_from_slice(&self.pattern[i..j]);
        }
        log.clear();
        *self.reference.uc.get_data_mut() = log;
        if self.dom.mem.bytes != self.pattern {
            for (k, (a, b)) in self
                .pattern
                .iter()
                .zip(self.dom.mem.bytes.iter())
                .enumerate()
            {
                if a != b && !unknown(DATA_BASE + k as u64) {
                    diffs.push(format!(
                        "memory {:#x}: unicorn {a:#04x} (unwritten), interpreter {b:#04x}",
                        DATA_BASE + k as u64
                    ));
                }
            }
            self.dom.mem.bytes.copy_from_slice(self.pattern);
        }
    }

    fn run_case(&mut self, case: &Case, seed: u64, states: usize, counts: &mut Counts) {
        let mut rng = SplitMix64::new(seed);
        for _ in 0..states {
            let st = gen_state(&mut rng, case);
            let (out, diffs) = self.check(case, &st);
            counts.states += 1;
            match out.end {
                Err(_) => counts.faults += 1,
                Ok(true) => counts.taken += 1,
                Ok(false) => {}
            }
            if !diffs.is_empty() {
                counts.mismatches += 1;
                if counts.mismatches <= 2 && self.reports.len() < 60 {
                    self.reports.push(format!(
                        "`{}`\n    state: {}\n    {}",
                        case.lines.join("; "),
                        describe(case, &st),
                        diffs.join("\n    ")
                    ));
                }
            }
        }
    }
}

fn data_pattern(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ 0x6461_7461);
    let mut out = Vec::with_capacity(DATA_SIZE as usize);
    while out.len() < DATA_SIZE as usize {
        let w = if rng.chance(50) {
            rng.next_u64()
        } else {
            value(&mut rng, &[])
        };
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

#[test]
fn semantics_agree_with_unicorn() {
    let started = Instant::now();
    let seed = std::env::var("SEMANTICS_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5e6d_a2b1_c3d4_e5f6u64);
    let forms = forms();
    let (mut cases, errors) = cases(&forms, seed);
    assert!(
        errors.is_empty(),
        "forms the decoder refuses:\n{}",
        errors.join("\n")
    );
    let code = assemble(&mut cases);
    let pattern = data_pattern(seed);
    let assembled = started.elapsed();

    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 2);
    let results: Vec<(Vec<Counts>, Counts, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (cases, code, pattern, nforms) = (&cases, &code, &pattern, forms.len());
                s.spawn(move || {
                    let mut w = Worker {
                        reference: Reference::new(code, pattern),
                        dom: Concrete {
                            mem: Memory {
                                base: DATA_BASE,
                                bytes: pattern.clone(),
                            },
                        },
                        pattern,
                        reports: Vec::new(),
                    };
                    let mut per_form = vec![Counts::default(); nforms];
                    let mut blocks = Counts::default();
                    for (ci, case) in cases.iter().enumerate().skip(t).step_by(threads) {
                        let case_seed = seed ^ (ci as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                        match case.form {
                            Some(f) => {
                                w.run_case(case, case_seed, STATES_PER_INSTANCE, &mut per_form[f])
                            }
                            None => w.run_case(case, case_seed, STATES_PER_BLOCK, &mut blocks),
                        }
                    }
                    (per_form, blocks, w.reports)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut per_form = vec![Counts::default(); forms.len()];
    let mut blocks = Counts::default();
    let mut reports = Vec::new();
    for (pf, b, r) in results {
        for (acc, c) in per_form.iter_mut().zip(pf) {
            acc.states += c.states;
            acc.faults += c.faults;
            acc.taken += c.taken;
            acc.mismatches += c.mismatches;
        }
        blocks.states += b.states;
        blocks.faults += b.faults;
        blocks.taken += b.taken;
        blocks.mismatches += b.mismatches;
        reports.extend(r);
    }
    let form_states: usize = per_form.iter().map(|c| c.states).sum();
    let min_states = per_form.iter().map(|c| c.states).min().unwrap_or(0);
    let form_faults: usize = per_form.iter().map(|c| c.faults).sum();
    let nblocks = cases.iter().filter(|c| c.form.is_none()).count();
    println!(
        "semantics_vs_unicorn: {} forms, {} form states (at least {} per form, {} faulting in both), \
         {} blocks on {} states ({} faulting, {} branching); {} threads, assembled in {:.1}s, total {:.1}s, seed {seed:#x}",
        forms.len(),
        form_states,
        min_states,
        form_faults,
        nblocks,
        blocks.states,
        blocks.faults,
        blocks.taken,
        threads,
        assembled.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );

    let mut problems = Vec::new();
    for (f, c) in forms.iter().zip(&per_form) {
        if c.mismatches > 0 {
            problems.push(format!(
                "{}: {} of {} states disagree",
                f.name, c.mismatches, c.states
            ));
        }
        if c.states < MIN_STATES_PER_FORM {
            problems.push(format!("{}: only {} states", f.name, c.states));
        }
        match f.kind {
            Kind::Mem if c.faults == 0 || c.faults * 2 > c.states => problems.push(format!(
                "{}: {} of {} states fault",
                f.name, c.faults, c.states
            )),
            Kind::Branch
                if !f.name.starts_with("b ")
                    && !f.name.starts_with("b.al")
                    && !f.name.starts_with("b.nv")
                    && (c.taken == 0 || c.taken == c.states) =>
            {
                problems.push(format!(
                    "{}: taken on {} of {} states",
                    f.name, c.taken, c.states
                ))
            }
            _ => {}
        }
    }
    if blocks.mismatches > 0 {
        problems.push(format!(
            "blocks: {} of {} states disagree",
            blocks.mismatches, blocks.states
        ));
    }
    if blocks.faults * 4 > blocks.states {
        problems.push(format!(
            "blocks: {} of {} states fault",
            blocks.faults, blocks.states
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n\nexamples:\n{}",
        problems.join("\n"),
        reports.join("\n")
    );
}
