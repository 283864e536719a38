//! Cutting blocks into windows: the straight-line runs that proposers may
//! replace as a whole.
//!
//! A window never contains a call, an opaque instruction, an instruction that
//! CFI describes, or a directive/macro region between its instructions; it may
//! end with the block's branch (so `cmp`+`b.eq` can become `cbz`).

use crate::cfg::{Block, Function};
use crate::propose::Window;
use crate::semantics::{effects, Flow};

/// Longest window handed to proposers; longer runs are cut into pieces.
pub const MAX_WINDOW: usize = 12;

/// A window and where its instructions are.
#[derive(Clone, Debug)]
pub struct Site {
    pub function: String,
    pub block: usize,
    /// Indices into `Source::stmts` of the window's instructions, in order.
    pub stmts: Vec<usize>,
    /// 1-based source lines of the window's instructions.
    pub lines: Vec<usize>,
    pub window: Window,
}

fn eligible(bi: &crate::cfg::BlockInsn) -> Option<bool> {
    if bi.frozen {
        return None;
    }
    let e = effects(&bi.insn);
    if !e.known {
        return None;
    }
    match e.flow {
        Flow::Next => Some(false),
        Flow::Branch { .. } => Some(true),
        _ => None,
    }
}

/// Windows of one block.
pub fn block_windows(function: &Function, block: &Block) -> Vec<Site> {
    let live_after = block.live_after_each();
    let mut sites = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let flush = |run: &mut Vec<usize>, sites: &mut Vec<Site>| {
        for chunk in run.chunks(MAX_WINDOW) {
            let insns = chunk.iter().map(|&i| block.insns[i].insn.clone()).collect();
            let last = *chunk.last().expect("non-empty chunk");
            sites.push(Site {
                function: function.name.clone(),
                block: block.index,
                stmts: chunk.iter().map(|&i| block.insns[i].stmt).collect(),
                lines: chunk.iter().map(|&i| block.insns[i].line).collect(),
                window: Window {
                    insns,
                    live_out: live_after[last],
                },
            });
        }
        run.clear();
    };
    for (i, bi) in block.insns.iter().enumerate() {
        if bi.barrier_before {
            flush(&mut run, &mut sites);
        }
        match eligible(bi) {
            Some(is_branch) => {
                run.push(i);
                if is_branch {
                    flush(&mut run, &mut sites);
                }
            }
            None => flush(&mut run, &mut sites),
        }
    }
    flush(&mut run, &mut sites);
    // A lone unconditional branch has nothing to improve.
    sites.retain(|s| {
        !(s.window.insns.len() == 1
            && s.window.insns[0].mnemonic == "b"
            && s.window.insns[0].cond.is_none())
    });
    sites
}

/// Windows of every block of every function.
pub fn windows(functions: &[Function]) -> Vec<Site> {
    functions
        .iter()
        .flat_map(|f| f.blocks.iter().flat_map(move |b| block_windows(f, b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Source;
    use crate::cfg::functions;

    fn texts(src: &str) -> Vec<String> {
        let s = Source::parse("t.s", src.to_string()).unwrap();
        windows(&functions(&s))
            .iter()
            .map(|w| w.window.text().replace('\n', "; "))
            .collect()
    }

    #[test]
    fn calls_cfi_and_directives_split_windows() {
        let w = texts(
            "f:\n\t.cfi_startproc\n\tstp x29, x30, [sp, -16]!\n\t.cfi_def_cfa_offset 16\n\tmov x1, x0\n\tadd x1, x1, 0\n\tbl g\n\tmov x2, x0\n\t.p2align 2\n\tmov x3, x2\n\tcmp x3, 0\n\tb.eq .L1\n.L1:\n\tldp x29, x30, [sp], 16\n\tret\n\t.cfi_endproc\n",
        );
        assert_eq!(
            w,
            [
                "mov x1, x0; add x1, x1, 0",
                "mov x2, x0",
                "mov x3, x2; cmp x3, 0; b.eq .L1"
            ]
        );
    }

    #[test]
    fn window_live_out_is_live_after_last_insn() {
        let s = Source::parse("t.s", "f:\n\tmov x1, x0\n\tadd x0, x1, 1\n\tret\n".into()).unwrap();
        let w = windows(&functions(&s));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].window.live_out, crate::semantics::LocSet::at_return());
        assert_eq!(w[0].lines, [2, 3]);
    }
}
