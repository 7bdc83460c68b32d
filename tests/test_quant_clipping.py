"""MSE clipping search, GPTQ with a given scale and act-order, and the recipe/pipeline knobs."""

import pytest
import torch

from quant import QuantError
from quant.clipping import CLIP_RATIOS, mse_clip_scale
from quant.gptq import gptq_quantize
from quant.models import decoder_layers, layer_linears, model_info
from quant.pipeline import QuantConfig, collect_group_inputs, quantize_model, quantized_linears
from quant.qlinear import dequantize_weight, quantize_weight, set_mode, weight_scale
from quant.scaling import scale_groups
from quant.testing import random_ids, tiny_llama

FORMATS = ["int4", "dint4", "fp4_e2m1"]


def _weights(seed=0, n=16, k=64):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g, dtype=torch.float64)
    rows = torch.arange(0, n, 2)
    w[rows, torch.randint(0, k, (len(rows),), generator=g)] *= 8.0  # a few big outliers
    return w


def _errors(w, fmt, scale, gs=None, imp=None):
    """[N, G] (weighted) squared RTN error with ``scale``, via quantize/dequantize_weight."""
    codes, _ = quantize_weight(w, fmt, scale, gs)
    d2 = (w - dequantize_weight(codes, fmt, scale, gs)) ** 2
    if imp is not None:
        d2 = d2 * imp
    return d2.reshape(w.shape[0], -1, gs or w.shape[1]).sum(-1)


def _brute_force(w, fmt, gs=None, imp=None):
    """Per row/group, the first ratio (largest scale) with the smallest error: (scale, err)."""
    base = weight_scale(w, fmt, gs)
    best_s = best_e = None
    for r in CLIP_RATIOS:
        s = base * r
        e = _errors(w, fmt, s, gs, imp).reshape(base.shape)
        if best_s is None:
            best_s, best_e = s.clone(), e
        else:
            better = e < best_e
            best_s[better], best_e[better] = s[better], e[better]
    return best_s, best_e


@pytest.mark.parametrize("fmt", FORMATS)
def test_mse_scale_is_a_ratio_of_absmax_and_never_worse(fmt):
    w = _weights()
    w[1] = 0.0  # an all-zero row: every ratio ties, the absmax (zero-slice) scale stays
    s = mse_clip_scale(w, fmt)
    base = weight_scale(w, fmt)
    assert s.shape == (16, 1) and s.dtype == torch.float64
    candidates = torch.stack([base * r for r in CLIP_RATIOS])  # [R, N, 1]
    assert (candidates == s).any(dim=0).all()  # every row picked one of the ratios exactly
    err, err_abs = _errors(w, fmt, s), _errors(w, fmt, base)
    assert (err <= err_abs).all()
    assert err.sum() < err_abs.sum()
    assert (s < base).any() and s[1] == base[1]  # the outlier rows clip
    want, _ = _brute_force(w, fmt)
    assert torch.equal(s, want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_importance_keeps_the_important_weight_accurate(fmt):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(8, 64, generator=g, dtype=torch.float64)
    w[:, 5] = 4.0 * torch.where(torch.arange(8) % 2 == 0, 1.0, -1.0)  # each row's absmax
    imp = torch.ones(64, dtype=torch.float64)
    plain = mse_clip_scale(w, fmt)
    base = weight_scale(w, fmt)
    assert (plain < base).sum() >= 4  # unweighted, most rows clip their outlier
    assert torch.equal(mse_clip_scale(w, fmt, importance=0 * imp), base)  # all ties
    imp[5] = 1e6
    s = mse_clip_scale(w, fmt, importance=imp)
    # clipping channel 5 costs 1e6 x its error: only the absmax scale keeps it exact
    assert torch.equal(s, base)
    codes, _ = quantize_weight(w, fmt, s)
    assert torch.equal(dequantize_weight(codes, fmt, s)[:, 5], w[:, 5])
    # the weighted error at the chosen scale is the minimum over the ratios
    err = _errors(w, fmt, s, imp=imp)
    for r in CLIP_RATIOS:
        assert (err <= _errors(w, fmt, base * r, imp=imp)).all()
    # a random importance: the weighted brute force agrees
    imp = torch.rand(64, generator=g, dtype=torch.float64) * 10
    want, _ = _brute_force(w, fmt, imp=imp)
    assert torch.equal(mse_clip_scale(w, fmt, importance=imp), want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_group_scales_match_brute_force(fmt):
    w = _weights(1, n=8, k=64)
    imp = torch.rand(64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for importance in (None, imp):
        s = mse_clip_scale(w, fmt, group_size=16, importance=importance)
        assert s.shape == (8, 4, 1)
        want, best_err = _brute_force(w, fmt, 16, importance)
        assert torch.equal(s, want)
        err_abs = _errors(w, fmt, weight_scale(w, fmt, 16), 16, importance)
        assert (best_err.reshape(8, 4) <= err_abs).all() and best_err.sum() < err_abs.sum()


def test_mse_clip_errors():
    w = _weights()
    with pytest.raises(QuantError, match="clip ratios"):
        mse_clip_scale(w, "dint4", ratios=(1.0, 0.0))
    with pytest.raises(QuantError, match="clip ratios"):
        mse_clip_scale(w, "dint4", ratios=(1.1,))
    with pytest.raises(QuantError, match="clip ratios"):
        mse_clip_scale(w, "dint4", ratios=())
    with pytest.raises(QuantError, match="importance has shape"):
        mse_clip_scale(w, "dint4", importance=torch.ones(63))
    with pytest.raises(QuantError, match="non-negative"):
        mse_clip_scale(w, "dint4", importance=-torch.ones(64))
    with pytest.raises(QuantError, match="NaN"):
        mse_clip_scale(w, "dint4", importance=torch.full((64,), float("nan")))
    bad = w.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(QuantError, match="NaN"):
        mse_clip_scale(bad, "dint4")
    with pytest.raises(QuantError, match="multiple of group size"):
        mse_clip_scale(w, "dint4", group_size=24)


def _spd(seed=0, k=64, t=512):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(k, k, generator=g, dtype=torch.float64)
    x = torch.randn(t, k, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3.0, k)
    x = x @ mix  # correlated inputs of varied energy
    return x, 2.0 / t * x.T @ x


@pytest.mark.parametrize("fmt", FORMATS)
def test_act_order_with_diagonal_hessian_is_rtn(fmt):
    w = _weights(4)
    h = torch.diag(torch.rand(64, generator=torch.Generator().manual_seed(5)) + 0.1).double()
    codes, s = gptq_quantize(w, h, fmt, block_size=16, damp=0.0, act_order=True)
    assert torch.equal(codes, quantize_weight(w, fmt)[0])
    clip = mse_clip_scale(w, fmt)
    codes, s = gptq_quantize(w, h, fmt, block_size=16, damp=0.0, scale=clip, act_order=True)
    assert s is clip and torch.equal(codes, quantize_weight(w, fmt, clip)[0])


@pytest.mark.parametrize("fmt", FORMATS)
def test_act_order_is_gptq_on_the_permuted_problem(fmt):
    x, h = _spd(6)
    w = _weights(7, n=24)
    perm = torch.argsort(torch.diag(h), descending=True, stable=True)
    assert not torch.equal(perm, torch.arange(64))
    codes, s = gptq_quantize(w, h, fmt, block_size=16, act_order=True)
    codes_p, s_p = gptq_quantize(w[:, perm], h[perm][:, perm], fmt, block_size=16)
    assert torch.equal(codes, codes_p[:, torch.argsort(perm)])
    assert torch.equal(s, s_p) and torch.equal(s, weight_scale(w, fmt))
    plain, _ = gptq_quantize(w, h, fmt, block_size=16)
    assert not torch.equal(codes, plain)
    # layer output error of act-order GPTQ (on a clipped scale) is finite, below RTN's
    clip = mse_clip_scale(w, fmt, importance=torch.diag(h))
    clip_copy = clip.clone()
    codes, s = gptq_quantize(w, h, fmt, block_size=16, scale=clip, act_order=True)
    assert s is clip and torch.equal(s, clip_copy)
    d = w - dequantize_weight(codes, fmt, s)
    d_rtn = w - dequantize_weight(quantize_weight(w, fmt)[0], fmt, weight_scale(w, fmt))
    err, err_rtn = torch.trace(d @ h @ d.T), torch.trace(d_rtn @ h @ d_rtn.T)
    assert torch.isfinite(err) and err < err_rtn


def test_gptq_scale_shape_is_checked():
    _, h = _spd(8)
    w = _weights(8)
    for bad in (torch.ones(16), torch.ones(16, 2), torch.ones(15, 1), torch.ones(16, 4, 1)):
        with pytest.raises(QuantError, match="GPTQ scale has shape"):
            gptq_quantize(w, h, "dint4", scale=bad)


def test_quant_config_weight_options():
    with pytest.raises(QuantError, match="unknown weight clipping"):
        QuantConfig(weight_clip="bad")
    for method in ("aqas", "rtn", "smoothquant"):
        with pytest.raises(QuantError, match="GPTQ option"):
            QuantConfig(method=method, act_order=True)
    assert QuantConfig().weight_options == ""
    assert QuantConfig(weight_clip="mse").weight_options == "+MSE"
    assert QuantConfig(method="gptq", act_order=True).weight_options == "+act-order"
    both = QuantConfig(method="aqas+gptq", weight_clip="mse", act_order=True)
    assert both.weight_options == "+act-order+MSE"


def test_pipeline_gptq_mse_act_order():
    model = tiny_llama()
    info = model_info(model)
    layers = decoder_layers(model, info)
    floats = {
        f"layers.{i}.{name}": lin.weight.detach().clone()
        for i, layer in enumerate(layers)
        for name, lin in layer_linears(layer, info).items()
    }
    calib = random_ids(4, 32, seed=1)
    inputs = collect_group_inputs(model, info, calib, progress=False)
    cfg = QuantConfig("gptq", "dint4", "int8-static", weight_clip="mse", act_order=True)
    quantize_model(model, info, calib, cfg, group_inputs=inputs, progress=False)
    qs = quantized_linears(model)
    assert set(qs) == set(floats)
    clipped = reordered = 0
    for i, layer in enumerate(layers):
        for g in scale_groups(info, layer):
            x = inputs[i][g.name]
            imp = (x.double() ** 2).mean(dim=0)
            h = ((2.0 / x.shape[0]) * (x.T @ x)).double()  # as the pipeline builds it
            for name in g.linears:
                w, q = floats[f"layers.{i}.{name}"], qs[f"layers.{i}.{name}"]
                base, clip = weight_scale(w, "dint4"), mse_clip_scale(w, "dint4", importance=imp)
                assert torch.equal(q.w_scale, clip) and (clip <= base).all()
                clipped += int((clip < base).sum())
                codes, _ = gptq_quantize(w, h, "dint4", scale=clip, act_order=True)
                assert torch.equal(q.w_codes.long(), codes)
                reordered += not torch.equal(codes, gptq_quantize(w, h, "dint4", scale=clip)[0])
    assert clipped > 0 and reordered > 0
    ids = random_ids(2, 24, seed=3)
    with torch.no_grad():
        set_mode(model, "fake")
        fake = model(input_ids=ids).logits
        set_mode(model, "integer")
        integer = model(input_ids=ids).logits
        set_mode(model, "fake")
    assert torch.isfinite(fake).all()
    assert torch.equal(fake, integer)
