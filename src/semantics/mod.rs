//! The project's own semantics of AArch64: what each instruction reads and
//! writes (liveness, dead writes, the dataset builder) and what it computes
//! (`exec`, over a value `domain`; `concrete` is the fast interpreter,
//! `lanes` the same on many tests at once).

pub mod concrete;
pub mod domain;
pub mod effects;
pub mod exec;
pub mod expr;
pub mod inst;
pub mod isa;
pub mod lanes;
pub mod locs;
pub mod transfer;

pub use effects::{effects, Effects, Flow};
pub use locs::{Loc, LocSet};
