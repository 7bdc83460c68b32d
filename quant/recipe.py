"""A quantization recipe (:class:`QuantConfig`): method, formats, activation modes per layer
type, and the knobs of AQAS, SmoothQuant and GPTQ. :mod:`quant.pipeline` applies it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import QuantError
from .qlinear import ActMode, LinearSpec
from .scaling import DEFAULT_ALPHAS

METHODS = ("fp", "rtn", "smoothquant", "aqas", "gptq", "aqas+gptq")
FOLD_ORDER = ("o", "qkv", "down", "gate/up")
WEIGHT_CLIPS = ("absmax", "mse")


@dataclass(frozen=True)
class QuantConfig:
    """One quantization recipe.

    ``method`` in :data:`METHODS`; ``weight_format`` a golden format name;
    ``acts`` in ``int8-static | int8-token | fp``; ``group_size`` (per-group weights, software
    only) is the largest divisor of each linear's K not above it (:meth:`group_size_for`);
    ``token_groups`` the layer types
    (:data:`FOLD_ORDER` names: ``down`` = the ``down_proj`` input) whose activations are per
    token while the others are static; ``group_size`` for per-group
    weights (software only, RTN/SmoothQuant/AQAS); ``alpha`` SmoothQuant's
    migration strength; ``alphas`` the AQAS grid; ``search_tokens`` tokens sampled
    for the AQAS search; ``gptq_damp``/``gptq_block`` GPTQ's damping and block;
    ``outlier_factor`` (int8-static only, > 1) keeps tokens whose max |x| exceeds that many
    times the median token's out of each static range, and lets the rows beyond the range
    bypass int8 (:func:`quant.outliers.static_act_range`); ``weight_clip`` ``absmax`` or
    ``mse`` (per-channel/group clipping search, :mod:`quant.clipping`, weighted by the
    inputs' mean squares when there is calibration data); ``act_order`` GPTQ's columns in
    decreasing ``diag H``; ``rotate_groups`` the layer types whose input is Hadamard-rotated
    online (:mod:`quant.rotation`; ``down``: K = 1536 = 12 * 128 on SmolLM2).
    """

    method: str = "rtn"
    weight_format: str = "dint4"
    acts: ActMode = "int8-static"
    group_size: int | None = None
    alpha: float = 0.5
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    search_tokens: int = 256
    gptq_damp: float = 0.01
    gptq_block: int = 128
    token_groups: tuple[str, ...] = ()
    outlier_factor: float | None = None
    weight_clip: str = "absmax"
    act_order: bool = False
    rotate_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "token_groups", tuple(self.token_groups))
        object.__setattr__(self, "rotate_groups", tuple(self.rotate_groups))
        bad = sorted(set(self.rotate_groups) - set(FOLD_ORDER))
        if bad:
            raise QuantError(
                f"unknown layer type {bad[0]!r} to rotate; use one of {', '.join(FOLD_ORDER)}"
            )
        if self.rotate_groups and self.method == "fp":
            raise QuantError("a rotation is part of a quantization recipe: not with method fp")
        bad = sorted(set(self.token_groups) - set(FOLD_ORDER))
        if bad:
            raise QuantError(
                f"unknown layer type {bad[0]!r} for per-token activations; use one of "
                f"{', '.join(FOLD_ORDER)}"
            )
        if self.token_groups and self.acts != "int8-static":
            raise QuantError(
                "per-token layer types mix with static activations: use acts int8-static "
                f"with them, not {self.acts}"
            )
        if self.outlier_factor is not None:
            self._check_outlier_factor()
        if self.weight_clip not in WEIGHT_CLIPS:
            raise QuantError(
                f"unknown weight clipping {self.weight_clip!r}; use one of {WEIGHT_CLIPS}"
            )
        if self.method not in METHODS:
            raise QuantError(f"unknown method {self.method!r}; use one of {METHODS}")
        if self.act_order and not self.method.endswith("gptq"):
            raise QuantError("activation ordering is a GPTQ option: use a gptq method with it")
        LinearSpec(self.weight_format, self.acts, self.group_size)  # validates both
        if self.group_size and "gptq" in self.method:
            raise QuantError("GPTQ here is per output channel; drop --group-size")
        if not 0.0 <= self.alpha <= 1.0:
            raise QuantError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.method == "fp" and self.acts != "fp":
            raise QuantError("method 'fp' keeps float weights; use acts 'fp' with it")
        if self.group_size is not None and self.group_size < 1:
            raise QuantError(f"group size must be >= 1, got {self.group_size}")
        if self.search_tokens < 1:
            raise QuantError(f"search_tokens must be >= 1, got {self.search_tokens}")
        if not 0.0 <= self.gptq_damp < 1.0:
            raise QuantError(f"GPTQ damping must be in [0, 1), got {self.gptq_damp}")
        if self.gptq_block < 1:
            raise QuantError(f"GPTQ block must be >= 1, got {self.gptq_block}")

    def _check_outlier_factor(self) -> None:
        f = self.outlier_factor
        if self.acts != "int8-static":
            raise QuantError(
                "an outlier factor keeps tokens out of static activation ranges: use acts "
                f"int8-static with it, not {self.acts} (or drop the outlier factor)"
            )
        if not (math.isfinite(f) and f > 1.0):
            raise QuantError(
                "outlier factor must be a finite number > 1 (a token is an outlier when its "
                f"max |x| exceeds factor x the median token's), got {f}"
            )
        if set(self.token_groups) == set(FOLD_ORDER):
            raise QuantError(
                "every layer type is per token, so there is no static range to keep outliers "
                "out of; drop the outlier factor or a per-token layer type"
            )

    @property
    def scaling(self) -> str | None:
        if self.method == "smoothquant":
            return "smoothquant"
        if self.method.startswith("aqas"):
            return "aqas"
        return None

    @property
    def weight_options(self) -> str:
        """The weight-rounding options as a label suffix: ``""``, ``"+MSE"``, ``"+act-order"``
        or both (``"+act-order+MSE"``)."""
        return ("+act-order" if self.act_order else "") + (
            "+MSE" if self.weight_clip == "mse" else ""
        )

    @property
    def uses_gptq(self) -> bool:
        return self.method.endswith("gptq")

    @property
    def spec(self) -> LinearSpec:
        return LinearSpec(self.weight_format, self.acts, self.group_size)

    def group_size_for(self, k: int) -> int | None:
        """The group size used on an input of ``k`` channels: the largest divisor of ``k``
        not above ``group_size`` (SmolLM2's K = 576 takes 96 for a requested 128; 1536
        takes 128), so every group is whole and none is ragged; None per channel."""
        if not self.group_size:
            return None
        return max(d for d in range(1, min(self.group_size, k) + 1) if k % d == 0)

    def spec_for(self, group: str, k: int) -> LinearSpec:
        """The :class:`LinearSpec` of a linear of scale group ``group`` with ``k`` inputs."""
        return LinearSpec(self.weight_format, self.acts_of(group), self.group_size_for(k))

    def acts_of(self, group: str) -> ActMode:
        """The activation mode of a scale group's inputs (``token_groups`` are per token)."""
        return "int8-token" if group in self.token_groups else self.acts

    @property
    def act_mode(self) -> str:
        """``static`` | ``per-token`` | ``fp`` | ``static+<types>-token`` (e.g.
        ``static+down-token``: per token at the ``down_proj`` input only), then
        ``+outlier-bypass`` with an outlier factor (e.g. ``static+down-token+outlier-bypass``:
        the static layer types bypass outlier rows; a per-token type has no static range)."""
        mode = {"int8-static": "static", "int8-token": "per-token", "fp": "fp"}[self.acts]
        if self.token_groups:
            mode += "+" + ",".join(self.token_groups) + "-token"
        if self.outlier_factor is not None:
            mode += "+outlier-bypass"
        if self.rotate_groups:
            mode += "+" + ",".join(self.rotate_groups) + "-hadamard"
        return mode
