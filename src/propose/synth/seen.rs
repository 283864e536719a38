//! The search's table of state fingerprints already expanded.
//!
//! On length-3 searches it holds millions of fingerprints, far more than
//! the caches do, and a lookup in a general hash map was two cache misses
//! (control bytes, then the key): a quarter of the search's time. Here a
//! slot is one word (the fingerprint's high bits and the depth), so a
//! lookup is one miss, and [`Seen::prefetch`] lets the search ask for the
//! slot while it evaluates the next candidates.

/// Low bits of a slot holding the depth (plus one; an empty slot is 0).
const DEPTH_BITS: u32 = 4;
const DEPTH_MASK: u64 = (1 << DEPTH_BITS) - 1;

/// Fingerprints with the smallest depth each was reached at; open
/// addressing, linear probing, at most half full.
pub struct Seen {
    slots: Vec<u64>,
    /// log2 of the slot count.
    bits: u32,
    len: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Self::with_bits(12)
    }
}

impl Seen {
    fn with_bits(bits: u32) -> Self {
        Seen {
            slots: vec![0; 1 << bits],
            bits,
            len: 0,
        }
    }

    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }

    /// The home slot: the fingerprint's top bits (its low bits are
    /// replaced by the depth, so they must not choose the slot).
    #[inline]
    fn home(&self, fp: u64) -> usize {
        (fp >> (64 - self.bits)) as usize
    }

    /// Ask the memory system for `fp`'s slot ahead of [`Seen::visit`].
    #[inline]
    pub fn prefetch(&self, fp: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.slots.as_ptr().wrapping_add(self.home(fp));
            // SAFETY: a prefetch is a hint; it never faults or changes memory.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = fp;
    }

    /// Record that a state with fingerprint `fp` was reached at `depth`.
    /// True when it is new, or was only reached deeper before (so it is
    /// worth expanding again, with more instructions left).
    pub fn visit(&mut self, fp: u64, depth: usize) -> bool {
        assert!(
            (depth as u64) < DEPTH_MASK,
            "search depth {depth} too large"
        );
        let tag = fp & !DEPTH_MASK;
        let slot = tag | (depth as u64 + 1);
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        loop {
            let s = self.slots[i];
            if s == 0 {
                self.slots[i] = slot;
                self.len += 1;
                if 2 * self.len > self.slots.len() {
                    self.grow();
                }
                return true;
            }
            if s & !DEPTH_MASK == tag {
                if s & DEPTH_MASK <= depth as u64 + 1 {
                    return false;
                }
                self.slots[i] = slot;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        *self = Self::with_bits(self.bits + 1);
        for s in old.into_iter().filter(|&s| s != 0) {
            let mask = self.slots.len() - 1;
            let mut i = self.home(s);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_fresh_once_per_depth_and_growth_keeps_it() {
        let mut s = Seen::default();
        let fps: Vec<u64> = (1..20_000u64)
            .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for &fp in &fps {
            assert!(s.visit(fp, 2));
        }
        for &fp in &fps {
            assert!(!s.visit(fp, 2), "seen at the same depth");
            assert!(!s.visit(fp, 3), "seen at a smaller depth");
        }
        assert!(
            s.visit(fps[7], 1),
            "reached at a smaller depth: expand again"
        );
        assert!(!s.visit(fps[7], 2));
        s.clear();
        assert!(s.visit(fps[7], 2));
    }
}
