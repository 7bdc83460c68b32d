"""Bit-exact integer kernels: the contract the RTL must meet.

A quantized linear layer with activations ``a[T, K]`` (integer values of the
activation format, int8 by default) and weight codes ``w[N, K]`` of format F:

    acc[t, n] = sum_k a[t, k] * F.ints[w[n, k]]          (exact integer)

in units of ``2**-F.frac_bits``; the real output is
``acc * 2**-f * s_a * s_w[n]``.

Requantization to the next layer's int8 uses a fixed-point multiplier per
output channel, ``M[n]`` in ``[2**30, 2**31)``, and a right shift ``sh[n]``:

    y = clamp((acc * M + 2**(sh - 1)) >> sh, -127, 127)

with an arithmetic shift (round half up). The RTL requantizer implements
exactly this rule.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import numpy as np

from .contract import M_MAX, M_MIN, Q_MAX, Q_MIN, SH_MAX, SH_MIN, check_acc_width
from .formats import INT8, Format, FormatError, get

#: Bound below which float32 BLAS is exact: every partial sum is an integer < 2**24.
FLOAT32_EXACT = 2**24
#: Same for float64.
FLOAT64_EXACT = 2**53


def exact_bound(k: int, max_abs_a: int, max_abs_w: int) -> int:
    """Largest |partial sum| of K products: ``K * max|a| * max|w|``."""
    return int(k) * int(max_abs_a) * int(max_abs_w)


def accumulate_path(k: int, max_abs_a: int, max_abs_w: int) -> str:
    """The cheapest exact path for this bound: ``"float32"``, ``"float64"`` or ``"int64"``.

    If ``K * max|a| * max|w| < 2**24`` every product and every partial sum,
    in any order and with or without FMA, is an integer of magnitude below
    2**24, which float32 represents exactly, so float32 BLAS gives the exact
    result. Likewise below 2**53 for float64. Otherwise int64 (exact below
    2**63, which the caller's accumulator width bounds).
    """
    b = exact_bound(k, max_abs_a, max_abs_w)
    if b < FLOAT32_EXACT:
        return "float32"
    if b < FLOAT64_EXACT:
        return "float64"
    if b < 2**63:
        return "int64"
    raise FormatError(f"K={k} products of |a|<={max_abs_a}, |w|<={max_abs_w} overflow int64")


def _as_int_matrix(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise FormatError(f"{name} must be 2-D, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise FormatError(f"{name} must hold integers, got dtype {x.dtype}")
    return x


@dataclass(frozen=True, eq=False)
class DecodedWeights:
    """Weight codes decoded once for repeated :func:`accumulate` calls.

    ``values[n, k] = weight.ints[codes[n, k]]`` held in the dtype of the exact
    path for ``act`` x ``weight`` at this K (float32, float64 or int64). Make
    it with :func:`decode_weights`; a layer evaluated on many batches pays the
    table look-up once, as the float baseline pays its weight cast once.
    """

    weight: Format
    act: Format
    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape


def decode_weights(w_codes, weight: Format | str, act: Format | str = INT8) -> DecodedWeights:
    """Decode ``w_codes[N, K]`` into the exact path's dtype (see :class:`DecodedWeights`)."""
    weight, act = get(weight), get(act)
    w_codes = _as_int_matrix(w_codes, "weight codes w")
    _check_codes(w_codes, weight)
    path = accumulate_path(w_codes.shape[1], act.max_int, weight.max_int)
    dtype = {"float32": np.float32, "float64": np.float64, "int64": np.int64}[path]
    values = _lookup(weight.ints, np.dtype(dtype), w_codes)
    values.setflags(write=False)
    return DecodedWeights(weight, act, values)


@functools.lru_cache(maxsize=32)
def _pair_table(ints: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Row ``v`` holds the values of the two byte codes packed in the uint16 ``v``."""
    table = np.zeros(256, dtype=dtype)
    table[: len(ints)] = ints
    v = np.arange(65536)
    first, second = (v & 255, v >> 8) if sys.byteorder == "little" else (v >> 8, v & 255)
    pairs = np.stack([table[first], table[second]], axis=1)
    pairs.setflags(write=False)
    return pairs


def _lookup(ints: tuple[int, ...], dtype: np.dtype, codes: np.ndarray) -> np.ndarray:
    """``ints[codes]`` as ``dtype``; byte codes are looked up two at a time (3x faster)."""
    if codes.dtype == np.uint8 and codes.ndim == 2 and codes.shape[1] % 2 == 0:
        pairs = np.ascontiguousarray(codes).view(np.uint16)
        return np.take(_pair_table(ints, dtype), pairs, axis=0).reshape(codes.shape)
    return np.take(np.asarray(ints, dtype=dtype), codes)


def accumulate(
    a,
    w_codes,
    weight: Format | str,
    act: Format | str = INT8,
    acc_width: int | None = None,
) -> np.ndarray:
    """Exact ``acc[t, n] = sum_k a[t, k] * weight.ints[w_codes[n, k]]``.

    Args:
        a: ``[T, K]`` integer activation values of ``act`` (int8: -128..127).
        w_codes: ``[N, K]`` weight codes of ``weight``, or a :class:`DecodedWeights`.
        weight, act: formats (or names).
        acc_width: if given, raise unless a ``acc_width``-bit signed accumulator
            can hold every possible result for this K (see :func:`check_acc_width`).

    Returns ``acc[T, N]``: int32 on the float32 path (every value is below
    2**24), int64 otherwise.

    The bound ``K * max|a| * max|int|``, taken over the formats (the code -128
    included), picks the cheapest exact path (:func:`accumulate_path`):
    float32 BLAS below 2**24, float64 BLAS below 2**53, int64 otherwise.
    """
    weight, act = get(weight), get(act)
    a = _as_int_matrix(a, "activations a")
    if isinstance(w_codes, DecodedWeights):
        if (w_codes.weight.values, w_codes.act.values) != (weight.values, act.values):
            raise FormatError(
                f"weights were decoded for {w_codes.act.name} x {w_codes.weight.name}, "
                f"not {act.name} x {weight.name}"
            )
        w = w_codes.values
    else:
        w = decode_weights(w_codes, weight, act).values
    if a.shape[1] != w.shape[1]:
        raise FormatError(
            f"shape mismatch: activations are [T={a.shape[0]}, K={a.shape[1]}] but weights are "
            f"[N={w.shape[0]}, K={w.shape[1]}]; K must agree"
        )
    k = a.shape[1]
    a_lo, a_hi = min(act.ints), max(act.ints)
    # An int8 array cannot leave the int8 range: skip the pass over the data.
    int8_ok = a.dtype == np.int8 and (a_lo, a_hi) == (-128, 127)
    if a.size and not int8_ok and (a.min() < a_lo or a.max() > a_hi):
        raise FormatError(
            f"activations out of {act.name} range [{a_lo}, {a_hi}]: got [{a.min()}, {a.max()}]"
        )
    if acc_width is not None:
        check_acc_width(k, acc_width, act, weight)
    acc = a.astype(w.dtype) @ w.T
    if w.dtype == np.float32:
        return acc.astype(np.int32)
    return acc.astype(np.int64, copy=False)


def _check_codes(w_codes: np.ndarray, weight: Format) -> None:
    if w_codes.size == 0:
        return
    lo, hi = w_codes.min(), w_codes.max()
    if lo < 0 or hi >= len(weight.values):
        raise FormatError(
            f"weight codes out of range for {weight.name}: need [0, {len(weight.values)}), "
            f"got [{lo}, {hi}]"
        )


def accumulate_reference(a, w_codes, weight: Format | str) -> np.ndarray:
    """Plain int64 ``a @ ints[w].T``: slow, obviously exact; tests compare against it."""
    weight = get(weight)
    return np.asarray(a, dtype=np.int64) @ weight.decode_ints(w_codes).T


# ---- requantization -------------------------------------------------------------


def requant_constants(multiplier) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point form ``M * 2**-sh`` of each positive real multiplier.

    ``multiplier = s_a * s_w[n] * 2**-f / s_out`` (the caller forms it). Returns
    ``(M, sh)`` as int64 arrays with ``M`` in ``[2**30, 2**31)`` and ``sh`` in
    ``[1, 63]``; ``M = round(m * 2**sh)`` (ties away from zero), so the relative
    error of ``M * 2**-sh`` is below 2**-31. A multiplier that needs a shift
    outside that range raises.
    """
    m = np.asarray(multiplier, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise FormatError("requant_constants: multipliers must be positive and finite")
    mant, exp = np.frexp(m)  # m = mant * 2**exp, mant in [0.5, 1)
    big_m = np.floor(mant * 2.0**31 + 0.5).astype(np.int64)
    sh = (31 - exp).astype(np.int64)
    carry = big_m == M_MAX  # mantissa rounded up to 1.0
    big_m = np.where(carry, M_MIN, big_m)
    sh = np.where(carry, sh - 1, sh)
    if np.any(sh < SH_MIN) or np.any(sh > SH_MAX):
        raise FormatError(
            f"requant_constants: multiplier range [{m.min():.3g}, {m.max():.3g}] needs a shift "
            f"outside [{SH_MIN}, {SH_MAX}]; the output scale is far off the input scales"
        )
    return big_m, sh


def requantize(acc, M, sh) -> np.ndarray:
    """``clamp((acc * M + 2**(sh-1)) >> sh, -127, 127)`` elementwise, exactly (int64 out).

    ``M`` and ``sh`` broadcast against ``acc`` (per output channel: shape ``[N]``
    against ``acc[T, N]``). Uses int64 when ``|acc| * M`` fits, Python integers
    otherwise.
    """
    acc, M, sh = np.asarray(acc), np.asarray(M), np.asarray(sh)
    for name, v in (("acc", acc), ("M", M), ("sh", sh)):
        if v.size and not np.issubdtype(v.dtype, np.integer):
            raise FormatError(
                f"requantize: {name} must hold integers, got dtype {v.dtype}; the accumulator "
                "is an exact integer (golden.accumulate), never a float"
            )
    M, sh = M.astype(np.int64), sh.astype(np.int64)
    if np.any(M < 0) or np.any(M >= M_MAX):
        raise FormatError(f"requantize: M must be in [0, 2**31), got [{M.min()}, {M.max()}]")
    if np.any(sh < SH_MIN) or np.any(sh > SH_MAX):
        raise FormatError(f"requantize: sh must be in [{SH_MIN}, {SH_MAX}]")
    amax = int(np.abs(acc).max()) if acc.size else 0
    # |acc| < 2**31 keeps acc*M < 2**62 and the rounding term <= 2**62: int64 is exact.
    if amax < 2**31:
        acc64 = acc.astype(np.int64)
        rounded = (acc64 * M + (np.int64(1) << (sh - 1))) >> sh
    else:
        acc_o, M_o, sh_o = np.broadcast_arrays(
            acc.astype(object), M.astype(object), sh.astype(object)
        )
        rounded = np.frompyfunc(lambda x, m, s: (x * m + (1 << (s - 1))) >> s, 3, 1)(
            acc_o, M_o, sh_o
        )
    return np.clip(rounded, Q_MIN, Q_MAX).astype(np.int64)


def linear_int8(
    a,
    w_codes,
    weight: Format | str,
    M,
    sh,
    act: Format | str = INT8,
    acc_width: int | None = None,
) -> np.ndarray:
    """A whole int8 -> int8 quantized linear layer: ``requantize(accumulate(a, w), M, sh)``.

    ``a[T, K]`` int8 values, ``w_codes[N, K]``, ``M[N]`` and ``sh[N]`` per output
    channel. Returns ``y[T, N]`` int8 values in [-127, 127] as int64.
    """
    acc = accumulate(a, w_codes, weight, act, acc_width)
    n = acc.shape[1]
    for name, v in (("M", M), ("sh", sh)):
        if np.ndim(v) and np.shape(v) not in ((n,), (1,)):
            raise FormatError(f"{name} has shape {np.shape(v)}; expected ({n},) per output channel")
    return requantize(acc, M, sh)


def output_multiplier(s_a: float, s_w, weight: Format | str, s_out: float) -> np.ndarray:
    """Real requantization multiplier ``s_a * s_w[n] * 2**-f / s_out`` per output channel."""
    weight = get(weight)
    if s_out <= 0 or s_a <= 0 or not math.isfinite(s_out) or not math.isfinite(s_a):
        raise FormatError("output_multiplier: scales must be positive and finite")
    return s_a * np.asarray(s_w, dtype=np.float64).reshape(-1) * 2.0**-weight.frac_bits / s_out
