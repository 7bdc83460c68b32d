"""GPTQ/OPTQ weight quantization onto any registered format.

For a linear ``y = x Wᵀ`` with calibration inputs X, the Hessian of the layer
output error is ``H = 2/T · XᵀX``. GPTQ quantizes the columns of W in order
(with ``act_order``, in decreasing ``diag H``: the inputs with the most energy first, while
the most columns are left to absorb their error; codes come back in the original order);
after rounding column k to the nearest value of the format
(``Format.grid`` via :class:`quant.qlinear.TorchGrid`, on the fixed
per-output-channel absmax scale), it spreads the rounding error over the
columns not yet quantized: ``W[:, j] -= e · Hinv[k, j] / Hinv[k, k]`` for j > k,
with ``Hinv`` the upper Cholesky factor of ``(H + λI)^-1`` and damping
``λ = damp · mean(diag H)``. Work is blocked (``block_size`` columns) with lazy
batch updates, as in the OPTQ paper. Columns whose input is always zero
(``H[k,k] = 0``) are set to zero.
"""

from __future__ import annotations

import torch

import golden
from golden import Format

from .errors import QuantError
from .qlinear import check_finite, grid_of, weight_scale


class HessianAccumulator:
    """Running ``H = 2/T · Σ_t x_t x_tᵀ`` over calibration inputs (float64)."""

    def __init__(self, k: int):
        self.h = torch.zeros(k, k, dtype=torch.float64)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        x2 = x.reshape(-1, x.shape[-1]).to(torch.float64)
        t = x2.shape[0]
        self.h *= self.tokens / (self.tokens + t)
        self.tokens += t
        self.h += (2.0 / self.tokens) * (x2.T @ x2)


def gptq_quantize(
    w: torch.Tensor,
    h: torch.Tensor,
    fmt: Format | str,
    block_size: int = 128,
    damp: float = 0.01,
    scale: torch.Tensor | None = None,
    act_order: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GPTQ codes and per-output-channel scales of ``w [N, K]`` given ``h [K, K]``.

    Returns ``(codes [N, K] int64, scale [N, 1] float64)``; ``scale`` is the given one
    (e.g. :func:`quant.clipping.mse_clip_scale`) or the absmax scale of the original w
    (``max_k |W[n,k]| / F.max_abs``), as for RTN.
    """
    fmt = golden.get(fmt)
    check_finite(w, "weight")
    check_finite(h, "Hessian")
    n, k = w.shape
    if h.shape != (k, k):
        raise QuantError(f"Hessian shape {tuple(h.shape)} does not match K={k}")
    if not 0 <= damp < 1:
        raise QuantError(f"GPTQ damping must be in [0, 1), got {damp}")
    grid = grid_of(fmt)
    if scale is None:
        scale = weight_scale(w, fmt)  # [N, 1] float64, exactly the RTN scale
    elif scale.shape != (n, 1):
        raise QuantError(f"GPTQ scale has shape {tuple(scale.shape)}; expected ({n}, 1)")
    if act_order:
        perm = torch.argsort(torch.diag(h), descending=True, stable=True)
        codes, _ = gptq_quantize(w[:, perm], h[perm][:, perm], fmt, block_size, damp, scale)
        out = torch.empty_like(codes)
        out[:, perm] = codes
        return out, scale
    # float32 like the reference OPTQ implementation (H is accumulated in float64).
    W = w.to(torch.float32).clone()
    H = h.to(torch.float32).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(k, dtype=torch.float32)
    try:
        L = torch.linalg.cholesky(H)
        hinv = torch.cholesky_inverse(L)
        hinv = torch.linalg.cholesky(hinv, upper=True)
    except RuntimeError as e:
        raise QuantError(
            f"GPTQ: Hessian is not positive definite even with damping {damp}; "
            "use more calibration tokens or a larger damp"
        ) from e
    codes = torch.zeros(n, k, dtype=torch.int64)
    s_col = scale[:, 0].float().contiguous()
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        w1 = W[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = w1[:, i]
            idx = grid.index((col / s_col).clamp_(-fmt.max_abs, fmt.max_abs))
            codes[:, i1 + i] = grid.codes[idx]
            q = grid.values[idx].float() * s_col
            e = (col - q) / hinv1[i, i]
            w1[:, i:] -= e.unsqueeze(1) * hinv1[i, i:].unsqueeze(0)
            err1[:, i] = e
        W[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return codes, scale
