//! Chain-of-code traces from the project's own semantics: the `code:` and
//! `live:` sections that the LLM writes before its rewrite (format:
//! `prompts/README.md`). The fine-tuning dataset's traces come from here,
//! never from hand, so training data and the model's reasoning share one
//! exact vocabulary.
//!
//! `code:` has one line per instruction; statements of one instruction are
//! joined by `; ` and read the values *before* that instruction. `live:`
//! gives each written live-out location as an expression of the values on
//! entry to the block.
//!
//! Both are built as typed trees ([`Expr`]): each instruction's statements
//! are trees in the trace's vocabulary, built from the assembly instruction
//! (so an instruction the semantics do not model still has its generic
//! `mnemonic(args)` line), and `live:` substitutes and simplifies on the
//! trees. The shipped adapter was trained on this text: the trees print it
//! byte for byte as the string building they replace did.

use crate::asm::{AddrMode, Insn, Mem, Operand, Reg, RegKind};
use crate::semantics::expr::{reg_loc, Expr, Infix, Shift};
use crate::semantics::{effects, Loc, LocSet};
use std::collections::HashMap;
use std::fmt;

/// An operand's text: registers by name (zero registers as `0`), integers
/// in decimal.
fn val_text(o: &Operand) -> String {
    match o {
        Operand::Reg(r) if matches!(r.kind, RegKind::Xzr | RegKind::Wzr) => "0".into(),
        Operand::Reg(r) => r.to_string(),
        Operand::Imm(i) => i
            .value
            .map(|v| v.to_string())
            .unwrap_or_else(|| i.text.clone()),
        other => other.to_string(),
    }
}

/// An operand's value.
fn val(o: &Operand) -> Expr {
    Expr::leaf(&val_text(o))
}

/// `(signed, bits)` of an extend, from the decoder's table.
fn ext_bits(op: &str) -> Option<(bool, u32)> {
    super::inst::extend_named(op).map(|e| (e.signed, u32::from(e.bits)))
}

fn extend(signed: bool, v: Expr, bits: u32) -> Expr {
    if signed {
        Expr::sext(v, bits)
    } else {
        Expr::zext(v, bits)
    }
}

/// Apply a shift/extend modifier to a value.
fn modified(v: Expr, m: Option<&Operand>) -> Expr {
    let Some(Operand::Modifier { op, amount }) = m else {
        return v;
    };
    let amt = amount.as_ref().and_then(|a| a.value).unwrap_or(0);
    let base = match ext_bits(op) {
        Some((signed, bits)) => extend(signed, v, bits),
        None if amt == 0 => return v,
        None => return Expr::call(op, vec![v, Expr::Const(amt)]),
    };
    if amt > 0 {
        Expr::shift(Shift::Lsl, base, Expr::Const(amt))
    } else {
        base
    }
}

fn mem_bits(r: &Reg) -> u32 {
    match r.kind {
        RegKind::W | RegKind::Wzr | RegKind::Wsp | RegKind::S => 32,
        RegKind::H => 16,
        RegKind::B => 8,
        RegKind::Q | RegKind::V => 128,
        _ => 64,
    }
}

/// `base + off`, `base - |off|`, or `base` for 0.
fn plus(base: Expr, off: i64) -> Expr {
    match off {
        0 => base,
        o if o < 0 => Expr::bin(Infix::Sub, base, Expr::Const(o.wrapping_neg())),
        o => Expr::bin(Infix::Add, base, Expr::Const(o)),
    }
}

/// Address of the access (before any writeback).
fn address(m: &Mem) -> Expr {
    let base = val(&Operand::Reg(m.base.clone()));
    match (&m.mode, &m.offset, &m.index) {
        (AddrMode::PostIndex(_), _, _) => base,
        (_, Some(i), _) => match i.value {
            Some(v) => plus(base, v),
            None => Expr::bin(Infix::Add, base, Expr::leaf(&i.text)),
        },
        (_, None, Some((r, ext))) => Expr::bin(
            Infix::Add,
            base,
            modified(Expr::leaf(&r.to_string()), ext.as_deref()),
        ),
        _ => base,
    }
}

fn writeback(m: &Mem) -> Option<Stmt> {
    let b = m.base.to_string();
    let base = Expr::leaf(&b);
    let rhs = match &m.mode {
        AddrMode::Offset => return None,
        AddrMode::PreIndex => plus(base, m.offset.as_ref().and_then(|i| i.value).unwrap_or(0)),
        AddrMode::PostIndex(p) => match p.imm_value() {
            Some(v) => plus(base, v),
            None => Expr::bin(Infix::Add, base, val(p)),
        },
    };
    Some(Stmt::new(Lhs::named(b), rhs))
}

fn infix(m: &str) -> Option<Infix> {
    Some(match m {
        "add" | "adds" => Infix::Add,
        "sub" | "subs" => Infix::Sub,
        "and" | "ands" => Infix::And,
        "orr" => Infix::Or,
        "eor" => Infix::Xor,
        "bic" | "bics" => Infix::Bic,
        "orn" => Infix::Orn,
        "eon" => Infix::Eon,
        "mul" => Infix::Mul,
        _ => return None,
    })
}

/// What a statement writes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lhs {
    /// A register by the view written (`w0`), or the operand's text where
    /// it names no location (`0` for a zero register).
    Named(String),
    Nzcv,
    /// A memory cell ([`Expr::Mem`]).
    Cell(Expr),
}

impl Lhs {
    fn named(s: String) -> Lhs {
        if s == "nzcv" {
            Lhs::Nzcv
        } else {
            Lhs::Named(s)
        }
    }
}

/// `lhs = rhs`: one location an instruction writes and its new value, over
/// the values before the instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stmt {
    lhs: Lhs,
    rhs: Expr,
}

impl Stmt {
    fn new(lhs: Lhs, rhs: Expr) -> Stmt {
        Stmt { lhs, rhs }
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lhs {
            Lhs::Named(n) => write!(f, "{n} = {}", self.rhs),
            Lhs::Nzcv => write!(f, "nzcv = {}", self.rhs),
            Lhs::Cell(c) => write!(f, "{c} = {}", self.rhs),
        }
    }
}

/// The statements of one instruction as trees (simultaneous: all read the
/// values before it). Empty for instructions with no observable effect.
fn stmts(insn: &Insn) -> Vec<Stmt> {
    let m = insn.mnemonic.as_str();
    let ops = &insn.operands;
    let o = |i: usize| ops.get(i).map(val).unwrap_or(Expr::Text(String::new()));
    let d = || Lhs::named(ops.first().map(val_text).unwrap_or_default());
    let mut out = Vec::new();
    let mem_at = ops.iter().position(|x| matches!(x, Operand::Mem(_)));
    if let (Some(at), true) = (mem_at, m.starts_with("ld") || m.starts_with("st")) {
        let Some(Operand::Mem(mem)) = ops.get(at) else {
            return out;
        };
        let addr = address(mem);
        let narrow = match m
            .trim_start_matches("ldur")
            .trim_start_matches("ldr")
            .trim_start_matches("stur")
            .trim_start_matches("str")
        {
            "b" | "sb" => Some(8),
            "h" | "sh" => Some(16),
            "sw" => Some(32),
            _ => None,
        };
        let signed = matches!(
            m,
            "ldrsb" | "ldrsh" | "ldrsw" | "ldursb" | "ldursh" | "ldursw" | "ldpsw"
        );
        let mut off = 0i64;
        for r in ops[..at].iter().filter_map(|x| x.reg()) {
            let bits = narrow.unwrap_or(if m == "ldpsw" { 32 } else { mem_bits(r) });
            let at = if off == 0 {
                addr.clone()
            } else {
                Expr::bin(Infix::Add, addr.clone(), Expr::Const(off))
            };
            let cell = Expr::mem(bits, at);
            if m.starts_with("st") {
                out.push(Stmt::new(Lhs::Cell(cell), val(&Operand::Reg(r.clone()))));
            } else if narrow.is_some() || signed {
                out.push(Stmt::new(
                    Lhs::named(r.to_string()),
                    extend(signed, cell, bits),
                ));
            } else {
                out.push(Stmt::new(Lhs::named(r.to_string()), cell));
            }
            off += (bits / 8) as i64;
        }
        out.extend(writeback(mem));
        return out;
    }
    let flags = |e: Expr| Stmt::new(Lhs::Nzcv, Expr::flags(e));
    let cond = |c: usize, a: Expr, b: Expr| Stmt::new(d(), Expr::cond(o(c), a, b));
    let add1 = |e: Expr| Expr::bin(Infix::Add, e, Expr::Const(1));
    let neg = |e: Expr| Expr::bin(Infix::Sub, Expr::Const(0), e);
    match (m, ops.len()) {
        ("nop" | "hint" | "prfm" | "prfum" | "bti", _) => {}
        ("cmp", _) => out.push(flags(Expr::bin(
            Infix::Sub,
            o(0),
            modified(o(1), ops.get(2)),
        ))),
        ("cmn", _) => out.push(flags(Expr::bin(
            Infix::Add,
            o(0),
            modified(o(1), ops.get(2)),
        ))),
        ("tst", _) => out.push(flags(Expr::bin(
            Infix::And,
            o(0),
            modified(o(1), ops.get(2)),
        ))),
        ("mov" | "fmov", 2) => out.push(Stmt::new(d(), o(1))),
        ("mvn", _) => out.push(Stmt::new(d(), Expr::complement(modified(o(1), ops.get(2))))),
        ("neg" | "negs", _) => {
            let e = neg(modified(o(1), ops.get(2)));
            out.push(Stmt::new(d(), e.clone()));
            if m == "negs" {
                out.push(flags(e));
            }
        }
        ("lsl" | "lsr" | "asr" | "ror" | "lslv" | "lsrv" | "asrv" | "rorv", 3) => out.push(
            Stmt::new(d(), Expr::call(m.trim_end_matches('v'), vec![o(1), o(2)])),
        ),
        ("sxtb" | "sxth" | "sxtw" | "uxtb" | "uxth" | "uxtw", 2) => {
            let (signed, bits) = ext_bits(m).unwrap_or((false, 64));
            out.push(Stmt::new(d(), extend(signed, o(1), bits)));
        }
        ("csel", 4) => out.push(cond(3, o(1), o(2))),
        ("csinc", 4) => out.push(cond(3, o(1), add1(o(2)))),
        ("csinv", 4) => out.push(cond(3, o(1), Expr::complement(o(2)))),
        ("csneg", 4) => out.push(cond(3, o(1), neg(o(2)))),
        ("cset", 2) => out.push(cond(1, Expr::Const(1), Expr::Const(0))),
        ("csetm", 2) => out.push(cond(1, Expr::Const(-1), Expr::Const(0))),
        ("cinc", 3) => out.push(cond(2, add1(o(1)), o(1))),
        ("cinv", 3) => out.push(cond(2, Expr::complement(o(1)), o(1))),
        ("cneg", 3) => out.push(cond(2, neg(o(1)), o(1))),
        (_, 3 | 4) if infix(m).is_some() => {
            let op = infix(m).unwrap_or(Infix::Add);
            let e = Expr::bin(op, o(1), modified(o(2), ops.get(3)));
            out.push(Stmt::new(d(), e.clone()));
            if m.ends_with('s') {
                out.push(flags(e));
            }
        }
        _ => {
            let e = effects(insn);
            let dest = ops.first().and_then(|x| x.reg());
            let dest_written =
                dest.is_some() && !e.writes.minus(LocSet::single(Loc::Nzcv)).is_empty();
            // The old destination is an argument where the instruction reads
            // it besides its named sources (`movk`, `bfi`, accumulates, partial
            // writes), not where it is one of them: `umulh x0, x2, x0` is
            // `umulh(x2, x0)`.
            let dest_loc = dest.and_then(|r| r.loc());
            let named_as_source = dest_loc.is_some()
                && ops[1..]
                    .iter()
                    .any(|x| x.reg().and_then(|r| r.loc()) == dest_loc);
            let reads_dest = crate::semantics::effects::reads_destination(m)
                || (dest_loc.is_some_and(|l| e.reads.contains(l)) && !named_as_source);
            let first = if dest_written && !reads_dest { 1 } else { 0 };
            let call = Expr::call(m, ops.iter().skip(first).map(val).collect());
            if dest_written {
                out.push(Stmt::new(d(), call.clone()));
            }
            if e.writes.contains(Loc::Nzcv) {
                out.push(Stmt::new(Lhs::Nzcv, call));
            }
        }
    }
    out
}

/// The statements of one instruction (simultaneous: all read the values
/// before it). Empty for instructions with no observable effect.
pub fn statements(insn: &Insn) -> Vec<String> {
    stmts(insn).iter().map(Stmt::to_string).collect()
}

/// The `code:` line of one instruction.
pub fn code_line(insn: &Insn) -> String {
    let s = statements(insn);
    if s.is_empty() {
        "skip".into()
    } else {
        s.join("; ")
    }
}

/// The `live:` lines: every live-out location the block writes, as an
/// expression of entry values (loads of a cell stored earlier in the block,
/// with no other store in between, take the stored value).
pub fn live_lines(insns: &[Insn], live_out: LocSet) -> Vec<String> {
    let mut env: HashMap<Loc, Expr> = HashMap::new();
    let mut dest_name: HashMap<Loc, String> = HashMap::new();
    let mut stores: Vec<(Expr, Expr)> = Vec::new();
    let mut last_store: Option<(Expr, Expr)> = None;
    for insn in insns {
        let mut updates: Vec<(Loc, String, Expr)> = Vec::new();
        let mut new_stores = Vec::new();
        let value_of = |l: Loc| env.get(&l);
        for st in stmts(insn) {
            let mut value = st.rhs.substitute(&value_of).simplified();
            if let Some((cell, v)) = &last_store {
                if value == *cell {
                    value = v.clone();
                }
            }
            match st.lhs {
                Lhs::Cell(cell) => new_stores.push((cell.substitute(&value_of), value)),
                Lhs::Nzcv => updates.push((Loc::Nzcv, "nzcv".into(), value)),
                Lhs::Named(n) => {
                    if let Some(l) = reg_loc(&n) {
                        updates.push((l, n, value));
                    }
                }
            }
        }
        if !new_stores.is_empty() {
            last_store = (new_stores.len() == 1).then(|| new_stores[0].clone());
            stores.extend(new_stores);
        } else if effects(insn).clobbers.contains(Loc::Mem) {
            last_store = None;
        }
        for (l, name, v) in updates {
            env.insert(l, v);
            dest_name.insert(l, name);
        }
    }
    let mut out = Vec::new();
    for l in live_out.iter() {
        if let (Some(v), Some(n)) = (env.get(&l), dest_name.get(&l)) {
            out.push(format!("{n} = {}", v.ungrouped()));
        }
    }
    if live_out.contains(Loc::Mem) {
        for (cell, v) in stores {
            out.push(format!("{cell} = {}", v.ungrouped()));
        }
    }
    out
}

/// The `code:` section: its header and one line per instruction.
pub fn code_section(insns: &[Insn]) -> String {
    let mut s = String::from("code:\n");
    for i in insns {
        s.push_str(&code_line(i));
        s.push('\n');
    }
    s
}

/// The whole trace before the rewrite: `code:` and `live:` sections.
pub fn chain_of_code(insns: &[Insn], live_out: LocSet) -> String {
    code_section(insns) + &live_section(insns, live_out)
}

/// The `live:` section: its header and the final value of each live-out
/// location the block writes (`none` if it writes none).
pub fn live_section(insns: &[Insn], live_out: LocSet) -> String {
    let mut s = String::from("live:\n");
    let live = live_lines(insns, live_out);
    if live.is_empty() {
        s.push_str("none\n");
    }
    for l in live {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> String {
        code_line(&Insn::parse_plain(s).unwrap())
    }
    fn w(v: &[&str]) -> Vec<Insn> {
        v.iter().map(|s| Insn::parse_plain(s).unwrap()).collect()
    }

    #[test]
    fn destination_is_an_argument_only_when_read_implicitly() {
        // Named as a source: not repeated (was `umulh(x0, x2, x0)`).
        assert_eq!(l("umulh x0, x2, x0"), "x0 = umulh(x2, x0)");
        assert_eq!(l("udiv x9, x9, x10"), "x9 = udiv(x9, x10)");
        assert_eq!(l("umulh x4, x1, x22"), "x4 = umulh(x1, x22)");
        // Read without being named: the old value is an argument.
        assert_eq!(l("movk x0, #4660, lsl #16"), "x0 = movk(x0, 4660, lsl #16)");
        assert_eq!(l("bfi x0, x1, #3, #4"), "x0 = bfi(x0, x1, 3, 4)");
    }

    #[test]
    fn code_lines() {
        assert_eq!(l("add x2, x1, #0"), "x2 = x1 + 0");
        assert_eq!(l("ldr w0, [sp, 12]"), "w0 = mem32[sp + 12]");
        assert_eq!(l("str x0, [sp, #8]"), "mem64[sp + 8] = x0");
        assert_eq!(l("str wzr, [sp, #8]"), "mem32[sp + 8] = 0");
        assert_eq!(l("ldrsw x0, [sp, 20]"), "x0 = sext(mem32[sp + 20], 32)");
        assert_eq!(
            l("ldrb w1, [x0], #1"),
            "w1 = zext(mem8[x0], 8); x0 = x0 + 1"
        );
        assert_eq!(l("cmp w1, w0"), "nzcv = flags(w1 - w0)");
        assert_eq!(l("subs x0, x1, x2"), "x0 = x1 - x2; nzcv = flags(x1 - x2)");
        assert_eq!(l("add x0, x1, x2, lsl #3"), "x0 = x1 + lsl(x2, 3)");
        assert_eq!(
            l("add x0, x1, w2, sxtw #2"),
            "x0 = x1 + lsl(sext(w2, 32), 2)"
        );
        assert_eq!(l("lsl x1, x0, 3"), "x1 = lsl(x0, 3)");
        assert_eq!(l("sxtw x0, w0"), "x0 = sext(w0, 32)");
        assert_eq!(l("csel w0, w1, w2, lt"), "w0 = cond(lt, w1, w2)");
        assert_eq!(l("cset w0, eq"), "w0 = cond(eq, 1, 0)");
        assert_eq!(l("madd x0, x1, x2, x3"), "x0 = madd(x1, x2, x3)");
        assert_eq!(l("movk x0, #1, lsl #16"), "x0 = movk(x0, 1, lsl #16)");
        assert_eq!(
            l("stp x29, x30, [sp, -16]!"),
            "mem64[sp - 16] = x29; mem64[sp - 16 + 8] = x30; sp = sp - 16"
        );
        assert_eq!(l("nop"), "skip");
    }

    #[test]
    fn live_section_matches_the_prompt_examples() {
        let t = chain_of_code(
            &w(&["add x2, x1, #0", "mov x0, x2"]),
            LocSet::parse_list("x0,sp").unwrap(),
        );
        assert_eq!(t, "code:\nx2 = x1 + 0\nx0 = x2\nlive:\nx0 = x1\n");
        let t = chain_of_code(
            &w(&["mov x2, #8", "mul x0, x1, x2"]),
            LocSet::parse_list("x0,sp").unwrap(),
        );
        assert_eq!(t, "code:\nx2 = 8\nx0 = x1 * x2\nlive:\nx0 = x1 * 8\n");
        let t = chain_of_code(&w(&["mov x3, x0"]), LocSet::parse_list("x0,sp").unwrap());
        assert_eq!(t, "code:\nx3 = x0\nlive:\nnone\n");
        let t = chain_of_code(
            &w(&["ldr x0, [x1, #8]", "add x0, x0, #1"]),
            LocSet::parse_list("x0,x1,sp").unwrap(),
        );
        assert_eq!(
            t,
            "code:\nx0 = mem64[x1 + 8]\nx0 = x0 + 1\nlive:\nx0 = mem64[x1 + 8] + 1\n"
        );
    }

    #[test]
    fn only_a_shift_by_zero_is_simplified_as_one() {
        // The string simplifier took any value that began `lsl(` and ended
        // `, 0)` for a shift by 0 and printed `x0, 3) + cond(eq, 1`.
        let t = live_lines(
            &w(&["lsl x1, x0, #3", "cset x2, eq", "add x3, x1, x2"]),
            LocSet::parse_list("x3").unwrap(),
        );
        assert_eq!(t, ["x3 = lsl(x0, 3) + cond(eq, 1, 0)"]);
        let t = live_lines(
            &w(&["cset x2, eq", "lsr x3, x1, x2", "lsl x4, x1, xzr"]),
            LocSet::parse_list("x3,x4").unwrap(),
        );
        assert_eq!(t, ["x3 = lsr(x1, cond(eq, 1, 0))", "x4 = x1"]);
    }

    #[test]
    fn store_forwarding_only_without_intervening_stores() {
        let live = LocSet::parse_list("x0,mem").unwrap();
        let t = live_lines(&w(&["str w0, [sp, 12]", "ldr w0, [sp, 12]"]), live);
        assert_eq!(t, ["w0 = w0", "mem32[sp + 12] = w0"]);
        let t = live_lines(
            &w(&["str w0, [sp, 12]", "str w2, [x3]", "ldr w0, [sp, 12]"]),
            live,
        );
        assert_eq!(t[0], "w0 = mem32[sp + 12]");
    }
}
