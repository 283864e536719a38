//! Functions and basic blocks of a parsed source file.
//!
//! A block starts at a label that is or may be a branch target (referenced
//! anywhere in the file, including data such as jump tables, or visible
//! outside the file) and after every branch. `bl`/`blr` do not end a block;
//! their clobbers are in their semantics. Anything we cannot follow (opaque
//! instructions, code-emitting macro regions, data in text, section switches)
//! ends the block with an unknown successor, which makes everything live.

use super::returns::{self, Abi};
use crate::asm::{Insn, Operand, Source, StmtKind};
use crate::semantics::{effects, Effects, Flow, LocSet};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Where control goes after a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Succ {
    /// Another block of the same function (index in `Function::blocks`).
    Block(usize),
    /// `ret`: the caller observes the return state (the `ret`'s
    /// [`BlockInsn::returns`]).
    Return,
    /// Anywhere: indirect branch, tail call, opaque code, data.
    Unknown,
}

/// One instruction of a block, with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct BlockInsn {
    /// Index into `Source::stmts`.
    pub stmt: usize,
    pub line: usize,
    #[serde(serialize_with = "ser_insn")]
    pub insn: Insn,
    /// Resolved branch target (numeric labels made unique), for branches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Described by CFI (prologue/epilogue): never rewritten.
    pub frozen: bool,
    /// A directive or verbatim region sits between this instruction and the
    /// previous one: windows may not span it.
    pub barrier_before: bool,
    /// A direct call to a function defined in the same file (or binary).
    /// Compilers may keep values in caller-saved registers across such calls
    /// (gcc's interprocedural register allocation does at -O2), so AAPCS
    /// cannot be assumed: the call reads everything and kills nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub local_call: bool,
    /// For a `ret`: what the caller observes after it (the function's results,
    /// from an annotation or the ABI, and the preserved state; see
    /// [`super::returns`]). It replaces the semantics' fixed AAPCS64 set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returns: Option<LocSet>,
}

impl BlockInsn {
    /// This instruction's effects in its context (see `local_call`).
    pub fn effects(&self) -> Effects {
        let e = effects(&self.insn);
        if self.local_call {
            Effects {
                reads: LocSet::ALL,
                writes: LocSet::EMPTY,
                clobbers: LocSet::ALL,
                ..e
            }
        } else if let Some(returns) = self.returns {
            // Keep what the `ret` reads itself (`ret x1`): only the return
            // state it hands to the caller is replaced.
            let target: LocSet = self
                .insn
                .operands
                .iter()
                .filter_map(|o| o.reg()?.loc())
                .collect();
            Effects {
                reads: e
                    .reads
                    .minus(LocSet::at_return())
                    .union(target)
                    .union(returns),
                ..e
            }
        } else {
            e
        }
    }
}

fn ser_insn<S: serde::Serializer>(i: &Insn, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&i.to_string())
}

/// A basic block with its liveness.
#[derive(Clone, Debug, Serialize)]
pub struct Block {
    pub index: usize,
    /// First label of the block, if it starts at one.
    pub label: Option<String>,
    pub insns: Vec<BlockInsn>,
    pub succs: Vec<Succ>,
    pub live_in: LocSet,
    pub live_out: LocSet,
}

impl Block {
    /// Live locations after each instruction (same length as `insns`).
    pub fn live_after_each(&self) -> Vec<LocSet> {
        let effs: Vec<_> = self.insns.iter().map(|bi| bi.effects()).collect();
        crate::semantics::effects::live_after_each(&effs, self.live_out)
    }
}

/// A function: a run of code between function labels.
#[derive(Clone, Debug, Serialize)]
pub struct Function {
    pub name: String,
    pub blocks: Vec<Block>,
    /// The function carries CFI directives.
    pub has_cfi: bool,
}

/// Directives that put data into the instruction stream.
const DATA_DIRECTIVES: &[&str] = &[
    ".word", ".long", ".int", ".short", ".hword", ".byte", ".quad", ".xword", ".dword", ".2byte",
    ".4byte", ".8byte", ".inst", ".ltorg", ".pool", ".ascii", ".asciz", ".string", ".zero",
    ".space", ".skip", ".fill", ".float", ".double", ".single", ".octa", ".incbin",
];

/// Identifiers mentioned in an expression (label references).
fn identifiers(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$')))
        .filter(|t| !t.is_empty())
}

/// Split every function of `src` into blocks and compute liveness, with the
/// conservative ABI at `ret`s that no annotation covers.
pub fn functions(src: &Source) -> Vec<Function> {
    functions_with(src, Abi::default())
}

/// Split every function of `src` into blocks and compute liveness; a `ret`
/// returns what its `peephole: live-out` annotation or its function's says,
/// else `abi`'s results.
pub fn functions_with(src: &Source, abi: Abi) -> Vec<Function> {
    let stmts = &src.stmts;
    // Annotations on `ret` lines, by line.
    let mut ret_notes: HashMap<usize, LocSet> = HashMap::new();
    for n in src.live_out_notes.iter().filter(|n| n.on_ret) {
        let e = ret_notes.entry(n.line).or_default();
        *e = e.union(n.locs);
    }
    let mut function_notes = src.live_out_notes.iter().filter(|n| !n.on_ret).peekable();
    // A note read before a function's label, waiting for it.
    let mut pending: Option<LocSet> = None;
    // Numeric local labels: give each definition a unique name and resolve
    // `Nb`/`Nf` references to it.
    let mut numeric_defs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in stmts.iter().enumerate() {
        if let StmtKind::Label(l) = &s.kind {
            if l.bytes().all(|b| b.is_ascii_digit()) {
                numeric_defs.entry(l.as_str()).or_default().push(i);
            }
        }
    }
    let label_name = |i: usize, l: &str| -> String {
        if l.bytes().all(|b| b.is_ascii_digit()) {
            format!("{l}@{i}")
        } else {
            l.to_string()
        }
    };
    let resolve = |at: usize, r: &str| -> String {
        // `Nb`/`Nf`: digits then one ASCII letter (any other text is a name).
        let (num, dir) = match r.char_indices().last() {
            Some((i, c)) if c.is_ascii() => r.split_at(i),
            _ => return r.to_string(),
        };
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && (dir == "b" || dir == "f")
        {
            if let Some(defs) = numeric_defs.get(num) {
                let hit = if dir == "b" {
                    defs.iter().rev().find(|&&d| d < at)
                } else {
                    defs.iter().find(|&&d| d > at)
                };
                if let Some(&d) = hit {
                    return format!("{num}@{d}");
                }
            }
        }
        r.to_string()
    };

    // Every referenced name, and which names are functions or global.
    let mut referenced: HashSet<String> = HashSet::new();
    let mut function_syms: HashSet<String> = HashSet::new();
    for (i, s) in stmts.iter().enumerate() {
        match &s.kind {
            StmtKind::Insn(insn) => {
                for o in &insn.operands {
                    let text = match o {
                        Operand::Sym(t) => t.clone(),
                        Operand::Imm(imm) if imm.value.is_none() => imm.text.clone(),
                        Operand::Mem(m) => m
                            .offset
                            .as_ref()
                            .map(|o| o.text.clone())
                            .unwrap_or_default(),
                        _ => continue,
                    };
                    for id in identifiers(&text) {
                        referenced.insert(resolve(i, id));
                    }
                }
            }
            StmtKind::Directive { name, args } => {
                let lower = name.as_str();
                if lower == ".type" && (args.contains("function") || args.contains("%function")) {
                    if let Some(n) = args.split(',').next() {
                        function_syms.insert(n.trim().to_string());
                    }
                } else if matches!(lower, ".globl" | ".global") {
                    for n in args.split(',') {
                        function_syms.insert(n.trim().to_string());
                    }
                } else {
                    for id in identifiers(args) {
                        referenced.insert(resolve(i, id));
                    }
                }
            }
            StmtKind::Verbatim { .. } => {
                for id in identifiers(src.stmt_text(s)) {
                    referenced.insert(resolve(i, id));
                }
            }
            StmtKind::Label(_) => {}
        }
    }
    let defined: HashSet<&str> = stmts
        .iter()
        .filter_map(|s| match &s.kind {
            StmtKind::Label(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    let has_type_info = !function_syms.is_empty();
    let is_function_label = |l: &str| -> bool {
        if function_syms.contains(l) {
            return true;
        }
        // Without .type/.globl information, any non-local label starts a function.
        !has_type_info && !l.starts_with(".L") && !l.bytes().all(|b| b.is_ascii_digit())
    };
    let is_leader = |name: &str, raw: &str| -> bool {
        referenced.contains(name)
            || !(raw.starts_with(".L") || raw.bytes().all(|b| b.is_ascii_digit()))
    };

    let mut builder = Builder::new(abi.results());
    let mut barrier = false;
    for (i, s) in stmts.iter().enumerate() {
        while let Some(n) = function_notes.next_if(|n| n.line <= s.line) {
            pending = Some(n.locs);
        }
        if !src.is_code_section(s.section) {
            builder.break_block(Succ::Unknown);
            continue;
        }
        match &s.kind {
            StmtKind::Label(l) => {
                let name = label_name(i, l);
                if is_function_label(l) {
                    builder.start_function(l, pending.take());
                }
                if is_leader(&name, l) {
                    builder.start_block(Some(name));
                } else {
                    builder.label_alias(name);
                }
            }
            StmtKind::Directive { name, .. } => {
                // Data in the instruction stream, a section switch or the end
                // of a function: control cannot be followed past it.
                let ends_flow = DATA_DIRECTIVES.contains(&name.as_str())
                    || matches!(
                        name.as_str(),
                        ".section"
                            | ".text"
                            | ".pushsection"
                            | ".popsection"
                            | ".previous"
                            | ".size"
                    );
                if name.starts_with(".cfi_") {
                    builder.cfi();
                } else if ends_flow {
                    builder.break_block(Succ::Unknown);
                }
                barrier = true;
            }
            StmtKind::Verbatim { emits_code } => {
                if *emits_code {
                    builder.break_block(Succ::Unknown);
                }
                barrier = true;
            }
            StmtKind::Insn(insn) => {
                // Numeric targets (`1f`) resolve to their unique label names.
                let flow = effects(insn).flow;
                let is_return = flow == Flow::Return;
                let target = match flow {
                    Flow::Branch { target, .. } => Some(resolve(i, &target)),
                    _ => None,
                };
                let local_call = insn.mnemonic == "bl"
                    && matches!(insn.operands.first(), Some(Operand::Sym(t)) if defined.contains(t.as_str()));
                // The label after the note did not start a function (the reader
                // saw a label, but no `.type`/`.globl` names it one): the note
                // applies to nothing, and the ABI's results stay.
                pending = None;
                let returns = is_return.then(|| {
                    let results = ret_notes.get(&s.line).copied();
                    returns::live_at_return(results.unwrap_or(builder.results))
                });
                builder.insn(BlockInsn {
                    stmt: i,
                    line: s.line,
                    insn: insn.clone(),
                    local_call,
                    target,
                    frozen: false,
                    barrier_before: barrier,
                    returns,
                });
                barrier = false;
            }
        }
    }
    builder.finish()
}

struct Builder {
    /// Results of a function without an annotation (the ABI's).
    abi_results: LocSet,
    /// Results of the current function.
    results: LocSet,
    done: Vec<Function>,
    current: Option<Function>,
    /// Labels of each block of the current function, including aliases.
    labels: HashMap<String, usize>,
    open: Option<Block>,
}

impl Builder {
    fn new(abi_results: LocSet) -> Self {
        Builder {
            abi_results,
            results: abi_results,
            done: Vec::new(),
            current: None,
            labels: HashMap::new(),
            open: None,
        }
    }

    fn function(&mut self) -> &mut Function {
        self.current.get_or_insert_with(|| Function {
            name: "<top>".into(),
            blocks: Vec::new(),
            has_cfi: false,
        })
    }

    /// Start a function that returns `results` (`None`: the ABI's).
    fn start_function(&mut self, name: &str, results: Option<LocSet>) {
        self.close_block(None);
        self.finish_function();
        self.results = results.unwrap_or(self.abi_results);
        self.current = Some(Function {
            name: name.to_string(),
            blocks: Vec::new(),
            has_cfi: false,
        });
    }

    fn finish_function(&mut self) {
        self.close_block(None);
        if let Some(mut f) = self.current.take() {
            resolve_and_solve(&mut f, &self.labels);
            if !f.blocks.is_empty() {
                self.done.push(f);
            }
        }
        self.labels.clear();
    }

    /// Start a block at a label; the previous block falls through into it.
    fn start_block(&mut self, label: Option<String>) {
        if let Some(b) = &self.open {
            if b.insns.is_empty() && b.succs.is_empty() {
                // Consecutive labels: alias to the still-empty block.
                if let Some(l) = label {
                    let idx = self.function().blocks.len();
                    self.labels.insert(l, idx);
                }
                return;
            }
        }
        let next_index = self.function().blocks.len() + usize::from(self.open.is_some());
        self.close_block(Some(Succ::Block(next_index)));
        let index = self.function().blocks.len();
        if let Some(l) = &label {
            self.labels.insert(l.clone(), index);
        }
        self.open = Some(Block {
            index,
            label,
            insns: Vec::new(),
            succs: Vec::new(),
            live_in: LocSet::EMPTY,
            live_out: LocSet::EMPTY,
        });
    }

    fn label_alias(&mut self, name: String) {
        let idx = self.function().blocks.len();
        self.labels.insert(name, idx);
    }

    /// End the open block with `fallthrough` as its successor (if it did not
    /// already end in a terminator).
    fn close_block(&mut self, fallthrough: Option<Succ>) {
        if let Some(mut b) = self.open.take() {
            if b.succs.is_empty() {
                b.succs.push(fallthrough.unwrap_or(Succ::Unknown));
            }
            if b.insns.is_empty() && b.label.is_none() {
                return;
            }
            self.function().blocks.push(b);
        }
    }

    fn break_block(&mut self, succ: Succ) {
        if self
            .open
            .as_ref()
            .is_some_and(|b| !b.insns.is_empty() || b.label.is_some())
        {
            self.close_block(Some(succ));
        }
    }

    fn cfi(&mut self) {
        self.function().has_cfi = true;
        if let Some(b) = &mut self.open {
            if let Some(last) = b.insns.last_mut() {
                last.frozen = true;
            }
        }
    }

    fn insn(&mut self, bi: BlockInsn) {
        let flow = effects(&bi.insn).flow;
        if self.open.is_none() {
            self.function();
            let index = self.function().blocks.len();
            self.open = Some(Block {
                index,
                label: None,
                insns: Vec::new(),
                succs: Vec::new(),
                live_in: LocSet::EMPTY,
                live_out: LocSet::EMPTY,
            });
        }
        let b = self.open.as_mut().expect("open block");
        b.insns.push(bi);
        let next = b.index + 1;
        let succs = match flow {
            Flow::Next | Flow::Call => return,
            Flow::Branch { conditional, .. } => {
                // The target resolves once the function is complete.
                let mut s = vec![Succ::Unknown];
                if conditional {
                    s.push(Succ::Block(next));
                }
                s
            }
            Flow::Return => vec![Succ::Return],
            Flow::Indirect | Flow::Stop => vec![Succ::Unknown],
        };
        b.succs = succs;
        let b = self.open.take().expect("open block");
        self.function().blocks.push(b);
    }

    fn finish(mut self) -> Vec<Function> {
        self.finish_function();
        self.done
    }
}

/// Resolve branch targets to blocks, freeze CFI-sensitive instructions and
/// solve liveness to a fixed point.
fn resolve_and_solve(f: &mut Function, labels: &HashMap<String, usize>) {
    let n = f.blocks.len();
    for b in &mut f.blocks {
        let Some(last) = b.insns.last() else { continue };
        if let Some(target) = &last.target {
            b.succs[0] = match labels.get(target) {
                Some(&i) if i < n => Succ::Block(i),
                _ => Succ::Unknown,
            };
        }
        for s in &mut b.succs {
            if let Succ::Block(i) = s {
                if *i >= n {
                    *s = Succ::Unknown;
                }
            }
        }
        if f.has_cfi {
            // Frame setup and teardown: sp and frame-pointer writes.
            for bi in &mut b.insns {
                let w = bi.effects().writes;
                if w.contains(crate::semantics::Loc::Sp) || w.contains(crate::semantics::Loc::X(29))
                {
                    bi.frozen = true;
                }
            }
        }
    }
    super::liveness::solve(f);
}
