//! Whole-program comparison under qemu-aarch64 on a csmith program.

use peephole::verify::program::{build, compare_programs, ProgramVerdict};
use std::process::Command;

fn tools_present() -> bool {
    ["csmith", "qemu-aarch64", "aarch64-linux-gnu-gcc"]
        .iter()
        .all(|t| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn csmith_program_same_and_altered() {
    if !tools_present() {
        eprintln!("skipping: csmith, qemu-aarch64 or aarch64-linux-gnu-gcc missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("p.c");
    let out = Command::new("csmith")
        .args(["--seed", "1", "--max-funcs", "4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    std::fs::write(&src, &text).unwrap();
    let inc = "-I/usr/include/csmith";
    let (o0, o2, bad) = (
        dir.path().join("o0"),
        dir.path().join("o2"),
        dir.path().join("bad"),
    );
    build(&src, &o0, &[inc, "-O0", "-w"]).unwrap();
    build(&src, &o2, &[inc, "-O2", "-w"]).unwrap();
    // A deliberately altered program: a different final checksum.
    let altered = text.replace(
        "crc32_context ^ 0xFFFFFFFFUL",
        "crc32_context ^ 0xFFFFFFFEUL",
    );
    assert_ne!(altered, text);
    let bad_src = dir.path().join("bad.c");
    std::fs::write(&bad_src, altered).unwrap();
    build(&bad_src, &bad, &[inc, "-O2", "-w"]).unwrap();

    assert_eq!(
        compare_programs(&o0, &o0, "{}").unwrap(),
        ProgramVerdict::Same
    );
    assert_eq!(
        compare_programs(&o0, &o2, "").unwrap(),
        ProgramVerdict::Same
    );
    match compare_programs(&o2, &bad, "{} 1").unwrap() {
        ProgramVerdict::Different { description } => {
            assert!(description.contains("stdout"), "{description}")
        }
        v => panic!("altered program judged {v:?}"),
    }
}
