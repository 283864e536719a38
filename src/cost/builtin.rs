//! The built-in cost model, for machines without `llvm-mca`.
//!
//! A deliberately simple estimate from a per-mnemonic latency/throughput
//! table (`builtin_timings.tsv`): a block costs the larger of its critical
//! dependency path (through registers, flags, and store-to-load through
//! memory) and its summed reciprocal throughputs. It orders the obvious
//! cases right (`mul` by a constant above a shift, `mul`+`add` above `madd`)
//! and is no substitute for a real scheduling model, which is why
//! [`CostModel::name`] says when it is in use.

use super::{Cost, CostModel};
use crate::asm::insn::Insn;
use crate::asm::operand::{AddrMode, Operand};
use crate::semantics::Loc;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The timing table, compiled in.
const TABLE: &str = include_str!("builtin_timings.tsv");

/// Latency and reciprocal throughput of one mnemonic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub latency: f64,
    pub rthroughput: f64,
}

/// Parse the timing table; `*` is the default row.
fn parse_table(text: &str) -> Result<HashMap<String, Timing>, String> {
    let mut m = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("builtin_timings.tsv line {}: `{line}`", n + 1);
        if f.len() != 3 {
            return Err(bad());
        }
        let latency = f[1].parse().map_err(|_| bad())?;
        let rthroughput = f[2].parse().map_err(|_| bad())?;
        m.insert(
            f[0].to_string(),
            Timing {
                latency,
                rthroughput,
            },
        );
    }
    if !m.contains_key("*") {
        return Err("builtin_timings.tsv has no `*` default row".into());
    }
    Ok(m)
}

fn table() -> &'static HashMap<String, Timing> {
    static T: OnceLock<HashMap<String, Timing>> = OnceLock::new();
    T.get_or_init(|| parse_table(TABLE).expect("compiled-in timing table is valid"))
}

/// Timing of `insn`'s mnemonic.
pub fn timing(insn: &Insn) -> Timing {
    let t = table();
    t.get(insn.mnemonic.as_str()).copied().unwrap_or(t["*"])
}

/// Instructions whose first operand is read, not written.
const NO_DEST: &[&str] = &[
    "cmp", "cmn", "tst", "ccmp", "ccmn", "fcmp", "fcmpe", "fccmp", "fccmpe", "b", "bl", "br",
    "blr", "ret", "cbz", "cbnz", "tbz", "tbnz", "prfm", "nop", "str", "strb", "strh", "stur",
    "sturb", "sturh", "stp", "stnp", "stlr", "stlrb", "stlrh", "st1", "st2", "st3", "st4", "msr",
];

/// Instructions that set NZCV.
const SETS_FLAGS: &[&str] = &[
    "cmp", "cmn", "tst", "adds", "subs", "ands", "bics", "adcs", "sbcs", "negs", "ngcs", "ccmp",
    "ccmn", "fcmp", "fcmpe", "fccmp", "fccmpe",
];

/// Instructions that read NZCV (besides `b.cond`).
const READS_FLAGS: &[&str] = &[
    "csel", "csinc", "csinv", "csneg", "cset", "csetm", "cinc", "cinv", "cneg", "ccmp", "ccmn",
    "fcsel", "fccmp", "fccmpe", "adc", "adcs", "sbc", "sbcs", "ngc", "ngcs",
];

/// Locations `insn` reads and writes, roughly: enough for dependency chains.
fn reads_writes(insn: &Insn) -> (Vec<Loc>, Vec<Loc>) {
    let m = insn.mnemonic.as_str();
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let is_load = m.starts_with("ld");
    let is_store = m.starts_with("st");
    let dest_count = if NO_DEST.contains(&m) || is_store {
        0
    } else if is_load && (m.starts_with("ldp") || m.starts_with("ldnp") || m.starts_with("ldxp")) {
        2
    } else {
        1
    };
    for (k, op) in insn.operands.iter().enumerate() {
        match op {
            Operand::Reg(r) => {
                if let Some(l) = r.loc() {
                    if k < dest_count {
                        writes.push(l);
                        // Lane inserts and movk keep the rest of the register.
                        if r.lane.is_some() || m == "movk" || m.starts_with("bf") {
                            reads.push(l);
                        }
                    } else {
                        reads.push(l);
                    }
                }
            }
            Operand::RegList { regs, .. } => {
                for r in regs {
                    if let Some(l) = r.loc() {
                        if is_load {
                            writes.push(l)
                        } else {
                            reads.push(l)
                        }
                    }
                }
            }
            Operand::Mem(mem) => {
                if let Some(l) = mem.base.loc() {
                    reads.push(l);
                    if mem.writes_back() {
                        writes.push(l);
                    }
                }
                if let Some((r, _)) = &mem.index {
                    reads.extend(r.loc());
                }
                if let AddrMode::PostIndex(p) = &mem.mode {
                    if let Operand::Reg(r) = p.as_ref() {
                        reads.extend(r.loc());
                    }
                }
                if is_load {
                    reads.push(Loc::Mem);
                }
                if is_store {
                    writes.push(Loc::Mem);
                }
            }
            _ => {}
        }
    }
    if SETS_FLAGS.contains(&m) {
        writes.push(Loc::Nzcv);
    }
    if READS_FLAGS.contains(&m) || insn.cond.is_some() {
        reads.push(Loc::Nzcv);
    }
    (reads, writes)
}

/// Estimated cost of one block.
pub fn block_cost(block: &[Insn]) -> Cost {
    let mut ready: HashMap<Loc, f64> = HashMap::new();
    let mut path: f64 = 0.0;
    let mut resources: f64 = 0.0;
    for insn in block {
        let t = timing(insn);
        let (reads, writes) = reads_writes(insn);
        let start = reads
            .iter()
            .filter_map(|l| ready.get(l))
            .fold(0.0f64, |a, &b| a.max(b));
        let done = start + t.latency;
        for w in writes {
            // A store is visible to a later load after the forwarding delay.
            let at = if w == Loc::Mem { start + 4.0 } else { done };
            ready.insert(w, at);
        }
        path = path.max(done);
        resources += t.rthroughput;
    }
    Cost {
        cycles: path.max(resources),
        instructions: block.len(),
    }
}

/// The built-in model. `reason` says why it is in use (e.g. "llvm-mca not
/// found") and appears in [`CostModel::name`].
pub struct BuiltinModel {
    cpu: String,
    reason: String,
}

impl BuiltinModel {
    pub fn new(cpu: &str, reason: &str) -> Self {
        BuiltinModel {
            cpu: cpu.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl CostModel for BuiltinModel {
    fn name(&self) -> String {
        // The table is generic: say that the CPU choice did not change it.
        format!("builtin ({}; generic core, not {})", self.reason, self.cpu)
    }

    fn cost_many(&self, blocks: &[&[Insn]]) -> anyhow::Result<Vec<Cost>> {
        Ok(blocks.iter().map(|b| block_cost(b)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_has_default() {
        let t = parse_table(TABLE).unwrap();
        assert!(t.contains_key("*"));
        assert!(t["mul"].latency > t["*"].latency);
        assert!(parse_table("mul 3").is_err());
        assert!(parse_table("mul 3 1").is_err());
    }
}
