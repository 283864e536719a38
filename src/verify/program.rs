//! Whole-program comparison under qemu-aarch64 (filled in below).
