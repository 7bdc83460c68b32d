"""``python -m reports [report|baseline|compare] ...``: the synthesis report, its committed
baselines, and the comparison of two reports.

``python -m reports`` (same as ``python -m reports report``) builds the full default report:
every level and size of :func:`hw.report_points` on the targets
:data:`reports.scope.DEFAULT_TARGET_LEVELS` allows, cached under ``build/reports/cache``, into
``build/reports/report.md``, ``report.json`` and PNG plots; with ``osu018`` among the
targets it also runs the gate-level energy per MAC of :mod:`reports.energyruns` (cached in
``build/reports/energy-cache``; ``--no-energy`` skips it). ``python -m reports baseline``
re-synthesizes the small baseline set and rewrites ``reports/baselines.json``.
``python -m reports compare A B`` says whether two reports hold the same results
(:mod:`reports.compare`; exit status 1 if not).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shlex
import sys
import time
from pathlib import Path

import tools

# Without the reports extra, say which extra to install in one line (not a traceback).
tools.cli.require("amaranth", "reports", "python -m reports")
tools.cli.require("matplotlib", "reports", "python -m reports")

import hw  # noqa: E402

from . import (  # noqa: E402
    baselines,
    compare,
    energy,
    energyruns,
    energytables,
    goals,
    paper,
    plots,
    render,
    tables,  # noqa: E402
)
from .errors import ReportError  # noqa: E402
from .flows import TARGETS  # noqa: E402
from .runner import Job, design_jobs, run_all, tool_versions  # noqa: E402
from .scope import DEFAULT_TARGET_LEVELS, KEY_FORMATS, default_targets  # noqa: E402
from .toolchain import file_sha256, find_liberty  # noqa: E402

log = logging.getLogger("reports")


def _default_sizes() -> str:
    return " ".join(
        f"{level}={','.join(map(str, sizes))}"
        for level, sizes in hw.REPORT_SIZES.items()
        if sizes != (1,)
    )


def parse_sizes(values: list[str] | None) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for v in values or []:
        if "=" not in v:
            raise ReportError(f"--sizes takes LEVEL=N[,N...] (e.g. systolic=4,8), got {v!r}")
        level, nums = v.split("=", 1)
        if level not in hw.REPORT_SIZES:
            levels = ", ".join(hw.REPORT_LEVELS)
            raise ReportError(f"unknown level {level!r} in --sizes; choose from {levels}")
        try:
            out[level] = tuple(int(n) for n in nums.split(",") if n)
        except ValueError as e:
            raise ReportError(f"--sizes {v!r}: sizes must be integers") from e
    return out


def build_jobs(args) -> list[Job]:
    points = hw.report_points(
        args.levels, parse_sizes(args.sizes), tuple(args.formats), tuple(args.styles)
    )
    jobs = []
    for point in points:
        if args.all_targets:
            targets = tuple(args.targets)
        else:
            targets = default_targets(point, args.targets)
        jobs += design_jobs(point, targets, seeds=args.seeds, liberty=args.liberty)
    if not jobs:
        raise ReportError("nothing to do: no design runs on the chosen targets (see --all-targets)")
    return jobs


def cmd_report(args) -> int:
    out = Path(args.out)
    jobs = build_jobs(args)
    if "osu018" in args.targets:
        find_liberty(args.liberty)  # a missing --liberty file is an error before any work
    log.info(
        "%d designs, %d synthesis runs in %d jobs on %s (cache: %s)",
        len({j.point.name for j in jobs}),
        sum(len(j.targets) for j in jobs),
        len(jobs),
        f"{args.jobs} processes"
        if args.executor == "local"
        else f"Ray ({args.address or 'local'})",
        out / "cache",
    )
    energy_jobs = []
    if "osu018" in args.targets and not args.no_energy:
        energy_jobs = energy.jobs_from(args)  # bad settings and a missing iverilog: no work
        for tool in ("iverilog", "vvp"):
            tools.find_tool(tool, "apt-get install iverilog (or pass --no-energy)")
    t0 = time.monotonic()
    records = run_all(jobs, out, args.jobs, args.executor, args.address)
    energy_rows = None
    if energy_jobs:
        log.info("%d energy runs (gate-level simulation, cache: %s)", len(energy_jobs), out)
        energy_rows = energyruns.run_energy(
            energy_jobs, out, args.jobs, args.executor, args.address
        )
    meta = {
        "command": args.command_line,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "tools": tool_versions(args.targets),
        "seeds": args.seeds,
        "target_levels": {t: list(DEFAULT_TARGET_LEVELS.get(t, ())) for t in args.targets},
        "key_formats": list(KEY_FORMATS),
        "all_targets": args.all_targets,
    }
    if "osu018" in args.targets:
        lib = find_liberty(args.liberty)
        meta["liberty"] = str(lib)
        meta["liberty_sha256"] = file_sha256(lib)
    md, js = render.write_report(records, meta, out, energy=energy_rows)
    rows = tables.build_rows(records)
    if not args.no_plots:
        for p in plots.write_plots(rows, out, Path(args.quant_results), energy=energy_rows):
            log.info("wrote %s", p)
    log.info("wrote %s and %s in %.0f s", md, js, time.monotonic() - t0)
    if tables.headline(rows):
        print(render.render_headline(rows))
        print()
        print(paper.render_paper(paper.paper_comparison(rows)))
        print()
        print(goals.render_goals(goals.goals(rows)))
        print()
    else:  # the headline compares osu018 and ice40 only
        print(f"no headline rows (it covers osu018 and ice40); the tables are in {md}")
    if energy_rows:
        print(energytables.render_headline(energytables.energy_headline(energy_rows)))
        print()
    ok, verdict = baselines.check_records(records, args.liberty)
    print(verdict)
    if not ok:
        log.warning("the report's areas differ from %s", baselines.BASELINES_PATH)
    failed = [r for r in records if "error" in r]
    failed_energy = [r for r in energy_rows or () if "error" in r]
    if failed or failed_energy:
        log.error(
            "%d synthesis and %d energy runs failed; see the report's failed runs",
            len(failed),
            len(failed_energy),
        )
        return 1
    return 0


def cmd_baseline(args) -> int:
    doc = baselines.regenerate(Path(args.output), liberty=args.liberty)
    for e in doc["entries"]:
        print(f"{e['name']:<28} {e['target']:<8} {e['area']:>10.0f} {e['area_unit']}")
    print(f"wrote {args.output} ({doc['tools']['yosys']})")
    return 0


def cmd_compare(args) -> int:
    c = compare.compare(compare.load_rows(args.a), compare.load_rows(args.b))
    print(compare.render(c, args.a, args.b))
    return 0 if c.same else 1


def main(argv: list[str] | None = None) -> int:
    """The CLI; bad input is one line ``error: ...`` and exit status 2 (``--debug``: traceback)."""
    return tools.cli.run(_main, argv, errors=(ValueError, tools.ToolError, OSError))


def _main(argv: list[str]) -> int:
    # "python -m reports [options]" means the report subcommand; a bare --help shows both.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["report", *argv]
    parser = tools.cli.ArgumentParser(
        prog="python -m reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="synthesize the design matrix and write the report")
    r.add_argument("--levels", nargs="+", default=list(hw.REPORT_LEVELS), choices=hw.REPORT_LEVELS)
    r.add_argument(
        "--sizes",
        nargs="+",
        metavar="LEVEL=N,N",
        help=f"sizes per level, e.g. dot=8 systolic=4,8 (default: {_default_sizes()})",
    )
    r.add_argument(
        "--formats",
        nargs="+",
        default=list(hw.REPORT_FORMATS),
        help="weight formats (int8, the baseline, is always added)",
    )
    r.add_argument("--styles", nargs="+", default=list(hw.STYLES), choices=hw.STYLES)
    r.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    r.add_argument(
        "--all-targets",
        action="store_true",
        help="run every target at every size (default: see DEFAULT_TARGET_LEVELS)",
    )
    r.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    tools.cli.add_executor_args(r, "reports")
    r.add_argument("--seeds", type=int, default=2, help="nextpnr seeds per FPGA design (2)")
    r.add_argument("--liberty", help="Liberty file (default: OSU018 from qflow-tech-osu018)")
    r.add_argument("--out", default="build/reports", help="output directory")
    r.add_argument(
        "--quant-results",
        default="build/quant/results.json",
        help="quantization results for the accuracy-versus-area plot",
    )
    r.add_argument("--no-plots", action="store_true")
    r.add_argument(
        "--no-energy",
        action="store_true",
        help="skip the gate-level energy runs (they need iverilog; on with osu018)",
    )
    energy.add_args(r)
    b = sub.add_parser("baseline", help="re-synthesize the baseline set; rewrite baselines.json")
    b.add_argument("--output", default=str(baselines.BASELINES_PATH))
    b.add_argument("--liberty", help="Liberty file (default: OSU018)")
    c = sub.add_parser(
        "compare",
        help="do two reports hold the same results? (rows by design and target; exit 1 if not)",
    )
    c.add_argument("a", metavar="A", help="a report directory (or its report.json)")
    c.add_argument("b", metavar="B", help="the report to compare it with")
    args = parser.parse_args(argv)
    args.command_line = "python -m reports " + " ".join(shlex.quote(a) for a in argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "report":
        if args.jobs < 1 or args.seeds < 1:
            raise tools.cli.CliError("--jobs and --seeds must be >= 1; give a positive count")
        tools.cli.check_executor_args(args)
        return cmd_report(args)
    if args.command == "compare":
        return cmd_compare(args)
    return cmd_baseline(args)


if __name__ == "__main__":
    sys.exit(main())
