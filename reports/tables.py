"""The report's numbers: rows with ratios to the INT8 x INT8 baseline, headline, paper figures.

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

The prose and the Markdown around these numbers are :mod:`reports.render`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

import hw
from golden import product_width

from .errors import ReportError
from .flows import TARGETS
from .hierarchy import MULTIPLIER_CATEGORIES

#: The paper's Table 2 figure: dINT4 x INT8 MAC area is 1.93x smaller than INT8 x INT8.
PAPER_MAC_RATIO = 1.93

#: The weight format of the headline and of the comparison with the paper.
HEADLINE_FORMAT = "dint4"

#: The headline's styles: the generator's default for the headline format first.
HEADLINE_STYLES = tuple(sorted(hw.STYLES, key=lambda s: s != hw.default_style(HEADLINE_FORMAT)))


def efficiency(macs_per_cycle: int, area: float, delay_ns: float | None) -> tuple[float, float]:
    """``(macs/area, macs/(area*delay))``; the second is NaN without a delay."""
    if area <= 0:
        raise ReportError(f"area must be positive, got {area}")
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
        "verified": rec["verified"],
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
    base = [r for r in rows if r["weight_format"] == hw.BASELINE_FORMAT]
    if not base:
        raise ReportError("no INT8 x INT8 baseline in this group; ratios need one")
    return min(base, key=lambda r: (r["area"], r["booth"]))


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when either is NaN or ``b`` is zero."""
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan


def _index(seq, x) -> int:
    return seq.index(x) if x in seq else len(seq)


def _group_order(key):
    target, level, size = key
    return (_index(TARGETS, target), _index(hw.REPORT_LEVELS, level), size)


def _variant_order(r):
    f = r["weight_format"]
    return (_index(hw.REPORT_FORMATS, f), f, r["style"], r["booth"])


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
        plain = [r for r in g if r["weight_format"] == hw.BASELINE_FORMAT and not r["booth"]]
        for r in sorted(g, key=_variant_order):
            r = dict(r)
            if base is not None:
                r["baseline"] = base["variant"]
                r["area_ratio"] = ratio(base["area"], r["area"])
                r["eff_ratio"] = ratio(r["eff_area"], base["eff_area"])
                r["eff_ad_ratio"] = ratio(r["eff_area_delay"], base["eff_area_delay"])
            else:
                r["baseline"] = None
                r["area_ratio"] = r["eff_ratio"] = r["eff_ad_ratio"] = math.nan
            r["area_ratio_plain"] = ratio(plain[0]["area"], r["area"]) if plain else math.nan
            out.append(r)
    return out


def find(rows, target, level_label, weight_format, style=None, booth=False):
    """The row of one unit (``style=None``: any style), or None."""
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
            key=lambda t: (_index(hw.REPORT_LEVELS, t[0]), t[1]),
        )
        for _, _, label in labels:
            for style in HEADLINE_STYLES:
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


def _baseline_row(rows, target, level_label, baseline_variant):
    """The baseline unit a row was divided by (``baseline_variant`` ends in ``booth`` or not)."""
    booth = baseline_variant.endswith("booth")
    return find(rows, target, level_label, hw.BASELINE_FORMAT, None, booth)


def _multiplier_share(rows, target, level_label, baseline_variant) -> float:
    """Fraction of the baseline INT8 unit's area in its decoders and multipliers."""
    if baseline_variant is None:
        return math.nan
    base = _baseline_row(rows, target, level_label, baseline_variant)
    if base is None or not base["breakdown"]:
        return math.nan
    return ratio(multiplier_area(base["breakdown"]), base["area"])


def _widths(weight_format: str) -> tuple[int, int]:
    """(product width, accumulator width by need for the report's K) of a MAC of the format."""
    mac = hw.DesignPoint("mac", weight_format)
    return (
        product_width(mac.act_format, mac.weight_format),
        replace(mac, acc_rule="need").acc_width,
    )


def paper_comparison(rows: list[dict], target: str = "osu018") -> dict:
    """Our dINT4 / INT8 area ratio per level on ``target`` next to the paper's 1.93x (MAC),
    with the MAC-level breakdown that explains the gap."""
    per_level = {}
    for r in rows:
        if r["target"] == target and r["weight_format"] == HEADLINE_FORMAT and not r["booth"]:
            best = per_level.get(r["level_label"])
            if best is None or r["area_ratio"] > best["area_ratio"]:
                per_level[r["level_label"]] = r
    fmts = (hw.BASELINE_FORMAT, HEADLINE_FORMAT)
    out = {
        "paper_mac_ratio": PAPER_MAC_RATIO,
        "target": target,
        "acc_k": hw.ACC_K,
        "acc_width": hw.DesignPoint("mac", HEADLINE_FORMAT).acc_width,
        "product_bits": {f: _widths(f)[0] for f in fmts},
        "own_acc_width": {f: _widths(f)[1] for f in fmts},
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
    if mac is not None and mac["baseline"] is not None:
        base = _baseline_row(rows, target, "mac", mac["baseline"])
    if mac is not None and base is not None:
        out.update(_mac_breakdown(mac, base))
    return out


def multiplier_area(breakdown: dict) -> float:
    """The area of a unit's multipliers: decoders, multipliers and shared multiples."""
    return sum(float(breakdown.get(c, 0)) for c in MULTIPLIER_CATEGORIES)


def _mac_breakdown(mac: dict, base: dict) -> dict:
    """Where the MAC's area goes, against the baseline INT8 MAC, and the ratio a free
    multiplier would give (the shared accumulator, its register and the rest cap it)."""
    bd, bb = mac["breakdown"], base["breakdown"]
    return {
        "mac_breakdown": {HEADLINE_FORMAT: bd, hw.BASELINE_FORMAT: bb},
        "mac_multiplier_ratio": ratio(multiplier_area(bb), multiplier_area(bd)),
        "mac_ratio_cap": ratio(base["area"], mac["area"] - multiplier_area(bd)),
        "mac_shared_fraction_int8": ratio(base["area"] - multiplier_area(bb), base["area"]),
    }


def verification(records: list[dict]) -> dict:
    """How ``nox -s sim`` covers the synthesized designs (each design once, whatever the
    targets): how many exactly, and the others grouped by :func:`hw.verified_by`'s reason."""
    verified = {r["design"]: (r["level_label"], r["verified"]) for r in records}
    others: dict[str, list[str]] = defaultdict(list)
    for design, (_, how) in verified.items():
        if how != "exact":
            others[how].append(design)
    return {
        "designs": len(verified),
        "exact": sum(how == "exact" for _, how in verified.values()),
        "others": [
            {
                "reason": reason,
                "designs": designs,
                "levels": list(dict.fromkeys(verified[d][0] for d in designs)),
            }
            for reason, designs in others.items()
        ],
    }
