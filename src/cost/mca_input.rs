//! Turning blocks into one `llvm-mca` input file with a region per block.
//!
//! Blocks come out of real functions, so they mention labels and symbols that
//! are not defined in the snippet. `llvm-mca` assembles its input with LLVM's
//! assembler, which accepts undefined named symbols (they become relocations
//! that are never resolved) but rejects undefined numeric local labels (`1f`,
//! `2b`). Those are redirected to one anchor label defined at the top of the
//! file; a branch's target does not change its cost.

use crate::asm::insn::Insn;
use crate::asm::operand::{Imm, Mem, Operand};

/// Label that numeric local label references are redirected to.
const ANCHOR: &str = ".Lpeephole_mca_anchor";

/// The `llvm-mca` input text for `blocks` (non-empty ones), and for each
/// line of that text the index of the block it belongs to (`None` outside
/// regions), so that an assembler error can be pinned on its block.
pub struct McaInput {
    pub text: String,
    pub line_block: Vec<Option<usize>>,
}

/// Region name of block `i`.
pub fn region_name(i: usize) -> String {
    format!("b{i}")
}

/// Build the input for the blocks at `indices` of `blocks`.
pub fn render(blocks: &[&[Insn]], indices: &[usize]) -> McaInput {
    let mut text = String::new();
    let mut line_block = Vec::new();
    let mut push = |line: String, b: Option<usize>, text: &mut String| {
        text.push_str(&line);
        text.push('\n');
        line_block.push(b);
    };
    push(format!("{ANCHOR}:"), None, &mut text);
    for &i in indices {
        let name = region_name(i);
        push(format!("# LLVM-MCA-BEGIN {name}"), Some(i), &mut text);
        for insn in blocks[i] {
            push(insn_text(insn), Some(i), &mut text);
        }
        push(format!("# LLVM-MCA-END {name}"), Some(i), &mut text);
    }
    McaInput { text, line_block }
}

/// Canonical text of `insn` with numeric local label references redirected.
pub fn insn_text(insn: &Insn) -> String {
    if !insn.operands.iter().any(mentions_numeric_label) {
        return insn.to_string();
    }
    let mut copy = insn.clone();
    for op in &mut copy.operands {
        redirect(op);
    }
    copy.to_string()
}

fn is_numeric_label_ref(s: &str) -> bool {
    let s = s.trim();
    s.len() >= 2
        && (s.ends_with('f') || s.ends_with('b'))
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

fn mentions_numeric_label(op: &Operand) -> bool {
    match op {
        Operand::Sym(s) => is_numeric_label_ref(s),
        Operand::Imm(Imm {
            value: None, text, ..
        }) => reloc_target(text).is_some_and(is_numeric_label_ref),
        Operand::Mem(Mem {
            offset: Some(Imm {
                value: None, text, ..
            }),
            ..
        }) => reloc_target(text).is_some_and(is_numeric_label_ref),
        _ => false,
    }
}

/// The symbol of a relocation expression `:lo12:sym`.
fn reloc_target(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(':')?;
    let (_, sym) = rest.split_once(':')?;
    Some(sym)
}

fn redirect_reloc(text: &mut String) {
    if let Some(sym) = reloc_target(text) {
        if is_numeric_label_ref(sym) {
            let op_len = text.len() - sym.len();
            text.truncate(op_len);
            text.push_str(ANCHOR);
        }
    }
}

fn redirect(op: &mut Operand) {
    match op {
        Operand::Sym(s) if is_numeric_label_ref(s) => *s = ANCHOR.to_string(),
        Operand::Imm(i) if i.value.is_none() => redirect_reloc(&mut i.text),
        Operand::Mem(Mem {
            offset: Some(i), ..
        }) if i.value.is_none() => redirect_reloc(&mut i.text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Insn {
        Insn::parse_plain(s).unwrap()
    }

    #[test]
    fn numeric_labels_are_redirected() {
        assert_eq!(insn_text(&p("cbz w0, 1f")), format!("cbz w0, {ANCHOR}"));
        assert_eq!(insn_text(&p("b.ne 12b")), format!("b.ne {ANCHOR}"));
        assert_eq!(insn_text(&p("adr x0, 3f")), format!("adr x0, {ANCHOR}"));
        assert_eq!(
            insn_text(&p("add x0, x0, :lo12:1f")),
            format!("add x0, x0, :lo12:{ANCHOR}")
        );
        assert_eq!(insn_text(&p("b .L3")), "b .L3");
        assert_eq!(insn_text(&p("bl fb")), "bl fb");
        assert_eq!(
            insn_text(&p("ldr x0, [x1, :lo12:bar]")),
            "ldr x0, [x1, :lo12:bar]"
        );
    }

    #[test]
    fn lines_map_to_blocks() {
        let a = [p("add x0, x0, #1")];
        let b = [p("nop"), p("nop")];
        let blocks: Vec<&[Insn]> = vec![&a, &[], &b];
        let r = render(&blocks, &[0, 2]);
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines.len(), r.line_block.len());
        assert_eq!(lines[2], "add x0, x0, #1");
        assert_eq!(r.line_block[2], Some(0));
        assert_eq!(lines[5], "nop");
        assert_eq!(r.line_block[5], Some(2));
    }
}
