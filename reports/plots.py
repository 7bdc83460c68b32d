"""Plots of the report (matplotlib, Agg backend), written as PNG under the report directory.

- ``efficiency.png``: area-efficiency ratio (MACs/cycle/area against the strongest INT8 of
  the same unit) of every weight format and style, per unit (level, size, array
  architecture, options: :func:`reports.tables.unit_label`), one panel per target;
- ``breakdown.png``: where the area goes (the categories of
  :data:`reports.hierarchy.CATEGORIES`: logic by module, flip-flops by role, clock gating)
  per format at MAC, dot-product and systolic level on OSU018, classic and lean arrays;
- ``scaling.png``: area, MACs per (area x delay) and synthesis time versus systolic array
  size, one line per architecture and variant (marker: architecture; line: style);
- ``pareto.png``: accuracy (perplexity) versus area, when the quantization results
  ``build/quant/results.json`` exist (rows with ``weight_format`` and ``ppl``); skipped with a
  log message otherwise; with energy rows, a second panel against the energy per MAC;
- ``energy.png``: energy per MAC, with energy rows (:mod:`reports.energyplots`).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import tools  # noqa: E402

from . import energyplots  # noqa: E402
from .flows import TARGETS  # noqa: E402
from .hierarchy import CATEGORIES  # noqa: E402
from .tables import PAPER_MAC_RATIO, is_plain  # noqa: E402

log = logging.getLogger(__name__)

_COLORS = {
    "int8": "#444444",
    "int8_plain": "#aaaaaa",
    "int4": "#1f77b4",
    "dint4_0.25": "#98df8a",
    "dint4": "#2ca02c",
    "dint4_0.75": "#17becf",
    "fp4_e2m1": "#d62728",
}


#: Marker per array architecture (scaling plot); line style and hatch per multiplier style.
_MARKERS = {"classic": "o", "lean": "s", "lean-col": "^"}
_LINES = {"mul": "-", "shiftadd": "--", "shared": ":"}
_HATCHES = {"shiftadd": "//", "shared": "xx"}
#: The units of the breakdown plot, when measured.
_BREAKDOWN_UNITS = (
    "mac",
    "dot8",
    "sys4x4 classic",
    "sys8x8 classic",
    "sys8x8 lean",
    "sys8x8 lean-col",
    "sys16x16 classic",
    "sys16x16 lean",
)


def _save(fig, path: Path) -> Path:
    try:
        return tools.atomic_write(
            path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def _units(rows) -> list[str]:
    """The units of ``rows`` in report order (rows come sorted by group)."""
    return list(dict.fromkeys(r["unit"] for r in rows))


def _color(variant: str) -> str:
    fmt = "int8_plain" if variant == "int8/mul" else variant.split("/")[0]
    return _COLORS.get(fmt, "#999999")


def _style(variant: str) -> str:
    return variant.split("/")[1].split("+")[0] if "/" in variant else variant


def _hatch(variant: str) -> str | None:
    return _HATCHES.get(_style(variant))


def plot_efficiency(rows: list[dict], path: Path) -> Path | None:
    """Grouped bars: efficiency ratio to the strongest INT8 of the same unit, per variant."""
    targets = [t for t in TARGETS if any(r["target"] == t for r in rows)]
    if not targets:
        return None
    n_units = max(len(_units([r for r in rows if r["target"] == t])) for t in targets)
    fig, axes = plt.subplots(
        len(targets), 1, figsize=(max(13, 0.9 * n_units + 4), 3.6 * len(targets)), squeeze=False
    )
    for ax, target in zip(axes[:, 0], targets, strict=True):
        trows = [r for r in rows if r["target"] == target]
        units = _units(trows)
        variants = list(dict.fromkeys(r["variant"] for r in trows))
        width = 0.8 / max(1, len(variants))
        for k, v in enumerate(variants):
            pts = [
                (units.index(r["unit"]) + (k - (len(variants) - 1) / 2) * width, r["eff_ratio"])
                for r in trows
                if r["variant"] == v and not math.isnan(r.get("eff_ratio", math.nan))
            ]
            hatch = _HATCHES.get(_style(v))
            ax.bar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                width,
                label=v,
                color=_color(v),
                hatch=hatch,
                edgecolor="black" if hatch else "white",
                linewidth=0.3,
            )
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(PAPER_MAC_RATIO, color="gray", linewidth=0.8, linestyle="--")
        ax.text(
            len(units) - 0.5,
            PAPER_MAC_RATIO + 0.02,
            f"paper MAC {PAPER_MAC_RATIO}x",
            fontsize=7,
            ha="right",
            color="gray",
        )
        ax.set_xticks(range(len(units)), units, fontsize=7, rotation=30, ha="right")
        ax.set_ylabel("MACs/cycle/area\nvs best INT8")
        ax.set_title(f"{target}: area efficiency against the strongest INT8 of the same unit")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def plot_breakdown(rows: list[dict], path: Path, target: str = "osu018") -> Path | None:
    """Stacked bars of the area by category, per variant, for a few units (classic and lean
    arrays)."""
    trows = [r for r in rows if r["target"] == target and r["breakdown"]]
    if not trows:
        log.info("no %s rows: breakdown plot skipped", target)
        return None
    units = _units(trows)
    wanted = [u for u in _BREAKDOWN_UNITS if u in units] or units[:3]
    ncols = min(4, len(wanted))
    nrows = math.ceil(len(wanted) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.4 * nrows), squeeze=False)
    colors = plt.get_cmap("tab20")  # one color per category (15)
    used: dict[str, object] = {}
    for ax in axes.flat[len(wanted) :]:
        ax.set_visible(False)
    for ax, unit in zip(axes.flat, wanted, strict=False):
        lrows = [r for r in trows if r["unit"] == unit]
        bottom = [0.0] * len(lrows)
        for ci, cat in enumerate(CATEGORIES):
            vals = [float(r["breakdown"].get(cat, 0.0)) for r in lrows]
            if not any(vals):
                continue
            used[cat] = ax.bar(range(len(lrows)), vals, bottom=bottom, label=cat, color=colors(ci))
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(
            range(len(lrows)),
            [r["variant"].replace("/", "\n") for r in lrows],
            fontsize=6,
            rotation=90,
        )
        ax.set_title(f"{unit} ({target})")
        ax.set_ylabel(f"area ({lrows[0]['area_unit']})")
    order = [c for c in CATEGORIES if c in used]
    fig.legend([used[c] for c in order], order, fontsize=8, loc="upper right")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    return _save(fig, path)


def plot_scaling(rows: list[dict], path: Path) -> Path | None:
    """Area, MACs/(area x delay) and synthesis time of systolic arrays versus size: one line
    per architecture and variant (no options, equal width)."""
    srows = [r for r in rows if r["level"] == "systolic" and is_plain(r)]
    srows = [r for r in srows if r["acc_rule"] == "equal"]
    if not srows:
        log.info("no systolic rows: scaling plot skipped")
        return None
    # only targets with at least two array sizes have a trend to show
    targets = [t for t in TARGETS if len({r["size"] for r in srows if r["target"] == t}) >= 2]
    if not targets:
        log.info("fewer than two systolic sizes per target: scaling plot skipped")
        return None
    fig, axes = plt.subplots(3, len(targets), figsize=(5.5 * len(targets), 9.5), squeeze=False)
    for j, target in enumerate(targets):
        trows = [r for r in srows if r["target"] == target]
        for arch, v in sorted(dict.fromkeys((r["arch"], r["variant"]) for r in trows)):
            pts = sorted(
                (r["size"], r["area"], r["eff_area_delay"], r["seconds"])
                for r in trows
                if (r["arch"], r["variant"]) == (arch, v)
            )
            kw = {
                "color": _color(v),
                "linestyle": _LINES.get(_style(v), "-"),
                "marker": _MARKERS.get(arch, "x"),
                "markersize": 4,
                "label": f"{v} {arch}",
            }
            xs = [p[0] ** 2 for p in pts]
            for i in range(3):
                ys = [p[i + 1] for p in pts]
                if not all(math.isnan(y) for y in ys):
                    axes[i][j].plot(xs, ys, **kw)
        for i in range(3):
            axes[i][j].set_xscale("log", base=2)
            axes[i][j].set_yscale("log")
            axes[i][j].set_xlabel("PEs (rows x cols)")
        if not axes[1][j].get_lines():
            axes[1][j].set_title("(no delay on this target)", fontsize=8)
        axes[0][j].set_ylabel(f"area ({trows[0]['area_unit']})")
        axes[1][j].set_ylabel("MACs / (area x ns)")
        axes[2][j].set_ylabel("synthesis time (s)")
        axes[0][j].set_title(f"{target} (marker: architecture, line: style)")
    axes[0][-1].legend(fontsize=5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def load_quant_results(path: Path) -> list[dict] | None:
    """Rows of the quantization results with a weight format and a perplexity, or None."""
    if not path.is_file():
        log.info("no %s: accuracy-versus-area plot skipped", path)
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        log.info("cannot read %s (%s): accuracy-versus-area plot skipped", path, e)
        return None
    rows = doc.get("rows", doc.get("results")) if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        log.info("%s has no list of rows: accuracy-versus-area plot skipped", path)
        return None
    good = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        fmt = r.get("weight_format") or r.get("weight") or r.get("format")
        ppl = r.get("ppl", r.get("perplexity"))
        method = str(r.get("method", "?"))
        if r.get("mode", "fake") != "fake":
            continue  # integer-mode rows repeat the fake-quant ones (they must agree)
        acts = str(r.get("acts", ""))
        if method.upper() != "FP" and "int8" not in acts:
            continue  # the synthesized units take int8 activations (W4A16 needs another unit)
        if isinstance(fmt, str) and isinstance(ppl, int | float) and math.isfinite(ppl):
            good.append(
                {
                    "weight_format": fmt,
                    "ppl": float(ppl),
                    "method": method,
                    "acts": str(r.get("acts_label", r.get("acts", ""))),
                    "is_fp": method.upper() == "FP",
                }
            )
    if not [g for g in good if not g["is_fp"]]:
        log.info("%s has no rows with weight_format and ppl: plot skipped", path)
        return None
    return good


def plot_pareto(
    rows: list[dict],
    quant_rows: list[dict] | None,
    path: Path,
    target: str = "osu018",
    level_label: str = "sys16x16",
    energy: list[dict] | None = None,
) -> Path | None:
    """Perplexity versus area of the weight format's unit (best architecture and style), with
    the Pareto front; with ``energy`` rows, beside it versus energy per MAC
    (:func:`reports.energyplots.pareto_energy`)."""
    if not quant_rows:
        return None
    # the best architecture and style of each format, without options, at equal width
    plain = [r for r in rows if r["target"] == target and is_plain(r) and r["acc_rule"] == "equal"]
    cand = [r for r in plain if r["level_label"] == level_label]
    if not cand:
        cand = [r for r in plain if r["level_label"] == "mac"]
        level_label = "mac"
    area = {}
    for r in cand:
        f = r["weight_format"]
        area[f] = min(area.get(f, math.inf), r["area"])
    fp = [q["ppl"] for q in quant_rows if q["is_fp"]]
    pts = [
        (area[q["weight_format"]], q["ppl"], q)
        for q in quant_rows
        if not q["is_fp"] and q["weight_format"] in area
    ]
    if not pts:
        log.info("no quantization row matches a synthesized format: Pareto plot skipped")
        return None
    fig, axes = plt.subplots(1, 2 if energy else 1, figsize=(15 if energy else 8, 5))
    ax = axes[0] if energy else axes
    if energy:
        energyplots.pareto_energy(axes[1], quant_rows, energy, color=_color)
    energyplots.draw_pareto(ax, pts, lambda f: _COLORS.get(f, "#999999"), fp)
    ax.set_xlabel(f"area of a {level_label} unit on {target} ({cand[0]['area_unit']})")
    ax.set_ylabel("perplexity (lower is better)")
    ax.set_yscale("log")
    ax.set_title("accuracy versus area (weight formats x quantization methods)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def write_plots(
    rows: list[dict],
    out: Path,
    quant_results: Path | None = None,
    energy: list[dict] | None = None,
) -> list[Path]:
    """All plots into ``out`` (with ``energy`` rows, ``energy.png`` and the energy panel of
    ``pareto.png``); returns the files written."""
    out = Path(out)
    written = [
        plot_efficiency(rows, out / "efficiency.png"),
        plot_breakdown(rows, out / "breakdown.png"),
        plot_scaling(rows, out / "scaling.png"),
    ]
    if energy:
        written.append(energyplots.plot_energy(energy, out / "energy.png", _color, _hatch))
    if quant_results is not None:
        quant = load_quant_results(quant_results)
        written.append(plot_pareto(rows, quant, out / "pareto.png", energy=energy))
    return [p for p in written if p is not None]
