"""Area by hierarchy: how often each module is instantiated, and where the area goes.

The ASIC flows synthesize every module alone (:mod:`reports.modsynth`) and the FPGA flows
keep a few modules apart, so each module's own cells are known; :func:`rollup` multiplies
them by the instance counts (:func:`instance_counts`) and sums them into :data:`CATEGORIES`:

- combinational logic by the module's hierarchical name (:func:`category_of`);
- flip-flops by the role of the signal they hold (:func:`register_role`, from the names of
  the net on their output, which Amaranth keeps: ``psum_out``, ``weight``, ``a_skew_1_0``);
- clock gates (``clock_gate=True``) in ``clock gating``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from tools import ToolError

#: Combinational categories (by module name), in report order.
LOGIC_CATEGORIES = (
    "decoder",
    "multiplier",
    "shared multiples",
    "adder tree",
    "accumulator",
    "psum adders",
    "other",
)
#: Flip-flop categories (by the role of the signal held), in report order.
REGISTER_CATEGORIES = (
    "accumulator registers",
    "psum registers",
    "weight registers",
    "activation registers",
    "pipeline registers",
    "deskew registers",
    "control",
)
#: The clock gates of ``clock_gate=True`` (their flip-flop and AND gate).
CLOCK_GATING = "clock gating"
#: The categories that make up a unit's multipliers (the rest is shared by them: adders,
#: accumulators, registers, control).
MULTIPLIER_CATEGORIES = ("decoder", "multiplier", "shared multiples")
#: Breakdown categories, in report order.
CATEGORIES = (*LOGIC_CATEGORIES, *REGISTER_CATEGORIES, CLOCK_GATING)

#: Register roles: the first pattern found in a name of the flip-flop's output net wins.
_ROLES = (
    ("deskew registers", re.compile(r"deskew")),
    ("psum registers", re.compile(r"psum")),
    ("weight registers", re.compile(r"weight")),
    ("activation registers", re.compile(r"(?<![a-z0-9])a_(?:skew|reg|out|seg)")),
    ("accumulator registers", re.compile(r"(?<![a-z0-9])acc(?![a-z])")),
    ("pipeline registers", re.compile(r"addend|(?<![a-z0-9])sum_l\d")),
)


def norm(name: str) -> str:
    """A module name without Yosys's leading ``\\`` (escaped identifier)."""
    return name[1:] if name.startswith("\\") else name


def category_of(module: str) -> str:
    """Category of the combinational logic of a module, from its hierarchical name.

    The generator names its submodules ``decoder``, ``multiplier`` (or ``selector``, which
    picks a product from the shared multiples), ``multiples`` (a row's shared a, 3a, 5a),
    ``adder_tree``/``tree`` and ``accumulator`` (possibly with a prefix, e.g.
    ``lane3_decoder``); a systolic PE (``pe_R_C``) holds only its partial-sum adder besides
    its decoder and multiplier, so its own logic is ``psum adders``; the clock gate of the
    ``clock_gate`` option is ``clock gating``; everything else (top level, stream control,
    skew multiplexers) is ``other``.
    """
    leaf = norm(module).split(".")[-1].lower()
    if "clock_gate" in leaf:
        return CLOCK_GATING
    if leaf.endswith("decoder"):
        return "decoder"
    if "multiples" in leaf:
        return "shared multiples"
    if leaf.endswith(("multiplier", "selector")):
        return "multiplier"
    if "tree" in leaf:
        return "adder tree"
    if leaf.endswith("accumulator"):
        return "accumulator"
    if re.fullmatch(r"pe_\d+_\d+", leaf):
        return "psum adders"
    return "other"


def register_role(net_names: Iterable[str]) -> str:
    """Category of a flip-flop from the names of the net on its output (:data:`_ROLES`):
    ``psum`` -> psum registers, ``weight`` -> weight registers, ``a_skew``/``a_reg``/
    ``a_out``/``a_seg`` -> activation registers, ``deskew`` -> deskew registers, ``acc``
    (a MAC's or dot product's accumulator) -> accumulator registers, ``addend``/``sum_lN``
    (adder-tree pipeline) -> pipeline registers; anything else (``valid_*``, ``load_row``,
    stream state) -> ``control``."""
    names = [n.lower() for n in net_names]
    for role, pattern in _ROLES:
        if any(pattern.search(n) for n in names):
            return role
    return "control"


def stat_tree(stat_modules: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Module -> {submodule: instances} from Yosys ``stat -json`` modules."""
    mods = {norm(k): v for k, v in stat_modules.items()}
    return {
        name: {
            norm(t): int(n) for t, n in st.get("num_cells_by_type", {}).items() if norm(t) in mods
        }
        for name, st in mods.items()
    }


def instance_counts(tree: dict[str, dict[str, int]], top: str) -> dict[str, int]:
    """How many times each module is instantiated under ``top`` (``top`` counts once);
    ``tree`` maps a module to its submodules and their instance counts."""
    top = norm(top)
    if top not in tree:
        raise ToolError(f"top module {top!r} not in the hierarchy (have {sorted(tree)[:8]}...)")
    order = [top]  # every module reachable from the top, breadth first
    i = 0
    while i < len(order):
        for t in tree[order[i]]:
            if t not in order:
                order.append(t)
        i += 1
    # Propagating counts in this (breadth-first) order is exact only in topological order;
    # iterate until stable (the hierarchy is shallow).
    counts: dict[str, int] = {top: 1}
    for _ in range(len(order)):
        new = {top: 1}
        for m in order:
            for t, n in tree[m].items():
                new[t] = new.get(t, 0) + counts.get(m, 0) * n
        if new == counts:
            break
        counts = new
    return counts


def rollup(
    tree: dict[str, dict[str, int]],
    top: str,
    local: Callable[[str], dict[str, float]],
    exclude: tuple[str, ...] = (),
) -> tuple[float, dict[str, float], dict[str, int]]:
    """Total area, breakdown by category and instance counts of the modules under ``top``.

    ``local(name)`` is a module's own area (excluding submodules) by category; modules in
    ``exclude`` (e.g. an fmax wrapper) are left out.
    """
    counts = instance_counts(tree, top)
    breakdown = dict.fromkeys(CATEGORIES, 0.0)
    for name, k in counts.items():
        if name in exclude or k == 0:
            continue
        for cat, area in local(name).items():
            if cat not in breakdown:
                raise ToolError(f"module {name}: unknown area category {cat!r}")
            breakdown[cat] += k * area
    return sum(breakdown.values()), breakdown, counts
