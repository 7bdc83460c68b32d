"""``python -m reports.energy``: energy per MAC of the report's units on OSU018 from real
operands (issue 12), without the area runs; ``python -m reports`` runs the same jobs.

Every unit of :func:`reports.energyruns.energy_points` (the multiplier alone, the MAC,
dot-8 and dot-16 in six variants; the classic and the clock-gated lean 4x4 and 8x8 arrays in
the INT8 baselines' and dINT4's) is mapped onto
the OSU018 Liberty module by module, simulated at gate level with iverilog on SmolLM2-135M
layer-0 operands (and synthetic ones, except on the arrays), zero-delay and with the cells'
delays, every cycle's outputs checked against golden, and its power computed from the
Liberty (:mod:`reports.energyruns`). Writes ``<out>/energy.md``, ``energy.json`` and
``energy.png``; results are cached in ``<out>/energy-cache``. Needs Debian ``iverilog``
(and ``opensta`` for the MAC's cross-check); ``.ci/run`` installs both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tools

tools.cli.require("amaranth", "reports", "python -m reports.energy")
tools.cli.require("matplotlib", "reports", "python -m reports.energy")

from . import energyplots, energyruns, energytables, operands  # noqa: E402


def add_args(p) -> None:
    """The energy options (shared with ``python -m reports``)."""
    p.add_argument(
        "--energy-levels",
        nargs="+",
        default=list(energyruns.SIZES),
        choices=list(energyruns.SIZES),
        help="levels with energy runs (default: all: mul, mac, dot 8/16, classic and lean "
        "systolic 4x4/8x8)",
    )
    p.add_argument(
        "--operands",
        nargs="+",
        default=list(operands.SOURCES),
        choices=operands.SOURCES,
        help="operand sources (default both; the arrays run on smollm2 only)",
    )
    s = energyruns.Settings()
    p.add_argument(
        "--energy-cycles",
        type=int,
        default=s.cycles,
        help=f"products per MAC and dot-product run; cycles per array run ({s.cycles})",
    )
    p.add_argument("--k", type=int, default=s.k, help=f"products per dot product ({s.k})")
    p.add_argument(
        "--tokens", type=int, default=s.tokens, help=f"tokens per array weight tile ({s.tokens})"
    )
    p.add_argument("--clock-ns", type=float, default=s.clock_ns, help="clock period (10 ns)")
    p.add_argument(
        "--wire-cap-pf",
        type=float,
        default=s.wire_cap_pf_per_fanout,
        help="wire-load estimate, pF per driven pin (default 0: the OSU018 Liberty has no "
        "wire-load model; the OpenSTA cross-check runs only without it)",
    )


def jobs_from(args) -> list[energyruns.EnergyJob]:
    settings = energyruns.Settings(
        args.energy_cycles, args.k, args.tokens, args.clock_ns, 7, args.wire_cap_pf
    )
    return energyruns.default_jobs(
        args.energy_levels, None, tuple(args.operands), settings, getattr(args, "liberty", None)
    )


def write(rows: list[dict], out: Path, plots: bool = True) -> str:
    """``energy.md``/``energy.json`` (and ``energy.png``) in ``out``; returns the Markdown."""
    text = "# Energy per MAC\n\n" + energytables.render_energy(rows) + "\n"
    doc = energytables.energy_doc([], rows)
    tools.atomic_write_set(
        {out / "energy.md": text, out / "energy.json": json.dumps(doc, indent=1, default=str)}
    )
    if plots:
        energyplots.plot_energy(rows, out / "energy.png")
    return text


def main(argv: list[str] | None = None) -> int:
    p = tools.cli.ArgumentParser(
        prog="python -m reports.energy", description=__doc__.split("\n")[0]
    )
    add_args(p)
    p.add_argument("--liberty", help="Liberty file (default: OSU018 from qflow-tech-osu018)")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    tools.cli.add_executor_args(p, "reports")
    p.add_argument("--out", default="build/reports", help="output directory")
    p.add_argument("--no-plots", action="store_true")

    def body(argv_) -> int:
        args = p.parse_args(argv_)
        if args.jobs < 1:
            raise tools.cli.CliError("--jobs must be >= 1")
        tools.cli.check_executor_args(args)
        out = Path(args.out)
        jobs = jobs_from(args)
        tools.check_writable(out / "energy.md")
        rows = energyruns.run_energy(jobs, out, args.jobs, args.executor, args.address)
        print(write(rows, out, not args.no_plots))
        return 1 if any("error" in r for r in rows) else 0

    return tools.cli.run(body, argv)


if __name__ == "__main__":
    sys.exit(main())
