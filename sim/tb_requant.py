"""cocotb testbench of the exported Requantizer: ``y = clamp((acc*M + 2**(sh-1)) >> sh, ±127)``.

Expected values are ``golden.requantize`` elementwise. The "MACs checked" column of the
summary counts requantized lanes for this block.

Tests:

- ``test_random``: acc anywhere in the accumulator range (and, more often, in the range
  that lands near the int8 outputs), M in [2**30, 2**31), sh in [1, 63]; random gaps and
  back-pressure.
- ``test_boundaries``: the cross product of boundary values — sh in {1, 2, 30, 31, 32, 62,
  63}, M in {2**30, 2**30 + 1, 2**31 - 1}, acc at both ends of its range, around 0 and
  around the clamp thresholds — plus exact ties (``acc*M`` an odd multiple of ``2**(sh-1)``),
  which must round half up.
"""

from __future__ import annotations

import dataclasses

import cocotb
import numpy as np

import golden
from golden.contract import M_BITS, M_MAX, M_MIN, Q_MAX, SH_MAX, SH_MIN

from .tbutil import Scoreboard, Sink, Source, TbContext, run_streams, start


def _setup():
    ctx = TbContext.load()
    sc = ctx.sidecar
    lanes = int(sc.parameters["lanes"])
    streams = sc.data["streams"]
    i_name = next(n for n, s in streams.items() if s["direction"] == "in")
    o_name = next(n for n, s in streams.items() if s["direction"] == "out")
    return ctx, sc, lanes, sc.stream(i_name), sc.stream(o_name)


async def _run(dut, chk, lanes, i_stream, o_stream, acc, M, sh, p_valid, p_ready, rng, label):
    """Requantize flat arrays (padded to whole beats) and compare with golden.requantize."""
    n = -(-len(acc) // lanes) * lanes
    pad = n - len(acc)
    acc = np.concatenate([acc, np.zeros(pad, np.int64)]).reshape(-1, lanes)
    M = np.concatenate([M, np.full(pad, M_MIN, np.int64)]).reshape(-1, lanes)
    sh = np.concatenate([sh, np.full(pad, SH_MIN, np.int64)]).reshape(-1, lanes)
    beats = i_stream.payload.pack(len(acc), acc=acc, M=M, sh=sh)
    src, sink = Source(dut, i_stream, p_valid), Sink(dut, o_stream, p_ready)
    chk.start_clock()
    cycles = await run_streams(
        dut, [[(src, beats)]], [sink], [len(beats)], rng, start_cycle=chk.cycles
    )
    chk.stop_clock()
    chk.cycles += cycles
    got = o_stream.payload.unpack(sink.words)
    expected = golden.requantize(acc, M, sh)
    ok = chk.compare(expected, got, sink.cycles, "beat {row}, lane {col}" + f" ({label})")
    if not ok:
        r, c = (
            (int(x) for x in np.argwhere(expected != got)[0])
            if expected.shape == got.shape
            else (0, 0)
        )
        chk.mismatch = dataclasses.replace(
            chk.mismatch, context=f"acc={int(acc[r, c])}, M={int(M[r, c])}, sh={int(sh[r, c])}"
        )
    else:
        chk.macs += len(acc) * (lanes - 1)  # compare counted one per beat


@cocotb.test()
async def test_random(dut):
    ctx, sc, lanes, i_stream, o_stream = _setup()
    chk = Scoreboard(ctx, "test_random")
    rng = ctx.rng("random")
    aw = sc.acc_width
    n = int(ctx.opt("values", 12000, quick=3000))
    lo, hi = -(2 ** (aw - 1)), 2 ** (aw - 1) - 1
    acc = rng.integers(lo, hi, n, endpoint=True)
    M = rng.integers(M_MIN, M_MAX, n)
    sh = rng.integers(SH_MIN, SH_MAX, n, endpoint=True)
    # Half of the values near the int8 range: pick sh so that acc*M >> sh is around ±200.
    near = rng.random(n) < 0.5
    mag = np.floor(np.log2(np.maximum(np.abs(acc), 1))).astype(np.int64)
    sh_near = np.clip(mag + M_BITS - rng.integers(5, 9, n), SH_MIN, SH_MAX)
    sh = np.where(near, sh_near, sh)
    await start(dut)
    for p_valid, p_ready, label in ((0.9, 0.9, "light back-pressure"), (0.5, 0.3, "heavy")):
        half = slice(0, n // 2) if label != "heavy" else slice(n // 2, n)
        await _run(
            dut,
            chk,
            lanes,
            i_stream,
            o_stream,
            acc[half],
            M[half],
            sh[half],
            p_valid,
            p_ready,
            rng,
            label,
        )
        if chk.mismatch:
            break
    chk.finish()


@cocotb.test()
async def test_boundaries(dut):
    ctx, sc, lanes, i_stream, o_stream = _setup()
    chk = Scoreboard(ctx, "test_boundaries")
    rng = ctx.rng("boundaries")
    aw = sc.acc_width
    lo, hi = -(2 ** (aw - 1)), 2 ** (aw - 1) - 1
    accs = {lo, lo + 1, -1, 0, 1, hi - 1, hi}
    # Around the clamp thresholds: +-Q_MAX at shift 0, +-2 * Q_MAX (one bit shifted out).
    near_clamp = [
        Q_MAX - 1,
        Q_MAX,
        Q_MAX + 1,
        2 * Q_MAX - 1,
        2 * Q_MAX,
        2 * Q_MAX + 1,
        2 * Q_MAX + 2,
    ]
    accs |= {v for q in near_clamp for v in (q, -q) if lo <= v <= hi}
    # Both ends of the shift field and around the multiplier's width (M ~ 2**(M_BITS-1)).
    shs = [SH_MIN, SH_MIN + 1, M_BITS - 1, M_BITS, M_BITS + 1, SH_MAX - 1, SH_MAX]
    Ms = [M_MIN, M_MIN + 1, M_MAX - 1]
    grid = np.array([(a, m, s) for a in sorted(accs) for m in Ms for s in shs], dtype=np.int64)
    # Exact ties: M = 2**(M_BITS-1) and acc = odd * 2**(sh-M_BITS) make acc*M = odd * 2**(sh-1).
    ties = []
    for s in range(M_BITS, SH_MAX + 1):
        base = 1 << (s - M_BITS)
        for odd in (1, 3, 253, 255, 257, -1, -3, -253, -255, -257):
            a = odd * base
            if lo <= a <= hi:
                ties.append((a, M_MIN, s))
    # For sh < M_BITS: M = M_MIN + 2**(sh-1) gives acc*M = M_MIN*acc + 2**(sh-1)*acc, a tie
    # for every odd acc.
    for s in range(SH_MIN, M_BITS):
        for a in (1, 3, 12345, -1, -3, -12345):
            if lo <= a <= hi:
                ties.append((a, M_MIN + (1 << (s - 1)), s))
    ties_arr = np.array(ties, dtype=np.int64)
    cases = np.concatenate([grid, ties_arr])
    cases = cases[rng.permutation(len(cases))]
    await start(dut)
    await _run(
        dut,
        chk,
        lanes,
        i_stream,
        o_stream,
        cases[:, 0],
        cases[:, 1],
        cases[:, 2],
        0.8,
        0.6,
        rng,
        "boundaries",
    )
    chk.extra = {"cases": int(len(cases)), "ties": int(len(ties_arr))}
    chk.finish()
