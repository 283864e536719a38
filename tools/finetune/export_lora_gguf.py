#!/usr/bin/env python3
"""Convert a peft LoRA adapter (safetensors) of a llama-architecture model into a llama.cpp LoRA GGUF.

Needs only numpy and gguf (no torch). Writes:
    general.architecture = llama, general.type = adapter, adapter.type = lora, adapter.lora.alpha
    blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>.weight.lora_a   (numpy rank x in)
    blk.N.<...>.weight.lora_b                                                        (numpy out x rank)
as f16 (or f32 with --outtype f32). gguf stores numpy shapes reversed as ggml 'ne', so lora_a has
ne = [in, rank] and lora_b ne = [rank, out]: what llama.cpp checks at load time against the base
tensor's ne = [in, out] (a.ne[0] == in, b.ne[1] == out, a.ne[1] == b.ne[0]) and what llama.cpp's
own convert_lora_to_gguf.py writes.

q/k: llama.cpp's HF->GGUF converter permutes the rows of q_proj/k_proj (rotary layout), so the
rows of lora_b for q and k are permuted the same way (heads = n_head for q, n_head_kv for k).
Since delta = B @ A, permuting the rows of B permutes the rows of the delta.

Head counts come from --base (the base GGUF, preferred: it also lets this script check every
tensor name and shape against the base, as llama.cpp will) or from --config (an HF config.json).

Example:
    python3 export_lora_gguf.py --adapter run1/adapter --base SmolLM2-135M-Instruct.Q4_1.gguf \
        --out peephole-lora.gguf
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftcommon  # noqa: E402

KEY_RE = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
    r"\.lora_([AB])(?:\.default)?\.weight$"
)


def convert(adapter_dir: str, out_path: str, base: str | None = None, config: str | None = None,
            outtype: str = "f16", name: str | None = None, log=print) -> dict:
    import gguf

    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    if acfg.get("peft_type", "LORA") != "LORA":
        raise SystemExit(f"not a LoRA adapter: peft_type={acfg.get('peft_type')}")
    for bad in ("use_rslora", "use_dora"):
        if acfg.get(bad):
            raise SystemExit(f"{bad}=true is not supported by llama.cpp's LoRA scaling (alpha/rank)")
    if acfg.get("rank_pattern") or acfg.get("alpha_pattern"):
        raise SystemExit("per-module rank_pattern/alpha_pattern is not supported (one alpha per file)")
    if acfg.get("modules_to_save"):
        raise SystemExit(f"modules_to_save={acfg['modules_to_save']} cannot be expressed as a LoRA GGUF")
    rank = int(acfg["r"])
    alpha = float(acfg["lora_alpha"])

    base_shapes = None
    if base:
        n_head, n_kv, base_shapes = ftcommon.gguf_heads(base)
        src = f"base GGUF {os.path.basename(base)}"
    elif config:
        with open(config) as f:
            c = json.load(f)
        n_head = int(c["num_attention_heads"])
        n_kv = int(c.get("num_key_value_heads") or n_head)
        src = f"config {config}"
    else:
        raise SystemExit("need --base (base GGUF) or --config (HF config.json) for the head counts")
    log(f"heads: n_head={n_head}, n_head_kv={n_kv} (from {src}); rank {rank}, alpha {alpha}")

    st = ftcommon.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for k, v in st.items():
        m = KEY_RE.match(k)
        if not m:
            raise SystemExit(f"unsupported adapter tensor {k!r} (only LoRA A/B on q,k,v,o,gate,up,down)")
        layer, mod, ab = m.groups()
        gname = f"blk.{int(layer)}.{ftcommon.HF_TO_GGUF[mod]}.weight"
        pairs.setdefault(gname, {})[ab] = v

    np_dtype = {"f16": np.float16, "f32": np.float32}[outtype]
    writer = gguf.GGUFWriter(out_path, arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_name(name or "peephole LoRA adapter")
    merge_type = ftcommon.adapter_merge_type(adapter_dir)
    if merge_type:  # trained quantization-aware: peephole merges it into the base at this type
        writer.add_string(ftcommon.GGUF_MERGE_TYPE_KEY, merge_type)

    def sort_key(n):
        blk, stem = n.split(".")[1:3]
        return int(blk), stem

    n_tensors, max_abs = 0, 0.0
    for gname in sorted(pairs, key=sort_key):
        p = pairs[gname]
        if set(p) != {"A", "B"}:
            raise SystemExit(f"{gname}: missing lora_A or lora_B")
        a, b = p["A"], p["B"]  # a: (rank, in), b: (out, rank), HF layout
        if a.shape[0] != rank or b.shape[1] != rank:
            raise SystemExit(f"{gname}: shapes {a.shape}, {b.shape} do not match rank {rank}")
        if ".attn_q." in gname:
            b = ftcommon.permute_rows(b, n_head)
        elif ".attn_k." in gname:
            b = ftcommon.permute_rows(b, n_kv)
        if base_shapes is not None:
            if gname not in base_shapes:
                raise SystemExit(f"{gname} does not exist in the base GGUF")
            ne_in, ne_out = base_shapes[gname][:2]  # ggml ne of the base weight: [in, out]
            if (a.shape[1], b.shape[0]) != (ne_in, ne_out):
                raise SystemExit(f"{gname}: lora in/out {a.shape[1]}/{b.shape[0]} != base ne {ne_in}/{ne_out}")
        for arr in (a, b):
            if not np.all(np.isfinite(arr)):
                raise SystemExit(f"{gname}: non-finite values")
            max_abs = max(max_abs, float(np.abs(arr).max()))
        writer.add_tensor(gname + ".lora_a", np.ascontiguousarray(a.astype(np_dtype)))
        writer.add_tensor(gname + ".lora_b", np.ascontiguousarray(b.astype(np_dtype)))
        n_tensors += 2
    if outtype == "f16" and max_abs > 65504:
        raise SystemExit(f"values up to {max_abs} overflow f16; use --outtype f32")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = {"out": out_path, "tensors": n_tensors, "rank": rank, "alpha": alpha, "n_head": n_head,
            "n_head_kv": n_kv, "outtype": outtype, "merge_type": merge_type, "bytes": os.path.getsize(out_path),
            "sha256": ftcommon.sha256_file(out_path), "max_abs": max_abs}
    log(f"wrote {out_path}: {n_tensors} tensors, {info['bytes']} bytes, sha256 {info['sha256']}")
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapter", required=True, help="peft adapter dir (adapter_config.json, adapter_model.safetensors)")
    p.add_argument("--out", required=True, help="output .gguf")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--base", help="base model GGUF (head counts + name/shape checks)")
    g.add_argument("--config", help="HF config.json (head counts only)")
    p.add_argument("--outtype", choices=["f16", "f32"], default="f16")
    p.add_argument("--name", default=None, help="general.name of the adapter")
    a = p.parse_args(argv)
    convert(a.adapter, a.out, a.base, a.config, a.outtype, a.name)


if __name__ == "__main__":
    main()
