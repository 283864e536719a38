//! AArch64 ELF binaries: read, decode, render as assembly our front end
//! parses, and patch accepted rewrites back in place (no instruction moves).
pub mod disasm;
pub mod gas;
pub mod read;

pub use read::{is_elf, Binary, ElfError, Kind};
pub mod render;
pub use render::{render, RenderStats, Rendered};
pub mod patch;
pub use patch::{patch, write_output};
