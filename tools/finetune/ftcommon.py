"""Shared helpers for the peephole fine-tuning scripts (train.py, sample.py, verify_export.py).

Kept free of heavy imports at module level so that export_lora_gguf.py can use the pure-numpy
parts (read_safetensors, permute_rows, tensor-name map) on a machine without torch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

# peft/HF module name -> llama.cpp GGUF tensor stem (blk.N.<stem>.weight)
HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

CACHE_MARKER = "peephole_base.json"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------- dataset


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file (optionally .gz). Blank lines are skipped; each record gets '_line' (1-based)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            rec["_line"] = n
            out.append(rec)
    return out


def check_messages(rec: dict) -> list[dict]:
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"line {rec.get('_line')}: missing or empty 'messages'")
    for m in msgs:
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
            raise ValueError(f"line {rec.get('_line')}: bad message {m!r:.120}")
    return msgs


def record_id(rec: dict) -> str:
    """Stable id for a record: its 'id' field if present, else 'line-<n>' of the input file."""
    if "id" in rec and rec["id"] is not None:
        return str(rec["id"])
    return f"line-{rec['_line']}"


def render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def tokenize_example(tokenizer, messages: list[dict], prefill: str = "") -> tuple[list[int], list[int]]:
    """Token ids and labels for one conversation; labels are -100 except on assistant turns.

    `prefill` (the record's field, from `peephole dataset`) is the start of the last assistant turn
    that the proposer writes itself at inference time (the chain-of-code trace from the project's
    semantics): it is tokenized with the prompt, as llama.cpp sees it, and carries no loss.

    The conversation is rendered with the chat template and cut into segments: everything up to and
    including each assistant header ('<|im_start|>assistant\\n') is a prompt segment (no loss), and
    each assistant turn's content plus its end-of-turn token ('<|im_end|>') is a completion segment
    (loss). Each segment is tokenized on its own, exactly as at inference time, where llama.cpp
    tokenizes the rendered prompt and the model then emits the completion tokens after it.
    The newline that follows '<|im_end|>' belongs to the next prompt segment.
    """
    ids: list[int] = []
    labels: list[int] = []
    done = 0  # characters of the full rendering already turned into tokens
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not upto.startswith(prefix) or len(prefix) < done:
            raise ValueError("chat template is not prefix-consistent; cannot mask assistant turns")
        end = len(upto.rstrip("\n"))  # include the end-of-turn token, not the newline after it
        if prefill and i == len(messages) - 1:
            if not m["content"].startswith(prefill):
                raise ValueError("prefill is not the start of the answer")
            prefix += prefill
        prompt_seg = upto[done : len(prefix)]
        comp_seg = upto[len(prefix) : end]
        p = tokenizer(prompt_seg, add_special_tokens=False)["input_ids"] if prompt_seg else []
        c = tokenizer(comp_seg, add_special_tokens=False)["input_ids"]
        ids += p + c
        labels += [-100] * len(p) + c
        done = end
    return ids, labels


def prompt_and_reference(messages: list[dict]) -> tuple[list[dict], str | None]:
    """Split a conversation into the prompt (all but a trailing assistant turn) and that turn's text."""
    if messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, None


# ---------------------------------------------------------------- base model


def gguf_chat_template(gguf_path: str | os.PathLike) -> str | None:
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    f = r.fields.get("tokenizer.chat_template")
    return None if f is None else f.contents()


def gguf_heads(gguf_path: str | os.PathLike) -> tuple[int, int, dict]:
    """(n_head, n_head_kv, {tensor name: ggml ne list}) from a base-model GGUF."""
    import gguf

    r = gguf.GGUFReader(str(gguf_path))
    arch = r.fields["general.architecture"].contents()
    n_head = int(r.fields[f"{arch}.attention.head_count"].contents())
    kv = r.fields.get(f"{arch}.attention.head_count_kv")
    n_kv = int(kv.contents()) if kv is not None else n_head
    shapes = {t.name: [int(x) for x in t.shape] for t in r.tensors}
    return n_head, n_kv, shapes


def load_base(gguf_path: str, cache_dir: str | None = None, dtype=None, log=print):
    """Load (model, tokenizer, info) for the base GGUF, dequantized into PyTorch.

    The tokenizer's chat template is set from the GGUF's own 'tokenizer.chat_template' (the string
    llama.cpp reads), so training and llama.cpp inference format prompts identically.
    If cache_dir is given, the dequantized model (fp32 safetensors) and tokenizer are saved there on
    first use and loaded from there afterwards (seconds instead of ~25 s of dequantizing); the cache
    is keyed by the GGUF's sha256.
    """
    import time

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    t0 = time.time()
    sha = sha256_file(gguf_path)
    template = gguf_chat_template(gguf_path)
    info = {"base_gguf": os.path.basename(gguf_path), "base_sha256": sha, "chat_template": template}
    if cache_dir:
        marker = Path(cache_dir) / CACHE_MARKER
        if marker.exists() and json.loads(marker.read_text()).get("base_sha256") == sha:
            from safetensors.torch import load_model
            from transformers import AutoConfig

            tok = AutoTokenizer.from_pretrained(cache_dir)
            cfg = AutoConfig.from_pretrained(cache_dir)
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
            load_model(model, os.path.join(cache_dir, "model.safetensors"))
            if dtype != torch.float32:
                model = model.to(dtype)
            model.eval()
            tok.chat_template = template
            info["load_s"] = round(time.time() - t0, 2)
            info["loaded_from"] = "cache"
            log(f"base: loaded from cache {cache_dir} in {info['load_s']} s")
            return model, tok, info
    d, name = os.path.split(os.path.abspath(gguf_path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    if template is None:
        raise SystemExit(f"{gguf_path}: no tokenizer.chat_template in the GGUF")
    tok.chat_template = template
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        # A GGUF-loaded model refuses save_pretrained (it is flagged as quantized), so store the
        # dequantized fp32 weights and a plain config ourselves.
        from safetensors.torch import save_model

        cfg = model.config.to_dict()
        cfg.pop("quantization_config", None)
        cfg.pop("_name_or_path", None)
        with open(os.path.join(cache_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        save_model(model, os.path.join(cache_dir, "model.safetensors"))
        tok.save_pretrained(cache_dir)
        (Path(cache_dir) / CACHE_MARKER).write_text(json.dumps({"base_sha256": sha, "base_gguf": name}))
    if dtype != torch.float32:
        model = model.to(dtype)
    info["load_s"] = round(time.time() - t0, 2)
    info["loaded_from"] = "gguf"
    log(f"base: dequantized {name} in {info['load_s']} s")
    return model, tok, info


# ---------------------------------------------------------------- quantization-aware LoRA

# Written into the peft adapter dir by `train.py --qat TYPE`; `export_lora_gguf.py` turns it into the
# GGUF key below, which tells peephole to merge the adapter into the base at that type.
MERGE_MARKER = "peephole_merge.json"
GGUF_MERGE_TYPE_KEY = "peephole.merge.type"
QAT_TYPES = ("q4_0",)


def fake_quant_q4_0(w):
    """ggml's reference Q4_0 round trip of a (rows, cols) tensor, blocks of 32 along a row.

    Same arithmetic as ggml's `quantize_row_q4_0_ref` + dequantization: d = (the element of largest
    magnitude, with its sign) / -8, stored as f16; q = min(15, floor(x / d + 8.5)); value (q - 8) * d.
    Q4_0 is the one 4-bit format this llama.cpp repacks for fast CPU matmuls, and a LoRA merged into it
    loses the fine-tuning unless training saw the rounding (the weight changes are mostly below one
    4-bit step), hence quantization-aware training.
    """
    import torch

    rows, cols = w.shape
    if cols % 32:
        raise ValueError(f"Q4_0 needs rows that are multiples of 32, got {cols}")
    b = w.reshape(rows, cols // 32, 32)
    idx = b.abs().argmax(dim=-1, keepdim=True)  # first largest |x|, as ggml's strict '<' keeps
    mx = torch.gather(b, -1, idx)
    d = mx / -8.0
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    q = torch.clamp(torch.floor(b * inv + 8.5), max=15.0)
    return ((q - 8.0) * d.half().float()).reshape(rows, cols)


def use_merged_quantized_forward(model, qtype: str) -> int:
    """Make every peft LoRA Linear of `model` compute with quantize(W + scale·B·A) (straight-through).

    This is exactly the weight peephole runs after merging the adapter into the base at `qtype`, so the
    adapter is trained for the model that is decoded. The gradient passes the rounding unchanged
    (straight-through estimator) to A and B. LoRA dropout cannot apply (there is no separate LoRA
    branch), so it is skipped. Returns the number of modules changed.
    """
    import types

    import torch
    import torch.nn.functional as F

    if qtype not in QAT_TYPES:
        raise ValueError(f"unsupported quantization-aware type {qtype!r} (have {', '.join(QAT_TYPES)})")

    def forward(self, x, *args, **kwargs):
        name = self.active_adapters[0]
        base = self.base_layer
        with torch.autocast(device_type=x.device.type, enabled=False):
            w = base.weight.float() + self.scaling[name] * (
                self.lora_B[name].weight.float() @ self.lora_A[name].weight.float())
            wq = w + (fake_quant_q4_0(w) - w).detach()
        return F.linear(x, wq.to(x.dtype) if not torch.is_autocast_enabled() else wq, base.bias)

    n = 0
    for m in model.modules():
        if hasattr(m, "lora_A") and hasattr(m, "base_layer") and isinstance(m.base_layer, torch.nn.Linear):
            m.forward = types.MethodType(forward, m)
            n += 1
    return n


def adapter_merge_type(adapter_dir: str | os.PathLike) -> str | None:
    """The quantized type an adapter was trained to be merged at (None: an ordinary LoRA)."""
    p = Path(adapter_dir) / MERGE_MARKER
    if not p.exists():
        return None
    t = json.loads(p.read_text()).get("merge_type")
    if t not in QAT_TYPES:
        raise SystemExit(f"{p}: unknown merge_type {t!r}")
    return t


# ---------------------------------------------------------------- safetensors / permutation (numpy only)

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Minimal safetensors reader returning float32 numpy arrays (F32, F16, F64, BF16)."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        base = 8 + hlen
        out = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            a, b = meta["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            dt = meta["dtype"]
            if dt == "BF16":
                u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = u.view(np.float32)
            elif dt in _ST_DTYPES:
                arr = np.frombuffer(raw, dtype=np.dtype(_ST_DTYPES[dt]).newbyteorder("<")).astype(np.float32)
            else:
                raise ValueError(f"{path}: tensor {name} has unsupported dtype {dt}")
            out[name] = arr.reshape(meta["shape"])
    return out


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Row permutation that llama.cpp's HF->GGUF converter applies to q/k weights (rotary layout).

    Rows are grouped per head as (head, 2, half); the two halves of each head are interleaved.
    Applied to lora_b (out x rank) it maps an HF-layout low-rank delta B@A to the GGUF layout.
    """
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise ValueError(f"{rows} rows do not split into {n_head} heads x 2")
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of permute_rows."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
