"""cocotb testbench of the exported SystolicArray (weight-stationary, R x C).

A tile is a weight load (``w_in``: R beats, row r = ``W[r, :]``) followed by activation
vectors (``a_in``: ``a[t, :R]`` and the incoming partial sums ``psum[t, :C]``); the expected
output is ``psum + golden.accumulate(a, W.T)``, one row per vector, in order.

Tests:

- ``test_random``: tiles of random size with weight reloads between them, random operands
  and partial sums, in three traffic mixes (full rate, random gaps, heavy back-pressure).
- ``test_extremes``: all -128 (and +127) against the largest weight of each sign in every PE,
  with the incoming ``psum`` at the value that makes the output reach the accumulator's
  documented bound (``k_max`` worst-case products), plus zero weights and zero activations.
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
    rows, cols = int(sc.parameters["rows"]), int(sc.parameters["cols"])
    return ctx, sc, weight, act, rows, cols


def tile_phases(sc, w_src, a_src, tiles):
    """Phases for ``run_streams``: per tile, its weight load, then its vectors.

    ``tiles`` is a list of ``(W[R, C] codes, a[T, R], psum[T, C])``.
    """
    w_in, a_in = sc.stream("w_in"), sc.stream("a_in")
    phases = []
    for W, a, psum in tiles:
        phases.append([(w_src, w_in.payload.pack_root(W))])
        phases.append([(a_src, a_in.payload.pack(len(a), a=a, psum=psum))])
    return phases


def expected_outputs(tiles, weight, act) -> np.ndarray:
    """``psum + golden.accumulate(a, W.T)`` for every vector of every tile, stacked."""
    return np.concatenate(
        [psum + golden.accumulate(a, W.T, weight, act) for W, a, psum in tiles]
    ).astype(np.int64)


async def run_tiles(dut, ctx, sc, weight, act, chk, tiles, p_valid, p_ready, rng, label):
    """Stream ``tiles`` through the array and compare every output element."""
    rows, cols = tiles[0][0].shape
    w_src = Source(dut, sc.stream("w_in"), p_valid)
    a_src = Source(dut, sc.stream("a_in"), p_valid)
    sink = Sink(dut, sc.stream("o"), p_ready)
    phases = tile_phases(sc, w_src, a_src, tiles)
    n_out = sum(len(a) for _, a, _ in tiles)
    chk.start_clock()
    cycles = await run_streams(dut, phases, [sink], [n_out], rng, start_cycle=chk.cycles)
    chk.stop_clock()
    chk.cycles += cycles
    got = sc.stream("o").payload.unpack(sink.words)
    chk.compare(
        expected_outputs(tiles, weight, act),
        got,
        sink.cycles,
        "output vector {row}, column {col}" + f" ({label})",
        macs_per_row=rows * cols,
        context=f"{rows}x{cols}, {len(tiles)} tiles, p_valid={p_valid}, p_ready={p_ready}",
    )


def _psum_range(sc, weight, act, rows) -> tuple[int, int]:
    """Partial sums that cannot overflow the accumulator after adding one tile's products."""
    lo, hi = golden.acc_range(rows, act, weight)
    return -(2 ** (sc.acc_width - 1)) - lo, 2 ** (sc.acc_width - 1) - 1 - hi


@cocotb.test()
async def test_random(dut):
    ctx, sc, weight, act, rows, cols = _setup()
    chk = Scoreboard(ctx, "test_random")
    rng = ctx.rng("random")
    await start(dut)
    n_tiles = int(ctx.opt("tiles", 10, quick=3))
    max_t = int(ctx.opt("max_vectors", 48, quick=16))
    plo, phi = _psum_range(sc, weight, act, rows)
    mixes = (
        (1.0, 1.0, "full rate"),
        (0.7, 0.6, "random gaps"),
        (0.35, 0.15, "heavy back-pressure"),
    )
    for p_valid, p_ready, label in mixes:
        tiles = []
        for _ in range(n_tiles):
            t = int(rng.integers(1, max_t + 1))
            W = rng.integers(0, 1 << weight.bits, (rows, cols))
            a = rng.integers(min(act.ints), max(act.ints) + 1, (t, rows))
            # Mostly small partial sums (like a real chain), some anywhere in the safe range.
            psum = rng.integers(-(2**12), 2**12, (t, cols))
            wide = rng.random((t, cols)) < 0.1
            psum[wide] = rng.integers(plo, phi + 1, int(wide.sum()))
            tiles.append((W, a, psum))
        await run_tiles(dut, ctx, sc, weight, act, chk, tiles, p_valid, p_ready, rng, label)
        if chk.mismatch:
            break
    chk.finish()


@cocotb.test()
async def test_extremes(dut):
    ctx, sc, weight, act, rows, cols = _setup()
    chk = Scoreboard(ctx, "test_extremes")
    rng = ctx.rng("extremes")
    k_max = int(sc.parameters.get("k_max") or rows)
    codes = sorted({int(np.argmin(weight.ints_array)), int(np.argmax(weight.ints_array))})
    tiles = []
    for a0 in (min(act.ints), max(act.ints)):
        for c in codes:
            W = np.full((rows, cols), c, np.int64)
            a = np.full((3, rows), a0, np.int64)
            # psum = the sum of the (k_max - rows) earlier worst-case products of a chain,
            # so the output is the full k_max bound: golden.accumulate over k_max products.
            prior = (
                golden.accumulate(
                    np.full((1, k_max - rows), a0), np.full((1, k_max - rows), c), weight, act
                )[0, 0]
                if k_max > rows
                else 0
            )
            psum = np.full((3, cols), prior, np.int64)
            psum[1] = 0
            tiles.append((W, a, psum))
    # Zero weights and zero activations pass psum through unchanged.
    tiles.append(
        (
            np.zeros((rows, cols), np.int64),
            rng.integers(-128, 128, (4, rows)),
            rng.integers(-(2**20), 2**20, (4, cols)),
        )
    )
    tiles.append(
        (
            rng.integers(0, 1 << weight.bits, (rows, cols)),
            np.zeros((4, rows), np.int64),
            rng.integers(-(2**20), 2**20, (4, cols)),
        )
    )
    await start(dut)
    await run_tiles(dut, ctx, sc, weight, act, chk, tiles, 0.8, 0.7, rng, "extremes")
    chk.extra = {"k_max": k_max, "acc_width": sc.acc_width}
    chk.finish()


@cocotb.test()
async def test_throughput(dut):
    """Full-rate streaming (valid and ready always high): one weight load, many vectors.

    The benchmark (``python -m sim bench``) runs this with ``throughput_vectors`` large; in the
    regular run it is a short full-rate check that the array sustains one vector per cycle.
    """
    ctx, sc, weight, act, rows, cols = _setup()
    chk = Scoreboard(ctx, "test_throughput")
    rng = ctx.rng("throughput")
    n = int(ctx.opt("throughput_vectors", 2000, quick=500))
    W = rng.integers(0, 1 << weight.bits, (rows, cols))
    a = rng.integers(min(act.ints), max(act.ints) + 1, (n, rows))
    psum = rng.integers(-(2**16), 2**16, (n, cols))
    await start(dut)
    await run_tiles(dut, ctx, sc, weight, act, chk, [(W, a, psum)], 1.0, 1.0, rng, "full rate")
    # One vector per cycle after the fill: the load (rows beats) and the pipeline latency.
    overhead = chk.cycles - n
    chk.extra = {"vectors": n, "cycles_per_vector": round(chk.cycles / n, 4), "overhead": overhead}
    if chk.mismatch is None and overhead > rows + sc.latency + rows + cols + 16:
        chk.fail(
            chk.cycles,
            "cycles for the run",
            n + rows + sc.latency,
            chk.cycles,
            "the array did not sustain one vector per cycle at full rate",
        )
    chk.finish()


@cocotb.test()
async def test_overlapped_loads(dut):
    """Weight loads and activation vectors offered at the same time, with random gaps and
    back-pressure: each vector must use the last weights whose load completed (its R-th beat
    accepted) before the vector was accepted — the contract's "a complete load replaces the
    weights for all later activation vectors" — with no vector lost or duplicated."""
    ctx, sc, weight, act, rows, cols = _setup()
    chk = Scoreboard(ctx, "test_overlapped_loads")
    rng = ctx.rng("overlapped")
    n_loads = int(ctx.opt("overlap_loads", 12, quick=4))
    n_vec = int(ctx.opt("overlap_vectors", 600, quick=150))
    Ws = [rng.integers(0, 1 << weight.bits, (rows, cols)) for _ in range(n_loads + 1)]
    a = rng.integers(min(act.ints), max(act.ints) + 1, (n_vec, rows))
    psum = rng.integers(-(2**16), 2**16, (n_vec, cols))
    w_in, a_in, o = sc.stream("w_in"), sc.stream("a_in"), sc.stream("o")
    await start(dut)
    # The first load completes before any vector is offered, so every vector has weights.
    w_src, a_src = Source(dut, w_in, 1.0), Source(dut, a_in, 0.7)
    sink = Sink(dut, o, 0.6)
    chk.start_clock()
    chk.cycles += await run_streams(dut, [[(w_src, w_in.payload.pack_root(Ws[0]))]], [], [], rng)
    w_src.p_valid = 0.03  # occasional loads while vectors stream
    w_src.accepted.clear()
    later = [beat for W in Ws[1:] for beat in w_in.payload.pack_root(W)]
    vectors = a_in.payload.pack(n_vec, a=a, psum=psum)
    cycles = await run_streams(
        dut,
        [[(w_src, later), (a_src, vectors)]],
        [sink],
        [n_vec],
        rng,
        start_cycle=chk.cycles,
    )
    chk.stop_clock()
    # Load k (1-based over Ws[1:]) completes when its last beat is accepted.
    done_at = [w_src.accepted[k * rows - 1] for k in range(1, n_loads + 1)]
    load_of = np.searchsorted(np.array(done_at), np.array(a_src.accepted), side="left")
    expected = np.stack(
        [
            psum[v] + golden.accumulate(a[v : v + 1], Ws[load_of[v]].T, weight, act)[0]
            for v in range(n_vec)
        ]
    )
    chk.compare(
        expected,
        o.payload.unpack(sink.words),
        sink.cycles,
        "output vector {row}, column {col} (overlapped loads)",
        macs_per_row=rows * cols,
        context=f"{n_loads} loads during {n_vec} vectors",
    )
    chk.cycles += cycles
    chk.extra = {"loads_during_stream": n_loads, "vectors_per_load": np.bincount(load_of).tolist()}
    chk.finish()
