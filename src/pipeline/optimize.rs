//! One optimization run over a source file.
//!
//! Per window, in bounded rounds: ask every proposer, cost all candidates,
//! verify the ones that would be faster *against the original window*, keep
//! the cheapest equivalent one. Verifying against the original (not the
//! previous round's result) means every applied rewrite is checked directly.

use super::windows::{windows, Site};
use crate::asm::{Insn, Source};
use crate::cache::{Cache, CacheKey, KeyBuilder};
use crate::cfg::{functions_with, Abi};
use crate::cost::{Cost, CostModel};
use crate::patch::source::{apply, Edit};
use crate::patch::Rewrite;
use crate::propose::{Candidate, Proposer, Window};
use crate::verify::{Verdict, Verifier, VerifyJob};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Instant;

/// Knobs of a run.
#[derive(Clone)]
pub struct Options {
    /// Result cache and the fingerprint of everything else that decides a
    /// window's result (proposers, validator settings, cost model).
    pub cache: Option<(Cache, String)>,
    /// Rounds of propose→verify per window (a bounded fixed point).
    pub max_rounds: usize,
    /// Whether a rewrite may be longer than its window (not when patching a
    /// binary in place).
    pub allow_growth: bool,
    /// Result registers live at a `ret` that no annotation covers.
    pub abi: Abi,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache: None,
            max_rounds: 3,
            allow_growth: true,
            abi: Abi::default(),
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

/// What the cache keeps per window: the final answer of a full search.
#[derive(Serialize, Deserialize)]
struct CachedResult {
    after: Option<Vec<String>>,
    proposer: String,
    tests: u32,
    cycles_before: f64,
    cycles_after: f64,
    trace: Option<String>,
}

/// The version changes whenever a cached result would be judged differently:
/// 2 = the validator demands that a tenth of its test states complete;
/// 3 = its memory holds valid pointers (blocks that load through a pointer
/// read from memory now complete, and are judged).
fn cache_key(fingerprint: &str, site: &Site) -> CacheKey {
    KeyBuilder::new("window-result-3")
        .field("engine", fingerprint)
        .field("window", site.window.text())
        .field("live-out", site.window.live_out.to_string())
        .finish()
}

/// The state of one window across rounds.
struct Progress {
    current: Vec<Insn>,
    current_cost: Cost,
    accepted: Option<(Candidate, u32)>,
    active: bool,
}

/// Optimize `src`; returns the patched text and what was done.
pub fn optimize(
    src: &Source,
    proposers: &[&dyn Proposer],
    verifier: &Verifier,
    cost: &dyn CostModel,
    opts: &Options,
    keep_site: &dyn Fn(&Site) -> bool,
    on_round: &(dyn Fn(usize, usize) + Sync),
) -> Result<Outcome> {
    let started = Instant::now();
    let funcs = functions_with(src, opts.abi);
    let sites: Vec<Site> = windows(&funcs)
        .into_iter()
        .filter(|s| keep_site(s))
        .collect();
    let originals: Vec<&[Insn]> = sites.iter().map(|s| s.window.insns.as_slice()).collect();
    // Windows answered by an earlier run need no proposing, costing or verifying.
    let keys: Vec<Option<CacheKey>> = sites
        .iter()
        .map(|s| opts.cache.as_ref().map(|(_, fp)| cache_key(fp, s)))
        .collect();
    let cached: Vec<Option<CachedResult>> = keys
        .iter()
        .map(|k| match (k, &opts.cache) {
            (Some(k), Some((c, _))) => c.get("window-results", k),
            _ => None,
        })
        .collect();
    let misses: Vec<usize> = (0..sites.len()).filter(|&i| cached[i].is_none()).collect();
    let miss_insns: Vec<&[Insn]> = misses.iter().map(|&i| originals[i]).collect();
    // A window the cost model cannot read (e.g. an instruction llvm-mca does
    // not model for this core) is left alone.
    let miss_costs = cost.cost_each(&miss_insns);
    let mut uncosted = vec![false; sites.len()];
    let mut original_costs = vec![
        Cost {
            cycles: 0.0,
            instructions: 0
        };
        sites.len()
    ];
    for (&i, c) in misses.iter().zip(miss_costs) {
        match c {
            Ok(c) => original_costs[i] = c,
            Err(_) => uncosted[i] = true,
        }
    }
    let mut state: Vec<Progress> = Vec::with_capacity(sites.len());
    for (i, s) in sites.iter().enumerate() {
        let n = s.window.insns.len();
        let Some(hit) = &cached[i] else {
            state.push(Progress {
                current: s.window.insns.clone(),
                current_cost: original_costs[i],
                accepted: None,
                active: !uncosted[i],
            });
            continue;
        };
        original_costs[i] = Cost {
            cycles: hit.cycles_before,
            instructions: n,
        };
        let after: Option<Vec<Insn>> = hit
            .after
            .as_ref()
            .and_then(|a| a.iter().map(|t| Insn::parse_plain(t).ok()).collect());
        let current = after.clone().unwrap_or_else(|| s.window.insns.clone());
        state.push(Progress {
            current_cost: Cost {
                cycles: hit.cycles_after,
                instructions: current.len(),
            },
            current,
            accepted: after.map(|insns| {
                (
                    Candidate {
                        insns,
                        proposer: hit.proposer.clone(),
                        trace: hit.trace.clone(),
                    },
                    hit.tests,
                )
            }),
            active: false,
        });
    }
    let mut rejected = 0;

    for round in 0..opts.max_rounds {
        let active: Vec<usize> = (0..sites.len()).filter(|&i| state[i].active).collect();
        on_round(round, active.len());
        if active.is_empty() || proposers.is_empty() {
            break;
        }
        let asks: Vec<Window> = active
            .iter()
            .map(|&i| Window {
                insns: state[i].current.clone(),
                live_out: sites[i].window.live_out,
            })
            .collect();
        // Gather candidates per active window, deduplicated by text.
        let mut cands: Vec<Vec<Candidate>> = vec![Vec::new(); active.len()];
        for p in proposers {
            for (k, list) in p.propose(&asks).into_iter().enumerate() {
                cands[k].extend(list);
            }
        }
        for (k, list) in cands.iter_mut().enumerate() {
            let cur = text_of(&asks[k].insns);
            let max_len = if opts.allow_growth {
                usize::MAX
            } else {
                originals[active[k]].len()
            };
            let mut seen = HashSet::new();
            list.retain(|c| {
                let t = text_of(&c.insns);
                c.insns.len() <= max_len && t != cur && seen.insert(t)
            });
        }
        // Cost them all at once; keep only those that would be faster.
        let flat: Vec<(usize, &Candidate)> = cands
            .iter()
            .enumerate()
            .flat_map(|(k, l)| l.iter().map(move |c| (k, c)))
            .collect();
        let cand_insns: Vec<&[Insn]> = flat.iter().map(|(_, c)| c.insns.as_slice()).collect();
        // Candidates the cost model cannot read are dropped.
        let cand_costs = cost.cost_each(&cand_insns);
        let faster: Vec<(usize, &Candidate, Cost)> = flat
            .iter()
            .zip(cand_costs)
            .filter_map(|((k, c), cost)| cost.ok().map(|cost| (*k, *c, cost)))
            .filter(|(k, _, c)| c.improves_on(&state[active[*k]].current_cost))
            .collect();
        // Verify the faster ones against the original window, in parallel.
        let jobs: Vec<VerifyJob> = faster
            .iter()
            .map(|(k, c, _)| VerifyJob {
                original: originals[active[*k]],
                candidate: &c.insns,
                live_out: sites[active[*k]].window.live_out,
            })
            .collect();
        let chunk = (jobs.len() / rayon::current_num_threads().max(1)).clamp(1, 64);
        let verdicts: Vec<Verdict> = jobs
            .par_chunks(chunk)
            .flat_map(|c| verifier.check_many(c))
            .collect();
        for s in state.iter_mut() {
            s.active = false;
        }
        for ((k, cand, c), verdict) in faster.iter().zip(verdicts) {
            let st = &mut state[active[*k]];
            match verdict {
                Verdict::Equivalent { tests } => {
                    if c.improves_on(&st.current_cost) {
                        st.current = cand.insns.clone();
                        st.current_cost = *c;
                        st.accepted = Some(((*cand).clone(), tests));
                        st.active = true;
                    }
                }
                _ => rejected += 1,
            }
        }
    }

    if let Some((c, _)) = &opts.cache {
        for &i in &misses {
            let (Some(k), st) = (&keys[i], &state[i]) else {
                continue;
            };
            let entry = CachedResult {
                after: st
                    .accepted
                    .as_ref()
                    .map(|_| st.current.iter().map(|x| x.to_string()).collect()),
                proposer: st
                    .accepted
                    .as_ref()
                    .map(|(c, _)| c.proposer.clone())
                    .unwrap_or_default(),
                tests: st.accepted.as_ref().map_or(0, |(_, t)| *t),
                cycles_before: original_costs[i].cycles,
                cycles_after: st.current_cost.cycles,
                trace: st.accepted.as_ref().and_then(|(c, _)| c.trace.clone()),
            };
            // A cache that cannot be written only costs speed.
            let _ = c.put("window-results", k, &entry);
        }
    }

    // Patch and report.
    let mut edits: Vec<Edit> = Vec::new();
    let mut rewrites = Vec::new();
    let mut summary = Summary {
        blocks: funcs.iter().map(|f| f.blocks.len()).sum(),
        ..Summary::default()
    };
    let mut rewritten_blocks = HashSet::new();
    for (i, site) in sites.iter().enumerate() {
        let st = &state[i];
        summary.cycles_before += original_costs[i].cycles;
        summary.cycles_after += st.current_cost.cycles;
        summary.instructions_before += site.window.insns.len();
        summary.instructions_after += st.current.len();
        let Some((cand, tests)) = &st.accepted else {
            continue;
        };
        rewritten_blocks.insert((site.function.clone(), site.block));
        edits.push(Edit {
            stmts: site.stmts.clone(),
            replacement: st.current.clone(),
        });
        rewrites.push(Rewrite {
            function: site.function.clone(),
            block: site.block,
            lines: site.lines.clone(),
            before: site.window.insns.iter().map(|i| i.to_string()).collect(),
            after: st.current.iter().map(|i| i.to_string()).collect(),
            proposer: cand.proposer.clone(),
            tests: *tests,
            cycles_before: original_costs[i].cycles,
            cycles_after: st.current_cost.cycles,
            trace: cand.trace.clone(),
        });
    }
    summary.blocks_rewritten = rewritten_blocks.len();
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

fn text_of(insns: &[Insn]) -> String {
    insns
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
