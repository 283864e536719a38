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
        proof_timeout: peephole::prove::DEFAULT_TIMEOUT_MS,
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
    // Equivalent on the tests; floating point has no executable semantics,
    // so not proved: exit 3, saying why.
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.starts_with("tested equivalent on 1000 states; not proved (`fmov d0"),
        "{out}"
    );
    assert!(out.contains("has no executable semantics"), "{out}");
}

/// The three answers of a pair the tests accept, by the binary: proved
/// (0), refuted by the solver where the tests miss it (1), tested only (3);
/// `--help` documents the statuses.
#[test]
fn proof_answers_and_their_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let run = |a: &std::path::Path, b: &std::path::Path, live: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_peephole"))
            .args(["verify", "--live-out", live])
            .arg(a)
            .arg(b)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let orig = file("o.s", "lsl x0, x1, #3\n");
    let cand = file("c.s", "add x0, xzr, x1, lsl #3\n");
    assert_eq!(
        run(&orig, &cand, "x0"),
        (Some(0), "proved equivalent\n".into())
    );
    // Reads four bytes more than the original: faults four bytes before
    // unmapped memory, where the tests' pointers never are.
    let orig = file("lw.s", "ldr w0, [x1]\n");
    let cand = file("lx.s", "ldr x0, [x1]\nand x0, x0, #0xffffffff\n");
    let (code, out) = run(&orig, &cand, "x0");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("not equivalent (found by the SMT solver"),
        "{out}"
    );
    assert!(
        out.contains("candidate faults (access to unmapped address"),
        "{out}"
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_peephole"))
        .args(["verify", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("3  tested equivalent"),
        "{help}"
    );
}
