//! `peephole blocks FILE`: show functions, blocks and liveness.

use crate::asm::Source;
use crate::cfg::{functions_with, Abi, Function, Succ};
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BlocksArgs {
    /// Assembly file (.s, .S after preprocessing).
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Result registers live at a `ret` without a `// peephole: live-out` annotation.
    #[arg(long, value_enum, env = "PEEPHOLE_ABI", default_value_t = Abi::default())]
    pub abi: Abi,
}

pub fn run(args: &BlocksArgs) -> Result<super::Status> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("{}: cannot read", args.file.display()))?;
    let rendered;
    let src = if crate::elf::is_elf(&bytes) {
        let bin = crate::elf::Binary::from_bytes(bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        rendered = crate::elf::render(&bin)?;
        rendered.source.clone()
    } else {
        Source::from_bytes(&args.file.display().to_string(), bytes)?
    };
    let funcs = functions_with(&src, args.abi);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&funcs)?);
    } else {
        print!("{}", render(&funcs));
    }
    Ok(super::Status::Done)
}

/// Human-readable listing (also used by snapshot tests).
pub fn render(funcs: &[Function]) -> String {
    let mut out = String::new();
    for f in funcs {
        let _ = writeln!(out, "function {}", f.name);
        for b in &f.blocks {
            // Numeric local labels are unique internally as `N@stmt`; show `N`.
            let label = b
                .label
                .as_deref()
                .map(|l| format!(" {}", l.split('@').next().unwrap_or(l)))
                .unwrap_or_default();
            let _ = writeln!(out, "  block {}{label}", b.index);
            let _ = writeln!(out, "    live-in:  {}", b.live_in);
            for bi in &b.insns {
                let frozen = if bi.frozen { "  [cfi]" } else { "" };
                let _ = writeln!(out, "    {:>5}  {}{frozen}", bi.line, bi.insn);
            }
            let _ = writeln!(out, "    live-out: {}", b.live_out);
            let succs: Vec<String> = b
                .succs
                .iter()
                .map(|s| match s {
                    Succ::Block(i) => format!("block {i}"),
                    Succ::Return => "return".into(),
                    Succ::Unknown => "unknown".into(),
                })
                .collect();
            let _ = writeln!(out, "    succs:    {}", succs.join(", "));
        }
    }
    out
}
