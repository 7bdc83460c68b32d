"""Perplexity on held-out text, in fake-quant or integer mode.

Perplexity = ``exp(Σ NLL / Σ predicted tokens)`` over non-overlapping windows of
``seqlen`` tokens, each scored alone (no context carried across windows; the
first token of a window is not predicted, so each window predicts ``seqlen - 1``
tokens).

Integer mode (``mode="integer"``) runs every :class:`quant.qlinear.QuantLinear`
through ``golden.accumulate`` on int8 activation codes and weight codes; the
non-linear parts (norms, attention softmax, SiLU) stay float32. Fake and
integer modes use the same codes; their layer outputs differ only by float32
rounding (bound in :mod:`quant.qlinear`), so perplexities agree to about 1e-4
relative on the models tested (a rounding difference can move an activation
across an int8 midpoint in a later layer; tests check 1e-3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from .errors import QuantError
from .qlinear import set_mode


@dataclass(frozen=True)
class Perplexity:
    ppl: float
    nll: float  # summed negative log-likelihood (nats)
    tokens: int  # predicted tokens
    windows: int
    seqlen: int


def perplexity(
    model: nn.Module,
    windows: torch.Tensor,
    mode: str = "fake",
    progress: bool = True,
    desc: str = "perplexity",
) -> Perplexity:
    """Perplexity of ``model`` on ``windows [n, seqlen]`` (each window scored alone)."""
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise QuantError(f"windows must be [n, seqlen >= 2], got {tuple(windows.shape)}")
    set_mode(model, mode)
    nll, count = 0.0, 0
    try:
        with torch.no_grad():
            for w in tqdm(windows, desc=desc, disable=not progress):
                ids = w.unsqueeze(0)
                logits = model(input_ids=ids, use_cache=False).logits.float()
                loss = nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
                nll += float(loss)
                count += ids.shape[1] - 1
    finally:
        set_mode(model, "fake")
    return Perplexity(math.exp(nll / count), nll, count, windows.shape[0], windows.shape[1])
