//! Proving around instructions outside the semantics. A window often
//! holds one (`adrp` of a symbol, a call, an FP instruction) that the
//! rewrite leaves alone, in the context both blocks share. Identical
//! instructions before the part that differs can be left out: what follows
//! is then proved from *every* state, a superset of the states they lead
//! to. Identical instructions after it can be left out too when everything
//! they read is compared: the live-out set grows by their reads.
//!
//! Only as little context as needed is cut (from the last instruction
//! outside the semantics before the differing part, from the first one
//! after it): what the kept context establishes (a constant in a register)
//! is often what makes the rewrite right. A proof of the narrowed pair is a
//! proof of the whole. A difference it finds may be one the cut context
//! rules out, so in general it proves nothing, except when
//! [`Narrowed::refutes`] says the cut context cannot matter.

use super::query::{decode, Decoded};
use crate::asm::Insn;
use crate::semantics::{effects, Flow, Loc, LocSet};

/// The part of a pair to prove instead of the whole.
pub struct Narrowed {
    pub original: Vec<Insn>,
    pub candidate: Vec<Insn>,
    pub live_out: LocSet,
    pub original_decoded: Decoded,
    pub candidate_decoded: Decoded,
    /// Whether a difference of the narrowed pair is one of the whole: no
    /// suffix was cut, and the cut prefix falls through, writes nothing the
    /// kept part reads or writes, and touches memory only if the kept part
    /// does not (so any state of the kept part is reached from some state,
    /// in some memory layout, through the prefix, which cannot fault there).
    pub refutes: bool,
}

fn modelled(insn: &Insn) -> bool {
    decode(std::slice::from_ref(insn)).is_ok()
}

/// The narrowed pair, or `None` when an instruction outside the semantics
/// is in the part that differs.
pub fn narrow(original: &[Insn], candidate: &[Insn], live_out: LocSet) -> Option<Narrowed> {
    let (n, m) = (original.len(), candidate.len());
    let prefix = original
        .iter()
        .zip(candidate)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = original[prefix..]
        .iter()
        .rev()
        .zip(candidate[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let start = original[..prefix]
        .iter()
        .rposition(|i| !modelled(i))
        .map_or(0, |k| k + 1);
    let end = (n - suffix..n)
        .find(|&k| !modelled(&original[k]))
        .unwrap_or(n);
    let cut = n - end;
    let mut live = live_out;
    for i in &original[end..] {
        live = live.union(effects(i).reads);
    }
    let o = original[start..end].to_vec();
    let c = candidate[start..m - cut].to_vec();
    let mut kept = LocSet::EMPTY;
    for e in o.iter().chain(&c).map(effects) {
        kept = kept.union(e.reads).union(e.clobbers);
    }
    let refutes = cut == 0
        && original[..start].iter().map(effects).all(|e| {
            let touches_memory = e.reads.union(e.clobbers).contains(Loc::Mem);
            e.known
                && e.flow == Flow::Next
                && e.clobbers.intersect(kept).is_empty()
                && !(touches_memory && kept.contains(Loc::Mem))
        });
    Some(Narrowed {
        refutes,
        original_decoded: decode(&o).ok()?,
        candidate_decoded: decode(&c).ok()?,
        original: o,
        candidate: c,
        live_out: live,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &str) -> Vec<Insn> {
        s.split(';')
            .map(|l| Insn::parse_plain(l.trim()).unwrap())
            .collect()
    }

    #[test]
    fn cuts_only_up_to_the_instructions_outside_the_semantics() {
        let o = block("adrp x0, sym; mov x2, #8; mul x1, x1, x2; bl f; add x3, x3, #1");
        let c = block("adrp x0, sym; mov x2, #8; lsl x1, x1, #3; bl f; add x3, x3, #1");
        let n = narrow(&o, &c, LocSet::parse_list("x3").unwrap()).unwrap();
        let text = |b: &[Insn]| b.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        // The constant stays: it is what makes the rewrite right.
        assert_eq!(text(&n.original), ["mov x2, #8", "mul x1, x1, x2"]);
        assert_eq!(text(&n.candidate), ["mov x2, #8", "lsl x1, x1, #3"]);
        // What the call reads is compared.
        assert!(n.live_out.contains(crate::semantics::Loc::X(1)));
        // The call may write what the kept part reads: a difference found
        // without it is no refutation.
        assert!(!n.refutes);
        // Outside the semantics in the part that differs: nothing to narrow.
        let c = block("adrp x0, other; mov x2, #8; lsl x1, x1, #3; bl f; add x3, x3, #1");
        assert!(narrow(&o, &c, LocSet::EMPTY).is_none());
    }

    /// A vector loop's body (outside the semantics, and writing nothing the
    /// counter's update reads) before a wrong rewrite of its exit test: the
    /// difference found without the body is one of the whole window.
    #[test]
    fn a_prefix_that_cannot_matter_lets_a_difference_refute() {
        let o = block(
            "add v1.4s, v1.4s, v4.4s; str q6, [x9, x8]; add x8, x8, #16; cmp x8, #256; b.ne .L1",
        );
        let c = block("add v1.4s, v1.4s, v4.4s; str q6, [x9, x8]; add x8, x8, #16; cbnz x8, .L1");
        let n = narrow(&o, &c, LocSet::parse_list("x8").unwrap()).unwrap();
        assert_eq!(n.original.len(), 3);
        assert!(n.refutes);
        // A prefix that writes the counter could set it to anything.
        let o = block("umov w8, v1.s[0]; add x8, x8, #16; cmp x8, #256; b.ne .L1");
        let c = block("umov w8, v1.s[0]; add x8, x8, #16; cbnz x8, .L1");
        assert!(!narrow(&o, &c, LocSet::EMPTY).unwrap().refutes);
    }
}
