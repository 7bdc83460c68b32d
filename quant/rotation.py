"""Online Hadamard rotation of a linear's input (``QuantConfig.rotate_groups``).

``y = x Wᵀ = (x Q)(W Q)ᵀ`` with ``Q = H / √K`` (:mod:`golden.hadamard`): the weights are
rotated offline, before scaling-aware rounding (RTN or GPTQ on the rotated inputs' Hessian),
and :class:`RotatedInput` rotates the activations online, in float64 through golden's
butterflies, before the int8 quantizer of the wrapped :class:`quant.qlinear.QuantLinear`.
Fake and integer mode share that rotation, so they stay bit-identical; the wrapped linear
sees (and an export captures) the rotated int8 codes, which is what the array computes on.
"""

from __future__ import annotations

import torch
from torch import nn

from golden import hadamard

from .errors import QuantError
from .qlinear import QuantLinear


def check_rotatable(k: int, what: str) -> None:
    """Raise :class:`QuantError` unless golden has a Hadamard matrix of order ``k``."""
    if not hadamard.hadamard_size_ok(k):
        raise QuantError(
            f"{what}: no Hadamard rotation of size {k} (sizes m*2^p, m in 1, 12, 20, 28, 36: "
            "e.g. 1536 = 12*128, 576 = 36*16); drop this layer type from --rotate"
        )


def rotate_rows(t: torch.Tensor) -> torch.Tensor:
    """``t Q`` along the last axis (float64 butterflies, returned in ``t``'s float dtype)."""
    out = hadamard.rotate(t.detach().to(torch.float64).numpy())
    return torch.from_numpy(out).to(t.dtype if t.is_floating_point() else torch.float32)


class RotatedInput(nn.Module):
    """``inner(x Q)``: a quantized linear whose input is rotated online."""

    def __init__(self, inner: QuantLinear):
        super().__init__()
        check_rotatable(inner.in_features, inner.name)
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(rotate_rows(x))

    def extra_repr(self) -> str:
        return f"hadamard {hadamard.hadamard_factors(self.inner.in_features)}"
