"""reports.workload: the dot product's and the classic array's gate-level workloads drive the
mapped OSU018 netlists and every checked output equals golden (iverilog; skipped only where
it is missing), and a wrong expectation is caught at its cycle."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import golden
import hw
from reports import gatesim, operands, workload
from reports.toolchain import find_liberty

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None or shutil.which("vvp") is None,
    reason="Icarus Verilog (iverilog, vvp) is not installed: apt-get install iverilog",
)

DOT = hw.DesignPoint("dot", "dint4", "shiftadd", size=4)
SYS = hw.DesignPoint("systolic", "dint4", "mul", size=3, cols=2)
LEAN = hw.DesignPoint("systolic", "dint4", "shiftadd", size=4, cols=2, arch="lean", pe_lanes=2)


def _dot_workload(k=8, beats=40):
    a, w = operands.operands("smollm2", beats * DOT.size, "dint4", np.random.default_rng(3))
    return workload.dot(DOT, a, w, k), a, w


def _sys_workload(cycles=120, tokens=6):
    tiles = workload.layer_tiles(
        operands.smollm2_tiles("dint4"), SYS.rows, SYS.columns, tokens, np.random.default_rng(5)
    )
    return workload.systolic(SYS, tiles, cycles)


def test_dot_workload_schedule_and_sums():
    wl, a, w = _dot_workload()
    per = 8 // DOT.size
    assert wl.cycles == 40 and wl.macs == 40 * DOT.size
    valid = wl.expected["o__valid"]
    # a group's sum shows in the cycle after its last beat
    assert np.flatnonzero(valid).tolist() == list(range(per, 40, per))
    a2 = np.asarray(a, np.int64).reshape(-1, 8)
    w2 = np.asarray(w, np.int64).reshape(-1, 8)
    sums = golden.accumulate(a2, w2, "dint4").diagonal()
    assert wl.expected["o__payload"][valid.astype(bool)].tolist() == sums[: valid.sum()].tolist()
    with pytest.raises(workload.WorkloadError, match="multiple of the 4 lanes"):
        workload.dot(DOT, a, w, 6)


def test_systolic_workload_schedule():
    wl = _sys_workload()
    R, C = SYS.rows, SYS.columns
    per_tile = R + 6 + (R + C - 1)
    tiles = wl.cycles // per_tile
    assert wl.cycles == tiles * per_tile and tiles >= 2
    assert wl.macs == tiles * 6 * R * C
    assert int(wl.stimulus["w_in__valid"].sum()) == tiles * R
    assert int(wl.stimulus["a_in__valid"].sum()) == int(wl.expected["o__valid"].sum()) == tiles * 6
    with pytest.raises(workload.WorkloadError, match="no tile fits"):
        workload.systolic(SYS, iter([]), 100)
    col = hw.DesignPoint("systolic", "dint4", size=4, arch="lean-col", k_max=64)
    with pytest.raises(workload.WorkloadError, match="classic and lean, not lean-col"):
        workload.systolic(col, iter([]), 9)


def test_layer_tiles_chain_the_k_tiles():
    tiles = operands.smollm2_tiles("dint4")
    a, w, psum = next(workload.layer_tiles(tiles, 4, 2, 5, np.random.default_rng(0)))
    assert a.shape == (5, 4) and w.shape == (4, 2) and psum.shape == (5, 2)
    # the psum is the sum of the earlier K-tiles of the same tokens and outputs: find them
    for t in tiles:
        for n0 in range(0, t.shape[2] - 1, 2):
            wt = t.w_codes[n0 : n0 + 2]
            for k0 in range(0, t.shape[1] - 3, 4):
                if np.array_equal(wt[:, k0 : k0 + 4].T, w):
                    rows = [np.flatnonzero((t.a[:, k0 : k0 + 4] == r).all(1)) for r in a]
                    if all(len(r) for r in rows):
                        idx = [r[0] for r in rows]
                        want = golden.accumulate(t.a[idx, :k0], wt[:, :k0], t.weight_format)
                        if np.array_equal(want, psum):
                            return
    pytest.fail("the tile's psum is no prefix sum of its layer")


def _simulate(mapped_netlist, wl, tmp_path, delays):
    """Simulate ``wl`` on the netlist; raises at the first output that differs from golden."""
    return gatesim.simulate(
        mapped_netlist,
        gatesim.cells_verilog(),
        wl.stimulus,
        list(wl.expected),
        tmp_path,
        delays,
        expected=wl.expected,
        check=wl.check,
    )


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    lib = find_liberty()
    out = {}
    for p in (DOT, SYS, LEAN):
        wd = tmp_path_factory.mktemp(p.name)
        out[p] = gatesim.map_component(p.build(), p.name, wd, lib, clock_gate=p.clock_gate)
    return out


@needs_iverilog
@pytest.mark.parametrize("delays", [False, True])
def test_gate_level_dot_equals_golden(mapped, tmp_path, delays):
    wl, _, _ = _dot_workload()
    act = _simulate(mapped[DOT], wl, tmp_path, delays)
    assert act.outputs["o__valid"].sum() == wl.expected["o__valid"].sum() > 5


@needs_iverilog
def test_gate_level_array_equals_golden_and_a_wrong_sum_is_caught(mapped, tmp_path):
    wl = _sys_workload()
    m = mapped[SYS]
    act = _simulate(m, wl, tmp_path, False)
    scopes = {m.scopes[c].split(".")[0] for c, _ in m.cells if m.scopes[c]}
    assert {f"pe_{r}_{c}" for r in range(SYS.rows) for c in range(SYS.columns)} <= scopes
    wrong = dict(wl.expected, o__payload=wl.expected["o__payload"].copy())
    i = int(np.flatnonzero(wl.expected["o__valid"])[3])
    wrong["o__payload"][i] += 1
    with pytest.raises(gatesim.GateSimError, match=rf"o__payload .*cycle {i} "):
        gatesim.check_outputs(act, wrong, wl.check)
    # outside the valid cycles the payload is not compared
    free = int(np.flatnonzero(wl.expected["o__valid"] == 0)[-1])
    wrong = dict(wl.expected, o__payload=wl.expected["o__payload"].copy())
    wrong["o__payload"][free] += 1
    gatesim.check_outputs(act, wrong, wl.check)


@needs_iverilog
@pytest.mark.parametrize("delays", [False, True])
def test_gate_level_clock_gated_lean_array_equals_golden(mapped, tmp_path, delays):
    """The lean array's tile sums (no psum input), its latency from the component, and the
    area flow's clock gates (a falling-edge flip-flop and an AND per group) at gate level."""
    m = mapped[LEAN]
    assert LEAN.clock_gate and sum(t == "DFFNEGX1" for _, t in m.cells) >= 2
    tiles = workload.layer_tiles(operands.smollm2_tiles("dint4"), 4, 2, 6, np.random.default_rng(1))
    wl = workload.systolic(LEAN, tiles, 100)
    array = LEAN.build()
    array._MustUse__silence = True  # built for its latency only, never elaborated
    latency = array.latency
    assert wl.cycles == (wl.cycles // (4 + 6 + latency)) * (4 + 6 + latency)
    _simulate(m, wl, tmp_path, delays)
