"""Area by hierarchy: how often each module is instantiated, and where the area goes.

The ASIC flows keep the generator's hierarchy, so Yosys's ``stat`` gives each module's own
cells; :func:`rollup` multiplies them by the instance counts (:func:`instance_counts`) and
splits the total into :data:`CATEGORIES` by module name (:func:`category_of`).
"""

from __future__ import annotations

import re

from tools import ToolError

#: Breakdown categories, in report order.
CATEGORIES = ("decoder", "multiplier", "adder_tree", "accumulator", "registers", "other")


def norm(name: str) -> str:
    """A module name without Yosys's leading ``\\`` (escaped identifier)."""
    return name[1:] if name.startswith("\\") else name


def category_of(module: str) -> str:
    """Area category of a (combinational part of a) module from its hierarchical name.

    The generator names its submodules ``decoder``, ``multiplier``, ``adder_tree``/``tree``
    and ``accumulator`` (possibly with a prefix, e.g. ``lane3_decoder``); a systolic PE
    (``pe_R_C``) holds only its partial-sum adder besides its decoder and multiplier, so its
    own logic counts as ``accumulator``; everything else (top level, stream control, skew)
    is ``other``.
    """
    leaf = module.lstrip("\\").split(".")[-1].lower()
    if leaf.endswith("decoder"):
        return "decoder"
    if leaf.endswith("multiplier"):
        return "multiplier"
    if "tree" in leaf:
        return "adder_tree"
    if leaf.endswith("accumulator") or re.fullmatch(r"pe_\d+_\d+", leaf):
        return "accumulator"
    return "other"


def _submodules(mods: dict[str, dict], name: str):
    """(submodule, count) of the modules instantiated by ``name``."""
    for typ, n in mods[name].get("num_cells_by_type", {}).items():
        if norm(typ) in mods:
            yield norm(typ), int(n)


def instance_counts(stat_modules: dict[str, dict], top: str) -> dict[str, int]:
    """How many times each module is instantiated under ``top`` (``top`` counts once)."""
    mods = {norm(k): v for k, v in stat_modules.items()}
    top = norm(top)
    if top not in mods:
        raise ToolError(f"top module {top!r} not in the statistics (have {sorted(mods)[:8]}...)")
    order = [top]  # every module reachable from the top, breadth first
    i = 0
    while i < len(order):
        for t, _ in _submodules(mods, order[i]):
            if t not in order:
                order.append(t)
        i += 1
    # Propagating counts in this (breadth-first) order is exact only in topological order;
    # iterate until stable (the hierarchy is shallow).
    counts: dict[str, int] = {top: 1}
    for _ in range(len(order)):
        new = {top: 1}
        for m in order:
            for t, n in _submodules(mods, m):
                new[t] = new.get(t, 0) + counts.get(m, 0) * n
        if new == counts:
            break
        counts = new
    return counts


def rollup(
    stat_modules: dict[str, dict],
    top: str,
    local_area,
    local_seq_area,
    exclude: tuple[str, ...] = (),
) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """Total area, breakdown by category and per-module table from per-module statistics.

    ``local_area(name, stat)`` / ``local_seq_area(name, stat)`` give a module's own area
    (excluding submodules) and the part in flip-flops. Modules in ``exclude`` (e.g. an fmax
    wrapper) are left out.
    """
    counts = instance_counts(stat_modules, top)
    total = 0.0
    breakdown = dict.fromkeys(CATEGORIES, 0.0)
    modules: dict[str, dict[str, float]] = {}
    for name, st in stat_modules.items():
        n = norm(name)
        if n in exclude or counts.get(n, 0) == 0:
            continue
        a = float(local_area(n, st))
        s = float(local_seq_area(n, st))
        k = counts[n]
        total += k * a
        breakdown["registers"] += k * s
        breakdown[category_of(n)] += k * (a - s)
        modules[n] = {"instances": k, "area": a, "seq_area": s}
    return total, breakdown, modules
