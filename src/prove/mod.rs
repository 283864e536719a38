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
//! [`stage`] is the step the pipeline calls; [`cache`] keeps answers.

pub mod cache;
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
    /// A state on which they differ, in the validator's words.
    Counterexample { description: String },
    /// Neither: a timeout, or something outside the semantics.
    Unknown { reason: String },
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

    /// Whether `candidate` may replace `original` when `live_out` is
    /// observable after them.
    pub fn prove(&self, original: &[Insn], candidate: &[Insn], live_out: LocSet) -> Proof {
        if self.timeout_ms == 0 {
            return Proof::Unknown {
                reason: "proofs off (--proof-timeout 0)".into(),
            };
        }
        let (o, c) = match (query::decode(original), query::decode(candidate)) {
            (Ok(o), Ok(c)) => (o, c),
            (Err(reason), _) | (_, Err(reason)) => return Proof::Unknown { reason },
        };
        let ctx = z3::Context::new(&z3::Config::new());
        let q = Query::new(&ctx, &o, &c, live_out);
        let key = ProofCache::key(&q.text(), original);
        if let Some(p) = self.cache.get(&key) {
            return p;
        }
        let timeout = u32::try_from(self.timeout_ms).unwrap_or(u32::MAX);
        let p = match q.check(timeout, original) {
            Answer::Unsat => Proof::Proved,
            Answer::Sat(description) => Proof::Counterexample { description },
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
