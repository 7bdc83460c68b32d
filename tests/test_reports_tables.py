"""Table math: baselines, ratios, efficiency, grouping by architecture and options, headline,
the paper comparison, the issue-11 goals, and the atomic report writer."""

from __future__ import annotations

import json
import math

import pytest
from reports_records import NOT_EXACT, RECORDS, _rec, arrays_8x8, legacy

import hw
import tools
from reports import goals, paper, render, runner, tables

#: The MAC at width by need (dINT4 21 bits; INT8's width by need is its equal width).
NEED_MACS = [
    _rec("osu018", "mac", 1, "int8", "mul", 24000.0, 5.0, acc_rule="need"),
    _rec("osu018", "mac", 1, "int8", "mul", 20000.0, 5.5, booth=True, acc_rule="need"),
]


def _need_dint4(area: float) -> dict:
    return _rec("osu018", "mac", 1, "dint4", "shiftadd", area, 3.9, acc_width=21, acc_rule="need")


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
    cmp = paper.paper_comparison(rows)
    assert cmp["levels"]["mac"]["area_ratio"] == pytest.approx(1.6)
    # accumulator + registers (10000) of the Booth INT8 MAC (20000): a free multiplier gives 2x
    assert cmp["mac_ratio_cap"] == pytest.approx(20000.0 / 10000.0)
    assert cmp["mac_multiplier_ratio"] == pytest.approx(10000.0 / 2500.0)
    text = paper.render_paper(cmp)
    assert "short of 1.93x" in text
    assert "smaller than the best INT8 MAC (`int8/mul+booth`)" in text
    assert "width by need was not measured" in text


def test_rows_carry_architecture_and_options():
    rows = tables.build_rows(RECORDS + NEED_MACS + [_need_dint4(12000.0)] + arrays_8x8())
    r = tables.find(rows, "osu018", "sys8x8", "dint4", "shared", arch="lean", pe_lanes=4)
    assert (r["arch"], r["pe_lanes"], r["a_reg_every"], r["pipeline"]) == ("lean", 4, None, False)
    assert r["unit"] == "sys8x8 lean l4"
    # the lean default (hw.DEFAULT_LANES weights per PE) has no lanes in its label
    r = tables.find(rows, "osu018", "sys8x8", "dint4", "shared", arch="lean")
    assert (r["pe_lanes"], r["unit"]) == (hw.DEFAULT_LANES, "sys8x8 lean")
    assert tables.find(rows, "osu018", "sys8x8", "dint4", "shiftadd")["unit"] == "sys8x8 classic"
    need = tables.find(rows, "osu018", "mac", "dint4", "shiftadd", acc_rule="need")
    assert need["unit"] == "mac (width by need)" and need["acc_width"] == 21
    assert tables.find(rows, "osu018", "mac", "dint4", "shiftadd")["unit"] == "mac"


def test_lean_rows_are_divided_by_the_lean_baseline():
    """A ratio compares one architecture and its options: the lean dINT4 array is divided by
    the smallest lean INT8 (here int8/shared), never by the classic one."""
    rows = tables.build_rows(arrays_8x8())
    lean = tables.find(rows, "osu018", "sys8x8", "dint4", "shared", arch="lean")
    assert lean["baseline"] == "int8/shared"
    assert lean["area_ratio"] == pytest.approx(700_000.0 / 340_000.0)
    assert lean["area_ratio_plain"] == pytest.approx(900_000.0 / 340_000.0)  # int8/mul, lean
    classic = tables.find(rows, "osu018", "sys8x8", "dint4", "shiftadd")
    assert classic["baseline"] == "int8/mul+booth"
    assert classic["area_ratio"] == pytest.approx(1_600_000.0 / 1_200_000.0)
    l4 = tables.find(rows, "osu018", "sys8x8", "dint4", "shared", arch="lean", pe_lanes=4)
    assert l4["area_ratio"] == pytest.approx(650_000.0 / 300_000.0)  # the l4 INT8, not lean's
    assert math.isnan(l4["area_ratio_plain"])  # no int8/mul with 4 lanes in this set
    # when Booth is the smallest lean INT8, it is the baseline
    cheap_booth = _rec("osu018", "systolic", 8, "int8", "mul", 600_000.0, 4.6, True, arch="lean")
    rows = tables.build_rows([*arrays_8x8(), cheap_booth])
    lean = tables.find(rows, "osu018", "sys8x8", "dint4", "shared", arch="lean")
    assert lean["baseline"] == "int8/mul+booth"
    assert lean["area_ratio"] == pytest.approx(600_000.0 / 340_000.0)


def test_headline_lists_both_rules_and_architectures():
    rows = tables.build_rows(RECORDS + NEED_MACS + [_need_dint4(12000.0)] + arrays_8x8())
    hl = tables.headline(rows, targets=("osu018",))
    assert [(h["unit"], h["variant"]) for h in hl] == [
        ("mac", "dint4/shiftadd"),
        ("mac", "dint4/mul"),
        ("mac (width by need)", "dint4/shiftadd"),
        ("dot8", "dint4/shiftadd"),
        ("sys8x8 classic", "dint4/shiftadd"),
        ("sys8x8 lean", "dint4/shared"),  # the smaller of shared and shiftadd
        ("sys8x8 lean-col", "dint4/shared"),
    ]  # no option points
    assert hl[2]["area_ratio"] == pytest.approx(20000.0 / 12000.0)


@pytest.mark.parametrize("need_area", [12480.0, 12000.0])
def test_paper_correspondence(need_area):
    """The MAC at both rules, and the dINT4 accumulator width at which the ratio to the
    default INT8 would be 1.93x (linear between the 25- and 21-bit dINT4 MACs)."""
    rows = tables.build_rows(RECORDS + NEED_MACS + [_need_dint4(need_area)])
    cmp = paper.paper_comparison(rows)
    need = cmp["mac"]["need"]
    assert (need["acc_width"], need["baseline_acc_width"]) == (21, 25)
    assert need["area_ratio"] == pytest.approx(20000.0 / need_area)
    assert need["area_ratio_plain"] == pytest.approx(24000.0 / need_area)
    per_bit = (12500.0 - need_area) / 4  # marginal: what 25 -> 21 bits saved
    average = 7600.0 / 25  # the accumulator's adder (its registers are not in the synthetic MAC)
    width = cmp["mac_width_for_paper"]
    assert width["per_bit"] == {"marginal": pytest.approx(per_bit), "average": average}
    plain = {
        m: 25 - (12500.0 - 24000.0 / 1.93) / c
        for m, c in (("marginal", per_bit), ("average", average))
    }
    assert width["plain"] == pytest.approx(plain)
    assert width["best"]["average"] == pytest.approx(25 - (12500.0 - 20000.0 / 1.93) / average)
    text = paper.render_correspondence(cmp)
    assert "With equal 25-bit accumulators our dINT4 MAC (`dint4/shiftadd`) is 1.60x" in text
    assert "with width by need (25 vs 21 bits, `dint4/shiftadd`)" in text
    if need_area == 12000.0:  # 2.00x against the default INT8 already
        assert "1.93x is reached with width by need against the default INT8" in text
    else:
        assert "1.92x (`int8/mul`)" in text
        assert "1.93x is consistent with the default (non-Booth) INT8 multiplier" in text
        assert f"accumulator of at most ~{math.floor(plain['marginal'])} bits" in text
        assert f"or ~{math.floor(plain['average'])} bits" in text
        assert "against the best INT8 MAC (`int8/mul+booth`) it would take no width and" in text


def test_goals_pass():
    g = goals.goals(tables.build_rows(arrays_8x8()))
    lean, col = g["archs"]
    assert (lean["arch"], lean["variant"], lean["baseline"]) == (
        "lean",
        "dint4/shared",
        "int8/shared",
    )
    assert lean["ratio"] == {"value": pytest.approx(700 / 340), "goal": 2.0, "pass": True}
    assert lean["area_goal"]["pass"] and lean["delay"]["pass"]
    assert lean["delay"]["goal"] == 4.5  # the classic dINT4 8x8's critical path
    assert [col["ratio"]["pass"], col["area_goal"]["pass"], col["delay"]["pass"]] == [False] * 3
    assert [o["unit"] for o in g["options"]] == ["sys8x8 lean", "sys8x8 lean l4"]
    text = goals.render_goals(g)
    assert (
        "- dINT4 8x8 systolic (lean, best style `dint4/shared`) is 2.06x smaller than the best "
        "INT8 8x8 of the same architecture (`int8/shared`, 700,000 um^2) (target >= 2.0x): "
        "**PASS**"
    ) in text
    assert "- its area 340,000 um^2 (target <= 600,000): **PASS**" in text
    assert "its critical path 4.40 ns vs the classic dINT4 8x8's (`dint4/shiftadd`) 4.50 ns" in text
    assert "with column accumulators (lean-col" in text
    assert "Where the area went" in text and "sys8x8 lean-col" in text.split("Where")[1]
    assert "sys8x8 lean `" not in text.split("Where")[1]  # the lean array met its goals


def test_goals_miss():
    g = goals.goals(tables.build_rows(arrays_8x8(lean_dint4=(400_000.0, 4.7))))
    lean = g["archs"][0]
    assert lean["ratio"]["pass"] is False and lean["area_goal"]["pass"] is True
    assert lean["delay"]["pass"] is False
    text = goals.render_goals(g)
    assert "(target >= 2.0x): **MISS**" in text and "(target: not worse): **MISS**" in text
    where = text.split("Where the area went")[1]
    # multipliers are a quarter of the dINT4 array, half of the INT8 one; the rest caps it
    assert "multipliers (decoder + multiplier + shared multiples) 25% of its area" in where
    assert "(INT8 baseline's: 50%)" in where
    assert f"at most {700_000 / 300_000:.2f}x" in where
    table = goals.render_breakdown_8x8(g["breakdown"])
    assert "sys8x8 lean `dint4/shared` (dINT4 best)" in table
    assert "sys8x8 classic `int8/mul+booth` (INT8 baseline)" in table
    assert "100,000 (25%)" in table  # the lean dINT4's multiplier


def test_goals_not_measured():
    assert goals.goals(tables.build_rows(RECORDS))["archs"] == []
    assert "no lean sys8x8 arrays" in goals.render_goals(goals.goals(tables.build_rows(RECORDS)))


def test_old_records_without_arch_fields_still_render(tmp_path):
    old = [legacy(r) for r in RECORDS]
    assert "arch" not in old[0]["spec"]
    rows = tables.build_rows(old)
    assert {
        (r["arch"], r["pe_lanes"], r["a_reg_every"], r["pipeline"], r["acc_rule"]) for r in rows
    } == {("classic", 1, None, False, "equal")}
    r = tables.find(rows, "osu018", "mac", "dint4", "shiftadd")
    assert r["area_ratio"] == pytest.approx(1.6) and r["unit"] == "mac"
    md, _ = render.write_report(old, {"tools": {}}, tmp_path)
    assert "## Issue-11 targets" in md.read_text()


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
    assert {"arch", "pe_lanes", "a_reg_every", "pipeline", "acc_rule", "unit"} <= set(
        doc["rows"][0]
    )
    assert "goals" in doc
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
