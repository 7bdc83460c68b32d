"""Tiny randomly initialised OPT and LLaMA models for tests and examples (no downloads)."""

from __future__ import annotations

import torch

VOCAB = 96


def tiny_llama(seed: int = 0, gqa: bool = True):
    """2-layer LLaMA, hidden 64, 4 query heads over 2 KV heads (GQA), random norm weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2 if gqa else 4,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    _spice(model)
    return model.eval().requires_grad_(False)


def tiny_opt(seed: int = 0):
    """2-layer pre-LN OPT, hidden 64, 4 heads, ReLU fc1, random LayerNorm weights/biases."""
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(seed)
    cfg = OPTConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        ffn_dim=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        word_embed_proj_dim=64,
        do_layer_norm_before=True,
    )
    model = OPTForCausalLM(cfg)
    _spice(model)
    return model.eval().requires_grad_(False)


def _spice(model) -> None:
    """Make weights O(1) and norms non-trivial, with a few outlier channels like real LLMs."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
                p[:3] *= 8.0  # outlier channels
            elif "norm" in name and name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def random_ids(n: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))
