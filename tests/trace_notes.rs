//! The chain-of-code trace's notes (`// unused`, `// unchanged`, `// = r`,
//! src/semantics/notes.rs) are claims about a window's dataflow that the
//! fine-tuned model acts on, so they are checked like a rewrite: on every
//! window the LLM proposer would be asked about in the compiled fixture
//! programs (and on the dataset's augmented variants of them), the block
//! with every note applied at once (unused and unchanged lines deleted, each
//! `= r` line replaced by a move from `r`) must never be refuted by the
//! validator.

use peephole::asm::{Insn, Source};
use peephole::cfg::functions;
use peephole::dataset::augment::augment;
use peephole::pipeline::windows::windows;
use peephole::propose::llm::{without_branch, PIECE_MAX};
use peephole::propose::Window;
use peephole::semantics::notes::{code_notes, Note};
use peephole::semantics::transfer::statements;
use peephole::verify::{Verdict, Verifier, VerifyConfig, VerifyJob};
use std::path::Path;

/// The window with every note applied.
fn apply_notes(w: &Window) -> Option<Vec<Insn>> {
    let notes = code_notes(&w.insns, w.live_out);
    if notes.iter().all(Option::is_none) {
        return None;
    }
    let mut out = Vec::new();
    for (insn, note) in w.insns.iter().zip(notes) {
        match note {
            None => out.push(insn.clone()),
            Some(Note::Unused | Note::Unchanged) => {}
            Some(Note::SameAs(r)) => {
                let stmts = statements(insn);
                let dest = stmts[0].split_once(" = ").expect("a statement").0;
                out.push(Insn::parse_plain(&format!("mov {dest}, {r}")).expect("a move"));
            }
        }
    }
    Some(out)
}

fn fixture_windows() -> Vec<Window> {
    let mut out = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/asm");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "s"))
        .collect();
    files.sort();
    for (k, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).unwrap();
        let src = Source::parse(&f.display().to_string(), text).unwrap();
        for site in windows(&functions(&src)) {
            let (body, _) = without_branch(&site.window);
            for (p, (_, w)) in body.pieces(PIECE_MAX).into_iter().enumerate() {
                for (_, aug) in augment(&w.insns, w.live_out, (k * 31 + p) as u64) {
                    out.push(Window {
                        insns: aug,
                        live_out: w.live_out,
                    });
                }
                out.push(w);
            }
        }
    }
    out
}

#[test]
fn applying_every_note_keeps_the_meaning() {
    let verifier = Verifier::new(VerifyConfig {
        tests: 300,
        ..VerifyConfig::default()
    })
    .unwrap();
    let windows = fixture_windows();
    let applied: Vec<(&Window, Vec<Insn>)> = windows
        .iter()
        .filter_map(|w| apply_notes(w).map(|a| (w, a)))
        .collect();
    let jobs: Vec<VerifyJob> = applied
        .iter()
        .map(|(w, a)| VerifyJob {
            original: &w.insns,
            candidate: a,
            live_out: w.live_out,
        })
        .collect();
    let verdicts = verifier.check_many(&jobs);
    let mut equivalent = 0;
    for ((w, a), v) in applied.iter().zip(&verdicts) {
        let show = |i: &[Insn]| {
            i.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        // Invalid only where the original itself does not assemble here.
        let refuted = match v {
            Verdict::Counterexample { .. } => true,
            Verdict::Invalid { .. } => !matches!(
                verifier.check(&w.insns, &w.insns, w.live_out),
                Verdict::Invalid { .. }
            ),
            _ => false,
        };
        assert!(
            !refuted,
            "notes of `{}` (live-out {}) applied give `{}`: {v:?}",
            show(&w.insns),
            w.live_out,
            show(a)
        );
        equivalent += v.is_equivalent() as usize;
    }
    eprintln!(
        "{equivalent} of {} noted windows proven ({} windows)",
        applied.len(),
        windows.len()
    );
    // The check has teeth: most noted windows are proven, not skipped.
    assert!(
        applied.len() > 200 && equivalent * 10 > applied.len() * 8,
        "{equivalent} of {} noted windows proven ({} windows)",
        applied.len(),
        windows.len()
    );
}
