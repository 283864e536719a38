//! `peephole check FILE...`: the pre-commit / CI check. Exit 0 when no
//! verified improvement exists, 1 when one does (with the diff), and with
//! `--fix` apply them and still exit 1 so the user re-stages, as formatters do;
//! 2 when the check could not run in full: an error, or a warning such as a
//! proposer that could not be loaded (see [`super::exit_code`]).

use super::opt::{Engine, EngineArgs};
use super::Status;
use crate::asm::Source;
use crate::patch::source::{apply, Edit};
use crate::patch::Rewrite;
use crate::pipeline::optimize::Options;
use crate::pipeline::preprocess::analyse;
use crate::report::{diff::unified, sarif, write_atomic};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Sarif,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Assembly files (.s, .S).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Apply the verified rewrites in place (atomically); still exits 1.
    #[arg(long)]
    pub fix: bool,
    /// Check the staged (index) content of each file, as a pre-commit hook must.
    #[arg(long, conflicts_with = "fix")]
    pub staged: bool,
    /// Analyse every function, not only those changed against HEAD.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Preprocessor include directory for .S files.
    #[arg(short = 'I', value_name = "DIR")]
    pub include: Vec<PathBuf>,
    /// Preprocessor definition for .S files (NAME or NAME=VALUE).
    #[arg(short = 'D', value_name = "DEF")]
    pub define: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Run git in the file's directory; `None` outside a repository.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// New-side line ranges changed against HEAD (or the index against HEAD when
/// `staged`). `None` means "analyse everything" (not in git, or new file).
fn changed_lines(path: &Path, staged: bool) -> Option<Vec<(usize, usize)>> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?.to_str()?;
    git(dir, &["rev-parse", "--verify", "-q", "HEAD"])?;
    git(dir, &["cat-file", "-e", &format!("HEAD:./{name}")])?;
    let mut args = vec!["diff", "-U0", "--no-color"];
    if staged {
        args.push("--cached");
    } else {
        args.push("HEAD");
    }
    args.extend(["--", name]);
    let diff = git(dir, &args)?;
    let mut ranges = Vec::new();
    for line in diff.lines().filter(|l| l.starts_with("@@")) {
        // @@ -a,b +c,d @@
        let new = line.split_whitespace().find(|w| w.starts_with('+'))?;
        let mut it = new[1..].split(',');
        let start: usize = it.next()?.parse().ok()?;
        let len: usize = it.next().map_or(Some(1), |n| n.parse().ok())?;
        if len > 0 {
            ranges.push((start, start + len - 1));
        }
    }
    Some(ranges)
}

/// What checking one file found.
struct FileResult {
    name: String,
    before: String,
    after: String,
    rewrites: Vec<Rewrite>,
}

fn check_file(engine: &Engine, args: &CheckArgs, path: &Path) -> Result<FileResult> {
    let name = path.display().to_string();
    let bytes = if args.staged {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["show", &format!(":./{file}")])
            .output()
            .context("running git show")?;
        anyhow::ensure!(out.status.success(), "{name}: not staged in git");
        out.stdout
    } else {
        std::fs::read(path).with_context(|| format!("{name}: cannot read"))?
    };
    let src = Source::from_bytes(&name, bytes)?;
    let changed = if args.all {
        None
    } else {
        changed_lines(path, args.staged)
    };
    if changed.as_ref().is_some_and(|c| c.is_empty()) {
        return Ok(FileResult {
            name,
            before: src.text.clone(),
            after: src.text,
            rewrites: vec![],
        });
    }
    let is_cpp = path.extension().is_some_and(|e| e == "S");
    let cpp_args: Vec<String> = args
        .include
        .iter()
        .map(|d| format!("-I{}", d.display()))
        .chain(args.define.iter().map(|d| format!("-D{d}")))
        .collect();
    let pre = if is_cpp {
        Some(analyse(&src, path, &cpp_args)?)
    } else {
        None
    };
    let analysed = pre.as_ref().map_or(&src, |p| &p.expanded);
    // Functions touched by the change, by their original line span.
    let funcs = crate::cfg::functions(analysed);
    let orig_line = |stmt: usize| -> Option<usize> {
        match &pre {
            Some(p) => p.literal.get(&stmt).map(|&o| src.stmts[o].line),
            None => Some(analysed.stmts[stmt].line),
        }
    };
    let mut touched: HashMap<String, bool> = HashMap::new();
    for f in &funcs {
        let lines: Vec<usize> = f
            .blocks
            .iter()
            .flat_map(|b| b.insns.iter())
            .filter_map(|i| orig_line(i.stmt))
            .collect();
        let (lo, hi) = (
            lines.iter().min().copied().unwrap_or(0),
            lines.iter().max().copied().unwrap_or(0),
        );
        let hit = changed
            .as_ref()
            .is_none_or(|c| c.iter().any(|&(a, b)| a <= hi && b >= lo));
        touched.insert(f.name.clone(), hit);
    }
    let keep = |site: &crate::pipeline::windows::Site| {
        touched.get(&site.function).copied().unwrap_or(false)
            && pre
                .as_ref()
                .is_none_or(|p| site.stmts.iter().all(|s| p.literal.contains_key(s)))
    };
    let mut outcome = engine.run(analysed, &Options::default(), &keep)?;
    let after = match &pre {
        None => outcome.text.clone(),
        Some(p) => {
            let edits: Vec<Edit> = outcome
                .edits
                .iter()
                .map(|e| Edit {
                    stmts: e.stmts.iter().map(|s| p.literal[s]).collect(),
                    replacement: e.replacement.clone(),
                })
                .collect();
            for r in &mut outcome.rewrites {
                r.lines = r.lines.iter().map(|_| 0).collect();
            }
            // Report lines of the original file.
            for (r, e) in outcome.rewrites.iter_mut().zip(&edits) {
                r.lines = e.stmts.iter().map(|&s| src.stmts[s].line).collect();
            }
            apply(&src, &edits)
        }
    };
    Ok(FileResult {
        name,
        before: src.text,
        after,
        rewrites: outcome.rewrites,
    })
}

pub fn run(args: &CheckArgs) -> Result<Status> {
    let engine = Engine::new(&args.engine)?;
    let mut results = Vec::new();
    for f in &args.files {
        results.push(check_file(&engine, args, f)?);
    }
    let found = results.iter().any(|r| !r.rewrites.is_empty());
    match args.format {
        Format::Sarif => {
            let files: Vec<(String, Vec<Rewrite>)> = results
                .iter()
                .map(|r| (r.name.clone(), r.rewrites.clone()))
                .collect();
            println!("{}", serde_json::to_string_pretty(&sarif::log(&files))?);
        }
        Format::Text => {
            for r in &results {
                if r.rewrites.is_empty() {
                    continue;
                }
                let saved: f64 = r
                    .rewrites
                    .iter()
                    .map(|w| w.cycles_before - w.cycles_after)
                    .sum();
                println!(
                    "{}: {} verified improvement{} (est. {:.2} cycles saved per execution of the changed blocks)",
                    r.name,
                    r.rewrites.len(),
                    if r.rewrites.len() == 1 { "" } else { "s" },
                    saved
                );
                for w in &r.rewrites {
                    println!(
                        "  line {}: {:.2} -> {:.2} cycles ({}, {} tests, {})",
                        w.lines.first().copied().unwrap_or(0),
                        w.cycles_before,
                        w.cycles_after,
                        w.proposer,
                        w.tests,
                        w.evidence
                    );
                }
                print!("{}", unified(&r.name, &r.before, &r.after));
            }
        }
    }
    if args.fix {
        for r in results.iter().filter(|r| !r.rewrites.is_empty()) {
            write_atomic(Path::new(&r.name), r.after.as_bytes())?;
            eprintln!("peephole: fixed {}; re-stage it", r.name);
        }
    }
    Ok(if found { Status::Found } else { Status::Done })
}
