"""Energy per MAC from gate-level activity (python -m reports.energy, reports.energyruns):
every cycle's outputs equal to golden, the OpenSTA cross-check within 5%, the split by
category, the cache (skipped only where Debian iverilog or opensta is missing)."""

from __future__ import annotations

import json
import shutil

import pytest

import hw
from reports import energy, energyruns

pytestmark = pytest.mark.skipif(
    not (shutil.which("iverilog") and shutil.which("sta")),
    reason="needs Debian iverilog and opensta (apt-get install iverilog opensta; .ci/run does)",
)

ARGS = ["--energy-levels", "mac", "--energy-cycles", "120", "--k", "16"]


@pytest.fixture(scope="module")
def mac_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy")
    status = energy.main([*ARGS, "--out", str(out), "--no-plots"])
    return status, out


def test_energy_of_the_macs(mac_run):
    status, out = mac_run
    assert status == 0
    doc = json.loads((out / "energy.json").read_text())
    rows = doc["rows"]
    assert len(rows) == len(energyruns.VARIANTS) * 2 * 2  # variants x operands x activities
    assert all(abs(r["opensta_diff"]) <= 0.05 for r in rows)
    by = {(r["variant"], r["operands"], r["activity"]): r for r in rows}
    for (variant, src, act), r in by.items():
        # the categories add up to the total (leakage is in each cell's share)
        assert sum(r["by_category_pj"].values()) == pytest.approx(r["energy_pj_per_mac"], 1e-3)
        assert r["macs"] == r["cycles"] == 120
        if act == "glitch":  # glitches only add transitions
            zero = by[variant, src, "zero-delay"]
            assert r["toggles_per_cycle"] >= zero["toggles_per_cycle"]
    for src in ("smollm2", "synthetic"):
        int8 = by["int8/mul", src, "zero-delay"]
        dint4 = by["dint4/shiftadd", src, "zero-delay"]
        assert int8["energy_pj_per_mac"] > dint4["energy_pj_per_mac"]
        assert "decoder" in dint4["by_category_pj"] and "decoder" not in int8["by_category_pj"]
        # the ratio the report prints is the best INT8 over this row
        best = min(
            by[v, src, "zero-delay"]["energy_pj_per_mac"] for v in ("int8/mul", "int8/mul+booth")
        )
        assert dint4["energy_ratio"] == pytest.approx(best / dint4["energy_pj_per_mac"])
    assert "Headline" in (out / "energy.md").read_text()


def test_second_run_comes_from_the_cache(mac_run, capsys):
    status, out = mac_run
    before = sorted(p.name for p in (out / "energy-cache").iterdir())
    assert len(before) == len(energyruns.VARIANTS) * 2 * 2
    assert energy.main([*ARGS, "--out", str(out), "--no-plots"]) == 0
    assert sorted(p.name for p in (out / "energy-cache").iterdir()) == before
    rows = json.loads((out / "energy.json").read_text())["rows"]
    assert rows and all(r["cached"] for r in rows)


def test_array_energy_from_real_layer_tiles(tmp_path):
    settings = energyruns.Settings(cycles=80, k=16, tokens=6)
    points = [
        hw.DesignPoint("systolic", f, s, size=2)
        for f, s in (("int8", "mul"), ("dint4", "shiftadd"))
    ]
    points.append(hw.DesignPoint("systolic", "dint4", "shiftadd", size=2, arch="lean", pe_lanes=2))
    jobs = [energyruns.EnergyJob(p, ("smollm2",), settings) for p in points]
    rows = energyruns.run_energy(jobs, tmp_path, workers=1)
    assert [r.get("error") for r in rows] == [None] * 6
    for r in rows:
        assert r["unit"] in ("sys2x2 classic", "sys2x2 lean") and r["opensta_diff"] is None
        assert r["macs"] < r["cycles"] * 4  # loads and drains are in the run
        assert {"psum registers", "weight registers"} <= set(r["by_category_pj"])
        # the lean array is clock-gated as in the area flow, the classic one is not
        assert ("clock gating" in r["by_category_pj"]) == (r["unit"] == "sys2x2 lean")


def test_bad_arguments_are_one_line_before_any_work(tmp_path, capsys):
    status = energy.main(["--energy-cycles", "1", "--out", str(tmp_path)])
    assert status == 2 and "cycles must be >= 2" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    status = energy.main(["--k", "24", "--out", str(tmp_path)])
    assert status == 2 and "multiple of 16" in capsys.readouterr().err


def test_multiplier_energy(tmp_path):
    """The combinational ``mul`` level (decoder + multiplier): one product per cycle, every
    product equal to golden, all its energy in the decoder and multiplier categories."""
    settings = energyruns.Settings(cycles=150, k=16)
    jobs = [
        energyruns.EnergyJob(hw.DesignPoint("mul", f, s), ("smollm2",), settings)
        for f, s in (("int8", "mul"), ("dint4", "shiftadd"))
    ]
    rows = energyruns.run_energy(jobs, tmp_path, workers=1)
    assert [r.get("error") for r in rows] == [None] * 4
    by = {(r["variant"], r["activity"]): r for r in rows}
    for r in rows:
        assert r["unit"] == "mul" and r["macs"] == r["cycles"] == 150
        assert set(r["by_category_pj"]) <= {"decoder", "multiplier"}
    for act in ("zero-delay", "glitch"):
        assert (
            by["int8/mul", act]["energy_pj_per_mac"]
            > by["dint4/shiftadd", act]["energy_pj_per_mac"]
        )


def test_one_job_per_design_point():
    """A point's sources share one job: two jobs never map into one work directory."""
    jobs = energyruns.default_jobs()
    assert len({j.point for j in jobs}) == len({j.name for j in jobs}) == len(jobs)
    mac = next(j for j in jobs if j.point.level == "mac")
    array = next(j for j in jobs if j.point.level == "systolic")
    assert mac.sources == ("smollm2", "synthetic") and array.sources == ("smollm2",)
