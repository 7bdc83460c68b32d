"""The contract numbers golden owns: widths, product ranges, accumulator sizing, requant
fields and the MAC update rule, each checked against a brute-force or independent reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import golden
from golden import FORMATS, FormatError, contract


def _brute_signed_width(lo: int, hi: int) -> int:
    """Smallest n with [lo, hi] inside [-2**(n-1), 2**(n-1) - 1], by search."""
    n = 1
    while not (-(2 ** (n - 1)) <= lo and hi <= 2 ** (n - 1) - 1):
        n += 1
    return n


@pytest.mark.parametrize("lo, hi", [(0, 0), (-1, 0), (0, 1), (-128, 127), (-129, 127), (-5, 300)])
def test_signed_width_is_the_smallest_that_holds(lo, hi):
    assert golden.signed_width(lo, hi) == _brute_signed_width(lo, hi)
    assert golden.signed_width(lo) == _brute_signed_width(lo, lo)


@pytest.mark.parametrize("act, weight", list(itertools.product(["int8", "int4"], FORMATS)))
def test_product_range_is_the_exhaustive_one(act, weight):
    a, w = golden.get(act), golden.get(weight)
    prods = [x * y for x in a.ints for y in w.ints]
    assert golden.product_range(a, w) == (min(prods), max(prods))
    assert golden.product_width(a, w) == _brute_signed_width(min(prods), max(prods))


@pytest.mark.parametrize("weight", FORMATS)
@pytest.mark.parametrize("k", [1, 2, 3, 255, 256, 576, 4096])
def test_min_acc_width_is_exact(weight, k):
    """min_acc_width holds K extreme products, and one bit less does not."""
    width = golden.min_acc_width(k, "int8", weight)
    golden.check_acc_width(k, width, "int8", weight)
    with pytest.raises(FormatError, match="can overflow"):
        golden.check_acc_width(k, width - 1, "int8", weight)
    lo, hi = golden.acc_range(k, "int8", weight)
    assert (lo, hi) == tuple(k * p for p in golden.product_range("int8", weight))
    assert width == _brute_signed_width(lo, hi)
    assert golden.acc_width_for(k, "int8", weight) >= width  # the rule is conservative


@pytest.mark.parametrize("weight", FORMATS)
@pytest.mark.parametrize("width", [17, 21, 25, 32])
def test_max_k_for_width_is_the_largest(weight, width):
    k = golden.max_k_for_width(width, "int8", weight)
    golden.check_acc_width(k, width, "int8", weight)
    with pytest.raises(FormatError):
        golden.check_acc_width(k + 1, width, "int8", weight)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "8"])
def test_bad_k_is_an_error(bad):
    with pytest.raises(FormatError, match="K"):
        golden.check_acc_width(bad, 24)
    with pytest.raises(FormatError, match="K"):
        golden.acc_width_for(bad)


def test_requant_fields_hold_the_ranges():
    c = contract
    assert (c.M_MIN, c.M_MAX) == (2**30, 2**31)
    assert (c.SH_MIN, c.SH_MAX) == (1, 63)
    assert (c.Q_MIN, c.Q_MAX) == (-127, 127)
    assert c.M_MAX - 1 < 2**c.M_BITS and c.SH_MAX < 2**c.SH_BITS
    assert golden.signed_width(c.Q_MIN, c.Q_MAX) == c.OUT_BITS
    # The constants golden produces fit the fields the hardware has.
    M, sh = golden.requant_constants(np.geomspace(1e-9, 0.9, 50))
    assert M.min() >= c.M_MIN and M.max() < c.M_MAX
    assert sh.min() >= c.SH_MIN and sh.max() <= c.SH_MAX


def _trace_by_hand(products, en, clear, rst):
    """The rule as DESIGN.md words it: rst clears; with en, acc <= (clear ? 0 : acc) + p."""
    acc, out = 0, []
    for p, e, c, r in zip(products, en, clear, rst, strict=True):
        if r:
            acc = 0
        elif e:
            acc = (0 if c else acc) + p
        out.append(acc)
    return out


@pytest.mark.parametrize("weight", ["dint4", "int8", "fp4_e2m1"])
def test_mac_trace_follows_the_documented_rule(weight):
    rng = np.random.default_rng(3)
    n = 3000
    a = rng.integers(-128, 128, n)
    w = rng.integers(0, 1 << golden.get(weight).bits, n)
    en, clear, rst = (rng.random(n) < p for p in (0.8, 0.1, 0.01))
    products = (a * golden.get(weight).decode_ints(w)).tolist()
    got = golden.mac_trace(a, w, en, clear, rst, weight=weight)
    assert got.tolist() == _trace_by_hand(products, en, clear, rst)


def test_mac_next_priority():
    assert golden.mac_next(5, 7, en=1, clear=1, rst=1) == 0  # reset wins
    assert golden.mac_next(5, 7, en=0, clear=1, rst=0) == 5  # no enable: hold, clear ignored
    assert golden.mac_next(5, 7, en=1, clear=1, rst=0) == 7
    assert golden.mac_next(5, 7, en=1, clear=0, rst=0) == 12
    assert [cond for cond, _ in golden.MAC_UPDATE][-1] == ""  # the last case always holds


def test_mac_trace_refuses_a_wrapping_sequence():
    n = 300
    with pytest.raises(FormatError, match="does not fit 16 bits"):
        golden.mac_trace([-128] * n, [7] * n, [1] * n, [0] * n, weight="int4", acc_width=16)
    with pytest.raises(FormatError, match="one value per cycle"):
        golden.mac_trace([1, 2], [1], [1, 1], [0, 0])
