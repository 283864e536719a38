#!/usr/bin/env python3
"""Check that training's Q4_0 fake quantization is ggml's Q4_0, bit for bit.

`train.py --qat q4_0` trains the adapter for quantize_q4_0(W + scale*B*A), the weight peephole decodes
after merging; if the fake quantization rounded differently from ggml (as reimplemented by gguf-py,
whose Q4_0 output is byte-identical to the candle quantizer peephole merges with), training would
target a model nobody runs. Needs torch and gguf. Exit status 1 on any difference.

    python3 check_qat.py [--base BASE.gguf]   # random and edge-case rows; with --base also real weights
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftcommon  # noqa: E402


def ggml_round_trip(w: np.ndarray) -> np.ndarray:
    from gguf import GGMLQuantizationType, quants

    q = quants.quantize(w.astype(np.float32), GGMLQuantizationType.Q4_0)
    return quants.dequantize(q, GGMLQuantizationType.Q4_0).reshape(w.shape)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", help="also check every 2-D weight of this GGUF (dequantized)")
    a = p.parse_args(argv)
    import torch

    rng = np.random.default_rng(7)
    cases = {
        "normal": rng.normal(0, 0.05, (64, 576)),
        "heavy-tailed": rng.standard_t(2, (64, 1536)) * 0.02,
        "ties and zeros": np.tile(np.array([0.0, 0.5, -0.5, 0.25, 0.0, -0.25, 0.125, 0.0] * 4), (8, 2)),
        "all zero": np.zeros((4, 64)),
    }
    if a.base:
        from gguf import GGUFReader, quants

        for t in GGUFReader(a.base).tensors:
            if len(t.shape) == 2 and t.name.endswith(".weight") and int(t.shape[0]) % 32 == 0:
                w = quants.dequantize(t.data, t.tensor_type).reshape(int(t.shape[1]), int(t.shape[0]))
                cases[t.name] = w[:256]
    bad = 0
    for name, w in cases.items():
        w = w.astype(np.float32)
        want = ggml_round_trip(w)
        got = ftcommon.fake_quant_q4_0(torch.from_numpy(w)).numpy()
        diff = int(np.count_nonzero(got != want))
        bad += diff
        if diff or not a.base or not name.startswith("blk."):
            print(f"{name}: {w.shape}, {diff} values differ (max |diff| {float(np.abs(got - want).max()):.3g})")
    # the straight-through gradient reaches the unquantized weight unchanged
    x = torch.randn(4, 64, requires_grad=True)
    y = x + (ftcommon.fake_quant_q4_0(x) - x).detach()
    y.sum().backward()
    ste_ok = bool(torch.all(x.grad == 1))
    print(f"checked {len(cases)} tensors: {bad} values differ from ggml's Q4_0; straight-through gradient "
          f"{'ok' if ste_ok else 'WRONG'}")
    return 0 if bad == 0 and ste_ok else 1


if __name__ == "__main__":
    sys.exit(main())
