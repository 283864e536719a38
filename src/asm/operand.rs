//! Typed operands of AArch64 instructions and their parser.
//!
//! The parser is strict about shape (balanced brackets, known register views
//! inside memory operands and lists) and lenient about content it does not
//! interpret (symbol expressions stay text), so that hand-written code parses
//! and only genuinely malformed lines are errors.

use super::reg::{Reg, RegKind};
use std::collections::HashMap;
use std::fmt;

/// Condition codes for `b.cond`, `csel`, `ccmp`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Ne,
    Hs,
    Lo,
    Mi,
    Pl,
    Vs,
    Vc,
    Hi,
    Ls,
    Ge,
    Lt,
    Gt,
    Le,
    Al,
    Nv,
}

impl Cond {
    pub fn parse(s: &str) -> Option<Cond> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => Cond::Eq,
            "ne" => Cond::Ne,
            "hs" | "cs" => Cond::Hs,
            "lo" | "cc" => Cond::Lo,
            "mi" => Cond::Mi,
            "pl" => Cond::Pl,
            "vs" => Cond::Vs,
            "vc" => Cond::Vc,
            "hi" => Cond::Hi,
            "ls" => Cond::Ls,
            "ge" => Cond::Ge,
            "lt" => Cond::Lt,
            "gt" => Cond::Gt,
            "le" => Cond::Le,
            "al" => Cond::Al,
            "nv" => Cond::Nv,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Cond::Eq => "eq",
            Cond::Ne => "ne",
            Cond::Hs => "hs",
            Cond::Lo => "lo",
            Cond::Mi => "mi",
            Cond::Pl => "pl",
            Cond::Vs => "vs",
            Cond::Vc => "vc",
            Cond::Hi => "hi",
            Cond::Ls => "ls",
            Cond::Ge => "ge",
            Cond::Lt => "lt",
            Cond::Gt => "gt",
            Cond::Le => "le",
            Cond::Al => "al",
            Cond::Nv => "nv",
        }
    }

    /// The condition that holds exactly when `self` does not.
    pub fn invert(self) -> Cond {
        use Cond::*;
        match self {
            Eq => Ne,
            Ne => Eq,
            Hs => Lo,
            Lo => Hs,
            Mi => Pl,
            Pl => Mi,
            Vs => Vc,
            Vc => Vs,
            Hi => Ls,
            Ls => Hi,
            Ge => Lt,
            Lt => Ge,
            Gt => Le,
            Le => Gt,
            Al => Nv,
            Nv => Al,
        }
    }
}

/// An immediate: its text as written (without `#`) and its value when it is
/// a plain integer. Relocation operators (`:lo12:sym`) keep `value: None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Imm {
    pub text: String,
    pub value: Option<i64>,
    /// Written with a leading `#`.
    pub hash: bool,
}

impl Imm {
    pub fn new(value: i64) -> Self {
        Imm {
            text: value.to_string(),
            value: Some(value),
            hash: true,
        }
    }

    fn parse(text: &str, hash: bool) -> Imm {
        Imm {
            text: text.to_string(),
            value: parse_int(text),
            hash,
        }
    }
}

/// Parse an integer literal as GNU as writes them: decimal, `0x` hex, `0b`
/// binary, optional sign.
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.trim_start()),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v: i128 = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i128::from_str_radix(b, 2).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse().ok()?
    } else {
        return None;
    };
    let v = if neg { -v } else { v };
    // Values up to 2^64-1 are written for 64-bit immediates; keep their bits.
    if v > u64::MAX as i128 || v < i64::MIN as i128 {
        return None;
    }
    Some(v as u64 as i64)
}

/// How a memory operand updates its base register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddrMode {
    /// `[base, off]`: no writeback.
    Offset,
    /// `[base, off]!`: base += off before the access.
    PreIndex,
    /// `[base], off`: base += off after the access.
    PostIndex(Box<Operand>),
}

/// A memory operand.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mem {
    pub base: Reg,
    /// Immediate or relocation offset (`#16`, `:lo12:sym`).
    pub offset: Option<Imm>,
    /// Register offset with optional extend/shift (`x2, lsl #3`).
    pub index: Option<(Reg, Option<Box<Operand>>)>,
    pub mode: AddrMode,
}

impl Mem {
    pub fn writes_back(&self) -> bool {
        !matches!(self.mode, AddrMode::Offset)
    }
}

/// One operand.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Reg(Reg),
    /// `{v0.4s, v1.4s}` or `{v0.4s-v3.4s}`, optionally `[lane]`.
    RegList {
        regs: Vec<Reg>,
        lane: Option<u8>,
    },
    Imm(Imm),
    /// Shift or extend modifier: `lsl #3`, `sxtw`, `uxtw #2`, `msl #8`.
    Modifier {
        op: String,
        amount: Option<Imm>,
    },
    Mem(Mem),
    Cond(Cond),
    /// A symbol expression: label, `1f`, `foo+8`, `:got:sym`, `=literal`.
    Sym(String),
}

impl Operand {
    pub fn reg(&self) -> Option<&Reg> {
        match self {
            Operand::Reg(r) => Some(r),
            _ => None,
        }
    }
    pub fn imm_value(&self) -> Option<i64> {
        match self {
            Operand::Imm(i) => i.value,
            _ => None,
        }
    }
}

/// Why an operand list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperandError(pub String);

const SHIFTS: &[&str] = &[
    "lsl", "lsr", "asr", "ror", "msl", "uxtb", "uxth", "uxtw", "uxtx", "sxtb", "sxth", "sxtw",
    "sxtx",
];

/// Split on commas that are not inside `[]`, `{}` or `()`.
fn split_top(s: &str) -> Result<Vec<&str>, OperandError> {
    let mut out = Vec::new();
    let mut depth: i32 = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(OperandError(format!("unbalanced `{c}`")));
                }
            }
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(OperandError("unbalanced brackets".into()));
    }
    let last = s[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    if out.iter().any(|p| p.is_empty()) {
        return Err(OperandError("empty operand".into()));
    }
    Ok(out)
}

/// Parse an operand list. `aliases` holds `.req` names in force.
pub fn parse_operands(
    s: &str,
    takes_cond: bool,
    aliases: &HashMap<String, Reg>,
) -> Result<Vec<Operand>, OperandError> {
    let parts = split_top(s)?;
    let mut ops: Vec<Operand> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let op = parse_one(p, takes_cond, aliases)?;
        // Post-index: `[x0], #16` or `[x0], x2` folds into the memory operand.
        if let Operand::Mem(mut m) = op {
            let bare = p.trim_end().ends_with(']') && m.offset.is_none() && m.index.is_none();
            if bare && m.mode == AddrMode::Offset && i + 1 < parts.len() {
                let next = parse_one(parts[i + 1], false, aliases)?;
                if matches!(next, Operand::Imm(_) | Operand::Reg(_)) {
                    m.mode = AddrMode::PostIndex(Box::new(next));
                    i += 1;
                }
            }
            ops.push(Operand::Mem(m));
        } else {
            ops.push(op);
        }
        i += 1;
    }
    Ok(ops)
}

fn lookup_reg(s: &str, aliases: &HashMap<String, Reg>) -> Option<Reg> {
    Reg::parse(s).or_else(|| aliases.get(&s.to_ascii_lowercase()).cloned())
}

fn check_chars(s: &str) -> Result<(), OperandError> {
    if s.contains('%') {
        return Err(OperandError(format!(
            "`{s}`: `%` registers are x86 syntax, not AArch64"
        )));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(OperandError(format!(
            "unexpected character `{}` in `{s}`",
            c.escape_default()
        )));
    }
    Ok(())
}

fn is_arm32_reg(s: &str) -> bool {
    let t = s.to_ascii_lowercase();
    matches!(t.as_str(), "ip" | "pc")
        || t.strip_prefix('r')
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| n <= 15 && (t == "r0" || !t[1..].starts_with('0')))
}

fn parse_one(
    p: &str,
    takes_cond: bool,
    aliases: &HashMap<String, Reg>,
) -> Result<Operand, OperandError> {
    check_chars(p)?;
    if let Some(inner) = p.strip_prefix('[') {
        return parse_mem(inner, aliases).map(Operand::Mem);
    }
    if let Some(inner) = p.strip_prefix('{') {
        return parse_list(inner, aliases);
    }
    if let Some(rest) = p.strip_prefix('#') {
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(OperandError("`#` without a value".into()));
        }
        return Ok(Operand::Imm(Imm::parse(rest, true)));
    }
    if p.starts_with(':') {
        return Ok(Operand::Imm(Imm::parse(p, false)));
    }
    // Shift/extend: `lsl #3`, `lsl 3`, `sxtw`.
    let mut words = p.split_whitespace();
    let first = words.next().unwrap_or("");
    if SHIFTS.contains(&first.to_ascii_lowercase().as_str()) {
        let rest: String = words.collect::<Vec<_>>().join(" ");
        let amount = if rest.is_empty() {
            None
        } else {
            let r = rest.strip_prefix('#').unwrap_or(&rest).trim();
            Some(Imm::parse(r, rest.starts_with('#')))
        };
        return Ok(Operand::Modifier {
            op: first.to_ascii_lowercase(),
            amount,
        });
    }
    if let Some(r) = lookup_reg(p, aliases) {
        return Ok(Operand::Reg(r));
    }
    if takes_cond {
        if let Some(c) = Cond::parse(p) {
            return Ok(Operand::Cond(c));
        }
    }
    if parse_int(p).is_some() {
        return Ok(Operand::Imm(Imm::parse(p, false)));
    }
    if is_arm32_reg(p) {
        return Err(OperandError(format!(
            "`{p}` is a 32-bit Arm register, not AArch64"
        )));
    }
    if p.contains(char::is_whitespace) && !p.contains(['+', '-', '*', '(', '<', '>', '|', '&', '/'])
    {
        return Err(OperandError(format!("cannot tokenize operand `{p}`")));
    }
    Ok(Operand::Sym(p.to_string()))
}

fn parse_mem(inner: &str, aliases: &HashMap<String, Reg>) -> Result<Mem, OperandError> {
    let (body, pre) = match inner.trim_end().strip_suffix('!') {
        Some(b) => (b.trim_end(), true),
        None => (inner.trim_end(), false),
    };
    let body = body
        .strip_suffix(']')
        .ok_or_else(|| OperandError(format!("memory operand `[{inner}` is not closed")))?;
    let parts = split_top(body)?;
    let base_s = parts
        .first()
        .ok_or_else(|| OperandError("empty memory operand".into()))?;
    let base = lookup_reg(base_s, aliases)
        .filter(|r| matches!(r.kind, RegKind::X | RegKind::Sp))
        .ok_or_else(|| OperandError(format!("`{base_s}` is not a 64-bit base register")))?;
    let mut mem = Mem {
        base,
        offset: None,
        index: None,
        mode: if pre {
            AddrMode::PreIndex
        } else {
            AddrMode::Offset
        },
    };
    match parts.len() {
        1 => {}
        2 | 3 => {
            match parse_one(parts[1], false, aliases)? {
                Operand::Imm(i) => mem.offset = Some(i),
                Operand::Reg(r) if r.is_general() => {
                    let ext = match parts.get(2) {
                        Some(e) => match parse_one(e, false, aliases)? {
                            m @ Operand::Modifier { .. } => Some(Box::new(m)),
                            _ => return Err(OperandError(format!("bad index modifier `{e}`"))),
                        },
                        None => None,
                    };
                    mem.index = Some((r, ext));
                }
                Operand::Sym(s) if parts.len() == 2 => {
                    mem.offset = Some(Imm {
                        text: s,
                        value: None,
                        hash: false,
                    })
                }
                _ => return Err(OperandError(format!("bad memory offset `{}`", parts[1]))),
            }
            if parts.len() == 3 && mem.index.is_none() {
                return Err(OperandError(format!("bad memory operand `[{inner}`")));
            }
        }
        _ => return Err(OperandError(format!("bad memory operand `[{inner}`"))),
    }
    Ok(mem)
}

fn parse_list(inner: &str, aliases: &HashMap<String, Reg>) -> Result<Operand, OperandError> {
    let close = inner
        .find('}')
        .ok_or_else(|| OperandError("register list is not closed".into()))?;
    let (body, tail) = (&inner[..close], inner[close + 1..].trim());
    let lane = if tail.is_empty() {
        None
    } else {
        let l = tail
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.trim().parse::<u8>().ok())
            .ok_or_else(|| OperandError(format!("bad lane `{tail}`")))?;
        Some(l)
    };
    let mut regs = Vec::new();
    for item in body.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((a, b)) = item.split_once('-') {
            let (ra, rb) = (lookup_reg(a.trim(), aliases), lookup_reg(b.trim(), aliases));
            match (ra, rb) {
                (Some(ra), Some(rb)) if ra.kind == RegKind::V && rb.kind == RegKind::V => {
                    let mut n = ra.num;
                    loop {
                        let mut r = ra.clone();
                        r.num = n;
                        regs.push(r);
                        if n == rb.num || regs.len() > 4 {
                            break;
                        }
                        n = (n + 1) % 32;
                    }
                }
                _ => return Err(OperandError(format!("bad register range `{item}`"))),
            }
        } else {
            match lookup_reg(item, aliases) {
                Some(r) if r.kind == RegKind::V => regs.push(r),
                _ => {
                    return Err(OperandError(format!(
                    "`{item}` in a register list is not a vector register (32-bit Arm push/pop?)"
                )))
                }
            }
        }
    }
    if regs.is_empty() || regs.len() > 4 {
        return Err(OperandError(
            "register list must hold 1 to 4 vector registers".into(),
        ));
    }
    Ok(Operand::RegList { regs, lane })
}

impl fmt::Display for Imm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hash {
            f.write_str("#")?;
        }
        f.write_str(&self.text)
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "{r}"),
            Operand::RegList { regs, lane } => {
                let names: Vec<String> = regs.iter().map(|r| r.to_string()).collect();
                write!(f, "{{{}}}", names.join(", "))?;
                if let Some(l) = lane {
                    write!(f, "[{l}]")?;
                }
                Ok(())
            }
            Operand::Imm(i) => write!(f, "{i}"),
            Operand::Modifier { op, amount } => match amount {
                Some(a) => write!(f, "{op} {a}"),
                None => f.write_str(op),
            },
            Operand::Mem(m) => {
                write!(f, "[{}", m.base)?;
                if let Some(o) = &m.offset {
                    write!(f, ", {o}")?;
                }
                if let Some((r, ext)) = &m.index {
                    write!(f, ", {r}")?;
                    if let Some(e) = ext {
                        write!(f, ", {e}")?;
                    }
                }
                f.write_str("]")?;
                match &m.mode {
                    AddrMode::Offset => Ok(()),
                    AddrMode::PreIndex => f.write_str("!"),
                    AddrMode::PostIndex(o) => write!(f, ", {o}"),
                }
            }
            Operand::Cond(c) => f.write_str(c.name()),
            Operand::Sym(s) => f.write_str(s),
        }
    }
}
