//! `// peephole: live-out` annotations and `--abi` through the command line.

use std::path::Path;
use std::process::{Command, Output};

fn peephole(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peephole"))
        .args(args)
        .env_remove("PEEPHOLE_ABI")
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The `live-out:` line of the (only) block in `blocks` output.
fn live_out(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.contains("live-out:")).expect(&out);
    line.split_whitespace().last().unwrap().to_string()
}

const BODY: &str = "f:\n\tmov x1, x0\n\tadd x0, x1, #1\n\tret\n";

#[test]
fn blocks_honours_the_annotation_and_abi() {
    let d = tempfile::tempdir().unwrap();
    let plain = write(d.path(), "plain.s", BODY);
    let noted = write(
        d.path(),
        "noted.s",
        &format!("// peephole: live-out x0\n{BODY}"),
    );
    // Default: every result register live at `ret`, x1 among them.
    assert_eq!(
        live_out(&peephole(&["blocks", &plain])),
        "x0-x7,x19-x30,sp,v0-v15,mem"
    );
    // The annotation: x0 alone, callee-saved state kept, even with --abi c.
    for abi in ["aapcs-conservative", "c"] {
        assert_eq!(
            live_out(&peephole(&["blocks", &noted, "--abi", abi])),
            "x0,x19-x30,sp,v8-v15,mem"
        );
    }
    assert_eq!(
        live_out(&peephole(&["blocks", &plain, "--abi", "c"])),
        "x0,x1,x19-x30,sp,v0-v3,v8-v15,mem"
    );
    let json = peephole(&["blocks", &noted, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v[0]["blocks"][0]["insns"][2]["returns"],
        "x0,x19-x30,sp,v8-v15,mem"
    );
}

/// `mov xT, #8; mul x0, x0, xT`: the rules turn the multiply into a shift and
/// drop the move only when xT is dead at `ret`.
fn mul8(t: &str) -> String {
    format!("f:\n\tmov {t}, #8\n\tmul x0, x0, {t}\n\tret\n")
}

fn opt(args: &[&str]) -> String {
    let mut all = vec!["opt", "--propose", "rules", "--no-cache", "--tests", "200"];
    all.extend(args);
    let o = peephole(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn opt_rewrites_what_the_annotation_frees() {
    let d = tempfile::tempdir().unwrap();
    let plain = write(d.path(), "plain.s", &mul8("x1"));
    let noted = write(
        d.path(),
        "noted.s",
        &format!("// peephole: live-out x0\n{}", mul8("x1")),
    );
    let out = opt(&[&plain]);
    assert!(out.contains("lsl x0, x0, #3"), "{out}");
    assert!(out.contains("mov x1, #8"), "x1 is a possible result: {out}");
    let out = opt(&[&noted]);
    assert!(out.contains("lsl x0, x0, #3"), "{out}");
    assert!(!out.contains("mov x1"), "{out}");
    // --abi c: x2 is no result; x1 still is.
    let x2 = write(d.path(), "x2.s", &mul8("x2"));
    assert!(opt(&[&x2]).contains("mov x2, #8"));
    assert!(!opt(&[&x2, "--abi", "c"]).contains("mov x2"));
    assert!(opt(&[&plain, "--abi", "c"]).contains("mov x1, #8"));
}

#[test]
fn check_keeps_annotations_through_the_preprocessor() {
    let d = tempfile::tempdir().unwrap();
    let text = format!(
        "#define RESULT x0\n/* peephole: live-out x0 */\n{}",
        mul8("x1")
    );
    let f = write(d.path(), "f.S", &text);
    let o = peephole(&[
        "check",
        "--all",
        "--propose",
        "rules",
        "--no-cache",
        "--tests",
        "200",
        &f,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("-\tmov x1, #8"), "{out}");
    assert!(out.contains("+\tlsl x0, x0, #3"), "{out}");
}

#[test]
fn a_malformed_annotation_is_an_error_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let bad = write(
        d.path(),
        "bad.s",
        "f:\n\tmov x0, #1\n\tret // peephole: live-out x99\n",
    );
    for cmd in ["blocks", "opt"] {
        let o = peephole(&[cmd, &bad]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("{bad}:3: ")), "{cmd}: {err}");
        assert!(err.contains("x99"), "{err}");
    }
}
