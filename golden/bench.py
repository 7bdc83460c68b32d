"""Benchmark: the exact integer accumulator against float32 BLAS on real layer shapes.

Run with ``nox -s bench`` or ``python -m golden.bench``. For each shape the
exact kernel (:func:`golden.kernels.accumulate`, int8 activations x dINT4 weight
codes -> int64) and a plain float32 matmul of the same shape are timed
alternately, ``--repeat`` times, so machine noise hits both; each repeat gives one
exact / float32 throughput ratio, and the table shows the median and the minimum of
those ratios (the median counts: one timed pair is mostly load noise). "exact" is
the kernel on weights decoded once (:func:`golden.kernels.decode_weights`),
as the float32 side has its weights cast once; "exact from codes" decodes the
codes inside every call. A plain int64 matmul is shown for scale. Every
exact result is checked against the int64 reference.

The target is exact >= 0.80x float32 (:data:`TARGET_RATIO`) on every shape. Every run
reports it; only ``--check`` makes a missed target exit 1 (bad input exits 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import formats
from .kernels import accumulate, accumulate_path, accumulate_reference, decode_weights

#: (T, K, N) of SmolLM2-135M's linears at 512 tokens: up/gate, down, q/o.
SHAPES = ((512, 576, 1536), (512, 1536, 576), (512, 576, 576))

#: The stated target: the exact kernel at >= 0.80x float32 BLAS throughput on every shape.
TARGET_RATIO = 0.80

#: Timed (exact, exact from codes, float32) triples per shape, alternating.
REPEAT = 15


def _seconds(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x @ y.T


def run(weight: str = "dint4", repeat: int = REPEAT, seed: int = 0) -> list[dict]:
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
        t_codes, t_decoded, t_f32 = [], [], []
        for _ in range(repeat):  # alternate so that noise hits every kernel alike
            t_codes.append(_seconds(accumulate, a, w, fmt))
            t_decoded.append(_seconds(accumulate, a, decoded, fmt))
            t_f32.append(_seconds(_matmul, af, wf))
        t_i64 = _seconds(_matmul, a.astype(np.int64), fmt.decode_ints(w))
        ratios = [f / d for f, d in zip(t_f32, t_decoded, strict=True)]
        ratios_codes = [f / c for f, c in zip(t_f32, t_codes, strict=True)]
        macs = t * k * n
        f32_median = statistics.median(t_f32)
        rows.append(
            {
                "shape": f"T={t} K={k} N={n}",
                "weight": fmt.name,
                "path": accumulate_path(k, 128, fmt.max_int),
                "repeats": repeat,
                "exact_gmacs": macs / statistics.median(t_decoded) / 1e9,
                "float32_gmacs": macs / f32_median / 1e9,
                "int64_gmacs": macs / t_i64 / 1e9,
                "ratio_exact_vs_float32": statistics.median(ratios),
                "ratio_exact_vs_float32_min": min(ratios),
                "ratio_codes_vs_float32": statistics.median(ratios_codes),
                "ratio_codes_vs_float32_min": min(ratios_codes),
                "ratio_int64_vs_float32": f32_median / t_i64,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        "| shape | weights | path | exact GMAC/s | float32 GMAC/s "
        "| exact/float32 median (min) | exact from codes/float32 median (min) "
        "| int64/float32 |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['shape']} | {r['weight']} | {r['path']} | {r['exact_gmacs']:.2f} "
        f"| {r['float32_gmacs']:.2f} "
        f"| {r['ratio_exact_vs_float32']:.2f}x ({r['ratio_exact_vs_float32_min']:.2f}x) "
        f"| {r['ratio_codes_vs_float32']:.2f}x ({r['ratio_codes_vs_float32_min']:.2f}x) "
        f"| {r['ratio_int64_vs_float32']:.3f}x |\n"
        for r in rows
    )
    return head + body


def check(rows: list[dict], min_ratio: float = TARGET_RATIO) -> tuple[bool, str]:
    """Whether every shape's median exact/float32 ratio reaches ``min_ratio``, and the line
    saying so (the worst shape's median and minimum)."""
    if not rows:
        return False, "exact accumulator throughput: no measurement"
    worst = min(rows, key=lambda r: r["ratio_exact_vs_float32"])
    ratio = worst["ratio_exact_vs_float32"]
    met = ratio >= min_ratio
    return met, (
        f"exact accumulator throughput: {ratio:.2f}x float32 BLAS at worst "
        f"({worst['shape']}; median of {worst['repeats']} alternating pairs, "
        f"min {worst['ratio_exact_vs_float32_min']:.2f}x) "
        f"(target >= {min_ratio:.2f}x): {'met' if met else 'MISSED'}"
    )


def exit_status(target_met: bool, check_target: bool) -> int:
    """1 if ``--check`` was given and the target was missed, else 0 (the default reports)."""
    return 1 if check_target and not target_met else 0


class _UsageError(Exception):
    """Bad input: printed as one line ``error: ...`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise _UsageError(f"{message}; see python -m golden.bench --help")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def _write_json(path: Path, rows: list[dict]) -> None:
    """Atomic write (temp file beside ``path``, then rename), mode 0666 & ~umask."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(rows, f, indent=2)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _main(argv: list[str] | None) -> int:
    p = _Parser(prog="python -m golden.bench", description=__doc__)
    p.add_argument("--weight", default="dint4", help="weight format (default dint4)")
    p.add_argument(
        "--repeat",
        type=_positive(int),
        default=REPEAT,
        help=f"timed alternating repeats per kernel; the median counts (default {REPEAT})",
    )
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the target is missed (without it the bench only reports)",
    )
    p.add_argument(
        "--min-ratio",
        type=_positive(float),
        default=TARGET_RATIO,
        help=f"--check's target, exact/float32 on every shape (default {TARGET_RATIO})",
    )
    p.add_argument("--debug", action="store_true", help="show a traceback on any error")
    args = p.parse_args(argv)
    formats.get(args.weight)  # an unknown format fails before any timing
    out = Path(args.json) if args.json else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise _UsageError(f"--json {out}: not a file in an existing directory; give one")
    rows = run(args.weight, args.repeat)
    print(format_table(rows))
    met, line = check(rows, args.min_ratio)
    policy = (
        "--check: a missed target exits 1"
        if args.check
        else "report only; --check makes a missed target exit 1"
    )
    print(f"{line} ({policy})")
    if out is not None:
        _write_json(out, rows)
    return exit_status(met, args.check)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args)
    except (_UsageError, formats.FormatError, OSError) as e:
        if "--debug" in args:
            raise
        print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
