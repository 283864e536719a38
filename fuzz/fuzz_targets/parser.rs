//! Any bytes: the front end either rejects them with an error or parses them,
//! splits blocks, cuts windows and re-emits them byte for byte. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peephole::asm::Source;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = Source::from_bytes("fuzz.s", data.to_vec()) {
        let funcs = peephole::cfg::functions(&src);
        let _ = peephole::pipeline::windows::windows(&funcs);
        assert_eq!(peephole::patch::source::apply(&src, &[]).as_bytes(), data);
    }
});
