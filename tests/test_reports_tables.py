"""Table math: baselines, ratios, efficiency, headline, and the atomic report writer."""

from __future__ import annotations

import json
import math

import pytest
from reports_records import NOT_EXACT, RECORDS, _rec

import hw
import tools
from reports import render, runner, tables


def test_efficiency():
    assert tables.efficiency(8, 400.0, 2.0) == (0.02, 0.01)
    e, ead = tables.efficiency(1, 100.0, None)
    assert e == 0.01 and math.isnan(ead)
    with pytest.raises(ValueError):
        tables.efficiency(1, 0.0, 1.0)


def test_baseline_is_the_smaller_int8():
    rows = tables.build_rows(RECORDS)
    mac = [r for r in rows if r["target"] == "osu018" and r["level_label"] == "mac"]
    dot = [r for r in rows if r["target"] == "osu018" and r["level_label"] == "dot8"]
    assert {r["baseline"] for r in mac} == {"int8/mul+booth"}
    assert {r["baseline"] for r in dot} == {"int8/mul"}  # Booth is not always smaller


def test_ratios():
    rows = tables.build_rows(RECORDS)
    r = tables.find(rows, "osu018", "mac", "dint4", "shiftadd")
    assert r["area_ratio"] == pytest.approx(20000.0 / 12500.0)
    assert r["area_ratio_plain"] == pytest.approx(24000.0 / 12500.0)
    assert r["eff_ratio"] == pytest.approx(r["area_ratio"])  # same MACs per cycle
    assert r["eff_ad_ratio"] == pytest.approx((20000.0 * 5.5) / (12500.0 * 4.0))
    d = tables.find(rows, "osu018", "dot8", "dint4", "shiftadd")
    assert d["eff_area"] == pytest.approx(8 / 40000.0)
    assert d["area_ratio"] == pytest.approx(2.5)
    c = tables.find(rows, "cmos", "mac", "dint4", "shiftadd")
    assert c["area_ratio"] == pytest.approx(2.0) and math.isnan(c["eff_ad_ratio"])


def test_group_without_baseline_has_nan_ratios():
    rows = tables.build_rows([_rec("ice40", "mac", 1, "dint4", "shiftadd", 100.0, 10.0)])
    assert rows[0]["baseline"] is None and math.isnan(rows[0]["area_ratio"])


def test_headline_and_paper():
    rows = tables.build_rows(RECORDS)
    hl = tables.headline(rows, targets=("osu018",))
    assert [(h["level_label"], h["variant"]) for h in hl] == [
        ("mac", "dint4/shiftadd"),
        ("mac", "dint4/mul"),
        ("dot8", "dint4/shiftadd"),
    ]
    paper = tables.paper_comparison(rows)
    assert paper["levels"]["mac"]["area_ratio"] == pytest.approx(1.6)
    # accumulator + registers (10000) of the Booth INT8 MAC (20000): a free multiplier gives 2x
    assert paper["mac_ratio_cap"] == pytest.approx(20000.0 / 10000.0)
    assert paper["mac_multiplier_ratio"] == pytest.approx(10000.0 / 2500.0)
    text = render.render_paper(paper)
    assert "short of 1.93x" in text


def test_write_report(tmp_path):
    failed = runner.record(
        hw.DesignPoint("mac", "dint4", "shiftadd"), "ice40", error="ToolError: boom"
    )
    records = [*RECORDS, failed]
    md, js = render.write_report(records, {"command": "python -m reports", "tools": {}}, tmp_path)
    doc = json.loads(js.read_text())  # strict JSON: NaN must have become null
    assert "NaN" not in js.read_text()
    assert doc["meta"]["failed"][0]["error"] == "ToolError: boom"
    assert len(doc["rows"]) == len(RECORDS)
    text = md.read_text()
    assert "## Headline" in text and "boom" in text
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind
    for p in (md, js):
        assert p.stat().st_mode & 0o777 == tools.file_mode()


def test_verification_summary():
    """Each design is counted once (whatever its targets); the others grouped by reason."""
    v = tables.verification(RECORDS)
    # 9 records of 7 designs (two MACs also on cmos); one of them not verified exactly
    assert (v["designs"], v["exact"]) == (7, 6)
    (reason,) = NOT_EXACT.values()
    assert v["others"] == [
        {"reason": reason, "designs": ["dot8_dint4_shiftadd"], "levels": ["dot8"]}
    ]
    text = render.render_verification(v)
    assert text.startswith("6 of 7 synthesized designs")
    assert f"- 1 (dot8): {reason}" in text


def test_records_say_how_sim_covers_a_design():
    for point in hw.report_points(levels=("mac", "dot"), formats=("dint4",)):
        rec = runner.record(point, "cmos", result={})
        assert rec["verified"] == hw.verified_by(point)
        assert rec["acc_width"] == point.acc_width
    mac = runner.record(hw.DesignPoint("mac", "dint4", "shiftadd"), "cmos", result={})
    assert mac["verified"] == "exact"  # sim verifies every MAC of the report
