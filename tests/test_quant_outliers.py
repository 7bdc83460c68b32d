"""Outlier tokens out of the static activation range, their rows bypassing int8 (issue 13).

Expectations are computed here with numpy and golden (token maxima, ``np.median``, the
dequantized weights from ``Format.decode``), never taken from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clicheck import assert_quant_refuses

import golden
from quant import QuantError
from quant.evaluate import perplexity
from quant.export import capture_int8_inputs, integer_mode_run, layer_tile
from quant.models import model_info
from quant.outliers import bypass_counts, reset_bypass_counts, static_act_range
from quant.pipeline import QuantConfig, collect_group_inputs, quantize_model, quantized_linears
from quant.qlinear import LinearSpec, QuantLinear, quantize_weight
from quant.testing import random_ids, tiny_llama

FACTOR = 4.0


def _inlier_scale(x: torch.Tensor, factor: float) -> float:
    """The expected static scale: max |x| over tokens with max |x| <= factor x median / 127."""
    token_max = np.abs(x.double().numpy()).max(axis=1)
    inliers = token_max[token_max <= factor * np.median(token_max)]
    return float(inliers.max()) / 127


def _tokens(t: int = 12, k: int = 32, huge: tuple[int, ...] = (0,), seed: int = 0):
    """``[t, k]`` O(1) activations; the rows ``huge`` scaled x40 (attention-sink-like)."""
    x = torch.randn(t, k, generator=torch.Generator().manual_seed(seed))
    x[list(huge)] *= 40.0
    return x


def _layers(x_calib: torch.Tensor, n: int = 8, fmt: str = "dint4", bias: bool = True):
    """The same weight codes as a QuantLinear with an outlier bypass and one without, each
    with its own static scale from ``x_calib``."""
    g = torch.Generator().manual_seed(7)
    w = torch.randn(n, x_calib.shape[1], generator=g)
    b = torch.randn(n, generator=g) if bias else None
    codes, w_scale = quantize_weight(w, fmt)
    spec = LinearSpec(fmt, "int8-static")
    s_in, above = static_act_range(x_calib, FACTOR)
    s_all, none = static_act_range(x_calib)
    assert none is None
    with_bypass = QuantLinear(codes, w_scale, b, spec, s_in, name="l", bypass_above=above)
    plain = QuantLinear(codes, w_scale, b, spec, s_in, name="l")
    return with_bypass, plain, s_all


def _w_hat(q: QuantLinear) -> torch.Tensor:
    """Dequantized weights from golden: ``F.values[codes] · s_w`` rounded to float32."""
    w = q.fmt.decode(q.w_codes.numpy()) * q.w_scale.reshape(-1, 1).numpy()
    return torch.from_numpy(w).float()


# ---- (a) the static range leaves the outlier tokens out ----------------------------------


def test_outlier_tokens_are_left_out_of_the_static_range():
    x = _tokens(huge=(0, 5))
    s_in, above = static_act_range(x, FACTOR)
    s_all, _ = static_act_range(x)
    assert s_all == float(np.abs(x.numpy()).max()) / 127
    assert s_in == _inlier_scale(x, FACTOR)
    assert s_in < s_all / 10  # the two x40 tokens set the whole range without the factor
    assert above == 127 * s_in


def test_without_outliers_the_range_is_the_same():
    x = _tokens(huge=())
    assert static_act_range(x, 1000.0) == (static_act_range(x)[0], 127 * static_act_range(x)[0])


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    """Token maxima 1, 2, 4, 7 with factor 3: the median 3 keeps 7 (<= 9); the lower middle
    (2) would drop it (> 6)."""
    x = torch.tensor([[1.0, 0.0], [0.0, -2.0], [4.0, 1.0], [-7.0, 3.0]])
    assert np.median([1, 2, 4, 7]) * 3 >= 7
    assert static_act_range(x, 3.0)[0] == 7 / 127
    assert static_act_range(x, 2.0)[0] == 4 / 127  # 7 > 2 x 3


def test_quantize_model_sets_each_static_scale_from_the_inlier_tokens():
    """RTN (no scaling): each linear's a_scale is its group input's inlier range, and the
    threshold 127 a_scale; a huge first token (x40) makes the full range much larger."""
    model = tiny_llama()
    info = model_info(model)
    inputs = collect_group_inputs(model, info, random_ids(2, 16, seed=1), progress=False)
    for groups in inputs:
        for x in groups.values():
            x[0] *= 40.0
    config = QuantConfig("rtn", "dint4", "int8-static", outlier_factor=FACTOR)
    assert config.act_mode == "static+outlier-bypass"
    quantize_model(
        model, info, None, config, group_inputs=inputs, output_ranges=True, progress=False
    )
    qs = quantized_linears(model)
    assert len(qs) == 14
    for name, q in qs.items():
        layer, group = int(name.split(".")[1]), name.rsplit(".", 1)[1]
        key = {"q": "qkv", "k": "qkv", "v": "qkv", "o": "o", "gate": "gate/up", "up": "gate/up"}
        x = inputs[layer][key.get(group.split("_")[0], "down")]
        assert q.a_scale == _inlier_scale(x, FACTOR), name
        assert q.a_scale < float(x.abs().max()) / 127 / 4, name
        assert q.bypass_above == 127 * q.a_scale
    assert all(c == (0, 0) for c in bypass_counts(model).values())  # calibration not counted


def test_per_token_groups_have_no_bypass():
    model = tiny_llama()
    config = QuantConfig(
        "rtn", "dint4", "int8-static", token_groups=("down",), outlier_factor=FACTOR
    )
    assert config.act_mode == "static+down-token+outlier-bypass"
    quantize_model(model, model_info(model), random_ids(2, 16, seed=1), config, progress=False)
    for name, q in quantized_linears(model).items():
        down = name.endswith("down_proj")
        assert (q.bypass_above is None) == down and (q.a_scale is None) == down, name


# ---- (b) rows beyond the range are W4A16, the others unchanged -----------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_bypassed_rows_are_float_activations_times_the_4bit_weights(bias):
    q, plain, _ = _layers(_tokens(huge=(0,)), bias=bias)
    x = _tokens(t=10, huge=(1, 4), seed=3)
    rows = np.abs(x.numpy()).max(axis=1) > 127 * q.a_scale
    assert rows.tolist() == [i in (1, 4) for i in range(10)]
    with torch.no_grad():
        y = q(x)
        want = x[rows].float() @ _w_hat(q).T
        if bias:
            want = want + q.bias
        assert torch.equal(y[rows], want)
        assert torch.equal(y[~rows], plain(x)[~rows])
        # any leading shape: the rows are the flattened tokens
        assert torch.equal(q(x.reshape(2, 5, -1)), y.reshape(2, 5, -1))


def test_no_row_above_the_range_gives_the_plain_layer():
    q, plain, _ = _layers(_tokens(huge=(0,)))
    x = _tokens(t=10, huge=(), seed=3)
    assert np.abs(x.numpy()).max() <= 127 * q.a_scale
    with torch.no_grad():
        assert torch.equal(q(x), plain(x))
    assert (q.bypassed_rows, q.seen_rows) == (0, 10)


# ---- (c) fake and integer modes agree bit for bit --------------------------------------------


@pytest.mark.parametrize("huge", [(0, 3, 7), tuple(range(9))], ids=["some", "all"])
def test_fake_and_integer_modes_are_bit_identical_with_the_bypass(huge):
    q, _, _ = _layers(_tokens(huge=(0,)))
    assert q.exact_float32
    x = _tokens(t=9, huge=huge, seed=5)
    with torch.no_grad():
        fake = q(x)
        q.mode = "integer"
        integer = q(x)
        q.mode = "fake"
        q.exact_float32 = False  # the dequantized fallback bypasses the same rows identically
        loose = q(x)
    assert torch.equal(fake, integer)
    rows = torch.from_numpy(np.abs(x.numpy()).max(axis=1) > q.bypass_above)
    assert torch.equal(loose[rows], fake[rows])
    if not rows.all():  # the int8 rows: golden.accumulate on the codes golden computes
        a = golden.quantize_activations(x[~rows].double().numpy(), q.a_scale)
        acc = golden.accumulate(a, q.w_codes.numpy(), q.fmt)
        y = (acc * 2.0**-q.fmt.frac_bits * q.a_scale * q.w_scale.numpy().reshape(-1)).astype(
            np.float32
        )
        np.testing.assert_array_equal(integer[~rows].numpy(), (torch.from_numpy(y) + q.bias))


# ---- (d) counts, and a whole model in both modes ---------------------------------------------


def test_counts_match_the_rows_above_the_threshold_and_perplexity_is_equal():
    model = tiny_llama()
    config = QuantConfig("rtn", "dint4", "int8-static", outlier_factor=2.0)
    quantize_model(model, model_info(model), random_ids(4, 32, seed=1), config, progress=False)
    qs = quantized_linears(model)
    want = {name: [0, 0] for name in qs}

    def count(name):
        def hook(mod, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double().numpy()
            want[name][0] += int((np.abs(x).max(axis=1) > mod.bypass_above).sum())
            want[name][1] += x.shape[0]

        return hook

    hooks = [q.register_forward_pre_hook(count(n)) for n, q in qs.items()]
    windows = random_ids(3, 32, seed=3)
    try:
        fake = perplexity(model, windows, "fake", progress=False)
        got_fake = bypass_counts(model)
        reset_bypass_counts(model)
        assert all(c == (0, 0) for c in bypass_counts(model).values())
        integer = perplexity(model, windows, "integer", progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert integer.ppl == fake.ppl
    assert set(got_fake) == set(qs)
    for name in qs:  # the hooks saw both runs: each run counted half
        assert got_fake[name] == bypass_counts(model)[name] == (want[name][0] // 2, 3 * 32)
        assert want[name][0] % 2 == 0
    total = sum(b for b, _ in got_fake.values())
    assert 0 < total < 14 * 3 * 32  # some rows, not all, took the bypass


# ---- (e) bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.0, 0.5, -2.0, float("nan"), float("inf")])
def test_outlier_factor_must_be_above_one(factor):
    with pytest.raises(QuantError, match="outlier factor must be a finite number > 1"):
        QuantConfig("rtn", "dint4", "int8-static", outlier_factor=factor)


@pytest.mark.parametrize("acts", ["int8-token", "fp"])
def test_outlier_factor_needs_static_activations(acts):
    with pytest.raises(QuantError, match=f"use acts int8-static with it, not {acts}"):
        QuantConfig("rtn", "dint4", acts, outlier_factor=FACTOR)


def test_outlier_factor_needs_a_static_layer_type():
    every = ("o", "qkv", "down", "gate/up")
    with pytest.raises(QuantError, match="no static range"):
        QuantConfig("rtn", "dint4", "int8-static", token_groups=every, outlier_factor=FACTOR)


def test_quant_linear_bypass_needs_static_activations():
    codes, w_scale = quantize_weight(torch.randn(4, 8), "dint4")
    with pytest.raises(QuantError, match="needs int8-static activations"):
        QuantLinear(codes, w_scale, None, LinearSpec("dint4", "int8-token"), bypass_above=1.0)
    with pytest.raises(QuantError, match="positive threshold"):
        QuantLinear(codes, w_scale, None, LinearSpec("dint4"), 0.1, bypass_above=0.0)


def test_export_refuses_a_bypassed_layer():
    model = tiny_llama()
    config = QuantConfig("rtn", "dint4", "int8-static", outlier_factor=FACTOR)
    quantize_model(
        model,
        model_info(model),
        random_ids(2, 16, seed=1),
        config,
        output_ranges=True,
        progress=False,
    )
    q = quantized_linears(model)["layers.0.self_attn.q_proj"]
    a = np.zeros((2, q.in_features), dtype=np.int64)
    windows = random_ids(1, 8, seed=2)
    for call in (
        lambda: layer_tile(q, a, {"model": "tiny"}),
        lambda: capture_int8_inputs(model, q, windows),
        lambda: integer_mode_run(model, {q.name: q}, windows),
        lambda: q.integer_inputs(torch.zeros(2, q.in_features)),
    ):
        with pytest.raises(QuantError, match="layers.0.self_attn.q_proj: .*without --outlier"):
            call()


# ---- the CLI -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,words",
    [
        (["run", "--outlier-factor", "1"], ["argument --outlier-factor:", "> 1"]),
        (["run", "--outlier-factor", "x"], ["argument --outlier-factor:", "> 1"]),
        (["run", "--acts", "int8-token", "--outlier-factor", "4"], ["use acts int8-static"]),
        (["export", "--outlier-factor", "4"], ["layer tile", "drop --outlier-factor"]),
    ],
)
def test_cli_bad_outlier_factor_is_one_line_before_the_model(
    work, capsys, no_model_load, argv, words
):
    assert_quant_refuses(work, capsys, argv, *words)
