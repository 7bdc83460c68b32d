"""Bit-exact kernels against plain int64 / Python-integer references."""

import numpy as np
import pytest

from golden import formats, kernels
from golden.formats import FORMATS, FormatError
from golden.kernels import (
    accumulate,
    accumulate_path,
    accumulate_reference,
    check_acc_width,
    linear_int8,
    output_multiplier,
    requant_constants,
    requantize,
)

WEIGHTS = sorted(FORMATS)


def rand_tile(rng, t, k, n, fmt):
    a = rng.integers(-128, 128, size=(t, k))
    w = rng.integers(0, 2**fmt.bits, size=(n, k))
    return a, w


@pytest.mark.parametrize("name", WEIGHTS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 33, 5), (64, 576, 1536), (64, 1536, 576)])
def test_accumulate_random_tiles(name, shape):
    fmt = formats.get(name)
    a, w = rand_tile(np.random.default_rng(3), *shape, fmt)
    assert np.array_equal(accumulate(a, w, fmt), accumulate_reference(a, w, fmt))
    assert np.array_equal(
        accumulate(a.astype(np.int8), w.astype(np.uint8), fmt), accumulate_reference(a, w, fmt)
    )


@pytest.mark.parametrize("name", WEIGHTS)
@pytest.mark.parametrize("k", [576, 1536, 16384])
def test_accumulate_extremes(name, k):
    fmt = formats.get(name)
    big = max(range(len(fmt.ints)), key=lambda c: (abs(fmt.ints[c]), -c))
    neg = min(range(len(fmt.ints)), key=lambda c: fmt.ints[c])
    a = np.full((3, k), -128)
    a[1] = 127
    w = np.stack([np.full(k, big), np.full(k, neg)])
    got = accumulate(a, w, fmt)
    assert np.array_equal(got, accumulate_reference(a, w, fmt))
    assert got[0, 0] == k * -128 * fmt.ints[big]  # the worst case is reached


def test_float32_boundary_is_honest():
    # A sum of 2**24 + 1 is odd and above 2**24: float32 cannot hold it.
    fmt = formats.get("int8")
    a = np.array([[127] * 1040 + [127] * 24 + [9]])
    w = fmt.encode(np.array([[127] * 1040 + [1] * 24 + [1]]))
    ref = accumulate_reference(a, w, fmt)
    assert ref[0, 0] == 2**24 + 1
    assert np.array_equal(accumulate(a, w, fmt), ref)


def test_path_choice():
    assert accumulate_path(576, 128, 12) == "float32"
    assert accumulate_path(2**24 // (128 * 12) + 1, 128, 12) == "float64"
    assert accumulate_path(16384, 128, 128) == "float64"
    assert accumulate_path(2**40, 2**8, 2**8) == "int64"
    with pytest.raises(FormatError, match="overflow int64"):
        accumulate_path(2**60, 2**8, 2**8)


@pytest.mark.parametrize("forced", ["float64", "int64"])
def test_every_path_is_exact(monkeypatch, forced):
    if forced == "float64":
        monkeypatch.setattr(kernels, "FLOAT32_EXACT", 0)
    else:
        monkeypatch.setattr(kernels, "FLOAT32_EXACT", 0)
        monkeypatch.setattr(kernels, "FLOAT64_EXACT", 0)
    fmt = formats.get("dint4")
    a, w = rand_tile(np.random.default_rng(4), 16, 300, 9, fmt)
    assert accumulate_path(300, 128, 12) == forced
    assert np.array_equal(accumulate(a, w, fmt), accumulate_reference(a, w, fmt))


@pytest.mark.parametrize("name", WEIGHTS)
def test_check_acc_width_boundary(name):
    w = formats.get(name)
    a = formats.get("int8")
    products = [x * y for x in a.ints for y in w.ints]
    for k in (1, 5, 576, 4096):
        lo, hi = k * min(products), k * max(products)
        need = next(b for b in range(2, 64) if -(2 ** (b - 1)) <= lo and hi < 2 ** (b - 1))
        check_acc_width(k, need, a, w)
        with pytest.raises(FormatError, match=f"acc_width >= {need}"):
            check_acc_width(k, need - 1, a, w)


def test_accumulate_errors():
    fmt = formats.get("dint4")
    a = np.zeros((2, 8), dtype=np.int64)
    with pytest.raises(FormatError, match="K must agree"):
        accumulate(a, np.zeros((3, 7), dtype=np.int64), fmt)
    with pytest.raises(FormatError, match="2-D"):
        accumulate(a[0], np.zeros((3, 8), dtype=np.int64), fmt)
    with pytest.raises(FormatError, match="integers"):
        accumulate(a.astype(float), np.zeros((3, 8), dtype=np.int64), fmt)
    with pytest.raises(FormatError, match="out of int8 range"):
        accumulate(a + 200, np.zeros((3, 8), dtype=np.int64), fmt)
    with pytest.raises(FormatError, match="weight codes out of range"):
        accumulate(a, np.full((3, 8), 16), fmt)
    with pytest.raises(FormatError, match="can overflow"):
        accumulate(a, np.zeros((3, 8), dtype=np.int64), fmt, acc_width=12)


def requantize_reference(acc, M, sh):
    """Python integers: no width limits, floor shift."""
    y = (int(acc) * int(M) + (1 << (int(sh) - 1))) >> int(sh)
    return max(-127, min(127, y))


def test_requantize_random_and_boundaries():
    rng = np.random.default_rng(5)
    acc = np.concatenate(
        [
            rng.integers(-(2**31) + 1, 2**31, 2000),
            [0, 1, -1, 2**31 - 1, -(2**31) + 1, -(2**31), 2**40, -(2**40), 2**62 // 2**31],
        ]
    )
    M = rng.integers(2**30, 2**31, acc.size)
    M[:4] = [2**30, 2**31 - 1, 2**30, 2**31 - 1]
    sh = rng.integers(1, 64, acc.size)
    sh[:6] = [1, 63, 63, 1, 32, 40]
    got = requantize(acc, M, sh)
    ref = [requantize_reference(*t) for t in zip(acc, M, sh, strict=True)]
    assert got.tolist() == ref


def test_requantize_ties_round_half_up():
    sh, M = 31, 2**30  # multiplier 0.5
    acc = np.array([1, 3, -1, -3, 5, -5])  # x.5 everywhere
    assert requantize(acc, M, sh).tolist() == [requantize_reference(x, M, sh) for x in acc]
    assert requantize(acc, M, sh).tolist() == [1, 2, 0, -1, 3, -2]


def test_requant_constants():
    rng = np.random.default_rng(6)
    m = np.exp(rng.uniform(np.log(1e-9), np.log(1e3), 1000))
    M, sh = requant_constants(m)
    assert M.min() >= 2**30 and M.max() < 2**31 and sh.min() >= 1 and sh.max() <= 63
    assert np.all(np.abs(M * 2.0 ** -sh.astype(float) / m - 1) <= 2.0**-31)
    M, sh = requant_constants([1 - 2.0**-40])  # mantissa rounds up to 1.0: carry
    assert (M[0], sh[0]) == (2**30, 30)
    for bad in ([0.0], [-1.0], [np.nan], [2.0**40], [1e-30]):
        with pytest.raises(FormatError):
            requant_constants(bad)


def test_linear_int8_is_accumulate_then_requantize():
    fmt = formats.get("dint4")
    rng = np.random.default_rng(7)
    a, w = rand_tile(rng, 9, 576, 24, fmt)
    s_w = rng.uniform(0.001, 0.01, 24)
    M, sh = requant_constants(output_multiplier(0.05, s_w, fmt, 0.5))
    y = linear_int8(a, w, fmt, M, sh)
    acc = accumulate_reference(a, w, fmt)
    ref = [[requantize_reference(acc[t, n], M[n], sh[n]) for n in range(24)] for t in range(9)]
    assert y.tolist() == ref
    assert np.abs(y).max() <= 127 and y.min() > -128
    with pytest.raises(FormatError, match="per output channel"):
        linear_int8(a, w, fmt, M[:5], sh[:5])
    with pytest.raises(FormatError):
        requantize(acc, M, np.zeros(24, dtype=np.int64))


@pytest.mark.parametrize("name", ["dint4", "int8"])
@pytest.mark.parametrize("k", [64, 1536, 16384])
def test_decoded_weights_give_the_same_result(name, k):
    fmt = formats.get(name)
    a, w = rand_tile(np.random.default_rng(8), 3, k, 5, fmt)
    decoded = kernels.decode_weights(w, fmt)
    assert decoded.values.dtype.name == accumulate_path(k, 128, fmt.max_int)
    assert np.array_equal(accumulate(a, decoded, fmt), accumulate_reference(a, w, fmt))
    with pytest.raises(FormatError, match="decoded for int8 x"):
        accumulate(a, decoded, "int4" if name != "int4" else "dint4")


@pytest.mark.parametrize("name", WEIGHTS)
@pytest.mark.parametrize("k", [1, 2, 7, 64, 16384])
def test_weight_lookup_of_byte_codes(name, k):
    # uint8 codes with an even K take the two-codes-per-look-up path; odd K the plain one
    fmt = formats.get(name)
    w = np.random.default_rng(9).integers(0, 2**fmt.bits, size=(5, k)).astype(np.uint8)
    decoded = kernels.decode_weights(w, fmt)
    assert np.array_equal(decoded.values, fmt.decode_ints(w))
    assert np.array_equal(decoded.values, kernels.decode_weights(w.astype(np.int64), fmt).values)
    assert np.array_equal(
        kernels.decode_weights(w[:, ::-1], fmt).values, fmt.decode_ints(w[:, ::-1])
    )
