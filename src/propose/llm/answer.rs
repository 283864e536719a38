//! Reading a model answer: the trace (everything before `rewrite:`) and the
//! rewrite itself. The decoding grammar makes well-formed answers the norm,
//! but this parser does not rely on it: it accepts only what it can fully
//! parse, so a truncated or foreign answer yields an error, never a partial
//! instruction list.

use crate::asm::Insn;
use serde::Serialize;

/// What the model suggests for the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "insns", rename_all = "kebab-case")]
pub enum Suggestion {
    /// `rewrite: no change`.
    NoChange,
    /// Replace the window by these instructions (empty: `rewrite: delete`).
    Replace(#[serde(serialize_with = "ser_insns")] Vec<Insn>),
}

fn ser_insns<S: serde::Serializer>(v: &[Insn], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|i| i.to_string()))
}

/// A parsed answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAnswer {
    /// The reasoning before the rewrite section, trimmed (empty for `direct`).
    pub trace: String,
    pub suggestion: Suggestion,
}

/// Split and parse a raw answer.
pub fn parse_answer(raw: &str) -> Result<ParsedAnswer, String> {
    let (trace, rest) = if let Some(r) = raw.strip_prefix("rewrite:") {
        ("", r)
    } else {
        match raw.find("\nrewrite:") {
            Some(i) => (&raw[..i], &raw[i + "\nrewrite:".len()..]),
            None => return Err("no `rewrite:` section".into()),
        }
    };
    let trace = trace.trim().to_string();
    let suggestion = match rest.trim_end() {
        " no change" => Suggestion::NoChange,
        " delete" => Suggestion::Replace(Vec::new()),
        body => {
            let body = body
                .strip_prefix('\n')
                .ok_or_else(|| format!("unexpected text after `rewrite:`: `{body}`"))?;
            let mut insns = Vec::new();
            for line in body.lines() {
                let insn = Insn::parse_plain(line).map_err(|e| format!("`{line}`: {}", e.0))?;
                insns.push(insn);
            }
            if insns.is_empty() {
                return Err("empty rewrite".into());
            }
            Suggestion::Replace(insns)
        }
    };
    Ok(ParsedAnswer { trace, suggestion })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::llm::PromptStyle;

    #[test]
    fn parses_chain_of_code() {
        let a = parse_answer("code:\nx2 = x1 + 0\nx0 = x2\nlive:\nx0 = x1\nrewrite:\nmov x0, x1\n")
            .unwrap();
        assert_eq!(a.trace, "code:\nx2 = x1 + 0\nx0 = x2\nlive:\nx0 = x1");
        assert_eq!(
            a.suggestion,
            Suggestion::Replace(vec![Insn::parse_plain("mov x0, x1").unwrap()])
        );
    }

    #[test]
    fn parses_special_answers() {
        assert_eq!(
            parse_answer("rewrite: no change\n").unwrap().suggestion,
            Suggestion::NoChange
        );
        let d = parse_answer("reasoning:\n- dead\nrewrite: delete\n").unwrap();
        assert_eq!(d.suggestion, Suggestion::Replace(vec![]));
        assert_eq!(d.trace, "reasoning:\n- dead");
    }

    #[test]
    fn rejects_what_it_cannot_parse() {
        assert!(parse_answer("code:\nx0 = x1\n").is_err());
        assert!(parse_answer("rewrite:\n").is_err());
        assert!(parse_answer("rewrite: maybe\n").is_err());
        assert!(parse_answer("rewrite:\nmov %eax, 1\n").is_err());
    }

    #[test]
    fn every_few_shot_answer_parses() {
        for s in PromptStyle::ALL {
            for ans in s.template().example_answers() {
                parse_answer(ans).unwrap_or_else(|e| panic!("{s}: {ans}: {e}"));
            }
        }
    }

    #[test]
    fn grammar_shaped_instructions_parse() {
        for t in [
            "ldr w0, [sp, #12]",
            "str x1, [x2, #-16]!",
            "ldr x0, [x1], #8",
            "ldr x0, [x1, x2, lsl #3]",
            "ldrb w0, [x1, w2, uxtw]",
            "add x0, x1, x2, lsl #2",
            "csel x0, x1, x2, ne",
            "movk x0, #0xffff, lsl #16",
            "fadd d0, d1, d2",
            "add v0.4s, v1.4s, v2.4s",
            "ret",
        ] {
            let i = Insn::parse_plain(t).unwrap_or_else(|e| panic!("{t}: {e:?}"));
            assert_eq!(i.to_string(), t);
        }
    }
}
