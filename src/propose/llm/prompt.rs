//! Prompt templates (data files in `prompts/`) and how a window becomes a chat.
//!
//! The templates are embedded at build time so the binary needs no data
//! directory at run time; their `version` line is part of every cache key.

use crate::propose::Window;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const CHAIN_OF_CODE: &str = include_str!("../../../prompts/chain-of-code.txt");
const CHAIN_OF_CODE_UNAIDED: &str = include_str!("../../../prompts/chain-of-code-unaided.txt");
const DIRECT: &str = include_str!("../../../prompts/direct.txt");
const CHAIN_OF_THOUGHT: &str = include_str!("../../../prompts/chain-of-thought.txt");

/// How the model is asked to answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptStyle {
    /// Register transfers per instruction (written by the project's
    /// semantics), live-out values, then the rewrite.
    #[default]
    ChainOfCode,
    /// The rewrite only.
    Direct,
    /// Short prose reasoning, then the rewrite.
    ChainOfThought,
    /// Chain-of-code with every trace line written by the model: the
    /// comparison that shows what the semantics' `code:` lines are worth.
    ChainOfCodeUnaided,
}

impl PromptStyle {
    pub const ALL: [PromptStyle; 4] = [
        PromptStyle::ChainOfCode,
        PromptStyle::Direct,
        PromptStyle::ChainOfThought,
        PromptStyle::ChainOfCodeUnaided,
    ];

    /// The styles with their own training answers (both chain-of-code
    /// styles learn from the same full traces).
    pub const TRAINED: [PromptStyle; 3] = [
        PromptStyle::ChainOfCode,
        PromptStyle::Direct,
        PromptStyle::ChainOfThought,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PromptStyle::ChainOfCode => "chain-of-code",
            PromptStyle::Direct => "direct",
            PromptStyle::ChainOfThought => "chain-of-thought",
            PromptStyle::ChainOfCodeUnaided => "chain-of-code-unaided",
        }
    }

    fn source(self) -> &'static str {
        match self {
            PromptStyle::ChainOfCode => CHAIN_OF_CODE,
            PromptStyle::Direct => DIRECT,
            PromptStyle::ChainOfThought => CHAIN_OF_THOUGHT,
            PromptStyle::ChainOfCodeUnaided => CHAIN_OF_CODE_UNAIDED,
        }
    }

    /// The parsed template of this style, parsed once per process: cache
    /// keys, queries and prefills ask for it for every window.
    pub fn template(self) -> &'static PromptTemplate {
        static PARSED: [std::sync::OnceLock<PromptTemplate>; 4] =
            [const { std::sync::OnceLock::new() }; 4];
        let i = PromptStyle::ALL
            .iter()
            .position(|&p| p == self)
            .expect("every style is in ALL");
        PARSED[i].get_or_init(|| {
            PromptTemplate::parse(self.source())
                .unwrap_or_else(|e| panic!("prompts/{}.txt is malformed: {e:#}", self.name()))
        })
    }
}

impl fmt::Display for PromptStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PromptStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PromptStyle::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = PromptStyle::ALL.iter().map(|p| p.name()).collect();
                format!("unknown prompt style `{s}` ({})", names.join(", "))
            })
    }
}

/// The start of the answer that the proposer writes itself before the model
/// goes on (`prefill:` in a template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefill {
    /// `code:` and one register-transfer line per instruction, from the
    /// project's semantics (`semantics::transfer::code_line`), then `live:`.
    Code,
    /// The whole trace before the rewrite, `code:` and `live:` sections, from
    /// the project's semantics (`semantics::transfer::chain_of_code`): the
    /// model writes only the rewrite, reading what the block computes.
    Trace,
    /// Only the `live:` section (`semantics::transfer::live_section`): what
    /// the block leaves in each live-out location, as code over its inputs.
    Live,
}

/// Chat role of a template message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A parsed template file: fixed messages (the system prompt, and few-shot
/// turns if any), worked examples, and the query.
#[derive(Clone, Debug)]
pub struct PromptTemplate {
    pub version: String,
    /// Root rule of a whole answer (`answer.gbnf`).
    pub grammar_root: String,
    /// What the proposer writes at the start of the answer, if anything.
    pub prefill: Option<Prefill>,
    /// Root rule the model decodes from: after the prefill where there is
    /// one, else `grammar_root`.
    pub decode_root: String,
    /// Sent before every query.
    pub messages: Vec<(Role, String)>,
    /// `=== example-user` / `=== example-assistant` pairs: documentation of
    /// the answer format that tests check against the grammar, the parser and
    /// the project's semantics, but that is *not* sent. Why: the fine-tuned
    /// model needs no few-shot turns, and every prompt token costs attention
    /// on every generated token (zero-shot decoding is ~30% faster).
    pub examples: Vec<(Role, String)>,
    /// The last user message, with `{block}` and `{live_out}` placeholders.
    pub query: String,
}

impl PromptTemplate {
    pub fn parse(src: &str) -> Result<PromptTemplate> {
        let mut version = None;
        let mut grammar_root = None;
        let mut prefill = None;
        let mut decode_root = None;
        let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
        for (n, line) in src.lines().enumerate() {
            if let Some(name) = line.strip_prefix("=== ") {
                sections.push((name.trim().to_string(), Vec::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push(line);
            } else if line.starts_with('#') || line.trim().is_empty() {
            } else if let Some(v) = line.strip_prefix("version:") {
                version = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("grammar-root:") {
                grammar_root = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("decode-root:") {
                decode_root = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("prefill:") {
                prefill = match v.trim() {
                    "code" => Some(Prefill::Code),
                    "trace" => Some(Prefill::Trace),
                    "live" => Some(Prefill::Live),
                    other => bail!(
                        "line {}: unknown prefill `{other}` (code, trace, live)",
                        n + 1
                    ),
                };
            } else {
                bail!(
                    "line {}: unexpected `{line}` before the first section",
                    n + 1
                );
            }
        }
        let mut messages = Vec::new();
        let mut examples = Vec::new();
        let mut query = None;
        for (name, body) in sections {
            let mut text = body.join("\n");
            text.truncate(text.trim_end().len());
            let role = match name.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => {
                    text.push('\n');
                    Role::Assistant
                }
                "example-user" => {
                    examples.push((Role::User, text));
                    continue;
                }
                "example-assistant" => {
                    text.push('\n');
                    examples.push((Role::Assistant, text));
                    continue;
                }
                "query" => {
                    if query.replace(text).is_some() {
                        bail!("more than one `=== query` section");
                    }
                    continue;
                }
                other => bail!("unknown section `=== {other}`"),
            };
            if query.is_some() {
                bail!("`=== query` must be the last section");
            }
            messages.push((role, text));
        }
        let query = query.context("no `=== query` section")?;
        if !query.contains("{block}") || !query.contains("{live_out}") {
            bail!("the query must contain {{block}} and {{live_out}}");
        }
        let grammar_root: String = grammar_root.context("no `grammar-root:` line")?;
        if prefill.is_some() != decode_root.is_some() {
            bail!("`prefill:` and `decode-root:` go together");
        }
        Ok(PromptTemplate {
            version: version.context("no `version:` line")?,
            decode_root: decode_root.unwrap_or_else(|| grammar_root.clone()),
            grammar_root,
            prefill,
            messages,
            examples,
            query,
        })
    }

    /// The query message for one window.
    pub fn query_for(&self, window: &Window) -> String {
        self.query
            .replace("{block}", &window.text())
            .replace("{live_out}", &window.live_out.to_string())
    }

    /// The start of the answer the proposer writes for this window (empty
    /// without `prefill:`); the model's tokens follow it.
    pub fn prefill_for(&self, window: &Window) -> String {
        match self.prefill {
            None => String::new(),
            Some(Prefill::Code) => {
                crate::semantics::transfer::code_section(&window.insns) + "live:\n"
            }
            Some(Prefill::Trace | Prefill::Live) => self.trace_for(window),
        }
    }

    /// What this template's chain-of-code answers carry before `rewrite:`,
    /// from the project's semantics: the `live:` section alone for
    /// `prefill: live`, else the whole trace (`code:` and `live:`). Training
    /// answers and the worked examples are built from it.
    pub fn trace_for(&self, window: &Window) -> String {
        use crate::semantics::transfer::{chain_of_code, live_section};
        match self.prefill {
            Some(Prefill::Live) => live_section(&window.insns, window.live_out),
            _ => chain_of_code(&window.insns, window.live_out),
        }
    }

    /// Answers of the few-shot turns and worked examples, for tests of the
    /// answer grammar, parser and semantics.
    pub fn example_answers(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .chain(&self.examples)
            .filter(|(r, _)| *r == Role::Assistant)
            .map(|(_, t)| t.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propose::llm::grammar::{grammar_version, ANSWER_GRAMMAR};

    #[test]
    fn all_templates_parse() {
        for s in PromptStyle::ALL {
            let t = s.template();
            assert!(!t.version.is_empty());
            assert_eq!(t.messages[0].0, Role::System);
            assert!(t.example_answers().count() >= 3);
            for root in [&t.grammar_root, &t.decode_root] {
                assert!(ANSWER_GRAMMAR.contains(&format!("\n{root} ")), "{root}");
            }
        }
        // Both chain-of-code styles ask the same question of the same adapter.
        let (aided, unaided) = (
            PromptStyle::ChainOfCode.template(),
            PromptStyle::ChainOfCodeUnaided.template(),
        );
        assert_eq!(aided.messages, unaided.messages);
        assert_ne!(aided.version, unaided.version);
        assert_eq!(grammar_version(), "answer-grammar-7");
    }

    /// The worked examples of both chain-of-code templates carry exactly
    /// the trace the semantics write for their question (the `live:`
    /// section alone where that is what the template prefills): they
    /// document the format the adapter is trained on.
    #[test]
    fn chain_of_code_examples_are_the_semantics_traces() {
        for style in [PromptStyle::ChainOfCode, PromptStyle::ChainOfCodeUnaided] {
            let t = style.template();
            let mut checked = 0;
            for pair in t.examples.windows(2) {
                let [(Role::User, q), (Role::Assistant, a)] = pair else {
                    continue;
                };
                let body = q.strip_prefix("block:\n").expect(q);
                let (block, live) = body.rsplit_once("live-out: ").expect(q);
                let insns: Vec<&str> = block.lines().collect();
                let w = Window::of(&insns, live.trim());
                let trace = a.split("rewrite:").next().unwrap_or_default();
                assert_eq!(trace, t.trace_for(&w), "{style}: {q}");
                checked += 1;
            }
            assert!(checked >= 3, "{style}");
        }
    }

    #[test]
    fn chain_of_code_prefill_is_the_semantics_trace() {
        let w = Window::of(&["str w0, [sp, #12]", "ldr w0, [sp, #12]"], "x0,sp,mem");
        let aided = PromptStyle::ChainOfCode.template();
        assert_eq!(aided.prefill, Some(Prefill::Live));
        assert_eq!(aided.decode_root, "rewrite");
        // The prefill is the trace's `live:` section, as the training
        // answers carry it; the model writes only the rewrite after it.
        let p = aided.prefill_for(&w);
        assert_eq!(p, "live:\nw0 = w0\nmem32[sp + 12] = w0\n");
        assert!(crate::semantics::transfer::chain_of_code(&w.insns, w.live_out).ends_with(&p));
        assert_eq!(PromptStyle::Direct.template().prefill_for(&w), "");
        assert_eq!(
            PromptStyle::ChainOfCodeUnaided.template().prefill_for(&w),
            ""
        );
    }

    #[test]
    fn code_prefill_stops_at_the_live_section() {
        let w = Window::of(&["add x2, x1, #0", "mov x0, x2"], "x0,sp");
        let t = PromptTemplate::parse(
            "version: a\ngrammar-root: chain-of-code\nprefill: code\ndecode-root: after-code\n=== query\n{block} {live_out}",
        )
        .unwrap();
        assert_eq!(t.prefill_for(&w), "code:\nx2 = x1 + 0\nx0 = x2\nlive:\n");
    }

    #[test]
    fn query_substitutes_window() {
        let w = Window::of(&["mov x1, x0"], "x1,sp");
        let q = PromptStyle::Direct.template().query_for(&w);
        assert_eq!(q, "block:\nmov x1, x0\nlive-out: x1,sp");
    }

    #[test]
    fn malformed_templates_are_rejected() {
        assert!(PromptTemplate::parse("version: a\n=== system\nx\n").is_err());
        assert!(PromptTemplate::parse(
            "version: a\ngrammar-root: r\nprefill: code\n=== query\n{block} {live_out}"
        )
        .is_err());
        assert!(PromptTemplate::parse("oops\n=== query\n{block}{live_out}").is_err());
        assert!(
            PromptTemplate::parse("version: a\ngrammar-root: r\n=== query\n{block}\n").is_err()
        );
        assert!(PromptTemplate::parse(
            "version: a\ngrammar-root: r\n=== query\n{block} {live_out}\n=== user\nx"
        )
        .is_err());
    }

    #[test]
    fn style_names_round_trip() {
        for s in PromptStyle::ALL {
            assert_eq!(s.name().parse::<PromptStyle>().unwrap(), s);
        }
        assert!("cot".parse::<PromptStyle>().is_err());
    }
}
