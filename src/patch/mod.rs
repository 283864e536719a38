//! Applying accepted rewrites to source files (and, later, binaries).

pub mod source;

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
    pub cycles_before: f64,
    pub cycles_after: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}
