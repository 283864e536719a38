//! The value domain the instruction semantics are written over.
//!
//! The semantics ([`super::exec`]) are written once against this trait and
//! read several ways: with `u64` values it is a fast interpreter (the
//! superoptimizer's test evaluation), with a bit-vector solver it is a proof
//! obligation, with expression trees it is a symbolic trace. Every value is a
//! 64-bit vector; 32-bit instructions are expressed by the semantics with
//! explicit truncation and extension, so an instance needs one width only.

/// Binary operations on 64-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// High 64 bits of the unsigned 128-bit product.
    UMulH,
    /// High 64 bits of the signed 128-bit product.
    SMulH,
    /// Unsigned division as AArch64 defines it: `x / 0 == 0`.
    UDiv,
    /// Signed division as AArch64 defines it: `x / 0 == 0`,
    /// `INT64_MIN / -1 == INT64_MIN`.
    SDiv,
    And,
    Or,
    Xor,
    /// Shifts and rotates take their amount modulo 64: the semantics mask
    /// before they call, so every instance agrees on amounts of 64 and more.
    Shl,
    LShr,
    AShr,
    Ror,
}

/// Unary operations on 64-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
    /// Count leading zeros (64 for zero).
    Clz,
    /// Reverse the bit order.
    Rbit,
    /// Reverse the byte order.
    Rev,
    /// Sign-extend from the low `n` bits.
    Sext(u8),
    /// Keep the low `n` bits.
    Zext(u8),
}

/// Comparisons, giving a boolean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    /// Unsigned less-than.
    Ult,
    /// Signed less-than.
    Slt,
}

/// Why an execution stopped before the end of its block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// An access outside the memory the state holds.
    Memory { addr: u64 },
}

/// A value domain: 64-bit vectors, booleans, and byte-addressed memory.
pub trait Domain {
    type Bv: Clone;
    type Bool: Clone;

    fn lit(&mut self, v: u64) -> Self::Bv;
    fn bool_lit(&mut self, b: bool) -> Self::Bool;
    fn bin(&mut self, op: BinOp, a: &Self::Bv, b: &Self::Bv) -> Self::Bv;
    fn un(&mut self, op: UnOp, a: &Self::Bv) -> Self::Bv;
    fn cmp(&mut self, op: CmpOp, a: &Self::Bv, b: &Self::Bv) -> Self::Bool;
    fn ite(&mut self, c: &Self::Bool, t: &Self::Bv, e: &Self::Bv) -> Self::Bv;
    fn and(&mut self, a: &Self::Bool, b: &Self::Bool) -> Self::Bool;
    fn or(&mut self, a: &Self::Bool, b: &Self::Bool) -> Self::Bool;
    fn not(&mut self, a: &Self::Bool) -> Self::Bool;
    /// Bit `i` of `a`.
    fn bit(&mut self, a: &Self::Bv, i: u32) -> Self::Bool;
    /// 1 or 0.
    fn bool_to_bv(&mut self, b: &Self::Bool) -> Self::Bv;
    /// Little-endian load of `bytes` (1, 2, 4 or 8) bytes, zero-extended.
    fn load(&mut self, addr: &Self::Bv, bytes: u8) -> Result<Self::Bv, Fault>;
    /// Little-endian store of the low `bytes` bytes of `v`.
    fn store(&mut self, addr: &Self::Bv, bytes: u8, v: &Self::Bv) -> Result<(), Fault>;
}

/// The four condition flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flags<B> {
    pub n: B,
    pub z: B,
    pub c: B,
    pub v: B,
}
