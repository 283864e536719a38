//! The rule-file format (documented in `rules/README.md`): blocks of
//!
//! ```text
//! rule <name>
//!     <pattern instruction>...
//!   where <guard>          # any number of `where` and `let`, in order
//!   let ?k = <expression>
//!   =>
//!     <replacement instruction>...   # none: delete the match
//! end
//! ```
//!
//! Every error names the file and line, so a broken rule is found at once.

use super::expr::{self, Expr};
use super::pattern::InsnPat;
use super::template::Template;
use anyhow::{bail, Result};
use std::collections::HashMap;

/// A guard or a computed field, evaluated in file order.
#[derive(Clone, Debug)]
pub enum Step {
    Where(Expr),
    Let(usize, Expr),
}

/// One parsed rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    /// `file:line` of the `rule` keyword.
    pub origin: String,
    pub pattern: Vec<InsnPat>,
    pub steps: Vec<Step>,
    pub replacement: Vec<Template>,
    /// Number of metavariables (pattern-bound and `let`-bound).
    pub nvars: usize,
}

#[derive(Default)]
struct Vars {
    names: HashMap<String, usize>,
    defined: Vec<bool>,
}

impl Vars {
    /// A pattern occurrence: defines the variable on first use.
    fn bind(&mut self, n: &str) -> usize {
        if let Some(i) = self.names.get(n) {
            return *i;
        }
        let i = self.defined.len();
        self.names.insert(n.to_string(), i);
        self.defined.push(true);
        i
    }
    /// A use in a guard, `let` or replacement: must be defined already.
    fn lookup(&self, n: &str) -> Result<usize, String> {
        match self.names.get(n) {
            Some(i) if self.defined[*i] => Ok(*i),
            _ => Err(format!("unknown metavariable `?{n}`")),
        }
    }
}

#[derive(PartialEq)]
enum Section {
    Outside,
    Pattern,
    Replacement,
}

/// Parse a whole rule file. `origin` names it in errors (`rules/moves.rules`).
pub fn parse_rules(text: &str, origin: &str) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    let mut section = Section::Outside;
    let mut cur: Option<(Rule, Vars)> = None;
    let mut seen: HashMap<String, String> = HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{origin}:{}", n + 1);
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let (kw, rest) = match line.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (line, ""),
        };
        let err = |m: String| anyhow::anyhow!("{at}: {m}");
        match (&section, kw) {
            (Section::Outside, "rule") => {
                if rest.is_empty()
                    || !rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
                {
                    bail!("{at}: rule names are letters, digits, `-` and `_`, got `{rest}`");
                }
                if let Some(prev) = seen.insert(rest.to_string(), at.clone()) {
                    bail!("{at}: rule `{rest}` is already defined at {prev}");
                }
                cur = Some((
                    Rule {
                        name: rest.to_string(),
                        origin: at.clone(),
                        pattern: Vec::new(),
                        steps: Vec::new(),
                        replacement: Vec::new(),
                        nvars: 0,
                    },
                    Vars::default(),
                ));
                section = Section::Pattern;
            }
            (Section::Outside, _) => bail!("{at}: expected `rule <name>`, found `{line}`"),
            (_, "rule") => bail!("{at}: `rule` inside a rule (missing `end`?)"),
            (Section::Pattern, "where") => {
                let (rule, vars) = cur.as_mut().expect("inside a rule");
                let e = expr::parse(rest, &mut |n| vars.lookup(n)).map_err(err)?;
                rule.steps.push(Step::Where(e));
            }
            (Section::Pattern, "let") => {
                let (name, e) = rest
                    .split_once('=')
                    .ok_or_else(|| err("expected `let ?name = <expression>`".into()))?;
                let name = name.trim();
                let Some(name) = name.strip_prefix('?').filter(|n| !n.is_empty()) else {
                    bail!("{at}: `let` needs a `?name`, got `{name}`");
                };
                let (rule, vars) = cur.as_mut().expect("inside a rule");
                let e = expr::parse(e, &mut |n| vars.lookup(n)).map_err(err)?;
                if vars.names.contains_key(name) {
                    bail!("{at}: `?{name}` is already bound");
                }
                let i = vars.bind(name);
                rule.steps.push(Step::Let(i, e));
            }
            (Section::Pattern, "=>") => {
                let (rule, _) = cur.as_ref().expect("inside a rule");
                if rule.pattern.is_empty() {
                    bail!("{at}: rule `{}` has no pattern before `=>`", rule.name);
                }
                if !rest.is_empty() {
                    bail!("{at}: put replacement instructions on the lines after `=>`");
                }
                section = Section::Replacement;
            }
            (Section::Pattern, "end") => bail!("{at}: rule has no `=>` before `end`"),
            (Section::Pattern, _) => {
                let (rule, vars) = cur.as_mut().expect("inside a rule");
                if !rule.steps.is_empty() {
                    bail!("{at}: pattern instructions must come before `where`/`let`");
                }
                let p = InsnPat::parse(line, &mut |n| Ok(vars.bind(n))).map_err(err)?;
                rule.pattern.push(p);
            }
            (Section::Replacement, "end") => {
                let (mut rule, vars) = cur.take().expect("inside a rule");
                rule.nvars = vars.defined.len();
                rules.push(rule);
                section = Section::Outside;
            }
            (Section::Replacement, "where" | "let" | "=>") => {
                bail!("{at}: `{kw}` after `=>`; guards go before it")
            }
            (Section::Replacement, _) => {
                let (rule, vars) = cur.as_mut().expect("inside a rule");
                let t = Template::parse(line, &mut |n| vars.lookup(n)).map_err(err)?;
                if t.copies().is_some_and(|k| k > rule.pattern.len()) {
                    bail!(
                        "{at}: `{line}` copies beyond the {} matched instruction(s)",
                        rule.pattern.len()
                    );
                }
                rule.replacement.push(t);
            }
        }
    }
    if let Some((rule, _)) = cur {
        bail!(
            "{origin}: rule `{}` ({}) has no `end`",
            rule.name,
            rule.origin
        );
    }
    Ok(rules)
}

/// The line without its comment: `#` followed by a space or at end of line,
/// or `//`. (`#0`, `#?c` are immediates.)
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for i in 0..b.len() {
        let next = b.get(i + 1).copied();
        if b[i] == b'#' && matches!(next, None | Some(b' ') | Some(b'\t') | Some(b'#')) {
            return &line[..i];
        }
        if b[i] == b'/' && next == Some(b'/') {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse_rules(src, "t.rules").unwrap_err().to_string()
    }

    #[test]
    fn parses_a_rule() {
        let src = "# comment\nrule a\n  mov ?t:x, #?c   # trailing\n  mul ?d, ?n, ?t\n  where pow2(?c)\n  let ?k = log2(?c)\n  =>\n  lsl ?d, ?n, #?k\nend\n";
        let r = parse_rules(src, "t.rules").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].origin, "t.rules:2");
        assert_eq!(r[0].pattern.len(), 2);
        assert_eq!(r[0].nvars, 5);
    }

    #[test]
    fn errors_name_file_and_line() {
        assert!(err("rule a\n mov ?a, ?b\n =>\n mov ?a, ?c\nend\n")
            .starts_with("t.rules:4: unknown metavariable `?c`"));
        assert!(err("mov x0, x1\n").starts_with("t.rules:1: expected `rule"));
        assert!(err("rule a\n mov ?a, ?b\nend\n").starts_with("t.rules:3:"));
        assert!(err("rule a\n mov ?a, ?b\n =>\n").contains("has no `end`"));
        assert!(err("rule a\n mov ?a, ?b\n where frob(?a)\n =>\nend\n")
            .starts_with("t.rules:3: unknown function"));
        assert!(err("rule a\n frob ?a, [x\n =>\nend\n").starts_with("t.rules:2:"));
        assert!(
            err("rule a\n mov ?a, ?b\n =>\nend\nrule a\n mov ?a, ?b\n =>\nend\n")
                .contains("already defined at t.rules:1")
        );
    }
}
