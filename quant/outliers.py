"""Outlier tokens kept out of static activation ranges, their rows carried past int8.

With per-tensor static int8 activations a few tokens (the attention-sink token at position
0, whose activations are massive, and a few others) set each layer's range, so every other
token is quantized with a huge step. With an outlier factor, calibration leaves those tokens
out of the range (:func:`static_act_range`) and a :class:`quant.qlinear.QuantLinear` given
the threshold ``bypass_above`` runs the rows that would clip as W4A16 (float activations,
the same 4-bit weights), counting them (:func:`bypass_counts`).
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import QuantError
from .qlinear import INT8, QuantLinear, act_scale_from_absmax


def static_act_range(
    x: torch.Tensor, outlier_factor: float | None = None
) -> tuple[float, float | None]:
    """Static int8 scale of calibration inputs x [T, K], and the outlier bypass threshold.

    Without ``outlier_factor``: ``s_a = act_scale_from_absmax(max |x|)``, no bypass (None).
    With it, per token ``r_t = max_k |x[t, k]|`` and ``m = median_t r_t`` (the mean of the
    two middle values for even T); tokens with ``r_t > outlier_factor · m`` are outliers and
    left out: ``s_a = act_scale_from_absmax(max of the other r_t)``, and rows beyond
    ``127 · s_a`` (those that would clip) bypass int8: the threshold is ``127 · s_a``.
    """
    if x.ndim != 2 or x.shape[0] == 0:
        raise QuantError(f"calibration inputs must be [tokens >= 1, K], got {tuple(x.shape)}")
    if outlier_factor is None:
        return act_scale_from_absmax(float(x.abs().max())), None
    token_max = x.detach().abs().amax(dim=1).double()
    v = token_max.sort().values
    median = 0.5 * float(v[(len(v) - 1) // 2] + v[len(v) // 2])
    a_scale = act_scale_from_absmax(float(token_max[token_max <= outlier_factor * median].max()))
    return a_scale, INT8.max_abs * a_scale


def bypass_counts(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``name -> (bypassed_rows, seen_rows)`` of every :class:`QuantLinear` with an outlier
    bypass, counted since it was built or :func:`reset_bypass_counts`."""
    return {
        m.name: (m.bypassed_rows, m.seen_rows)
        for m in model.modules()
        if isinstance(m, QuantLinear) and m.bypass_above is not None
    }


def reset_bypass_counts(model: nn.Module) -> None:
    """Zero the bypassed / seen row counts of every :class:`QuantLinear` in model."""
    for m in model.modules():
        if isinstance(m, QuantLinear):
            m.bypassed_rows = m.seen_rows = 0
