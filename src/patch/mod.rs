//! Applying accepted rewrites to source files (and, later, binaries).

pub mod source;

use crate::prove::Evidence;
use serde::Serialize;

/// An accepted rewrite: verified equivalent and estimated faster.
#[derive(Clone, Debug, Serialize)]
pub struct Rewrite {
    pub function: String,
    /// Index of the block within its function.
    pub block: usize,
    /// 1-based source lines of the replaced instructions.
    pub lines: Vec<usize>,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub proposer: String,
    /// Number of validator tests it passed.
    pub tests: u32,
    /// Proved by the SMT solver, or tested only (and why not proved):
    /// `"evidence": "proved"` or `"evidence": "tested", "not_proved": "..."`.
    #[serde(flatten)]
    pub evidence: Evidence,
    /// Milliseconds the proof took when the rewrite was found (0 when the
    /// answer came from a cache or no proof was attempted).
    pub proof_ms: f64,
    pub cycles_before: f64,
    pub cycles_after: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}
