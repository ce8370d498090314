"""Benchmark: scaled dot-product attention forward, NumPy vs PyTorch vs Keras/TensorFlow (notebook 06).

    .venv/bin/python benchmarks/bench_attention.py            # prints a table, rewrites its section of BENCHMARKS.md
    .venv/bin/python benchmarks/bench_attention.py --no-write # prints only

Shape: batch 4 × 8 heads, sequence length 512 (self-attention), d_k = d_v = 64, float32, no mask; the
same thread count for all (1 by default: on a busy 2-CPU machine two BLAS threads wait for each other,
and a 128-token call took 58 ms instead of 0.15 ms); median of several runs after one warm-up. Also one
row per sequence length for the NumPy version, to show the quadratic growth. Target: NumPy `attention`
within 1.5× of PyTorch computing the same formula (`softmax(QK^T/sqrt(d)) V`, unfused); PyTorch's fused
`scaled_dot_product_attention` kernel is reported beside it.
"""

from __future__ import annotations

import sys

import numpy as np
from common import machine_info, markers, median_ms, parser, publish

START, END = markers("attention")
TORCH_SDPA = "PyTorch `F.scaled_dot_product_attention` (fused)"
TORCH_MATH = "PyTorch, the formula (`softmax(QK^T/8) V`)"
NUMPY = "NumPy `attention` (mediag.scratch)"


def run(threads: int, repeat: int, length: int) -> tuple[list[tuple[str, float]], list[tuple[int, float]], dict]:
    from mediag.repro import import_tensorflow, setup

    setup(seed=0, threads=threads)
    tf = import_tensorflow()
    import keras
    import torch
    import torch.nn.functional as F

    from mediag.scratch import attention, softmax

    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((4, 8, length, 64)).astype(np.float32) for _ in range(3))
    tq, tk, tv = (torch.from_numpy(a) for a in (Q, K, V))
    kq, kk, kv = (tf.constant(a.transpose(0, 2, 1, 3)) for a in (Q, K, V))  # Keras: (B, L, heads, d)

    ref = F.scaled_dot_product_attention(tq, tk, tv).numpy()
    assert np.allclose(attention(Q, K, V)[0], ref, rtol=1e-5, atol=1e-5), "attention disagrees with PyTorch"
    k_out = keras.ops.dot_product_attention(kq, kk, kv)
    assert np.allclose(np.asarray(k_out).transpose(0, 2, 1, 3), ref, rtol=1e-4, atol=1e-5)

    def torch_math():
        return torch.softmax(tq @ tk.transpose(-1, -2) / 8.0, dim=-1) @ tv

    def numpy_plain():
        return softmax(Q @ K.swapaxes(-1, -2) / np.float32(8.0)) @ V

    with torch.inference_mode():
        results = [
            (NUMPY, median_ms(lambda: attention(Q, K, V), repeat)),
            ("NumPy, the formula only (no checks, no mask)", median_ms(numpy_plain, repeat)),
            (TORCH_SDPA, median_ms(lambda: F.scaled_dot_product_attention(tq, tk, tv), repeat)),
            (TORCH_MATH, median_ms(torch_math, repeat)),
            ("Keras `ops.dot_product_attention` (TensorFlow)",
             median_ms(lambda: keras.ops.dot_product_attention(kq, kk, kv).numpy(), repeat)),
        ]
    scaling = []
    for L in (128, 256, 512, 1024):
        q = rng.standard_normal((1, L, 64)).astype(np.float32)
        scaling.append((L, median_ms(lambda q=q: attention(q, q, q), max(3, repeat // 2))))
    info = machine_info(shape=f"Q, K, V 4×8×{length}×64 (batch × heads × L × d), float32, no mask",
                        threads=threads, repeat=repeat)
    info["versions"] = (f"Python {info['python']}, NumPy {np.__version__}, torch {torch.__version__}, "
                        f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    return results, scaling, info


def section(results, scaling, info) -> str:
    torch_ms = dict(results)[TORCH_SDPA]
    lines = [
        START,
        "## attention forward (notebook 06, `benchmarks/bench_attention.py`)",
        "",
        f"{info['shape']}; {info['threads']} thread{'s' if info['threads'] != 1 else ''} for every library; "
        f"median of {info['repeat']} runs after a "
        f"warm-up; {info['cpus']} CPUs ({info['machine']}), load average {info['load']} while measuring; "
        f"{info['versions']}.",
        "",
        "| implementation | median time (ms) | × PyTorch SDPA |",
        "|---|---:|---:|",
    ]
    for name, ms in results:
        lines.append(f"| {name} | {ms:.1f} | {ms / torch_ms:.2f} |")
    lines += ["", "NumPy `attention`, one sequence (1 × L × 64), against the sequence length:", "",
              "| L | median time (ms) | × previous |", "|---:|---:|---:|"]
    for i, (L, ms) in enumerate(scaling):
        lines.append(f"| {L} | {ms:.2f} | {'' if i == 0 else f'{ms / scaling[i - 1][1]:.1f}'} |")
    ratio = dict(results)[NUMPY] / dict(results)[TORCH_MATH]
    verdict = "met" if ratio <= 1.5 else "NOT met"
    lines += ["", f"Target: NumPy `attention` within 1.5× of PyTorch computing the same formula: {ratio:.2f}× "
              f"({verdict}). The fused kernel avoids writing the L × L weights to memory, hence its lead. "
              "Doubling L costs at least 4× once the L² terms dominate (more when the weights outgrow the cache).",
              END]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = parser(__doc__, threads=1, repeat=9)
    p.add_argument("--length", type=int, default=512, help="sequence length L (default 512)")
    args = p.parse_args(argv)
    results, scaling, info = run(args.threads, args.repeat, args.length)
    text = section(results, scaling, info)
    publish("attention", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
