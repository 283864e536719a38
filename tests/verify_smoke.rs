use peephole::asm::Insn;
use peephole::semantics::LocSet;
use peephole::verify::{Verdict, Verifier, VerifyConfig};

fn block(s: &str) -> Vec<Insn> {
    s.split(';')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Insn::parse_plain(l).unwrap())
        .collect()
}

fn check(o: &str, c: &str, live: &str) -> Verdict {
    let v = Verifier::new(VerifyConfig::default()).unwrap();
    v.check(&block(o), &block(c), LocSet::parse_list(live).unwrap())
}

#[test]
fn smoke() {
    for (o, c, live) in [
        ("add x0, x1, #1", "add x0, x1, #1", "x0"),
        ("add x0, x1, #1", "add x0, x1, #2", "x0"),
        ("mov w0, w1", "mov x0, x1", "x0"),
        (
            "ldr x0, [x1]; add x0, x0, #1; str x0, [x1]",
            "ldr x2, [x1]; add x0, x2, #1; str x0, [x1]",
            "x0",
        ),
        ("cmp x0, #0; b.eq .L3", "cbz x0, .L3", ""),
        ("cmp x0, #0; b.eq .L3", "cbnz x0, .L3", ""),
        ("adrp x0, foo; ldr x0, [x0, :lo12:foo]", "ldr x0, foo", "x0"),
        ("adrp x0, foo; add x0, x0, :lo12:foo", "ldr x0, =foo", "x0"),
        ("svc #0", "nop", "x0"),
        ("add x0, x1, #1", "frob x0", "x0"),
        ("fadd d0, d1, d2", "fadd d0, d2, d1", "v0"),
    ] {
        println!("{o} => {c} [{live}]: {:?}", check(o, c, live));
    }
}
