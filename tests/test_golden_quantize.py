"""Symmetric quantizers: scales, clipping, all-zero slices, errors."""

import numpy as np
import pytest

from golden import formats
from golden.formats import FORMATS, FormatError
from golden.quantize import (
    ZERO_SLICE_SCALE,
    compute_scale,
    dequantize,
    quantize,
    quantize_activations,
    quantize_tensor,
)

ALL = sorted(FORMATS)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("granularity", ["tensor", "channel", "token", "group"])
def test_quantize_is_encode_of_clipped_ratio(name, granularity):
    fmt = formats.get(name)
    rng = np.random.default_rng(2)
    x = rng.standard_t(3, size=(12, 64))
    gs = 16 if granularity == "group" else None
    codes, scale = quantize_tensor(x, fmt, granularity, gs)
    assert codes.shape == x.shape
    expect_shape = {"tensor": (), "channel": (12, 1), "token": (12, 1), "group": (12, 4, 1)}
    assert scale.shape == expect_shape[granularity]
    g = x.reshape(12, 4, 16) if granularity == "group" else x
    ref = fmt.encode(np.clip(g / scale, -fmt.max_abs, fmt.max_abs)).reshape(x.shape)
    assert np.array_equal(codes, ref)
    # the slice maximum maps to +-max_abs exactly, so it round-trips to itself
    deq = dequantize(codes, fmt, scale, granularity, gs)
    i = np.unravel_index(np.argmax(np.abs(x)), x.shape)
    assert deq[i] == pytest.approx(x[i], rel=1e-12)
    assert np.all(np.abs(deq) <= np.abs(x).max() * (1 + 1e-12))


@pytest.mark.parametrize("name", ["int8", "int4"])
def test_symmetric_quantizer_never_emits_extra_negative_code(name):
    fmt = formats.get(name)
    x = np.array([[-1000.0, 1.0, 3.0]])
    codes, _ = quantize_tensor(x, fmt, "tensor")
    assert fmt.decode(codes).min() == -fmt.max_abs
    codes = quantize(x, fmt, np.float64(0.001), "tensor")  # far beyond the range
    assert fmt.decode(codes).min() == -fmt.max_abs


def test_all_zero_channel_has_defined_scale():
    x = np.zeros((3, 8))
    x[1] = np.linspace(-1, 1, 8)
    codes, scale = quantize_tensor(x, "dint4", "channel")
    assert scale[0, 0] == ZERO_SLICE_SCALE and scale[2, 0] == ZERO_SLICE_SCALE
    deq = dequantize(codes, "dint4", scale, "channel")
    assert np.all(np.isfinite(deq)) and np.all(deq[0] == 0) and np.all(codes[2] == 0)
    codes, scale = quantize_tensor(np.zeros((2, 4)), "int8", "tensor")
    assert scale == ZERO_SLICE_SCALE and not codes.any()


def test_activation_quantization_gives_int8_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.26, 2.0]])
    a = quantize_activations(x, 2.0 / 127)
    assert a.dtype == np.int64
    assert list(a[0]) == [-127, -32, 0, 17, 127]
    with pytest.raises(FormatError, match="integer format"):
        quantize_activations(x, 1.0, "dint4")


def test_errors():
    x = np.ones((4, 10))
    with pytest.raises(FormatError, match="multiple of group_size"):
        compute_scale(x, "dint4", "group", 4)
    with pytest.raises(FormatError, match="group_size"):
        compute_scale(x, "dint4", "group")
    with pytest.raises(FormatError, match="granularity"):
        compute_scale(x, "dint4", "row")
    with pytest.raises(FormatError, match="2-D"):
        compute_scale(np.ones(5), "dint4", "channel")
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(FormatError, match=r"NaN or Inf \(first at index \(2, 3\)\)"):
        compute_scale(bad, "dint4")
    with pytest.raises(FormatError, match="positive"):
        quantize(x, "dint4", np.zeros((4, 1)))
    with pytest.raises(FormatError, match="does not match"):
        quantize(x, "dint4", np.ones((3, 1)))
