//! Machine states to run blocks on: registers, flags, FP control and the
//! contents of sandboxed memory.
//!
//! Random values alone rarely hit the inputs where rewrites go wrong (a sign
//! bit, a carry out of bit 31, two pointers that alias), so every register
//! draws from a mix of random values, boundary values, small integers and
//! pointers into mapped memory, and memory holds boundary values in places
//! and, in a good share of its words, pointers into itself.
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
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0); the tiny modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
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
    /// The blocks' immediates, as written.
    pub immediates: Vec<u64>,
    /// The blocks' immediates with their neighbours, in 64 and 32 bits:
    /// `cmp w12, #197; b.hs` and `cmp w12, #196; b.hs` differ only when
    /// w12 is 196, which random and boundary values almost never give.
    pub constants: Vec<u64>,
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
            for c in insn.immediates() {
                r.immediates.push(c);
                for v in [c, c.wrapping_sub(1), c.wrapping_add(1)] {
                    r.constants.extend([v, v & 0xffff_ffff]);
                }
            }
        }
        for list in [&mut r.immediates, &mut r.constants] {
            list.sort_unstable();
            list.dedup();
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
            let hi = rng.next_u64() >> 32;
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
        0..=3 => rng.next_u64(),
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
        0..=6 => rng.next_u64(),
        7..=13 => boundary_values(rng),
        14..=16 => (rng.below(129) as i64 - 64) as u64,
        _ => pointer(rng),
    }
}

/// The state for test `index` of a job whose blocks use registers as `roles`
/// says. Independent of everything else, so tests can run in any order.
pub fn generate(seed: u64, index: u32, roles: &RegisterRoles) -> MachineState {
    let mut rng = SplitMix64::new(seed ^ u64::from(index).wrapping_mul(0xd134_2543_de82_ef95));
    rng.next_u64();
    let mut x = [0u64; 31];
    for v in x.iter_mut() {
        *v = general_value(&mut rng);
    }
    for &i in &roles.indices {
        if rng.chance(50) {
            x[i as usize] = (rng.below(129) as i64 - 64) as u64;
        }
    }
    // Named registers take one of the blocks' constants or a neighbour of
    // one: a tenth of them on most states, nearly all on a quarter, so that
    // two registers at constants at once (`cmp w5, 47; ccmp w7, 3, 0, ne`)
    // come up too. (Not bases or indices: a constant there would only make
    // the access fault.)
    if !roles.constants.is_empty() {
        let share = if rng.chance(25) { 80 } else { 10 };
        for &r in &roles.mentioned {
            let data = r < 31 && !roles.bases.contains(&r) && !roles.indices.contains(&r);
            if data && rng.chance(share) {
                let from = if rng.chance(50) {
                    &roles.immediates
                } else {
                    &roles.constants
                };
                x[r as usize] = rng.pick(from);
            }
        }
    }
    // Two registers the blocks name that are equal, neighbours, or equal in
    // their low halves only: where `lt` vs `le`, `eq` on w vs x, and
    // similar rewrites go wrong.
    if roles.mentioned.len() >= 2 && rng.chance(25) {
        let a = rng.pick(&roles.mentioned) as usize;
        let mut b = rng.pick(&roles.mentioned) as usize;
        if b == a {
            let k = roles
                .mentioned
                .iter()
                .position(|&m| m as usize == a)
                .unwrap_or(0);
            b = roles.mentioned[(k + 1) % roles.mentioned.len()] as usize;
        }
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
        rng.next_u64() & 0x0800_009f
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

/// Out of every [`POINTER_DEN`] 8-byte words of the data region,
/// [`POINTER_NUM`] hold a valid pointer into the region (3/8).
///
/// Code at -O0 keeps every pointer in a stack slot and reads it back before
/// each use (`ldr x0, [sp, 8]; ldr w0, [x0]`). If memory held no pointers,
/// such a block would fault on nearly every state and the validator, which
/// wants the original to complete on a tenth of them, could prove nothing
/// about it. With a share `p` of pointer words, one load through a pointer
/// read from memory completes on about `p` of the states, and two (`*a + *b`
/// with both pointers spilled, or `**pp`) on about `p * p`. A third puts
/// those at 11%, too close to the tenth: measured at 1000 tests over 21
/// seeds, they completed on 97 to 134 states, under 100 for 2 seeds. At 3/8
/// (14%) they completed on 120 to 173. More pointers would starve the values
/// that catch wrong rewrites: the other 5/8 of the words stay random or
/// boundary values (sign bits set and clear, zero, all ones), and with them
/// the 32-bit values that a pointer's own bits never give (a pointer's low
/// half has bit 31 clear, its high half is zero).
pub const POINTER_NUM: u64 = 3;
/// See [`POINTER_NUM`].
pub const POINTER_DEN: u64 = 8;

/// A pointer for the data word at `at`: 8-byte aligned (half of them
/// 16-byte aligned), kept [`MARGIN`] away from the region's edges like the
/// pointers in registers, so a 16-byte or paired access at any immediate
/// offset stays mapped. One in four points within 64 bytes of the word
/// itself, as a pointer to a neighbouring local does: a block that stores
/// through a pointer it read from the stack and also uses the stack slots
/// then sees the two alias on some states. The rest spread over the whole
/// region, so the values loaded through them differ from state to state.
fn data_pointer(rng: &mut SplitMix64, at: u64) -> u64 {
    let (lo, hi) = (DATA_BASE + MARGIN, DATA_BASE + DATA_SIZE - MARGIN);
    if rng.chance(25) {
        let near = at.wrapping_add(((rng.below(17) as i64 - 8) * 8) as u64);
        if (lo..hi).contains(&near) {
            return near;
        }
    }
    let p = lo + rng.below((hi - lo) / 8) * 8;
    if rng.chance(50) {
        p & !15
    } else {
        p
    }
}

/// Initial contents of the data region, shared by every test state (the
/// registers, sp among them, differ): in each 8-byte word a valid pointer
/// with probability [`POINTER_NUM`]/[`POINTER_DEN`] (see there for why),
/// else random bits, or, in one 64-byte line in four, a boundary value, so
/// loads see all three kinds.
pub fn data_pattern(seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ 0x6d65_6d6f_7279);
    memory_words(&mut rng, DATA_BASE, DATA_SIZE as usize)
}

/// The bytes behind a data symbol at `at` (`len` of them) for one test
/// state: drawn like the data region's pattern, but from the state itself,
/// so that a value loaded from a global differs from state to state as a
/// value loaded through a register does (the same for the original and the
/// candidate, which run on the same state).
pub fn symbol_data(state: &MachineState, at: u64, len: usize) -> Vec<u8> {
    let seed = state
        .x
        .iter()
        .chain([&state.sp, &state.nzcv])
        .fold(at ^ 0x7379_6d62_6f6c, |h, &v| {
            (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
        });
    memory_words(&mut SplitMix64::new(seed), at, len)
}

/// `len` bytes of memory starting at `base`, a word at a time (see
/// [`data_pattern`]).
fn memory_words(rng: &mut SplitMix64, base: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let boundary = rng.chance(25);
        for _ in 0..8 {
            let at = base + out.len() as u64;
            let w = if rng.below(POINTER_DEN) < POINTER_NUM {
                data_pointer(rng, at)
            } else if boundary {
                boundary_values(rng)
            } else {
                rng.next_u64()
            };
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocks' constants and their neighbours come up, alone and two
    /// registers at once.
    #[test]
    fn registers_take_the_blocks_constants() {
        let insns: Vec<Insn> = ["cmp w5, 47", "ccmp w7, 3, 0, ne"]
            .iter()
            .map(|t| Insn::parse(t, &Default::default()).unwrap())
            .collect();
        let roles = RegisterRoles::of(&[&insns]);
        for c in [46, 47, 48, 2, 3, 4] {
            assert!(roles.constants.contains(&c), "{c}");
        }
        let states: Vec<MachineState> = (0..1000).map(|i| generate(1, i, &roles)).collect();
        let both = states
            .iter()
            .filter(|s| s.x[5] == 47 && s.x[7] == 3)
            .count();
        assert!(both >= 3, "{both}");
    }

    #[test]
    fn deterministic_and_varied() {
        let roles = RegisterRoles {
            bases: vec![1, 2],
            indices: vec![3],
            mentioned: vec![1, 2, 3, 5, 6],
            immediates: vec![],
            constants: vec![],
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
        assert!(states.iter().filter(|s| s.x[5] == s.x[6]).count() > 3);
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

    #[test]
    fn memory_holds_pointers_and_other_values() {
        let m = data_pattern(0x7065_6570_686f_6c65);
        assert_eq!(m.len() as u64, DATA_SIZE);
        assert_eq!(m, data_pattern(0x7065_6570_686f_6c65));
        assert_ne!(m, data_pattern(1));
        let words: Vec<u64> = m
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // Valid: aligned, and far enough inside that a 32-byte access
        // (`ldp q`) at any immediate offset up to 4 KiB stays mapped.
        let valid = |w: u64| {
            w.is_multiple_of(8) && w >= DATA_BASE + 4096 && w + 4096 + 32 <= DATA_BASE + DATA_SIZE
        };
        let (ptrs, others): (Vec<u64>, Vec<u64>) = words.iter().partition(|&&w| valid(w));
        let share = ptrs.len() as f64 / words.len() as f64;
        let want = POINTER_NUM as f64 / POINTER_DEN as f64;
        assert!((share - want).abs() < 0.01, "{share}");
        // They point all over the region, and sometimes next to themselves.
        let mut distinct = ptrs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() * 3 > ptrs.len() * 2, "{}", distinct.len());
        let near = words
            .iter()
            .enumerate()
            .filter(|(i, &w)| valid(w) && w.abs_diff(DATA_BASE + 8 * *i as u64) <= 64)
            .count();
        assert!(near * 8 > ptrs.len(), "{near}");
        // The rest still has both signs in either half, zero, all ones.
        let low = |w: &u64| *w as u32 as i32;
        let high = |w: &u64| (*w >> 32) as u32 as i32;
        for (what, n) in [
            (
                "low half negative",
                others.iter().filter(|w| low(w) < 0).count(),
            ),
            (
                "low half positive",
                others.iter().filter(|w| low(w) > 0).count(),
            ),
            (
                "high half negative",
                others.iter().filter(|w| high(w) < 0).count(),
            ),
            ("zero", others.iter().filter(|&&w| w == 0).count()),
            (
                "all ones",
                others.iter().filter(|&&w| w == u64::MAX).count(),
            ),
            (
                "0x8000_0000",
                others.iter().filter(|&&w| w == 0x8000_0000).count(),
            ),
        ] {
            assert!(n > 100, "{what}: {n}");
        }
        assert!(others.iter().filter(|w| low(w) < 0).count() * 3 > others.len());
    }
}
