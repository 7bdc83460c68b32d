"""Fake-quant and integer (golden.accumulate) modes agree; exports reproduce the layer."""

import copy
import stat

import numpy as np
import pytest
import torch

import golden
import tools
from quant import QuantError
from quant.evaluate import perplexity
from quant.export import capture_int8_inputs, layer_tile
from quant.models import model_info
from quant.outliers import bypass_counts
from quant.pipeline import QuantConfig, quantize_model, quantized_linears
from quant.qlinear import set_mode
from quant.testing import random_ids, tiny_llama, tiny_opt

U = 2.0**-24  # float32 unit roundoff


def _quantized(make, method, fmt, acts, sequential=False, token_groups=(), outlier_factor=None):
    model = make()
    info = model_info(model)
    config = QuantConfig(
        method,
        fmt,
        acts,
        search_tokens=64,
        token_groups=token_groups,
        outlier_factor=outlier_factor,
    )
    quantize_model(
        model,
        info,
        random_ids(4, 32, seed=1),
        config,
        sequential=sequential,
        output_ranges=True,
        progress=False,
    )
    return model, info


def _layer_io(model, ids):
    """Inputs and outputs of every QuantLinear in the current mode."""
    got = {}

    def make(n):
        def hook(_m, a, o):
            got.setdefault(n, (a[0].detach(), o.detach()))

        return hook

    hooks = [q.register_forward_hook(make(n)) for n, q in quantized_linears(model).items()]
    with torch.no_grad():
        model(input_ids=ids)
    for h in hooks:
        h.remove()
    return got


@pytest.mark.parametrize(
    "make,method,fmt,acts",
    [
        (tiny_llama, "aqas+gptq", "dint4", "int8-static"),
        (tiny_llama, "smoothquant", "fp4_e2m1", "int8-token"),
        (tiny_opt, "aqas", "int4", "int8-static"),
    ],
)
@pytest.mark.parametrize("exact", [True, False], ids=["exact-fake", "dequantized-fake"])
def test_layer_outputs_agree_within_float32_bound(make, method, fmt, acts, exact):
    model, _ = _quantized(make, method, fmt, acts)
    for q in quantized_linears(model).values():
        assert q.exact_float32  # K * 127 * max|int| < 2**24 for these sizes
        q.exact_float32 = exact  # the fallback path must meet the float32 bound
    ids = random_ids(1, 20, seed=2)
    fake = _layer_io(model, ids)
    for name, q in quantized_linears(model).items():
        x, y_fake = fake[name]
        x2 = x.reshape(-1, x.shape[-1])
        q.mode = "integer"
        y_int = q(x2)
        q.mode = "fake"
        a, s_a = q.integer_inputs(x2)
        w = q.fmt.decode(q.w_codes.numpy()) * q.w_scale_channel[:, None]
        mag = (np.abs(a) * np.asarray(s_a)) @ np.abs(w).T  # Σ_k |a s_a| |w s_w|
        k = x2.shape[1]
        y_int = y_int.double().numpy()
        bias = q.bias.double().numpy() if q.bias is not None else 0.0
        diff = np.abs(y_fake.reshape(-1, q.out_features).double().numpy() - y_int)
        # both add the same float32 bias after the product: one more rounding each
        bound = (k + 3) * U * mag + 2 * U * (np.abs(y_int) + np.abs(bias))
        assert np.all(diff <= bound), (name, float((diff - bound).max()))
        if exact:  # exact-integer fake quant is bit-identical to golden integer mode
            np.testing.assert_array_equal(y_fake.reshape(-1, q.out_features).numpy(), y_int)
        # integer mode is exactly golden: acc * 2^-f * s_a * s_w rounded once to float32
        acc = golden.accumulate(a, q.w_codes.numpy(), q.fmt)
        want = (acc * 2.0**-q.fmt.frac_bits * s_a * q.w_scale_channel).astype(np.float32)
        got = (torch.from_numpy(want) + (q.bias if q.bias is not None else 0)).numpy()
        np.testing.assert_array_equal(y_int.astype(np.float32), got)


@pytest.mark.parametrize(
    "token_groups,outlier_factor",
    [((), None), (("down",), None), (("down",), 2.0)],
    ids=["static", "static+down-token", "static+down-token+outlier-bypass"],
)
def test_perplexities_agree_between_modes(token_groups, outlier_factor):
    model, _ = _quantized(
        tiny_llama,
        "aqas+gptq",
        "dint4",
        "int8-static",
        token_groups=token_groups,
        outlier_factor=outlier_factor,
    )
    modes = {n.rsplit(".", 1)[-1]: q.spec.acts for n, q in quantized_linears(model).items()}
    want_down = "int8-token" if token_groups else "int8-static"
    assert modes["down_proj"] == want_down and modes["q_proj"] == modes["up_proj"] == "int8-static"
    windows = random_ids(3, 32, seed=3)
    fake = perplexity(model, windows, "fake", progress=False)
    integer = perplexity(model, windows, "integer", progress=False)
    assert integer.ppl == fake.ppl  # every layer bit-identical, so the whole model is
    assert fake.tokens == 3 * 31
    if outlier_factor:  # rows of both runs took the W4A16 bypass (identical in both modes)
        assert sum(b for b, _ in bypass_counts(model).values()) > 0
    for q in quantized_linears(model).values():
        q.exact_float32 = False  # dequantized float32 fake quant: within float rounding
    loose = perplexity(model, windows, "fake", progress=False)
    assert abs(loose.ppl - integer.ppl) <= 1e-3 * integer.ppl


def _relative_logit_error(model, ref, windows):
    """``mean((logits - ref)^2) / mean(ref^2)``: how far a quantized model is from FP."""
    with torch.no_grad():
        logits = model(input_ids=windows).logits
    return float(((logits - ref) ** 2).mean() / (ref**2).mean())


@pytest.mark.parametrize("make,fmt", [(tiny_llama, "dint4"), (tiny_opt, "int4")])
def test_w4a8_output_error_is_lower_with_aqas_than_rtn(make, fmt):
    """The tiny models have outlier channels (x8 norm weights) that set the static int8 scale;
    AQAS moves them into the weights, so W4A8 strays less from FP than plain RTN does.

    Measured as the error of the logits against the FP model on held-out windows (perplexity
    of a random model is no quality signal: on these it goes either way). Measured here:
    llama/dint4 0.21 vs 0.41, opt/int4 0.08 vs 0.15, and AQAS was lower for every
    format and seed tried.
    """
    windows = random_ids(4, 32, seed=4)
    with torch.no_grad():
        ref = make()(input_ids=windows).logits
    err = {
        m: _relative_logit_error(_quantized(make, m, fmt, "int8-static")[0], ref, windows)
        for m in ("rtn", "aqas")
    }
    assert err["rtn"] > 0  # quantization changes the model
    assert err["aqas"] < 0.8 * err["rtn"], err


def test_sequential_calibration_runs_and_sets_output_ranges():
    model, _ = _quantized(tiny_llama, "gptq", "dint4", "int8-static", sequential=True)
    qs = quantized_linears(model)
    assert len(qs) == 2 * 7
    assert all(q.out_absmax > 0 for q in qs.values())


def test_export_roundtrip_reproduces_integer_layer(tmp_path):
    model, _ = _quantized(tiny_llama, "aqas", "dint4", "int8-static")
    q = quantized_linears(model)["layers.1.mlp.down_proj"]
    a = capture_int8_inputs(model, q, random_ids(1, 24, seed=5))
    assert a.shape == (24, q.in_features)
    tile = layer_tile(
        q, a, {"model": "tiny-llama", "method": "aqas", "source": "random"}, slice(0, 16)
    )
    path = tmp_path / "tile.npz"
    tools.atomic_write(path, lambda f: golden.layerfile.save(tile, f))
    assert stat.S_IMODE(path.stat().st_mode) == tools.file_mode()
    back = golden.layerfile.load(path)
    meta = back.meta
    assert meta["layer"] == "layers.1.mlp.down_proj" and meta["N"] == 16 and meta["T"] == 24
    assert meta["outputs"] == [0, 16] and meta["weight_format"] == "dint4"
    assert set(meta) <= set(golden.layerfile.META_FIELDS)
    for name in golden.layerfile.ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(tile, name))
    y = back.expected()
    # the integer-mode layer's accumulator, requantized by the same constants
    q.mode, q.record_acc = "integer", True
    x_float = torch.tensor(a, dtype=torch.float64) * q.a_scale  # re-encodes to the same codes
    q(x_float.float())
    q.mode, q.record_acc = "fake", False
    np.testing.assert_array_equal(
        q.last_acc[:, :16], golden.accumulate(back.a, back.w_codes, "dint4")
    )
    np.testing.assert_array_equal(y, golden.requantize(q.last_acc[:, :16], back.M, back.sh))
    # and the int8 output is the float output in units of out_scale (to rounding, unclamped)
    y_float = q.last_acc[:, :16] * 2.0**-1 * float(back.a_scale) * back.w_scale
    ok = np.abs(y) < 127
    assert np.all(np.abs(y[ok] * back.out_scale - y_float[ok]) <= 0.5001 * back.out_scale)


def test_export_refuses_fields_outside_the_schema():
    model, _ = _quantized(tiny_llama, "rtn", "dint4", "int8-static")
    q = quantized_linears(model)["layers.0.self_attn.q_proj"]
    a = np.zeros((2, q.in_features), dtype=np.int64)
    with pytest.raises(golden.FormatError, match="'model' is missing"):
        layer_tile(q, a, {})
    with pytest.raises(golden.FormatError, match="unknown metadata field 'seed'"):
        layer_tile(q, a, {"model": "tiny", "seed": 1})


def test_integer_mode_refuses_group_weights():
    model = tiny_llama()
    quantize_model(
        model,
        model_info(model),
        random_ids(2, 16),
        QuantConfig("rtn", "dint4", "int8-static", group_size=16),
        progress=False,
    )
    with pytest.raises(QuantError, match="per-group"):
        set_mode(model, "integer")
    assert perplexity(copy.deepcopy(model), random_ids(1, 16), progress=False).ppl > 0


def test_token_groups_are_checked():
    with pytest.raises(QuantError, match="unknown layer type 'mlp'"):
        QuantConfig("aqas", "dint4", "int8-static", token_groups=("mlp",))
    with pytest.raises(QuantError, match="use acts int8-static"):
        QuantConfig("aqas", "dint4", "int8-token", token_groups=("down",))
    mix = QuantConfig("aqas+gptq", "dint4", "int8-static", token_groups=("down",))
    assert mix.act_mode == "static+down-token"
    assert QuantConfig("rtn", "dint4", "int8-token").act_mode == "per-token"


def test_per_token_down_proj_is_closer_to_fp_than_all_static():
    """Per-token scales at the down_proj input fit its rows better than one static scale:
    the model's logits are closer to FP (the tiny model has spiced outlier channels)."""
    windows = random_ids(2, 24, seed=4)
    with torch.no_grad():
        ref = tiny_llama()(input_ids=windows).logits
    errs = {}
    for groups in ((), ("down",)):
        model, _ = _quantized(tiny_llama, "rtn", "int8", "int8-static", token_groups=groups)
        errs[groups] = _relative_logit_error(model, ref, windows)
    assert errs[("down",)] < errs[()]
