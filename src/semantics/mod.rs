//! What each instruction reads and writes: the project's own semantics, used
//! for liveness and by the validator to refuse what it cannot sandbox.

pub mod locs;

pub use locs::{Loc, LocSet};
