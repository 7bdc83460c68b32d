"""The torch encoder is built from golden Format.grid and agrees with Format.encode."""

import numpy as np
import pytest
import torch

import golden
from golden.quantize import ZERO_SLICE_SCALE
from quant import QuantError
from quant.qlinear import (
    TorchGrid,
    act_scale_from_absmax,
    grid_of,
    quantize_act,
    quantize_weight,
    weight_scale,
)


def probe_points(fmt: golden.Format) -> np.ndarray:
    sv, _, mid, _ = fmt.grid
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            sv,
            mid,
            np.nextafter(mid, np.inf),
            np.nextafter(mid, -np.inf),
            [sv[0] - 1, sv[-1] + 1, -0.0, 0.0],
            rng.normal(0, fmt.max_abs, 2000),
        ]
    )


@pytest.mark.parametrize("name", sorted(golden.FORMATS))
def test_torch_and_numpy_encoders_agree_everywhere(name):
    fmt = golden.get(name)
    x = probe_points(fmt)
    want = fmt.encode(x)
    for closed_form in (True, False):  # int grids have a closed form; both paths must agree
        grid = TorchGrid(fmt, closed_form=closed_form)
        got = grid.encode(torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_array_equal(got, want)
        # float32 inputs: rounded as the float32 values they are
        x32 = x.astype(np.float32)
        got32 = grid.encode(torch.tensor(x32)).numpy()
        np.testing.assert_array_equal(got32, fmt.encode(x32.astype(np.float64)))
    # every code's value round-trips to the canonical code of that value
    vals = np.asarray(fmt.values)
    np.testing.assert_array_equal(grid_of(fmt).encode(torch.tensor(vals)).numpy(), fmt.encode(vals))
    # the midpoints really are ties: the code chosen has the smaller magnitude
    sv, _, mid, _ = fmt.grid
    chosen = fmt.decode(grid_of(fmt).encode(torch.tensor(mid)).numpy())
    np.testing.assert_array_equal(np.abs(chosen), np.minimum(np.abs(sv[:-1]), np.abs(sv[1:])))


@pytest.mark.parametrize("name", ["int4", "dint4", "fp4_e2m1"])
def test_weight_quantizer_matches_golden(name):
    w = torch.randn(16, 32, dtype=torch.float64)
    w[3] = 0.0  # all-zero channel: scale 1, codes 0
    codes, scale = quantize_weight(w, name)
    g_codes, g_scale = golden.quantize_tensor(w.numpy(), name, "channel")
    np.testing.assert_array_equal(codes.numpy(), g_codes)
    np.testing.assert_array_equal(scale.numpy(), g_scale)


@pytest.mark.parametrize("name", ["int4", "dint4", "fp4_e2m1", "int8"])
@pytest.mark.parametrize("group_size", [None, 8])
def test_scales_are_golden_compute_scale(name, group_size):
    """quant's weight and activation scales are golden's rule, zero slices included."""
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(12, 32, generator=gen) * torch.logspace(-3, 2, 32)  # float32, wide range
    w[2] = 0.0  # an all-zero channel
    w[5, 8:16] = 0.0  # an all-zero group
    gran = "group" if group_size else "channel"
    want = golden.compute_scale(w.double().numpy(), name, gran, group_size)
    got = weight_scale(w, name, group_size)
    assert got.dtype == torch.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    assert got[2].flatten().tolist() == [ZERO_SLICE_SCALE] * got[2].numel()
    if group_size:
        assert float(got[5, 1, 0]) == ZERO_SLICE_SCALE
    x = torch.randn(6, 40, generator=gen, dtype=torch.float64)
    x[4] = 0.0  # an all-zero token
    _, s = quantize_act(x, "int8-token")
    np.testing.assert_array_equal(s.numpy(), golden.compute_scale(x.numpy(), "int8", "token"))
    assert float(s[4, 0]) == ZERO_SLICE_SCALE
    assert act_scale_from_absmax(0.0) == ZERO_SLICE_SCALE
    for absmax in (1e-9, 3.0, float(x.abs().max())):
        assert act_scale_from_absmax(absmax) == float(
            golden.compute_scale(np.array([absmax, -absmax / 2]), "int8", "tensor")
        )


def test_act_quantizer_matches_golden():
    x = torch.randn(8, 40, dtype=torch.float64) * 3
    a, s = quantize_act(x, "int8-static", 0.05)
    np.testing.assert_array_equal(a.numpy(), golden.quantize_activations(x.numpy(), 0.05))
    a, s = quantize_act(x, "int8-token")
    gs = golden.compute_scale(x.numpy(), "int8", "token")
    np.testing.assert_array_equal(s.numpy(), gs)
    np.testing.assert_array_equal(
        a.numpy(), golden.get("int8").decode_ints(golden.quantize(x.numpy(), "int8", gs, "token"))
    )


def test_encoder_rejects_nan_and_unknown_format():
    with pytest.raises(QuantError, match="NaN"):
        grid_of("dint4").encode(torch.tensor([0.0, float("nan")]))
    with pytest.raises(golden.FormatError, match="unknown format"):
        grid_of("int3")
