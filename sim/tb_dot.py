"""cocotb testbench of the exported DotProduct: stream ``i`` of lane vectors, stream ``o`` of sums.

Every accepted beat does ``acc <= (first ? 0 : acc) + sum_l a[l] * ints[w[l]]``; a ``last``
beat emits ``acc``. Each expected sum is ``golden.accumulate`` of the concatenated beats.

Tests:

- ``test_random``: sums of 1..8 beats with random operands (int8 including -128, every
  code), random ``valid`` gaps and random ``ready`` back-pressure, in two traffic mixes
  (light and heavy back-pressure).
- ``test_extremes``: ``k_max`` products of the extreme operands in one sum (all -128 against
  the largest-magnitude weight of each sign, and +127 against them), then single-beat sums.
"""

from __future__ import annotations

import cocotb
import numpy as np

import golden

from .tbutil import Scoreboard, Sink, Source, TbContext, run_streams, start


def _setup():
    ctx = TbContext.load()
    sc = ctx.sidecar
    weight = golden.get(sc.weight_format_name)
    act = golden.get(sc.parameters.get("act_format", "int8"))
    lanes = int(sc.parameters["lanes"])
    return ctx, sc, weight, act, lanes


def _beats(sums_a: list[np.ndarray], sums_w: list[np.ndarray], lanes: int):
    """Flatten sums (each ``[beats, lanes]``) into beat arrays with first/last flags."""
    a = np.concatenate(sums_a).reshape(-1, lanes)
    w = np.concatenate(sums_w).reshape(-1, lanes)
    first, last = np.zeros(len(a), np.int64), np.zeros(len(a), np.int64)
    pos = 0
    for s in sums_a:
        first[pos] = 1
        pos += len(s)
        last[pos - 1] = 1
    return a, w, first, last


async def _run(dut, ctx, sc, weight, act, lanes, chk, sums_a, sums_w, p_valid, p_ready, rng, label):
    a, w, first, last = _beats(sums_a, sums_w, lanes)
    i_stream, o_stream = sc.stream("i"), sc.stream("o")
    beats = i_stream.payload.pack(len(a), a=a, w=w, first=first, last=last)
    src = Source(dut, i_stream, p_valid)
    sink = Sink(dut, o_stream, p_ready)
    chk.start_clock()
    cycles = await run_streams(
        dut, [[(src, beats)]], [sink], [len(sums_a)], rng, start_cycle=chk.cycles
    )
    chk.stop_clock()
    chk.cycles += cycles
    got = o_stream.payload.unpack(sink.words)
    expected = np.array(
        [
            golden.accumulate(sa.reshape(1, -1), sw.reshape(1, -1), weight, act)[0, 0]
            for sa, sw in zip(sums_a, sums_w, strict=True)
        ],
        dtype=np.int64,
    )
    # Count MACs only for the sums that came out equal (compare stops counting on mismatch).
    ok = chk.compare(
        expected,
        got,
        sink.cycles,
        f"sum {{row}} ({label})",
        context=f"lanes={lanes}, p_valid={p_valid}, p_ready={p_ready}",
    )
    if ok:
        chk.macs += sum(s.size for s in sums_a) - len(sums_a)  # compare counted 1 per row


@cocotb.test()
async def test_random(dut):
    ctx, sc, weight, act, lanes = _setup()
    chk = Scoreboard(ctx, "test_random")
    rng = ctx.rng("random")
    await start(dut)
    n_sums = int(ctx.opt("sums", 400, quick=80))
    for p_valid, p_ready, label in ((0.8, 0.9, "light back-pressure"), (0.6, 0.25, "heavy")):
        sums_a, sums_w = [], []
        for _ in range(n_sums):
            nb = int(rng.integers(1, 9))
            sums_a.append(rng.integers(min(act.ints), max(act.ints) + 1, (nb, lanes)))
            sums_w.append(rng.integers(0, 1 << weight.bits, (nb, lanes)))
        await _run(
            dut, ctx, sc, weight, act, lanes, chk, sums_a, sums_w, p_valid, p_ready, rng, label
        )
        if chk.mismatch:
            break
    chk.finish()


@cocotb.test()
async def test_extremes(dut):
    ctx, sc, weight, act, lanes = _setup()
    chk = Scoreboard(ctx, "test_extremes")
    rng = ctx.rng("extremes")
    k_max = int(sc.parameters.get("k_max") or lanes)
    beats = max(1, k_max // lanes)
    big = int(np.argmax(np.abs(weight.ints_array)))
    codes = sorted({big, int(np.argmin(weight.ints_array)), int(np.argmax(weight.ints_array))})
    sums_a, sums_w = [], []
    for a0 in (min(act.ints), max(act.ints)):
        for c in codes:
            sums_a.append(np.full((beats, lanes), a0, np.int64))
            sums_w.append(np.full((beats, lanes), c, np.int64))
    # Single-beat sums (first and last together) of mixed extremes.
    for _ in range(8):
        sums_a.append(rng.choice([min(act.ints), max(act.ints)], (1, lanes)))
        sums_w.append(rng.choice(codes, (1, lanes)))
    await start(dut)
    await _run(dut, ctx, sc, weight, act, lanes, chk, sums_a, sums_w, 0.9, 0.7, rng, "extremes")
    chk.extra = {"k_max": k_max, "beats_per_sum": beats}
    chk.finish()
