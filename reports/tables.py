"""The report's numbers: rows with ratios to the INT8 x INT8 baseline, headline, paper figures.

Definitions (per group: target, level, size, array architecture and options, accumulator
rule — a ratio never mixes levels, sizes, targets, architectures or options, see
:data:`OPTION_DEFAULTS`):

- ``area``: the target's area figure (transistors, um^2, LUT4s);
- ``delay_ns``: critical path (Liberty STA) or ``1000 / fmax`` (FPGA, median over seeds);
  none for the generic CMOS target;
- efficiency ``eff_area = macs_per_cycle / area`` (MACs per cycle per area unit) and
  ``eff_area_delay = macs_per_cycle / (area * delay_ns)`` (MACs per ns per area unit);
- the **baseline** is the strongest INT8 x INT8 unit of the same group: the smallest-area one
  of ``int8/mul``, ``int8/mul+booth`` and, for lean arrays, ``int8/shared`` (radix-8 Booth
  digits sharing 3a per row) (:func:`baseline_of`);
- ``area_ratio = baseline.area / area`` ("x times smaller than INT8"; the paper's 1.93x is
  this figure for a MAC), ``eff_ratio`` = ``eff_area / baseline.eff_area`` (equal to
  ``area_ratio``, since both do the same MACs per cycle), ``eff_ad_ratio`` =
  ``eff_area_delay / baseline.eff_area_delay``, each unit with its own critical path;
  ``area_ratio_plain`` is against ``int8/mul`` without Booth (the default ``$mul``), for
  comparison;
- ``unit``: the group's readable label (:func:`unit_label`: ``sys8x8 lean pipe``, ``mac (width
  by need)``).

The comparison with the paper is :mod:`reports.paper`, the issue-11 goals of the lean arrays
:mod:`reports.goals`; the prose and the Markdown around these numbers are :mod:`reports.render`.
"""

from __future__ import annotations

import math
from collections import defaultdict

import hw

from .errors import ReportError
from .flows import TARGETS
from .hierarchy import MULTIPLIER_CATEGORIES

#: The paper's Table 2 figure: dINT4 x INT8 MAC area is 1.93x smaller than INT8 x INT8.
PAPER_MAC_RATIO = 1.93

#: The weight format of the headline and of the comparison with the paper.
HEADLINE_FORMAT = "dint4"

#: The headline's styles: the generator's default for the headline format first.
HEADLINE_STYLES = tuple(sorted(hw.STYLES, key=lambda s: s != hw.default_style(HEADLINE_FORMAT)))

#: The candidates of a lean array's "best dINT4" (the smaller area wins).
LEAN_STYLES = ("shared", "shiftadd")

#: The fields besides target, level and size that make a row's group (each the design
#: point's field of that name), with the value of records written before they existed.
OPTION_DEFAULTS = {
    "arch": "classic",
    "pe_lanes": 1,
    "a_reg_every": None,
    "pipeline": False,
    "acc_rule": "equal",
}
OPTIONS = tuple(OPTION_DEFAULTS)


def default_lanes(arch: str) -> int:
    """Weights per PE of an architecture's default array (classic 1, lean ``hw.DEFAULT_LANES``)."""
    return 1 if arch == "classic" else hw.DEFAULT_LANES


def defaults_of(arch: str = "classic") -> dict:
    """The option fields of ``arch``'s default unit (no option beyond the architecture)."""
    return {**OPTION_DEFAULTS, "arch": arch, "pe_lanes": default_lanes(arch)}


def efficiency(macs_per_cycle: int, area: float, delay_ns: float | None) -> tuple[float, float]:
    """``(macs/area, macs/(area*delay))``; the second is NaN without a delay."""
    if area <= 0:
        raise ReportError(f"area must be positive, got {area}")
    e = macs_per_cycle / area
    ead = macs_per_cycle / (area * delay_ns) if delay_ns else math.nan
    return e, ead


def unit_label(level: str, level_label: str, opts: dict) -> str:
    """A group's readable label: the level and size, the array architecture (``sys8x8
    classic``, ``sys8x8 lean``), the options as in the design names (``l4`` = 4 weights per
    PE when the architecture's default is another count, ``pipe``, ``r4`` = an activation
    register every 4 PEs) and ``(width by need)``."""
    parts = [level_label]
    if level == "systolic":
        parts.append(opts["arch"])
    if opts["pipeline"]:
        parts.append("pipe")
    if opts["pe_lanes"] != default_lanes(opts["arch"]):
        parts.append(f"l{opts['pe_lanes']}")
    if opts["a_reg_every"] is not None:
        parts.append(f"r{opts['a_reg_every']}")
    label = " ".join(parts)
    return label + " (width by need)" if opts["acc_rule"] == "need" else label


def is_plain(row: dict) -> bool:
    """Whether a row has no option beyond its architecture (and its defaults) and accumulator
    rule."""
    lanes = default_lanes(row["arch"])
    return (row["pe_lanes"], row["a_reg_every"], row["pipeline"]) == (lanes, None, False)


def _row_of(rec: dict) -> dict | None:
    if "error" in rec:
        return None
    res = rec["result"]
    spec = rec["spec"]
    opts = {k: spec.get(k, v) for k, v in OPTION_DEFAULTS.items()}
    if res["area"] > 0:
        e, ead = efficiency(rec["macs_per_cycle"], res["area"], res.get("delay_ns"))
    else:  # e.g. an ECP5 multiplier that went entirely into a DSP block: no LUTs to compare
        e = ead = math.nan
    return {
        "target": rec["target"],
        "level": rec["level"],
        "size": rec["size"],
        "level_label": rec["level_label"],
        **opts,
        "unit": unit_label(rec["level"], rec["level_label"], opts),
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


def group_key(row: dict) -> tuple:
    """(target, level, size, arch, pe_lanes, a_reg_every, pipeline, acc_rule) of a row."""
    return (row["target"], row["level"], row["size"], *(row[k] for k in OPTIONS))


def baseline_of(rows: list[dict]) -> dict:
    """The strongest (smallest-area) INT8 x INT8 row among ``rows`` (one group)."""
    base = [r for r in rows if r["weight_format"] == hw.BASELINE_FORMAT]
    if not base:
        raise ReportError("no INT8 x INT8 baseline in this group; ratios need one")
    return min(base, key=lambda r: (r["area"], r["booth"], r["style"]))


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when either is NaN or ``b`` is zero."""
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan


def _index(seq, x) -> int:
    seq = list(seq)
    return seq.index(x) if x in seq else len(seq)


def group_order(key: tuple) -> tuple:
    """Report order of a :func:`group_key`: target, level, size, architecture, options."""
    target, level, size, arch, lanes, a_reg, pipeline, rule = key
    return (
        _index(TARGETS, target),
        _index(hw.REPORT_LEVELS, level),
        size,
        _index(hw.ARCHS, arch),
        _index(hw.ACC_RULES, rule),
        lanes != default_lanes(arch),  # the default first, then lanes, pipeline, a_reg
        a_reg is not None,
        pipeline,
        lanes,
        a_reg or 0,
    )


def _variant_order(r):
    f = r["weight_format"]
    return (_index(hw.REPORT_FORMATS, f), f, r["style"], r["booth"])


def build_rows(records: list[dict]) -> list[dict]:
    """Rows with ratios to the baseline of their group (:func:`group_key`), in report order."""
    rows = [r for r in (_row_of(x) for x in records) if r is not None]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[group_key(r)].append(r)
    out = []
    for key in sorted(groups, key=group_order):
        g = groups[key]
        try:
            base = baseline_of(g)
        except ValueError:
            base = None
        plain = [
            r
            for r in g
            if r["weight_format"] == hw.BASELINE_FORMAT and r["style"] == "mul" and not r["booth"]
        ]
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


def find(rows, target, level_label, weight_format, style=None, booth=False, **opts):
    """The row of one unit (``style=None``: any style; ``opts``: the :data:`OPTION_DEFAULTS`
    fields, default the architecture's default unit (:func:`defaults_of`; classic unless
    ``arch`` is given) at equal width), or None."""
    want = {**defaults_of(opts.get("arch", "classic")), **opts}
    for r in rows:
        if (
            r["target"] == target
            and r["level_label"] == level_label
            and r["weight_format"] == weight_format
            and (style is None or r["style"] == style)
            and r["booth"] == booth
            and all(r[k] == v for k, v in want.items())
        ):
            return r
    return None


def best(rows, target, level_label, styles, weight_format=HEADLINE_FORMAT, **opts):
    """The smallest-area row of ``weight_format`` among ``styles`` of one group, or None."""
    cand = [find(rows, target, level_label, weight_format, s, **opts) for s in styles]
    cand = [r for r in cand if r is not None]
    return min(cand, key=lambda r: r["area"]) if cand else None


def baseline_row(rows: list[dict], row: dict) -> dict | None:
    """The INT8 row ``row`` was divided by (same group, variant ``row["baseline"]``)."""
    key = group_key(row)
    for r in rows:
        if group_key(r) == key and r["variant"] == row.get("baseline"):
            return r
    return None


def _headline_row(r: dict) -> dict:
    keys = ("target", "unit", "level_label", "arch", "acc_rule", "acc_width", "variant")
    keys += ("baseline", "area", "area_unit", "delay_ns", "area_ratio", "area_ratio_plain")
    return {k: r[k] for k in (*keys, "eff_ad_ratio")}


def headline(rows: list[dict], targets=("osu018", "ice40")) -> list[dict]:
    """dINT4 against the strongest INT8 of every group without options, per target: both
    :data:`HEADLINE_STYLES` of classic units (the MAC at both accumulator rules, one after the
    other), the best of :data:`LEAN_STYLES` of lean arrays (after the classic array of the
    same size)."""
    out = []
    for target in targets:
        seen = []
        for r in rows:
            if r["target"] == target and is_plain(r) and group_key(r) not in seen:
                seen.append(group_key(r))
        for key in seen:
            _, _, _, arch, *_, rule = key
            first = next(r for r in rows if group_key(r) == key)
            opts = {"arch": arch, "acc_rule": rule}
            label = first["level_label"]
            if arch == "classic":
                picks = [
                    find(rows, target, label, HEADLINE_FORMAT, s, **opts) for s in HEADLINE_STYLES
                ]
            else:
                picks = [best(rows, target, label, LEAN_STYLES, **opts)]
            out += [_headline_row(r) for r in picks if r is not None]
    return out


def multiplier_area(breakdown: dict) -> float:
    """The area of a unit's multipliers: decoders, multipliers and shared multiples."""
    return sum(float(breakdown.get(c, 0)) for c in MULTIPLIER_CATEGORIES)


def multiplier_share(rows: list[dict], row: dict) -> float:
    """Fraction of ``row``'s baseline INT8 unit's area in its multipliers."""
    base = baseline_row(rows, row)
    if base is None or not base["breakdown"]:
        return math.nan
    return ratio(multiplier_area(base["breakdown"]), base["area"])


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
