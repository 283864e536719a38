//! What rule guards may ask about a window: per-instruction effects and
//! liveness after each instruction, computed once per window and only when a
//! guard first asks. All read/write knowledge comes from
//! [`crate::semantics::effects`]; this module keeps no table of its own.

use super::expr::Facts;
use crate::asm::{Insn, Operand, Reg, RegKind};
use crate::propose::Window;
use crate::semantics::effects::live_after_each;
use crate::semantics::{effects, Effects, Loc, LocSet};
use std::cell::OnceCell;

/// Lazily computed effects and liveness of one window.
pub struct WindowFacts<'w> {
    window: &'w Window,
    cache: OnceCell<(Vec<Effects>, Vec<LocSet>)>,
}

impl<'w> WindowFacts<'w> {
    pub fn new(window: &'w Window) -> Self {
        WindowFacts {
            window,
            cache: OnceCell::new(),
        }
    }

    /// Effects of each instruction and the locations live after it: live
    /// after `i` means read by a later instruction of the window before being
    /// overwritten, or live out of the window.
    fn get(&self) -> &(Vec<Effects>, Vec<LocSet>) {
        self.cache.get_or_init(|| {
            let effs: Vec<Effects> = self.window.insns.iter().map(effects).collect();
            let live_after = live_after_each(&effs, self.window.live_out);
            (effs, live_after)
        })
    }

    /// Facts about the match of `len` instructions starting at `start`.
    pub fn at(&self, start: usize, len: usize) -> MatchFacts<'_, 'w> {
        MatchFacts {
            win: self,
            start,
            len,
        }
    }
}

/// [`Facts`] for one match in a window.
pub struct MatchFacts<'a, 'w> {
    win: &'a WindowFacts<'w>,
    start: usize,
    len: usize,
}

impl MatchFacts<'_, '_> {
    /// Window index of matched instruction `k` (1-based).
    fn index(&self, k: usize) -> Option<usize> {
        (1..=self.len).contains(&k).then(|| self.start + k - 1)
    }
}

impl Facts for MatchFacts<'_, '_> {
    fn dead_after_match(&self, loc: Option<Loc>) -> bool {
        match loc {
            None => true,
            Some(l) => !self.win.get().1[self.start + self.len - 1].contains(l),
        }
    }

    fn dead_insn(&self, k: usize) -> bool {
        let Some(i) = self.index(k) else { return false };
        let (effs, live_after) = self.win.get();
        effs[i].removable_if_dead(live_after[i])
    }

    fn writes_w(&self, k: usize, r: &Reg) -> bool {
        let Some(i) = self.index(k) else { return false };
        let insn: &Insn = &self.win.window.insns[i];
        let e = &self.win.get().0[i];
        let dest_is_r = matches!(insn.operands.first(),
            Some(Operand::Reg(d)) if d.kind == RegKind::W && r.kind == RegKind::W && d.num == r.num);
        // A write-back base register is written as 64 bits.
        let writes_back_r = insn
            .operands
            .iter()
            .any(|o| matches!(o, Operand::Mem(m) if m.writes_back() && m.base.num == r.num));
        dest_is_r
            && e.known
            && e.writes.contains(Loc::X(r.num))
            && !e.clobbers.contains(Loc::Mem)
            && !writes_back_r
    }
}
