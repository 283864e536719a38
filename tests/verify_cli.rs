//! `peephole verify` as a library function: exit codes and messages.

use peephole::verify::cli::{parse_block, run, VerifyArgs};
use std::path::PathBuf;

fn args(o: &str, c: &str, live: Option<&str>) -> VerifyArgs {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/verify/cli"));
    VerifyArgs {
        original: dir.join(o),
        candidate: dir.join(c),
        live_out: live.map(str::to_string),
        tests: 300,
        seed: 1,
    }
}

#[test]
fn exit_codes() {
    let code = |a: VerifyArgs| run(&a).unwrap().code();
    assert_eq!(code(args("orig.s", "cand.s", Some("x0,mem"))), 0);
    // x2 is clobbered by the candidate: live by default.
    assert_eq!(code(args("orig.s", "cand.s", None)), 1);
    assert_eq!(code(args("orig.s", "wrong.s", Some("x0"))), 1);
    assert_eq!(code(args("orig.s", "bad.s", None)), 2);
    assert_eq!(code(args("excl.s", "orig.s", None)), 2);
    assert_eq!(code(args("empty.s", "empty.s", None)), 0);
    assert_eq!(code(args("orig.s", "cand.s", Some("x99"))), 2);
    assert!(run(&args("missing.s", "cand.s", None)).is_err());
}

#[test]
fn parse_errors_name_file_and_line() {
    let e = parse_block("nop\n// c\nadd x0, x1,\n", "f.s").unwrap_err();
    assert!(e.starts_with("f.s:3:"), "{e}");
    assert_eq!(parse_block("\n// only a comment\n", "f.s").unwrap(), vec![]);
}

#[test]
fn floating_point_immediates_are_not_symbols() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.s");
    let b = dir.path().join("b.s");
    std::fs::write(&a, "fmov d0, #0.5\nfadd d1, d1, d0\n").unwrap();
    std::fs::write(&b, "fmov d0, #0.5\nfadd d1, d0, d1\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_peephole"))
        .args(["verify", "--live-out", "v0,v1"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
