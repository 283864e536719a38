//! The validator: differential execution of original and candidate on many
//! machine states. A rewrite is applied only on [`Verdict::Equivalent`].
//!
//! Pipeline: [`support`] refuses what cannot be sandboxed, [`assemble`] turns
//! a batch of jobs into one linked image, [`state`] makes the test inputs,
//! [`exec`] runs a block in Unicorn and [`compare`] says whether two runs
//! agree on everything observable. [`cli`] is `peephole verify` and
//! [`program`] compares whole programs under qemu-aarch64.

pub mod assemble;
pub mod cli;
pub mod compare;
pub mod exec;
pub mod program;
pub mod state;
pub mod support;

use crate::asm::{Insn, Operand};
use crate::semantics::LocSet;
use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The validator's judgement on one (original, candidate) pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Agreed on every test.
    Equivalent { tests: u32 },
    /// A state on which they differ, described for a human.
    Counterexample { description: String },
    /// Contains something that cannot be sandboxed (system registers,
    /// exclusives, barriers, svc...), or the original faults on too many
    /// states to be compared: never accepted. A property of the blocks,
    /// never of the validator's tools: an assembler or emulator that cannot
    /// run is an error of [`Verifier::check_many`], not a verdict.
    Unsupported { reason: String },
    /// Does not assemble or is otherwise malformed.
    Invalid { reason: String },
}

impl Verdict {
    pub fn is_equivalent(&self) -> bool {
        matches!(self, Verdict::Equivalent { .. })
    }
}

/// Changes whenever the same blocks could be judged differently with the
/// same tests and seed (so results cached under [`Verifier::fingerprint`]
/// are not reused): 2 = a tenth of the test states must complete; 3 = memory
/// holds valid pointers (blocks that load through a pointer read from memory
/// now complete, and are judged); 4 = registers take the blocks' own
/// constants and their neighbours on a fifth of the states.
pub const VERSION: u32 = 4;

/// How hard to test.
#[derive(Clone, Copy, Debug)]
pub struct VerifyConfig {
    /// Machine states per candidate.
    pub tests: u32,
    /// Seed of every random choice; the same seed gives the same verdicts.
    pub seed: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            tests: 1000,
            seed: 0x7065_6570_686f_6c65,
        }
    }
}

/// One (original, candidate) pair and what is observable after it.
#[derive(Clone, Copy, Debug)]
pub struct VerifyJob<'a> {
    pub original: &'a [Insn],
    pub candidate: &'a [Insn],
    pub live_out: LocSet,
}

/// Jobs per assembler run: big enough to amortise the tools' start-up,
/// small enough that a batch's code fits the mapped code region.
const BATCH: usize = 2048;

/// The validator. Cheap to share across threads: Unicorn engines live in
/// thread-local storage, one per worker thread, and are reused.
pub struct Verifier {
    cfg: VerifyConfig,
    pattern: Arc<Vec<u8>>,
    /// States the SMT solver found a window's candidates to differ on,
    /// tried before the generated ones for every later candidate of that
    /// window (by original text and live-out set).
    remembered: Mutex<HashMap<String, Vec<state::MachineState>>>,
}

/// Most remembered states per window.
const REMEMBERED_MAX: usize = 8;

thread_local! {
    static ENGINE: RefCell<Option<exec::Engine>> = const { RefCell::new(None) };
}

impl Verifier {
    pub fn new(cfg: VerifyConfig) -> anyhow::Result<Verifier> {
        if cfg.tests == 0 {
            anyhow::bail!("the validator needs at least one test per candidate");
        }
        let v = Verifier {
            cfg,
            pattern: Arc::new(state::data_pattern(cfg.seed)),
            remembered: Mutex::default(),
        };
        // Fail early (here, with a clear error) if Unicorn cannot start.
        exec::Engine::new(v.pattern.clone())?;
        Ok(v)
    }

    pub fn config(&self) -> VerifyConfig {
        self.cfg
    }

    /// What decides this validator's verdicts (its version, tests and
    /// seed): part of the key of any cached result that depends on them.
    pub fn fingerprint(&self) -> String {
        format!(
            "validator-{VERSION} tests {} seed {}",
            self.cfg.tests, self.cfg.seed
        )
    }

    /// Add a counterexample's register inputs to the tests of `job`'s
    /// window: memory, vector registers and the stack pointer stay the
    /// generated ones, so it is met again whenever the difference lies in
    /// the registers.
    pub fn remember(&self, job: &VerifyJob, inputs: &crate::prove::Inputs) {
        let roles = state::RegisterRoles::of(&[job.original, job.candidate]);
        let mut st = state::generate(self.cfg.seed, 0, &roles);
        for (x, &v) in st.x.iter_mut().zip(&inputs.x) {
            *x = v;
        }
        st.nzcv = inputs.nzcv;
        let mut map = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(window_key(job)).or_default();
        if list.len() < REMEMBERED_MAX && !list.contains(&st) {
            list.push(st);
        }
    }

    fn remembered(&self, job: &VerifyJob) -> Vec<state::MachineState> {
        let map = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        // On every job's path: no key to build while nothing is remembered.
        if map.is_empty() {
            return Vec::new();
        }
        map.get(&window_key(job)).cloned().unwrap_or_default()
    }

    /// Check one pair.
    pub fn check(
        &self,
        original: &[Insn],
        candidate: &[Insn],
        live_out: LocSet,
    ) -> anyhow::Result<Verdict> {
        Ok(self
            .check_many(&[VerifyJob {
                original,
                candidate,
                live_out,
            }])?
            .pop()
            .expect("one verdict per job"))
    }

    /// Batch: assembles all originals/candidates in as few assembler runs as
    /// possible, then runs the jobs in parallel. One verdict per job, in order.
    /// An error when the validator itself fails (the assembler or linker
    /// cannot run, the emulator cannot start or load the code): a verdict
    /// only ever judges the blocks.
    pub fn check_many(&self, jobs: &[VerifyJob]) -> anyhow::Result<Vec<Verdict>> {
        let mut verdicts: Vec<Option<Verdict>> = jobs
            .iter()
            .map(|j| {
                support::block_unsupported_reason(j.original)
                    .or_else(|| support::block_unsupported_reason(j.candidate))
                    .map(|reason| Verdict::Unsupported { reason })
            })
            .collect();
        let todo: Vec<usize> = (0..jobs.len()).filter(|&k| verdicts[k].is_none()).collect();
        for chunk in todo.chunks(BATCH) {
            let pairs: Vec<(&[Insn], &[Insn])> = chunk
                .iter()
                .map(|&k| (jobs[k].original, jobs[k].candidate))
                .collect();
            // Text that does not assemble is a verdict per job; a tool that
            // does not run is this error.
            let image = Arc::new(
                assemble::assemble_batch(&pairs)
                    .context("the validator could not assemble its test code")?,
            );
            let results: Vec<Verdict> = chunk
                .par_iter()
                .enumerate()
                .map(|(i, &k)| match &image.jobs[i] {
                    Err(reason) => Ok(Verdict::Invalid {
                        reason: reason.clone(),
                    }),
                    Ok(asm) => self.run_job(&image, asm, &jobs[k]),
                })
                .collect::<anyhow::Result<_>>()?;
            for (&k, v) in chunk.iter().zip(results) {
                verdicts[k] = Some(v);
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.expect("every job judged"))
            .collect())
    }

    fn run_job(
        &self,
        image: &Arc<Image>,
        asm: &assemble::AssembledJob,
        job: &VerifyJob,
    ) -> anyhow::Result<Verdict> {
        ENGINE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot
                .as_ref()
                .is_none_or(|e| !Arc::ptr_eq(e.pattern(), &self.pattern))
            {
                *slot = Some(
                    exec::Engine::new(self.pattern.clone())
                        .context("the validator could not start its emulator (Unicorn)")?,
                );
            }
            let engine = slot.as_mut().expect("engine just made");
            engine
                .load(image)
                .context("the validator could not load its test code into the emulator")?;
            Ok(self.run_tests(engine, asm, job))
        })
    }

    fn run_tests(
        &self,
        engine: &mut exec::Engine,
        asm: &assemble::AssembledJob,
        job: &VerifyJob,
    ) -> Verdict {
        let roles = state::RegisterRoles::of(&[job.original, job.candidate]);
        let with_v = uses_simd(job.original) || uses_simd(job.candidate);
        let orig = exec::Entry {
            start: asm.original.start,
            end: asm.original.end,
            exits: &asm.exits,
            data: &asm.data,
        };
        let cand = exec::Entry {
            start: asm.candidate.start,
            end: asm.candidate.end,
            exits: &asm.exits,
            data: &asm.data,
        };
        // States the solver found first: they refute a repeated mistake at
        // once. (Not counted below: they are extra.)
        for st in self.remembered(job) {
            let a = engine.run(&orig, &st, with_v);
            let b = engine.run(&cand, &st, with_v);
            if let Some(diff) = compare::difference(&a, &b, job.live_out) {
                return Verdict::Counterexample {
                    description: compare::describe(&st, job.original, &diff),
                };
            }
        }
        let mut completed = 0u32;
        let mut last_fault = None;
        for t in 0..self.cfg.tests {
            let st = state::generate(self.cfg.seed, t, &roles);
            let a = engine.run(&orig, &st, with_v);
            let b = engine.run(&cand, &st, with_v);
            if let Some(diff) = compare::difference(&a, &b, job.live_out) {
                return Verdict::Counterexample {
                    description: compare::describe(&st, job.original, &diff),
                };
            }
            match a.exit {
                exec::Exit::Fault(f) => last_fault = Some(f),
                _ => completed += 1,
            }
        }
        // A faulting test compares nothing after the fault, so a block that
        // faults on most states would pass on the few states that complete,
        // however few: measured, when memory held no pointers, an LLM rewrite
        // dropping a `sxtw` after a load through a pointer read from memory
        // passed 1000 tests (2 completed). Demand that a tenth complete.
        if (completed as u64) * 10 < self.cfg.tests as u64 {
            return Verdict::Unsupported {
                reason: format!(
                    "the original completes on only {completed} of {} test states (the others fault: {}), too few to compare",
                    self.cfg.tests,
                    last_fault.unwrap_or_default()
                ),
            };
        }
        Verdict::Equivalent {
            tests: self.cfg.tests,
        }
    }
}

use assemble::Image;

/// The key of a window's remembered states.
fn window_key(job: &VerifyJob) -> String {
    let text: Vec<String> = job.original.iter().map(|i| i.to_string()).collect();
    format!("{}|{}", text.join("; "), job.live_out)
}

/// Whether a block names any SIMD/FP register (then vector registers and FP
/// control are set up and compared; otherwise they cannot change).
fn uses_simd(block: &[Insn]) -> bool {
    block.iter().any(|i| {
        i.operands.iter().any(|o| match o {
            Operand::Reg(r) => r.is_simd(),
            Operand::RegList { .. } => true,
            _ => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block from lines of assembly (shared with the executor's tests).
    pub(super) fn block(lines: &[&str]) -> Vec<Insn> {
        lines
            .iter()
            .map(|l| Insn::parse_plain(l).unwrap())
            .collect()
    }

    /// A counterexample's inputs, once remembered, are met by every later
    /// candidate of the window, whatever the generated states are.
    #[test]
    fn remembered_counterexamples_are_tested_first() {
        let v = Verifier::new(VerifyConfig { tests: 1, seed: 3 }).unwrap();
        let x1 = LocSet::parse_list("x1").unwrap();
        let orig = block(&["cmp x0, x2", "cset x1, eq"]);
        let cand = block(&["mov x1, #0"]);
        let job = VerifyJob {
            original: &orig,
            candidate: &cand,
            live_out: x1,
        };
        let mut x = vec![0u64; 31];
        (x[0], x[2]) = (0x1234_5678_9abc, 0x1234_5678_9abc);
        v.remember(&job, &crate::prove::Inputs { x, sp: 0, nzcv: 0 });
        let r = v.check(&orig, &cand, x1).unwrap();
        assert!(matches!(r, Verdict::Counterexample { .. }), "{r:?}");
        // Another window's tests are untouched.
        let other = block(&["cmp x0, x3", "cset x1, eq"]);
        assert_eq!(
            v.remembered(&VerifyJob {
                original: &other,
                candidate: &cand,
                live_out: x1
            }),
            []
        );
    }

    /// -O0 code reads every pointer back from its stack slot before using
    /// it. Memory holds valid pointers, so such a block completes on enough
    /// states to be judged; before it did not (10 of 1000 here), and a
    /// rewrite dropping the `sxtw` could only be caught by luck. A block
    /// found equivalent to itself completed on at least a tenth of the
    /// states (`run_tests` says "unsupported" otherwise).
    #[test]
    fn loads_through_pointers_read_from_memory_are_judged() {
        let cfg = VerifyConfig::default();
        let v = Verifier::new(cfg).unwrap();
        let x0 = LocSet::parse_list("x0").unwrap();
        let orig = block(&["ldr x0, [sp, 8]", "ldr w0, [x0]", "sxtw x0, w0"]);
        assert_eq!(
            v.check(&orig, &orig, x0).unwrap(),
            Verdict::Equivalent { tests: cfg.tests }
        );
        let dropped = block(&["ldr x0, [sp, 8]", "ldr w0, [x0]"]);
        let r = v.check(&orig, &dropped, x0).unwrap();
        assert!(matches!(r, Verdict::Counterexample { .. }), "{r:?}");

        // Two pointers read from memory (`*a + *b`, both spilled; `**pp`):
        // the share of pointer words is chosen so that these complete on a
        // tenth of the states too.
        for b in [
            block(&[
                "ldr x0, [sp, 8]",
                "ldr w1, [x0]",
                "ldr x0, [sp]",
                "ldr w0, [x0]",
                "add w0, w1, w0",
            ]),
            block(&["ldr x0, [sp, 8]", "ldr x0, [x0]", "ldr w0, [x0]"]),
        ] {
            let r = v.check(&b, &b, x0).unwrap();
            assert_eq!(r, Verdict::Equivalent { tests: cfg.tests }, "{b:?}");
        }
    }

    /// A global's bytes differ from state to state, also past its first
    /// 64: with one fixed content (zeros at offset 2048) this LLM rewrite of
    /// gcc -O1 `hashtable`, dropping the `mov w0, 1` after a counter's
    /// increment, passed 300 tests and changed the program's output.
    #[test]
    fn values_loaded_from_globals_differ_between_states() {
        let cfg = VerifyConfig {
            tests: 300,
            ..VerifyConfig::default()
        };
        let v = Verifier::new(cfg).unwrap();
        let x0 = LocSet::parse_list("x0").unwrap();
        let counter = [
            "adrp x3, .LANCHOR0",
            "add x3, x3, :lo12:.LANCHOR0",
            "ldr w0, [x3, 2048]",
            "add w0, w0, 1",
            "str w0, [x3, 2048]",
        ];
        let orig = block(&[&counter[..], &["mov w0, 1"]].concat());
        let r = v.check(&orig, &block(&counter), x0).unwrap();
        assert!(matches!(r, Verdict::Counterexample { .. }), "{r:?}");
        assert_eq!(
            v.check(&orig, &orig, x0).unwrap(),
            Verdict::Equivalent { tests: cfg.tests }
        );
        // A compare of a loaded global: `lt` and `le` differ only when it
        // equals the constant, a boundary value some states hold.
        let cmp = |cond: &str| {
            block(&[
                "adrp x1, g",
                "ldr w1, [x1, :lo12:g]",
                "cmp w1, #0",
                &format!("cset w0, {cond}"),
            ])
        };
        let r = v.check(&cmp("lt"), &cmp("le"), x0).unwrap();
        assert!(matches!(r, Verdict::Counterexample { .. }), "{r:?}");
    }
}
