//! `peephole opt` end to end on real compiled programs: every `.s` of every
//! fixture program (gcc and clang, -O0/-O1/-O2/-Os) is optimized, linked and
//! run under qemu-aarch64; the output must equal the unoptimized program's.
//! Also proves the wiring: a proposer of wrong rewrites changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn peephole() -> Command {
    Command::new(env!("CARGO_BIN_EXE_peephole"))
}

/// Programs of one configuration: (name, its .s files).
fn programs(config: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(config).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "s"))
                .collect();
            files.sort();
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), files));
        } else if p.extension().is_some_and(|x| x == "s") {
            out.push((
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                vec![p],
            ));
        }
    }
    out.sort();
    out
}

fn link_and_run(files: &[PathBuf], dir: &Path) -> String {
    let exe = dir.join("prog");
    let st = Command::new("aarch64-linux-gnu-gcc")
        .args(files)
        .arg("-lm")
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success(), "link {files:?}");
    let out = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(out.status.success(), "run {files:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Optimize each file into `dir`, returning the optimized paths and the
/// number of rewrites.
fn optimize_all(files: &[PathBuf], dir: &Path, extra: &[&str]) -> (Vec<PathBuf>, usize) {
    let mut outs = Vec::new();
    let mut rewrites = 0;
    for f in files {
        let out = dir.join(f.file_name().unwrap());
        let report = dir.join("report.json");
        let o = peephole()
            .arg("opt")
            .arg(f)
            .arg("-o")
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        for rw in r["rewrites"].as_array().unwrap() {
            assert!(
                rw["tests"].as_u64().unwrap() >= 100,
                "every rewrite was verified: {rw}"
            );
            assert!(rw["cycles_after"].as_f64() <= rw["cycles_before"].as_f64());
        }
        rewrites += r["rewrites"].as_array().unwrap().len();
        outs.push(out);
    }
    (outs, rewrites)
}

fn check_config(config: &str) -> usize {
    let mut total = 0;
    for (name, files) in programs(&Path::new("fixtures/asm").join(config)) {
        let dir = tempfile::tempdir().unwrap();
        let expected = std::fs::read_to_string(format!("fixtures/c/{name}.expected")).unwrap();
        let (opt, n) = optimize_all(
            &files,
            dir.path(),
            &["--tests", "300", "--propose", "rules"],
        );
        assert_eq!(
            link_and_run(&opt, dir.path()),
            expected,
            "{config}/{name} after optimization"
        );
        total += n;
    }
    total
}

#[test]
fn gcc_o0_programs_still_run_correctly_and_many_blocks_improve() {
    let n = check_config("gcc-O0");
    assert!(n >= 10, "only {n} rewrites on gcc -O0 output");
}

#[test]
fn clang_o0_programs_still_run_correctly() {
    let n = check_config("clang-O0");
    assert!(n >= 1, "only {n} rewrites on clang -O0 output");
}

#[test]
fn optimized_programs_still_run_correctly() {
    for c in [
        "gcc-O1", "gcc-O2", "gcc-Os", "clang-O1", "clang-O2", "clang-Os",
    ] {
        check_config(c);
    }
}

#[test]
fn wrong_rules_are_rejected_by_the_validator() {
    // Only the deliberately wrong rules propose; nothing may change.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("w.s");
    std::fs::write(
        &src,
        "\t.globl f\n\t.type f, %function\nf:\n\tsub\tw0, w0, w1\n\tcmp\tw0, #0\n\tb.lt\t.L1\n\tret\n.L1:\n\tmov\tw0, #1\n\tret\n\
         \t.globl g\n\t.type g, %function\ng:\n\tmov\tw2, #2\n\tsdiv\tw0, w0, w2\n\tmov\tw2, #0\n\tret\n",
    )
    .unwrap();
    let out = dir.path().join("o.s");
    let report = dir.path().join("r.json");
    let o = peephole()
        .args([
            "opt",
            "--no-cache",
            "--propose",
            "none",
            "--rules",
            "rules/test/wrong.rules",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `--propose none` with extra rules still uses them (rules are loaded on request).
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["rewrites"].as_array().unwrap().len(), 0, "{r}");
    assert!(
        r["rejected"].as_u64().unwrap() >= 2,
        "the wrong candidates were proposed and rejected: {r}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
}

#[test]
fn a_second_run_is_served_from_the_result_cache() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let o = peephole()
            .env("PEEPHOLE_CACHE_DIR", cache.path())
            .args([
                "opt",
                "--propose",
                "rules",
                "--tests",
                "300",
                "fixtures/handwritten/inefficient.s",
                "-o",
            ])
            .arg(dir.path().join("o.s"))
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        (
            r["rewrites"].clone(),
            r["rejected"].as_u64().unwrap(),
            std::fs::read(dir.path().join("o.s")).unwrap(),
        )
    };
    let first = run();
    assert!(
        !first.0.as_array().unwrap().is_empty(),
        "inefficient.s has verified improvements"
    );
    let second = run();
    // Same rewrites and output, and nothing was proposed or verified again.
    assert_eq!(first.0, second.0);
    assert_eq!(first.2, second.2);
    assert_eq!(second.1, 0);
}

/// Failures are loud. A proposer asked for by name that cannot run fails the
/// command (exit 2, with the reason); one that is only on by default is left
/// out with a warning, on which `check` fails (a CI job must not pass on a
/// partial check) while `opt` goes on; and a validator whose assembler cannot
/// run is an error, never a rejection of every candidate (which used to exit
/// 0 with nothing optimized).
#[test]
fn a_broken_proposer_or_validator_is_loud() {
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let missing = "/nonexistent/model.gguf";
    let o = peephole()
        .args(["check", "--all", "--no-cache", "--tests", "50"])
        .args(["--propose", "llm", "--model", missing])
        .arg("fixtures/handwritten/inefficient.s")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("model file {missing} does not exist")),
        "{}",
        stderr(&o)
    );

    // Nothing to improve, and the default proposers (the LLM among them).
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.s");
    std::fs::write(
        &clean,
        "\t.text\n\t.global\tf\n\t.type\tf, %function\nf:\n\tadd\tx0, x0, x1\n\tret\n",
    )
    .unwrap();
    let quick = ["--no-cache", "--tests", "50", "--synth-budget", "5"];
    let o = peephole()
        .args(["check", "--all"])
        .args(quick)
        .args(["--model", missing])
        .arg(&clean)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: LLM proposer off")
            && stderr(&o).contains("failing the check"),
        "{}",
        stderr(&o)
    );
    let o = peephole()
        .arg("opt")
        .args(quick)
        .args(["--model", missing])
        .arg(&clean)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: LLM proposer off"),
        "{}",
        stderr(&o)
    );

    // No assembler on PATH: the validator cannot run.
    let o = peephole()
        .env("PATH", dir.path())
        .args(["opt", "--propose", "rules", "--no-cache", "--tests", "50"])
        .arg("fixtures/handwritten/inefficient.s")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the validator could not assemble"),
        "{}",
        stderr(&o)
    );
}
