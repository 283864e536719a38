//! Reporting: atomic output files, diffs, JSON reports.

pub mod output;

pub use output::write_atomic;
