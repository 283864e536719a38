//! The llama.cpp engine: one worker thread owns the model and its context and
//! decodes many sequences at once.
//!
//! Why a thread: a llama.cpp context borrows its model and is not `Send`, but
//! proposers must be `Send + Sync`. The thread keeps model, adapter and
//! context as locals and serves jobs from a channel.
//!
//! Throughput comes from four things:
//! * the shared prompt prefix (the system prompt) is decoded once into
//!   sequence 0 and shared with every sequence through one unified KV cache
//!   (`seq_cp` only tags cells; a stream per sequence measured slower, 98 vs
//!   116 tok/s batched, as llama.cpp then splits mixed batches);
//! * continuous batching: every live sequence advances by one token per
//!   `decode` call, and a finished window's slot takes the next window's
//!   prompt in the same call (see `decode_all`);
//! * grammar-constrained sampling first samples unconstrained and only checks
//!   that one token against the grammar, falling back to applying the grammar
//!   to the whole vocabulary when it is rejected.

use super::grammar::ANSWER_GRAMMAR;
use super::prompt::{PromptStyle, PromptTemplate};
use anyhow::{anyhow, bail, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the engine is built with.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub model: PathBuf,
    pub adapter: Option<PathBuf>,
    pub threads: usize,
    pub gpu_layers: u32,
    /// KV cells of each sequence (prompt prefix, its query and its answer).
    pub seq_ctx: u32,
    /// Most sequences decoded together.
    pub max_parallel: usize,
}

/// One request: a query (rendered after the style's fixed messages), sampled
/// `samples` times.
#[derive(Clone, Debug)]
pub struct GenJob {
    pub style: PromptStyle,
    pub queries: Vec<String>,
    /// Answer grammar per query (see `grammar::grammar_for`).
    pub grammars: Vec<String>,
    /// Start of the answer per query, written by the proposer (see
    /// `PromptTemplate::prefill_for`; empty for none). It is part of the
    /// prompt and of the returned answer text; the model decodes from the
    /// template's `decode_root`.
    pub prefills: Vec<String>,
    pub samples: u32,
    pub temperature: f32,
    /// Seed per query (sample `j` uses `seed + j`).
    pub seeds: Vec<u32>,
    pub max_tokens: u32,
}

/// One decoded answer.
#[derive(Clone, Debug, Default)]
pub struct RawAnswer {
    pub text: String,
    pub tokens: u32,
    /// Ended at end-of-turn with the grammar satisfied (not cut by
    /// `max_tokens`, not refused).
    pub finished: bool,
    pub error: Option<String>,
}

/// Counters of one job.
#[derive(Clone, Copy, Debug, Default)]
pub struct JobStats {
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    pub sequences: u64,
    pub seconds: f64,
}

type Reply = mpsc::Sender<Result<(Vec<Vec<RawAnswer>>, JobStats)>>;

/// Raw decoding speed, measured as llama.cpp's `batched-bench` does: one
/// prompt shared by `sequences` sequences, then `tokens` greedy tokens each,
/// unconstrained. Why: a proposal's answers are short, so tokens/s over a
/// whole proposal mostly measures prompt evaluation; this isolates decoding.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeSpeed {
    pub sequences: usize,
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    /// Tokens generated, all sequences together.
    pub generated_tokens: usize,
    pub generate_seconds: f64,
}

impl DecodeSpeed {
    pub fn tokens_per_second(&self) -> f64 {
        self.generated_tokens as f64 / self.generate_seconds.max(1e-9)
    }
}

enum Request {
    Generate(GenJob, Reply),
    DecodeSpeed {
        sequences: usize,
        tokens: usize,
        reply: mpsc::Sender<Result<DecodeSpeed>>,
    },
}

/// Handle to the worker thread.
pub struct Engine {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Start the worker and wait until the model is loaded (or failed to).
    pub fn start(settings: EngineSettings) -> Result<Engine> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = std::thread::Builder::new()
            .name("peephole-llm".into())
            .spawn(move || worker(settings, rx, ready_tx))
            .context("starting the LLM thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Engine {
                tx: Mutex::new(Some(tx)),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                bail!("the LLM thread died while loading the model")
            }
        }
    }

    pub fn run(&self, job: GenJob) -> Result<(Vec<Vec<RawAnswer>>, JobStats)> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.send(Request::Generate(job, reply_tx))?;
        reply_rx
            .recv()
            .map_err(|_| anyhow!("the LLM thread died during generation"))?
    }

    /// Measure raw decoding speed (see `DecodeSpeed`); for the benchmark.
    pub fn decode_speed(&self, sequences: usize, tokens: usize) -> Result<DecodeSpeed> {
        let (reply, reply_rx) = mpsc::channel();
        self.send(Request::DecodeSpeed {
            sequences,
            tokens,
            reply,
        })?;
        reply_rx
            .recv()
            .map_err(|_| anyhow!("the LLM thread died during generation"))?
    }

    fn send(&self, request: Request) -> Result<()> {
        let guard = self.tx.lock().map_err(|_| anyhow!("LLM engine poisoned"))?;
        let tx = guard.as_ref().context("LLM engine stopped")?;
        tx.send(request)
            .map_err(|_| anyhow!("the LLM thread has exited"))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            if std::env::var_os("PEEPHOLE_LLAMA_LOG").is_none() {
                b.void_logs();
            }
            Ok(b)
        })
        .as_ref()
        .map_err(|e| anyhow!("initialising llama.cpp: {e}"))
}

/// Physical cores: llama.cpp decodes fastest with one thread per core
/// (hyper-threads and oversubscription slow it down markedly).
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cores = std::collections::HashSet::new();
    for cpu in 0..logical.max(1) * 4 {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let pkg = std::fs::read_to_string(format!("{base}/physical_package_id"));
        let core = std::fs::read_to_string(format!("{base}/core_id"));
        if let (Ok(p), Ok(c)) = (pkg, core) {
            cores.insert((p.trim().to_string(), c.trim().to_string()));
        }
    }
    match cores.len() {
        0 => logical,
        n => n.min(logical),
    }
}

/// Whether each complete answer is accepted by the answer grammar of
/// `style` (narrowed to `window` if given, as the proposer decodes), token
/// by token as the model would emit it, and ends where the grammar lets the
/// turn end. For tests and for checking generated training traces. Loads
/// only the model's vocabulary.
pub fn grammar_check(
    model: &std::path::Path,
    style: PromptStyle,
    window: Option<&crate::propose::Window>,
    answers: &[&str],
) -> Result<Vec<Result<(), String>>> {
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(backend()?, model, &params)
        .with_context(|| format!("loading the vocabulary of {}", model.display()))?;
    let vocab = model.vocab();
    let root = &style.template().grammar_root;
    let grammar = window.map_or_else(|| ANSWER_GRAMMAR.to_string(), super::grammar::grammar_for);
    let mut out = Vec::new();
    for text in answers {
        let mut g = LlamaSampler::grammar(&model, &grammar, root)
            .map_err(|e| anyhow!("answer grammar: {e}"))?;
        let mut verdict = Ok(());
        for tok in vocab.tokenize(text.as_bytes(), false, false) {
            let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(tok, 0.0, 0.0)], false);
            one.apply_sampler(&mut g);
            let allowed = one.data.first().is_some_and(|d| d.logit().is_finite());
            if !allowed || g.try_accept(tok).is_err() {
                let piece =
                    String::from_utf8_lossy(&vocab.token_to_piece(tok, false, None)).into_owned();
                verdict = Err(format!("refused token {piece:?}"));
                break;
            }
        }
        if verdict.is_ok() {
            let mut end =
                LlamaTokenDataArray::new(vec![LlamaTokenData::new(vocab.eos(), 0.0, 0.0)], false);
            end.apply_sampler(&mut g);
            if !end.data.first().is_some_and(|d| d.logit().is_finite()) {
                verdict = Err("the grammar does not allow the answer to end here".into());
            }
        }
        out.push(verdict);
    }
    Ok(out)
}

fn worker(settings: EngineSettings, rx: mpsc::Receiver<Request>, ready: mpsc::Sender<Result<()>>) {
    let setup = || -> Result<(LlamaModel, Option<llama_cpp_2::model::LlamaLoraAdapter>)> {
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
        let mut model = LlamaModel::load_from_file(backend, &settings.model, &params)
            .with_context(|| format!("loading model {}", settings.model.display()))?;
        let adapter = match &settings.adapter {
            Some(p) => Some(
                model
                    .lora_adapter_init(p)
                    .with_context(|| format!("loading LoRA adapter {}", p.display()))?,
            ),
            None => None,
        };
        Ok((model, adapter))
    };
    let (model, mut adapter) = match setup() {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut state = match WorkerState::new(&model, adapter.as_mut(), &settings) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(request) = rx.recv() {
        match request {
            Request::Generate(job, reply) => {
                let _ = reply.send(state.generate(&job));
            }
            Request::DecodeSpeed {
                sequences,
                tokens,
                reply,
            } => {
                let _ = reply.send(state.decode_speed(sequences, tokens));
            }
        }
    }
}

/// Everything that lives as long as the context.
struct WorkerState<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    chat: LlamaChatTemplate,
    seq_ctx: u32,
    max_parallel: usize,
    /// The style whose fixed prefix is in sequence 0, and its tokens.
    prefix: Option<(PromptStyle, Vec<LlamaToken>)>,
}

impl<'m> WorkerState<'m> {
    fn new(
        model: &'m LlamaModel,
        adapter: Option<&mut llama_cpp_2::model::LlamaLoraAdapter>,
        s: &EngineSettings,
    ) -> Result<Self> {
        let seq_ctx = s.seq_ctx.min(model.n_ctx_train().max(512));
        let n_seq = u32::try_from(s.max_parallel + 1).unwrap_or(2);
        let n_ctx = seq_ctx * n_seq;
        let threads = i32::try_from(s.threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_ubatch(512)
            .with_n_seq_max(n_seq)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_kv_unified(true);
        let mut ctx = model
            .new_context(backend()?, params)
            .context("creating the llama.cpp context")?;
        if let Some(a) = adapter {
            ctx.lora_adapter_set(a, 1.0)
                .context("applying the LoRA adapter")?;
        }
        let chat = model
            .chat_template(None)
            .context("the model file has no chat template")?;
        // Fail now, not on the first job, if the template or grammar is unusable.
        for style in PromptStyle::ALL {
            let t = style.template();
            for root in [&t.grammar_root, &t.decode_root] {
                LlamaSampler::grammar(model, ANSWER_GRAMMAR, root)
                    .map_err(|e| anyhow!("prompts/answer.gbnf root {root} ({style}): {e}"))?;
            }
        }
        Ok(WorkerState {
            model,
            ctx,
            chat,
            seq_ctx,
            max_parallel: s.max_parallel.max(1),
            prefix: None,
        })
    }

    /// The prompt's tokens: fixed messages, the query, and the start of the
    /// assistant's turn (`prefill` appended to the rendered text, so it is
    /// tokenized as the training answers were).
    fn render(&self, t: &PromptTemplate, query: &str, prefill: &str) -> Result<Vec<LlamaToken>> {
        let mut msgs = Vec::with_capacity(t.messages.len() + 1);
        for (role, text) in &t.messages {
            msgs.push(LlamaChatMessage::new(role.as_str().into(), text.clone())?);
        }
        msgs.push(LlamaChatMessage::new("user".into(), query.to_string())?);
        let mut text = self
            .model
            .apply_chat_template(&self.chat, &msgs, true)
            .context("applying the model's chat template")?;
        text.push_str(prefill);
        Ok(self.model.vocab().tokenize(text.as_bytes(), true, true))
    }

    /// Make sequence 0 hold the fixed prefix of `style`: the longest token
    /// prefix shared by two renderings with different queries.
    fn ensure_prefix(&mut self, style: PromptStyle, t: &PromptTemplate) -> Result<u64> {
        if self.prefix.as_ref().is_some_and(|(s, _)| *s == style) {
            return Ok(0);
        }
        self.ctx.clear_kv_cache();
        self.prefix = None;
        let a = self.render(t, "block:\nnop\nlive-out: x0", "")?;
        let b = self.render(t, "Q", "")?;
        let n = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let prefix = a[..n].to_vec();
        if prefix.len() + 16 >= self.seq_ctx as usize {
            bail!(
                "the {style} prompt ({} tokens) does not fit the context",
                prefix.len()
            );
        }
        if !prefix.is_empty() {
            let mut batch = LlamaBatch::new(prefix.len(), 1);
            for (i, tok) in prefix.iter().enumerate() {
                batch.add(*tok, i as i32, &[0], false)?;
            }
            self.ctx
                .decode(&mut batch)
                .context("decoding the prompt prefix")?;
        }
        let n = prefix.len() as u64;
        self.prefix = Some((style, prefix));
        Ok(n)
    }

    /// See `DecodeSpeed`. Leaves the KV cache empty (the next job decodes
    /// its prompt prefix again).
    fn decode_speed(&mut self, sequences: usize, tokens: usize) -> Result<DecodeSpeed> {
        let n_seq = sequences.clamp(1, self.max_parallel);
        self.ctx.clear_kv_cache();
        self.prefix = None;
        let style = PromptStyle::Direct;
        let prompt = self.render(
            style.template(),
            "block:\nadd x2, x1, #0\nmov x0, x2\nlive-out: x0,sp",
            "",
        )?;
        let tokens = tokens.min((self.seq_ctx as usize).saturating_sub(prompt.len() + 1));
        let ids: Vec<i32> = (1..=n_seq as i32).collect();
        let t = Instant::now();
        let mut batch = LlamaBatch::new(prompt.len().max(n_seq), n_seq as i32);
        for (i, tok) in prompt.iter().enumerate() {
            batch.add(*tok, i as i32, &ids, i + 1 == prompt.len())?;
        }
        self.ctx.decode(&mut batch).context("decoding the prompt")?;
        let prompt_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut samplers: Vec<LlamaSampler> = (0..n_seq).map(|_| LlamaSampler::greedy()).collect();
        let mut logit_idx = vec![batch.n_tokens() - 1; n_seq];
        for step in 0..tokens {
            let picked: Vec<LlamaToken> = samplers
                .iter_mut()
                .zip(&logit_idx)
                .map(|(s, &i)| {
                    let mut all = self.ctx.token_data_array_ith(i);
                    all.apply_sampler(s);
                    all.selected_token().unwrap_or(LlamaToken(0))
                })
                .collect();
            batch.clear();
            for (k, tok) in picked.into_iter().enumerate() {
                logit_idx[k] = batch.n_tokens();
                batch.add(tok, (prompt.len() + step) as i32, &[ids[k]], true)?;
            }
            self.ctx.decode(&mut batch).context("decoding")?;
        }
        let generate_seconds = t.elapsed().as_secs_f64();
        self.ctx.clear_kv_cache();
        Ok(DecodeSpeed {
            sequences: n_seq,
            prompt_tokens: prompt.len(),
            prompt_seconds,
            generated_tokens: n_seq * tokens,
            generate_seconds,
        })
    }

    fn generate(&mut self, job: &GenJob) -> Result<(Vec<Vec<RawAnswer>>, JobStats)> {
        let start = Instant::now();
        let template = job.style.template();
        let mut stats = JobStats {
            prompt_tokens: self.ensure_prefix(job.style, template)?,
            ..JobStats::default()
        };
        let prefix_len = self.prefix.as_ref().map_or(0, |(_, p)| p.len());
        let samples = (job.samples.max(1) as usize).min(self.max_parallel);
        let mut out = vec![Vec::new(); job.queries.len()];
        let mut pending: std::collections::VecDeque<Pending> = Default::default();
        for (i, q) in job.queries.iter().enumerate() {
            let prefill = job.prefills.get(i).map_or("", String::as_str);
            let toks = self.render(template, q, prefill)?;
            let prefix = self.prefix.as_ref().map_or(&[][..], |(_, p)| &p[..]);
            let shares = toks.len() > prefix.len() && toks[..prefix.len()] == prefix[..];
            let (suffix, start) = if shares {
                (toks[prefix_len..].to_vec(), prefix_len)
            } else {
                (toks, 0)
            };
            if start + suffix.len() + job.max_tokens as usize > self.seq_ctx as usize {
                let e = format!("prompt of {} tokens does not fit the context", suffix.len());
                out[i] = vec![
                    RawAnswer {
                        error: Some(e),
                        ..RawAnswer::default()
                    };
                    samples
                ];
                continue;
            }
            pending.push_back(Pending {
                query: i,
                suffix,
                start,
            });
        }
        self.decode_all(job, pending, samples, &mut out, &mut stats)?;
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((out, stats))
    }

    /// Continuous batching: `max_parallel / samples` slots, each holding one
    /// query's `samples` sequences; every `decode` call advances all live
    /// sequences by one token and, in the same batch, starts the next queries
    /// in the slots that finished. Why: answers differ in length, and
    /// decoding whole rounds left most slots idle while the longest answer
    /// of the round finished.
    fn decode_all(
        &mut self,
        job: &GenJob,
        mut pending: std::collections::VecDeque<Pending>,
        samples: usize,
        out: &mut [Vec<RawAnswer>],
        stats: &mut JobStats,
    ) -> Result<()> {
        let root = &job.style.template().decode_root;
        let n_slots = (self.max_parallel / samples).max(1);
        let most_tokens = pending.iter().map(|p| p.suffix.len()).max().unwrap_or(0);
        let mut batch = LlamaBatch::new(n_slots * samples * (most_tokens + 1), 1);
        let mut free: Vec<usize> = (0..n_slots).rev().collect();
        let mut seqs: Vec<Seq> = Vec::new();
        let vocab = self.model.vocab();
        loop {
            batch.clear();
            // 1. Every sequence with fresh logits takes one token.
            for s in seqs.iter_mut().filter(|s| s.ready && !s.done) {
                s.ready = false;
                let Some(tok) =
                    sample_constrained(&self.ctx, s.logit_idx, &mut s.chain, &mut s.grammar)
                else {
                    s.answer.error = Some("no token satisfies the grammar".into());
                    s.done = true;
                    continue;
                };
                if vocab.is_eog(tok) {
                    // The grammar only admits end-of-turn once the answer is
                    // complete; stop here, sampling nothing more (#1007).
                    s.answer.finished = true;
                    s.done = true;
                    continue;
                }
                if let Err(e) = s.grammar.try_accept(tok) {
                    s.answer.error = Some(format!("grammar refused a token: {e}"));
                    s.done = true;
                    continue;
                }
                s.bytes.extend(vocab.token_to_piece(tok, false, None));
                s.answer.tokens += 1;
                stats.generated_tokens += 1;
                if s.answer.tokens >= job.max_tokens {
                    s.answer.error = Some(format!("cut at max_tokens = {}", job.max_tokens));
                    s.done = true;
                    continue;
                }
                s.logit_idx = batch.n_tokens();
                batch.add(tok, s.pos, &[s.id], true)?;
                s.pos += 1;
            }
            // 2. Queries whose samples are all done give back their slot.
            let mut finished_slots = Vec::new();
            for slot in 0..n_slots {
                let mine = || seqs.iter().filter(|s| s.slot == slot);
                if mine().next().is_some() && mine().all(|s| s.done) {
                    finished_slots.push(slot);
                }
            }
            for slot in finished_slots {
                let (done, rest): (Vec<Seq>, Vec<Seq>) =
                    seqs.drain(..).partition(|s| s.slot == slot);
                seqs = rest;
                for mut s in done {
                    self.ctx.clear_kv_cache_seq(Some(s.id as u32), None, None)?;
                    s.answer.text = String::from_utf8_lossy(&s.bytes).into_owned();
                    out[s.query].push(s.answer);
                }
                free.push(slot);
            }
            // 3. Free slots take the next queries (their prompts join this batch).
            while let Some(slot) = free.pop() {
                let Some(p) = pending.pop_front() else {
                    free.push(slot);
                    break;
                };
                for j in 0..samples {
                    let id = (1 + slot * samples + j) as i32;
                    if p.start > 0 {
                        self.ctx.copy_kv_cache_seq(0, id, None, None)?;
                    }
                    for (k, tok) in p.suffix.iter().enumerate() {
                        batch.add(*tok, (p.start + k) as i32, &[id], k + 1 == p.suffix.len())?;
                    }
                    let seed = job
                        .seeds
                        .get(p.query)
                        .copied()
                        .unwrap_or(0)
                        .wrapping_add(j as u32);
                    let chain = if job.temperature > 0.0 {
                        LlamaSampler::chain_simple([
                            LlamaSampler::temp(job.temperature),
                            LlamaSampler::dist(seed),
                        ])
                    } else {
                        LlamaSampler::greedy()
                    };
                    let text = job
                        .grammars
                        .get(p.query)
                        .map_or(ANSWER_GRAMMAR, String::as_str);
                    let grammar = LlamaSampler::grammar(self.model, text, root)
                        .map_err(|e| anyhow!("answer grammar: {e}"))?;
                    seqs.push(Seq {
                        id,
                        slot,
                        query: p.query,
                        pos: (p.start + p.suffix.len()) as i32,
                        logit_idx: batch.n_tokens() - 1,
                        ready: false,
                        chain,
                        grammar,
                        bytes: job
                            .prefills
                            .get(p.query)
                            .map_or_else(Vec::new, |t| t.as_bytes().to_vec()),
                        answer: RawAnswer::default(),
                        done: false,
                    });
                    stats.prompt_tokens += p.suffix.len() as u64;
                    stats.sequences += 1;
                }
            }
            if batch.n_tokens() == 0 {
                break;
            }
            self.ctx.decode(&mut batch).context("decoding")?;
            for s in seqs.iter_mut().filter(|s| !s.done) {
                s.ready = true;
            }
        }
        Ok(())
    }
}

/// A query waiting for a slot: its prompt after the shared prefix.
struct Pending {
    query: usize,
    suffix: Vec<LlamaToken>,
    /// Position of the suffix's first token (the prefix length, or 0 when the
    /// prompt does not extend the shared prefix).
    start: usize,
}

struct Seq {
    id: i32,
    slot: usize,
    query: usize,
    pos: i32,
    logit_idx: i32,
    /// The last `decode` produced this sequence's logits at `logit_idx`.
    ready: bool,
    chain: LlamaSampler,
    grammar: LlamaSampler,
    bytes: Vec<u8>,
    answer: RawAnswer,
    done: bool,
}

/// Sample from output `idx`: unconstrained first, and only when the grammar
/// refuses that token, again over the grammar-filtered vocabulary.
fn sample_constrained(
    ctx: &LlamaContext<'_>,
    idx: i32,
    chain: &mut LlamaSampler,
    grammar: &mut LlamaSampler,
) -> Option<LlamaToken> {
    let mut all = ctx.token_data_array_ith(idx);
    all.apply_sampler(chain);
    if let Some(tok) = all.selected_token() {
        let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(tok, 0.0, 0.0)], false);
        one.apply_sampler(grammar);
        if one.data.first().is_some_and(|d| d.logit().is_finite()) {
            return Some(tok);
        }
    }
    let mut all = ctx.token_data_array_ith(idx);
    all.apply_sampler(grammar);
    all.apply_sampler(chain);
    all.selected_token()
}
