//! `peephole synth export`: what the superoptimizer learned on some files
//! becomes a rule file that the rule engine loads, and whose rules alone
//! then make the same functions faster, every rewrite checked by the
//! validator, the optimized functions still computing the same values.

use std::path::Path;
use std::process::Command;

const IDIOMS: [&str; 5] = [
    "copy_add",
    "mul9",
    "rotr_shifts",
    "cbz_branch",
    "sext_byte_shifts",
];

fn peephole(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_peephole"));
    c.env("PEEPHOLE_CACHE_DIR", cache);
    c
}

fn rewrites(report: &Path) -> usize {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    r["rewrites"].as_array().unwrap().len()
}

#[test]
fn exported_rules_load_and_reproduce_the_searches() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for name in IDIOMS {
        let st = peephole(cache.path())
            .args([
                "opt",
                &format!("fixtures/idioms/{name}.s"),
                "--propose",
                "rules,synth",
            ])
            .args(["--tests", "300", "-o"])
            .arg(work.path().join("out.s"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let rules = work.path().join("learned.rules");
    let o = peephole(cache.path())
        .args(["synth", "export", "-o"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&rules).unwrap();
    assert!(
        text.matches("\nrule ").count() >= IDIOMS.len() - 1,
        "{text}"
    );
    // The exported rules alone, in a fresh cache: no search.
    let fresh = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut improved = 0;
    for name in IDIOMS {
        let report = work.path().join(format!("{name}.json"));
        let st = peephole(fresh.path())
            .args([
                "opt",
                &format!("fixtures/idioms/{name}.s"),
                "--propose",
                "none",
            ])
            .arg("--rules")
            .arg(&rules)
            .args(["--tests", "300", "--report"])
            .arg(&report)
            .arg("-o")
            .arg(out_dir.join(format!("{name}.s")))
            .status()
            .unwrap();
        assert!(st.success());
        improved += (rewrites(&report) > 0) as usize;
    }
    assert!(
        improved >= IDIOMS.len() - 1,
        "only {improved} rewritten by the exported rules\n{text}"
    );
    // Wrong rule files are refused with file:line by the same loader.
    std::fs::write(
        &rules,
        "rule r\n    add ?d, ?n, #0\n  where bogus(?d)\n  =>\nend\n",
    )
    .unwrap();
    let o = peephole(fresh.path())
        .args([
            "opt",
            "fixtures/idioms/copy_add.s",
            "--propose",
            "none",
            "--rules",
        ])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
