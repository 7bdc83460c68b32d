"""``python -m sim``: RTL verification of the exported Verilog (what ``nox -s sim`` runs).

    python -m sim [--only PATTERN] [--simulator verilator|icarus] [--jobs N] [--quick]
    python -m sim bench [--repeat N] [--vectors N] [--check [--min-rate R]]

The default run exports every configuration with ``hw``, builds it with Verilator (cached
under ``build/sim/<config>/``), runs the cocotb testbenches against ``golden``, proves the
MAC formally for every format and style, prints a summary table, writes it to
``build/sim/summary.{md,json}`` (a partial run -- ``--only``, ``--quick``, another simulator
or data directory -- to ``summary-<selection>.{md,json}`` beside it) and exits 1 on any
failure. Bad input (an option, a data directory, a pattern that selects nothing) is one line
``error: ...; ...`` and exit status 2 before anything is built or written.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from pathlib import Path

import tools
from tools import Job

tools.cli.require("amaranth", "sim", "python -m sim")

from tqdm import tqdm  # noqa: E402

from . import bench, configs, formal, runner, toolchain, wholelayer  # noqa: E402
from .build import prepare_env  # noqa: E402
from .errors import SimError  # noqa: E402
from .report import format_table, write_summary  # noqa: E402
from .selection import Selection, data_dir, select  # noqa: E402

#: Options of a verification run, and of ``python -m sim bench`` only (dest: flag).
RUN_ONLY = {
    "only": "--only",
    "quick": "--quick",
    "simulator": "--simulator",
    "data_dir": "--data-dir",
    "waves": "--waves",
    "formal": "--formal",
    "list": "--list",
}
BENCH_ONLY = {
    "vectors": "--vectors",
    "repeat": "--repeat",
    "check": "--check",
    "min_rate": "--min-rate",
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _pattern(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty pattern would select every task")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = tools.cli.ArgumentParser(
        prog="python -m sim",
        description=__doc__.split("\n")[0],
        epilog="A full run writes build/sim/summary.{md,json}; a partial run (--only, --quick, "
        "--simulator icarus, --data-dir) writes summary-<selection>.{md,json} beside it. Bad "
        "input is one line 'error: ...' and exit status 2; a failed test exits 1.",
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "bench"])
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        type=_pattern,
        metavar="PATTERN",
        help="run only tasks whose name matches (glob, or substring); repeatable; "
        "a pattern that matches no task is an error",
    )
    parser.add_argument("--simulator", choices=toolchain.SIMULATORS, help="default: verilator")
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        default=min(2, os.cpu_count() or 1),
        help="configurations built and run in parallel (default min(2, cores))",
    )
    parser.add_argument("--quick", action="store_true", help="fewer random vectors")
    parser.add_argument("--build-dir", default=str(runner.BUILD_ROOT))
    parser.add_argument(
        "--data-dir",
        help="real layer tiles (*.npz written by quant); must exist and hold one; "
        "default: sim/data",
    )
    parser.add_argument("--waves", action="store_true", help="always build with FST tracing")
    parser.add_argument(
        "--formal", action="store_true", help="run the formal proofs with --simulator icarus too"
    )
    parser.add_argument("--list", action="store_true", help="list the task names and exit")
    tools.cli.add_executor_args(parser, "sim")
    b = parser.add_argument_group("bench (python -m sim bench only)")
    b.add_argument(
        "--vectors",
        type=_positive_int,
        help=f"C++ driver vectors per repeat (default {bench.CXX_VECTORS:,})",
    )
    b.add_argument(
        "--repeat",
        type=_positive_int,
        help=f"alternating repeats of the two paths; the median counts (default {bench.REPEATS})",
    )
    b.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the target is missed (without it the bench only reports)",
    )
    b.add_argument(
        "--min-rate",
        type=_positive_float,
        help="--check's target in verified MACs/s on the fastest path "
        f"(default {bench.TARGET_RATE:.0e}, the stated 2 M/s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show a traceback on any error")
    return parser


def _check_options(args) -> None:
    """Refuse an option of the other command (it would be ignored silently)."""
    wrong = BENCH_ONLY if args.command == "run" else RUN_ONLY
    for dest, flag in wrong.items():
        if getattr(args, dest) not in (None, False, []):
            other = "python -m sim bench" if args.command == "run" else "a verification run"
            raise SimError(f"{flag} is an option of {other}; leave it out of this command")
    if args.command == "bench" and (args.executor != "local" or args.address or args.runtime_env):
        raise SimError(
            "--executor, --address and --runtime-env are options of a verification run; "
            "leave them out of python -m sim bench"
        )
    tools.cli.check_executor_args(args)
    build_dir = Path(args.build_dir)
    if build_dir.exists() and not build_dir.is_dir():
        raise SimError(f"--build-dir {build_dir} is a file; give a directory (default build/sim)")


def _jobs(args, selection: Selection, opts: runner.RunOptions) -> list[Job]:
    """The selected tasks; every check (data, patterns, sizes) runs here, nothing is built."""
    sim_configs = configs.default_configs(selection.data_dir)
    jobs = [runner.config_job(c, opts) for c in sim_configs]
    if selection.simulator == "verilator" or args.formal:
        jobs += formal.proof_jobs(str(opts.build_root))
    jobs.append(
        Job(
            wholelayer.TASK,
            functools.partial(
                wholelayer.run, opts.build_root, opts.jobs, allow_export=not selection.quick
            ),
            wholelayer.MACS_HINT,
        )
    )
    points = configs.verified_points(sim_configs)
    jobs.append(Job("acc-width", functools.partial(formal.check_acc_widths, points), 0))
    layers = [c.name for c in sim_configs if c.testbench == "sim.tb_layer"] + [wholelayer.TASK]
    chosen = set(select([j.name for j in jobs], selection, layers))
    return [j for j in jobs if j.name in chosen]


def cmd_run(args) -> int:
    selection = Selection(
        only=tuple(args.only),
        quick=args.quick,
        simulator=args.simulator or "verilator",
        formal=args.formal,
        data_dir=data_dir(args.data_dir),
    )
    opts = runner.RunOptions(
        simulator=selection.simulator,
        # Absolute: a Ray worker may not start in this process's directory.
        build_root=Path(args.build_dir).resolve(),
        jobs=args.jobs,
        quick=args.quick,
        always_waves=args.waves,
    )
    jobs = _jobs(args, selection, opts)
    if args.list:
        for j in jobs:
            print(j.name)
        return 0
    toolchain.prepare(selection.simulator)
    data = configs.layer_data_files(selection.data_dir)
    logging.getLogger("sim").info(
        "%d tasks on %s (%s); layer data files: %s; summary: %s.md",
        len(jobs),
        f"{args.jobs} workers" if args.executor == "local" else f"Ray ({args.address or 'local'})",
        selection.simulator,
        ", ".join(p.name for p in data) or "none (random layer only)",
        selection.summary_stem(),
    )
    t0 = time.perf_counter()

    def on_done(job: Job, results) -> None:
        for r in results:
            if not r.passed:
                tqdm.write(f"FAIL {r.message.splitlines()[0] if r.message else r.test}")

    prepare_env(selection.simulator, Path(args.build_dir))
    results = runner.run_all(jobs, args.jobs, on_done, True, args.executor, args.address)
    wall = time.perf_counter() - t0
    failed = [r for r in results if not r.passed]
    kind = "full run" if selection.full else f"partial run ({selection.describe()})"
    header = (
        f"`python -m sim` — {selection.simulator}, {args.jobs} jobs, {kind}, "
        f"{len(results)} results from {len(jobs)} tasks in {wall:.0f} s: "
        f"{'ALL PASS' if not failed else f'{len(failed)} FAILED'}"
    )
    notes = [
        f"{r.config}: {r.extra['layer']}"
        for r in results
        if isinstance(r.extra, dict) and "layer" in r.extra
    ]
    md, js = write_summary(
        results,
        Path(args.build_dir),
        header + "".join(f"\n\n- layer {n}" for n in notes),
        stem=selection.summary_stem(),
    )
    print()
    print(format_table(results))
    print()
    for n in notes:
        print(f"layer {n}")
    print(header.replace("`", ""))
    print(f"summary: {md} and {js}")
    return 1 if failed else 0


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    _check_options(args)
    if args.command == "bench":
        return bench.main(args)
    return cmd_run(args)


def main(argv: list[str] | None = None) -> int:
    return tools.cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
