"""Export quantized linears as layer tiles for the simulator and reports.

The file is :mod:`golden.layerfile`'s: its arrays, metadata fields, defaults and checks are
defined there once (``quant`` writes tiles, ``sim`` reads them, both through that module).
This module only fills a :class:`golden.layerfile.LayerTile` from a quantized layer:

- ``a``: real int8 input activations, captured from the quantized model running on
  evaluation text (:func:`capture_int8_inputs`);
- ``w_codes``, ``w_scale``: the layer's weight codes and per-output-channel scales;
- ``M``, ``sh``: ``golden.requant_constants(golden.output_multiplier(a_scale, w_scale, fmt,
  out_scale))``.

``out_scale`` (s_out) is the calibrated static scale of this layer's own output: ``max |y|``
over the calibration data (measured on the quantized model during calibration) divided by
127. It is the scale an int8 consumer of this output would use; with it,
``tile.expected()`` (``golden.linear_int8``) is the int8 output the array + requantizer must
produce. Write a tile with ``tools.atomic_write(path, lambda f: golden.layerfile.save(tile,
f))`` and read it with ``golden.layerfile.load(path)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import golden
from golden.layerfile import LayerTile

from .errors import QuantError
from .qlinear import INT8, QuantLinear

#: How ``out_scale`` is chosen (the tile's ``out_scale_rule`` metadata field).
OUT_SCALE_RULE = "calibrated max|y| of this layer's output / 127"


def capture_int8_inputs(
    model: nn.Module, qlinear: QuantLinear, windows: torch.Tensor
) -> np.ndarray:
    """The int8 activation values ``[T, K]`` entering ``qlinear`` when the model runs windows."""
    if qlinear.spec.acts != "int8-static":
        raise QuantError(
            f"{qlinear.name}: export needs int8-static activations (a scalar a_scale), "
            f"got {qlinear.spec.acts}"
        )
    got: list[np.ndarray] = []

    def hook(mod, args):
        x = args[0].detach().reshape(-1, args[0].shape[-1])
        got.append(mod.integer_inputs(x)[0])

    h = qlinear.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for w in windows:
                model(input_ids=w.unsqueeze(0), use_cache=False)
    finally:
        h.remove()
    return np.concatenate(got)


def layer_tile(
    qlinear: QuantLinear,
    a: np.ndarray,
    meta: dict,
    outputs: slice | None = None,
) -> LayerTile:
    """The layer tile of ``qlinear`` (optionally output channels ``outputs``) for inputs ``a``.

    ``meta`` gives the fields only the caller knows (``model``, and optionally ``method``,
    ``calib_seqlen``, ``source``; see ``golden.layerfile.META_FIELDS``); the layer's own
    fields are filled in here. The tile is validated before it is returned.
    """
    if qlinear.spec.acts != "int8-static" or qlinear.a_scale is None:
        raise QuantError(f"{qlinear.name}: export needs int8-static activations")
    if not qlinear.out_absmax:
        raise QuantError(f"{qlinear.name}: no calibrated output range (quantize_model sets it)")
    fmt = qlinear.fmt
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != qlinear.in_features:
        raise QuantError(f"a must be [T, {qlinear.in_features}], got {a.shape}")
    if a.min() < -INT8.max_abs or a.max() > INT8.max_abs:
        raise QuantError("a must hold int8 values in [-127, 127]")
    sl = outputs or slice(0, qlinear.out_features)
    w_codes = qlinear.w_codes.numpy()[sl]
    w_scale = qlinear.w_scale_channel[sl].astype(np.float64)
    a_scale = float(qlinear.a_scale)
    out_scale = float(qlinear.out_absmax) / INT8.max_abs
    M, sh = golden.requant_constants(golden.output_multiplier(a_scale, w_scale, fmt, out_scale))
    t, k = a.shape
    n = int(w_codes.shape[0])
    start = sl.start or 0
    meta = {
        **meta,
        "layer": qlinear.name,
        "weight_format": fmt.name,
        "acts": qlinear.spec.acts,
        "T": int(t),
        "K": int(k),
        "N": n,
        "outputs": [start, start + n],
        "out_scale_rule": OUT_SCALE_RULE,
    }
    tile = LayerTile(
        a=a.astype(np.int8),
        w_codes=w_codes.astype(np.uint8),
        w_scale=w_scale,
        a_scale=np.float64(a_scale),
        out_scale=np.float64(out_scale),
        M=np.asarray(M, dtype=np.int64),
        sh=np.asarray(sh, dtype=np.int64),
        meta=meta,
    )
    return tile.validate(f"export of {qlinear.name}")


def export_name(layer: str) -> str:
    """File stem of a layer name (dots become underscores)."""
    return layer.replace(".", "_")
