"""Benchmark: the exact integer accumulator against float32 BLAS on real layer shapes.

Run with ``nox -s bench`` or ``python -m golden.bench``. For each shape the
exact kernel (:func:`golden.kernels.accumulate`, int8 activations x dINT4 weight
codes -> int64) and a plain float32 matmul of the same shape are timed
alternately in one run (best of ``--repeat``), so machine noise hits both; the
figure is the throughput ratio exact / float32. "exact" is
the kernel on weights decoded once (:func:`golden.kernels.decode_weights`),
as the float32 side has its weights cast once; "exact from codes" decodes the
codes inside every call. A plain int64 matmul is shown for scale. Every
exact result is checked against the int64 reference.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from . import formats
from .kernels import accumulate, accumulate_path, accumulate_reference, decode_weights

#: (T, K, N) of SmolLM2-135M's linears at 512 tokens: up/gate, down, q/o.
SHAPES = ((512, 576, 1536), (512, 1536, 576), (512, 576, 576))


def _seconds(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x @ y.T


def run(weight: str = "dint4", repeat: int = 15, seed: int = 0) -> list[dict]:
    fmt = formats.get(weight)
    rng = np.random.default_rng(seed)
    rows = []
    for t, k, n in SHAPES:
        a = rng.integers(-127, 128, size=(t, k), dtype=np.int8)
        w = rng.integers(0, 2**fmt.bits, size=(n, k), dtype=np.uint8)
        af = a.astype(np.float32)
        wf = fmt.decode(w).astype(np.float32)
        exact = accumulate(a, w, fmt)
        if not np.array_equal(exact, accumulate_reference(a, w, fmt)):
            raise AssertionError(f"accumulate is not exact on shape {(t, k, n)}")
        decoded = decode_weights(w, fmt)
        t_codes = t_decoded = t_f32 = float("inf")
        for _ in range(repeat):  # alternate so that noise hits every kernel alike
            t_codes = min(t_codes, _seconds(accumulate, a, w, fmt))
            t_decoded = min(t_decoded, _seconds(accumulate, a, decoded, fmt))
            t_f32 = min(t_f32, _seconds(_matmul, af, wf))
        t_i64 = _seconds(_matmul, a.astype(np.int64), fmt.decode_ints(w))
        macs = t * k * n
        rows.append(
            {
                "shape": f"T={t} K={k} N={n}",
                "weight": fmt.name,
                "path": accumulate_path(k, 128, fmt.max_int),
                "exact_gmacs": macs / t_decoded / 1e9,
                "float32_gmacs": macs / t_f32 / 1e9,
                "int64_gmacs": macs / t_i64 / 1e9,
                "ratio_exact_vs_float32": t_f32 / t_decoded,
                "ratio_codes_vs_float32": t_f32 / t_codes,
                "ratio_int64_vs_float32": t_f32 / t_i64,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        "| shape | weights | path | exact GMAC/s | float32 GMAC/s | exact/float32 "
        "| exact from codes/float32 | int64/float32 |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['shape']} | {r['weight']} | {r['path']} | {r['exact_gmacs']:.2f} "
        f"| {r['float32_gmacs']:.2f} | {r['ratio_exact_vs_float32']:.2f}x "
        f"| {r['ratio_codes_vs_float32']:.2f}x "
        f"| {r['ratio_int64_vs_float32']:.3f}x |\n"
        for r in rows
    )
    return head + body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m golden.bench", description=__doc__)
    p.add_argument("--weight", default="dint4", help="weight format (default dint4)")
    p.add_argument("--repeat", type=int, default=15, help="timed repetitions per kernel")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    rows = run(args.weight, args.repeat)
    print(format_table(rows))
    worst = min(r["ratio_exact_vs_float32"] for r in rows)
    print(f"exact accumulator throughput: {worst:.2f}x float32 BLAS at worst (target >= 0.80x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
