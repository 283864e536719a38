//! Lossless source model of a GNU-as AArch64 file.
//!
//! The file's text is kept as-is; parsing only annotates it with statements
//! (byte spans + typed content). Re-emitting an unmodified file is therefore
//! byte-for-byte identical by construction, and patching replaces only the
//! spans of rewritten instructions.

use super::insn::Insn;
use super::reg::Reg;
use crate::semantics::LocSet;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// What one statement is.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `name:` (including numeric local labels `1:`).
    Label(String),
    /// `.name args` (args verbatim, without comments). Also `sym = expr` and
    /// `alias .req reg`, under the names `=` and `.req`.
    Directive { name: String, args: String },
    /// A parsed instruction. Unknown mnemonics (macro invocations) are still
    /// `Insn`s; their semantics are opaque.
    Insn(Insn),
    /// Text inside `.macro`/`.rept`/`.irp`/`.if` regions, kept verbatim and
    /// never optimized. `emits_code` is true for regions that assemble code in
    /// place (everything but macro definitions).
    Verbatim { emits_code: bool },
}

/// One statement with where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// 1-based line number of the statement's first byte.
    pub line: usize,
    /// Byte range in [`Source::text`], without surrounding blanks/comments.
    pub span: Range<usize>,
    pub kind: StmtKind,
    /// Section the statement is in (`.text`, `.data`, `.text.hot`, ...).
    pub section: u32,
}

/// A `// peephole: live-out LOCS` comment: what the caller may observe in
/// result registers after a `ret` (see `cfg::returns`). Written on a `ret`'s
/// line it applies to that `ret`; on its own line (directives and local labels
/// may follow) it applies to the function whose label comes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOutNote {
    /// 1-based line of the comment.
    pub line: usize,
    /// The locations it names (`none` names none).
    pub locs: LocSet,
    /// On a `ret` line (else: before a function's label).
    pub on_ret: bool,
}

/// The annotation a comment carries, if it is one (`peephole: ...`):
/// `Some(Err(_))` for a `peephole:` comment that does not parse.
fn live_out_note(comment: &str) -> Option<Result<LocSet, String>> {
    let rest = comment.trim().strip_prefix("peephole:")?.trim();
    let list = match rest.strip_prefix("live-out") {
        Some(l) if l.is_empty() || l.starts_with(char::is_whitespace) => l.trim(),
        _ => {
            return Some(Err(format!(
                "unknown annotation `peephole: {rest}` (known: `peephole: live-out LOCS`)"
            )))
        }
    };
    Some(match list {
        "" => Err(
            "`peephole: live-out` needs locations, e.g. `x0` or `x0,nzcv` (`none` for none)".into(),
        ),
        "none" => Ok(LocSet::EMPTY),
        _ => LocSet::parse_list(list).map_err(|e| format!("`peephole: live-out {list}`: {e}")),
    })
}

/// A parse error with its position, shown as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// A parsed assembly file.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name used in messages.
    pub name: String,
    pub text: String,
    pub stmts: Vec<Stmt>,
    /// Section names, indexed by `Stmt::section`.
    pub sections: Vec<String>,
    /// Byte offset of the start of each line (index 0 = line 1).
    pub line_starts: Vec<usize>,
    /// `// peephole: live-out` annotations, in line order.
    pub live_out_notes: Vec<LiveOutNote>,
}

/// Directives that say the file is not AArch64.
const FOREIGN_DIRECTIVES: &[(&str, &str)] = &[
    (".thumb", "32-bit Arm (Thumb)"),
    (".thumb_func", "32-bit Arm (Thumb)"),
    (".arm", "32-bit Arm"),
    (".code", "32-bit Arm or x86"),
    (".syntax", "32-bit Arm"),
    (".eabi_attribute", "32-bit Arm"),
    (".fpu", "32-bit Arm"),
    (".intel_syntax", "x86"),
    (".att_syntax", "x86"),
    (".code16", "x86"),
    (".code32", "x86"),
    (".code64", "x86"),
];

impl Source {
    /// Read and parse a file.
    pub fn read(path: &Path) -> Result<Source, ParseError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ParseError {
            file: name.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Source::from_bytes(&name, bytes)
    }

    /// Parse bytes; rejects empty files and anything that is not text.
    /// A name ending in `.S` is read as unpreprocessed (see
    /// [`Source::parse_unpreprocessed`]).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Source, ParseError> {
        let err = |line, message: String| ParseError {
            file: name.to_string(),
            line,
            message,
        };
        if bytes.is_empty() {
            return Err(err(0, "empty file: nothing to assemble".into()));
        }
        if bytes.starts_with(b"\x7fELF") {
            return Err(err(0, "this is an ELF binary, not assembly source".into()));
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
                return Err(err(line, "binary data: not a UTF-8 text file".into()));
            }
        };
        if let Some(at) = text.find(|c: char| {
            c == '\0' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c' | '\x0b'))
        }) {
            let line = 1 + text[..at].matches('\n').count();
            return Err(err(
                line,
                "binary data: control characters in a text file".into(),
            ));
        }
        // `.S` files are C-preprocessor input: read them leniently.
        Source::parse_with(name, text, name.ends_with(".S"))
    }

    /// Parse text.
    pub fn parse(name: &str, text: String) -> Result<Source, ParseError> {
        Source::parse_with(name, text, false)
    }

    /// Parse a `.S` file *before* the C preprocessor: statements that do not
    /// tokenize (`ENTRY(f)`, `L(loop):`) become opaque code regions instead of
    /// errors. Such a source is only used to map rewrites of the preprocessed
    /// text back to literal lines, never analysed on its own.
    pub fn parse_unpreprocessed(name: &str, text: String) -> Result<Source, ParseError> {
        Source::parse_with(name, text, true)
    }

    fn parse_with(name: &str, text: String, lenient: bool) -> Result<Source, ParseError> {
        let mut parser = Parser::new(name, &text);
        parser.lenient = lenient;
        parser
            .run()
            .map(|(stmts, sections, line_starts, live_out_notes)| Source {
                name: name.to_string(),
                text,
                stmts,
                sections,
                line_starts,
                live_out_notes,
            })
    }

    /// The source text of a statement.
    pub fn stmt_text(&self, s: &Stmt) -> &str {
        &self.text[s.span.clone()]
    }

    /// Whether a section holds code (`.text*`, or flags with `x`).
    pub fn is_code_section(&self, idx: u32) -> bool {
        let s = &self.sections[idx as usize];
        let name = s.split(',').next().unwrap_or("").trim();
        name.starts_with(".text")
            || name.starts_with(".init")
            || name.starts_with(".fini")
            || s.split(',')
                .nth(1)
                .is_some_and(|f| f.trim().trim_matches('"').contains('x'))
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// A code fragment of one line: statement text with comments removed, and its
/// byte range in the file.
struct Piece {
    code: String,
    start: usize,
}

struct Parser<'a> {
    /// Untokenizable statements become opaque regions (unpreprocessed `.S`).
    lenient: bool,
    name: &'a str,
    text: &'a str,
    aliases: HashMap<String, Reg>,
    sections: Vec<String>,
    section_stack: Vec<(u32, u32)>,
    current: u32,
    previous: u32,
    /// Nesting of verbatim regions: (closing directive, emits code).
    verbatim: Vec<(&'static str, bool)>,
}

impl<'a> Parser<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        Parser {
            lenient: false,
            name,
            text,
            aliases: HashMap::new(),
            sections: vec![".text".to_string()],
            section_stack: Vec::new(),
            current: 0,
            previous: 0,
            verbatim: Vec::new(),
        }
    }

    fn err(&self, line: usize, message: String) -> ParseError {
        ParseError {
            file: self.name.to_string(),
            line,
            message,
        }
    }

    #[allow(clippy::type_complexity)]
    fn run(mut self) -> Result<(Vec<Stmt>, Vec<String>, Vec<usize>, Vec<LiveOutNote>), ParseError> {
        let mut stmts = Vec::new();
        let mut line_starts = Vec::new();
        let mut notes = Vec::new();
        let mut comments = Vec::new();
        let mut in_comment = false;
        let mut pos = 0;
        let text = self.text;
        let mut line_no = 0;
        while pos < text.len() {
            line_no += 1;
            line_starts.push(pos);
            let rest = &text[pos..];
            let len = rest.find(['\n', '\r']).unwrap_or(rest.len());
            let eol = if rest[len..].starts_with("\r\n") {
                2
            } else if len < rest.len() {
                1
            } else {
                0
            };
            let line = &rest[..len];
            for piece in split_line(line, pos, &mut in_comment, &mut comments) {
                self.statement(piece, line_no, &mut stmts)?;
            }
            for c in comments.drain(..) {
                match live_out_note(&c) {
                    Some(Ok(locs)) => notes.push((line_no, locs)),
                    Some(Err(e)) => return Err(self.err(line_no, e)),
                    None => {}
                }
            }
            pos += len + eol;
        }
        if let Some((close, _)) = self.verbatim.last() {
            return Err(self.err(line_no, format!("missing `{close}` at end of file")));
        }
        let notes = notes
            .into_iter()
            .map(|(line, locs)| self.place_note(line, locs, &stmts))
            .collect::<Result<_, _>>()?;
        Ok((stmts, self.sections, line_starts, notes))
    }

    /// Where a `peephole: live-out` note on `line` applies: the `ret` on its
    /// line, or the function whose label follows it. Anywhere else is an
    /// error, since it would silently apply to nothing or to the wrong code.
    fn place_note(
        &self,
        line: usize,
        locs: LocSet,
        stmts: &[Stmt],
    ) -> Result<LiveOutNote, ParseError> {
        let from = stmts.partition_point(|s| s.line < line);
        let here = || stmts[from..].iter().take_while(|s| s.line == line);
        let is_ret = |s: &Stmt| matches!(&s.kind, StmtKind::Insn(i) if i.mnemonic == "ret");
        if here().any(is_ret) {
            return Ok(LiveOutNote {
                line,
                locs,
                on_ret: true,
            });
        }
        let misplaced = "goes on a `ret` line or before a function's label";
        if here().any(|s| matches!(s.kind, StmtKind::Insn(_))) {
            return Err(self.err(
                line,
                format!("`peephole: live-out` {misplaced}, not on another instruction"),
            ));
        }
        // Directives (`.globl`, `.type`, `.p2align`) and local labels may
        // stand between the note and the function's label.
        for s in &stmts[from..] {
            match &s.kind {
                StmtKind::Directive { .. } => {}
                StmtKind::Label(l) if l.starts_with(".L") || l.bytes().all(|b| b.is_ascii_digit()) => {}
                // A macro region (or an unpreprocessed `ENTRY(f)`) may define it.
                StmtKind::Label(_) | StmtKind::Verbatim { .. } => {
                    return Ok(LiveOutNote {
                        line,
                        locs,
                        on_ret: false,
                    })
                }
                StmtKind::Insn(_) => {
                    return Err(self.err(
                        line,
                        format!(
                            "`peephole: live-out` {misplaced}: here an instruction (line {}) follows it",
                            s.line
                        ),
                    ))
                }
            }
        }
        Err(self.err(
            line,
            format!("`peephole: live-out` {misplaced}: no function follows it"),
        ))
    }

    fn section_index(&mut self, name: &str) -> u32 {
        let key = name.trim().to_string();
        let base = |s: &str| s.split(',').next().unwrap_or("").trim().to_string();
        if let Some(i) = self.sections.iter().position(|s| base(s) == base(&key)) {
            if key.contains(',') {
                self.sections[i] = key;
            }
            return i as u32;
        }
        self.sections.push(key);
        (self.sections.len() - 1) as u32
    }

    fn switch_section(&mut self, to: u32) {
        self.previous = self.current;
        self.current = to;
    }

    fn statement(&mut self, p: Piece, line: usize, out: &mut Vec<Stmt>) -> Result<(), ParseError> {
        let mut code = p.code.as_str();
        let mut start = p.start;
        // Leading labels (not inside verbatim regions, where `\@:` etc. live).
        if self.verbatim.is_empty() {
            while let Some((label, consumed)) = leading_label(code) {
                let lead = code.len() - code.trim_start().len();
                out.push(Stmt {
                    line,
                    span: start + lead..start + lead + label.len() + 1,
                    kind: StmtKind::Label(label.to_string()),
                    section: self.current,
                });
                start += consumed;
                code = &code[consumed..];
            }
        }
        let trimmed = code.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        let lead = code.len() - code.trim_start().len();
        let span = start + lead..start + lead + trimmed.len();
        let first = trimmed
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let args = trimmed[first.len()..].trim().to_string();

        // Verbatim regions: macro definitions, repetitions, conditionals.
        if let Some(&(close, emits)) = self.verbatim.last() {
            let opener = verbatim_opener(&first);
            if let Some((c, e)) = opener {
                self.verbatim.push((c, e || emits));
            } else if first == close
                || (close == ".endif" && first == ".endif")
                || (close == ".endr" && first == ".endr")
            {
                self.verbatim.pop();
            }
            out.push(Stmt {
                line,
                span,
                kind: StmtKind::Verbatim { emits_code: emits },
                section: self.current,
            });
            return Ok(());
        }
        if let Some((close, emits)) = verbatim_opener(&first) {
            self.verbatim.push((close, emits));
            out.push(Stmt {
                line,
                span,
                kind: StmtKind::Verbatim { emits_code: emits },
                section: self.current,
            });
            return Ok(());
        }

        let words: Vec<&str> = trimmed.split_whitespace().collect();
        // `alias .req reg` / `.unreq alias` (any whitespace between).
        if words.len() == 3 && words[1].eq_ignore_ascii_case(".req") {
            let reg_name = words[2];
            let reg = Reg::parse(reg_name)
                .or_else(|| self.aliases.get(&reg_name.to_ascii_lowercase()).cloned())
                .ok_or_else(|| {
                    self.err(line, format!("`.req` of unknown register `{reg_name}`"))
                })?;
            self.aliases.insert(words[0].to_ascii_lowercase(), reg);
            out.push(Stmt {
                line,
                span,
                kind: StmtKind::Directive {
                    name: ".req".into(),
                    args: trimmed.to_string(),
                },
                section: self.current,
            });
            return Ok(());
        }
        // `sym = expr`
        if let Some(eq) = trimmed.find('=') {
            let lhs = trimmed[..eq].trim();
            if !lhs.is_empty() && is_symbol(lhs) && !trimmed[..eq].contains(',') {
                out.push(Stmt {
                    line,
                    span,
                    kind: StmtKind::Directive {
                        name: "=".into(),
                        args: trimmed.to_string(),
                    },
                    section: self.current,
                });
                return Ok(());
            }
        }
        if first.starts_with('.') {
            self.directive(&first, &args, line)?;
            out.push(Stmt {
                line,
                span,
                kind: StmtKind::Directive { name: first, args },
                section: self.current,
            });
            return Ok(());
        }
        let insn = match Insn::parse(trimmed, &self.aliases) {
            Ok(i) => i,
            Err(_) if self.lenient => {
                out.push(Stmt {
                    line,
                    span,
                    kind: StmtKind::Verbatim { emits_code: true },
                    section: self.current,
                });
                return Ok(());
            }
            Err(e) => return Err(self.err(line, format!("cannot parse `{trimmed}`: {}", e.0))),
        };
        out.push(Stmt {
            line,
            span,
            kind: StmtKind::Insn(insn),
            section: self.current,
        });
        Ok(())
    }

    fn directive(&mut self, name: &str, args: &str, line: usize) -> Result<(), ParseError> {
        if let Some((_, what)) = FOREIGN_DIRECTIVES.iter().find(|(d, _)| *d == name) {
            return Err(self.err(
                line,
                format!(
                    "`{name}` is a {what} directive: peephole reads AArch64 (arm64) assembly only"
                ),
            ));
        }
        if name == ".arch" {
            let a = args.trim().to_ascii_lowercase();
            if !(a.starts_with("armv8") || a.starts_with("armv9") || a.is_empty()) {
                return Err(self.err(
                    line,
                    format!("`.arch {args}` is not an AArch64 architecture"),
                ));
            }
        }
        match name {
            ".text" | ".data" | ".bss" => {
                let idx = self.section_index(name);
                self.switch_section(idx);
            }
            ".section" => {
                let idx = self.section_index(args);
                self.switch_section(idx);
            }
            ".pushsection" => {
                self.section_stack.push((self.current, self.previous));
                let idx = self.section_index(args);
                self.switch_section(idx);
            }
            ".popsection" => {
                if let Some((c, p)) = self.section_stack.pop() {
                    self.current = c;
                    self.previous = p;
                }
            }
            ".previous" => std::mem::swap(&mut self.current, &mut self.previous),
            ".unreq" => {
                self.aliases.remove(&args.trim().to_ascii_lowercase());
            }
            _ => {}
        }
        Ok(())
    }
}

fn verbatim_opener(first: &str) -> Option<(&'static str, bool)> {
    match first {
        ".macro" => Some((".endm", false)),
        ".rept" | ".irp" | ".irpc" => Some((".endr", true)),
        ".if" | ".ifdef" | ".ifndef" | ".ifc" | ".ifnc" | ".ifeq" | ".ifne" | ".ifge" | ".ifgt"
        | ".ifle" | ".iflt" | ".ifb" | ".ifnb" | ".ifeqs" | ".ifnes" => Some((".endif", true)),
        _ => None,
    }
}

fn is_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// A label at the start of `code`: returns the name and the bytes consumed
/// (through the colon).
fn leading_label(code: &str) -> Option<(&str, usize)> {
    let lead = code.len() - code.trim_start().len();
    let rest = &code[lead..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$')))
        .unwrap_or(rest.len());
    if end == 0 || !rest[end..].starts_with(':') {
        return None;
    }
    let name = &rest[..end];
    // `1:` numeric local label, or a symbol.
    if name.bytes().all(|b| b.is_ascii_digit()) || is_symbol(name) {
        Some((name, lead + end + 1))
    } else {
        None
    }
}

/// Split one line into statement pieces; the text of its comments goes to
/// `comments`. `in_comment` carries an open `/* */` comment across lines.
/// Strings are respected.
fn split_line(
    line: &str,
    base: usize,
    in_comment: &mut bool,
    comments: &mut Vec<String>,
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut code = String::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut in_string = false;
    // `#` as the first non-blank character starts a comment (cpp line markers).
    if !*in_comment {
        if let Some(c) = line.trim_start().strip_prefix('#') {
            comments.push(c.to_string());
            return pieces;
        }
    }
    // Where the text of an open `/* */` comment starts on this line.
    let mut comment_start = in_comment.then_some(0);
    let flush =
        |code: &mut String, start: &mut Option<usize>, end: usize, pieces: &mut Vec<Piece>| {
            if let Some(s) = start.take() {
                let _ = end;
                pieces.push(Piece {
                    code: std::mem::take(code),
                    start: base + s,
                });
            }
            code.clear();
        };
    while i < bytes.len() {
        let c = bytes[i];
        if *in_comment {
            if c == b'*' && bytes.get(i + 1) == Some(&b'/') {
                *in_comment = false;
                comments.push(line[comment_start.take().unwrap_or(i)..i].to_string());
                i += 2;
                code.push(' ');
            } else {
                i += 1;
            }
            continue;
        }
        if in_string {
            code.push(c as char);
            if c == b'\\' && i + 1 < bytes.len() {
                code.push(bytes[i + 1] as char);
                i += 2;
                end = i;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
            i += 1;
            end = i;
            continue;
        }
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                comments.push(line[i + 2..].to_string());
                break;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                *in_comment = true;
                i += 2;
                comment_start = Some(i);
                continue;
            }
            b';' => {
                flush(&mut code, &mut start, end, &mut pieces);
                i += 1;
                continue;
            }
            _ => {}
        }
        if c == b'"' {
            in_string = true;
        }
        if start.is_none() {
            if c.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            start = Some(i);
        }
        // Copy the whole UTF-8 character.
        let ch_len = utf8_len(c);
        code.push_str(&line[i..i + ch_len]);
        i += ch_len;
        if !line[i - ch_len..i].trim().is_empty() {
            end = i;
        }
    }
    if let Some(s) = comment_start.filter(|_| *in_comment) {
        comments.push(line[s..].to_string());
    }
    flush(&mut code, &mut start, end, &mut pieces);
    pieces.retain(|p| !p.code.trim().is_empty());
    for p in &mut pieces {
        let trimmed_len = p.code.trim_end().len();
        p.code.truncate(trimmed_len);
    }
    pieces
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Source {
        Source::parse("t.s", s.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn kinds(src: &Source) -> Vec<String> {
        src.stmts
            .iter()
            .map(|s| match &s.kind {
                StmtKind::Label(l) => format!("L:{l}"),
                StmtKind::Directive { name, .. } => format!("D:{name}"),
                StmtKind::Insn(i) => format!("I:{i}"),
                StmtKind::Verbatim { emits_code } => format!("V:{emits_code}"),
            })
            .collect()
    }

    #[test]
    fn statements_labels_comments() {
        let s = parse(
            "f:\t// entry\n  add x0, x0, #1 ; sub x1, x1, 2 /* two */\n1: b 1b\n.L2: .L3: ret\n",
        );
        assert_eq!(
            kinds(&s),
            [
                "L:f",
                "I:add x0, x0, #1",
                "I:sub x1, x1, 2",
                "L:1",
                "I:b 1b",
                "L:.L2",
                "L:.L3",
                "I:ret"
            ]
        );
        assert_eq!(s.stmts[2].line, 2);
        assert_eq!(s.stmt_text(&s.stmts[2]), "sub x1, x1, 2");
        assert_eq!(s.stmt_text(&s.stmts[0]), "f:");
    }

    #[test]
    fn multiline_block_comment_and_strings() {
        let s = parse("/* a\n b; c\n */ mov x0, x1\n.asciz \"a//b;c\"\n# 1 \"x.S\"\n");
        assert_eq!(kinds(&s), ["I:mov x0, x1", "D:.asciz"]);
        assert_eq!(s.stmts[0].line, 3);
    }

    #[test]
    fn macros_are_verbatim_and_req_aliases_resolve() {
        let s = parse(".macro inc r\n add \\r, \\r, #1\n.endm\nptr  \t.req   x3\n ldr x0, [ptr]\n .unreq ptr\n inc x0\n");
        assert_eq!(
            kinds(&s),
            [
                "V:false",
                "V:false",
                "V:false",
                "D:.req",
                "I:ldr x0, [x3]",
                "D:.unreq",
                "I:inc x0"
            ]
        );
    }

    #[test]
    fn sections() {
        let s = parse(".section .rodata\n.word 1\n.text\nret\n.pushsection .data\n.byte 1\n.popsection\nnop\n");
        let code: Vec<bool> = s
            .stmts
            .iter()
            .map(|st| s.is_code_section(st.section))
            .collect();
        assert_eq!(code, [false, false, true, true, false, false, true, true]);
    }

    #[test]
    fn crlf_and_line_numbers() {
        let s = parse("a:\r\n  nop\r\n\r\n  ret");
        assert_eq!(s.stmts[2].line, 4);
        assert_eq!(s.line_of(s.stmts[2].span.start), 4);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Source::parse("t.s", "nop\n movl %eax, %ebx\n".into()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("t.s:2: "), "{e}");
        let e = Source::parse("t.s", ".syntax unified\n".into()).unwrap_err();
        assert!(e.message.contains("32-bit Arm"));
        let e = Source::parse("t.s", "  ldr x0, [x1\n".into()).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Source::from_bytes("t.s", vec![]).is_err());
        assert!(Source::from_bytes("t.s", vec![0xff, 0xfe, 0x00]).is_err());
        assert!(Source::from_bytes("t.s", b"nop\n\0\0".to_vec()).is_err());
        // Found by the fuzzer: a non-ASCII first character in an operand.
        assert!(Source::parse("t.s", "add x0, x0, :ʓo12:.l\n".into()).is_ok());
    }
}
