//! The equivalence query for one (original, candidate) pair: both blocks run
//! symbolically from one initial state, and the solver is asked for a state
//! on which they differ in what the validator observes ([`crate::verify::
//! compare`]): the exit taken, or a fault; live-out registers and flags; the
//! set of bytes written and their values. `unsat` is a proof.
//!
//! A branch before the end of a block ends it early, so each block becomes
//! a list of ways it can end, each under a path condition; the query pairs
//! every end of the original with every end of the candidate.

use super::smt::{Initial, Memory, Smt};
use super::Inputs;
use crate::asm::{Insn, Operand};
use crate::semantics::domain::Flags;
use crate::semantics::exec::{step, Regs};
use crate::semantics::inst::{Inst, Op};
use crate::semantics::{Loc, LocSet};
use crate::verify::compare::{describe, Difference};
use crate::verify::exec::Exit;
use crate::verify::state::MachineState;
use z3::ast::{Ast, Bool, BV};
use z3::{Context, Model, SatResult, Solver};

type SymRegs<'ctx> = Regs<BV<'ctx>, Bool<'ctx>>;

/// A block decoded for symbolic execution: each instruction with the label
/// it branches to, when it is a branch.
pub type Decoded = Vec<(Inst, Option<String>)>;

/// Decode a block, or say why it is outside the semantics.
pub fn decode(block: &[Insn]) -> Result<Decoded, String> {
    block
        .iter()
        .map(|insn| {
            let inst =
                Inst::decode(insn).map_err(|_| format!("`{insn}` has no executable semantics"))?;
            let is_branch = matches!(
                inst.op,
                Op::BranchCond { .. } | Op::BranchZero { .. } | Op::BranchBit { .. }
            );
            let label = match (is_branch, insn.operands.last()) {
                (false, _) => None,
                (true, Some(Operand::Sym(l))) => Some(l.clone()),
                (true, _) => return Err(format!("`{insn}` branches to no label")),
            };
            Ok((inst, label))
        })
        .collect()
}

/// The symbolic initial state both runs start from.
struct Input<'ctx> {
    regs: SymRegs<'ctx>,
    memory: Initial<'ctx>,
}

impl<'ctx> Input<'ctx> {
    fn new(ctx: &'ctx Context) -> Input<'ctx> {
        let flag = |n: &str| Bool::new_const(ctx, n);
        Input {
            regs: Regs {
                x: std::array::from_fn(|n| BV::new_const(ctx, format!("x{n}"), 64)),
                sp: BV::new_const(ctx, "sp", 64),
                flags: Flags {
                    n: flag("n"),
                    z: flag("z"),
                    c: flag("c"),
                    v: flag("v"),
                },
            },
            memory: Initial::new(ctx),
        }
    }
}

/// One way a run can end: under `when`, at `exit` (a label; `None` falls
/// through), with these registers and this memory.
struct End<'ctx> {
    when: Bool<'ctx>,
    exit: Option<String>,
    regs: SymRegs<'ctx>,
    mem: Memory<'ctx>,
}

/// Run a block symbolically; also says whether an operation was read as an
/// uninterpreted function.
fn run<'ctx>(
    ctx: &'ctx Context,
    input: &Input<'ctx>,
    block: &Decoded,
    abstract_arith: bool,
) -> (Vec<End<'ctx>>, bool) {
    let mut d = Smt::new(ctx, abstract_arith);
    let mut regs = input.regs.clone();
    let mut path = Bool::from_bool(ctx, true);
    let mut ends = Vec::new();
    for (inst, label) in block {
        // The SMT domain never faults: a fault is a condition in `d.mem`.
        let Ok(taken) = step(&mut d, &mut regs, inst) else {
            unreachable!("the SMT domain records faults as conditions")
        };
        if let Some(taken) = taken {
            ends.push(End {
                when: Bool::and(ctx, &[&path, &taken]),
                exit: label.clone(),
                regs: regs.clone(),
                mem: d.mem.clone(),
            });
            path = Bool::and(ctx, &[&path, &taken.not()]);
        }
    }
    ends.push(End {
        when: path,
        exit: None,
        regs,
        mem: d.mem,
    });
    (ends, d.abstracted)
}

/// What the solver answered.
pub enum Answer {
    /// No state tells them apart.
    Unsat,
    /// A state that does, described as the validator describes one, and
    /// its register inputs (to be added to the tests).
    Sat(String, Inputs),
    /// The solver's reason for giving up.
    Unknown(String),
}

/// The query, ready to check.
pub struct Query<'ctx> {
    ctx: &'ctx Context,
    solver: Solver<'ctx>,
    input: Input<'ctx>,
    original: Vec<End<'ctx>>,
    candidate: Vec<End<'ctx>>,
    /// The address at which memory is compared (any address: the solver
    /// picks one where the runs differ, if there is one).
    addr: BV<'ctx>,
    live_out: LocSet,
    /// Whether products or quotients were read as uninterpreted functions
    /// (then `unsat` is a proof, `sat` proves nothing).
    pub abstracted: bool,
}

impl<'ctx> Query<'ctx> {
    /// The query; with `abstract_arith`, products and quotients are
    /// uninterpreted functions.
    pub fn new(
        ctx: &'ctx Context,
        original: &Decoded,
        candidate: &Decoded,
        live_out: LocSet,
        abstract_arith: bool,
    ) -> Query<'ctx> {
        let input = Input::new(ctx);
        let (original, a) = run(ctx, &input, original, abstract_arith);
        let (candidate, b) = run(ctx, &input, candidate, abstract_arith);
        let q = Query {
            ctx,
            solver: Solver::new(ctx),
            original,
            candidate,
            input,
            addr: BV::new_const(ctx, "addr", 64),
            live_out,
            abstracted: a || b,
        };
        let mut cases = Vec::new();
        for a in &q.original {
            for b in &q.candidate {
                let d = q.differs(a, b);
                cases.push(Bool::and(ctx, &[&a.when, &b.when, &d]));
            }
        }
        let refs: Vec<&Bool> = cases.iter().collect();
        // Simplified first: a block without memory accesses then leaves no
        // array term, and Z3 picks its bit-vector solver (bit-blasting)
        // instead of the general one, much faster on multiplies and divides.
        q.solver.assert(&Bool::or(ctx, &refs).simplify());
        q
    }

    /// The query as SMT-LIB text: what a cache of answers is keyed by.
    pub fn text(&self) -> String {
        self.solver.to_string()
    }

    /// Ask the solver, giving up after `timeout_ms`.
    pub fn check(&self, timeout_ms: u32, original: &[Insn]) -> Answer {
        let mut p = z3::Params::new(self.ctx);
        p.set_u32("timeout", timeout_ms);
        self.solver.set_params(&p);
        match self.solver.check() {
            SatResult::Unsat => Answer::Unsat,
            SatResult::Sat => match self.solver.get_model() {
                Some(m) => Answer::Sat(self.describe(&m, original), self.inputs(&m)),
                None => Answer::Unknown("the solver found a difference but gave no model".into()),
            },
            SatResult::Unknown => {
                let why = self.solver.get_reason_unknown().unwrap_or_default();
                Answer::Unknown(if why.contains("timeout") || why.contains("cancel") {
                    format!("timeout after {timeout_ms} ms")
                } else {
                    format!("the solver gave up ({why})")
                })
            }
        }
    }

    fn differs(&self, a: &End<'ctx>, b: &End<'ctx>) -> Bool<'ctx> {
        let ctx = self.ctx;
        let (fa, fb) = (&a.mem.faulted, &b.mem.faulted);
        // Two runs that fault agree: the program would crash either way.
        let one_faults = fa.xor(fb);
        let neither = Bool::and(ctx, &[&fa.not(), &fb.not()]);
        let seen = if a.exit != b.exit {
            Bool::from_bool(ctx, true)
        } else {
            self.observables_differ(a, b)
        };
        Bool::or(ctx, &[&one_faults, &Bool::and(ctx, &[&neither, &seen])])
    }

    fn observables_differ(&self, a: &End<'ctx>, b: &End<'ctx>) -> Bool<'ctx> {
        let ctx = self.ctx;
        let mut ds: Vec<Bool<'ctx>> = Vec::new();
        for loc in self.live_out.iter() {
            match loc {
                Loc::X(n) => ds.push(a.regs.x[n as usize]._eq(&b.regs.x[n as usize]).not()),
                Loc::Sp => ds.push(a.regs.sp._eq(&b.regs.sp).not()),
                Loc::Nzcv => {
                    let (f, g) = (&a.regs.flags, &b.regs.flags);
                    for (x, y) in [(&f.n, &g.n), (&f.z, &g.z), (&f.c, &g.c), (&f.v, &g.v)] {
                        ds.push(x.xor(y));
                    }
                }
                // No instruction with semantics touches a vector register.
                Loc::V(_) => {}
                // Memory is compared whether or not it is live, below.
                Loc::Mem => {}
            }
        }
        let (wa, wb) = (
            a.mem.written(self.ctx, &self.addr),
            b.mem.written(self.ctx, &self.addr),
        );
        ds.push(wa.xor(&wb));
        let values = a
            .mem
            .byte(&self.input.memory, &self.addr)
            ._eq(&b.mem.byte(&self.input.memory, &self.addr))
            .not();
        ds.push(Bool::and(ctx, &[&wa, &values]));
        let refs: Vec<&Bool> = ds.iter().collect();
        Bool::or(ctx, &refs)
    }

    /// The model's register inputs.
    fn inputs(&self, m: &Model<'ctx>) -> Inputs {
        let bv = |t: &BV<'ctx>| m.eval(t, true).and_then(|v| v.as_u64()).unwrap_or(0);
        let bit = |t: &Bool<'ctx>| m.eval(t, true).and_then(|v| v.as_bool()).unwrap_or(false);
        let inp = &self.input.regs;
        let f = &inp.flags;
        Inputs {
            x: inp.x.iter().map(bv).collect(),
            sp: bv(&inp.sp),
            nzcv: (bit(&f.n) as u64) << 31
                | (bit(&f.z) as u64) << 30
                | (bit(&f.c) as u64) << 29
                | (bit(&f.v) as u64) << 28,
        }
    }

    /// The counterexample in the validator's words.
    fn describe(&self, m: &Model<'ctx>, original: &[Insn]) -> String {
        let bv = |t: &BV<'ctx>| m.eval(t, true).and_then(|v| v.as_u64()).unwrap_or(0);
        let bit = |t: &Bool<'ctx>| m.eval(t, true).and_then(|v| v.as_bool()).unwrap_or(false);
        let nzcv = |f: &Flags<Bool<'ctx>>| {
            (bit(&f.n) as u64) << 31
                | (bit(&f.z) as u64) << 30
                | (bit(&f.c) as u64) << 29
                | (bit(&f.v) as u64) << 28
        };
        let inp = &self.input.regs;
        let st = MachineState {
            x: std::array::from_fn(|n| bv(&inp.x[n])),
            sp: bv(&inp.sp),
            v: [0; 32],
            nzcv: nzcv(&inp.flags),
            fpcr: 0,
            fpsr: 0,
        };
        let pair = self.original.iter().find_map(|a| {
            self.candidate.iter().find_map(|b| {
                let holds = Bool::and(self.ctx, &[&a.when, &b.when, &self.differs(a, b)]);
                bit(&holds).then_some((a, b))
            })
        });
        let Some((a, b)) = pair else {
            return "the solver's model shows no difference (internal error)".into();
        };
        let exit = |e: &End<'ctx>| {
            if bit(&e.mem.faulted) {
                let unmapped = e.mem.touched.iter().map(bv).find(|&a| {
                    let at = BV::from_u64(self.ctx, a, 64);
                    !bit(&self.input.memory.mapped(&at))
                });
                Exit::Fault(match unmapped {
                    Some(a) => format!("access to unmapped address {a:#x}"),
                    None => "an access to unmapped memory".into(),
                })
            } else {
                e.exit.clone().map_or(Exit::FallThrough, Exit::Label)
            }
        };
        let (xa, xb) = (exit(a), exit(b));
        let diff = if xa != xb {
            Difference::Exit {
                original: xa,
                candidate: xb,
            }
        } else {
            self.live_out
                .iter()
                .find_map(|loc| {
                    let (x, y) = match loc {
                        Loc::X(n) => (bv(&a.regs.x[n as usize]), bv(&b.regs.x[n as usize])),
                        Loc::Sp => (bv(&a.regs.sp), bv(&b.regs.sp)),
                        Loc::Nzcv => (nzcv(&a.regs.flags), nzcv(&b.regs.flags)),
                        Loc::V(_) | Loc::Mem => return None,
                    };
                    (x != y).then_some(Difference::Register {
                        loc,
                        original: x.into(),
                        candidate: y.into(),
                    })
                })
                .unwrap_or_else(|| {
                    let addr = bv(&self.addr);
                    let (wa, wb) = (
                        a.mem.written(self.ctx, &self.addr),
                        b.mem.written(self.ctx, &self.addr),
                    );
                    let (va, vb) = (
                        a.mem.byte(&self.input.memory, &self.addr),
                        b.mem.byte(&self.input.memory, &self.addr),
                    );
                    let (va, vb) = (bv(&va) as u8, bv(&vb) as u8);
                    match (bit(&wa), bit(&wb)) {
                        (true, false) => Difference::WrittenOnlyBy {
                            original: true,
                            addr,
                            value: va,
                        },
                        (false, true) => Difference::WrittenOnlyBy {
                            original: false,
                            addr,
                            value: vb,
                        },
                        _ => Difference::MemoryValue {
                            addr,
                            original: va,
                            candidate: vb,
                        },
                    }
                })
        };
        describe(&st, original, &diff)
    }
}
