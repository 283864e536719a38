//! Machine states to run blocks on: registers, flags, FP control and the
//! contents of sandboxed memory.
//!
//! Random values alone rarely hit the inputs where rewrites go wrong (a sign
//! bit, a carry out of bit 31, two pointers that alias), so every register
//! draws from a mix of random values, boundary values, small integers and
//! pointers into mapped memory, and memory holds boundary values in places.
//! Everything derives from a seed through [`SplitMix64`], whose stream is
//! fixed by its definition, so a counterexample reproduces on any machine and
//! across dependency updates.

use crate::asm::{AddrMode, Insn, Operand, RegKind};

/// Start of the sandboxed data region that pointers point into.
pub const DATA_BASE: u64 = 0x1000_0000;
/// Size of the data region.
pub const DATA_SIZE: u64 = 0x0010_0000;
/// Pointers keep this distance from the region's edges, so that any
/// immediate offset (at most 32760 scaled, 4095 << 12 is not an offset)
/// and most small index values stay inside.
const MARGIN: u64 = 0x0001_0000;

/// A small, fixed-stream generator (SplitMix64, Steele et al. 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0); the tiny modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The full input state of one test.
#[derive(Clone, Debug, PartialEq)]
pub struct MachineState {
    pub x: [u64; 31],
    pub sp: u64,
    pub v: [u128; 32],
    /// NZCV in bits 31..28.
    pub nzcv: u64,
    pub fpcr: u64,
    pub fpsr: u64,
}

/// How the blocks use general registers, to steer value choice.
#[derive(Clone, Debug, Default)]
pub struct RegisterRoles {
    /// x registers used as a memory base (the stack pointer is always one).
    pub bases: Vec<u8>,
    /// x registers used as a memory index.
    pub indices: Vec<u8>,
    /// Every x register the blocks name (w or x view).
    pub mentioned: Vec<u8>,
}

impl RegisterRoles {
    pub fn of(blocks: &[&[Insn]]) -> Self {
        let mut r = RegisterRoles::default();
        for insn in blocks.iter().flat_map(|b| b.iter()) {
            for reg in insn.regs() {
                if matches!(reg.kind, RegKind::X | RegKind::W) && !r.mentioned.contains(&reg.num) {
                    r.mentioned.push(reg.num);
                }
            }
            for op in &insn.operands {
                if let Operand::Mem(m) = op {
                    if m.base.kind == RegKind::X && !r.bases.contains(&m.base.num) {
                        r.bases.push(m.base.num);
                    }
                    let mut idx: Vec<&crate::asm::Reg> = m.index.iter().map(|(r, _)| r).collect();
                    if let AddrMode::PostIndex(p) = &m.mode {
                        if let Operand::Reg(reg) = p.as_ref() {
                            idx.push(reg);
                        }
                    }
                    for reg in idx {
                        if matches!(reg.kind, RegKind::X | RegKind::W)
                            && !r.indices.contains(&reg.num)
                        {
                            r.indices.push(reg.num);
                        }
                    }
                }
            }
        }
        r
    }
}

/// 64-bit integers where arithmetic identities tend to break.
pub fn boundary_values(rng: &mut SplitMix64) -> u64 {
    const FIXED: &[u64] = &[
        0,
        1,
        2,
        3,
        u64::MAX,
        u64::MAX - 1,
        i64::MIN as u64,
        i64::MAX as u64,
        (i64::MIN + 1) as u64,
        (i64::MAX - 1) as u64,
        i32::MIN as i64 as u64,
        i32::MAX as u64,
        (i32::MIN as i64 + 1) as u64,
        0x8000_0000,
        0x8000_0001,
        0x7fff_fffe,
        0xffff_ffff,
        0xffff_fffe,
        0x1_0000_0000,
        0x1_0000_0001,
        0x0000_0001_ffff_ffff,
        0xffff_ffff_0000_0001,
        0x8000_0000_7fff_ffff,
        0x7fff_ffff_8000_0000,
        0x0000_0000_ffff_fffe,
        0x1234_5678_9abc_def0,
        0xffff_ffff_ffff_fffd,
        0xff,
        0x80,
        0x7f,
        0xffff,
        0x8000,
        0x7fff,
    ];
    match rng.below(4) {
        0 | 1 => rng.pick(FIXED),
        2 => {
            // A power of two, or a neighbour.
            let p = 1u64 << rng.below(64);
            p.wrapping_add(rng.pick(&[0u64, 1, u64::MAX]))
        }
        _ => {
            // Low and high halves from different families.
            let lo = rng.pick(FIXED) & 0xffff_ffff;
            let hi = rng.next() >> 32;
            (hi << 32) | lo
        }
    }
}

/// A 64-bit lane with floating-point or integer boundary content.
fn simd_half(rng: &mut SplitMix64) -> u64 {
    const F64: &[u64] = &[
        0x0000_0000_0000_0000, // 0.0
        0x8000_0000_0000_0000, // -0.0
        0x3ff0_0000_0000_0000, // 1.0
        0xbff0_0000_0000_0000, // -1.0
        0x3fe0_0000_0000_0000, // 0.5
        0x4004_0000_0000_0000, // 2.5
        0xc004_0000_0000_0000, // -2.5
        0x7ff0_0000_0000_0000, // inf
        0xfff0_0000_0000_0000, // -inf
        0x7ff8_0000_0000_0000, // qNaN
        0x7ff4_0000_0000_0000, // sNaN
        0x0000_0000_0000_0001, // min subnormal
        0x000f_ffff_ffff_ffff, // max subnormal
        0x0010_0000_0000_0000, // min normal
        0x7fef_ffff_ffff_ffff, // max
        0x43e0_0000_0000_0000, // 2^63
        0x41e0_0000_0000_0000, // 2^31
    ];
    const F32: &[u32] = &[
        0x0000_0000,
        0x8000_0000,
        0x3f80_0000,
        0xbf80_0000,
        0x3f00_0000,
        0x4020_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7fa0_0000,
        0x0000_0001,
        0x007f_ffff,
        0x7f7f_ffff,
        0x4f00_0000,
    ];
    match rng.below(10) {
        0..=3 => rng.next(),
        4..=5 => rng.pick(F64),
        6..=7 => (u64::from(rng.pick(F32)) << 32) | u64::from(rng.pick(F32)),
        _ => boundary_values(rng),
    }
}

fn pointer(rng: &mut SplitMix64) -> u64 {
    let p = DATA_BASE + MARGIN + rng.below(DATA_SIZE - 2 * MARGIN);
    match rng.below(4) {
        0 | 1 => p & !7,
        2 => p & !15,
        _ => p,
    }
}

fn general_value(rng: &mut SplitMix64) -> u64 {
    match rng.below(20) {
        0..=6 => rng.next(),
        7..=13 => boundary_values(rng),
        14..=16 => (rng.below(129) as i64 - 64) as u64,
        _ => pointer(rng),
    }
}

/// The state for test `index` of a job whose blocks use registers as `roles`
/// says. Independent of everything else, so tests can run in any order.
pub fn generate(seed: u64, index: u32, roles: &RegisterRoles) -> MachineState {
    let mut rng = SplitMix64::new(seed ^ u64::from(index).wrapping_mul(0xd134_2543_de82_ef95));
    rng.next();
    let mut x = [0u64; 31];
    for v in x.iter_mut() {
        *v = general_value(&mut rng);
    }
    for &i in &roles.indices {
        if rng.chance(50) {
            x[i as usize] = (rng.below(129) as i64 - 64) as u64;
        }
    }
    // Two registers the blocks name that are equal, neighbours, or equal in
    // their low halves only: where `lt` vs `le`, `eq` on w vs x, and
    // similar rewrites go wrong.
    if roles.mentioned.len() >= 2 && rng.chance(25) {
        let a = rng.pick(&roles.mentioned) as usize;
        let b = rng.pick(&roles.mentioned) as usize;
        x[b] = match rng.below(4) {
            0 | 1 => x[a],
            2 => x[a].wrapping_add(rng.pick(&[1u64, u64::MAX])),
            _ => (x[b] & !0xffff_ffff) | (x[a] & 0xffff_ffff),
        };
    }
    let sp = pointer(&mut rng) & !15;
    // Bases: mostly pointers; some equal to, or overlapping, an earlier base
    // (or sp), the rest far apart.
    let mut placed: Vec<u64> = vec![sp];
    for &b in &roles.bases {
        let p = if rng.chance(4) {
            general_value(&mut rng)
        } else {
            match rng.below(8) {
                0 | 1 => rng.pick(&placed),
                2 | 3 => rng
                    .pick(&placed)
                    .wrapping_add(rng.pick(&[-16i64, -8, -4, -2, -1, 1, 2, 4, 8, 16]) as u64),
                _ => pointer(&mut rng),
            }
        };
        x[b as usize] = p;
        placed.push(p);
    }
    let mut v = [0u128; 32];
    for q in v.iter_mut() {
        *q = (u128::from(simd_half(&mut rng)) << 64) | u128::from(simd_half(&mut rng));
    }
    let nzcv = rng.below(16) << 28;
    let fpcr = if rng.chance(70) {
        0
    } else {
        // RMode (23:22), FZ (24), DN (25).
        (rng.below(4) << 22) | (rng.below(2) << 24) | (rng.below(2) << 25)
    };
    let fpsr = if rng.chance(80) {
        0
    } else {
        rng.next() & 0x0800_009f
    };
    MachineState {
        x,
        sp,
        v,
        nzcv,
        fpcr,
        fpsr,
    }
}

/// Initial contents of the data region: random bytes, with one 64-byte line
/// in four holding boundary values, so loads see both.
pub fn data_pattern(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ 0x6d65_6d6f_7279);
    let mut out = Vec::with_capacity(DATA_SIZE as usize);
    while out.len() < DATA_SIZE as usize {
        let boundary = rng.chance(25);
        for _ in 0..8 {
            let w = if boundary {
                boundary_values(&mut rng)
            } else {
                rng.next()
            };
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let roles = RegisterRoles {
            bases: vec![1, 2],
            indices: vec![3],
            mentioned: vec![1, 2, 3, 5, 6],
        };
        assert_eq!(generate(7, 3, &roles), generate(7, 3, &roles));
        assert_ne!(generate(7, 3, &roles), generate(7, 4, &roles));
        assert_ne!(generate(7, 3, &roles), generate(8, 3, &roles));
        let states: Vec<MachineState> = (0..1000).map(|i| generate(1, i, &roles)).collect();
        let in_data = |p: u64| (DATA_BASE..DATA_BASE + DATA_SIZE).contains(&p);
        let ptrs = states.iter().filter(|s| in_data(s.x[1])).count();
        assert!(ptrs > 900, "{ptrs}");
        assert!(states.iter().any(|s| s.x[1] == s.x[2]));
        assert!(states.iter().any(|s| s.x[2] == s.x[1].wrapping_add(8)));
        assert!(states.iter().all(|s| s.sp % 16 == 0 && in_data(s.sp)));
        assert!(states.iter().filter(|s| s.x[5] == s.x[6]).count() > 10);
        for v in [
            0,
            1,
            u64::MAX,
            i64::MIN as u64,
            i64::MAX as u64,
            0x8000_0000,
            0x7fff_ffff,
        ] {
            assert!(states.iter().any(|s| s.x[5] == v), "{v:#x}");
        }
    }
}
