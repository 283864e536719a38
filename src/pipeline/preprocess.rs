//! `.S` files: analyse the C-preprocessed text, rewrite the original.
//!
//! The preprocessor keeps `# N "file"` line markers, so every line of its
//! output maps back to a line of some file. A window is eligible only if each
//! of its instructions comes *literally* from the file being checked: the
//! marker points into that file and the same instruction is written on that
//! line (so nothing from a macro expansion or an include is ever rewritten).

use crate::asm::{Insn, Source, StmtKind};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The preprocessed view of a `.S` file and the way back to the original.
pub struct Preprocessed {
    pub expanded: Source,
    /// Expanded statement index → original statement index, for instructions
    /// that come literally from the original file.
    pub literal: HashMap<usize, usize>,
}

/// Run the C preprocessor (`aarch64-linux-gnu-gcc -E`, markers kept, and
/// comments, so `// peephole: live-out` annotations reach the analysis).
pub fn preprocess(path: &Path, text: &str, cpp_args: &[String]) -> Result<String> {
    let mut cmd = Command::new("aarch64-linux-gnu-gcc");
    cmd.args(["-E", "-C", "-x", "assembler-with-cpp"])
        .args(cpp_args);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        cmd.arg("-I").arg(dir);
    }
    let out = cmd
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .context("running the C preprocessor (aarch64-linux-gnu-gcc -E)")?;
    if !out.status.success() {
        bail!(
            "{}: preprocessing failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Line of the original file for each line of preprocessor output (1-based;
/// `None` for lines from other files or the preprocessor itself). Input was
/// fed on stdin, so the main file is named `<stdin>`.
fn line_map(expanded: &str) -> Vec<Option<usize>> {
    let mut map = Vec::new();
    let mut current: Option<usize> = None;
    for line in expanded.split('\n') {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("# ").or_else(|| t.strip_prefix("#line ")) {
            let mut parts = rest.split_whitespace();
            let n = parts.next().and_then(|n| n.parse::<usize>().ok());
            let file = parts.next().unwrap_or("");
            if let Some(n) = n {
                current = (file == "\"<stdin>\"").then_some(n);
                map.push(None);
                continue;
            }
        }
        map.push(current);
        current = current.map(|c| c + 1);
    }
    map
}

/// Preprocess and pair each literal instruction with its original statement.
pub fn analyse(original: &Source, path: &Path, cpp_args: &[String]) -> Result<Preprocessed> {
    let text = preprocess(path, &original.text, cpp_args)?;
    let map = line_map(&text);
    let expanded = Source::parse(&original.name, text)?;
    // Original instructions by line.
    let mut by_line: HashMap<usize, Vec<(usize, &Insn)>> = HashMap::new();
    for (i, s) in original.stmts.iter().enumerate() {
        if let StmtKind::Insn(insn) = &s.kind {
            by_line.entry(s.line).or_default().push((i, insn));
        }
    }
    let mut literal = HashMap::new();
    for (i, s) in expanded.stmts.iter().enumerate() {
        let StmtKind::Insn(insn) = &s.kind else {
            continue;
        };
        let Some(Some(line)) = map.get(s.line - 1) else {
            continue;
        };
        if let Some(cands) = by_line.get(line) {
            let same: Vec<usize> = cands
                .iter()
                .filter(|(_, o)| *o == insn)
                .map(|(j, _)| *j)
                .collect();
            if same.len() == 1 {
                literal.insert(i, same[0]);
            }
        }
    }
    Ok(Preprocessed { expanded, literal })
}
