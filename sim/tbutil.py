"""What every cocotb testbench shares: its configuration, clock and reset, the stream driver
and monitor, and the first-mismatch check that writes the test's :class:`sim.report.Result`.

Timing convention (simulator-independent, one or two triggers per cycle): inputs are written
just after the falling edge; ``ReadOnly`` of that same time step sees the settled values the
next rising edge will sample (``valid``/``ready`` handshakes, payloads, ``acc``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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

    @classmethod
    def load(cls) -> TbContext:
        path = os.environ.get("SIM_CONFIG")
        if not path:
            raise RuntimeError(
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
        )

    def rng(self, test: str) -> np.random.Generator:
        """A generator seeded by the configuration seed and the test name (reproducible)."""
        return np.random.default_rng([self.seed, *test.encode()])

    def opt(self, key: str, default, quick=None):
        """An option; ``quick`` (if given) replaces the default in ``--quick`` runs."""
        if key in self.options:
            return self.options[key]
        return quick if (self.quick and quick is not None) else default


class Checker:
    """Collects the first mismatch of a test and writes its Result when finished."""

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


# ---- cocotb helpers (imported lazily so the pure parts above test without a simulator) -----


async def start(dut, reset_cycles: int = 2) -> None:
    """Start the clock (call once per test) and hold ``rst`` high for a few cycles."""
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge

    # cocotb ends the tasks a test started when the test ends: one clock per test.
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await FallingEdge(dut.clk)
    dut.rst.value = 1
    for _ in range(reset_cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


class Source:
    """Drives one input stream: presents beats (payload integers) with random gaps.

    ``p_valid`` is the chance per cycle that the next beat is offered; once offered,
    ``valid`` and the payload hold until the beat is accepted (stream rules).
    """

    def __init__(self, dut, stream: Stream, p_valid: float = 1.0):
        self.stream = stream
        self.valid = getattr(dut, stream.valid)
        self.ready = getattr(dut, stream.ready)
        self.payload = getattr(dut, stream.payload.port)
        self.p_valid = p_valid
        self.valid.value = 0


class Sink:
    """Samples one output stream with random ``ready``; keeps payload integers and cycles."""

    def __init__(self, dut, stream: Stream, p_ready: float = 1.0):
        self.stream = stream
        self.valid = getattr(dut, stream.valid)
        self.ready = getattr(dut, stream.ready)
        self.payload = getattr(dut, stream.payload.port)
        self.p_ready = p_ready
        self.words: list[int] = []
        self.cycles: list[int] = []
        self.ready.value = 0


class StallError(RuntimeError):
    pass


async def run_streams(
    dut,
    phases: Sequence[tuple[Source, Sequence[int]]],
    sinks: Sequence[Sink],
    expected_outputs: Sequence[int],
    rng: np.random.Generator,
    stall_limit: int = 2000,
    start_cycle: int = 0,
) -> int:
    """Drive ``phases`` in order and sample ``sinks`` until each has its expected count.

    A phase is ``(source, beats)``: that source offers its beats (random gaps) and the next
    phase starts once all are accepted, so e.g. a weight load and the activation vectors that
    use it are ordered. Sinks take beats whenever ``valid`` and their random ``ready`` meet.
    Returns the cycle count; raises :class:`StallError` naming the stream if nothing moves for
    ``stall_limit`` cycles, or if a sink produces more beats than expected (checked after a
    few extra cycles of draining).
    """
    from cocotb.triggers import FallingEdge, ReadOnly

    phases = [(s, b) for s, b in phases if len(b)]
    clk_fall = FallingEdge(dut.clk)
    read_only = ReadOnly()
    # Random patterns drawn in blocks: per-cycle Python work stays a few indexings.
    block = 4096
    sources = list({id(s): s for s, _ in phases}.values())
    pv = {id(s): np.empty(0, bool) for s in sources}
    pr = [np.empty(0, bool) for _ in sinks]
    cycle = 0
    phase = 0
    idx = 0
    offered = False
    last_valid: dict[int, int] = {}
    last_ready = [-1] * len(sinks)
    idle = 0
    extra = 0
    drain_after = 8  # cycles to watch for surplus beats after the expected ones
    want = list(expected_outputs)
    while True:
        if cycle % block == 0:
            # Python lists: indexing them is several times cheaper than numpy scalars.
            for s in sources:
                pv[id(s)] = (rng.random(block) < s.p_valid).tolist()
            pr = [(rng.random(block) < k.p_ready).tolist() for k in sinks]
        await clk_fall
        # ---- drive
        current = phases[phase][0] if phase < len(phases) else None
        for s in sources:
            if s is not current and last_valid.get(id(s)):
                s.valid.value = 0
                last_valid[id(s)] = 0
        if current is not None:
            src, beats = phases[phase]
            if not offered:
                if pv[id(src)][cycle % block]:
                    src.payload.value = beats[idx]
                    if not last_valid.get(id(src)):  # valid often stays high: skip the write
                        src.valid.value = 1
                        last_valid[id(src)] = 1
                    offered = True
                elif last_valid.get(id(src)):
                    src.valid.value = 0
                    last_valid[id(src)] = 0
        for j, k in enumerate(sinks):
            # While draining, always ready: a surplus beat must not hide behind back-pressure.
            r = 1 if extra else int(pr[j][cycle % block])
            if r != last_ready[j]:
                k.ready.value = r
                last_ready[j] = r
        await read_only
        # ---- sample what the next rising edge will do
        moved = False
        if offered and src.ready.value:
            offered = False
            moved = True
            idx += 1
            if idx == len(beats):
                phase, idx = phase + 1, 0
        for j, k in enumerate(sinks):
            if last_ready[j] and k.valid.value:
                k.words.append(k.payload.value.to_unsigned())
                k.cycles.append(start_cycle + cycle)
                moved = True
        cycle += 1
        idle = 0 if moved else idle + 1
        done_in = phase >= len(phases)
        done_out = all(len(k.words) >= n for k, n in zip(sinks, want, strict=True))
        if done_in and done_out:
            extra += 1
            if extra > drain_after or any(
                len(k.words) > n for k, n in zip(sinks, want, strict=True)
            ):
                break
        if idle > stall_limit:
            where = (
                f"input {phases[phase][0].stream.name} beat {idx} of phase {phase}"
                if phase < len(phases)
                else "outputs"
            )
            got = ", ".join(
                f"{k.stream.name} {len(k.words)}/{n}" for k, n in zip(sinks, want, strict=True)
            )
            raise StallError(
                f"no handshake for {stall_limit} cycles at cycle {start_cycle + cycle}, "
                f"waiting on {where}; outputs so far: {got}"
            )
    # Leave all sources idle for the next test.
    await clk_fall
    for s in sources:
        s.valid.value = 0
    for k in sinks:
        k.ready.value = 0
    return cycle + 1


async def run_concurrent(
    dut,
    sources: Sequence[tuple[Source, Sequence[int]]],
    sinks: Sequence[Sink],
    expected_outputs: Sequence[int],
    rng: np.random.Generator,
    stall_limit: int = 2000,
) -> tuple[int, list[list[int]]]:
    """Every source offers its beats independently (random gaps), all at once.

    Returns ``(cycles, accepted)`` with ``accepted[i][j]`` the cycle beat ``j`` of source ``i``
    was accepted, so a testbench can work out the order the design saw (e.g. which vectors
    were accepted after a weight load completed).
    """
    from cocotb.triggers import FallingEdge, ReadOnly

    clk_fall, read_only = FallingEdge(dut.clk), ReadOnly()
    block = 4096
    idx = [0] * len(sources)
    offered = [False] * len(sources)
    accepted: list[list[int]] = [[] for _ in sources]
    last_ready = [-1] * len(sinks)
    cycle = idle = extra = 0
    while True:
        if cycle % block == 0:
            pv = [rng.random(block) < s.p_valid for s, _ in sources]
            pr = [rng.random(block) < k.p_ready for k in sinks]
        await clk_fall
        for i, (s, beats) in enumerate(sources):
            if not offered[i]:
                if idx[i] < len(beats) and pv[i][cycle % block]:
                    s.payload.value = beats[idx[i]]
                    s.valid.value = 1
                    offered[i] = True
                else:
                    s.valid.value = 0
        for j, k in enumerate(sinks):
            r = 1 if extra else int(pr[j][cycle % block])
            if r != last_ready[j]:
                k.ready.value = r
                last_ready[j] = r
        await read_only
        moved = False
        for i, (s, _) in enumerate(sources):
            if offered[i] and s.ready.value:
                offered[i] = False
                accepted[i].append(cycle)
                idx[i] += 1
                moved = True
        for j, k in enumerate(sinks):
            if last_ready[j] and k.valid.value:
                k.words.append(k.payload.value.to_unsigned())
                k.cycles.append(cycle)
                moved = True
        cycle += 1
        idle = 0 if moved else idle + 1
        done_in = all(idx[i] == len(b) for i, (_, b) in enumerate(sources))
        done_out = all(len(k.words) >= n for k, n in zip(sinks, expected_outputs, strict=True))
        if done_in and done_out:
            extra += 1
            if extra > 8:
                break
        if idle > stall_limit:
            state = ", ".join(
                f"{s.stream.name} {idx[i]}/{len(b)}" for i, (s, b) in enumerate(sources)
            )
            got = ", ".join(
                f"{k.stream.name} {len(k.words)}/{n}"
                for k, n in zip(sinks, expected_outputs, strict=True)
            )
            raise StallError(
                f"no handshake for {stall_limit} cycles at cycle {cycle}; inputs accepted: "
                f"{state}; outputs: {got}"
            )
    await clk_fall
    for s, _ in sources:
        s.valid.value = 0
    for k in sinks:
        k.ready.value = 0
    return cycle + 1, accepted
