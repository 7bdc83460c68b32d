"""sim.report, the scoreboard, the formal miter generator and the run plumbing (no simulator
needed)."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

import golden
import hw
from sim import formal, toolchain
from sim.export import FAULT_ENV, weight_format_for_export, wrapper_sidecar, wrapper_verilog
from sim.report import Mismatch, Result, append_result, format_table, load_results, write_summary
from sim.runner import junit_cases, merge_junit
from sim.selection import matches as _matches
from sim.tbutil import Scoreboard, TbContext
from tools import ToolError


def test_mismatch_message_names_test_config_cycle_element_expected_got():
    m = Mismatch("test_random", "systolic-dint4-8x8", 1234, "output vector 5, column 3", 77, -3)
    assert m.message() == (
        "test_random [systolic-dint4-8x8] mismatch at cycle 1234, output vector 5, column 3: "
        "expected 77, got -3"
    )
    assert "(k=2)" in Mismatch("t", "c", 1, "e", 1, 2, "k=2").message()


def test_summary_files_and_table(tmp_path):
    results = [
        Result("test_a", "cfg1", True, cycles=1000, macs=64000, seconds=0.5),
        Result("test_b", "cfg2", False, message="test_b [cfg2] mismatch ...", wave="/x/dump.fst"),
    ]
    md, js = write_summary(results, tmp_path, "header line")
    data = json.loads(js.read_text())
    assert data["passed"] is False
    assert data["results"][0]["macs_per_s"] == 128000.0
    text = md.read_text()
    assert "| test_a | cfg1 | 1,000 | 64,000 | 128.0 k | pass |" in text
    assert "test_b [cfg2] mismatch" in text and "/x/dump.fst" in text
    table = format_table(results)
    assert "FAIL" in table and "1 FAILED" in table and "wave: /x/dump.fst" in table
    assert json.loads(write_summary(results[:1], tmp_path)[1].read_text())["passed"] is True
    assert json.loads(write_summary([], tmp_path)[1].read_text())["passed"] is False
    umask = os.umask(0)
    os.umask(umask)
    for path in (md, js):  # ordinary build outputs: 0666 under the umask, never mkstemp's 0600
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_results_file_appends(tmp_path):
    p = tmp_path / "r.json"
    append_result(p, Result("a", "c", True, macs=3))
    append_result(p, Result("b", "c", False, message="m"))
    assert [(r.test, r.passed, r.macs) for r in load_results(p)] == [
        ("a", True, 3),
        ("b", False, 0),
    ]


def _ctx(tmp_path) -> TbContext:
    return TbContext("cfg", None, tmp_path / "res.json", 1, False, {})


def test_scoreboard_reports_first_mismatch_and_counts_only_equal_results(tmp_path):
    chk = Scoreboard(_ctx(tmp_path), "test_x")
    exp = np.array([[1, 2], [3, 4], [5, 6]])
    assert chk.compare(exp, exp.copy(), [10, 11, 12], "row {row} col {col}", macs_per_row=8)
    assert chk.macs == 24
    got = exp.copy()
    got[1, 1] = 40
    got[2, 0] = 0
    assert not chk.compare(exp, got, [20, 21, 22], "row {row} col {col}")
    assert chk.macs == 24
    assert chk.mismatch == Mismatch(
        "test_x", "cfg", 21, "row 1 col 1", 4, 40, "2 of 6 elements differ"
    )
    with pytest.raises(AssertionError, match="cycle 21, row 1 col 1: expected 4, got 40"):
        chk.finish()
    assert load_results(tmp_path / "res.json")[0].passed is False


def test_scoreboard_reports_missing_outputs(tmp_path):
    chk = Scoreboard(_ctx(tmp_path), "test_y")
    assert not chk.compare(np.zeros((3, 2)), np.zeros((2, 2)), [5, 6], "vector {row}")
    assert chk.mismatch.expected == 3 and chk.mismatch.got == 2


@pytest.mark.parametrize("name", list(golden.FORMATS))
def test_formal_reference_table_is_golden(name):
    fmt = golden.get(name)
    text = formal.reference_verilog(fmt, 25, "miter", "dut")
    width = golden.product_width("int8", fmt)
    for code, v in enumerate(fmt.ints):
        assert f"{fmt.bits}'d{code}: value = {'-' if v < 0 else ''}{width}'sd{abs(v)};" in text
    assert f"reg signed [{width - 1}:0] value;" in text
    assert "assert (acc == ref_acc)" in text


def test_formal_update_is_rendered_from_golden_mac_update():
    text = formal.reference_verilog(golden.get("dint4"), 25, "miter", "dut")
    assert (
        "ref_acc <= rst ? 25'd0 : !en ? ref_acc : clear ? product_acc : ref_acc + product_acc;"
        in text
    )
    # A different table renders a different reference (the miter follows golden, not a copy).
    swapped = (("rst", "0"), ("clear", "product"), ("!en", "acc"), ("", "acc + product"))
    assert formal.update_expression(8, swapped) == (
        "rst ? 8'd0 : clear ? product_acc : !en ? ref_acc : ref_acc + product_acc"
    )
    with pytest.raises(ValueError, match="unconditional"):
        formal.update_expression(8, (("rst", "0"), ("!en", "acc")))


def test_formal_proves_the_registry_macs():
    points = formal.mac_points()
    assert points == [p for p in hw.sim_points() if p.level == "mac"]
    assert {(p.weight_format, p.style) for p in points} == {
        (f, s) for f in golden.FORMATS for s in hw.STYLES
    }
    assert {p.k_max for p in points} == {hw.ACC_K}
    assert [j.name for j in formal.proof_jobs("b")][:2] == [
        "formal-mac-int8-mul",
        "formal-mac-int8-shiftadd",
    ]
    # Proofs run in parallel: each point works in a directory of its own (two points of one
    # format and style, such as two accumulator widths, once overwrote each other's mac.v).
    assert len({(p.weight_format, p.style) for p in points}) < len(points)
    dirs = {formal.proof_dir(p, "b") for p in points}
    assert len(dirs) == len(points)


def test_formal_counterexample_message():
    log = """
  Time Signal Name                       Dec       Hex                          Bin
  ---- ------------------------- ----------- --------- ----------------------------
  init \\acc                                0         0    0000000000000000000000000
     1 \\a                                241        f1                     11110001
     1 \\clear                              1         1                            1
     1 \\en                                 1         1                            1
     1 \\rst                                0         0                            0
     1 \\w                                  3         3                         0011
     2 \\acc                         33554357   1ffffb5    1111111111111111111110101
     2 \\ref_acc                     33554372   1ffffc4    1111111111111111111000100
"""
    msg = formal.failure_message("formal-mac-dint4-mul", golden.get("dint4"), 25, log, "p.log")
    assert "a=-15 w=3 (golden ints[3]=4, a*ints[w]=-60)" in msg
    assert "expected acc=-60, got acc=-75" in msg


def test_acc_width_check_covers_every_verified_accumulator():
    points = [p for p in hw.sim_points() if p.level != "requant"]
    results = formal.check_acc_widths(points)
    assert all(r.passed for r in results)
    # A lean array that sums K outside the array holds one tile: K = its rows, exactly.
    ks = {p: p.rows if p.sums_k_outside else p.k_max for p in points}
    assert {r.config for r in results} == {
        f"{p.weight_format}-k{ks[p]}-a{p.acc_width}" for p in points
    }
    assert any(p.sums_k_outside for p in points)
    tile_sums = {f"{p.weight_format}-k{p.rows}-a{p.acc_width}" for p in points if p.sums_k_outside}
    for r in results:
        fmt, k = r.config.rsplit("-a", 1)[0].rsplit("-k", 1)
        assert r.extra["needed"] == golden.min_acc_width(int(k), "int8", fmt)
        assert r.extra["acc_width"] >= r.extra["needed"]
        if r.config in tile_sums:  # the lean tile sums are exactly the width they need
            assert r.extra["acc_width"] == r.extra["needed"]
    # the tiles' K-tile accumulators are checked for their k_max
    assert any(p.level == "tile" for p in points)


def test_acc_width_check_fails_a_too_narrow_accumulator():
    narrow = hw.DesignPoint("mac", "int8", acc_width_fixed=golden.min_acc_width(256) - 1)
    (r,) = formal.check_acc_widths([narrow])
    assert not r.passed and "can overflow" in r.message


def test_fault_hook_changes_only_the_named_format(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "dint4:3:5")
    broken = weight_format_for_export("dint4")
    assert broken.ints[3] == 5 and golden.get("dint4").ints[3] == 4
    assert weight_format_for_export("int4") is golden.get("int4")
    monkeypatch.setenv(FAULT_ENV, "garbage")
    with pytest.raises(ValueError, match="FORMAT:CODE:INT"):
        weight_format_for_export("dint4")


def test_wrapper_renames_ports_and_streams():
    part = {
        "top": "t_sa",
        "parameters": {"rows": 2},
        "ports": [
            {"name": "clk", "direction": "in", "width": 1, "signed": False},
            {"name": "o__valid", "direction": "out", "width": 1, "signed": False},
            {
                "name": "o__payload",
                "direction": "out",
                "width": 9,
                "signed": False,
                "fields": [{"path": "[0]", "offset": 0, "width": 9, "signed": True}],
            },
        ],
        "streams": {
            "o": {
                "direction": "out",
                "valid": "o__valid",
                "ready": "o__ready",
                "payload": "o__payload",
            }
        },
    }
    text = wrapper_verilog("top", {"sa": part})
    assert "output [8:0] sa_o__payload;" in text and ".o__payload(sa_o__payload)" in text
    meta = wrapper_sidecar("top", {"sa": part})
    assert meta["streams"]["sa_o"]["payload"] == "sa_o__payload"
    assert [p["name"] for p in meta["ports"]][-2:] == ["sa_o__valid", "sa_o__payload"]


def test_only_patterns():
    assert _matches("mac-dint4-mul", ["mac-*"]) and _matches("mac-dint4-mul", ["dint4"])
    assert not _matches("dot-int8-l8", ["mac-*"]) and _matches("x", [])


def test_junit_recovers_tests_that_died_without_a_record(tmp_path):
    xml = tmp_path / "results.xml"
    xml.write_text(
        "<testsuites><testsuite>"
        '<testcase name="test_a"/>'
        '<testcase name="test_b"><failure message="AssertionError: boom&#10;more"/></testcase>'
        '<testcase name="test_c"><error message="Timeout"/></testcase>'
        "</testsuite></testsuites>"
    )
    cases = junit_cases(xml)
    assert cases == [
        ("test_a", True, ""),
        ("test_b", False, "AssertionError: boom"),
        ("test_c", False, "Timeout"),
    ]
    recorded = [Result("test_a", "cfg", True, macs=5), Result("test_c", "cfg", True)]
    merged = merge_junit(recorded, cases, "cfg")
    assert [(r.test, r.passed) for r in merged] == [
        ("test_a", True),
        ("test_c", False),
        ("test_b", False),
    ]
    assert merged[0].macs == 5
    assert merged[2].message == "test_b [cfg] AssertionError: boom"
    assert junit_cases(tmp_path / "missing.xml") == []


def test_missing_simulator_names_the_fix(monkeypatch):
    real = shutil.which

    def without(name):
        return lambda exe, *a, **k: None if exe == name else real(exe, *a, **k)

    monkeypatch.setattr(shutil, "which", without("iverilog"))
    with pytest.raises(
        ToolError, match="iverilog not found: install with apt-get install iverilog"
    ):
        toolchain.prepare("icarus")
    monkeypatch.setattr(shutil, "which", without("perl"))
    with pytest.raises(ToolError, match="perl not found: install with"):
        toolchain.prepare("verilator")
    with pytest.raises(ValueError, match="choose one of"):
        toolchain.prepare("modelsim")
