"""A loaded model with its tokenized texts, opened cheapest check first.

:meth:`Session.open` reads the checkpoint's header (architecture), both texts (missing or
empty files), loads the tokenizer and checks that the texts are long enough for the
requested windows and calibration sequences, and only then loads the model: bad input is
found in seconds, not after a model load.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .calibrate import calibration_ids, window_ids
from .checkpoint import DEFAULT_MODEL, Checkpoint, find_checkpoint
from .errors import QuantError
from .models import load_model, load_tokenizer
from .pipeline import QuantConfig, collect_group_inputs, quantize_model
from .text import CALIBRATION_NOVEL, EVALUATION_NOVEL, check_split, read_text


@dataclass(frozen=True)
class DataSettings:
    """Text sources and sizes shared by every run."""

    calib_text: str = CALIBRATION_NOVEL
    eval_text: str = EVALUATION_NOVEL
    eval_seqlen: int = 512
    eval_windows: int = 8
    calib_tokens: int = 4096

    def __post_init__(self) -> None:
        check_split(self.calib_text, self.eval_text)
        for name, value, least in (
            ("eval_seqlen", self.eval_seqlen, 2),
            ("eval_windows", self.eval_windows, 1),
            ("calib_tokens", self.calib_tokens, 1),
        ):
            if value < least:
                raise QuantError(f"{name} must be >= {least}, got {value}")


def needs_calibration(config: QuantConfig) -> bool:
    """Whether a recipe reads calibration data (RTN W4A16 does not)."""
    return config.method != "fp" and bool(
        config.scaling or config.uses_gptq or config.acts == "int8-static"
    )


def tokens_of(tokenizer, text: str) -> torch.Tensor:
    """1-D token ids of a text (no special tokens added)."""
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


@dataclass
class Session:
    """A loaded model with its tokenized calibration and evaluation text."""

    model: torch.nn.Module
    info: object
    calib_tokens: torch.Tensor
    eval_tokens: torch.Tensor
    data: DataSettings

    @classmethod
    def open(
        cls,
        model: str | Checkpoint = DEFAULT_MODEL,
        data: DataSettings | None = None,
        calib_seqlens: tuple[int, ...] = (),
        eval_windows: int = 0,
    ) -> Session:
        """Check everything, cheapest first, then load the model.

        ``calib_seqlens`` are the calibration lengths the caller will use: the calibration
        text must hold ``calib_tokens // L`` sequences of each. The evaluation text must hold
        ``max(data.eval_windows, eval_windows)`` windows.
        """
        data = data or DataSettings()
        ckpt, calib, ev = cls.check(model, data, calib_seqlens, eval_windows)
        m, _, info = load_model(ckpt, with_tokenizer=False)
        return cls(m, info, calib, ev, data)

    @staticmethod
    def check(
        model: str | Checkpoint,
        data: DataSettings,
        calib_seqlens: tuple[int, ...] = (),
        eval_windows: int = 0,
    ) -> tuple[Checkpoint, torch.Tensor, torch.Tensor]:
        """Every check of :meth:`open`, without loading the model; returns the checkpoint and
        the calibration and evaluation token ids."""
        ckpt = model if isinstance(model, Checkpoint) else find_checkpoint(model)
        calib_text, eval_text = read_text(data.calib_text), read_text(data.eval_text)
        tokenizer = load_tokenizer(ckpt)
        calib, ev = tokens_of(tokenizer, calib_text), tokens_of(tokenizer, eval_text)
        n_windows = max(data.eval_windows, eval_windows)
        window_ids(ev, data.eval_seqlen, n_windows, f"evaluation text {data.eval_text!r}")
        for seqlen in calib_seqlens:
            what = f"calibration text {data.calib_text!r}"
            calibration_ids(calib, seqlen, data.calib_tokens, what)
        return ckpt, calib, ev

    def eval_windows(self, n: int | None = None) -> torch.Tensor:
        return window_ids(self.eval_tokens, self.data.eval_seqlen, n or self.data.eval_windows)

    def group_inputs(self, calib_seqlen: int, progress: bool = True, n_layers: int | None = None):
        """FP calibration inputs of every group (cached per calibration length), or of the
        first ``n_layers`` layers only (a shorter pass; the same tensors)."""
        cache = self.__dict__.setdefault("_inputs", {})
        if calib_seqlen in cache:  # every layer's: serves any n_layers
            return cache[calib_seqlen][:n_layers]
        key = calib_seqlen if n_layers is None else (calib_seqlen, n_layers)
        if key not in cache:
            ids = calibration_ids(self.calib_tokens, calib_seqlen, self.data.calib_tokens)
            cache[key] = collect_group_inputs(
                self.model, self.info, ids, progress=progress, n_layers=n_layers
            )
        return cache[key]

    def quantized(
        self,
        config: QuantConfig,
        calib_seqlen: int,
        progress: bool = True,
        scales: dict | None = None,
        output_ranges: bool = False,
        n_layers: int | None = None,
    ):
        """A deep copy of the model quantized with config (the base model stays FP); with
        ``n_layers``, only its first ``n_layers`` decoder layers (see ``quantize_model``)."""
        model = copy.deepcopy(self.model)
        needs = needs_calibration(config) or (config.method != "fp" and output_ranges)
        inputs = self.group_inputs(calib_seqlen, progress, n_layers) if needs else None
        ids_shape = (self.data.calib_tokens // calib_seqlen, calib_seqlen) if calib_seqlen else None
        report = quantize_model(
            model,
            self.info,
            None,
            config,
            group_inputs=inputs,
            scales=scales,
            output_ranges=output_ranges,
            progress=progress,
            n_layers=n_layers,
        )
        report.calib_shape = ids_shape or (0, 0)
        return model, report
