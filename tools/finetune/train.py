#!/usr/bin/env python3
"""LoRA fine-tuning of the peephole proposer model (SmolLM2-135M-Instruct, read from its GGUF).

Input: JSONL, one conversation per line:
    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...],
     "split": "train"|"valid"|"test", ...other fields ignored}
Conversations are formatted with the chat template stored in the base GGUF (the one llama.cpp uses;
ChatML for SmolLM2); the loss is taken on assistant tokens only (content + '<|im_end|>').

Output (--out DIR):
    adapter/adapter_model.safetensors, adapter/adapter_config.json   peft LoRA adapter
    train_metrics.json   hyperparameters, data sizes, timings, train/valid loss curves, versions

Example:
    python3 train.py --data data.jsonl --base SmolLM2-135M-Instruct.Q4_1.gguf --out run1 \
        --steps 300 --batch-size 32 --lr 2e-4 --max-len 512
"""

from __future__ import annotations

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS; before torch
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import math
import platform
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftcommon  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="JSONL (or .jsonl.gz) dataset with messages + split")
    p.add_argument("--base", required=True, help="base model GGUF (SmolLM2-135M-Instruct.Q4_1.gguf)")
    p.add_argument("--cache", default=None, help="directory to cache the dequantized base model in")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default 2e-4)")
    p.add_argument("--max-len", type=int, default=512, help="max tokens per example; longer ones are dropped")
    p.add_argument("--warmup", type=int, default=None, help="linear warm-up steps (default: 5%% of steps)")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay floor as a fraction of --lr")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha (default 32)")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop training after this many seconds (the schedule stays that of --steps); the device "
                        "machine kills a call at 600 s and loses everything not yet written")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=50, help="valid loss every N steps (and at 0 and the end)")
    p.add_argument("--max-valid", type=int, default=1024, help="evaluate on at most N valid examples")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--no-bf16", action="store_true", help="train in fp32 (default: bf16 autocast)")
    p.add_argument("--qat", choices=ftcommon.QAT_TYPES, default=None,
                   help="quantization-aware: train for the model peephole decodes after merging the adapter "
                        "into the base at this type (the forward uses quantize(W + scale*B*A), straight-through; "
                        "the frozen base stays fp32, LoRA dropout is off); the adapter is marked so")
    p.add_argument("--attn", default="eager",
                   help="attention implementation: eager (default; bitwise reproducible runs) or sdpa "
                        "(faster, but its cuDNN/flash backward is not deterministic)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    import numpy as np
    import torch

    t_start = time.time()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    use_bf16 = not args.no_bf16
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False

    def log(msg):
        print(msg, flush=True)

    # ---- data
    records = ftcommon.read_jsonl(args.data)
    splits = {"train": [], "valid": [], "test": []}
    for r in records:
        s = r.get("split")
        if s in splits:
            splits[s].append(r)
    log(f"data: {args.data}: {len(records)} records; " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    if not splits["train"]:
        raise SystemExit("no train examples")

    # ---- base model + tokenizer
    model, tok, base_info = ftcommon.load_base(args.base, args.cache, log=log)
    t_loaded = time.time()

    def encode(recs, what):
        out, dropped, no_target = [], 0, 0
        for r in recs:
            ids, labels = ftcommon.tokenize_example(tok, ftcommon.check_messages(r), r.get("prefill", ""))
            if not any(l != -100 for l in labels):
                no_target += 1
                continue
            if len(ids) > args.max_len:
                dropped += 1
                continue
            out.append((ids, labels))
        log(f"{what}: {len(out)} examples kept, {dropped} over --max-len {args.max_len} dropped, "
            f"{no_target} without assistant turn skipped")
        return out, dropped

    train, train_dropped = encode(splits["train"], "train")
    valid, valid_dropped = encode(splits["valid"][: args.max_valid], "valid")
    t_tok = time.time()
    lens = [len(x[0]) for x in train]
    tgt = [sum(l != -100 for l in x[1]) for x in train]
    data_stats = {
        "records": len(records),
        "split_counts": {k: len(v) for k, v in splits.items()},
        "train_used": len(train), "train_dropped_too_long": train_dropped,
        "valid_used": len(valid), "valid_dropped_too_long": valid_dropped,
        "train_tokens": int(sum(lens)), "train_target_tokens": int(sum(tgt)),
        "train_len_mean": round(float(np.mean(lens)), 1), "train_len_max": int(max(lens)),
        "dataset_sha256": ftcommon.sha256_file(args.data),
    }
    log(f"train tokens {data_stats['train_tokens']} (assistant {data_stats['train_target_tokens']}), "
        f"mean len {data_stats['train_len_mean']}, max {data_stats['train_len_max']}")

    # ---- LoRA
    from peft import LoraConfig, get_peft_model

    model.config.use_cache = False
    try:
        model.set_attn_implementation(args.attn)
    except AttributeError:  # older transformers
        model.config._attn_implementation = args.attn
    if use_bf16 and not args.qat:
        model = model.to(torch.bfloat16)  # frozen base in bf16; LoRA weights stay fp32 (peft default)
    if args.qat and args.dropout:
        log(f"--qat: LoRA dropout {args.dropout} ignored (the merged weight has no separate LoRA branch)")
        args.dropout = 0.0
    # Re-seed here: loading the base consumes a varying amount of RNG (from_config initializes
    # weights before the cached ones are loaded; the GGUF path does not), and the LoRA init and
    # dropout masks must not depend on which path ran.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    lcfg = LoraConfig(
        r=args.rank, lora_alpha=args.alpha, lora_dropout=args.dropout, bias="none",
        target_modules=ftcommon.TARGET_MODULES, task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lcfg)
    if args.qat:
        # fp32 base: bf16 would blur W by more than the fine-tuning changes it before rounding.
        n_q = ftcommon.use_merged_quantized_forward(model, args.qat)
        log(f"--qat {args.qat}: {n_q} LoRA modules compute with quantize(W + scale*B*A)")
    model.to(device)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in model.parameters())
    log(f"lora: rank {args.rank}, alpha {args.alpha}, {n_train} trainable of {n_all} parameters")

    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def collate(batch):
        L = max(len(x[0]) for x in batch)
        ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
        lab = torch.full((len(batch), L), -100, dtype=torch.long)
        att = torch.zeros((len(batch), L), dtype=torch.long)
        for i, (a, b) in enumerate(batch):
            ids[i, : len(a)] = torch.tensor(a)
            lab[i, : len(b)] = torch.tensor(b)
            att[i, : len(a)] = 1
        return ids.to(device), lab.to(device), att.to(device)

    def batch_loss(ids, lab, att):
        """Sum of token losses and number of target tokens (token-weighted mean across a batch)."""
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(input_ids=ids, attention_mask=att).logits
        logits = logits[:, :-1].float()
        tgt = lab[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100, reduction="sum")
        return loss, int((tgt != -100).sum())

    @torch.no_grad()
    def evaluate():
        if not valid:
            return None
        model.eval()
        tot, n = 0.0, 0
        for i in range(0, len(valid), args.eval_batch_size):
            l, k = batch_loss(*collate(valid[i : i + args.eval_batch_size]))
            tot += float(l)
            n += k
        model.train()
        return tot / max(n, 1)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, betas=(0.9, 0.999))
    warmup = args.warmup if args.warmup is not None else max(1, int(0.05 * args.steps))

    def lr_at(step):  # step is 0-based
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

    gen = torch.Generator().manual_seed(args.seed)
    order, pos, epoch = [], 0, 0

    def next_batch():
        nonlocal order, pos, epoch
        b = []
        while len(b) < args.batch_size:
            if pos >= len(order):
                order = torch.randperm(len(train), generator=gen).tolist()
                pos = 0
                epoch += 1
            b.append(train[order[pos]])
            pos += 1
        return b

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    train_curve, valid_curve = [], []
    v0 = evaluate()
    if v0 is not None:
        valid_curve.append({"step": 0, "loss": round(v0, 5)})
        log(f"step 0 valid loss {v0:.4f}")
    model.train()
    sync()
    t_train0 = time.time()
    eval_s = 0.0
    acc_loss, acc_tok, tokens_seen = 0.0, 0, 0
    steps_done = args.steps
    for step in range(args.steps):
        if args.max_seconds is not None and time.time() - t_start > args.max_seconds:
            steps_done = step
            log(f"time budget of {args.max_seconds:.0f} s reached: stopping after {step} of {args.steps} steps")
            if valid:
                valid_curve.append({"step": step, "loss": round(evaluate(), 5)})
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        ids, lab, att = collate(next_batch())
        tokens_seen += int(att.sum())
        loss_sum, ntok = batch_loss(ids, lab, att)
        (loss_sum / max(ntok, 1)).backward()
        gnorm = torch.nn.utils.clip_grad_norm_(params, args.grad_clip) if args.grad_clip > 0 else None
        opt.step()
        opt.zero_grad(set_to_none=True)
        acc_loss += float(loss_sum.detach())
        acc_tok += ntok
        s = step + 1
        if s % args.log_every == 0 or s == args.steps:
            tl = acc_loss / max(acc_tok, 1)
            train_curve.append({"step": s, "loss": round(tl, 5), "lr": lr_at(step),
                                "grad_norm": round(float(gnorm), 4) if gnorm is not None else None})
            log(f"step {s} train loss {tl:.4f} lr {lr_at(step):.2e} epoch {epoch} "
                f"elapsed {time.time() - t_train0:.1f}s")
            acc_loss, acc_tok = 0.0, 0
        if valid and (s % args.eval_every == 0 or s == args.steps):
            te = time.time()
            v = evaluate()
            eval_s += time.time() - te
            valid_curve.append({"step": s, "loss": round(v, 5)})
            log(f"step {s} valid loss {v:.4f}")
    sync()
    train_s = time.time() - t_train0

    adir = os.path.join(args.out, "adapter")
    model.save_pretrained(adir, safe_serialization=True)
    if args.qat:
        with open(os.path.join(adir, ftcommon.MERGE_MARKER), "w") as f:
            json.dump({"merge_type": args.qat}, f)
    import peft
    import transformers

    metrics = {
        "hyperparameters": {
            "steps": args.steps, "steps_done": steps_done, "batch_size": args.batch_size, "lr": args.lr, "schedule": "linear warm-up, cosine",
            "warmup": warmup, "min_lr_ratio": args.min_lr_ratio, "weight_decay": args.weight_decay,
            "grad_clip": args.grad_clip, "max_len": args.max_len, "rank": args.rank, "alpha": args.alpha,
            "dropout": args.dropout, "target_modules": ftcommon.TARGET_MODULES, "seed": args.seed,
            "precision": ("bf16 autocast, frozen base in " + ("fp32" if args.qat else "bf16") + ", LoRA weights fp32")
            if use_bf16 else "fp32",
            "quantization_aware": args.qat,
            "optimizer": "AdamW(0.9, 0.999)", "attn_implementation": args.attn, "epochs_seen": round(steps_done * args.batch_size / len(train), 2),
        },
        "data": data_stats,
        "base": {k: v for k, v in base_info.items()},
        "trainable_params": n_train,
        "timings_s": {
            "load_base": round(t_loaded - t_start, 2), "tokenize": round(t_tok - t_loaded, 2),
            "train_total": round(train_s, 2), "train_excluding_eval": round(train_s - eval_s, 2),
            "eval": round(eval_s, 2), "wall_total": round(time.time() - t_start, 2),
            "train_tokens_per_s": round(tokens_seen / max(train_s - eval_s, 1e-9), 1),
        },
        "loss": {
            "train": train_curve, "valid": valid_curve,
            "first_train": train_curve[0]["loss"] if train_curve else None,
            "final_train": train_curve[-1]["loss"] if train_curve else None,
            "initial_valid": valid_curve[0]["loss"] if valid_curve else None,
            "final_valid": valid_curve[-1]["loss"] if valid_curve else None,
        },
        "env": {
            "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
            "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version(),
            "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
        },
        "command": " ".join(sys.argv),
    }
    with open(os.path.join(args.out, "train_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    log(f"saved adapter to {adir}; train {train_s:.1f}s; loss {metrics['loss']['first_train']} -> "
        f"{metrics['loss']['final_train']} (valid {metrics['loss']['initial_valid']} -> {metrics['loss']['final_valid']})")


if __name__ == "__main__":
    main()
