"""Quantize a whole model, layer by layer: scaling, weight rounding, static activation ranges.

Calibration inputs: by default the FP model's activations on the calibration
sequences (one decoder pass, :func:`collect_group_inputs`; reusable across
recipes calibrated on the same data, as the comparison table does). With
``sequential=True`` each layer is instead calibrated on the outputs of the
already-quantized layers before it (GPTQ's schedule; one extra layer pass each).

For each decoder layer:

1. scaling methods choose per-input-channel scales per input group (q/k/v, o,
   gate/up, down; see :mod:`quant.scaling`) — SmoothQuant with a fixed α, AQAS
   with α searched on a token sample — and fold them, groups in the order o,
   qkv, down, gate/up (a fold into v/up rows happens before those rows are
   quantized; per-row scaling does not change per-row RTN either way);
2. weights of the scaled linears are rounded per output channel (RTN, or GPTQ
   with the Hessian of the scaled inputs ``X / s``); the static activation scale
   is ``max_{t,k} |X[t,k] / s_k| / 127`` over all calibration tokens (with an outlier
   factor, over the non-outlier tokens only, and rows beyond it bypass int8:
   :mod:`quant.outliers`);
3. the linears are replaced by :class:`quant.qlinear.QuantLinear`; with
   ``output_ranges`` each one's output range on the calibration inputs is stored
   (``out_absmax``, the export's s_out).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

import golden

from .calibrate import batches
from .clipping import mse_clip_scale
from .errors import QuantError
from .gptq import gptq_quantize
from .models import ModelInfo, decoder_layers, layer_linears
from .outliers import reset_bypass_counts, static_act_range
from .qlinear import QuantLinear, quantize_weight
from .recipe import FOLD_ORDER, METHODS, QuantConfig  # noqa: F401 (re-exported)
from .rotation import RotatedInput, check_rotatable, rotate_rows
from .scaling import (
    aqas_search,
    fold_scales,
    group_weight_range,
    scale_groups,
    smooth_scales,
)

log = logging.getLogger(__name__)


@dataclass
class QuantReport:
    """What :func:`quantize_model` chose: α per (layer, group), calibration shape."""

    config: QuantConfig
    calib_shape: tuple[int, int]
    alphas: dict[str, float] = field(default_factory=dict)
    search_losses: dict[str, dict[float, float]] = field(default_factory=dict)
    scales: dict[str, torch.Tensor] = field(default_factory=dict)  # free scales per group
    group_sizes: dict[str, int] = field(default_factory=dict)  # linear name -> group used


class _Stop(Exception):
    pass


def check_model_finite(model: nn.Module) -> None:
    """Raise :class:`QuantError` naming the first parameter with NaN or Inf."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise QuantError(f"model parameter {name} contains NaN or Inf; cannot quantize it")


def capture_layer_inputs(
    model: nn.Module, info: ModelInfo, calib: list[torch.Tensor]
) -> list[tuple[torch.Tensor, dict]]:
    """Hidden states and keyword arguments entering decoder layer 0, per batch."""
    layer0 = decoder_layers(model, info)[0]
    captured: list[tuple[torch.Tensor, dict]] = []

    def hook(_mod, args, kwargs):
        hidden = args[0] if args else kwargs.pop("hidden_states")
        kw = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        captured.append((hidden.detach(), kw))
        raise _Stop

    h = layer0.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for b in calib:
                try:
                    model(input_ids=b, use_cache=False)
                except _Stop:
                    pass
    finally:
        h.remove()
    return captured


def _run_layer(layer: nn.Module, inputs: list[tuple[torch.Tensor, dict]]) -> list[torch.Tensor]:
    outs = []
    with torch.no_grad():
        for hidden, kw in inputs:
            o = layer(hidden, **kw)
            outs.append(o[0] if isinstance(o, tuple) else o)
    return outs


def check_n_layers(n_layers: int | None, total: int) -> int:
    """The number of leading decoder layers to handle: ``n_layers`` (1..total) or all."""
    if n_layers is None:
        return total
    if not 1 <= n_layers <= total:
        raise QuantError(
            f"n_layers must be in 1..{total} (the model has {total} decoder layers), got {n_layers}"
        )
    return n_layers


def collect_group_inputs(
    model: nn.Module,
    info: ModelInfo,
    calib_ids: torch.Tensor,
    batch_tokens: int = 2048,
    progress: bool = True,
    n_layers: int | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Inputs ``[tokens, K]`` (float32) of every scale group of every layer, FP model.

    One forward pass of the decoder (no LM head) with hooks on the first linear of
    each group. The result depends only on the model and ``calib_ids``, so one
    collection serves every recipe calibrated on the same data. With ``n_layers`` only
    the first ``n_layers`` layers are collected and the pass stops after the last of them
    (a layer's inputs depend only on the layers before it: the same tensors, sooner).
    """
    layers = decoder_layers(model, info)
    n = check_n_layers(n_layers, len(layers))
    out: list[dict[str, list[torch.Tensor]]] = [{} for _ in range(n)]
    hooks = []
    for i, layer in enumerate(layers[:n]):
        for g in scale_groups(info, layer):
            out[i][g.name] = []

            def hook(_m, args, _o, i=i, name=g.name):
                out[i][name].append(args[0].detach().reshape(-1, args[0].shape[-1]).float())

            hooks.append(layer.get_submodule(g.linears[0]).register_forward_hook(hook))
    if n < len(layers):

        def stop(*_):
            raise _Stop

        hooks.append(layers[n - 1].register_forward_hook(stop))
    base = model.get_decoder()
    try:
        with torch.no_grad():
            for b in tqdm(
                batches(calib_ids, batch_tokens), desc="calibration", disable=not progress
            ):
                try:
                    base(input_ids=b, use_cache=False)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return [{k: torch.cat(v) for k, v in d.items()} for d in out]


def quantize_model(
    model: nn.Module,
    info: ModelInfo,
    calib_ids: torch.Tensor | None,
    config: QuantConfig,
    group_inputs: list[dict[str, torch.Tensor]] | None = None,
    scales: dict[str, torch.Tensor] | None = None,
    sequential: bool = False,
    output_ranges: bool = False,
    batch_tokens: int = 2048,
    progress: bool = True,
    n_layers: int | None = None,
) -> QuantReport:
    """Quantize ``model`` in place with ``config``, calibrating on ``calib_ids [B, L]``.

    Statistics come from the FP model's activations (``group_inputs``, collected
    from ``calib_ids`` when not given). With ``sequential=True`` each layer is
    calibrated on the outputs of the already-quantized layers before it (GPTQ's
    schedule; one layer forward pass per layer). ``scales`` (``"{layer}.{group}"``
    -> free scales, e.g. ``report.scales`` of an earlier AQAS run on the same data)
    skips the search. ``output_ranges`` records each linear's output range on the
    calibration data (``QuantLinear.out_absmax``, needed for export).
    ``method="fp"`` with ``acts="fp"`` leaves the model unchanged.

    ``n_layers`` quantizes only the first ``n_layers`` decoder layers and leaves the rest
    float (the model is then only good for looking at those layers, e.g. exporting the last
    of them). Layer i's calibration inputs, AQAS sample (the generator is seeded once and
    consumed layer by layer from layer 0), folds and weights depend only on the embedding
    and layers 0..i, so those layers come out exactly as in a whole-model run (tested).
    """
    n = check_n_layers(n_layers, len(decoder_layers(model, info)))
    if group_inputs is not None and len(group_inputs) < n:
        raise QuantError(f"group_inputs cover {len(group_inputs)} layers; {n} are quantized")
    check_model_finite(model)
    report = QuantReport(
        config=config, calib_shape=tuple(calib_ids.shape) if calib_ids is not None else (0, 0)
    )
    if config.method == "fp":  # QuantConfig checked that acts are "fp" too
        return report
    needs_data = config.scaling or config.uses_gptq or config.acts == "int8-static" or output_ranges
    inputs = None
    if needs_data:
        if sequential:
            if calib_ids is None:
                raise QuantError("sequential calibration needs calib_ids")
            inputs = capture_layer_inputs(model, info, batches(calib_ids, batch_tokens))
        elif group_inputs is None:
            if calib_ids is None:
                raise QuantError(f"{config.method} with {config.acts} needs calibration data")
            group_inputs = collect_group_inputs(
                model, info, calib_ids, batch_tokens, progress, n_layers=n
            )
    gen = torch.Generator().manual_seed(0)
    layers = decoder_layers(model, info)
    for i in tqdm(range(n), desc=f"quantize {config.method}", disable=not progress):
        layer = layers[i]
        groups = scale_groups(info, layer)
        linears = layer_linears(layer, info)
        if not needs_data:
            x_all = None
        elif sequential:
            x_all = _layer_group_inputs(layer, groups, inputs)
        else:
            x_all = group_inputs[i]
        # 1. scales, folded.
        scale_of: dict[str, torch.Tensor] = {}
        for g in sorted(groups, key=lambda g: FOLD_ORDER.index(g.name)):
            key = f"{i}.{g.name}"
            s = None
            if config.scaling and g.foldable:
                x = x_all[g.name]
                x_range = x.abs().amax(dim=0).double()
                if scales is not None:
                    s_free = scales[key]
                elif config.scaling == "smoothquant":
                    s_free = smooth_scales(
                        g.reduce(x_range), g.reduce(group_weight_range(g, layer)), config.alpha
                    )
                    report.alphas[key] = config.alpha
                else:
                    n = min(config.search_tokens, x.shape[0])
                    pick = torch.randperm(x.shape[0], generator=gen)[:n]
                    res = aqas_search(
                        g,
                        layer,
                        x[pick],
                        x_range,
                        config.weight_format,
                        config.acts_of(g.name),
                        config.alphas,
                        config.group_size_for(x.shape[1]),
                    )
                    s_free = res.s_free
                    report.alphas[key] = res.alpha
                    report.search_losses[key] = res.losses
                report.scales[key] = s_free
                fold_scales(layer, g, s_free)
                s = g.expand(s_free)
            elif config.scaling:
                log.warning("layer %d group %s: nothing to fold into; left unscaled", i, g.name)
            scale_of[g.name] = s
        # 2. weights and static activation scales.
        new: dict[str, nn.Module] = {}
        for g in groups:
            s = scale_of[g.name]
            xs_ = None
            if x_all is not None:
                x = x_all[g.name]
                xs_ = x if s is None else (x.double() / s).float()
            rot = g.name in config.rotate_groups
            if rot:  # one check per group: its linears share the input width
                k = linears[g.linears[0]].weight.shape[1]
                check_rotatable(k, f"layers.{i} {g.name} input")
            if rot and xs_ is not None:
                xs_ = rotate_rows(xs_)
            a_scale = bypass_above = None
            if config.acts_of(g.name) == "int8-static":
                a_scale, bypass_above = static_act_range(xs_, config.outlier_factor)
            h = None
            if config.uses_gptq:
                h = ((2.0 / xs_.shape[0]) * (xs_.T @ xs_)).double()
            imp = None  # the clipping search's weights: the inputs' mean squares, per group
            if config.weight_clip == "mse" and xs_ is not None:
                imp = (xs_.double() ** 2).mean(dim=0)
            for name in g.linears:
                lin = linears[name]
                w = lin.weight.detach()
                if rot:  # y = (x Q)(W Q)^T: rotate offline, round the rotated weights
                    w = rotate_rows(w)
                gs = config.group_size_for(w.shape[1])
                clip = None
                if config.weight_clip == "mse":
                    clip = mse_clip_scale(w, config.weight_format, gs, imp)
                if h is not None:
                    codes, w_scale = gptq_quantize(
                        w,
                        h,
                        config.weight_format,
                        config.gptq_block,
                        config.gptq_damp,
                        scale=clip,
                        act_order=config.act_order,
                    )
                else:
                    codes, w_scale = quantize_weight(w, config.weight_format, clip, gs)
                    if gs:
                        report.group_sizes[name] = gs
                q = QuantLinear(
                    codes,
                    w_scale,
                    lin.bias,
                    config.spec_for(g.name, w.shape[1]),
                    a_scale,
                    name=f"layers.{i}.{name}",
                    bypass_above=bypass_above,
                )
                if output_ranges and not sequential:
                    with torch.no_grad():
                        q.out_absmax = float(q(xs_).abs().max())
                new[name] = RotatedInput(q) if rot else q
        del x_all
        for name, q in new.items():
            parent, _, child = name.rpartition(".")
            setattr(layer.get_submodule(parent) if parent else layer, child, q)
        if sequential and inputs is not None:
            inputs = _sequential_step(layer, new, inputs)
    reset_bypass_counts(model)  # count evaluation rows, not the calibration passes
    log.info("quantized %d of %d layers with %s", n, len(layers), config)
    return report


def _layer_group_inputs(layer, groups, inputs) -> dict[str, torch.Tensor]:
    """Run the (FP) layer on its inputs; return each group's inputs [tokens, K]."""
    xs: dict[str, list[torch.Tensor]] = {g.name: [] for g in groups}
    hooks = []
    for g in groups:

        def hook(_m, args, _out, name=g.name):
            xs[name].append(args[0].detach().reshape(-1, args[0].shape[-1]).float())

        hooks.append(layer.get_submodule(g.linears[0]).register_forward_hook(hook))
    try:
        _run_layer(layer, inputs)
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.cat(v) for name, v in xs.items()}


def _sequential_step(layer, new: dict[str, nn.Module], inputs):
    """Run the quantized layer: next layer's inputs, and each linear's output range."""
    out_max = {name: 0.0 for name in new}
    hooks = []
    for name, q in new.items():

        def ohook(_m, _a, out, name=name):
            out_max[name] = max(out_max[name], float(out.detach().abs().max()))

        hooks.append(q.register_forward_hook(ohook))
    try:
        outs = _run_layer(layer, inputs)
    finally:
        for h_ in hooks:
            h_.remove()
    for name, q in new.items():
        getattr(q, "inner", q).out_absmax = out_max[name]
    return [(o, kw) for o, (_, kw) in zip(outs, inputs, strict=True)]


def quantized_linears(model: nn.Module) -> dict[str, QuantLinear]:
    """Every :class:`QuantLinear` of a model by its ``layers.{i}.{name}`` name."""
    return {m.name: m for m in model.modules() if isinstance(m, QuantLinear)}


def weight_format_of(model: nn.Module) -> str:
    """Name of the weight format of a quantized model's linears."""
    q = quantized_linears(model)
    return golden.get(next(iter(q.values())).spec.weight_format).name if q else "fp"
