"""The export experiments of ``python -m quant export``: quantized linears as layer tiles.

- :func:`run_export`: chosen linears (default all) as ``golden.layerfile`` tiles, or one
  linear to an exact path (the committed reference tile);
- :func:`run_decoder_layer_export`: every linear of one decoder layer plus ``manifest.json``,
  each tile shown equal to quant's integer mode (:func:`quant.export.integer_check`);
  optionally a ``TxN`` sample of it.

:func:`check_export` checks the arguments from the model's header, before any model loads.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import golden
import tools

from .checkpoint import Checkpoint
from .errors import QuantError
from .experiments import check_recipe
from .export import (
    capture_int8_inputs,
    capture_int8_inputs_of,
    export_name,
    integer_check,
    integer_mode_run,
    layer_tile,
)
from .models import LINEARS, decoder_layers
from .outputs import check_output_dir, check_output_file, json_text
from .pipeline import QuantConfig, quantized_linears
from .session import Session


def layer_names(checkpoint: Checkpoint) -> list[str]:
    """Names of the quantized linears (``layers.{i}.{name}``), from the header."""
    return [
        f"layers.{i}.{name}"
        for i in range(checkpoint.n_layers or 0)
        for name in LINEARS[checkpoint.arch]
    ]


def decoder_layer_names(arch: str, decoder_layer: int) -> list[str]:
    """The quantized linears of one decoder layer (``layers.{i}.{name}``), in forward order."""
    return [f"layers.{decoder_layer}.{name}" for name in LINEARS[arch]]


def check_export(
    config: QuantConfig,
    checkpoint: Checkpoint,
    layers: list[str] | None,
    out_dir: Path,
    tile_path: Path | None = None,
    decoder_layer: int | None = None,
    tokens: int | None = None,
    window_tokens: int | None = None,
    sample: tuple[int, int] | None = None,
) -> None:
    """Raise :class:`QuantError` if the export cannot be done (before the model is loaded).

    ``decoder_layer`` (every linear of that layer, :func:`run_decoder_layer_export`) excludes
    ``layers`` and ``tile_path``; ``sample`` needs it. ``tokens`` (rows of ``a``) must fit in
    the ``window_tokens`` of the one evaluation window the inputs come from.
    """
    if decoder_layer is not None:
        if layers or tile_path is not None:
            raise QuantError(
                "--decoder-layer exports every linear of one decoder layer; drop --layer "
                "and --tile (or drop --decoder-layer)"
            )
        n = checkpoint.n_layers
        if decoder_layer < 0 or (n and decoder_layer >= n):
            have = f"layers 0..{n - 1}" if n else "no decoder layers in its header"
            raise QuantError(
                f"decoder layer {decoder_layer} does not exist in {checkpoint.name} ({have}); "
                "give one of those"
            )
    elif sample is not None:
        raise QuantError("--sample slices a --decoder-layer export; add --decoder-layer")
    if tokens is not None and window_tokens is not None and tokens > window_tokens:
        raise QuantError(
            f"{tokens} tokens do not fit in one {window_tokens}-token evaluation window (the "
            f"inputs come from window 0); use --tokens <= {window_tokens} or a longer "
            "--eval-seqlen"
        )
    if sample is not None and tokens is not None and sample[0] > tokens:
        raise QuantError(
            f"a sample of {sample[0]} tokens is larger than the export's {tokens} tokens; "
            f"use --sample {tokens}x{sample[1]} or more --tokens"
        )
    check_recipe(config, checkpoint)
    if config.outlier_factor is not None:
        raise QuantError(
            "a layer tile has one static activation scale and no path for rows beyond it; "
            "drop --outlier-factor to export"
        )
    if config.method == "fp" or config.act_mode != "static" or config.group_size:
        raise QuantError(
            "a layer tile needs quantized weights per output channel and int8-static "
            f"activations; got method {config.method!r}, activations {config.act_mode!r}, "
            f"group size {config.group_size}"
        )
    if tile_path is not None and len(layers or ()) != 1:
        raise QuantError("a reference tile is one layer: give exactly one layer")
    known = layer_names(checkpoint)
    unknown = [n for n in layers or () if known and n not in known]
    if unknown:
        raise QuantError(
            f"unknown layers {unknown} in {checkpoint.name}; names look like {known[0]} "
            f"(layers 0..{checkpoint.n_layers - 1})"
        )
    if tile_path is not None:
        check_output_file(tile_path)
    else:
        check_output_dir(out_dir)


def run_export(
    session: Session,
    config: QuantConfig,
    calib_seqlen: int,
    layers: list[str] | None,
    out_dir: Path,
    tokens: int,
    outputs: int | None,
    tile_path: Path | None = None,
) -> list[Path]:
    """Quantize, capture real int8 inputs on evaluation text, write one layer tile per layer.

    Tiles are ``golden.layerfile`` files; all of them are computed first, then written as
    one set with ``tools.atomic_write_set`` (all or none). :func:`check_export` checks the
    arguments from the model's header; call it before opening the session.
    """
    if tokens < 1 or (outputs is not None and outputs < 1):
        raise QuantError(f"tokens and outputs must be >= 1, got {tokens}, {outputs}")
    if tile_path is not None and len(layers or ()) != 1:
        raise QuantError("a reference tile is one layer: give exactly one layer")
    model, _ = session.quantized(config, calib_seqlen, output_ranges=True)
    qs = quantized_linears(model)
    names = layers or list(qs)
    unknown = [n for n in names if n not in qs]
    if unknown:
        raise QuantError(f"unknown layers {unknown}; names look like {next(iter(qs))}")
    windows = session.eval_windows(1)
    files = {}
    for name in names:
        a = capture_int8_inputs(model, qs[name], windows)[:tokens]
        meta = {
            "model": session.info.name,
            "method": config.method,
            "calib_seqlen": calib_seqlen,
            "source": f"{session.data.eval_text} window 0, tokens 0..{a.shape[0] - 1}",
        }
        tile = layer_tile(qs[name], a, meta, slice(0, outputs) if outputs else None)
        path = tile_path or out_dir / f"{export_name(name)}.npz"
        files[path] = lambda f, t=tile: golden.layerfile.save(t, f)
    return tools.atomic_write_set(files)


#: The file beside the tiles of a decoder-layer export that says what they are.
MANIFEST = "manifest.json"


def run_decoder_layer_export(
    session: Session,
    config: QuantConfig,
    calib_seqlen: int,
    decoder_layer: int,
    out_dir: Path,
    tokens: int,
    outputs: int | None = None,
    sample: tuple[int, int] | None = None,
    all_layers: bool = False,
    command: str = "",
    progress: bool = True,
) -> tuple[list[Path], dict]:
    """Export every linear of decoder layer ``decoder_layer`` as layer tiles, each checked
    equal to quant's integer mode; returns the paths written and the manifest.

    Writes ``<out_dir>/<stem>.npz`` per linear (``layers_0_self_attn_q_proj.npz``, ...) and
    ``<out_dir>/manifest.json`` as one set (``tools.atomic_write_set``: all or none). The
    int8 inputs are the first ``tokens`` of evaluation window 0.

    Only layers ``0..decoder_layer`` are quantized (``all_layers`` quantizes the whole model
    as a table run does; same tiles, slower): a layer's calibration inputs, AQAS sample,
    folds and weights, and its inputs on the window, depend only on the embedding and the
    layers before it. Each window runs only up to that layer. Every tile passes
    :func:`quant.export.integer_check` against the model run in integer mode (``a`` is what
    integer mode fed the layer, and equal to the fake-mode capture), or
    :class:`QuantError` is raised before anything is written.

    ``sample = (T, N)`` writes each tile's first ``T`` tokens x all K x first ``N`` outputs
    (``LayerTile.slice``) instead, after checking the whole tile; the manifest says so.
    """
    info = session.info
    if not 0 <= decoder_layer < info.n_layers:
        raise QuantError(
            f"decoder layer {decoder_layer} does not exist in {info.name} (layers 0.."
            f"{info.n_layers - 1}); give one of those"
        )
    window = session.data.eval_seqlen
    if not 1 <= tokens <= window or (outputs is not None and outputs < 1):
        raise QuantError(f"need 1 <= tokens <= {window} and outputs >= 1, got {tokens}, {outputs}")
    if sample is not None and not (1 <= sample[0] <= tokens and sample[1] >= 1):
        raise QuantError(f"a sample needs 1..{tokens} tokens and >= 1 outputs, got {sample}")
    t0 = time.perf_counter()
    n_layers = None if all_layers else decoder_layer + 1
    model, report = session.quantized(
        config, calib_seqlen, progress, output_ranges=True, n_layers=n_layers
    )
    t1 = time.perf_counter()
    qs = quantized_linears(model)
    names = decoder_layer_names(info.arch, decoder_layer)
    mine = {name: qs[name] for name in names}
    layer = decoder_layers(model, info)[decoder_layer]
    windows = session.eval_windows(1)
    fake = capture_int8_inputs_of(model, mine, windows, stop_after=layer)
    ints = integer_mode_run(model, mine, windows, stop_after=layer)
    final_t = sample[0] if sample else tokens
    source = f"{session.data.eval_text} window 0 ({window} tokens), tokens 0..{final_t - 1}"
    meta = {"model": info.name, "method": config.method, "calib_seqlen": calib_seqlen}
    files, entries, full = {}, [], {}
    for name in names:
        q, (a_int, acc) = mine[name], ints[name]
        if not np.array_equal(fake[name], a_int):
            raise QuantError(
                f"{name}: the int8 inputs of fake mode and of integer mode differ on the window"
            )
        tile = layer_tile(
            q, a_int[:tokens], {**meta, "source": source}, slice(0, outputs) if outputs else None
        )
        check = integer_check(tile, q, a_int, acc)
        full[name] = {"T": tile.shape[0], "N": tile.shape[2], "integer_check": check}
        if sample:
            tile = tile.slice(*sample)
            check = integer_check(tile, q, a_int, acc)
        tile = replace(tile, meta={**tile.meta, "integer_check": check}).validate(name)
        path = out_dir / f"{export_name(name)}.npz"
        files[path] = lambda f, t=tile: golden.layerfile.save(t, f)
        t_, k_, n_ = tile.shape
        entries.append(
            {
                "name": name,
                "file": path.name,
                "T": t_,
                "K": k_,
                "N": n_,
                "outputs": tile.meta["outputs"],
                "integer_check": check,
            }
        )
    t2 = time.perf_counter()
    d = session.data
    manifest = {
        "what": f"decoder layer {decoder_layer} of {info.name}: {len(names)} quantized linears as "
        "golden.layerfile tiles (read them with golden.layerfile.load)"
        + (f", a {sample[0]}x{sample[1]} sample" if sample else ""),
        "model": info.name,
        "decoder_layer": decoder_layer,
        "recipe": {
            "method": config.method,
            "weight_format": config.weight_format,
            "acts": config.acts,
            "calib_text": d.calib_text,
            "calib_tokens": d.calib_tokens,
            "calib_seqlen": calib_seqlen,
            "calib_sequences": max(1, d.calib_tokens // calib_seqlen),
            "search_tokens": config.search_tokens,
            "alphas": list(config.alphas),
            "gptq_damp": config.gptq_damp,
            "gptq_block": config.gptq_block,
            "aqas_alpha": {
                k: v for k, v in report.alphas.items() if k.startswith(f"{decoder_layer}.")
            },
        },
        "quantized_layers": f"0..{(n_layers or info.n_layers) - 1} of {info.n_layers}",
        "window": {"text": d.eval_text, "index": 0, "seqlen": window, "tokens": [0, final_t]},
        "layers": entries,
        "integer_check": "pass on every linear: a is the int8 input quant's integer mode fed "
        "golden.accumulate (and equals the fake-mode capture); golden.accumulate(a, w_codes) "
        "equals integer mode's accumulators; requantized with the layer's own M, sh they "
        "equal expected() (golden.linear_int8) exactly; unclipped outputs within "
        "max_error_lsb output steps of integer mode's float output",
        "sample": None,
        "command": command,
        "threads": torch.get_num_threads(),
        "seconds": {"quantize": round(t1 - t0, 1), "capture_and_check": round(t2 - t1, 1)},
    }
    if sample:
        manifest["sample"] = {
            "tokens": sample[0],
            "outputs": sample[1],
            "of": f"the same export without --sample: {tokens} tokens x "
            + ("all" if outputs is None else f"the first {outputs}")
            + " outputs of every linear, each checked whole (full_integer_check)",
            "full_integer_check": full,
        }
    files[out_dir / MANIFEST] = json_text(manifest)
    return tools.atomic_write_set(files), manifest
