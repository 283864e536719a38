//! Measures how fast the cost model scores blocks: splits the committed
//! fixture assembly into straight-line blocks (crudely: at labels and after
//! branches; lines that do not parse are skipped), then times one cold
//! `cost_many` call over all of them and one warm (memoized) call.
//!
//! Run: `cargo run --release --example mca_throughput [CPU]`

use peephole::asm::insn::Insn;
use peephole::cost::cost_model;
use std::time::Instant;

fn blocks_of(text: &str) -> Vec<Vec<Insn>> {
    let mut out = vec![];
    let mut cur: Vec<Insn> = vec![];
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('.') && !line.ends_with(':') {
            continue;
        }
        if line.ends_with(':') {
            out.push(std::mem::take(&mut cur));
            continue;
        }
        if let Ok(i) = Insn::parse_plain(line) {
            let ends = matches!(
                i.mnemonic.as_str(),
                "b" | "br" | "ret" | "cbz" | "cbnz" | "tbz" | "tbnz"
            );
            cur.push(i);
            if ends {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out.push(cur);
    out.retain(|b| !b.is_empty());
    out
}

fn main() -> anyhow::Result<()> {
    let cpu = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "neoverse-n1".into());
    let model = cost_model(&cpu)?;
    let mut blocks = vec![];
    for set in std::fs::read_dir("fixtures/asm")? {
        for f in std::fs::read_dir(set?.path())? {
            let p = f?.path();
            if p.extension().is_some_and(|e| e == "s") {
                blocks.extend(blocks_of(&std::fs::read_to_string(&p)?));
            }
        }
    }
    let refs: Vec<&[Insn]> = blocks.iter().map(|b| b.as_slice()).collect();
    let insns: usize = blocks.iter().map(|b| b.len()).sum();
    let t = Instant::now();
    let results = model.cost_each(&refs);
    let cold = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let t = Instant::now();
    let _ = model.cost_each(&refs);
    let warm = t.elapsed();
    println!(
        "{}: {} blocks ({} insns), {} unscorable; cold {:.2?} ({:.0} blocks/s), warm {:.2?}",
        model.name(),
        refs.len(),
        insns,
        failed,
        cold,
        refs.len() as f64 / cold.as_secs_f64(),
        warm
    );
    Ok(())
}
