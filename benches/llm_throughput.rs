//! Throughput of the LLM proposer on the default model: tokens/s single
//! stream and batched (and their ratio), windows/s, and the time of a fully
//! cached call. Prints a table of medians. Run: `cargo bench --bench llm_throughput`.
//! Env: BENCH_REPS (default 3), BENCH_BATCH (windows per batched call,
//! default 64: decoded 16 at a time with continuous batching, as a file's
//! windows are), BENCH_THREADS, BENCH_ADAPTER (`default`: the shipped
//! adapter, as `peephole opt` runs; `none` for the base alone, or a path),
//! BENCH_PROMPT (prompt style, default `chain-of-code`), BENCH_MERGE (`0`:
//! apply the adapter at run time instead of merging it into the base), BENCH_SEQS
//! (sequences of the raw decoding rows, default 16). Tokens/s counts generated tokens; the
//! "all tokens" rows add the tokens evaluated for each window's question
//! and prefilled trace, which is most of chain-of-code's work since the
//! semantics write the trace and the model only the rewrite.

use peephole::asm::Insn;
use peephole::cache::Cache;
use peephole::propose::llm::{AdapterChoice, LlmConfig, LlmProposer, PromptStyle};
use peephole::propose::Window;
use peephole::semantics::LocSet;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Distinct small windows (distinct so that nothing is served from the cache).
fn windows(n: usize, salt: usize) -> Vec<Window> {
    (0..n)
        .map(|i| {
            let k = (i + salt * 97) % 4000 + 1;
            let r = 2 + (i % 20);
            let lines = match i % 4 {
                0 => vec![format!("add x{r}, x1, #0"), format!("mov x0, x{r}")],
                1 => vec![format!("mov x{r}, #{k}"), format!("add x0, x1, x{r}")],
                2 => vec![
                    format!("ldr x0, [sp, #{}]", 8 * (k % 64)),
                    format!("add x0, x0, #{k}"),
                ],
                _ => vec![
                    format!("mov x{r}, #8"),
                    format!("mul x0, x1, x{r}"),
                    format!("add x0, x0, #{k}"),
                ],
            };
            Window {
                insns: lines
                    .iter()
                    .map(|l| Insn::parse_plain(l).unwrap())
                    .collect(),
                live_out: LocSet::parse_list("x0,sp").unwrap(),
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Run {
    tok_per_s: f64,
    all_tok_per_s: f64,
    windows_per_s: f64,
    tokens: u64,
}

fn run(p: &LlmProposer, ws: &[Window], style: PromptStyle) -> Run {
    let before = p.stats();
    let t = Instant::now();
    p.generate(ws, style).unwrap();
    let wall = t.elapsed().as_secs_f64();
    let after = p.stats();
    let tokens = after.generated_tokens - before.generated_tokens;
    let prompt = after.prompt_tokens - before.prompt_tokens;
    Run {
        tok_per_s: tokens as f64 / wall,
        all_tok_per_s: (tokens + prompt) as f64 / wall,
        windows_per_s: ws.len() as f64 / wall,
        tokens,
    }
}

fn main() {
    peephole::propose::llm::ensure_passive_openmp();
    let reps = env_usize("BENCH_REPS", 3);
    let batch = env_usize("BENCH_BATCH", 64);
    let style: PromptStyle =
        std::env::var("BENCH_PROMPT").map_or(PromptStyle::ChainOfCode, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = LlmConfig {
        adapter: std::env::var("BENCH_ADAPTER")
            .map_or(AdapterChoice::Default, |a| a.parse().unwrap()),
        threads: std::env::var("BENCH_THREADS")
            .ok()
            .and_then(|v| v.parse().ok()),
        max_tokens: 128,
        merge_adapter: std::env::var("BENCH_MERGE").map_or(true, |v| v != "0"),
        ..LlmConfig::default()
    };
    let t = Instant::now();
    let p = LlmProposer::with_cache(cfg, Cache::at(dir.path())).expect("model");
    let load = t.elapsed().as_secs_f64();
    // Warm-up: evaluates the shared prompt prefix once.
    run(&p, &windows(1, 9999), style);

    let mut salt = 0;
    let mut single = Vec::new();
    let mut single_all = Vec::new();
    let mut single_w = Vec::new();
    let mut single_tokens = 0;
    for _ in 0..reps {
        for w in windows(4, salt).chunks(1) {
            let r = run(&p, w, style);
            single.push(r.tok_per_s);
            single_all.push(r.all_tok_per_s);
            single_w.push(r.windows_per_s);
            single_tokens += r.tokens;
        }
        salt += 1;
    }
    let mut batched = Vec::new();
    let mut batched_all = Vec::new();
    let mut batched_w = Vec::new();
    let mut batched_tokens = 0;
    let mut last = Vec::new();
    for _ in 0..reps {
        last = windows(batch, salt);
        salt += 1;
        let r = run(&p, &last, style);
        batched.push(r.tok_per_s);
        batched_all.push(r.all_tok_per_s);
        batched_w.push(r.windows_per_s);
        batched_tokens += r.tokens;
    }
    let mut hit = Vec::new();
    for _ in 0..reps.max(3) {
        let t = Instant::now();
        p.generate(&last, style).unwrap();
        hit.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Raw decoding (llama.cpp batched-bench style): 128 greedy tokens after
    // a shared prompt, 1 sequence and `BENCH_SEQS` sequences.
    let seqs = env_usize("BENCH_SEQS", 16);
    let decode = |n: usize| {
        median(
            (0..reps)
                .map(|_| p.decode_speed(n, 128).unwrap().tokens_per_second())
                .collect(),
        )
    };
    let (decode_1, decode_n) = (decode(1), decode(seqs));
    let (s, b) = (median(single), median(batched));
    println!(
        "prompt: {style}; adapter: {:?}, merged: {}; model load (and merge on first use): {load:.2} s (threads: {})",
        p.config().adapter,
        p.config().merge_adapter,
        p.config()
            .threads
            .map_or("physical cores".into(), |t| t.to_string())
    );
    let rows = [
        ("decode, 1 sequence, tokens/s".to_string(), decode_1),
        (format!("decode, {seqs} sequences, tokens/s"), decode_n),
        ("decode batched / single".to_string(), decode_n / decode_1),
        ("single stream, tokens/s".to_string(), s),
        (
            "single stream, all tokens/s".to_string(),
            median(single_all),
        ),
        ("single stream, windows/s".to_string(), median(single_w)),
        (format!("batched ({batch} windows), tokens/s"), b),
        (
            format!("batched ({batch} windows), all tokens/s"),
            median(batched_all),
        ),
        (
            format!("batched ({batch} windows), windows/s"),
            median(batched_w),
        ),
        ("batched / single tokens/s".to_string(), b / s),
        (format!("cache hit, {batch} windows, ms"), median(hit)),
    ];
    println!(
        "| {:<34} | {:>10} |",
        format!("measure (median of {reps})"),
        "value"
    );
    println!("|{}|{}|", "-".repeat(36), "-".repeat(12));
    for (name, v) in rows {
        println!("| {name:<34} | {v:>10.2} |");
    }
    println!("(generated tokens: single {single_tokens}, batched {batched_tokens})");
}
