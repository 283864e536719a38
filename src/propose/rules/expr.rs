//! Guard and computed-field expressions of rule files (`pow2(?c)`,
//! `?o2 == ?o1 + 8`, `log2(?c)`, `invert(?cc)`, `dead(?t)`).
//!
//! A small precedence-climbing parser over a C-like syntax, and an evaluator
//! over [`Value`]s. Evaluation failures (a type mismatch, `log2` of a
//! non-power of two, an overflow) make the rule not fire rather than panic:
//! the rule simply does not apply to that match.

use super::imm;
use crate::asm::{Cond, Operand, Reg, RegKind};
use crate::semantics::Loc;

/// What a metavariable or expression stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Integers are wide so that 64-bit arithmetic on constants cannot wrap.
    Int(i128),
    Bool(bool),
    Reg(Reg),
    Cond(Cond),
    /// A location named by keyword (`nzcv`).
    Loc(Loc),
    /// Any other operand (a label, a relocation, a register-or-immediate
    /// operand bound by a bare metavariable), rendered as written.
    Op(Operand),
}

impl Value {
    /// Text to put into a replacement instruction.
    pub fn render(&self) -> String {
        match self {
            Value::Int(v) => render_int(*v),
            Value::Bool(b) => b.to_string(),
            Value::Reg(r) => r.to_string(),
            Value::Cond(c) => c.name().to_string(),
            Value::Loc(l) => l.to_string(),
            Value::Op(o) => o.to_string(),
        }
    }
}

/// Small and negative values in decimal, large ones in hex (how constants
/// are usually read: `#4095`, `#-1`, `#0xffff0000`).
fn render_int(v: i128) -> String {
    if (-65536..=65536).contains(&v) {
        v.to_string()
    } else if v < 0 {
        format!("{v}")
    } else {
        format!("{v:#x}")
    }
}

/// What an expression may ask about the match and its window.
pub trait Facts {
    /// `loc` is not read after the match before being overwritten, and is
    /// not live out of the window. `None` (a zero register) is always dead.
    fn dead_after_match(&self, loc: Option<Loc>) -> bool;
    /// Matched instruction `k` (1-based) is removable: modelled, falls
    /// through, touches no memory, and everything it writes is dead after it.
    fn dead_insn(&self, k: usize) -> bool;
    /// Matched instruction `k` (1-based) writes the 32-bit register `r`
    /// through its destination operand, which zeroes the upper half.
    fn writes_w(&self, k: usize, r: &Reg) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Pow2,
    Log2,
    Mask,
    Width,
    Num,
    Dead,
    DeadInsn,
    WritesW,
    Invert,
    OneOf,
    LogImm,
    MovImm,
    MovZ,
    MovN,
    Movk,
    Sext,
}

impl Func {
    fn lookup(name: &str) -> Option<(Func, usize, bool)> {
        // (function, arity, variadic beyond arity)
        Some(match name {
            "pow2" => (Func::Pow2, 1, false),
            "log2" => (Func::Log2, 1, false),
            "mask" => (Func::Mask, 2, false),
            "width" => (Func::Width, 1, false),
            "num" => (Func::Num, 1, false),
            "dead" => (Func::Dead, 1, false),
            "dead_insn" => (Func::DeadInsn, 1, false),
            "writes_w" => (Func::WritesW, 2, false),
            "invert" => (Func::Invert, 1, false),
            "oneof" => (Func::OneOf, 2, true),
            "logimm" => (Func::LogImm, 2, false),
            "movimm" => (Func::MovImm, 2, false),
            "movz" => (Func::MovZ, 2, false),
            "movn" => (Func::MovN, 2, false),
            "movk" => (Func::Movk, 3, false),
            "sext" => (Func::Sext, 2, false),
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    BitNot(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

/// Evaluation found the rule does not apply (or the rule is ill-typed; the
/// rule tests catch those).
#[derive(Debug)]
pub struct NoMatch;

type R<T> = Result<T, NoMatch>;

impl Expr {
    pub fn eval(&self, vars: &[Option<Value>], facts: &dyn Facts) -> R<Value> {
        Ok(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Var(i) => vars.get(*i).cloned().flatten().ok_or(NoMatch)?,
            Expr::Not(e) => Value::Bool(!e.eval(vars, facts)?.as_bool()?),
            Expr::Neg(e) => Value::Int(-e.eval(vars, facts)?.as_int()?),
            Expr::BitNot(e) => Value::Int(!e.eval(vars, facts)?.as_int()?),
            Expr::Bin(op, a, b) => {
                // Short-circuit the logical operators so that guards can
                // protect later conjuncts (`pow2(?c) && log2(?c) < 32`).
                match op {
                    BinOp::And => {
                        return Ok(Value::Bool(
                            a.eval(vars, facts)?.as_bool()? && b.eval(vars, facts)?.as_bool()?,
                        ))
                    }
                    BinOp::Or => {
                        return Ok(Value::Bool(
                            a.eval(vars, facts)?.as_bool()? || b.eval(vars, facts)?.as_bool()?,
                        ))
                    }
                    _ => {}
                }
                let (a, b) = (a.eval(vars, facts)?, b.eval(vars, facts)?);
                match op {
                    BinOp::Eq => Value::Bool(same(&a, &b)),
                    BinOp::Ne => Value::Bool(!same(&a, &b)),
                    _ => {
                        let (x, y) = (a.as_int()?, b.as_int()?);
                        arith(*op, x, y)?
                    }
                }
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                // `dead_insn`/`writes_w` take an instruction index, not a
                // value; they are evaluated like any other argument.
                for a in args {
                    vals.push(a.eval(vars, facts)?);
                }
                call(*f, &vals, facts)?
            }
        })
    }
}

impl Value {
    fn as_int(&self) -> R<i128> {
        match self {
            Value::Int(v) => Ok(*v),
            Value::Op(o) => o.imm_value().map(i128::from).ok_or(NoMatch),
            _ => Err(NoMatch),
        }
    }
    fn as_bool(&self) -> R<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            _ => Err(NoMatch),
        }
    }
    fn as_reg(&self) -> R<&Reg> {
        match self {
            Value::Reg(r) => Ok(r),
            Value::Op(Operand::Reg(r)) => Ok(r),
            _ => Err(NoMatch),
        }
    }
}

/// Equality as guards mean it: registers are the same when they name the same
/// architectural register (`w3` and `x3` are the same register), so that
/// `?t != ?n` rules out any overlap.
fn same(a: &Value, b: &Value) -> bool {
    let zero = |r: &Reg| matches!(r.kind, RegKind::Xzr | RegKind::Wzr);
    match (a.as_reg(), b.as_reg()) {
        (Ok(x), Ok(y)) => {
            if zero(x) || zero(y) {
                zero(x) && zero(y)
            } else {
                x.loc() == y.loc()
            }
        }
        _ => match (a.as_int(), b.as_int()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
    }
}

fn arith(op: BinOp, x: i128, y: i128) -> R<Value> {
    let shift = |y: i128| u32::try_from(y).ok().filter(|s| *s < 127).ok_or(NoMatch);
    Ok(match op {
        BinOp::Lt => Value::Bool(x < y),
        BinOp::Le => Value::Bool(x <= y),
        BinOp::Gt => Value::Bool(x > y),
        BinOp::Ge => Value::Bool(x >= y),
        BinOp::BitOr => Value::Int(x | y),
        BinOp::BitXor => Value::Int(x ^ y),
        BinOp::BitAnd => Value::Int(x & y),
        BinOp::Shl => Value::Int(x.checked_shl(shift(y)?).ok_or(NoMatch)?),
        BinOp::Shr => Value::Int(x >> shift(y)?),
        BinOp::Add => Value::Int(x.checked_add(y).ok_or(NoMatch)?),
        BinOp::Sub => Value::Int(x.checked_sub(y).ok_or(NoMatch)?),
        BinOp::Mul => Value::Int(x.checked_mul(y).ok_or(NoMatch)?),
        BinOp::Div => Value::Int(x.checked_div(y).ok_or(NoMatch)?),
        BinOp::Rem => Value::Int(x.checked_rem(y).ok_or(NoMatch)?),
        BinOp::Or | BinOp::And | BinOp::Eq | BinOp::Ne => unreachable!("handled by the caller"),
    })
}

fn width_of(r: &Reg) -> R<u32> {
    Ok(match r.kind {
        RegKind::W | RegKind::Wsp | RegKind::Wzr | RegKind::S => 32,
        RegKind::X | RegKind::Sp | RegKind::Xzr | RegKind::D => 64,
        RegKind::Q => 128,
        RegKind::H => 16,
        RegKind::B => 8,
        RegKind::V => return Err(NoMatch),
    })
}

/// A constant as the `width`-bit pattern the hardware holds.
fn bits(v: i128, width: i128) -> R<u64> {
    let w = u32::try_from(width)
        .ok()
        .filter(|w| (1..=64).contains(w))
        .ok_or(NoMatch)?;
    Ok((v as u64) & imm::mask(w))
}

fn call(f: Func, a: &[Value], facts: &dyn Facts) -> R<Value> {
    let int = |i: usize| a[i].as_int();
    let index = |i: usize| usize::try_from(a[i].as_int()?).map_err(|_| NoMatch);
    Ok(match f {
        Func::Pow2 => {
            let v = int(0)?;
            Value::Bool(v > 0 && (v & (v - 1)) == 0)
        }
        Func::Log2 => {
            let v = int(0)?;
            if v <= 0 || (v & (v - 1)) != 0 {
                return Err(NoMatch);
            }
            Value::Int(v.trailing_zeros() as i128)
        }
        Func::Mask => Value::Int(bits(int(0)?, int(1)?)? as i128),
        Func::Sext => {
            let w = int(1)?;
            let b = bits(int(0)?, w)?;
            let sh = 64 - w as u32;
            Value::Int((((b << sh) as i64) >> sh) as i128)
        }
        Func::Width => Value::Int(width_of(a[0].as_reg()?)? as i128),
        Func::Num => Value::Int(a[0].as_reg()?.num as i128),
        Func::Dead => Value::Bool(match &a[0] {
            Value::Loc(l) => facts.dead_after_match(Some(*l)),
            v => facts.dead_after_match(v.as_reg()?.loc()),
        }),
        Func::DeadInsn => Value::Bool(facts.dead_insn(index(0)?)),
        Func::WritesW => Value::Bool(facts.writes_w(index(0)?, a[1].as_reg()?)),
        Func::Invert => match &a[0] {
            Value::Cond(c) => Value::Cond(c.invert()),
            Value::Op(Operand::Cond(c)) => Value::Cond(c.invert()),
            _ => return Err(NoMatch),
        },
        Func::OneOf => Value::Bool(a[1..].iter().any(|b| same(&a[0], b))),
        Func::LogImm | Func::MovImm | Func::MovZ | Func::MovN => {
            let w = int(1)?;
            let v = bits(int(0)?, w)?;
            let w = w as u32;
            Value::Bool(match f {
                Func::LogImm => imm::is_logical_imm(v, w),
                Func::MovImm => imm::is_mov_imm(v, w),
                Func::MovZ => imm::is_movz_imm(v, w),
                _ => imm::is_movn_imm(v, w),
            })
        }
        Func::Movk => {
            let (old, chunk, sh) = (int(0)?, int(1)?, int(2)?);
            if !(0..=0xffff).contains(&chunk) || !matches!(sh, 0 | 16 | 32 | 48) {
                return Err(NoMatch);
            }
            let old = old as u64 as i128;
            Value::Int((old & !(0xffff << sh)) | (chunk << sh))
        }
    })
}

/// Parse error with a column-free message; the rule-file parser adds
/// file:line.
pub type ParseErr = String;

/// Parses an expression; `var` resolves `?name` to a variable index.
pub fn parse(
    src: &str,
    var: &mut dyn FnMut(&str) -> Result<usize, ParseErr>,
) -> Result<Expr, ParseErr> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, var };
    let e = p.expr(0)?;
    if p.pos != p.toks.len() {
        return Err(format!(
            "unexpected `{}` in expression `{src}`",
            p.toks[p.pos]
        ));
    }
    Ok(e)
}

fn lex(s: &str) -> Result<Vec<String>, ParseErr> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let word = |i: usize| {
            let mut j = i;
            while j < cs.len() && (cs[j].is_ascii_alphanumeric() || cs[j] == '_') {
                j += 1;
            }
            j
        };
        if c == '?' || c.is_ascii_alphanumeric() || c == '_' {
            let j = word(i + 1);
            out.push(cs[i..j].iter().collect());
            i = j;
            continue;
        }
        let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
        if ["||", "&&", "==", "!=", "<=", ">=", "<<", ">>"].contains(&two.as_str()) {
            out.push(two);
            i += 2;
            continue;
        }
        if "()+-*/%&|^~!<>,".contains(c) {
            out.push(c.to_string());
            i += 1;
            continue;
        }
        return Err(format!("unexpected character `{c}` in expression `{s}`"));
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<String>,
    pos: usize,
    var: &'a mut dyn FnMut(&str) -> Result<usize, ParseErr>,
}

fn binop(t: &str) -> Option<(BinOp, u8)> {
    Some(match t {
        "||" => (BinOp::Or, 1),
        "&&" => (BinOp::And, 2),
        "==" => (BinOp::Eq, 3),
        "!=" => (BinOp::Ne, 3),
        "<" => (BinOp::Lt, 3),
        "<=" => (BinOp::Le, 3),
        ">" => (BinOp::Gt, 3),
        ">=" => (BinOp::Ge, 3),
        "|" => (BinOp::BitOr, 4),
        "^" => (BinOp::BitXor, 5),
        "&" => (BinOp::BitAnd, 6),
        "<<" => (BinOp::Shl, 7),
        ">>" => (BinOp::Shr, 7),
        "+" => (BinOp::Add, 8),
        "-" => (BinOp::Sub, 8),
        "*" => (BinOp::Mul, 9),
        "/" => (BinOp::Div, 9),
        "%" => (BinOp::Rem, 9),
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn next(&mut self) -> Result<String, ParseErr> {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or("expression ends early")?;
        self.pos += 1;
        Ok(t)
    }
    fn expect(&mut self, t: &str) -> Result<(), ParseErr> {
        match self.next()? {
            ref x if x == t => Ok(()),
            x => Err(format!("expected `{t}`, found `{x}`")),
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ParseErr> {
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.peek().and_then(binop) {
            if prec <= min {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(prec)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ParseErr> {
        match self.peek() {
            Some("!") => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some("-") => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some("~") => {
                self.pos += 1;
                Ok(Expr::BitNot(Box::new(self.unary()?)))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseErr> {
        let t = self.next()?;
        if t == "(" {
            let e = self.expr(0)?;
            self.expect(")")?;
            return Ok(e);
        }
        if let Some(name) = t.strip_prefix('?') {
            if name.is_empty() {
                return Err("`?` without a name".into());
            }
            return Ok(Expr::Var((self.var)(name)?));
        }
        if t.starts_with(|c: char| c.is_ascii_digit()) {
            let v = crate::asm::operand::parse_int(&t).ok_or(format!("bad number `{t}`"))?;
            // Literals are written as unsigned bit patterns (0xffffffffffffffff).
            let v = if t.starts_with("0x") || t.starts_with("0b") {
                v as u64 as i128
            } else {
                v as i128
            };
            return Ok(Expr::Lit(Value::Int(v)));
        }
        if self.peek() == Some("(") {
            let (f, arity, variadic) =
                Func::lookup(&t).ok_or_else(|| format!("unknown function `{t}`"))?;
            self.pos += 1;
            let mut args = Vec::new();
            if self.peek() != Some(")") {
                loop {
                    args.push(self.expr(0)?);
                    if self.peek() == Some(",") {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
            }
            self.expect(")")?;
            if args.len() < arity || (!variadic && args.len() != arity) {
                return Err(format!(
                    "`{t}` takes {arity} argument(s), got {}",
                    args.len()
                ));
            }
            return Ok(Expr::Call(f, args));
        }
        match t.as_str() {
            "true" => return Ok(Expr::Lit(Value::Bool(true))),
            "false" => return Ok(Expr::Lit(Value::Bool(false))),
            "nzcv" | "flags" => return Ok(Expr::Lit(Value::Loc(Loc::Nzcv))),
            _ => {}
        }
        if let Some(c) = Cond::parse(&t) {
            return Ok(Expr::Lit(Value::Cond(c)));
        }
        Err(format!("unexpected `{t}` in expression"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFacts;
    impl Facts for NoFacts {
        fn dead_after_match(&self, _: Option<Loc>) -> bool {
            false
        }
        fn dead_insn(&self, _: usize) -> bool {
            false
        }
        fn writes_w(&self, _: usize, _: &Reg) -> bool {
            false
        }
    }

    fn eval(src: &str, vars: &[Option<Value>]) -> Option<Value> {
        let names = ["a", "b", "c"];
        let e = parse(src, &mut |n| {
            names
                .iter()
                .position(|x| *x == n)
                .ok_or(format!("unknown ?{n}"))
        })
        .unwrap();
        e.eval(vars, &NoFacts).ok()
    }

    #[test]
    fn precedence_and_functions() {
        let v = [Some(Value::Int(8)), Some(Value::Int(16)), None];
        assert_eq!(
            eval("?b == ?a + 8 && ?a % 8 == 0", &v),
            Some(Value::Bool(true))
        );
        assert_eq!(eval("1 + 2 * 3 << 1", &v), Some(Value::Int(14)));
        assert_eq!(eval("log2(?a) + 1", &v), Some(Value::Int(4)));
        assert_eq!(eval("log2(12)", &v), None);
        assert_eq!(
            eval("pow2(?c)", &v),
            None,
            "unbound variable does not match"
        );
        assert_eq!(
            eval("movk(0xffff, 0x1234, 16)", &v),
            Some(Value::Int(0x1234_ffff))
        );
        assert_eq!(eval("invert(lt)", &v), Some(Value::Cond(Cond::Ge)));
        assert_eq!(eval("oneof(lt, eq, ne)", &v), Some(Value::Bool(false)));
        assert_eq!(eval("sext(0xffffffff, 32)", &v), Some(Value::Int(-1)));
        assert_eq!(eval("!false || log2(3) == 1", &v), Some(Value::Bool(true)));
    }

    #[test]
    fn parse_errors() {
        let mut var = |_: &str| Ok(0);
        assert!(parse("pow3(1)", &mut var)
            .unwrap_err()
            .contains("unknown function"));
        assert!(parse("log2(1, 2)", &mut var)
            .unwrap_err()
            .contains("takes 1"));
        assert!(parse("1 +", &mut var).is_err());
        assert!(parse("1 2", &mut var).is_err());
        assert!(parse("1 $ 2", &mut var).is_err());
    }
}
