//! What the caller observes after a `ret`.
//!
//! AAPCS64 returns results in x0-x7 and v0-v7 and has the callee preserve
//! x19-x29, d8-d15 (kept whole, as v8-v15) and sp; the return address x30 and
//! memory are observed too. Which result registers a function really uses is
//! not in the code: by default every one of them is live at a `ret` (safe for
//! any function), `--abi c` assumes C's results (x0-x1, v0-v3), and a
//! `// peephole: live-out LOCS` comment (see [`crate::asm::LiveOutNote`])
//! states them for one function or one `ret`. Only the result part changes:
//! the preserved state stays live whatever is assumed or annotated.

use crate::semantics::LocSet;

/// Which result registers a `ret` keeps live when no annotation says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Abi {
    /// Every AAPCS64 result register: x0-x7 and v0-v7 (right for any function).
    #[default]
    AapcsConservative,
    /// C functions (AAPCS64 as compilers use it): results in x0-x1 and v0-v3.
    C,
}

impl Abi {
    /// The result registers a `ret` keeps live under this ABI.
    pub fn results(self) -> LocSet {
        match self {
            Abi::AapcsConservative => result_registers(),
            Abi::C => LocSet::x_range(0, 1).union(LocSet::v_range(0, 3)),
        }
    }
}

/// Every register AAPCS64 may return a result in: x0-x7, v0-v7.
pub fn result_registers() -> LocSet {
    LocSet::x_range(0, 7).union(LocSet::v_range(0, 7))
}

/// What stays live at every `ret` whatever the results are: the callee-saved
/// registers, sp, the return address and memory ([`LocSet::at_return`]
/// without its result registers).
pub fn preserved() -> LocSet {
    LocSet::at_return().minus(result_registers())
}

/// Live at a `ret` that returns `results`.
pub fn live_at_return(results: LocSet) -> LocSet {
    preserved().union(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::{ParseError, Source};
    use crate::cfg::{functions, functions_with, Function};
    use crate::semantics::Loc;

    fn parse(text: &str) -> Result<Source, ParseError> {
        Source::parse("t.s", text.to_string())
    }

    fn funcs(text: &str, abi: Abi) -> Vec<Function> {
        functions_with(&parse(text).unwrap_or_else(|e| panic!("{e}")), abi)
    }

    fn set(s: &str) -> LocSet {
        LocSet::parse_list(s).unwrap()
    }

    /// Live after each instruction of the function's first block.
    fn live_after(f: &Function) -> Vec<LocSet> {
        f.blocks[0].live_after_each()
    }

    const TWO: &str = "\t.text\n// peephole: live-out x0\n\t.globl f\n\t.type f, %function\nf:\n\tmov x1, x0\n\tadd x0, x1, #1\n\tret\n\t.size f, .-f\n\t.globl g\n\t.type g, %function\ng:\n\tmov x1, x0\n\tadd x0, x1, #1\n\tret\n";

    #[test]
    fn annotation_before_the_function_applies_to_it_only() {
        let fs = funcs(TWO, Abi::default());
        assert_eq!(fs.len(), 2);
        let (f, g) = (&fs[0], &fs[1]);
        assert_eq!(f.blocks[0].live_out, live_at_return(set("x0")));
        // x1 is dead once `add` has read it; sp, x19-x30, v8-v15, memory stay live.
        let after_add = live_after(f)[1];
        assert!(!after_add.contains(Loc::X(1)));
        assert!(!after_add.contains(Loc::V(0)));
        assert!(after_add.contains(Loc::X(0)));
        assert!(preserved().is_subset(after_add));
        // The next function has no annotation: the conservative default.
        assert_eq!(g.blocks[0].live_out, LocSet::at_return());
        assert!(live_after(g)[1].contains(Loc::X(1)));
    }

    #[test]
    fn annotation_on_a_ret_applies_to_that_ret() {
        let text = "f:\n\tcbz x0, .L1\n\tmov x1, #2\n\tret /* peephole: live-out w0, nzcv */\n.L1:\n\tmov x1, #3\n\tret\n";
        let f = &funcs(text, Abi::default())[0];
        assert_eq!(f.blocks.len(), 3);
        assert_eq!(f.blocks[1].live_out, live_at_return(set("x0,nzcv")));
        assert!(!f.blocks[1].live_after_each()[0].contains(Loc::X(1)));
        assert!(f.blocks[1].insns[1].effects().reads.contains(Loc::Nzcv));
        // The other `ret` keeps the default, and both reach the `cbz`.
        assert_eq!(f.blocks[2].live_out, LocSet::at_return());
        assert!(f.blocks[0].live_out.contains(Loc::Nzcv));
        // `//` style, and a `ret` annotation beats the function's.
        let text = "// peephole: live-out none\nf:\n\tmov x1, #2\n\tret\n.L1:\n\tmov x1, #3\n\tret // peephole: live-out x1\n\tb .L1\n";
        let f = &funcs(text, Abi::default())[0];
        assert_eq!(f.blocks[0].live_out, preserved());
        assert_eq!(f.blocks[1].live_out, live_at_return(set("x1")));
        // `ret x1` still reads its own operand.
        let f = &funcs(
            "f:\n\tmov x1, x30\n\tret x1 // peephole: live-out x0\n",
            Abi::default(),
        )[0];
        assert!(live_after(f)[0].contains(Loc::X(1)));
        // `#` starts a comment only at the start of a line.
        let f = &funcs(
            "# peephole: live-out x2\nf:\n\tmov x1, #1\n\tret\n",
            Abi::default(),
        )[0];
        assert_eq!(f.blocks[0].live_out, live_at_return(set("x2")));
    }

    #[test]
    fn abi_c_returns_x0_x1_v0_v3_and_annotations_beat_it() {
        let text = "f:\n\tmov x2, #1\n\tmov x1, #1\n\tfmov d4, d3\n\tret\n";
        let f = &funcs(text, Abi::C)[0];
        assert_eq!(f.blocks[0].live_out, live_at_return(set("x0-x1,v0-v3")));
        let after = live_after(f);
        assert!(!after[0].contains(Loc::X(2)));
        assert!(after[1].contains(Loc::X(1)));
        assert!(!after[2].contains(Loc::V(4)));
        assert!(after[2].contains(Loc::V(3)) && after[2].contains(Loc::V(8)));
        // The annotation wins over `--abi c`.
        let f = &funcs(TWO, Abi::C);
        assert_eq!(f[0].blocks[0].live_out, live_at_return(set("x0")));
        assert_eq!(f[1].blocks[0].live_out, live_at_return(Abi::C.results()));
    }

    #[test]
    fn conservative_default_is_unchanged() {
        let text = "f:\n\tmov x9, #1\n\tmov x7, #1\n\tret\n";
        let src = parse(text).unwrap();
        let f = &functions(&src)[0];
        assert_eq!(f.blocks[0].live_out, LocSet::at_return());
        assert!(live_after(f)[1].contains(Loc::X(7)));
        // The `ret`'s reads are the semantics' own.
        assert_eq!(
            f.blocks[0].insns[2].effects().reads,
            crate::semantics::effects(&f.blocks[0].insns[2].insn).reads
        );
        let g = &functions_with(&src, Abi::AapcsConservative)[0];
        assert_eq!(g.blocks[0].live_in, f.blocks[0].live_in);
    }

    #[test]
    fn malformed_or_misplaced_annotations_are_errors_with_their_line() {
        let bad = [
            (
                "f:\n\tmov x0, #1\n\tret // peephole: live-out x99\n",
                3,
                "x99",
            ),
            ("f:\n\tret // peephole: live-out\n", 2, "needs locations"),
            (
                "f:\n\tret // peephole: live-out x0 and x1\n",
                2,
                "unknown register",
            ),
            (
                "// peephole: liveout x0\nf:\n\tret\n",
                1,
                "unknown annotation",
            ),
            (
                "f:\n\tmov x0, #1 // peephole: live-out x0\n\tret\n",
                2,
                "not on another instruction",
            ),
            (
                "f:\n\tmov x0, #1\n\t// peephole: live-out x0\n\tret\n",
                3,
                "line 4",
            ),
            (
                "f:\n\tcbz x0, 1f\n/* peephole: live-out x0 */\n1:\n\tret\n",
                3,
                "follows it",
            ),
            (
                "f:\n\tret\n// peephole: live-out x0\n",
                3,
                "no function follows",
            ),
        ];
        for (text, line, says) in bad {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("t.s:{line}: ")), "{e}");
            assert!(e.message.contains(says), "{text}: {e}");
        }
        // Comments that merely mention peephole are no annotations, nor are strings.
        assert!(parse("// run peephole: live-out x0\nf:\n\tret\n").is_ok());
        let s = parse("\t.asciz \"// peephole: live-out x99\"\nf:\n\tret\n").unwrap();
        assert!(s.live_out_notes.is_empty());
        // A block comment over several lines: its first line is the note's.
        let f = &funcs(
            "/* peephole: live-out x3\n   (the sum) */\nf:\n\tret\n",
            Abi::default(),
        )[0];
        assert_eq!(f.blocks[0].live_out, live_at_return(set("x3")));
    }

    #[test]
    fn conservative_is_the_semantics_return_set() {
        assert_eq!(
            live_at_return(Abi::default().results()),
            LocSet::at_return()
        );
        assert_eq!(
            preserved().to_string(),
            "x19-x30,sp,v8-v15,mem",
            "callee-saved, return address, memory"
        );
        assert_eq!(
            live_at_return(Abi::C.results()).to_string(),
            "x0,x1,x19-x30,sp,v0-v3,v8-v15,mem"
        );
    }
}
