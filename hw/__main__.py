"""``python -m hw verilog {mul,mac,dot,systolic,requant,tile} --weight FORMAT ... -o FILE.v``.

Every argument is checked before anything is built or written: a bad format, size, width,
style, module name or output path is one line ``error: ...; ...`` and exit status 2
(``--debug`` shows the traceback). Large arrays print a line per stage with an estimate.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import tools
from golden import FORMATS

from .designs import DESIGNS, build_design
from .export import export_verilog
from .lean import ARCHS, DEFAULT_ARCH, LEAN_STYLES
from .names import check_module_name
from .params import HwError
from .styles import STYLES

log = logging.getLogger("hw")

#: Seconds per processing element to elaborate and convert a systolic array (measured: a
#: 16x16 array takes ~10 s on one loaded core of this project's 2-core machines).
SECONDS_PER_PE = 0.05
#: Arrays with more PEs than this get stage-by-stage progress lines.
BIG_ARRAY_PES = 64


def _parser() -> argparse.ArgumentParser:
    parser = tools.cli.ArgumentParser(prog="python -m hw", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verilog", help="export a design as Verilog + JSON sidecar")
    v.add_argument("design", choices=DESIGNS)
    v.add_argument(
        "--weight", default="dint4", help=f"weight format ({', '.join(FORMATS)}, dint4_<s>)"
    )
    v.add_argument("--act", default="int8", help="activation format (two's complement)")
    width = v.add_mutually_exclusive_group()
    width.add_argument("--acc-width", type=int, help="accumulator width in bits")
    width.add_argument("--k-max", type=int, help="largest K; width = golden.acc_width_for")
    v.add_argument(
        "--lanes",
        type=int,
        help="lanes of dot (default 8), requant (default 1); weights per PE of a lean array",
    )
    v.add_argument("--rows", type=int, help="array rows = K inputs per pass (default 4; tile: 8)")
    v.add_argument("--cols", type=int, help="array columns = N outputs (default 4; tile: 8)")
    v.add_argument(
        "--depth",
        type=int,
        help="tile only: tokens per pass = accumulator memory entries (default 512)",
    )
    v.add_argument(
        "--style",
        choices=sorted(set(STYLES) | set(LEAN_STYLES)),
        help="multiplier style (default: the smaller; shared: lean arrays only)",
    )
    v.add_argument(
        "--arch",
        choices=list(ARCHS),
        help=f"systolic array architecture (default {DEFAULT_ARCH}; classic: the old one)",
    )
    v.add_argument(
        "--pipeline",
        action="store_true",
        help="pipeline register (dot, requant; lean arrays: before the psum adder)",
    )
    v.add_argument("--name", required=True, help="top module name")
    v.add_argument("-o", "--output", required=True, help="output FILE.v (sidecar FILE.json)")
    v.add_argument("--debug", action="store_true", help="show a traceback on any error")
    return parser


def _check_output(path: Path) -> None:
    if path.suffix != ".v":
        raise HwError(f"output {str(path)!r} must end in .v (the sidecar gets .json); rename it")
    for p in (path, path.with_suffix(".json")):
        tools.check_writable(p)


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Everything cheap first: name, output paths; then the design's parameters (which build
    # nothing until elaboration).
    check_module_name(args.name)
    out = Path(args.output)
    _check_output(out)
    default_size = 8 if args.design == "tile" else 4
    pes = (
        (args.rows or default_size) * (args.cols or default_size)
        if args.design in ("systolic", "tile")
        else 1
    )
    big = pes > BIG_ARRAY_PES
    t0 = time.perf_counter()
    component = build_design(
        args.design,
        weight_format=args.weight,
        act_format=args.act,
        acc_width=args.acc_width,
        k_max=args.k_max,
        lanes=args.lanes,
        rows=args.rows,
        cols=args.cols,
        style=args.style,
        pipeline=args.pipeline,
        arch=args.arch,
        depth=args.depth,
    )
    if big:
        seconds = pes * SECONDS_PER_PE
        estimate = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        log.info(
            "%s %dx%d: %d processing elements; elaboration and Verilog conversion take about "
            "%s on a loaded core (%.2f s per PE)",
            args.design,
            component.rows,
            component.cols,
            pes,
            estimate,
            SECONDS_PER_PE,
        )
        log.info("[1/2] elaborating and converting to Verilog (Amaranth + Yosys) ...")
    meta = export_verilog(component, args.name, out)
    if big:
        log.info(
            "[2/2] wrote the Verilog and its sidecar (%.0f s in all)", time.perf_counter() - t0
        )
    log.info(
        "wrote %s (+ .json): %s, acc_width=%s, latency=%s",
        out,
        args.name,
        meta["acc_width"],
        meta["latency"],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return tools.cli.run(_main, argv, errors=(ValueError, tools.ToolError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
