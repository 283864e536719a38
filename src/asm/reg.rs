//! Register names as written in GNU-as AArch64 syntax.

use crate::semantics::Loc;
use std::fmt;

/// Which view of a register an operand names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegKind {
    /// 64-bit general register x0..x30.
    X,
    /// 32-bit general register w0..w30.
    W,
    /// Stack pointer, 64-bit.
    Sp,
    /// Stack pointer, 32-bit view.
    Wsp,
    /// Zero register, 64-bit.
    Xzr,
    /// Zero register, 32-bit.
    Wzr,
    /// SIMD&FP scalar views.
    Q,
    D,
    S,
    H,
    B,
    /// Vector register with an arrangement (`v0.4s`) or a bare `v0`.
    V,
}

/// A register operand: kind, number, and for vectors the arrangement
/// (`4s`, `16b`, `d`, ...) and an optional lane index (`v0.s[1]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    pub kind: RegKind,
    pub num: u8,
    pub arrangement: Option<String>,
    pub lane: Option<u8>,
}

impl Reg {
    pub fn new(kind: RegKind, num: u8) -> Self {
        Reg {
            kind,
            num,
            arrangement: None,
            lane: None,
        }
    }

    /// Parse a plain register name (no `.req` aliases; see `asm::operand`).
    pub fn parse(s: &str) -> Option<Reg> {
        let t = s.to_ascii_lowercase();
        let simple = |kind| Some(Reg::new(kind, 31));
        match t.as_str() {
            "sp" => return simple(RegKind::Sp),
            "wsp" => return simple(RegKind::Wsp),
            "xzr" => return simple(RegKind::Xzr),
            "wzr" => return simple(RegKind::Wzr),
            "lr" => return Some(Reg::new(RegKind::X, 30)),
            "fp" => return Some(Reg::new(RegKind::X, 29)),
            _ => {}
        }
        // Vector with arrangement and optional lane: v1.4s, v1.s[2], v1.d[0]
        if let Some(rest) = t.strip_prefix('v') {
            let (num, tail) = match rest.find('.') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            let n = parse_num(num, 31)?;
            let mut r = Reg::new(RegKind::V, n);
            if let Some(tail) = tail {
                let (arr, lane) = match tail.find('[') {
                    Some(i) => {
                        let lane = tail[i + 1..].strip_suffix(']')?.trim();
                        (&tail[..i], Some(lane.parse::<u8>().ok()?))
                    }
                    None => (tail, None),
                };
                if !is_arrangement(arr) {
                    return None;
                }
                r.arrangement = Some(arr.to_string());
                r.lane = lane;
            }
            return Some(r);
        }
        let (head, num) = t.split_at(1.min(t.len()));
        let (kind, max) = match head {
            "x" => (RegKind::X, 30),
            "w" => (RegKind::W, 30),
            "q" => (RegKind::Q, 31),
            "d" => (RegKind::D, 31),
            "s" => (RegKind::S, 31),
            "h" => (RegKind::H, 31),
            "b" => (RegKind::B, 31),
            _ => return None,
        };
        Some(Reg::new(kind, parse_num(num, max)?))
    }

    /// The architectural location this register names, if any (zero
    /// registers name none).
    pub fn loc(&self) -> Option<Loc> {
        match self.kind {
            RegKind::X | RegKind::W => Some(Loc::X(self.num)),
            RegKind::Sp | RegKind::Wsp => Some(Loc::Sp),
            RegKind::Xzr | RegKind::Wzr => None,
            _ => Some(Loc::V(self.num)),
        }
    }

    pub fn is_general(&self) -> bool {
        matches!(
            self.kind,
            RegKind::X | RegKind::W | RegKind::Sp | RegKind::Wsp | RegKind::Xzr | RegKind::Wzr
        )
    }

    pub fn is_simd(&self) -> bool {
        !self.is_general()
    }

    /// 32-bit general view (w, wsp, wzr).
    pub fn is_32bit_general(&self) -> bool {
        matches!(self.kind, RegKind::W | RegKind::Wsp | RegKind::Wzr)
    }

    /// A write through this operand changes only part of the register (a
    /// vector lane), so the old value is read too.
    pub fn is_partial_write(&self) -> bool {
        self.kind == RegKind::V && self.lane.is_some()
    }
}

fn parse_num(s: &str, max: u8) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (n <= max).then_some(n)
}

fn is_arrangement(a: &str) -> bool {
    matches!(
        a,
        "8b" | "16b"
            | "4h"
            | "8h"
            | "2s"
            | "4s"
            | "1d"
            | "2d"
            | "1q"
            | "b"
            | "h"
            | "s"
            | "d"
            | "q"
            | "2h"
            | "4b"
    )
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.num;
        match self.kind {
            RegKind::X => write!(f, "x{n}"),
            RegKind::W => write!(f, "w{n}"),
            RegKind::Sp => f.write_str("sp"),
            RegKind::Wsp => f.write_str("wsp"),
            RegKind::Xzr => f.write_str("xzr"),
            RegKind::Wzr => f.write_str("wzr"),
            RegKind::Q => write!(f, "q{n}"),
            RegKind::D => write!(f, "d{n}"),
            RegKind::S => write!(f, "s{n}"),
            RegKind::H => write!(f, "h{n}"),
            RegKind::B => write!(f, "b{n}"),
            RegKind::V => {
                write!(f, "v{n}")?;
                if let Some(a) = &self.arrangement {
                    write!(f, ".{a}")?;
                }
                if let Some(l) = self.lane {
                    write!(f, "[{l}]")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_views() {
        for s in [
            "x0", "w30", "sp", "wsp", "xzr", "wzr", "q31", "d8", "s0", "h1", "b2", "v3.4s",
            "v3.s[1]", "v31.16b", "v0",
        ] {
            let r = Reg::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(r.to_string(), s);
        }
        assert_eq!(Reg::parse("X5").unwrap().to_string(), "x5");
        assert_eq!(Reg::parse("lr").unwrap().loc(), Some(Loc::X(30)));
        for s in ["x31", "w31", "v32", "x01", "r0", "v1.3s", "eax", "x"] {
            assert!(Reg::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn locations() {
        assert_eq!(Reg::parse("w7").unwrap().loc(), Some(Loc::X(7)));
        assert_eq!(Reg::parse("wzr").unwrap().loc(), None);
        assert_eq!(Reg::parse("s9").unwrap().loc(), Some(Loc::V(9)));
        assert!(Reg::parse("v1.s[1]").unwrap().is_partial_write());
    }
}
