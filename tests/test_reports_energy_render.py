"""Rendering the energy rows: ratios to the lowest-energy INT8, headline, tables, the paper's
2.56x, failed runs, the join with the area rows, the plots and the report hooks."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from reports_records import RECORDS, _rec

from reports import energyplots, energytables, plots, render, tables

#: pJ per MAC of the fabricated rows: (unit, variant) -> (zero-delay, glitch). In the MAC
#: Booth INT8 is the lower INT8, in the 8x8 array the higher.
ENERGY = {
    ("mac", "int8/mul"): (34.0, 60.0),
    ("mac", "int8/mul+booth"): (30.0, 50.0),
    ("mac", "dint4/shiftadd"): (15.0, 25.0),
    ("sys8x8 classic", "int8/mul"): (20.0, 40.0),
    ("sys8x8 classic", "int8/mul+booth"): (22.0, 44.0),
    ("sys8x8 classic", "dint4/shiftadd"): (10.0, 20.0),
}
#: The 8x8 dINT4 array's energy by category (glitch, SmolLM2), summing to its 20 pJ.
ARRAY_SPLIT = {"psum registers": 8.0, "psum adders": 5.0, "multiplier": 4.0, "decoder": 3.0}
UNITS = {"mac": ("mac", 1), "sys8x8 classic": ("systolic", 8)}


def energy_row(unit, variant, activity, pj, operands="smollm2", **over) -> dict:
    """A plausible row of reports.energyruns (the schema of issue 12)."""
    level, size = UNITS[unit]
    fmt, style = variant.split("/")
    booth = style.endswith("+booth")
    style = style.removesuffix("+booth")
    split = {"multiplier": pj / 2, "accumulator": pj / 4, "accumulator registers": pj / 4}
    return {
        "unit": unit,
        "level": level,
        "size": size,
        "arch": "classic",
        "variant": variant,
        "weight_format": fmt,
        "style": style,
        "booth": booth,
        "acc_width": 25,
        "target": "osu018",
        "operands": operands,
        "operand_data": f"{operands} operand sample",
        "activity": activity,
        "clock_ns": 10.0,
        "cycles": 2000,
        "macs": 2000 * (size * size if level == "systolic" else 1),
        "workload": "dot products of 64",
        "cells": 1234,
        "toggles_per_cycle": 321.5,
        "energy_pj_per_mac": pj,
        "power_mw": pj / 10.0,
        "internal": 0.70,
        "switching": 0.29,
        "leakage": 0.0001,
        "by_category_pj": split,
        "opensta_diff": 0.004,
        "cached": True,
        **over,
    }


def fabricated(array_glitch_dint4: float = 20.0) -> list[dict]:
    rows = []
    for (unit, variant), pjs in ENERGY.items():
        for activity, pj in zip(("zero-delay", "glitch"), pjs, strict=True):
            over = {}
            if (unit, variant, activity) == ("sys8x8 classic", "dint4/shiftadd", "glitch"):
                pj = array_glitch_dint4
                over["by_category_pj"] = {c: v * pj / 20.0 for c, v in ARRAY_SPLIT.items()}
            rows.append(energy_row(unit, variant, activity, pj, **over))
    # synthetic operands: a dINT4 MAC without any INT8 to divide by
    rows.append(energy_row("mac", "dint4/shiftadd", "glitch", 12.0, operands="synthetic"))
    return rows


def _find(rows, unit, variant, activity, operands="smollm2"):
    (r,) = [
        r
        for r in rows
        if (r["unit"], r["variant"], r["activity"], r["operands"])
        == (unit, variant, activity, operands)
    ]
    return r


def test_ratios_divide_by_the_lowest_energy_int8():
    rated = energytables.energy_ratios(fabricated())
    mac = _find(rated, "mac", "dint4/shiftadd", "glitch")
    assert mac["energy_baseline"] == "int8/mul+booth"
    assert mac["energy_ratio"] == pytest.approx(50.0 / 25.0)
    assert mac["energy_ratio_plain"] == pytest.approx(60.0 / 25.0)
    arr = _find(rated, "sys8x8 classic", "dint4/shiftadd", "zero-delay")
    assert arr["energy_baseline"] == "int8/mul"  # Booth is the higher INT8 here
    assert arr["energy_ratio"] == pytest.approx(20.0 / 10.0)
    assert arr["energy_ratio_plain"] == pytest.approx(20.0 / 10.0)
    booth = _find(rated, "sys8x8 classic", "int8/mul+booth", "glitch")
    assert booth["energy_ratio"] == pytest.approx(40.0 / 44.0)


def test_missing_baseline_gives_none_and_inputs_stay_untouched():
    rows = fabricated()
    rated = energytables.energy_ratios(rows)
    syn = _find(rated, "mac", "dint4/shiftadd", "glitch", operands="synthetic")
    assert syn["energy_baseline"] is None
    assert syn["energy_ratio"] is None and syn["energy_ratio_plain"] is None
    assert all("energy_ratio" not in r for r in rows)
    # only int8/mul+booth in a group: a best INT8 but no plain one
    only_booth = [r for r in rows if r["variant"] != "int8/mul"]
    r = _find(energytables.energy_ratios(only_booth), "mac", "dint4/shiftadd", "zero-delay")
    assert r["energy_ratio"] == pytest.approx(30.0 / 15.0) and r["energy_ratio_plain"] is None


def test_headline_names_best_dint4_and_best_int8():
    rows = fabricated() + [energy_row("mac", "dint4/mul", "glitch", 22.0)]
    head = energytables.energy_headline(rows)
    assert [(h["unit"], h["activity"]) for h in head] == [
        ("mac", "glitch"),
        ("mac", "zero-delay"),
        ("sys8x8 classic", "glitch"),
        ("sys8x8 classic", "zero-delay"),
    ]
    mac = head[0]
    assert (mac["variant"], mac["baseline"]) == ("dint4/mul", "int8/mul+booth")
    assert mac["energy_ratio"] == pytest.approx(50.0 / 22.0)
    assert mac["baseline_pj_per_mac"] == 50.0
    assert head[2]["baseline"] == "int8/mul" and head[2]["energy_ratio"] == pytest.approx(2.0)


def _paper_paragraph(text: str, paper_ratio: float) -> str:
    (para,) = [p for p in text.split("\n\n") if f"{paper_ratio:.2f}x" in p]
    return para


def test_render_energy_tables_and_paper_short():
    text = energytables.render_energy(fabricated(), paper_ratio=2.56)
    assert "10 ns" in text and "no wire load" in text
    for unit in ("mac", "sys8x8 classic"):
        assert f"### `{unit}`" in text
    # per-unit table row of the dINT4 MAC with glitches: energy, power and both ratios
    mac_section = text.split("### `mac`")[1].split("###")[0]
    table = [[c.strip() for c in ln.strip("|").split("|")] for ln in mac_section.splitlines()]
    (cells,) = [c for c in table if c[:3] == ["dint4/shiftadd", "smollm2", "glitch"]]
    assert cells[3:7] == ["25.00", "2.500", f"{50 / 25:.2f}x", f"{60 / 25:.2f}x"]
    # breakdown: the categories non-zero somewhere, and none of the empty ones
    header = next(ln for ln in text.splitlines() if ln.startswith("| unit ") and "total" in ln)
    assert "psum registers" in header and "weight registers" not in header
    para = _paper_paragraph(text, 2.56)
    assert f"{40.0 / 20.0:.2f}x" in para and "short" in para
    largest = max(ARRAY_SPLIT, key=ARRAY_SPLIT.get)
    smallest = min(ARRAY_SPLIT, key=ARRAY_SPLIT.get)
    assert largest in para and smallest not in para
    assert para.index(largest) < para.index("psum adders")  # largest first


def test_render_energy_paper_met():
    text = energytables.render_energy(fabricated(array_glitch_dint4=14.0), paper_ratio=2.56)
    para = _paper_paragraph(text, 2.56)
    assert f"{40.0 / 14.0:.2f}x" in para and "meets" in para and "psum" not in para


def test_render_energy_without_array_or_rows():
    macs = [r for r in fabricated() if r["unit"] == "mac"]
    para = _paper_paragraph(energytables.render_energy(macs, paper_ratio=2.56), 2.56)
    assert "not measured" in para
    assert "no energy results" in energytables.render_energy([])


def test_failed_runs_are_listed():
    boom = {
        "unit": "dot8",
        "variant": "int4/mul",
        "operands": "synthetic",
        "activity": "glitch",
        "error": "ToolError: iverilog died",
    }
    rows = fabricated() + [boom]
    text = energytables.render_energy(rows)
    assert "Failed energy runs" in text and "ToolError: iverilog died" in text
    assert len(energytables.energy_ratios(rows)) == len(rows) - 1
    assert "Failed energy runs" not in energytables.render_energy(fabricated())
    only_failed = energytables.render_energy([boom])
    assert "iverilog died" in only_failed


AREA_RECORDS = [
    _rec("osu018", "mac", 1, "int8", "mul", 24000.0, 5.0),
    _rec("osu018", "mac", 1, "int8", "mul", 20000.0, 5.5, booth=True),
    _rec("osu018", "mac", 1, "dint4", "shiftadd", 12500.0, 4.0),
    _rec("osu018", "mac", 1, "dint4", "shiftadd", 12000.0, 4.0, acc_rule="need", acc_width=21),
    _rec("osu018", "dot", 8, "dint4", "shiftadd", 40000.0, 7.0),
    _rec("ice40", "mac", 1, "dint4", "shiftadd", 140.0, 11.5),
]


def test_join_area_fills_matching_osu018_rows_only():
    area = tables.build_rows(AREA_RECORDS)
    joined = energytables.join_area(area, fabricated())
    assert len(joined) == len(area) and all("energy_pj_per_mac" not in r for r in area)
    by = {(r["target"], r["unit"], r["variant"]): r for r in joined}
    d = by[("osu018", "mac", "dint4/shiftadd")]
    assert d["energy_pj_per_mac"] == 25.0
    assert d["macs_per_nj"] == pytest.approx(1000.0 / 25.0)
    assert d["eff_energy_ratio"] == pytest.approx(50.0 / 25.0)
    assert by[("osu018", "mac", "int8/mul")]["eff_energy_ratio"] == pytest.approx(50.0 / 60.0)
    for key in (
        ("osu018", "mac (width by need)", "dint4/shiftadd"),
        ("osu018", "dot8", "dint4/shiftadd"),
        ("ice40", "mac", "dint4/shiftadd"),
    ):
        r = by[key]
        assert (r["energy_pj_per_mac"], r["macs_per_nj"], r["eff_energy_ratio"]) == (None,) * 3


def test_plot_energy_writes_png(tmp_path):
    path = energyplots.plot_energy(fabricated(), tmp_path / "energy.png")
    assert path == tmp_path / "energy.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert energyplots.plot_energy([], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def _quant(tmp_path):
    q = tmp_path / "results.json"
    rows = [
        ("FP", "dint4", "fp", 20.0),
        ("RTN", "dint4", "int8-static", 30.0),
        ("AQAS", "int8", "int8-static", 21.0),
    ]
    q.write_text(
        json.dumps(
            {
                "rows": [
                    {"method": m, "weight_format": f, "acts": a, "mode": "fake", "ppl": p}
                    for m, f, a, p in rows
                ]
            }
        )
    )
    return q


def test_pareto_energy_places_formats_at_their_mac_energy(tmp_path):
    quant = plots.load_quant_results(_quant(tmp_path))
    fig, ax = plt.subplots()
    try:
        assert energyplots.pareto_energy(ax, quant, fabricated())
        xy = sorted(tuple(c.get_offsets()[0]) for c in ax.collections)
        # MAC, SmolLM2, glitch: dINT4 25 pJ (ppl 30), the lower INT8 50 pJ (ppl 21)
        assert xy == [(25.0, 30.0), (50.0, 21.0)]
        fig2, ax2 = plt.subplots()
        assert not energyplots.pareto_energy(ax2, quant, [])
        plt.close(fig2)
    finally:
        plt.close(fig)


def test_write_plots_with_energy(tmp_path, monkeypatch):
    figs = {}
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.setdefault(path.name, fig) and path)
    rows = tables.build_rows(RECORDS)
    plots.write_plots(rows, tmp_path, quant_results=_quant(tmp_path), energy=fabricated())
    assert len(figs["pareto.png"].axes) == 2
    figs.clear()
    plots.write_plots(rows, tmp_path, quant_results=_quant(tmp_path))
    assert len(figs["pareto.png"].axes) == 1
    monkeypatch.setattr(plots, "_save", save)
    written = plots.write_plots(rows, tmp_path / "out", energy=fabricated())
    assert tmp_path / "out" / "energy.png" in written
    assert (tmp_path / "out" / "energy.png").read_bytes()[:4] == b"\x89PNG"


def test_write_report_with_and_without_energy(tmp_path):
    meta = {"command": "python -m reports", "tools": {}}
    boom = {"unit": "mac", "variant": "int4/mul", "operands": "smollm2", "activity": "glitch"}
    boom["error"] = "ToolError: boom"
    md, js = render.write_report(RECORDS, meta, tmp_path, energy=fabricated() + [boom])
    doc = json.loads(js.read_text())
    e = doc["energy"]
    mac = _find(e["rows"], "mac", "dint4/shiftadd", "glitch")
    assert mac["energy_ratio"] == pytest.approx(50.0 / 25.0)
    assert e["headline"][0]["baseline"] == "int8/mul+booth"
    assert e["failed"][0]["error"] == "ToolError: boom"
    (a,) = [r for r in e["area"] if r["variant"] == "dint4/shiftadd"]
    assert a["macs_per_nj"] == pytest.approx(1000.0 / 25.0)
    text = md.read_text()
    assert "## Energy per MAC" in text and "ToolError: boom" in text
    md2, js2 = render.write_report(RECORDS, meta, tmp_path / "plain")
    assert "energy" not in json.loads(js2.read_text())
    assert "Energy per MAC" not in md2.read_text()
