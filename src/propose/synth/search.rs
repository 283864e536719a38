//! Enumerative search: the shortest sequences of pool entries that leave
//! the problem's outputs as the original does on every test state.
//!
//! Iterative deepening over sequence length. Inner levels are pruned by
//! observational equivalence (a state fingerprint over all tests seen at
//! the same or a smaller depth is not expanded again); the last level only
//! tries entries that write an output, and rejects a candidate at the first
//! test it gets wrong, so most candidates cost one instruction step.

use super::pool::Entry;
use crate::semantics::concrete::{Concrete, Machine, Memory};
use crate::semantics::domain::Flags;
use crate::semantics::exec::step;
use crate::semantics::inst::ZR;
use std::collections::HashMap;
use std::time::Instant;

/// What the window computes, as values on test states.
#[derive(Clone, Debug)]
pub struct Problem {
    /// Initial states.
    pub tests: Vec<Machine>,
    /// The original's final states, one per test.
    pub expect: Vec<Machine>,
    /// Whether the original's final branch was taken, per test.
    pub expect_taken: Vec<bool>,
    /// Registers whose final values must match (bit n for xn).
    pub outputs: u32,
    pub flags_out: bool,
    /// The window ends with a branch, whose direction must match.
    pub branch: bool,
    /// Registers holding inputs on entry.
    pub defined: u32,
    pub flags_defined: bool,
    /// The memory loads read (the same for every test).
    pub memory: Memory,
}

impl Problem {
    /// Add test `k` of `other` (a counterexample found there).
    pub fn push_test(&mut self, other: &Problem, k: usize) {
        self.tests.push(other.tests[k].clone());
        self.expect.push(other.expect[k].clone());
        self.expect_taken.push(other.expect_taken[k]);
    }
}

/// Search limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A sequence is kept only if its summed latency is below this.
    pub latency_below: f64,
    pub min_len: usize,
    pub max_len: usize,
    pub max_found: usize,
    pub deadline: Instant,
    /// Candidate evaluations allowed: a budget that does not depend on the
    /// machine's speed, for reproducible runs.
    pub max_evals: u64,
}

/// The result of one search.
#[derive(Debug, Default)]
pub struct Found {
    /// Sequences (indices into the data entries, then at most one branch
    /// entry index last, into the branch entries).
    pub sequences: Vec<(Vec<usize>, Option<usize>)>,
    pub evaluated: u64,
    pub timed_out: bool,
}

struct Search<'a> {
    p: &'a Problem,
    data: &'a [Entry],
    branches: &'a [Entry],
    lim: Limits,
    seen: HashMap<u64, usize>,
    out: Found,
    dom: Concrete,
    /// One output only (a register, the flags or the branch's direction).
    single_output: bool,
    /// Data entries that can end a sequence: they write an output (a
    /// flag-setting twin only where the flags are an output).
    finals: Vec<usize>,
    /// `finals` that read register n (index 32: the flags).
    readers: Vec<Vec<usize>>,
    /// `last_candidates` by the prefix's written set: a handful of distinct
    /// sets recur across millions of prefixes, and building the list each
    /// time (collect, sort, dedup) took two thirds of the search.
    last_lists: HashMap<u64, std::rc::Rc<[usize]>>,
    /// Registers some data entry writes: the only ones in which two
    /// prefixes' states can differ, so the only ones fingerprinted.
    written: Vec<usize>,
}

/// What one step changed on each test, to undo it.
type Undo = Vec<(u64, Flags<bool>)>;

/// Search sequences of up to `lim.max_len` instructions (the branch, when
/// the window ends with one, counts).
pub fn search(p: &Problem, data: &[Entry], branches: &[Entry], lim: Limits) -> Found {
    let mut s = Search {
        p,
        data,
        branches,
        lim,
        seen: HashMap::new(),
        out: Found::default(),
        dom: Concrete {
            mem: p.memory.clone(),
        },
        single_output: p.outputs.count_ones() + p.flags_out as u32 + p.branch as u32 == 1,
        finals: Vec::new(),
        readers: vec![Vec::new(); 33],
        last_lists: HashMap::new(),
        written: {
            // One pass over the pool (it can hold 100k+ entries, and a
            // search runs once per length and counterexample round).
            let mask = data
                .iter()
                .fold(0u32, |m, e| m | e.writes.map_or(0, |r| 1 << r));
            (0..32).filter(|r| mask >> r & 1 == 1).collect()
        },
    };
    s.index_finals();
    let mut machines = p.tests.clone();
    for len in lim.min_len.max(1)..=lim.max_len {
        s.seen.clear();
        s.seen.insert(fingerprint(&machines, &s.written), 0);
        let mut seq = Vec::new();
        s.level(&mut machines, p.defined, p.flags_defined, &mut seq, len);
        if !s.out.sequences.is_empty() || s.out.timed_out {
            break;
        }
    }
    s.out
}

/// A hash of the registers in `regs` and the flags on every test.
fn fingerprint(ms: &[Machine], regs: &[usize]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for m in ms {
        for v in regs.iter().map(|&r| m.x[r]).chain([m.nzcv()]) {
            h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
    }
    h
}

impl Search<'_> {
    fn index_finals(&mut self) {
        for (i, e) in self.data.iter().enumerate() {
            let writes_output = e.writes.is_some_and(|r| self.p.outputs >> r & 1 == 1);
            let useful = if self.p.flags_out {
                writes_output || e.sets_flags
            } else {
                writes_output && !e.sets_flags
            };
            if !useful {
                continue;
            }
            self.finals.push(i);
            for r in 0..32 {
                if e.reads >> r & 1 == 1 {
                    self.readers[r].push(i);
                }
            }
            if e.reads_flags {
                self.readers[32].push(i);
            }
        }
    }

    fn out_of_time(&mut self) -> bool {
        if self.out.evaluated >= self.lim.max_evals
            || (self.out.evaluated.is_multiple_of(1024) && Instant::now() > self.lim.deadline)
        {
            self.out.timed_out = true;
        }
        self.out.timed_out || self.out.sequences.len() >= self.lim.max_found
    }

    fn usable(e: &Entry, defined: u32, flags: bool) -> bool {
        e.reads & !defined == 0 && (!e.reads_flags || flags)
    }

    fn level(
        &mut self,
        ms: &mut [Machine],
        defined: u32,
        flags: bool,
        seq: &mut Vec<usize>,
        left: usize,
    ) {
        if left == 1 {
            let fresh = self.prefix_writes(seq);
            if self.p.branch {
                self.last_branch(ms, defined, flags, seq, fresh);
            } else {
                self.last_data(ms, defined, flags, seq, fresh);
            }
            return;
        }
        let depth = seq.len() + 1;
        let spent = self.prefix_latency(seq);
        for (i, e) in self.data.iter().enumerate() {
            if self.out_of_time() || spent + e.latency >= self.lim.latency_below {
                return;
            }
            if !Self::usable(e, defined, flags) {
                continue;
            }
            self.out.evaluated += 1;
            let Some(undo) = self.apply(ms, e) else {
                continue;
            };
            let fp = fingerprint(ms, &self.written);
            let fresh = match self.seen.get(&fp) {
                Some(&d) if d <= depth => false,
                _ => {
                    self.seen.insert(fp, depth);
                    true
                }
            };
            if fresh {
                let def = defined | e.writes.map_or(0, |r| 1 << r);
                seq.push(i);
                self.level(ms, def, flags || e.sets_flags, seq, left - 1);
                seq.pop();
            }
            restore(ms, e, &undo);
        }
    }

    /// Registers (bit n) and flags (bit 32) the prefix `seq` writes.
    fn prefix_writes(&self, seq: &[usize]) -> u64 {
        seq.iter().fold(0, |acc, &i| {
            let e = &self.data[i];
            acc | e.writes.map_or(0, |r| 1u64 << r) | (e.sets_flags as u64) << 32
        })
    }

    fn prefix_latency(&self, seq: &[usize]) -> f64 {
        seq.iter().map(|&i| self.data[i].latency).sum()
    }

    /// Whether a last instruction can depend on the prefix: with a single
    /// output, one that reads nothing the prefix wrote was already tried
    /// as a shorter sequence.
    fn reads_prefix(&self, e: &Entry, fresh: u64) -> bool {
        !self.single_output
            || fresh == 0
            || (e.reads as u64) & fresh != 0
            || (e.reads_flags && fresh >> 32 & 1 == 1)
    }

    /// Run `e` on every test; `None` (and nothing changed) if one faults.
    fn apply(&mut self, ms: &mut [Machine], e: &Entry) -> Option<Undo> {
        let r = e.writes.map_or(ZR as usize, |r| r as usize);
        let mut undo = Vec::with_capacity(ms.len());
        for m in ms.iter_mut() {
            undo.push((m.x.get(r).copied().unwrap_or(0), m.flags.clone()));
            if step(&mut self.dom, m, &e.inst).is_err() {
                restore(&mut ms[..undo.len()], e, &undo);
                return None;
            }
        }
        Some(undo)
    }

    fn matches(&self, k: usize, m: &Machine, taken: Option<bool>) -> bool {
        let want = &self.p.expect[k];
        let mut outs = self.p.outputs;
        while outs != 0 {
            let r = outs.trailing_zeros() as usize;
            if m.x[r] != want.x[r] {
                return false;
            }
            outs &= outs - 1;
        }
        (!self.p.flags_out || m.flags == want.flags)
            && taken.is_none_or(|t| t == self.p.expect_taken[k])
    }

    fn last_data(
        &mut self,
        ms: &mut [Machine],
        defined: u32,
        flags: bool,
        seq: &[usize],
        fresh: u64,
    ) {
        let spent = self.prefix_latency(seq);
        let list = self.last_candidates(fresh);
        for &i in list.iter() {
            let e = &self.data[i];
            if self.out_of_time() || spent + e.latency >= self.lim.latency_below {
                return;
            }
            if !Self::usable(e, defined, flags) {
                continue;
            }
            self.out.evaluated += 1;
            if self.all_tests(ms, e, false) {
                let mut s = seq.to_vec();
                s.push(i);
                self.out.sequences.push((s, None));
            }
        }
    }

    /// Entries worth trying last after a prefix that wrote `fresh`, in
    /// pool order: with one output, only those reading what the prefix
    /// wrote (the others were tried as shorter sequences).
    fn last_candidates(&mut self, fresh: u64) -> std::rc::Rc<[usize]> {
        let key = if self.single_output { fresh } else { 0 };
        if let Some(l) = self.last_lists.get(&key) {
            return l.clone();
        }
        let list: std::rc::Rc<[usize]> = if key == 0 {
            self.finals.as_slice().into()
        } else {
            let mut out: Vec<usize> = (0..33)
                .filter(|b| key >> b & 1 == 1)
                .flat_map(|b| self.readers[b].iter().copied())
                .collect();
            out.sort_unstable();
            out.dedup();
            out.into()
        };
        self.last_lists.insert(key, list.clone());
        list
    }

    fn last_branch(
        &mut self,
        ms: &mut [Machine],
        defined: u32,
        flags: bool,
        seq: &[usize],
        fresh: u64,
    ) {
        let spent = self.prefix_latency(seq);
        for (i, e) in self.branches.iter().enumerate() {
            if self.out_of_time() || spent + e.latency >= self.lim.latency_below {
                return;
            }
            if !Self::usable(e, defined, flags) || !self.reads_prefix(e, fresh) {
                continue;
            }
            self.out.evaluated += 1;
            if self.all_tests(ms, e, true) {
                self.out.sequences.push((seq.to_vec(), Some(i)));
            }
        }
    }

    /// Does `e` after the states `ms` give the expected outputs on every
    /// test? Stops at the first test it gets wrong.
    #[allow(clippy::needless_range_loop)] // `ms[k]` is re-borrowed after `step`
    fn all_tests(&mut self, ms: &mut [Machine], e: &Entry, branch: bool) -> bool {
        let r = e.writes.map_or(ZR as usize, |r| r as usize);
        for k in 0..ms.len() {
            let m = &mut ms[k];
            let saved = (m.x.get(r).copied().unwrap_or(0), m.flags.clone());
            let ok = match step(&mut self.dom, m, &e.inst) {
                Ok(taken) => {
                    let taken = branch.then(|| taken.unwrap_or(false));
                    self.matches(k, &ms[k], taken)
                }
                Err(_) => false,
            };
            let m = &mut ms[k];
            if let Some(x) = m.x.get_mut(r) {
                *x = saved.0;
            }
            m.flags = saved.1;
            if !ok {
                return false;
            }
        }
        true
    }
}

fn restore(ms: &mut [Machine], e: &Entry, undo: &Undo) {
    let r = e.writes.map_or(ZR as usize, |r| r as usize);
    for (m, (x, f)) in ms.iter_mut().zip(undo) {
        if let Some(v) = m.x.get_mut(r) {
            *v = *x;
        }
        m.flags = f.clone();
    }
}
