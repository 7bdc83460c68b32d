"""``python -m sim``: RTL verification of the exported Verilog (what ``nox -s sim`` runs).

    python -m sim [--only PATTERN] [--simulator verilator|icarus] [--jobs N] [--quick]
    python -m sim bench [--vectors N]

The default run exports every configuration with ``hw``, builds it with Verilator (cached
under ``build/sim/<config>/``), runs the cocotb testbenches against ``golden``, proves the
MAC formally for every format and style, prints a summary table, writes it to
``build/sim/summary.{md,json}`` and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import logging
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

import golden
from tools import Job, ToolError

from . import bench, configs, formal, runner, toolchain
from .build import prepare_env
from .report import format_table, write_summary


def _matches(name: str, patterns: list[str]) -> bool:
    if not patterns:
        return True
    return any(
        fnmatch.fnmatch(name, p) if any(ch in p for ch in "*?[") else p in name for p in patterns
    )


def _jobs(args, opts: runner.RunOptions) -> list[Job]:
    sim_configs = configs.default_configs(Path(args.data_dir))
    jobs = [runner.config_job(c, opts) for c in sim_configs]
    if args.simulator == "verilator" or args.formal:
        jobs += formal.proof_jobs(str(opts.build_root))
    points = configs.verified_points(sim_configs)
    jobs.append(Job("acc-width", functools.partial(formal.check_acc_widths, points), 0))
    return [j for j in jobs if _matches(j.name, args.only)]


def cmd_run(args) -> int:
    opts = runner.RunOptions(
        simulator=args.simulator,
        build_root=Path(args.build_dir),
        jobs=args.jobs,
        quick=args.quick,
        always_waves=args.waves,
    )
    try:
        toolchain.prepare(args.simulator)
        jobs = _jobs(args, opts)
    except (ToolError, golden.FormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for j in jobs:
            print(j.name)
        return 0
    if not jobs:
        print(f"error: --only {args.only} matches no configuration; try --list", file=sys.stderr)
        return 2
    data = configs.layer_data_files(Path(args.data_dir))
    logging.getLogger("sim").info(
        "%d tasks on %d workers (%s); layer data files: %s",
        len(jobs),
        args.jobs,
        args.simulator,
        ", ".join(p.name for p in data) or "none (random layer only)",
    )
    t0 = time.perf_counter()

    def on_done(job: Job, results) -> None:
        for r in results:
            if not r.passed:
                tqdm.write(f"FAIL {r.message.splitlines()[0] if r.message else r.test}")

    prepare_env(args.simulator, Path(args.build_dir))
    results = runner.run_all(jobs, args.jobs, on_done)
    wall = time.perf_counter() - t0
    failed = [r for r in results if not r.passed]
    header = (
        f"`python -m sim` — {args.simulator}, {args.jobs} jobs, "
        f"{'quick' if args.quick else 'full'} run, {len(results)} results from {len(jobs)} "
        f"tasks in {wall:.0f} s: {'ALL PASS' if not failed else f'{len(failed)} FAILED'}"
    )
    notes = [
        f"{r.config}: {r.extra['layer']}"
        for r in results
        if isinstance(r.extra, dict) and "layer" in r.extra
    ]
    md, js = write_summary(
        results, Path(args.build_dir), header + "".join(f"\n\n- layer {n}" for n in notes)
    )
    print()
    print(format_table(results))
    print()
    for n in notes:
        print(f"layer {n}")
    print(header.replace("`", ""))
    print(f"summary: {md} and {js}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "bench"])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only tasks whose name matches (glob, or substring); repeatable",
    )
    parser.add_argument("--simulator", default="verilator", choices=toolchain.SIMULATORS)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="fewer random vectors")
    parser.add_argument("--build-dir", default=str(runner.BUILD_ROOT))
    parser.add_argument(
        "--data-dir",
        default=str(configs.DATA_DIR),
        help="real layer tiles (*.npz written by quant); default: sim/data",
    )
    parser.add_argument("--waves", action="store_true", help="always build with FST tracing")
    parser.add_argument(
        "--formal", action="store_true", help="run the formal proofs with --simulator icarus too"
    )
    parser.add_argument("--list", action="store_true", help="list the task names and exit")
    parser.add_argument("--vectors", type=int, default=None, help="bench: activation vectors")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if args.command == "bench":
        return bench.main(args)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
