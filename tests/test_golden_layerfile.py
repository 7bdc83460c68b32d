"""The layer-tile file: one schema, read back exactly, every break named."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import golden
from golden import FormatError, layerfile

COMMITTED = sorted((Path(__file__).parents[1] / "sim" / "data").glob("*.npz"))


def _tile(t=5, k=12, n=3, fmt="dint4", seed=0) -> layerfile.LayerTile:
    rng = np.random.default_rng(seed)
    w_scale = rng.uniform(0.01, 0.1, n)
    M, sh = golden.requant_constants(golden.output_multiplier(0.05, w_scale, fmt, 0.2))
    return layerfile.LayerTile(
        a=rng.integers(-127, 128, (t, k)).astype(np.int8),
        w_codes=rng.integers(0, 16, (n, k)).astype(np.uint8),
        w_scale=w_scale,
        a_scale=np.float64(0.05),
        out_scale=np.float64(0.2),
        M=M,
        sh=sh,
        meta={
            "model": "m",
            "layer": "l",
            "weight_format": fmt,
            "acts": "int8-static",
            "T": t,
            "K": k,
            "N": n,
        },
    )


def _roundtrip(tile) -> layerfile.LayerTile:
    buf = io.BytesIO()
    layerfile.save(tile, buf)
    buf.seek(0)
    return layerfile.load(buf)


def test_roundtrip_is_exact():
    tile = _tile()
    back = _roundtrip(tile)
    for name in layerfile.ARRAYS:
        assert np.array_equal(getattr(back, name), getattr(tile, name)), name
    assert back.meta == tile.meta
    assert np.array_equal(
        back.expected(), golden.linear_int8(tile.a, tile.w_codes, "dint4", tile.M, tile.sh)
    )


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_tiles_follow_the_schema(path):
    tile = layerfile.load(path)
    t, k, n = tile.shape
    assert tile.expected().shape == (t, n)


def test_slice_keeps_the_schema_and_the_numbers():
    tile = _tile(t=9, n=7)
    part = tile.slice(tokens=4, outputs=2).validate()
    assert part.shape == (4, 12, 2)
    assert np.array_equal(part.expected(), tile.expected()[:4, :2])
    assert part.meta["outputs"] == [0, 2]


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda t: replace(t, meta={k: v for k, v in t.meta.items() if k != "layer"}),
            "'layer' is missing",
        ),
        (lambda t: replace(t, meta={**t.meta, "weight format": "dint4"}), "'weight format'"),
        (lambda t: replace(t, meta={**t.meta, "weight_format": "dint5"}), "unknown format"),
        (lambda t: replace(t, meta={**t.meta, "K": 99}), "'K'"),
        (lambda t: replace(t, a=t.a.astype(np.int16)), "'a' must be int8"),
        (lambda t: replace(t, M=t.M[:2]), "'M'"),
        (lambda t: replace(t, w_codes=t.w_codes[:, :5]), "'w_codes'"),
    ],
)
def test_schema_breaks_are_named(change, match):
    with pytest.raises(FormatError, match=match):
        layerfile.save(change(_tile()), io.BytesIO())


def test_load_names_a_missing_or_unknown_array(tmp_path):
    tile = _tile()
    arrays = {n: getattr(tile, n) for n in layerfile.ARRAYS}
    meta = np.array(json.dumps(tile.meta))
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "sh"}, meta=meta)
    with pytest.raises(FormatError, match="'sh' is missing"):
        layerfile.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **arrays, meta=meta, bias=np.zeros(3))
    with pytest.raises(FormatError, match="unknown array 'bias'"):
        layerfile.load(tmp_path / "extra.npz")
    with pytest.raises(FormatError, match="does not exist"):
        layerfile.load(tmp_path / "nope.npz")
