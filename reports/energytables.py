"""The report's energy numbers and their Markdown: energy per MAC from gate-level simulation
(the rows of :mod:`reports.energyruns`), ratios to the INT8 baseline, the headline, the
breakdown by category, the comparison with the paper, and the join with the area rows.

Definitions (per group: target, unit, operands, activity — a ratio never mixes units,
operand sources or activity models):

- the **baseline** is the group's lowest-energy INT8 x INT8 row (``int8/mul`` or
  ``int8/mul+booth``), ``energy_baseline`` its variant;
- ``energy_ratio = baseline energy / energy`` ("x less energy per MAC than the best INT8";
  > 1 is better than INT8), ``energy_ratio_plain`` the same against ``int8/mul`` without
  Booth; None where the group has no such INT8 row;
- ``macs_per_nj = 1000 / energy_pj_per_mac`` (MACs per nJ), and ``eff_energy_ratio``, its
  ratio to the best INT8's (equal to ``energy_ratio``), on the area rows (:func:`join_area`).

A failed run is a row with ``error``: it has no figures and is listed, never divided.
"""

from __future__ import annotations

from collections import defaultdict

import hw

from .hierarchy import CATEGORIES
from .markdown import fmt as _f
from .markdown import md_table, pct, times
from .tables import HEADLINE_FORMAT

#: The energy figure the paper reports for dINT4 against INT8 (x less energy).
PAPER_ENERGY_RATIO = 2.56
#: The only target of the power flow (the Liberty with power tables).
ENERGY_TARGET = "osu018"
#: The headline's and the join's operand source and activity model (real operands, glitches).
MAIN_OPERANDS, MAIN_ACTIVITY = "smollm2", "glitch"
#: Report order of the operand sources and activity models (others after these).
OPERANDS = ("smollm2", "synthetic")
ACTIVITIES = ("zero-delay", "glitch")
#: The array compared with the paper's energy figure.
PAPER_UNIT = "sys8x8 classic"
#: The arrays compared with the paper when measured (the classic one always named).
PAPER_UNITS = (PAPER_UNIT, "sys8x8 lean")


def _index(seq, x) -> int:
    return seq.index(x) if x in seq else len(seq)


def measured(rows: list[dict]) -> list[dict]:
    """The rows with figures (failed runs, which carry ``error``, left out)."""
    return [r for r in rows if "error" not in r]


def failed(rows: list[dict]) -> list[dict]:
    """The failed runs (rows with ``error``)."""
    return [r for r in rows if "error" in r]


def unit_order(row: dict) -> tuple:
    """Report order of a row's unit: level, size, architecture (as :mod:`reports.tables`)."""
    return (
        _index(hw.REPORT_LEVELS, row.get("level")),
        row.get("size", 0),
        _index(list(hw.ARCHS), row.get("arch", "classic")),
        row["unit"],
    )


def row_order(row: dict) -> tuple:
    """Report order: unit, operands, activity (a ratio's group), then variant (format, style,
    Booth)."""
    return (
        *unit_order(row),
        _index(OPERANDS, row["operands"]),
        row["operands"],
        _index(ACTIVITIES, row["activity"]),
        row["activity"],
        _index(hw.REPORT_FORMATS, row["weight_format"]),
        row["weight_format"],
        row["style"],
        row["booth"],
    )


def group_key(row: dict) -> tuple:
    """(target, unit, operands, activity): the rows a ratio may compare."""
    return (row.get("target", ENERGY_TARGET), row["unit"], row["operands"], row["activity"])


def _is_int8(row: dict) -> bool:
    return row["weight_format"] == hw.BASELINE_FORMAT


def _is_plain_int8(row: dict) -> bool:
    return _is_int8(row) and row["style"] == "mul" and not row["booth"]


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def energy_ratios(rows: list[dict]) -> list[dict]:
    """The measured rows (new dicts, in report order) with ``energy_baseline``,
    ``energy_ratio`` and ``energy_ratio_plain`` (see the module docstring)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in measured(rows):
        groups[group_key(r)].append(r)
    out = []
    for g in groups.values():
        int8 = [r for r in g if _is_int8(r)]
        base = min(int8, key=lambda r: (r["energy_pj_per_mac"], r["booth"])) if int8 else None
        plain = next((r for r in g if _is_plain_int8(r)), None)
        for r in g:
            e = r["energy_pj_per_mac"]
            out.append(
                {
                    **r,
                    "energy_baseline": base["variant"] if base else None,
                    "energy_ratio": _ratio(base["energy_pj_per_mac"], e) if base else None,
                    "energy_ratio_plain": _ratio(plain["energy_pj_per_mac"], e) if plain else None,
                }
            )
    return sorted(out, key=row_order)


def _units(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["unit"] for r in sorted(rows, key=unit_order)))


def energy_headline(rows: list[dict]) -> list[dict]:
    """Per unit, with SmolLM2 operands, glitches then zero-delay: the best (lowest-energy)
    dINT4 variant against the best INT8 (both named), with the ratios."""
    rated = energy_ratios(rows)
    out = []
    for unit in _units(rated):
        for activity in (MAIN_ACTIVITY, *(a for a in ACTIVITIES if a != MAIN_ACTIVITY)):
            g = [
                r
                for r in rated
                if (r["unit"], r["operands"], r["activity"]) == (unit, MAIN_OPERANDS, activity)
            ]
            dint4 = [r for r in g if r["weight_format"] == HEADLINE_FORMAT]
            if not dint4:
                continue
            best = min(dint4, key=lambda r: r["energy_pj_per_mac"])
            base = next((r for r in g if r["variant"] == best["energy_baseline"]), None)
            out.append(
                {
                    "unit": unit,
                    "operands": MAIN_OPERANDS,
                    "activity": activity,
                    "variant": best["variant"],
                    "energy_pj_per_mac": best["energy_pj_per_mac"],
                    "baseline": best["energy_baseline"],
                    "baseline_pj_per_mac": base["energy_pj_per_mac"] if base else None,
                    "energy_ratio": best["energy_ratio"],
                    "energy_ratio_plain": best["energy_ratio_plain"],
                }
            )
    return out


def _code(x: str | None) -> str:
    return f"`{x}`" if x else "–"


def _distinct(rows: list[dict], key: str) -> list:
    return list(dict.fromkeys(r[key] for r in rows if r.get(key) is not None))


#: What the operand sources mean (:mod:`reports.operands`), for the method text.
SMOLLM2_SUMMARY = (
    "SmolLM2-135M decoder layer 0 (the committed samples: 32 tokens of a Persuasion window x "
    "every K x 32 outputs of the seven linears): the dINT4 export's int8 activations for every "
    "format, the weights of the format's own export where one is committed (INT8, dINT4; "
    "AQAS+SLAC+GPTQ), other formats the dINT4 weights re-quantized to their grid"
)
SYNTHETIC_SUMMARY = "Laplace activations (int8, scale 8/127), Gaussian weights per row"


def method_text(rows: list[dict]) -> str:
    """How the energy is measured (the clock and the operand sources from the rows)."""
    ok = measured(rows)
    clocks = " / ".join(f"{c:g} ns" for c in _distinct(ok, "clock_ns")) or "–"
    what = {"smollm2": SMOLLM2_SUMMARY, "synthetic": SYNTHETIC_SUMMARY}
    sources = "; ".join(f"`{src}`: {what.get(src, src)}" for src in _distinct(ok, "operands"))
    return (
        f"Energy per MAC on `{ENERGY_TARGET}`: each unit's netlist, mapped onto the OSU018 cells "
        "module by module, is simulated at gate level with iverilog, zero-delay (a lower bound) "
        "and with the cell models' delays (`glitch`: the glitches counted), every cycle's "
        "outputs checked against the golden model; its energy is the Liberty's internal power "
        "plus switching (0.5 C V^2 at the driven pin capacitances; no wire load, because the "
        f"OSU018 Liberty has no wire-load model) plus leakage, at a {clocks} clock. "
        f"Operands: {sources or '–'}. Each unit's table says its workload (an array's weight "
        "loads and drain cycles are in its energy per MAC). A ratio is the energy per MAC of the "
        "lowest-energy INT8 of the same unit, operands and activity (`int8/mul`, "
        "`int8/mul+booth` or, in lean arrays, `int8/shared`) divided by this row's (> 1: less "
        "energy than INT8); the second ratio divides `int8/mul`'s. OpenSTA diff = our total / "
        "OpenSTA's - 1 (the MACs are cross-checked)."
    )


def render_headline(head: list[dict]) -> str:
    header = ["unit", "operands", "activity", "dINT4", "pJ/MAC", "best INT8", "pJ/MAC"]
    header += ["x less energy than best INT8", "(vs int8/mul)"]
    body = [
        [
            h["unit"],
            h["operands"],
            h["activity"],
            _code(h["variant"]),
            _f(h["energy_pj_per_mac"]),
            _code(h["baseline"]),
            _f(h["baseline_pj_per_mac"]),
            times(h["energy_ratio"]),
            times(h["energy_ratio_plain"]),
        ]
        for h in head
    ]
    return md_table(header, body)


def _signed_pct(x: float | None) -> str:
    return "–" if x is None else f"{100.0 * x:+.1f}%"


def render_unit(rows: list[dict]) -> str:
    """One unit's rows (with ratios): every variant, operand source and activity."""
    header = ["variant", "operands", "activity", "pJ/MAC", "mW", "x vs best INT8"]
    header += ["x vs int8/mul", "internal", "switching", "leakage", "OpenSTA diff"]
    body = [
        [
            r["variant"],
            r["operands"],
            r["activity"],
            _f(r["energy_pj_per_mac"]),
            _f(r["power_mw"], 3),
            times(r["energy_ratio"]),
            times(r["energy_ratio_plain"]),
            pct(r["internal"], 1.0, 1),
            pct(r["switching"], 1.0, 1),
            pct(r["leakage"], 1.0, 3),
            _signed_pct(r.get("opensta_diff")),
        ]
        for r in rows
    ]
    return md_table(header, body)


def categories_of(rows: list[dict]) -> list[str]:
    """The categories with energy in some row: :data:`CATEGORIES` order, unknown ones after."""
    seen = {c for r in rows for c, v in r.get("by_category_pj", {}).items() if v}
    return [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))


def render_breakdown(rows: list[dict]) -> str:
    """pJ per MAC by category (the categories non-zero somewhere) and the total."""
    cats = categories_of(rows)
    body = [
        [r["unit"], r["variant"]]
        + [_f(float(r.get("by_category_pj", {}).get(c, 0.0))) for c in cats]
        + [_f(r["energy_pj_per_mac"])]
        for r in rows
    ]
    return md_table(["unit", "variant", *cats, "total"], body)


def largest_categories(row: dict, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` categories with the most energy in ``row`` (pJ per MAC), largest first."""
    cats = [(c, float(v)) for c, v in row.get("by_category_pj", {}).items() if v]
    return sorted(cats, key=lambda cv: -cv[1])[:n]


def render_paper(
    head: list[dict], rows: list[dict], paper_ratio: float, unit: str = PAPER_UNIT
) -> str:
    """The best dINT4 ``unit`` (SmolLM2, glitches) against the paper's figure, and where its
    energy goes when it falls short."""
    h = next(
        (
            h
            for h in head
            if (h["unit"], h["activity"]) == (unit, MAIN_ACTIVITY) and h["energy_ratio"] is not None
        ),
        None,
    )
    if h is None:
        return (
            f"The paper's {times(paper_ratio)} less energy than INT8: the `{unit}` array "
            f"was not measured against an INT8 baseline with `{MAIN_OPERANDS}` operands and "
            f"`{MAIN_ACTIVITY}` activity."
        )
    text = (
        f"The best dINT4 `{unit}` array (`{h['variant']}`, {_f(h['energy_pj_per_mac'])} pJ "
        f"per MAC, `{MAIN_OPERANDS}` operands, `{MAIN_ACTIVITY}`) uses {times(h['energy_ratio'])} "
        f"less energy per MAC than the best INT8 (`{h['baseline']}`, "
        f"{_f(h['baseline_pj_per_mac'])} pJ): "
    )
    if h["energy_ratio"] >= paper_ratio:
        return text + f"it meets the paper's {times(paper_ratio)}."
    text += f"short of the paper's {times(paper_ratio)}."
    row = next(
        r
        for r in rows
        if (r["unit"], r["variant"], r["operands"], r["activity"])
        == (unit, h["variant"], MAIN_OPERANDS, MAIN_ACTIVITY)
    )
    top = largest_categories(row)
    if not top:
        return text + " (No breakdown by category was measured.)"
    total = row["energy_pj_per_mac"]
    shares = ", ".join(f"{c} ({_f(v)} pJ, {pct(v, total)})" for c, v in top)
    return text + f" The largest shares of the dINT4 array's energy per MAC: {shares}."


def render_failed(rows: list[dict]) -> str:
    return "\n".join(
        f"- `{r.get('unit', '?')}` `{r.get('variant', '?')}`, {r.get('operands', '?')}, "
        f"{r.get('activity', '?')}: {r['error']}"
        for r in failed(rows)
    )


def render_energy(rows: list[dict], paper_ratio: float = PAPER_ENERGY_RATIO) -> str:
    """The energy section's Markdown (without its own heading): method, headline, one table per
    unit, the breakdown with SmolLM2 operands and glitches, the paper, the failed runs."""
    rated = energy_ratios(rows)
    parts = [method_text(rows), ""]
    if rated:
        head = energy_headline(rows)
        parts += ["### Headline: dINT4 against the lowest-energy INT8", ""]
        parts += [render_headline(head) if head else "(no dINT4 rows)", ""]
        for unit in PAPER_UNITS:
            if unit == PAPER_UNIT or any(r["unit"] == unit for r in rated):
                parts += [render_paper(head, rated, paper_ratio, unit), ""]
        for unit in _units(rated):
            of_unit = [r for r in rated if r["unit"] == unit]
            parts += [f"### `{unit}`", "", render_unit(of_unit), ""]
            work = "; ".join(_distinct(of_unit, "workload"))
            cycles = " / ".join(str(c) for c in _distinct(of_unit, "cycles"))
            parts += [f"Workload: {work or '–'} ({cycles or '–'} cycles per run).", ""]
        main = [
            r for r in rated if (r["operands"], r["activity"]) == (MAIN_OPERANDS, MAIN_ACTIVITY)
        ]
        title = f"### Where the energy goes (`{MAIN_OPERANDS}`, `{MAIN_ACTIVITY}`; pJ per MAC)"
        parts += [title, "", render_breakdown(main) if main else "(not measured)", ""]
    else:
        parts += ["(no energy results)", ""]
    if failed(rows):
        parts += ["### Failed energy runs", "", render_failed(rows), ""]
    return "\n".join(parts).rstrip() + "\n"


def join_area(area_rows: list[dict], energy_rows: list[dict]) -> list[dict]:
    """``area_rows`` (of :func:`reports.tables.build_rows`; new dicts) with the energy of the
    same target, unit and variant (SmolLM2 operands, glitches): ``energy_pj_per_mac``,
    ``macs_per_nj`` and ``eff_energy_ratio``; None where not measured (every other target)."""
    main = {
        (r.get("target", ENERGY_TARGET), r["unit"], r["variant"]): r
        for r in energy_ratios(energy_rows)
        if (r["operands"], r["activity"]) == (MAIN_OPERANDS, MAIN_ACTIVITY)
    }
    out = []
    for a in area_rows:
        e = main.get((a["target"], a["unit"], a["variant"]))
        pj = e["energy_pj_per_mac"] if e else None
        out.append(
            {
                **a,
                "energy_pj_per_mac": pj,
                "macs_per_nj": 1000.0 / pj if pj else None,
                "eff_energy_ratio": e["energy_ratio"] if e else None,
            }
        )
    return out


def _area_energy(joined: list[dict]) -> list[dict]:
    keys = ("unit", "variant", "area", "area_unit", "area_ratio", "energy_pj_per_mac")
    keys += ("macs_per_nj", "eff_energy_ratio")
    return [{k: r[k] for k in keys} for r in joined if r["energy_pj_per_mac"] is not None]


def render_area_energy(joined: list[dict]) -> str:
    """Area and energy of the units measured for both (rows of :func:`join_area`)."""
    rows = _area_energy(joined)
    if not rows:
        return "(no unit with both area and energy)"
    header = ["unit", "variant", f"area ({rows[0]['area_unit']})", "x smaller than best INT8"]
    header += ["pJ/MAC", "MACs/nJ", "x MACs/nJ vs best INT8"]
    body = [
        [
            r["unit"],
            r["variant"],
            _f(float(r["area"]), 0),
            times(r["area_ratio"]),
            _f(r["energy_pj_per_mac"]),
            _f(r["macs_per_nj"], 1),
            times(r["eff_energy_ratio"]),
        ]
        for r in rows
    ]
    return md_table(header, body)


def energy_section(area_rows: list[dict], energy_rows: list[dict]) -> str:
    """The report's energy section: :func:`render_energy` and the area/energy table."""
    parts = [f"## Energy per MAC ({ENERGY_TARGET}, gate-level simulation)", ""]
    parts += [render_energy(energy_rows).rstrip(), ""]
    parts += [f"### Area and energy ({ENERGY_TARGET}, `{MAIN_OPERANDS}`, `{MAIN_ACTIVITY}`)", ""]
    parts += [render_area_energy(join_area(area_rows, energy_rows)), ""]
    return "\n".join(parts)


def energy_doc(area_rows: list[dict], energy_rows: list[dict]) -> dict:
    """The report.json ``energy`` entry: rows with ratios, headline, failed runs, and the
    area rows measured for energy (:func:`join_area`)."""
    return {
        "rows": energy_ratios(energy_rows),
        "headline": energy_headline(energy_rows),
        "failed": failed(energy_rows),
        "area": _area_energy(join_area(area_rows, energy_rows)),
    }
