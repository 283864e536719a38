//! Repair: another proposer's rewrite taken as a sketch, its slips fixed by
//! search.
//!
//! Why: the fine-tuned model gets the shape of a rewrite right more often
//! than its operands. On held-out windows with a known improvement most of
//! its wrong answers were one instruction off: a bit-field one field off
//! (`sbfx x8, x8, #21, #18` for `#18, #18`), a shift amount off
//! (`add x9, x8, x8, lsl #1` for `lsl #2`), a line dropped or kept
//! (docs/eval.md). Enumeration is the opposite: exact operands, but only
//! short sequences. So the answer's one-edit neighbourhood is searched with
//! the superoptimizer's pool and interpreter: one line dropped, one line
//! with other operands, one line replaced, one line inserted.
//!
//! Generation only, like the search: a repaired rewrite must leave the same
//! live-out values on the search's test states, be shorter or faster by
//! latency, and is then a candidate like any other, checked by the
//! validator and costed before it is applied.

use super::pool::Entry;
use super::problem::{self, fails_on, SubWindow};
use super::search::quick_test;
use super::{SynthProposer, CONFIRM_STATES, SEARCH_STATES};
use crate::asm::Insn;
use crate::propose::Window;
use crate::semantics::concrete::Concrete;
use crate::semantics::inst::Inst;
use std::mem::discriminant;

/// Candidate sequences tried per answer: a bound on the time one answer
/// costs (a pool on -O2 code has up to ~900k entries; this is about 50 ms).
pub const REPAIR_EVALS: u64 = 300_000;

/// Repaired rewrites kept per answer.
const MAX_REPAIRS: usize = 4;

impl SynthProposer {
    /// Rewrites of `w` near `answer` (a rewrite of `w` that another
    /// proposer suggested) that compute what `w` computes on the test
    /// states and are shorter or faster; none when `answer` is already
    /// right there, or when its edit is not one the search can run (it
    /// touches a store, a branch, a register `w` does not use).
    pub fn repair(&self, w: &Window, answer: &[Insn]) -> Vec<Vec<Insn>> {
        let mut out: Vec<Vec<Insn>> = Vec::new();
        let mut evals_left = REPAIR_EVALS;
        let decoded = problem::Decoded::of(w);
        for (range, sketch) in edit_regions(&w.insns, answer) {
            let Some(sub) = decoded.sub_window(range.clone()) else {
                continue;
            };
            let Some(sketch) = sub.label.is_none().then(|| sub.canonical(sketch)).flatten() else {
                continue;
            };
            for seq in self.repair_sub(&sub, &sketch, &mut evals_left) {
                let insns = w.spliced(range.clone(), seq);
                if insns != answer && !out.contains(&insns) {
                    out.push(insns);
                }
            }
            if out.len() >= MAX_REPAIRS || evals_left == 0 {
                break;
            }
        }
        out.truncate(MAX_REPAIRS);
        out
    }

    /// Repaired sequences for one sub-window, in real registers.
    fn repair_sub(&self, sub: &SubWindow, sketch: &[Inst], evals_left: &mut u64) -> Vec<Vec<Insn>> {
        let (Some(tests), Some(confirm)) = (
            sub.problem(self.seed, SEARCH_STATES),
            sub.problem(self.seed.wrapping_add(1), CONFIRM_STATES),
        ) else {
            return Vec::new();
        };
        let pool = self.pool(&sub.shape, None);
        let mut check = Check {
            sub,
            order: {
                let q = quick_test(&tests);
                (q..tests.tests.len()).chain(0..q).collect()
            },
            dom: Concrete {
                mem: tests.memory.clone(),
            },
            confirm_dom: Concrete {
                mem: confirm.memory.clone(),
            },
            tests: &tests,
            confirm: &confirm,
            evals_left,
            found: Vec::new(),
        };
        if check.passes(sketch) {
            return Vec::new(); // right as it is: nothing to repair
        }
        for edit in edits(sketch, &pool) {
            if !check.consider(&edit.apply(sketch)) {
                break;
            }
        }
        check.found
    }
}

/// Candidate sequences checked against a sub-window, within a budget.
struct Check<'a> {
    sub: &'a SubWindow,
    tests: &'a super::search::Problem,
    confirm: &'a super::search::Problem,
    /// Test indices, the quick-rejection test first.
    order: Vec<usize>,
    dom: Concrete,
    confirm_dom: Concrete,
    evals_left: &'a mut u64,
    found: Vec<Vec<Insn>>,
}

impl Check<'_> {
    fn passes(&mut self, seq: &[Inst]) -> bool {
        self.order
            .iter()
            .all(|&k| !fails_on(self.tests, &mut self.dom, k, seq))
            && (0..self.confirm.tests.len())
                .all(|k| !fails_on(self.confirm, &mut self.confirm_dom, k, seq))
    }

    /// Try `seq`; false when the search should stop (budget spent, or
    /// enough found).
    fn consider(&mut self, seq: &[Inst]) -> bool {
        if *self.evals_left == 0 {
            return false;
        }
        *self.evals_left -= 1;
        if self.passes(seq) {
            if let Some(real) = self.sub.realize(seq) {
                if !self.found.contains(&real) {
                    self.found.push(real);
                }
            }
        }
        self.found.len() < MAX_REPAIRS
    }
}

/// One edit of a sketch.
#[derive(Clone, Copy)]
enum Edit<'a> {
    Drop(usize),
    Replace(usize, &'a Inst),
    Insert(usize, &'a Inst),
}

impl Edit<'_> {
    fn apply(self, sketch: &[Inst]) -> Vec<Inst> {
        let mut s = sketch.to_vec();
        match self {
            Edit::Drop(j) => {
                s.remove(j);
            }
            Edit::Replace(j, e) => s[j] = *e,
            Edit::Insert(j, e) => s.insert(j, *e),
        }
        s
    }
}

/// The one-edit neighbourhood of `sketch` over the pool, likeliest edits
/// first: a line dropped; a line with other operands (same operation); a
/// line replaced by any other entry; an entry inserted.
fn edits<'a>(sketch: &'a [Inst], pool: &'a [Entry]) -> impl Iterator<Item = Edit<'a>> + 'a {
    let m = sketch.len();
    let same_op = move |j: usize, e: &Inst| discriminant(&e.op) == discriminant(&sketch[j].op);
    // Replacements of line j by the entries `keep` admits.
    let replace = move |keep: fn(bool, bool) -> bool| {
        (0..m).flat_map(move |j| {
            pool.iter()
                .map(|e| &e.inst)
                .filter(move |e| keep(same_op(j, e), **e == sketch[j]))
                .map(move |e| Edit::Replace(j, e))
        })
    };
    let dropped = (0..m).map(Edit::Drop);
    let operands = replace(|same, equal| same && !equal);
    let others = replace(|same, _| !same);
    let inserted = (0..=m).flat_map(move |j| pool.iter().map(move |e| Edit::Insert(j, &e.inst)));
    dropped.chain(operands).chain(others).chain(inserted)
}

/// Where `answer` differs from `window`: the window's range between their
/// common prefix and suffix, with the answer's lines there; then the same
/// range widened by one line on either side or both (an answer that drops
/// `mov w4, w0` after `asr w0, w0, #3` is one edit away from
/// `asr w4, w0, #3` only once the `asr` is in the range).
pub(super) fn edit_regions<'a>(
    window: &[Insn],
    answer: &'a [Insn],
) -> Vec<(std::ops::Range<usize>, &'a [Insn])> {
    let (n, m) = (window.len(), answer.len());
    let prefix = window
        .iter()
        .zip(answer)
        .take_while(|(a, b)| a == b)
        .count();
    let most = n.min(m) - prefix;
    let suffix = window
        .iter()
        .rev()
        .zip(answer.iter().rev())
        .take(most)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = Vec::new();
    for (left, right) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        if left > prefix || right > suffix {
            continue;
        }
        let range = prefix - left..n - suffix + right;
        if !range.is_empty() {
            out.push((range, &answer[prefix - left..m - suffix + right]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn repaired(window: &[&str], live_out: &str, answer: &[&str]) -> Vec<Vec<String>> {
        let w = Window::of(window, live_out);
        let answer: Vec<Insn> = answer
            .iter()
            .map(|l| Insn::parse_plain(l).unwrap())
            .collect();
        SynthProposer::new(Duration::from_secs(2), 1)
            .repair(&w, &answer)
            .iter()
            .map(|r| r.iter().map(|i| i.to_string()).collect())
            .collect()
    }

    #[test]
    fn a_bit_field_one_field_off_is_put_right() {
        // The fine-tuned model's answer on a held-out window: right
        // instruction, wrong field position.
        let found = repaired(
            &["lsl x8, x8, #28", "asr x8, x8, #46", "sxtw x0, w8"],
            "x0,x8",
            &["sbfx x8, x8, #21, #18", "sxtw x0, w8"],
        );
        assert_eq!(found[0], ["sbfx x8, x8, #18, #18", "sxtw x0, w8"]);
    }

    #[test]
    fn a_dropped_copy_comes_back_as_the_destination() {
        let found = repaired(
            &["ldr w0, [sp, #96]", "asr w0, w0, #3", "mov w4, w0"],
            "x4",
            &["ldr w0, [sp, #96]", "asr w0, w0, #3"],
        );
        assert!(
            found.contains(&vec![
                "ldr w0, [sp, #96]".to_string(),
                "asr w4, w0, #3".to_string()
            ]),
            "{found:?}"
        );
    }

    #[test]
    fn a_right_answer_or_an_edit_of_a_store_is_left_alone() {
        assert!(repaired(
            &["lsl x8, x8, #28", "asr x8, x8, #46"],
            "x8",
            &["sbfx x8, x8, #18, #18"],
        )
        .is_empty());
        assert!(repaired(
            &["str w8, [sp, #32]", "ldr w8, [sp, #32]", "add w0, w8, #1"],
            "x0",
            &["add w0, w8, #1"],
        )
        .is_empty());
    }

    #[test]
    fn edit_regions_are_the_difference_then_widened() {
        let p =
            |t: &[&str]| -> Vec<Insn> { t.iter().map(|l| Insn::parse_plain(l).unwrap()).collect() };
        let w = p(&["mov x1, #1", "mov x2, #2", "mov x3, #3"]);
        let a = p(&["mov x1, #1", "mov x3, #3"]);
        let r: Vec<_> = edit_regions(&w, &a)
            .into_iter()
            .map(|(range, s)| (range, s.len()))
            .collect();
        assert_eq!(r, [(1..2, 0), (0..2, 1), (1..3, 1), (0..3, 2)]);
    }
}
