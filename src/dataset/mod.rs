//! Building the fine-tuning dataset from real compiled code.
//!
//! Every positive example's target is a *verified* rewrite: from the
//! teacher proposers (the rules; with `--propose rules,synth`, also the
//! superoptimizer), from a bounded enumerative search (deleting instructions), or
//! from augmentation (inserting a known-removable inefficiency, so the
//! original is the target). Negatives ("no change") are windows where
//! neither finds anything. Splits are by source program, never by block, so
//! the test split holds programs the model never saw.

pub mod augment;

use crate::asm::{Insn, Source};
use crate::cfg::functions;
use crate::cost::CostModel;
use crate::pipeline::search::{Search, SlowBudget};
use crate::pipeline::windows::windows;
use crate::propose::llm::{without_branch, PromptStyle, PIECE_MAX};
use crate::propose::{Candidate, Proposer, Window};
use crate::prove::{ProofConfig, Prover};
use crate::semantics::transfer::chain_of_code;
use crate::semantics::LocSet;
use crate::verify::Verifier;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

/// One dataset example.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Example {
    /// Source program (the unit of the train/valid/test split).
    pub program: String,
    pub split: String,
    /// `general`, or the augmentation kind / rule family for subsets.
    pub subset: String,
    /// Where the target came from: `rules:<name>`, `enum`, `augment`, `none`.
    pub origin: String,
    pub window: Vec<String>,
    pub live_out: String,
    /// The verified rewrite; `None` means "no change".
    pub target: Option<Vec<String>>,
    /// The chain-of-code trace (`code:` and `live:` sections), generated
    /// from the project's semantics.
    pub trace: String,
    pub cycles_before: f64,
    pub cycles_after: f64,
}

impl Example {
    /// Whether the target is a verified improvement (cheaper by the cost
    /// model), not "no change" or an equal-cost rewrite.
    pub fn improves(&self) -> bool {
        self.target.is_some() && self.cycles_after < self.cycles_before - 1e-9
    }

    /// The example's window as the proposers see it.
    pub fn window(&self) -> Window {
        Window {
            insns: self
                .window
                .iter()
                .filter_map(|s| Insn::parse_plain(s).ok())
                .collect(),
            live_out: LocSet::parse_list(&self.live_out).unwrap_or(LocSet::ALL),
        }
    }
}

/// The `rewrite` section of an answer.
pub fn rewrite_section(target: &Option<Vec<String>>) -> String {
    match target {
        None => "rewrite: no change\n".into(),
        Some(t) if t.is_empty() => "rewrite: delete\n".into(),
        Some(t) => format!("rewrite:\n{}\n", t.join("\n")),
    }
}

/// The model's answer for an example in a prompt style.
pub fn answer(ex: &Example, style: PromptStyle) -> String {
    let rewrite = rewrite_section(&ex.target);
    match style {
        PromptStyle::Direct => rewrite,
        PromptStyle::ChainOfCode | PromptStyle::ChainOfCodeUnaided => {
            format!("{}{rewrite}", style.template().trace_for(&ex.window()))
        }
        PromptStyle::ChainOfThought => {
            let live: Vec<&str> = ex
                .trace
                .split("live:\n")
                .nth(1)
                .unwrap_or("none\n")
                .lines()
                .collect();
            let mut s = String::from("reasoning:\n");
            s.push_str(&format!("- live-out: {}\n", ex.live_out));
            s.push_str(&format!(
                "- the block leaves {}\n",
                if live == ["none"] {
                    "no live-out location changed".to_string()
                } else {
                    live.join(", ")
                }
            ));
            s.push_str(match &ex.target {
                None => "- no shorter or faster sequence gives the same values\n",
                Some(t) if t.is_empty() => "- nothing it writes is live, so it can go\n",
                Some(_) => "- a shorter or cheaper sequence computes the same live-out values\n",
            });
            s + &rewrite
        }
    }
}

/// Chat messages for training: the template's system prompt and few-shot
/// examples (as at inference), the query, and the answer.
pub fn messages(ex: &Example, style: PromptStyle) -> serde_json::Value {
    let t = style.template();
    let mut msgs: Vec<serde_json::Value> = t
        .messages
        .iter()
        .map(|(r, c)| serde_json::json!({"role": r.as_str(), "content": c}))
        .collect();
    let window = ex.window();
    msgs.push(serde_json::json!({"role": "user", "content": t.query_for(&window)}));
    msgs.push(serde_json::json!({"role": "assistant", "content": answer(ex, style)}));
    serde_json::Value::Array(msgs)
}

/// Deterministic split by program name (FNV-1a): about 20% test, 10%
/// valid, 70% train. With the shipped fixtures and csmith seeds 1-4 the test
/// programs are `bits` and `csmith3`.
pub fn split_of(program: &str) -> &'static str {
    let h = program.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    match h % 100 {
        0..=19 => "test",
        20..=29 => "valid",
        _ => "train",
    }
}

/// Compile a C file to AArch64 assembly with `compiler` (`gcc`/`clang`) at
/// `opt` (`-O0` ...).
pub fn compile(c_file: &Path, compiler: &str, opt: &str, include: &[&str]) -> Result<String> {
    let mut cmd = match compiler {
        "gcc" => Command::new("aarch64-linux-gnu-gcc"),
        _ => {
            let mut c = Command::new("clang");
            c.args([
                "--target=aarch64-linux-gnu",
                "-fno-addrsig",
                "-I/usr/aarch64-linux-gnu/include",
            ]);
            c
        }
    };
    cmd.args([
        opt,
        "-S",
        "-w",
        "-fno-asynchronous-unwind-tables",
        "-o",
        "-",
    ]);
    for i in include {
        cmd.arg(format!("-I{i}"));
    }
    let out = cmd
        .arg(c_file)
        .output()
        .with_context(|| format!("running {compiler}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{compiler} {opt} {} failed",
        c_file.display()
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn text(insns: &[Insn]) -> Vec<String> {
    insns.iter().map(|i| i.to_string()).collect()
}

/// Candidates of the enumerative search: the window with one instruction
/// removed, or two adjacent ones (branches are kept).
fn deletions(insns: &[Insn]) -> Vec<Vec<Insn>> {
    let n = insns.len();
    let keep_last = insns
        .last()
        .is_some_and(|i| crate::semantics::effects(i).flow != crate::semantics::Flow::Next);
    let limit = if keep_last { n.saturating_sub(1) } else { n };
    let mut out = Vec::new();
    for i in 0..limit {
        let mut w = insns.to_vec();
        w.remove(i);
        out.push(w);
        if i + 1 < limit && n <= 6 {
            let mut w2 = insns.to_vec();
            w2.drain(i..i + 2);
            out.push(w2);
        }
    }
    out
}

/// Knobs for [`build`].
pub struct BuildOptions {
    /// Keep one negative per this many windows with nothing to improve.
    pub negative_every: usize,
    /// Longest window searched by deletion.
    pub enum_max: usize,
    /// At most this many windows per compilation.
    pub max_windows: usize,
}

/// The enumerative search's proposer: [`deletions`] of windows of at most
/// `max_len` instructions.
struct Deletions {
    max_len: usize,
}

impl Proposer for Deletions {
    fn name(&self) -> &str {
        "enum"
    }

    fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
        Ok(windows
            .iter()
            .map(|w| {
                if w.insns.len() > self.max_len {
                    return Vec::new();
                }
                deletions(&w.insns)
                    .into_iter()
                    .map(|insns| Candidate {
                        insns,
                        proposer: self.name().into(),
                        trace: None,
                    })
                    .collect()
            })
            .collect())
    }
}

/// Augmentation's proposer: each augmented window's known target (by window
/// text and live-out), proposed as `augment`.
struct Targets(HashMap<String, Vec<Insn>>);

fn target_key(w: &Window) -> String {
    format!("{}|{}", w.text(), w.live_out)
}

impl Proposer for Targets {
    fn name(&self) -> &str {
        "augment"
    }

    fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
        Ok(windows
            .iter()
            .map(|w| {
                self.0
                    .get(&target_key(w))
                    .map(|t| Candidate {
                        insns: t.clone(),
                        proposer: self.name().into(),
                        trace: None,
                    })
                    .into_iter()
                    .collect()
            })
            .collect())
    }
}

/// Examples from one compiled program.
pub fn examples_from(
    program: &str,
    asm: &str,
    teachers: &[&dyn Proposer],
    verifier: &Verifier,
    cost: &dyn CostModel,
    seen: &mut HashSet<String>,
    opts: &BuildOptions,
) -> Result<Vec<Example>> {
    let src = Source::parse(program, asm.to_string())?;
    let sites = windows(&functions(&src));
    let split = split_of(program);
    let mut out = Vec::new();
    let mut negatives = 0usize;
    // Originals, plus augmented variants whose target is the original.
    let mut work: Vec<(Window, String, Option<Vec<Insn>>)> = Vec::new();
    for (k, s) in sites.iter().take(opts.max_windows).enumerate() {
        // The model answers without labels, piece by piece: windows are cut
        // exactly as the LLM proposer asks them.
        let (body, _) = without_branch(&s.window);
        for (p, (_, w)) in body.pieces(PIECE_MAX).into_iter().enumerate() {
            if w.insns.len() < 2 {
                continue;
            }
            for (kind, aug) in augment::augment(&w.insns, w.live_out, (k * 7 + p) as u64) {
                work.push((
                    Window {
                        insns: aug,
                        live_out: w.live_out,
                    },
                    kind.name().into(),
                    Some(w.insns.clone()),
                ));
            }
            work.push((w, "general".into(), None));
        }
    }
    // Phase 1: the compiled windows themselves, searched with the rules and
    // the enumerative search as proposers; phase 2: the augmented windows,
    // with their targets as the proposal. Each phase is one search over all
    // its windows, so that costing and verification run in batches, not once
    // per window.
    let (general, augmented): (Vec<_>, Vec<_>) =
        work.into_iter().partition(|(_, _, t)| t.is_none());
    let mut best_of: HashMap<String, Vec<Insn>> = HashMap::new();
    let enumerate = Deletions {
        max_len: opts.enum_max,
    };
    let tests_only = Prover::new(0);
    for (phase, items) in [general, augmented].into_iter().enumerate() {
        let mut batch: Vec<(Window, String)> = Vec::new();
        let mut targets: HashMap<String, Vec<Insn>> = HashMap::new();
        for (w, subset, original) in items {
            if !seen.insert(target_key(&w)) {
                continue;
            }
            // Phase 2: an augmented window's target is its original's best
            // verified version (or the original itself).
            if let Some(orig) = original {
                let key = format!("{}|{}", text(&orig).join("\n"), w.live_out);
                let target = best_of.get(&key).cloned().unwrap_or(orig);
                targets.insert(target_key(&w), target);
            }
            batch.push((w, subset));
        }
        let targets = Targets(targets);
        let proposers: Vec<&dyn Proposer> = match phase {
            0 => teachers
                .iter()
                .copied()
                .chain([&enumerate as &dyn Proposer])
                .collect(),
            _ => vec![&targets],
        };
        // One round: a target is a verified rewrite of the window itself
        // (tested, as the dataset always was: no proofs).
        let search = Search {
            slow_budget: SlowBudget::Unlimited,
            proposers: &proposers,
            verifier,
            prover: &tests_only,
            proof: ProofConfig {
                timeout_ms: 0,
                require: false,
            },
            cost,
            max_rounds: 1,
            placement: crate::pipeline::search::Placement::Free,
        };
        let asks: Vec<Window> = batch.iter().map(|(w, _)| w.clone()).collect();
        let searched = search.run(&asks, &|_| {})?;
        for ((w, subset), found) in batch.iter().zip(searched.found) {
            let Some(before) = found.before else {
                continue;
            };
            let (origin, target, after) = match found.best {
                Some(b) => (
                    b.candidate.proposer,
                    Some(text(&b.candidate.insns)),
                    b.cost.cycles,
                ),
                None => {
                    if phase == 1 {
                        continue; // an augmentation that did not verify is dropped
                    }
                    negatives += 1;
                    if !negatives.is_multiple_of(opts.negative_every.max(1)) {
                        continue;
                    }
                    ("none".to_string(), None, before.cycles)
                }
            };
            if phase == 0 {
                if let Some(t) = &target {
                    best_of.insert(
                        target_key(w),
                        t.iter().filter_map(|s| Insn::parse_plain(s).ok()).collect(),
                    );
                }
            }
            out.push(Example {
                program: program.to_string(),
                split: split.to_string(),
                subset: subset.clone(),
                origin,
                window: text(&w.insns),
                live_out: w.live_out.to_string(),
                target,
                trace: chain_of_code(&w.insns, w.live_out),
                cycles_before: before.cycles,
                cycles_after: after,
            });
        }
    }
    Ok(out)
}
pub mod eval;
