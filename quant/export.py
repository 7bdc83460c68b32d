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

:func:`integer_mode_run` runs the model in quant's integer mode (every ``QuantLinear``
through ``golden.accumulate``) and returns what chosen linears fed their accumulator and the
accumulators they got; :func:`integer_check` shows a tile equal to that: same int8 inputs,
same accumulators, and ``tile.expected()`` equal to those accumulators requantized with the
``M, sh`` quant derives for the layer itself (so a tile whose ``M`` was changed fails). A bias
(OPT) is not part of a tile: the tile is the integer product ``a · wᵀ`` requantized.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import golden
from golden.layerfile import LayerTile

from .errors import QuantError
from .qlinear import INT8, QuantLinear, set_mode

#: How ``out_scale`` is chosen (the tile's ``out_scale_rule`` metadata field).
OUT_SCALE_RULE = "calibrated max|y| of this layer's output / 127"


#: Largest distance, in output steps, of an unclipped int8 output from the layer's float
#: output: half a step of rounding plus M's relative error (< 2**-31) on |y| <= 127.5.
MAX_ERROR_LSB = 0.5 + 1e-6


class _Stop(Exception):
    pass


def _run_windows(model: nn.Module, windows: torch.Tensor, stop_after: nn.Module | None) -> None:
    """Run the model on each window alone; with ``stop_after``, stop once that module ran
    (nothing after it is needed: a module's inputs depend only on what runs before it)."""
    hooks = []
    if stop_after is not None:

        def stop(*_):
            raise _Stop

        hooks.append(stop_after.register_forward_hook(stop))
    try:
        with torch.no_grad():
            for w in windows:
                try:
                    model(input_ids=w.unsqueeze(0), use_cache=False)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()


def _check_static(qlinear: QuantLinear) -> None:
    if qlinear.spec.acts != "int8-static" or qlinear.a_scale is None:
        raise QuantError(
            f"{qlinear.name}: export needs int8-static activations (a scalar a_scale), "
            f"got {qlinear.spec.acts}"
        )
    # A layer tile has one static scale for every row and no side path.
    qlinear.require_no_bypass("a layer tile")


def _concat(parts: list[np.ndarray], name: str) -> np.ndarray:
    if not parts:
        raise QuantError(f"{name} did not run on the windows; is it part of the model's forward?")
    return np.concatenate(parts)


def capture_int8_inputs_of(
    model: nn.Module,
    qlinears: dict[str, QuantLinear],
    windows: torch.Tensor,
    stop_after: nn.Module | None = None,
) -> dict[str, np.ndarray]:
    """The int8 activation values ``[T, K]`` entering each of ``qlinears`` when the model
    runs windows (in the model's current mode), in one pass per window."""
    got: dict[str, list[np.ndarray]] = {name: [] for name in qlinears}
    hooks = []
    for name, q in qlinears.items():
        _check_static(q)

        def hook(mod, args, name=name):
            x = args[0].detach().reshape(-1, args[0].shape[-1])
            got[name].append(mod.integer_inputs(x)[0])

        hooks.append(q.register_forward_pre_hook(hook))
    try:
        _run_windows(model, windows, stop_after)
    finally:
        for h in hooks:
            h.remove()
    return {name: _concat(parts, name) for name, parts in got.items()}


def capture_int8_inputs(
    model: nn.Module,
    qlinear: QuantLinear,
    windows: torch.Tensor,
    stop_after: nn.Module | None = None,
) -> np.ndarray:
    """The int8 activation values ``[T, K]`` entering ``qlinear`` when the model runs windows."""
    return capture_int8_inputs_of(model, {qlinear.name: qlinear}, windows, stop_after)[qlinear.name]


def integer_mode_run(
    model: nn.Module,
    qlinears: dict[str, QuantLinear],
    windows: torch.Tensor,
    stop_after: nn.Module | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run the model in quant's integer mode (``set_mode(model, "integer")``: every
    ``QuantLinear`` through ``golden.accumulate``); per linear of ``qlinears``, ``(a [T, K],
    acc [T, N])``: the int8 inputs its integer forward fed ``golden.accumulate`` and the
    accumulators it got, rows over all windows. Every linear's mode is restored afterwards."""
    every = [m for m in model.modules() if isinstance(m, QuantLinear)]
    saved = [(m, m.mode, m.record_acc) for m in every]
    got: dict[str, tuple[list, list]] = {name: ([], []) for name in qlinears}
    hooks = []
    for name, q in qlinears.items():
        _check_static(q)

        def hook(mod, _args, _out, name=name):
            got[name][0].append(mod.last_a)
            got[name][1].append(mod.last_acc)

        hooks.append(q.register_forward_hook(hook))
    try:
        set_mode(model, "integer")
        for q in qlinears.values():
            q.record_acc = True
        _run_windows(model, windows, stop_after)
    finally:
        for h in hooks:
            h.remove()
        for m, mode, record in saved:
            m.mode, m.record_acc = mode, record
            m.last_a = m.last_acc = None
    return {name: (_concat(a, name), _concat(acc, name)) for name, (a, acc) in got.items()}


def out_scale_of(qlinear: QuantLinear) -> float:
    """The export's ``s_out``: the calibrated ``max |y|`` of the layer's output / 127."""
    if not qlinear.out_absmax:
        raise QuantError(f"{qlinear.name}: no calibrated output range (quantize_model sets it)")
    return float(qlinear.out_absmax) / INT8.max_abs


def integer_check(
    tile: LayerTile, qlinear: QuantLinear, a_int: np.ndarray, acc_int: np.ndarray
) -> dict:
    """Show ``tile`` equal to ``qlinear`` in quant's integer mode; raise :class:`QuantError`
    naming the first difference.

    ``a_int``, ``acc_int`` are what :func:`integer_mode_run` recorded for ``qlinear`` (all
    its outputs; the tile's token rows come first). Checked exactly (``==``): the tile's
    ``a`` is the int8 input integer mode fed ``golden.accumulate``; its accumulators equal
    ``golden.accumulate(tile.a, tile.w_codes)``; requantized with the ``M, sh`` quant derives
    from the layer itself (``golden.requant_constants(golden.output_multiplier(a_scale,
    w_scale, fmt, s_out))``, not the tile's) they equal ``tile.expected()``. And every
    unclipped int8 output ``y8`` is within :data:`MAX_ERROR_LSB` output steps of integer
    mode's float output ``y = acc · 2^-f · s_a · s_w`` (bias excluded, as in the tile).
    Returns the tile's ``integer_check`` metadata.
    """
    t, k, n = tile.shape
    start = (tile.meta.get("outputs") or [0])[0]
    sl = slice(start, start + n)
    where = f"integer check of {tile.meta.get('layer', qlinear.name)}"
    a_int, acc_int = np.asarray(a_int), np.asarray(acc_int)
    if a_int.shape[0] < t or a_int.shape[1] != k or acc_int.shape[1] < sl.stop:
        raise QuantError(
            f"{where}: integer mode recorded a {a_int.shape} and acc {acc_int.shape}, "
            f"the tile is T={t} K={k} outputs [{sl.start}, {sl.stop})"
        )
    diff = np.argwhere(tile.a.astype(np.int64) != a_int[:t])
    if diff.size:
        raise QuantError(
            f"{where}: the tile's int8 inputs differ from those quant's integer mode fed the "
            f"layer at {len(diff)} of {t * k} values (first at {diff[0].tolist()})"
        )
    acc = acc_int[:t, sl]
    if not np.array_equal(golden.accumulate(tile.a, tile.w_codes, tile.weight_format), acc):
        raise QuantError(
            f"{where}: golden.accumulate of the tile's a and w_codes differs from the "
            "accumulators of quant's integer mode; the tile's weight codes are not the layer's"
        )
    fmt = qlinear.fmt
    w_scale = qlinear.w_scale_channel[sl].astype(np.float64)
    a_scale, s_out = float(qlinear.a_scale), out_scale_of(qlinear)
    M, sh = golden.requant_constants(golden.output_multiplier(a_scale, w_scale, fmt, s_out))
    y8 = golden.requantize(acc, M, sh)
    diff = np.argwhere(y8 != tile.expected())
    if diff.size:
        raise QuantError(
            f"{where}: tile.expected() differs from quant's integer-mode accumulators "
            f"requantized with the layer's own M, sh at {len(diff)} of {t * n} outputs "
            f"(first at [t, n] = {diff[0].tolist()}); the tile's M, sh or codes are wrong"
        )
    for name, mine, theirs in (("M", M, tile.M), ("sh", sh, tile.sh)):
        if not np.array_equal(mine, theirs):
            raise QuantError(f"{where}: the tile's {name} differs from the layer's {name}")
    y = acc * 2.0**-fmt.frac_bits * a_scale * w_scale
    unclipped = np.abs(y8) < INT8.max_abs
    err = float((np.abs(y8 * s_out - y)[unclipped] / s_out).max()) if unclipped.any() else 0.0
    if err > MAX_ERROR_LSB:
        raise QuantError(
            f"{where}: an unclipped int8 output is {err:.6f} output steps from integer "
            f"mode's float output (at most {MAX_ERROR_LSB}); M, sh do not represent the scales"
        )
    return {
        "result": "pass",
        "tokens": int(t),
        "outputs": int(n),
        "clipped": int((~unclipped).sum()),
        "max_error_lsb": round(err, 6),
    }


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
    _check_static(qlinear)
    out_scale = out_scale_of(qlinear)
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
