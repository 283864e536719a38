//! Which instructions the validator refuses to judge.
//!
//! The sandbox runs a block on made-up machine states with a private copy of
//! memory. Anything whose effect escapes that sandbox (system calls, system
//! registers, barriers, cache and TLB maintenance), depends on other agents
//! (exclusive and acquire/release accesses, atomics) or leaves the block
//! through something other than a direct branch (calls, returns, register
//! branches) cannot be shown equivalent by differential execution, so a block
//! containing one is [`Unsupported`](super::Verdict::Unsupported). The ISA
//! table ([`crate::semantics::isa`]) says which instructions those are; this
//! is the one place that turns that into a verdict.

use crate::asm::{Insn, Operand};
use crate::semantics::isa::{self, Class, Opcode, Sandbox};

/// Why `insn` cannot be sandboxed, or `None` if it can. The ISA table's
/// sandbox column decides ([`isa::sandbox`]).
pub fn unsupported_reason(insn: &Insn) -> Option<String> {
    let m = insn.mnemonic.as_str();
    match isa::sandbox(m) {
        Sandbox::Runs => None,
        Sandbox::Refused | Sandbox::RefusedFamily => Some(format!("`{insn}` cannot be sandboxed")),
        Sandbox::NzcvOnly => {
            let reads = Opcode::of(m).is_some_and(|op| op.class() == Class::SysRegRead);
            let sysreg = if reads { insn.op(1) } else { insn.op(0) };
            let name = sysreg.map(|o| o.to_string().to_ascii_lowercase());
            (name.as_deref() != Some("nzcv"))
                .then(|| format!("`{insn}` accesses a system register"))
        }
        Sandbox::SystemHint => Some(format!("`{insn}` is a hint with system effects")),
    }
}

/// The first refused instruction of `block`, as a reason.
pub fn block_unsupported_reason(block: &[Insn]) -> Option<String> {
    block.iter().find_map(unsupported_reason)
}

/// Branches whose target operand is a label: their targets are the block's
/// exits. Returns the index of the target operand.
pub fn branch_target_operand(insn: &Insn) -> Option<usize> {
    let idx = match insn.mnemonic.as_str() {
        "b" | "bc" => 0,
        "cbz" | "cbnz" => 1,
        "tbz" | "tbnz" => 2,
        _ => return None,
    };
    matches!(insn.op(idx), Some(Operand::Sym(_))).then_some(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<String> {
        unsupported_reason(&Insn::parse_plain(s).unwrap())
    }

    #[test]
    fn refuses_what_escapes_the_sandbox() {
        for s in [
            "svc #0",
            "mrs x0, tpidr_el0",
            "msr fpcr, x0",
            "ldxr x0, [x1]",
            "stlxr w2, x0, [x1]",
            "ldar w0, [x1]",
            "stlrb w0, [x1]",
            "casal x0, x1, [x2]",
            "ldaddal w0, w1, [x2]",
            "swpl x0, x1, [x2]",
            "dmb ish",
            "dsb sy",
            "isb",
            "dc civac, x0",
            "ic ivau, x0",
            "tlbi vmalle1",
            "brk #1",
            "hlt #0",
            "bl foo",
            "blr x3",
            "br x16",
            "ret",
            "paciasp",
            "autiasp",
        ] {
            assert!(reason(s).is_some(), "{s}");
        }
    }

    #[test]
    fn accepts_ordinary_instructions() {
        for s in [
            "add x0, x1, x2",
            "ldr x0, [x1, #8]",
            "ldp x0, x1, [sp], #16",
            "mrs x0, nzcv",
            "msr nzcv, x1",
            "b.eq .L3",
            "cbz w0, .L9",
            "ldrsw x0, [x1]",
            "ldur x0, [x1, #-3]",
            "fadd d0, d1, d2",
            "nop",
            "adrp x0, foo",
        ] {
            assert_eq!(reason(s), None, "{s}");
        }
    }
}
