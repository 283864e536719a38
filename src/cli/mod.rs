//! Command-line interface: one module per subcommand.

pub mod blocks;
pub mod check;
pub mod hook;
pub mod opt;
pub mod research;
pub mod synth;

use clap::{Parser, Subcommand};

/// Verified peephole optimization of AArch64 assembly and binaries.
#[derive(Parser, Debug)]
#[command(name = "peephole", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show each function's basic blocks with live-in/live-out sets.
    Blocks(blocks::BlocksArgs),
    /// Optimize a file: propose, verify, cost, patch.
    Opt(opt::OptArgs),
    /// Pre-commit/CI check: exit 1 with a diff when verified improvements exist.
    Check(check::CheckArgs),
    /// Build the fine-tuning dataset from compiled C programs (verified targets only).
    Dataset(research::DatasetArgs),
    /// Evaluate base, fine-tuned and rule proposers on the held-out split.
    Eval(research::EvalArgs),
    /// Git hooks: `hook install` writes a pre-commit hook running `check --staged`.
    Hook(hook::HookArgs),
    /// The superoptimizer's rewrite database: `synth export -o FILE.rules`.
    Synth(synth::SynthArgs),
    /// Check that a candidate block is equivalent to an original one.
    Verify(crate::verify::cli::VerifyArgs),
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Blocks(a) => blocks::run(a),
        Command::Opt(a) => opt::run(a),
        Command::Verify(a) => crate::verify::cli::run(a),
        Command::Check(a) => check::run(a),
        Command::Dataset(a) => research::run_dataset(a),
        Command::Eval(a) => research::run_eval(a),
        Command::Hook(a) => hook::run(a),
        Command::Synth(a) => synth::run(a),
    }
}
