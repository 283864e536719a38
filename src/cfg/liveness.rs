//! Backward liveness over a function's blocks, to a fixed point.

use super::blocks::{Function, Succ};
use crate::semantics::LocSet;

/// What is live on entry to a successor of block `from`.
fn succ_live(f: &Function, from: usize, s: &Succ) -> LocSet {
    match s {
        Succ::Block(i) => f.blocks[*i].live_in,
        // What the block's `ret` hands back (annotation or ABI).
        Succ::Return => f.blocks[from]
            .insns
            .last()
            .and_then(|bi| bi.returns)
            .unwrap_or_else(LocSet::at_return),
        Succ::Unknown => LocSet::ALL,
    }
}

/// Fill in `live_in`/`live_out` of every block of `f`.
pub fn solve(f: &mut Function) {
    // Per-block transfer summary: live_in = gen ∪ (live_out − kill).
    let summaries: Vec<(LocSet, LocSet)> = f
        .blocks
        .iter()
        .map(|b| {
            let (mut gen, mut kill) = (LocSet::EMPTY, LocSet::EMPTY);
            for bi in b.insns.iter().rev() {
                let e = bi.effects();
                gen = e.live_before(gen);
                kill = kill.union(e.writes);
            }
            (gen, kill)
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..f.blocks.len()).rev() {
            let out = f.blocks[i]
                .succs
                .iter()
                .fold(LocSet::EMPTY, |acc, s| acc.union(succ_live(f, i, s)));
            let (gen, kill) = summaries[i];
            let inn = gen.union(out.minus(kill));
            let b = &mut f.blocks[i];
            if out != b.live_out || inn != b.live_in {
                b.live_out = out;
                b.live_in = inn;
                changed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::asm::Source;
    use crate::cfg::{functions, Succ};
    use crate::semantics::LocSet;

    fn set(s: &str) -> LocSet {
        LocSet::parse_list(s).unwrap()
    }

    fn funcs(text: &str) -> Vec<crate::cfg::Function> {
        functions(&Source::parse("t.s", text.to_string()).unwrap())
    }

    #[test]
    fn flags_from_cmp_live_until_branch() {
        let f = &funcs(
            "\t.globl f\n\t.type f, %function\nf:\n\tcmp x0, x1\n\tb.lt .L2\n\tmov x0, #1\n\tret\n.L2:\n\tmov x0, x1\n\tret\n",
        )[0];
        assert_eq!(f.blocks.len(), 3);
        assert_eq!(f.blocks[0].succs, vec![Succ::Block(2), Succ::Block(1)]);
        let after = f.blocks[0].live_after_each();
        assert!(after[0].contains(crate::semantics::Loc::Nzcv));
        assert!(!f.blocks[0].live_out.contains(crate::semantics::Loc::Nzcv));
        // x0, x1 read by cmp; x1 also flows to .L2
        assert!(set("x0,x1").is_subset(f.blocks[0].live_in));
        // NZCV is not live after ret-reaching blocks.
        assert!(!f.blocks[1].live_in.contains(crate::semantics::Loc::Nzcv));
    }

    #[test]
    fn csel_and_cset_consume_flags() {
        let f = &funcs("f:\n\tcmp w0, #3\n\tcset w2, eq\n\tcsel w0, w1, w2, lt\n\tret\n")[0];
        let after = f.blocks[0].live_after_each();
        assert!(after[0].contains(crate::semantics::Loc::Nzcv));
        assert!(after[1].contains(crate::semantics::Loc::Nzcv));
        assert!(!after[2].contains(crate::semantics::Loc::Nzcv));
        assert_eq!(
            f.blocks[0].live_in.intersect(set("x0,x1,x2,nzcv")),
            set("x0,x1")
        );
    }

    #[test]
    fn w_write_kills_whole_x() {
        let f = &funcs("f:\n\tmov w0, w1\n\tret\n")[0];
        assert!(!f.blocks[0].live_in.contains(crate::semantics::Loc::X(0)));
        assert!(f.blocks[0].live_in.contains(crate::semantics::Loc::X(1)));
    }

    #[test]
    fn calls_clobber_caller_saved_and_read_arguments() {
        let f = &funcs("f:\n\tmov x9, #1\n\tmov x19, #2\n\tmov x0, #3\n\tbl g\n\tret\n")[0];
        let after = f.blocks[0].live_after_each();
        // x9 is dead across the call (caller-saved), x19 survives it, x0 is an argument.
        assert!(!after[0].contains(crate::semantics::Loc::X(9)));
        assert!(after[1].contains(crate::semantics::Loc::X(19)));
        assert!(after[2].contains(crate::semantics::Loc::X(0)));
        assert_eq!(f.blocks.len(), 1, "bl does not end a block");
    }

    #[test]
    fn calls_to_functions_in_the_same_file_keep_everything_live() {
        // gcc -O2 (IPA-RA) keeps values in caller-saved registers across calls
        // to functions it compiled; a dead-looking write before such a call is not dead.
        let f = funcs("\t.type put, %function\nput:\n\tret\n\t.type f, %function\nf:\n\tadd w11, w11, 1\n\tbl put\n\tbl printf\n\tret\n");
        let after = f[1].blocks[0].live_after_each();
        assert!(
            after[0].contains(crate::semantics::Loc::X(11)),
            "live across the local call"
        );
        assert!(
            !after[1].contains(crate::semantics::Loc::X(11)),
            "AAPCS for the external call"
        );
    }

    #[test]
    fn ret_and_unknown_exits() {
        let f = &funcs("f:\n\tmov x9, #1\n\tret\n")[0];
        assert_eq!(f.blocks[0].live_out, LocSet::at_return());
        let f = &funcs("f:\n\tmov x9, #1\n\tbr x3\n")[0];
        assert_eq!(f.blocks[0].live_out, LocSet::ALL);
        // tail call to an unknown function: everything live
        let f = &funcs("f:\n\tmov x9, #1\n\tb g\n")[0];
        assert_eq!(f.blocks[0].live_out, LocSet::ALL);
    }

    #[test]
    fn loops_reach_fixed_point_and_numeric_labels() {
        let f = &funcs("f:\n\tmov x2, #0\n1:\n\tadd x2, x2, x1\n\tsubs x0, x0, #1\n\tb.ne 1b\n\tmov x0, x2\n\tret\n")[0];
        assert_eq!(f.blocks.len(), 3);
        assert_eq!(f.blocks[1].succs, vec![Succ::Block(1), Succ::Block(2)]);
        assert!(set("x0,x1,x2").is_subset(f.blocks[1].live_in));
        assert!(!f.blocks[0].live_in.contains(crate::semantics::Loc::X(2)));
    }

    #[test]
    fn unreferenced_local_labels_do_not_split() {
        let f = &funcs("f:\n\tmov x0, #1\n.Lunused:\n\tadd x0, x0, #1\n\tret\n")[0];
        assert_eq!(f.blocks.len(), 1);
    }
}
