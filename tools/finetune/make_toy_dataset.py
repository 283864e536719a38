#!/usr/bin/env python3
"""Generate a toy dataset in the fine-tuning format, to test the pipeline end to end.

Task (trivially learnable): a window of AArch64 instructions in which some lines are 64-bit no-ops
(add xN, xN, #0 / sub xN, xN, #0 / mov xN, xN / orr xN, xN, xN); the answer names each dropped
no-op in a one-line comment (a stand-in for chain-of-code reasoning), then lists the rest.
Only 64-bit forms are used: 'add w0, w0, #0' is not a no-op (it zeroes the upper half).

    python3 make_toy_dataset.py --out toy.jsonl --n 300 --seed 7      # 80/10/10 train/valid/test
"""

from __future__ import annotations

import argparse
import json
import random

SYSTEM = ("You are peephole, an AArch64 superoptimizer. Rewrite the basic block into a faster "
          "equivalent sequence. Reason briefly, then give the rewritten block.")

REAL_OPS = [
    "mov {d}, {a}", "add {d}, {a}, {b}", "sub {d}, {a}, #{i}", "eor {d}, {a}, {b}", "and {d}, {a}, {b}",
    "lsl {d}, {a}, #{s}", "mul {d}, {a}, {b}", "ldr {d}, [{a}, #{o}]", "str {a}, [sp, #{o}]",
]
NOPS = ["add {r}, {r}, #0", "sub {r}, {r}, #0", "mov {r}, {r}", "orr {r}, {r}, {r}"]


def reg(rng):
    return f"x{rng.randrange(0, 16)}"


def example(rng, idx, split):
    n_real = rng.randint(1, 4)
    n_nop = rng.randint(1, 2)
    lines = []
    for _ in range(n_real):
        op = rng.choice(REAL_OPS)
        d, a, b = (f"x{n}" for n in rng.sample(range(16), 3))  # distinct: no accidental no-ops
        lines.append(("real", op.format(d=d, a=a, b=b, i=rng.randint(1, 255),
                                        s=rng.randint(1, 63), o=8 * rng.randint(0, 31))))
    for _ in range(n_nop):
        lines.insert(rng.randint(0, len(lines)), ("nop", rng.choice(NOPS).format(r=reg(rng))))
    live = sorted({reg(rng) for _ in range(2)}, key=lambda r: int(r[1:]))
    user = f"live-out: {', '.join(live)}\n" + "\n".join(x for _, x in lines)
    reasoning = "\n".join(f"// {x}: no effect, drop" for k, x in lines if k == "nop")
    answer = reasoning + "\n" + "\n".join(x for k, x in lines if k == "real")
    return {"id": f"toy-{idx:04d}", "split": split, "source": "toy",
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = random.Random(a.seed)
    n_valid = n_test = a.n // 10
    with open(a.out, "w") as f:
        for i in range(a.n):
            split = "valid" if i < n_valid else "test" if i < n_valid + n_test else "train"
            f.write(json.dumps(example(rng, i, split)) + "\n")
    print(f"wrote {a.n} examples to {a.out}")


if __name__ == "__main__":
    main()
