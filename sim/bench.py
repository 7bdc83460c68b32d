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
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np

import golden
import hw
from tools import atomic_write

from . import cxxdriver, runner
from .build import prepare_env
from .configs import SimConfig, config_name
from .export import export_config
from .report import Result, format_table, write_summary
from .sidecar import Sidecar

POINT = hw.bench_point()
ROWS, COLS = POINT.rows, POINT.columns
TILE = 4096  # vectors per weight load in the C++ run
COCOTB_VECTORS = 20000
CXX_VECTORS = 2_000_000


def bench_config(vectors: int) -> SimConfig:
    return SimConfig(
        f"bench-{config_name(POINT)}",
        "sim.tb_systolic",
        {"dut": POINT},
        options={"throughput_vectors": vectors},
    )


def run_cocotb(opts: runner.RunOptions, vectors: int) -> Result:
    cfg = bench_config(vectors)
    cdir = Path(opts.build_root).resolve() / cfg.name
    exported = runner.export_and_build(cfg, opts, cdir / opts.simulator, waves=False)
    results = runner.run_tests(
        cfg,
        exported.sidecar,
        cdir / opts.simulator,
        cdir / "run-bench",
        opts,
        False,
        ["test_throughput"],
    )
    r = results[0]
    return Result(**{**r.__dict__, "test": "cocotb + Verilator"})


def run_cxx(opts: runner.RunOptions, vectors: int, seed: int = 7) -> Result:
    cfg = bench_config(0)
    root = Path(opts.build_root).resolve()
    cdir = root / cfg.name
    export_config(cfg, cdir / "src")
    sc = Sidecar.load(cdir / "src" / f"{cfg.top}.json")
    exe = cxxdriver.build_driver(sc, ["w_in", "a_in"], "o", cdir / "cxx", jobs=opts.jobs)
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
    in_path, out_path = cdir / "cxx" / "vectors.bin", cdir / "cxx" / "outputs.bin"
    cxxdriver.write_input(in_path, phases)
    t_pack = time.perf_counter() - t0
    r = subprocess.run(
        [str(exe), str(in_path), str(out_path), "1000", "1000", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        return Result("C++ + Verilator", cfg.name, False, message=f"C++ driver: {r.stderr.strip()}")
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
        "C++ + Verilator",
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


def main(args) -> int:
    opts = runner.RunOptions(
        simulator="verilator", build_root=Path(args.build_dir), jobs=args.jobs, opt_fast="-Os"
    )
    prepare_env("verilator", Path(args.build_dir))
    cxx_vectors = args.vectors or CXX_VECTORS
    results = [run_cocotb(opts, COCOTB_VECTORS), run_cxx(opts, cxx_vectors)]
    out = Path(args.build_dir) / "bench"
    header = (
        f"Verified MACs/s, {config_name(POINT)} (acc {POINT.acc_width} bits), full-rate streams "
        f"({COCOTB_VECTORS:,} vectors via cocotb, {cxx_vectors:,} via the C++ driver)"
    )
    write_summary(results, out, header)
    print(format_table(results))
    c = results[1].extra
    if c:
        print(
            f"C++: simulation loop {c['sim_seconds']:.2f} s "
            f"({c['cycles_per_s'] / 1e6:.2f} M cycles/s, "
            f"{c['sim_only_macs_per_s'] / 1e6:.1f} M MACs/s), "
            f"packing {c['pack_seconds']:.2f} s, "
            f"golden + compare {c['check_seconds']:.2f} s"
        )
    atomic_write(out / "bench.json", json.dumps([r.to_json() for r in results], indent=1))
    print(f"written: {out / 'summary.md'}")
    return 0 if all(r.passed for r in results) else 1
