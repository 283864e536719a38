//! Replacement lines: instruction text with holes for metavariables
//! (`?d`, `?d.w`) and computed fields (`{log2(?c)}`), instantiated into text
//! and re-parsed with the project's own instruction parser.

use super::expr::{self, Expr, Facts, Value};
use crate::asm::{Insn, Reg, RegKind};

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Var { var: usize, view: Option<RegKind> },
    Expr(Expr),
}

/// One replacement line.
#[derive(Clone, Debug)]
pub struct Template {
    pieces: Vec<Piece>,
    /// `$k`: the line is matched instruction `k` (1-based), copied as is.
    copy: Option<usize>,
}

impl Template {
    /// The matched instruction this line copies, if it is a `$k` line.
    pub fn copies(&self) -> Option<usize> {
        self.copy
    }

    /// `var` resolves a metavariable name that must already be defined.
    pub fn parse(
        text: &str,
        var: &mut dyn FnMut(&str) -> Result<usize, String>,
    ) -> Result<Template, String> {
        if let Some(k) = text.trim().strip_prefix('$') {
            let k: usize = k.parse().ok().filter(|k| *k > 0).ok_or_else(|| {
                format!("`${k}`: copy a matched instruction with `$1`, `$2`, ...")
            })?;
            return Ok(Template {
                pieces: Vec::new(),
                copy: Some(k),
            });
        }
        let cs: Vec<char> = text.trim().chars().collect();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        while i < cs.len() {
            match cs[i] {
                '?' => {
                    let mut j = i + 1;
                    while j < cs.len() && is_word(cs[j]) {
                        j += 1;
                    }
                    let name: String = cs[i + 1..j].iter().collect();
                    if name.is_empty() {
                        return Err(format!("`?` without a name in `{text}`"));
                    }
                    // `?d.w` / `?d.x` (but not `?d.wide`): a register view.
                    let mut view = None;
                    if j + 1 < cs.len()
                        && cs[j] == '.'
                        && matches!(cs[j + 1], 'w' | 'x')
                        && !cs.get(j + 2).is_some_and(|c| is_word(*c))
                    {
                        view = Some(if cs[j + 1] == 'w' {
                            RegKind::W
                        } else {
                            RegKind::X
                        });
                        j += 2;
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Var {
                        var: var(&name)?,
                        view,
                    });
                    i = j;
                }
                '{' => {
                    let close = cs[i..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
                    let src: String = cs[i + 1..i + close].iter().collect();
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Expr(expr::parse(&src, var)?));
                    i += close + 1;
                }
                c => {
                    lit.push(c);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces, copy: None })
    }

    /// The instruction this line stands for under `vars`, or `None` if a
    /// hole cannot be filled or the text does not parse.
    pub fn instantiate(
        &self,
        matched: &[Insn],
        vars: &[Option<Value>],
        facts: &dyn Facts,
    ) -> Option<Insn> {
        if let Some(k) = self.copy {
            return matched.get(k - 1).cloned();
        }
        let mut s = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Var { var, view } => {
                    let v = vars.get(*var)?.as_ref()?;
                    match (v, view) {
                        (_, None) => push_value(&mut s, v),
                        (Value::Reg(r), Some(k)) => s.push_str(&view_of(r, *k)?.to_string()),
                        _ => return None,
                    }
                }
                Piece::Expr(e) => push_value(&mut s, &e.eval(vars, facts).ok()?),
            }
        }
        Insn::parse_plain(&s).ok()
    }
}

/// Append `v`; an integer in operand position gets its `#` when the
/// template did not write one (`tst ?a, ?b` with `?b` bound to 255).
fn push_value(s: &mut String, v: &Value) {
    if matches!(v, Value::Int(_)) && !s.ends_with('#') {
        s.push('#');
    }
    s.push_str(&v.render());
}

/// The `kind` view (x or w) of a general register.
fn view_of(r: &Reg, kind: RegKind) -> Option<Reg> {
    let wide = kind == RegKind::X;
    let k = match r.kind {
        RegKind::X | RegKind::W => kind,
        RegKind::Xzr | RegKind::Wzr => {
            if wide {
                RegKind::Xzr
            } else {
                RegKind::Wzr
            }
        }
        _ => return None,
    };
    Some(Reg::new(k, r.num))
}
