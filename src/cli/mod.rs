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
    /// Pre-commit/CI check: exit 1 with a diff when verified improvements exist, 2 on an error or warning.
    Check(check::CheckArgs),
    /// Build the fine-tuning dataset from compiled C programs (verified targets only).
    ///
    /// The targets come from the teacher proposers `--propose` names (default
    /// here: `rules`; `rules,synth` with a large `--synth-evals` for the
    /// superoptimizer's rewrites) and from deleting instructions.
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

/// What a command concluded. Commands return one; [`Status::code`] is the
/// only place exit statuses are numbered, and [`exit_code`] the only place an
/// error or a warning turns into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exit 0: done (`check`: nothing to improve; `verify`: equivalent).
    Done,
    /// Exit 1: `check` found verified improvements (applied or not);
    /// `verify` found a counterexample.
    Found,
    /// Exit 2: the command could not do its job: an error, an invalid input,
    /// a block the validator cannot judge; for `check`, also any warning.
    Failed,
    /// Exit 3: `verify`: tested equivalent, not proved (see
    /// [`crate::verify::cli::EXIT_STATUS`]).
    NotProved,
}

impl Status {
    pub const fn code(self) -> i32 {
        match self {
            Status::Done => 0,
            Status::Found => 1,
            Status::Failed => 2,
            Status::NotProved => 3,
        }
    }
}

/// Run the parsed command.
pub fn run(cli: &Cli) -> anyhow::Result<Status> {
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

/// Run the parsed command and decide the process's exit status: an error is
/// printed and fails the command; a warning (see
/// [`crate::report::warnings`]) fails `check`, whose passing must mean that
/// the whole check ran (a CI job or a commit hook relies on it), while the
/// other commands have done what was asked and only say so.
pub fn exit_code(cli: &Cli) -> i32 {
    let status = match run(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peephole: error: {e:#}");
            Status::Failed
        }
    };
    let warnings = crate::report::warnings::count();
    let strict = matches!(cli.command, Command::Check(_));
    if strict && warnings > 0 && status != Status::Failed {
        eprintln!(
            "peephole: failing the check: {warnings} warning{} above (it may have missed improvements)",
            if warnings == 1 { "" } else { "s" }
        );
        return Status::Failed.code();
    }
    status.code()
}
