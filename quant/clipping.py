"""MSE clipping search for weight scales, per output channel or per group, any format.

The absmax scale ``s = max|W| / F.max_abs`` (:func:`quant.qlinear.weight_scale`) puts the
largest weight of a row exactly on the format's largest value and spends the rest of the
grid on a range that few weights use. A smaller scale ``r · s`` (``r`` < 1) clips that
weight but rounds the many small ones more finely. :func:`mse_clip_scale` tries the ratios
:data:`CLIP_RATIOS` and keeps, per row (or group), the one with the smallest squared
rounding error ``Σ_k h_k (W[n,k] − Q(W[n,k]))²``, where ``h_k`` is the mean square of input
channel ``k`` on the calibration data when it is given (``diag H``: the error as the layer's
output sees it, to first order), else 1 (plain MSE). The grid is the format's own (dINT4's
special value included), so the search sees exactly what RTN and GPTQ will round to.

The result is an ordinary per-channel (or per-group) scale: the hardware is unchanged (the
requantizer's per-channel multiplier absorbs it).
"""

from __future__ import annotations

import torch

import golden
from golden import Format

from .errors import QuantError
from .qlinear import check_finite, grid_of, weight_scale

#: Ratios of the absmax scale tried, largest first (ties keep the larger scale).
CLIP_RATIOS: tuple[float, ...] = tuple(round(1.0 - 0.05 * i, 2) for i in range(11))  # 1 .. 0.5


def mse_clip_scale(
    w: torch.Tensor,
    fmt: Format | str,
    group_size: int | None = None,
    importance: torch.Tensor | None = None,
    ratios: tuple[float, ...] = CLIP_RATIOS,
) -> torch.Tensor:
    """Scales ``[N, 1]`` (or ``[N, K/G, 1]``) minimising the (weighted) rounding error.

    ``importance`` ([K], non-negative, e.g. ``diag H``) weights each input channel's error;
    None weights them equally. Returns float64, the shape of :func:`weight_scale`.
    """
    fmt = golden.get(fmt)
    check_finite(w, "weight")
    if not ratios or any(not 0.0 < r <= 1.0 for r in ratios):
        raise QuantError(f"clip ratios must be in (0, 1], got {ratios}")
    n, k = w.shape
    if group_size and k % group_size:
        raise QuantError(f"K={k} is not a multiple of group size {group_size}")
    imp = torch.ones(k, dtype=torch.float64) if importance is None else importance.double()
    if imp.shape != (k,):
        raise QuantError(f"importance has shape {tuple(imp.shape)}; expected ({k},)")
    check_finite(imp, "clip importance")
    if (imp < 0).any():
        raise QuantError("clip importance must be non-negative (e.g. diag of the Hessian)")
    base = weight_scale(w, fmt, group_size)  # [N,1] or [N,G,1]
    g = group_size or k
    w64 = w.detach().to(torch.float64).reshape(n, -1, g)
    imp = imp.reshape(1, -1, g)
    b = base.reshape(n, -1, 1)
    grid = grid_of(fmt)
    best_err = best = None
    for r in ratios:
        s = b * r
        q = grid.round((w64 / s).clamp(-fmt.max_abs, fmt.max_abs)) * s
        err = ((w64 - q) ** 2 * imp).sum(dim=-1, keepdim=True)  # [N, G, 1]
        if best is None:
            best_err, best = err, s
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, s, best)
    return best.reshape(base.shape)
