//! Enumerative search: the shortest sequences of pool entries that leave
//! the problem's outputs as the original does on every test state.
//!
//! Iterative deepening over sequence length. Inner levels are pruned by
//! observational equivalence (a state fingerprint over all tests seen at
//! the same or a smaller depth is not expanded again); the last level only
//! tries entries that write an output, and rejects a candidate at the first
//! test it gets wrong, so most candidates cost one instruction step.

use super::pool::Entry;
use crate::semantics::concrete::{Concrete, Machine};
use crate::semantics::exec::step;
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
}

/// Search limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_len: usize,
    pub max_found: usize,
    pub deadline: Instant,
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
}

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
        dom: Concrete::default(),
    };
    let mut machines = p.tests.clone();
    for len in 1..=lim.max_len {
        s.seen.clear();
        s.seen.insert(fingerprint(&machines), 0);
        let mut seq = Vec::new();
        s.level(&mut machines, p.defined, p.flags_defined, &mut seq, len);
        if !s.out.sequences.is_empty() || s.out.timed_out {
            break;
        }
    }
    s.out
}

fn fingerprint(ms: &[Machine]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for m in ms {
        for v in m.x.iter().chain([&m.nzcv()]) {
            h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
    }
    h
}

impl Search<'_> {
    fn out_of_time(&mut self) -> bool {
        if self.out.evaluated % 1024 == 0 && Instant::now() > self.lim.deadline {
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
            if self.p.branch {
                self.last_branch(ms, defined, flags, seq);
            } else {
                self.last_data(ms, defined, flags, seq);
            }
            return;
        }
        let depth = seq.len() + 1;
        for (i, e) in self.data.iter().enumerate() {
            if self.out_of_time() {
                return;
            }
            if !Self::usable(e, defined, flags) {
                continue;
            }
            self.out.evaluated += 1;
            let saved: Vec<Machine> = ms.to_vec();
            if !ms
                .iter_mut()
                .all(|m| step(&mut self.dom, m, &e.inst).is_ok())
            {
                ms.clone_from_slice(&saved);
                continue;
            }
            let fp = fingerprint(ms);
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
            ms.clone_from_slice(&saved);
        }
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

    fn last_data(&mut self, ms: &[Machine], defined: u32, flags: bool, seq: &[usize]) {
        for (i, e) in self.data.iter().enumerate() {
            if self.out_of_time() {
                return;
            }
            let useful = e.writes.is_some_and(|r| self.p.outputs >> r & 1 == 1)
                || (self.p.flags_out && e.sets_flags);
            if !useful || !Self::usable(e, defined, flags) {
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

    fn last_branch(&mut self, ms: &[Machine], defined: u32, flags: bool, seq: &[usize]) {
        for (i, e) in self.branches.iter().enumerate() {
            if self.out_of_time() {
                return;
            }
            if !Self::usable(e, defined, flags) {
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
    fn all_tests(&mut self, ms: &[Machine], e: &Entry, branch: bool) -> bool {
        for (k, m0) in ms.iter().enumerate() {
            let mut m = m0.clone();
            let Ok(taken) = step(&mut self.dom, &mut m, &e.inst) else {
                return false;
            };
            let taken = if branch {
                Some(taken.unwrap_or(false))
            } else {
                None
            };
            if !self.matches(k, &m, taken) {
                return false;
            }
        }
        true
    }
}
