//! The validator: differential execution of original and candidate on many
//! machine states. A rewrite is applied only on [`Verdict::Equivalent`].

use serde::Serialize;

/// The validator's judgement on one (original, candidate) pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Agreed on every test.
    Equivalent { tests: u32 },
    /// A state on which they differ, described for a human.
    Counterexample { description: String },
    /// Contains something that cannot be sandboxed (system registers,
    /// exclusives, barriers, svc...): never accepted.
    Unsupported { reason: String },
    /// Does not assemble or is otherwise malformed.
    Invalid { reason: String },
}

impl Verdict {
    pub fn is_equivalent(&self) -> bool {
        matches!(self, Verdict::Equivalent { .. })
    }
}
