"""Torch quantizers built from the golden ``Format``, and the quantized linear layer.

The torch encoder uses ``Format.grid`` (sorted values, their codes, the
midpoints between neighbours, and which way a tie goes) exactly like
``Format.encode``: ``idx = searchsorted(midpoints, x, side="left")`` is the
neighbour at or above x's cell, and a value exactly on a midpoint moves up
when ``tie_up`` says the upper neighbour has the smaller magnitude. So numpy
and torch agree on every code (a test proves it at every midpoint).

:class:`QuantLinear` is ``y = Q_a(x) · Q_w(W)ᵀ + b`` with

- weights: codes ``w[n, k]`` of a weight format F and per-output-channel
  scales ``s_w[n] = max_k |W[n, k]| / F.max_abs`` (``golden.compute_scale``; or per
  group: software only, not mappable onto the array);
- activations: ``"int8-static"`` (one calibrated scale ``s_a``), ``"int8-token"``
  (per-token dynamic scale ``max_k |x[t, k]| / 127``) or ``"fp"`` (not quantized);
  ``a = int8.encode(clip(x / s_a, ±127))`` computed in float64 (as golden does).

Two execution modes, selected with :func:`set_mode`:

- ``"fake"`` (torch): where ``golden.accumulate_path`` picks float32 (``K · 128 ·
  max|F.ints| < 2^24``; every SmolLM2 layer: 1536 · 128 · 12 < 2^24) the integer codes
  are multiplied in float32, which is exact (golden's own argument), and scaled
  ``acc · 2^-f · s_a · s_w`` in float64, rounded once to float32; otherwise (or with
  per-group weights) ``(a · s_a) @ (F.values[w] · s_w)ᵀ`` in float32;
- ``"integer"``: ``acc = golden.accumulate(a, w)`` (exact int64), then
  ``y = acc · 2^-f · s_a · s_w`` in float64, rounded once to float32.

Outlier bypass (``bypass_above``, int8-static only; see :mod:`quant.outliers`): a row whose
``max_k |x[t, k]|`` exceeds ``bypass_above`` (``127 · s_a``: it would clip) skips int8,
``y_t = x_t @ Ŵᵀ`` in float32 with the dequantized 4-bit weights (W4A16 for that row), the
same torch call in both modes; the other rows take the mode's path above.

Agreement (tested): both use identical codes (the torch encoder equals
``golden.quantize_activations``), so in the exact case the outputs are
bit-identical, and a whole model gives the same perplexity in both modes.
In the fallback they differ only by float32 rounding: per element
``|y_fake - y_int| <= (K + 3) · 2^-24 · Σ_k |a_k s_a| · |w_k s_w| + 2^-24 |y|``.
Why bit-identity matters: on SmolLM2 with static int8 scales, one int8 code
flipped by a float32 rounding difference in layer 1 (a 1-LSB change where the
LSB is large, set by the first token's massive activation) cascades to ~5 %
perplexity difference after 30 layers; with exact fake-quant the two modes agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

import golden
from golden import Format

from .errors import QuantError

ACT_MODES = ("int8-static", "int8-token", "fp")
ActMode = Literal["int8-static", "int8-token", "fp"]
INT8 = golden.get("int8")


#: Grids with at most this many midpoints are indexed by compares instead of searchsorted.
SMALL_GRID = 32


class TorchGrid:
    """A format's rounding grid as torch tensors, built from ``Format.grid``.

    ``index(x)`` is the position in the sorted grid of the nearest value, ties to
    the smaller magnitude. Counting midpoints: a value strictly above midpoint j
    passes it; a value exactly on it passes it iff ``tie_up[j]``, and
    ``tie_up[j]`` (upper neighbour of smaller magnitude, ``|b| < |a|`` with
    ``a < b``) is equivalent to ``a + b < 0``, i.e. ``midpoint[j] < 0``. Hence
    ``index = searchsorted(mid, x, right=(x < 0))`` — checked against the grid at
    construction (small grids on large inputs count the same compares directly, faster).
    Grids of consecutive integers (int4, int8) take the equivalent
    closed form ``sign(x)·ceil(|x| - 1/2)`` (round half toward zero) clamped to the
    grid, which is exact in float32 and float64; tests prove both paths equal
    ``Format.encode`` at every midpoint.
    """

    def __init__(self, fmt: Format | str, closed_form: bool = True):
        self.fmt = golden.get(fmt)
        sv, sc, mid, tie_up = self.fmt.grid
        if not np.array_equal(tie_up, mid < 0):
            raise QuantError(f"{self.fmt.name}: grid tie rule is not 'toward zero'")
        self.values = torch.tensor(sv, dtype=torch.float64)
        self.codes = torch.tensor(sc, dtype=torch.int64)
        self.midpoints = torch.tensor(mid, dtype=torch.float64)
        self.tie_up = torch.tensor(tie_up, dtype=torch.bool)
        # float32 midpoints, used for float32 inputs only if exactly representable.
        mid32 = self.midpoints.float()
        self.midpoints32 = mid32 if torch.equal(mid32.double(), self.midpoints) else None
        self.consecutive_ints = (
            closed_form and bool(np.all(np.diff(sv) == 1.0)) and sv[0] == int(sv[0])
        )
        self.lo, self.hi = float(sv[0]), float(sv[-1])

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Index into the sorted grid of the nearest value (ties to the smaller magnitude).

        float32 inputs are rounded as float32 values; anything else as float64.
        """
        if x.dtype != torch.float32:
            x = x.to(torch.float64)
        if not torch.isfinite(x).all():
            raise QuantError(f"{self.fmt.name} torch encode: input contains NaN or Inf")
        if self.consecutive_ints:
            v = (torch.sign(x) * torch.ceil(x.abs() - 0.5)).clamp_(self.lo, self.hi)
            return (v - self.lo).to(torch.int64)
        mid = self.midpoints
        if x.dtype == torch.float32:
            if self.midpoints32 is None:
                x = x.to(torch.float64)
            else:
                mid = self.midpoints32
        x = x.contiguous()
        if len(mid) <= SMALL_GRID and x.numel() >= 4096:
            # Same count as searchsorted, as vectorised compares (4x faster on 4-bit grids).
            idx = torch.zeros(x.shape, dtype=torch.uint8)
            for m in mid.tolist():
                idx += (x >= m) if m < 0 else (x > m)
            return idx.to(torch.int64)
        left = torch.searchsorted(mid, x, right=False)
        right = torch.searchsorted(mid, x, right=True)
        return torch.where(x < 0, right, left)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (int64) of real values x: the torch twin of ``Format.encode``."""
        return self.codes[self.index(x)]

    def round(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest representable value (float64) of real values x."""
        return self.values[self.index(x)]


_GRIDS: dict[str, TorchGrid] = {}


def grid_of(fmt: Format | str) -> TorchGrid:
    """Cached :class:`TorchGrid` of a format (registry formats are immutable)."""
    fmt = golden.get(fmt)
    key = f"{fmt.name}:{fmt.values}"
    if key not in _GRIDS:
        _GRIDS[key] = TorchGrid(fmt)
    return _GRIDS[key]


def check_finite(t: torch.Tensor, what: str) -> None:
    """Raise :class:`QuantError` naming ``what`` if t has NaN or Inf."""
    if not torch.isfinite(t).all():
        raise QuantError(f"{what} contains NaN or Inf; clean the model/tensor before quantizing")


def weight_scale(w: torch.Tensor, fmt: Format | str, group_size: int | None = None) -> torch.Tensor:
    """Per-output-channel ``max_k |W[n,k]| / F.max_abs`` ([N, 1]), or per group ([N, G, 1]).

    This is :func:`golden.compute_scale` (``"channel"`` or ``"group"``), called on the
    weight's float64 values: the scale rule, including the all-zero slice's
    ``golden.quantize.ZERO_SLICE_SCALE``, is written once, in golden.
    """
    w64 = w.detach().to(torch.float64).numpy()
    granularity = "group" if group_size else "channel"
    return torch.from_numpy(golden.compute_scale(w64, fmt, granularity, group_size))


def quantize_weight(
    w: torch.Tensor,
    fmt: Format | str,
    scale: torch.Tensor | None = None,
    group_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RTN: ``codes = F.encode(clip(W / s_w, ±F.max_abs))``; returns ``(codes [N,K], scale)``."""
    fmt = golden.get(fmt)
    check_finite(w, "weight")
    if scale is None:
        scale = weight_scale(w, fmt, group_size)
    w64 = w.to(torch.float64)
    if group_size:
        w64 = w64.reshape(w.shape[0], -1, group_size)
    q = (w64 / scale).clamp(-fmt.max_abs, fmt.max_abs)
    return grid_of(fmt).encode(q).reshape(w.shape), scale


def dequantize_weight(
    codes: torch.Tensor, fmt: Format | str, scale: torch.Tensor, group_size: int | None = None
) -> torch.Tensor:
    """``F.values[codes] · s_w`` in float64."""
    fmt = golden.get(fmt)
    vals = torch.tensor(fmt.values, dtype=torch.float64)[codes.to(torch.int64)]
    if group_size:
        return (vals.reshape(codes.shape[0], -1, group_size) * scale).reshape(codes.shape)
    return vals * scale.reshape(-1, 1)


def fake_quant_weight(
    w: torch.Tensor, fmt: Format | str, group_size: int | None = None
) -> torch.Tensor:
    """RTN fake-quantized weight (float64)."""
    codes, scale = quantize_weight(w, fmt, group_size=group_size)
    return dequantize_weight(codes, fmt, scale, group_size)


def act_scale_from_absmax(absmax: float) -> float:
    """Static int8 activation scale ``absmax / 127`` (``ZERO_SLICE_SCALE`` for an all-zero
    range): :func:`golden.compute_scale` of a tensor whose largest magnitude is ``absmax``."""
    absmax = float(absmax)
    if not np.isfinite(absmax) or absmax < 0:
        raise QuantError(f"activation range {absmax} is not finite and non-negative")
    return float(golden.compute_scale(np.float64(absmax), INT8, "tensor"))


def quantize_act(
    x: torch.Tensor, mode: ActMode, static_scale: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 activation codes as integer values (int64 [T, K]) and their scale.

    ``a = int8.encode(clip(x / s, ±127))`` in float64; s is ``static_scale`` or per
    token ``max_k |x[t,k]| / 127`` ([T, 1]; :func:`golden.compute_scale` per ``"token"``,
    so an all-zero token gets ``golden.quantize.ZERO_SLICE_SCALE``).
    """
    x64 = x.to(torch.float64)
    if mode == "int8-static":
        if static_scale is None:
            raise QuantError("int8-static activations need a calibrated scale")
        scale = torch.tensor(static_scale, dtype=torch.float64)
    elif mode == "int8-token":
        scale = torch.from_numpy(golden.compute_scale(x64.detach().numpy(), INT8, "token"))
    else:
        raise QuantError(f"quantize_act: mode {mode!r} is not an int8 mode")
    q = (x64 / scale).clamp(-INT8.max_abs, INT8.max_abs)
    # int8 codes are two's complement: the integer value is the grid value itself.
    return grid_of(INT8).round(q).to(torch.int64), scale


def fake_quant_act(x: torch.Tensor, mode: ActMode, static_scale: float | None = None):
    """Fake-quantized activations ``a · s`` in x's dtype (identity for ``"fp"``)."""
    if mode == "fp":
        return x
    a, s = quantize_act(x, mode, static_scale)
    return (a.to(torch.float64) * s).to(x.dtype)


@dataclass(frozen=True)
class LinearSpec:
    """How one linear is quantized: formats and granularities."""

    weight_format: str
    acts: ActMode = "int8-static"
    group_size: int | None = None

    def __post_init__(self) -> None:
        golden.get(self.weight_format)  # raises FormatError listing known names
        if self.acts not in ACT_MODES:
            raise QuantError(f"unknown activation mode {self.acts!r}; use one of {ACT_MODES}")


class QuantLinear(nn.Module):
    """A linear layer with quantized weights (codes + scales) and int8 activations.

    Buffers: ``w_codes`` [N, K] (int64 codes of ``weight_format``), ``w_scale``
    ([N] or [N, G, 1] per group), ``bias`` (float32 or None). ``a_scale`` is the static
    activation scale (int8-static), ``out_absmax`` the calibrated output range
    (for export: ``s_out = out_absmax / 127``). See module doc for the two modes.
    ``bypass_above`` (int8-static only): rows with a larger ``max |x|`` bypass int8;
    ``bypassed_rows`` / ``seen_rows`` count them and all rows (``quant.outliers``).
    """

    def __init__(
        self,
        w_codes: torch.Tensor,
        w_scale: torch.Tensor,
        bias: torch.Tensor | None,
        spec: LinearSpec,
        a_scale: float | None = None,
        out_absmax: float | None = None,
        name: str = "",
        bypass_above: float | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.fmt = golden.get(spec.weight_format)
        self.name = name
        self.in_features = w_codes.shape[1]
        self.out_features = w_codes.shape[0]
        self.register_buffer("w_codes", w_codes.to(torch.uint8))
        self.register_buffer("w_scale", w_scale.to(torch.float64))
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        w_hat = dequantize_weight(self.w_codes, self.fmt, self.w_scale, spec.group_size)
        self.register_buffer("w_hat", w_hat.float())
        # Exact-integer fake path: where golden.accumulate itself takes the float32 path
        # (every product and partial sum below 2**24), a float32 matmul of the integers is exact.
        self.exact_float32 = (
            not spec.group_size
            and spec.acts != "fp"
            and golden.accumulate_path(self.in_features, INT8.max_int, self.fmt.max_int)
            == "float32"
        )
        if self.exact_float32:
            w_int = torch.from_numpy(self.fmt.decode_ints(self.w_codes_np)).float()
            self.register_buffer("w_int", w_int)
        if spec.acts == "int8-static" and a_scale is None:
            raise QuantError(f"{name}: int8-static activations need a calibrated a_scale")
        if bypass_above is not None and (spec.acts != "int8-static" or not bypass_above > 0):
            raise QuantError(
                f"{name}: an outlier bypass needs int8-static activations and a positive "
                f"threshold, got {spec.acts} and {bypass_above}"
            )
        self.a_scale = a_scale
        self.out_absmax = out_absmax
        self.bypass_above = None if bypass_above is None else float(bypass_above)
        self.bypassed_rows = self.seen_rows = 0
        self.mode = "fake"
        # Set in integer mode when record_acc: the int8 inputs golden.accumulate got, and its
        # accumulators (of the last forward call).
        self.last_a: np.ndarray | None = None
        self.last_acc: np.ndarray | None = None
        self.record_acc = False

    @property
    def w_codes_np(self) -> np.ndarray:
        """Weight codes [N, K] as a numpy uint8 array."""
        return self.w_codes.numpy()

    @property
    def w_scale_channel(self) -> np.ndarray:
        """Per-output-channel scales [N] (float64); raises for group scales."""
        if self.spec.group_size:
            raise QuantError(
                f"{self.name}: per-group scales are software-only (not mappable onto the array)"
            )
        return self.w_scale.reshape(-1).numpy()

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, weights={self.fmt.name}, "
            f"acts={self.spec.acts}, group={self.spec.group_size}, mode={self.mode}, "
            f"bypass_above={self.bypass_above}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        bypass = self.bypass_rows(x2)
        if bypass is None or not bypass.any():
            y = self._product(x2)
        else:
            # One float product for the bypassed rows in both modes keeps them bit-identical.
            y = torch.empty(x2.shape[0], self.out_features, dtype=torch.float32)
            y[bypass] = x2[bypass].float() @ self.w_hat.T
            if not bypass.all():
                y[~bypass] = self._product(x2[~bypass])
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def bypass_rows(self, x2: torch.Tensor) -> torch.Tensor | None:
        """Which rows of x2 [T, K] bypass int8 (``max_k |x| > bypass_above``, compared in
        float64), counted in ``bypassed_rows`` / ``seen_rows``; None without a bypass."""
        if self.bypass_above is None:
            return None
        rows = x2.detach().abs().amax(dim=1).double() > self.bypass_above
        self.bypassed_rows += int(rows.sum())
        self.seen_rows += int(rows.numel())
        return rows

    def _product(self, x2: torch.Tensor) -> torch.Tensor:
        """``Q_a(x2) · Q_w(W)ᵀ`` (float32 [T, N], no bias) in the current mode."""
        if self.mode == "integer" and self.spec.acts != "fp":
            return self._forward_integer(x2)
        if self.spec.acts == "fp":
            return x2.float() @ self.w_hat.T
        a, s = quantize_act(x2, self.spec.acts, self.a_scale)
        if self.exact_float32:
            acc = (a.float() @ self.w_int.T).double()  # exact integers
            return (acc * 2.0**-self.fmt.frac_bits * s * self.w_scale.reshape(-1)).float()
        return (a.to(torch.float64) * s).float() @ self.w_hat.T

    def require_no_bypass(self, what: str) -> None:
        """Raise :class:`QuantError` if rows of this layer can bypass int8 (``what`` needs
        every row on the int8 path with the one static scale)."""
        if self.bypass_above is not None:
            raise QuantError(
                f"{self.name}: {what} needs every row through int8 with one static scale, but "
                f"rows with max |x| > {self.bypass_above:.6g} bypass it (outlier factor); "
                "quantize without --outlier-factor (QuantConfig.outlier_factor=None) for this"
            )

    def integer_inputs(self, x2: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Golden int8 activation values and scale(s) of x2 [T, K] (numpy, float64 math);
        refused for a layer with an outlier bypass (its inputs are not all int8)."""
        self.require_no_bypass("integer_inputs (the int8 inputs of every row)")
        return self._int8_inputs(x2)

    def _int8_inputs(self, x2: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x64 = x2.detach().to(torch.float64).numpy()
        if self.spec.acts == "int8-static":
            return golden.quantize_activations(x64, self.a_scale), np.float64(self.a_scale)
        scale = golden.compute_scale(x64, INT8, "token")
        return INT8.decode_ints(golden.quantize(x64, INT8, scale, "token")), scale

    def _forward_integer(self, x2: torch.Tensor) -> torch.Tensor:
        a, s_a = self._int8_inputs(x2)
        acc = golden.accumulate(a, self.w_codes_np, self.fmt)
        if self.record_acc:
            self.last_a, self.last_acc = a, acc
        y = acc * 2.0**-self.fmt.frac_bits * s_a * self.w_scale_channel
        return torch.from_numpy(y).float()


def set_mode(model: nn.Module, mode: Literal["fake", "integer"]) -> int:
    """Switch every :class:`QuantLinear` in model to ``"fake"`` or ``"integer"``; returns count."""
    if mode not in ("fake", "integer"):
        raise QuantError(f"mode must be 'fake' or 'integer', got {mode!r}")
    n = 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            if mode == "integer" and m.spec.group_size:
                raise QuantError(f"{m.name}: per-group weights cannot run in integer mode")
            m.mode = mode
            n += 1
    return n
