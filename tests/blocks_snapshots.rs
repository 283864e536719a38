//! Snapshots of `peephole blocks` on fixture files: blocks, successors and
//! liveness, reviewed by hand once and then held fixed.

use peephole::asm::Source;
use peephole::cfg::functions;
use peephole::cli::blocks::render;
use std::path::Path;
use std::process::Command;

fn blocks_of(path: &str) -> String {
    let p = Path::new(path);
    let src = if p.extension().is_some_and(|e| e == "S") {
        let out = Command::new("aarch64-linux-gnu-gcc")
            .args(["-E", "-P", "-x", "assembler-with-cpp"])
            .arg(p)
            .output()
            .expect("aarch64-linux-gnu-gcc -E");
        Source::parse(path, String::from_utf8(out.stdout).unwrap()).unwrap()
    } else {
        Source::read(p).unwrap()
    };
    render(&functions(&src))
}

#[test]
fn flags_liveness() {
    insta::assert_snapshot!(blocks_of("fixtures/blocks/flags.s"));
}

#[test]
fn calls_clobber_caller_saved() {
    insta::assert_snapshot!(blocks_of("fixtures/blocks/calls.s"));
}

#[test]
fn loop_with_local_labels_and_aliases() {
    insta::assert_snapshot!(blocks_of("fixtures/blocks/loop_local_labels.S"));
}

#[test]
fn gcc_o0_example() {
    insta::assert_snapshot!(blocks_of("fixtures/examples/sum.s"));
}
