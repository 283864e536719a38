//! Augmentation: insert a known-removable inefficiency into a window. The
//! original window is then a verified rewrite of the augmented one, so the
//! dataset gains positives whose target is known and checked.

use crate::asm::{Insn, Operand, Reg, RegKind};
use crate::semantics::{effects, Loc, LocSet};

/// Which inefficiency was inserted (also the example's subset tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `str wN, [sp, #k]` followed by `ldr wN, [sp, #k]`: the reference
    /// study's single optimization (remove the reload of a just-stored value).
    StoreReload,
    /// `add xN, xN, #0` after a write of xN.
    AddZero,
    /// `mov xN, xN`.
    SelfMove,
    /// A write to a register that is dead afterwards.
    DeadWrite,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::StoreReload => "store-reload",
            Kind::AddZero => "add-zero",
            Kind::SelfMove => "self-move",
            Kind::DeadWrite => "dead-write",
        }
    }
}

fn parse(s: &str) -> Insn {
    Insn::parse_plain(s).expect("augmentation templates parse")
}

/// Positions after which `reg` was just written by a plain data instruction.
fn written_regs(insns: &[Insn]) -> Vec<(usize, Reg)> {
    insns
        .iter()
        .enumerate()
        .filter_map(|(i, insn)| {
            let e = effects(insn);
            if !e.known || e.flow != crate::semantics::Flow::Next {
                return None;
            }
            match insn.operands.first() {
                Some(Operand::Reg(r))
                    if matches!(r.kind, RegKind::X | RegKind::W)
                        && e.writes.contains(Loc::X(r.num)) =>
                {
                    Some((i, r.clone()))
                }
                _ => None,
            }
        })
        .collect()
}

/// All augmentations of `insns` (each a new window), with `seed` choosing
/// among the possible positions deterministically.
pub fn augment(insns: &[Insn], live_out: LocSet, seed: u64) -> Vec<(Kind, Vec<Insn>)> {
    let mut out = Vec::new();
    let pick = |n: usize, salt: u64| -> usize {
        ((seed ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as usize % n.max(1)
    };
    // Store-reload: after a store of a register to [sp, #k], reload it.
    let stores: Vec<usize> = insns
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            matches!(i.mnemonic.as_str(), "str")
                && matches!(i.operands.as_slice(), [Operand::Reg(r), Operand::Mem(m)]
                    if matches!(r.kind, RegKind::X | RegKind::W) && !m.writes_back() && m.index.is_none())
        })
        .map(|(i, _)| i)
        .collect();
    if !stores.is_empty() {
        let at = stores[pick(stores.len(), 1)];
        let mut w = insns.to_vec();
        let mut reload = insns[at].clone();
        reload.mnemonic = "ldr".into();
        w.insert(at + 1, reload);
        out.push((Kind::StoreReload, w));
    }
    let written = written_regs(insns);
    if !written.is_empty() {
        let (at, r) = &written[pick(written.len(), 2)];
        let mut w = insns.to_vec();
        w.insert(at + 1, parse(&format!("add {r}, {r}, #0")));
        out.push((Kind::AddZero, w));
        let (at, r) = &written[pick(written.len(), 3)];
        if r.kind == RegKind::X {
            let mut w = insns.to_vec();
            w.insert(at + 1, parse(&format!("mov {r}, {r}")));
            out.push((Kind::SelfMove, w));
        }
    }
    // Dead write: a scratch register neither read in the window nor live out.
    let used = insns.iter().fold(LocSet::EMPTY, |acc, i| {
        let e = effects(i);
        acc.union(e.reads).union(e.clobbers)
    });
    if let Some(n) =
        (9u8..=15).find(|&n| !used.contains(Loc::X(n)) && !live_out.contains(Loc::X(n)))
    {
        let at = pick(insns.len() + 1, 4).min(
            insns
                .len()
                .saturating_sub(usize::from(ends_in_branch(insns))),
        );
        let mut w = insns.to_vec();
        w.insert(at, parse(&format!("mov x{n}, #{}", 1 + pick(4000, 5))));
        out.push((Kind::DeadWrite, w));
    }
    out
}

fn ends_in_branch(insns: &[Insn]) -> bool {
    insns
        .last()
        .is_some_and(|i| !matches!(effects(i).flow, crate::semantics::Flow::Next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_each_kind() {
        let w: Vec<Insn> = [
            "str w0, [sp, 12]",
            "add w1, w0, #3",
            "cmp w1, #4",
            "b.lt .L2",
        ]
        .iter()
        .map(|s| Insn::parse_plain(s).unwrap())
        .collect();
        let a = augment(&w, LocSet::parse_list("x0-x7,sp,mem").unwrap(), 7);
        let kinds: Vec<&str> = a.iter().map(|(k, _)| k.name()).collect();
        assert!(
            kinds.contains(&"store-reload")
                && kinds.contains(&"add-zero")
                && kinds.contains(&"dead-write")
        );
        let (_, sr) = a.iter().find(|(k, _)| *k == Kind::StoreReload).unwrap();
        assert_eq!(sr[1].to_string(), "ldr w0, [sp, 12]");
        let (_, dw) = a.iter().find(|(k, _)| *k == Kind::DeadWrite).unwrap();
        assert_eq!(
            dw.last().unwrap().to_string(),
            "b.lt .L2",
            "dead write not after the branch"
        );
    }
}
