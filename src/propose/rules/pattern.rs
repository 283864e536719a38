//! Instruction patterns: one line of a rule's match side, parsed into a
//! typed shape that mirrors [`crate::asm::Operand`], and matched against
//! parsed instructions while binding metavariables.
//!
//! Matching is deterministic (no backtracking): each operand either binds a
//! fresh metavariable, agrees with an earlier binding, or fails.

use super::expr::Value;
use crate::asm::{AddrMode, Cond, Insn, Operand, Reg, RegKind};

/// Which registers a register metavariable may bind (`?d:x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegClass {
    /// Any operand at all (also conditions, labels, immediates).
    Any,
    /// x0..x30.
    X,
    /// w0..w30.
    W,
    /// x0..x30 or xzr.
    Xz,
    /// w0..w30 or wzr.
    Wz,
    /// x0..x30 or w0..w30.
    R,
    /// x0..x30 or sp (address bases).
    Xsp,
    Q,
    D,
    S,
    H,
    B,
}

impl RegClass {
    pub fn parse(s: &str) -> Option<RegClass> {
        Some(match s {
            "x" => RegClass::X,
            "w" => RegClass::W,
            "xz" => RegClass::Xz,
            "wz" => RegClass::Wz,
            "r" => RegClass::R,
            "xsp" => RegClass::Xsp,
            "q" => RegClass::Q,
            "d" => RegClass::D,
            "s" => RegClass::S,
            "h" => RegClass::H,
            "b" => RegClass::B,
            _ => return None,
        })
    }

    fn admits(self, r: &Reg) -> bool {
        use RegKind as K;
        match self {
            RegClass::Any => true,
            RegClass::X => r.kind == K::X,
            RegClass::W => r.kind == K::W,
            RegClass::Xz => matches!(r.kind, K::X | K::Xzr),
            RegClass::Wz => matches!(r.kind, K::W | K::Wzr),
            RegClass::R => matches!(r.kind, K::X | K::W),
            RegClass::Xsp => matches!(r.kind, K::X | K::Sp),
            RegClass::Q => r.kind == K::Q,
            RegClass::D => r.kind == K::D,
            RegClass::S => r.kind == K::S,
            RegClass::H => r.kind == K::H,
            RegClass::B => r.kind == K::B,
        }
    }
}

/// A register position: a literal register or a metavariable, optionally
/// seen through a view (`?d.x` is the 64-bit view of whatever `?d` bound).
#[derive(Clone, Debug, PartialEq)]
pub enum RegPat {
    Lit(Reg),
    Var {
        var: usize,
        class: RegClass,
        view: Option<RegKind>,
    },
}

/// An immediate position: `#4`, `#?c` (the `#` is optional in input).
#[derive(Clone, Debug, PartialEq)]
pub enum ImmPat {
    Lit(i64),
    Var(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum MemModePat {
    Offset,
    Pre,
    Post(ImmPat),
}

#[derive(Clone, Debug, PartialEq)]
pub enum OpPat {
    Reg(RegPat),
    Imm(ImmPat),
    /// `lsl #?s`; a trailing `lsl` with a metavariable amount also matches an
    /// absent shift, binding 0.
    Shift {
        op: String,
        amount: Option<ImmPat>,
    },
    /// `[?b]`, `[?b, #?o]`, `[?b, #?o]!`, `[?b], #?o`; an absent offset
    /// counts as 0. Register-indexed and relocated addresses never match.
    Mem {
        base: RegPat,
        offset: ImmPat,
        mode: MemModePat,
    },
    Cond(Cond),
    Sym(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum CondPat {
    Lit(Cond),
    Var(usize),
}

/// One line of a rule's match side.
#[derive(Clone, Debug, PartialEq)]
pub struct InsnPat {
    /// `None` for the wildcard mnemonic `*`.
    pub mnemonic: Option<String>,
    pub cond: Option<CondPat>,
    pub operands: Vec<OpPat>,
    /// The operand list ended with `..`: further operands are ignored.
    pub rest: bool,
}

const SHIFTS: &[&str] = &[
    "lsl", "lsr", "asr", "ror", "msl", "uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw",
    "sxtx",
];

/// Split on commas outside brackets.
pub fn split_operands(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = s[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    out
}

/// Resolves `?name` to a variable index; the rule parser owns the table.
pub type VarFn<'a> = &'a mut dyn FnMut(&str) -> Result<usize, String>;

impl InsnPat {
    pub fn parse(text: &str, var: VarFn) -> Result<InsnPat, String> {
        let text = text.trim();
        let (mn, rest) = match text.find(char::is_whitespace) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text, ""),
        };
        let mn = mn.to_ascii_lowercase();
        let wildcard = mn == "*";
        let (mnemonic, cond) = if wildcard {
            (None, None)
        } else if let Some((m, c)) = mn.split_once('.') {
            let cond = match c.strip_prefix('?') {
                Some(name) => CondPat::Var(var(name)?),
                None => CondPat::Lit(
                    Cond::parse(c).ok_or_else(|| format!("unknown condition `{c}` in `{mn}`"))?,
                ),
            };
            (Some(m.to_string()), Some(cond))
        } else if mn.chars().all(|c| c.is_ascii_alphanumeric()) && !mn.is_empty() {
            (Some(mn), None)
        } else {
            return Err(format!("bad mnemonic `{mn}`"));
        };
        let mut parts = split_operands(rest);
        let mut more = false;
        if parts.last() == Some(&"..") {
            parts.pop();
            more = true;
        }
        if mnemonic.is_none() && !more && !parts.is_empty() {
            return Err("a `*` pattern with operands must end with `..`".into());
        }
        let mut operands: Vec<OpPat> = Vec::new();
        let mut i = 0;
        while i < parts.len() {
            let p = parts[i];
            if p.is_empty() {
                return Err(format!("empty operand in `{text}`"));
            }
            let mut op = parse_operand(p, var)?;
            // `[?b], #?o`: post-index folds into the memory operand.
            if let OpPat::Mem { mode, offset, .. } = &mut op {
                let bare = p.ends_with(']') && !p.contains(',');
                if bare && i + 1 < parts.len() && parts[i + 1].starts_with('#') {
                    *mode = MemModePat::Post(parse_imm(parts[i + 1], var)?);
                    *offset = ImmPat::Lit(0);
                    i += 1;
                }
            }
            operands.push(op);
            i += 1;
        }
        Ok(InsnPat {
            mnemonic,
            cond,
            operands,
            rest: more || wildcard,
        })
    }

    /// Match `insn`, extending `vars`. On failure `vars` may hold partial
    /// bindings; the caller discards them.
    pub fn matches(&self, insn: &Insn, vars: &mut [Option<Value>]) -> bool {
        if let Some(m) = &self.mnemonic {
            if *m != insn.mnemonic {
                return false;
            }
        }
        match (&self.cond, insn.cond) {
            (None, None) => {}
            (None, Some(_)) if self.mnemonic.is_none() => {}
            (Some(CondPat::Lit(c)), Some(ic)) if *c == ic => {}
            (Some(CondPat::Var(v)), Some(ic)) => {
                if !bind(vars, *v, Value::Cond(ic)) {
                    return false;
                }
            }
            _ => return false,
        }
        let (np, no) = (self.operands.len(), insn.operands.len());
        let trailing_lsl0 = !self.rest
            && no + 1 == np
            && matches!(self.operands.last(),
                Some(OpPat::Shift { op, amount: Some(ImmPat::Var(_)) }) if op == "lsl");
        if !(no == np || (self.rest && no >= np) || trailing_lsl0) {
            return false;
        }
        for (p, o) in self.operands.iter().zip(&insn.operands) {
            if !match_operand(p, o, vars) {
                return false;
            }
        }
        if trailing_lsl0 {
            if let Some(OpPat::Shift {
                amount: Some(ImmPat::Var(v)),
                ..
            }) = self.operands.last()
            {
                return bind(vars, *v, Value::Int(0));
            }
        }
        true
    }
}

fn parse_reg_or_var(p: &str, var: VarFn) -> Result<RegPat, String> {
    if let Some(body) = p.strip_prefix('?') {
        let (name, class, view) = if let Some((n, c)) = body.split_once(':') {
            let class =
                RegClass::parse(c).ok_or_else(|| format!("unknown register class `:{c}`"))?;
            (n, class, None)
        } else if let Some((n, v)) = body.split_once('.') {
            let view = match v {
                "x" => RegKind::X,
                "w" => RegKind::W,
                _ => return Err(format!("unknown register view `.{v}` (use .x or .w)")),
            };
            (n, RegClass::Any, Some(view))
        } else {
            (body, RegClass::Any, None)
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad metavariable `{p}`"));
        }
        return Ok(RegPat::Var {
            var: var(name)?,
            class,
            view,
        });
    }
    Reg::parse(p)
        .map(RegPat::Lit)
        .ok_or_else(|| format!("`{p}` is neither a register nor a metavariable"))
}

fn parse_imm(p: &str, var: VarFn) -> Result<ImmPat, String> {
    let body = p.strip_prefix('#').unwrap_or(p).trim();
    if let Some(name) = body.strip_prefix('?') {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad metavariable `{p}`"));
        }
        return Ok(ImmPat::Var(var(name)?));
    }
    crate::asm::operand::parse_int(body)
        .map(ImmPat::Lit)
        .ok_or_else(|| format!("bad immediate `{p}`"))
}

fn parse_operand(p: &str, var: VarFn) -> Result<OpPat, String> {
    if let Some(inner) = p.strip_prefix('[') {
        let (inner, pre) = match inner.strip_suffix('!') {
            Some(i) => (i, true),
            None => (inner, false),
        };
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("memory pattern `{p}` is not closed"))?;
        let parts = split_operands(inner);
        let base = parse_reg_or_var(parts.first().copied().unwrap_or(""), var)?;
        let offset = match parts.len() {
            1 => ImmPat::Lit(0),
            2 => parse_imm(parts[1], var)?,
            _ => {
                return Err(format!(
                    "memory pattern `{p}`: only [base], [base, #off] are supported"
                ))
            }
        };
        let mode = if pre {
            MemModePat::Pre
        } else {
            MemModePat::Offset
        };
        return Ok(OpPat::Mem { base, offset, mode });
    }
    if p.starts_with('#') {
        return Ok(OpPat::Imm(parse_imm(p, var)?));
    }
    let mut words = p.split_whitespace();
    let first = words.next().unwrap_or("").to_ascii_lowercase();
    if SHIFTS.contains(&first.as_str()) {
        let amount = match words.next() {
            Some(a) => Some(parse_imm(a, var)?),
            None => None,
        };
        if words.next().is_some() {
            return Err(format!("bad shift `{p}`"));
        }
        return Ok(OpPat::Shift { op: first, amount });
    }
    if p.starts_with('?') || Reg::parse(p).is_some() {
        return Ok(OpPat::Reg(parse_reg_or_var(p, var)?));
    }
    if crate::asm::operand::parse_int(p).is_some() {
        return Ok(OpPat::Imm(parse_imm(p, var)?));
    }
    if let Some(c) = Cond::parse(p) {
        return Ok(OpPat::Cond(c));
    }
    if p.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._$".contains(c))
    {
        return Ok(OpPat::Sym(p.to_string()));
    }
    Err(format!("cannot read operand pattern `{p}`"))
}

/// Bind `v` to variable `i`, or check it agrees with the earlier binding.
fn bind(vars: &mut [Option<Value>], i: usize, v: Value) -> bool {
    match &vars[i] {
        Some(old) => *old == v,
        None => {
            vars[i] = Some(v);
            true
        }
    }
}

fn match_reg(p: &RegPat, r: &Reg, vars: &mut [Option<Value>]) -> bool {
    match p {
        RegPat::Lit(l) => l == r,
        RegPat::Var { var, class, view } => {
            if !class.admits(r) {
                return false;
            }
            match view {
                None => bind(vars, *var, Value::Reg(r.clone())),
                Some(k) => {
                    if r.kind != *k {
                        return false;
                    }
                    match &vars[*var] {
                        Some(Value::Reg(old)) => {
                            matches!(old.kind, RegKind::X | RegKind::W) && old.num == r.num
                        }
                        Some(_) => false,
                        None => {
                            vars[*var] = Some(Value::Reg(r.clone()));
                            true
                        }
                    }
                }
            }
        }
    }
}

fn match_imm(p: &ImmPat, v: Option<i64>, vars: &mut [Option<Value>]) -> bool {
    let Some(v) = v else { return false };
    match p {
        ImmPat::Lit(l) => *l == v,
        ImmPat::Var(i) => bind(vars, *i, Value::Int(v as i128)),
    }
}

fn match_operand(p: &OpPat, o: &Operand, vars: &mut [Option<Value>]) -> bool {
    match (p, o) {
        (OpPat::Reg(rp), Operand::Reg(r)) => match_reg(rp, r, vars),
        // A bare, unclassed metavariable binds whatever operand is there.
        (
            OpPat::Reg(RegPat::Var {
                var,
                class: RegClass::Any,
                view: None,
            }),
            o,
        ) => match o {
            Operand::Cond(c) => bind(vars, *var, Value::Cond(*c)),
            Operand::Imm(i) if i.value.is_some() => {
                bind(vars, *var, Value::Int(i.value.unwrap_or(0) as i128))
            }
            Operand::Imm(_) | Operand::Sym(_) => bind(vars, *var, Value::Op(o.clone())),
            _ => false,
        },
        (OpPat::Imm(ip), Operand::Imm(i)) => match_imm(ip, i.value, vars),
        (
            OpPat::Shift { op, amount },
            Operand::Modifier {
                op: oop,
                amount: oam,
            },
        ) => {
            op == oop
                && match (amount, oam) {
                    (None, None) => true,
                    (Some(ap), Some(a)) => match_imm(ap, a.value, vars),
                    _ => false,
                }
        }
        (OpPat::Mem { base, offset, mode }, Operand::Mem(m)) => {
            if m.index.is_some() {
                return false;
            }
            let off = match &m.offset {
                None => Some(0),
                Some(i) => i.value,
            };
            let mode_ok = match (mode, &m.mode) {
                (MemModePat::Offset, AddrMode::Offset) | (MemModePat::Pre, AddrMode::PreIndex) => {
                    true
                }
                (MemModePat::Post(pp), AddrMode::PostIndex(po)) => match po.as_ref() {
                    Operand::Imm(i) => match_imm(pp, i.value, vars),
                    _ => false,
                },
                _ => false,
            };
            mode_ok && match_reg(base, &m.base, vars) && match_imm(offset, off, vars)
        }
        (OpPat::Cond(c), Operand::Cond(oc)) => c == oc,
        (OpPat::Sym(s), Operand::Sym(os)) => s == os,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str, names: &mut Vec<String>) -> InsnPat {
        InsnPat::parse(s, &mut |n| {
            Ok(names.iter().position(|x| x == n).unwrap_or_else(|| {
                names.push(n.to_string());
                names.len() - 1
            }))
        })
        .unwrap()
    }

    fn try_match(p: &str, i: &str) -> Option<Vec<Option<Value>>> {
        let mut names = Vec::new();
        let p = pat(p, &mut names);
        let mut vars = vec![None; names.len()];
        p.matches(&Insn::parse_plain(i).unwrap(), &mut vars)
            .then_some(vars)
    }

    #[test]
    fn binds_and_checks() {
        assert!(try_match("mov ?a:x, ?a", "mov x0, x0").is_some());
        assert!(try_match("mov ?a:x, ?a", "mov w0, w0").is_none());
        assert!(try_match("mov ?a:x, ?a", "mov x0, x1").is_none());
        let v = try_match("ldr ?d:w, [?b, #?o]", "ldr w0, [sp, 12]").unwrap();
        assert_eq!(v[2], Some(Value::Int(12)));
        let v = try_match("ldr ?d:w, [?b, #?o]", "ldr w0, [x1]").unwrap();
        assert_eq!(v[2], Some(Value::Int(0)));
        assert!(try_match("ldr ?d, [?b, #?o]", "ldr w0, [x1, #8]!").is_none());
        assert!(try_match("ldr ?d, [?b, #?o]", "ldr w0, [x1, x2]").is_none());
        assert!(try_match("ldr ?d, [?b], #?o", "ldr w0, [x1], #8").is_some());
        assert!(
            try_match("uxtw ?d.x, ?d", "uxtw x3, w3").is_none(),
            "view after plain needs binding first"
        );
        assert!(try_match("add ?d, ?d.w, #0", "add w3, w3, #0").is_some());
    }

    #[test]
    fn conditions_shifts_wildcards() {
        let v = try_match("b.?cc ?l", "b.ne .L3").unwrap();
        assert_eq!(v[0], Some(Value::Cond(Cond::Ne)));
        assert!(try_match("b.eq ?l", "b.ne .L3").is_none());
        let v = try_match("movk ?d, #?b, lsl #?s", "movk x0, 0x1234").unwrap();
        assert_eq!(v[2], Some(Value::Int(0)));
        let v = try_match("movk ?d, #?b, lsl #?s", "movk x0, 0x1234, lsl 16").unwrap();
        assert_eq!(v[2], Some(Value::Int(16)));
        assert!(try_match("* ?d:w, ..", "add w0, w1, w2").is_some());
        assert!(try_match("* ?d:w, ..", "add x0, x1, x2").is_none());
        assert!(try_match("*", "b.eq .L1").is_some());
        assert!(try_match("cset ?d, ?c", "cset w0, eq").is_some());
    }

    #[test]
    fn rejects_bad_patterns() {
        let mut var = |_: &str| Ok(0);
        assert!(InsnPat::parse("mov ?a:y, ?a", &mut var).is_err());
        assert!(InsnPat::parse("b.zz ?l", &mut var).is_err());
        assert!(InsnPat::parse("ldr x0, [?b", &mut var).is_err());
        assert!(InsnPat::parse("* x0", &mut var).is_err());
        assert!(InsnPat::parse("mov ?a.q, ?a", &mut var).is_err());
    }
}
