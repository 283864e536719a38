#!/usr/bin/env python3
"""Balance `peephole dataset`'s train.jsonl into the file the GPU machine trains on.

Why: augmentation makes far more add-zero/self-move examples (trivial) than
store-reload (the reference study's single optimization) or compiled windows
with a rules/enumeration target, and a model trained on that mix learns the
easy patterns best. This keeps every compiled window (positives and "no
change" negatives), caps each augmentation subset, repeats the
single-optimization subset, and keeps all three prompt styles of every kept
example together (so the direct, chain-of-thought and chain-of-code rows are
trained on the same blocks). Deterministic: file order, no randomness.

    python3 tools/finetune/make_train_set.py dataset --out .device/stage2/data.jsonl.gz
"""
import argparse, collections, gzip, json, os, sys


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="directory with train.jsonl from `peephole dataset`")
    p.add_argument("--out", required=True, help="output .jsonl or .jsonl.gz")
    p.add_argument("--cap", type=int, default=1500, help="most train examples per augmentation subset")
    p.add_argument("--repeat", default="store-reload=2", help="subset=times, comma-separated")
    p.add_argument("--repeat-improving", type=int, default=1,
                   help="times each compiled window whose target is a verified improvement (the teacher's: "
                   "rules, synth, deletion) is repeated in train: the examples a 'no change' answer cannot fit")
    p.add_argument("--valid", type=int, default=120, help="most valid examples per subset")
    p.add_argument("--styles", default="", help="keep only these prompt styles (comma-separated, e.g. "
                   "`direct` for a one-style adapter as in docs/eval.md); default: all three")
    a = p.parse_args()
    repeat = {k: int(v) for k, v in (x.split("=") for x in a.repeat.split(",") if x)}
    lines = [json.loads(l) for l in open(os.path.join(a.dataset, "train.jsonl"))]
    groups = [lines[i:i + 3] for i in range(0, len(lines), 3)]  # one example, three styles
    kept, counts = [], collections.Counter()
    for g in groups:
        split, subset = g[0]["split"], g[0]["subset"]
        if split == "test":
            continue
        cap = a.valid if split == "valid" else (None if subset == "general" else a.cap)
        if cap is not None and counts[split, subset] >= cap:
            continue
        # `improves` is written by `peephole dataset` (Example::improves);
        # a train.jsonl made before it would silently repeat nothing.
        if a.repeat_improving > 1 and "improves" not in g[0]:
            sys.exit(f"{a.dataset}/train.jsonl has no 'improves' field (made by an older "
                     "`peephole dataset`): make it again to use --repeat-improving")
        improving = subset == "general" and g[0].get("improves", False)
        counts[split, subset + (" improving" if improving else "")] += 1
        times = repeat.get(subset, 1) * (a.repeat_improving if improving else 1)
        kept.extend(g * (times if split == "train" else 1))
    if a.styles:
        keep = set(a.styles.split(","))
        kept = [l for l in kept if l["style"] in keep]
    opener = gzip.open if a.out.endswith(".gz") else open
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with opener(a.out + ".tmp", "wt") as f:
        for l in kept:
            f.write(json.dumps(l) + "\n")
    os.replace(a.out + ".tmp", a.out)
    print(json.dumps({"lines": len(kept), "examples": {f"{s}/{b}": n for (s, b), n in sorted(counts.items())}}))


if __name__ == "__main__":
    main()
