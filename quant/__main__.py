"""``python -m quant``: run | table | slac | export. Thin CLI over quant.experiments.

Every input is checked before the model is loaded: the flags by argparse (``quant.cli``),
then the recipe, the texts, the model's architecture (from its header) and the output
paths. Bad input prints one line, ``error: <what was wrong>; <what to do>``, and exits with
status 2 (``tools.cli``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import time
from pathlib import Path

import golden
import tools

# Before anything that imports torch: without the quant extra, one line naming it.
tools.cli.require("torch", "quant", "python -m quant")
tools.cli.require("matplotlib", "quant", "python -m quant")

import torch  # noqa: E402

from .calibrate import slac_markdown  # noqa: E402
from .checkpoint import find_checkpoint  # noqa: E402
from .cli import build_parser  # noqa: E402
from .errors import QuantError  # noqa: E402
from .experiments import (  # noqa: E402
    Session,
    check_recipe,
    run_one,
    run_slac,
    run_table,
)
from .layerexport import check_export, run_decoder_layer_export, run_export  # noqa: E402
from .outputs import check_output_dir, check_output_file, json_text  # noqa: E402
from .pipeline import QuantConfig  # noqa: E402
from .session import DataSettings, needs_calibration  # noqa: E402
from .table import TableSettings, acts_label, table_configs  # noqa: E402
from .text import TextError, check_source  # noqa: E402

#: Exceptions that are bad input (one line, status 2); anything else is a bug (traceback).
ERRORS = (QuantError, golden.FormatError, tools.ToolError, OSError)


def _config(a: argparse.Namespace) -> QuantConfig:
    return QuantConfig(
        method=a.method,
        weight_format=a.weights,
        acts=a.acts,
        group_size=a.group_size,
        alpha=a.alpha,
        search_tokens=a.search_tokens,
        gptq_damp=a.gptq_damp,
        token_groups=tuple(getattr(a, "per_token", ())),
        outlier_factor=getattr(a, "outlier_factor", None),
        weight_clip=getattr(a, "weight_clip", "absmax"),
        act_order=getattr(a, "act_order", False),
        rotate_groups=tuple(getattr(a, "rotate", ())),
    )


def _data(a: argparse.Namespace) -> DataSettings:
    return DataSettings(a.calib_text, a.eval_text, a.eval_seqlen, a.eval_windows, a.calib_tokens)


def _check_texts(**flags: str) -> None:
    """Each text flag names a novel or a non-empty text file (the message names the flag)."""
    for flag, source in flags.items():
        try:
            check_source(source)
        except TextError as e:
            raise tools.cli.CliError(f"--{flag.replace('_', '-')}: {e}") from e


def _run(a: argparse.Namespace, command: str) -> None:
    config, data = _config(a), _data(a)
    _check_texts(calib_text=a.calib_text, eval_text=a.eval_text)
    ckpt = find_checkpoint(a.model)
    check_recipe(config, ckpt, a.mode)
    if a.json:
        check_output_file(a.json)
    calib = (a.calib_seqlen,) if needs_calibration(config) else ()
    session = Session.open(ckpt, data, calib)
    row, _ = run_one(session, config, a.calib_seqlen, mode=a.mode)
    base, _ = run_one(session, QuantConfig("fp", acts="fp"), 0, label="FP")
    row["gap_to_fp"] = row["ppl"] - base["ppl"]
    print(
        f"{row['method']} {row['weight_format']} {acts_label(row['acts'], row['act_mode'])} "
        f"calib {a.calib_seqlen}: ppl {row['ppl']:.3f} (FP {base['ppl']:.3f}, gap "
        f"{row['gap_to_fp']:+.3f}) on {row['eval_tokens']} tokens, {row['mode']} mode"
    )
    if "group_sizes" in row:
        print("weight groups (largest divisor of K not above --group-size):", row["group_sizes"])
    if "bypassed_rows" in row:
        print(
            f"outlier bypass: {row['bypassed_rows']} of {row['bypass_seen_rows']} token rows "
            f"({row['bypassed_per_window_per_linear']:.2f} per window and linear) ran as W4A16"
        )
    if a.json:
        tools.atomic_write(a.json, json_text({"rows": [base, row]}))


def _table(a: argparse.Namespace, command: str) -> None:
    settings = TableSettings(
        data=_data(a),
        formats=a.formats,
        short_seqlen=a.short_seqlen,
        integer_check_windows=a.integer_check_windows,
    )
    tools.cli.check_executor_args(a)
    _check_texts(calib_text=a.calib_text, eval_text=a.eval_text)
    ckpt = find_checkpoint(a.model)
    for _, config, _ in table_configs(settings):  # e.g. a width the rotation cannot take
        check_recipe(config, ckpt)
    check_output_dir(a.out)

    def show(r: dict) -> None:
        print(
            f"{r['method']:>28} {r['weight_format']:>9} {r['acts_label']:>6} "
            f"ppl {r['ppl']:8.3f}  gap to FP {r['gap_to_fp']:+8.3f}",
            flush=True,
        )

    run_table(
        settings,
        a.out,
        ckpt,
        command,
        on_row=show,
        workers=a.jobs,
        executor=a.executor,
        address=a.address,
        use_cache=not a.no_cache,
    )
    print(f"wrote {a.out / 'results.md'}, results.json, results.png")


def _slac(a: argparse.Namespace, command: str) -> None:
    _check_texts(calib_text=a.calib_text)
    ckpt = find_checkpoint(a.model)
    check_output_dir(a.out)
    rows = run_slac(ckpt, a.out, a.seqlens, a.tokens, a.calib_text)
    print(slac_markdown(rows, ckpt.name))
    print(f"wrote {a.out / 'slac.md'}, slac.json, slac.png")


def _export(a: argparse.Namespace, command: str) -> None:
    t0 = time.perf_counter()
    config, data = _config(a), _data(a)
    _check_texts(calib_text=a.calib_text, eval_text=a.eval_text)
    ckpt = find_checkpoint(a.model)
    if a.all_layers and a.decoder_layer is None:
        raise QuantError("--all-layers belongs to a --decoder-layer export; add --decoder-layer")
    out = a.out
    if out is None:
        out = Path("build/layers")
        if a.decoder_layer is not None:
            out = out / f"{ckpt.name}-layer{a.decoder_layer}"
    check_export(
        config,
        ckpt,
        a.layer,
        out,
        a.tile,
        decoder_layer=a.decoder_layer,
        tokens=a.tokens,
        window_tokens=a.eval_seqlen,
        sample=a.sample,
    )
    session = Session.open(ckpt, data, (a.calib_seqlen,))
    if a.decoder_layer is not None:
        paths, manifest = run_decoder_layer_export(
            session,
            config,
            a.calib_seqlen,
            a.decoder_layer,
            out,
            a.tokens,
            a.outputs,
            a.sample,
            a.all_layers,
            command,
        )
        for entry in manifest["layers"]:
            c = entry["integer_check"]
            print(
                f"{out / entry['file']}: T={entry['T']} K={entry['K']} N={entry['N']}, integer "
                f"check {c['result']} (max error {c['max_error_lsb']} LSB, {c['clipped']} clipped)"
            )
        sec = manifest["seconds"]
        print(
            f"{paths[-1]}; quantize {sec['quantize']} s, capture and check "
            f"{sec['capture_and_check']} s, {time.perf_counter() - t0:.0f} s in all"
        )
        return
    paths = run_export(session, config, a.calib_seqlen, a.layer, out, a.tokens, a.outputs, a.tile)
    for path in paths:
        print(path)
    if len(paths) == 1:
        print(json.dumps(golden.layerfile.load(paths[0]).meta, indent=1))


COMMANDS = {"run": _run, "table": _table, "slac": _slac, "export": _export}


def _main(argv: list[str]) -> None:
    a = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if a.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    torch.set_num_threads(a.threads)
    COMMANDS[a.cmd](a, "python -m quant " + shlex.join(argv))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input is one line on stderr and status 2 (``--debug``: traceback)."""
    return tools.cli.run(_main, argv, errors=ERRORS)


if __name__ == "__main__":
    raise SystemExit(main())
