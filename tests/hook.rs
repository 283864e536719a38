//! Pre-commit integration: `peephole hook install` (a plain git hook running
//! `peephole check --staged`) and the pre-commit framework hooks of
//! `.pre-commit-hooks.yaml`, exercised in temporary git repositories with
//! real `git commit` / `pre-commit run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Engine flags that keep each check quick.
const QUICK: [&str; 4] = ["--tests", "200", "--propose", "rules"];

/// Nothing to improve: a single add and return.
const CLEAN: &str = "\t.text\n\t.global\tclean_add\n\t.type\tclean_add, %function\nclean_add:\n\tadd\tx0, x0, x1\n\tret\n\t.size\tclean_add, .-clean_add\n";

fn improvable() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("fixtures/handwritten/inefficient.s")).unwrap()
}

fn unparsable() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("fixtures/errors/unbalanced_bracket.s")).unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command with git's per-invocation environment removed, so a test run
/// from inside a git hook still works on its own repository.
fn cmd(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir);
    for v in ["GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_PREFIX"] {
        c.env_remove(v);
    }
    c
}

fn git(dir: &Path, args: &[&str]) -> Output {
    cmd("git", dir).args(args).output().unwrap()
}

fn git_ok(dir: &Path, args: &[&str]) {
    let o = git(dir, args);
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
}

fn peephole(dir: &Path, args: &[&str]) -> Output {
    cmd(env!("CARGO_BIN_EXE_peephole"), dir)
        .args(args)
        .output()
        .unwrap()
}

/// A fresh repository with one initial commit (so HEAD exists).
fn repo() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    git_ok(d, &["init", "-q", "-b", "main"]);
    git_ok(d, &["config", "user.name", "Hook Test"]);
    git_ok(d, &["config", "user.email", "hook@test.invalid"]);
    git_ok(d, &["config", "commit.gpgsign", "false"]);
    git_ok(d, &["config", "core.hooksPath", ".git/hooks"]);
    std::fs::write(d.join("README"), "test\n").unwrap();
    git_ok(d, &["add", "README"]);
    git_ok(d, &["commit", "-q", "-m", "init"]);
    t
}

/// `repo()` with the plain git hook installed (quick engine flags).
fn hooked_repo() -> tempfile::TempDir {
    let t = repo();
    let mut args = vec!["hook", "install", "--"];
    args.extend(QUICK);
    let o = peephole(t.path(), &args);
    assert!(o.status.success(), "hook install: {}", text(&o));
    t
}

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn commit(dir: &Path, msg: &str) -> Output {
    git(dir, &["commit", "-q", "-m", msg])
}

#[test]
fn install_refuses_to_overwrite_without_force() {
    let t = repo();
    let d = t.path();
    write(d, ".git/hooks/pre-commit", "#!/bin/sh\nexit 0\n");
    let o = peephole(d, &["hook", "install"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(d.join(".git/hooks/pre-commit")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    let o = peephole(d, &["hook", "install", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    let hook = std::fs::read_to_string(d.join(".git/hooks/pre-commit")).unwrap();
    assert!(hook.contains("check --staged"), "{hook}");
    // The running binary, by absolute path.
    let exe = Path::new(env!("CARGO_BIN_EXE_peephole"))
        .canonicalize()
        .unwrap();
    assert!(hook.contains(&exe.display().to_string()), "{hook}");
    // Outside a repository: a clear error.
    let out = tempfile::tempdir().unwrap();
    let o = cmd(env!("CARGO_BIN_EXE_peephole"), out.path())
        .env("GIT_CEILING_DIRECTORIES", out.path().parent().unwrap())
        .args(["hook", "install"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not inside a git repository"),
        "{}",
        text(&o)
    );
}

#[test]
fn improvable_file_blocks_commit_until_fixed() {
    let t = hooked_repo();
    let d = t.path();
    // A name with spaces, in a subdirectory.
    let name = "sub dir/my file.s";
    write(d, name, &improvable());
    git_ok(d, &["add", "--", name]);
    let o = commit(d, "add asm");
    assert!(!o.status.success(), "commit must be blocked: {}", text(&o));
    let out = text(&o);
    assert!(out.contains("verified improvement"), "{out}");
    assert!(out.contains(&format!("+++ b/{name}")), "{out}");
    assert!(out.contains("+\tlsl\tx0, x0, #3"), "{out}");
    assert!(out.contains("commit blocked"), "{out}");

    let mut args = vec!["check", "--fix"];
    args.extend(QUICK);
    args.push(name);
    let o = peephole(d, &args);
    assert_eq!(o.status.code(), Some(1), "--fix exits 1: {}", text(&o));
    let fixed = std::fs::read_to_string(d.join(name)).unwrap();
    assert_ne!(fixed, improvable());
    assert!(fixed.contains("lsl\tx0, x0, #3"), "{fixed}");
    git_ok(d, &["add", "--", name]);
    let o = commit(d, "add asm, fixed");
    assert!(o.status.success(), "fixed file must commit: {}", text(&o));
}

#[test]
fn clean_file_passes_and_commits() {
    let t = hooked_repo();
    let d = t.path();
    write(d, "clean.s", CLEAN);
    let mut args = vec!["check"];
    args.extend(QUICK);
    args.push("clean.s");
    let o = peephole(d, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    git_ok(d, &["add", "clean.s"]);
    let o = commit(d, "clean");
    assert!(o.status.success(), "{}", text(&o));
    // Commits without assembly never run the check.
    write(d, "notes.txt", "x\n");
    git_ok(d, &["add", "notes.txt"]);
    let o = commit(d, "notes");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn unparsable_file_fails_with_one_clear_message() {
    let t = hooked_repo();
    let d = t.path();
    write(d, "bad.s", &unparsable());
    let o = peephole(d, &["check", "bad.s"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let hits: Vec<&str> = stderr.lines().filter(|l| l.contains("bad.s:")).collect();
    assert_eq!(hits.len(), 1, "{stderr}");
    assert!(hits[0].contains("bad.s:7:"), "{stderr}");
    assert!(o.stdout.is_empty(), "no diff on error");
    git_ok(d, &["add", "bad.s"]);
    let o = commit(d, "bad");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("bad.s:7:"), "{}", text(&o));
}

#[test]
fn only_staged_content_is_checked() {
    // Improvable content staged, clean content in the working tree: blocked.
    let t = hooked_repo();
    let d = t.path();
    write(d, "a.S", &improvable());
    git_ok(d, &["add", "a.S"]);
    write(d, "a.S", CLEAN);
    let o = commit(d, "staged improvable");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("+\tlsl\tx0, x0, #3"), "{}", text(&o));
    // The working file is untouched by the check.
    assert_eq!(std::fs::read_to_string(d.join("a.S")).unwrap(), CLEAN);

    // Clean content staged, improvable content in the working tree: passes.
    let t = hooked_repo();
    let d = t.path();
    write(d, "b.s", CLEAN);
    git_ok(d, &["add", "b.s"]);
    write(d, "b.s", &improvable());
    let o = commit(d, "staged clean");
    assert!(o.status.success(), "{}", text(&o));
    let committed = git(d, &["show", "HEAD:b.s"]);
    assert_eq!(String::from_utf8_lossy(&committed.stdout), CLEAN);
}

/// An FP load pair: `ldp` is faster and the tests accept it, but floating
/// point has no executable semantics, so it is tested, never proved.
const FP_PAIR: &str = "\t.text\n\t.global\tfp_pair\n\t.type\tfp_pair, %function\nfp_pair:\n\tldr\td0, [x0]\n\tldr\td1, [x0, #8]\n\tfadd\td0, d0, d1\n\tret\n\t.size\tfp_pair, .-fp_pair\n";

/// `--require-proof` end to end: `check` and the hook installed with it
/// block a commit only on proved improvements; a tested-only one passes.
#[test]
fn require_proof_blocks_only_proved_improvements() {
    let t = repo();
    let d = t.path();
    write(d, "fp.s", FP_PAIR);
    let check = |extra: &[&str]| {
        let mut args = vec!["check"];
        args.extend(QUICK);
        args.extend(extra);
        args.push("fp.s");
        peephole(d, &args)
    };
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("tested; not proved (`ldr d0"),
        "{}",
        text(&o)
    );
    let o = check(&["--require-proof"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let mut args = vec!["hook", "install", "--"];
    args.extend(QUICK);
    args.push("--require-proof");
    let o = peephole(d, &args);
    assert!(o.status.success(), "hook install: {}", text(&o));
    let hook = std::fs::read_to_string(d.join(".git/hooks/pre-commit")).unwrap();
    assert!(hook.contains("'--require-proof'"), "{hook}");
    git_ok(d, &["add", "fp.s"]);
    let o = commit(d, "tested-only improvement");
    assert!(o.status.success(), "{}", text(&o));
    write(d, "x.s", &improvable());
    git_ok(d, &["add", "x.s"]);
    let o = commit(d, "proved improvement");
    assert!(!o.status.success(), "must be blocked: {}", text(&o));
    let out = text(&o);
    assert!(out.contains("+\tlsl\tx0, x0, #3"), "{out}");
    assert!(out.contains("200 tests, proved)"), "{out}");
    assert!(!out.contains("not proved"), "{out}");
}

/// Run `cargo` with `args` in `dir`; panics on failure.
fn cargo_ok(dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let o = cmd(cargo, dir).args(args).output().unwrap();
    assert!(o.status.success(), "cargo {args:?}: {}", text(&o));
}

/// The pre-commit framework (https://pre-commit.com, Debian package
/// `pre-commit`) using this repository's `.pre-commit-hooks.yaml` at its
/// committed HEAD, with hook id `peephole`.
///
/// `language: rust` makes pre-commit run `cargo install --path .` on its
/// clone with CARGO_HOME set to a fresh per-environment directory. Cargo's
/// fingerprints of crates.io dependencies include the absolute path of their
/// sources (under CARGO_HOME), so that build can never reuse `target/release`
/// of `cargo build --release` (and, sharing its file names, would invalidate
/// it). Instead everything persistent lives under
/// `<target>/pre-commit-test/`: a `cargo vendor` copy of the dependencies at
/// a fixed path (made offline from the local cargo cache), wired in by a
/// `.cargo/config.toml` in PRE_COMMIT_HOME (an ancestor of pre-commit's
/// clones), a dedicated CARGO_TARGET_DIR, a clone at a fixed path and
/// PRE_COMMIT_HOME itself (so an unchanged HEAD reuses the installed hook). Cold: a full release build of
/// the dependencies; after a new commit: only this crate is rebuilt.
///
/// Skipped (with a note) when pre-commit is missing or HEAD has no
/// `.pre-commit-hooks.yaml`.
#[test]
fn pre_commit_framework() {
    if Command::new("pre-commit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP pre_commit_framework: `pre-commit` not installed (apt install pre-commit)");
        return;
    }
    let root = Path::new(ROOT);
    if !git(root, &["cat-file", "-e", "HEAD:.pre-commit-hooks.yaml"])
        .status
        .success()
    {
        eprintln!("SKIP pre_commit_framework: HEAD of {ROOT} has no .pre-commit-hooks.yaml");
        return;
    }
    // This project's target directory: the one holding the test binary.
    let target: PathBuf = Path::new(env!("CARGO_BIN_EXE_peephole"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let cache = target.join("pre-commit-test");
    let home = cache.join("home");
    let vendor = cache.join("vendor");
    std::fs::create_dir_all(home.join(".cargo")).unwrap();

    // A clone of this project at its committed HEAD: the hook repository, at
    // a fixed path (pre-commit keys installed environments by URL and rev).
    let proj = cache.join("clone");
    if proj.exists() {
        std::fs::remove_dir_all(&proj).unwrap();
    }
    let o = cmd("git", &cache)
        .args(["clone", "-q", "--no-hardlinks", ROOT])
        .arg(&proj)
        .output()
        .unwrap();
    assert!(o.status.success(), "clone: {}", text(&o));
    let rev = String::from_utf8(git(&proj, &["rev-parse", "HEAD"]).stdout).unwrap();
    let rev = rev.trim();

    // Vendored dependencies, refreshed when Cargo.lock changes.
    let lock = std::fs::read(proj.join("Cargo.lock")).unwrap();
    let stamp = cache.join("vendor.lock");
    if std::fs::read(&stamp).ok().as_ref() != Some(&lock) {
        let start = Instant::now();
        let v = vendor.to_str().unwrap();
        let offline = [
            "vendor",
            "--locked",
            "--offline",
            "--versioned-dirs",
            "-q",
            v,
        ];
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let o = cmd(&cargo, &proj).args(offline).output().unwrap();
        if !o.status.success() {
            // Not all crates in the local cache: download them.
            cargo_ok(&proj, &["vendor", "--locked", "--versioned-dirs", "-q", v]);
        }
        std::fs::write(&stamp, &lock).unwrap();
        eprintln!(
            "pre-commit: cargo vendor took {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    std::fs::write(
        home.join(".cargo/config.toml"),
        format!(
            "# Written by tests/hook.rs: pre-commit's cargo install uses vendored sources.\n\
             [source.crates-io]\nreplace-with = \"vendored-sources\"\n\n\
             [source.vendored-sources]\ndirectory = \"{}\"\n\n[net]\noffline = true\n",
            vendor.display()
        ),
    )
    .unwrap();

    let t = repo();
    let d = t.path();
    let config = format!(
        "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: peephole\n        args: [{}]\n",
        proj.display(),
        QUICK
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    write(d, ".pre-commit-config.yaml", &config);
    write(d, "x.s", &improvable());
    write(d, "clean.s", CLEAN);
    git_ok(d, &["add", "-A"]);

    let pre_commit = |args: &[&str]| {
        let start = Instant::now();
        let o = cmd("pre-commit", d)
            .env("PRE_COMMIT_HOME", &home)
            .env("CARGO_TARGET_DIR", cache.join("cargo-target"))
            .args(args)
            .output()
            .unwrap();
        (o, start.elapsed())
    };
    // The first run installs the hook environment when HEAD is new to it.
    let (o, took) = pre_commit(&["install-hooks"]);
    eprintln!("pre-commit: install-hooks took {:.1}s", took.as_secs_f64());
    assert!(o.status.success(), "install-hooks: {}", text(&o));
    let (o, took) = pre_commit(&["run", "--color", "never", "--files", "x.s"]);
    eprintln!("pre-commit: run on x.s took {:.1}s", took.as_secs_f64());
    let out = text(&o);
    assert!(!o.status.success(), "improvable file must fail: {out}");
    assert!(out.contains("+\tlsl\tx0, x0, #3"), "{out}");
    let (o, took) = pre_commit(&["run", "--color", "never", "--files", "clean.s"]);
    eprintln!("pre-commit: run on clean.s took {:.1}s", took.as_secs_f64());
    assert!(o.status.success(), "clean file must pass: {}", text(&o));
    // Drop environments of earlier revisions (their configs are gone; this
    // one's still exists).
    let _ = pre_commit(&["gc"]);
}
