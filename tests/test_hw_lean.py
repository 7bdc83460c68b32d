"""LeanSystolicArray and the shared-multiple plans against golden (amaranth.sim, exact ==)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import golden
from hw.lean import ARCHS, LeanSystolicArray
from hw.params import HwError
from hw.shared import SharedPlan
from hw.testing import simulate, stream_receive, stream_send


def _lean(*args, **kw) -> LeanSystolicArray:
    """An array built for its attributes only, never elaborated (so Amaranth's "created but
    never used" warning is silenced on it)."""
    dut = LeanSystolicArray(*args, **kw)
    dut._MustUse__silence = True
    return dut


@pytest.mark.parametrize("fmt", list(golden.FORMATS))
def test_shared_plan_is_exact(fmt):
    """Every code x every int8 activation: the plan's product equals golden's."""
    f = golden.get(fmt)
    plan = SharedPlan.from_format(f)
    a = np.arange(-128, 128)
    for code in range(1 << f.bits):
        got = np.array([plan.evaluate(code, int(x)) for x in a])
        want = golden.accumulate(a[:, None], np.full((1, 1), code), f)[:, 0]
        assert (got == want).all(), (fmt, code)


def test_shared_plan_kinds():
    assert SharedPlan.from_format("dint4").odds == (1, 3, 5)
    assert SharedPlan.from_format("fp4_e2m1").odds == (1, 3)
    assert SharedPlan.from_format("int8").kind == "booth8"
    assert SharedPlan.from_format("int8").n_digits == 3


def _run(dut, tiles, gap, stall, seed):
    """Stream (W codes [R, C], a [T, R], psum [T, C] or None) tiles; return the outputs."""
    C = dut.cols
    n_out = sum(len(a) for _, a, _ in tiles)
    got = []

    async def send(ctx):
        rng = random.Random(seed)
        for W, a, _ in tiles:
            await stream_send(ctx, dut.w_in, [[int(x) for x in row] for row in W], rng, gap)
            await stream_send(ctx, dut.a_in, [{"a": [int(x) for x in v]} for v in a], rng, gap)

    async def send_psum(ctx):
        rng = random.Random(seed + 7)
        beats = [[int(x) for x in p] for _, _, ps in tiles for p in ps]
        await stream_send(ctx, dut.psum_in, beats, rng, gap)

    async def receive(ctx):
        got.extend(await stream_receive(ctx, dut.o, n_out, random.Random(seed + 1), stall))

    benches = [send, receive] + ([send_psum] if dut.arch.ksum == "column" else [])
    simulate(dut, *benches)
    assert len(got) == n_out
    return np.array(got).reshape(n_out, C)


def _tiles(fmt, rows, cols, n_tiles, rng, column, acc_width):
    f = golden.get(fmt)
    extreme = max(range(1 << f.bits), key=lambda c: abs(f.ints[c]))
    tiles = []
    for k in range(n_tiles):
        T = int(rng.integers(1, 7))
        W = rng.integers(0, 1 << f.bits, (rows, cols))
        a = rng.integers(-128, 128, (T, rows))
        if k == 0:  # worst case: every product at its extreme
            W[:] = extreme
            a[0] = -128
        psum = None
        if column:
            lo, hi = golden.acc_range(rows, "int8", f)
            psum = rng.integers(-(2 ** (acc_width - 1)) - lo, 2 ** (acc_width - 1) - hi, (T, cols))
        tiles.append((W, a, psum))
    return tiles


CASES = [
    ("dint4", "shared", "lean", 4, 3, None, 2, False),
    ("int8", "shared", "lean-col", 4, 2, None, 4, True),
    ("dint4", "mul", "lean", 6, 2, 1, 3, True),
    ("fp4_e2m1", "shared", "lean", 4, 3, None, 1, True),
    ("dint4", "shared", "lean", 4, 3, None, 1, False),
    ("int8", "shared", "lean", 3, 4, None, 1, False),
    ("int8", "mul", "lean-col", 4, 2, None, 1, False),
    ("int4", "shared", "lean-col", 2, 3, None, 1, False),
    ("fp4_e2m1", "shiftadd", "lean", 3, 5, 2, 1, False),
    ("dint4_0.75", "shared", "lean", 4, 5, 2, 1, False),
    ("dint4_0.25", "shared", "lean-col", 1, 3, 1, 1, False),
]


@pytest.mark.parametrize("fmt,style,arch,rows,cols,every,lanes,pipeline", CASES)
def test_lean_array_matches_golden(fmt, style, arch, rows, cols, every, lanes, pipeline):
    column = ARCHS[arch].ksum == "column"
    kw = {"k_max": 64} if column else {}
    dut = LeanSystolicArray(
        rows,
        cols,
        fmt,
        arch=arch,
        style=style,
        a_reg_every=every,
        lanes=lanes,
        pipeline=pipeline,
        **kw,
    )
    rng = np.random.default_rng(rows * 10 + cols)
    tiles = _tiles(fmt, rows, cols, 4, rng, column, dut.acc_width)
    got = _run(dut, tiles, gap=0.3, stall=0.3, seed=rows + cols)
    want = np.concatenate(
        [(ps if ps is not None else 0) + golden.accumulate(a, W.T, fmt) for W, a, ps in tiles]
    )
    assert got.shape == want.shape
    assert (got == want).all()


def test_lean_psum_widths_follow_golden():
    dut = _lean(8, 2, "dint4", lanes=1)
    assert dut.psum_widths == [golden.min_acc_width(r + 1, "int8", "dint4") for r in range(8)]
    assert dut.acc_width == dut.psum_widths[-1]


def test_lean_lanes_psum_widths_and_latency():
    dut = _lean(8, 2, "dint4", lanes=4, pipeline=True)
    assert dut.psum_widths == [golden.min_acc_width(k, "int8", "dint4") for k in (4, 8)]
    assert dut.latency == 2 + 1


def test_lean_default_lanes():
    assert _lean(8, 2, "dint4").lanes == 2  # hw.DEFAULT_LANES
    assert _lean(3, 2, "dint4").lanes == 1  # odd rows: one weight per PE


def test_lean_lanes_must_divide_rows():
    with pytest.raises(HwError, match="must divide rows"):
        LeanSystolicArray(6, 2, "dint4", lanes=4)


def test_lean_outside_refuses_accumulator_width():
    with pytest.raises(HwError, match="sums K outside"):
        LeanSystolicArray(4, 4, "dint4", arch="lean", k_max=256)


@pytest.mark.parametrize("weight", ["dint4", "int8"])
def test_lean_lanes_and_pipeline_lint_clean(tmp_path, weight):
    from hw import build_design, export_verilog, verilator_lint, yosys_check

    dut = build_design("systolic", weight, rows=4, cols=3, lanes=2, pipeline=True)
    top = f"lean_l2_{weight}"
    meta = export_verilog(dut, top, tmp_path / f"{top}.v")
    assert meta["parameters"]["lanes"] == 2 and meta["latency"] == dut.latency == 3
    verilator_lint(tmp_path / f"{top}.v", top)
    yosys_check(tmp_path / f"{top}.v", top)
