"""hw.Tile in Amaranth's simulator: golden.schedule's beats in, golden's int8 out.

The three input streams are driven concurrently (each by its own testbench, with random
tvalid gaps) and the output with random tready, so the tile's own flow control must order
params, weights and activations. Expected outputs are golden.schedule's (golden.linear_int8).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

import golden
from golden.contract import Q_MAX
from hw import AXIS_PORTS, Tile, build_design
from hw.params import HwError

STREAMS = {"params": "s_axis_params", "weights": "s_axis_weights", "act": "s_axis_act"}


def _layer(rng, t, k, n, fmt):
    a = rng.integers(-127, 128, (t, k))
    w = rng.integers(0, 1 << fmt.bits, (n, k))
    acc = golden.accumulate(a, w, fmt)
    typical = np.maximum(np.abs(acc).max(axis=0), 1).astype(np.float64)
    M, sh = golden.requant_constants(Q_MAX / typical * rng.uniform(0.5, 2.0, n))
    return a, w, M, sh


def run_tile(dut: Tile, sched: golden.Schedule, p_valid: float, p_ready: float, seed: int):
    """Drive every phase of ``sched`` into ``dut``; the output beats, tlasts and cycles."""
    beats = {s: [] for s in STREAMS}
    for ph in sched.phases:
        for i in range(ph.beats):
            beats[ph.stream].append(({f: v[i] for f, v in ph.fields.items()}, bool(ph.last[i])))
    want = len(sched.expected_out)
    got, lasts, cycles = [], [], [0]

    def source(stream):
        port = STREAMS[stream]
        tdata = getattr(dut, f"{port}_tdata")

        async def proc(ctx):
            rnd = random.Random(f"{seed}-{stream}")
            for fields, last in beats[stream]:
                while rnd.random() > p_valid:
                    await ctx.tick()
                for name, value in fields.items():
                    target = getattr(tdata, name)
                    if np.ndim(value):
                        for i, v in enumerate(value):
                            ctx.set(target[i], int(v))
                    else:
                        ctx.set(target, int(value))
                ctx.set(getattr(dut, f"{port}_tlast"), last)
                ctx.set(getattr(dut, f"{port}_tvalid"), 1)
                await ctx.tick().until(getattr(dut, f"{port}_tready"))
                ctx.set(getattr(dut, f"{port}_tvalid"), 0)

        return proc

    async def sink(ctx):
        rnd = random.Random(f"{seed}-sink")
        while len(got) < want and cycles[0] < 50 * (want + 1000):
            ready = rnd.random() < p_ready
            ctx.set(dut.m_axis_out_tready, ready)
            _, _, valid, data, last = await ctx.tick().sample(
                dut.m_axis_out_tvalid, dut.m_axis_out_tdata, dut.m_axis_out_tlast
            )
            cycles[0] += 1
            if valid and ready:
                got.append([int(data.y[c]) for c in range(dut.cols)])
                lasts.append(bool(last))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for stream in STREAMS:
        sim.add_testbench(source(stream), background=True)
    sim.add_testbench(sink)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(-1, dut.cols), np.array(lasts), cycles[0]


@pytest.mark.parametrize(
    "fmt, rows, cols, depth, shape, p",
    [
        ("dint4", 4, 4, 8, (19, 10, 6), 0.6),  # 3 token blocks, K and N padded
        ("dint4", 4, 4, 8, (8, 8, 4), 1.0),  # one block, exact fit, full rate
        ("fp4_e2m1", 2, 3, 4, (5, 7, 4), 0.7),  # odd sizes: 1 lane, padded tdata
        ("int8", 4, 2, 16, (3, 9, 3), 0.8),  # int8 weights: radix-8 Booth PEs
        ("int4", 1, 1, 1, (3, 2, 2), 0.9),  # depth 1: every token is a pass's last
    ],
)
def test_tile_equals_golden_under_random_flow_control(fmt, rows, cols, depth, shape, p):
    fmt_ = golden.get(fmt)
    rng = np.random.default_rng(rows * 100 + depth)
    a, w, M, sh = _layer(rng, *shape, fmt_)
    kpad = -(-shape[1] // rows) * rows
    dut = Tile(rows, cols, fmt_, depth=depth, k_max=kpad)
    sched = golden.schedule(a, w, M, sh, golden.TileGeometry(rows, cols, depth, fmt_))
    got, lasts, _ = run_tile(dut, sched, p, p, seed=depth)
    assert got.shape == sched.expected_out.shape
    assert np.array_equal(got, sched.expected_out)
    assert np.array_equal(lasts, sched.expected_last)
    assert np.array_equal(sched.assemble(got), golden.linear_int8(a, w, fmt_, M, sh))


def test_tile_streams_a_pass_at_full_rate():
    """At full rate a pass of T tokens costs T cycles plus a bounded overhead per pass."""
    fmt = golden.get("dint4")
    rng = np.random.default_rng(3)
    t, k, n = 16, 16, 4
    a, w, M, sh = _layer(rng, t, k, n, fmt)
    dut = Tile(4, 4, fmt, depth=16, k_max=k)
    sched = golden.schedule(a, w, M, sh, golden.TileGeometry(4, 4, 16, fmt))
    got, _, cycles = run_tile(dut, sched, 1.0, 1.0, seed=1)
    assert np.array_equal(got, sched.expected_out)
    passes = sum(1 for ph in sched.phases if ph.stream == "act")
    # per pass: its 4 weight beats, a drain of the array latency, a cycle to hand over
    bound = t * passes + passes * (4 + dut.array.latency + 2) + dut.latency + 8
    assert cycles <= bound, f"{cycles} cycles for {t * passes} activation beats"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 0}, "depth"),
        ({"act_format": "int4"}, "int8"),
        ({"lanes": 3}, "must divide rows"),
        ({"style": "booth"}, "unknown style"),
        ({"acc_width": 10}, "acc_width"),
        ({}, "give acc_width"),
    ],
)
def test_tile_rejects_bad_parameters(kwargs, match):
    base = {"k_max": 64} if kwargs and "acc_width" not in kwargs else {}
    with pytest.raises(ValueError, match=match):
        build_design("tile", "dint4", rows=4, cols=4, **{**base, **kwargs})


def test_tile_takes_only_its_options():
    with pytest.raises(HwError, match="tile does not take"):
        build_design("tile", "dint4", k_max=64, pipeline=True)


def test_cli_exports_the_tile_and_refuses_bad_input(tmp_path):
    """``python -m hw verilog tile``: AXI4-Stream ports only (plus clk/rst), the sidecar's
    byte layout; a bad depth is one error line and nothing is written."""
    repo = Path(__file__).resolve().parents[1]
    base = [sys.executable, "-m", "hw", "verilog", "tile", "--weight", "dint4", "--name", "t"]
    bad = subprocess.run(
        [*base, "--k-max", "64", "--depth", "0", "-o", str(tmp_path / "t.v")],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert bad.returncode == 2 and "depth" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    ok = subprocess.run(
        [*base, "--k-max", "1536", "--rows", "4", "--cols", "6", "-o", str(tmp_path / "t.v")],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert ok.returncode == 0, ok.stderr
    meta = json.loads((tmp_path / "t.json").read_text())
    names = {p["name"] for p in meta["ports"]} - {"clk", "rst"}
    expected = {f"{s}_{x}" for s in AXIS_PORTS for x in ("tdata", "tvalid", "tready", "tlast")}
    assert names == expected
    widths = {p["name"]: p["width"] for p in meta["ports"]}
    assert widths["s_axis_weights_tdata"] == 24  # 6 codes of 4 bits = 3 bytes
    assert widths["s_axis_act_tdata"] == 32 and widths["m_axis_out_tdata"] == 48
    assert widths["s_axis_params_tdata"] == 40
    assert all(w % 8 == 0 for n, w in widths.items() if n.endswith("tdata"))
    assert meta["streams"]["s_axis_act"]["last"] == "s_axis_act_tlast"
    params = meta["parameters"]
    assert (params["rows"], params["cols"], params["depth"]) == (4, 6, 512)
    assert params["acc_width"] == golden.acc_width_for(1536, "int8", "dint4")
    assert meta["latency"] == params["array_latency"] + 2
    assert params["axis"]["s_axis_params"]["tdata_bytes"] == 5
