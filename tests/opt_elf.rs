//! `peephole opt` on ELF binaries built here: only patched words change, the
//! file mode is kept, and the patched program behaves like the original.

use std::path::Path;
use std::process::Command;

fn run_qemu(exe: &Path) -> (Option<i32>, Vec<u8>) {
    let o = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(exe)
        .output()
        .unwrap();
    (o.status.code(), o.stdout)
}

fn optimize_binary(cflags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("prog");
    let st = Command::new("aarch64-linux-gnu-gcc")
        .args(cflags)
        .arg("fixtures/c/checksum.c")
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.path().join("prog.opt");
    let report = dir.path().join("r.json");
    let o = Command::new(env!("CARGO_BIN_EXE_peephole"))
        .arg("opt")
        .arg(&exe)
        .arg("-o")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args([
            "--tests",
            "300",
            "--propose",
            "rules",
            "--check-cmd",
            "qemu-aarch64 -L /usr/aarch64-linux-gnu {}",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (std::fs::read(&exe).unwrap(), std::fs::read(&out).unwrap());
    assert_eq!(a.len(), b.len(), "nothing moves");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let words: usize = r["rewrites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["before"].as_array().unwrap().len())
        .sum();
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        changed <= 4 * words,
        "{changed} bytes changed for {words} rewritten words"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&exe).unwrap().permissions().mode(),
        std::fs::metadata(&out).unwrap().permissions().mode()
    );
    assert_eq!(run_qemu(&exe), run_qemu(&out));
}

#[test]
fn gcc_o0_dynamic_binary() {
    optimize_binary(&["-O0"]);
}

#[test]
fn gcc_o2_static_binary() {
    optimize_binary(&["-O2", "-static"]);
}

#[test]
fn binary_input_needs_an_output() {
    let o = Command::new(env!("CARGO_BIN_EXE_peephole"))
        .args(["opt", "/bin/ls"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("AArch64"), "{err}");
}
