//! ELF binaries: load, render, parse, CFG, round trip through GNU as, patch
//! in place and run under qemu; bad inputs are one clear error.
//!
//! Needs aarch64-linux-gnu-gcc/as, clang and qemu-aarch64 (tools/setup).

use peephole::asm::{Insn, StmtKind};
use peephole::cfg::functions;
use peephole::elf::{self, Binary, ElfError, Rendered};
use peephole::patch::source::Edit;
use peephole::pipeline::windows::windows;
use peephole::semantics::{effects, Flow};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/elf");

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixture builds, made once per test run in a temporary directory.
struct Builds {
    _dir: tempfile::TempDir,
    bins: Vec<(String, PathBuf)>,
}

fn builds() -> &'static Builds {
    static B: OnceLock<Builds> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let prog = Path::new(FIX).join("prog.c");
        let twice = Path::new(FIX).join("twice.S");
        let gcc = "aarch64-linux-gnu-gcc";
        let mut bins = Vec::new();
        for opt in ["-O0", "-O2"] {
            // clang compiles, the cross gcc drives the link (crt files, libc).
            let clang_o = d.join(format!("prog-clang{opt}.o"));
            run(Command::new("clang")
                .args([
                    "--target=aarch64-linux-gnu",
                    "-fno-addrsig",
                    opt,
                    "-c",
                    "-o",
                ])
                .arg(&clang_o)
                .arg(&prog));
            for link in ["dyn", "static"] {
                let extra: &[&str] = if link == "static" { &["-static"] } else { &[] };
                // One static build is enough to cover libc's code.
                if link == "static" && opt == "-O2" {
                    continue;
                }
                let g = d.join(format!("gcc{opt}-{link}"));
                run(Command::new(gcc)
                    .arg(opt)
                    .args(extra)
                    .arg("-o")
                    .arg(&g)
                    .arg(&prog)
                    .arg(&twice));
                bins.push((format!("gcc{opt}-{link}"), g));
                if link == "dyn" {
                    let c = d.join(format!("clang{opt}-{link}"));
                    run(Command::new(gcc)
                        .arg("-o")
                        .arg(&c)
                        .arg(&clang_o)
                        .arg(&twice));
                    bins.push((format!("clang{opt}-{link}"), c));
                }
            }
            bins.push((format!("clang{opt}.o"), clang_o));
        }
        let pie = d.join("gcc-O2-pie");
        run(Command::new(gcc)
            .args(["-O2", "-fPIE", "-pie", "-o"])
            .arg(&pie)
            .arg(&prog)
            .arg(&twice));
        bins.push(("gcc-O2-pie".into(), pie));
        let so = d.join("libprog.so");
        run(Command::new(gcc)
            .args(["-O2", "-fPIC", "-shared", "-o"])
            .arg(&so)
            .arg(&prog)
            .arg(&twice));
        bins.push(("libprog.so".into(), so));
        let o = d.join("prog-gcc-O2.o");
        run(Command::new(gcc)
            .args(["-O2", "-c", "-o"])
            .arg(&o)
            .arg(&prog));
        bins.push(("prog-gcc-O2.o".into(), o));
        Builds { _dir: dir, bins }
    })
}

/// Every fixture loaded and rendered, once per test run.
fn all_rendered() -> &'static Vec<(String, PathBuf, Binary, Rendered)> {
    static R: OnceLock<Vec<(String, PathBuf, Binary, Rendered)>> = OnceLock::new();
    R.get_or_init(|| {
        builds()
            .bins
            .iter()
            .map(|(name, path)| {
                let bin = Binary::load(path).unwrap_or_else(|e| panic!("{name}: {e}"));
                let r = elf::render(&bin).unwrap_or_else(|e| panic!("{name}: {e:#}"));
                (name.clone(), path.clone(), bin, r)
            })
            .collect()
    })
}

fn rendered(name: &str) -> (&'static Path, &'static Binary, &'static Rendered) {
    let (_, p, b, r) = all_rendered().iter().find(|x| x.0 == name).unwrap();
    (p, b, r)
}

fn qemu(path: &Path) -> String {
    let out = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(path)
        .output()
        .expect("qemu-aarch64");
    assert!(out.status.success(), "{} failed", path.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn renders_parses_and_builds_cfg_for_every_fixture() {
    for (name, _, bin, r) in all_rendered() {
        // The text parses again from scratch, and the CFG and windows build.
        let again = peephole::asm::Source::parse("again", r.source.text.clone()).unwrap();
        assert_eq!(again.stmts.len(), r.source.stmts.len());
        let fs = functions(&r.source);
        let sites = windows(&fs);
        assert!(fs.iter().any(|f| f.name == "main"), "{name}: no main");
        // Every code word is one statement, at consecutive addresses.
        let code_bytes: u64 = bin.sections.iter().map(|s| s.size).sum();
        assert!(r.addr_of_stmt.len() as u64 >= code_bytes / 4, "{name}");
        // Branches and PC-relative instructions are frozen.
        for (i, st) in r.source.stmts.iter().enumerate() {
            if let StmtKind::Insn(insn) = &st.kind {
                assert!(
                    r.addr_of_stmt.contains_key(&i),
                    "{name}: {insn} has no address"
                );
                let m = insn.mnemonic.as_str();
                if matches!(effects(insn).flow, Flow::Branch { .. })
                    || matches!(m, "adr" | "adrp" | "ret" | "br" | "blr" | "bl")
                    || (m == "stp" && insn.to_string().contains("x29, x30, [sp, #-"))
                {
                    assert!(r.frozen.contains(&i), "{name}: {insn} is not frozen");
                }
            }
        }
        // twice.S's literal pool decodes as `add x0, x0, x0` but is data.
        if let Some(m) = bin.symbols.iter().find(|s| s.name == "magic") {
            let pool = (m.addr + 8 + 7) & !7;
            for a in [pool, pool + 4] {
                let (i, _) = r.addr_of_stmt.iter().find(|(_, &x)| x == a).unwrap();
                assert!(
                    matches!(&r.source.stmts[*i].kind, StmtKind::Directive { name, .. } if name == ".word"),
                    "{name}: pool at {a:#x} is not data"
                );
                assert!(r.frozen.contains(i));
            }
        }
        eprintln!(
            "{name}: {} functions, {} windows, {:?}, {} frozen of {} statements",
            fs.len(),
            sites.len(),
            r.stats,
            r.frozen.len(),
            r.addr_of_stmt.len()
        );
        assert!(r.stats.insns > 0);
    }
}

/// Independent of render's own check: every non-frozen instruction's
/// canonical text assembles to exactly the word at its address.
#[test]
fn rendered_instructions_reassemble_to_the_same_bytes() {
    for (name, _, bin, r) in all_rendered() {
        let mut lines = Vec::new();
        let mut words = Vec::new();
        for (i, st) in r.source.stmts.iter().enumerate() {
            if let (StmtKind::Insn(insn), false) = (&st.kind, r.frozen.contains(&i)) {
                lines.push(insn.to_string());
                words.push(bin.word_at(r.addr_of_stmt[&i]).unwrap());
            }
        }
        let got = match elf::gas::assemble(&lines).unwrap() {
            elf::gas::Assembled::Words(w) => w,
            elf::gas::Assembled::Rejected(b) => panic!("{name}: rejected {b:?}"),
        };
        for k in 0..lines.len() {
            assert_eq!(got[k], words[k], "{name}: `{}`", lines[k]);
        }
    }
}

fn find_twice(r: &Rendered) -> usize {
    let add0 = Insn::parse_plain("add x0, x0, #0").unwrap();
    let double = Insn::parse_plain("add x0, x0, x0").unwrap();
    let s = &r.source.stmts;
    (0..s.len() - 1)
        .find(|&i| {
            matches!(&s[i].kind, StmtKind::Insn(x) if *x == add0)
                && matches!(&s[i + 1].kind, StmtKind::Insn(x) if *x == double)
        })
        .expect("twice's add x0, x0, #0")
}

#[test]
fn patch_changes_only_the_window_and_still_runs() {
    for name in ["gcc-O2-dyn", "gcc-O0-static", "gcc-O2-pie"] {
        let (path, bin, r) = rendered(name);
        let i = find_twice(r);
        let addr = r.addr_of_stmt[&i];
        let expected = qemu(path);
        for (stmts, repl, changed) in [
            // Delete the no-op: one nop.
            (vec![i], vec![], 1),
            // Two instructions into one: `lsl x0, x0, #1` and a nop.
            (vec![i, i + 1], vec!["lsl x0, x0, #1"], 2),
        ] {
            let edit = Edit {
                stmts,
                replacement: repl.iter().map(|t| Insn::parse_plain(t).unwrap()).collect(),
            };
            let out = elf::patch(bin, r, &[edit]).unwrap();
            let diff: Vec<usize> = (0..out.len()).filter(|&k| out[k] != bin.bytes[k]).collect();
            let off = bin.offset_of(addr).unwrap();
            assert!(!diff.is_empty());
            assert!(
                diff.iter().all(|&k| k >= off && k < off + 4 * changed),
                "{name}: {diff:?}"
            );
            let end = off + 4 * changed;
            assert_eq!(out[end - 4..end], elf::patch::NOP.to_le_bytes());
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("patched");
            elf::write_output(bin, &p, &out).unwrap();
            assert_eq!(qemu(&p), expected, "{name}");
        }
    }
}

#[test]
fn patch_refuses_frozen_growing_and_pc_relative_rewrites() {
    let (_, bin, r) = rendered("gcc-O2-dyn");
    let i = find_twice(r);
    let nop = || Insn::parse_plain("nop").unwrap();
    // `ret` two after the no-op is frozen.
    let e = Edit {
        stmts: vec![i + 2],
        replacement: vec![],
    };
    let err = elf::patch(bin, r, &[e]).unwrap_err().to_string();
    assert!(err.contains("frozen"), "{err}");
    let e = Edit {
        stmts: vec![i],
        replacement: vec![nop(), nop()],
    };
    assert!(elf::patch(bin, r, &[e])
        .unwrap_err()
        .to_string()
        .contains("fit"));
    let e = Edit {
        stmts: vec![i],
        replacement: vec![Insn::parse_plain("b .Lx0").unwrap()],
    };
    assert!(elf::patch(bin, r, &[e]).is_err());
    let e = Edit {
        stmts: vec![i],
        replacement: vec![Insn::parse_plain("ldr x0, =0x12345678").unwrap()],
    };
    assert!(elf::patch(bin, r, &[e]).is_err());
    // Overlapping edits.
    let e = || Edit {
        stmts: vec![i],
        replacement: vec![],
    };
    assert!(elf::patch(bin, r, &[e(), e()])
        .unwrap_err()
        .to_string()
        .contains("overlap"));
}

fn load_err(bytes: Vec<u8>) -> ElfError {
    Binary::from_bytes(bytes).unwrap_err()
}

#[test]
fn bad_inputs_are_clear_errors() {
    let ls = std::fs::read("/bin/ls").unwrap();
    assert!(matches!(
        load_err(ls.clone()),
        ElfError::WrongMachine(62, "x86-64")
    ));
    let (path, _, _) = rendered("gcc-O2-dyn");
    let good = std::fs::read(path).unwrap();
    let mut be = good.clone();
    be[5] = 2;
    assert!(matches!(load_err(be), ElfError::BigEndian));
    let mut c32 = good.clone();
    c32[4] = 1;
    assert!(matches!(load_err(c32), ElfError::Not64Bit));
    assert!(matches!(
        load_err(b"\x7fELF".to_vec()),
        ElfError::Corrupt(_)
    ));
    assert!(matches!(load_err(vec![]), ElfError::NotElf));
    assert!(matches!(load_err(b"hello".to_vec()), ElfError::NotElf));
    // Truncations: every one is an error or a readable prefix, never a panic.
    for cut in [64, 100, 1000, good.len() / 2, good.len() - 1] {
        let t = good[..cut].to_vec();
        if let Ok(b) = Binary::from_bytes(t) {
            let _ = elf::render(&b);
        }
    }
    assert!(Binary::from_bytes(good[..good.len() / 2].to_vec()).is_err());
    // Random bytes behind an AArch64 ELF identification.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = good[..20].to_vec();
    for _ in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rnd.push(x as u8);
    }
    let _ = Binary::from_bytes(rnd).map(|b| elf::render(&b));
    assert!(!elf::is_elf(&[0x7f, b'E']));
    let d = tempfile::tempdir().unwrap();
    let e = Binary::load(&d.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

/// Render other binaries (e.g. from tools/try-debian-binaries.sh) and print
/// what happened: `PEEPHOLE_ELF_TRIAL=a:b cargo test --test elf trial -- --ignored --nocapture`.
#[test]
#[ignore]
fn trial_render_external_binaries() {
    let list = std::env::var("PEEPHOLE_ELF_TRIAL").unwrap_or_default();
    for p in list.split(':').filter(|p| !p.is_empty()) {
        let bin = Binary::load(Path::new(p)).unwrap();
        let r = elf::render(&bin).unwrap();
        let fs = functions(&r.source);
        let sites = windows(&fs);
        let free = r
            .addr_of_stmt
            .keys()
            .filter(|i| !r.frozen.contains(i))
            .count();
        eprintln!(
            "{p}: {:?}, {} fdes, {} functions, {} windows, {} free of {} statements; {:?}",
            bin.kind,
            bin.fde_ranges.len(),
            fs.len(),
            sites.len(),
            free,
            r.addr_of_stmt.len(),
            r.stats
        );
    }
}
