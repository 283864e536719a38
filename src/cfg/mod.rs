//! Control flow: functions, basic blocks, and liveness over them.

pub mod blocks;
pub mod liveness;
pub mod returns;

pub use blocks::{functions, functions_with, Block, BlockInsn, Function, Succ};
pub use returns::Abi;
