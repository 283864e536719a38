//! Whole-program comparison: run an original and an optimized AArch64 program
//! under qemu-aarch64 with the user's command and compare what a user sees:
//! exit status, stdout and stderr. This is the end-to-end check behind the
//! block-level validator, not a proof; it catches what block-local testing
//! cannot (a wrong live-out set, a bad patch).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Sysroot for dynamically linked AArch64 programs (Debian's cross libc).
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// What one run showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Exit code, or `None` if killed by a signal.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The result of comparing two programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramVerdict {
    Same,
    /// What differs, for a human (status, or the first differing line).
    Different {
        description: String,
    },
}

/// Build a C or assembly file into a static AArch64 executable with
/// `aarch64-linux-gnu-gcc -static` (so qemu-aarch64 needs no sysroot).
pub fn build(source: &Path, out: &Path, extra_flags: &[&str]) -> Result<()> {
    let o = Command::new("aarch64-linux-gnu-gcc")
        .arg("-static")
        .args(extra_flags)
        .arg("-o")
        .arg(out)
        .arg(source)
        .output()
        .context("running aarch64-linux-gnu-gcc (install gcc-aarch64-linux-gnu)")?;
    if !o.status.success() {
        bail!(
            "building {} failed:\n{}",
            source.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// The command line for `program`: `cmd` with `{}` replaced by the path, or
/// the path appended when there is no `{}`; then run through qemu-aarch64.
fn command_line(cmd: &str, program: &Path) -> String {
    let p = shell_quote(&program.display().to_string());
    let line = if cmd.contains("{}") {
        cmd.replace("{}", &p)
    } else if cmd.trim().is_empty() {
        p
    } else {
        format!("{cmd} {p}")
    };
    format!("qemu-aarch64 -L {SYSROOT} {line}")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run `program` under qemu-aarch64 as `cmd` says, with a time limit.
pub fn observe(program: &Path, cmd: &str, limit: Duration) -> Result<Observed> {
    if !program.exists() {
        bail!("{} does not exist", program.display());
    }
    // `timeout` ends a program that does not terminate (an optimizer bug can
    // make an infinite loop) with status 124.
    let line = command_line(cmd, program);
    let out: Output = Command::new("timeout")
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg("sh")
        .arg("-c")
        .arg(&line)
        .output()
        .with_context(|| format!("running `{line}`"))?;
    Ok(Observed {
        status: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

fn first_difference(what: &str, a: &[u8], b: &[u8]) -> Option<String> {
    if a == b {
        return None;
    }
    let (la, lb) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for (n, (x, y)) in la.lines().zip(lb.lines()).enumerate() {
        if x != y {
            return Some(format!(
                "{what} line {} differs: original `{x}`, optimized `{y}`",
                n + 1
            ));
        }
    }
    Some(format!(
        "{what} differs in length: original {} bytes, optimized {} bytes",
        a.len(),
        b.len()
    ))
}

/// Run both programs with `cmd` (containing `{}` for the program path, or
/// run with the program appended) and compare exit status, stdout, stderr.
pub fn compare_programs(original: &Path, optimized: &Path, cmd: &str) -> Result<ProgramVerdict> {
    compare_programs_within(original, optimized, cmd, Duration::from_secs(60))
}

/// [`compare_programs`] with a time limit per run (a run that exceeds it
/// has status 124).
pub fn compare_programs_within(
    original: &Path,
    optimized: &Path,
    cmd: &str,
    limit: Duration,
) -> Result<ProgramVerdict> {
    let a = observe(original, cmd, limit)?;
    let b = observe(optimized, cmd, limit)?;
    // Error messages may name the program; compare them path-independently.
    let strip = |o: &Observed, p: &Path| -> Vec<u8> {
        String::from_utf8_lossy(&o.stderr)
            .replace(&p.display().to_string(), "{}")
            .into_bytes()
    };
    if a.status != b.status {
        return Ok(ProgramVerdict::Different {
            description: format!(
                "exit status differs: original {:?}, optimized {:?}",
                a.status, b.status
            ),
        });
    }
    if let Some(d) = first_difference("stdout", &a.stdout, &b.stdout)
        .or_else(|| first_difference("stderr", &strip(&a, original), &strip(&b, optimized)))
    {
        return Ok(ProgramVerdict::Different { description: d });
    }
    Ok(ProgramVerdict::Same)
}
