"""Plots are written from table rows; the accuracy plot is skipped when its input is unusable."""

from __future__ import annotations

import json

from reports_records import _rec, arrays_8x8

from reports import plots, tables

RECORDS = [
    _rec(
        "osu018",
        "mac",
        1,
        "int8",
        "mul",
        24000.0,
        5.0,
        breakdown={"multiplier": 14000.0, "accumulator": 7600.0, "registers": 2400.0},
    ),
    _rec(
        "osu018",
        "mac",
        1,
        "dint4",
        "shiftadd",
        12500.0,
        4.0,
        breakdown={
            "decoder": 300.0,
            "multiplier": 2200.0,
            "accumulator": 7600.0,
            "registers": 2400.0,
        },
    ),
    _rec("ice40", "mac", 1, "int8", "mul", 300.0, 11.0),
    _rec("ice40", "mac", 1, "dint4", "shiftadd", 140.0, 11.5),
]

SYSTOLIC = [
    _rec(
        "osu018",
        "systolic",
        n,
        fmt,
        style,
        area * n * n,
        5.0,
        breakdown={"multiplier": area * n * n / 2, "registers": area * n * n / 2},
    )
    for n in (4, 8)
    for fmt, style, area in (("int8", "mul", 30000.0), ("dint4", "shiftadd", 15000.0))
]
#: Lean 4x4 arrays (with the 8x8 of arrays_8x8: two sizes, a trend to plot).
LEAN = [
    _rec("osu018", "systolic", 4, fmt, "shared", area, 4.5, arch="lean", breakdown={"x": 1.0})
    for fmt, area in (("int8", 200_000.0), ("dint4", 90_000.0))
]


def test_plots_are_written(tmp_path):
    rows = tables.build_rows(RECORDS + SYSTOLIC + LEAN + arrays_8x8())
    written = plots.write_plots(rows, tmp_path, quant_results=None)
    names = sorted(p.name for p in written)
    assert names == ["breakdown.png", "efficiency.png", "scaling.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_distinguish_architectures(tmp_path, monkeypatch):
    """The scaling plot has one line per (architecture, variant), its marker by architecture
    (option points left out); the efficiency and breakdown plots place the lean arrays apart."""
    figs = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.setdefault(path.name, fig) and path)
    rows = tables.build_rows(RECORDS + SYSTOLIC + LEAN + arrays_8x8())
    plots.write_plots(rows, tmp_path, quant_results=None)
    area_ax = figs["scaling.png"].axes[0]
    lines = {ln.get_label(): ln.get_marker() for ln in area_ax.get_lines()}
    assert lines["dint4/shared lean"] == "s" and lines["dint4/shiftadd classic"] == "o"
    assert lines["int8/shared lean-col"] == "^"
    ticks = [t.get_text() for t in figs["efficiency.png"].axes[0].get_xticklabels()]
    assert ["sys8x8 classic", "sys8x8 lean", "sys8x8 lean l4", "sys8x8 lean-col"] == [
        t for t in ticks if t.startswith("sys8x8")
    ]
    titles = [ax.get_title() for ax in figs["breakdown.png"].axes if ax.get_visible()]
    assert "sys8x8 lean (osu018)" in titles and "sys8x8 lean-col (osu018)" in titles


def test_pareto_from_quant_results(tmp_path):
    rows = tables.build_rows(RECORDS + SYSTOLIC)
    q = tmp_path / "results.json"
    q.write_text(
        json.dumps(
            {
                "rows": [
                    {
                        "method": "FP",
                        "weight_format": "dint4",
                        "acts": "fp",
                        "mode": "fake",
                        "ppl": 20.0,
                    },
                    {
                        "method": "RTN",
                        "weight_format": "dint4",
                        "acts": "int8-static",
                        "mode": "fake",
                        "ppl": 30.0,
                    },
                    {
                        "method": "AQAS",
                        "weight_format": "int8",
                        "acts": "int8-static",
                        "mode": "fake",
                        "ppl": 21.0,
                    },
                ]
            }
        )
    )
    written = plots.write_plots(rows, tmp_path, quant_results=q)
    assert tmp_path / "pareto.png" in written


def test_pareto_skipped_when_absent_or_unexpected(tmp_path, caplog):
    assert plots.load_quant_results(tmp_path / "missing.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"method": "RTN", "loss": 3.0}]}))
    assert plots.load_quant_results(bad) is None
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert plots.load_quant_results(garbage) is None
    rows = tables.build_rows(RECORDS)
    assert plots.plot_pareto(rows, None, tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()
