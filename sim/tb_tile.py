"""cocotb testbench of the accelerator tile (:class:`hw.tile.Tile`) through its four
AXI4-Stream ports, driven by cocotbext-axi as an integrator's DMA would drive it.

The stimulus and the expected outputs are one :func:`golden.schedule` of a random linear
layer (options ``T``, ``K``, ``N``; by default several token blocks, K not a multiple of the
rows and N not a multiple of the columns, so the padding and the short last block are
exercised). Every beat is packed at the field offsets the sidecar publishes (``Payload.pack``,
then ``tdata_bytes`` little-endian bytes), so the test also checks the byte layout an
integrator reads from the sidecar. Frames:

- ``s_axis_params``: one frame per job (``C`` beats);
- ``s_axis_weights``: one frame per job, its passes' ``R``-beat loads back to back, so the
  frame's tlast is on the last beat of the job's last pass (the protocol's tlast);
- ``s_axis_act``: one frame per pass (tlast on the pass's last token);
- ``m_axis_out``: one frame per job, which must be ``tokens`` beats long.

The three input streams are sent at the same time, each by its own coroutine in schedule
order: only the tile's flow control orders them. Expected: ``Schedule.expected_out`` (from
``golden.linear_int8``) and ``expected_last``, compared with ``==`` by the
:class:`~sim.tbutil.Scoreboard`. A passive monitor counts the cycles and records every
handshake on every port (cycle, and ``tlast`` on ``m_axis_out``).

Tests:

- ``test_axis_random_layer``: random ``tvalid`` gaps on every source and random ``tready``
  back-pressure on the sink (cocotbext-axi pause generators; the gap rate itself changes
  every few dozen cycles, from none to heavy);
- ``test_axis_full_rate``: the same layer with no pauses; besides the values, the
  handshakes must show the throughput the tile's flow control gives: a job's params beats
  back to back, the first in the cycle the previous job's last output leaves (the bank is
  freed as that token enters the requantizer); a pass's weight beats back to back, then its
  activations, one per cycle; the next pass's load as soon as the array has drained
  (``array_latency`` + :data:`PASS_GAP` after the last activation); and the whole layer
  within :func:`full_rate_bound`. Where ``C`` params beats outlast a job's passes
  (:func:`params_wait`: e.g. 2 x 8, one pass per job) the activations wait for the params,
  and only the params, the weight loads and the bound are checked;
- ``test_axis_acc_extremes``: ``golden.max_k_for_width(acc_width)`` products, each the
  extreme of its sign, accumulated over the K-tile passes: the sums reach both ends of
  ``golden.acc_range`` (one more product could overflow the accumulators), requantized
  without clamping, so a too-narrow accumulator or a wrong carry between passes shows.

Every test also checks that the export is the registry's point (accumulator width, geometry).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, SimTimeoutError, Timer, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

import golden

from .tbutil import CLOCK_NS, Scoreboard, TbContext, start
from .tileaxis import (
    DRAIN_CYCLES,
    LAYER_RNG,
    OUT,
    PORTS,
    STALL_CYCLES,
    Handshakes,
    Layer,
    Traffic,
    check_full_rate,
    check_point,
    extreme_layer,
    input_frames,
    pauses,
    random_layer,
    tdata_bytes,
    tile_geometry,
)


async def run_layer(dut, ctx: TbContext, chk: Scoreboard, layer: Layer, test: str, paused: bool):
    """Reset, send every input frame on its own coroutine, collect the output frames."""
    sched = layer.sched
    frames = input_frames(ctx, sched)
    sources = {
        port: AxiStreamSource(AxiStreamBus.from_prefix(dut, port), dut.clk, dut.rst)
        for port in PORTS.values()
    }
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, OUT), dut.clk, dut.rst)
    for port, src in sources.items():
        src.log.setLevel("WARNING")
        if paused:
            src.set_pause_generator(pauses(ctx.rng(f"{test}:{port}"), 0.6))
    sink.log.setLevel("WARNING")
    if paused:
        sink.set_pause_generator(pauses(ctx.rng(f"{test}:{OUT}"), 0.7))
    await start(dut)
    mon = Handshakes(dut)
    cocotb.start_soon(mon.run())

    async def send(src: AxiStreamSource, port_frames: list[bytes]) -> None:
        for f in port_frames:
            await src.send(AxiStreamFrame(f))
        await src.wait()

    chk.start_clock()
    for port, src in sources.items():
        cocotb.start_soon(send(src, frames[port]))
    got: list[bytes] = []
    stalled = ""
    for j in range(len(sched.jobs)):
        # Wait for the job's frame while the tile keeps moving; a stall ends the run.
        while True:
            try:
                frame = await with_timeout(sink.recv(), STALL_CYCLES * CLOCK_NS, "ns")
                break
            except SimTimeoutError:
                if mon.cycle - mon.last_move >= STALL_CYCLES:
                    stalled = (
                        f"no handshake for {STALL_CYCLES} cycles at cycle {mon.cycle}, "
                        f"waiting for output frame {j} of {len(sched.jobs)} "
                        f"(beats so far: {_beat_counts(mon)})"
                    )
                    break
        if stalled:
            break
        got.append(bytes(frame.tdata))
    # Watch a little longer: a surplus beat or frame must show.
    await Timer(DRAIN_CYCLES * CLOCK_NS, "ns")
    await ReadOnly()
    chk.stop_clock()
    while not sink.empty():
        got.append(bytes(sink.recv_nowait().tdata))
    out_cycles = mon.beats[OUT]
    cycles = (out_cycles[-1] + 1) if out_cycles else mon.cycle
    return Traffic(got, mon, cycles, stalled)


def _beat_counts(mon: Handshakes) -> str:
    return ", ".join(f"{p} {len(c)}" for p, c in mon.beats.items())


def check_outputs(ctx: TbContext, chk: Scoreboard, layer: Layer, traffic: Traffic) -> bool:
    """The output's AXI4-Stream holding rule, frame lengths, every output beat and every
    tlast against the schedule."""
    sched, mon = layer.sched, traffic.monitor
    if mon.held:
        cycle, name, want, got = mon.held[0]
        chk.fail(
            cycle,
            f"{name} of a beat waiting for tready",
            want,
            got,
            f"AXI4-Stream: an offered beat holds until taken ({len(mon.held)} breaks)",
        )
        return False
    if traffic.stalled:
        # A missing or misplaced tlast stalls the frames: name the beat if it is one.
        n = min(len(mon.out_last), len(sched.expected_last))
        lasts = np.array(mon.out_last[:n], np.int64)
        if not chk.compare(
            sched.expected_last[:n].astype(np.int64),
            lasts,
            mon.beats[OUT],
            "m_axis_out_tlast of output beat {row}",
            macs_per_row=0,
            context=traffic.stalled,
        ):
            return False
        chk.fail(mon.cycle, "output frames", len(sched.jobs), len(traffic.frames), traffic.stalled)
        return False
    payload, nbytes = ctx.sidecar.stream(OUT).payload, tdata_bytes(ctx, OUT)
    cycles = np.asarray(mon.beats[OUT], np.int64)
    tokens = np.array([j.tokens for j in sched.jobs])
    lengths = np.array([len(f) // nbytes for f in traffic.frames])
    ends = np.cumsum(lengths) - 1
    frame_cycles = cycles[ends[ends < len(cycles)]] if len(cycles) else []
    if not chk.compare(
        tokens,
        lengths,
        frame_cycles,
        "beats in output frame {row} (tlast placement)",
        macs_per_row=0,
        context=layer.desc,
    ):
        return False
    raw = b"".join(traffic.frames)
    words = [int.from_bytes(raw[i : i + nbytes], "little") for i in range(0, len(raw), nbytes)]
    ok = chk.compare(
        sched.expected_out,
        payload.unpack(words, "y"),
        cycles,
        "output beat {row}, column {col}",
        macs_per_row=0,
        context=layer.desc,
    )
    ok = ok and chk.compare(
        sched.expected_last.astype(np.int64),
        np.array(mon.out_last, np.int64),
        cycles,
        "m_axis_out_tlast of output beat {row}",
        macs_per_row=0,
        context=layer.desc,
    )
    if ok:
        chk.macs = sched.macs
    return ok


def layer_extra(layer: Layer, traffic: Traffic, key: str = "layer") -> dict:
    """The run's summary (``layer``: printed under the table by ``python -m sim``)."""
    sched = layer.sched
    return {
        key: layer.desc,
        "T": sched.T,
        "K": sched.K,
        "N": sched.N,
        "jobs": len(sched.jobs),
        "passes_per_job": sched.jobs[0].passes,
        "array_macs": sched.array_macs,
        "beats": {p: len(c) for p, c in traffic.monitor.beats.items()},
        "out_waits": traffic.monitor.waits,
    }


async def run_random_layer(dut, name: str, paused: bool):
    """The random and the full-rate tests' common part: the same random layer through the
    tile (checked to be the registry's point); ``(ctx, chk, layer, traffic)``."""
    ctx = TbContext.load()
    g = tile_geometry(ctx)
    chk = Scoreboard(ctx, f"test_{name}")
    check_point(ctx, chk, g)
    layer = random_layer(ctx, g, ctx.rng(LAYER_RNG))
    traffic = await run_layer(dut, ctx, chk, layer, name, paused=paused)
    chk.cycles = traffic.cycles
    return ctx, chk, layer, traffic


@cocotb.test()
async def test_axis_random_layer(dut):
    """A random layer with random tvalid gaps on the three sources and random tready
    back-pressure on the sink: every output beat, every frame length and every tlast."""
    ctx, chk, layer, traffic = await run_random_layer(dut, "axis_random_layer", paused=True)
    check_outputs(ctx, chk, layer, traffic)
    chk.extra = layer_extra(layer, traffic)
    chk.finish()


# ---- full rate ---------------------------------------------------------------------------


@cocotb.test()
async def test_axis_full_rate(dut):
    """The same traffic with no pauses: the outputs, and the throughput of the handshakes."""
    ctx, chk, layer, traffic = await run_random_layer(dut, "axis_full_rate", paused=False)
    chk.extra = layer_extra(layer, traffic, key="same_layer")  # printed once, by the other
    if check_outputs(ctx, chk, layer, traffic):
        check_full_rate(ctx, chk, layer, traffic)
    chk.extra["act_beats_per_cycle"] = round(
        len(traffic.monitor.beats[PORTS["act"]]) / max(traffic.cycles, 1), 4
    )
    chk.finish()


# ---- accumulator extremes ----------------------------------------------------------------


@cocotb.test()
async def test_axis_acc_extremes(dut):
    """Sums at both ends of the accumulators' range, accumulated over many K-tile passes,
    with random gaps and back-pressure: the outputs, and that both ends were reached."""
    ctx = TbContext.load()
    g = tile_geometry(ctx)
    chk = Scoreboard(ctx, "test_axis_acc_extremes")
    check_point(ctx, chk, g)
    layer, (lo, hi) = extreme_layer(ctx, g)
    a, w, _, _ = layer.inputs
    sums = golden.accumulate(a, w, g.weight, g.act)
    if not ({lo, hi} <= set(sums.ravel().tolist())):
        chk.fail(0, "extreme sums reached", 2, len({lo, hi} & set(sums.ravel().tolist())))
    traffic = await run_layer(dut, ctx, chk, layer, "axis_acc_extremes", paused=True)
    chk.cycles = traffic.cycles
    check_outputs(ctx, chk, layer, traffic)
    chk.extra = layer_extra(layer, traffic, key="extremes")
    chk.extra.update(acc_width=ctx.sidecar.acc_width, bounds_reached=[lo, hi])
    chk.finish()
