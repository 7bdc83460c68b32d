"""Symmetric quantizers: scales, codes, dequantization.

For a format F and a real tensor x, symmetric quantization with scale s is

    code = F.encode(clip(x / s, -F.max_abs, +F.max_abs))
    x_hat = F.decode(code) * s

with F.encode's rule: nearest value, ties to the smaller magnitude. The scale
is chosen so that the largest magnitude of its slice maps to F.max_abs:
``s = max|x| / F.max_abs``. Because of the clip, a symmetric quantizer never
emits an extra negative code (-128 of int8, -8 of int4).

Granularities (x is 2-D, rows are output channels of a weight ``W[N, K]`` or
tokens of an activation ``A[T, K]``):

- ``"tensor"``: one scale; shape ``()``.
- ``"channel"`` / ``"token"``: one scale per row; shape ``(rows, 1)``.
- ``"group"``: one scale per row and per ``group_size`` consecutive columns;
  shape ``(rows, K // group_size, 1)`` over ``x.reshape(rows, K // group_size, group_size)``.
  Software-only: the array has one scale per output channel.

An all-zero slice gets scale 1.0: every element encodes to code 0 and
dequantizes to 0 exactly, with no division by zero and no NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .formats import Format, FormatError, _check_finite, get

Granularity = Literal["tensor", "channel", "token", "group"]
GRANULARITIES = ("tensor", "channel", "token", "group")

#: Scale given to an all-zero slice (any positive value encodes zeros exactly).
ZERO_SLICE_SCALE = 1.0


def _grouped(x: np.ndarray, granularity: str, group_size: int | None) -> np.ndarray:
    """View x so that the reduction axis of each scale is the last one."""
    if granularity not in GRANULARITIES:
        raise FormatError(f"unknown granularity {granularity!r}; use one of {GRANULARITIES}")
    if granularity == "tensor":
        return x.reshape(1, -1)
    if x.ndim != 2:
        raise FormatError(
            f"per-{granularity} quantization needs a 2-D array (rows x K), got shape {x.shape}"
        )
    if granularity == "group":
        if not group_size or group_size < 1:
            raise FormatError("group quantization needs group_size >= 1")
        if x.shape[1] % group_size:
            raise FormatError(
                f"K={x.shape[1]} is not a multiple of group_size={group_size}; "
                "choose a group size that divides K"
            )
        return x.reshape(x.shape[0], x.shape[1] // group_size, group_size)
    return x


def compute_scale(
    x, fmt: Format | str, granularity: Granularity = "channel", group_size: int | None = None
) -> np.ndarray:
    """Symmetric absmax scale ``max|x| / fmt.max_abs`` per slice (float64).

    All-zero slices get :data:`ZERO_SLICE_SCALE`. NaN/Inf raise.
    """
    fmt = get(fmt)
    x = np.asarray(x, dtype=np.float64)
    _check_finite(x, "compute_scale")
    g = _grouped(x, granularity, group_size)
    amax = np.abs(g).max(axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / fmt.max_abs, ZERO_SLICE_SCALE)
    if granularity == "tensor":
        return scale.reshape(())
    return scale


def quantize(
    x,
    fmt: Format | str,
    scale,
    granularity: Granularity = "channel",
    group_size: int | None = None,
) -> np.ndarray:
    """Codes of ``x`` for the given scale: ``fmt.encode(clip(x / scale, ±max_abs))``.

    ``scale`` has the shape :func:`compute_scale` returns for the same
    granularity; it must be positive and finite. Returns codes with x's shape.
    """
    fmt = get(fmt)
    x = np.asarray(x, dtype=np.float64)
    _check_finite(x, "quantize")
    scale = np.asarray(scale, dtype=np.float64)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise FormatError("quantize: scales must be positive and finite")
    g = _grouped(x, granularity, group_size)
    try:
        q = np.clip(g / scale, -fmt.max_abs, fmt.max_abs)
    except ValueError as e:
        raise FormatError(
            f"quantize: scale of shape {scale.shape} does not match {granularity} "
            f"quantization of shape {x.shape}"
        ) from e
    return fmt.encode(q).reshape(x.shape)


def dequantize(
    codes,
    fmt: Format | str,
    scale,
    granularity: Granularity = "channel",
    group_size: int | None = None,
) -> np.ndarray:
    """Real values (float64) of codes: ``fmt.decode(codes) * scale``."""
    fmt = get(fmt)
    codes = np.asarray(codes)
    v = _grouped(fmt.decode(codes), granularity, group_size)
    return (v * np.asarray(scale, dtype=np.float64)).reshape(codes.shape)


def quantize_tensor(
    x,
    fmt: Format | str,
    granularity: Granularity = "channel",
    group_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Absmax-scale and quantize in one step; returns ``(codes, scale)``."""
    scale = compute_scale(x, fmt, granularity, group_size)
    return quantize(x, fmt, scale, granularity, group_size), scale


def quantize_activations(x, scale: float, fmt: Format | str = "int8") -> np.ndarray:
    """Static per-tensor activation quantization to integer values (int64).

    Activations travel as their integer values (for int8, the signed value of
    the code), which is what the MAC's ``a`` port carries.
    """
    fmt = get(fmt)
    if fmt.frac_bits:
        raise FormatError(f"activation format must be an integer format, got {fmt.name}")
    return fmt.decode_ints(quantize(x, fmt, scale, "tensor"))
