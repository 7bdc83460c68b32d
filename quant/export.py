"""Export quantized linears as integer data for the simulator and reports.

One ``.npz`` per layer (or tile of a layer), the format of the team contract:

- ``a``: int8 ``[T, K]`` — real int8 input activations (values of the codes),
  captured from the quantized model running on evaluation text;
- ``w_codes``: uint8 ``[N, K]`` — weight codes of the weight format;
- ``w_scale``: float64 ``[N]``; ``a_scale``, ``out_scale``: float64 scalars;
- ``M``, ``sh``: int64 ``[N]`` — ``golden.requant_constants(golden.output_multiplier(
  a_scale, w_scale, fmt, out_scale))``;
- ``meta``: a JSON string with model, layer, weight_format, method, acts, T, K,
  N, the output/token slices of a tile, and the source.

``out_scale`` (s_out) is the calibrated static scale of this layer's own
output: ``max |y|`` over the calibration data (measured on the quantized model
during calibration) divided by 127. It is the scale an int8 consumer of this
output would use; with it, ``golden.linear_int8(a, w_codes, fmt, M, sh)`` is the
int8 output the array + requantizer must produce.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import golden
from golden import FormatError

from .calibrate import publish
from .qlinear import INT8, QuantLinear

ARRAYS = ("a", "w_codes", "w_scale", "a_scale", "out_scale", "M", "sh", "meta")


def capture_int8_inputs(
    model: nn.Module, qlinear: QuantLinear, windows: torch.Tensor
) -> np.ndarray:
    """The int8 activation values ``[T, K]`` entering ``qlinear`` when the model runs windows."""
    if qlinear.spec.acts != "int8-static":
        raise FormatError(
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


def layer_arrays(
    qlinear: QuantLinear,
    a: np.ndarray,
    meta: dict,
    outputs: slice | None = None,
) -> dict[str, np.ndarray]:
    """The export arrays of ``qlinear`` (optionally output channels ``outputs``) for inputs a."""
    if qlinear.spec.acts != "int8-static" or qlinear.a_scale is None:
        raise FormatError(f"{qlinear.name}: export needs int8-static activations")
    if not qlinear.out_absmax:
        raise FormatError(f"{qlinear.name}: no calibrated output range (quantize_model sets it)")
    fmt = qlinear.fmt
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != qlinear.in_features:
        raise FormatError(f"a must be [T, {qlinear.in_features}], got {a.shape}")
    if a.min() < -INT8.max_abs or a.max() > INT8.max_abs:
        raise FormatError("a must hold int8 values in [-127, 127]")
    sl = outputs or slice(0, qlinear.out_features)
    w_codes = qlinear.w_codes.numpy()[sl]
    w_scale = qlinear.w_scale_channel[sl].astype(np.float64)
    a_scale = float(qlinear.a_scale)
    out_scale = float(qlinear.out_absmax) / INT8.max_abs
    M, sh = golden.requant_constants(golden.output_multiplier(a_scale, w_scale, fmt, out_scale))
    t, k = a.shape
    meta = {
        **meta,
        "layer": qlinear.name,
        "weight_format": fmt.name,
        "acts": qlinear.spec.acts,
        "T": int(t),
        "K": int(k),
        "N": int(w_codes.shape[0]),
        "outputs": [sl.start or 0, sl.stop],
        "out_scale_rule": "calibrated max|y| of this layer's output / 127",
    }
    return {
        "a": a.astype(np.int8),
        "w_codes": w_codes.astype(np.uint8),
        "w_scale": w_scale,
        "a_scale": np.float64(a_scale),
        "out_scale": np.float64(out_scale),
        "M": M.astype(np.int64),
        "sh": sh.astype(np.int64),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a compressed ``.npz`` atomically (temp file in the same directory, os.replace)."""
    path = Path(path)
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise FormatError(f"export is missing arrays {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read an export: ``(arrays, meta dict)``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise FormatError(f"{path} is not a layer export: missing {missing}")
    return arrays, json.loads(str(arrays["meta"]))


def export_name(layer: str) -> str:
    """File stem of a layer name (dots become underscores)."""
    return layer.replace(".", "_")
