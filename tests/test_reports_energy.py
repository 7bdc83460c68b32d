"""python -m reports.energy: the MACs' energy per MAC from gate-level activity, every cycle's
accumulator equal to golden, and the OpenSTA cross-check within 5% (skipped only where
Debian iverilog or opensta is missing)."""

from __future__ import annotations

import json
import shutil

import pytest

from reports import energy

pytestmark = pytest.mark.skipif(
    not (shutil.which("iverilog") and shutil.which("sta")),
    reason="needs Debian iverilog and opensta (apt-get install iverilog opensta; .ci/run does)",
)


def test_energy_table_of_the_macs(tmp_path, capsys):
    status = energy.main(["--cycles", "120", "--k", "16", "--out", str(tmp_path)])
    assert status == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "energy-mac.json").read_text())
    rows = data["rows"]
    assert len(rows) == len(energy.MACS) * len(energy.SOURCES) * 2
    assert all(abs(r["opensta_diff"]) <= 0.05 for r in rows)
    by = {(r["mac"], r["operands"], r["activity"]): r for r in rows}
    for src in energy.SOURCES:
        for mac in ("int8/mul", "dint4/shiftadd"):
            # glitches only add transitions
            assert (
                by[mac, src, "glitch"]["toggles_per_cycle"]
                >= by[mac, src, "zero-delay"]["toggles_per_cycle"]
            )
        assert (
            by["int8/mul", src, "zero-delay"]["energy_pj_per_mac"]
            > by["dint4/shiftadd", src, "zero-delay"]["energy_pj_per_mac"]
        )
    assert (tmp_path / "energy-mac.md").read_text().startswith("Energy per MAC on OSU018")


def test_bad_arguments_are_one_line_before_any_work(tmp_path, capsys):
    status = energy.main(["--cycles", "1", "--out", str(tmp_path)])
    assert status == 2 and "--cycles" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
