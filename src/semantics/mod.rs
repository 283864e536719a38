//! What each instruction reads and writes: the project's own semantics, used
//! for liveness, by the proposers (dead writes) and by the dataset builder.

pub mod effects;
pub mod locs;
pub mod transfer;

pub use effects::{effects, Effects, Flow};
pub use locs::{Loc, LocSet};
