"""The layer-tile file: one quantized linear layer (or a tile of one) as integers.

``quant`` writes it, ``sim`` reads it; this module is the only reader and writer, so the
schema, its defaults and its checks live here once. A file is an ``.npz`` with:

============  ========  ============  ==============================================
array         dtype     shape         meaning
============  ========  ============  ==============================================
``a``         int8      ``[T, K]``    input activations (int8 values, in [-127, 127])
``w_codes``   uint8     ``[N, K]``    weight codes of ``meta["weight_format"]``
``w_scale``   float64   ``[N]``       per-output-channel weight scales
``a_scale``   float64   ``[]``        static per-tensor activation scale
``out_scale`` float64   ``[]``        scale of the int8 output
``M``         int64     ``[N]``       requant multipliers, ``golden.requant_constants``
``sh``        int64     ``[N]``       requant shifts
``meta``      str       ``[]``        JSON object, fields :data:`META_FIELDS`
============  ========  ============  ==============================================

Every field of :data:`META_FIELDS` marked required must be present and no field outside it
may appear: an unknown or missing array or field is a :class:`FormatError` naming it. The
expected int8 output of a tile is ``golden.linear_int8(a, w_codes, weight_format, M, sh)``
(:meth:`LayerTile.expected`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import IO

import numpy as np

from .formats import Format, FormatError, get
from .kernels import linear_int8

#: The arrays of a file, with their dtype and number of dimensions.
ARRAYS: dict[str, tuple[np.dtype, int]] = {
    "a": (np.dtype(np.int8), 2),
    "w_codes": (np.dtype(np.uint8), 2),
    "w_scale": (np.dtype(np.float64), 1),
    "a_scale": (np.dtype(np.float64), 0),
    "out_scale": (np.dtype(np.float64), 0),
    "M": (np.dtype(np.int64), 1),
    "sh": (np.dtype(np.int64), 1),
}

#: Metadata fields: name -> (required, description).
META_FIELDS: dict[str, tuple[bool, str]] = {
    "model": (True, "model the layer comes from, e.g. smollm2-135m"),
    "layer": (True, "module name, e.g. layers.0.self_attn.q_proj"),
    "weight_format": (True, "golden format name of w_codes"),
    "acts": (True, "activation quantization, int8-static"),
    "T": (True, "tokens (rows of a)"),
    "K": (True, "inputs"),
    "N": (True, "outputs (rows of w_codes)"),
    "method": (False, "quantization method, e.g. aqas"),
    "calib_seqlen": (False, "calibration sequence length"),
    "outputs": (False, "[start, stop) of the layer's output channels in this tile"),
    "source": (False, "where the activations come from"),
    "out_scale_rule": (False, "how out_scale was chosen"),
    "integer_check": (
        False,
        "the writer's check against its own integer-mode layer (quant: {'result': 'pass', "
        "'tokens', 'outputs', 'clipped', 'max_error_lsb'}): a is what that layer fed its "
        "accumulator, the accumulators equal golden.accumulate(a, w_codes), requantized with "
        "the writer's own M, sh they equal expected(), and every unclipped int8 output is "
        "within max_error_lsb (<= 0.5) output steps of the layer's float output",
    ),
}

#: The slice of a file that ``sim`` runs by default: its first tokens x all K x its first
#: outputs (a committed tile is usually smaller than this; a whole-layer export is not).
DEFAULT_TOKENS = 64
DEFAULT_OUTPUTS = 64


@dataclass(frozen=True, eq=False)
class LayerTile:
    """One layer tile: the arrays of :data:`ARRAYS` and the metadata dict."""

    a: np.ndarray
    w_codes: np.ndarray
    w_scale: np.ndarray
    a_scale: float
    out_scale: float
    M: np.ndarray
    sh: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def weight_format(self) -> Format:
        return get(self.meta["weight_format"])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, K, N)``."""
        return self.a.shape[0], self.a.shape[1], self.w_codes.shape[0]

    def validate(self, where: str = "layer tile") -> LayerTile:
        """Raise :class:`FormatError` naming the first field that breaks the schema."""
        for name in META_FIELDS:
            if META_FIELDS[name][0] and name not in self.meta:
                raise FormatError(f"{where}: metadata field {name!r} is missing")
        unknown = sorted(set(self.meta) - set(META_FIELDS))
        if unknown:
            raise FormatError(
                f"{where}: unknown metadata field {unknown[0]!r}; known: {', '.join(META_FIELDS)}"
            )
        fmt = get(self.meta["weight_format"])
        for name, (dtype, ndim) in ARRAYS.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != ndim or arr.dtype != dtype:
                raise FormatError(
                    f"{where}: array {name!r} must be {dtype} with {ndim} dimensions, "
                    f"got {arr.dtype} with shape {arr.shape}"
                )
        t, k = self.a.shape
        n = self.w_codes.shape[0]
        if self.w_codes.shape[1] != k:
            raise FormatError(f"{where}: array 'w_codes' has K={self.w_codes.shape[1]}, a has {k}")
        for name in ("w_scale", "M", "sh"):
            if getattr(self, name).shape != (n,):
                raise FormatError(f"{where}: array {name!r} must have shape ({n},)")
        for name, v in (("T", t), ("K", k), ("N", n)):
            if self.meta[name] != v:
                raise FormatError(
                    f"{where}: metadata field {name!r} is {self.meta[name]}, arrays say {v}"
                )
        if self.w_codes.size and int(self.w_codes.max()) >= 1 << fmt.bits:
            raise FormatError(f"{where}: array 'w_codes' holds codes beyond {fmt.name}")
        if self.a.size and int(np.abs(self.a.astype(np.int64)).max()) > 127:
            raise FormatError(f"{where}: array 'a' holds -128; int8 activations are in [-127, 127]")
        return self

    def slice(self, tokens: int = DEFAULT_TOKENS, outputs: int = DEFAULT_OUTPUTS) -> LayerTile:
        """The first ``tokens`` tokens x all K x the first ``outputs`` outputs."""
        if tokens < 1 or outputs < 1:
            raise FormatError(f"slice needs tokens >= 1 and outputs >= 1, got {tokens}, {outputs}")
        a, w = self.a[:tokens], self.w_codes[:outputs]
        start = (self.meta.get("outputs") or [0])[0]
        meta = {**self.meta, "T": int(a.shape[0]), "N": int(w.shape[0])}
        meta["outputs"] = [start, start + int(w.shape[0])]
        return replace(
            self,
            a=a,
            w_codes=w,
            w_scale=self.w_scale[:outputs],
            M=self.M[:outputs],
            sh=self.sh[:outputs],
            meta=meta,
        )

    def expected(self) -> np.ndarray:
        """The int8 output ``golden.linear_int8(a, w_codes, weight_format, M, sh)``."""
        return linear_int8(self.a, self.w_codes, self.weight_format, self.M, self.sh)

    def describe(self) -> str:
        t, k, n = self.shape
        fmt = self.weight_format.name
        return f"{self.meta['model']} {self.meta['layer']} ({fmt}, T={t} K={k} N={n})"


def save(tile: LayerTile, file: IO[bytes] | str | os.PathLike) -> None:
    """Write ``tile`` (validated first) as a compressed ``.npz`` to a path or binary file.

    Callers that write to a path use ``tools.atomic_write(path, lambda f: save(tile, f))``.
    """
    tile.validate()
    arrays = {name: np.asarray(getattr(tile, name), dtype=dt) for name, (dt, _) in ARRAYS.items()}
    arrays["meta"] = np.array(json.dumps(tile.meta, sort_keys=True))
    np.savez_compressed(file, **arrays)


def load(path: str | os.PathLike | IO[bytes]) -> LayerTile:
    """Read and validate a layer-tile file; any schema break is a :class:`FormatError`."""
    where = os.fspath(path) if isinstance(path, str | os.PathLike) else "layer tile"
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FormatError(f"layer tile {where} does not exist") from None
    except (OSError, ValueError) as e:
        raise FormatError(f"{where} is not a layer-tile .npz file: {e}") from None
    with z:
        names = set(z.files)
        missing = [n for n in (*ARRAYS, "meta") if n not in names]
        if missing:
            raise FormatError(f"{where}: array {missing[0]!r} is missing")
        unknown = sorted(names - set(ARRAYS) - {"meta"})
        if unknown:
            raise FormatError(f"{where}: unknown array {unknown[0]!r}")
        try:
            meta = json.loads(str(z["meta"]))
        except ValueError as e:
            raise FormatError(f"{where}: metadata is not JSON ({e})") from None
        if not isinstance(meta, dict):
            raise FormatError(f"{where}: metadata must be a JSON object")
        values = {n: z[n] for n in ARRAYS}
    tile = LayerTile(
        a=values["a"],
        w_codes=values["w_codes"],
        w_scale=values["w_scale"],
        a_scale=values["a_scale"],
        out_scale=values["out_scale"],
        M=values["M"],
        sh=values["sh"],
        meta=meta,
    )
    return tile.validate(where)
