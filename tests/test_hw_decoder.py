"""WeightDecoder, ShiftAddPlan and both multipliers against the format tables (exhaustive codes)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

import golden
from golden import product_width
from hw import default_style
from hw.decoder import ShiftAddPlan, WeightDecoder
from hw.multiplier import build_product

ALL_FORMATS = sorted(golden.FORMATS)
FOUR_BIT = [n for n in ALL_FORMATS if golden.get(n).bits == 4]


def _run_comb(dut, tb) -> None:
    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_decoder_every_code(name):
    fmt = golden.get(name)
    dut = WeightDecoder(fmt)
    got = []

    async def tb(ctx):
        for code in range(1 << fmt.bits):
            ctx.set(dut.code, code)
            got.append(ctx.get(dut.value))

    _run_comb(dut, tb)
    assert got == list(fmt.ints)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_shiftadd_plan_matches_table(name):
    fmt = golden.get(name)
    plan = ShiftAddPlan.from_format(fmt)
    if fmt.bits == 4:
        assert plan is not None, f"every 4-bit magnitude of {name} is <= 2 powers of two"
        assert all(len(t) <= 2 for t in plan.terms)
        a = np.arange(-128, 128)
        for code in range(16):
            got = [plan.evaluate(code, int(x)) for x in a]
            want = golden.accumulate(a[:, None], np.array([[code]]), fmt)[:, 0]
            assert got == want.tolist()
    else:
        assert plan is None  # int8 has magnitudes such as 85 = 64+16+4+1: generic fallback
    assert default_style(fmt) == ("shiftadd" if plan else "mul")


def _product_table(fmt, style, a_values):
    """Simulated a * ints[code] for every code and the given activations."""

    m = Module()
    from amaranth.hdl import Signal, signed, unsigned

    a = Signal(signed(8))
    code = Signal(unsigned(fmt.bits))
    product = build_product(m, a, code, fmt, golden.get("int8"), style)
    assert len(product) == product_width(golden.get("int8"), fmt)
    got = np.zeros((len(a_values), 1 << fmt.bits), dtype=np.int64)

    async def tb(ctx):
        for j in range(1 << fmt.bits):
            ctx.set(code, j)
            for i, x in enumerate(a_values):
                ctx.set(a, int(x))
                got[i, j] = ctx.get(product)

    _run_comb(m, tb)
    return got


@pytest.mark.parametrize("style", ["mul", "shiftadd"])
@pytest.mark.parametrize("name", ["int8", "int4", "dint4", "fp4_e2m1", "dint4_0.75"])
def test_multiplier_every_code(name, style):
    fmt = golden.get(name)
    if fmt.bits == 4:
        a_values = np.arange(-128, 128)
    else:  # int8 weights: every code against the extremes and a few random activations
        rng = np.random.default_rng(3)
        a_values = np.concatenate([[-128, -127, -1, 0, 1, 127], rng.integers(-128, 128, 10)])
    got = _product_table(fmt, style, a_values)
    codes = np.arange(1 << fmt.bits)[:, None]
    want = golden.accumulate(a_values[:, None], codes, fmt)
    assert np.array_equal(got, want)
