//! `peephole hook install [--force]`: a plain git pre-commit hook for
//! repositories that do not use the pre-commit framework (those use
//! `.pre-commit-hooks.yaml` at the root of this repository instead).
//!
//! The hook checks the STAGED content of every staged `.s`/`.S` file with
//! `peephole check --staged` and blocks the commit when a verified
//! improvement exists (or a file cannot be checked).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    #[command(subcommand)]
    pub action: HookAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum HookAction {
    /// Write a git pre-commit hook that runs `peephole check --staged` on the
    /// staged .s/.S files.
    Install(InstallArgs),
}

#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Overwrite an existing pre-commit hook.
    #[arg(long)]
    pub force: bool,
    /// Extra arguments for `peephole check`, after `--` (e.g. `-- --tests 200`).
    #[arg(last = true, value_name = "CHECK_ARGS")]
    pub check_args: Vec<String>,
}

/// Marks hooks written by this command.
pub const MARKER: &str = "# Installed by `peephole hook install`.";

/// Quote for a POSIX shell: `'...'` with embedded quotes escaped.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook script. `exe` is the peephole binary to run (an absolute path,
/// or `None` to use `peephole` from PATH); when the absolute path no longer
/// exists at commit time, PATH is tried.
pub fn script(exe: Option<&Path>, check_args: &[String]) -> String {
    let exe = exe.map_or_else(|| "peephole".to_string(), |p| p.display().to_string());
    let extra: String = check_args
        .iter()
        .map(|a| format!(" {}", sh_quote(a)))
        .collect();
    format!(
        r#"#!/bin/sh
{MARKER}
# Checks the staged content of staged AArch64 assembly files (.s, .S) with
# `peephole check --staged` and blocks the commit when a verified improvement
# exists. Apply the suggestions with `peephole check --fix FILE...` and
# re-stage; bypass once with `git commit --no-verify`.
peephole={exe}
if [ ! -x "$peephole" ]; then
  peephole=peephole
fi
if ! command -v "$peephole" >/dev/null 2>&1; then
  echo "peephole pre-commit hook: cannot find the peephole binary (tried "{exe}" and PATH)" >&2
  exit 1
fi
# git may give a relative index path; peephole runs git from each file's directory.
case "${{GIT_INDEX_FILE:-}}" in
  '' | /*) ;;
  *) GIT_INDEX_FILE="$(pwd)/$GIT_INDEX_FILE"; export GIT_INDEX_FILE ;;
esac
if git diff --cached --quiet --diff-filter=ACMR -- '*.s' '*.S'; then
  exit 0
fi
git diff --cached --name-only -z --diff-filter=ACMR -- '*.s' '*.S' |
  xargs -0 "$peephole" check --staged{extra} --
status=$?
if [ "$status" -ne 0 ]; then
  echo "peephole: commit blocked (apply with \`peephole check --fix FILE...\` and re-stage, or commit with --no-verify)" >&2
  exit 1
fi
exit 0
"#,
        exe = sh_quote(&exe)
    )
}

/// The hooks directory of the repository around the current directory
/// (honours `core.hooksPath`).
fn hooks_dir() -> Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "not inside a git repository: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches(['\n', '\r']));
    Ok(if dir.is_relative() {
        std::env::current_dir()?.join(dir)
    } else {
        dir
    })
}

fn install(a: &InstallArgs) -> Result<super::Status> {
    let dir = hooks_dir()?;
    let path = dir.join("pre-commit");
    if path.exists() && !a.force {
        bail!(
            "{} already exists; not overwriting it (use --force)",
            path.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    crate::report::write_atomic(&path, script(exe.as_deref(), &a.check_args).as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    eprintln!("peephole: installed {}", path.display());
    Ok(super::Status::Done)
}

pub fn run(a: &HookArgs) -> Result<super::Status> {
    match &a.action {
        HookAction::Install(i) => install(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        let s = script(
            Some(Path::new("/x y/peephole")),
            &["--tests".into(), "200".into()],
        );
        assert!(s.contains("peephole='/x y/peephole'"));
        assert!(s.contains("check --staged '--tests' '200' --"));
    }
}
