//! The idiom corpus (`fixtures/idioms/`): `opt --propose rules,synth` on
//! every function, the optimized file snapshotted; the optimized corpus must still
//! compute what the original does (`tools/check-idioms.sh` runs it under
//! qemu-aarch64 against `driver.expected`), and most functions get faster.
//!
//! The superoptimizer runs under an evaluation cap, not only a time budget,
//! so what it finds does not depend on the machine's speed.

use std::path::Path;
use std::process::Command;

/// Options that make the run reproducible: a capped, generous search.
const SYNTH: [&str; 8] = [
    "--propose",
    "rules,synth",
    "--synth-budget",
    "60000",
    "--synth-evals",
    "1000000",
    "--tests",
    "300",
];

fn optimize(src: &Path, out: &Path) -> (String, serde_json::Value) {
    let report = out.with_extension("json");
    let o = Command::new(env!("CARGO_BIN_EXE_peephole"))
        .arg("opt")
        .arg(src)
        .args(SYNTH)
        .args(["--no-cache", "-o"])
        .arg(out)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    std::fs::remove_file(report).unwrap();
    (std::fs::read_to_string(out).unwrap(), r)
}

#[test]
fn idioms_get_faster_and_still_compute_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut faster = 0;
    let mut total = 0;
    insta::glob!("../fixtures/idioms", "*.s", |path| {
        let out = dir.path().join(path.file_name().unwrap());
        // Relative to the package root (the tests' working directory), so
        // what the test prints does not depend on where the checkout is.
        let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let (optimized, report) = optimize(rel, &out);
        let s = &report["summary"];
        total += 1;
        if s["cycles_after"].as_f64().unwrap() < s["cycles_before"].as_f64().unwrap() - 1e-9 {
            faster += 1;
        }
        insta::assert_snapshot!(optimized);
    });
    let check = Command::new("tools/check-idioms.sh")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(
        check.success(),
        "the optimized idioms compute something else"
    );
    println!("idioms faster by llvm-mca: {faster} of {total}");
    assert!(total >= 80, "{total} idioms");
    assert!(faster >= 55, "only {faster} of {total} idioms faster");
}
