"""``python -m reports compare``: two reports' rows matched by design and target."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reports_records import RECORDS

import reports.__main__ as reports_cli
from reports import compare, render


def _report(path, records):
    render.write_report(records, {"tools": {}}, path)
    return path


def test_reports_of_the_same_results_from_different_runs_are_the_same(tmp_path, capsys):
    again = copy.deepcopy(RECORDS)
    for r in again:  # what differs between two runs of the same sweep
        r["result"]["seconds"] = 99.0
        r["result"]["extra"] = {"export_seconds": 3.0, "liberty": "/elsewhere/osu018.lib"}
    a, b = _report(tmp_path / "a", RECORDS), _report(tmp_path / "b", again)
    assert reports_cli.main(["compare", str(a), str(b / "report.json")]) == 0
    out = capsys.readouterr().out
    assert f"{len(RECORDS)} rows in both: {len(RECORDS)} the same, 0 differ" in out
    assert out.rstrip().endswith("SAME RESULTS")


def test_a_changed_area_and_a_missing_row_are_named(tmp_path, capsys):
    changed = copy.deepcopy(RECORDS)
    changed[0]["result"]["area"] += 1.0
    dropped = changed.pop()
    a, b = _report(tmp_path / "a", RECORDS), _report(tmp_path / "b", changed)
    assert reports_cli.main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert f"  {RECORDS[0]['design']} on {RECORDS[0]['target']}: " in out
    assert "area" in out.split(f"{RECORDS[0]['design']} on {RECORDS[0]['target']}: ")[1]
    assert f"only in A:\n  {dropped['design']} on {dropped['target']}" in out
    assert out.rstrip().endswith("DIFFERENT RESULTS")
    c = compare.compare(compare.load_rows(a), compare.load_rows(b))
    assert not c.same and len(c.differ) >= 1 and c.only_b == []


def test_a_missing_or_broken_report_is_one_error(tmp_path, capsys):
    assert reports_cli.main(["compare", str(tmp_path / "none"), str(tmp_path)]) == 2
    assert "no report at" in capsys.readouterr().err
    (tmp_path / "report.json").write_text(json.dumps({"meta": {}}))
    with pytest.raises(compare.ReportError, match="not a report.json"):
        compare.load_rows(tmp_path)
    row = {"design": "mac_int8_mul", "target": "cmos"}
    (tmp_path / "report.json").write_text(json.dumps({"rows": [row, row]}))
    with pytest.raises(compare.ReportError, match="twice"):
        compare.load_rows(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"rows": [row, {"design": "x"}]}))
    assert reports_cli.main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "row 1 has no design and target" in capsys.readouterr().err


def test_compare_piped_into_head_ends_quietly(tmp_path):
    """``compare A B | head -1``: the reader stops early; no traceback, no error line."""
    changed = copy.deepcopy(RECORDS)
    for r in changed:
        r["result"]["area"] += 1.0
    a, b = _report(tmp_path / "a", RECORDS), _report(tmp_path / "b", changed)
    cmd = [sys.executable, "-c", "import sys, reports.__main__ as m; sys.exit(m.main())"]
    proc = subprocess.Popen(
        [*cmd, "compare", str(a), str(b)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    proc.stdout.close()  # the reader is gone before the first line
    assert proc.wait(timeout=120) == 1
    assert proc.stderr.read().decode() == ""
