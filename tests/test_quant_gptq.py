"""GPTQ lowers the layer output error against RTN, for every 4-bit format."""

import pytest
import torch

import golden
from quant import QuantError
from quant.gptq import HessianAccumulator, gptq_quantize
from quant.qlinear import dequantize_weight, fake_quant_weight, quantize_weight


def _data(seed=0, t=512, k=64, n=32):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(k, k, generator=g, dtype=torch.float64)
    x = torch.randn(t, k, generator=g, dtype=torch.float64) @ mix  # correlated inputs
    w = torch.randn(n, k, generator=g, dtype=torch.float64)
    return x, w


@pytest.mark.parametrize("fmt", ["int4", "dint4", "fp4_e2m1"])
def test_gptq_beats_rtn_on_layer_output(fmt):
    x, w = _data()
    acc = HessianAccumulator(w.shape[1])
    for chunk in x.split(100):
        acc.add(chunk)
    torch.testing.assert_close(acc.h, 2.0 / x.shape[0] * x.T @ x)
    codes, scale = gptq_quantize(w, acc.h, fmt, block_size=16)
    w_gptq = dequantize_weight(codes, fmt, scale)
    err_gptq = ((x @ (w_gptq - w).T) ** 2).mean()
    err_rtn = ((x @ (fake_quant_weight(w, fmt) - w).T) ** 2).mean()
    assert err_gptq < 0.8 * err_rtn
    # codes are valid codes of the format, scales are the RTN absmax scales
    assert codes.min() >= 0 and codes.max() < 2 ** golden.get(fmt).bits
    torch.testing.assert_close(scale, quantize_weight(w, fmt)[1])


def test_gptq_with_identity_hessian_is_rtn():
    _, w = _data(1)
    codes, _ = gptq_quantize(w, torch.eye(w.shape[1], dtype=torch.float64), "dint4", damp=0.0)
    assert torch.equal(codes, quantize_weight(w, "dint4")[0])


def test_gptq_errors():
    x, w = _data()
    h = x.T @ x
    with pytest.raises(QuantError, match="NaN"):
        gptq_quantize(w.clone().fill_(float("nan")), h, "dint4")
    with pytest.raises(golden.FormatError, match="unknown format"):
        gptq_quantize(w, h, "int5")
    with pytest.raises(QuantError, match="Hessian shape"):
        gptq_quantize(w, h[:10, :10], "dint4")
