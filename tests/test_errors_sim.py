"""Bad input to ``python -m sim`` and the benchmarks (issue 14): one clear line, exit status 2,
nothing created or changed; a partial run's summary beside the full one; ``--check`` logic.

Commands run as a user runs them, in an empty directory (``build/`` is written under it).
The only real run is ``--only acc-width`` (a static check, no Verilator build), twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clicheck import one_error_line, run_module, snapshot

import hw
from golden import bench as golden_bench
from sim import SimError, bench, configs
from sim.export import progress
from sim.report import Result
from sim.selection import Selection, select
from sim.sidecar import SidecarError

# ---- row 5: a data directory that does not exist, a selection that drops a task ----------


@pytest.mark.parametrize(
    "args, words",
    [
        # the command: the real-layer task must not be dropped silently
        (["--data-dir", "/nonexistent", "--only", "layer"], ["/nonexistent", "does not exist"]),
        (["--data-dir", "afile", "--only", "layer"], ["afile", "not a directory"]),
        (["--data-dir", "empty", "--only", "layer"], ["empty", "no layer tiles"]),
        # a layer whose tile is not in the data directory; a pattern matching nothing
        (["--only", "layer-nosuchtile"], ["'layer-nosuchtile'", "matches no task", "tile"]),
        (["--only", "mac-dint4-*", "--only", "mac-dint5-*"], ["'mac-dint5-*'", "no task"]),
        (["--only", "zzz", "--list"], ["'zzz'", "no task"]),
        (["--simulator", "icarus", "--only", "formal-mac-int8-mul"], ["--formal"]),
        (["--only", ""], ["--only", "empty"]),
        # options of the other command, bad numbers, a build directory that is a file
        (["--vectors", "5"], ["--vectors", "bench"]),
        (["bench", "--only", "mac"], ["--only"]),
        (["bench", "--runtime-env", "project"], ["--runtime-env", "verification run"]),
        (["bench", "--repeat", "0"], ["--repeat", "positive"]),
        (["bench", "--min-rate", "-2"], ["--min-rate", "positive"]),
        (["--jobs", "0"], ["--jobs", "positive"]),
        (["--build-dir", "afile"], ["afile", "file"]),
        (["verify"], ["invalid choice"]),
    ],
)
def test_sim_cli_bad_input(tmp_path, args, words):
    (tmp_path / "afile").write_text("not a directory\n")
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    one_error_line(run_module(["-m", "sim", *args], tmp_path), *words)
    assert snapshot(tmp_path) == before


def test_selection_keeps_every_requested_task():
    names = ["mac-dint4-mul", "layer-dint4-random", "acc-width"]
    assert select(names, Selection(only=("mac", "acc-*")), []) == ["mac-dint4-mul", "acc-width"]
    with pytest.raises(SimError, match="'layer-x'.*layer-dint4-random"):
        select(names, Selection(only=("acc-width", "layer-x")), ["layer-dint4-random"])


def test_sim_library_errors_are_one_type():
    assert issubclass(SidecarError, SimError) and issubclass(SimError, ValueError)
    with pytest.raises(SimError, match="unknown simulator"):
        from sim import toolchain

        toolchain.prepare("modelsim")


# ---- big designs: refused beyond the limit up front, progress lines from 16x16 on -------


def test_arrays_beyond_the_limit_are_refused_before_export():
    big = hw.DesignPoint("systolic", "dint4", "shiftadd", size=32)
    with pytest.raises(SimError, match=r"32x32 array \(1024 MACs.*limit of 256"):
        configs.point_config(big)
    with pytest.raises(SimError, match="beyond sim's limit"):
        configs.SimConfig("x", "sim.tb_systolic", {"dut": big})


def test_big_designs_print_a_line_per_stage(capsys):
    p16 = hw.DesignPoint("systolic", "dint4", "shiftadd", size=16)
    big, small = configs.point_config(p16), configs.point_config(hw.bench_point())
    assert configs.shows_progress(big) and not configs.shows_progress(small)
    progress(big)("converting to Verilog")
    progress(small)("converting to Verilog")
    err = capsys.readouterr().err.splitlines()
    assert err == ["systolic-dint4-16x16: converting to Verilog"]


# ---- row 14: a partial run writes its summary beside the full one, never over it --------


def test_summary_labels_are_file_safe_and_distinct():
    assert Selection().summary_stem() == "summary"
    assert Selection().full
    quick = Selection(only=("requant-l4-*",), quick=True)
    assert quick.summary_stem() == "summary-requant-l4-_+quick"
    assert Selection(only=("requant-l4-",)).label == "requant-l4-"
    assert "--only 'requant-l4-*' --quick" == quick.describe()
    assert Selection(quick=True).summary_stem() == "summary-quick"
    assert Selection(simulator="icarus").summary_stem() == "summary-icarus"
    assert Selection(data_dir=Path("/tmp/tiles")).summary_stem() == "summary-data-tiles"
    odd = Selection(only=("a/b c?*", "../x", "y" * 200)).label
    assert len(odd) <= 60 and all(c.isalnum() or c in "._-+" for c in odd) and "/" not in odd
    assert odd != Selection(only=("a/b c?*", "../x", "y" * 199)).label


def test_partial_run_writes_beside_the_full_summary(tmp_path):
    out = tmp_path / "build" / "sim"
    out.mkdir(parents=True)
    (out / "summary.md").write_text("the last full run\n")
    (out / "summary.json").write_text('{"passed": true, "results": []}\n')
    full = {p: snapshot(out)[p] for p in ("summary.md", "summary.json")}
    for _ in range(2):  # a second partial run replaces its own summary, still not the full one
        r = run_module(["-m", "sim", "--only", "acc-width", "--quick"], tmp_path)
        assert r.returncode == 0, r.stderr
        assert "summary: build/sim/summary-acc-width+quick.md" in r.stdout, r.stdout
    assert {p: snapshot(out)[p] for p in ("summary.md", "summary.json")} == full
    partial = json.loads((out / "summary-acc-width+quick.json").read_text())
    assert partial["passed"] and partial["results"]
    assert "partial run (--only 'acc-width' --quick)" in partial["header"]
    assert "acc_width_bound" in (out / "summary-acc-width+quick.md").read_text()
    summaries = sorted(p.name for p in out.glob("summary*"))
    assert summaries == [
        "summary-acc-width+quick.json",
        "summary-acc-width+quick.md",
        "summary.json",
        "summary.md",
    ]


# ---- row 15: the benches' --check (pass/fail from measured numbers; no timing here) -----


def _rows(*ratios: float) -> list[dict]:
    return [
        {
            "shape": f"shape{i}",
            "repeats": 5,
            "ratio_exact_vs_float32": r,
            "ratio_exact_vs_float32_min": r / 2,
        }
        for i, r in enumerate(ratios)
    ]


@pytest.mark.parametrize(
    "ratios, check, met, status",
    [
        ((0.95, 0.81), False, True, 0),
        ((0.95, 0.81), True, True, 0),
        ((0.95, 0.40), False, False, 0),  # the default run reports a miss, exits 0
        ((0.95, 0.40), True, False, 1),  # --check fails on it
    ],
)
def test_golden_bench_check(ratios, check, met, status):
    ok, line = golden_bench.check(_rows(*ratios))
    assert ok is met
    assert ("met" if met else "MISSED") in line and "0.80x" in line
    assert golden_bench.exit_status(ok, check) == status
    assert golden_bench.check(_rows(0.5), min_ratio=0.45)[0]


def _bench_results(cocotb_rates, cxx_rates, passed=True) -> list[Result]:
    out = []
    for c, x in zip(cocotb_rates, cxx_rates, strict=True):
        out.append(Result(bench.COCOTB, "b", True, cycles=1, macs=int(c), seconds=1.0))
        out.append(Result(bench.CXX, "b", passed, cycles=1, macs=int(x), seconds=1.0))
    return out


@pytest.mark.parametrize(
    "cxx, check, passed, met, status",
    [
        ((25e6, 1e6, 24e6, 26e6, 23e6), False, True, True, 0),  # one noisy run: median counts
        ((25e6, 1e6, 24e6, 26e6, 23e6), True, True, True, 0),
        ((1e6, 1.5e6, 0.9e6, 3e6, 1.2e6), False, True, False, 0),  # reported, not failed
        ((1e6, 1.5e6, 0.9e6, 3e6, 1.2e6), True, True, False, 1),  # --check: exit 1
        ((25e6,) * 5, False, False, False, 1),  # a failed verification always exits 1
    ],
)
def test_sim_bench_check(cxx, check, passed, met, status):
    per_path = bench.spreads(_bench_results((1.5e6,) * 5, cxx, passed))
    assert [s.path for s in per_path] == [bench.COCOTB, bench.CXX]
    assert "median 1.50 M, min 1.50 M, max 1.50 M" in per_path[0].line()
    ok, line = bench.verdict(per_path)
    assert ok is met and "2.00 M" in line
    assert bench.exit_status(passed, ok, check) == status
    assert bench.verdict(per_path, min_rate=1e6)[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--repeat", "0"], ["--repeat", "positive"]),
        (["--weight", "dint5"], ["dint5", "unknown format"]),
        (["--json", "nodir/rows.json"], ["nodir/rows.json"]),
        (["--min-ratio", "abc"], ["--min-ratio"]),
    ],
)
def test_golden_bench_bad_input(tmp_path, args, words):
    before = snapshot(tmp_path)
    one_error_line(run_module(["-m", "golden.bench", *args], tmp_path), *words)
    assert snapshot(tmp_path) == before
