//! Architectural locations a block can read or write, and sets of them.
//!
//! Liveness, the validator's live-out comparison and the proposers all speak in
//! these terms, so they are defined once here. Granularity is deliberately
//! coarse: a `w` write zeroes the upper half of its `x` register, and an `s`/`d`
//! write zeroes the rest of its `v` register, so whole registers are the right
//! unit. Memory is one location: we never prove two addresses distinct.

use std::fmt;
use std::str::FromStr;

/// One observable piece of machine state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loc {
    /// General register x0..x30 (w-views map here too).
    X(u8),
    /// The stack pointer (sp / wsp).
    Sp,
    /// SIMD/FP register v0..v31 (q/d/s/h/b views map here too).
    V(u8),
    /// The condition flags N, Z, C, V.
    Nzcv,
    /// All of memory.
    Mem,
}

impl Loc {
    fn bit(self) -> u32 {
        match self {
            Loc::X(n) => n as u32,
            Loc::Sp => 31,
            Loc::V(n) => 32 + n as u32,
            Loc::Nzcv => 64,
            Loc::Mem => 65,
        }
    }

    fn from_bit(b: u32) -> Loc {
        match b {
            0..=30 => Loc::X(b as u8),
            31 => Loc::Sp,
            32..=63 => Loc::V((b - 32) as u8),
            64 => Loc::Nzcv,
            _ => Loc::Mem,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::X(n) => write!(f, "x{n}"),
            Loc::Sp => f.write_str("sp"),
            Loc::V(n) => write!(f, "v{n}"),
            Loc::Nzcv => f.write_str("nzcv"),
            Loc::Mem => f.write_str("mem"),
        }
    }
}

impl FromStr for Loc {
    type Err = String;
    /// Accepts any register view (`w3`, `x3`, `q7`, `d7`, `s7`, `v7`, `sp`,
    /// `wsp`), `nzcv` (or `flags`) and `mem`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "sp" | "wsp" => return Ok(Loc::Sp),
            "nzcv" | "flags" => return Ok(Loc::Nzcv),
            "mem" | "memory" => return Ok(Loc::Mem),
            "lr" => return Ok(Loc::X(30)),
            "fp" => return Ok(Loc::X(29)),
            _ => {}
        }
        let head_len = t.chars().next().map_or(0, char::len_utf8);
        let (head, num) = t.split_at(head_len);
        let n: u8 = num
            .parse()
            .map_err(|_| format!("unknown register or flag `{s}`"))?;
        match head {
            "x" | "w" if n <= 30 => Ok(Loc::X(n)),
            "v" | "q" | "d" | "s" | "h" | "b" if n <= 31 => Ok(Loc::V(n)),
            _ => Err(format!("unknown register or flag `{s}`")),
        }
    }
}

/// A set of [`Loc`]s as a bitset: liveness runs a fixed point over these, so
/// union and difference must be cheap.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LocSet(u128);

impl LocSet {
    pub const EMPTY: LocSet = LocSet(0);
    /// Every location.
    pub const ALL: LocSet = LocSet((1u128 << 66) - 1);

    pub fn single(l: Loc) -> Self {
        LocSet(1u128 << l.bit())
    }
    pub fn insert(&mut self, l: Loc) {
        self.0 |= 1u128 << l.bit();
    }
    pub fn remove(&mut self, l: Loc) {
        self.0 &= !(1u128 << l.bit());
    }
    pub fn contains(&self, l: Loc) -> bool {
        self.0 & (1u128 << l.bit()) != 0
    }
    pub fn union(self, o: LocSet) -> LocSet {
        LocSet(self.0 | o.0)
    }
    pub fn minus(self, o: LocSet) -> LocSet {
        LocSet(self.0 & !o.0)
    }
    pub fn intersect(self, o: LocSet) -> LocSet {
        LocSet(self.0 & o.0)
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    pub fn is_subset(&self, o: LocSet) -> bool {
        self.0 & !o.0 == 0
    }
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn iter(&self) -> impl Iterator<Item = Loc> + '_ {
        let bits = self.0;
        (0..66u32)
            .filter(move |b| bits & (1u128 << b) != 0)
            .map(Loc::from_bit)
    }
    /// x-registers `lo..=hi`.
    pub fn x_range(lo: u8, hi: u8) -> Self {
        (lo..=hi).map(Loc::X).collect()
    }
    /// v-registers `lo..=hi`.
    pub fn v_range(lo: u8, hi: u8) -> Self {
        (lo..=hi).map(Loc::V).collect()
    }

    /// Parse a comma-separated list such as `x0,x2,sp,v1,nzcv`.
    pub fn parse_list(s: &str) -> Result<Self, String> {
        let mut set = LocSet::EMPTY;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('-') {
                Some((a, b)) => match (a.parse()?, b.parse()?) {
                    (Loc::X(i), Loc::X(j)) if i <= j => set = set.union(Self::x_range(i, j)),
                    (Loc::V(i), Loc::V(j)) if i <= j => set = set.union(Self::v_range(i, j)),
                    _ => return Err(format!("bad register range `{part}`")),
                },
                None => set.insert(part.parse()?),
            }
        }
        Ok(set)
    }

    /// What the caller can observe after `ret` (AAPCS64): results in x0-x7 and
    /// v0-v7, callee-saved x19-x29 and d8-d15, sp, the return address, memory.
    pub fn at_return() -> Self {
        Self::x_range(0, 7)
            .union(Self::x_range(19, 30))
            .union(Self::v_range(0, 15))
            .union([Loc::Sp, Loc::Mem].into_iter().collect())
    }

    /// What a called function may read (AAPCS64 arguments, indirect-result
    /// register x8, sp, memory). The callee-saved registers are read too in the
    /// sense that the callee must preserve them, which keeps them live.
    pub fn call_reads() -> Self {
        Self::x_range(0, 8)
            .union(Self::x_range(19, 29))
            .union(Self::v_range(0, 15))
            .union([Loc::Sp, Loc::Mem].into_iter().collect())
    }

    /// What a called function may clobber (AAPCS64 caller-saved state).
    pub fn call_clobbers() -> Self {
        Self::x_range(0, 18)
            .union(LocSet::single(Loc::X(30)))
            .union(Self::v_range(0, 7))
            .union(Self::v_range(16, 31))
            .union(LocSet::single(Loc::Nzcv))
    }
}

impl FromIterator<Loc> for LocSet {
    fn from_iter<I: IntoIterator<Item = Loc>>(it: I) -> Self {
        let mut s = LocSet::EMPTY;
        for l in it {
            s.insert(l);
        }
        s
    }
}

impl fmt::Debug for LocSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl fmt::Display for LocSet {
    /// Compact form with ranges: `x0-x7,x19-x30,sp,v0-v15,mem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let run = |prefix: &str, nums: Vec<u8>, parts: &mut Vec<String>| {
            let mut i = 0;
            while i < nums.len() {
                let mut j = i;
                while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                    j += 1;
                }
                if j >= i + 2 {
                    parts.push(format!("{prefix}{}-{prefix}{}", nums[i], nums[j]));
                } else {
                    for n in &nums[i..=j] {
                        parts.push(format!("{prefix}{n}"));
                    }
                }
                i = j + 1;
            }
        };
        let xs = self
            .iter()
            .filter_map(|l| if let Loc::X(n) = l { Some(n) } else { None })
            .collect();
        run("x", xs, &mut parts);
        if self.contains(Loc::Sp) {
            parts.push("sp".into());
        }
        let vs = self
            .iter()
            .filter_map(|l| if let Loc::V(n) = l { Some(n) } else { None })
            .collect();
        run("v", vs, &mut parts);
        for l in [Loc::Nzcv, Loc::Mem] {
            if self.contains(l) {
                parts.push(l.to_string());
            }
        }
        f.write_str(&parts.join(","))
    }
}

impl serde::Serialize for LocSet {
    /// Serialized in the compact text form, e.g. `"x0-x7,sp,nzcv"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_register_views_to_whole_registers() {
        let s = LocSet::parse_list("w3, x3,q7,d7, sp,nzcv").unwrap();
        assert_eq!(s.to_string(), "x3,sp,v7,nzcv");
        assert!(LocSet::parse_list("x31").is_err());
        assert!(LocSet::parse_list("r0").is_err());
        let r = LocSet::parse_list("x0-x7,x19-x30,sp,v0-v15,mem").unwrap();
        assert_eq!(r, LocSet::at_return());
        assert_eq!(r.to_string(), "x0-x7,x19-x30,sp,v0-v15,mem");
        assert_eq!(
            LocSet::parse_list(&LocSet::ALL.to_string()).unwrap(),
            LocSet::ALL
        );
        assert_eq!(
            LocSet::parse_list("x1,x2,x4").unwrap().to_string(),
            "x1,x2,x4"
        );
    }

    #[test]
    fn set_algebra() {
        let a = LocSet::x_range(0, 3);
        let b = LocSet::x_range(2, 5);
        assert_eq!(a.intersect(b), LocSet::x_range(2, 3));
        assert_eq!(a.minus(b), LocSet::x_range(0, 1));
        assert_eq!(a.union(b).len(), 6);
        assert_eq!(LocSet::ALL.len(), 66);
    }
}
