"""Our dINT4 / INT8 area ratios next to the paper's Table 2 (a dINT4 x INT8 MAC 1.93x smaller
than an INT8 x INT8 MAC): the numbers (:func:`paper_comparison`) and the prose
(:func:`render_paper`).

What the paper's figure corresponds to is measured, not assumed: the dINT4 MAC against the
best and the default-``$mul`` INT8 MAC at equal accumulator widths and at widths by need, and
the dINT4 accumulator width at which the ratio would reach 1.93x, interpolated linearly
between our two dINT4 MACs (equal width and width by need; the accumulator adder and register
grow by the same area per bit).
"""

from __future__ import annotations

import math
from dataclasses import replace

import hw
from golden import product_width

from .hierarchy import REGISTER_CATEGORIES
from .markdown import fmt, md_table, times
from .tables import (
    HEADLINE_FORMAT,
    PAPER_MAC_RATIO,
    baseline_row,
    find,
    is_plain,
    multiplier_area,
    multiplier_share,
    ratio,
)

#: The units of the MAC at each accumulator rule (:func:`reports.tables.unit_label`).
MAC_UNITS = {"equal": "mac", "need": "mac (width by need)"}


def _widths(weight_format: str) -> tuple[int, int]:
    """(product width, accumulator width by need for the report's K) of a MAC of the format."""
    mac = hw.DesignPoint("mac", weight_format)
    return (
        product_width(mac.act_format, mac.weight_format),
        replace(mac, acc_rule="need").acc_width,
    )


def _best_per_unit(rows: list[dict], target: str) -> dict[str, dict]:
    """The smallest-area dINT4 row of every group without options on ``target``, by unit."""
    out: dict[str, dict] = {}
    for r in rows:
        if r["target"] == target and r["weight_format"] == HEADLINE_FORMAT and is_plain(r):
            b = out.get(r["unit"])
            if b is None or r["area"] < b["area"]:
                out[r["unit"]] = r
    return out


def _mac_side(rows: list[dict], r: dict | None) -> dict | None:
    """The dINT4 MAC of one accumulator rule against its best and its default INT8 MAC."""
    if r is None:
        return None
    base = baseline_row(rows, r)
    plain = find(rows, r["target"], "mac", hw.BASELINE_FORMAT, "mul", acc_rule=r["acc_rule"])
    return {
        "variant": r["variant"],
        "style": r["style"],
        "acc_width": r["acc_width"],
        "area": r["area"],
        "baseline": r["baseline"],
        "baseline_area": base["area"] if base else math.nan,
        "baseline_acc_width": base["acc_width"] if base else None,
        "plain_area": plain["area"] if plain else math.nan,
        "area_ratio": r["area_ratio"],
        "area_ratio_plain": r["area_ratio_plain"],
    }


#: The accumulator's own categories (its adder and its register).
ACC_CATEGORIES = ("accumulator", "accumulator registers")


def _width_for(rows: list[dict], target: str, need: dict, equal_bits: int) -> dict:
    """The dINT4 accumulator width at which the MAC would be 1.93x smaller than the default
    (``plain``) and than the best INT8 MAC (``best``), the INT8 MAC keeping its width, for
    two costs of an accumulator bit: ``marginal`` = what the bits from the equal width down to
    the width by need saved (the MAC of ``need``'s style at both widths), ``average`` = the
    equal-width accumulator's adder and register divided by its width."""
    eq = find(rows, target, "mac", HEADLINE_FORMAT, need["style"])
    if eq is None or eq["acc_width"] == need["acc_width"]:
        return {}
    acc = sum(float(eq["breakdown"].get(c, 0)) for c in ACC_CATEGORIES)
    per_bit = {
        "marginal": (eq["area"] - need["area"]) / (eq["acc_width"] - need["acc_width"]),
        "average": acc / eq["acc_width"] if acc else math.nan,
    }
    out: dict = {"per_bit": per_bit, "style": need["style"], "int8_bits": equal_bits}
    for model, cost in per_bit.items():
        if math.isnan(cost) or cost <= 0:
            continue
        for key, int8_area in (("plain", need["plain_area"]), ("best", need["baseline_area"])):
            if not math.isnan(int8_area):
                # eq.area - (eq.width - w) * cost = int8_area / PAPER_MAC_RATIO
                w = eq["acc_width"] - (eq["area"] - int8_area / PAPER_MAC_RATIO) / cost
                out.setdefault(key, {})[model] = w
    return out


def paper_comparison(rows: list[dict], target: str = "osu018") -> dict:
    """Our dINT4 / INT8 area ratio per unit on ``target`` next to the paper's 1.93x (MAC):
    the MAC at both accumulator rules, the width the paper's figure corresponds to, and the
    MAC-level breakdown that explains the gap."""
    per_unit = _best_per_unit(rows, target)
    fmts = (hw.BASELINE_FORMAT, HEADLINE_FORMAT)
    out = {
        "paper_mac_ratio": PAPER_MAC_RATIO,
        "target": target,
        "acc_k": hw.ACC_K,
        "acc_width": hw.DesignPoint("mac", HEADLINE_FORMAT).acc_width,
        "product_bits": {f: _widths(f)[0] for f in fmts},
        "own_acc_width": {f: _widths(f)[1] for f in fmts},
        "levels": {
            unit: {
                "variant": v["variant"],
                "baseline": v["baseline"],
                "area_ratio": v["area_ratio"],
                "area_ratio_plain": v["area_ratio_plain"],
                "int8_multiplier_share": multiplier_share(rows, v),
            }
            for unit, v in per_unit.items()
        },
        "mac": {rule: _mac_side(rows, per_unit.get(u)) for rule, u in MAC_UNITS.items()},
    }
    need = out["mac"]["need"]
    if need is not None:
        out["mac_width_for_paper"] = _width_for(rows, target, need, out["acc_width"])
    mac = per_unit.get(MAC_UNITS["equal"])
    base = baseline_row(rows, mac) if mac is not None else None
    if mac is not None and base is not None:
        out.update(_mac_breakdown(mac, base))
    return out


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


# ---- prose ------------------------------------------------------------------------------


def render_paper(paper: dict) -> str:
    """Our ratios next to the paper's, what its 1.93x corresponds to, and (when short of it)
    why and what closes it."""
    body = [
        [unit, v["variant"], times(v["area_ratio"]), f"`{v['baseline']}`"]
        + [times(v["area_ratio_plain"]), f"{PAPER_MAC_RATIO}x"]
        for unit, v in paper["levels"].items()
    ]
    lines = []
    if body:
        header = ["unit", "dINT4 unit", "ours (best INT8)", "best INT8"]
        lines.append(md_table([*header, "ours (INT8 w/o Booth)", "paper (MAC)"], body))
    correspond = render_correspondence(paper)
    if correspond:
        lines += ["", correspond]
    mac = paper["levels"].get(MAC_UNITS["equal"])
    if mac is None or "mac_ratio_cap" not in paper:
        return "\n".join(lines)
    lines.append("")
    if mac["area_ratio"] >= PAPER_MAC_RATIO - 0.1:
        lines.append(f"Our MAC-level ratio ({times(mac['area_ratio'])}) reaches the paper's.")
    else:
        lines += [_paper_gap(paper, mac), "", _paper_remedies(paper)]
    return "\n".join(lines)


def render_correspondence(paper: dict) -> str:
    """What the paper's 1.93x MAC figure corresponds to, in our measurements."""
    eq, need = paper["mac"]["equal"], paper["mac"]["need"]
    if eq is None:
        return ""
    text = (
        f"**What the paper's {PAPER_MAC_RATIO}x corresponds to.** With equal "
        f"{eq['acc_width']}-bit accumulators our dINT4 MAC (`{eq['variant']}`) is "
        f"{times(eq['area_ratio'])} smaller than the best INT8 MAC (`{eq['baseline']}`) and "
        f"{times(eq['area_ratio_plain'])} smaller than the default-`$mul` INT8 MAC "
        "(`int8/mul`)"
    )
    if need is None:
        return text + "; the MAC at width by need was not measured."
    text += (
        f"; with width by need ({need['baseline_acc_width']} vs {need['acc_width']} bits, "
        f"`{need['variant']}`) it is {times(need['area_ratio'])} "
        f"(`{need['baseline']}`) and {times(need['area_ratio_plain'])} (`int8/mul`). "
    )
    return text + _width_sentence(paper, need)


def _width_sentence(paper: dict, need: dict) -> str:
    w = paper.get("mac_width_for_paper", {})
    if need["area_ratio_plain"] >= PAPER_MAC_RATIO:
        return (
            f"{PAPER_MAC_RATIO}x is reached with width by need against the default INT8 multiplier."
        )
    if "plain" not in w:
        return "(No accumulator width can be interpolated from these two MACs.)"
    product = paper["product_bits"][HEADLINE_FORMAT]
    cost = w["per_bit"]

    def bits(key: str, model: str) -> str:
        x = w.get(key, {}).get(model)
        if x is None:
            return "–"
        return f"~{math.floor(x)} bits ({fmt(x, 1)})" if x >= product else "no width"

    return (
        f"{PAPER_MAC_RATIO}x is consistent with the default (non-Booth) INT8 multiplier "
        f"(`int8/mul`, {w['int8_bits']} bits) and a dINT4 (`{HEADLINE_FORMAT}/{w['style']}`) "
        f"accumulator of at most {bits('plain', 'marginal')} if each bit below "
        f"{need['acc_width']} saves what the bits from {w['int8_bits']} to "
        f"{need['acc_width']} saved ({fmt(cost['marginal'], 0)} um^2 per bit, measured), or "
        f"{bits('plain', 'average')} if each saves the {w['int8_bits']}-bit accumulator's "
        f"average (adder + register: {fmt(cost['average'], 0)} um^2 per bit); against the best "
        f"INT8 MAC (`{need['baseline']}`) it would take {bits('best', 'marginal')} and "
        f'{bits("best", "average")} respectively ("no width": narrower than the '
        f"{product}-bit product)."
    )


def _paper_gap(paper: dict, mac: dict) -> str:
    bd = paper["mac_breakdown"][HEADLINE_FORMAT]
    return (
        f"Our equal-width MAC-level ratio is {times(mac['area_ratio'])}, short of "
        f"{PAPER_MAC_RATIO}x. The breakdown says why: the dINT4 decoder + multiplier is "
        f"{times(paper['mac_multiplier_ratio'])} smaller than INT8's, but the accumulator "
        f"and its registers are the same {paper['acc_width']}-bit circuit in both and make up "
        f"{fmt(100 * paper['mac_shared_fraction_int8'], 0)}% of the INT8 MAC "
        f"(dINT4: accumulator {fmt(bd.get('accumulator', 0))}, registers "
        f"{fmt(sum(float(bd.get(c, 0)) for c in REGISTER_CATEGORIES))} um^2). Even a free "
        f"multiplier would give at most {times(paper['mac_ratio_cap'])}."
    )


def _paper_remedies(paper: dict) -> str:
    bits, own = paper["product_bits"], paper["own_acc_width"]
    base, f = hw.BASELINE_FORMAT, HEADLINE_FORMAT
    need = paper["levels"].get(MAC_UNITS["need"])
    need_text = f"measured: {times(need['area_ratio'])}" if need else "not measured"
    return (
        "What closes it: (1) share the wide adder and register between multipliers — in the "
        "dot product N multipliers feed one adder tree and one accumulator ("
        + _level_ratios(paper, "dot")
        + "); the classic weight-stationary array keeps a full-width partial-sum adder and "
        "register in every PE plus skew registers ("
        + _level_ratios(paper, "sys", "classic")
        + "), the lean arrays size each row's partial sum by need and sum K outside ("
        + _level_ratios(paper, "sys", "lean")
        + f"); (2) size the accumulator per format (dINT4 products are {bits[f]} bits, "
        f"INT8's {bits[base]}: `acc_width_for` gives {own[f]} instead of {own[base]} bits for "
        f"the same K; the MAC at width by need, {need_text}); (3) map adders onto the "
        "library's full-adder cells (FAX1/HAX1), which ABC ignores, making the shared "
        "accumulator smaller and the multiplier's share larger."
    )


def _level_ratios(paper: dict, prefix: str, arch: str | None = None) -> str:
    items = [
        f"{k}: {times(v['area_ratio'])}, multipliers "
        f"{fmt(100 * v['int8_multiplier_share'], 0)}% of INT8"
        for k, v in paper["levels"].items()
        if k.startswith(prefix) and (arch is None or k.split(" ")[1:2] == [arch])
    ]
    return "; ".join(items) if items else "not measured"
