//! Behaviour of the cost models: orderings that any sane model must get
//! right, batching, symbols in blocks, errors, and the builtin fallback.

use peephole::asm::insn::Insn;
use peephole::cost::{cost_model, cost_model_using, BuiltinModel, Cost, CostModel, McaModel, CPUS};

fn block(text: &str) -> Vec<Insn> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Insn::parse_plain(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
        .collect()
}

/// The llvm-mca model for `cpu`, or `None` (test skipped) where llvm-mca
/// is not installed.
fn mca(cpu: &str) -> Option<McaModel> {
    for bin in ["llvm-mca-19", "llvm-mca"] {
        if let Some(m) = McaModel::new(cpu, bin).unwrap() {
            return Some(m);
        }
    }
    eprintln!("llvm-mca not installed: skipping");
    None
}

fn costs(m: &dyn CostModel, texts: &[&str]) -> Vec<Cost> {
    let blocks: Vec<Vec<Insn>> = texts.iter().map(|t| block(t)).collect();
    let refs: Vec<&[Insn]> = blocks.iter().map(|b| b.as_slice()).collect();
    m.cost_many(&refs).unwrap()
}

/// Orderings every model must get right.
fn check_orderings(m: &dyn CostModel) {
    let c = costs(
        m,
        &[
            "mov x1, #8; mul x0, x0, x1",
            "lsl x0, x0, #3",
            "mul x3, x0, x1; add x0, x3, x2",
            "madd x0, x0, x1, x2",
            "",
            "str w0, [sp, #12]; ldr w0, [sp, #12]; add w0, w0, #1",
            "str w0, [sp, #12]; add w0, w0, #1",
        ],
    );
    let name = m.name();
    assert!(
        c[0].cycles > c[1].cycles,
        "{name}: mov+mul {:?} vs lsl {:?}",
        c[0],
        c[1]
    );
    assert!(c[1].improves_on(&c[0]), "{name}");
    assert!(
        c[2].cycles >= c[3].cycles,
        "{name}: mul+add {:?} vs madd {:?}",
        c[2],
        c[3]
    );
    assert!(c[3].improves_on(&c[2]), "{name}");
    assert_eq!(c[4], Cost::ZERO, "{name}: empty block");
    assert!(
        c[6].improves_on(&c[5]),
        "{name}: store-reload {:?} vs {:?}",
        c[5],
        c[6]
    );
    assert_eq!(c[0].instructions, 2);
}

#[test]
fn mca_orders_obvious_rewrites() {
    if let Some(m) = mca("neoverse-n1") {
        check_orderings(&m);
        assert!(m.name().contains("neoverse-n1"), "{}", m.name());
    }
}

#[test]
fn builtin_orders_obvious_rewrites() {
    check_orderings(&BuiltinModel::new("neoverse-n1", "test"));
}

#[test]
fn mca_batch_equals_one_by_one() {
    let Some(batch) = mca("cortex-a55") else {
        return;
    };
    let texts = [
        "add x0, x0, #1; add x0, x0, #2",
        "ldr x1, [x0]; add x1, x1, x2; str x1, [x0], #8",
        "",
        "fmul d0, d0, d1; fadd d0, d0, d2",
        "add x0, x0, #1; add x0, x0, #2",
        "cmp w0, #3; csel w0, w1, w2, lt",
    ];
    let together = costs(&batch, &texts);
    for (t, c) in texts.iter().zip(&together) {
        // A fresh model each time: no shared memo.
        let alone = costs(&mca("cortex-a55").unwrap(), &[t]);
        assert_eq!(alone[0], *c, "{t}");
    }
    // Memoized answers are the same too.
    assert_eq!(costs(&batch, &texts), together);
}

#[test]
fn mca_accepts_symbols_and_labels() {
    let Some(m) = mca("neoverse-n1") else { return };
    let c = costs(
        &m,
        &[
            "adrp x0, foo; ldr x0, [x0, :lo12:foo]; add x1, x1, :lo12:.LC0",
            "adrp x2, :got:bar; ldr x2, [x2, :got_lo12:bar]; bl printf",
            "cmp w0, #0; b.eq .L3",
            "cbz w0, 1f",
            "tbnz x3, #63, 2b",
            "ldr x0, =0x123456789",
            "b .L7",
        ],
    );
    assert!(c.iter().all(|c| c.cycles > 0.0), "{c:?}");
}

#[test]
fn mca_pins_unreadable_block() {
    let Some(m) = mca("cortex-a55") else { return };
    // SVE is not in Cortex-A55: llvm-mca rejects the instruction.
    let good = block("add x0, x0, #1");
    let bad = block("add z0.d, z0.d, z1.d");
    let err = m.cost_many(&[&good, &bad]).unwrap_err().to_string();
    assert!(err.contains("block 1"), "{err}");
    let each = m.cost_each(&[&good, &bad, &good]);
    assert!(each[0].is_ok() && each[2].is_ok(), "{each:?}");
    assert!(each[1].is_err());
}

#[test]
fn every_listed_cpu_runs() {
    if mca("neoverse-n1").is_none() {
        return;
    }
    for cpu in CPUS {
        let m = mca(cpu).unwrap();
        let c = costs(&m, &["mov x1, #8; mul x0, x0, x1", "lsl x0, x0, #3"]);
        assert!(c[1].improves_on(&c[0]), "{cpu}: {c:?}");
    }
}

#[test]
fn unknown_cpu_lists_valid_ones() {
    let err = cost_model("pentium4").err().expect("must fail").to_string();
    assert!(
        err.contains("pentium4") && err.contains("neoverse-n1") && err.contains("apple-m1"),
        "{err}"
    );
}

#[test]
fn falls_back_to_builtin_without_mca() {
    let m = cost_model_using("cortex-a72", Some("/nonexistent/llvm-mca")).unwrap();
    assert!(
        m.name().starts_with("builtin (llvm-mca not found"),
        "{}",
        m.name()
    );
    check_orderings(m.as_ref());
}
