//! Which constants AArch64 can encode directly. Rules use these as guards so
//! that they only propose instructions the assembler will accept.

/// All-ones mask of `width` bits (`width` is 1..=64).
pub fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// `v` is encodable as a logical (bitmask) immediate of a `width`-bit
/// `and`/`orr`/`eor`/`tst`: a rotated run of ones, replicated in 2..=width
/// bit elements. All-zeros and all-ones are not encodable.
pub fn is_logical_imm(v: u64, width: u32) -> bool {
    let v = v & mask(width);
    if v == 0 || v == mask(width) {
        return false;
    }
    let mut e = width;
    // Find the smallest element size the value is a replication of.
    while e > 2 {
        let half = e / 2;
        let m = mask(half);
        if (v & m) != ((v >> half) & m) {
            break;
        }
        e = half;
    }
    let elem = v & mask(e);
    // A rotated run of ones has exactly two bit transitions around the ring.
    let rot = ((elem >> 1) | ((elem & 1) << (e - 1))) & mask(e);
    (elem ^ rot).count_ones() == 2
}

/// `v` fits one `movz` of a `width`-bit register: a single 16-bit chunk.
pub fn is_movz_imm(v: u64, width: u32) -> bool {
    let v = v & mask(width);
    (0..width).step_by(16).any(|s| v & !(0xffffu64 << s) == 0)
}

/// `v` fits one `movn`: its complement within `width` is a single chunk.
pub fn is_movn_imm(v: u64, width: u32) -> bool {
    is_movz_imm(!v & mask(width), width)
}

/// `mov Rd, #v` assembles to one instruction (movz, movn or orr).
pub fn is_mov_imm(v: u64, width: u32) -> bool {
    is_movz_imm(v, width) || is_movn_imm(v, width) || is_logical_imm(v, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_immediates() {
        assert!(is_logical_imm(0xff, 32));
        assert!(is_logical_imm(0xffff_ffff, 64));
        assert!(is_logical_imm(0x00ff_00ff_00ff_00ff, 64));
        assert!(is_logical_imm(0x5555_5555_5555_5555, 64));
        assert!(is_logical_imm(0x8000_0000_0000_0001, 64));
        assert!(is_logical_imm(0xf000_000f, 32));
        assert!(!is_logical_imm(0, 64));
        assert!(!is_logical_imm(u64::MAX, 64));
        assert!(!is_logical_imm(0xffff_ffff, 32));
        assert!(!is_logical_imm(0x1234, 64));
        assert!(!is_logical_imm(0b101, 64));
    }

    #[test]
    fn wide_moves() {
        assert!(is_movz_imm(0x1234_0000, 32));
        assert!(is_movz_imm(0x1234_0000_0000_0000, 64));
        assert!(!is_movz_imm(0x1234_5678, 64));
        assert!(is_movn_imm(0xffff_ffff_ffff_1234, 64));
        assert!(is_movn_imm(0xffff_1234, 32));
        assert!(!is_mov_imm(0x1234_5678, 32));
    }
}
