"""sim.tb_tile and sim.tileaxis, the AXI4-Stream testbench of hw.Tile: its frames carry
golden's schedule at the sidecar's field offsets, its checks name a wrong value, a misplaced
tlast, a lost beat and a full-rate bubble (on synthetic traffic, no simulator); and (slow)
one quick cocotb + Verilator run of a 2x2 tile, which must pass, then the same run with a
broken decoder entry, which must fail naming the output beat."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import golden
import hw
from golden.schedule import STREAMS
from sim import configs
from sim.build import OBJCACHE_ENV
from sim.export import FAULT_ENV, weight_format_for_export
from sim.runner import RunOptions, run_config
from sim.sidecar import Sidecar
from sim.tb_tile import check_outputs
from sim.tbutil import Scoreboard, TbContext
from sim.tileaxis import (
    LAYER_RNG,
    OUT,
    PASS_GAP,
    PORTS,
    Handshakes,
    Layer,
    Traffic,
    check_full_rate,
    held_breaks,
    input_frames,
    params_wait,
    random_layer,
    tdata_bytes,
    tile_geometry,
)

REPO = Path(__file__).resolve().parents[1]
TESTS = ["test_axis_random_layer", "test_axis_full_rate", "test_axis_acc_extremes"]
# 2 token blocks (depth 4, quick: T = depth + 3), 4 passes (K = 7 on 2 rows), 3 N-tiles.
SMALL = {"T": 9, "K": 7, "N": 5}


def _point() -> hw.DesignPoint:
    return hw.tile_point("dint4", 2, 2, k_max=16, depth=4)


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory) -> Sidecar:
    d = tmp_path_factory.mktemp("tile")
    hw.export_verilog(_point().build(), "t_tile", d / "t_tile.v")
    return Sidecar.load(d / "t_tile.json")


def _ctx(sidecar: Sidecar, tmp_path: Path, seed: int = 1) -> TbContext:
    """The context the runner writes for a quick run of options SMALL."""
    return TbContext("tile-pytest", sidecar, tmp_path / "results.json", seed, True, SMALL)


def _layer(ctx: TbContext) -> Layer:
    return random_layer(ctx, tile_geometry(ctx), ctx.rng(LAYER_RNG))


def test_frames_carry_the_schedule_at_the_sidecar_offsets(sidecar, tmp_path):
    ctx = _ctx(sidecar, tmp_path)
    layer = _layer(ctx)
    sched = layer.sched
    R = sched.geometry.rows
    assert (R, sched.geometry.cols) == (2, 2)
    assert (sched.T, sched.K, sched.N) == (7, 7, 5)  # quick: T = depth + 3
    assert [j.tokens for j in sched.jobs] == [4, 3] * 3 and sched.jobs[0].passes == 4
    frames = input_frames(ctx, sched)
    # One params and one weights frame per job (all its passes), one act frame per pass.
    assert [len(frames[p]) for p in PORTS.values()] == [6, 6, 24]
    for stream, port in PORTS.items():
        payload, nbytes = sidecar.stream(port).payload, tdata_bytes(ctx, port)
        assert nbytes == {"params": 5, "weights": 1, "act": R}[stream]
        raw = b"".join(frames[port])
        words = [int.from_bytes(raw[i : i + nbytes], "little") for i in range(0, len(raw), nbytes)]
        for name in STREAMS[stream]:
            want = np.concatenate([ph.fields[name] for ph in sched.phases_of(stream)])
            assert (payload.unpack(words, name) == want).all(), (stream, name)
    # The weights frame of a job ends (tlast) on the last beat of its last pass.
    assert {len(f) for f in frames[PORTS["weights"]]} == {sched.jobs[0].passes * R}


def _ideal_traffic(ctx: TbContext, layer: Layer) -> Traffic:
    """What a tile with the documented full-rate timing would show the monitor."""
    sched, sc = layer.sched, ctx.sidecar
    R, L = sched.geometry.rows, int(sc.parameters["array_latency"])
    mon = Handshakes(dut=None)
    mon.beats = {p: [] for p in [*PORTS.values(), OUT]}
    s = 1
    for job in sched.jobs:
        assert params_wait(job, sched.geometry, L) == 0
        # The bank is freed with the previous job's last output.
        p0 = mon.beats[OUT][-1] if mon.beats[OUT] else s
        mon.beats[PORTS["params"]] += list(range(p0, p0 + sched.geometry.cols))
        for q in range(job.passes):
            w = list(range(s, s + R))
            a = list(range(s + R, s + R + job.tokens))
            mon.beats[PORTS["weights"]] += w
            mon.beats[PORTS["act"]] += a
            if q == job.passes - 1:
                mon.beats[OUT] += [c + sc.latency for c in a]
            s = a[-1] + L + PASS_GAP
    mon.out_last = [bool(x) for x in sched.expected_last]
    payload, nbytes = sc.stream(OUT).payload, tdata_bytes(ctx, OUT)
    beats = payload.pack(len(sched.expected_out), y=sched.expected_out)
    raw = [b.to_bytes(nbytes, "little") for b in beats]
    ends = np.cumsum([0] + [j.tokens for j in sched.jobs])
    frames = [b"".join(raw[ends[i] : ends[i + 1]]) for i in range(len(sched.jobs))]
    return Traffic(frames, mon, mon.beats[OUT][-1] + 1)


def _message(ctx, layer, traffic, full_rate=False) -> str:
    chk = Scoreboard(ctx, "t")
    if check_outputs(ctx, chk, layer, traffic) and full_rate:
        check_full_rate(ctx, chk, layer, traffic)
    return "" if chk.mismatch is None else chk.mismatch.message()


def test_checks_name_a_wrong_value_tlast_or_bubble(sidecar, tmp_path):
    ctx = _ctx(sidecar, tmp_path)
    layer = _layer(ctx)
    good = _ideal_traffic(ctx, layer)
    assert _message(ctx, layer, good, full_rate=True) == ""
    nbytes = tdata_bytes(ctx, OUT)

    # A wrong int8 in output beat 5 (job 1's second token), column 1.
    frames = list(good.frames)
    f = bytearray(frames[1])
    f[1 * nbytes + 1] ^= 0x40
    frames[1] = bytes(f)
    msg = _message(ctx, layer, dataclasses.replace(good, frames=frames))
    assert "output beat 5, column 1" in msg and "mismatch at cycle" in msg

    # tlast one beat early: frame 0 one beat short, frame 1 one beat long.
    frames = [good.frames[0][:-nbytes], good.frames[0][-nbytes:] + good.frames[1]]
    msg = _message(ctx, layer, dataclasses.replace(good, frames=frames + good.frames[2:]))
    assert "beats in output frame 0 (tlast placement)" in msg

    # The tlast the monitor saw on a beat that is not a job's last.
    mon = dataclasses.replace(good.monitor, out_last=list(good.monitor.out_last))
    mon.out_last[1] = True
    assert "m_axis_out_tlast of output beat 1" in _message(
        ctx, layer, dataclasses.replace(good, monitor=mon)
    )

    # An offered output beat that changed before tready took it (AXI4-Stream holding rule).
    assert held_breaks(9, None, 0, 0, 0) == [] and held_breaks(9, (5, 1), 1, 5, 1) == []
    assert held_breaks(9, (5, 1), 0, 0, 0) == [(9, "m_axis_out_tvalid", 1, 0)]
    breaks = held_breaks(9, (5, 1), 1, 6, 0)
    assert breaks == [(9, "m_axis_out_tdata", 5, 6), (9, "m_axis_out_tlast", 1, 0)]
    mon = dataclasses.replace(good.monitor, held=breaks)
    msg = _message(ctx, layer, dataclasses.replace(good, monitor=mon))
    assert "mismatch at cycle 9, m_axis_out_tdata of a beat waiting for tready: expected 5" in msg

    # A lost output frame (the run stalled).
    stalled = dataclasses.replace(good, frames=good.frames[:-1], stalled="no handshake for 2000")
    assert "output frames: expected 6, got 5 (no handshake for 2000" in _message(
        ctx, layer, stalled
    )
    # A run that stalled because the last job's tlast never came.
    mon = dataclasses.replace(good.monitor, out_last=list(good.monitor.out_last))
    mon.out_last[-1] = False
    stalled = dataclasses.replace(stalled, monitor=mon)
    n = len(mon.out_last) - 1
    assert f"m_axis_out_tlast of output beat {n}: expected 1, got 0" in _message(
        ctx, layer, stalled
    )

    def shifted(port, after, by=1):
        beats = {p: list(c) for p, c in good.monitor.beats.items()}
        beats[port] = [c + by if i >= after else c for i, c in enumerate(beats[port])]
        return dataclasses.replace(good, monitor=dataclasses.replace(good.monitor, beats=beats))

    # A bubble before activation 2 of the first pass; one before its weight beat 1.
    msg = _message(ctx, layer, shifted(PORTS["act"], 2), full_rate=True)
    assert "cycle of activation 2 of job 0 pass 0" in msg and "a bubble at full rate" in msg
    msg = _message(ctx, layer, shifted(PORTS["weights"], 1), full_rate=True)
    assert "cycle of weight beat 1 of job 0 pass 0" in msg
    # The next load a cycle later than the array's drain.
    msg = _message(ctx, layer, shifted(PORTS["weights"], 2), full_rate=True)
    assert "cycle of the first weight beat of job 0 pass 1" in msg
    # Job 1's params a cycle after the bank was freed; a bubble within them.
    msg = _message(ctx, layer, shifted(PORTS["params"], 2), full_rate=True)
    assert "cycle of params beat 0 of job 1" in msg
    msg = _message(ctx, layer, shifted(PORTS["params"], 3), full_rate=True)
    assert "cycle of params beat 1 of job 1" in msg
    # Every beat on time but the run as a whole too long.
    slow = dataclasses.replace(good, cycles=good.cycles + 10)
    assert "cycle of the end of the full-rate run" in _message(ctx, layer, slow, full_rate=True)


@pytest.mark.slow
def test_tile_passes_and_a_broken_decoder_fails(tmp_path, monkeypatch, restore_environ):
    # Share Verilator's compiled runtime objects with `python -m sim`.
    monkeypatch.setenv(OBJCACHE_ENV, str(REPO / "build" / "sim" / ".objcache"))
    opts = RunOptions(build_root=tmp_path, jobs=1, quick=True, waves_on_failure=False)
    point = _point()
    cfg = configs.SimConfig(
        configs.config_name(point) + "-pytest", "sim.tb_tile", {"dut": point}, SMALL
    )
    assert cfg.name == "tile-dint4-2x2-d4-pytest"
    results = run_config(cfg, opts)
    assert [(r.test, r.passed) for r in results] == [(t, True) for t in TESTS], [
        r.message for r in results
    ]
    random, full, extremes = results
    assert random.macs == full.macs == 7 * 7 * 5
    assert random.extra["jobs"] == 6 and random.extra["beats"][OUT] == 3 * 7
    assert random.extra["out_waits"] > 0  # the back-pressure held output beats
    assert full.cycles <= full.extra["bound_cycles"] < 2 * full.extra["ideal_cycles"]
    lo, hi = golden.acc_range(extremes.extra["K"], "int8", "dint4")
    assert extremes.extra["bounds_reached"] == [lo, hi]
    assert extremes.extra["K"] == golden.max_k_for_width(
        extremes.extra["acc_width"], "int8", "dint4"
    )

    # The premise of the fault run: code 3 -> 5 changes golden's outputs of this very layer.
    monkeypatch.setenv(FAULT_ENV, "dint4:3:5")
    ctx = _ctx(Sidecar.load(tmp_path / cfg.name / "src" / f"{cfg.top}.json"), tmp_path, cfg.seed)
    a, w, M, sh = _layer(ctx).inputs
    broken = weight_format_for_export("dint4")
    assert (
        golden.linear_int8(a, w, broken, M, sh) != golden.linear_int8(a, w, "dint4", M, sh)
    ).any()
    bad = {r.test: r for r in run_config(cfg, opts)}
    for test in TESTS[:2]:
        assert not bad[test].passed, test
        assert f"{test} [{cfg.name}] mismatch at cycle" in bad[test].message
        assert "output beat" in bad[test].message
    assert bad["test_axis_acc_extremes"].passed  # its codes (7, 15) decode as registered
