//! Search where another proposer's answer points: the sub-windows around
//! the lines a rewrite changes are searched again, with a budget of their
//! own.
//!
//! Why: the window-wide search spends its evaluations on every sub-window
//! in turn, cheap lengths first, so on a long window a short rewrite next
//! to an expensive `udiv`/`msub` chain can be out of its reach (gcc -Os
//! `strings`: `mov w0, w2; mov w2, w3; cmp w0, 9` is `cmp w2, 9;
//! mov w2, w3` when `w0` is dead, found by the search on those three lines
//! alone in milliseconds). The fine-tuned model's answer there, even one
//! that one edit does not put right (it dropped the first `mov` and kept
//! comparing `w0`), says *where* a change is likely; the search, exact
//! where the model is not, says *what* it is. Tried after repair
//! ([`super::repair`]) finds nothing.
//!
//! Generation only: what it finds is a candidate like any other.

use super::problem::{self, SubWindow};
use super::repair::edit_regions;
use super::{SynthProposer, MAX_LEN, MAX_SUB};
use crate::asm::Insn;
use crate::propose::Window;
use std::time::Instant;

/// Candidate sequences tried per answer (about 50 ms on one core).
pub const LOCATED_EVALS: u64 = 300_000;

/// Rewrites kept per answer.
const MAX_FOUND: usize = 4;

impl SynthProposer {
    /// Rewrites near `answer` (another proposer's rewrite of `w`) that the
    /// search finds, and how: its one-edit repairs (`"repair"`), else, if
    /// `search_around`, the search around its change (`"search"`). Worth
    /// it only where this proposer's own search of the window was cut
    /// short ([`crate::propose::Proposer::left_open`]): elsewhere it has
    /// searched those sub-windows to the end already.
    pub fn mend(
        &self,
        w: &Window,
        answer: &[Insn],
        search_around: bool,
    ) -> (Vec<Vec<Insn>>, &'static str) {
        match self.repair(w, answer) {
            fixed if fixed.is_empty() && search_around => (self.search_near(w, answer), "search"),
            fixed => (fixed, "repair"),
        }
    }

    /// Shorter or faster rewrites of the sub-windows of `w` that overlap
    /// the lines `answer` changes (widened by one line on either side), in
    /// the order of the window-wide search: every sub-window at one
    /// instruction, then at two, then three.
    pub fn search_near(&self, w: &Window, answer: &[Insn]) -> Vec<Vec<Insn>> {
        let Some((region, _)) = edit_regions(&w.insns, answer).pop() else {
            return Vec::new();
        };
        let subs: Vec<SubWindow> = problem::sub_windows(w, MAX_SUB)
            .into_iter()
            .filter(|s| s.range.start < region.end && region.start < s.range.end)
            .filter(|s| s.label.is_none())
            .collect();
        let deadline = Instant::now() + self.budget;
        let mut evals_left = LOCATED_EVALS;
        let mut out: Vec<Vec<Insn>> = Vec::new();
        for len in 1..=MAX_LEN {
            for sub in subs
                .iter()
                .filter(|s| s.range.len() >= len || s.latency() > len as f64)
            {
                if evals_left == 0 || Instant::now() > deadline || out.len() >= MAX_FOUND {
                    return out;
                }
                let (found, _) = self.search_sub(sub, len, deadline, &mut evals_left);
                for seq in found.iter().filter_map(|s| sub.realize(s)) {
                    let insns = w.spliced(sub.range.clone(), seq);
                    if insns != answer && !out.contains(&insns) {
                        out.push(insns);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn near(window: &[&str], live_out: &str, answer: &[&str]) -> Vec<String> {
        let w = Window::of(window, live_out);
        let answer: Vec<Insn> = answer
            .iter()
            .map(|l| Insn::parse_plain(l).unwrap())
            .collect();
        SynthProposer::new(Duration::from_secs(5), 1)
            .search_near(&w, &answer)
            .iter()
            .map(|r| {
                r.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect()
    }

    /// The shipped model's greedy answer on the gcc -Os `strings` digit
    /// loop drops the wrong `mov`; one edit does not fix it, the search
    /// around it does.
    #[test]
    fn a_wrong_answer_points_the_search_to_the_right_lines() {
        let window = ["mov w0, w2", "mov w2, w3", "cmp w0, #9"];
        let answer = ["mov w2, w3", "cmp w0, #9"];
        let w = Window::of(&window, "x2,x3,nzcv");
        let a: Vec<Insn> = answer
            .iter()
            .map(|l| Insn::parse_plain(l).unwrap())
            .collect();
        let synth = SynthProposer::new(Duration::from_secs(5), 1);
        assert!(synth.repair(&w, &a).is_empty(), "one edit fixes it");
        let f = near(&window, "x2,x3,nzcv", &answer);
        assert!(f.contains(&"cmp w2, #9; mov w2, w3".to_string()), "{f:?}");
    }

    /// Only sub-windows that overlap the answer's change are searched: an
    /// answer that changes the last line leaves the copy at the start alone.
    #[test]
    fn lines_far_from_the_answer_are_not_searched() {
        let window = [
            "mov x0, x1",
            "add x0, x0, #1",
            "mov x5, x6",
            "lsl x4, x2, #1",
            "add x4, x4, x2",
        ];
        let mut answer = window;
        answer[4] = "add x4, x4, x3";
        let f = near(&window, "x0,x4,x5", &answer);
        assert!(
            f.iter().any(|c| c.ends_with("add x4, x2, x2, lsl #1")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .all(|c| c.starts_with("mov x0, x1; add x0, x0, #1")),
            "{f:?}"
        );
    }
}
