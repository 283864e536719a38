//! Interpreter throughput against Unicorn's on the same short integer
//! blocks (3 and 8 instructions), one core: instructions per second, medians
//! of 5 repetitions, and their ratio. The goal (issue 18): at least 50M
//! instructions/s for the interpreter, about 100x Unicorn.
//!
//! Each run starts from a fresh register state in both: the interpreter
//! copies a `Machine`, Unicorn gets a batch register write, runs to the
//! block's `brk` (its translation stays cached, as in the validator) and
//! gives a batch register read.
//!
//! Run: `cargo bench --bench semantics`

use peephole::asm::Insn;
use peephole::semantics::concrete::{self, Concrete, Machine};
use peephole::semantics::inst::Inst;
use peephole::verify::state::{boundary_values, SplitMix64};
use std::ffi::c_void;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;
use unicorn_engine::{uc_error as UcError, Arch, Mode, Prot, RegisterARM64, Unicorn};

/// Integer instructions the blocks are drawn from.
const POOL: &[&str] = &[
    "add x0, x1, x2",
    "sub w3, w4, w5",
    "eor x6, x0, x3, lsl #3",
    "mul x7, x1, x2",
    "adds x8, x8, #1",
    "csel x2, x3, x4, lt",
    "lsr x9, x0, #7",
    "and w10, w1, #0xff",
    "cmp x0, x1",
    "orr x11, x2, x9, ror #5",
    "ubfx x12, x1, #4, #12",
    "madd x13, x1, x2, x3",
    "cinc x14, x0, eq",
    "neg x15, x1",
    "sbfiz w16, w2, #3, #9",
    "clz x17, x6",
    "add x18, x0, w1, sxtw #2",
    "ccmp x1, #3, #4, ne",
    "movk x5, #0x1234, lsl #16",
    "udiv x4, x0, x1",
];

const BLOCKS: usize = 64;
const STATES: usize = 256;
/// Passes over every (block, state) pair per repetition: enough that one
/// repetition takes a good fraction of a second.
const INTERP_ROUNDS: usize = 64;
const UC_ROUNDS: usize = 8;
const REPS: usize = 5;
const CODE_BASE: u64 = 0x10_0000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn blocks(size: usize) -> Vec<Vec<&'static str>> {
    (0..BLOCKS)
        .map(|j| {
            (0..size)
                .map(|k| POOL[(j * 7 + k * 5 + j / 3) % POOL.len()])
                .collect()
        })
        .collect()
}

fn states() -> Vec<Machine> {
    let mut rng = SplitMix64::new(42);
    (0..STATES)
        .map(|_| {
            let mut m = Machine::zeroed();
            for x in m.x.iter_mut() {
                *x = if rng.chance(50) {
                    rng.next_u64()
                } else {
                    boundary_values(&mut rng)
                };
            }
            m.sp = 0x1000_0000;
            m.set_nzcv(rng.below(16) << 28);
            m
        })
        .collect()
}

/// Instructions per second of the interpreter over every block and state.
fn interpreter(blocks: &[Vec<Inst>], states: &[Machine]) -> f64 {
    let mut dom = Concrete::default();
    let mut acc = 0u64;
    let t = Instant::now();
    let mut insns = 0u64;
    for _ in 0..INTERP_ROUNDS {
        for b in blocks {
            for s in states {
                let mut m = s.clone();
                let _ = black_box(concrete::run(black_box(b), &mut m, &mut dom));
                acc ^= m.x[0] ^ m.x[9] ^ m.nzcv();
                insns += b.len() as u64;
            }
        }
    }
    let dt = t.elapsed().as_secs_f64();
    black_box(acc);
    insns as f64 / dt
}

fn assemble(blocks: &[Vec<&str>]) -> (Vec<u8>, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut src = String::from(".text\n");
    let mut starts = Vec::new();
    let mut at = CODE_BASE;
    for b in blocks {
        starts.push(at);
        for l in b {
            src.push_str(l);
            src.push('\n');
        }
        src.push_str("brk #0\n");
        at += 4 * (b.len() as u64 + 1);
    }
    let (s, o, bin) = (
        dir.path().join("b.s"),
        dir.path().join("b.o"),
        dir.path().join("b.bin"),
    );
    std::fs::write(&s, src).unwrap();
    let ok = Command::new("aarch64-linux-gnu-as")
        .arg("-o")
        .arg(&o)
        .arg(&s)
        .status()
        .expect("aarch64-linux-gnu-as")
        .success()
        && Command::new("aarch64-linux-gnu-objcopy")
            .args(["-O", "binary", "-j", ".text"])
            .arg(&o)
            .arg(&bin)
            .status()
            .expect("aarch64-linux-gnu-objcopy")
            .success();
    assert!(ok, "assembling the blocks failed");
    let code = std::fs::read(&bin).unwrap();
    assert_eq!(code.len() as u64, at - CODE_BASE);
    (code, starts)
}

/// Instructions per second of Unicorn over the same blocks, reusing one
/// engine with all the code mapped once.
fn unicorn(
    uc: &mut Unicorn<'static, ()>,
    blocks: &[Vec<&str>],
    starts: &[u64],
    states: &[Machine],
) -> f64 {
    use RegisterARM64::*;
    let ids: Vec<i32> = [
        X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X19,
        X20, X21, X22, X23, X24, X25, X26, X27, X28, X29, X30, SP, NZCV,
    ]
    .iter()
    .map(|r| *r as i32)
    .collect();
    let h = uc.get_handle();
    let mut acc = 0u64;
    let mut insns = 0u64;
    let t = Instant::now();
    for (b, &start) in blocks
        .iter()
        .zip(starts)
        .cycle()
        .take(blocks.len() * UC_ROUNDS)
    {
        for s in states {
            let mut vals = [0u64; 33];
            vals[..31].copy_from_slice(&s.x);
            vals[31] = s.sp;
            vals[32] = s.nzcv();
            let mut ptrs = [std::ptr::null_mut::<c_void>(); 33];
            for (p, v) in ptrs.iter_mut().zip(vals.iter_mut()) {
                *p = v as *mut u64 as *mut c_void;
            }
            // SAFETY: each pointer refers to a live u64 for the call.
            unsafe { unicorn_engine::uc_reg_write_batch(h, ids.as_ptr(), ptrs.as_ptr(), 33) };
            let r = uc.emu_start(start, 0, 0, 0);
            assert_eq!(r, Err(UcError::EXCEPTION));
            // SAFETY: as above.
            unsafe { unicorn_engine::uc_reg_read_batch(h, ids.as_ptr(), ptrs.as_mut_ptr(), 33) };
            acc ^= vals[0] ^ vals[9] ^ vals[32];
            insns += b.len() as u64;
        }
    }
    let dt = t.elapsed().as_secs_f64();
    black_box(acc);
    insns as f64 / dt
}

fn main() {
    let states = states();
    println!(
        "| block size | interpreter instr/s | interpreter runs/s | Unicorn instr/s | Unicorn runs/s | ratio | >= 50M instr/s | ~100x |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for size in [3usize, 8] {
        let text = blocks(size);
        let decoded: Vec<Vec<Inst>> = text
            .iter()
            .map(|b| {
                b.iter()
                    .map(|l| Inst::decode(&Insn::parse_plain(l).unwrap()).unwrap())
                    .collect()
            })
            .collect();
        let (code, starts) = assemble(&text);
        let mut uc = Unicorn::new(Arch::ARM64, Mode::ARM).unwrap();
        let size_mapped = (code.len() as u64).div_ceil(0x1000) * 0x1000;
        uc.mem_map(CODE_BASE, size_mapped, Prot::ALL).unwrap();
        uc.mem_write(CODE_BASE, &code).unwrap();
        // Warm up: translate every block once.
        unicorn(&mut uc, &text, &starts, &states);
        interpreter(&decoded, &states);
        let mut ip = Vec::new();
        let mut un = Vec::new();
        for _ in 0..REPS {
            ip.push(interpreter(&decoded, &states));
            un.push(unicorn(&mut uc, &text, &starts, &states));
        }
        let (i, u) = (median(ip), median(un));
        let met = |ok: bool| if ok { "met" } else { "not met" };
        println!(
            "| {size} | {:.1}M | {:.1}M | {:.2}M | {:.2}M | {:.0}x | {} | {} |",
            i / 1e6,
            i / size as f64 / 1e6,
            u / 1e6,
            u / size as f64 / 1e6,
            i / u,
            met(i >= 50e6),
            met(i / u >= 100.0)
        );
    }
    println!("(medians of {REPS} repetitions, one core; a run is one block on one state)");
}
