"""Folding per-input-channel scales keeps the FP model's function (LLaMA with GQA, OPT)."""

import copy

import pytest
import torch

from quant.models import decoder_layers, model_info
from quant.scaling import ScalingError, aqas_search, fold_scales, scale_groups, smooth_scales
from quant.testing import random_ids, tiny_llama, tiny_opt


def _random_fold(model, seed=0):
    info = model_info(model)
    g = torch.Generator().manual_seed(seed)
    for layer in decoder_layers(model, info):
        for grp in scale_groups(info, layer):
            n_free = layer.get_submodule(grp.linears[0]).in_features // grp.n_rep
            s = torch.exp(torch.randn(n_free, generator=g, dtype=torch.float64))
            fold_scales(layer, grp, s)
    return info


@pytest.mark.parametrize("make", [tiny_llama, tiny_opt], ids=["llama-gqa", "opt"])
def test_folded_model_equals_unfolded(make):
    model = make()
    folded = copy.deepcopy(model)
    info = _random_fold(folded)
    ids = random_ids(2, 24)
    want = model(input_ids=ids).logits
    got = folded(input_ids=ids).logits
    # the fold really changed weights
    assert not torch.equal(
        decoder_layers(model, info)[0].self_attn.q_proj.weight,
        decoder_layers(folded, info)[0].self_attn.q_proj.weight,
    )
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_gqa_o_scales_are_shared_across_query_heads():
    model = tiny_llama()
    info = model_info(model)
    assert info.n_rep == 2
    o = next(g for g in scale_groups(info, decoder_layers(model, info)[0]) if g.name == "o")
    s = torch.arange(1.0, 1.0 + info.n_kv_heads * info.head_dim, dtype=torch.float64)
    full = o.expand(s)
    assert full.numel() == info.n_heads * info.head_dim
    for h in range(info.n_heads):
        kv = h // info.n_rep
        d = info.head_dim
        assert torch.equal(full[h * d : (h + 1) * d], s[kv * d : (kv + 1) * d])
    # reduce is a max over the heads sharing a KV head
    r = torch.rand(info.n_heads * d, dtype=torch.float64)
    assert torch.equal(o.reduce(r), r.reshape(info.n_kv_heads, info.n_rep, d).amax(1).reshape(-1))


def test_unconstrained_o_scale_would_break_gqa_model():
    """Why the constraint exists: per-head o scales that differ cannot fold into v rows."""
    model = tiny_llama()
    info = model_info(model)
    layer = decoder_layers(model, info)[0]
    ids = random_ids(1, 16)
    want = model(input_ids=ids).logits
    s_full = torch.exp(torch.randn(info.n_heads * info.head_dim, dtype=torch.float64))
    with torch.no_grad():  # fold only the first head's copy into v: the others are wrong
        layer.self_attn.o_proj.weight.mul_(s_full.float())
        v_s = s_full[: info.n_kv_heads * info.head_dim]
        layer.self_attn.v_proj.weight.div_(v_s.float()[:, None])
    assert not torch.allclose(model(input_ids=ids).logits, want, atol=1e-3)


def test_smooth_scales_formula_and_bounds():
    x = torch.tensor([4.0, 1.0, 0.0, 9.0], dtype=torch.float64)
    w = torch.tensor([1.0, 4.0, 2.0, 0.0], dtype=torch.float64)
    s = smooth_scales(x, w, 0.5)
    torch.testing.assert_close(s, torch.tensor([2.0, 0.5, 1.0, 1.0], dtype=torch.float64))
    with pytest.raises(ScalingError):
        smooth_scales(x, w, 1.5)


def test_fold_rejects_bad_scales():
    model = tiny_llama()
    info = model_info(model)
    layer = decoder_layers(model, info)[0]
    g = scale_groups(info, layer)[0]
    with pytest.raises(ScalingError, match="positive"):
        fold_scales(layer, g, -torch.ones(64, dtype=torch.float64))


def test_aqas_search_never_worse_than_smoothquant_on_its_objective():
    model = tiny_llama()
    info = model_info(model)
    layer = decoder_layers(model, info)[0]
    g = scale_groups(info, layer)[0]
    x = torch.randn(256, 64)
    x[:, :3] *= 30  # outlier channels
    res = aqas_search(g, layer, x, x.abs().amax(0).double(), "dint4", "int8-static")
    assert res.losses[res.alpha] == min(res.losses.values())
    assert res.losses[res.alpha] <= res.losses[0.5]
    assert len(res.losses) == 11
