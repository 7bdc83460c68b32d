"""Activation statistics and the SLAC sweep on tiny models."""

import json

import pytest
import torch

from quant.calibrate import (
    CalibrationError,
    calibration_ids,
    collect_stats,
    slac_figure,
    slac_markdown,
    slac_sweep,
    window_ids,
)
from quant.models import model_info
from quant.outputs import png_bytes
from quant.testing import random_ids, tiny_llama, tiny_opt


def test_stats_are_the_absmax_of_each_linear_input():
    model = tiny_llama()
    info = model_info(model)
    ids = random_ids(3, 16)
    seen = []
    h = model.model.layers[1].mlp.down_proj.register_forward_hook(
        lambda m, a, o: seen.append(a[0].reshape(-1, a[0].shape[-1]))
    )
    stats = collect_stats(model, info, ids, batch_tokens=16, percentiles=True, progress=False)
    h.remove()
    assert len(stats) == 2 * 7
    st = stats["layers.1.mlp.down_proj"]
    x = torch.cat(seen)
    assert torch.equal(st.channel_absmax, x.abs().amax(0))
    assert st.tokens == 48 and st.tensor_absmax == float(x.abs().max())
    assert 0 < st.percentile(50) <= st.tensor_absmax


@pytest.mark.parametrize("make", [tiny_llama, tiny_opt])
def test_slac_sweep_table_and_plot(make):
    model = make()
    tokens = random_ids(1, 256).reshape(-1)
    rows = slac_sweep(model, model_info(model), tokens, (8, 32), n_tokens=64, progress=False)
    assert {r["layer_type"] for r in rows} == {"qkv", "o", "gate/up", "down"}
    assert {r["seqlen"] for r in rows} == {8, 32}
    md = slac_markdown(rows, "tiny")
    assert "| 8 |" in md and "| 32 |" in md
    png = png_bytes(slac_figure(rows, "tiny"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    json.dumps(rows)


def test_windows_and_errors():
    t = torch.arange(100)
    assert window_ids(t, 10, 3).tolist()[1] == list(range(10, 20))
    assert calibration_ids(t, 25, 64).shape == (2, 25)
    with pytest.raises(CalibrationError, match="windows of 50"):
        window_ids(t, 50, 3)
