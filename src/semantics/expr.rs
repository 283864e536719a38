//! Typed expression trees: the values of the chain-of-code trace
//! (`prompts/README.md`) and the symbolic reading of the semantics.
//!
//! An [`Expr`] is a tree of the trace's operations over leaves (registers'
//! entry values, integer literals, operand text the trace copies as
//! written). Its [`Display`](fmt::Display) prints exactly the trace syntax:
//! `x1 + 1`, `flags(x1 - x2)`, `cond(lt, w1, w2)`, `zext(mem8[x0], 8)`,
//! `lsl(x2, 3)`, `umulh(x2, x0)`, with `( )` only where a tree says so
//! ([`Expr::Group`]).
//!
//! Two ways to build one:
//!
//! * `semantics::transfer` builds the trace from the assembly instruction,
//!   one constructor per trace operation (`subs x0, x1, x2` is
//!   `x1 - x2` and `flags(x1 - x2)`), and substitutes and simplifies on the
//!   trees ([`Expr::substitute`], [`Expr::simplified`]). That is how the
//!   text the shipped adapter was trained on is kept byte for byte: the
//!   semantics ([`super::exec`]) say the same things in a lower vocabulary
//!   (a 32-bit `add` is a `zext` of a 64-bit one, a subtraction is
//!   `a + ~b + 1`, the flags are four bit extractions), and recovering the
//!   trace's words from them would be a pattern matcher whose every miss
//!   changes the text.
//! * [`Symbolic`] is an instance of [`Domain`] whose values are `Expr`s, so
//!   `exec::step` over it gives each register's final value as a tree over
//!   the entry values, in that lower vocabulary.

use super::domain::{BinOp, CmpOp, Domain, Fault, Flags, UnOp};
use super::exec::Regs;
use super::Loc;
use crate::asm::Reg;
use std::fmt;

/// The trace's infix operators; each is printed with a space either side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Infix {
    Add,
    Sub,
    And,
    Or,
    Xor,
    /// `a & ~ b` (`bic`; the trace spaces the `~` here, unlike `~a`)
    Bic,
    /// `a | ~ b`
    Orn,
    /// `a ^ ~ b`
    Eon,
    Mul,
}

impl Infix {
    pub fn symbol(self) -> &'static str {
        match self {
            Infix::Add => "+",
            Infix::Sub => "-",
            Infix::And => "&",
            Infix::Or => "|",
            Infix::Xor => "^",
            Infix::Bic => "& ~",
            Infix::Orn => "| ~",
            Infix::Eon => "^ ~",
            Infix::Mul => "*",
        }
    }

    /// The value of `a op b` on literals, where the trace folds it: the
    /// plain operators, in 64-bit signed arithmetic without overflow.
    fn fold(self, a: i64, b: i64) -> Option<i64> {
        match self {
            Infix::Add => a.checked_add(b),
            Infix::Sub => a.checked_sub(b),
            Infix::Mul => a.checked_mul(b),
            Infix::And => Some(a & b),
            Infix::Or => Some(a | b),
            Infix::Xor => Some(a ^ b),
            Infix::Bic | Infix::Orn | Infix::Eon => None,
        }
    }
}

/// Shifts and rotates, written as functions: `lsl(a, n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shift {
    Lsl,
    Lsr,
    Asr,
    Ror,
}

impl Shift {
    pub fn name(self) -> &'static str {
        match self {
            Shift::Lsl => "lsl",
            Shift::Lsr => "lsr",
            Shift::Asr => "asr",
            Shift::Ror => "ror",
        }
    }

    pub fn from_name(s: &str) -> Option<Shift> {
        Some(match s {
            "lsl" => Shift::Lsl,
            "lsr" => Shift::Lsr,
            "asr" => Shift::Asr,
            "ror" => Shift::Ror,
            _ => return None,
        })
    }
}

/// An expression of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// A register's value (on entry to the block, or in a `code:` line
    /// before the instruction), by the name its operand uses (`w1`, `x1`,
    /// `sp`, `v0.4s`); `loc` is what it is a view of, the key of
    /// substitution.
    Reg { name: String, loc: Loc },
    /// An integer literal, printed in decimal (negative with `-`).
    Const(i64),
    /// Operand text the trace copies as written, with no register in it: a
    /// condition (`lt`), a symbol, a modifier (`lsl #16`), an immediate the
    /// assembler parser gave no value.
    Text(String),
    /// Operand text with registers in it (a memory operand as an argument of
    /// a generic form, `[x1, #8]`): its pieces in order, printed together;
    /// the registers among them are [`Expr::Reg`] and are substituted.
    Concat(Vec<Expr>),
    /// `memN[addr]`: the `N`-bit memory cell at `addr`.
    Mem(u32, Box<Expr>),
    /// `a op b`.
    Bin(Infix, Box<Expr>, Box<Expr>),
    /// `~a`.
    Not(Box<Expr>),
    /// `zext(a, bits)`: the low `bits` bits of `a`.
    Zext(Box<Expr>, u32),
    /// `sext(a, bits)`: the low `bits` bits of `a`, sign-extended.
    Sext(Box<Expr>, u32),
    /// `lsl(a, n)` and the other shifts and rotates.
    Shift(Shift, Box<Expr>, Box<Expr>),
    /// `flags(e)`: the NZCV an `adds`/`subs`/`ands` computing `e` sets.
    Flags(Box<Expr>),
    /// `cond(c, a, b)`: `a` where `c` holds, else `b`. In the trace `c` is a
    /// condition name on the current flags (`lt`); in [`Symbolic`] a 0/1
    /// value.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `name(args)`: any operation the trace has no syntax of its own for
    /// (`umulh(x2, x0)`, `madd(x1, x2, x3)`, `movk(x0, 1, lsl #16)`).
    Call(String, Vec<Expr>),
    /// `(e)`: a compound value used as an operand. The trace brackets every
    /// compound value it substitutes for a register, wherever it lands
    /// (`cond(lt, (x21 + 3), x21)`, `mem64[(x1 + 8)]`), and nothing else:
    /// the expressions a `code:` line writes itself are not bracketed
    /// (`mem64[sp - 16 + 8]`, `cond(lt, x1, x2 + 1)`). So the brackets are
    /// part of the tree, not a printing rule.
    Group(Box<Expr>),
}

/// Characters of one token of operand text (a register name is one token).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// The location a register name is a view of (none for the zero registers).
pub fn reg_loc(name: &str) -> Option<Loc> {
    Reg::parse(name).and_then(|r| r.loc())
}

/// A space outside every bracket: the text is an infix expression.
fn has_top_level_space(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ' ' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

impl Expr {
    /// An operand as the trace writes it: an integer literal, a register, or
    /// text copied as written, whose register names (whole tokens of
    /// letters, digits, `_` and `.`) are kept as registers.
    pub fn leaf(text: &str) -> Expr {
        if let Ok(v) = text.parse::<i64>() {
            if v.to_string() == text {
                return Expr::Const(v);
            }
        }
        let mut pieces: Vec<Expr> = Vec::new();
        let mut plain = String::new();
        let mut tok = String::new();
        let flush = |tok: &mut String, plain: &mut String, pieces: &mut Vec<Expr>| {
            if tok.is_empty() {
                return;
            }
            match reg_loc(tok) {
                Some(loc) => {
                    if !plain.is_empty() {
                        pieces.push(Expr::Text(std::mem::take(plain)));
                    }
                    pieces.push(Expr::Reg {
                        name: std::mem::take(tok),
                        loc,
                    });
                }
                None => plain.push_str(&std::mem::take(tok)),
            }
        };
        for c in text.chars() {
            if is_token_char(c) {
                tok.push(c);
            } else {
                flush(&mut tok, &mut plain, &mut pieces);
                plain.push(c);
            }
        }
        flush(&mut tok, &mut plain, &mut pieces);
        if !plain.is_empty() || pieces.is_empty() {
            pieces.push(Expr::Text(plain));
        }
        if pieces.len() == 1 {
            pieces.pop().unwrap_or(Expr::Text(String::new()))
        } else {
            Expr::Concat(pieces)
        }
    }

    pub fn bin(op: Infix, a: Expr, b: Expr) -> Expr {
        Expr::Bin(op, Box::new(a), Box::new(b))
    }

    pub fn complement(a: Expr) -> Expr {
        Expr::Not(Box::new(a))
    }

    pub fn mem(bits: u32, addr: Expr) -> Expr {
        Expr::Mem(bits, Box::new(addr))
    }

    pub fn zext(a: Expr, bits: u32) -> Expr {
        Expr::Zext(Box::new(a), bits)
    }

    pub fn sext(a: Expr, bits: u32) -> Expr {
        Expr::Sext(Box::new(a), bits)
    }

    pub fn shift(s: Shift, a: Expr, n: Expr) -> Expr {
        Expr::Shift(s, Box::new(a), Box::new(n))
    }

    pub fn flags(e: Expr) -> Expr {
        Expr::Flags(Box::new(e))
    }

    pub fn cond(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
    }

    /// `name(args)`; a shift or rotate by name with two arguments is
    /// [`Expr::Shift`], so there is one tree for one text.
    pub fn call(name: &str, mut args: Vec<Expr>) -> Expr {
        match Shift::from_name(name) {
            Some(s) if args.len() == 2 => {
                let n = args.pop().unwrap_or(Expr::Const(0));
                let a = args.pop().unwrap_or(Expr::Const(0));
                Expr::shift(s, a, n)
            }
            _ => Expr::Call(name.to_string(), args),
        }
    }

    /// The literal this is, if it is one (operand text counts where it
    /// reads as a 64-bit integer).
    pub fn literal(&self) -> Option<i64> {
        match self {
            Expr::Const(v) => Some(*v),
            Expr::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// Printed with an operator outside every bracket (`a + b`), so it needs
    /// brackets where it becomes an operand.
    pub fn is_compound(&self) -> bool {
        match self {
            Expr::Bin(..) => true,
            Expr::Not(a) => a.is_compound(),
            // Text copied as written: what it prints decides.
            Expr::Text(_) | Expr::Concat(_) => has_top_level_space(&self.to_string()),
            _ => false,
        }
    }

    /// This value as an operand of another expression: bracketed where it
    /// is compound.
    pub fn as_operand(&self) -> Expr {
        if self.is_compound() {
            Expr::Group(Box::new(self.clone()))
        } else {
            self.clone()
        }
    }

    /// Without its outer brackets, as a value is written on its own line.
    pub fn ungrouped(&self) -> &Expr {
        match self {
            Expr::Group(e) => e,
            e => e,
        }
    }

    /// Every register replaced by its value from `value_of` (those it has
    /// none for stay), each value as an operand ([`Expr::as_operand`]).
    pub fn substitute<'a>(&self, value_of: &impl Fn(Loc) -> Option<&'a Expr>) -> Expr {
        let s = |e: &Expr| Box::new(e.substitute(value_of));
        match self {
            Expr::Reg { loc, .. } => match value_of(*loc) {
                Some(v) => v.as_operand(),
                None => self.clone(),
            },
            Expr::Const(_) | Expr::Text(_) => self.clone(),
            Expr::Concat(ps) => Expr::Concat(ps.iter().map(|p| p.substitute(value_of)).collect()),
            Expr::Mem(bits, a) => Expr::Mem(*bits, s(a)),
            Expr::Bin(op, a, b) => Expr::Bin(*op, s(a), s(b)),
            Expr::Not(a) => Expr::Not(s(a)),
            Expr::Zext(a, n) => Expr::Zext(s(a), *n),
            Expr::Sext(a, n) => Expr::Sext(s(a), *n),
            Expr::Shift(k, a, n) => Expr::Shift(*k, s(a), s(n)),
            Expr::Flags(e) => Expr::Flags(s(e)),
            Expr::Cond(c, a, b) => Expr::Cond(s(c), s(a), s(b)),
            Expr::Call(m, args) => Expr::Call(
                m.clone(),
                args.iter().map(|a| a.substitute(value_of)).collect(),
            ),
            Expr::Group(e) => Expr::Group(s(e)),
        }
    }

    /// The simplifications the trace format allows, at the root: `a + 0`,
    /// `a - 0`, `a | 0`, `a ^ 0`, `a * 1` and shifts by 0 give `a`, and an
    /// operator of `+ - * & | ^` on two literals gives the literal (where
    /// it does not overflow 64 signed bits).
    ///
    /// Only the root: the trace simplifies each value once, as an
    /// instruction writes it. Its operands were values, simplified when they
    /// were written; what a `code:` line writes inside an expression stays
    /// as written (`flags(x1 - 0)`, `cond(lt, x1, -1 + 1)`).
    pub fn simplified(self) -> Expr {
        match self {
            Expr::Bin(Infix::Add | Infix::Sub | Infix::Or | Infix::Xor, a, b)
                if *b == Expr::Const(0) =>
            {
                *a
            }
            Expr::Bin(Infix::Mul, a, b) if *b == Expr::Const(1) => *a,
            Expr::Shift(_, a, n) if *n == Expr::Const(0) => *a,
            Expr::Bin(op, a, b) => match (a.literal(), b.literal()) {
                (Some(x), Some(y)) => match op.fold(x, y) {
                    Some(v) => Expr::Const(v),
                    None => Expr::Bin(op, a, b),
                },
                _ => Expr::Bin(op, a, b),
            },
            e => e,
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Reg { name, .. } => f.write_str(name),
            Expr::Const(v) => write!(f, "{v}"),
            Expr::Text(s) => f.write_str(s),
            Expr::Concat(ps) => ps.iter().try_for_each(|p| write!(f, "{p}")),
            Expr::Mem(bits, a) => write!(f, "mem{bits}[{a}]"),
            Expr::Bin(op, a, b) => write!(f, "{a} {} {b}", op.symbol()),
            Expr::Not(a) => write!(f, "~{a}"),
            Expr::Zext(a, n) => write!(f, "zext({a}, {n})"),
            Expr::Sext(a, n) => write!(f, "sext({a}, {n})"),
            Expr::Shift(k, a, n) => write!(f, "{}({a}, {n})", k.name()),
            Expr::Flags(e) => write!(f, "flags({e})"),
            Expr::Cond(c, a, b) => write!(f, "cond({c}, {a}, {b})"),
            Expr::Call(m, args) => {
                write!(f, "{m}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Group(e) => write!(f, "({e})"),
        }
    }
}

/// The semantics read symbolically: values are [`Expr`]s over the entry
/// values of the registers ([`entry_regs`]), booleans are 0/1 `Expr`s.
///
/// Every operation brackets its compound operands and simplifies its result
/// as the trace does ([`Expr::simplified`]); as each node is built by an
/// operation, that simplifies the whole tree. Operations the trace has no
/// syntax for are `name(args)` ([`Expr::Call`]): `umulh`, `smulh`, `udiv`,
/// `sdiv`, `clz`, `rbit`, `rev`, and the comparisons `eq`, `ult`, `slt`.
///
/// Memory is a list of stores. A load takes the value of the last store when
/// that store wrote the same cell (same width, same address expression) and
/// is otherwise the cell itself: a store in between might alias it, as the
/// trace's store forwarding also assumes.
#[derive(Clone, Debug, Default)]
pub struct Symbolic {
    /// `(cell, value)` of every store, in order (the cell is a
    /// [`Expr::Mem`]; it holds the value's low bits).
    pub stores: Vec<(Expr, Expr)>,
}

/// The register state on entry: every register its own name (`x0`..`x30`,
/// `sp`), the flags `n`, `z`, `c`, `v`.
pub fn entry_regs() -> Regs<Expr, Expr> {
    let x = std::array::from_fn(|i| Expr::Reg {
        name: format!("x{i}"),
        loc: Loc::X(i as u8),
    });
    Regs {
        x,
        sp: Expr::Reg {
            name: "sp".into(),
            loc: Loc::Sp,
        },
        flags: Flags {
            n: Expr::Text("n".into()),
            z: Expr::Text("z".into()),
            c: Expr::Text("c".into()),
            v: Expr::Text("v".into()),
        },
    }
}

fn infix(op: Infix, a: &Expr, b: &Expr) -> Expr {
    Expr::bin(op, a.as_operand(), b.as_operand()).simplified()
}

fn call(name: &str, args: &[&Expr]) -> Expr {
    Expr::call(name, args.iter().map(|a| a.as_operand()).collect()).simplified()
}

impl Domain for Symbolic {
    type Bv = Expr;
    type Bool = Expr;

    fn lit(&mut self, v: u64) -> Expr {
        Expr::Const(v as i64)
    }

    fn bool_lit(&mut self, b: bool) -> Expr {
        Expr::Const(b as i64)
    }

    fn bin(&mut self, op: BinOp, a: &Expr, b: &Expr) -> Expr {
        let name = match op {
            BinOp::Add => return infix(Infix::Add, a, b),
            BinOp::Sub => return infix(Infix::Sub, a, b),
            BinOp::Mul => return infix(Infix::Mul, a, b),
            BinOp::And => return infix(Infix::And, a, b),
            BinOp::Or => return infix(Infix::Or, a, b),
            BinOp::Xor => return infix(Infix::Xor, a, b),
            BinOp::Shl => "lsl",
            BinOp::LShr => "lsr",
            BinOp::AShr => "asr",
            BinOp::Ror => "ror",
            BinOp::UMulH => "umulh",
            BinOp::SMulH => "smulh",
            BinOp::UDiv => "udiv",
            BinOp::SDiv => "sdiv",
        };
        call(name, &[a, b])
    }

    fn un(&mut self, op: UnOp, a: &Expr) -> Expr {
        match op {
            UnOp::Not => Expr::complement(a.as_operand()),
            UnOp::Neg => infix(Infix::Sub, &Expr::Const(0), a),
            UnOp::Clz => call("clz", &[a]),
            UnOp::Rbit => call("rbit", &[a]),
            UnOp::Rev => call("rev", &[a]),
            UnOp::Sext(n) => Expr::sext(a.as_operand(), n as u32),
            UnOp::Zext(n) => Expr::zext(a.as_operand(), n as u32),
        }
    }

    fn cmp(&mut self, op: CmpOp, a: &Expr, b: &Expr) -> Expr {
        let name = match op {
            CmpOp::Eq => "eq",
            CmpOp::Ult => "ult",
            CmpOp::Slt => "slt",
        };
        call(name, &[a, b])
    }

    fn ite(&mut self, c: &Expr, t: &Expr, e: &Expr) -> Expr {
        Expr::cond(c.as_operand(), t.as_operand(), e.as_operand())
    }

    fn and(&mut self, a: &Expr, b: &Expr) -> Expr {
        infix(Infix::And, a, b)
    }

    fn or(&mut self, a: &Expr, b: &Expr) -> Expr {
        infix(Infix::Or, a, b)
    }

    /// `a ^ 1`: booleans are 0/1, where `~` would not be.
    fn not(&mut self, a: &Expr) -> Expr {
        infix(Infix::Xor, a, &Expr::Const(1))
    }

    /// `lsr(a, i) & 1`.
    fn bit(&mut self, a: &Expr, i: u32) -> Expr {
        let s = call("lsr", &[a, &Expr::Const(i as i64)]);
        infix(Infix::And, &s, &Expr::Const(1))
    }

    fn bool_to_bv(&mut self, b: &Expr) -> Expr {
        b.clone()
    }

    fn load(&mut self, addr: &Expr, bytes: u8) -> Result<Expr, Fault> {
        let bits = bytes as u32 * 8;
        let cell = Expr::mem(bits, addr.clone());
        Ok(match self.stores.last() {
            Some((c, v)) if *c == cell && bits == 64 => v.clone(),
            Some((c, v)) if *c == cell => Expr::zext(v.as_operand(), bits),
            _ => cell,
        })
    }

    fn store(&mut self, addr: &Expr, bytes: u8, v: &Expr) -> Result<(), Fault> {
        let cell = Expr::mem(bytes as u32 * 8, addr.clone());
        self.stores.push((cell, v.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Insn;
    use crate::semantics::exec::step;
    use crate::semantics::inst::Inst;

    fn r(name: &str) -> Expr {
        Expr::leaf(name)
    }

    #[test]
    fn leaves() {
        assert_eq!(
            r("w1"),
            Expr::Reg {
                name: "w1".into(),
                loc: Loc::X(1)
            }
        );
        assert_eq!(r("-5"), Expr::Const(-5));
        assert_eq!(r("lt"), Expr::Text("lt".into()));
        assert_eq!(r("007"), Expr::Text("007".into()));
        let m = r("[x1, #8]");
        assert!(matches!(&m, Expr::Concat(ps) if ps.len() == 3));
        assert_eq!(m.to_string(), "[x1, #8]");
        assert_eq!(r("lsl #16").to_string(), "lsl #16");
        assert!(r("lsl #16").is_compound());
    }

    #[test]
    fn printing() {
        let e = Expr::bin(
            Infix::Add,
            r("x1"),
            Expr::shift(Shift::Lsl, r("x2"), r("3")),
        );
        assert_eq!(e.to_string(), "x1 + lsl(x2, 3)");
        let e = Expr::cond(r("lt"), r("w1"), Expr::bin(Infix::Add, r("w2"), r("1")));
        assert_eq!(e.to_string(), "cond(lt, w1, w2 + 1)");
        let e = Expr::flags(Expr::bin(Infix::Bic, r("x1"), r("x2")));
        assert_eq!(e.to_string(), "flags(x1 & ~ x2)");
        let e = Expr::sext(Expr::mem(32, Expr::bin(Infix::Sub, r("sp"), r("16"))), 32);
        assert_eq!(e.to_string(), "sext(mem32[sp - 16], 32)");
        assert_eq!(
            Expr::call("umulh", vec![r("x2"), r("x0")]).to_string(),
            "umulh(x2, x0)"
        );
        assert!(matches!(
            Expr::call("lsr", vec![r("x2"), r("1")]),
            Expr::Shift(Shift::Lsr, ..)
        ));
    }

    #[test]
    fn substitution_brackets_compound_values_only() {
        let x1 = Expr::bin(Infix::Add, r("x21"), r("3"));
        let x2 = Expr::call("clz", vec![r("x3")]);
        let env = |l: Loc| match l {
            Loc::X(1) => Some(&x1),
            Loc::X(2) => Some(&x2),
            _ => None,
        };
        let e = Expr::cond(r("lt"), r("x1"), Expr::bin(Infix::Add, r("x2"), r("1")));
        assert_eq!(
            e.substitute(&env).to_string(),
            "cond(lt, (x21 + 3), clz(x3) + 1)"
        );
        let e = Expr::mem(64, Expr::bin(Infix::Add, r("x1"), r("8")));
        assert_eq!(e.substitute(&env).to_string(), "mem64[(x21 + 3) + 8]");
        assert_eq!(
            Expr::call("cas", vec![r("x2"), r("[x1]")])
                .substitute(&env)
                .to_string(),
            "cas(clz(x3), [(x21 + 3)])"
        );
    }

    #[test]
    fn simplifications() {
        let s = |e: Expr| e.simplified().to_string();
        assert_eq!(s(Expr::bin(Infix::Add, r("x1"), r("0"))), "x1");
        assert_eq!(s(Expr::bin(Infix::Sub, r("x1"), r("0"))), "x1");
        assert_eq!(s(Expr::bin(Infix::Or, r("x1"), r("0"))), "x1");
        assert_eq!(s(Expr::bin(Infix::Xor, r("x1"), r("0"))), "x1");
        assert_eq!(s(Expr::bin(Infix::Mul, r("x1"), r("1"))), "x1");
        assert_eq!(s(Expr::bin(Infix::And, r("x1"), r("0"))), "x1 & 0");
        assert_eq!(s(Expr::bin(Infix::Add, r("0"), r("x1"))), "0 + x1");
        assert_eq!(s(Expr::shift(Shift::Ror, r("x1"), r("0"))), "x1");
        assert_eq!(s(Expr::bin(Infix::Mul, r("8"), r("3"))), "24");
        assert_eq!(s(Expr::bin(Infix::Sub, r("0"), r("5"))), "-5");
        assert_eq!(s(Expr::bin(Infix::Bic, r("5"), r("3"))), "5 & ~ 3");
        let big = Expr::bin(Infix::Mul, r("9223372036854775807"), r("2"));
        assert_eq!(s(big), "9223372036854775807 * 2");
        // Only the root.
        let inner = Expr::flags(Expr::bin(Infix::Sub, r("x1"), r("0")));
        assert_eq!(s(inner), "flags(x1 - 0)");
        // A bracketed value stays bracketed: it is what was substituted.
        let g = Expr::bin(Infix::Add, r("x1"), r("x2")).as_operand();
        assert_eq!(s(Expr::bin(Infix::Add, g, r("0"))), "(x1 + x2)");
    }

    fn run(lines: &[&str]) -> (Regs<Expr, Expr>, Symbolic) {
        let mut d = Symbolic::default();
        let mut s = entry_regs();
        for l in lines {
            let i = Inst::decode(&Insn::parse_plain(l).unwrap()).unwrap();
            step(&mut d, &mut s, &i).unwrap();
        }
        (s, d)
    }

    #[test]
    fn the_semantics_read_symbolically() {
        let (s, _) = run(&["add x0, x1, #1", "mul x2, x0, x3", "umulh x4, x2, x0"]);
        let v = |e: &Expr| e.ungrouped().to_string();
        assert_eq!(v(&s.x[0]), "x1 + 1");
        // `mul` is `madd` with the zero register: the trace's rules have no
        // `0 + a`.
        assert_eq!(v(&s.x[2]), "0 + ((x1 + 1) * x3)");
        assert_eq!(v(&s.x[4]), "umulh((0 + ((x1 + 1) * x3)), (x1 + 1))");
        let (s, _) = run(&["mov x2, #8", "mul x0, x1, x2", "lsl x3, x1, #0"]);
        assert_eq!(v(&s.x[0]), "0 + (x1 * 8)");
        assert_eq!(v(&s.x[3]), "x1");
        let (s, _) = run(&["add w0, w1, #1"]);
        // The 32-bit form in the semantics' words: read the low half, add,
        // truncate the result, and the write zero-extends again.
        assert_eq!(v(&s.x[0]), "zext(zext((zext(x1, 32) + 1), 32), 32)");
        let (s, d) = run(&["str x5, [sp, #8]", "ldr x6, [sp, #8]", "ldr x7, [sp]"]);
        assert_eq!(v(&s.x[6]), "x5");
        assert_eq!(v(&s.x[7]), "mem64[sp]");
        assert_eq!(d.stores.len(), 1);
        assert_eq!(d.stores[0].0.to_string(), "mem64[sp + 8]");
        let (s, _) = run(&["cmp x1, x2", "csel x0, x3, x4, eq"]);
        assert!(s.x[0].to_string().starts_with("cond(eq("), "{}", s.x[0]);
    }
}
