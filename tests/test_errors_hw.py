"""Bad input to hw, golden, tools and reports (issue 14): one clear line, exit status 2, and
nothing created or changed. Commands run as a user runs them, in an empty directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from clicheck import ROOT, one_error_line, run_module, snapshot

import golden
import tools
from golden import FormatError
from hw import DotProduct, export_verilog

HW = ["-m", "hw", "verilog"]


@pytest.mark.parametrize(
    "args, words",
    [
        # a Verilog (or SystemVerilog) keyword as the top module's name
        (["mac", "--k-max", "8", "--name", "module", "-o", "out/m.v"], ["'module'", "reserved"]),
        (["mac", "--k-max", "8", "--name", "logic", "-o", "out/m.v"], ["SystemVerilog"]),
        (["mac", "--k-max", "8", "--name", "9lives", "-o", "out/m.v"], ["identifier"]),
        # a format that does not exist, also where it only sizes a width
        (["requant", "--weight", "dint5", "--k-max", "8", "--name", "r", "-o", "r.v"], ["dint5"]),
        (["mac", "--act", "dint4", "--k-max", "8", "--name", "r", "-o", "r.v"], ["activation"]),
        # sizes, widths, outputs
        (["systolic", "--rows", "300", "--k-max", "512", "--name", "s", "-o", "s.v"], ["rows"]),
        (["dot", "--lanes", "0", "--k-max", "8", "--name", "d", "-o", "d.v"], ["lanes"]),
        (["mac", "--acc-width", "10", "--name", "m", "-o", "m.v"], ["overflow"]),
        (["mac", "--k-max", "8", "--name", "m", "-o", "m.sv"], [".v"]),
        (["mac", "--lanes", "4", "--k-max", "8", "--name", "m", "-o", "m.v"], ["lanes"]),
    ],
)
def test_hw_cli_bad_input(tmp_path, args, words):
    before = snapshot(tmp_path)
    one_error_line(run_module([*HW, *args], tmp_path), *words)
    assert snapshot(tmp_path) == before


def test_sidecar_that_cannot_be_written_leaves_no_verilog(tmp_path):
    (tmp_path / "out" / "x.json").mkdir(parents=True)  # the sidecar's name is taken
    before = snapshot(tmp_path)
    one_error_line(
        run_module([*HW, "mac", "--k-max", "8", "--name", "x", "-o", "out/x.v"], tmp_path),
        "x.json",
        "directory",
    )
    assert snapshot(tmp_path) == before


def test_debug_shows_the_traceback(tmp_path):
    r = run_module(
        [*HW, "mac", "--k-max", "8", "--name", "module", "-o", "m.v", "--debug"], tmp_path
    )
    assert r.returncode != 0 and "Traceback" in r.stderr and "reserved word" in r.stderr


def test_big_array_says_what_it_will_cost_before_it_starts(tmp_path):
    """256 x 256 takes most of an hour: the estimate comes first, before the work starts."""
    proc = subprocess.Popen(
        [
            sys.executable,
            *HW,
            "systolic",
            "--rows",
            "256",
            "--cols",
            "256",
            "--name",
            "big",
            "-o",
            "big.v",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stderr.readline()
        second = proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait()
    assert "65536 processing elements" in first and "min" in first, first
    assert "[1/2]" in second
    assert not (tmp_path / "big.v").exists()


def test_exports_are_0644_even_over_a_0600_file(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "d.v"
        p.write_text("old")
        p.chmod(0o600)
        export_verilog(DotProduct(2, "dint4", acc_width=20), "d", p)
    finally:
        os.umask(old)
    for f in (p, p.with_suffix(".json")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_atomic_set_puts_everything_back_when_a_move_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "a.v", tmp_path / "a.json"
    a.write_text("old v")
    b.write_text("old json")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if Path(dst) == b and len(calls) == 2:
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        tools.atomic_write_set({a: "new v", b: "new json"})
    assert (a.read_text(), b.read_text()) == ("old v", "old json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.v"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: golden.check_acc_width(0, 24), "K"),
        (lambda: golden.check_acc_width(-5, 24), "K"),
        (lambda: golden.get("dint4").codes_of_ints([7]), "cannot represent the integer 7"),
        (lambda: golden.get("dint4").codes_of_ints([2.5]), "integers"),
        (lambda: golden.requantize(np.array([1.5, 2.0]), [2**30] * 2, [3] * 2), "integers"),
        (lambda: golden.get("dint4").decode_ints(np.array([1.0, 2.0])), "integers"),
        (lambda: golden.accumulate([[1.0]], [[1]], "dint4"), "integers"),
    ],
)
def test_golden_api_edges(call, match):
    with pytest.raises(FormatError, match=match):
        call()


def test_golden_codes_of_ints_round_trips_what_it_accepts():
    fmt = golden.get("dint4")
    ints = np.array(sorted(set(fmt.ints)))
    assert np.array_equal(fmt.decode_ints(fmt.codes_of_ints(ints)), ints)


def test_reports_help_lists_every_subcommand(tmp_path):
    r = run_module(["-m", "reports", "--help"], tmp_path)
    assert r.returncode == 0
    assert "{report,baseline,compare}" in r.stdout


@pytest.mark.parametrize("missing, pkg", [("amaranth", "reports"), ("torch", "quant")])
def test_cli_without_its_extra_names_the_extra(tmp_path, missing, pkg):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / f"{missing}.py").write_text(f"raise ImportError('no module named {missing}')\n")
    r = run_module(
        ["-m", pkg, "--help"], tmp_path, env={"PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}"}
    )
    one_error_line(r, missing, f"'.[{pkg}]'")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--jobs", "0"], ["--jobs"]),
        (["--formats", "dint5", "--levels", "mac", "--targets", "cmos"], ["dint5"]),
        (["--sizes", "dot=x", "--levels", "dot", "--targets", "cmos"], ["--sizes"]),
        (["--liberty", "nope.lib", "--levels", "mac", "--targets", "osu018"], ["nope.lib"]),
    ],
)
def test_reports_cli_bad_input(tmp_path, args, words):
    before = snapshot(tmp_path)
    one_error_line(run_module(["-m", "reports", *args], tmp_path), *words)
    assert snapshot(tmp_path) == before
