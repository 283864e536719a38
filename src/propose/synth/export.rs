//! Learned rewrites as rules (`peephole synth export`): each database entry
//! becomes a rule in `rules/` syntax whose pattern is the original with its
//! registers as metavariables, guarded so that it applies exactly where the
//! search's assumptions hold: the registers distinct, and every register
//! (and the flags) that either side writes but the instance did not need
//! dead. Constants stay literal: a rule is never generalised beyond what
//! was searched.

use super::db::Learned;
use crate::asm::Insn;
use crate::semantics::{effects, Loc, LocSet};
use std::collections::BTreeSet;

/// How the pattern refers to registers: number → (metavariable, 64-bit view).
struct Binding {
    regs: Vec<(u8, bool)>,
    label: Option<String>,
}

impl Binding {
    /// Rewrite one instruction's text; `bind` lets new registers be bound.
    fn line(&mut self, insn: &Insn, bind: bool) -> Option<String> {
        let text = insn.to_string();
        let mut out = String::new();
        let mut tok = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                tok.push(c);
                continue;
            }
            if !tok.is_empty() {
                out.push_str(&self.token(&tok, insn, bind)?);
                tok.clear();
            }
            out.push(c);
        }
        Some(out.trim_end().to_string())
    }

    fn token(&mut self, tok: &str, insn: &Insn, bind: bool) -> Option<String> {
        let is_label =
            matches!(insn.operands.last(), Some(crate::asm::Operand::Sym(s)) if s == tok);
        if is_label {
            return match &self.label {
                Some(l) if l == tok => Some("?l".into()),
                None if bind => {
                    self.label = Some(tok.to_string());
                    Some("?l".into())
                }
                _ => None,
            };
        }
        let (wide, num) = match tok.split_at(1) {
            ("x", n) => (true, n.parse::<u8>().ok()),
            ("w", n) => (false, n.parse::<u8>().ok()),
            _ => (true, None),
        };
        let Some(num) = num.filter(|n| *n <= 30) else {
            return Some(tok.to_string());
        };
        match self.regs.iter().position(|(r, _)| *r == num) {
            Some(k) if self.regs[k].1 == wide => Some(format!("?r{k}")),
            Some(k) => Some(format!("?r{k}.{}", if wide { "x" } else { "w" })),
            None if bind => {
                self.regs.push((num, wide));
                let k = self.regs.len() - 1;
                Some(format!("?r{k}:{}", if wide { "x" } else { "w" }))
            }
            None => None,
        }
    }
}

/// Written locations of a sequence.
fn writes(insns: &[Insn]) -> LocSet {
    insns
        .iter()
        .map(|i| effects(i).writes)
        .fold(LocSet::EMPTY, LocSet::union)
}

/// The rule for one learned rewrite, or `None` when rules cannot say it
/// (a replacement register the pattern does not bind, text that does not
/// parse).
pub fn rule(name: &str, learned: &Learned, replacement: &[String]) -> Option<String> {
    let parse = |v: &[String]| -> Option<Vec<Insn>> {
        v.iter().map(|t| Insn::parse_plain(t).ok()).collect()
    };
    let (orig, repl) = (parse(&learned.original)?, parse(replacement)?);
    // Rule patterns do not express register-indexed addresses; memory
    // rewrites stay in the database.
    let touches_memory = |v: &[Insn]| {
        v.iter().any(|i| {
            i.operands
                .iter()
                .any(|o| matches!(o, crate::asm::Operand::Mem(_)))
        })
    };
    if touches_memory(&orig) || touches_memory(&repl) {
        return None;
    }
    let live = LocSet::parse_list(&learned.live_out).ok()?;
    let mut b = Binding {
        regs: Vec::new(),
        label: None,
    };
    let pattern: Vec<String> = orig
        .iter()
        .map(|i| b.line(i, true))
        .collect::<Option<_>>()?;
    let body: Vec<String> = repl
        .iter()
        .map(|i| b.line(i, false))
        .collect::<Option<_>>()?;
    let mut guards: BTreeSet<String> = BTreeSet::new();
    for i in 0..b.regs.len() {
        for j in i + 1..b.regs.len() {
            guards.insert(format!("?r{i} != ?r{j}"));
        }
    }
    for l in writes(&orig).union(writes(&repl)).minus(live).iter() {
        match l {
            Loc::X(n) => {
                let k = b.regs.iter().position(|(r, _)| *r == n)?;
                guards.insert(format!("dead(?r{k})"));
            }
            Loc::Nzcv => {
                guards.insert("dead(nzcv)".into());
            }
            _ => return None,
        }
    }
    let mut text = format!("rule {name}\n");
    for p in &pattern {
        text.push_str(&format!("    {p}\n"));
    }
    if !guards.is_empty() {
        let g: Vec<String> = guards.into_iter().collect();
        text.push_str(&format!("  where {}\n", g.join(" && ")));
    }
    text.push_str("  =>\n");
    for r in &body {
        text.push_str(&format!("    {r}\n"));
    }
    text.push_str("end\n");
    Some(text)
}

/// A rule file of every learned rewrite that rules can express; the
/// second value counts the entries left out.
pub fn rule_file(entries: &[Learned]) -> (String, usize) {
    let mut out = String::from(
        "# Rewrites learned by the superoptimizer (`peephole synth export`).\n\
         # Each was found by search, confirmed on test states and by the validator.\n\n",
    );
    let mut skipped = 0;
    for (k, l) in entries.iter().enumerate() {
        let Some(best) = l.replacements.iter().min_by_key(|r| r.len()) else {
            continue;
        };
        match rule(&format!("synth-{k}"), l, best) {
            Some(r) => {
                out.push_str(&r);
                out.push('\n');
            }
            None => skipped += 1,
        }
    }
    (out, skipped)
}
