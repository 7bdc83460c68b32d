"""Operands for gate-level power: real SmolLM2-135M layer data, or synthetic.

``smollm2``: the committed samples of SmolLM2-135M decoder layer 0 (``sim/data``; 32 tokens
of a *Persuasion* window x every K x 32 outputs of each of the seven linears, written by
``python -m quant export --decoder-layer 0 --tokens 512 --method aqas+gptq --acts
int8-static --calib-seqlen 512 --sample 32x32 --weights FORMAT``):

- **activations**: the dINT4 export's int8 activations for every weight format, so two
  designs are compared on the same activation stream and the ratio measures the hardware
  (the INT8 recipe's own activations are ~2x larger in magnitude: its AQAS search moves less
  of the range into the weights);
- **weights**: the format's own export where one is committed (:data:`SAMPLES`: dINT4 and
  INT8, each the AQAS+SLAC+GPTQ recipe for that format); any other format gets the dINT4
  weights dequantized and re-quantized per output channel to its grid
  (:func:`golden.quantize_tensor`), and :func:`describe` says so.

``synthetic``: activations Laplace(0, 1) quantized to int8 with the static scale ``8 / 127``
(clipping |x| > 8); weights N(0, 1) in rows of 256 quantized to the format per row.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

import golden
from golden import layerfile

SOURCES = ("smollm2", "synthetic")
_DATA = Path(__file__).resolve().parent.parent / "sim" / "data"
#: The activations of every format, and the dINT4 weights.
SMOLLM2_SAMPLE = _DATA / "smollm2_layer0"
#: Weight format -> the committed export of that format.
SAMPLES = {"dint4": SMOLLM2_SAMPLE, "int8": _DATA / "smollm2_layer0_int8"}


def _load(directory: Path) -> list[layerfile.LayerTile]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return [layerfile.load(directory / e["file"]) for e in manifest["layers"]]


@functools.cache
def smollm2_tiles(fmt: str) -> tuple[layerfile.LayerTile, ...]:
    """The seven layer tiles with the shared activations and ``fmt``'s weight codes."""
    fmt_ = golden.get(fmt)
    base = _load(SMOLLM2_SAMPLE)
    own = SAMPLES.get(fmt_.name)
    if own is not None and own != SMOLLM2_SAMPLE:
        tiles = []
        for b, w in zip(base, _load(own), strict=True):
            if b.shape != w.shape:
                raise ValueError(f"{own}: tile shape {w.shape} differs from {b.shape}")
            tiles.append(replace(w, a=b.a))
        return tuple(tiles)
    if own is not None:
        return tuple(base)
    out = []
    for t in base:
        real = golden.dequantize(t.w_codes, t.weight_format, t.w_scale[:, None])
        codes, scale = golden.quantize_tensor(real, fmt_, "channel")
        meta = {**t.meta, "weight_format": fmt_.name}
        out.append(replace(t, w_codes=codes.astype(np.uint8), w_scale=np.ravel(scale), meta=meta))
    return tuple(out)


def describe(source: str, fmt: str) -> str:
    """Where ``source``'s operands for ``fmt`` come from, in a few words."""
    if source == "synthetic":
        return "synthetic: Laplace activations (int8, scale 8/127), Gaussian weights per row"
    name = golden.get(fmt).name
    w = (
        f"its own {name} export's weights"
        if name in SAMPLES
        else "the dINT4 weights re-quantized to its grid"
    )
    return f"SmolLM2-135M layer 0 sample: the dINT4 export's int8 activations, {w}"


def operands(source: str, n: int, fmt: str, rng: np.random.Generator):
    """``n`` (int8 activation, weight code) pairs as int8 and uint8 arrays.

    ``smollm2``: in the order one MAC computes a layer's outputs: linear, token ``t``, output
    ``o``, then ``k``: pairs ``(a[t, k], w[o, k])``; ``rng`` picks where the stream starts
    (it wraps around). ``synthetic``: see the module docstring.
    """
    fmt_ = golden.get(fmt)
    if source == "synthetic":
        x = rng.laplace(0.0, 1.0, n)
        a = golden.quantize_activations(x, 8.0 / 127.0)
        rows = -(-n // 256)
        w, _ = golden.quantize_tensor(rng.normal(0.0, 1.0, (rows, 256)), fmt_, "channel")
        return a.astype(np.int8), w.reshape(-1)[:n].astype(np.uint8)
    if source != "smollm2":
        raise ValueError(f"unknown operand source {source!r}; choose one of {SOURCES}")
    a_parts, w_parts = [], []
    for tile in smollm2_tiles(fmt_.name):
        t_n, k_n, o_n = tile.shape
        a_parts.append(np.broadcast_to(tile.a[:, None, :], (t_n, o_n, k_n)).reshape(-1))
        w_parts.append(np.broadcast_to(tile.w_codes[None, :, :], (t_n, o_n, k_n)).reshape(-1))
    a_all, w_all = np.concatenate(a_parts), np.concatenate(w_parts)
    idx = (int(rng.integers(len(a_all))) + np.arange(n)) % len(a_all)
    return a_all[idx].astype(np.int8), w_all[idx].astype(np.uint8)
