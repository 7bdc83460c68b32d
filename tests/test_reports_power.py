"""Liberty power data, energy of a mapped netlist, and the OpenSTA cross-check (issue 12).

The Liberty lookups are checked against entries read from the OSU018 file itself; the energy
of the mapped dINT4 MAC against Debian OpenSTA (``sta``; skipped where it is not installed:
``apt-get install opensta``) on two toggle patterns, within 5 %, and the check is shown to fail
when the toggles or the library's internal-power tables are doubled.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

import hw
import tools
from reports import opensta, power, powerlib, powernames, toolchain
from reports.liberty import LibertyError

needs_sta = pytest.mark.skipif(
    shutil.which("sta") is None, reason="OpenSTA (sta) not installed: apt-get install opensta"
)
CLOCK_NS = 10.0
CYCLES = 1000


@pytest.fixture(scope="module")
def lib_text() -> str:
    return toolchain.find_liberty().read_text()


@pytest.fixture(scope="module")
def plib():
    return powerlib.load_power(toolchain.find_liberty())


@pytest.fixture(scope="module")
def mac(tmp_path_factory):
    """The dINT4 MAC mapped onto OSU018: (directory, JSON netlist); the Verilog is
    ``mapped.v`` there (``signed`` stripped from ports for OpenSTA)."""
    d = tmp_path_factory.mktemp("mac")
    hw.export_verilog(hw.MAC("dint4", acc_width=16), "T", d / "T.v")
    shutil.copy(toolchain.find_liberty(), d / "cells.lib")
    toolchain.run_yosys(
        "read_verilog T.v\nsynth -flatten -top T\ndfflibmap -liberty cells.lib\n"
        "abc -liberty cells.lib\nopt_clean\nwrite_verilog -noattr -noexpr mapped.v\n"
        "write_json mapped.json\n",
        d,
    )
    v = d / "mapped.v"
    v.write_text(re.sub(r"\b(input|output)\s+signed\b", r"\1", v.read_text()))
    return d, json.loads((d / "mapped.json").read_text())


def _group(text: str, cell: str, pin: str, kind: str, related: str | None = None) -> dict:
    """Index and value lists of one table of the raw Liberty text (no parser of ours)."""
    body = text[text.index(f"cell ({cell})") :]
    body = body[: body.index("\ncell (")] if "\ncell (" in body else body
    body = body[re.search(rf"pin\({pin}\)", body).start() :]
    body = body[: body.index("\n  }\n")]  # the end of the pin group
    for ip in body.split("internal_power()")[1:]:
        if related is not None and f'related_pin : "{related}"' not in ip:
            continue
        t = ip[ip.index(f"{kind}(") :]
        t = t[: t.index("}")]
        rows = re.findall(r'"([^"]*)"', t[t.index("values") :])
        idx = [[float(x) for x in s.split(",")] for s in re.findall(r'index_\d \("([^"]*)"\)', t)]
        return {"index": idx, "values": [[float(x) for x in r.split(",")] for r in rows]}
    raise AssertionError(f"no {kind} for {cell}.{pin}")


# ---- the Liberty power data ---------------------------------------------------------------


def test_units_voltage_and_leakage_from_the_file(plib, lib_text):
    assert plib.units["leakage_power_unit"] == "1nW"
    assert plib.leakage_unit_nw == 1.0
    assert plib.energy_unit_pj == 1.0  # 1 pF x (1 V)^2
    assert plib.voltage == float(re.search(r"nom_voltage : ([\d.]+);", lib_text).group(1))
    for cell in ("INVX1", "DFFPOSX1", "XOR2X1"):
        leak = re.search(rf"cell \({cell}\) {{.*?cell_leakage_power : ([\d.]+);", lib_text, re.S)
        assert plib.cells[cell].leakage_nw == float(leak.group(1))
    assert plib.cells["DFFPOSX1"].clock_pins == {"CLK"}


@pytest.mark.parametrize(
    ("cell", "pin", "kind", "related"),
    [("INVX1", "Y", "rise_power", "A"), ("INVX1", "Y", "fall_power", "A"),
     ("NAND2X1", "Y", "fall_power", "B"), ("DFFPOSX1", "Q", "rise_power", "CLK")],
)  # fmt: skip
def test_internal_power_table_entries(plib, lib_text, cell, pin, kind, related):
    raw = _group(lib_text, cell, pin, kind, related)
    loads, slews = raw["index"]
    g = next(g for g in plib.cells[cell].internal[pin] if g.related_pin == related)
    table = getattr(g, kind.split("_")[0])
    for i, j in ((0, 0), (1, 2), (len(loads) - 1, len(slews) - 1), (2, 1)):
        assert table(loads[i], slews[j]) == pytest.approx(raw["values"][i][j], rel=1e-12)
    # between entries: bilinear
    mid = table((loads[1] + loads[2]) / 2, (slews[0] + slews[1]) / 2)
    corners = [raw["values"][i][j] for i in (1, 2) for j in (0, 1)]
    assert mid == pytest.approx(sum(corners) / 4, rel=1e-12)


def test_input_pin_power_and_toggle_energy(plib, lib_text):
    """A pin's own (passive) table is 1-D over its transition; one toggle costs the mean of
    the rise and the fall entry."""
    rise = _group(lib_text, "DFFPOSX1", "CLK", "rise_power")
    fall = _group(lib_text, "DFFPOSX1", "CLK", "fall_power")
    (g,) = plib.cells["DFFPOSX1"].internal["CLK"]
    assert g.related_pin == ""
    s = rise["index"][0][2]
    assert g.rise(0.0, s) == pytest.approx(rise["values"][0][2])
    assert g.energy(0.0, s, s) == pytest.approx((rise["values"][0][2] + fall["values"][0][2]) / 2)


def test_boolean_functions(plib):
    for cell in plib.timing.cells.values():
        for f in cell.functions.values():
            powerlib.function(f)  # every function of the library parses
    aoi = "(!((A B)+C))"
    assert [powerlib.sensitivity(aoi, p) for p in "ABC"] == [0.25, 0.25, 0.75]
    assert powerlib.probability(aoi) == 0.375
    assert powerlib.sensitivity("(A^B)", "A") == 1.0
    assert powerlib.sensitivity("DS0000", "CLK") == 1.0  # a flip-flop output and its clock
    assert powerlib.probability("A' B") == 0.25 == powerlib.probability("!A&B")
    with pytest.raises(LibertyError):
        powerlib.function("(A+")


# ---- the netlist ----------------------------------------------------------------------------


def test_net_and_cell_names_match_the_verilog(mac):
    d, netlist = mac
    module = netlist["modules"]["T"]
    verilog = powernames.read_verilog(d / "mapped.v", "T")
    powernames.check_names(module, verilog)
    names = powernames.net_names(module)
    assert any("acc[3]" in ns for ns in names.values())
    # a Verilog from another state (one cell renamed) is caught
    (name, (typ, pins)), *_ = verilog.instances.items()
    moved = dict(verilog.instances)
    moved["_x_"] = moved.pop(name)
    with pytest.raises(LibertyError, match="same Yosys state"):
        powernames.check_names(module, powernames.VerilogNetlist(verilog.top, verilog.ports, moved))


# ---- energy and the OpenSTA cross-check ---------------------------------------------------


def _random_toggles(d: Path, seed: int = 1) -> dict[str, int]:
    """Every net of the Verilog at a random rate in [0, 0.6) toggles per cycle, the clock at 2;
    a flip-flop's D net toggles as often as its Q (true of any glitch-free simulation: D
    settles once per cycle and Q takes the value D had at the edge)."""
    rng = random.Random(seed)
    verilog = powernames.read_verilog(d / "mapped.v", "T")
    nets = sorted({n for _, pins in verilog.instances.values() for n in pins.values()})
    toggles = {n: int(rng.random() * 0.6 * CYCLES) for n in nets if "'" not in n}
    toggles["clk"] = 2 * CYCLES
    for typ, pins in verilog.instances.values():
        if typ.startswith("DFF"):
            toggles[pins["D"]] = toggles[pins["Q"]]
    return toggles


def _patterns(mac, plib):
    d, netlist = mac
    dens = power.estimate_toggles(netlist, "T", plib, 0.25, CYCLES)
    return {"random": _random_toggles(d), "density": dens}


@needs_sta
@pytest.mark.parametrize("pattern", ["random", "density"])
def test_energy_matches_opensta_within_5_percent(mac, plib, tmp_path, pattern):
    d, netlist = mac
    toggles = _patterns(mac, plib)[pattern]
    ours = power.energy(netlist, "T", plib, toggles, CYCLES, CLOCK_NS)
    args = (d / "mapped.v", "T", d / "cells.lib", toggles, CYCLES, CLOCK_NS, tmp_path)
    theirs = opensta.opensta_power(*args)
    assert ours.missing_nets == 0 and ours.unknown_toggles == 0
    assert ours.total_mw == pytest.approx(theirs, rel=0.05)
    # this OpenSTA's own internal power counts rise + fall per transition: far above both
    assert opensta.opensta_power(*args, method="calibrated") > 1.3 * theirs


@needs_sta
def test_the_cross_check_can_fail(mac, plib, lib_text, tmp_path):
    d, netlist = mac
    toggles = _random_toggles(d)
    ours = power.energy(netlist, "T", plib, toggles, CYCLES, CLOCK_NS)
    theirs = opensta.opensta_power(
        d / "mapped.v", "T", d / "cells.lib", toggles, CYCLES, CLOCK_NS, tmp_path
    )
    # twice the toggles: twice the dynamic power, the same leakage
    doubled = power.energy(netlist, "T", plib, {k: 2 * v for k, v in toggles.items()}, CYCLES,
                           CLOCK_NS)  # fmt: skip
    dynamic = ours.total_mw - ours.leakage_mw
    assert doubled.total_mw == pytest.approx(2 * dynamic + ours.leakage_mw, rel=1e-9)
    assert abs(doubled.total_mw / theirs - 1) > 0.5
    # a library whose internal-power tables are twice the real ones
    scaled = re.sub(
        r"((?:rise|fall)_power\([^)]*\)\s*\{.*?values\s*\()(.*?)(\);)",
        lambda m: (
            m.group(1)
            + re.sub(r"[\d.]+(?:e-?\d+)?", lambda x: repr(2 * float(x.group())), m.group(2))
            + m.group(3)
        ),
        lib_text,
        flags=re.S,
    )
    (tmp_path / "x2.lib").write_text(scaled)
    x2 = power.energy(netlist, "T", powerlib.load_power(tmp_path / "x2.lib"), toggles, CYCLES,
                      CLOCK_NS)  # fmt: skip
    assert x2.internal_mw == pytest.approx(2 * ours.internal_mw, rel=1e-9)
    assert x2.switching_mw == pytest.approx(ours.switching_mw, rel=1e-12)
    assert abs(x2.total_mw / theirs - 1) > 0.05


@needs_sta
def test_opensta_2_0_17_sums_rise_and_fall(plib, tmp_path):
    """The reason for ``method="per-arc"``: on one inverter at a table's own index point,
    this OpenSTA's internal energy per transition is rise + fall, not their mean."""
    (tmp_path / "inv.v").write_text(
        "module inv(clk, a, y);\n  input clk;\n  input a;\n  output y;\n"
        "  INVX1 i1 (.A(a), .Y(y));\nendmodule\n"
    )
    insts = opensta.run_opensta(
        tmp_path / "inv.v", "inv", toolchain.find_liberty(), CLOCK_NS, tmp_path,
        input_slew_ns=0.18, output_load_pf=0.0125,
    )  # fmt: skip
    (g,) = plib.cells["INVX1"].internal["Y"]
    ((pin, src, duty, e),) = insts["i1"].arcs
    assert (pin, src, duty) == ("Y", "A", 1.0)
    assert e * 1e12 == pytest.approx(g.rise(0.0125, 0.18) + g.fall(0.0125, 0.18), rel=2e-3)
    assert g.energy(0.0125, 0.18, 0.18) == pytest.approx(e * 1e12 / 2, rel=2e-3)
    # its switching power is 0.5 C V^2 per transition and agrees with ours
    assert insts["i1"].p1[1] == pytest.approx(0.5 * 0.0125e-12 * 1.8**2 / (CLOCK_NS * 1e-9))


def test_energy_report(mac, plib):
    """Where the power goes at the density pattern, and the options."""
    d, netlist = mac
    toggles = power.estimate_toggles(netlist, "T", plib, 0.25, CYCLES)
    r = power.energy(netlist, "T", plib, toggles, CYCLES, CLOCK_NS)
    assert r.total_mw == pytest.approx(r.internal_mw + r.switching_mw + r.leakage_mw)
    assert r.energy_pj_per_cycle == pytest.approx(r.total_mw * CLOCK_NS)
    assert sum(r.by_category.values()) == pytest.approx(r.total_mw)
    assert sum(t["count"] for t in r.by_cell_type.values()) == len(
        [c for c in netlist["modules"]["T"]["cells"].values() if c["type"] != "$scopeinfo"]
    )
    # 16 flip-flops' clock pins, two toggles a cycle, each the mean of rise and fall at 0.1 ns
    (g,) = plib.cells["DFFPOSX1"].internal["CLK"]
    assert r.clock_pin_mw == pytest.approx(16 * 2 * g.energy(0, 0.1, 0.1) / CLOCK_NS)
    assert 0 < r.leakage_mw < 1e-3 * r.total_mw  # µW against mW
    assert r.input_switching_mw > 0
    fixed = power.energy(netlist, "T", plib, toggles, CYCLES, CLOCK_NS, slew_ns=0.1)
    assert fixed.switching_mw == pytest.approx(r.switching_mw)
    assert fixed.total_mw == pytest.approx(r.total_mw, rel=0.05)
    wired = power.energy(
        netlist, "T", plib, toggles, CYCLES, CLOCK_NS, wire_cap_pf_per_fanout=0.002
    )
    assert wired.switching_mw > 1.05 * r.switching_mw
    assert wired.internal_mw != r.internal_mw  # at other loads and slews (not always more)
    # a clock that does not run: no clock-pin power
    clk = next(ns for ns in powernames.net_names(netlist["modules"]["T"]).values() if "clk" in ns)
    stopped = power.energy(netlist, "T", plib, {**toggles, **dict.fromkeys(clk, 0)}, CYCLES,
                           CLOCK_NS)  # fmt: skip
    assert stopped.clock_pin_mw == 0


def test_toggles_of_another_netlist_are_an_error(mac, plib):
    _, netlist = mac
    with pytest.raises(LibertyError, match="keyed by the Verilog names"):
        power.energy(netlist, "T", plib, {"nope[0]": 3, "_9999_": 1}, CYCLES, CLOCK_NS)


def test_missing_opensta_says_how_to_install(mac, tmp_path, monkeypatch):
    d, _ = mac
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools.external.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(tools.ToolError, match="apt-get install opensta"):
        opensta.opensta_power(d / "mapped.v", "T", d / "cells.lib", {}, 1, CLOCK_NS, tmp_path)
