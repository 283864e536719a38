//! The proof step of the pipeline: after the tests (the cheap reject), one
//! query per candidate they accepted.

use super::{Evidence, Proof, Prover};
use crate::verify::{Verdict, Verifier, VerifyJob};
use rayon::prelude::*;

/// A candidate after tests and proof.
#[derive(Clone, Debug)]
pub struct Judged {
    /// The tests' verdict, or the counterexample the solver found.
    pub verdict: Verdict,
    /// With an equivalent verdict: proved, or tested and why not proved.
    pub evidence: Option<Evidence>,
    /// Whether the solver rejected what the tests accepted.
    pub refuted: bool,
    /// Milliseconds spent on the proof (0 when none was made).
    pub proof_ms: f64,
}

/// Prove, in parallel, each job whose verdict is equivalent. A counterexample
/// turns the verdict into one (the candidate is rejected, and described as
/// the validator describes its own); a timeout or a block outside the
/// semantics keeps it equivalent with the evidence `tested`. A
/// counterexample's inputs join the validator's tests for that window, so
/// the next candidate meets them at test speed.
pub fn after_tests(
    jobs: &[VerifyJob],
    verdicts: Vec<Verdict>,
    prover: &Prover,
    verifier: &Verifier,
) -> Vec<Judged> {
    jobs.par_iter()
        .zip(verdicts)
        .map(|(job, verdict)| {
            if !verdict.is_equivalent() {
                return Judged {
                    verdict,
                    evidence: None,
                    refuted: false,
                    proof_ms: 0.0,
                };
            }
            let (proof, proof_ms) = prover.prove_timed(job.original, job.candidate, job.live_out);
            let (verdict, evidence) = match proof {
                Proof::Proved => (verdict, Some(Evidence::Proved)),
                Proof::Unknown { reason } => {
                    (verdict, Some(Evidence::Tested { not_proved: reason }))
                }
                Proof::Counterexample {
                    description,
                    inputs,
                } => {
                    if let Some(i) = inputs {
                        verifier.remember(job, &i);
                    }
                    let description = format!("{description} (found by the SMT solver)");
                    (Verdict::Counterexample { description }, None)
                }
            };
            Judged {
                refuted: evidence.is_none(),
                verdict,
                evidence,
                proof_ms,
            }
        })
        .collect()
}

/// Proof counts over a run, for its summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Candidates the tests accepted and the solver refuted.
    pub refuted: usize,
    /// Proof queries made, and their milliseconds.
    pub queries: usize,
    pub ms: f64,
}

impl Tally {
    /// Add another tally's counts.
    pub fn add(&mut self, other: &Tally) {
        self.refuted += other.refuted;
        self.queries += other.queries;
        self.ms += other.ms;
    }

    pub fn count(&mut self, j: &Judged) {
        self.refuted += j.refuted as usize;
        if j.refuted || j.evidence.is_some() {
            self.queries += 1;
            self.ms += j.proof_ms;
        }
    }
}
