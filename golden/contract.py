"""Every number of the integer contract, defined once: widths, ranges, fields, the MAC rule.

``hw`` sizes its signals with these functions, ``sim`` and the tests check against them, and
``reports`` labels its tables with them; nothing outside ``golden`` re-derives them.

- :func:`signed_width` — bits of a two's-complement signal holding every integer of a range.
- :func:`product_range` / :func:`product_width` — the exact range and width of one product
  ``a * ints[w]`` of a format pair (the code -128 of int8 included).
- :func:`acc_width_for` — the documented accumulator sizing rule for up to K products;
  :func:`min_acc_width` — the narrowest width that holds the exact worst case (computed,
  not searched); :func:`check_acc_width` — raise if a width could overflow.
- Requantizer fields: ``M`` has :data:`M_BITS` bits (``M`` in ``[2**30, 2**31)``), ``sh``
  :data:`SH_BITS` (``[1, 63]``), the output :data:`OUT_BITS` (``[-127, 127]``).
- The MAC update rule (:data:`MAC_UPDATE`, :func:`mac_next`, :func:`mac_trace`): the
  cycle-level reference that the amaranth tests, the cocotb testbench and the formal proof
  all use.
"""

from __future__ import annotations

import math

import numpy as np

from .bits import signed_width
from .formats import INT8, Format, FormatError, get

__all__ = [
    "MAC_UPDATE",
    "M_BITS",
    "M_MAX",
    "M_MIN",
    "OUT_BITS",
    "Q_MAX",
    "Q_MIN",
    "SH_BITS",
    "SH_MAX",
    "SH_MIN",
    "acc_range",
    "acc_width_for",
    "check_acc_width",
    "mac_next",
    "mac_trace",
    "max_k_for_width",
    "min_acc_width",
    "product_range",
    "product_width",
    "signed_width",
]


def product_range(act: Format | str, weight: Format | str) -> tuple[int, int]:
    """Smallest and largest ``a * ints[w]`` over every activation and weight code."""
    act, weight = get(act), get(weight)
    prods = [
        a * w for a in (min(act.ints), max(act.ints)) for w in (min(weight.ints), max(weight.ints))
    ]
    return min(prods), max(prods)


def product_width(act: Format | str, weight: Format | str) -> int:
    """Signed width of one product ``a * ints[w]`` (exact, from the format tables)."""
    return signed_width(*product_range(act, weight))


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise FormatError(f"K (number of products) must be an integer >= 1, got {k!r}")
    return int(k)


def acc_range(k: int, act: Format | str = INT8, weight: Format | str = "dint4") -> tuple[int, int]:
    """Exact extremes of a sum of ``k`` products: ``k * min`` and ``k * max`` of one product."""
    k = _check_k(k)
    lo, hi = product_range(act, weight)
    return k * lo, k * hi


def min_acc_width(k: int, act: Format | str = INT8, weight: Format | str = "dint4") -> int:
    """The narrowest signed accumulator that cannot overflow for ``k`` products (exact)."""
    return signed_width(*acc_range(k, act, weight))


def acc_width_for(k_max: int, act: Format | str = INT8, weight: Format | str = "dint4") -> int:
    """Accumulator width that cannot overflow for up to ``k_max`` products.

    The documented sizing rule: ``act.bits + bits(weight.max_int) + 1 + ceil(log2 k_max)``,
    where ``bits(m)`` is the unsigned width of ``m``. It is a few bits conservative against
    the exact worst case (:func:`min_acc_width`); :func:`check_acc_width` checks the exact
    bound.
    """
    act, weight = get(act), get(weight)
    k_max = _check_k(k_max)
    return act.int_width + weight.max_int.bit_length() + 1 + math.ceil(math.log2(k_max))


def check_acc_width(
    k: int, acc_width: int, act: Format | str = INT8, weight: Format | str = "dint4"
) -> None:
    """Raise :class:`FormatError` if ``k`` products could overflow a signed ``acc_width``.

    The exact worst case is ``k`` times the extreme product (for int8 activations
    ``|a| = 128``: the code -128 is accepted by the hardware even though the quantizer never
    emits it). ``k`` must be at least 1.
    """
    act, weight = get(act), get(weight)
    need = min_acc_width(k, act, weight)
    if isinstance(acc_width, bool) or not isinstance(acc_width, int | np.integer):
        raise FormatError(f"acc_width must be an integer number of bits, got {acc_width!r}")
    if acc_width < need:
        lo, hi = acc_range(k, act, weight)
        raise FormatError(
            f"accumulator of {acc_width} bits can overflow: K={k} products of "
            f"{act.name} x {weight.name} reach [{lo}, {hi}]; "
            f"use acc_width >= {need} (or a smaller K)"
        )


def max_k_for_width(
    acc_width: int, act: Format | str = INT8, weight: Format | str = "dint4"
) -> int:
    """The largest K whose exact worst case fits a signed ``acc_width``-bit accumulator."""
    lo, hi = product_range(act, weight)
    lim_hi = (2 ** (acc_width - 1) - 1) // hi if hi > 0 else 2**256
    lim_lo = (2 ** (acc_width - 1)) // -lo if lo < 0 else 2**256
    k = min(lim_hi, lim_lo)
    if k < 1:
        raise FormatError(
            f"acc_width={acc_width} cannot hold one product of {get(act).name} x "
            f"{get(weight).name}; use at least {product_width(act, weight)} bits"
        )
    return k


# ---- requantizer fields -----------------------------------------------------------------

#: Width of the requantization multiplier field: ``M`` in ``[2**(M_BITS-1), 2**M_BITS)``.
M_BITS = 31
#: Width of the shift field: ``sh`` in ``[SH_MIN, 2**SH_BITS - 1]``.
SH_BITS = 6
#: Width of the requantizer's output: int8, clamped to the symmetric range.
OUT_BITS = 8

M_MIN, M_MAX = 1 << (M_BITS - 1), 1 << M_BITS
SH_MIN, SH_MAX = 1, (1 << SH_BITS) - 1
Q_MAX = (1 << (OUT_BITS - 1)) - 1
Q_MIN = -Q_MAX


# ---- the MAC update rule ----------------------------------------------------------------

#: The MAC's update on a rising clock edge, as priority-ordered ``(condition, next acc)``:
#: the first case whose condition holds applies (``""`` always holds). ``rst`` is the
#: synchronous, active-high domain reset. Rendered as Verilog by the formal proof, evaluated
#: by :func:`mac_next`.
MAC_UPDATE: tuple[tuple[str, str], ...] = (
    ("rst", "0"),
    ("!en", "acc"),
    ("clear", "product"),
    ("", "acc + product"),
)


def mac_next(acc: int, product: int, en: int, clear: int, rst: int = 0) -> int:
    """``acc`` after one rising edge: :data:`MAC_UPDATE` evaluated on integers."""
    signals = {"rst": bool(rst), "en": bool(en), "clear": bool(clear)}
    values = {"0": 0, "acc": acc, "product": product, "acc + product": acc + product}
    for cond, nxt in MAC_UPDATE:
        holds = not cond or (not signals[cond[1:]] if cond.startswith("!") else signals[cond])
        if holds:
            return values[nxt]
    raise AssertionError("unreachable: the last case always holds")


def mac_trace(
    a,
    w_codes,
    en,
    clear,
    rst=None,
    weight: Format | str = "dint4",
    act: Format | str = INT8,
    acc_width: int | None = None,
    acc0: int = 0,
) -> np.ndarray:
    """The MAC's ``acc`` after each rising edge, for one ``(a, w, en, clear, rst)`` per cycle.

    Products are ``a * weight.ints[w]`` (exact); the update is :func:`mac_next`. With
    ``acc_width``, a value outside the signed range raises :class:`FormatError` (the contract
    sizes accumulators so nothing wraps; a trace that would wrap is a bad test).
    """
    weight, act = get(weight), get(act)
    a = np.asarray(a, dtype=np.int64).reshape(-1)
    n = len(a)
    cols = [np.asarray(x, dtype=np.int64).reshape(-1) for x in (w_codes, en, clear)]
    rst_a = np.zeros(n, np.int64) if rst is None else np.asarray(rst, np.int64).reshape(-1)
    if any(len(c) != n for c in (*cols, rst_a)):
        raise FormatError("mac_trace: a, w_codes, en, clear and rst must have one value per cycle")
    lo_a, hi_a = min(act.ints), max(act.ints)
    if n and (a.min() < lo_a or a.max() > hi_a):
        raise FormatError(f"mac_trace: activations out of {act.name} range [{lo_a}, {hi_a}]")
    products = (a * weight.decode_ints(cols[0])).tolist()
    en_l, clear_l, rst_l = (c.tolist() for c in (cols[1], cols[2], rst_a))
    out = np.empty(n, dtype=np.int64)
    acc = int(acc0)
    lim = None if acc_width is None else 2 ** (acc_width - 1)
    for i in range(n):
        acc = mac_next(acc, products[i], en_l[i], clear_l[i], rst_l[i])
        if lim is not None and not -lim <= acc < lim:
            raise FormatError(
                f"mac_trace: acc={acc} after cycle {i} does not fit {acc_width} bits; "
                "clear more often or use a wider accumulator"
            )
        out[i] = acc
    return out
