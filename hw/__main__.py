"""``python -m hw verilog {mac,dot,systolic,requant} --weight FORMAT ... --name TOP -o FILE.v``."""

from __future__ import annotations

import argparse
import logging

from golden import FORMATS

from .designs import DESIGNS, build_design
from .export import export_verilog
from .styles import STYLES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw", description=__doc__)
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
    v.add_argument("--lanes", type=int, help="lanes of dot (default 8) or requant (default 1)")
    v.add_argument("--rows", type=int, help="systolic rows = K of a tile (default 4)")
    v.add_argument("--cols", type=int, help="systolic columns = N outputs (default 4)")
    v.add_argument("--style", choices=STYLES, help="multiplier style (default: the smaller)")
    v.add_argument("--pipeline", action="store_true", help="pipeline register (dot, requant)")
    v.add_argument("--name", required=True, help="top module name")
    v.add_argument("-o", "--output", required=True, help="output FILE.v (sidecar FILE.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
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
        )
        meta = export_verilog(component, args.name, args.output)
    except ValueError as e:
        parser.error(str(e))
    logging.getLogger("hw").info(
        "wrote %s (+ .json): %s, acc_width=%s, latency=%s",
        args.output,
        args.name,
        meta["acc_width"],
        meta["latency"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
