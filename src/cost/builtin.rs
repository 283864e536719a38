//! The built-in cost model, for machines without `llvm-mca`.
//!
//! A deliberately simple estimate from a per-mnemonic latency/throughput
//! table (`builtin_timings.tsv`, the latency column of the ISA table in
//! [`crate::semantics::isa`]): a block costs the larger of its critical
//! dependency path (through registers, flags, and store-to-load through
//! memory, as [`effects`] reads and writes them) and its summed reciprocal
//! throughputs. It orders the obvious cases right (`mul` by a constant above
//! a shift, `mul`+`add` above `madd`) and is no substitute for a real
//! scheduling model, which is why [`CostModel::name`] says when it is in use.

use super::{Cost, CostModel};
use crate::asm::insn::Insn;
use crate::semantics::isa::{Class, Opcode};
use crate::semantics::{effects, Effects, Loc, LocSet};
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

/// Locations whose values `insn` waits for: what its effects read, less
/// what they read only for liveness. A plain store "reads" memory because it
/// leaves the rest as it was, but stores do not wait for each other; a call
/// or return reads the ABI's registers on behalf of the code it goes to, and
/// itself waits only for the registers it names (`blr x3`).
fn waits_on(insn: &Insn, e: &Effects) -> LocSet {
    match Opcode::of(&insn.mnemonic).map(Opcode::class) {
        Some(Class::Store | Class::StoreExclusive) => e.reads.minus(LocSet::single(Loc::Mem)),
        Some(Class::Call | Class::Return) => {
            let named: LocSet = insn.regs().filter_map(|r| r.loc()).collect();
            e.reads.intersect(named)
        }
        _ => e.reads,
    }
}

/// Estimated cost of one block.
pub fn block_cost(block: &[Insn]) -> Cost {
    let mut ready: HashMap<Loc, f64> = HashMap::new();
    let mut path: f64 = 0.0;
    let mut resources: f64 = 0.0;
    for insn in block {
        let t = timing(insn);
        let e = effects(insn);
        let start = waits_on(insn, &e)
            .iter()
            .filter_map(|l| ready.get(&l))
            .fold(0.0f64, |a, &b| a.max(b));
        let done = start + t.latency;
        // What may change, not only what surely does: a store's memory and
        // an opaque instruction's everything are what later reads wait on.
        for w in e.clobbers.iter() {
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

    /// The timing table is the ISA table's latency column: a row for a
    /// mnemonic the ISA table does not know is a typo.
    #[test]
    fn timed_mnemonics_are_in_the_isa_table() {
        for name in parse_table(TABLE).unwrap().keys() {
            let known = name == "*" || crate::semantics::isa::Opcode::of(name).is_some();
            assert!(known, "{name}");
        }
    }

    fn cycles(text: &str) -> f64 {
        let block: Vec<Insn> = text
            .split(';')
            .map(|s| Insn::parse_plain(s).unwrap())
            .collect();
        block_cost(&block).cycles
    }

    /// Chains follow the semantics' reads and writes: a store-exclusive's
    /// status register and a store's memory are results later reads wait on.
    #[test]
    fn chains_follow_effects() {
        let through_status = cycles("stxr w3, x1, [x2]; add w4, w3, #1");
        let independent = cycles("stxr w3, x1, [x2]; add w4, w5, #1");
        assert!(
            through_status > independent,
            "{through_status} {independent}"
        );
        let reload = cycles("str w0, [sp, #12]; ldr w1, [sp, #12]");
        assert!(reload > cycles("ldr w1, [sp, #12]"));
        assert!(cycles("fmla v0.4s, v1.4s, v2.4s; fmla v0.4s, v3.4s, v4.4s") > 4.0);
    }
}
