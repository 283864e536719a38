//! Proposers: sources of candidate rewrites for a window of a block.
//!
//! A proposer only suggests; nothing it says is applied before the validator
//! ([`crate::verify`]) has shown it equivalent and the cost model
//! ([`crate::cost`]) has shown it faster.

pub mod llm;

use crate::asm::Insn;
use crate::semantics::LocSet;
use serde::Serialize;

pub mod rules;

pub use rules::RuleProposer;

/// A straight-line run of instructions to be replaced as a whole, with what
/// the rest of the program can observe after it.
#[derive(Clone, Debug)]
pub struct Window {
    pub insns: Vec<Insn>,
    /// Locations live after the window's last instruction.
    pub live_out: LocSet,
}

impl Window {
    /// The window's instructions as canonical text, one per line.
    pub fn text(&self) -> String {
        self.insns
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One proposed replacement for a [`Window`].
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// Replacement instructions (possibly empty: the window is dead).
    #[serde(serialize_with = "ser_insns")]
    pub insns: Vec<Insn>,
    /// Which proposer made it (`rules:<rule-name>`, `llm`, ...).
    pub proposer: String,
    /// The proposer's reasoning (the LLM's chain-of-code trace), if any.
    pub trace: Option<String>,
}

fn ser_insns<S: serde::Serializer>(v: &[Insn], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|i| i.to_string()))
}

/// A source of candidates. Batched so that the LLM can decode many windows at
/// once; rule-based proposers just map over the slice.
pub trait Proposer: Send + Sync {
    /// Short name used in `--propose` and reports.
    fn name(&self) -> &str;
    /// Candidates for each window, in the same order as `windows`.
    fn propose(&self, windows: &[Window]) -> Vec<Vec<Candidate>>;
    /// Everything that determines this proposer's answers (rule texts,
    /// model and adapter hashes, prompt version, settings): part of the
    /// pipeline's result-cache key.
    fn fingerprint(&self) -> String {
        self.name().to_string()
    }
}
