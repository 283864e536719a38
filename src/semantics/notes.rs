//! Notes on `code:` lines of the chain-of-code trace: what the project's
//! semantics know about the value an instruction writes, written after the
//! line as a comment (`x9 = 3190  // unused`). Format: `prompts/README.md`.
//!
//! Why: on the held-out split most wrong chain-of-code rewrites kept or
//! deleted the wrong line (docs/eval.md). Whether a line's result is used,
//! and whether its value is already in a register, are facts of the block's
//! dataflow that an interpreter knows exactly and a 135M model guesses; the
//! trace states them so the model decides *how* to rewrite, not *what* is
//! redundant. Every note is exact (never a guess): a wrong note would teach
//! the model to delete live code.
//!
//! The values compared here are the block's symbolic values (expressions of
//! its entry values, as in the `live:` section) with two refinements the
//! printed trace does not need: register views keep their width (a 32-bit
//! write zero-extends, so `w0 = w0` does not leave `x0` unchanged), and each
//! load is stamped with the number of memory writes before it, so two loads
//! of one address with a store in between are different values.

use super::effects::{effects, live_after_each};
use super::transfer::{simplify, statements, strip_parens};
use super::{Effects, Loc, LocSet};
use crate::asm::{Insn, Reg, RegKind};
use std::collections::HashMap;
use std::fmt;

/// What the semantics know about one instruction's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Nothing it writes is read later or live out, and it can be removed
    /// (the rule proposer's dead-instruction condition: no memory access,
    /// no flow change).
    Unused,
    /// Every location it writes already holds the value written (a move of
    /// a register to itself, a reload of the value just stored, a store of
    /// the value memory holds).
    Unchanged,
    /// It writes one register view, and that value is already in this other
    /// register view (or in the same register's low 32 bits while its upper
    /// bits may differ): a move could replace it.
    SameAs(String),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Unused => f.write_str("unused"),
            Note::Unchanged => f.write_str("unchanged"),
            Note::SameAs(r) => write!(f, "= {r}"),
        }
    }
}

/// A register's symbolic content: the width of its last write and the
/// value written (for 32-bit writes, the 32-bit value; the register holds
/// its zero extension).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content {
    bits: u32,
    value: String,
}

#[derive(Default)]
struct Values {
    regs: HashMap<Loc, Content>,
    /// Cells whose current content is known: address text → value.
    cells: HashMap<String, String>,
    /// Memory writes so far: stamps loads.
    epoch: u32,
    /// Counter for values nothing else can equal.
    fresh: u32,
}

fn width(r: &Reg) -> Option<u32> {
    match r.kind {
        RegKind::X | RegKind::Sp | RegKind::Xzr => Some(64),
        RegKind::W | RegKind::Wsp | RegKind::Wzr => Some(32),
        _ => None,
    }
}

impl Values {
    fn opaque(&mut self) -> String {
        self.fresh += 1;
        format!("?{}", self.fresh)
    }

    /// The value a register view reads now.
    fn read(&self, r: &Reg) -> Option<String> {
        let bits = width(r)?;
        let Some(loc) = r.loc() else {
            return Some("0".into());
        };
        let entry = r.to_string();
        Some(match (self.regs.get(&loc), bits) {
            (None, _) => entry,
            (Some(c), 64) if c.bits == 64 => c.value.clone(),
            (Some(c), 64) => format!("zext({}, 32)", c.value),
            (Some(c), _) if c.bits == 32 => c.value.clone(),
            (Some(c), _) => format!("low32({})", c.value),
        })
    }

    /// `expr` with every register replaced by its value; `None` if it
    /// names a register these notes do not track (SIMD).
    fn substitute(&self, expr: &str) -> Option<String> {
        let mut out = String::new();
        let mut tok = String::new();
        for c in expr.chars().chain(std::iter::once('\n')) {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                tok.push(c);
                continue;
            }
            if !tok.is_empty() {
                match Reg::parse(&tok) {
                    Some(r) => {
                        let v = self.read(&r)?;
                        if v.contains(' ') {
                            out.push_str(&format!("({v})"));
                        } else {
                            out.push_str(&v);
                        }
                    }
                    None => out.push_str(&tok),
                }
                tok.clear();
            }
            if c != '\n' {
                out.push(c);
            }
        }
        Some(out)
    }

    /// Value of a right-hand side: memory reads take the value a store left
    /// in that cell, or are stamped with the memory epoch.
    fn value_of(&self, rhs: &str, flags: Option<&str>) -> Option<String> {
        let s = strip_parens(&simplify(&self.substitute(rhs)?)).to_string();
        // Only the cells this statement reads get the stamp; values loaded
        // earlier and substituted for registers already carry theirs.
        let s = match self.cells.get(&s) {
            Some(v) if is_cell(rhs) => v.clone(),
            _ if rhs.contains("mem") => format!("{s}@{}", self.epoch),
            _ => s,
        };
        Some(match flags {
            Some(f) => format!("{s} given {f}"),
            None => s,
        })
    }

    /// The key of a memory cell: its address in values.
    fn cell(&self, text: &str) -> Option<String> {
        Some(strip_parens(&self.substitute(text)?).to_string())
    }

    /// A register view now holding `value` (in `bits`), other than `skip`.
    fn holder(&self, value: &str, bits: u32, dest: &Reg) -> Option<String> {
        let view = |n: u8| {
            if bits == 64 {
                format!("x{n}")
            } else {
                format!("w{n}")
            }
        };
        let same = |loc: Loc| -> bool {
            let name = match loc {
                Loc::X(n) => view(n),
                Loc::Sp if bits == 64 => "sp".into(),
                _ => return false,
            };
            Reg::parse(&name)
                .and_then(|r| self.read(&r))
                .is_some_and(|v| v == value)
        };
        // The destination itself first: `ldr w0, [sp, 12]` after `str w0,
        // [sp, 12]` reads as `= w0`.
        let dest_loc = dest.loc()?;
        if same(dest_loc) {
            return Some(view_of(dest_loc, bits));
        }
        (0..31u8)
            .map(Loc::X)
            .chain([Loc::Sp])
            .find(|&l| same(l))
            .map(|l| view_of(l, bits))
    }
}

fn view_of(loc: Loc, bits: u32) -> String {
    match (loc, bits) {
        (Loc::X(n), 64) => format!("x{n}"),
        (Loc::X(n), _) => format!("w{n}"),
        _ => "sp".into(),
    }
}

fn is_literal(v: &str) -> bool {
    v.parse::<i64>().is_ok()
}

/// The note of each instruction of `insns` (a block or window whose
/// live-out set is `live_out`), `None` where nothing is known.
///
/// The notes hold together, not just one by one: deleting every `unused`
/// and `unchanged` line and replacing every `= r` line by a move from `r`
/// keeps the block's meaning. So an `unchanged` line counts as reading what
/// it writes, and a `= r` line as reading `r`, when liveness decides which
/// earlier lines are unused (`cmp x0, 1; cmp x0, 1` with the flags live: the
/// second is unchanged, the first is not unused).
pub fn code_notes(insns: &[Insn], live_out: LocSet) -> Vec<Option<Note>> {
    let mut effs: Vec<Effects> = insns.iter().map(effects).collect();
    let value_notes = value_notes(insns, &effs);
    let removable: Vec<bool> = insns
        .iter()
        .zip(&effs)
        .map(|(insn, e)| !statements(insn).is_empty() && e.removable_if_dead(LocSet::EMPTY))
        .collect();
    for (e, note) in effs.iter_mut().zip(&value_notes) {
        match note {
            Some(Note::Unchanged) => e.reads = e.reads.union(e.writes),
            Some(Note::SameAs(r)) => {
                if let Some(l) = Reg::parse(r).and_then(|r| r.loc()) {
                    e.reads.insert(l);
                }
            }
            _ => {}
        }
    }
    let live_after = live_after_each(&effs, live_out);
    value_notes
        .into_iter()
        .enumerate()
        .map(|(i, note)| {
            let dead = effs[i].writes.intersect(live_after[i]).is_empty();
            if removable[i] && dead {
                Some(Note::Unused)
            } else {
                note
            }
        })
        .collect()
}

/// Forward pass: `unchanged` and `= r` notes.
fn value_notes(insns: &[Insn], effs: &[Effects]) -> Vec<Option<Note>> {
    let mut vals = Values::default();
    let mut notes = Vec::with_capacity(insns.len());
    for (insn, e) in insns.iter().zip(effs) {
        let stmts = statements(insn);
        // Conditional instructions and carries read the flags implicitly.
        let flags = e.reads.contains(Loc::Nzcv).then(|| {
            vals.regs
                .get(&Loc::Nzcv)
                .map(|c| c.value.clone())
                .unwrap_or_else(|| "nzcv".into())
        });
        let deterministic = e.known && !matches!(insn.mnemonic.as_str(), "mrs");
        // Simultaneous statements: every value from the state before.
        let writes: Vec<(&str, &str, Option<String>)> = stmts
            .iter()
            .filter_map(|s| s.split_once(" = "))
            .map(|(lhs, rhs)| {
                let v = deterministic
                    .then(|| vals.value_of(rhs, flags.as_deref()))
                    .flatten();
                (lhs, rhs, v)
            })
            .collect();
        notes.push(note_for(&vals, insn, &writes));

        let mut new_cells = Vec::new();
        let mut loads = Vec::new();
        let mut written = LocSet::EMPTY;
        for (lhs, rhs, v) in writes {
            if lhs.starts_with("mem") {
                if let (Some(c), Some(v)) = (vals.cell(lhs), v) {
                    new_cells.push((c, v));
                }
                continue;
            }
            let (loc, bits) = if lhs == "nzcv" {
                (Some(Loc::Nzcv), 0)
            } else {
                match Reg::parse(lhs) {
                    Some(r) => (r.loc(), width(&r).unwrap_or(0)),
                    None => (None, 0),
                }
            };
            let Some(loc) = loc else { continue };
            let value = match v {
                Some(v) if bits > 0 || loc == Loc::Nzcv => v,
                _ => vals.opaque(),
            };
            if is_cell(rhs) && bits > 0 {
                // After a load its cell is known to hold what it read.
                if let Some(c) = vals.cell(rhs) {
                    loads.push((c, value.clone()));
                }
            }
            vals.regs.insert(loc, Content { bits, value });
            written.insert(loc);
        }
        for loc in e.clobbers.minus(written).iter() {
            if loc != Loc::Mem {
                let value = vals.opaque();
                vals.regs.insert(loc, Content { bits: 64, value });
            }
        }
        if !new_cells.is_empty() || e.clobbers.contains(Loc::Mem) {
            vals.epoch += 1;
            vals.cells.clear();
            vals.cells.extend(new_cells);
        } else {
            for (c, v) in loads {
                vals.cells.entry(c).or_insert(v);
            }
        }
    }
    notes
}

/// Is `rhs` exactly one memory cell (`mem32[sp + 12]`)?
fn is_cell(rhs: &str) -> bool {
    rhs.starts_with("mem") && rhs.ends_with(']') && rhs.matches('[').count() == 1
}

/// The note of an instruction that is not unused.
fn note_for(vals: &Values, insn: &Insn, writes: &[(&str, &str, Option<String>)]) -> Option<Note> {
    if writes.is_empty() || writes.iter().any(|(_, _, v)| v.is_none()) {
        return None;
    }
    let unchanged = writes.iter().all(|&(lhs, _, ref v)| {
        let v = v.as_deref().unwrap_or_default();
        if lhs.starts_with("mem") {
            return vals
                .cell(lhs)
                .is_some_and(|c| vals.cells.get(&c).map(String::as_str) == Some(v));
        }
        if lhs == "nzcv" {
            return vals.regs.get(&Loc::Nzcv).is_some_and(|c| c.value == v);
        }
        let Some(r) = Reg::parse(lhs) else {
            return false;
        };
        let Some(loc) = r.loc() else { return false };
        match (width(&r), vals.regs.get(&loc)) {
            (Some(64), _) => vals.read(&r).as_deref() == Some(v),
            // A 32-bit write leaves the register unchanged only if its upper
            // half is already zero: its last write was 32-bit too.
            (Some(32), Some(c)) => c.bits == 32 && c.value == v,
            _ => false,
        }
    });
    if unchanged {
        return Some(Note::Unchanged);
    }
    // One register written: is its value already in a register?
    let [(lhs, _, Some(v))] = writes else {
        return None;
    };
    let dest = Reg::parse(lhs)?;
    let bits = width(&dest)?;
    if is_literal(v) || v.contains("given") {
        return None;
    }
    let holder = vals.holder(v, bits, &dest)?;
    // `mov x1, x2` needs no note saying it copies x2.
    let copies_holder = insn.mnemonic == "mov"
        && insn
            .operands
            .get(1)
            .and_then(|o| o.reg())
            .is_some_and(|r| r.to_string() == holder);
    (!copies_holder).then_some(Note::SameAs(holder))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(v: &[&str], live: &str) -> Vec<String> {
        let insns: Vec<Insn> = v.iter().map(|s| Insn::parse_plain(s).unwrap()).collect();
        code_notes(&insns, LocSet::parse_list(live).unwrap())
            .into_iter()
            .map(|n| n.map(|n| n.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn dead_writes_are_unused_but_loads_and_stores_never() {
        assert_eq!(
            notes(&["mov x9, #3190", "add x0, x1, 1"], "x0,sp"),
            ["unused", ""]
        );
        // Overwritten before any read.
        assert_eq!(
            notes(&["add x0, x1, 1", "mov x0, x2"], "x0,sp"),
            ["unused", ""]
        );
        // A dead load is kept (it may fault); a store is never unused.
        assert_eq!(
            notes(&["ldr x9, [sp, 8]", "str x1, [sp]"], "sp,mem"),
            ["", ""]
        );
        // Flags written and live: not unused.
        assert_eq!(notes(&["cmp x0, 1"], "x0,sp,nzcv"), [""]);
    }

    #[test]
    fn reload_of_a_stored_value() {
        // Same width and register, upper half unknown: `= w0`, not unchanged.
        assert_eq!(
            notes(&["str w0, [sp, 12]", "ldr w0, [sp, 12]"], "x0,sp,mem"),
            ["", "= w0"]
        );
        // 64-bit: unchanged.
        assert_eq!(
            notes(&["str x0, [sp, 8]", "ldr x0, [sp, 8]"], "x0,sp,mem"),
            ["", "unchanged"]
        );
        // Into another register.
        assert_eq!(
            notes(&["str x0, [sp, 8]", "ldr x1, [sp, 8]"], "x0,x1,sp,mem"),
            ["", "= x0"]
        );
        // The stored register was computed by a 32-bit write: unchanged.
        assert_eq!(
            notes(
                &["orr w0, w1, w0", "str w0, [sp, 12]", "ldr w0, [sp, 12]"],
                "x0,sp,mem"
            ),
            ["", "", "unchanged"]
        );
        // A store in between may alias: nothing known.
        assert_eq!(
            notes(
                &["str x0, [sp, 8]", "str x2, [x3]", "ldr x1, [sp, 8]"],
                "x0,x1,sp,mem"
            ),
            ["", "", ""]
        );
        // Storing what memory holds.
        assert_eq!(
            notes(
                &["str w8, [sp, 32]", "ldr w8, [sp, 32]", "str w8, [sp, 32]"],
                "x8,sp,mem"
            ),
            ["", "= w8", "unchanged"]
        );
    }

    #[test]
    fn values_loaded_earlier_compare_equal() {
        assert_eq!(
            notes(
                &[
                    "ldr x8, [sp, 40]",
                    "mul x8, x8, x9",
                    "mov x8, x8",
                    "str x8, [sp, 16]"
                ],
                "x8,x9,sp,mem"
            ),
            ["", "", "unchanged", ""]
        );
        assert_eq!(
            notes(
                &[
                    "ldr w0, [sp, 12]",
                    "orr w0, w1, w0",
                    "str w0, [sp, 12]",
                    "ldr w0, [sp, 12]"
                ],
                "x0,sp,mem"
            ),
            ["", "", "", "unchanged"]
        );
    }

    #[test]
    fn two_loads_of_one_cell() {
        assert_eq!(
            notes(&["ldr x0, [sp, 8]", "ldr x1, [sp, 8]"], "x0,x1,sp"),
            ["", "= x0"]
        );
        // A store between them: different values.
        assert_eq!(
            notes(
                &["ldr x0, [sp, 8]", "str x2, [x3]", "ldr x1, [sp, 8]"],
                "x0,x1,sp,mem"
            ),
            ["", "", ""]
        );
        // The first load's register overwritten: the value is gone.
        assert_eq!(
            notes(
                &["ldr w0, [sp, 12]", "lsr w0, w0, 8", "ldr w1, [sp, 12]"],
                "x0,x1,sp"
            ),
            ["", "", ""]
        );
    }

    #[test]
    fn moves_and_identities() {
        assert_eq!(notes(&["mov x0, x0"], "x0,sp"), ["unchanged"]);
        assert_eq!(notes(&["add x0, x0, #0"], "x0,sp"), ["unchanged"]);
        // A 32-bit self-move clears the upper half: not unchanged.
        assert_eq!(notes(&["mov w0, w0"], "x0,sp"), [""]);
        assert_eq!(
            notes(&["add w0, w1, 1", "add w0, w0, #0"], "x0,sp"),
            ["", "unchanged"]
        );
        // A plain copy gets no note; a computed value equal to a register does.
        assert_eq!(notes(&["mov x1, x2"], "x1,x2,sp"), [""]);
        assert_eq!(notes(&["add x1, x2, 0"], "x1,x2,sp"), ["= x2"]);
        // Constants: no note.
        assert_eq!(notes(&["mov x1, 0", "mov x2, 0"], "x1,x2,sp"), ["", ""]);
    }

    #[test]
    fn conditional_values_depend_on_the_flags() {
        assert_eq!(
            notes(
                &["cmp x0, 1", "cset w1, eq", "cmp x0, 2", "cset w2, eq"],
                "x1,x2,sp"
            ),
            ["", "", "", ""]
        );
        assert_eq!(
            notes(&["cmp x0, 1", "cset w1, eq", "cset w2, eq"], "x1,x2,sp"),
            ["", "", ""]
        );
        // Jointly valid: the second is unchanged, so the first is not unused.
        assert_eq!(
            notes(&["cmp x0, 1", "cmp x0, 1"], "sp,nzcv"),
            ["", "unchanged"]
        );
    }
}
