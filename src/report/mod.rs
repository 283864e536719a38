//! Reporting: atomic output files, diffs, JSON and SARIF reports.

pub mod diff;
pub mod output;
pub mod sarif;

pub use output::write_atomic;
