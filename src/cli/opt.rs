//! `peephole opt FILE`: the main job.

use crate::asm::Source;
use crate::report::write_atomic;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct OptArgs {
    /// Assembly file to optimize.
    pub file: PathBuf,
    /// Write the result here (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,
    /// Rewrite FILE itself (atomically).
    #[arg(long)]
    pub in_place: bool,
    /// Proposers to use: comma-separated from `rules`, `llm`, or `none`.
    #[arg(long, default_value = "none", value_delimiter = ',')]
    pub propose: Vec<String>,
}

pub fn run(args: &OptArgs) -> Result<i32> {
    let src = Source::read(&args.file)?;
    for p in &args.propose {
        if p != "none" {
            bail!("unknown proposer `{p}` (available: none)");
        }
    }
    let out = src.text.clone();
    match (&args.output, args.in_place) {
        (Some(path), _) => write_atomic(path, out.as_bytes())?,
        (None, true) => write_atomic(&args.file, out.as_bytes())?,
        (None, false) => std::io::stdout().write_all(out.as_bytes())?,
    }
    Ok(0)
}
