//! Proofs of rewrites with an SMT solver, after the tests (issue #20).
//!
//! Differential testing on a thousand states can accept a rewrite that is
//! wrong on one input it never drew (INT64_MIN, a shift of exactly 64, two
//! pointers three bytes apart). So each candidate the tests accept is also
//! put to Z3: the project's one semantics ([`crate::semantics::exec`]) read
//! over bit-vectors ([`smt`]), the two blocks compared as the validator
//! compares them ([`query`]). `unsat` is a proof; `sat` a counterexample,
//! which rejects the candidate; a timeout or a block outside the semantics
//! (SIMD/FP, system instructions, calls) leaves it *tested*, never wrong.
//! Instructions outside the semantics in the context both blocks share are
//! proved around ([`narrow`]). [`stage`] is the step the pipeline calls;
//! [`cache`] keeps answers.

pub mod cache;
pub mod narrow;
pub mod query;
pub mod smt;
pub mod stage;

use crate::asm::Insn;
use crate::semantics::LocSet;
use cache::ProofCache;
use query::{Answer, Query};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Default `--proof-timeout`, per query.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// What the solver says about one pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "proof", rename_all = "snake_case")]
pub enum Proof {
    /// Equivalent on every state (and every memory layout).
    Proved,
    /// A state on which they differ, in the validator's words, and its
    /// register inputs when the solver gave them.
    Counterexample {
        description: String,
        #[serde(default)]
        inputs: Option<Inputs>,
    },
    /// Neither: a timeout, or something outside the semantics.
    Unknown { reason: String },
}

/// A counterexample's register inputs: what the validator needs to meet it
/// again at test speed (memory is its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// x0..x30.
    pub x: Vec<u64>,
    pub sp: u64,
    /// NZCV in bits 31..28.
    pub nzcv: u64,
}

/// What stands behind an accepted rewrite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "evidence", rename_all = "snake_case")]
pub enum Evidence {
    /// Tested, then proved equivalent by the SMT solver.
    Proved,
    /// Passed the validator's tests only; `not_proved` says why.
    Tested { not_proved: String },
}

impl Evidence {
    pub fn is_proved(&self) -> bool {
        matches!(self, Evidence::Proved)
    }
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::Proved => f.write_str("proved"),
            Evidence::Tested { not_proved } => write!(f, "tested; not proved ({not_proved})"),
        }
    }
}

/// How the pipeline uses proofs: `--proof-timeout` and `--require-proof`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofConfig {
    /// Per query; 0 turns proofs off (every rewrite is then tested only).
    pub timeout_ms: u64,
    /// Apply proved rewrites only.
    pub require: bool,
}

impl Default for ProofConfig {
    fn default() -> Self {
        ProofConfig {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            require: false,
        }
    }
}

impl ProofConfig {
    /// Whether a candidate the tests found equivalent may be applied.
    pub fn accepts(&self, e: &Evidence) -> bool {
        !self.require || e.is_proved()
    }

    /// What decides results, for the result cache's fingerprint.
    pub fn fingerprint(&self) -> String {
        format!(
            "proof timeout {} ms{}",
            self.timeout_ms,
            if self.require { ", required" } else { "" }
        )
    }
}

/// Proves pairs, with answers cached.
#[derive(Clone, Debug, Default)]
pub struct Prover {
    pub timeout_ms: u64,
    pub cache: ProofCache,
}

impl Prover {
    pub fn new(timeout_ms: u64) -> Prover {
        Prover {
            timeout_ms,
            cache: ProofCache::default(),
        }
    }

    /// Keep answers in the on-disk cache too (the pipeline's, when it has one).
    pub fn with_disk_cache(mut self, disk: Option<crate::cache::Cache>) -> Prover {
        self.cache.disk = disk;
        self
    }

    /// Whether `candidate` may replace `original` when `live_out` is
    /// observable after them.
    pub fn prove(&self, original: &[Insn], candidate: &[Insn], live_out: LocSet) -> Proof {
        if self.timeout_ms == 0 {
            return Proof::Unknown {
                reason: "proofs off (--proof-timeout 0)".into(),
            };
        }
        let outside = match (query::decode(original), query::decode(candidate)) {
            (Ok(o), Ok(c)) => return self.answer(&o, &c, live_out, original),
            (Err(reason), _) | (_, Err(reason)) => reason,
        };
        let Some(n) = narrow::narrow(original, candidate, live_out) else {
            return Proof::Unknown { reason: outside };
        };
        match self.answer(
            &n.original_decoded,
            &n.candidate_decoded,
            n.live_out,
            &n.original,
        ) {
            Proof::Proved => Proof::Proved,
            Proof::Counterexample {
                description,
                inputs,
            } if n.refutes => Proof::Counterexample {
                description: format!(
                    "{description} (found without the instructions before it, which have no \
                     executable semantics but write nothing the rest reads)"
                ),
                inputs,
            },
            // Perhaps a state the cut context never leads to: not a
            // refutation, but worth a look (it may be a wrong rewrite).
            Proof::Counterexample { description, .. } => Proof::Unknown {
                reason: format!("{outside}; the rest, proved without it, differs: {description}"),
            },
            Proof::Unknown { reason } => Proof::Unknown {
                reason: format!("{reason}, proving the part without {outside}"),
            },
        }
    }

    /// The solver's answer for two decoded blocks, from the cache if asked
    /// before.
    ///
    /// Products and quotients are first read as uninterpreted functions:
    /// a proof for every function is a proof for these, and it spares the
    /// SAT solver comparing two multiplier circuits, which it does badly
    /// (`mov w1, #65521; mul w1, w2, w1; sub w0, w0, w1` against `msub`
    /// ran past a minute, because Z3 normalises the two subtractions into
    /// multiplications by different constants). A rewrite that relies on
    /// what a product is (`mul` by 8 as `lsl #3`) then gets the full query,
    /// with the time left.
    fn answer(
        &self,
        o: &query::Decoded,
        c: &query::Decoded,
        live_out: LocSet,
        original: &[Insn],
    ) -> Proof {
        let started = Instant::now();
        let budget = u32::try_from(self.timeout_ms).unwrap_or(u32::MAX);
        let ctx = z3::Context::new(&z3::Config::new());
        let q = Query::new(&ctx, o, c, live_out, true);
        if q.abstracted {
            let key = ProofCache::key(&q.text(), original);
            if self.cache.get(&key) == Some(Proof::Proved) {
                return Proof::Proved;
            }
            if let Answer::Unsat = q.check(budget / 4, original) {
                self.cache.put(&key, &Proof::Proved);
                return Proof::Proved;
            }
        }
        let q = if q.abstracted {
            Query::new(&ctx, o, c, live_out, false)
        } else {
            q
        };
        let key = ProofCache::key(&q.text(), original);
        if let Some(p) = self.cache.get(&key) {
            return p;
        }
        let spent = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let p = match q.check(budget.saturating_sub(spent).max(1), original) {
            Answer::Unsat => Proof::Proved,
            Answer::Sat(description, inputs) => Proof::Counterexample {
                description,
                inputs: Some(inputs),
            },
            Answer::Unknown(_) if started.elapsed().as_millis() >= budget as u128 => {
                Proof::Unknown {
                    reason: format!("timeout after {budget} ms"),
                }
            }
            Answer::Unknown(reason) => Proof::Unknown { reason },
        };
        self.cache.put(&key, &p);
        p
    }

    /// [`Prover::prove`] and the milliseconds it took.
    pub fn prove_timed(
        &self,
        original: &[Insn],
        candidate: &[Insn],
        live_out: LocSet,
    ) -> (Proof, f64) {
        let t = Instant::now();
        let p = self.prove(original, candidate, live_out);
        (p, t.elapsed().as_secs_f64() * 1e3)
    }
}

/// Prove one pair (answers cached in this process only).
pub fn prove(original: &[Insn], candidate: &[Insn], live_out: LocSet, timeout_ms: u64) -> Proof {
    Prover::new(timeout_ms).prove(original, candidate, live_out)
}
