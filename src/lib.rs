//! `peephole`: an LLM-assisted, verified peephole optimizer for AArch64.
//!
//! The modules follow the pipeline: [`asm`] reads source losslessly,
//! [`semantics`] says what each instruction touches, [`cfg`] splits functions
//! into blocks and computes liveness, [`propose`] asks rules and the LLM for
//! candidates, [`verify`] checks them by differential execution, [`prove`]
//! proves what the tests accepted with an SMT solver, [`cost`] estimates
//! cycles, [`patch`] applies accepted rewrites and [`report`] says what
//! happened. [`pipeline`] drives them; [`cli`] is the command line.

pub mod asm;
pub mod cache;
pub mod cfg;
pub mod cli;
pub mod cost;
pub mod dataset;
pub mod elf;
pub mod patch;
pub mod pipeline;
pub mod propose;
pub mod prove;
pub mod report;
pub mod semantics;
pub mod verify;
