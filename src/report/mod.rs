//! Reporting: atomic output files, diffs, JSON and SARIF reports, warnings.

pub mod diff;
pub mod output;
pub mod sarif;
pub mod warnings;

pub use output::write_atomic;
