//! The search core, the one loop every command runs: windows → proposals →
//! cost → verify → accept (`opt` and `check` through
//! [`super::optimize`], `dataset` directly; `eval` scores given answers with
//! its [`judge`] step).
//!
//! Per window, in bounded rounds: ask every proposer, cost all candidates,
//! verify the ones that would be faster *against the original window*, keep
//! the cheapest equivalent one ([`Judgement::accepts`], the acceptance rule).
//! Verifying against the original (not the previous round's result) means
//! every applied rewrite is checked directly.
//! What the tests accept then goes to the SMT solver ([`crate::prove`]): a
//! counterexample rejects it, and each applied rewrite says whether it was
//! proved or only tested.
//!
//! [`CachedSearch`] wraps a search with the on-disk result cache; the search
//! itself knows nothing of caching.

use crate::asm::Insn;
use crate::cache::{Cache, CacheKey, KeyBuilder};
use crate::cost::{Cost, CostModel};
use crate::propose::{Candidate, Proposer, Window};
use crate::prove::stage::{self, Judged, Tally};
use crate::prove::{Evidence, ProofConfig, Prover};
use crate::verify::{Verdict, Verifier, VerifyJob};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// The parts and knobs of a search.
pub struct Search<'a> {
    pub proposers: &'a [&'a dyn Proposer],
    pub verifier: &'a Verifier,
    /// Proves what the tests accept (timeout 0: tests only).
    pub prover: &'a Prover,
    /// `--proof-timeout` and `--require-proof`.
    pub proof: ProofConfig,
    pub cost: &'a dyn CostModel,
    /// Rounds of propose→verify per window (a bounded fixed point).
    pub max_rounds: usize,
    /// Where rewrites go: source text, or a binary patched in place.
    pub placement: Placement,
    /// Time for the proposers asked after the others (the LLM).
    pub slow_budget: SlowBudget,
}

/// Where accepted rewrites go, which decides how long one may be and what
/// it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Source text: a rewrite replaces its window's lines, at any length.
    Free,
    /// A binary patched in place: a rewrite fits in its window's words and
    /// the words it frees become `nop`s (see [`crate::elf::patch`]). The core
    /// still fetches and issues those, so a candidate is costed with its
    /// padding: a shorter rewrite wins only by cycles, and deleting a `nop`
    /// (alignment padding) wins nothing.
    InPlace,
}

impl Placement {
    /// `candidate` as the core will run it in place of `window` (borrowed
    /// as it is in source text: no copy per candidate there).
    pub fn as_placed<'c>(self, window: &[Insn], candidate: &'c [Insn]) -> Cow<'c, [Insn]> {
        static NOP: LazyLock<Insn> =
            LazyLock::new(|| Insn::parse_plain("nop").expect("`nop` parses"));
        match self {
            Placement::InPlace if candidate.len() < window.len() => {
                let mut placed = candidate.to_vec();
                placed.resize(window.len(), NOP.clone());
                Cow::Owned(placed)
            }
            _ => Cow::Borrowed(candidate),
        }
    }

    /// Whether a rewrite of `window_len` instructions may have `len`.
    fn fits(self, window_len: usize, len: usize) -> bool {
        self == Placement::Free || len <= window_len
    }

    /// Whether any rewrite of `window` could win: in place, a window of
    /// `nop`s alone already costs what its padded rewrite would.
    fn could_improve(self, window: &[Insn]) -> bool {
        self == Placement::Free || !window.iter().all(|i| i.mnemonic == "nop")
    }
}

/// How long the slow proposers ([`Proposer::asked_after_others`]) may take
/// in one search. Once the time is spent, the windows not yet asked stay
/// unasked: the search says how many, and does not cache their results as
/// final.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SlowBudget {
    Unlimited,
    Seconds(f64),
    /// `factor` times what the search took before the slow proposers were
    /// first asked (the rules, synth and verification), but at least
    /// `min_seconds` and at most `max_seconds`: the LLM's share of a run
    /// stays bounded however large the file, small files still get it, and
    /// a whole binary is not kept waiting for it.
    Relative {
        factor: f64,
        min_seconds: f64,
        max_seconds: f64,
    },
}

impl SlowBudget {
    /// The default: the LLM at most twice the time of the rest (so a run
    /// with it takes at most about 3 times one without), at least 2 s and
    /// at most 2 minutes (a static binary's rules and synth take 3.5
    /// minutes cold; twice that again for the LLM made the run 10).
    pub const DEFAULT: SlowBudget = SlowBudget::Relative {
        factor: 2.0,
        min_seconds: 2.0,
        max_seconds: 120.0,
    };

    /// Seconds the slow proposers get when first asked `elapsed` into a
    /// search; `None`: no limit.
    fn seconds(self, elapsed: std::time::Duration) -> Option<f64> {
        match self {
            SlowBudget::Unlimited => None,
            SlowBudget::Seconds(s) => Some(s),
            SlowBudget::Relative {
                factor,
                min_seconds,
                max_seconds,
            } => Some((factor * elapsed.as_secs_f64()).clamp(min_seconds, max_seconds)),
        }
    }

    /// The deadline for slow proposers first asked `elapsed` into a search.
    fn deadline(self, elapsed: std::time::Duration) -> Option<std::time::Instant> {
        let secs = self.seconds(elapsed)?;
        Some(std::time::Instant::now() + std::time::Duration::from_secs_f64(secs))
    }
}

/// A verified rewrite the search kept.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub candidate: Candidate,
    /// Its estimated cost.
    pub cost: Cost,
    /// Validator tests it passed.
    pub tests: u32,
    /// Proved, or tested only (and why not proved).
    pub evidence: Evidence,
    /// Milliseconds the proof took (0 from a cache).
    pub proof_ms: f64,
}

/// What the search found for one window.
#[derive(Clone, Debug)]
pub struct Found {
    /// The window's cost; `None` when the cost model cannot read it (e.g.
    /// an instruction llvm-mca does not model for this core): such a window
    /// is left alone.
    pub before: Option<Cost>,
    /// The cheapest verified rewrite, if any.
    pub best: Option<Accepted>,
    /// The slow proposers were not asked about it: their budget was spent.
    /// Such a result is not the search's final word (and is not cached).
    pub unasked: bool,
}

impl Found {
    /// The window's cost (zero when the model cannot read it).
    pub fn cost_before(&self) -> Cost {
        self.before.unwrap_or(Cost::ZERO)
    }

    /// The cost after the search: the rewrite's, or the window's.
    pub fn cost_after(&self) -> Cost {
        self.best.as_ref().map_or(self.cost_before(), |b| b.cost)
    }
}

/// Every window's result, in order, and how many candidates the validator
/// rejected along the way (for honesty in reports).
#[derive(Debug)]
pub struct Searched {
    pub found: Vec<Found>,
    pub rejected: usize,
    /// Proof queries made, and the candidates they refuted (also counted
    /// in `rejected`).
    pub proofs: Tally,
}

/// Where a search stands: windows whose proposals are in, of those asked in
/// this round. Reported as proposals come in, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    pub round: usize,
    pub done: usize,
    pub total: usize,
}

/// A callback told of each [`Tick`].
pub type OnTick<'a> = &'a (dyn Fn(Tick) + Sync);

/// Windows asked of the proposers at a time: small enough that progress
/// moves often, large enough to keep synth's threads full.
const PROPOSE_CHUNK: usize = 64;

/// The same for slow proposers: small enough that their budget is checked
/// often, large enough to fill the LLM's parallel sequences.
const SLOW_CHUNK: usize = 16;

/// The first chunk under a deadline: its time per window sets how many the
/// next may take.
const FIRST_TIMED_CHUNK: usize = 2;

/// A candidate put to the test: a rewrite of `window` (verified against it),
/// to be accepted only over something costing `current`.
pub struct Trial<'a> {
    pub window: &'a Window,
    pub candidate: &'a [Insn],
    pub current: Cost,
    /// How the candidate would be placed, which decides what it costs.
    pub placement: Placement,
}

/// Which trials [`judge`] verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Only those the cost model finds cheaper than their `current` (the
    /// search: a slower candidate could never be accepted).
    Improving,
    /// All of them (evaluation measures equivalence for its own sake).
    All,
}

/// What the cost model, the validator and the prover said of one trial.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// `None`: the cost model cannot read the candidate.
    pub cost: Option<Cost>,
    /// The tests' verdict (a counterexample when the solver refuted what
    /// they accepted) and the proof's evidence; `None`: not verified (with
    /// [`Verify::Improving`], not cheaper).
    judged: Option<Judged>,
}

impl Judgement {
    /// The verdict; `None` when not verified.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.judged.as_ref().map(|j| &j.verdict)
    }

    /// The acceptance rule, written once: the validator found the candidate
    /// equivalent, with evidence the proof settings accept
    /// ([`ProofConfig::accepts`]: with `--require-proof`, proved), and the
    /// cost model finds it cheaper than `current` ([`Cost::improves_on`]).
    pub fn accepts(&self, current: &Cost, proof: &ProofConfig) -> bool {
        self.judged.as_ref().is_some_and(|j| {
            j.verdict.is_equivalent() && j.evidence.as_ref().is_some_and(|e| proof.accepts(e))
        }) && self.cost.is_some_and(|c| c.improves_on(current))
    }

    /// The tests passed, when equivalent.
    pub fn tests(&self) -> Option<u32> {
        match self.verdict() {
            Some(Verdict::Equivalent { tests }) => Some(*tests),
            _ => None,
        }
    }
}

/// Cost every trial (one batch), then verify those `which` selects against
/// their windows (in parallel batches), then prove what the tests accepted.
/// An error when the validator cannot run.
pub fn judge(
    verifier: &Verifier,
    prover: &Prover,
    cost: &dyn CostModel,
    trials: &[Trial],
    which: Verify,
) -> Result<Vec<Judgement>> {
    let placed: Vec<Cow<[Insn]>> = trials
        .iter()
        .map(|t| t.placement.as_placed(&t.window.insns, t.candidate))
        .collect();
    let blocks: Vec<&[Insn]> = placed.iter().map(|p| p.as_ref()).collect();
    let costs: Vec<Option<Cost>> = cost
        .cost_each(&blocks)
        .into_iter()
        .map(Result::ok)
        .collect();
    let todo: Vec<usize> = (0..trials.len())
        .filter(|&i| match which {
            Verify::All => true,
            Verify::Improving => costs[i].is_some_and(|c| c.improves_on(&trials[i].current)),
        })
        .collect();
    let jobs: Vec<VerifyJob> = todo
        .iter()
        .map(|&i| VerifyJob {
            original: &trials[i].window.insns,
            candidate: trials[i].candidate,
            live_out: trials[i].window.live_out,
        })
        .collect();
    let chunk = (jobs.len() / rayon::current_num_threads().max(1)).clamp(1, 64);
    let verdicts: Vec<Verdict> = jobs
        .par_chunks(chunk)
        .map(|c| verifier.check_many(c))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    // Then prove what the tests accepted.
    let judged = stage::after_tests(&jobs, verdicts, prover, verifier);
    let mut out: Vec<Judgement> = costs
        .into_iter()
        .map(|cost| Judgement { cost, judged: None })
        .collect();
    for (i, j) in todo.into_iter().zip(judged) {
        out[i].judged = Some(j);
    }
    Ok(out)
}

/// How a step asks its proposers: so many windows at a time, until the
/// deadline if there is one.
#[derive(Clone, Copy)]
struct Chunks {
    size: usize,
    deadline: Option<std::time::Instant>,
}

/// The state of one window across rounds.
struct Progress {
    current: Vec<Insn>,
    current_cost: Cost,
    best: Option<Accepted>,
    active: bool,
    /// The slow proposers were due to be asked and were not.
    unasked: bool,
}

impl Search<'_> {
    /// Everything that decides this search's results besides the window:
    /// the program version, each proposer's, the validator's, the cost
    /// model's and the proof settings' fingerprints, and the search's own
    /// knobs. The key of its cached results (see [`CachedSearch`]).
    pub fn fingerprint(&self) -> String {
        format!(
            "peephole {}|{}|{}|{}|{}|rounds {} placement {:?}",
            env!("CARGO_PKG_VERSION"),
            self.proposers
                .iter()
                .map(|p| match p.asked_after_others() {
                    true => format!("after-others {}", p.fingerprint()),
                    false => p.fingerprint(),
                })
                .collect::<Vec<_>>()
                .join(","),
            self.verifier.fingerprint(),
            self.cost.name(),
            self.proof.fingerprint(),
            self.max_rounds,
            self.placement
        )
    }

    /// Search every window; `on_tick` reports progress. An error when a
    /// proposer or the validator fails.
    pub fn run(&self, windows: &[Window], on_tick: OnTick) -> Result<Searched> {
        let originals: Vec<&[Insn]> = windows.iter().map(|w| w.insns.as_slice()).collect();
        let before: Vec<Option<Cost>> = self
            .cost
            .cost_each(&originals)
            .into_iter()
            .map(Result::ok)
            .collect();
        let mut state: Vec<Progress> = windows
            .iter()
            .zip(&before)
            .map(|(w, c)| Progress {
                current: w.insns.clone(),
                current_cost: c.unwrap_or(Cost::ZERO),
                best: None,
                active: c.is_some() && self.placement.could_improve(&w.insns),
                unasked: false,
            })
            .collect();
        let mut rejected = 0;
        let mut proofs = Tally::default();

        let (first, after): (Vec<&dyn Proposer>, Vec<&dyn Proposer>) =
            self.proposers.iter().partition(|p| !p.asked_after_others());
        let started = std::time::Instant::now();
        let mut slow_deadline = None;
        for round in 0..self.max_rounds {
            let active: Vec<usize> = (0..windows.len()).filter(|&i| state[i].active).collect();
            if active.is_empty() || self.proposers.is_empty() {
                on_tick(Tick {
                    round,
                    done: 0,
                    total: 0,
                });
                break;
            }
            for s in state.iter_mut() {
                s.active = false;
            }
            let mut tally = (0, Tally::default());
            let all = Chunks {
                size: PROPOSE_CHUNK,
                deadline: None,
            };
            self.step(
                &first, windows, &active, &mut state, round, on_tick, all, &mut tally,
            )?;
            // The slow proposers only where the others found nothing: a
            // window without a rewrite is still at its first round.
            let mut unimproved: Vec<usize> = active
                .iter()
                .copied()
                .filter(|&i| state[i].best.is_none())
                .collect();
            // Where a fast proposer's search ran out of budget first: a
            // rewrite within its reach may be missed there, and the slow
            // proposers' budget may not reach the end of the file.
            unimproved.sort_by_cached_key(|&i| {
                let w = Window {
                    insns: state[i].current.clone(),
                    live_out: windows[i].live_out,
                };
                !first.iter().any(|p| p.left_open(&w))
            });
            if !after.is_empty() && !unimproved.is_empty() && slow_deadline.is_none() {
                slow_deadline = Some(self.slow_budget.deadline(started.elapsed()));
            }
            let slow = Chunks {
                size: SLOW_CHUNK,
                deadline: slow_deadline.flatten(),
            };
            self.step(
                &after,
                windows,
                &unimproved,
                &mut state,
                round,
                on_tick,
                slow,
                &mut tally,
            )?;
            rejected += tally.0;
            proofs.add(&tally.1);
        }
        Ok(Searched {
            found: state
                .into_iter()
                .zip(before)
                .map(|(st, before)| Found {
                    before,
                    best: st.best,
                    unasked: st.unasked,
                })
                .collect(),
            rejected,
            proofs,
        })
    }

    /// One round of `proposers` on the windows `which`: propose, cost,
    /// verify what would be faster against the original window, and accept
    /// the cheapest equivalent (marking its window active for the next
    /// round). Adds the rejected candidates and proof counts to `tally`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        proposers: &[&dyn Proposer],
        windows: &[Window],
        which: &[usize],
        state: &mut [Progress],
        round: usize,
        on_tick: OnTick,
        chunks: Chunks,
        tally: &mut (usize, Tally),
    ) -> Result<()> {
        if proposers.is_empty() || which.is_empty() {
            return Ok(());
        }
        let tick = |done| {
            on_tick(Tick {
                round,
                done,
                total: which.len(),
            })
        };
        tick(0);
        let asks: Vec<Window> = which
            .iter()
            .map(|&i| Window {
                insns: state[i].current.clone(),
                live_out: windows[i].live_out,
            })
            .collect();
        // Gather candidates per window, deduplicated by text.
        let mut cands: Vec<Vec<Candidate>> = vec![Vec::new(); which.len()];
        // Under a deadline, chunks start small and double: a chunk is not
        // started if, at the last one's time per window, it would end past
        // the deadline, so the budget bounds the run, not only when its
        // last chunk starts (a first chunk of 16 windows took the LLM ~10 s
        // against a 2 s budget on a small file).
        let mut size = match chunks.deadline {
            Some(_) => FIRST_TIMED_CHUNK.min(chunks.size),
            None => chunks.size,
        };
        let mut per_window = std::time::Duration::ZERO;
        let mut first = 0;
        while first < asks.len() {
            let chunk = &asks[first..(first + size).min(asks.len())];
            let chunk_started = std::time::Instant::now();
            let projected = per_window * chunk.len() as u32;
            if chunks
                .deadline
                .is_some_and(|d| chunk_started + projected > d)
            {
                for &i in &which[first..] {
                    state[i].unasked = true;
                }
                tick(which.len());
                break;
            }
            for p in proposers {
                for (k, list) in p.propose(chunk)?.into_iter().enumerate() {
                    cands[first + k].extend(list);
                }
            }
            per_window = chunk_started.elapsed() / chunk.len() as u32;
            first += chunk.len();
            tick(first);
            size = (size * 2).min(chunks.size);
        }
        for (k, list) in cands.iter_mut().enumerate() {
            let cur = text_of(&asks[k].insns);
            let window_len = windows[which[k]].insns.len();
            let mut seen = HashSet::new();
            list.retain(|c| {
                let t = text_of(&c.insns);
                self.placement.fits(window_len, c.insns.len()) && t != cur && seen.insert(t)
            });
        }
        // Cost them all at once; verify those that would be faster against
        // the original window.
        let flat: Vec<(usize, &Candidate)> = cands
            .iter()
            .enumerate()
            .flat_map(|(k, l)| l.iter().map(move |c| (k, c)))
            .collect();
        let trials: Vec<Trial> = flat
            .iter()
            .map(|&(k, c)| Trial {
                window: &windows[which[k]],
                candidate: &c.insns,
                current: state[which[k]].current_cost,
                placement: self.placement,
            })
            .collect();
        let judged = judge(
            self.verifier,
            self.prover,
            self.cost,
            &trials,
            Verify::Improving,
        )?;
        for ((k, cand), j) in flat.into_iter().zip(judged) {
            let st = &mut state[which[k]];
            let (Some(tested), Some(cost)) = (&j.judged, j.cost) else {
                continue;
            };
            tally.1.count(tested);
            // With --require-proof a tested-only candidate is not applied
            // (nor counted as rejected: nothing refuted it).
            if !tested.verdict.is_equivalent() {
                tally.0 += 1;
            } else if j.accepts(&st.current_cost, &self.proof) {
                st.current = cand.insns.clone();
                st.current_cost = cost;
                st.best = Some(Accepted {
                    candidate: cand.clone(),
                    cost,
                    tests: j.tests().expect("equivalent"),
                    evidence: tested.evidence.clone().expect("equivalent, so judged"),
                    proof_ms: tested.proof_ms,
                });
                st.active = true;
            }
        }
        Ok(())
    }
}

fn text_of(insns: &[Insn]) -> String {
    insns
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A search whose result for each window is remembered on disk: a window
/// met again (same text, same live-out, same [`Search::fingerprint`]) needs
/// no proposing, costing or verifying.
pub struct CachedSearch<'a> {
    search: &'a Search<'a>,
    cache: &'a Cache,
    fingerprint: String,
}

/// Cache namespace of window results.
const NAMESPACE: &str = "window-results";

/// What the cache keeps per window: the final answer of a full search.
#[derive(Serialize, Deserialize)]
struct CachedResult {
    after: Option<Vec<String>>,
    proposer: String,
    tests: u32,
    cycles_before: f64,
    cycles_after: f64,
    trace: Option<String>,
    evidence: Option<Evidence>,
    proof_ms: f64,
}

impl CachedResult {
    fn of(f: &Found) -> CachedResult {
        let best = f.best.as_ref();
        CachedResult {
            after: best.map(|b| b.candidate.insns.iter().map(|x| x.to_string()).collect()),
            proposer: best
                .map(|b| b.candidate.proposer.clone())
                .unwrap_or_default(),
            tests: best.map_or(0, |b| b.tests),
            cycles_before: f.cost_before().cycles,
            cycles_after: f.cost_after().cycles,
            trace: best.and_then(|b| b.candidate.trace.clone()),
            evidence: best.map(|b| b.evidence.clone()),
            proof_ms: best.map_or(0.0, |b| b.proof_ms),
        }
    }

    /// The result for `window`; `None` (a miss) if a rewrite no longer parses.
    /// `unasked`: the entry was stored for a window the slow proposers did
    /// not get to.
    fn found(self, window: &Window, unasked: bool) -> Option<Found> {
        let best = match self.after {
            None => None,
            Some(a) => {
                let insns = a
                    .iter()
                    .map(|t| Insn::parse_plain(t).ok())
                    .collect::<Option<Vec<Insn>>>()?;
                Some(Accepted {
                    cost: Cost {
                        cycles: self.cycles_after,
                        instructions: insns.len(),
                    },
                    candidate: Candidate {
                        insns,
                        proposer: self.proposer,
                        trace: self.trace,
                    },
                    tests: self.tests,
                    evidence: self.evidence.unwrap_or(Evidence::Tested {
                        not_proved: "no proof recorded in the cache".into(),
                    }),
                    proof_ms: self.proof_ms,
                })
            }
        };
        Some(Found {
            unasked,
            before: Some(Cost {
                cycles: self.cycles_before,
                instructions: window.insns.len(),
            }),
            best,
        })
    }
}

impl<'a> CachedSearch<'a> {
    pub fn new(search: &'a Search<'a>, cache: &'a Cache) -> Self {
        CachedSearch {
            search,
            cache,
            fingerprint: search.fingerprint(),
        }
    }

    /// The entry's kind names its schema (5: with the evidence); the
    /// fingerprint everything else.
    fn key(&self, w: &Window) -> CacheKey {
        KeyBuilder::new("window-result-5")
            .field("search", &self.fingerprint)
            .field("window", w.text())
            .field("live-out", w.live_out.to_string())
            .finish()
    }

    /// Where a window the slow proposers did not get to is remembered: under
    /// the slow budget too, so a later run with the same budget repeats the
    /// answer at once instead of spending its own budget again (a warm run
    /// costs what one without the LLM costs), while a run given more time
    /// (another `--llm-budget`, or 0 for no limit) asks.
    fn unasked_key(&self, w: &Window) -> CacheKey {
        KeyBuilder::new("window-result-unasked-5")
            .field("search", &self.fingerprint)
            .field("slow-budget", format!("{:?}", self.search.slow_budget))
            .field("window", w.text())
            .field("live-out", w.live_out.to_string())
            .finish()
    }

    /// The cached result for `w` under its `(final, unasked)` keys: final,
    /// else one left unasked under this budget.
    fn cached(&self, w: &Window, keys: &(CacheKey, CacheKey)) -> Option<Found> {
        let get = |k: &CacheKey, unasked| {
            self.cache
                .get::<CachedResult>(NAMESPACE, k)
                .and_then(|e| e.found(w, unasked))
        };
        get(&keys.0, false).or_else(|| get(&keys.1, true))
    }

    /// [`Search::run`], answering from the cache where it can and storing
    /// the new results (only when the whole search succeeded).
    pub fn run(&self, windows: &[Window], on_tick: OnTick) -> Result<Searched> {
        let keys: Vec<(CacheKey, CacheKey)> = windows
            .iter()
            .map(|w| (self.key(w), self.unasked_key(w)))
            .collect();
        let mut found: Vec<Option<Found>> = windows
            .iter()
            .zip(&keys)
            .map(|(w, k)| self.cached(w, k))
            .collect();
        let misses: Vec<usize> = (0..windows.len()).filter(|&i| found[i].is_none()).collect();
        let asked: Vec<Window> = misses.iter().map(|&i| windows[i].clone()).collect();
        let searched = self.search.run(&asked, on_tick)?;
        for (&i, f) in misses.iter().zip(searched.found) {
            let key = if f.unasked { &keys[i].1 } else { &keys[i].0 };
            // A cache that cannot be written only costs speed.
            let _ = self.cache.put(NAMESPACE, key, &CachedResult::of(&f));
            found[i] = Some(f);
        }
        Ok(Searched {
            found: found
                .into_iter()
                .map(|f| f.expect("every window answered"))
                .collect(),
            rejected: searched.rejected,
            proofs: searched.proofs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::BuiltinModel;
    use crate::verify::VerifyConfig;

    /// The default LLM budget is twice the rest of the run, between 2 s
    /// and 2 minutes.
    #[test]
    fn the_default_slow_budget_is_relative_and_bounded() {
        let secs =
            |elapsed: u64| SlowBudget::DEFAULT.seconds(std::time::Duration::from_secs(elapsed));
        assert_eq!(secs(0), Some(2.0));
        assert_eq!(secs(10), Some(20.0));
        assert_eq!(secs(3600), Some(120.0));
        assert_eq!(SlowBudget::Unlimited.seconds(Default::default()), None);
    }

    /// Proposes the same lines for every window.
    struct Fixed(&'static [&'static [&'static str]]);

    impl Proposer for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }

        fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
            Ok(windows
                .iter()
                .map(|_| {
                    self.0
                        .iter()
                        .map(|c| Candidate {
                            insns: Window::of(c, "").insns,
                            proposer: "fixed".into(),
                            trace: None,
                        })
                        .collect()
                })
                .collect())
        }
    }

    /// A proposer whose model fails.
    struct Failing;

    impl Proposer for Failing {
        fn name(&self) -> &str {
            "failing"
        }

        fn propose(&self, _: &[Window]) -> Result<Vec<Vec<Candidate>>> {
            anyhow::bail!("the model could not decode")
        }
    }

    /// A slow proposer: asked after the others, and records what it is
    /// asked about.
    struct Slow(std::sync::Mutex<Vec<String>>);

    impl Proposer for Slow {
        fn name(&self) -> &str {
            "slow"
        }

        fn asked_after_others(&self) -> bool {
            true
        }

        fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
            let mut asked = self.0.lock().unwrap();
            asked.extend(windows.iter().map(|w| text_of(&w.insns)));
            Ok(vec![Vec::new(); windows.len()])
        }
    }

    fn search_all(proposers: &[&dyn Proposer], ws: &[Window]) -> Result<Searched> {
        search_within(proposers, ws, SlowBudget::Unlimited)
    }

    fn search_within(
        proposers: &[&dyn Proposer],
        ws: &[Window],
        slow_budget: SlowBudget,
    ) -> Result<Searched> {
        search_placed(proposers, ws, slow_budget, Placement::Free)
    }

    fn search_placed(
        proposers: &[&dyn Proposer],
        ws: &[Window],
        slow_budget: SlowBudget,
        placement: Placement,
    ) -> Result<Searched> {
        let verifier = Verifier::new(VerifyConfig { tests: 50, seed: 1 })?;
        let cost = BuiltinModel::new("neoverse-n1", "test");
        Search {
            proposers,
            verifier: &verifier,
            prover: &Prover::new(0),
            proof: ProofConfig::default(),
            cost: &cost,
            max_rounds: 3,
            placement,
            slow_budget,
        }
        .run(ws, &|_| {})
    }

    fn run(proposers: &[&dyn Proposer], w: Window) -> Result<Searched> {
        search_all(proposers, &[w])
    }

    /// The slow proposer is asked only about the window the others left
    /// as it was.
    #[test]
    fn slow_proposers_only_where_the_others_found_nothing() {
        if !crate::verify::assemble::assembler_available() {
            return;
        }
        let improvable = Window::of(&["mov x1, x0", "add x0, x1, #0"], "x0,sp");
        let other = Window::of(&["add x0, x0, #1"], "x0,sp");
        let slow = Slow(Default::default());
        let s = search_all(&[&Fixed(&[&[]]), &slow], &[improvable, other.clone()]).unwrap();
        assert!(s.found[0].best.is_some());
        assert_eq!(*slow.0.lock().unwrap(), [text_of(&other.insns)]);
        assert!(!s.found[1].unasked);
    }

    /// A fast proposer that ran out of budget on some windows (here: any
    /// window with a `mul`).
    struct CutShort;

    impl Proposer for CutShort {
        fn name(&self) -> &str {
            "cut-short"
        }

        fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
            Ok(vec![Vec::new(); windows.len()])
        }

        fn left_open(&self, w: &Window) -> bool {
            w.insns.iter().any(|i| i.mnemonic == "mul")
        }
    }

    /// The slow proposer is asked first where a fast one's search was cut
    /// short, then in file order.
    #[test]
    fn slow_proposers_first_where_a_search_was_cut_short() {
        let ws = [
            Window::of(&["add x0, x0, #1"], "x0,sp"),
            Window::of(&["mul x0, x0, x1"], "x0,sp"),
            Window::of(&["add x0, x0, #2"], "x0,sp"),
        ];
        let slow = Slow(Default::default());
        search_all(&[&CutShort, &slow], &ws).unwrap();
        let order: Vec<String> = [1, 0, 2].iter().map(|&i| text_of(&ws[i].insns)).collect();
        assert_eq!(*slow.0.lock().unwrap(), order);
    }

    /// With its time spent, the slow proposer is not asked, and the
    /// window says so.
    #[test]
    fn a_spent_budget_leaves_windows_unasked() {
        let slow = Slow(Default::default());
        let w = Window::of(&["add x0, x0, #1"], "x0,sp");
        let s = search_within(&[&slow], &[w], SlowBudget::Seconds(0.0)).unwrap();
        assert!(s.found[0].unasked);
        assert!(slow.0.lock().unwrap().is_empty());
    }

    /// In a binary patched in place, a deletion leaves a `nop` behind, so
    /// deleting a `nop` gains nothing there (it does in source text), and a
    /// window of `nop`s alone is not even asked about.
    #[test]
    fn in_place_a_candidate_is_costed_with_its_padding() {
        if !crate::verify::assemble::assembler_available() {
            return;
        }
        let w = Window::of(&["nop", "add x0, x0, #1"], "x0,sp");
        let drop_nop = Fixed(&[&["add x0, x0, #1"]]);
        let found = |placement| {
            search_placed(
                &[&drop_nop],
                std::slice::from_ref(&w),
                SlowBudget::Unlimited,
                placement,
            )
            .unwrap()
            .found[0]
                .best
                .is_some()
        };
        assert!(found(Placement::Free));
        assert!(!found(Placement::InPlace));

        let slow = Slow(Default::default());
        let nops = Window::of(&["nop", "nop"], "x0,sp");
        search_placed(&[&slow], &[nops], SlowBudget::Unlimited, Placement::InPlace).unwrap();
        assert!(slow.0.lock().unwrap().is_empty());
    }

    /// A window left unasked is remembered for runs with the same budget
    /// (a warm run does not spend it again) and asked by a run with more.
    #[test]
    fn unasked_windows_are_cached_per_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let verifier = Verifier::new(VerifyConfig { tests: 50, seed: 1 }).unwrap();
        let cost = BuiltinModel::new("neoverse-n1", "test");
        let w = Window::of(&["add x0, x0, #1"], "x0,sp");
        let slow = Slow(Default::default());
        let proposers: [&dyn Proposer; 1] = [&slow];
        let run = |slow_budget| {
            let search = Search {
                proposers: &proposers,
                verifier: &verifier,
                prover: &Prover::new(0),
                proof: ProofConfig::default(),
                cost: &cost,
                max_rounds: 1,
                placement: Placement::Free,
                slow_budget,
            };
            CachedSearch::new(&search, &cache)
                .run(std::slice::from_ref(&w), &|_| {})
                .unwrap()
        };
        assert!(run(SlowBudget::Seconds(0.0)).found[0].unasked);
        assert!(run(SlowBudget::Seconds(0.0)).found[0].unasked, "warm");
        assert!(slow.0.lock().unwrap().is_empty(), "asked within no time");
        assert!(!run(SlowBudget::Unlimited).found[0].unasked);
        assert_eq!(slow.0.lock().unwrap().len(), 1, "asked with time to");
    }

    #[test]
    fn acceptance_needs_equivalence_and_a_lower_cost() {
        let (one, two) = (
            Cost {
                cycles: 1.0,
                instructions: 1,
            },
            Cost {
                cycles: 1.0,
                instructions: 2,
            },
        );
        let judged = |verdict, evidence, cost| Judgement {
            cost,
            judged: Some(Judged {
                verdict,
                evidence,
                refuted: false,
                proof_ms: 0.0,
            }),
        };
        let ok = || Verdict::Equivalent { tests: 5 };
        let tested = || {
            Some(Evidence::Tested {
                not_proved: "timeout".into(),
            })
        };
        let (free, required) = (
            ProofConfig::default(),
            ProofConfig {
                require: true,
                ..ProofConfig::default()
            },
        );
        assert!(judged(ok(), tested(), Some(one)).accepts(&two, &free));
        assert!(!judged(ok(), tested(), Some(one)).accepts(&one, &free));
        assert!(!judged(ok(), tested(), Some(one)).accepts(&two, &required));
        assert!(judged(ok(), Some(Evidence::Proved), Some(one)).accepts(&two, &required));
        let wrong = Verdict::Counterexample {
            description: String::new(),
        };
        assert!(!judged(wrong, None, Some(one)).accepts(&two, &free));
        assert!(!judged(ok(), tested(), None).accepts(&two, &free));
    }

    /// The cheapest equivalent candidate wins; a wrong one is counted.
    #[test]
    fn keeps_the_cheapest_equivalent_candidate() {
        if !crate::verify::assemble::assembler_available() {
            return;
        }
        let w = Window::of(&["mov x1, x0", "add x0, x1, #0"], "x0,sp");
        let p = Fixed(&[&["mov x0, #0"], &["mov x0, x0"], &[]]);
        let s = run(&[&p], w).unwrap();
        let best = s.found[0].best.as_ref().expect("a rewrite");
        assert!(best.candidate.insns.is_empty(), "{best:?}");
        assert_eq!(best.tests, 50);
        assert_eq!(s.rejected, 1);
    }

    #[test]
    fn a_failing_proposer_fails_the_search() {
        let w = Window::of(&["mov x1, x0", "add x0, x1, #0"], "x0,sp");
        let e = run(&[&Failing], w).unwrap_err();
        assert!(format!("{e:#}").contains("could not decode"), "{e:#}");
    }
}
