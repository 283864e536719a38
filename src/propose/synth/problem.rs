//! From a window to search problems: its sub-windows, what each must leave
//! (live-out registers, flags, a final branch's direction), its registers
//! renamed canonically by first use, and the test states.

use super::pool::Shape;
use super::render;
use super::search::Problem;
use crate::asm::Insn;
use crate::cost::builtin::timing;
use crate::propose::Window;
use crate::semantics::concrete::{self, Concrete, Ending, Machine, Memory};
use crate::semantics::effects::live_after_each;
use crate::semantics::inst::*;
use crate::semantics::{effects, Flow, Loc, LocSet};
use crate::verify::state::{boundary_values, SplitMix64};

/// One sub-window, in canonical registers.
#[derive(Clone, Debug)]
pub struct SubWindow {
    pub range: std::ops::Range<usize>,
    /// The original instructions, canonical registers.
    insts: Vec<Inst>,
    /// Canonical register i is real register `real[i]`.
    real: Vec<R>,
    inputs: u32,
    flags_in: bool,
    outputs: u32,
    flags_out: bool,
    /// The final branch's target, when the sub-window ends with one.
    pub label: Option<String>,
    pub shape: Shape,
    /// Summed built-in latency of the original.
    latency: f64,
    /// The window's immediates, their neighbours and zero: the values on
    /// which a compare or a mask can differ from a would-be replacement.
    edges: Vec<u64>,
    /// The original's text and what is live after it (for the database).
    pub original: Vec<String>,
    pub live: LocSet,
}

/// What every sub-window of a window starts from: its instructions decoded
/// and what is live after each, computed once per window.
pub struct Decoded<'w> {
    window: &'w Window,
    insts: Vec<Option<Inst>>,
    live_after: Vec<LocSet>,
}

impl<'w> Decoded<'w> {
    pub fn of(window: &'w Window) -> Self {
        let effects: Vec<_> = window.insns.iter().map(effects).collect();
        Decoded {
            window,
            insts: window.insns.iter().map(|i| Inst::decode(i).ok()).collect(),
            live_after: live_after_each(&effects, window.live_out),
        }
    }

    /// The sub-window over `range`, if it is one worth searching (see
    /// [`sub_windows`]).
    pub fn sub_window(&self, range: std::ops::Range<usize>) -> Option<SubWindow> {
        if range.is_empty() || range.end > self.insts.len() {
            return None;
        }
        let live = self.live_after[range.end - 1];
        SubWindow::new(self.window, &self.insts, range, live)
    }
}

/// Sub-windows of `w` worth a search: longest first, each made only of
/// instructions the interpreter executes, without memory accesses.
pub fn sub_windows(w: &Window, max: usize) -> Vec<SubWindow> {
    let decoded = Decoded::of(w);
    let n = w.insns.len();
    let mut out = Vec::new();
    for len in (1..=max.min(n)).rev() {
        for start in 0..=n - len {
            out.extend(decoded.sub_window(start..start + len));
        }
    }
    out
}

/// Stores stay out of searched sub-windows (they must stay in place and
/// in order); loads are searched, the candidate loading from the same
/// memory on the same test states.
fn store_free(i: &Inst) -> bool {
    !matches!(i.op, Op::Store { .. })
}

/// Whether a sub-window loads, with its canonical base registers.
fn load_bases(insts: &[Inst]) -> Vec<R> {
    let mut out: Vec<R> = Vec::new();
    for i in insts {
        if let Op::Load { addr, .. } = i.op {
            out.push(addr.base);
        }
    }
    out
}

/// Inputs that hold addresses: the bases of loads, and the first source of
/// an `add`/`sub` in a sub-window that loads (an address being formed).
fn pointer_inputs(insts: &[Inst], inputs: u32) -> u32 {
    let mut ptr = 0u32;
    let loads = !load_bases(insts).is_empty();
    for i in insts {
        match i.op {
            Op::Load { addr, .. } if addr.base < 31 => ptr |= 1 << addr.base,
            Op::AddSub { rn, .. } if loads && rn < 31 => ptr |= 1 << rn,
            _ => {}
        }
    }
    ptr & inputs
}

/// Where the test states' memory lives, and its size.
pub const MEMORY_BASE: u64 = 0x10_0000;
const MEMORY_SIZE: usize = 1 << 16;

/// Registers named by a decoded instruction, in operand order.
fn regs_of(insn: &Insn) -> Vec<R> {
    insn.regs()
        .filter_map(|r| r.loc())
        .filter_map(|l| match l {
            Loc::X(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// The branch target in canonical text.
const CANONICAL_LABEL: &str = "L";

/// Scratch candidates, caller-saved temporaries first.
const SCRATCH: [R; 18] = [9, 10, 11, 12, 13, 14, 15, 16, 17, 0, 1, 2, 3, 4, 5, 6, 7, 8];

impl SubWindow {
    fn new(
        w: &Window,
        insts: &[Option<Inst>],
        range: std::ops::Range<usize>,
        live: LocSet,
    ) -> Option<SubWindow> {
        let orig: Vec<Inst> = insts[range.clone()]
            .iter()
            .copied()
            .collect::<Option<_>>()?;
        if !orig.iter().all(store_free) {
            return None;
        }
        let insns = &w.insns[range.clone()];
        let last = insns.last()?;
        let label = match effects(last).flow {
            Flow::Branch { target, .. } => Some(target),
            _ => None,
        };
        // Reads before writes, in order: the sub-window's inputs.
        let (mut read, mut written) = (LocSet::EMPTY, LocSet::EMPTY);
        for i in insns {
            let e = effects(i);
            read = read.union(e.reads.minus(written));
            written = written.union(e.writes);
        }
        let only_x = |s: LocSet| {
            s.iter()
                .all(|l| matches!(l, Loc::X(_) | Loc::Nzcv | Loc::Mem))
        };
        if !only_x(read) || !only_x(written) || written.contains(Loc::Mem) {
            return None;
        }
        // Canonical renaming by first use.
        let mut real: Vec<R> = Vec::new();
        for i in insns {
            for r in regs_of(i) {
                if !real.contains(&r) {
                    real.push(r);
                }
            }
        }
        let outputs_real: Vec<R> = written
            .iter()
            .filter_map(|l| match l {
                Loc::X(n) if live.contains(l) => Some(n),
                _ => None,
            })
            .collect();
        let dead_temp = real.iter().copied().find(|&r| {
            written.contains(Loc::X(r)) && !live.contains(Loc::X(r)) && !read.contains(Loc::X(r))
        });
        let scratch = dead_temp.or_else(|| {
            SCRATCH.iter().copied().find(|&r| {
                !real.contains(&r) && !live.contains(Loc::X(r)) && !read.contains(Loc::X(r))
            })
        });
        if let Some(s) = scratch {
            if !real.contains(&s) {
                real.push(s);
            }
        }
        let canon = |r: R| real.iter().position(|&x| x == r).map(|p| p as R);
        let mask = |set: LocSet| -> u32 {
            set.iter()
                .filter_map(|l| match l {
                    Loc::X(n) => canon(n).map(|c| 1u32 << c),
                    _ => None,
                })
                .fold(0, |a, b| a | b)
        };
        let to_canon = rename_map(&real, true);
        let insts: Vec<Inst> = orig.iter().map(|i| rename(i, &to_canon)).collect();
        let outputs = outputs_real
            .iter()
            .filter_map(|&r| canon(r))
            .fold(0u32, |a, c| a | 1 << c);
        let mut sources: Vec<R> = (0..real.len() as R)
            .filter(|&c| {
                read.contains(Loc::X(real[c as usize]))
                    || outputs >> c & 1 == 1
                    || Some(real[c as usize]) == scratch
            })
            .collect();
        sources.dedup();
        let mut dests: Vec<R> = (0..real.len() as R)
            .filter(|&c| outputs >> c & 1 == 1 || Some(real[c as usize]) == scratch)
            .collect();
        dests.dedup();
        let flags_in = read.contains(Loc::Nzcv);
        // Live flags must come out as the original leaves them, written or not.
        let flags_out = live.contains(Loc::Nzcv);
        if outputs == 0 && !flags_out && label.is_none() {
            return None; // dead code: the rules remove it
        }
        let shape = Shape {
            sources,
            dests,
            widths: widths(insns),
            consts: constants(insns),
            loads: {
                let ptrs = pointer_inputs(&insts, mask(read));
                let mut b = load_bases(&insts);
                if !b.is_empty() {
                    b.extend((0..31).filter(|r| ptrs >> r & 1 == 1));
                }
                b.sort_unstable();
                b.dedup();
                b
            },
            shifts: shifts(insns),
            flags: flags_in || written.contains(Loc::Nzcv) || !flags_out || label.is_some(),
        };
        Some(SubWindow {
            range,
            inputs: mask(read),
            latency: insns.iter().map(|i| timing(i).latency).sum(),
            insts,
            real,
            flags_in,
            outputs,
            flags_out,
            label,
            shape,
            edges: edges(insns),
            original: insns.iter().map(|i| i.to_string()).collect(),
            live,
        })
    }

    /// Everything that decides this sub-window's search, in canonical
    /// registers: two sub-windows with the same key have the same answers.
    pub fn canonical_key(&self) -> String {
        format!(
            "{:?}|in={:#x},{}|out={:#x},{}|branch={}|{:?}",
            self.insts,
            self.inputs,
            self.flags_in,
            self.outputs,
            self.flags_out,
            self.label.is_some(),
            self.shape
        )
    }

    /// A canonical sequence as text (branch target `L`).
    pub fn canonical_text(seq: &[Inst]) -> Option<Vec<String>> {
        seq.iter()
            .map(|i| render::text(i, CANONICAL_LABEL))
            .collect()
    }

    /// The canonical sequence a text from [`Self::canonical_text`] names.
    pub fn from_canonical_text(text: &[String]) -> Option<Vec<Inst>> {
        text.iter()
            .map(|t| Inst::decode(&Insn::parse_plain(t).ok()?).ok())
            .collect()
    }

    /// Summed built-in latency of the original.
    pub fn latency(&self) -> f64 {
        self.latency
    }

    /// The problem on `count` test states; `None` when the original faults.
    pub fn problem(&self, seed: u64, count: usize) -> Option<Problem> {
        let mut rng = SplitMix64::new(seed ^ 0x5eed_5a17);
        let pointers = pointer_inputs(&self.insts, self.inputs);
        let loads = !self.shape.loads.is_empty();
        let mut tests: Vec<Machine> = (0..count)
            .map(|k| test_state(&mut rng, k, loads, pointers, &self.shape.consts))
            .collect();
        // Confirmation states start with every combination of edge values
        // over the (non-address) inputs: a difference that needs two inputs
        // at a constant at once (`cmp w7, #47; ccmp w5, #3, #0, ne`) is
        // met for sure, not by luck.
        if count > super::SEARCH_STATES {
            let inputs: Vec<usize> = (0..31)
                .filter(|r| (self.inputs & !pointers) >> r & 1 == 1)
                .collect();
            // Indices of loads stay small, so the original does not fault.
            let edges: Vec<u64> = self
                .edges
                .iter()
                .copied()
                .filter(|&v| !loads || v < 64)
                .collect();
            grid(&mut tests[1..count / 2], &inputs, &edges);
        }
        let memory = if loads {
            Memory {
                base: MEMORY_BASE,
                bytes: (0..MEMORY_SIZE).map(|_| rng.next_u64() as u8).collect(),
            }
        } else {
            Memory::default()
        };
        let mut expect = Vec::with_capacity(count);
        let mut expect_taken = Vec::with_capacity(count);
        let mut dom = Concrete { mem: memory };
        for t in &tests {
            let mut m = t.clone();
            let ending = concrete::run(&self.insts, &mut m, &mut dom).ok()?;
            expect.push(m);
            expect_taken.push(ending == Ending::Branched);
        }
        Some(Problem {
            tests,
            expect,
            expect_taken,
            outputs: self.outputs,
            flags_out: self.flags_out,
            branch: self.label.is_some(),
            defined: self.inputs,
            flags_defined: self.flags_in,
            memory: dom.mem,
        })
    }

    /// The first test of `p` on which `seq` differs from the original.
    pub fn first_failure(&self, p: &Problem, seq: &[Inst]) -> Option<usize> {
        let mut dom = Concrete {
            mem: p.memory.clone(),
        };
        (0..p.tests.len()).find(|&k| fails_on(p, &mut dom, k, seq))
    }

    /// `insns` (real registers, e.g. a model's answer for this sub-window)
    /// in this sub-window's canonical registers; `None` when one does not
    /// decode or names a register the sub-window does not use.
    pub fn canonical(&self, insns: &[Insn]) -> Option<Vec<Inst>> {
        let to_canon = rename_map(&self.real, true);
        insns
            .iter()
            .map(|i| {
                let inst = Inst::decode(i).ok()?;
                let mut known = true;
                let renamed = rename_with(&inst, &mut |r| {
                    known &= r >= 31 || self.real.contains(&r);
                    to_canon[r as usize]
                });
                known.then_some(renamed)
            })
            .collect()
    }

    /// The real instructions for a canonical sequence, if it is shorter
    /// than the original, or as long and faster by latency.
    pub fn realize(&self, seq: &[Inst]) -> Option<Vec<Insn>> {
        let back = rename_map(&self.real, false);
        let label = self.label.as_deref().unwrap_or("");
        let insns: Vec<Insn> = seq
            .iter()
            .map(|i| {
                render::text(&rename(i, &back), label).and_then(|t| Insn::parse_plain(&t).ok())
            })
            .collect::<Option<_>>()?;
        let latency: f64 = insns.iter().map(|i| timing(i).latency).sum();
        let better = insns.len() < self.range.len() || latency < self.latency;
        better.then_some(insns)
    }
}

/// Whether `seq` differs from the original on test `k` of `p` (`dom` holds
/// `p`'s memory: searched sequences only load).
pub fn fails_on(p: &Problem, dom: &mut Concrete, k: usize, seq: &[Inst]) -> bool {
    let mut m = p.tests[k].clone();
    let Ok(ending) = concrete::run(seq, &mut m, dom) else {
        return true;
    };
    let want = &p.expect[k];
    let regs_ok = (0..31).all(|r| p.outputs >> r & 1 == 0 || m.x[r] == want.x[r]);
    let flags_ok = !p.flags_out || m.flags == want.flags;
    let branch_ok = !p.branch || (ending == Ending::Branched) == p.expect_taken[k];
    !(regs_ok && flags_ok && branch_ok)
}

/// One test state: each register independently zero, small, a boundary
/// value or random bits, so that no two inputs are tied together.
/// Where loads are involved, address inputs point into the middle of the
/// test memory and other inputs are small (possibly negative) indices.
/// Often an input is one of the window's constants or a neighbour of one
/// (`consts`): a compare with 120 or a `b.hs` on 197 differs from its
/// would-be replacement on those values alone, which random draws miss.
fn test_state(
    rng: &mut SplitMix64,
    k: usize,
    loads: bool,
    pointers: u32,
    consts: &[u64],
) -> Machine {
    let mut m = Machine::zeroed();
    for (r, x) in m.x.iter_mut().enumerate() {
        let constant = k > 0 && !loads && !consts.is_empty() && rng.below(8) < 3;
        *x = match (k, rng.below(8)) {
            _ if pointers >> r & 1 == 1 => MEMORY_BASE + MEMORY_SIZE as u64 / 2 + 8 * rng.below(64),
            _ if constant => consts[rng.below(consts.len() as u64) as usize],
            _ if loads => (rng.below(96) as i64 - 32) as u64,
            (0, _) | (_, 0) => 0,
            (_, 1 | 2) => rng.below(70),
            (_, 3 | 4) => boundary_values(rng),
            _ => rng.next_u64(),
        };
    }
    m.sp = 0x7fff_0000;
    m.set_nzcv(rng.below(16) << 28);
    m
}
/// Fill `states`' `inputs` with the combinations of `values`, one per state,
/// as far as the states go.
fn grid(states: &mut [Machine], inputs: &[usize], values: &[u64]) {
    if inputs.is_empty() || values.is_empty() {
        return;
    }
    for (g, m) in states.iter_mut().enumerate() {
        let mut rest = g;
        for &r in inputs {
            m.x[r] = values[rest % values.len()];
            rest /= values.len();
        }
        if rest > 0 {
            return;
        }
    }
}

/// Zero and each immediate of the window with its neighbours, in 64 and
/// 32 bits.
fn edges(insns: &[Insn]) -> Vec<u64> {
    let mut out = vec![0];
    for c in immediates(insns) {
        for v in [c, c.wrapping_sub(1), c.wrapping_add(1)] {
            out.extend([v, v & 0xffff_ffff]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A register map: canonical→real (`to_canon` false) or real→canonical.
fn rename_map(real: &[R], to_canon: bool) -> [R; 33] {
    let mut map: [R; 33] = std::array::from_fn(|i| i as R);
    for (c, &r) in real.iter().enumerate() {
        if to_canon {
            map[r as usize] = c as R;
        } else {
            map[c] = r;
        }
    }
    map
}

fn rename_op2(o: Operand2, f: &mut impl FnMut(R) -> R) -> Operand2 {
    match o {
        Operand2::Imm(v) => Operand2::Imm(v),
        Operand2::Shifted { rm, kind, amount } => Operand2::Shifted {
            rm: f(rm),
            kind,
            amount,
        },
        Operand2::Extended { rm, ext, amount } => Operand2::Extended {
            rm: f(rm),
            ext,
            amount,
        },
    }
}

fn rename_addr(a: Addr, f: &mut impl FnMut(R) -> R) -> Addr {
    Addr {
        base: f(a.base),
        offset: match a.offset {
            AddrOffset::Reg { rm, ext, amount } => AddrOffset::Reg {
                rm: f(rm),
                ext,
                amount,
            },
            o => o,
        },
        mode: match a.mode {
            Writeback::Post(PostAmount::Reg(x)) => Writeback::Post(PostAmount::Reg(f(x))),
            w => w,
        },
    }
}

/// `i` with every register replaced through `m` (SP and ZR map to themselves).
fn rename(i: &Inst, m: &[R; 33]) -> Inst {
    rename_with(i, &mut |x| m[x as usize])
}

/// `i` with every register `x` replaced by `f(x)`, in operand order.
pub fn rename_with(i: &Inst, f: &mut impl FnMut(R) -> R) -> Inst {
    let op = match i.op {
        Op::AddSub {
            sub,
            flags,
            rd,
            rn,
            op2,
        } => Op::AddSub {
            sub,
            flags,
            rd: f(rd),
            rn: f(rn),
            op2: rename_op2(op2, f),
        },
        Op::Carry {
            sub,
            flags,
            rd,
            rn,
            rm,
        } => Op::Carry {
            sub,
            flags,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
        },
        Op::Logic {
            kind,
            invert,
            flags,
            rd,
            rn,
            op2,
        } => Op::Logic {
            kind,
            invert,
            flags,
            rd: f(rd),
            rn: f(rn),
            op2: rename_op2(op2, f),
        },
        Op::MovImm { rd, value } => Op::MovImm { rd: f(rd), value },
        Op::Movk { rd, imm16, shift } => Op::Movk {
            rd: f(rd),
            imm16,
            shift,
        },
        Op::Shift {
            kind,
            rd,
            rn,
            amount,
        } => Op::Shift {
            kind,
            rd: f(rd),
            rn: f(rn),
            amount: match amount {
                ShiftAmount::Reg(x) => ShiftAmount::Reg(f(x)),
                a => a,
            },
        },
        Op::Extr { rd, rn, rm, lsb } => Op::Extr {
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
            lsb,
        },
        Op::Bfm {
            kind,
            rd,
            rn,
            immr,
            imms,
        } => Op::Bfm {
            kind,
            rd: f(rd),
            rn: f(rn),
            immr,
            imms,
        },
        Op::MulAdd {
            sub,
            rd,
            rn,
            rm,
            ra,
        } => Op::MulAdd {
            sub,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
            ra: f(ra),
        },
        Op::MulLong {
            signed,
            sub,
            rd,
            rn,
            rm,
            ra,
        } => Op::MulLong {
            signed,
            sub,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
            ra: f(ra),
        },
        Op::MulHigh { signed, rd, rn, rm } => Op::MulHigh {
            signed,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
        },
        Op::Div { signed, rd, rn, rm } => Op::Div {
            signed,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
        },
        Op::Unary { kind, rd, rn } => Op::Unary {
            kind,
            rd: f(rd),
            rn: f(rn),
        },
        Op::CondSel {
            kind,
            rd,
            rn,
            rm,
            cond,
        } => Op::CondSel {
            kind,
            rd: f(rd),
            rn: f(rn),
            rm: f(rm),
            cond,
        },
        Op::CondCmp {
            neg,
            rn,
            op2,
            nzcv,
            cond,
        } => Op::CondCmp {
            neg,
            rn: f(rn),
            op2: rename_op2(op2, f),
            nzcv,
            cond,
        },
        Op::Load {
            rt,
            rt2,
            bytes,
            signed,
            addr,
        } => Op::Load {
            rt: f(rt),
            rt2: rt2.map(&mut *f),
            bytes,
            signed,
            addr: rename_addr(addr, f),
        },
        Op::BranchZero { nonzero, rt } => Op::BranchZero { nonzero, rt: f(rt) },
        Op::BranchBit { nonzero, rt, bit } => Op::BranchBit {
            nonzero,
            rt: f(rt),
            bit,
        },
        other => other,
    };
    Inst { op, sf: i.sf }
}

fn widths(insns: &[Insn]) -> Vec<bool> {
    let any = |w: bool| {
        insns.iter().any(|i| {
            i.regs()
                .any(|r| r.is_general() && r.is_32bit_general() != w)
        })
    };
    let mut out: Vec<bool> = [true, false].into_iter().filter(|&w| any(w)).collect();
    if out.is_empty() {
        out.push(true);
    }
    out
}

fn immediates(insns: &[Insn]) -> Vec<u64> {
    insns.iter().flat_map(Insn::immediates).collect()
}

/// The window's constants and simple relatives of them: negation,
/// complement, ±1, their 32-bit forms, and one shifted by another.
fn constants(insns: &[Insn]) -> Vec<u64> {
    let imms = immediates(insns);
    let mut out = vec![0, 1, u64::MAX];
    for &c in &imms {
        out.extend([
            c,
            c.wrapping_neg(),
            !c,
            c.wrapping_add(1),
            c.wrapping_sub(1),
        ]);
        out.extend([
            c & 0xffff_ffff,
            (c as u32).wrapping_neg() as u64,
            !(c as u32) as u64,
        ]);
        for &s in imms.iter().filter(|&&s| s < 64) {
            out.extend([c << s, c >> s]);
        }
        if c < 64 {
            out.push(1 << c);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Shift amounts and bit positions suggested by the window's constants.
fn shifts(insns: &[Insn]) -> Vec<u8> {
    // 1, and the sign bits of both widths.
    let mut out: Vec<u8> = vec![1, 31, 63];
    let imms = immediates(insns);
    for (i, &a) in imms.iter().enumerate() {
        for &b in &imms[i + 1..] {
            out.push(a.abs_diff(b).min(64) as u8);
        }
    }
    for c in imms {
        for v in [c, c.wrapping_sub(1), c.wrapping_add(1)] {
            if v.is_power_of_two() {
                let k = v.trailing_zeros() as u8;
                out.extend([k, 64 - k, 32u8.saturating_sub(k)]);
            }
        }
        if c < 64 {
            let c = c as u8;
            out.extend([c, 64 - c, c.wrapping_add(1), c.wrapping_sub(1)]);
            if c <= 32 {
                out.push(32 - c);
            }
        }
    }
    out.retain(|&s| (1..64).contains(&s));
    out.sort_unstable();
    out.dedup();
    out
}
