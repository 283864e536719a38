//! Fuzz the ELF reader and renderer: any bytes must give a result or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peephole::elf::{render, Binary};

fuzz_target!(|data: &[u8]| {
    if let Ok(bin) = Binary::from_bytes(data.to_vec()) {
        let _ = render(&bin);
    }
});
