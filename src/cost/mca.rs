//! The `llvm-mca` cost model: LLVM's per-core scheduling models, run as an
//! external process over many blocks at once.
//!
//! # What "cycles" means
//!
//! Each block becomes one `# LLVM-MCA-BEGIN`/`END` region simulated for
//! [`ITERATIONS`] back-to-back iterations, and its cost is
//! `Total Cycles / Iterations`: the steady-state cycles per execution. This
//! was chosen over the alternatives because it is the only one of `llvm-mca`'s
//! numbers that sees both limits a straight-line block meets in hot code:
//!
//! * `Block RThroughput` counts only pipeline resources and ignores data
//!   dependencies, so `mov x1, #8; mul x0, x0, x1` and `lsl x0, x0, #3` can
//!   look alike, and a shorter dependency chain never shows as a gain;
//! * the total of a single iteration is dominated by pipeline fill and
//!   rounded to whole cycles, so most rewrites tie;
//! * over many iterations, chains through registers that the block both reads
//!   and writes (loop-carried, as in the loop bodies where peephole wins
//!   matter) count their full latency, and independent work counts its
//!   throughput; with 100 iterations the fill overhead is ~1%.
//!
//! Ties go to the shorter block (see [`Cost::improves_on`]).

use super::mca_input::{insn_text, region_name, render};
use super::mca_output::{parse_errors, parse_regions};
use super::{validate_cpu, Cost, CostModel};
use crate::asm::insn::Insn;
use anyhow::{anyhow, Context};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::Mutex;

/// Iterations simulated per region.
pub const ITERATIONS: u64 = 100;

/// Blocks per `llvm-mca` process; larger batches are split and run in
/// parallel.
const CHUNK: usize = 400;

/// `llvm-mca` for one core, memoizing costs by block text.
pub struct McaModel {
    cpu: String,
    binary: String,
    version: String,
    cache: Mutex<HashMap<String, Cost>>,
}

/// What a (possibly chunked) run produced.
struct RunOutcome {
    costs: HashMap<usize, Cost>,
    failed: Vec<(usize, String)>,
    other: Option<anyhow::Error>,
}

/// Why some blocks of a run got no cost.
struct RunFailure {
    /// Blocks the assembler rejected, with its message.
    blocks: Vec<(usize, String)>,
    /// A failure not pinned on any block.
    other: Option<anyhow::Error>,
}

impl McaModel {
    /// A model for `cpu` using `binary`. `Ok(None)` when the binary does not
    /// run; an error for an unknown CPU.
    pub fn new(cpu: &str, binary: &str) -> anyhow::Result<Option<McaModel>> {
        validate_cpu(cpu)?;
        let out = match Command::new(binary).arg("--version").output() {
            Ok(o) if o.status.success() => o,
            _ => return Ok(None),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Debian LLVM version ")
                    .or_else(|| l.trim().strip_prefix("LLVM version "))
            })
            .unwrap_or("unknown version")
            .trim()
            .to_string();
        Ok(Some(McaModel {
            cpu: cpu.to_string(),
            binary: binary.to_string(),
            version,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    pub fn cpu(&self) -> &str {
        &self.cpu
    }

    /// Text identifying a block in the cache.
    fn key(block: &[Insn]) -> String {
        block.iter().map(insn_text).collect::<Vec<_>>().join("\n")
    }

    /// Score `indices` of `blocks` (all non-empty, distinct texts), chunked.
    fn run_all(&self, blocks: &[&[Insn]], indices: &[usize]) -> RunOutcome {
        let parts: Vec<Result<HashMap<usize, Cost>, RunFailure>> = indices
            .par_chunks(CHUNK)
            .map(|c| self.run(blocks, c))
            .collect();
        let mut out = RunOutcome {
            costs: HashMap::new(),
            failed: Vec::new(),
            other: None,
        };
        for p in parts {
            match p {
                Ok(m) => out.costs.extend(m),
                Err(f) => {
                    out.failed.extend(f.blocks);
                    if out.other.is_none() {
                        out.other = f.other;
                    }
                }
            }
        }
        out
    }

    /// One `llvm-mca` process over `indices`.
    fn run(
        &self,
        blocks: &[&[Insn]],
        indices: &[usize],
    ) -> Result<HashMap<usize, Cost>, RunFailure> {
        let other = |e: anyhow::Error| RunFailure {
            blocks: vec![],
            other: Some(e),
        };
        let input = render(blocks, indices);
        let mut file = tempfile::Builder::new()
            .prefix("peephole-mca-")
            .suffix(".s")
            .tempfile()
            .map_err(|e| other(e.into()))?;
        file.write_all(input.text.as_bytes())
            .map_err(|e| other(e.into()))?;
        file.flush().map_err(|e| other(e.into()))?;
        let path = file.path().to_string_lossy().to_string();
        let out = Command::new(&self.binary)
            .arg("-mtriple=aarch64")
            .arg(format!("-mcpu={}", self.cpu))
            .arg(format!("-iterations={ITERATIONS}"))
            .arg("-instruction-info=0")
            .arg("-resource-pressure=0")
            .arg(&path)
            .output()
            .with_context(|| format!("running {}", self.binary))
            .map_err(other)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let errors = parse_errors(&stderr, &path);
            let mut failed: Vec<(usize, String)> = Vec::new();
            for e in &errors {
                let line_text = input.text.lines().nth(e.line - 1).unwrap_or("");
                if let Some(Some(b)) = input.line_block.get(e.line - 1) {
                    failed.push((*b, format!("`{line_text}`: {}", e.message)));
                }
            }
            if failed.is_empty() {
                return Err(other(anyhow!("{} failed: {}", self.binary, stderr.trim())));
            }
            return Err(RunFailure {
                blocks: failed,
                other: None,
            });
        }
        let report = String::from_utf8_lossy(&out.stdout);
        let regions = parse_regions(&report).map_err(other)?;
        let mut costs = HashMap::new();
        for &i in indices {
            let s = regions
                .get(&region_name(i))
                .ok_or_else(|| other(anyhow!("llvm-mca report lacks region {}", region_name(i))))?;
            costs.insert(
                i,
                Cost {
                    cycles: s.total_cycles as f64 / s.iterations.max(1) as f64,
                    instructions: blocks[i].len(),
                },
            );
        }
        Ok(costs)
    }

    /// Per-block results: blocks llvm-mca rejects get their own error, the
    /// rest are scored (rejected blocks are dropped and the run repeated).
    fn score(&self, blocks: &[&[Insn]]) -> Vec<anyhow::Result<Cost>> {
        let keys: Vec<String> = blocks.iter().map(|b| Self::key(b)).collect();
        let mut results: Vec<Option<anyhow::Result<Cost>>> =
            (0..blocks.len()).map(|_| None).collect();
        // First block index for each distinct uncached text.
        let mut todo: Vec<usize> = Vec::new();
        {
            let cache = self.cache.lock().unwrap();
            let mut seen: HashMap<&str, ()> = HashMap::new();
            for (i, b) in blocks.iter().enumerate() {
                if b.is_empty() {
                    results[i] = Some(Ok(Cost::ZERO));
                } else if let Some(c) = cache.get(&keys[i]) {
                    results[i] = Some(Ok(*c));
                } else if seen.insert(&keys[i], ()).is_none() {
                    todo.push(i);
                }
            }
        }
        let mut rejected: HashMap<usize, String> = HashMap::new();
        let mut fatal: Option<String> = None;
        while !todo.is_empty() {
            let RunOutcome {
                costs,
                failed,
                other,
            } = self.run_all(blocks, &todo);
            {
                let mut cache = self.cache.lock().unwrap();
                for (i, c) in &costs {
                    cache.insert(keys[*i].clone(), *c);
                }
            }
            if let Some(e) = other {
                fatal = Some(format!("{e:#}"));
                break;
            }
            if failed.is_empty() {
                break;
            }
            let before = todo.len();
            for (i, msg) in failed {
                rejected.entry(i).or_insert(msg);
            }
            todo.retain(|i| !rejected.contains_key(i) && !costs.contains_key(i));
            if todo.len() == before {
                break;
            }
        }
        let cache = self.cache.lock().unwrap();
        let by_key: HashMap<&str, &String> = rejected
            .iter()
            .map(|(i, m)| (keys[*i].as_str(), m))
            .collect();
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or_else(|| {
                    if let Some(c) = cache.get(&keys[i]) {
                        Ok(*c)
                    } else if let Some(m) = by_key.get(keys[i].as_str()) {
                        Err(anyhow!(
                            "llvm-mca ({}) cannot read block {i}: {m}",
                            self.cpu
                        ))
                    } else {
                        Err(anyhow!(
                            "llvm-mca ({}) gave no cost for block {i}: {}",
                            self.cpu,
                            fatal.as_deref().unwrap_or("unknown failure")
                        ))
                    }
                })
            })
            .collect()
    }
}

impl CostModel for McaModel {
    fn name(&self) -> String {
        format!("llvm-mca {} ({})", self.version, self.cpu)
    }

    fn cost_many(&self, blocks: &[&[Insn]]) -> anyhow::Result<Vec<Cost>> {
        self.score(blocks).into_iter().collect()
    }

    fn cost_each(&self, blocks: &[&[Insn]]) -> Vec<anyhow::Result<Cost>> {
        self.score(blocks)
    }
}
