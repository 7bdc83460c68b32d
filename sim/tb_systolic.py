"""cocotb testbench of the exported systolic arrays (weight-stationary, R x C), every
architecture of ``hw.ARCHS``; the sidecar's ``parameters.ksum`` says which (a classic sidecar
has none: ``chain``).

A tile is a weight load (``w_in``: R beats, row r = ``W[r, :]``) followed by activation
vectors (``a_in``: ``a[t, :R]``). Where the partial sums go, and the expected output, one row
per vector, in order:

- ``chain`` (``classic``, ``hw.SystolicArray``): ``a_in`` also carries the incoming partial
  sums ``psum[t, :C]``; expected ``psum + golden.accumulate(a, W.T)``;
- ``column`` (``lean-col``): the partial sums are a stream of their own, ``psum_in`` (one beat
  per output, in output order), driven by an independent :class:`~sim.tbutil.Source` with its
  own random gaps in the same phase as the activations; expected the same;
- ``outside`` (``lean``): no partial sums at all; expected the tile sum
  ``golden.accumulate(a, W.T)``.

Tests:

- ``test_random``: tiles of random size with weight reloads between them, random operands
  and partial sums, in three traffic mixes (full rate, random gaps, heavy back-pressure).
- ``test_extremes``: all -128 (and +127) against the largest weight of each sign in every PE,
  with the incoming ``psum`` at the value that makes the output reach the accumulator's
  documented bound (``k_max`` worst-case products), plus zero weights and zero activations.
  A lean array's outputs must also equal the ``golden.acc_range`` bound they reach (the tile
  bound of ``rows`` products; ``k_max`` where a ``column`` psum adds the earlier products):
  every PE then adds the same extreme products, so PE row g's partial sum is the exact bound
  of its (g + 1) * lanes products, and the output is exact only if every per-row width
  (``psum_widths``) holds.
"""

from __future__ import annotations

import cocotb
import numpy as np

import golden

from .sidecar import SidecarError
from .tbutil import Scoreboard, Sink, Source, TbContext, run_streams, start

#: Where an array takes the earlier K-tiles' partial sums (the sidecar's ``ksum``).
KSUMS = ("chain", "column", "outside")


def _setup():
    ctx = TbContext.load()
    sc = ctx.sidecar
    weight = golden.get(sc.weight_format_name)
    act = golden.get(sc.parameters.get("act_format", "int8"))
    rows, cols = int(sc.parameters["rows"]), int(sc.parameters["cols"])
    return ctx, sc, weight, act, rows, cols


def ksum_of(sc) -> str:
    """``chain`` (classic: psum on ``a_in``), ``column`` (``psum_in`` stream) or ``outside``."""
    ksum = str(sc.parameters.get("ksum", "chain"))
    if ksum not in KSUMS:
        raise SidecarError(f"{sc.top}: unknown ksum {ksum!r}; this testbench knows {KSUMS}")
    return ksum


def psum_source(dut, sc, p_valid: float) -> Source | None:
    """The driver of ``psum_in`` (``column`` arrays only; ``None`` for the others)."""
    return Source(dut, sc.stream("psum_in"), p_valid) if ksum_of(sc) == "column" else None


def vector_feeds(sc, a_src, p_src, a, psum) -> list:
    """The feeds of one run of vectors: ``a_in`` (with ``psum`` for ``chain``), and for
    ``column`` the ``psum_in`` beats offered by ``p_src`` at the same time."""
    a_in = sc.stream("a_in")
    ksum = ksum_of(sc)
    if (psum is None) != (ksum == "outside"):
        given = "a psum" if psum is not None else "no psum"
        raise SidecarError(f"{sc.top}: {given} given for a ksum={ksum} array")
    if ksum == "chain":
        return [(a_src, a_in.payload.pack(len(a), a=a, psum=psum))]
    feeds = [(a_src, a_in.payload.pack(len(a), a=a))]
    if ksum == "column":
        feeds.append((p_src, sc.stream("psum_in").payload.pack_root(psum)))
    return feeds


def tile_phases(sc, w_src, a_src, tiles, p_src=None):
    """Phases for ``run_streams``: per tile, its weight load, then its vectors.

    ``tiles`` is a list of ``(W[R, C] codes, a[T, R], psum[T, C] or None (outside))``.
    """
    w_in = sc.stream("w_in")
    phases = []
    for W, a, psum in tiles:
        phases.append([(w_src, w_in.payload.pack_root(W))])
        phases.append(vector_feeds(sc, a_src, p_src, a, psum))
    return phases


def tile_expected(W, a, psum, weight, act) -> np.ndarray:
    """``psum + golden.accumulate(a, W.T)``; the tile sum alone when ``psum`` is None."""
    sums = golden.accumulate(a, W.T, weight, act)
    return sums if psum is None else psum + sums


def expected_outputs(tiles, weight, act) -> np.ndarray:
    """:func:`tile_expected` for every vector of every tile, stacked."""
    return np.concatenate([tile_expected(W, a, psum, weight, act) for W, a, psum in tiles]).astype(
        np.int64
    )


async def run_tiles(dut, ctx, sc, weight, act, chk, tiles, p_valid, p_ready, rng, label):
    """Stream ``tiles`` through the array and compare every output element; returns the
    outputs (``[vectors, C]``)."""
    rows, cols = tiles[0][0].shape
    w_src = Source(dut, sc.stream("w_in"), p_valid)
    a_src = Source(dut, sc.stream("a_in"), p_valid)
    p_src = psum_source(dut, sc, p_valid)
    sink = Sink(dut, sc.stream("o"), p_ready)
    phases = tile_phases(sc, w_src, a_src, tiles, p_src)
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
    return got, sink.cycles


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
    outside = ksum_of(sc) == "outside"
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
            if outside:  # the tile sum only: no partial sums go in
                tiles.append((W, a, None))
                continue
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
    ksum = ksum_of(sc)
    k_max = int(sc.parameters.get("k_max") or rows)
    codes = sorted({int(np.argmin(weight.ints_array)), int(np.argmax(weight.ints_array))})
    # Lean arrays: (output vector, products summed, end of golden.acc_range) it must reach.
    one_lo, one_hi = golden.acc_range(1, act, weight)
    bounds: list[tuple[int, int, int]] = []
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
            product = int(golden.accumulate([[a0]], [[c]], weight, act)[0, 0])
            end = 1 if product == one_hi else 0 if product == one_lo else None
            if ksum != "chain" and end is not None:
                first = sum(len(t[1]) for t in tiles)
                for v in range(3):
                    k = k_max if ksum == "column" and v != 1 and k_max > rows else rows
                    bounds.append((first + v, k, end))
            tiles.append((W, a, None if ksum == "outside" else psum))

    # Zero weights and zero activations pass psum through unchanged (outside: give 0).
    def zero_tile(W, a):
        psum = None if ksum == "outside" else rng.integers(-(2**20), 2**20, (4, cols))
        tiles.append((W, a, psum))

    zero_tile(np.zeros((rows, cols), np.int64), rng.integers(-128, 128, (4, rows)))
    zero_tile(rng.integers(0, 1 << weight.bits, (rows, cols)), np.zeros((4, rows), np.int64))
    if ksum != "chain":
        _check_lean_widths(ctx, sc, chk, weight, act, rows, ksum)
    await start(dut)
    got, cycles = await run_tiles(dut, ctx, sc, weight, act, chk, tiles, 0.8, 0.7, rng, "extremes")
    if bounds:
        _check_bounds(chk, got, cycles, bounds, weight, act)
    chk.extra = {"k_max": k_max, "acc_width": sc.acc_width}
    if ksum != "chain":
        chk.extra.update(ksum=ksum, psum_widths=sc.parameters.get("psum_widths"))
        chk.extra.update(
            lanes=sc.parameters.get("lanes", 1), pipeline=sc.parameters.get("pipeline")
        )
        chk.extra["bounds_reached"] = sorted(
            {golden.acc_range(k, act, weight)[e] for _, k, e in bounds}
        )
    chk.finish()


def _check_lean_widths(ctx, sc, chk, weight, act, rows, ksum) -> None:
    """A lean export is the registry's point; ``outside`` outputs the tile sum at the exact
    width ``golden.min_acc_width(rows)``; PE row g's psum width holds its (g + 1) * lanes
    products (``lanes`` weights per PE: one psum per ``lanes`` array rows)."""
    point = ctx.designs.get("dut", {})
    if "acc_width" in point and point["acc_width"] != sc.acc_width:
        chk.fail(0, "acc_width", point["acc_width"], sc.acc_width, "hw registry point vs sidecar")
    if ksum == "outside" and sc.acc_width != golden.min_acc_width(rows, act, weight):
        chk.fail(
            0, "tile-sum width", golden.min_acc_width(rows, act, weight), sc.acc_width, "sidecar"
        )
    lanes = int(sc.parameters.get("lanes") or 1)
    widths = [int(w) for w in sc.parameters.get("psum_widths") or []]
    if len(widths) * lanes != rows:
        chk.fail(0, "psum_widths entries", rows // lanes, len(widths), f"{lanes} lanes per PE")
    for g, w in enumerate(widths):
        need = golden.min_acc_width((g + 1) * lanes, act, weight)
        if w < need:
            chk.fail(0, f"psum width of PE row {g}", need, w, f"{lanes} lanes per PE")


def _check_bounds(chk, got, cycles, bounds, weight, act) -> None:
    """Every listed output vector equals, in every column, the ``golden.acc_range`` end of its
    products; both ends must be among them (else the extremes would prove nothing)."""
    for row, k, end in bounds:
        want = golden.acc_range(k, act, weight)[end]
        if row >= len(got):
            return  # the count mismatch is already reported
        bad = np.flatnonzero(got[row] != want)
        if len(bad):
            chk.fail(
                int(cycles[row]),
                f"output vector {row}, column {int(bad[0])} (bound of {k} products)",
                want,
                int(got[row][bad[0]]),
                f"golden.acc_range({k})[{end}]",
            )
            return
    if {e for _, _, e in bounds} != {0, 1}:
        chk.fail(0, "extreme cases", 2, len({e for _, _, e in bounds}), "bound ends reached")


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
    psum = None if ksum_of(sc) == "outside" else rng.integers(-(2**16), 2**16, (n, cols))
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
    psum = None if ksum_of(sc) == "outside" else rng.integers(-(2**16), 2**16, (n_vec, cols))
    w_in, o = sc.stream("w_in"), sc.stream("o")
    await start(dut)
    # The first load completes before any vector is offered, so every vector has weights.
    w_src, a_src = Source(dut, w_in, 1.0), Source(dut, sc.stream("a_in"), 0.7)
    p_src = psum_source(dut, sc, 0.7)
    sink = Sink(dut, o, 0.6)
    chk.start_clock()
    chk.cycles += await run_streams(dut, [[(w_src, w_in.payload.pack_root(Ws[0]))]], [], [], rng)
    w_src.p_valid = 0.03  # occasional loads while vectors stream
    w_src.accepted.clear()
    later = [beat for W in Ws[1:] for beat in w_in.payload.pack_root(W)]
    cycles = await run_streams(
        dut,
        [[(w_src, later), *vector_feeds(sc, a_src, p_src, a, psum)]],
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
            tile_expected(
                Ws[load_of[v]], a[v : v + 1], None if psum is None else psum[v], weight, act
            )[0]
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
