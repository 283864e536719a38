//! Control flow: functions, basic blocks, and liveness over them.

pub mod blocks;
pub mod liveness;

pub use blocks::{functions, Block, BlockInsn, Function, Succ};
