//! The validator classifies every pair of fixtures/verify/corpus.toml as
//! expected: the traps (w vs x, live flags, shift masks, extensions,
//! division, aliasing, writeback, exits...) and the unsupported classes.

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

#[test]
fn corpus_is_classified_as_expected() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/verify/corpus.toml"
    ))
    .unwrap();
    let corpus: Corpus = toml::from_str(&text).unwrap();
    assert!(corpus.case.len() >= 100);
    let blocks: Vec<(Vec<Insn>, Vec<Insn>, LocSet)> = corpus
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
        .collect();
    let jobs: Vec<VerifyJob> = blocks
        .iter()
        .map(|(o, c, l)| VerifyJob {
            original: o,
            candidate: c,
            live_out: *l,
        })
        .collect();
    let verifier = Verifier::new(VerifyConfig::default()).unwrap();
    let verdicts = verifier.check_many(&jobs);
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
    assert_eq!(verifier.check_many(&jobs[..20]), verdicts[..20]);
}
