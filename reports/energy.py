"""``python -m reports.energy``: energy per MAC of the MACs on OSU018 from real operands.

The first slice of the power flow (issue 12): each MAC of the report (``hw.DesignPoint``
"mac", equal 25-bit accumulators: INT8 ``mul``, dINT4 ``shiftadd``) is synthesized flat onto
the OSU018 Liberty (:func:`reports.gatesim.map_component`), simulated at gate level with
iverilog on dot products of ``--k`` products (:func:`reports.gatesim.mac_stimulus`; every
cycle's ``acc`` must equal golden), zero-delay (a lower bound) and with the cell models'
delays (glitches), on two operand sources (:func:`reports.gatesim.operands`: ``smollm2`` =
the committed SmolLM2 layer-0 sample, ``synthetic`` = Laplace activations, Gaussian
weights), and its power computed from the Liberty (:func:`reports.power.energy`: internal,
switching at pin capacitances, no wire load, leakage) at ``--clock-ns``, cross-checked with
OpenSTA (:func:`reports.opensta.opensta_power`). One MAC per cycle, so energy per MAC =
energy per cycle. Prints the table and the INT8 / dINT4 ratios and writes
``<out>/energy-mac.{md,json}``. Needs Debian ``iverilog`` and ``opensta``.

Not yet here (issue 12 stays open): dot products and arrays, Booth INT8, the per-module
split, caching, and the energy columns of ``nox -s reports``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tabulate import tabulate
from tqdm import tqdm

import hw
import tools

from . import gatesim, opensta, power
from .toolchain import find_liberty

#: The MACs compared: (weight format, style), INT8 first.
MACS = (("int8", "mul"), ("dint4", "shiftadd"))
SOURCES = ("smollm2", "synthetic")


def measure(
    fmt: str,
    style: str,
    source: str,
    delays: bool,
    n: int,
    k: int,
    clock_ns: float,
    workdir: Path,
    liberty: Path,
    cells_v: Path,
    mapped=None,
) -> dict:
    point = hw.DesignPoint("mac", fmt, style)
    name = f"mac_{fmt}_{style}"
    if mapped is None:
        mapped = gatesim.map_component(point.build(), name, workdir / name, liberty)
    a, w = gatesim.operands(source, n, fmt, np.random.default_rng(7))
    stim, expected = gatesim.mac_stimulus(a, w, k, weight=fmt, acc_width=point.acc_width)
    run = workdir / name / f"{source}-{'glitch' if delays else 'zero'}"
    act = gatesim.simulate(mapped, cells_v, stim, ["acc"], run, delays, clock_ns, expected)
    rep = power.energy(mapped.json, mapped.top, liberty, act.toggles, act.cycles, clock_ns)
    sta_mw = opensta.opensta_power(
        mapped.verilog, mapped.top, liberty, act.toggles, act.cycles, clock_ns, run / "sta"
    )
    split = rep.split()
    return {
        "mac": f"{fmt}/{style}",
        "operands": source,
        "activity": "glitch" if delays else "zero-delay",
        "cells": len(mapped.cells),
        "toggles_per_cycle": round(act.total / act.cycles, 1),
        "energy_pj_per_mac": round(rep.energy_pj_per_cycle, 3),
        "power_mw": round(rep.total_mw, 4),
        "internal": round(split["internal"], 3),
        "switching": round(split["switching"], 3),
        "leakage": round(split["leakage"], 5),
        "opensta_mw": round(sta_mw, 4),
        "opensta_diff": round(rep.total_mw / sta_mw - 1, 4),
    }, mapped


def main(argv: list[str] | None = None) -> int:
    p = tools.cli.ArgumentParser(
        prog="python -m reports.energy", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cycles", type=int, default=2000, help="MAC operations simulated per run")
    p.add_argument("--k", type=int, default=64, help="products per dot product (clear period)")
    p.add_argument("--clock-ns", type=float, default=10.0, help="clock period (default 10 ns)")
    p.add_argument("--out", default="build/reports", help="output directory")

    def body(argv_) -> int:
        args = p.parse_args(argv_)
        if args.cycles < 2 or args.k < 1 or not args.clock_ns > 0:
            raise ValueError("--cycles must be >= 2, --k >= 1 and --clock-ns > 0")
        out = Path(args.out)
        tools.check_writable(out / "energy-mac.md")
        liberty, cells_v = find_liberty(), gatesim.cells_verilog()
        work = (out / "energy-work").resolve()
        rows, mapped = [], {}
        runs = [(f, s, src, d) for f, s in MACS for src in SOURCES for d in (False, True)]
        for f, s, src, d in tqdm(runs, desc="energy", unit="run"):
            row, mapped[f] = measure(
                f,
                s,
                src,
                d,
                args.cycles,
                args.k,
                args.clock_ns,
                work,
                liberty,
                cells_v,
                mapped.get(f),
            )
            rows.append(row)
        ratios = []
        for src in SOURCES:
            for act in ("zero-delay", "glitch"):
                e = {
                    r["mac"]: r["energy_pj_per_mac"]
                    for r in rows
                    if r["operands"] == src and r["activity"] == act
                }
                ratios.append(
                    f"INT8/mul ÷ dINT4/shiftadd, {src}, {act}: "
                    f"{e['int8/mul'] / e['dint4/shiftadd']:.2f}x"
                )
        table = tabulate(rows, headers="keys", tablefmt="github")
        head = (
            f"Energy per MAC on OSU018 at {args.clock_ns:g} ns, {args.cycles} MACs per run, "
            f"dot products of {args.k}; pin capacitances only (the Liberty has no wire-load "
            "model); OpenSTA cross-check: per-arc internal energy (Debian OpenSTA 2.0.17 "
            "sums rise and fall, ~2x)."
        )
        text = head + "\n\n" + table + "\n\n" + "\n".join(f"- {r}" for r in ratios) + "\n"
        tools.atomic_write_set(
            {
                out / "energy-mac.md": text,
                out / "energy-mac.json": json.dumps({"rows": rows, "ratios": ratios}, indent=1),
            }
        )
        print(text)
        return 0 if all(abs(r["opensta_diff"]) <= 0.05 for r in rows) else 1

    return tools.cli.run(body, argv)


if __name__ == "__main__":
    sys.exit(main())
