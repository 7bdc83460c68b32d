"""A behavioural model of ``hw.Tile``: the protocol of :mod:`golden.schedule`, beat by beat.

:func:`run_model` consumes a schedule's phases as the hardware does and raises
:class:`FormatError` at the first protocol violation, so a testbench can tell a protocol bug
from an arithmetic one. Its arithmetic is :func:`golden.accumulate` and
:func:`golden.requantize`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .contract import M_MAX, M_MIN, SH_MAX, SH_MIN, check_acc_width, max_k_for_width
from .formats import FormatError
from .kernels import accumulate, requantize
from .schedule import Phase, TileGeometry, _check_range, _last

__all__ = ["run_model"]


def run_model(
    phases: Iterable[Phase], geometry: TileGeometry, acc_width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run the phases through a behavioural model of the tile; return ``(out, last)``.

    ``out[i]`` is ``m_axis_out`` beat ``i`` (``C`` int8 values as int64), ``last[i]`` its
    tlast. The model keeps a params bank of ``C`` entries, the current pass's weights and an
    accumulator memory of ``depth`` entries of ``C`` sums. Each act beat's partial sums come
    from :func:`golden.accumulate` on that beat; a job's first pass overwrites memory entries
    ``0..Tb-1``, later passes add; after the last pass (the one whose weights carried tlast)
    it emits :func:`golden.requantize` of the entries.

    With ``acc_width``, a job whose passes could overflow a signed ``acc_width``-bit
    accumulator (:func:`golden.check_acc_width` of ``passes * R`` products) raises.

    Raises :class:`FormatError` at the first protocol violation, naming the phase and job:
    a phase on the wrong stream for the job's state, a wrong number of beats, tlast on the
    wrong beat, more than ``depth`` tokens, a pass whose token count differs from the job's
    first pass, or phases that end in the middle of a job.
    """
    if not isinstance(geometry, TileGeometry):
        raise FormatError(f"geometry must be a TileGeometry, got {type(geometry).__name__}")
    g = geometry
    R, C, D = g.rows, g.cols, g.depth
    k_max = None if acc_width is None else max_k_for_width(acc_width, g.act, g.weight)
    memory = np.zeros((D, C), dtype=np.int64)
    outs: list[np.ndarray] = []
    lasts: list[np.ndarray] = []

    # The tile's state: what it accepts next.
    expect = "params"
    job = 0
    bank: tuple[np.ndarray, np.ndarray] | None = None
    weights: np.ndarray | None = None
    passes = tokens = 0
    final = False

    for i, ph in enumerate(phases):
        if not isinstance(ph, Phase):
            raise FormatError(f"phase {i} is a {type(ph).__name__}, not a Phase")
        where = f"phase {i} ({ph.stream} of job {job}"
        if ph.stream != "params":
            where += f", pass {passes if ph.stream == 'weights' else passes - 1}"
        where += ")"
        try:
            if ph.stream != expect:
                raise FormatError(
                    f"the tile expects a {expect} phase here (a job is params, then per pass "
                    "weights and act)"
                )
            last = np.asarray(ph.last, dtype=bool)
            if ph.stream == "params":
                _check_beats(ph, C, "C")
                _check_last(last)
                M = np.asarray(ph.fields["M"], dtype=np.int64)
                sh = np.asarray(ph.fields["sh"], dtype=np.int64)
                _check_range(M, "M", M_MIN, M_MAX - 1, "params carry requant constants")
                _check_range(sh, "sh", SH_MIN, SH_MAX, "params carry requant constants")
                bank = (M, sh)
                expect = "weights"
            elif ph.stream == "weights":
                _check_beats(ph, R, "R")
                if last[:-1].any():
                    raise FormatError(
                        f"weights tlast on beat {int(np.argmax(last))}; only beat R-1={R - 1} "
                        "may carry it (on the job's last pass)"
                    )
                w = np.asarray(ph.fields["w"])
                if w.shape != (R, C):
                    raise FormatError(f"field w has shape {w.shape}, expected ({R}, {C})")
                weights = w.T  # [C, R]: row c holds column c's codes
                final = bool(last[-1])
                passes += 1
                if k_max is not None and passes * R > k_max:
                    check_acc_width(passes * R, acc_width, g.act, g.weight)
                expect = "act"
            else:
                n = ph.beats
                if n < 1:
                    raise FormatError("an act phase needs at least one beat")
                if n > D:
                    raise FormatError(f"{n} tokens do not fit the accumulator memory of depth {D}")
                if passes > 1 and n != tokens:
                    raise FormatError(
                        f"{n} tokens, but the job's first pass had {tokens}; every pass of a "
                        "job carries the same token block"
                    )
                _check_last(last)
                a = np.asarray(ph.fields["a"])
                if a.shape != (n, R):
                    raise FormatError(f"field a has shape {a.shape}, expected ({n}, {R})")
                partial = accumulate(a, weights, g.weight, g.act)
                if passes == 1:
                    memory[:n] = partial
                    tokens = n
                else:
                    memory[:n] += partial
                expect = "weights"
                if final:
                    outs.append(requantize(memory[:n], *bank))
                    lasts.append(_last(n))
                    expect, job, passes, final = "params", job + 1, 0, False
        except FormatError as e:
            raise FormatError(f"{where}: {e}") from None
    if expect != "params":
        raise FormatError(
            f"the phases end in the middle of job {job} (after pass {passes}, expecting a "
            f"{expect} phase); a job ends with the act phase of the pass whose weights carry "
            "tlast"
        )
    if not outs:
        return np.zeros((0, C), dtype=np.int64), np.zeros(0, dtype=bool)
    return np.concatenate(outs), np.concatenate(lasts)


def _check_beats(ph: Phase, n: int, name: str) -> None:
    if ph.beats != n:
        raise FormatError(f"{ph.beats} beats; a {ph.stream} phase has exactly {name}={n}")


def _check_last(last: np.ndarray) -> None:
    """tlast must be on the last beat and no other."""
    if len(last) and (not last[-1] or last[:-1].any()):
        got = np.flatnonzero(last).tolist()
        raise FormatError(f"tlast on beats {got}; expected it on beat {len(last) - 1} only")
