"""``python -m sim bench``: verified MACs per second on the 8x8 systolic array.

Two measurements, side by side in one run, on the same exported Verilog: the registry's
benchmark design ``hw.bench_point()`` (the dint4 8x8 systolic array of the report):

- **cocotb + Verilator**: ``sim.tb_systolic.test_throughput`` streams full-rate activation
  vectors through the array, one Python round trip per clock cycle;
- **C++ driver + Verilator**: :mod:`sim.cxxdriver` streams the same kind of traffic (weight
  reloads every ``TILE`` vectors) from pre-packed words, dumps every output, and numpy
  compares the dump with ``golden.accumulate`` (exact ``==``).

"Verified MACs" are R x C multiply-accumulates per output vector that was compared equal to
the golden model. The rate divides them by the wall time of the simulation loop plus, for the
C++ path, packing, file I/O, the golden model and the comparison (builds excluded).

One timed run is mostly machine-load noise, so the two paths are timed alternately
:data:`REPEATS` times (builds and the export happen once, before) and each path is reported
as median, min and max; the median counts. The stated target, :data:`TARGET_RATE` = 2 M
verified MACs/s on the fastest path, is reported by every run; only ``--check`` makes a miss
exit 1 (a default run reports and exits 0 unless a verification failed, which always exits 1).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import golden
import hw
from tools import atomic_write_set

from . import cxxdriver, runner
from .build import prepare_env
from .configs import SimConfig, config_name
from .report import Result, format_table, summary_files
from .sidecar import Sidecar

POINT = hw.bench_point()
ROWS, COLS = POINT.rows, POINT.columns
TILE = 4096  # vectors per weight load in the C++ run
COCOTB_VECTORS = 20000
#: C++ driver vectors per repeat.
CXX_VECTORS = 1_000_000
#: Alternating repeats of the two paths (the median of each counts).
REPEATS = 5
#: The stated target (sim/README.md, README.md): 2 M verified MACs/s on the fastest path.
TARGET_RATE = 2e6

COCOTB, CXX = "cocotb + Verilator", "C++ + Verilator"


def bench_config(vectors: int) -> SimConfig:
    return SimConfig(
        f"bench-{config_name(POINT)}",
        "sim.tb_systolic",
        {"dut": POINT},
        options={"throughput_vectors": vectors},
    )


@dataclass(frozen=True)
class Prepared:
    """The benchmark design exported once and built for both paths (before any timing)."""

    config: SimConfig
    sidecar: Path
    build_dir: Path
    driver: Path


def prepare(opts: runner.RunOptions, vectors: int = COCOTB_VECTORS) -> Prepared:
    """Export ``hw.bench_point()``, build the cocotb model and the C++ driver (cached)."""
    cfg = bench_config(vectors)
    cdir = Path(opts.build_root).resolve() / cfg.name
    exported = runner.export_and_build(cfg, opts, cdir / opts.simulator, waves=False)
    sc = Sidecar.load(exported.sidecar)
    exe = cxxdriver.build_driver(sc, ["w_in", "a_in"], "o", cdir / "cxx", jobs=opts.jobs)
    return Prepared(cfg, exported.sidecar, cdir / opts.simulator, exe)


def run_cocotb(opts: runner.RunOptions, prep: Prepared) -> Result:
    """One timed cocotb run of ``test_throughput`` on the prepared model."""
    cfg = prep.config
    run_dir = prep.build_dir.parent / "run-bench"
    results = runner.run_tests(
        cfg, prep.sidecar, prep.build_dir, run_dir, opts, False, ["test_throughput"]
    )
    return Result(**{**results[0].__dict__, "test": COCOTB})


def run_cxx(prep: Prepared, vectors: int, seed: int = 7) -> Result:
    """One timed C++ driver run of ``vectors`` vectors, compared with ``golden.accumulate``."""
    cfg, cdir = prep.config, prep.driver.parent.parent
    sc = Sidecar.load(prep.sidecar)
    weight, act = golden.get(POINT.weight_format), golden.get(POINT.act_format)
    rng = np.random.default_rng(seed)
    w_in, a_in, o = sc.stream("w_in"), sc.stream("a_in"), sc.stream("o")
    t0 = time.perf_counter()
    phases, tiles = [], []
    for start in range(0, vectors, TILE):
        n = min(TILE, vectors - start)
        W = rng.integers(0, 1 << weight.bits, (ROWS, COLS))
        a = rng.integers(min(act.ints), max(act.ints) + 1, (n, ROWS))
        psum = rng.integers(-(2**16), 2**16, (n, COLS))
        phases.append((0, w_in.payload.pack_words(ROWS, **{"": W})))
        phases.append((1, a_in.payload.pack_words(n, a=a, psum=psum)))
        tiles.append((W, a, psum))
    in_path, out_path = cdir / "vectors.bin", cdir / "outputs.bin"
    cxxdriver.write_input(in_path, phases)
    t_pack = time.perf_counter() - t0
    r = subprocess.run(
        [str(prep.driver), str(in_path), str(out_path), "1000", "1000", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        return Result(CXX, cfg.name, False, message=f"C++ driver: {r.stderr.strip()}")
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    t1 = time.perf_counter()
    got = o.payload.unpack_words(cxxdriver.read_output(out_path, o.payload.n_words))
    expected = np.concatenate([p + golden.accumulate(a, W.T, weight, act) for W, a, p in tiles])
    t_check = time.perf_counter() - t1
    seconds = t_pack + stats["seconds"] + t_check
    ok = got.shape == expected.shape and bool(np.array_equal(got, expected))
    msg = ""
    if not ok:
        if got.shape != expected.shape:
            msg = f"C++ run: expected {expected.shape[0]} output vectors, got {got.shape[0]}"
        else:
            row, col = (int(x) for x in np.argwhere(got != expected)[0])
            msg = (
                f"C++ run [{cfg.name}] mismatch at output vector {row}, column {col}: "
                f"expected {int(expected[row, col])}, got {int(got[row, col])}"
            )
    return Result(
        CXX,
        cfg.name,
        ok,
        cycles=int(stats["cycles"]),
        macs=int(len(expected) * ROWS * COLS) if ok else 0,
        seconds=round(seconds, 4),
        message=msg,
        extra={
            "sim_seconds": stats["seconds"],
            "pack_seconds": round(t_pack, 3),
            "check_seconds": round(t_check, 3),
            "sim_only_macs_per_s": round(len(expected) * ROWS * COLS / stats["seconds"], 1),
            "cycles_per_s": round(stats["cycles"] / stats["seconds"], 1),
        },
    )


@dataclass(frozen=True)
class Spread:
    """The verified-MAC rates of one path over the repeats (a failed run counts as 0)."""

    path: str
    rates: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def line(self) -> str:
        lo, hi = (min(self.rates), max(self.rates)) if self.rates else (0.0, 0.0)
        return (
            f"{self.path}: median {_m(self.median)}, min {_m(lo)}, max {_m(hi)} "
            f"verified MACs/s over {len(self.rates)} runs"
        )


def _m(rate: float) -> str:
    return f"{rate / 1e6:.2f} M"


def spreads(results: Sequence[Result]) -> list[Spread]:
    """One :class:`Spread` per path (``Result.test``), in order of first appearance."""
    paths = list(dict.fromkeys(r.test for r in results))
    return [
        Spread(p, tuple(r.macs_per_s if r.passed else 0.0 for r in results if r.test == p))
        for p in paths
    ]


def verdict(per_path: Sequence[Spread], min_rate: float = TARGET_RATE) -> tuple[bool, str]:
    """Whether the fastest path's median reaches ``min_rate``, and the line saying so."""
    if not per_path:
        return False, "target: no measurement"
    best = max(per_path, key=lambda s: s.median)
    met = best.median >= min_rate
    return met, (
        f"target >= {_m(min_rate)} verified MACs/s (median of the fastest path): "
        f"{best.path} {_m(best.median)}: {'met' if met else 'MISSED'}"
    )


def exit_status(all_verified: bool, target_met: bool, check: bool) -> int:
    """1 if a run failed verification, or with ``--check`` if the target was missed; else 0."""
    return 0 if all_verified and (target_met or not check) else 1


def main(args) -> int:
    opts = runner.RunOptions(
        simulator="verilator", build_root=Path(args.build_dir), jobs=args.jobs, opt_fast="-Os"
    )
    cxx_vectors = args.vectors or CXX_VECTORS
    repeats = args.repeat or REPEATS
    min_rate = args.min_rate or TARGET_RATE
    prepare_env("verilator", Path(args.build_dir))
    prep = prepare(opts)
    results: list[Result] = []
    for i in range(repeats):  # alternate, so that machine load hits both paths alike
        results += [run_cocotb(opts, prep), run_cxx(prep, cxx_vectors, seed=7 + i)]
    per_path = spreads(results)
    met, target = verdict(per_path, min_rate)
    policy = (
        "--check: a missed target exits 1"
        if args.check
        else "report only; --check makes a missed target exit 1"
    )
    header = (
        f"Verified MACs/s, {config_name(POINT)} (acc {POINT.acc_width} bits), full-rate streams "
        f"({COCOTB_VECTORS:,} vectors via cocotb, {cxx_vectors:,} via the C++ driver), "
        f"{repeats} alternating repeats"
    )
    lines = [s.line() for s in per_path] + [f"{target} ({policy})"]
    out = Path(args.build_dir) / "bench"
    files = summary_files(results, out, header + "".join(f"\n\n- {x}" for x in lines))
    files[out / "bench.json"] = json.dumps([r.to_json() for r in results], indent=1)
    atomic_write_set(files)
    print(format_table(results))
    cxx = [r for r in results if r.test == CXX and r.extra]
    if cxx:
        c = sorted(cxx, key=lambda r: r.macs_per_s)[len(cxx) // 2].extra
        print(
            f"C++ (median run): simulation loop {c['sim_seconds']:.2f} s "
            f"({c['cycles_per_s'] / 1e6:.2f} M cycles/s, "
            f"{c['sim_only_macs_per_s'] / 1e6:.1f} M MACs/s), "
            f"packing {c['pack_seconds']:.2f} s, "
            f"golden + compare {c['check_seconds']:.2f} s"
        )
    for x in lines:
        print(x)
    print(f"written: {out / 'summary.md'}")
    return exit_status(all(r.passed for r in results), met, args.check)
