//! Front end: AArch64 GNU-as source text, kept losslessly, with its
//! instructions parsed into a typed model.

pub mod insn;
pub mod operand;
pub mod reg;
pub mod source;

pub use insn::Insn;
pub use operand::{AddrMode, Cond, Imm, Mem, Operand};
pub use reg::{Reg, RegKind};
pub use source::{LiveOutNote, ParseError, Source, Stmt, StmtKind};
