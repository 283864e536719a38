//! The committed fixture sets are complete: every C program has its
//! expected output and one assembly file per source file in every
//! compiler/level set, and the hand-written and error fixtures are present.

use std::path::Path;

const SETS: &[&str] = &[
    "gcc-O0", "gcc-O1", "gcc-O2", "gcc-Os", "clang-O0", "clang-O1", "clang-O2", "clang-Os",
];

#[test]
fn every_program_has_asm_in_every_set() {
    let c = Path::new("fixtures/c");
    let mut programs = 0;
    for e in std::fs::read_dir(c).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let sources: Vec<String> = if p.is_dir() {
            std::fs::read_dir(&p)
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|f| f.extension().is_some_and(|x| x == "c"))
                .map(|f| format!("{name}/{}.s", f.file_stem().unwrap().to_string_lossy()))
                .collect()
        } else if p.extension().is_some_and(|x| x == "c") {
            vec![format!("{name}.s")]
        } else {
            continue;
        };
        programs += 1;
        assert!(
            c.join(format!("{name}.expected")).is_file(),
            "{name}.expected"
        );
        for set in SETS {
            for s in &sources {
                let f = Path::new("fixtures/asm").join(set).join(s);
                assert!(f.is_file(), "missing {}", f.display());
            }
        }
    }
    assert!(programs >= 9, "{programs} programs");
}

#[test]
fn handwritten_and_error_fixtures_exist() {
    for f in [
        "handwritten/crlf.s",
        "handwritten/no_newline.s",
        "handwritten/glibc_strlen.S",
        "handwritten/ffmpeg_add_u8.S",
        "handwritten/dav1d_rept.S",
        "handwritten/driver.expected",
        "errors/README.md",
        "errors/empty.s",
    ] {
        assert!(Path::new("fixtures").join(f).is_file(), "{f}");
    }
    let crlf = std::fs::read("fixtures/handwritten/crlf.s").unwrap();
    assert!(crlf.windows(2).filter(|w| w == b"\r\n").count() >= 5);
    let nonl = std::fs::read("fixtures/handwritten/no_newline.s").unwrap();
    assert_ne!(nonl.last(), Some(&b'\n'));
    assert!(std::fs::read("fixtures/errors/empty.s").unwrap().is_empty());
}
