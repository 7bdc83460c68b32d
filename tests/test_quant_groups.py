"""Per-group weights when the requested group does not divide K: the largest divisor of K
not above the request, whole groups only (software only: not mappable onto the array)."""

from __future__ import annotations

import pytest

from quant.models import model_info
from quant.pipeline import QuantConfig, quantize_model, quantized_linears
from quant.testing import random_ids, tiny_llama


@pytest.mark.parametrize(
    "k,requested,used", [(576, 128, 96), (1536, 128, 128), (96, 40, 32), (7, 4, 1)]
)
def test_group_size_is_the_largest_divisor_of_k_not_above_the_request(k, requested, used):
    cfg = QuantConfig("rtn", "dint4", "fp", group_size=requested)
    assert cfg.group_size_for(k) == used
    assert k % used == 0 and all(k % d for d in range(used + 1, requested + 1))
    assert QuantConfig("rtn", "dint4", "fp").group_size_for(k) is None


def test_groups_that_do_not_divide_k_quantize_whole_groups():
    """tiny-llama's K are 64 and 96: a requested group of 40 becomes 32 on both, and every
    linear's codes dequantize with whole groups of that size."""
    model = tiny_llama()
    report = quantize_model(
        model,
        model_info(model),
        random_ids(2, 16, seed=1),
        QuantConfig("rtn", "dint4", "fp", group_size=40),
        progress=False,
    )
    qs = quantized_linears(model)
    assert qs and {q.spec.group_size for q in qs.values()} == {32}
    for q in qs.values():
        assert q.in_features % q.spec.group_size == 0
        assert q.w_scale.shape[:2] == (q.out_features, q.in_features // 32)
    assert set(report.group_sizes.values()) == {32}
