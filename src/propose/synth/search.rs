//! Enumerative search: the shortest sequences of pool entries that leave
//! the problem's outputs as the original does on every test state.
//!
//! Iterative deepening over sequence length. Inner levels are pruned by
//! observational equivalence (a state fingerprint over all tests seen at
//! the same or a smaller depth is not expanded again); the last level only
//! tries entries that write an output.
//!
//! Candidates run on all tests at once ([`crate::semantics::lanes`]: one
//! dispatch per instruction, not per test), and a state's fingerprint is
//! kept up to date from the one register and the flags a step changes,
//! instead of being rehashed over every register and test.

use super::pool::Entry;
use super::seen::Seen;
use crate::semantics::concrete::{Concrete, Machine, Memory};
use crate::semantics::domain::Flags;
use crate::semantics::exec::step;
use crate::semantics::lanes::{bits, equal, gather, Lane, LaneMachine, Lanes, Mask, ALL, LANES};
use rustc_hash::FxHashMap;
use std::rc::Rc;
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
    seen: Seen,
    out: Found,
    dom: Lanes,
    /// The one-test reading, for the quick rejection on one test.
    quick_dom: Concrete,
    /// The quick-rejection test ([`quick_test`]).
    quick: usize,
    /// Its state after the current prefix.
    quick_state: Machine,
    /// The expected final states and branch directions, [`LANES`] tests
    /// per group as the search states are grouped.
    expect: Vec<LaneMachine>,
    expect_taken: Vec<Mask>,
    /// One output only (a register, the flags or the branch's direction).
    single_output: bool,
    /// Data entries that can end a sequence: they write an output (a
    /// flag-setting twin only where the flags are an output).
    finals: Vec<usize>,
    /// `finals` that read register n (index 32: the flags).
    readers: Vec<Vec<usize>>,
    /// `last_candidates` and `inner_candidates` by the prefix's written set.
    last_lists: FxHashMap<u64, Rc<[usize]>>,
    inner_lists: FxHashMap<u64, Rc<[usize]>>,
    /// Registers some data entry writes: the only ones in which two
    /// prefixes' states can differ, so the only ones fingerprinted.
    written: Vec<usize>,
    /// The hash of each register's column of values over all tests (index
    /// 32: the flags), for the current prefix.
    columns: [u64; 33],
}

/// Inner entries evaluated ahead of their turn ([`Search::level`]).
const AHEAD: usize = 8;

/// An inner entry evaluated ahead of its turn: the fingerprint after it
/// (`None`: it faulted), its new column hashes (its register's, the
/// flags') and the values it left, per group of tests.
#[derive(Clone)]
struct Ahead {
    fp: Option<u64>,
    columns: [u64; 2],
    x: Vec<Lane>,
    flags: Vec<Flags<Mask>>,
}

impl Ahead {
    fn new(groups: usize) -> Self {
        Ahead {
            fp: None,
            columns: [0; 2],
            x: vec![[0; LANES]; groups],
            flags: vec![
                Flags {
                    n: 0,
                    z: 0,
                    c: 0,
                    v: 0
                };
                groups
            ],
        }
    }
}

/// The tests in groups of [`LANES`] (the last group padded).
fn grouped(ms: &[Machine]) -> Vec<LaneMachine> {
    ms.chunks(LANES).map(gather).collect()
}

/// Which tests (a bit each) had their branch taken, per group.
fn taken_masks(taken: &[bool]) -> Vec<Mask> {
    taken.chunks(LANES).map(bits).collect()
}

/// Search sequences of up to `lim.max_len` instructions (the branch, when
/// the window ends with one, counts).
pub fn search(p: &Problem, data: &[Entry], branches: &[Entry], lim: Limits) -> Found {
    let quick = quick_test(p);
    let mut s = Search {
        p,
        data,
        branches,
        lim,
        seen: Seen::default(),
        out: Found::default(),
        dom: Lanes {
            mem: p.memory.clone(),
        },
        quick_dom: Concrete {
            mem: p.memory.clone(),
        },
        expect: grouped(&p.expect),
        expect_taken: taken_masks(&p.expect_taken),
        single_output: p.outputs.count_ones() + p.flags_out as u32 + p.branch as u32 == 1,
        finals: Vec::new(),
        readers: vec![Vec::new(); 33],
        last_lists: FxHashMap::default(),
        inner_lists: FxHashMap::default(),
        written: {
            // One pass over the pool (it can hold 100k+ entries, and a
            // search runs once per length and counterexample round).
            let mask = data
                .iter()
                .fold(0u32, |m, e| m | e.writes.map_or(0, |r| 1 << r));
            (0..31).filter(|r| mask >> r & 1 == 1).collect()
        },
        columns: [0; 33],
        quick,
        quick_state: p.tests[quick].clone(),
    };
    s.index_finals();
    let mut machines = grouped(&p.tests);
    for len in lim.min_len.max(1)..=lim.max_len {
        s.seen.clear();
        let fp = s.start_fingerprint(&machines);
        s.seen.visit(fp, 0);
        let mut seq = Vec::new();
        s.level(&mut machines, p.defined, p.flags_defined, &mut seq, len, fp);
        if !s.out.sequences.is_empty() || s.out.timed_out {
            break;
        }
    }
    s.out
}

/// Hash of register `r`'s values (32: the flags) over all tests. Lanes are
/// hashed independently and summed, so the loop has no chain to wait on.
fn column_hash(ms: &[LaneMachine], r: usize) -> u64 {
    let mut h = 0u64;
    for (g, m) in ms.iter().enumerate() {
        let salt = (g as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if r == 32 {
            let f = &m.flags;
            let v = (f.n as u64) << 48 | (f.z as u64) << 32 | (f.c as u64) << 16 | f.v as u64;
            h = h.wrapping_add(mix(v ^ salt));
        } else {
            for (k, &v) in m.x[r].iter().enumerate() {
                h = h.wrapping_add(mix(v ^ salt.wrapping_add(k as u64)));
            }
        }
    }
    h
}

/// A column hash's share of the state fingerprint.
fn share(r: usize, column: u64) -> u64 {
    mix(column ^ (r as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9))
}

/// A 64-bit mixer: every input bit reaches the high and low bits.
#[inline]
fn mix(x: u64) -> u64 {
    let x = (x ^ x >> 31).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ x >> 29
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

    /// The fingerprint of the initial states, filling `columns`.
    fn start_fingerprint(&mut self, ms: &[LaneMachine]) -> u64 {
        let mut fp = 0u64;
        for r in self.written.iter().copied().chain([32]) {
            self.columns[r] = column_hash(ms, r);
            fp = fp.wrapping_add(share(r, self.columns[r]));
        }
        fp
    }

    /// The fingerprint after `e` ran on the states `ms` (the prefix's was
    /// `fp`), updating `columns`; returns what to give `restore_columns`.
    fn step_fingerprint(&mut self, ms: &[LaneMachine], e: &Entry, fp: u64) -> (u64, [u64; 2]) {
        let mut fp = fp;
        let changed = written_reg(e);
        let old = [changed.map_or(0, |r| self.columns[r]), self.columns[32]];
        for r in changed.into_iter().chain(e.sets_flags.then_some(32)) {
            let new = column_hash(ms, r);
            fp = fp
                .wrapping_sub(share(r, self.columns[r]))
                .wrapping_add(share(r, new));
            self.columns[r] = new;
        }
        (fp, old)
    }

    fn restore_columns(&mut self, e: &Entry, old: [u64; 2]) {
        if let Some(r) = written_reg(e) {
            self.columns[r] = old[0];
        }
        self.columns[32] = old[1];
    }

    fn level(
        &mut self,
        ms: &mut [LaneMachine],
        defined: u32,
        flags: bool,
        seq: &mut Vec<usize>,
        left: usize,
        fp: u64,
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
        // Every entry here runs on the same states: they are copied once,
        // and each entry's change is undone from the copy.
        let parent = ms.to_vec();
        let list = self.inner_candidates(self.prefix_writes(seq), defined, flags);
        let mut ahead: Vec<Ahead> = vec![Ahead::new(ms.len()); AHEAD];
        for chunk in list.chunks(AHEAD) {
            // Fingerprint a few entries ahead of their turn, so that their
            // slots in `seen` are fetched while the next ones run; then
            // take them in order, exactly as one at a time.
            let mut ready = 0;
            for (&i, a) in chunk.iter().zip(ahead.iter_mut()) {
                if spent + self.data[i].latency >= self.lim.latency_below {
                    break;
                }
                self.evaluate_ahead(ms, &self.data[i], fp, &parent, a);
                if let Some(child) = a.fp {
                    self.seen.prefetch(child);
                }
                ready += 1;
            }
            for (&i, a) in chunk[..ready].iter().zip(&ahead) {
                if self.out_of_time() {
                    return;
                }
                self.out.evaluated += 1;
                let Some(child) = a.fp else { continue };
                if !self.seen.visit(child, depth) {
                    continue;
                }
                let e = &self.data[i];
                let old = self.install(ms, e, a);
                let def = defined | e.writes.map_or(0, |r| 1 << r);
                let old_quick = self.sync_quick(ms, e);
                seq.push(i);
                self.level(ms, def, flags || e.sets_flags, seq, left - 1, child);
                seq.pop();
                self.unsync_quick(e, old_quick);
                self.restore_columns(e, old);
                restore(ms, e, &parent);
            }
            if ready < chunk.len() {
                return;
            }
        }
    }

    /// Run `e` on the states `ms` (the prefix's, fingerprint `fp`), keep
    /// what it changed in `a`, and put the states back as in `parent`.
    fn evaluate_ahead(
        &mut self,
        ms: &mut [LaneMachine],
        e: &Entry,
        fp: u64,
        parent: &[LaneMachine],
        a: &mut Ahead,
    ) {
        a.fp = None;
        if !self.apply(ms, e, parent) {
            return;
        }
        let (child, old) = self.step_fingerprint(ms, e, fp);
        let r = written_reg(e);
        a.fp = Some(child);
        a.columns = [r.map_or(0, |r| self.columns[r]), self.columns[32]];
        for (g, m) in ms.iter().enumerate() {
            if let Some(r) = r {
                a.x[g] = m.x[r];
            }
            a.flags[g] = m.flags.clone();
        }
        self.restore_columns(e, old);
        restore(ms, e, parent);
    }

    /// Put the states `e` left (kept in `a`) in place; returns what to give
    /// `restore_columns`.
    fn install(&mut self, ms: &mut [LaneMachine], e: &Entry, a: &Ahead) -> [u64; 2] {
        let r = written_reg(e);
        let old = [r.map_or(0, |r| self.columns[r]), self.columns[32]];
        if let Some(r) = r {
            self.columns[r] = a.columns[0];
        }
        self.columns[32] = a.columns[1];
        for (g, m) in ms.iter_mut().enumerate() {
            if let Some(r) = r {
                m.x[r] = a.x[g];
            }
            m.flags = a.flags[g].clone();
        }
        old
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

    /// Run `e` on every test; `false` (and the states put back as in
    /// `parent`) if it faults on one.
    fn apply(&mut self, ms: &mut [LaneMachine], e: &Entry, parent: &[LaneMachine]) -> bool {
        for g in 0..ms.len() {
            if step(&mut self.dom, &mut ms[g], &e.inst).is_err() {
                restore(&mut ms[..=g], e, parent);
                return false;
            }
        }
        true
    }

    /// Whether group `g` after a candidate gives the expected outputs
    /// (and branch direction) on every test.
    fn matches(&self, g: usize, m: &LaneMachine, taken: Option<Mask>) -> bool {
        let want = &self.expect[g];
        let mut ok = ALL;
        let mut outs = self.p.outputs;
        while outs != 0 {
            let r = outs.trailing_zeros() as usize;
            ok &= equal(&m.x[r], &want.x[r]);
            outs &= outs - 1;
        }
        if self.p.flags_out {
            let (f, w) = (&m.flags, &want.flags);
            ok &= !((f.n ^ w.n) | (f.z ^ w.z) | (f.c ^ w.c) | (f.v ^ w.v));
        }
        if let Some(t) = taken {
            ok &= !(t ^ self.expect_taken[g]);
        }
        ok == ALL
    }

    fn last_data(
        &mut self,
        ms: &mut [LaneMachine],
        defined: u32,
        flags: bool,
        seq: &[usize],
        fresh: u64,
    ) {
        let spent = self.prefix_latency(seq);
        let list = self.last_candidates(fresh, defined, flags);
        for &i in list.iter() {
            let e = &self.data[i];
            if self.out_of_time() || spent + e.latency >= self.lim.latency_below {
                return;
            }
            self.out.evaluated += 1;
            if self.quick_check(e, false) && self.all_tests(ms, e, false) {
                let mut s = seq.to_vec();
                s.push(i);
                self.out.sequences.push((s, None));
            }
        }
    }

    /// Entries worth trying last after a prefix that wrote `fresh`, in
    /// pool order: those that read only what is defined then (`defined`,
    /// `flags`: the inputs and what the prefix wrote, so `fresh` decides
    /// them) and, with one output, read something the prefix wrote (the
    /// others were tried as shorter sequences). A handful of distinct
    /// prefixes' write sets recur across millions of prefixes, and building
    /// the list each time (collect, sort, dedup) took two thirds of the
    /// search.
    fn last_candidates(&mut self, fresh: u64, defined: u32, flags: bool) -> Rc<[usize]> {
        if let Some(l) = self.last_lists.get(&fresh) {
            return l.clone();
        }
        let mut list: Vec<usize> = if self.single_output && fresh != 0 {
            (0..33)
                .filter(|b| fresh >> b & 1 == 1)
                .flat_map(|b| self.readers[b].iter().copied())
                .collect()
        } else {
            self.finals.clone()
        };
        list.sort_unstable();
        list.dedup();
        list.retain(|&i| Self::usable(&self.data[i], defined, flags));
        let list: Rc<[usize]> = list.into();
        self.last_lists.insert(fresh, list.clone());
        list
    }

    /// Entries that can follow a prefix that wrote `fresh`, in pool order:
    /// those reading only what is defined then (decided by `fresh`).
    fn inner_candidates(&mut self, fresh: u64, defined: u32, flags: bool) -> Rc<[usize]> {
        if let Some(l) = self.inner_lists.get(&fresh) {
            return l.clone();
        }
        let list: Rc<[usize]> = (0..self.data.len())
            .filter(|&i| Self::usable(&self.data[i], defined, flags))
            .collect();
        self.inner_lists.insert(fresh, list.clone());
        list
    }

    fn last_branch(
        &mut self,
        ms: &mut [LaneMachine],
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
            if self.quick_check(e, true) && self.all_tests(ms, e, true) {
                self.out.sequences.push((seq.to_vec(), Some(i)));
            }
        }
    }

    /// Does `e` after the quick test's state give its expected outputs?
    /// Most last candidates fail here, at the cost of one instruction on
    /// one test, before [`Self::all_tests`] runs them on all.
    fn quick_check(&mut self, e: &Entry, branch: bool) -> bool {
        let m = &mut self.quick_state;
        let saved_x = written_reg(e).map(|r| m.x[r]);
        let saved_flags = m.flags.clone();
        let ok = match step(&mut self.quick_dom, m, &e.inst) {
            Ok(taken) => {
                let want = &self.p.expect[self.quick];
                let mut outs = self.p.outputs;
                let mut ok = !self.p.flags_out || m.flags == want.flags;
                while ok && outs != 0 {
                    let r = outs.trailing_zeros() as usize;
                    ok = m.x[r] == want.x[r];
                    outs &= outs - 1;
                }
                ok && (!branch || taken.unwrap_or(false) == self.p.expect_taken[self.quick])
            }
            Err(_) => false,
        };
        if let (Some(v), Some(r)) = (saved_x, written_reg(e)) {
            m.x[r] = v;
        }
        m.flags = saved_flags;
        ok
    }

    /// Copy what `e` changed in the quick test's lane into `quick_state`,
    /// returning the values it replaced.
    fn sync_quick(&mut self, ms: &[LaneMachine], e: &Entry) -> (Option<u64>, Flags<bool>) {
        let (g, k) = (self.quick / LANES, self.quick % LANES);
        let m = &mut self.quick_state;
        let old_flags = m.flags.clone();
        let f = &ms[g].flags;
        m.flags = Flags {
            n: f.n >> k & 1 == 1,
            z: f.z >> k & 1 == 1,
            c: f.c >> k & 1 == 1,
            v: f.v >> k & 1 == 1,
        };
        let old_x = written_reg(e).map(|r| std::mem::replace(&mut m.x[r], ms[g].x[r][k]));
        (old_x, old_flags)
    }

    fn unsync_quick(&mut self, e: &Entry, old: (Option<u64>, Flags<bool>)) {
        if let (Some(r), Some(v)) = (written_reg(e), old.0) {
            self.quick_state.x[r] = v;
        }
        self.quick_state.flags = old.1;
    }

    /// Does `e` after the states `ms` give the expected outputs on every
    /// test? Stops at the first group of tests it gets wrong.
    #[allow(clippy::needless_range_loop)] // `ms[g]` is re-borrowed after `step`
    fn all_tests(&mut self, ms: &mut [LaneMachine], e: &Entry, branch: bool) -> bool {
        let r = written_reg(e);
        for g in 0..ms.len() {
            let m = &mut ms[g];
            let saved = (r.map(|r| m.x[r]), m.flags.clone());
            let ok = match step(&mut self.dom, m, &e.inst) {
                Ok(taken) => {
                    let taken = branch.then(|| taken.unwrap_or(0));
                    self.matches(g, &ms[g], taken)
                }
                Err(_) => false,
            };
            let m = &mut ms[g];
            if let (Some(r), Some(v)) = (r, saved.0) {
                m.x[r] = v;
            }
            m.flags = saved.1;
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The test that rejects the most candidates on its own: the one whose
/// inputs look the most random (bits furthest from all-zero or all-one).
/// The first test has every register zero, where many wrong sequences
/// agree with the original (over half the last candidates passed it).
pub(super) fn quick_test(p: &Problem) -> usize {
    let spread = |m: &Machine| -> u32 {
        (0..31)
            .filter(|r| p.defined >> r & 1 == 1)
            .map(|r| m.x[r].count_ones().min(m.x[r].count_zeros()))
            .sum()
    };
    let best =
        (0..p.tests.len().min(LANES)).max_by_key(|&k| (spread(&p.tests[k]), std::cmp::Reverse(k)));
    best.unwrap_or(0)
}

/// The general register (x0–x30) `e` writes, if any: the only register a
/// pool entry changes (the stack pointer and zero register are not state
/// the search tracks).
fn written_reg(e: &Entry) -> Option<usize> {
    e.writes.map(|r| r as usize).filter(|&r| r < 31)
}

/// Put back what `e` changed in `ms` from the states before it, `parent`.
fn restore(ms: &mut [LaneMachine], e: &Entry, parent: &[LaneMachine]) {
    let r = written_reg(e);
    for (m, p) in ms.iter_mut().zip(parent) {
        if let Some(r) = r {
            m.x[r] = p.x[r];
        }
        m.flags = p.flags.clone();
    }
}
