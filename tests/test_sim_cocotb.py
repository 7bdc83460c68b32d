"""One tiny cocotb + Verilator run of the registry's int4 MAC (quick mode), and the same run
with a deliberately broken decoder entry, which must fail naming the element."""

from __future__ import annotations

from pathlib import Path

import pytest

import golden
from hw import ACC_K, DesignPoint
from sim.build import OBJCACHE_ENV
from sim.configs import SimConfig
from sim.export import FAULT_ENV
from sim.runner import RunOptions, run_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _config() -> SimConfig:
    return SimConfig(
        "mac-int4-mul-pytest",
        "sim.tb_mac",
        {"dut": DesignPoint("mac", "int4", "mul")},
        options={"sequence_cycles": 500},
    )


def test_mac_int4_passes_and_a_broken_decoder_fails(tmp_path, monkeypatch, restore_environ):
    # Share Verilator's compiled runtime objects with `python -m sim` (saves ~15 s of CPU).
    monkeypatch.setenv(OBJCACHE_ENV, str(REPO / "build" / "sim" / ".objcache"))
    opts = RunOptions(build_root=tmp_path, jobs=1, quick=True, waves_on_failure=False)
    results = run_config(_config(), opts)
    assert [(r.test, r.passed) for r in results] == [
        ("test_exhaustive", True),
        ("test_sequences", True),
        ("test_acc_extremes", True),
    ]
    assert results[0].macs == 256 * 16
    # The registry's equal-width accumulator (the int8 x int8 width for ACC_K products),
    # driven with ACC_K worst-case products per sign combination.
    extremes = results[2]
    width = golden.acc_width_for(ACC_K, "int8", "int8")
    assert (extremes.extra["acc_width"], extremes.extra["k_max"]) == (width, ACC_K)
    assert extremes.cycles == 4 * ACC_K
    monkeypatch.setenv(FAULT_ENV, "int4:5:6")
    bad = run_config(_config(), opts)
    exhaustive = next(r for r in bad if r.test == "test_exhaustive")
    assert not exhaustive.passed
    assert "x code 5 (ints[5]=5; int4)" in exhaustive.message
    assert "[mac-int4-mul-pytest] mismatch at cycle" in exhaustive.message
