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

use crate::asm::{AddrMode, Insn, Mem, Operand, Reg, RegKind};
use crate::semantics::{effects, Loc, LocSet};
use std::collections::HashMap;

/// An operand's value: registers by name (zero registers as `0`), integers
/// in decimal.
fn val(o: &Operand) -> String {
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

fn ext_bits(op: &str) -> Option<(&'static str, u32)> {
    Some(match op {
        "uxtb" => ("zext", 8),
        "uxth" => ("zext", 16),
        "uxtw" => ("zext", 32),
        "uxtx" => ("zext", 64),
        "sxtb" => ("sext", 8),
        "sxth" => ("sext", 16),
        "sxtw" => ("sext", 32),
        "sxtx" => ("sext", 64),
        _ => return None,
    })
}

/// Apply a shift/extend modifier to a value.
fn modified(v: String, m: Option<&Operand>) -> String {
    let Some(Operand::Modifier { op, amount }) = m else {
        return v;
    };
    let amt = amount.as_ref().and_then(|a| a.value).unwrap_or(0);
    let base = match ext_bits(op) {
        Some((f, bits)) => format!("{f}({v}, {bits})"),
        None if amt == 0 => return v,
        None => return format!("{op}({v}, {amt})"),
    };
    if amt > 0 {
        format!("lsl({base}, {amt})")
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

fn plus(base: &str, off: i64) -> String {
    match off {
        0 => base.to_string(),
        o if o < 0 => format!("{base} - {}", -o),
        o => format!("{base} + {o}"),
    }
}

/// Address of the access (before any writeback).
fn address(m: &Mem) -> String {
    let base = val(&Operand::Reg(m.base.clone()));
    match (&m.mode, &m.offset, &m.index) {
        (AddrMode::PostIndex(_), _, _) => base,
        (_, Some(i), _) => match i.value {
            Some(v) => plus(&base, v),
            None => format!("{base} + {}", i.text),
        },
        (_, None, Some((r, ext))) => {
            format!("{base} + {}", modified(r.to_string(), ext.as_deref()))
        }
        _ => base,
    }
}

fn writeback(m: &Mem) -> Option<String> {
    let b = m.base.to_string();
    match &m.mode {
        AddrMode::Offset => None,
        AddrMode::PreIndex => Some(format!(
            "{b} = {}",
            plus(&b, m.offset.as_ref().and_then(|i| i.value).unwrap_or(0))
        )),
        AddrMode::PostIndex(p) => Some(match p.imm_value() {
            Some(v) => format!("{b} = {}", plus(&b, v)),
            None => format!("{b} = {b} + {}", val(p)),
        }),
    }
}

fn infix(m: &str) -> Option<&'static str> {
    Some(match m {
        "add" | "adds" => "+",
        "sub" | "subs" => "-",
        "and" | "ands" => "&",
        "orr" => "|",
        "eor" => "^",
        "bic" | "bics" => "& ~",
        "orn" => "| ~",
        "eon" => "^ ~",
        "mul" => "*",
        _ => return None,
    })
}

/// The statements of one instruction (simultaneous: all read the values
/// before it). Empty for instructions with no observable effect.
pub fn statements(insn: &Insn) -> Vec<String> {
    let m = insn.mnemonic.as_str();
    let ops = &insn.operands;
    let o = |i: usize| ops.get(i).map(val).unwrap_or_default();
    let d = o(0);
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
            let cell = format!(
                "mem{bits}[{}]",
                if off == 0 {
                    addr.clone()
                } else {
                    format!("{addr} + {off}")
                }
            );
            if m.starts_with("st") {
                out.push(format!("{cell} = {}", val(&Operand::Reg(r.clone()))));
            } else if narrow.is_some() || signed {
                out.push(format!(
                    "{r} = {}({cell}, {bits})",
                    if signed { "sext" } else { "zext" }
                ));
            } else {
                out.push(format!("{r} = {cell}"));
            }
            off += (bits / 8) as i64;
        }
        out.extend(writeback(mem));
        return out;
    }
    let flags = |e: String| format!("nzcv = flags({e})");
    match (m, ops.len()) {
        ("nop" | "hint" | "prfm" | "prfum" | "bti", _) => {}
        ("cmp", _) => out.push(flags(format!("{} - {}", o(0), modified(o(1), ops.get(2))))),
        ("cmn", _) => out.push(flags(format!("{} + {}", o(0), modified(o(1), ops.get(2))))),
        ("tst", _) => out.push(flags(format!("{} & {}", o(0), modified(o(1), ops.get(2))))),
        ("mov" | "fmov", 2) => out.push(format!("{d} = {}", o(1))),
        ("mvn", _) => out.push(format!("{d} = ~{}", modified(o(1), ops.get(2)))),
        ("neg" | "negs", _) => {
            let e = format!("0 - {}", modified(o(1), ops.get(2)));
            out.push(format!("{d} = {e}"));
            if m == "negs" {
                out.push(flags(e));
            }
        }
        ("lsl" | "lsr" | "asr" | "ror" | "lslv" | "lsrv" | "asrv" | "rorv", 3) => out.push(
            format!("{d} = {}({}, {})", m.trim_end_matches('v'), o(1), o(2)),
        ),
        ("sxtb" | "sxth" | "sxtw" | "uxtb" | "uxth" | "uxtw", 2) => {
            let (f, bits) = ext_bits(m).unwrap_or(("zext", 64));
            out.push(format!("{d} = {f}({}, {bits})", o(1)));
        }
        ("csel", 4) => out.push(format!("{d} = cond({}, {}, {})", o(3), o(1), o(2))),
        ("csinc", 4) => out.push(format!("{d} = cond({}, {}, {} + 1)", o(3), o(1), o(2))),
        ("csinv", 4) => out.push(format!("{d} = cond({}, {}, ~{})", o(3), o(1), o(2))),
        ("csneg", 4) => out.push(format!("{d} = cond({}, {}, 0 - {})", o(3), o(1), o(2))),
        ("cset", 2) => out.push(format!("{d} = cond({}, 1, 0)", o(1))),
        ("csetm", 2) => out.push(format!("{d} = cond({}, -1, 0)", o(1))),
        ("cinc", 3) => out.push(format!("{d} = cond({}, {} + 1, {})", o(2), o(1), o(1))),
        ("cinv", 3) => out.push(format!("{d} = cond({}, ~{}, {})", o(2), o(1), o(1))),
        ("cneg", 3) => out.push(format!("{d} = cond({}, 0 - {}, {})", o(2), o(1), o(1))),
        (_, 3 | 4) if infix(m).is_some() => {
            let e = format!(
                "{} {} {}",
                o(1),
                infix(m).unwrap_or("?"),
                modified(o(2), ops.get(3))
            );
            out.push(format!("{d} = {e}"));
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
            let args: Vec<String> = ops.iter().skip(first).map(val).collect();
            if dest_written {
                out.push(format!("{d} = {m}({})", args.join(", ")));
            }
            if e.writes.contains(Loc::Nzcv) {
                out.push(format!("nzcv = {m}({})", args.join(", ")));
            }
        }
    }
    out
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

/// Is `tok` a register name (any view)?
fn reg_loc(tok: &str) -> Option<Loc> {
    Reg::parse(tok).and_then(|r| r.loc())
}

/// Replace register tokens by their values; compound values get parentheses.
fn substitute(expr: &str, env: &HashMap<Loc, String>) -> String {
    let mut out = String::new();
    let mut tok = String::new();
    let flush = |tok: &mut String, out: &mut String| {
        if !tok.is_empty() {
            match reg_loc(tok).and_then(|l| env.get(&l)) {
                Some(v) if !is_atomic(v) => {
                    out.push('(');
                    out.push_str(v);
                    out.push(')');
                }
                Some(v) => out.push_str(v),
                None => out.push_str(tok),
            }
            tok.clear();
        }
    };
    for c in expr.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            tok.push(c);
        } else {
            flush(&mut tok, &mut out);
            out.push(c);
        }
    }
    flush(&mut tok, &mut out);
    out
}

/// The simplifications the format allows: `a + 0`, `a - 0`, `a | 0`,
/// `a ^ 0`, `a * 1`, shifts by 0, and folding two literals.
fn simplify(e: &str) -> String {
    for suffix in [" + 0", " - 0", " | 0", " ^ 0", " * 1"] {
        if let Some(a) = e.strip_suffix(suffix) {
            return a.to_string();
        }
    }
    for f in ["lsl(", "lsr(", "asr(", "ror("] {
        if let Some(inner) = e.strip_prefix(f).and_then(|r| r.strip_suffix(", 0)")) {
            return inner.to_string();
        }
    }
    let parts: Vec<&str> = e.split(' ').collect();
    if let [a, op, b] = parts.as_slice() {
        if let (Ok(x), Ok(y)) = (a.parse::<i64>(), b.parse::<i64>()) {
            let v = match *op {
                "+" => x.checked_add(y),
                "-" => x.checked_sub(y),
                "*" => x.checked_mul(y),
                "&" => Some(x & y),
                "|" => Some(x | y),
                "^" => Some(x ^ y),
                _ => None,
            };
            if let Some(v) = v {
                return v.to_string();
            }
        }
    }
    e.to_string()
}

/// No operator at the top level (outside brackets and parentheses).
fn is_atomic(v: &str) -> bool {
    let mut depth = 0i32;
    for c in v.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ' ' if depth == 0 => return false,
            _ => {}
        }
    }
    true
}

fn strip_parens(s: &str) -> &str {
    match s.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        Some(inner) if is_balanced(inner) => inner,
        _ => s,
    }
}

fn is_balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// The `live:` lines: every live-out location the block writes, as an
/// expression of entry values (loads of a cell stored earlier in the block,
/// with no other store in between, take the stored value).
pub fn live_lines(insns: &[Insn], live_out: LocSet) -> Vec<String> {
    let mut env: HashMap<Loc, String> = HashMap::new();
    let mut dest_name: HashMap<Loc, String> = HashMap::new();
    let mut stores: Vec<(String, String)> = Vec::new();
    let mut last_store: Option<(String, String)> = None;
    for insn in insns {
        let mut updates: Vec<(Loc, String, String)> = Vec::new();
        let mut new_stores = Vec::new();
        for stmt in statements(insn) {
            let Some((lhs, rhs)) = stmt.split_once(" = ") else {
                continue;
            };
            let mut value = simplify(&substitute(rhs, &env));
            if let Some((cell, v)) = &last_store {
                if value == *cell {
                    value = v.clone();
                }
            }
            if lhs.starts_with("mem") {
                new_stores.push((substitute(lhs, &env), value));
            } else if lhs == "nzcv" {
                updates.push((Loc::Nzcv, "nzcv".into(), value));
            } else if let Some(l) = reg_loc(lhs) {
                updates.push((l, lhs.to_string(), value));
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
            out.push(format!("{n} = {}", strip_parens(v)));
        }
    }
    if live_out.contains(Loc::Mem) {
        for (cell, v) in stores {
            out.push(format!("{cell} = {}", strip_parens(&v)));
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
