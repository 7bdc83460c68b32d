"""Table math: baselines, ratios, efficiency, headline, and the atomic report writer."""

from __future__ import annotations

import json
import math

import pytest
from reports_records import RECORDS, _rec

from reports import tables


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
    text = tables.render_paper(paper)
    assert "short of 1.93x" in text


def test_write_report(tmp_path):
    records = RECORDS + [
        {"design": "x", "target": "ice40", "error": "FlowError: boom", "level": "mac", "size": 1}
    ]
    md, js = tables.write_report(records, {"command": "python -m reports", "tools": {}}, tmp_path)
    doc = json.loads(js.read_text())  # strict JSON: NaN must have become null
    assert "NaN" not in js.read_text()
    assert doc["meta"]["failed"][0]["error"] == "FlowError: boom"
    assert len(doc["rows"]) == len(RECORDS)
    text = md.read_text()
    assert "## Headline" in text and "boom" in text
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind
