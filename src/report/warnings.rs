//! Warnings: something failed, the run went on, and its answer may be the
//! poorer for it (the LLM proposer could not be loaded, its adapter could
//! not be merged). Each is printed at once and counted, so that a command
//! that must not pass quietly on a degraded run (`check`) can fail at the
//! end ([`crate::cli::exit_code`] decides).

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Print `peephole: warning: MESSAGE` and count it.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("peephole: warning: {message}");
    COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Warnings given so far by this process.
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}
