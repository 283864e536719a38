//! `peephole dataset` and `peephole eval`: the reproducible research side
//! (fine-tuning data from real compiled code, and the evaluation table).

use super::opt::{Engine, EngineArgs};
use super::Status;
use crate::dataset::eval::{answers_of, improvable_markdown, markdown, score, Answer, Row};
use crate::dataset::{compile, examples_from, messages, BuildOptions, Example};
use crate::propose::llm::{AdapterChoice, LlmConfig, LlmProposer, PromptStyle, Suggestion};
use crate::propose::rules::RuleProposer;
use crate::propose::synth::SynthProposer;
use crate::propose::Window;
use crate::report::write_atomic;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Which examples `eval --known` keeps.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Improving,
    NotImproving,
}

#[derive(clap::Args, Debug)]
pub struct DatasetArgs {
    /// C sources (files or directories) to compile; default: fixtures/c.
    #[arg(long = "c")]
    pub c_sources: Vec<PathBuf>,
    /// Also generate this many csmith programs.
    #[arg(long, default_value_t = 0)]
    pub csmith: u32,
    /// Output directory (examples.jsonl, train.jsonl, stats.json).
    #[arg(long, default_value = "dataset")]
    pub out: PathBuf,
    /// Keep one "no change" negative per this many windows with nothing to improve.
    #[arg(long, default_value_t = 4)]
    pub negative_every: usize,
    /// Compilers and levels, e.g. `gcc:-O0,clang:-O2`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gcc:-O0,gcc:-O1,gcc:-O2,gcc:-Os,clang:-O0,clang:-O1,clang:-O2,clang:-Os"
    )]
    pub configs: Vec<String>,
    /// At most this many windows per compilation (the first ones).
    #[arg(long)]
    pub max_windows: Option<usize>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn c_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut sub: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            sub.sort();
            out.extend(c_files(&sub));
        } else if p.extension().is_some_and(|e| e == "c") {
            out.push(p.clone());
        }
    }
    out
}

pub fn run_dataset(a: &DatasetArgs) -> Result<Status> {
    // The teacher: `--propose` as given (e.g. `rules,synth` with a large
    // `--synth-evals`), else the rules alone, which made the shipped data.
    let engine = Engine::new(&EngineArgs {
        propose: Some(a.engine.propose.clone().unwrap_or(vec!["rules".into()])),
        ..a.engine.clone()
    })?;
    let teachers: Vec<&dyn crate::propose::Proposer> =
        engine.proposers.iter().map(|p| p.as_ref()).collect();
    let mut sources = c_files(if a.c_sources.is_empty() {
        &[]
    } else {
        &a.c_sources
    });
    if a.c_sources.is_empty() {
        sources = c_files(&[PathBuf::from("fixtures/c")]);
    }
    let tmp = tempfile::tempdir()?;
    for seed in 1..=a.csmith {
        let p = tmp.path().join(format!("csmith{seed}.c"));
        let out = std::process::Command::new("csmith")
            .args([
                "--seed",
                &seed.to_string(),
                "--max-funcs",
                "6",
                "--no-volatiles",
            ])
            .current_dir(tmp.path())
            .output()
            .context("running csmith")?;
        std::fs::write(&p, out.stdout)?;
        sources.push(p);
    }
    let configs: Vec<(&str, &str)> = a.configs.iter().filter_map(|c| c.split_once(':')).collect();
    let jobs: Vec<(PathBuf, &str, &str)> = sources
        .iter()
        .flat_map(|s| configs.iter().map(move |(c, o)| (s.clone(), *c, *o)))
        .collect();
    let opts = BuildOptions {
        negative_every: a.negative_every,
        enum_max: 4,
        max_windows: a.max_windows.unwrap_or(usize::MAX),
    };
    let per_job: Vec<Result<Vec<Example>>> = jobs
        .par_iter()
        .map(|(src, cc, opt)| {
            let asm = compile(src, cc, opt, &["/usr/include/csmith"])?;
            // The split unit is the source program: its file stem, or for a
            // multi-file program under fixtures/c, its directory.
            let parent = src
                .parent()
                .and_then(|p| p.file_name())
                .unwrap_or_default()
                .to_string_lossy();
            let program = if src.starts_with("fixtures/c/") && parent != "c" {
                parent.into_owned()
            } else {
                src.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            };
            let mut seen = HashSet::new();
            examples_from(
                &program,
                &asm,
                &teachers,
                &engine.verifier,
                engine.cost.as_ref(),
                &mut seen,
                &opts,
            )
        })
        .collect();
    let mut seen = HashSet::new();
    let mut examples = Vec::new();
    for r in per_job {
        for e in r? {
            if seen.insert(format!("{:?}|{}", e.window, e.live_out)) {
                examples.push(e);
            }
        }
    }
    std::fs::create_dir_all(&a.out)?;
    let mut ex_lines = String::new();
    let mut train_lines = String::new();
    for e in &examples {
        ex_lines.push_str(&serde_json::to_string(e)?);
        ex_lines.push('\n');
        for style in PromptStyle::TRAINED {
            // `prefill`: the start of the answer the proposer writes itself
            // at inference (the chain-of-code trace): training puts it in the
            // prompt, so the loss is on what the model writes.
            let prefill = style.template().prefill_for(&e.window());
            // `improves`: for tools/finetune/make_train_set.py, which
            // weights the compiled windows a "no change" answer cannot fit.
            let line = serde_json::json!({"split": e.split, "style": style.name(), "subset": e.subset, "improves": e.improves(), "messages": messages(e, style), "prefill": prefill});
            train_lines.push_str(&serde_json::to_string(&line)?);
            train_lines.push('\n');
        }
    }
    write_atomic(&a.out.join("examples.jsonl"), ex_lines.as_bytes())?;
    write_atomic(&a.out.join("train.jsonl"), train_lines.as_bytes())?;
    let count = |f: &dyn Fn(&Example) -> bool| examples.iter().filter(|e| f(e)).count();
    let stats = serde_json::json!({
        "programs": sources.len(),
        "compilations": jobs.len(),
        "examples": examples.len(),
        "train": count(&|e| e.split == "train"),
        "valid": count(&|e| e.split == "valid"),
        "test": count(&|e| e.split == "test"),
        "positives": count(&|e| e.target.is_some()),
        "negatives": count(&|e| e.target.is_none()),
        "store_reload_subset": count(&|e| e.subset == "store-reload"),
        "from_rules": count(&|e| e.origin.starts_with("rules")),
        "from_synth": count(&|e| e.origin == "synth"),
        "from_enumeration": count(&|e| e.origin == "enum"),
        "compiled_improving": count(&|e| e.subset == "general" && e.improves()),
        "from_augmentation": count(&|e| e.origin == "augment"),
        "validator_tests": a.engine.tests,
    });
    write_atomic(
        &a.out.join("stats.json"),
        serde_json::to_string_pretty(&stats)?.as_bytes(),
    )?;
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(Status::Done)
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// examples.jsonl from `peephole dataset`.
    #[arg(long, default_value = "dataset/examples.jsonl")]
    pub examples: PathBuf,
    /// Which split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Only this subset (e.g. `store-reload`); default: all.
    #[arg(long)]
    pub subset: Option<String>,
    /// Only the examples whose target is a known verified improvement
    /// (`improving`), or only those without one (`not-improving`).
    #[arg(long, value_enum)]
    pub known: Option<Known>,
    /// At most this many examples (deterministic: the first ones).
    #[arg(long)]
    pub limit: Option<usize>,
    /// At most this many examples of each subset (the first ones), so that a
    /// mixed test set is not swamped by the most frequent augmentation.
    #[arg(long)]
    pub per_subset: Option<usize>,
    /// Fine-tuned adapter to evaluate.
    #[arg(long, default_value = "models/peephole-lora.gguf")]
    pub finetuned: PathBuf,
    /// Write the table (Markdown) here as well as to stdout.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// Score completions generated elsewhere (on the GPU machine by
    /// tools/finetune/device_train.sh) instead of running the model here: a
    /// JSONL file whose lines have `row` (base-coc, ft-direct, ft-cot,
    /// ft-coc), `prompt_id` (the example's index in the examples file),
    /// `completion` and `seconds`.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Write every row's answer to every example, with its outcome
    /// (improved, equivalent, no change, unfinished or the rejection cause),
    /// as JSONL here: for error analysis.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Only these model rows (comma-separated): base, direct, cot, coc, and
    /// coc-unaided (the model writes the trace itself; not in the default
    /// table since the shipped adapter learns the rewrite after the
    /// semantics' trace, not the trace). The rule proposer's row is always
    /// there.
    #[arg(long, value_delimiter = ',', default_value = "base,direct,cot,coc")]
    pub rows: Vec<String>,
    /// Also score each model row with its answers repaired by search (as
    /// `opt` proposes them: a wrong answer's one-edit neighbourhood over
    /// the superoptimizer's pool, `src/propose/synth/repair.rs`).
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn llm_answers(
    p: &LlmProposer,
    examples: &[&Example],
    style: PromptStyle,
) -> Result<(Vec<Answer>, f64)> {
    let windows: Vec<Window> = examples.iter().map(|e| e.window()).collect();
    let t = std::time::Instant::now();
    let gens = p.generate(&windows, style)?;
    let secs = t.elapsed().as_secs_f64();
    let answers = gens
        .into_iter()
        .map(|g| {
            let first = g.into_iter().next();
            Answer {
                raw: first.as_ref().map(|g| g.raw.clone()).unwrap_or_default(),
                error: first.as_ref().and_then(|g| g.error.clone()),
                rewrite: first.and_then(|g| g.suggestion).map(|s| match s {
                    Suggestion::NoChange => None,
                    Suggestion::Replace(insns) => Some(insns),
                }),
            }
        })
        .collect();
    Ok((answers, secs))
}

/// A model row, and with `--repair` the same answers repaired by search.
fn model_rows(
    a: &EvalArgs,
    engine: &Engine,
    label: &str,
    examples: &[&Example],
    answers: &[Answer],
    seconds: f64,
) -> Result<Vec<Row>> {
    let row = |label: &str, answers: &[Answer], seconds: f64| {
        score(
            label,
            examples,
            answers,
            seconds,
            &engine.verifier,
            engine.cost.as_ref(),
        )
    };
    let mut rows = vec![row(label, answers, seconds)?];
    if a.repair {
        let (fixed, repair_seconds) = repaired_answers(answers, examples, &a.engine);
        rows.push(row(
            &format!("{label}, repaired by search"),
            &fixed,
            seconds + repair_seconds,
        )?);
    }
    Ok(rows)
}

/// Each answer replaced by its first one-edit repair, where the search finds
/// one (none when the answer is right on the test states), and the time
/// taken. (`opt` also searches around an answer's change where synth's own
/// search of the window was cut short; an example here has no such run.)
fn repaired_answers(
    answers: &[Answer],
    examples: &[&Example],
    e: &EngineArgs,
) -> (Vec<Answer>, f64) {
    let synth = SynthProposer::new(std::time::Duration::from_millis(e.synth_budget), e.seed);
    let t = std::time::Instant::now();
    let out = answers
        .par_iter()
        .zip(examples)
        .map(|(a, ex)| {
            let fixed = match &a.rewrite {
                Some(Some(insns)) => synth.repair(&ex.window(), insns).into_iter().next(),
                _ => None,
            };
            match fixed {
                Some(insns) => Answer {
                    raw: insns.iter().map(|i| format!("{i}\n")).collect(),
                    rewrite: Some(Some(insns)),
                    error: None,
                },
                None => Answer {
                    raw: a.raw.clone(),
                    rewrite: a.rewrite.clone(),
                    error: a.error.clone(),
                },
            }
        })
        .collect();
    (out, t.elapsed().as_secs_f64())
}

pub fn run_eval(a: &EvalArgs) -> Result<Status> {
    let engine = Engine::new(&EngineArgs {
        propose: Some(vec!["none".into()]),
        ..a.engine.clone()
    })?;
    let text = std::fs::read_to_string(&a.examples)
        .with_context(|| format!("reading {}", a.examples.display()))?;
    let all: Vec<Example> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let mut chosen: Vec<&Example> = all
        .iter()
        .filter(|e| e.split == a.split && a.subset.as_ref().is_none_or(|s| &e.subset == s))
        .filter(|e| {
            a.known
                .is_none_or(|k| (k == Known::Improving) == e.improves())
        })
        .collect();
    if let Some(n) = a.per_subset {
        let mut seen: std::collections::HashMap<&str, usize> = Default::default();
        chosen.retain(|e| {
            let k = seen.entry(e.subset.as_str()).or_default();
            *k += 1;
            *k <= n
        });
    }
    if let Some(n) = a.limit {
        chosen.truncate(n);
    }
    anyhow::ensure!(!chosen.is_empty(), "no examples in split `{}`", a.split);
    let mut rows: Vec<Row> = Vec::new();
    if let Some(dir) = &a.answers {
        let index: std::collections::HashMap<*const Example, usize> = all
            .iter()
            .enumerate()
            .map(|(i, e)| (e as *const Example, i))
            .collect();
        let text =
            std::fs::read_to_string(dir).with_context(|| format!("reading {}", dir.display()))?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        // Every row (the rule proposer's too) is scored on the same examples:
        // those the completions cover.
        let id_of = |v: &serde_json::Value| {
            v["prompt_id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v["prompt_id"].to_string())
        };
        let covered: HashSet<String> = lines.iter().map(id_of).collect();
        chosen.retain(|e| covered.contains(&index[&(*e as *const Example)].to_string()));
        for (file, label) in [
            ("base-coc", "base SmolLM2-135M, chain-of-code prompt"),
            ("ft-direct", "fine-tuned, direct"),
            ("ft-cot", "fine-tuned, chain-of-thought"),
            ("ft-coc", "fine-tuned, chain-of-code"),
        ] {
            let mut by_id: std::collections::HashMap<String, String> =
                std::collections::HashMap::new();
            let mut seconds = 0.0;
            for v in lines.iter().filter(|v| v["row"] == file) {
                let id = v["prompt_id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v["prompt_id"].to_string());
                seconds += v["seconds"].as_f64().unwrap_or(0.0);
                by_id.insert(id, v["completion"].as_str().unwrap_or("").to_string());
            }
            let scored: Vec<&Example> = chosen
                .iter()
                .copied()
                .filter(|e| by_id.contains_key(&index[&(*e as *const Example)].to_string()))
                .collect();
            let answers: Vec<Answer> = scored
                .iter()
                .map(|e| {
                    let c = &by_id[&index[&(*e as *const Example)].to_string()];
                    let parsed = crate::propose::llm::parse_answer(c);
                    Answer {
                        raw: c.clone(),
                        error: parsed.as_ref().err().cloned(),
                        rewrite: parsed.ok().map(|p| match p.suggestion {
                            Suggestion::NoChange => None,
                            Suggestion::Replace(insns) => Some(insns),
                        }),
                    }
                })
                .collect();
            if !scored.is_empty() {
                rows.extend(model_rows(a, &engine, label, &scored, &answers, seconds)?);
            }
        }
        return finish_table(a, &engine, &chosen, rows);
    }
    // The answers' cache: the user's, as `opt` uses it; with `--no-cache` a
    // fresh directory that lives as long as this run, so that every row's
    // time is its own decoding (a fixed temp dir served the second run's
    // answers from the first).
    let fresh = tempfile::tempdir()?;
    let cache = || -> Result<crate::cache::Cache> {
        if a.engine.no_cache {
            Ok(crate::cache::Cache::at(fresh.path()))
        } else {
            crate::cache::Cache::open_default()
        }
    };
    let llm = |adapter: AdapterChoice| -> Result<LlmProposer> {
        LlmProposer::with_cache(
            LlmConfig {
                adapter,
                model: a.engine.model.clone(),
                threads: a.engine.threads,
                merge_adapter: !a.engine.no_merge,
                ..LlmConfig::default()
            },
            cache()?,
        )
    };
    // (row key, fine-tuned?, style, label), in table order.
    let specs = [
        (
            "base",
            false,
            PromptStyle::ChainOfCode,
            "base SmolLM2-135M, chain-of-code prompt",
        ),
        ("direct", true, PromptStyle::Direct, "fine-tuned, direct"),
        (
            "cot",
            true,
            PromptStyle::ChainOfThought,
            "fine-tuned, chain-of-thought",
        ),
        (
            "coc-unaided",
            true,
            PromptStyle::ChainOfCodeUnaided,
            "fine-tuned, chain-of-code (model writes every trace line)",
        ),
        (
            "coc",
            true,
            PromptStyle::ChainOfCode,
            "fine-tuned, chain-of-code (trace from the semantics)",
        ),
    ];
    let keys: Vec<&str> = specs.iter().map(|s| s.0).collect();
    if let Some(r) = a.rows.iter().find(|r| !keys.contains(&r.as_str())) {
        bail!("unknown row `{r}` for --rows ({})", keys.join(", "));
    }
    let wanted = |r: &str| a.rows.iter().any(|x| x == r);
    let have_tuned = Path::new(&a.finetuned).is_file();
    if !have_tuned {
        eprintln!(
            "peephole eval: no fine-tuned adapter at {}; its rows are skipped",
            a.finetuned.display()
        );
    }
    let mut proposers: [Option<LlmProposer>; 2] = [None, None];
    for (row, tuned, style, label) in specs {
        if !wanted(row) || (tuned && !have_tuned) {
            continue;
        }
        let p = match &mut proposers[tuned as usize] {
            Some(p) => p,
            slot => slot.insert(if tuned {
                llm(AdapterChoice::Path(a.finetuned.clone()))?
            } else {
                llm(AdapterChoice::None)?
            }),
        };
        let (ans, secs) = llm_answers(p, &chosen, style)?;
        rows.extend(model_rows(a, &engine, label, &chosen, &ans, secs)?);
    }
    finish_table(a, &engine, &chosen, rows)
}

/// Add the rule proposer's row (same examples) and print/write the table.
fn finish_table(
    a: &EvalArgs,
    engine: &Engine,
    chosen: &[&Example],
    mut rows: Vec<Row>,
) -> Result<Status> {
    let rules = RuleProposer::builtin()?;
    let (ans, secs) = answers_of(&rules, chosen)?;
    rows.push(score(
        "rule proposer",
        chosen,
        &ans,
        secs,
        &engine.verifier,
        engine.cost.as_ref(),
    )?);
    let md = markdown(&rows) + &improvable_markdown(&rows, chosen);
    print!("{md}");
    if let Some(t) = &a.table {
        write_atomic(t, md.as_bytes())?;
    }
    if let Some(d) = &a.dump {
        write_atomic(
            d,
            crate::dataset::eval::dump_jsonl(&rows, chosen).as_bytes(),
        )?;
    }
    Ok(Status::Done)
}
