#!/usr/bin/env python3
"""Write the held-out prompts the GPU machine decodes for `peephole eval --answers`.

From a `peephole dataset` output directory, take test-split examples (up to
--general of the general subset and --per-subset of each augmentation subset,
in file order, so the choice is deterministic) and write one file per
evaluation row: eval-base-coc.jsonl (base model, chain-of-code prompt),
eval-ft-direct.jsonl, eval-ft-cot.jsonl, eval-ft-coc.jsonl (fine-tuned). Each
line is {"id": <example index in examples.jsonl>, "split": "test", "messages":
[... without the answer's content checked by nobody ...]}; sample.py drops a
trailing assistant turn and uses it as the reference.
"""
import argparse, json, os

STYLE_ORDER = ["chain-of-code", "direct", "chain-of-thought"]  # as `peephole dataset` writes them
ROWS = {"base-coc": "chain-of-code", "ft-direct": "direct", "ft-cot": "chain-of-thought", "ft-coc": "chain-of-code"}

def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dataset", help="directory with examples.jsonl and train.jsonl")
    p.add_argument("--out", required=True)
    p.add_argument("--general", type=int, default=150)
    p.add_argument("--per-subset", type=int, default=40)
    a = p.parse_args()
    examples = [json.loads(l) for l in open(os.path.join(a.dataset, "examples.jsonl"))]
    chats = [json.loads(l) for l in open(os.path.join(a.dataset, "train.jsonl"))]
    assert len(chats) == 3 * len(examples), "train.jsonl must hold 3 styles per example"
    taken, counts = [], {}
    for i, e in enumerate(examples):
        if e["split"] != "test":
            continue
        limit = a.general if e["subset"] == "general" else a.per_subset
        if counts.get(e["subset"], 0) < limit:
            counts[e["subset"]] = counts.get(e["subset"], 0) + 1
            taken.append(i)
    os.makedirs(a.out, exist_ok=True)
    for row, style in ROWS.items():
        with open(os.path.join(a.out, f"eval-{row}.jsonl"), "w") as f:
            for i in taken:
                chat = chats[3 * i + STYLE_ORDER.index(style)]
                assert chat["style"] == style
                f.write(json.dumps({"id": str(i), "split": "test", "messages": chat["messages"]}) + "\n")
    print(json.dumps({"examples": len(taken), "by_subset": counts}))

if __name__ == "__main__":
    main()
