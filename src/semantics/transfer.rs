//! Register-transfer rendering of instructions, and a symbolic summary of a
//! window: the *chain-of-code* that the LLM is trained to write before its
//! rewrite. Generated from the project's semantics, never by hand, so the
//! training traces and the model's reasoning share one vocabulary.
//!
//! Statements look like C: `x0 = x1 + 8`, `w0 = mem32[sp + 12]`,
//! `nzcv = cmp(x3, 0)`, `if eq goto .L2`. Values are the registers' values
//! on entry to the window unless substituted by the summary.

use super::effects::effects;
use crate::asm::{AddrMode, Insn, Mem, Operand, Reg, RegKind};
use crate::semantics::{Loc, LocSet};
use std::collections::HashMap;

fn op_symbol(m: &str) -> Option<&'static str> {
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
        "sdiv" => "/s",
        "udiv" => "/u",
        "lsl" | "lslv" => "<<",
        "lsr" | "lsrv" => ">>u",
        "asr" | "asrv" => ">>s",
        "ror" | "rorv" => "ror",
        _ => return None,
    })
}

/// Text of a source operand, with shift/extend folded in.
fn val(o: &Operand) -> String {
    match o {
        Operand::Imm(i) => i
            .value
            .map(|v| v.to_string())
            .unwrap_or_else(|| i.text.clone()),
        Operand::Reg(r) => r.to_string(),
        other => other.to_string(),
    }
}

fn with_modifier(v: String, m: Option<&Operand>) -> String {
    match m {
        Some(Operand::Modifier { op, amount }) => {
            let amt = amount.as_ref().and_then(|a| a.value).unwrap_or(0);
            match op.as_str() {
                "lsl" => format!("({v} << {amt})"),
                "lsr" => format!("({v} >>u {amt})"),
                "asr" => format!("({v} >>s {amt})"),
                "ror" => format!("ror({v}, {amt})"),
                ext => {
                    let e = format!("{ext}({v})");
                    if amt > 0 {
                        format!("({e} << {amt})")
                    } else {
                        e
                    }
                }
            }
        }
        _ => v,
    }
}

fn width_of(r: &Reg) -> u32 {
    match r.kind {
        RegKind::W | RegKind::Wsp | RegKind::Wzr | RegKind::S => 32,
        RegKind::H => 16,
        RegKind::B => 8,
        RegKind::Q => 128,
        RegKind::V => 128,
        _ => 64,
    }
}

fn address(m: &Mem) -> String {
    let base = m.base.to_string();
    let off = match (&m.offset, &m.index) {
        (Some(i), _) if i.value == Some(0) => String::new(),
        (Some(i), _) => match i.value {
            Some(v) if v < 0 => format!(" - {}", -v),
            Some(v) => format!(" + {v}"),
            None => format!(" + {}", i.text),
        },
        (None, Some((r, ext))) => format!(" + {}", with_modifier(r.to_string(), ext.as_deref())),
        _ => String::new(),
    };
    match m.mode {
        AddrMode::PostIndex(_) => base,
        _ => format!("{base}{off}"),
    }
}

fn writeback(m: &Mem) -> Option<String> {
    let b = &m.base;
    match &m.mode {
        AddrMode::Offset => None,
        AddrMode::PreIndex => {
            let v = m.offset.as_ref().and_then(|i| i.value).unwrap_or(0);
            Some(format!("{b} = {b} + {v}"))
        }
        AddrMode::PostIndex(p) => Some(format!("{b} = {b} + {}", val(p))),
    }
}

/// The register-transfer statements of one instruction.
pub fn rtl(insn: &Insn) -> Vec<String> {
    let m = insn.mnemonic.as_str();
    let ops = &insn.operands;
    let o = |i: usize| ops.get(i).map(val).unwrap_or_default();
    let mut out = Vec::new();
    let mem_at = ops.iter().position(|x| matches!(x, Operand::Mem(_)));
    match (m, ops.len()) {
        ("b", _) => match insn.cond {
            Some(c) => out.push(format!("if {} goto {}", c.name(), o(0))),
            None => out.push(format!("goto {}", o(0))),
        },
        ("cbz", 2) => out.push(format!("if {} == 0 goto {}", o(0), o(1))),
        ("cbnz", 2) => out.push(format!("if {} != 0 goto {}", o(0), o(1))),
        ("tbz", 3) => out.push(format!("if bit({}, {}) == 0 goto {}", o(0), o(1), o(2))),
        ("tbnz", 3) => out.push(format!("if bit({}, {}) == 1 goto {}", o(0), o(1), o(2))),
        ("cmp", _) => out.push(format!(
            "nzcv = cmp({}, {})",
            o(0),
            with_modifier(o(1), ops.get(2))
        )),
        ("cmn", _) => out.push(format!(
            "nzcv = cmp({}, -{})",
            o(0),
            with_modifier(o(1), ops.get(2))
        )),
        ("tst", _) => out.push(format!(
            "nzcv = test({} & {})",
            o(0),
            with_modifier(o(1), ops.get(2))
        )),
        ("mov" | "movz", 2) | ("fmov", 2) => out.push(format!("{} = {}", o(0), o(1))),
        ("movz", 3) => out.push(format!("{} = {}", o(0), with_modifier(o(1), ops.get(2)))),
        ("movk", _) => {
            let sh = ops.get(2).and_then(|x| match x {
                Operand::Modifier { amount, .. } => amount.as_ref().and_then(|a| a.value),
                _ => None,
            });
            let lo = sh.unwrap_or(0);
            out.push(format!("{}[{}:{}] = {}", o(0), lo, lo + 16, o(1)));
        }
        ("mvn", _) => out.push(format!("{} = ~{}", o(0), with_modifier(o(1), ops.get(2)))),
        ("neg" | "negs", _) => out.push(format!("{} = -{}", o(0), with_modifier(o(1), ops.get(2)))),
        ("madd", 4) => out.push(format!("{} = {} + {} * {}", o(0), o(3), o(1), o(2))),
        ("msub", 4) => out.push(format!("{} = {} - {} * {}", o(0), o(3), o(1), o(2))),
        ("mneg", 3) => out.push(format!("{} = -({} * {})", o(0), o(1), o(2))),
        ("sxtb" | "sxth" | "sxtw", 2) => out.push(format!(
            "{} = sext{}({})",
            o(0),
            &m[3..]
                .replace('b', "8")
                .replace('h', "16")
                .replace('w', "32"),
            o(1)
        )),
        ("uxtb" | "uxth" | "uxtw", 2) => out.push(format!(
            "{} = zext{}({})",
            o(0),
            &m[3..]
                .replace('b', "8")
                .replace('h', "16")
                .replace('w', "32"),
            o(1)
        )),
        ("csel", 4) => out.push(format!("{} = {} ? {} : {}", o(0), o(3), o(1), o(2))),
        ("csinc", 4) => out.push(format!("{} = {} ? {} : {} + 1", o(0), o(3), o(1), o(2))),
        ("csinv", 4) => out.push(format!("{} = {} ? {} : ~{}", o(0), o(3), o(1), o(2))),
        ("csneg", 4) => out.push(format!("{} = {} ? {} : -{}", o(0), o(3), o(1), o(2))),
        ("cset", 2) => out.push(format!("{} = {} ? 1 : 0", o(0), o(1))),
        ("csetm", 2) => out.push(format!("{} = {} ? -1 : 0", o(0), o(1))),
        ("cinc", 3) => out.push(format!("{} = {} ? {} + 1 : {}", o(0), o(2), o(1), o(1))),
        ("cneg", 3) => out.push(format!("{} = {} ? -{} : {}", o(0), o(2), o(1), o(1))),
        ("adrp", 2) => out.push(format!("{} = page({})", o(0), o(1))),
        ("adr", 2) => out.push(format!("{} = &{}", o(0), o(1))),
        (_, 3) | (_, 4) if op_symbol(m).is_some() && mem_at.is_none() => {
            let sym = op_symbol(m).unwrap_or("?");
            let rhs = with_modifier(o(2), ops.get(3));
            if sym == "ror" {
                out.push(format!("{} = ror({}, {})", o(0), o(1), rhs));
            } else {
                out.push(format!("{} = {} {} {}", o(0), o(1), sym, rhs));
            }
        }
        _ if mem_at.is_some() && ops.len() >= 2 => {
            let Some(Operand::Mem(mem)) = mem_at.and_then(|i| ops.get(i)) else {
                unreachable!()
            };
            let addr = address(mem);
            let is_store = m.starts_with("st");
            if let AddrMode::PreIndex = mem.mode {
                out.extend(writeback(mem));
            }
            let addr = if matches!(mem.mode, AddrMode::PreIndex) {
                mem.base.to_string()
            } else {
                addr
            };
            let regs: Vec<&Reg> = ops[..mem_at.unwrap_or(0)]
                .iter()
                .filter_map(|x| x.reg())
                .collect();
            let size_hint: Option<u32> = match m.trim_start_matches("ld").trim_start_matches("st") {
                s if s.ends_with('b') || s.ends_with("sb") => Some(8),
                s if s.ends_with('h') || s.ends_with("sh") => Some(16),
                s if s.ends_with("sw") => Some(32),
                _ => None,
            };
            let signed = m.contains("rs")
                || m.starts_with("ldursb")
                || m.starts_with("ldursh")
                || m == "ldursw"
                || m == "ldpsw";
            let mut off = 0u32;
            for r in regs {
                let bits = size_hint.unwrap_or_else(|| width_of(r));
                let a = if off == 0 {
                    addr.clone()
                } else {
                    format!("{addr} + {}", off / 8)
                };
                let cell = format!("mem{bits}[{a}]");
                if is_store {
                    out.push(format!("{cell} = {r}"));
                } else if size_hint.is_some() {
                    out.push(format!(
                        "{r} = {}({cell})",
                        if signed { "sext" } else { "zext" }
                    ));
                } else {
                    out.push(format!("{r} = {cell}"));
                }
                off += bits;
            }
            if let AddrMode::PostIndex(_) = mem.mode {
                out.extend(writeback(mem));
            }
        }
        _ => {
            let e = effects(insn);
            let args: Vec<String> = ops.iter().skip(1).map(val).collect();
            if e.writes.is_empty() || ops.is_empty() {
                out.push(format!(
                    "{m}({})",
                    ops.iter().map(val).collect::<Vec<_>>().join(", ")
                ));
            } else {
                out.push(format!("{} = {m}({})", o(0), args.join(", ")));
            }
        }
    }
    if matches!(m, "adds" | "subs" | "ands" | "bics" | "negs") {
        let d = o(0);
        out.push(format!("nzcv = flags({d})"));
    }
    out
}

/// Is `tok` a register name (any view)?
fn reg_loc(tok: &str) -> Option<Loc> {
    Reg::parse(tok).and_then(|r| r.loc())
}

/// Replace register tokens in `expr` by their current symbolic values.
fn substitute(expr: &str, env: &HashMap<Loc, String>) -> String {
    let mut out = String::new();
    let mut tok = String::new();
    let flush = |tok: &mut String, out: &mut String| {
        if !tok.is_empty() {
            match reg_loc(tok).and_then(|l| env.get(&l)) {
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

/// Symbolic values of the live-out locations a window writes, e.g.
/// `["x0 = x0 * 8"]`, with memory cells written by stores last.
pub fn summary(insns: &[Insn], live_out: LocSet) -> Vec<String> {
    let mut env: HashMap<Loc, String> = HashMap::new();
    let mut mem: Vec<(String, String)> = Vec::new();
    for insn in insns {
        for stmt in rtl(insn) {
            let Some((lhs, rhs)) = stmt.split_once(" = ") else {
                continue;
            };
            if lhs.starts_with("if ") {
                continue;
            }
            let mut value = substitute(rhs, &env);
            // A load from a cell this window stored gets the stored value.
            if let Some((_, v)) = mem.iter().rev().find(|(cell, _)| *cell == value) {
                value = v.clone();
            }
            if value.len() > 64 {
                value = format!("<{lhs} from `{insn}`>");
            }
            if lhs.starts_with("mem") {
                let cell = substitute(lhs, &env);
                mem.retain(|(c, _)| *c != cell);
                mem.push((cell, value));
            } else if lhs == "nzcv" {
                env.insert(Loc::Nzcv, value);
            } else if let Some(l) = reg_loc(lhs.split('[').next().unwrap_or(lhs)) {
                let shown = if value.contains(' ') && !value.starts_with('(') {
                    format!("({value})")
                } else {
                    value
                };
                env.insert(l, shown);
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut locs: Vec<&Loc> = env.keys().filter(|l| live_out.contains(**l)).collect();
    locs.sort();
    for l in locs {
        let v = &env[l];
        let v = v
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or(v);
        out.push(format!("{l} = {v}"));
    }
    for (cell, v) in mem {
        out.push(format!("{cell} = {v}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Vec<String> {
        rtl(&Insn::parse_plain(s).unwrap())
    }
    fn w(v: &[&str]) -> Vec<Insn> {
        v.iter().map(|s| Insn::parse_plain(s).unwrap()).collect()
    }

    #[test]
    fn statements() {
        assert_eq!(r("add x2, x1, #0"), ["x2 = x1 + 0"]);
        assert_eq!(r("ldr w0, [sp, 12]"), ["w0 = mem32[sp + 12]"]);
        assert_eq!(r("str x0, [sp, #8]"), ["mem64[sp + 8] = x0"]);
        assert_eq!(r("ldrsw x0, [sp, 20]"), ["x0 = sext(mem32[sp + 20])"]);
        assert_eq!(r("cmp w1, w0"), ["nzcv = cmp(w1, w0)"]);
        assert_eq!(r("b.lt .L3"), ["if lt goto .L3"]);
        assert_eq!(r("add x0, x1, x2, lsl #3"), ["x0 = x1 + (x2 << 3)"]);
        assert_eq!(r("madd x0, x1, x2, x3"), ["x0 = x3 + x1 * x2"]);
        assert_eq!(
            r("stp x29, x30, [sp, -16]!"),
            ["sp = sp + -16", "mem64[sp] = x29", "mem64[sp + 8] = x30"]
        );
        assert_eq!(r("subs w0, w0, #1"), ["w0 = w0 - 1", "nzcv = flags(w0)"]);
        assert_eq!(r("cbz w0, .L2"), ["if w0 == 0 goto .L2"]);
    }

    #[test]
    fn summary_substitutes_and_forwards_stores() {
        let s = summary(
            &w(&["mov x1, 8", "mul x0, x0, x1"]),
            LocSet::parse_list("x0").unwrap(),
        );
        assert_eq!(s, ["x0 = x0 * 8"]);
        let s = summary(
            &w(&["str w0, [sp, 12]", "ldr w0, [sp, 12]"]),
            LocSet::parse_list("x0,mem").unwrap(),
        );
        assert_eq!(s, ["x0 = w0", "mem32[sp + 12] = w0"]);
    }
}
