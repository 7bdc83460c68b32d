"""sim.tb_systolic on the lean array architectures (hw.ARCHS "lean", "lean-col"): where the
partial sums go (no psum for ``outside``, a ``psum_in`` stream for ``column``, ``a_in`` for the
classic chain), the expected values from golden, the config names and the accumulator-width
check; and (slow) one quick cocotb + Verilator run of each lean architecture on a small array,
plus a broken decoder entry that must fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import golden
import hw
from sim import configs, formal
from sim.build import OBJCACHE_ENV
from sim.export import FAULT_ENV
from sim.runner import RunOptions, run_config
from sim.sidecar import Sidecar, SidecarError
from sim.tb_systolic import ksum_of, tile_expected, vector_feeds

REPO = Path(__file__).resolve().parents[1]
TESTS = ["test_random", "test_extremes", "test_throughput", "test_overlapped_loads"]
# Small runs: every test of tb_systolic, a few hundred cycles each.
SMALL = {
    "tiles": 3,
    "max_vectors": 10,
    "throughput_vectors": 200,
    "overlap_loads": 3,
    "overlap_vectors": 60,
}


def _point(arch: str, **kw) -> hw.DesignPoint:
    return hw.DesignPoint("systolic", "int4", "shiftadd", size=3, cols=2, arch=arch, **kw)


@pytest.fixture(scope="module")
def sidecars(tmp_path_factory):
    d = tmp_path_factory.mktemp("lean")
    out = {}
    for arch in ("classic", "lean", "lean-col"):
        point = _point(arch, k_max=64) if arch != "lean" else _point(arch)
        name = "t_" + arch.replace("-", "_")
        hw.export_verilog(point.build(), name, d / f"{name}.v")
        out[arch] = Sidecar.load(d / f"{name}.json")
    return out


def test_ksum_and_feeds_follow_the_sidecar(sidecars):
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (5, 3))
    psum = rng.integers(-1000, 1000, (5, 2))
    a_src, p_src = object(), object()
    assert [ksum_of(sidecars[k]) for k in ("classic", "lean", "lean-col")] == [
        "chain",
        "outside",
        "column",
    ]
    # classic: the partial sums ride on a_in
    ((src, beats),) = vector_feeds(sidecars["classic"], a_src, None, a, psum)
    a_in = sidecars["classic"].stream("a_in").payload
    assert src is a_src and (a_in.unpack(beats, "psum") == psum).all()
    # outside: a_in has only the activations, nothing else is fed
    ((src, beats),) = vector_feeds(sidecars["lean"], a_src, None, a, None)
    a_in = sidecars["lean"].stream("a_in").payload
    assert set(a_in.groups) == {"a"} and (a_in.unpack(beats, "a") == a).all()
    # column: the partial sums are their own stream, one beat per output
    (s_a, a_beats), (s_p, p_beats) = vector_feeds(sidecars["lean-col"], a_src, p_src, a, psum)
    assert (s_a, s_p) == (a_src, p_src)
    assert (sidecars["lean-col"].stream("a_in").payload.unpack(a_beats, "a") == a).all()
    assert (sidecars["lean-col"].stream("psum_in").payload.unpack(p_beats) == psum).all()
    with pytest.raises(SidecarError, match="a psum given for a ksum=outside"):
        vector_feeds(sidecars["lean"], a_src, None, a, psum)
    with pytest.raises(SidecarError, match="no psum given for a ksum=column"):
        vector_feeds(sidecars["lean-col"], a_src, p_src, a, None)


def test_expected_values_are_golden():
    rng = np.random.default_rng(4)
    W = rng.integers(0, 16, (3, 2))
    a = rng.integers(-128, 128, (6, 3))
    psum = rng.integers(-(2**20), 2**20, (6, 2))
    sums = golden.accumulate(a, W.T, "int4")
    assert (tile_expected(W, a, None, "int4", "int8") == sums).all()
    assert (tile_expected(W, a, psum, "int4", "int8") == psum + sums).all()


def test_lean_sidecars_have_the_tile_sum_and_per_row_widths(sidecars):
    lean, col = sidecars["lean"], sidecars["lean-col"]
    assert lean.acc_width == golden.min_acc_width(3, "int8", "int4") == _point("lean").acc_width
    assert col.acc_width == golden.acc_width_for(64, "int8", "int8")
    for sc in (lean, col):
        widths = sc.parameters["psum_widths"]
        assert widths == [golden.min_acc_width(r + 1, "int8", "int4") for r in range(3)]
    assert "psum_in" in col.data["streams"] and "psum_in" not in lean.data["streams"]


def test_every_lean_sim_point_has_its_own_config_and_acc_width_check():
    lean = [p for p in hw.sim_points() if p.level == "systolic" and p.arch != "classic"]
    assert {p.arch for p in lean} == {"lean", "lean-col"}
    names = [configs.config_name(p) for p in lean]
    assert len(set(names)) == len(names)
    assert all(n.split("-")[3] in ("lean", "leancol") for n in names)
    labels = {r.config for r in formal.check_acc_widths(lean)}
    for p in lean:
        k = p.rows if p.arch == "lean" else p.k_max
        assert f"{p.weight_format}-k{k}-a{p.acc_width}" in labels


@pytest.mark.slow
def test_lean_arrays_pass_and_a_broken_decoder_fails(tmp_path, monkeypatch, restore_environ):
    monkeypatch.setenv(OBJCACHE_ENV, str(REPO / "build" / "sim" / ".objcache"))
    opts = RunOptions(build_root=tmp_path, jobs=1, quick=True, waves_on_failure=False)
    # A plain 3-row lean array, and a column-accumulator one with two weights per PE and the
    # product register (the registry's option points are 8x8 shared ones).
    points = {
        "lean": _point("lean"),
        "lean-col": hw.DesignPoint(
            "systolic",
            "int4",
            "shiftadd",
            size=4,
            cols=2,
            arch="lean-col",
            pe_lanes=2,
            pipeline=True,
        ),
    }
    cfgs = {
        arch: configs.SimConfig(
            configs.config_name(p) + "-pytest", "sim.tb_systolic", {"dut": p}, SMALL
        )
        for arch, p in points.items()
    }
    assert cfgs["lean-col"].name == "systolic-int4-4x2-leancol-l2-pipe-shiftadd-pytest"
    for arch, cfg in cfgs.items():
        results = run_config(cfg, opts)
        assert [(r.test, r.passed) for r in results] == [(t, True) for t in TESTS], arch
        extremes = results[1].extra
        k = points[arch].rows if arch == "lean" else hw.ACC_K
        lo, hi = golden.acc_range(k, "int8", "int4")
        assert {lo, hi} <= set(extremes["bounds_reached"])
    assert results[1].extra["lanes"] == 2 and len(results[1].extra["psum_widths"]) == 2
    monkeypatch.setenv(FAULT_ENV, "int4:5:6")
    for cfg in cfgs.values():
        random = next(r for r in run_config(cfg, opts) if r.test == "test_random")
        assert not random.passed
        assert f"[{cfg.name}] mismatch at cycle" in random.message
