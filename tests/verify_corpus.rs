//! The validator classifies every pair of fixtures/verify/corpus.toml as
//! expected: the traps (w vs x, live flags, shift masks, extensions,
//! division, aliasing, writeback, exits...) and the unsupported classes.
//! The SMT solver answers every trap with a proof or a counterexample
//! (never a timeout), agreeing with the validator except where a case says
//! the tests miss what the proof finds (`proof = ...`).

use peephole::asm::Insn;
use peephole::semantics::LocSet;
use peephole::verify::{Verdict, Verifier, VerifyConfig, VerifyJob};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    original: String,
    candidate: String,
    live_out: String,
    expect: String,
    /// The proof's answer where it differs from the tests' (`expect`): a
    /// rewrite wrong on inputs the tests never draw.
    proof: Option<String>,
}

fn block(s: &str) -> Vec<Insn> {
    s.split(';')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Insn::parse_plain(l).unwrap_or_else(|e| panic!("`{l}`: {e:?}")))
        .collect()
}

fn kind(v: &Verdict) -> &'static str {
    match v {
        Verdict::Equivalent { .. } => "equivalent",
        Verdict::Counterexample { .. } => "counterexample",
        Verdict::Unsupported { .. } => "unsupported",
        Verdict::Invalid { .. } => "invalid",
    }
}

fn corpus() -> Corpus {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/verify/corpus.toml"
    ))
    .unwrap();
    toml::from_str(&text).unwrap()
}

fn blocks(corpus: &Corpus) -> Vec<(Vec<Insn>, Vec<Insn>, LocSet)> {
    corpus
        .case
        .iter()
        .map(|c| {
            let live = if c.live_out == "all" {
                LocSet::ALL
            } else {
                LocSet::parse_list(&c.live_out).unwrap()
            };
            (block(&c.original), block(&c.candidate), live)
        })
        .collect()
}

#[test]
fn corpus_is_classified_as_expected() {
    let corpus = corpus();
    assert!(corpus.case.len() >= 100);
    let blocks = blocks(&corpus);
    let jobs: Vec<VerifyJob> = blocks
        .iter()
        .map(|(o, c, l)| VerifyJob {
            original: o,
            candidate: c,
            live_out: *l,
        })
        .collect();
    let verifier = Verifier::new(VerifyConfig::default()).unwrap();
    let verdicts = verifier.check_many(&jobs).unwrap();
    let mut wrong = Vec::new();
    for (c, v) in corpus.case.iter().zip(&verdicts) {
        if kind(v) != c.expect {
            wrong.push(format!("{}: expected {}, got {v:?}", c.name, c.expect));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Same seed, same verdicts (including counterexample text).
    assert_eq!(verifier.check_many(&jobs[..20]).unwrap(), verdicts[..20]);
}

/// Every case within the semantics is answered by a proof or a
/// counterexample under the default timeout, and the answer agrees with the
/// tests' (or with `proof` where the tests miss it). Cases outside the
/// semantics (SIMD/FP, system instructions, symbols) say so.
#[test]
fn traps_are_proved_or_refuted_never_timed_out() {
    use peephole::prove::{Proof, Prover, DEFAULT_TIMEOUT_MS};
    let corpus = corpus();
    let blocks = blocks(&corpus);
    let prover = Prover::new(DEFAULT_TIMEOUT_MS);
    let mut wrong = Vec::new();
    let (mut proved, mut refuted, mut outside) = (0, 0, 0);
    let mut slowest = (0, "");
    for (c, (o, k, live)) in corpus.case.iter().zip(&blocks) {
        let t = std::time::Instant::now();
        let mut p = prover.prove(o, k, *live);
        if matches!(&p, Proof::Unknown { reason } if reason.starts_with("timeout")) {
            // The validator's test runs beside this one on every core: a
            // load spike is not the solver's answer. Once more.
            p = prover.prove(o, k, *live);
        }
        let ms = t.elapsed().as_millis();
        slowest = slowest.max((ms, c.name.as_str()));
        let want = c.proof.as_deref().unwrap_or(&c.expect);
        let ok = match (&p, want) {
            (Proof::Proved, "equivalent") => {
                proved += 1;
                true
            }
            (Proof::Counterexample { .. }, "counterexample") => {
                refuted += 1;
                true
            }
            (Proof::Unknown { reason }, _) => {
                outside += 1;
                reason.contains("no executable semantics")
            }
            // Unsupported and invalid pairs never reach the solver in the
            // pipeline (the tests come first); any definite answer will do.
            (_, "unsupported" | "invalid") => true,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{}: expected {want}, got {p:?} ({ms} ms)", c.name));
        }
    }
    eprintln!(
        "proved {proved}, refuted {refuted}, outside the semantics {outside}; slowest: {} ({} ms)",
        slowest.1, slowest.0
    );
    assert!(
        wrong.is_empty(),
        "{} answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        proved >= 60 && refuted >= 50,
        "{proved} proved, {refuted} refuted"
    );
}
