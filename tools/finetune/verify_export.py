#!/usr/bin/env python3
"""Read an exported LoRA GGUF back and check it the way llama.cpp will load it.

Structural checks (numpy + gguf only):
  * metadata: general.architecture == llama, general.type == adapter, adapter.type == lora,
    adapter.lora.alpha present;
  * every tensor is '<base name>.lora_a' / '.lora_b', in pairs, F16 (or F32), and <base name> exists
    in the base GGUF; shapes obey llama.cpp's load-time rules
    (a.ne[0] == base.ne[0], b.ne[1] == base.ne[1], a.ne[1] == b.ne[0] == rank).
With --adapter (the peft adapter the GGUF came from), also numeric checks:
  * every lora_a/lora_b equals the adapter's A/B (q/k lora_b with permuted rows) to f16 precision;
  * with --numeric-base (needs torch + transformers): the dequantized base GGUF's q/k weights equal
    the permuted q/k weights of the HF model that training used (transformers un-permutes them when
    it loads the GGUF) -- i.e. the permutation applied to lora_b is the one the base file uses -- and
    W_gguf + scale * B'A' == permute(W_hf + scale * B A) for every q/k.
Writes a JSON report (--report) and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftcommon  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gguf", help="exported LoRA GGUF")
    p.add_argument("--base", required=True, help="base model GGUF")
    p.add_argument("--adapter", help="peft adapter dir it was exported from (numeric checks)")
    p.add_argument("--numeric-base", action="store_true", help="also compare with the base weights (torch)")
    p.add_argument("--cache", default=None, help="dequantized-base cache dir (see train.py)")
    p.add_argument("--report", default=None, help="write a JSON report here")
    a = p.parse_args(argv)

    import gguf

    fails: list[str] = []
    rep: dict = {"file": os.path.basename(a.gguf), "bytes": os.path.getsize(a.gguf),
                 "sha256": ftcommon.sha256_file(a.gguf)}

    r = gguf.GGUFReader(a.gguf)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        try:
            meta[k] = f.contents()
        except Exception:  # noqa: BLE001
            meta[k] = "?"
    rep["metadata"] = meta
    want = {"general.architecture": "llama", "general.type": "adapter", "adapter.type": "lora"}
    for k, v in want.items():
        if meta.get(k) != v:
            fails.append(f"metadata {k} = {meta.get(k)!r}, want {v!r}")
    if not isinstance(meta.get("adapter.lora.alpha"), float):
        fails.append("adapter.lora.alpha missing")
    alpha = float(meta.get("adapter.lora.alpha", 0))

    n_head, n_kv, base_shapes = ftcommon.gguf_heads(a.base)
    tensors = {t.name: t for t in r.tensors}
    rep["tensor_count"] = len(tensors)
    rep["tensors_sample"] = [
        {"name": t.name, "ne": [int(x) for x in t.shape], "type": t.tensor_type.name} for t in r.tensors[:14]
    ]
    pairs: dict[str, dict[str, object]] = {}
    for name, t in tensors.items():
        if t.tensor_type.name not in ("F16", "F32"):
            fails.append(f"{name}: type {t.tensor_type.name}")
        if name.endswith(".lora_a"):
            pairs.setdefault(name[: -len(".lora_a")], {})["a"] = t
        elif name.endswith(".lora_b"):
            pairs.setdefault(name[: -len(".lora_b")], {})["b"] = t
        else:
            fails.append(f"{name}: unexpected suffix (llama.cpp throws)")
    ranks = set()
    stems = {}
    for base_name, ab in pairs.items():
        if set(ab) != {"a", "b"}:
            fails.append(f"{base_name}: lora_a/lora_b pair incomplete")
            continue
        if base_name not in base_shapes:
            fails.append(f"{base_name}: not in base model")
            continue
        bne = base_shapes[base_name]
        ane = [int(x) for x in ab["a"].shape]
        bbne = [int(x) for x in ab["b"].shape]
        if ane[0] != bne[0] or bbne[1] != bne[1]:
            fails.append(f"{base_name}: incorrect shape a.ne={ane} b.ne={bbne} base.ne={bne}")
        if ane[1] != bbne[0]:
            fails.append(f"{base_name}: lora_a not transposed a.ne={ane} b.ne={bbne}")
        ranks.add(ane[1])
        stem = base_name.split(".")[2]
        stems[stem] = stems.get(stem, 0) + 1
    rep["pairs"] = len(pairs)
    rep["pairs_per_module"] = stems
    rep["ranks"] = sorted(ranks)
    rep["llama_cpp_scale"] = alpha / min(ranks) if ranks else None
    expect_layers = max(int(n.split(".")[1]) for n in base_shapes if n.startswith("blk.")) + 1
    for stem in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        if stems.get(stem, 0) != expect_layers:
            fails.append(f"{stem}: {stems.get(stem, 0)} layers, want {expect_layers}")

    def arr(t):  # numpy view in gguf's numpy order: (ne[1], ne[0]) == (rows, cols)
        return np.asarray(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)])

    if a.adapter:
        st = ftcommon.read_safetensors(os.path.join(a.adapter, "adapter_model.safetensors"))
        inv = {v: k for k, v in ftcommon.HF_TO_GGUF.items()}
        worst = 0.0
        for base_name, ab in pairs.items():
            _, layer, stem, _ = base_name.split(".")
            pre = f"base_model.model.model.layers.{layer}.{inv[stem]}"
            A = st[pre + ".lora_A.weight"]
            B = st[pre + ".lora_B.weight"]
            if stem == "attn_q":
                B = ftcommon.permute_rows(B, n_head)
            elif stem == "attn_k":
                B = ftcommon.permute_rows(B, n_kv)
            for got, ref in ((arr(ab["a"]), A), (arr(ab["b"]), B)):
                if got.shape != ref.shape:
                    fails.append(f"{base_name}: shape {got.shape} vs adapter {ref.shape}")
                    continue
                err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) + 1e-12))
                worst = max(worst, err)
        rep["max_rel_err_vs_adapter"] = worst
        if worst > 1e-3:
            fails.append(f"A/B differ from the adapter by up to {worst:.2e} (relative)")

    if a.numeric_base:
        import torch  # noqa: F401

        model, _, _ = ftcommon.load_base(a.base, a.cache, log=lambda m: None)
        sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
        base_r = gguf.GGUFReader(a.base)
        bt = {t.name: t for t in base_r.tensors}
        scale = rep["llama_cpp_scale"]
        res = {"perm_max_abs_diff": 0.0, "no_perm_max_abs_diff_q": 0.0, "merged_max_rel_err": 0.0}
        for layer in range(expect_layers):
            for stem, proj, heads in (("attn_q", "q_proj", n_head), ("attn_k", "k_proj", n_kv)):
                t = bt[f"blk.{layer}.{stem}.weight"]
                w_gguf = gguf.quants.dequantize(t.data, t.tensor_type).reshape(
                    [int(x) for x in reversed(t.shape)]).astype(np.float32)
                w_hf = sd[f"model.layers.{layer}.self_attn.{proj}.weight"]
                d = float(np.max(np.abs(ftcommon.permute_rows(w_hf, heads) - w_gguf)))
                res["perm_max_abs_diff"] = max(res["perm_max_abs_diff"], d)
                if stem == "attn_q":
                    res["no_perm_max_abs_diff_q"] = max(res["no_perm_max_abs_diff_q"],
                                                        float(np.max(np.abs(w_hf - w_gguf))))
                if a.adapter:
                    pre = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
                    A, B = st[pre + ".lora_A.weight"], st[pre + ".lora_B.weight"]
                    ab = pairs[f"blk.{layer}.{stem}.weight"]
                    merged_gguf = w_gguf + scale * (arr(ab["b"]) @ arr(ab["a"]))
                    merged_hf = ftcommon.permute_rows(w_hf + scale * (B @ A), heads)
                    delta = float(np.max(np.abs(scale * (B @ A))))  # size of the LoRA update
                    e = float(np.max(np.abs(merged_gguf - merged_hf)) / (delta + 1e-12))
                    res["merged_max_rel_err"] = max(res["merged_max_rel_err"], e)
        rep["numeric_base"] = res
        if res["perm_max_abs_diff"] > 1e-6:
            fails.append(f"permute(W_hf) != W_gguf (max abs diff {res['perm_max_abs_diff']:.3g})")
        if res["no_perm_max_abs_diff_q"] == 0.0:
            fails.append("q weights identical without permutation: test is vacuous")
        if a.adapter and res["merged_max_rel_err"] > 1e-2:
            fails.append(f"merged weights differ by {res['merged_max_rel_err']:.3g} of the LoRA delta")

    rep["failures"] = fails
    rep["ok"] = not fails
    print("metadata:", json.dumps(meta))
    for t in rep["tensors_sample"]:
        print(f"  {t['name']:<36} ne={t['ne']} {t['type']}")
    print(json.dumps({k: v for k, v in rep.items() if k not in ("metadata", "tensors_sample")}))
    if a.report:
        with open(a.report, "w") as f:
            json.dump(rep, f, indent=1)
    if fails:
        print("VERIFY FAILED:\n  " + "\n  ".join(fails), file=sys.stderr)
        sys.exit(1)
    print("verify: OK")


if __name__ == "__main__":
    main()
