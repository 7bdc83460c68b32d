"""Shared amaranth.sim helpers: stream send/receive handshakes and a one-call simulation runner.

Used by ``tests/test_hw_*.py``. All helpers are ``async`` testbench building blocks for
``Simulator.add_testbench`` (Amaranth 0.5: ``ctx.set``, ``ctx.get``, ``await ctx.tick()``).
A transfer happens on a clock edge where ``valid`` and ``ready`` are both high.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

from amaranth.lib import data
from amaranth.sim import Simulator


def to_python(value):
    """A sampled value as plain Python: ints, lists for arrays, dicts for structs."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_python(value[i]) for i in range(layout.length)]
        if isinstance(layout, data.StructLayout):
            return {name: to_python(value[name]) for name, _ in layout}
    return value


async def stream_send(
    ctx, stream, payloads: Iterable, rng: random.Random | None = None, gap: float = 0.0
) -> int:
    """Send every payload on ``stream`` (a sink of the DUT) in order; returns cycles used.

    Before each beat, with probability ``gap`` per cycle, ``valid`` stays low for a cycle
    (random valid gaps). ``valid`` never depends on ``ready``; a beat is held until taken.
    """
    rng = rng or random.Random(0)
    cycles = 0
    for payload in payloads:
        while gap and rng.random() < gap:
            ctx.set(stream.valid, 0)
            await ctx.tick()
            cycles += 1
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            cycles += 1
            if ready:
                break
    ctx.set(stream.valid, 0)
    return cycles


async def stream_receive(
    ctx,
    stream,
    count: int,
    rng: random.Random | None = None,
    stall: float = 0.0,
    max_cycles: int = 10_000,
) -> list:
    """Receive ``count`` beats from ``stream`` (a source of the DUT) as Python values.

    Each cycle ``ready`` is low with probability ``stall`` (random back-pressure). Raises
    ``AssertionError`` if ``count`` beats do not arrive within ``max_cycles``.
    """
    rng = rng or random.Random(1)
    out = []
    for _ in range(max_cycles):
        if len(out) == count:
            break
        ready = not (stall and rng.random() < stall)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            out.append(to_python(payload))
    else:
        raise AssertionError(f"received {len(out)} of {count} beats in {max_cycles} cycles")
    ctx.set(stream.ready, 0)
    return out


def simulate(dut, *testbenches: Callable, vcd: str | None = None) -> None:
    """Run ``dut`` with a clock and the given ``async def tb(ctx)`` testbenches to completion."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def random_codes(rng: random.Random, bits: int, n: int) -> list[int]:
    """``n`` uniformly random codes of a ``bits``-bit format."""
    return [rng.randrange(1 << bits) for _ in range(n)]


def random_ints(rng: random.Random, lo: int, hi: int, n: int) -> list[int]:
    """``n`` uniformly random integers in ``[lo, hi]``."""
    return [rng.randint(lo, hi) for _ in range(n)]


def columns(rows: Sequence[Sequence[int]]) -> list[list[int]]:
    """Transpose a list of equal-length rows."""
    return [list(c) for c in zip(*rows, strict=True)]
