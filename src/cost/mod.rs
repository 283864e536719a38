//! Cost models: estimated cycles of a straight-line block on a chosen core.

use serde::Serialize;

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
}
