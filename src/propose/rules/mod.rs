//! The rule proposer: classic AArch64 peepholes kept as data (`rules/*.rules`
//! at the repository root, format in `rules/README.md`), matched against
//! contiguous runs of a window's instructions.
//!
//! Each match yields a candidate for the whole window, with the matched run
//! replaced. Rules may be liberal: the validator judges every candidate. The
//! guards exist to keep obvious nonsense out of its queue.

mod expr;
mod facts;
pub(crate) mod imm;
mod pattern;
mod syntax;
mod template;

use self::facts::WindowFacts;
use self::syntax::{parse_rules, Rule, Step};
use super::{Candidate, Proposer, Window};
use crate::asm::Insn;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// The shipped rule files, embedded so that the binary is self-contained.
const BUILTIN: &[(&str, &str)] = &[
    (
        "rules/moves.rules",
        include_str!("../../../rules/moves.rules"),
    ),
    (
        "rules/memory.rules",
        include_str!("../../../rules/memory.rules"),
    ),
    (
        "rules/arith.rules",
        include_str!("../../../rules/arith.rules"),
    ),
    (
        "rules/constants.rules",
        include_str!("../../../rules/constants.rules"),
    ),
    (
        "rules/branches.rules",
        include_str!("../../../rules/branches.rules"),
    ),
    (
        "rules/extend.rules",
        include_str!("../../../rules/extend.rules"),
    ),
];

/// A deliberately wrong rule set (not part of [`RuleProposer::builtin`]) so
/// that tests can show the validator rejecting bad candidates.
pub const WRONG_RULES: (&str, &str) = (
    "rules/test/wrong.rules",
    include_str!("../../../rules/test/wrong.rules"),
);

/// Proposes rewrites from a library of pattern rules.
pub struct RuleProposer {
    rules: Vec<Rule>,
    /// Rules by the mnemonic of their first pattern line: the matcher only
    /// tries rules that can start at an instruction.
    by_mnemonic: HashMap<String, Vec<usize>>,
    /// Rules whose first pattern line is the wildcard `*`.
    wildcard: Vec<usize>,
    /// Hash of the rule texts: part of the pipeline's result-cache key.
    fingerprint: String,
}

fn hash_sources<'a>(sources: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut k = crate::cache::KeyBuilder::new("rules");
    for (origin, text) in sources {
        k = k.field(origin, text);
    }
    k.finish().to_string()
}

impl RuleProposer {
    /// The rules shipped with peephole.
    pub fn builtin() -> Result<Self> {
        let mut rules = Vec::new();
        for (origin, text) in BUILTIN {
            rules.extend(parse_rules(text, origin)?);
        }
        Self::from_rules(rules, hash_sources(BUILTIN.iter().copied()))
    }

    /// Rules from one file; errors name `path:line`.
    /// Number of rules loaded.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read rule file {}", path.display()))?;
        Self::from_source(&text, &path.display().to_string())
    }

    /// Rules from text; `origin` names it in errors and traces.
    pub fn from_source(text: &str, origin: &str) -> Result<Self> {
        Self::from_rules(parse_rules(text, origin)?, hash_sources([(origin, text)]))
    }

    /// The deliberately wrong test-only rules ([`WRONG_RULES`]).
    pub fn wrong_for_tests() -> Result<Self> {
        Self::from_source(WRONG_RULES.1, WRONG_RULES.0)
    }

    /// Both rule sets together (names must stay unique).
    pub fn merge(self, other: RuleProposer) -> Result<Self> {
        let mut rules = self.rules;
        rules.extend(other.rules);
        Self::from_rules(rules, format!("{}+{}", self.fingerprint, other.fingerprint))
    }

    fn from_rules(rules: Vec<Rule>, fingerprint: String) -> Result<Self> {
        let mut names: HashMap<&str, &str> = HashMap::new();
        for r in &rules {
            if let Some(prev) = names.insert(&r.name, &r.origin) {
                anyhow::bail!(
                    "{}: rule `{}` is already defined at {prev}",
                    r.origin,
                    r.name
                );
            }
        }
        let mut by_mnemonic: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match &r.pattern[0].mnemonic {
                Some(m) => by_mnemonic.entry(m.clone()).or_default().push(i),
                None => wildcard.push(i),
            }
        }
        Ok(RuleProposer {
            rules,
            by_mnemonic,
            wildcard,
            fingerprint,
        })
    }

    /// Names of the loaded rules, in file order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Candidates for one window: one per (rule, position) match, without
    /// duplicates and without no-op rewrites.
    pub fn propose_window(&self, window: &Window) -> Vec<Candidate> {
        let facts = WindowFacts::new(window);
        let mut out = Vec::new();
        for start in 0..window.insns.len() {
            let first = &window.insns[start];
            let keyed = self
                .by_mnemonic
                .get(&first.mnemonic)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            for &ri in keyed.iter().chain(&self.wildcard) {
                let rule = &self.rules[ri];
                let Some(repl) = apply(rule, window, start, &facts) else {
                    continue;
                };
                let len = rule.pattern.len();
                let insns = window.spliced(start..start + len, repl);
                // Few candidates per window: a linear scan beats hashing clones.
                if insns == window.insns || out.iter().any(|c: &Candidate| c.insns == insns) {
                    continue;
                }
                out.push(Candidate {
                    insns,
                    proposer: format!("rules:{}", rule.name),
                    trace: Some(format!(
                        "rule {} ({}) rewrote instructions {}..={} of the window",
                        rule.name,
                        rule.origin,
                        start + 1,
                        start + len
                    )),
                });
            }
        }
        out
    }
}

/// The replacement for `rule` matched at `start`, if it matches there and
/// its guards hold.
fn apply(rule: &Rule, window: &Window, start: usize, facts: &WindowFacts) -> Option<Vec<Insn>> {
    let len = rule.pattern.len();
    let insns = window.insns.get(start..start + len)?;
    let mut vars = vec![None; rule.nvars];
    for (p, i) in rule.pattern.iter().zip(insns) {
        if !p.matches(i, &mut vars) {
            return None;
        }
    }
    let mf = facts.at(start, len);
    for step in &rule.steps {
        match step {
            Step::Where(e) => {
                if e.eval(&vars, &mf).ok()? != expr::Value::Bool(true) {
                    return None;
                }
            }
            Step::Let(v, e) => vars[*v] = Some(e.eval(&vars, &mf).ok()?),
        }
    }
    rule.replacement
        .iter()
        .map(|t| t.instantiate(insns, &vars, &mf))
        .collect()
}

impl Proposer for RuleProposer {
    fn name(&self) -> &str {
        "rules"
    }

    fn fingerprint(&self) -> String {
        format!("rules:{}", self.fingerprint)
    }

    fn propose(&self, windows: &[Window]) -> anyhow::Result<Vec<Vec<Candidate>>> {
        Ok(windows.par_iter().map(|w| self.propose_window(w)).collect())
    }
}
