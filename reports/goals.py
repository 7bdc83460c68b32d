"""The issue-11 goals of the lean systolic arrays, checked on the measured rows, and the
breakdown of the 8 x 8 arrays that says where their area goes.

Goals (on :data:`GOAL_TARGET`, at :data:`GOAL_SIZE` x :data:`GOAL_SIZE`), for each lean
architecture of :data:`GOAL_ARCHS` with its best dINT4 style (the smaller of
:data:`reports.tables.LEAN_STYLES`):

- at least :data:`GOAL_RATIO` x smaller than the best INT8 array of the same architecture
  (``int8/mul``, ``int8/mul+booth``, ``int8/shared``);
- area at most :data:`GOAL_AREA`;
- critical path not longer than the classic dINT4 array's (its best style).

The option points (weights per PE, pipeline, activation register every n PEs) are listed
with the same figures. Every number comes from the rows; only the goals are constants.
"""

from __future__ import annotations

import math

import hw
from hw.registry import LEAN_OPTIONS

from .hierarchy import CATEGORIES, MULTIPLIER_CATEGORIES
from .markdown import fmt, md_table, pct, times
from .tables import (
    HEADLINE_STYLES,
    LEAN_STYLES,
    baseline_row,
    best,
    multiplier_area,
    ratio,
)

GOAL_TARGET = "osu018"
GOAL_SIZE = 8
#: The goals: dINT4 / best INT8 area ratio (at least), area (at most, um^2).
GOAL_RATIO = 2.0
GOAL_AREA = 600_000.0
#: The lean architectures the goals are checked for.
GOAL_ARCHS = ("lean", "lean-col")
#: The level label of the goals' arrays.
_LABEL = f"sys{GOAL_SIZE}x{GOAL_SIZE}"
_SIZE = f"{GOAL_SIZE}x{GOAL_SIZE}"


def _units(rows, arch: str, **opts) -> tuple[dict | None, dict | None]:
    """(best dINT4, its INT8 baseline) of the 8x8 array ``arch`` with ``opts``."""
    styles = HEADLINE_STYLES if arch == "classic" else LEAN_STYLES
    r = best(rows, GOAL_TARGET, _LABEL, styles, arch=arch, **opts)
    return r, (baseline_row(rows, r) if r is not None else None)


def _check(value, goal, ok) -> dict:
    measured = value is not None and not (isinstance(value, float) and math.isnan(value))
    return {"value": value, "goal": goal, "pass": bool(ok) if measured else None}


def _arch_goals(rows, arch: str, classic: dict | None) -> dict | None:
    r, base = _units(rows, arch)
    if r is None:
        return None
    d0 = classic["delay_ns"] if classic else None
    delay_ok = r["delay_ns"] is not None and d0 is not None and r["delay_ns"] <= d0
    return {
        "arch": arch,
        "unit": r["unit"],
        "variant": r["variant"],
        "baseline": r["baseline"],
        "baseline_area": base["area"] if base else math.nan,
        "area": r["area"],
        "delay_ns": r["delay_ns"],
        "classic_variant": classic["variant"] if classic else None,
        "ratio": _check(r["area_ratio"], GOAL_RATIO, r["area_ratio"] >= GOAL_RATIO),
        "area_goal": _check(r["area"], GOAL_AREA, r["area"] <= GOAL_AREA),
        "delay": _check(r["delay_ns"] if d0 is not None else None, d0, delay_ok),
        "where": _where(r, base),
    }


def _where(r: dict, base: dict | None) -> dict:
    """Where a dINT4 array's area goes: its categories (largest first), its multipliers'
    share, and the ratio free multipliers would give against ``base``."""
    bd = r["breakdown"]
    cats = sorted(((c, float(bd.get(c, 0))) for c in CATEGORIES if bd.get(c)), key=lambda t: -t[1])
    rest = r["area"] - multiplier_area(bd)
    return {
        "categories": cats,
        "multipliers": multiplier_area(bd),
        "int8_multipliers": multiplier_area(base["breakdown"]) if base else math.nan,
        "free_multiplier_ratio": ratio(base["area"], rest) if base and bd else math.nan,
    }


def _option_rows(rows) -> list[dict]:
    out = []
    for opts in ({}, *LEAN_OPTIONS):
        r, base = _units(rows, "lean", **opts)
        if r is None:
            continue
        out.append(
            {
                "unit": r["unit"],
                "variant": r["variant"],
                "area": r["area"],
                "delay_ns": r["delay_ns"],
                "area_ratio": r["area_ratio"],
                "baseline": r["baseline"],
                "baseline_area": base["area"] if base else math.nan,
                "eff_ad_ratio": r["eff_ad_ratio"],
            }
        )
    return out


def goals(rows: list[dict]) -> dict:
    """The issue-11 goals of every lean architecture, the option points and the 8x8
    breakdown (dINT4 best and INT8 baseline of each architecture)."""
    classic, _ = _units(rows, "classic")
    checks = [g for a in GOAL_ARCHS if (g := _arch_goals(rows, a, classic)) is not None]
    return {
        "target": GOAL_TARGET,
        "size": GOAL_SIZE,
        "goal_ratio": GOAL_RATIO,
        "goal_area": GOAL_AREA,
        "classic": (
            {"variant": classic["variant"], "area": classic["area"]}
            | {"delay_ns": classic["delay_ns"], "area_ratio": classic["area_ratio"]}
            if classic
            else None
        ),
        "archs": checks,
        "options": _option_rows(rows),
        "breakdown": breakdown_8x8(rows),
    }


def breakdown_8x8(rows: list[dict]) -> list[dict]:
    """The 8x8 arrays of every architecture: best dINT4 and its INT8 baseline, with their
    breakdown (um^2 by category)."""
    out = []
    for arch in hw.ARCHS:
        r, base = _units(rows, arch)
        for role, x in (("dINT4 best", r), ("INT8 baseline", base)):
            if x is not None:
                out.append(
                    {
                        "unit": x["unit"],
                        "role": role,
                        "variant": x["variant"],
                        "area": x["area"],
                        "breakdown": x["breakdown"],
                    }
                )
    return out


# ---- prose ------------------------------------------------------------------------------


def _verdict(check: dict) -> str:
    return {True: "**PASS**", False: "**MISS**", None: "not measured"}[check["pass"]]


def render_goals(g: dict) -> str:
    """The issue-11 goals section: one line per goal, the option table, and where the area
    went when a goal is missed."""
    lines = []
    if not g["archs"]:
        return f"(no lean {_LABEL} arrays on {g['target']} in this run)"
    for a in g["archs"]:
        what = "" if a["arch"] == "lean" else " with column accumulators"
        lines += [
            f"- dINT4 {_SIZE} systolic{what} ({a['arch']}, best style `{a['variant']}`) is "
            f"{times(a['ratio']['value'])} smaller than the best INT8 {_SIZE} of the same "
            f"architecture (`{a['baseline']}`, {fmt(a['baseline_area'])} um^2) (target >= "
            f"{fmt(g['goal_ratio'], 1)}x): {_verdict(a['ratio'])}",
            f"- its area {fmt(a['area'])} um^2 (target <= {fmt(g['goal_area'])}): "
            f"{_verdict(a['area_goal'])}",
            f"- its critical path {fmt(a['delay_ns'])} ns vs the classic dINT4 {_SIZE}'s "
            f"(`{a['classic_variant']}`) {fmt(a['delay']['goal'])} ns (target: not worse): "
            f"{_verdict(a['delay'])}",
        ]
    lines += ["", render_options(g["options"])]
    missed = [
        a for a in g["archs"] if a["ratio"]["pass"] is False or a["area_goal"]["pass"] is False
    ]
    if missed:
        lines += ["", _render_where(missed)]
    return "\n".join(lines)


def render_options(options: list[dict]) -> str:
    """The lean 8x8 option points: best dINT4 against the best INT8 of the same options."""
    header = ["unit", "dINT4 (best)", "area um^2", "delay ns", "x smaller than best INT8"]
    header += ["best INT8", "INT8 area um^2", "MACs/(area*delay) vs INT8"]
    body = [
        [o["unit"], f"`{o['variant']}`", fmt(float(o["area"])), fmt(o["delay_ns"])]
        + [times(o["area_ratio"]), f"`{o['baseline']}`", fmt(float(o["baseline_area"]))]
        + [times(o["eff_ad_ratio"])]
        for o in options
    ]
    return md_table(header, body) if body else "(no lean option points in this run)"


def _render_where(missed: list[dict]) -> str:
    parts = []
    for a in missed:
        w = a["where"]
        top = ", ".join(f"{c} {pct(v, a['area'])}" for c, v in w["categories"][:5])
        parts.append(
            f"{a['unit']} `{a['variant']}`: multipliers ({' + '.join(MULTIPLIER_CATEGORIES)}) "
            f"{pct(w['multipliers'], a['area'])} of its area (INT8 baseline's: "
            f"{pct(w['int8_multipliers'], a['baseline_area'])}); largest categories: {top}. "
            f"Even free dINT4 multipliers would give at most {times(w['free_multiplier_ratio'])}."
        )
    return "Where the area went (the 8x8 breakdown below has every category): " + " ".join(parts)


def render_breakdown_8x8(entries: list[dict]) -> str:
    """Categories as rows, the 8x8 units as columns: um^2 and % of the array."""
    if not entries:
        return f"(no {_LABEL} arrays on {GOAL_TARGET} in this run)"
    cats = [c for c in CATEGORIES if any(e["breakdown"].get(c, 0) for e in entries)]
    header = ["category"] + [f"{e['unit']} `{e['variant']}` ({e['role']})" for e in entries]
    body = [
        [c] + [_cell(float(e["breakdown"].get(c, 0)), e["area"]) for e in entries] for c in cats
    ]
    mult = [multiplier_area(e["breakdown"]) for e in entries]
    body.append(
        ["= multipliers"] + [_cell(m, e["area"]) for m, e in zip(mult, entries, strict=True)]
    )
    body.append(["total"] + [fmt(float(e["area"])) for e in entries])
    return md_table(header, body)


def _cell(v: float, total: float) -> str:
    return f"{fmt(v, 0)} ({pct(v, total)})" if v else "–"
