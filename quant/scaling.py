"""Per-input-channel scaling (SmoothQuant, AQAS) and folding into the preceding op.

A linear ``y = x Wᵀ`` is unchanged by ``x -> x / s``, ``W -> W · diag(s)`` for any
positive per-input-channel ``s``. The division by s is folded into the
operation that produces x, so the deployed layer stays integer-only:

========  =========================================  ===============================
group     linears (read the same input)              s folds into
========  =========================================  ===============================
qkv       q/k/v_proj                                 input_layernorm (LLaMA) /
                                                     self_attn_layer_norm (OPT) weight
                                                     (and LayerNorm bias)
o         o_proj (LLaMA) / out_proj (OPT)            rows of v_proj (and its bias)
gate/up   gate_proj, up_proj (LLaMA) / fc1 (OPT)     post_attention_layernorm /
                                                     final_layer_norm
down      down_proj (LLaMA) / fc2 (OPT)              rows of up_proj (LLaMA:
                                                     silu(gate)·up is linear in up) /
                                                     fc1 (OPT: ReLU is positively
                                                     homogeneous)
========  =========================================  ===============================

GQA: o_proj input channel ``h·d_head + d`` is value channel ``g·d_head + d`` of KV
head ``g = h // n_rep``. A scale folds into v_proj only if it is equal across
the n_rep query heads sharing a KV head, so the o group's free scales live in
the v domain (``n_kv·d_head``) and are expanded to the o_proj inputs; ranges
are reduced over the shared heads (max) before choosing scales.

Scales, per free channel j with ranges ``X_j = max|X[:, j]|`` and ``W_j = max|W[:, j]|``
(max over the group's linears):

- SmoothQuant: ``s_j = X_j^α / W_j^(1-α)`` with a fixed migration strength α.
- AQAS: the same family, with α chosen from a grid to minimise the summed output
  MSE ``Σ_linears mean((Q_a(X/s) Q_w(W·s)ᵀ - X Wᵀ)²)`` with both weight and activation
  fake quantization applied (the paper's objective), on calibration inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import golden

from .errors import QuantError
from .models import ModelInfo
from .qlinear import ActMode, act_scale_from_absmax, fake_quant_act, grid_of, weight_scale

#: Scale bounds keep folded weights finite when a channel range is (nearly) zero.
S_MIN, S_MAX = 1e-5, 1e5
DEFAULT_ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))


class ScalingError(QuantError):
    """Scaling cannot be applied to this model; the message says why."""


@dataclass(frozen=True)
class ScaleGroup:
    """Linears that read one input, and where their input scale folds."""

    name: str  # "qkv", "o", "gate/up", "down"
    linears: tuple[str, ...]  # relative names inside the decoder layer
    prev: str  # relative name of the producing module
    prev_kind: str  # "norm" (scale its weight/bias) or "rows" (scale output rows)
    n_rep: int = 1  # query heads per KV head (o group under GQA)
    head_dim: int = 0
    foldable: bool = True  # False: no op to fold into (post-LN OPT, non-ReLU fc1)

    def expand(self, s: torch.Tensor) -> torch.Tensor:
        """Free scales -> scales of the linears' input channels (repeats under GQA)."""
        if self.n_rep == 1:
            return s
        return s.reshape(-1, 1, self.head_dim).expand(-1, self.n_rep, -1).reshape(-1)

    def reduce(self, r: torch.Tensor) -> torch.Tensor:
        """Per-input-channel ranges -> per-free-channel ranges (max over shared heads)."""
        if self.n_rep == 1:
            return r
        return r.reshape(-1, self.n_rep, self.head_dim).amax(dim=1).reshape(-1)


def scale_groups(info: ModelInfo, layer: nn.Module) -> list[ScaleGroup]:
    """The four input-sharing groups of one decoder layer (``foldable`` says if s can fold)."""
    if info.arch == "llama":
        return [
            ScaleGroup(
                "qkv",
                ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                "input_layernorm",
                "norm",
            ),
            ScaleGroup(
                "o", ("self_attn.o_proj",), "self_attn.v_proj", "rows", info.n_rep, info.head_dim
            ),
            ScaleGroup(
                "gate/up", ("mlp.gate_proj", "mlp.up_proj"), "post_attention_layernorm", "norm"
            ),
            ScaleGroup("down", ("mlp.down_proj",), "mlp.up_proj", "rows"),
        ]
    pre_ln = bool(getattr(layer, "do_layer_norm_before", True))
    relu = isinstance(layer.activation_fn, nn.ReLU)
    groups = [
        ScaleGroup(
            "qkv",
            ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            "self_attn_layer_norm",
            "norm",
            foldable=pre_ln,
        ),
        ScaleGroup("o", ("self_attn.out_proj",), "self_attn.v_proj", "rows", 1, info.head_dim),
        ScaleGroup("gate/up", ("fc1",), "final_layer_norm", "norm", foldable=pre_ln),
        ScaleGroup("down", ("fc2",), "fc1", "rows", foldable=relu),
    ]
    return groups


def smooth_scales(x_range: torch.Tensor, w_range: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant family ``s = X^α / W^(1-α)`` per channel, clamped to [S_MIN, S_MAX].

    Channels with a zero activation or weight range get s = 1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ScalingError(f"migration strength alpha must be in [0, 1], got {alpha}")
    x = x_range.to(torch.float64)
    w = w_range.to(torch.float64)
    ok = (x > 0) & (w > 0)
    s = torch.where(ok, x.clamp(min=1e-30) ** alpha / w.clamp(min=1e-30) ** (1 - alpha), 1.0)
    return s.clamp(S_MIN, S_MAX)


def group_weight_range(group: ScaleGroup, layer: nn.Module) -> torch.Tensor:
    """``max`` over the group's linears and output rows of ``|W[:, k]|`` per input channel."""
    r = torch.stack(
        [layer.get_submodule(n).weight.detach().abs().amax(dim=0) for n in group.linears]
    )
    return r.amax(dim=0).to(torch.float64)


def fold_scales(layer: nn.Module, group: ScaleGroup, s_free: torch.Tensor) -> None:
    """Apply ``x -> x / s`` in the producing op and ``W -> W · diag(s)`` in the group, in place."""
    if not group.foldable:
        raise ScalingError(f"{group.name}: no preceding op to fold a scale into ({group.prev})")
    s_free = s_free.to(torch.float64)
    if not torch.isfinite(s_free).all() or (s_free <= 0).any():
        raise ScalingError(f"{group.name}: scales must be positive and finite")
    prev = layer.get_submodule(group.prev)
    with torch.no_grad():
        if group.prev_kind == "norm":
            if prev.weight is None:
                raise ScalingError(f"{group.prev} has no affine weight to fold a scale into")
            prev.weight.copy_((prev.weight.double() / s_free).to(prev.weight.dtype))
            if getattr(prev, "bias", None) is not None:
                prev.bias.copy_((prev.bias.double() / s_free).to(prev.bias.dtype))
        else:
            prev.weight.copy_((prev.weight.double() / s_free[:, None]).to(prev.weight.dtype))
            if prev.bias is not None:
                prev.bias.copy_((prev.bias.double() / s_free).to(prev.bias.dtype))
        s = group.expand(s_free)
        for n in group.linears:
            lin = layer.get_submodule(n)
            lin.weight.copy_((lin.weight.double() * s[None, :]).to(lin.weight.dtype))


def _fake_quant_weight32(w: torch.Tensor, fmt: str, group_size: int | None) -> torch.Tensor:
    """RTN fake quant in float32 (the search's proxy; the deployed weights use float64)."""
    w32 = w.float()
    scale = weight_scale(w32, fmt, group_size).float()
    g = w32.reshape(w.shape[0], -1, group_size) if group_size else w32
    f = golden.get(fmt)
    q = grid_of(f).round((g / scale).clamp_(-f.max_abs, f.max_abs)).float() * scale
    return q.reshape(w.shape)


@dataclass(frozen=True)
class SearchResult:
    """AQAS outcome for one group: chosen alpha, its scales, loss per alpha."""

    alpha: float
    s_free: torch.Tensor
    losses: dict[float, float]


def aqas_search(
    group: ScaleGroup,
    layer: nn.Module,
    x: torch.Tensor,
    x_range: torch.Tensor,
    weight_format: str,
    acts: ActMode,
    alphas: tuple[float, ...] = DEFAULT_ALPHAS,
    group_size: int | None = None,
    weight_quantizer: Callable | None = None,
) -> SearchResult:
    """Choose α minimising the group's summed output MSE with fake-quant W and A.

    ``x`` [T, K] are calibration inputs of the group (a token sample), ``x_range``
    [K] their per-channel absmax over all calibration tokens (sets the static
    activation scale ``max_k(x_range / s) / 127``). Candidates: the SmoothQuant
    family ``s = X^α / W^(1-α)`` for every α in ``alphas``.
    """
    x = x.reshape(-1, x.shape[-1]).to(torch.float32)
    weights = {n: layer.get_submodule(n).weight.detach().float() for n in group.linears}
    refs = {n: x @ w.T for n, w in weights.items()}
    xr = group.reduce(x_range.to(torch.float64))
    wr = group.reduce(torch.stack([w.abs().amax(dim=0) for w in weights.values()]).amax(dim=0))
    fq = weight_quantizer or (lambda w: _fake_quant_weight32(w, weight_format, group_size))
    losses: dict[float, float] = {}
    best: tuple[float, float, torch.Tensor] | None = None
    for alpha in alphas:
        s_free = smooth_scales(xr, wr, alpha)
        s = group.expand(s_free)
        xs = x.double() / s
        a_scale = act_scale_from_absmax(float((x_range.double() / s).max()))
        xq = fake_quant_act(xs, acts, a_scale).float()
        s32 = s.float()
        loss = 0.0
        for n, w in weights.items():
            wq = fq(w * s32[None, :]).float()
            loss += float(((xq @ wq.T - refs[n]) ** 2).mean())
        losses[alpha] = loss
        if best is None or loss < best[0]:
            best = (loss, alpha, s_free)
    assert best is not None
    return SearchResult(alpha=best[1], s_free=best[2], losses=losses)
