"""DotProduct against golden.accumulate: random sums of random lengths, extremes, gaps, stalls."""

from __future__ import annotations

import random

import numpy as np
import pytest

import golden
from golden import min_acc_width
from hw.dot import DotProduct
from hw.testing import random_codes, random_ints, simulate, stream_receive, stream_send

FORMATS = ["int8", "int4", "dint4", "fp4_e2m1"]


def _sums(rng: random.Random, fmt, lanes: int, count: int, max_beats: int):
    """``count`` dot products as lists of beats; the first one is the all -128 extreme."""
    extreme = max(range(1 << fmt.bits), key=lambda c: abs(fmt.ints[c]))
    sums = [[([-128] * lanes, [extreme] * lanes)] * max_beats]
    for _ in range(count - 1):
        beats = rng.randint(1, max_beats)
        sums.append(
            [
                (random_ints(rng, -128, 127, lanes), random_codes(rng, fmt.bits, lanes))
                for _ in range(beats)
            ]
        )
    return sums


def _payloads(sums):
    out = []
    for beats in sums:
        for j, (a, w) in enumerate(beats):
            out.append({"a": a, "w": w, "first": int(j == 0), "last": int(j == len(beats) - 1)})
    return out


def _expected(sums, fmt):
    """One golden.accumulate per sum: a[1, K] against w[1, K] over the concatenated beats."""
    res = []
    for beats in sums:
        a = np.array([[x for a, _ in beats for x in a]])
        w = np.array([[c for _, w in beats for c in w]])
        res.append(int(golden.accumulate(a, w, fmt)[0, 0]))
    return res


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("style", ["mul", "shiftadd"])
@pytest.mark.parametrize("name", FORMATS)
def test_dot_matches_golden(name, style, pipeline):
    fmt = golden.get(name)
    lanes, max_beats = 4, 5
    rng = random.Random(f"{name}-{style}-{pipeline}")
    sums = _sums(rng, fmt, lanes, 24, max_beats)
    # The tightest accumulator the golden check allows for lanes * max_beats products.
    k_max = lanes * max_beats
    width = min_acc_width(k_max, "int8", fmt)
    dut = DotProduct(lanes, fmt, acc_width=width, k_max=k_max, style=style, pipeline=pipeline)
    got = []
    gap, stall = (0.3, 0.4) if pipeline else (0.2, 0.5)

    async def send(ctx):
        await stream_send(ctx, dut.i, _payloads(sums), random.Random(1), gap)

    async def receive(ctx):
        got.extend(await stream_receive(ctx, dut.o, len(sums), random.Random(2), stall))

    simulate(dut, send, receive)
    assert got == _expected(sums, fmt)


def test_dot_back_to_back_without_stalls():
    """Full throughput: one beat per cycle in, results out with the documented latency."""
    fmt = golden.get("dint4")
    dut = DotProduct(3, fmt, acc_width=20, pipeline=True)
    rng = random.Random(7)
    sums = _sums(rng, fmt, 3, 10, 2)
    payloads = _payloads(sums)
    got = []
    cycles = {}

    async def send(ctx):
        cycles["send"] = await stream_send(ctx, dut.i, payloads)

    async def receive(ctx):
        got.extend(await stream_receive(ctx, dut.o, len(sums)))

    simulate(dut, send, receive)
    assert got == _expected(sums, fmt)
    assert cycles["send"] == len(payloads)  # never stalled


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lanes": 0, "weight_format": "dint4", "acc_width": 24}, "lanes"),
        ({"lanes": 8, "weight_format": "dint4", "k_max": 4}, "k_max"),
        ({"lanes": 8, "weight_format": "dint4", "acc_width": 14}, "can overflow"),
        ({"lanes": 8, "weight_format": "nope", "acc_width": 24}, "unknown format"),
        ({"lanes": 8, "weight_format": "dint4", "acc_width": 24, "style": "x"}, "style"),
    ],
)
def test_dot_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DotProduct(**kwargs)
