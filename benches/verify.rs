//! Validator throughput: block executions per second on one core, for blocks
//! of 2, 4 and 8 instructions (original == candidate, so every test runs to
//! the end). Prints a table of medians over several repetitions.
//!
//! Run: `cargo bench --bench verify`

use peephole::asm::Insn;
use peephole::semantics::LocSet;
use peephole::verify::assemble::assemble_batch;
use peephole::verify::{Verifier, VerifyConfig, VerifyJob};
use std::time::Instant;

/// Instructions blocks are drawn from: ALU, flags, loads/stores, SIMD.
const POOL: &[&str] = &[
    "add x0, x1, x2",
    "sub w3, w4, w5",
    "eor x6, x0, x3, lsl #3",
    "mul x7, x1, x2",
    "cmp x0, x1",
    "csel x2, x3, x4, lt",
    "ldr x8, [x1, #8]",
    "str x0, [x2, #16]",
    "ldp x9, x10, [sp, #32]",
    "lsr x11, x0, #7",
    "adds x12, x12, #1",
    "fadd d0, d1, d2",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let tests = 1000u32;
    let jobs_per_size = 40usize;
    let reps = 5;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let verifier = Verifier::new(VerifyConfig { tests, seed: 1 }).unwrap();
    println!("| block size | jobs | tests/job | assemble ms (median) | check_many ms (median) | block executions/s/core (median) | ratio to 100k target |");
    println!("|---|---|---|---|---|---|---|");
    for size in [2usize, 4, 8] {
        let blocks: Vec<Vec<Insn>> = (0..jobs_per_size)
            .map(|j| {
                (0..size)
                    .map(|k| Insn::parse_plain(POOL[(j * 7 + k * 5) % POOL.len()]).unwrap())
                    .collect()
            })
            .collect();
        let jobs: Vec<VerifyJob> = blocks
            .iter()
            .map(|b| VerifyJob {
                original: b,
                candidate: b,
                live_out: LocSet::ALL,
            })
            .collect();
        let pairs: Vec<(&[Insn], &[Insn])> = blocks
            .iter()
            .map(|b| (b.as_slice(), b.as_slice()))
            .collect();
        let (mut asm_ms, mut total_ms, mut rate) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let t = Instant::now();
            assemble_batch(&pairs).unwrap();
            let a = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let verdicts = pool.install(|| verifier.check_many(&jobs)).unwrap();
            let total = t.elapsed().as_secs_f64();
            assert!(verdicts.iter().all(|v| v.is_equivalent()), "{verdicts:?}");
            let executions = (jobs.len() as u64 * u64::from(tests) * 2) as f64;
            asm_ms.push(a * 1e3);
            total_ms.push(total * 1e3);
            rate.push(executions / (total - a).max(1e-9));
        }
        let r = median(rate);
        println!(
            "| {size} | {} | {tests} | {:.1} | {:.1} | {:.0} | {:.2} |",
            jobs.len(),
            median(asm_ms),
            median(total_ms),
            r,
            r / 100_000.0
        );
    }
}
