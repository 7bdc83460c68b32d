"""Activation statistics for calibration, and SLAC (sequence-length-aware calibration).

Statistics are collected with forward hooks on every quantized linear of every
decoder layer: per-input-channel absmax ``max_t |x[t, k]|``, per-tensor absmax,
optionally percentiles of ``|x|`` (from a bounded random token sample).

SLAC: activation ranges depend on the calibration sequence length (the paper
observes LLaMA's grow with length while OPT's barely move), so calibrate with
sequences as long as the target task's. :func:`slac_sweep` measures the range
per layer type (q/k/v, o, gate/up, down) for several lengths at a fixed token
budget; :func:`slac_markdown` tabulates it and :func:`slac_figure` draws it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from .errors import QuantError
from .models import LAYER_TYPES, ModelInfo, decoder_layers, layer_linears
from .outputs import new_figure

log = logging.getLogger(__name__)

LAYER_TYPE_ORDER = ("qkv", "o", "gate/up", "down")


class CalibrationError(QuantError):
    """Calibration data or settings are unusable; the message says what to do."""


def window_ids(
    tokens: torch.Tensor, seqlen: int, n_windows: int | None = None, what: str = "the text"
) -> torch.Tensor:
    """Non-overlapping windows ``[B, seqlen]`` from the start of a 1-D token stream.

    ``what`` names the text in the error raised when it is too short.
    """
    tokens = torch.as_tensor(tokens).reshape(-1)
    if seqlen < 2:
        raise CalibrationError(f"sequence length must be >= 2, got {seqlen}")
    avail = tokens.numel() // seqlen
    n = avail if n_windows is None else n_windows
    if n < 1 or n > avail:
        raise CalibrationError(
            f"need {n} windows of {seqlen} tokens but {what} has {tokens.numel()} tokens "
            f"({avail} windows); use a longer text, fewer windows or shorter sequences"
        )
    return tokens[: n * seqlen].reshape(n, seqlen)


def calibration_ids(
    tokens: torch.Tensor, seqlen: int, n_tokens: int, what: str = "the text"
) -> torch.Tensor:
    """``n_tokens // seqlen`` calibration sequences of ``seqlen`` tokens (the SLAC knob)."""
    return window_ids(tokens, seqlen, max(1, n_tokens // seqlen), what)


def batches(ids: torch.Tensor, batch_tokens: int = 2048) -> list[torch.Tensor]:
    """Split ``[B, L]`` into batches of about ``batch_tokens`` tokens."""
    b = max(1, batch_tokens // ids.shape[1])
    return list(ids.split(b))


@dataclass
class LinearStats:
    """Input/output ranges of one linear over the calibration data."""

    channel_absmax: torch.Tensor  # [K]
    out_absmax: float = 0.0
    tokens: int = 0
    sample: list[torch.Tensor] = field(default_factory=list)  # |x| samples for percentiles

    @property
    def tensor_absmax(self) -> float:
        return float(self.channel_absmax.max())

    def percentile(self, q: float) -> float:
        if not self.sample:
            raise CalibrationError("percentiles need collect_stats(..., percentiles=True)")
        return float(np.percentile(torch.cat(self.sample).numpy(), q))


def collect_stats(
    model: nn.Module,
    info: ModelInfo,
    ids: torch.Tensor,
    batch_tokens: int = 2048,
    percentiles: bool = False,
    sample_per_batch: int = 4096,
    progress: bool = True,
) -> dict[str, LinearStats]:
    """Run ``ids [B, L]`` through the model and record ranges of every quantized linear.

    Keys are ``"layers.{i}.{relative name}"``.
    """
    stats: dict[str, LinearStats] = {}
    gen = torch.Generator().manual_seed(0)
    hooks = []

    def make_hook(key: str):
        def hook(_mod, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).float()
            amax = x.abs().amax(dim=0)
            st = stats.get(key)
            if st is None:
                st = stats[key] = LinearStats(channel_absmax=amax.clone())
            else:
                torch.maximum(st.channel_absmax, amax, out=st.channel_absmax)
            st.tokens += x.shape[0]
            st.out_absmax = max(st.out_absmax, float(output.detach().abs().max()))
            if percentiles:
                flat = x.abs().reshape(-1)
                pick = torch.randint(
                    flat.numel(), (min(sample_per_batch, flat.numel()),), generator=gen
                )
                st.sample.append(flat[pick])

        return hook

    for i, layer in enumerate(decoder_layers(model, info)):
        for name, lin in layer_linears(layer, info).items():
            hooks.append(lin.register_forward_hook(make_hook(f"layers.{i}.{name}")))
    base = model.get_decoder()  # the LM head is not needed for linear statistics
    try:
        with torch.no_grad():
            for b in tqdm(batches(ids, batch_tokens), desc="calibration", disable=not progress):
                base(input_ids=b, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    return stats


def slac_sweep(
    model: nn.Module,
    info: ModelInfo,
    tokens: torch.Tensor,
    seqlens: tuple[int, ...] = (32, 64, 128, 256, 512),
    n_tokens: int = 2048,
    progress: bool = True,
) -> list[dict]:
    """Activation range versus calibration sequence length, per layer type.

    For each length L, ``n_tokens // L`` sequences of L tokens (same token budget)
    are run; for each layer type the rows report the mean over layers of the
    per-tensor absmax (``mean_absmax``), its max (``max_absmax``) and the mean
    99.9th percentile of |x| (``mean_p999``).
    """
    rows = []
    for L in tqdm(seqlens, desc="SLAC sweep", disable=not progress):
        stats = collect_stats(
            model, info, calibration_ids(tokens, L, n_tokens), percentiles=True, progress=False
        )
        by_type: dict[str, list[tuple[float, float]]] = {t: [] for t in LAYER_TYPE_ORDER}
        for key, st in stats.items():
            rel = key.split(".", 2)[2]
            by_type[LAYER_TYPES[rel]].append((st.tensor_absmax, st.percentile(99.9)))
        for t in LAYER_TYPE_ORDER:
            v = np.array(by_type[t])
            if not len(v):
                continue
            rows.append(
                {
                    "seqlen": L,
                    "layer_type": t,
                    "mean_absmax": float(v[:, 0].mean()),
                    "max_absmax": float(v[:, 0].max()),
                    "mean_p999": float(v[:, 1].mean()),
                }
            )
    return rows


def slac_markdown(rows: list[dict], model_name: str) -> str:
    """Markdown table of :func:`slac_sweep` rows (one row per length, one column per type)."""
    lens = sorted({r["seqlen"] for r in rows})
    types = [t for t in LAYER_TYPE_ORDER if any(r["layer_type"] == t for r in rows)]
    cell = {(r["seqlen"], r["layer_type"]): r for r in rows}
    head = "| seq len | " + " | ".join(f"{t} mean absmax (p99.9)" for t in types) + " |"
    lines = [
        f"Activation range vs calibration sequence length ({model_name}; mean over layers)",
        "",
        head,
        "|" + "---|" * (len(types) + 1),
    ]
    for L in lens:
        cells = [
            f"{cell[(L, t)]['mean_absmax']:.2f} ({cell[(L, t)]['mean_p999']:.2f})" for t in types
        ]
        lines.append(f"| {L} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def slac_figure(rows: list[dict], title: str) -> Figure:
    """Mean per-tensor absmax versus sequence length, one line per layer type."""
    fig, ax = new_figure((6, 4))
    for t in LAYER_TYPE_ORDER:
        pts = sorted((r["seqlen"], r["mean_absmax"]) for r in rows if r["layer_type"] == t)
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=t)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("calibration sequence length (tokens)")
    ax.set_ylabel("activation absmax (mean over layers)")
    ax.set_title(title)
    ax.legend()
    return fig
