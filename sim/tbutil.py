"""What every cocotb testbench shares, in the cocotb habit of keeping the parts apart:

- :class:`TbContext` — the configuration the runner wrote (sidecar, registry designs, seed);
- drivers (:class:`Source`: offer payload beats on an input stream with random gaps) and
  monitors (:class:`Sink`: take beats from an output stream with random back-pressure,
  recording each payload and its cycle);
- one stream scheduler, :func:`run_streams`, that clocks drivers and monitors through phases
  of traffic (one stream after another, or several at once) and detects stalls;
- the scoreboard (:class:`Scoreboard`): exact ``==`` of what the monitors saw against what
  the golden model says, first mismatch named, the test's :class:`sim.report.Result` written.

The testbench computes the expected values with ``golden`` before or after the traffic; no
model and no comparison run inside the stimulus loop.

Timing convention (simulator-independent, two triggers per cycle): inputs are written just
after the falling edge; ``ReadOnly`` of that same time step sees the settled values the next
rising edge will sample (``valid``/``ready`` handshakes, payloads, ``acc``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from .errors import SimError
from .report import Mismatch, Result, append_result
from .sidecar import Sidecar, Stream

CLOCK_NS = 10


@dataclass(frozen=True)
class TbContext:
    """The configuration a testbench runs (from the JSON that ``SIM_CONFIG`` names)."""

    config: str
    sidecar: Sidecar
    results: Path
    seed: int
    quick: bool
    options: dict
    #: What the registry says about each design, by role (``DesignPoint.to_json`` plus
    #: ``acc_width``), for checking that the export is the registry's point.
    designs: dict = field(default_factory=dict)

    @classmethod
    def load(cls) -> TbContext:
        path = os.environ.get("SIM_CONFIG")
        if not path:
            raise SimError(
                "SIM_CONFIG is not set: run testbenches through `python -m sim` "
                "(sim.runner writes the configuration JSON and points SIM_CONFIG at it)"
            )
        d = json.loads(Path(path).read_text())
        return cls(
            d["config"],
            Sidecar.load(d["sidecar"]),
            Path(d["results"]),
            int(d["seed"]),
            bool(d["quick"]),
            dict(d.get("options") or {}),
            dict(d.get("designs") or {}),
        )

    def rng(self, test: str) -> np.random.Generator:
        """A generator seeded by the configuration seed and the test name (reproducible)."""
        return np.random.default_rng([self.seed, *test.encode()])

    def opt(self, key: str, default, quick=None):
        """An option; ``quick`` (if given) replaces the default in ``--quick`` runs."""
        if key in self.options:
            return self.options[key]
        return quick if (self.quick and quick is not None) else default


class Scoreboard:
    """Compares a test's outputs with the golden model: keeps the first mismatch, counts the
    verified MACs and the simulated cycles, and writes the test's Result when finished."""

    def __init__(self, ctx: TbContext, test: str):
        self.ctx, self.test = ctx, test
        self.mismatch: Mismatch | None = None
        self.macs = 0
        self.cycles = 0
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        self.extra: dict = {}

    def start_clock(self) -> None:
        self.t0 = time.perf_counter()

    def stop_clock(self) -> None:
        self.seconds += time.perf_counter() - self.t0

    def compare(
        self,
        expected,
        got,
        cycles: Sequence[int] | np.ndarray,
        element: str,
        macs_per_row: int = 1,
        context: str = "",
    ) -> bool:
        """Exact ``==`` of ``got`` against ``expected`` (same shape; rows = output beats).

        ``cycles[i]`` is the cycle row ``i`` came out; ``element`` is a format string with
        ``{row}`` and ``{col}`` (e.g. ``"tile {row} column {col}"``). Records the first
        mismatching element; counts ``macs_per_row`` verified MACs per compared row.
        """
        exp = np.asarray(expected)
        g = np.asarray(got)
        if exp.shape != g.shape:
            self.fail(
                int(cycles[-1]) if len(cycles) else self.cycles,
                f"output count/shape {element.split('{')[0].strip() or 'outputs'}",
                int(exp.shape[0]) if exp.ndim else int(exp.size),
                int(g.shape[0]) if g.ndim else int(g.size),
                f"expected shape {exp.shape}, got {g.shape}" + (f"; {context}" if context else ""),
            )
            return False
        bad = np.argwhere(exp != g)
        if len(bad):
            idx = tuple(int(i) for i in bad[0])
            row = idx[0] if idx else 0
            col = idx[1] if len(idx) > 1 else 0
            self.fail(
                int(cycles[row]) if len(cycles) > row else -1,
                element.format(row=row, col=col),
                int(exp[idx]),
                int(g[idx]),
                (f"{len(bad)} of {exp.size} elements differ" + (f"; {context}" if context else "")),
            )
            return False
        self.macs += int(exp.shape[0] if exp.ndim else 1) * macs_per_row
        return True

    def fail(self, cycle: int, element: str, expected: int, got: int, context: str = "") -> None:
        if self.mismatch is None:
            self.mismatch = Mismatch(
                self.test, self.ctx.config, cycle, element, expected, got, context
            )

    def finish(self) -> None:
        """Append the Result; then raise AssertionError with the message if anything failed."""
        passed = self.mismatch is None
        append_result(
            self.ctx.results,
            Result(
                self.test,
                self.ctx.config,
                passed,
                cycles=self.cycles,
                macs=self.macs,
                seconds=round(self.seconds, 4),
                message="" if passed else self.mismatch.message(),
                extra=self.extra,
            ),
        )
        if not passed:
            raise AssertionError(self.mismatch.message())


# ---- drivers, monitors and the stream scheduler (cocotb) ---------------------------------


async def start(dut, reset_cycles: int = 2) -> None:
    """Start the clock (call once per test) and hold ``rst`` high for a few cycles."""
    # cocotb ends the tasks a test started when the test ends: one clock per test.
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await FallingEdge(dut.clk)
    dut.rst.value = 1
    for _ in range(reset_cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


def clock_edges(dut):
    """The two triggers of a cycle: the falling edge of ``clk`` (drive) and ``ReadOnly``
    (sample what the next rising edge will see)."""
    return FallingEdge(dut.clk), ReadOnly()


class Source:
    """Driver of one input stream: offers payload integers with random gaps.

    ``p_valid`` is the chance per cycle that the next beat is offered; once offered,
    ``valid`` and the payload hold until the beat is accepted (stream rules). ``accepted``
    collects the cycle at which each beat was accepted.
    """

    def __init__(self, dut, stream: Stream, p_valid: float = 1.0):
        self.stream = stream
        self.valid = getattr(dut, stream.valid)
        self.ready = getattr(dut, stream.ready)
        self.payload = getattr(dut, stream.payload.port)
        self.p_valid = p_valid
        self.accepted: list[int] = []
        self.valid.value = 0
        self.driven = 0  # what valid was last set to: unchanged values are not written again
        self.pattern: list[bool] = []  # this block's random offer pattern (the scheduler's)


class Sink:
    """Monitor of one output stream with random ``ready``: keeps payload integers and cycles."""

    def __init__(self, dut, stream: Stream, p_ready: float = 1.0):
        self.stream = stream
        self.valid = getattr(dut, stream.valid)
        self.ready = getattr(dut, stream.ready)
        self.payload = getattr(dut, stream.payload.port)
        self.p_ready = p_ready
        self.words: list[int] = []
        self.cycles: list[int] = []
        self.ready.value = 0
        self.driven = 0
        self.pattern: list[bool] = []

    def clear(self) -> None:
        """Forget the beats taken so far."""
        self.words, self.cycles = [], []


class StallError(RuntimeError):
    pass


class _Feed:
    """Scheduler state of one source's beats within a phase."""

    __slots__ = ("beats", "idx", "n", "offered", "src")

    def __init__(self, src: Source, beats: Sequence[int]):
        self.src, self.beats, self.n = src, beats, len(beats)
        self.idx = 0
        self.offered = False


#: A phase of traffic: ``(source, beats)`` feeds offered at the same time.
Phase = Sequence[tuple[Source, Sequence[int]]]

#: Cycles of random patterns drawn at once (per-cycle Python work stays a few indexings).
_BLOCK = 4096
#: Cycles to watch for surplus beats after the expected ones.
_DRAIN = 8


async def run_streams(
    dut,
    phases: Sequence[Phase],
    sinks: Sequence[Sink],
    expected_outputs: Sequence[int],
    rng: np.random.Generator,
    stall_limit: int = 2000,
    start_cycle: int = 0,
) -> int:
    """Drive ``phases`` in order and sample ``sinks`` until each has its expected count.

    Each phase is a list of ``(source, beats)`` feeds offered at the same time, each with its
    own random gaps; the next phase starts once every beat of this one is accepted. So a
    weight load and the vectors that use it are ordered (``[[(w, load)], [(a, vectors)]]``)
    or overlap (``[[(w, loads), (a, vectors)]]``). Sinks take beats whenever ``valid`` and
    their random ``ready`` meet. Cycles count from ``start_cycle``: each accepted input beat
    is appended to its source's ``accepted``, each output beat to its sink's ``cycles``.

    Returns the cycles spent; raises :class:`StallError` naming the stream if nothing moves
    for ``stall_limit`` cycles. After the expected outputs the sinks stay ready for a few
    more cycles, so a surplus beat is taken (and fails the scoreboard's count).
    """
    fall, read_only = clock_edges(dut)
    feeds = [[_Feed(s, b) for s, b in phase if len(b)] for phase in phases]
    feeds = [phase for phase in feeds if phase]
    sources = list({id(f.src): f.src for phase in feeds for f in phase}.values())
    want = list(expected_outputs)
    if len(want) != len(sinks):
        raise SimError(f"{len(sinks)} sinks but {len(want)} expected output counts")
    phase = 0
    active = feeds[0] if feeds else []
    remaining = sum(f.n for f in active)  # beats of this phase not yet accepted
    release: list[Source] = []  # sources of a finished phase: valid drops at the next drive
    cycle = idle = extra = 0
    while True:
        c = cycle % _BLOCK
        if c == 0:
            # Python lists: indexing them is several times cheaper than numpy scalars.
            for s in sources:
                s.pattern = (rng.random(_BLOCK) < s.p_valid).tolist()
            for k in sinks:
                k.pattern = (rng.random(_BLOCK) < k.p_ready).tolist()
        await fall
        # ---- drive: offer the next beat of each feed, set each sink's ready
        for s in release:
            if s.driven:
                s.valid.value = 0
                s.driven = 0
        release = []
        for f in active:
            if not f.offered:
                s = f.src
                if f.idx < f.n and s.pattern[c]:
                    s.payload.value = f.beats[f.idx]
                    if not s.driven:  # valid often stays high: skip the write
                        s.valid.value = 1
                        s.driven = 1
                    f.offered = True
                elif s.driven:
                    s.valid.value = 0
                    s.driven = 0
        for k in sinks:
            # While draining, always ready: a surplus beat must not hide behind back-pressure.
            r = 1 if extra else k.pattern[c]
            if r != k.driven:
                k.ready.value = r
                k.driven = r
        await read_only
        # ---- sample the handshakes the next rising edge completes
        moved = False
        for f in active:
            if f.offered and f.src.ready.value:
                f.offered = False
                f.idx += 1
                f.src.accepted.append(start_cycle + cycle)
                remaining -= 1
                moved = True
        for k in sinks:
            if k.driven and k.valid.value:
                k.words.append(k.payload.value.to_unsigned())
                k.cycles.append(start_cycle + cycle)
                moved = True
        cycle += 1
        idle = 0 if moved else idle + 1
        if active and not remaining:
            phase += 1
            following = feeds[phase] if phase < len(feeds) else []
            keep = {id(f.src) for f in following}
            release = [f.src for f in active if id(f.src) not in keep]
            active, remaining = following, sum(f.n for f in following)
        if not active and all(len(k.words) >= n for k, n in zip(sinks, want, strict=True)):
            extra += 1
            if extra > _DRAIN or any(len(k.words) > n for k, n in zip(sinks, want, strict=True)):
                break
        if idle > stall_limit:
            raise StallError(
                _stall_message(active, phase, sinks, want, stall_limit, start_cycle + cycle)
            )
    # Leave every stream idle for the next test.
    await fall
    for s in sources:
        s.valid.value = 0
        s.driven = 0
    for k in sinks:
        k.ready.value = 0
        k.driven = 0
    return cycle + 1


def _stall_message(active, phase, sinks, want, stall_limit, cycle) -> str:
    waiting = [f"input {f.src.stream.name} beat {f.idx}" for f in active if f.idx < f.n]
    where = f"{', '.join(waiting)} of phase {phase}" if waiting else "outputs"
    got = ", ".join(f"{k.stream.name} {len(k.words)}/{n}" for k, n in zip(sinks, want, strict=True))
    return (
        f"no handshake for {stall_limit} cycles at cycle {cycle}, waiting on {where}; "
        f"outputs so far: {got}"
    )
