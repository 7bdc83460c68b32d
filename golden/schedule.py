"""The tile schedule of a whole linear layer: the AXI4-Stream protocol of ``hw.Tile``.

This module is the reference for the protocol; ``hw`` implements it and ``sim`` drives it.

A tile has ``R`` rows (inputs of one pass), ``C`` columns (outputs of one job), a weight
format F of ``b`` bits, an activation format (int8) and a depth ``D``: its accumulator memory
holds ``D`` entries of ``C`` accumulators, so one pass carries at most ``D`` tokens.

A layer ``y[T, N] = golden.linear_int8(a[T, K], w_codes[N, K], F, M[N], sh[N])`` runs as
**jobs**, one per N-tile (outputs ``n0 .. n0+C-1``) and token block (tokens
``t0 .. t0+Tb-1``, ``Tb = min(D, T - t0)``), N-tile outer, token block inner::

    for n0 in range(0, Npad, C):
        for t0 in range(0, T, D):
            job(n0, t0)

A job is, on the tile's input streams:

1. **params**: ``C`` beats on ``s_axis_params``, beat ``c`` carries ``M[n0+c], sh[n0+c]``;
   tlast on beat ``C-1``.
2. ``P = Kpad / R`` **passes**, one per K-tile ``k0 = 0, R, 2R, ...``, each:

   a. **weights**: ``R`` beats on ``s_axis_weights``, beat ``r`` carries
      ``w_codes[n0+c, k0+r]`` for ``c = 0..C-1``; tlast on beat ``R-1`` of the job's *last*
      pass only (it tells the tile to requantize and emit after this pass);
   b. **act**: ``Tb`` beats on ``s_axis_act``, beat ``j`` carries ``a[t0+j, k0+r]`` for
      ``r = 0..R-1``; tlast on beat ``Tb-1`` of every pass (it delimits the token block).

   The first pass writes the accumulator memory's entries ``0..Tb-1``, later passes add to
   them; every pass of a job has the same ``Tb``.
3. After the last pass the tile emits ``Tb`` beats on ``m_axis_out``: beat ``j`` carries
   ``y[t0+j, n0+c]`` for ``c = 0..C-1``; tlast on beat ``Tb-1``.

Padding: K is padded to ``Kpad`` (a multiple of R) with weight code 0 and activation 0, and N
to ``Npad`` (a multiple of C) with weight code 0 and ``M = M_MIN``, ``sh = SH_MIN``. Code 0
decodes to 0 in every format, so padding adds nothing to a sum, and a padded output is
``(0 * M + 2**(sh-1)) >> sh = 0``; :meth:`Schedule.assemble` drops it. Tokens are not padded:
the last token block is short.

Beat payloads (``tdata``, byte-aligned; a field at bit offset ``o`` occupies bits
``[o, o + width)``, bit 0 the least significant):

===================  ===============================================  ===================
stream               fields                                           width (bits)
===================  ===============================================  ===================
``s_axis_params``    ``M`` as uint32 at ``[0, 32)`` (``M < 2**31``),   40
                     ``sh`` as uint8 at ``[32, 40)`` (``1..63``)
``s_axis_weights``   code of column ``c`` at ``[c*b, (c+1)*b)``,        ``8*ceil(C*b/8)``
                     zero above ``C*b``
``s_axis_act``       int8 of row ``r`` (``k0+r``) in byte ``r``         ``8*R``
``m_axis_out``       int8 of column ``c`` (``n0+c``) in byte ``c``      ``8*C``
===================  ===============================================  ===================

:func:`schedule` turns a layer into its :class:`Phase` sequence (one phase = the beats of
one pass, or of one job's params, on one stream) and the expected output beats, taken from
:func:`golden.linear_int8` on the padded layer. :func:`golden.tilemodel.run_model` is a
behavioural model of the tile that consumes the phases as the hardware does and names the
first protocol violation. The phases hold integers, not packed ``tdata``; packing to the
widths above is the driver's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contract import M_MAX, M_MIN, SH_MAX, SH_MIN
from .formats import INT8, Format, FormatError, get
from .kernels import linear_int8

__all__ = ["STREAMS", "Job", "Phase", "Schedule", "TileGeometry", "schedule"]

#: Each input stream and the fields of its :class:`Phase` (one row per beat).
STREAMS: dict[str, tuple[str, ...]] = {
    "params": ("M", "sh"),
    "weights": ("w",),
    "act": ("a",),
}


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise FormatError(f"tile {name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TileGeometry:
    """A tile's shape and formats: ``rows`` (R), ``cols`` (C), ``depth`` (D) and formats.

    ``weight`` and ``act`` may be given as names (:func:`golden.formats.get`); they are
    stored as :class:`Format`. ``act`` integers must fit the int8 byte lane of ``s_axis_act``.
    """

    rows: int
    cols: int
    depth: int
    weight: Format | str
    act: Format | str = INT8

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "depth"):
            object.__setattr__(self, name, _positive_int(getattr(self, name), name))
        object.__setattr__(self, "weight", get(self.weight))
        act = get(self.act)
        if min(act.ints) < -128 or max(act.ints) > 127:
            raise FormatError(
                f"activation format {act.name} has integers outside [-128, 127], which do not "
                "fit the int8 byte lanes of s_axis_act; use int8 or a narrower format"
            )
        object.__setattr__(self, "act", act)


@dataclass(frozen=True, eq=False)
class Phase:
    """One packet on one input stream: ``fields`` hold one row per beat, ``last`` its tlast.

    ``stream`` is ``"params"`` (fields ``M``, ``sh``: ``[C]``), ``"weights"`` (``w``:
    ``[R, C]`` codes, row ``r`` = beat ``r``) or ``"act"`` (``a``: ``[Tb, R]``).
    """

    stream: str
    fields: dict[str, np.ndarray]
    last: np.ndarray

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise FormatError(
                f"unknown stream {self.stream!r}; the tile's input streams are {', '.join(STREAMS)}"
            )
        if tuple(sorted(self.fields)) != tuple(sorted(STREAMS[self.stream])):
            raise FormatError(
                f"a {self.stream} phase has fields {sorted(self.fields)}; "
                f"expected {list(STREAMS[self.stream])}"
            )
        n = len(self.last)
        for name, v in self.fields.items():
            if len(v) != n:
                raise FormatError(
                    f"{self.stream} phase: field {name!r} has {len(v)} beats but last has {n}"
                )

    @property
    def beats(self) -> int:
        return len(self.last)


@dataclass(frozen=True)
class Job:
    """One job: outputs ``n0 .. n0+C-1`` of tokens ``t0 .. t0+tokens-1`` in ``passes`` passes."""

    n0: int
    t0: int
    tokens: int
    passes: int


@dataclass(eq=False)
class Schedule:
    """A layer's phases in stream order, its jobs and the expected ``m_axis_out`` beats.

    ``expected_out[i]`` is output beat ``i`` (``C`` int8 values as int64) and
    ``expected_last[i]`` its tlast; both come from :func:`golden.linear_int8` on the padded
    layer. ``T``, ``K``, ``N`` are the unpadded sizes.
    """

    geometry: TileGeometry
    T: int
    K: int
    N: int
    phases: list[Phase]
    jobs: list[Job]
    expected_out: np.ndarray
    expected_last: np.ndarray

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates: ``T * K * N``."""
        return self.T * self.K * self.N

    @property
    def array_macs(self) -> int:
        """Multiply-accumulates the array performs, padding included: act beats x R x C."""
        g = self.geometry
        return sum(j.tokens * j.passes for j in self.jobs) * g.rows * g.cols

    def phases_of(self, stream: str) -> list[Phase]:
        """The phases of one input stream, in order."""
        if stream not in STREAMS:
            raise FormatError(f"unknown stream {stream!r}; known: {', '.join(STREAMS)}")
        return [p for p in self.phases if p.stream == stream]

    def assemble(self, out_beats) -> np.ndarray:
        """``y[T, N]`` from the ``m_axis_out`` beats ``[n, C]`` in order (padding dropped)."""
        c = self.geometry.cols
        beats = np.asarray(out_beats)
        n = len(self.expected_out)
        if beats.shape != (n, c):
            raise FormatError(
                f"assemble needs {n} output beats of {c} values, shape ({n}, {c}); "
                f"got shape {beats.shape}"
            )
        # Jobs run N-tile outer, token inner, and each N-tile's blocks cover tokens 0..T-1.
        n_tiles = n // self.T
        y = beats.astype(np.int64).reshape(n_tiles, self.T, c).transpose(1, 0, 2)
        return y.reshape(self.T, n_tiles * c)[:, : self.N]


def _int_array(x, name: str, ndim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim:
        raise FormatError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.size and not np.issubdtype(x.dtype, np.integer):
        raise FormatError(f"{name} must hold integers, got dtype {x.dtype}")
    return x


def _check_range(x: np.ndarray, name: str, lo: int, hi: int, hint: str) -> None:
    """Raise unless every element of ``x`` is in ``[lo, hi]``."""
    if x.size and (x.min() < lo or x.max() > hi):
        raise FormatError(
            f"{name} out of range: need [{lo}, {hi}], got [{x.min()}, {x.max()}]; {hint}"
        )


def _frozen(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x


def _last(n: int, at_end: bool = True) -> np.ndarray:
    last = np.zeros(n, dtype=bool)
    last[-1] = at_end
    return _frozen(last)


def schedule(a, w_codes, M, sh, geometry: TileGeometry) -> Schedule:
    """The phases, jobs and expected outputs of ``linear_int8(a, w_codes, F, M, sh)`` on a tile.

    Args:
        a: ``[T, K]`` activation integers of ``geometry.act`` (T >= 1).
        w_codes: ``[N, K]`` codes of ``geometry.weight``.
        M, sh: ``[N]`` requantization multipliers (``[M_MIN, M_MAX)``) and shifts
            (``[SH_MIN, SH_MAX]``), e.g. from :func:`golden.requant_constants`.
        geometry: the tile.

    The phases' arrays are read-only views of the padded layer.
    """
    if not isinstance(geometry, TileGeometry):
        raise FormatError(f"geometry must be a TileGeometry, got {type(geometry).__name__}")
    g = geometry
    a = _int_array(a, "a", 2)
    w_codes = _int_array(w_codes, "w_codes", 2)
    M = _int_array(M, "M", 1)
    sh = _int_array(sh, "sh", 1)
    T, K = a.shape
    N = w_codes.shape[0]
    if w_codes.shape[1] != K:
        raise FormatError(
            f"shape mismatch: a has K={K} ([T={T}, K={K}]), w_codes has K={w_codes.shape[1]} "
            f"([N={N}, K={w_codes.shape[1]}]); K must agree"
        )
    if T < 1 or K < 1 or N < 1:
        raise FormatError(f"a layer needs T, K, N >= 1, got T={T}, K={K}, N={N}")
    for name, v in (("M", M), ("sh", sh)):
        if v.shape != (N,):
            raise FormatError(
                f"{name} has shape {v.shape}; expected ({N},), one per output channel of w_codes"
            )
    act, weight = g.act, g.weight
    _check_range(
        a, f"activations a ({act.name})", min(act.ints), max(act.ints), "quantize them first"
    )
    _check_range(
        w_codes,
        f"weight codes w_codes ({weight.name}, {weight.bits} bits)",
        0,
        2**weight.bits - 1,
        f"pass codes of {weight.name}, not values",
    )
    _check_range(M, "requant multiplier M", M_MIN, M_MAX - 1, "use golden.requant_constants")
    _check_range(sh, "requant shift sh", SH_MIN, SH_MAX, "use golden.requant_constants")

    R, C, D = g.rows, g.cols, g.depth
    k_pad, n_pad = -(-K // R) * R, -(-N // C) * C
    a_pad = np.zeros((T, k_pad), dtype=np.int64)
    a_pad[:, :K] = a
    w_pad = np.zeros((n_pad, k_pad), dtype=np.int64)
    w_pad[:N, :K] = w_codes
    m_pad = np.full(n_pad, M_MIN, dtype=np.int64)
    m_pad[:N] = M
    sh_pad = np.full(n_pad, SH_MIN, dtype=np.int64)
    sh_pad[:N] = sh
    y_pad = linear_int8(a_pad, w_pad, weight, m_pad, sh_pad, act)
    for x in (a_pad, w_pad, m_pad, sh_pad):
        _frozen(x)
    w_t = w_pad.T  # w_t[k, n]: a weights beat is a row block of it

    passes = k_pad // R
    params_last = _last(C)
    weights_last = (_last(R, False), _last(R, True))
    act_last: dict[int, np.ndarray] = {}
    phases: list[Phase] = []
    jobs: list[Job] = []
    for n0 in range(0, n_pad, C):
        params = {"M": m_pad[n0 : n0 + C], "sh": sh_pad[n0 : n0 + C]}
        for t0 in range(0, T, D):
            tb = min(D, T - t0)
            if tb not in act_last:
                act_last[tb] = _last(tb)
            jobs.append(Job(n0, t0, tb, passes))
            phases.append(Phase("params", params, params_last))
            for p in range(passes):
                k0 = p * R
                w_beats = w_t[k0 : k0 + R, n0 : n0 + C]
                phases.append(
                    Phase("weights", {"w": w_beats}, weights_last[1 if p == passes - 1 else 0])
                )
                phases.append(Phase("act", {"a": a_pad[t0 : t0 + tb, k0 : k0 + R]}, act_last[tb]))

    n_tiles = n_pad // C
    expected_out = y_pad.reshape(T, n_tiles, C).transpose(1, 0, 2).reshape(n_tiles * T, C)
    expected_last = np.zeros(n_tiles * T, dtype=bool)
    ends = np.cumsum([j.tokens for j in jobs]) - 1
    expected_last[ends] = True
    return Schedule(
        g,
        T,
        K,
        N,
        phases,
        jobs,
        _frozen(np.ascontiguousarray(expected_out)),
        _frozen(expected_last),
    )
