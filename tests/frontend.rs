//! Front end on real files: lossless round trip, block splitting without
//! panics, and one clear error for bad input.

use peephole::asm::Source;
use peephole::cfg::functions;
use peephole::patch::source::apply;
use std::path::{Path, PathBuf};
use std::process::Command;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every assembly fixture except the deliberately bad ones.
fn asm_fixtures() -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(Path::new("fixtures"), &mut all);
    all.retain(|p| {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        // fixtures/verify/cli holds single blocks for `peephole verify`, some deliberately bad.
        (ext == "s" || ext == "S")
            && !p.starts_with("fixtures/errors")
            && !p.starts_with("fixtures/verify/cli")
    });
    all.sort();
    all
}

fn preprocess(p: &Path) -> Option<String> {
    let out = Command::new("aarch64-linux-gnu-gcc")
        .args(["-E", "-P", "-x", "assembler-with-cpp"])
        .arg(p)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).ok())
        .flatten()
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    let files = asm_fixtures();
    assert!(!files.is_empty(), "no fixtures found");
    for f in &files {
        let src = Source::read(f).unwrap_or_else(|e| panic!("{e}"));
        let funcs = functions(&src);
        let _ = peephole::pipeline::windows::windows(&funcs);
        assert_eq!(
            apply(&src, &[]),
            std::fs::read_to_string(f).unwrap(),
            "{}",
            f.display()
        );
        if f.extension().is_some_and(|e| e == "S") {
            let pre = preprocess(f).unwrap_or_else(|| panic!("cpp failed on {}", f.display()));
            let src = Source::parse(&f.display().to_string(), pre.clone())
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = functions(&src);
            assert_eq!(apply(&src, &[]), pre);
        }
    }
}

fn peephole() -> Command {
    Command::new(env!("CARGO_BIN_EXE_peephole"))
}

#[test]
fn opt_without_proposers_reproduces_input_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for f in asm_fixtures().iter().take(40) {
        let out = dir.path().join("out.s");
        let st = peephole()
            .args(["opt", "--propose", "none", "-o"])
            .arg(&out)
            .arg(f)
            .status()
            .unwrap();
        assert!(st.success(), "{}", f.display());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(f).unwrap(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn bad_inputs_give_one_clear_error_and_write_nothing() {
    let mut files = Vec::new();
    walk(Path::new("fixtures/errors"), &mut files);
    files.retain(|p| p.extension().is_none_or(|e| e != "md"));
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let out = dir.path().join("out.s");
        let o = peephole()
            .args(["opt", "--propose", "none", "-o"])
            .arg(&out)
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", f.display());
        assert_eq!(err.lines().count(), 1, "{}: {err}", f.display());
        assert!(err.contains(&f.display().to_string()), "{err}");
        assert!(!out.exists(), "{}: output written on error", f.display());
    }
    let o = peephole()
        .args(["blocks", "fixtures/does-not-exist.s"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
