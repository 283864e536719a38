//! `peephole synth export`: the superoptimizer's rewrite database as a rule
//! file, so the rule library can grow from what searches found.

use super::Status;
use crate::cache::{write_atomically, Cache};
use crate::propose::rules::RuleProposer;
use crate::propose::synth::db::{Learned, RewriteDb};
use crate::propose::synth::export::rule_file;
use crate::semantics::LocSet;
use crate::verify::{Verifier, VerifyConfig};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    #[command(subcommand)]
    pub command: SynthCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SynthCommand {
    /// Write the learned rewrites as a rule file (`rules/` syntax); each is
    /// checked by the validator first.
    Export {
        /// The rule file to write (atomically).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Validator states per learned rewrite.
        #[arg(long, default_value_t = 1000)]
        tests: u32,
    },
}

pub fn run(a: &SynthArgs) -> Result<Status> {
    match &a.command {
        SynthCommand::Export { output, tests } => export(output, *tests),
    }
}

/// The learned rewrites whose instance the validator accepts.
fn verified(entries: Vec<Learned>, tests: u32) -> Result<Vec<Learned>> {
    let verifier = Verifier::new(VerifyConfig {
        tests,
        ..VerifyConfig::default()
    })?;
    let parse = |v: &[String]| -> Option<Vec<crate::asm::Insn>> {
        v.iter()
            .map(|t| crate::asm::Insn::parse_plain(t).ok())
            .collect()
    };
    let mut kept = Vec::new();
    for l in entries {
        let (Some(orig), Some(first), Ok(live)) = (
            parse(&l.original),
            l.replacements
                .iter()
                .min_by_key(|r| r.len())
                .and_then(|r| parse(r)),
            LocSet::parse_list(&l.live_out),
        ) else {
            continue;
        };
        // A validator that cannot run is an error, not a refusal.
        if verifier.check(&orig, &first, live)?.is_equivalent() {
            kept.push(l);
        }
    }
    Ok(kept)
}

fn export(output: &PathBuf, tests: u32) -> Result<Status> {
    let cache = Cache::open_default()?;
    let entries = RewriteDb::new(Some(cache.clone())).entries();
    let total = entries.len();
    let kept = verified(entries, tests)?;
    let (text, skipped) = rule_file(&kept);
    write_atomically(output, text.as_bytes())
        .with_context(|| format!("writing {}", output.display()))?;
    // What was written must load as rules, or it is of no use.
    let rules = RuleProposer::from_file(output)?;
    eprintln!(
        "peephole: {} rules written to {} from {total} learned rewrites in {} ({} refused by the validator, {skipped} not expressible as rules)",
        rules.len(),
        output.display(),
        cache.dir().display(),
        total - kept.len(),
    );
    Ok(Status::Done)
}
