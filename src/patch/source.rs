//! Patching assembly source: only the rewritten instructions' text changes.
//!
//! Replacement instructions take the place of the originals one for one and
//! copy their spelling style (the whitespace after the mnemonic); extra
//! originals are removed (their whole line when nothing else is on it, so
//! comments survive); extra replacements go on new lines after the last
//! original, with its indentation and line ending.

use crate::asm::{Insn, Source};

/// One window's replacement, by statement indices.
#[derive(Clone, Debug)]
pub struct Edit {
    pub stmts: Vec<usize>,
    pub replacement: Vec<Insn>,
}

/// Render `insn` in the style of the source text `like` (e.g. `add\tx0, x0, 1`).
fn styled(insn: &Insn, like: &str) -> String {
    let canon = insn.to_string();
    let sep: String = like
        .trim_start()
        .chars()
        .skip_while(|c| !c.is_whitespace())
        .take_while(|c| c.is_whitespace())
        .collect();
    match (canon.split_once(' '), sep.is_empty()) {
        (Some((m, rest)), false) => format!("{m}{sep}{rest}"),
        _ => canon,
    }
}

fn line_bounds(text: &str, at: usize) -> (usize, usize, usize) {
    let start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let content_end = text[at..]
        .find(['\n', '\r'])
        .map(|i| at + i)
        .unwrap_or(text.len());
    let end = if text[content_end..].starts_with("\r\n") {
        content_end + 2
    } else if content_end < text.len() {
        content_end + 1
    } else {
        content_end
    };
    (start, content_end, end)
}

/// Apply non-overlapping edits; returns the new text.
pub fn apply(src: &Source, edits: &[Edit]) -> String {
    // (start, end, replacement) byte splices, applied back to front.
    let mut splices: Vec<(usize, usize, String)> = Vec::new();
    for e in edits {
        let n = e.stmts.len();
        let m = e.replacement.len();
        for (k, &si) in e.stmts.iter().enumerate() {
            let span = src.stmts[si].span.clone();
            let orig = &src.text[span.clone()];
            if k < m {
                let mut text = styled(&e.replacement[k], orig);
                if k + 1 == n && m > n {
                    // Extra instructions go on new lines after the last original.
                    let (ls, le, lend) = line_bounds(&src.text, span.start);
                    let indent: String = src.text[ls..span.start]
                        .chars()
                        .take_while(|c| c.is_whitespace())
                        .collect();
                    let eol = match &src.text[le..lend] {
                        "" => "\n",
                        s => s,
                    };
                    let extra: Vec<String> = e.replacement[n..]
                        .iter()
                        .map(|i| format!("{indent}{}", styled(i, orig)))
                        .collect();
                    if lend == le {
                        // Last line without a newline: keep it without one.
                        splices.push((le, le, format!("{eol}{}", extra.join(eol))));
                    } else {
                        splices.push((lend, lend, format!("{}{eol}", extra.join(eol))));
                    }
                }
                splices.push((span.start, span.end, std::mem::take(&mut text)));
            } else {
                let (ls, le, lend) = line_bounds(&src.text, span.start);
                let others = src
                    .stmts
                    .iter()
                    .any(|s| s.span.start >= ls && s.span.end <= le && s.span != span);
                let rest_blank = src.text[ls..span.start].trim().is_empty()
                    && src.text[span.end..le].trim().is_empty();
                if rest_blank && !others {
                    splices.push((ls, lend, String::new()));
                } else {
                    // Drop the statement with its `;` separator: the one
                    // before it if any, else the one after it.
                    let (mut start, mut end) = (span.start, span.end);
                    let before = &src.text[ls..start];
                    let after = &src.text[end..le];
                    if let Some(p) = before
                        .rfind(';')
                        .filter(|&p| before[p + 1..].trim().is_empty())
                    {
                        start = ls + before[..p].trim_end().len();
                    } else if let Some(p) =
                        after.find(';').filter(|&p| after[..p].trim().is_empty())
                    {
                        end += p + 1 + (after[p + 1..].len() - after[p + 1..].trim_start().len());
                    }
                    splices.push((start, end, String::new()));
                }
            }
        }
    }
    splices.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = src.text.clone();
    for (s, e, r) in splices {
        out.replace_range(s..e, &r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::StmtKind;

    fn insns(v: &[&str]) -> Vec<Insn> {
        v.iter().map(|s| Insn::parse_plain(s).unwrap()).collect()
    }

    fn insn_stmts(src: &Source) -> Vec<usize> {
        src.stmts
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.kind, StmtKind::Insn(_)))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn shrink_keeps_comments_and_style() {
        let src = Source::parse(
            "t.s",
            "f:\n\tmov\tx1, 8 // eight\n\tmul\tx0, x0, x1\n\tret\n".into(),
        )
        .unwrap();
        let s = insn_stmts(&src);
        let out = apply(
            &src,
            &[Edit {
                stmts: vec![s[0], s[1]],
                replacement: insns(&["lsl x0, x0, #3"]),
            }],
        );
        assert_eq!(out, "f:\n\tlsl\tx0, x0, #3 // eight\n\tret\n");
    }

    #[test]
    fn delete_whole_lines_and_separated_statements() {
        let src = Source::parse(
            "t.s",
            "f:\n  add x0, x0, 0\n  nop ; mov x1, x1\n  ret".into(),
        )
        .unwrap();
        let s = insn_stmts(&src);
        let out = apply(
            &src,
            &[
                Edit {
                    stmts: vec![s[0]],
                    replacement: vec![],
                },
                Edit {
                    stmts: vec![s[1], s[2]],
                    replacement: insns(&["nop"]),
                },
            ],
        );
        assert_eq!(out, "f:\n  nop\n  ret");
    }

    #[test]
    fn grow_inserts_lines_with_indent_and_crlf() {
        let src = Source::parse("t.s", "f:\r\n    mov x0, x1\r\n    ret\r\n".into()).unwrap();
        let s = insn_stmts(&src);
        let out = apply(
            &src,
            &[Edit {
                stmts: vec![s[0]],
                replacement: insns(&["mov x0, x1", "mov x2, x1"]),
            }],
        );
        assert_eq!(out, "f:\r\n    mov x0, x1\r\n    mov x2, x1\r\n    ret\r\n");
    }

    #[test]
    fn no_edits_is_identity() {
        let text = "f:\t// c\r\n\tret";
        let src = Source::parse("t.s", text.into()).unwrap();
        assert_eq!(apply(&src, &[]), text);
    }
}
