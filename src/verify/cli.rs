//! `peephole verify ORIGINAL CANDIDATE`: judge one rewrite from two files:
//! the tests first, then, when they pass, the SMT proof ([`crate::prove`]).

use super::{Verdict, Verifier, VerifyConfig};
use crate::asm::Insn;
use crate::cli::Status;
use crate::prove::{prove, Proof};
use crate::semantics::LocSet;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Check that CANDIDATE may replace ORIGINAL (each file: one straight-line
/// block, one instruction a line; `//` comments and blank lines allowed).
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXIT_STATUS)]
pub struct VerifyArgs {
    /// File with the original block.
    pub original: PathBuf,
    /// File with the candidate block.
    pub candidate: PathBuf,
    /// Locations observable after the block, e.g. `x0,x2,sp,v1,nzcv`
    /// [default: every register and the flags].
    #[arg(long = "live-out", value_name = "LIST")]
    pub live_out: Option<String>,
    /// Machine states to test.
    #[arg(long, value_name = "N", default_value_t = VerifyConfig::default().tests)]
    pub tests: u32,
    /// Seed for the machine states.
    #[arg(long, value_name = "S", default_value_t = VerifyConfig::default().seed)]
    pub seed: u64,
    /// Time limit of the proof, in milliseconds (0: tests only).
    #[arg(long, value_name = "MS", default_value_t = crate::prove::DEFAULT_TIMEOUT_MS)]
    pub proof_timeout: u64,
}

/// The exit statuses, for `--help` (and [`run`]).
pub const EXIT_STATUS: &str = "Exit status:
  0  proved equivalent (the tests passed, then the SMT solver proved it)
  1  not equivalent: a counterexample from the tests or from the solver
  2  cannot be judged: unsupported or invalid input
  3  tested equivalent, not proved (a timeout, or an instruction outside
     the semantics: the reason is printed)";

/// Parse a block file; errors name `file:line`.
pub fn read_block(path: &Path) -> Result<std::result::Result<Vec<Insn>, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_block(&text, &path.display().to_string()))
}

/// Parse block text: one instruction a line, `//` comments, blank lines.
pub fn parse_block(text: &str, name: &str) -> std::result::Result<Vec<Insn>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("").trim();
        if code.is_empty() {
            continue;
        }
        let insn =
            Insn::parse_plain(code).map_err(|e| format!("{name}:{}: {}: `{code}`", n + 1, e.0))?;
        out.push(insn);
    }
    Ok(out)
}

/// Run the check; the exit status is one of [`EXIT_STATUS`] (see
/// [`Status`]); a validator that cannot run is an error.
pub fn run(args: &VerifyArgs) -> Result<Status> {
    let live_out = match &args.live_out {
        Some(list) => match LocSet::parse_list(list) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("invalid --live-out: {e}");
                return Ok(Status::Failed);
            }
        },
        None => LocSet::ALL,
    };
    let (original, candidate) = match (read_block(&args.original)?, read_block(&args.candidate)?) {
        (Ok(o), Ok(c)) => (o, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("invalid input: {e}");
            return Ok(Status::Failed);
        }
    };
    let verifier = Verifier::new(VerifyConfig {
        tests: args.tests,
        seed: args.seed,
    })?;
    Ok(match verifier.check(&original, &candidate, live_out)? {
        Verdict::Equivalent { tests } => {
            match prove(&original, &candidate, live_out, args.proof_timeout) {
                Proof::Proved => {
                    println!("proved equivalent");
                    Status::Done
                }
                Proof::Counterexample { description, .. } => {
                    println!(
                        "not equivalent (found by the SMT solver; {tests} tests missed it): {description}"
                    );
                    Status::Found
                }
                Proof::Unknown { reason } => {
                    println!("tested equivalent on {tests} states; not proved ({reason})");
                    Status::NotProved
                }
            }
        }
        Verdict::Counterexample { description } => {
            println!("not equivalent: {description}");
            Status::Found
        }
        Verdict::Unsupported { reason } => {
            eprintln!("unsupported: {reason}");
            Status::Failed
        }
        Verdict::Invalid { reason } => {
            eprintln!("invalid: {reason}");
            Status::Failed
        }
    })
}
