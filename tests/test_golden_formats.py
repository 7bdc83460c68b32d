"""Formats: the table, its derived numbers, encode/decode and their errors."""

import math

import numpy as np
import pytest

import golden
from golden import formats
from golden.formats import FORMATS, Format, FormatError

ALL = sorted(FORMATS)


def nearest_code_reference(fmt: Format, x: float) -> int:
    """Independent encoder: scan every code, keep the closest, ties to smaller |value|."""
    best = None
    for code, v in enumerate(fmt.values):
        key = (abs(x - v), abs(v), code)
        if best is None or key < best[0]:
            best = (key, code)
    return best[1]


@pytest.mark.parametrize("name", ALL)
def test_every_code_round_trips(name):
    fmt = formats.get(name)
    codes = np.arange(2**fmt.bits)
    values = fmt.decode(codes)
    again = fmt.encode(values)
    assert np.array_equal(fmt.decode(again), values)
    for code, back in zip(codes, again, strict=True):
        first = fmt.values.index(fmt.values[code])  # the canonical code of that value
        assert back == first
    assert fmt.encode(0.0) == 0 and fmt.encode(-0.0) == 0


@pytest.mark.parametrize("name", ALL)
def test_midpoints_follow_the_tie_rule(name):
    fmt = formats.get(name)
    vals = sorted(set(fmt.values))
    for lo, hi in zip(vals, vals[1:], strict=False):
        mid = (lo + hi) / 2
        expect = lo if abs(lo) < abs(hi) else hi
        assert fmt.decode(fmt.encode(mid)) == expect, (lo, hi)
        assert fmt.decode(fmt.encode(np.nextafter(mid, -math.inf))) == lo
        assert fmt.decode(fmt.encode(np.nextafter(mid, math.inf))) == hi


@pytest.mark.parametrize("name", ALL)
def test_encode_matches_independent_reference(name):
    fmt = formats.get(name)
    rng = np.random.default_rng(1)
    lim = max(abs(v) for v in fmt.values) * 1.3
    x = np.concatenate([rng.uniform(-lim, lim, 500), np.asarray(fmt.grid[2])])
    got = fmt.encode(x)
    assert [int(c) for c in got] == [nearest_code_reference(fmt, float(v)) for v in x]


@pytest.mark.parametrize("name", ALL)
def test_derived_numbers_are_consistent(name):
    fmt = formats.get(name)
    assert len(fmt.values) == 2**fmt.bits
    for v, i in zip(fmt.values, fmt.ints, strict=True):
        assert i == v * 2**fmt.frac_bits
    # frac_bits is the smallest that works
    if fmt.frac_bits:
        assert any(v * 2 ** (fmt.frac_bits - 1) % 1 for v in fmt.values)
    assert fmt.max_abs in fmt.values and -fmt.max_abs in fmt.values
    lo, hi = -(2 ** (fmt.int_width - 1)), 2 ** (fmt.int_width - 1) - 1
    assert all(lo <= i <= hi for i in fmt.ints)
    assert not all(lo // 2 <= i <= hi // 2 for i in fmt.ints)  # width is minimal


def test_documented_tables():
    # DESIGN.md spells these out; they are the contract with the hardware.
    d = formats.get("dint4")
    assert d.frac_bits == 1
    assert sorted(set(d.ints)) == sorted(
        {s * m for s in (1, -1) for m in (0, 1, 2, 4, 6, 8, 10, 12)}
    )
    assert d.decode(8) == 0 and d.max_abs == 6
    assert formats.get("int8").max_abs == 127 and formats.get("int8").decode(128) == -128
    assert formats.get("int4").max_abs == 7 and formats.get("int4").decode(8) == -8
    assert formats.get("fp4_e2m1").values[:8] == (0, 0.5, 1, 1.5, 2, 3, 4, 6)
    assert formats.get("dint4_0.25").frac_bits == 2
    assert formats.get("dint4_0.75").ints[1] == 3


def test_dint_variant_constructor_and_lookup():
    v = formats.get("dint4_0.375")
    assert v.values[1] == 0.375 and v.frac_bits == 3
    assert formats.dint4_variant(0.5).values == formats.get("dint4").values
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(FormatError, match="special value"):
            formats.dint4_variant(bad)


def test_unknown_name_lists_known_formats():
    with pytest.raises(FormatError, match="known formats: .*dint4"):
        formats.get("dint5")


@pytest.mark.parametrize(
    "values, match",
    [
        ((0.0, 0.1, -0.1, 1.0), "k\\*2\\*\\*-f"),
        ((0.0, 1.0, 2.0), "power of two"),
        ((1.0, 0.0, -1.0, 2.0), "code 0 must decode to 0"),
        ((0.0, float("nan"), 1.0, 2.0), "finite"),
        ((0.0, 1.0, 2.0, 3.0), "both signs"),
    ],
)
def test_bad_tables_are_rejected(values, match):
    with pytest.raises(FormatError, match=match):
        Format("bad", values)


def test_nan_inf_input_rejected():
    fmt = formats.get("dint4")
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(FormatError, match="NaN or Inf"):
            fmt.encode([0.0, bad])


def test_decode_rejects_out_of_range_codes():
    fmt = formats.get("int4")
    with pytest.raises(FormatError, match=r"\[0, 16\)"):
        fmt.decode([3, 16])
    with pytest.raises(FormatError):
        fmt.decode([-1])
    with pytest.raises(FormatError):
        fmt.decode(np.array([1.0]))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("k", [1, 2, 3, 576, 1536, 4096, 16384])
def test_acc_width_rule_covers_exact_worst_case(name, k):
    w = formats.get(name)
    a = formats.get("int8")
    width = golden.acc_width_for(k, a, w)
    products = [x * y for x in a.ints for y in w.ints]
    lo, hi = k * min(products), k * max(products)
    assert -(2 ** (width - 1)) <= lo and hi <= 2 ** (width - 1) - 1
    with pytest.raises(FormatError):
        golden.acc_width_for(0, a, w)
