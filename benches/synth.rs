//! Superoptimizer speed, one core: candidate evaluations per second on the
//! idiom corpus, windows per second on -O2 compiler output, and the time of
//! a cold and a warm `peephole opt --propose rules,synth` of a 2,000-line
//! -O2 file (the warm run answers from the result cache and the rewrite
//! database). Medians of several runs.
//!
//! Run: `cargo bench --bench synth`; `cargo bench --bench synth -- evals`
//! measures only the evaluation rates (one pass over the idioms, about ten
//! seconds).

use peephole::asm::Source;
use peephole::cfg::functions;
use peephole::pipeline::windows::windows;
use peephole::propose::synth::SynthProposer;
use peephole::propose::Window;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn windows_of(files: &[std::path::PathBuf]) -> Vec<Window> {
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let src = Source::parse(&f.display().to_string(), text).unwrap();
            windows(&functions(&src))
                .into_iter()
                .map(|s| s.window)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "s"))
        .collect();
    v.sort();
    v
}

/// Evaluations per second of the search alone and of the whole proposer
/// (pools, test states, confirmation included), and windows per second.
fn run(ws: &[Window], budget: Duration, evals: Option<u64>) -> (f64, f64, f64) {
    let mut p = SynthProposer::new(budget, 1);
    p.max_evals = evals;
    let t = Instant::now();
    for w in ws {
        p.propose_window(w);
    }
    let secs = t.elapsed().as_secs_f64();
    let n = p.evaluated() as f64;
    (n / p.search_seconds(), n / secs, ws.len() as f64 / secs)
}

fn opt_seconds(file: &Path, cache: &Path) -> f64 {
    let t = Instant::now();
    let st = Command::new(env!("CARGO_BIN_EXE_peephole"))
        .args([
            "opt",
            "--propose",
            "rules,synth",
            "--abi",
            "c",
            "-o",
            "/dev/null",
        ])
        .arg(file)
        .env("PEEPHOLE_CACHE_DIR", cache)
        .status()
        .unwrap();
    assert!(st.success());
    t.elapsed().as_secs_f64()
}

fn main() {
    let reps = 3;
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let idioms = windows_of(&files("fixtures/idioms"));
    if std::env::args().any(|a| a == "evals") {
        let (s, e, w) = run(&idioms, Duration::from_secs(60), Some(2_000_000));
        println!(
            "evaluations/s: search {:.1}M, whole proposer {:.1}M; idiom windows/s {w:.1}",
            s / 1e6,
            e / 1e6
        );
        return;
    }
    let mut o2 = files("fixtures/asm/gcc-O2");
    o2.extend(files("fixtures/asm/clang-O2"));
    let o2_windows = windows_of(&o2);
    let budget = Duration::from_millis(peephole::cli::opt::DEFAULT_SYNTH_BUDGET_MS);
    let cap = peephole::cli::opt::DEFAULT_SYNTH_EVALS;
    let (mut search_evals, mut evals) = (Vec::new(), Vec::new());
    let (mut idiom_wps, mut o2_wps) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (s, e, w) = run(&idioms, Duration::from_secs(60), Some(2_000_000));
        search_evals.push(s);
        evals.push(e);
        idiom_wps.push(w);
        o2_wps.push(run(&o2_windows, budget, Some(cap)).2);
    }
    // A 2,000-line -O2 file: the gcc and clang -O2 fixtures, concatenated.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("o2.s");
    let text: String = o2
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    std::fs::write(&big, &text).unwrap();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for k in 0..reps {
        let cache = dir.path().join(format!("cache{k}"));
        cold.push(opt_seconds(&big, &cache));
        warm.push(opt_seconds(&big, &cache));
    }
    println!("| measure | median of {reps} |");
    println!("|---|---|");
    println!(
        "| candidate evaluations/s in the search, one core (idioms) | {:.1}M |",
        median(search_evals) / 1e6
    );
    println!(
        "| candidate evaluations/s of the whole proposer, one core (idioms) | {:.1}M |",
        median(evals) / 1e6
    );
    println!(
        "| idiom windows/s, one core, 2M evaluations cap | {:.1} |",
        median(idiom_wps)
    );
    println!(
        "| -O2 windows/s, one core, default budget ({}M evaluations) ({} windows) | {:.1} |",
        cap / 1_000_000,
        o2_windows.len(),
        median(o2_wps)
    );
    println!(
        "| cold opt, {} lines -O2, rules+synth, all cores | {:.1} s |",
        text.lines().count(),
        median(cold)
    );
    println!("| warm opt, same file and cache | {:.2} s |", median(warm));
}
