//! One optimization run over a source file: cut it into windows, run the
//! search ([`super::search`], through the result cache when there is one),
//! patch the text and report.

use super::search::{CachedSearch, OnTick, Placement, Search, Searched, SlowBudget};
use super::windows::{windows, Site};
use crate::asm::Source;
use crate::cache::Cache;
use crate::cfg::{functions_with, Abi};
use crate::cost::CostModel;
use crate::patch::source::{apply, Edit};
use crate::patch::Rewrite;
use crate::propose::{Proposer, Window};
use crate::prove::{ProofConfig, Prover};
use crate::verify::Verifier;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// Knobs of a run.
#[derive(Clone)]
pub struct Options {
    /// Result cache (keyed by [`Search::fingerprint`] and the window).
    pub cache: Option<Cache>,
    /// Rounds of propose→verify per window (a bounded fixed point).
    pub max_rounds: usize,
    /// Source text, or a binary patched in place.
    pub placement: Placement,
    /// Result registers live at a `ret` that no annotation covers.
    pub abi: Abi,
    /// `--proof-timeout` and `--require-proof`.
    pub proof: ProofConfig,
    /// `--llm-budget`: time for the proposers asked after the others.
    pub slow_budget: SlowBudget,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache: None,
            max_rounds: 3,
            placement: Placement::Free,
            abi: Abi::default(),
            proof: ProofConfig::default(),
            slow_budget: SlowBudget::DEFAULT,
        }
    }
}

/// Totals for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub blocks: usize,
    pub blocks_rewritten: usize,
    pub cycles_before: f64,
    pub cycles_after: f64,
    pub instructions_before: usize,
    pub instructions_after: usize,
    /// Applied rewrites the SMT solver proved equivalent.
    pub rewrites_proved: usize,
    /// Applied rewrites only tested (the reason is on each rewrite).
    pub rewrites_tested: usize,
    /// Candidates the tests accepted and the solver refuted (also counted
    /// in `rejected`).
    pub refuted_by_proof: usize,
    /// Proof queries made (one per candidate the tests accepted) and the
    /// time they took.
    pub proof_queries: usize,
    pub proof_seconds: f64,
    /// Windows the slow proposers (the LLM) were due to be asked about
    /// and were not: their time budget (`--llm-budget`) was spent.
    pub windows_unasked: usize,
    pub seconds: f64,
}

/// Result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    #[serde(skip)]
    pub text: String,
    /// The accepted edits (for patching something other than this text,
    /// e.g. a binary or the unpreprocessed `.S`).
    #[serde(skip)]
    pub edits: Vec<Edit>,
    pub rewrites: Vec<Rewrite>,
    pub summary: Summary,
    /// Which cost model judged speed (says so when llvm-mca was missing).
    pub cost_model: String,
    /// Candidates the validator rejected, by proposer (for honesty in reports).
    pub rejected: usize,
}

/// Optimize `src`; returns the patched text and what was done.
pub fn optimize(
    src: &Source,
    proposers: &[&dyn Proposer],
    verifier: &Verifier,
    cost: &dyn CostModel,
    opts: &Options,
    keep_site: &dyn Fn(&Site) -> bool,
    on_tick: OnTick,
) -> Result<Outcome> {
    let started = Instant::now();
    let funcs = functions_with(src, opts.abi);
    let sites: Vec<Site> = windows(&funcs)
        .into_iter()
        .filter(|s| keep_site(s))
        .collect();
    let asks: Vec<Window> = sites.iter().map(|s| s.window.clone()).collect();
    let prover = Prover::new(opts.proof.timeout_ms).with_disk_cache(opts.cache.clone());
    let search = Search {
        proposers,
        verifier,
        prover: &prover,
        proof: opts.proof,
        cost,
        max_rounds: opts.max_rounds,
        placement: opts.placement,
        slow_budget: opts.slow_budget,
    };
    let Searched {
        found,
        rejected,
        proofs,
    } = match &opts.cache {
        Some(c) => CachedSearch::new(&search, c).run(&asks, on_tick)?,
        None => search.run(&asks, on_tick)?,
    };

    // Patch and report.
    let mut edits: Vec<Edit> = Vec::new();
    let mut rewrites = Vec::new();
    let mut summary = Summary {
        blocks: funcs.iter().map(|f| f.blocks.len()).sum(),
        ..Summary::default()
    };
    let mut rewritten_blocks = HashSet::new();
    for (site, f) in sites.iter().zip(&found) {
        let (before, after) = (f.cost_before(), f.cost_after());
        summary.cycles_before += before.cycles;
        summary.cycles_after += after.cycles;
        summary.instructions_before += site.window.insns.len();
        let Some(best) = &f.best else {
            summary.instructions_after += site.window.insns.len();
            continue;
        };
        let cand = &best.candidate;
        summary.instructions_after += cand.insns.len();
        if best.evidence.is_proved() {
            summary.rewrites_proved += 1;
        } else {
            summary.rewrites_tested += 1;
        }
        rewritten_blocks.insert((site.function.clone(), site.block));
        edits.push(Edit {
            stmts: site.stmts.clone(),
            replacement: cand.insns.clone(),
        });
        rewrites.push(Rewrite {
            function: site.function.clone(),
            block: site.block,
            lines: site.lines.clone(),
            before: site.window.insns.iter().map(|i| i.to_string()).collect(),
            after: cand.insns.iter().map(|i| i.to_string()).collect(),
            proposer: cand.proposer.clone(),
            tests: best.tests,
            evidence: best.evidence.clone(),
            proof_ms: best.proof_ms,
            cycles_before: before.cycles,
            cycles_after: after.cycles,
            trace: cand.trace.clone(),
        });
    }
    summary.blocks_rewritten = rewritten_blocks.len();
    summary.windows_unasked = found.iter().filter(|f| f.unasked).count();
    summary.refuted_by_proof = proofs.refuted;
    summary.proof_queries = proofs.queries;
    summary.proof_seconds = proofs.ms / 1e3;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        text: apply(src, &edits),
        edits,
        rewrites,
        summary,
        cost_model: cost.name(),
        rejected,
    })
}
