//! Cost models: estimated cycles of a straight-line block on a chosen core.
//!
//! Two models implement [`CostModel`]: [`mca::McaModel`] drives LLVM's
//! `llvm-mca` (the real per-core scheduling models, preferred), and
//! [`builtin::BuiltinModel`] is a small latency/throughput table used when
//! `llvm-mca` is not installed, so the tool still works, and says so in
//! [`CostModel::name`].

pub mod builtin;
pub mod mca;
mod mca_input;
mod mca_output;

use crate::asm::insn::Insn;
use serde::Serialize;

pub use builtin::BuiltinModel;
pub use mca::McaModel;

/// Estimated cost of one block.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// Estimated cycles per iteration of the block in steady state.
    pub cycles: f64,
    pub instructions: usize,
}

impl Cost {
    /// A rewrite is worth applying if it lowers cycles, or keeps them and
    /// lowers the instruction count.
    pub fn improves_on(&self, before: &Cost) -> bool {
        self.cycles < before.cycles - 1e-9
            || ((self.cycles - before.cycles).abs() <= 1e-9
                && self.instructions < before.instructions)
    }

    /// The cost of a block with no instructions.
    pub const ZERO: Cost = Cost {
        cycles: 0.0,
        instructions: 0,
    };
}

/// Something that estimates the cost of straight-line blocks.
///
/// Models score many blocks per call because the real model is an external
/// process: one process for hundreds of candidates is what makes it cheap.
pub trait CostModel: Send + Sync {
    /// What the report prints, e.g. `llvm-mca-19 (neoverse-n1)` or
    /// `builtin (llvm-mca not found)`.
    fn name(&self) -> String;

    /// Costs of `blocks`, in order. Fails as a whole if any block cannot be
    /// scored; the error names the block. Use [`CostModel::cost_each`] to keep
    /// the scores of the others.
    fn cost_many(&self, blocks: &[&[Insn]]) -> anyhow::Result<Vec<Cost>>;

    /// Costs of `blocks`, each with its own result, so that one candidate the
    /// model cannot read (e.g. an instruction the core lacks) does not sink
    /// the rest of the batch.
    fn cost_each(&self, blocks: &[&[Insn]]) -> Vec<anyhow::Result<Cost>> {
        match self.cost_many(blocks) {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(_) => blocks
                .iter()
                .map(|b| self.cost_many(&[b]).map(|v| v[0]))
                .collect(),
        }
    }
}

/// Cores accepted by `--cpu`: each has a scheduling model in LLVM 19 (checked
/// against `llvm-mca-19 -mcpu=help`). The first is the default.
pub const CPUS: &[&str] = &[
    "neoverse-n1",
    "neoverse-n2",
    "neoverse-v1",
    "neoverse-v2",
    "cortex-a53",
    "cortex-a55",
    "cortex-a57",
    "cortex-a72",
    "cortex-a76",
    "cortex-a510",
    "cortex-x1",
    "cortex-x2",
    "apple-m1",
    "ampere1",
    "a64fx",
    "thunderx2t99",
];

/// The default target core.
pub const DEFAULT_CPU: &str = "neoverse-n1";

/// Environment variable naming the `llvm-mca` binary to use.
pub const MCA_ENV: &str = "PEEPHOLE_LLVM_MCA";

/// Check `cpu` against [`CPUS`], with an error listing the valid names.
pub fn validate_cpu(cpu: &str) -> anyhow::Result<()> {
    if CPUS.contains(&cpu) {
        Ok(())
    } else {
        anyhow::bail!("unknown CPU `{cpu}`; valid CPUs: {}", CPUS.join(", "))
    }
}

/// The best available model for `cpu`: `llvm-mca` (from `$PEEPHOLE_LLVM_MCA`,
/// else `llvm-mca-19`, else `llvm-mca` on `PATH`), or the builtin model when
/// none runs. Fails only for an unknown CPU.
pub fn cost_model(cpu: &str) -> anyhow::Result<Box<dyn CostModel>> {
    let explicit = std::env::var(MCA_ENV).ok().filter(|s| !s.is_empty());
    cost_model_using(cpu, explicit.as_deref())
}

/// Like [`cost_model`], but with the `llvm-mca` binary given (`None`: search
/// the usual names). A binary that does not run gives the builtin model.
pub fn cost_model_using(cpu: &str, mca_binary: Option<&str>) -> anyhow::Result<Box<dyn CostModel>> {
    validate_cpu(cpu)?;
    let candidates: Vec<&str> = match mca_binary {
        Some(b) => vec![b],
        None => vec!["llvm-mca-19", "llvm-mca"],
    };
    for bin in candidates {
        if let Some(m) = McaModel::new(cpu, bin)? {
            return Ok(Box::new(m));
        }
    }
    Ok(Box::new(BuiltinModel::new(cpu, "llvm-mca not found")))
}
