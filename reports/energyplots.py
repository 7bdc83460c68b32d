"""Plots of the energy per MAC (matplotlib, Agg backend; rows of :mod:`reports.energyruns`).

- ``energy.png`` (:func:`plot_energy`): energy per MAC per unit (x groups) and variant
  (bars), one panel per activity model, one row of panels per operand source (SmolLM2
  first);
- the energy panel of ``pareto.png`` (:func:`pareto_energy`): perplexity versus the energy
  per MAC of the weight format's MAC unit (SmolLM2 operands, glitches).

:mod:`reports.plots` imports this module (so this one cannot import it back) and passes its
colours and hatches of the variants.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import tools  # noqa: E402

from .energytables import (  # noqa: E402
    ACTIVITIES,
    ENERGY_TARGET,
    MAIN_ACTIVITY,
    MAIN_OPERANDS,
    OPERANDS,
    measured,
    row_order,
    unit_order,
)

#: The unit whose energy stands for a weight format in the Pareto panel.
PARETO_UNIT = "mac"
#: Above this max/min energy spread a panel's axis is logarithmic.
LOG_SPREAD = 20.0

Look = Callable[[str], str | None]


def _ordered(values, order) -> list:
    return sorted(dict.fromkeys(values), key=lambda v: (order.index(v) if v in order else 99, v))


def _default_colors(variants: list[str]) -> Look:
    cmap = plt.get_cmap("tab10")
    return lambda v: cmap(variants.index(v) % 10) if v in variants else "#999999"


def plot_energy(
    rows: list[dict], path: Path, color: Look | None = None, hatch: Look | None = None
) -> Path | None:
    """Grouped bars of pJ per MAC (``color``/``hatch``: of a variant; default a colour
    cycle, no hatch); None (nothing written) without measured rows."""
    ok = sorted(measured(rows), key=row_order)
    if not ok:
        return None
    operands = _ordered((r["operands"] for r in ok), OPERANDS)
    activities = _ordered((r["activity"] for r in ok), ACTIVITIES)
    units = list(dict.fromkeys(r["unit"] for r in sorted(ok, key=unit_order)))
    variants = list(dict.fromkeys(r["variant"] for r in ok))
    color = color or _default_colors(variants)
    hatch = hatch or (lambda v: None)
    fig, axes = plt.subplots(
        len(operands),
        len(activities),
        figsize=(max(6.0, 0.9 * len(units) + 3) * len(activities), 3.8 * len(operands)),
        squeeze=False,
    )
    width = 0.8 / len(variants)
    clock = "/".join(f"{c:g}" for c in dict.fromkeys(r["clock_ns"] for r in ok))
    for i, src in enumerate(operands):
        for j, act in enumerate(activities):
            ax = axes[i][j]
            panel = [r for r in ok if (r["operands"], r["activity"]) == (src, act)]
            ax.set_title(f"{src} operands, {act} ({ENERGY_TARGET}, {clock} ns)", fontsize=9)
            if not panel:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center")
                ax.set_axis_off()
                continue
            for k, v in enumerate(variants):
                pts = [
                    (units.index(r["unit"]) + (k - (len(variants) - 1) / 2) * width, r)
                    for r in panel
                    if r["variant"] == v
                ]
                if not pts:
                    continue
                h = hatch(v)
                ax.bar(
                    [x for x, _ in pts],
                    [r["energy_pj_per_mac"] for _, r in pts],
                    width,
                    label=v,
                    color=color(v),
                    hatch=h,
                    edgecolor="black" if h else "white",
                    linewidth=0.3,
                )
            energies = [r["energy_pj_per_mac"] for r in panel if r["energy_pj_per_mac"] > 0]
            if energies and max(energies) / min(energies) > LOG_SPREAD:
                ax.set_yscale("log")
            ax.set_xticks(range(len(units)), units, fontsize=7, rotation=30, ha="right")
            ax.set_ylabel("energy per MAC (pJ)")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    try:
        return tools.atomic_write(
            path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def format_energy(energy_rows: list[dict], unit: str = PARETO_UNIT) -> dict[str, float]:
    """Weight format -> the lowest energy per MAC of its ``unit`` variants (SmolLM2 operands,
    glitches)."""
    out: dict[str, float] = {}
    for r in measured(energy_rows):
        if (r["unit"], r["operands"], r["activity"]) == (unit, MAIN_OPERANDS, MAIN_ACTIVITY):
            f = r["weight_format"]
            out[f] = min(out.get(f, math.inf), r["energy_pj_per_mac"])
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, perplexity) points no other point beats on both, by increasing cost."""
    front, best = [], math.inf
    for x, p in sorted(points):
        if p < best:
            front.append((x, p))
            best = p
    return front


def draw_pareto(ax, pts: list[tuple[float, float, dict]], color: Look, fp: list[float]) -> None:
    """The quantization points ``(cost, perplexity, row)`` coloured by weight format and
    labelled, their Pareto front, and the FP model's perplexity (``fp[0]``) if given."""
    for x, p, q in pts:
        ax.scatter(x, p, color=color(q["weight_format"]), s=20)
        ax.annotate(
            f"{q['weight_format']} {q['method']} {q['acts']}",
            (x, p),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    front = pareto_front([(x, p) for x, p, _ in pts])
    ax.plot(
        [f[0] for f in front],
        [f[1] for f in front],
        color="black",
        linewidth=0.8,
        drawstyle="steps-post",
        marker="s",
        markerfacecolor="none",
        markersize=9,
        label="Pareto front",
    )
    if fp:
        ax.axhline(fp[0], color="gray", linestyle="--", linewidth=0.8, label="FP model")


def pareto_energy(
    ax, quant_results: list[dict] | None, energy_rows: list[dict], color: Look | None = None
) -> bool:
    """Perplexity (rows of :func:`reports.plots.load_quant_results`) versus the energy per MAC
    of the format's MAC (:func:`format_energy`) on ``ax``, with the Pareto front; whether any
    point matched (if none, ``ax`` says so)."""
    energy = format_energy(energy_rows)
    quant = quant_results or []
    pts = [
        (energy[q["weight_format"]], q["ppl"], q)
        for q in quant
        if not q["is_fp"] and q["weight_format"] in energy
    ]
    if not pts:
        ax.text(0.5, 0.5, "no energy row matches a quantized format", ha="center", va="center")
        ax.set_axis_off()
        return False
    color = color or (lambda v: "#444444")
    draw_pareto(ax, pts, color, [q["ppl"] for q in quant if q["is_fp"]])
    ax.set_xlabel(
        f"energy per MAC of the {PARETO_UNIT} on {ENERGY_TARGET} "
        f"(pJ, {MAIN_OPERANDS} operands, {MAIN_ACTIVITY})"
    )
    ax.set_ylabel("perplexity (lower is better)")
    ax.set_yscale("log")
    ax.set_title("accuracy versus energy per MAC")
    ax.legend(fontsize=7)
    return True
