"""MAC against golden.mac_trace: random en/clear sequences, extremes, reset, bad parameters."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import ClockDomain, Fragment, Module

import golden
from golden import min_acc_width
from hw.mac import MAC
from hw.testing import simulate

FORMATS = ["int8", "int4", "dint4", "fp4_e2m1"]
STYLES = ["mul", "shiftadd"]


def _expected_trace(ops, fmt, acc_width=None):
    """acc after each edge, from golden's cycle-level MAC reference (en, clear; no rst)."""
    en, clear, a, w = zip(*ops, strict=True)
    return golden.mac_trace(a, w, en, clear, weight=fmt, acc_width=acc_width).tolist()


def _run(dut, ops):
    got = []

    async def tb(ctx):
        assert ctx.get(dut.acc) == 0  # reset value
        for en, clear, a, w in ops:
            ctx.set(dut.en, en)
            ctx.set(dut.clear, clear)
            ctx.set(dut.a, a)
            ctx.set(dut.w, w)
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    simulate(dut, tb)
    return got


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", FORMATS)
def test_mac_random_sequence(name, style):
    fmt = golden.get(name)
    rng = random.Random(f"{name}-{style}")
    k_max = 32
    dut = MAC(fmt, k_max=k_max, style=style)
    ops, run = [], 0
    for _ in range(250):
        en = int(rng.random() < 0.8)
        # A clear at least every k_max enabled products keeps every sum within k_max.
        clear = int(rng.random() < 0.08 or (en and run == k_max))
        run = (1 if clear else run + 1) if en else run
        ops.append((en, clear, rng.randint(-128, 127), rng.randrange(1 << fmt.bits)))
    assert _run(dut, ops) == _expected_trace(ops, fmt)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", FORMATS)
def test_mac_extremes_at_minimum_width(name, style):
    """k_max products of -128 and the most negative/positive weight, at the tightest width."""
    fmt = golden.get(name)
    k_max = 20
    width = min_acc_width(k_max, "int8", fmt)
    dut = MAC(fmt, acc_width=width, k_max=k_max, style=style)
    big = max(range(1 << fmt.bits), key=lambda c: fmt.ints[c])
    small = min(range(1 << fmt.bits), key=lambda c: fmt.ints[c])
    ops = [(1, i == 0, -128, big) for i in range(k_max)]
    ops += [(1, i == 0, -128, small) for i in range(k_max)]
    ops += [(1, i == 0, 127, big) for i in range(k_max)]
    ops += [(0, 1, 5, big)] * 3  # disabled: holds even with clear high
    got = _run(dut, ops)
    assert got == _expected_trace(ops, fmt, acc_width=width)  # golden: nothing wraps at width
    assert min(got) < 0 < max(got)


def test_mac_reset_clears_accumulator():
    """The domain reset (``rst`` in the Verilog) clears acc; enable and clear still work after."""
    dut = MAC("dint4", acc_width=16)
    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.mac = dut
    fmt = golden.get("dint4")
    code = fmt.ints.index(12)
    rst = [0, 0, 0, 1, 0]  # three products, a reset edge, one more product
    got = []

    async def tb(ctx):
        ctx.set(dut.en, 1)
        ctx.set(dut.a, -7)
        ctx.set(dut.w, code)
        for r in rst:
            ctx.set(cd.rst, r)
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    simulate(m, tb)
    n = len(rst)
    want = golden.mac_trace([-7] * n, [code] * n, [1] * n, [0] * n, rst, weight=fmt)
    assert got == want.tolist()
    assert got[3] == 0 and got[4] == got[0] != 0


def _elaborated(dut):
    Fragment.get(dut, None)  # elaborate it, as a build would
    return dut


def test_mac_widths_and_ports():
    dut = _elaborated(MAC("dint4", acc_width=24))
    assert [len(dut.a), len(dut.w), len(dut.acc)] == [8, 4, 24]
    wide = _elaborated(MAC("int8", k_max=256))
    assert wide.acc_width == golden.acc_width_for(256, "int8", "int8")
    assert dut.style == "shiftadd"
    assert _elaborated(MAC("int8", acc_width=24)).style == "mul"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight_format": "dint5", "acc_width": 24}, "unknown format"),
        ({"weight_format": "dint4"}, "acc_width"),
        ({"weight_format": "dint4", "acc_width": 10}, "can overflow"),
        ({"weight_format": "dint4", "acc_width": 14, "k_max": 64}, "can overflow"),
        ({"weight_format": "dint4", "k_max": 0}, "k_max"),
        ({"weight_format": "dint4", "acc_width": 24, "style": "booth"}, "style"),
        ({"weight_format": "dint4", "act_format": "fp4_e2m1", "acc_width": 24}, "two's"),
    ],
)
def test_mac_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAC(**kwargs)
