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
pub mod synth;

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
    /// A window of these instructions (canonical syntax) with this
    /// live-out set, for tests; panics on bad text.
    #[cfg(test)]
    pub fn of(insns: &[&str], live_out: &str) -> Window {
        Window {
            insns: insns
                .iter()
                .map(|l| Insn::parse_plain(l).unwrap())
                .collect(),
            live_out: LocSet::parse_list(live_out).unwrap(),
        }
    }

    /// The window's instructions with those in `range` replaced by `seq`:
    /// how every proposer puts a rewrite of part of a window back into it.
    pub fn spliced(
        &self,
        range: std::ops::Range<usize>,
        seq: impl IntoIterator<Item = Insn>,
    ) -> Vec<Insn> {
        let mut insns = self.insns[..range.start].to_vec();
        insns.extend(seq);
        insns.extend_from_slice(&self.insns[range.end..]);
        insns
    }

    /// The window's instructions as canonical text, one per line.
    pub fn text(&self) -> String {
        self.insns
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The window cut into consecutive pieces of at most `max` instructions,
    /// of near-equal length, each with what is live after it (computed
    /// backwards from the window's live-out through the later instructions).
    ///
    /// Why: a small model reasons one line per instruction, so its answer
    /// grows with the window; short pieces keep answers short and within
    /// what it was trained on. A rewrite of a piece is a rewrite of the
    /// window with the other pieces unchanged.
    pub fn pieces(&self, max: usize) -> Vec<(std::ops::Range<usize>, Window)> {
        let n = self.insns.len();
        let count = n.div_ceil(max.max(1)).max(1);
        let mut live_after = vec![self.live_out; n];
        let mut live = self.live_out;
        for (i, insn) in self.insns.iter().enumerate().rev() {
            live_after[i] = live;
            live = crate::semantics::effects(insn).live_before(live);
        }
        let mut out = Vec::with_capacity(count);
        let mut start = 0;
        for k in 0..count {
            let end = start + (n - start).div_ceil(count - k);
            out.push((
                start..end,
                Window {
                    insns: self.insns[start..end].to_vec(),
                    live_out: if end == 0 {
                        self.live_out
                    } else {
                        live_after[end - 1]
                    },
                },
            ));
            start = end;
        }
        out
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
    /// Candidates for each window, in the same order as `windows`. An error
    /// when the proposer itself fails (a model that cannot decode): never
    /// "no candidates", which would change the answer without a word.
    fn propose(&self, windows: &[Window]) -> anyhow::Result<Vec<Vec<Candidate>>>;
    /// Everything that determines this proposer's answers (rule texts,
    /// model and adapter hashes, prompt version, settings): part of the
    /// pipeline's result-cache key.
    fn fingerprint(&self) -> String {
        self.name().to_string()
    }
    /// Whether to ask this proposer only about windows the others did not
    /// improve, within the search's budget for slow proposers
    /// ([`crate::pipeline::search::SlowBudget`]): a slow one (the LLM)
    /// spends its time where it can add.
    fn asked_after_others(&self) -> bool {
        false
    }
    /// Whether this proposer's answer for `w` (already asked) is not its
    /// final word: its budget ran out before it tried all it would, or the
    /// window is longer than what it searches whole. The
    /// slow proposers are asked about such windows first, since there a
    /// rewrite is known to be possibly missed, while a window searched to
    /// the end holds nothing within that search's reach.
    fn left_open(&self, _w: &Window) -> bool {
        false
    }
}

/// A proposer shared with another that uses it (synth, which also repairs
/// the LLM's answers).
impl<T: Proposer + ?Sized> Proposer for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn propose(&self, windows: &[Window]) -> anyhow::Result<Vec<Vec<Candidate>>> {
        (**self).propose(windows)
    }
    fn fingerprint(&self) -> String {
        (**self).fingerprint()
    }
    fn asked_after_others(&self) -> bool {
        (**self).asked_after_others()
    }
    fn left_open(&self, w: &Window) -> bool {
        (**self).left_open(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_balanced_and_carry_liveness() {
        let w = Window::of(
            &[
                "mov x1, #1",
                "mov x2, #2",
                "add x3, x1, x2",
                "mov x4, x3",
                "add x0, x4, #1",
                "mov x5, #5",
                "add x0, x0, x5",
            ],
            "x0,sp",
        );
        let p = w.pieces(6);
        let ranges: Vec<_> = p.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(ranges, [0..4, 4..7]);
        // After `mov x4, x3` only x4 (and sp) is needed by the rest.
        assert_eq!(p[0].1.live_out.to_string(), "x4,sp");
        assert_eq!(p[1].1.live_out.to_string(), "x0,sp");
        assert_eq!(p[0].1.insns.len() + p[1].1.insns.len(), 7);
        // Short windows stay whole.
        let q = Window::of(&["mov x0, x1"], "x0");
        assert_eq!(q.pieces(6).len(), 1);
        assert_eq!(q.pieces(6)[0].0, 0..1);
    }
}
