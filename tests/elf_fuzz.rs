//! A mutation driver for the ELF reader and renderer, for machines where
//! cargo-fuzz (nightly sanitizers) cannot run: mutated fixture binaries must
//! give a result or an error, never a panic.
//!
//! `PEEPHOLE_FUZZ_ITERS` sets the number of mutants (default 150, which
//! keeps it to seconds); e.g. `PEEPHOLE_FUZZ_ITERS=20000 cargo test --release
//! --test elf_fuzz -- --nocapture` for a longer run.

use peephole::elf::{render, Binary};
use std::path::Path;
use std::process::Command;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/elf");

/// xorshift: reproducible without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let n = b.len();
        match rng.below(6) {
            // Flip a bit anywhere.
            0 => b[rng.below(n)] ^= 1 << rng.below(8),
            // Interesting values in the headers (offsets, sizes, counts).
            1 => {
                let at = rng.below(n.min(256));
                let v = [0u8, 0xff, 0x7f, 0x80, 1, 0x40][rng.below(6)];
                b[at] = v;
            }
            // Overwrite a 64-bit field with a large value.
            2 => {
                let at = rng.below(n.saturating_sub(8));
                let v = [u64::MAX, 1 << 40, 0x8000_0000, n as u64 + 1][rng.below(4)];
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            // Truncate.
            3 => b.truncate(64 + rng.below(n - 64)),
            // Random bytes over a section-header-sized run.
            4 => {
                let at = rng.below(n);
                for x in &mut b[at..(at + 64).min(n)] {
                    *x = rng.next() as u8;
                }
            }
            // Scramble code words (decoder, renderer, round trip).
            _ => {
                let at = rng.below(n / 4) * 4;
                let w = (rng.next() as u32).to_le_bytes();
                b[at..at + 4].copy_from_slice(&w);
            }
        }
    }
    b
}

#[test]
fn mutated_binaries_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let prog = Path::new(FIX).join("prog.c");
    let exe = dir.path().join("prog");
    let obj = dir.path().join("prog.o");
    for (args, out) in [(vec!["-O2"], &exe), (vec!["-O2", "-c"], &obj)] {
        let mut c = Command::new("aarch64-linux-gnu-gcc");
        c.args(args).arg("-o").arg(out).arg(&prog);
        if out == &exe {
            c.arg(Path::new(FIX).join("twice.S"));
        }
        assert!(c.status().unwrap().success());
    }
    let seeds = [std::fs::read(&exe).unwrap(), std::fs::read(&obj).unwrap()];
    let iters: usize = std::env::var("PEEPHOLE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut loaded, mut rendered, mut panics) = (0, 0, Vec::new());
    for i in 0..iters {
        let m = mutate(&seeds[i % 2], &mut rng);
        let r = std::panic::catch_unwind(|| match Binary::from_bytes(m.clone()) {
            Ok(b) => (true, render(&b).is_ok()),
            Err(_) => (false, false),
        });
        match r {
            Ok((l, rd)) => {
                loaded += usize::from(l);
                rendered += usize::from(rd);
            }
            Err(_) => {
                let p = dir.path().join(format!("panic-{i}"));
                std::fs::write(&p, &m).unwrap();
                panics.push(p);
            }
        }
    }
    eprintln!(
        "{iters} mutants: {loaded} loaded, {rendered} rendered, {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "panics on {panics:?}");
}
