"""Online Hadamard rotation of the down_proj input (quant.rotation, QuantConfig.rotate_groups).

Expected values use golden's Hadamard matrix as a plain matrix product (not the butterflies
under test) and golden's quantizers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clicheck import assert_quant_refuses

from golden import hadamard
from quant import QuantError
from quant.models import model_info
from quant.pipeline import QuantConfig, collect_group_inputs, quantize_model, quantized_linears
from quant.qlinear import quantize_weight, set_mode
from quant.rotation import RotatedInput, check_rotatable
from quant.testing import random_ids, tiny_llama


def _q(k: int) -> np.ndarray:
    return hadamard.hadamard_matrix(k).astype(np.float64) / np.sqrt(k)


def _quantized(config: QuantConfig):
    model = tiny_llama()
    info = model_info(model)
    ids = random_ids(2, 16, seed=1)
    inputs = collect_group_inputs(model, info, ids, progress=False)
    float_down = {
        i: layer.mlp.down_proj.weight.detach().clone() for i, layer in enumerate(model.model.layers)
    }
    quantize_model(model, info, None, config, group_inputs=inputs, progress=False)
    return model, inputs, float_down


def test_down_proj_takes_rotated_weights_and_a_rotated_static_range():
    config = QuantConfig("rtn", "dint4", "int8-static", rotate_groups=("down",))
    assert config.act_mode == "static+down-hadamard"
    model, inputs, float_down = _quantized(config)
    qs = quantized_linears(model)
    assert len(qs) == 14  # the rotated linear is still found (inside its wrapper)
    for i, layer in enumerate(model.model.layers):
        wrapper = layer.mlp.down_proj
        assert isinstance(wrapper, RotatedInput)
        q = wrapper.inner
        assert qs[f"layers.{i}.mlp.down_proj"] is q
        k = q.in_features
        assert k == 96  # 12 * 8
        w_rot = torch.from_numpy(float_down[i].double().numpy() @ _q(k)).float()
        codes, scale = quantize_weight(w_rot, "dint4")
        assert torch.equal(q.w_codes.long(), codes)
        x_rot = inputs[i]["down"].double().numpy() @ _q(k)
        assert q.a_scale == pytest.approx(np.abs(x_rot).max() / 127, rel=1e-6)
        assert not isinstance(layer.mlp.up_proj, RotatedInput)  # only the listed type


@pytest.mark.parametrize("acts", ["int8-static", "int8-token"])
def test_fake_and_integer_mode_are_bit_identical_with_the_rotation(acts):
    """The table's improved recipe (every input rotated, MSE clipping, act-order GPTQ)."""
    every = ("qkv", "o", "gate/up", "down")
    config = QuantConfig(
        "gptq", "dint4", acts, rotate_groups=every, weight_clip="mse", act_order=True
    )
    model, _, _ = _quantized(config)
    assert sum(isinstance(m, RotatedInput) for m in model.modules()) == 14
    ids = random_ids(2, 16, seed=5)
    with torch.no_grad():
        fake = model(input_ids=ids).logits
        assert set_mode(model, "integer") == 14
        integer = model(input_ids=ids).logits
    assert torch.equal(fake, integer)


def test_the_wrapper_feeds_the_rotated_input_to_the_linear():
    """W4A16: the wrapper's output is ``(x Q) Ŵᵀ`` with Ŵ the inner linear's 4-bit weights,
    which approximate the float ``W Q`` (so ``x Wᵀ`` is kept up to weight rounding)."""
    model, _, float_down = _quantized(QuantConfig("rtn", "dint4", "fp", rotate_groups=("down",)))
    wrapper = model.model.layers[0].mlp.down_proj
    x = torch.randn(5, 96, generator=torch.Generator().manual_seed(3))
    want = (x.double().numpy() @ _q(96)) @ wrapper.inner.w_hat.double().numpy().T
    with torch.no_grad():
        got = wrapper(x).double().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    w_hat_back = wrapper.inner.w_hat.double().numpy() @ _q(96).T  # Ŵ Qᵀ ~ W
    err = np.abs(w_hat_back - float_down[0].double().numpy()).max()
    assert 0 < err < np.abs(float_down[0].numpy()).max() / 2


def test_bad_rotations_are_refused():
    with pytest.raises(QuantError, match="no Hadamard rotation of size 100"):
        check_rotatable(100, "layers.0 qkv input")
    check_rotatable(576, "SmolLM2's hidden width")  # 36 * 16
    with pytest.raises(QuantError, match="unknown layer type 'mlp' to rotate"):
        QuantConfig("rtn", rotate_groups=("mlp",))
    with pytest.raises(QuantError, match="not with method fp"):
        QuantConfig("fp", acts="fp", rotate_groups=("down",))


@pytest.mark.parametrize(
    "argv,words",
    [
        (["run", "--rotate", "mlp"], ["unknown layer type 'mlp' to rotate"]),
        (["run", "--method", "aqas", "--act-order"], ["activation ordering", "gptq method"]),
        (["run", "--weight-clip", "l1"], ["argument --weight-clip:", "invalid choice"]),
    ],
)
def test_cli_bad_rotation_or_weight_options_are_one_line_before_the_model(
    work, capsys, no_model_load, argv, words
):
    assert_quant_refuses(work, capsys, argv, *words)


def test_a_table_on_widths_the_rotation_cannot_take_fails_before_the_model(
    work, capsys, no_model_load
):
    """The improved rows rotate every input: a feed-forward width of 100 (no Hadamard
    matrix) is refused up front, not after the paper's rows have run."""
    config = work / "tiny-llama" / "config.json"
    config.write_text(
        config.read_text().replace('"intermediate_size": 96', '"intermediate_size": 100')
    )
    assert_quant_refuses(work, capsys, ["table"], "--rotate down", "size 100")
