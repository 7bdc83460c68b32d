"""SystolicArray against golden.accumulate: chained K-tiles, weight reloads, gaps, back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest

import golden
from golden import min_acc_width
from hw.systolic import SystolicArray
from hw.testing import simulate, stream_receive, stream_send

FORMATS = ["int8", "int4", "dint4", "fp4_e2m1"]


def _run_tiles(dut, a, w_codes, gap, stall, seed):
    """Feed K-tiles of ``rows`` through ``dut``: load W's tile, then every vector with the
    previous tiles' golden partial sum as psum. Returns (outputs per tile, expected per tile,
    cycles the a_in sender used per tile)."""
    R, C, fmt = dut.rows, dut.cols, dut.weight_format
    T, K = a.shape
    tiles = K // R
    expected = [
        golden.accumulate(a[:, : (k + 1) * R], w_codes[:, : (k + 1) * R], fmt) for k in range(tiles)
    ]
    got, send_cycles = [], []

    async def send(ctx):
        rng = random.Random(seed)
        for k in range(tiles):
            beats = [[int(w_codes[c, k * R + r]) for c in range(C)] for r in range(R)]
            await stream_send(ctx, dut.w_in, beats, rng, gap)
            psum = expected[k - 1] if k else np.zeros((T, C), dtype=np.int64)
            vectors = [
                {
                    "a": [int(x) for x in a[t, k * R : (k + 1) * R]],
                    "psum": [int(p) for p in psum[t]],
                }
                for t in range(T)
            ]
            send_cycles.append(await stream_send(ctx, dut.a_in, vectors, rng, gap))

    async def receive(ctx):
        got.extend(await stream_receive(ctx, dut.o, T * tiles, random.Random(seed + 1), stall))

    simulate(dut, send, receive)
    outputs = [np.array(got[k * T : (k + 1) * T]) for k in range(tiles)]
    return outputs, expected, send_cycles


def _data(fmt, rows, cols, tiles, vectors, seed):
    rng = np.random.default_rng(seed)
    K = rows * tiles
    a = rng.integers(-128, 128, size=(vectors, K))
    w = rng.integers(0, 1 << fmt.bits, size=(cols, K))
    extreme = max(range(1 << fmt.bits), key=lambda c: abs(fmt.ints[c]))
    a[0, :] = -128  # the extreme: all -128 against the largest-magnitude weight
    w[0, :] = extreme
    return a, w


@pytest.mark.parametrize("style", ["mul", "shiftadd"])
@pytest.mark.parametrize("name", FORMATS)
def test_systolic_chained_tiles_with_reload(name, style):
    fmt = golden.get(name)
    rows, cols, tiles = 3, 2, 2
    a, w = _data(fmt, rows, cols, tiles, 10, seed=len(name) + len(style))
    k_max = rows * tiles
    dut = SystolicArray(
        rows, cols, fmt, acc_width=min_acc_width(k_max, "int8", fmt), k_max=k_max, style=style
    )
    got, want, _ = _run_tiles(dut, a, w, gap=0.3, stall=0.4, seed=11)
    for k in range(tiles):
        assert np.array_equal(got[k], want[k]), f"tile {k}"


@pytest.mark.parametrize("name", ["dint4", "int8"])
def test_systolic_1x1_is_a_pe(name):
    fmt = golden.get(name)
    a, w = _data(fmt, 1, 1, 3, 8, seed=4)
    dut = SystolicArray(1, 1, fmt, k_max=3)
    got, want, _ = _run_tiles(dut, a, w, gap=0.4, stall=0.5, seed=5)
    for k in range(3):
        assert np.array_equal(got[k], want[k]), f"tile {k}"
    assert dut.latency == 1


def test_systolic_full_throughput_without_stalls():
    fmt = golden.get("dint4")
    a, w = _data(fmt, 4, 3, 1, 16, seed=9)
    dut = SystolicArray(4, 3, fmt, k_max=4)
    got, want, cycles = _run_tiles(dut, a, w, gap=0.0, stall=0.0, seed=2)
    assert np.array_equal(got[0], want[0])
    assert cycles == [16]  # one vector per cycle
    assert dut.latency == 4 + 3 - 1


def test_systolic_heavy_backpressure():
    fmt = golden.get("fp4_e2m1")
    a, w = _data(fmt, 2, 4, 2, 12, seed=3)
    dut = SystolicArray(2, 4, fmt, k_max=4)
    got, want, _ = _run_tiles(dut, a, w, gap=0.0, stall=0.85, seed=8)
    for k in range(2):
        assert np.array_equal(got[k], want[k]), f"tile {k}"


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0, 4, "dint4"), {"acc_width": 24}, "rows"),
        ((4, 0, "dint4"), {"acc_width": 24}, "cols"),
        ((4, 4, "dint4"), {"k_max": 2}, "k_max"),
        ((4, 4, "dint4"), {"acc_width": 13}, "can overflow"),
        ((4, 4, "int3"), {"acc_width": 24}, "unknown format"),
        ((4, 4, "dint4"), {"acc_width": 24, "style": "booth"}, "style"),
    ],
)
def test_systolic_rejects_bad_parameters(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SystolicArray(*args, **kwargs)
