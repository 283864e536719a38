//! The superoptimizing proposer: for each window and each sub-window of up
//! to [`MAX_SUB`] instructions, search the shortest sequence that computes
//! the same live-out values on test states, with the project's interpreter.
//!
//! Generation only: what it finds is a candidate like any other, checked by
//! the validator and costed by llvm-mca before it is applied. Registers are
//! renamed canonically (inputs first, then outputs, then a scratch
//! register) so one instruction pool serves every window of the same shape.

pub mod db;
pub mod export;
pub mod located;
pub mod pool;
mod problem;
pub mod render;
pub mod repair;
pub mod search;
mod seen;

use super::{Candidate, Proposer, Window};
use crate::asm::Insn;
use crate::semantics::inst::Inst;
use crate::semantics::LocSet;
use pool::{Entry, Shape};
use problem::SubWindow;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest sub-window searched.
pub const MAX_SUB: usize = 6;

/// Longest sequence searched.
pub const MAX_LEN: usize = 3;

/// Test states a candidate must match during the search; survivors are
/// confirmed on [`CONFIRM_STATES`] more before they are proposed.
pub const SEARCH_STATES: usize = 16;
pub const CONFIRM_STATES: usize = 512;

/// Searches of one sub-window and length, each with the counterexamples
/// of the one before.
const COUNTEREXAMPLE_ROUNDS: usize = 4;

/// A window whose search spends every evaluation and finds nothing is
/// searched again in pieces of at most this many instructions, each with
/// 1/[`SECOND_PASS_SHARE`] of the budget: the first pass spends it on the
/// longest sub-windows first, so a short rewrite at the window's end can be
/// out of its reach (gcc -Os `strings`: two copies and a compare after a
/// `udiv`/`msub` chain and a store; docs/eval.md).
const SECOND_PASS_PIECE: usize = 4;
const SECOND_PASS_SHARE: u64 = 4;

/// Candidates kept per window.
const MAX_CANDIDATES: usize = 6;

/// Pools by canonical shape, shared across windows and threads.
type PoolCache = Mutex<HashMap<String, Arc<Vec<Entry>>>>;

/// Pool entries kept across windows (about 70 bytes each). A shape with
/// many constants has a pool of 100k+ entries, and a long file has hundreds
/// of shapes: unbounded, the cache held 1.4 GB on a 400-line -O2 file.
/// Past this many the cache starts over; searches in flight keep their
/// pools through their `Arc`.
const POOL_CACHE_ENTRIES: usize = 1 << 20;

/// The `synth` proposer.
pub struct SynthProposer {
    /// Search time per window.
    pub budget: Duration,
    /// Candidate evaluations per window, if capped (`--synth-evals`).
    pub max_evals: Option<u64>,
    pub seed: u64,
    pools: PoolCache,
    db: db::RewriteDb,
    /// Searches run, and answers taken from the database instead.
    searches: AtomicU64,
    db_answers: AtomicU64,
    /// Candidate evaluations made, and nanoseconds spent in the search
    /// itself (for the benchmark: pools, test states and confirmation are
    /// the rest).
    evaluated: AtomicU64,
    search_nanos: AtomicU64,
    /// Windows whose search ran out of budget before its end
    /// ([`Proposer::left_open`]).
    cut_short: Mutex<HashSet<(Vec<Insn>, LocSet)>>,
}

impl SynthProposer {
    pub fn new(budget: Duration, seed: u64) -> Self {
        SynthProposer {
            budget,
            max_evals: None,
            db: db::RewriteDb::default(),
            searches: AtomicU64::new(0),
            db_answers: AtomicU64::new(0),
            evaluated: AtomicU64::new(0),
            search_nanos: AtomicU64::new(0),
            cut_short: Mutex::new(HashSet::new()),
            seed,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// Remember searches in (and answer from) the rewrite database kept in
    /// this cache.
    pub fn with_database(mut self, cache: crate::cache::Cache) -> Self {
        self.db = db::RewriteDb::new(Some(cache));
        self
    }

    /// (searches run, answers taken from the database).
    pub fn stats(&self) -> (u64, u64) {
        (
            self.searches.load(Ordering::Relaxed),
            self.db_answers.load(Ordering::Relaxed),
        )
    }

    /// Candidate evaluations made so far.
    pub fn evaluated(&self) -> u64 {
        self.evaluated.load(Ordering::Relaxed)
    }

    /// Seconds spent enumerating (summed over threads).
    pub fn search_seconds(&self) -> f64 {
        self.search_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    fn budget_tag(&self) -> String {
        format!(
            "{}ms/{:?}/{}",
            self.budget.as_millis(),
            self.max_evals,
            self.seed
        )
    }

    fn pool(&self, shape: &Shape, label: Option<&str>) -> Arc<Vec<Entry>> {
        let key = format!("{shape:?}|{label:?}");
        if let Some(p) = self.pools.lock().expect("pool cache").get(&key) {
            return p.clone();
        }
        let built = Arc::new(match label {
            Some(l) => pool::branch_entries(shape, l),
            None => pool::data_entries(shape),
        });
        let mut pools = self.pools.lock().expect("pool cache");
        let held: usize = pools.values().map(|p| p.len()).sum();
        if held + built.len() > POOL_CACHE_ENTRIES {
            pools.clear();
        }
        pools.insert(key, built.clone());
        built
    }

    /// Candidates for one window, within the budget; where the search
    /// spends every evaluation and finds nothing, a second pass
    /// ([`Self::search_pieces`]). A window whose budget still ran out, or
    /// longer than [`MAX_SUB`], is remembered as left open.
    pub fn propose_window(&self, w: &Window) -> Vec<Candidate> {
        let deadline = Instant::now() + self.budget;
        let cap = self.max_evals.unwrap_or(u64::MAX);
        let mut evals_left = cap;
        let mut out = self.search_window(w, deadline, &mut evals_left);
        let mut open = evals_left == 0;
        if open && out.is_empty() {
            (out, open) = self.search_pieces(w, deadline, cap / SECOND_PASS_SHARE);
        }
        // A window longer than the longest sub-window is never searched
        // whole: a rewrite that needs all of it is beyond this search.
        if open || w.insns.len() > MAX_SUB || Instant::now() > deadline {
            let key = (w.insns.clone(), w.live_out);
            self.cut_short.lock().expect("cut_short").insert(key);
        }
        out
    }

    /// The second pass: each piece of at most [`SECOND_PASS_PIECE`]
    /// instructions searched as a window of its own, with `evals`
    /// evaluations each (what the first pass searched to the end, the
    /// database answers); and whether a piece's evaluations ran out too.
    fn search_pieces(&self, w: &Window, deadline: Instant, evals: u64) -> (Vec<Candidate>, bool) {
        let mut out = Vec::new();
        let mut open = false;
        for (range, piece) in w.pieces(SECOND_PASS_PIECE) {
            if piece.insns.len() == w.insns.len() {
                return (out, true);
            }
            let mut evals_left = evals;
            for c in self.search_window(&piece, deadline, &mut evals_left) {
                let insns = w.spliced(range.clone(), c.insns.iter().cloned());
                out.push(Candidate { insns, ..c });
            }
            open |= evals_left == 0;
        }
        (out, open)
    }

    /// Candidates for one window: every sub-window at each length in turn
    /// (at each length the longest sub-windows first), until the budget or
    /// [`MAX_CANDIDATES`] stops it.
    fn search_window(&self, w: &Window, deadline: Instant, evals_left: &mut u64) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let subs = problem::sub_windows(w, MAX_SUB);
        // Cheap searches everywhere before expensive ones anywhere.
        for len in 1..=MAX_LEN {
            // Longer than the original only where its latency leaves room
            // (a division by a constant), which the latency bound checks.
            for sub in subs
                .iter()
                .filter(|s| s.range.len() >= len || s.latency() > len as f64)
            {
                if Instant::now() > deadline || out.len() >= MAX_CANDIDATES || *evals_left == 0 {
                    return out;
                }
                for seq in self.solve(sub, len, deadline, evals_left) {
                    let insns = w.spliced(sub.range.clone(), seq);
                    if !out.iter().any(|c| c.insns == insns) {
                        out.push(Candidate {
                            insns,
                            proposer: "synth".into(),
                            trace: None,
                        });
                    }
                }
            }
        }
        out
    }

    /// Replacement sequences for one sub-window, in real registers.
    fn solve(
        &self,
        sub: &SubWindow,
        len: usize,
        deadline: Instant,
        evals_left: &mut u64,
    ) -> Vec<Vec<Insn>> {
        let key = db::RewriteDb::key(&sub.canonical_key(), len, &self.budget_tag());
        if let Some(known) = self.db.get(&key) {
            self.db_answers.fetch_add(1, Ordering::Relaxed);
            return known
                .found
                .iter()
                .filter_map(|t| SubWindow::from_canonical_text(t))
                .filter_map(|seq| sub.realize(&seq))
                .collect();
        }
        self.searches.fetch_add(1, Ordering::Relaxed);
        let (found, complete) = self.search_sub(sub, len, deadline, evals_left);
        if complete || !found.is_empty() {
            let real: Vec<Vec<Insn>> = found.iter().filter_map(|s| sub.realize(s)).collect();
            self.db.put(
                &key,
                &db::Learned {
                    found: found
                        .iter()
                        .filter_map(|s| SubWindow::canonical_text(s))
                        .collect(),
                    original: sub.original.clone(),
                    live_out: sub.live.to_string(),
                    replacements: real
                        .iter()
                        .map(|s| s.iter().map(|i| i.to_string()).collect())
                        .collect(),
                },
            );
        }
        found.iter().filter_map(|s| sub.realize(s)).collect()
    }

    /// Confirmed canonical sequences for one sub-window and length, and
    /// whether the search ran to its end (an empty answer is then final).
    fn search_sub(
        &self,
        sub: &SubWindow,
        len: usize,
        deadline: Instant,
        evals_left: &mut u64,
    ) -> (Vec<Vec<Inst>>, bool) {
        let (Some(mut p), Some(confirm)) = (
            sub.problem(self.seed, SEARCH_STATES),
            sub.problem(self.seed.wrapping_add(1), CONFIRM_STATES),
        ) else {
            return (Vec::new(), true);
        };
        let data = self.pool(&sub.shape, None);
        let branches = match &sub.label {
            Some(l) => self.pool(&sub.shape, Some(l)),
            None => Arc::new(Vec::new()),
        };
        let limits = search::Limits {
            latency_below: if len < sub.range.len() {
                f64::INFINITY
            } else {
                sub.latency()
            },
            min_len: len,
            max_len: len,
            max_found: 4,
            deadline,
            max_evals: u64::MAX,
        };
        // Counterexample-guided: a sequence that fails a confirmation state
        // makes that state a test, and the search runs again.
        for _ in 0..COUNTEREXAMPLE_ROUNDS {
            let limits = search::Limits {
                max_evals: *evals_left,
                ..limits
            };
            let started = Instant::now();
            let found = search::search(&p, &data, &branches, limits);
            self.search_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            *evals_left = evals_left.saturating_sub(found.evaluated);
            self.evaluated.fetch_add(found.evaluated, Ordering::Relaxed);
            let mut out = Vec::new();
            let mut failures = Vec::new();
            for (seq, br) in &found.sequences {
                let mut insts: Vec<_> = seq.iter().map(|&i| data[i].inst).collect();
                insts.extend(br.map(|b| branches[b].inst));
                match sub.first_failure(&confirm, &insts) {
                    None if sub.realize(&insts).is_some() => out.push(insts),
                    None => {}
                    Some(k) => failures.push(k),
                }
            }
            if !out.is_empty() || failures.is_empty() || found.timed_out {
                return (out, !found.timed_out);
            }
            for k in failures {
                p.push_test(&confirm, k);
            }
        }
        (Vec::new(), true)
    }
}

impl Proposer for SynthProposer {
    fn name(&self) -> &str {
        "synth"
    }

    fn fingerprint(&self) -> String {
        format!(
            "synth-1:budget={}ms,evals={:?},seed={},sub={MAX_SUB},len={MAX_LEN},states={SEARCH_STATES}+{CONFIRM_STATES},second={SECOND_PASS_PIECE}/{SECOND_PASS_SHARE}",
            self.budget.as_millis(),
            self.max_evals,
            self.seed
        )
    }

    fn propose(&self, windows: &[Window]) -> anyhow::Result<Vec<Vec<Candidate>>> {
        Ok(windows.par_iter().map(|w| self.propose_window(w)).collect())
    }

    fn left_open(&self, w: &Window) -> bool {
        let key = (w.insns.clone(), w.live_out);
        self.cut_short.lock().expect("cut_short").contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(insns: &[&str], live_out: &str) -> Vec<String> {
        let synth = SynthProposer::new(Duration::from_secs(5), 1);
        synth
            .propose_window(&Window::of(insns, live_out))
            .iter()
            .map(|c| {
                c.insns
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect()
    }

    #[test]
    fn copy_then_add_becomes_one_add() {
        let f = found(&["mov x0, x1", "add x0, x0, #1"], "x0");
        assert!(f.contains(&"add x0, x1, #1".to_string()), "{f:?}");
    }

    /// A copy comes out as `mov`, as a person would write it (the digit
    /// loop of the gcc -Os `strings` fixture: `w0` is dead after it).
    #[test]
    fn a_copy_is_written_as_mov() {
        let f = found(
            &["mov w0, w2", "mov w2, w3", "cmp w0, #9", "b.hi .L20"],
            "x2,x3",
        );
        assert!(
            f.contains(&"cmp w2, #9; mov w2, w3; b.hi .L20".to_string()),
            "{f:?}"
        );
        assert!(!f.iter().any(|c| c.contains("orr")), "{f:?}");
    }

    /// A window whose evaluations ran out is left open (the LLM is asked
    /// about it first); one searched to the end is not.
    #[test]
    fn a_search_cut_short_leaves_its_window_open() {
        let w = Window::of(&["mov x0, x1", "add x0, x0, #1"], "x0");
        let mut synth = SynthProposer::new(Duration::from_secs(60), 1);
        synth.propose_window(&w);
        assert!(!synth.left_open(&w));
        synth.max_evals = Some(10);
        let other = Window::of(&["mov x0, x1", "add x2, x0, #1", "eor x0, x0, x2"], "x0,x2");
        synth.propose_window(&other);
        assert!(synth.left_open(&other));
        assert!(!synth.left_open(&w));
    }

    /// The whole block of the gcc -Os `strings` digit loop: the first
    /// pass spends the evaluation cap on the `udiv`/`msub` chain's long
    /// sub-windows; the second, piece by piece, reaches the copies at its
    /// end.
    #[test]
    fn a_second_pass_by_pieces_reaches_the_end_of_a_long_window() {
        let w = Window::of(
            &[
                "udiv w3, w2, w22",
                "msub w0, w3, w22, w2",
                "add w0, w0, #48",
                "strb w0, [x1, #-1]!",
                "mov w0, w2",
                "mov w2, w3",
                "cmp w0, #9",
                "b.hi .L20",
            ],
            "x1,x2,x3,x22,sp,mem",
        );
        let mut synth = SynthProposer::new(Duration::from_secs(60), 1);
        synth.max_evals = Some(crate::cli::opt::DEFAULT_SYNTH_EVALS);
        let found: Vec<String> = synth
            .propose_window(&w)
            .iter()
            .map(|c| {
                c.insns[4..]
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect();
        assert!(
            found.contains(&"cmp w2, #9; mov w2, w3; b.hi .L20".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn shift_pair_becomes_a_bitfield_move() {
        let f = found(&["lsl x0, x1, #56", "asr x0, x0, #56"], "x0");
        assert!(f.iter().any(|c| c == "sxtb x0, w1"), "{f:?}");
    }

    #[test]
    fn flags_and_branches_are_outputs() {
        let f = found(&["cmp x3, #0", "b.eq .L7"], "x3");
        assert!(f.contains(&"cbz x3, .L7".to_string()), "{f:?}");
        // With the flags live the compare must stay.
        let f = found(&["cmp x3, #0", "b.eq .L7"], "x3,nzcv");
        assert!(!f.iter().any(|c| c.starts_with("cbz")), "{f:?}");
    }

    /// Tests beyond the first lane group (counterexamples join the 16
    /// search states) are run in a second, padded group: the right
    /// sequence is found on 19 tests, and none once one of the extra tests
    /// expects another value.
    #[test]
    fn tests_beyond_one_lane_group_decide_too() {
        let w = Window::of(&["mov x0, x1", "add x0, x0, #1"], "x0");
        let sub = problem::sub_windows(&w, MAX_SUB)
            .into_iter()
            .find(|s| s.range.len() == 2)
            .unwrap();
        let synth = SynthProposer::new(Duration::from_secs(5), 1);
        let data = synth.pool(&sub.shape, None);
        let limits = search::Limits {
            latency_below: f64::INFINITY,
            min_len: 1,
            max_len: 1,
            max_found: 4,
            deadline: Instant::now() + Duration::from_secs(60),
            max_evals: u64::MAX,
        };
        let mut p = sub.problem(7, SEARCH_STATES + 3).unwrap();
        let found = search::search(&p, &data, &[], limits);
        let text: Vec<_> = found
            .sequences
            .iter()
            .map(|(s, _)| render::text(&data[s[0]].inst, "").unwrap())
            .collect();
        assert!(text.iter().any(|t| t == "add x0, x1, #1"), "{text:?}");
        p.expect[SEARCH_STATES + 1].x[0] ^= 1;
        let found = search::search(&p, &data, &[], limits);
        assert!(found.sequences.is_empty(), "{:?}", found.sequences);
    }

    #[test]
    fn absolute_value_by_shifts_becomes_compare_and_negate() {
        let f = found(
            &["asr x1, x0, #63", "eor x0, x0, x1", "sub x0, x0, x1"],
            "x0",
        );
        assert!(f.iter().any(|c| c.split("; ").count() == 2), "{f:?}");
    }
}

#[cfg(test)]
mod database_tests {
    use super::*;

    #[test]
    fn the_same_shape_elsewhere_is_answered_without_a_search() {
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::cache::Cache::at(dir.path());
        let first = SynthProposer::new(Duration::from_secs(5), 1).with_database(cache.clone());
        let a = first.propose_window(&Window::of(&["mov x0, x1", "add x0, x0, #1"], "x0"));
        assert!(first.stats().0 > 0);
        // Other registers, same canonical shape: a new proposer (a later
        // run) answers from the database alone.
        let second = SynthProposer::new(Duration::from_secs(5), 1).with_database(cache);
        let b = second.propose_window(&Window::of(&["mov x5, x9", "add x5, x5, #1"], "x5"));
        assert_eq!(second.stats().0, 0, "searched again");
        assert!(second.stats().1 > 0);
        let text = |c: &[Candidate]| -> Vec<String> {
            c.iter()
                .map(|c| {
                    c.insns
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .collect()
        };
        assert!(
            text(&a).contains(&"add x0, x1, #1".to_string()),
            "{:?}",
            text(&a)
        );
        assert!(
            text(&b).contains(&"add x5, x9, #1".to_string()),
            "{:?}",
            text(&b)
        );
    }
}
