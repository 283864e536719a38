#!/usr/bin/env python3
"""Greedy-decode held-out prompts with base + LoRA adapter in PyTorch.

For each record of --split (default test) the prompt is the conversation without its trailing
assistant turn, rendered with the base GGUF's chat template plus the assistant header
('<|im_start|>assistant\\n'), tokenized without BOS (the SmolLM2 GGUF has add_bos_token = false).
Decoding is greedy (argmax) in fp32 and stops at '<|im_end|>' (eos) or --max-new-tokens.

Output JSONL, one line per prompt:
    {"prompt_id": <record 'id' or 'line-N'>, "completion": <text before <|im_end|>>,
     "reference": <dataset's assistant text or null>, "stopped": "eos"|"length", "n_tokens": int}
Compare "completion" with llama.cpp's greedy output for the same prompt (base GGUF + exported LoRA
GGUF at scale 1.0) to check the export; small numeric differences (Q4_1 kernels, f16 LoRA) can make
long generations diverge late, so compare prefixes / exact-match rates rather than demand identity.

By default the LoRA weights are rounded to f16 first, as in the exported GGUF (--no-f16-round keeps
the fp32 weights). --no-adapter samples the base model alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftcommon  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="JSONL dataset (messages + split)")
    p.add_argument("--base", required=True, help="base model GGUF")
    p.add_argument("--cache", default=None, help="dequantized-base cache dir (see train.py)")
    p.add_argument("--adapter", default=None, help="peft adapter dir")
    p.add_argument("--no-adapter", action="store_true", help="sample the base model alone")
    p.add_argument("--no-f16-round", action="store_true", help="do not round LoRA weights to f16")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None, help="at most N prompts")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    if not a.adapter and not a.no_adapter:
        p.error("give --adapter DIR or --no-adapter")

    import torch

    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.time()
    model, tok, _ = ftcommon.load_base(a.base, a.cache)
    if not a.no_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, a.adapter)
        if not a.no_f16_round:
            with torch.no_grad():
                for n, prm in model.named_parameters():
                    if "lora_" in n:
                        prm.copy_(prm.half().float())
        qat = ftcommon.adapter_merge_type(a.adapter)
        if qat:  # decode what peephole decodes: the adapter merged into the base at that type
            ftcommon.use_merged_quantized_forward(model, qat)
    model.to(device).eval()

    recs = [r for r in ftcommon.read_jsonl(a.data) if r.get("split") == a.split]
    if a.limit is not None:
        recs = recs[: a.limit]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    if eos is None or eos == tok.unk_token_id:
        eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos

    items = []
    for r in recs:
        msgs, ref = ftcommon.prompt_and_reference(ftcommon.check_messages(r))
        text = ftcommon.render(tok, msgs, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        items.append((ftcommon.record_id(r), ids, ref))

    n_exact = n_ref = 0
    with open(a.out, "w") as f:
        for i in range(0, len(items), a.batch_size):
            chunk = items[i : i + a.batch_size]
            L = max(len(x[1]) for x in chunk)
            ids = torch.full((len(chunk), L), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), L), dtype=torch.long)
            for j, (_, x, _) in enumerate(chunk):  # left padding
                ids[j, L - len(x) :] = torch.tensor(x)
                att[j, L - len(x) :] = 1
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids.to(device), attention_mask=att.to(device), do_sample=False,
                    max_new_tokens=a.max_new_tokens, eos_token_id=eos, pad_token_id=pad,
                    temperature=None, top_p=None, top_k=None,
                )
            for j, (pid, _, ref) in enumerate(chunk):
                gen = out[j, L:].tolist()
                stopped = "length"
                if eos in gen:
                    gen = gen[: gen.index(eos)]
                    stopped = "eos"
                text = tok.decode(gen, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                if ref is not None:
                    n_ref += 1
                    n_exact += int(text.strip() == ref.strip())
                f.write(json.dumps({"prompt_id": pid, "completion": text, "reference": ref,
                                    "stopped": stopped, "n_tokens": len(gen)}) + "\n")
    msg = f"sample: {len(items)} prompts -> {a.out} in {time.time() - t0:.1f} s"
    if n_ref:
        msg += f"; exact match with reference {n_exact}/{n_ref}"
    print(msg, flush=True)


if __name__ == "__main__":
    main()
