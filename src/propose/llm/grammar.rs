//! The answer grammar (`prompts/answer.gbnf`) and its narrowing to one
//! window: what the decoder lets the model write.

use crate::propose::Window;

/// The answer grammar shared by all styles (one root rule per style).
pub const ANSWER_GRAMMAR: &str = include_str!("../../../prompts/answer.gbnf");

/// The answer grammar narrowed to one window: exactly one `code:` line per
/// instruction, at most one `live:` line per live-out location, and a rewrite
/// no longer than the window. Small models otherwise tend to loop. Symbols
/// (labels, relocations such as `:lo12:x`) are admitted only as the window
/// writes them: a rewrite of a piece must repeat its `adrp`s, and may not
/// invent addresses. Immediates of more than `FREE_IMM_DIGITS` digits are
/// admitted only as the window's constants (`window_constants`): the model
/// otherwise miscopies long constants (`-858993466` for `-858993460`),
/// most often after a trace that repeats them.
pub fn grammar_for(window: &Window) -> String {
    let n = window.insns.len().clamp(1, 64);
    let live = window.live_out.len().clamp(1, 64);
    let syms = window_symbols(window);
    let consts = window_constants(window);
    let mut out = String::with_capacity(ANSWER_GRAMMAR.len());
    for line in ANSWER_GRAMMAR.lines() {
        let rule = line.split("::=").next().unwrap_or("").trim();
        match rule {
            "code-lines" => out.push_str(&format!("code-lines ::= code-line{{{n}}}")),
            "live-lines" => out.push_str(&format!("live-lines ::= live-line{{1,{live}}}")),
            "rewrite-lines" => {
                out.push_str(&format!("rewrite-lines ::= ( insn \"\\n\" ){{1,{n}}}"))
            }
            "operand" if !syms.is_empty() => out.push_str(&format!("{line} | sym")),
            "imm" => out.push_str(&narrowed_imm(!consts.is_empty())),
            "mem" if !syms.is_empty() => {
                out.push_str(&line.replacen("( \", \" imm |", "( \", \" imm | \", \" sym |", 1))
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if !syms.is_empty() {
        let alts: Vec<String> = syms.iter().map(|s| gbnf_literal(s)).collect();
        out.push_str(&format!("sym ::= {}\n", alts.join(" | ")));
    }
    if !consts.is_empty() {
        let alts: Vec<String> = consts.iter().map(|s| gbnf_literal(s)).collect();
        out.push_str(&format!("known-imm ::= {}\n", alts.join(" | ")));
    }
    out
}

/// Immediates a rewrite may write without the window having them: up to
/// this many decimal or hex digits (shift amounts, offsets, `movk` halves,
/// small folded constants).
pub const FREE_IMM_DIGITS: usize = 4;

/// The `imm` rule of a window's grammar: short immediates, or one of the
/// window's long constants (`known-imm`) when it has any.
fn narrowed_imm(known: bool) -> String {
    let d = FREE_IMM_DIGITS;
    let free = format!("\"-\"? ( [0-9]{{1,{d}}} | \"0x\" [0-9a-f]{{1,{d}}} )");
    if known {
        format!("imm ::= \"#\"? ( {free} | known-imm )")
    } else {
        format!("imm ::= \"#\"? {free}")
    }
}

/// Spellings of the long constants (more than `FREE_IMM_DIGITS` digits) a
/// rewrite of this window may write: every constant of the window and of
/// what its semantics compute from them (the chain-of-code trace folds
/// `mov x1, #100000; add x1, x1, #5` into `x1 = 100005`), each as its value,
/// negation and complement, in 64 and 32 bits (`and w0, w0, -858993460` is
/// `bic w0, w0, 858993459`), in decimal and hex. Sorted, no repeats.
pub fn window_constants(window: &Window) -> Vec<String> {
    use crate::asm::Operand;
    let mut values: Vec<i64> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    let mut add = |i: &crate::asm::Imm| {
        if let Some(v) = i.value {
            values.push(v);
            // As written too: clang writes `movi d0, #0000000000000000`.
            out.push(i.text.trim_start_matches('#').to_string());
        }
    };
    for insn in &window.insns {
        for op in &insn.operands {
            match op {
                Operand::Imm(i) => add(i),
                Operand::Mem(m) => m.offset.iter().for_each(&mut add),
                _ => {}
            }
        }
    }
    out.retain(|s| digits(s) > FREE_IMM_DIGITS);
    let trace = crate::semantics::transfer::chain_of_code(&window.insns, window.live_out);
    values.extend(numbers_in(&trace));
    for v in values {
        let variants = [v, v.wrapping_neg(), !v];
        for x in variants {
            for y in [x, x as i32 as i64, x as u32 as i64] {
                let hex = if y < 0 {
                    format!("-0x{:x}", y.unsigned_abs())
                } else {
                    format!("0x{y:x}")
                };
                for s in [y.to_string(), hex, format!("0x{:x}", y as u64)] {
                    if digits(&s) > FREE_IMM_DIGITS {
                        out.push(s);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Digits of an immediate's spelling, without its sign and `0x`.
fn digits(s: &str) -> usize {
    s.trim_start_matches('-').trim_start_matches("0x").len()
}

/// Integer literals in a trace: decimal or `0x` hex, with a directly
/// preceding `-`; digits that end a name (`x19`, `mem32`) are not numbers.
fn numbers_in(text: &str) -> Vec<i64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let neg = i > 0 && b[i - 1] == b'-';
        let (radix, from) = if text[i..].starts_with("0x") {
            (16, i + 2)
        } else {
            (10, i)
        };
        let mut j = from;
        while j < b.len() && (b[j] as char).is_digit(radix) {
            j += 1;
        }
        if let Ok(u) = u64::from_str_radix(&text[from..j], radix) {
            let v = u as i64;
            out.push(if neg { v.wrapping_neg() } else { v });
        }
        i = j.max(i + 1);
    }
    out
}

/// Symbolic operands and memory offsets of the window, as written.
fn window_symbols(window: &Window) -> Vec<String> {
    use crate::asm::Operand;
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for insn in &window.insns {
        for op in &insn.operands {
            match op {
                Operand::Sym(s) => add(s),
                Operand::Imm(i) if i.value.is_none() => add(&i.text),
                Operand::Mem(m) => {
                    if let Some(i) = m.offset.as_ref().filter(|i| i.value.is_none()) {
                        add(&i.text);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A GBNF string literal.
fn gbnf_literal(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                q.push('\\');
                q.push(c);
            }
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The `# version:` line of the answer grammar (part of every cache key).
pub fn grammar_version() -> &'static str {
    ANSWER_GRAMMAR
        .lines()
        .find_map(|l| l.strip_prefix("# version:"))
        .map(str::trim)
        .unwrap_or("unversioned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_is_narrowed_to_the_window() {
        let w = Window::of(&["mov x1, x0", "mov x2, x1"], "x1,x2,sp");
        let g = grammar_for(&w);
        assert!(g.contains("\ncode-lines ::= code-line{2}\n"), "{g}");
        assert!(g.contains("\nlive-lines ::= live-line{1,3}\n"));
        assert!(g.contains("\nrewrite-lines ::= ( insn \"\\n\" ){1,2}\n"));
        assert_eq!(g.lines().count(), ANSWER_GRAMMAR.lines().count());
        assert!(
            !g.contains("sym ::="),
            "no symbols in the window, none admitted"
        );
    }

    #[test]
    fn grammar_admits_exactly_the_windows_symbols() {
        let w = Window::of(
            &[
                "adrp x0, lcg_state",
                "add x0, x0, :lo12:lcg_state",
                "ldr w1, [x2, #:lo12:seed]",
            ],
            "x0,x1,sp",
        );
        let g = grammar_for(&w);
        let sym = g.lines().find(|l| l.starts_with("sym ::=")).expect(&g);
        assert_eq!(
            sym,
            r#"sym ::= "lcg_state" | ":lo12:lcg_state" | ":lo12:seed""#
        );
        assert!(g
            .lines()
            .any(|l| l.starts_with("operand ") && l.ends_with("| sym")));
        assert!(g
            .lines()
            .any(|l| l.starts_with("mem ") && l.contains(r#"", " sym"#)));
    }

    #[test]
    fn long_immediates_are_the_windows_own() {
        let w = Window::of(
            &["lsl w0, w0, 2", "and w0, w0, -858993460", "orr w0, w1, w0"],
            "x0,sp",
        );
        let c = window_constants(&w);
        // As written, its complement (`bic`), and hex spellings.
        for s in ["-858993460", "858993459", "0xcccccccc", "0x33333333"] {
            assert!(c.iter().any(|k| k == s), "{s} not in {c:?}");
        }
        assert!(!c.iter().any(|k| k == "-858993466"));
        // Short ones are free, so not listed.
        assert!(c.iter().all(|k| digits(k) > FREE_IMM_DIGITS));
        let g = grammar_for(&w);
        assert!(
            g.contains(
                "\nimm ::= \"#\"? ( \"-\"? ( [0-9]{1,4} | \"0x\" [0-9a-f]{1,4} ) | known-imm )\n"
            ),
            "{g}"
        );
        assert!(g.contains("known-imm ::= ") && g.contains("\"-858993460\""));
        // A window's immediates are admitted as written (clang's `movi`).
        let w = Window::of(
            &[
                "movi d0, #0000000000000000",
                "mov x9, #-4620693217682128896",
            ],
            "x0,sp",
        );
        let c = window_constants(&w);
        for s in ["0000000000000000", "-4620693217682128896"] {
            assert!(c.iter().any(|k| k == s), "{s} not in {c:?}");
        }
        // No constant in the window: only short immediates.
        let g = grammar_for(&Window::of(&["mov x1, x0", "add x0, x1, x2"], "x0,sp"));
        assert!(!g.contains("known-imm"), "{g}");
        assert!(g.contains("\nimm ::= \"#\"? \"-\"? ( [0-9]{1,4} | \"0x\" [0-9a-f]{1,4} )\n"));
    }

    #[test]
    fn constants_the_semantics_fold_are_admitted() {
        // 100000 + 5 is computed by the trace, not written in the window.
        let w = Window::of(
            &["mov x1, #100000", "add x1, x1, #5", "add x0, x0, x1"],
            "x0,sp",
        );
        let c = window_constants(&w);
        assert!(c.iter().any(|k| k == "100005"), "{c:?}");
        assert_eq!(numbers_in("x19 = mem32[sp + 12] & -0x10"), vec![12, -16]);
    }
}
