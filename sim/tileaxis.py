"""The tile testbench's parts that need no simulator (:mod:`sim.tb_tile` runs them): the
layers it streams (random, and the accumulator extremes), the frames of
``golden.schedule``'s beats packed at the sidecar's offsets, the handshake record of a run,
and the full-rate throughput bound and checks. Unit tests call them on synthetic traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

import golden
from golden.contract import Q_MAX

from .errors import SimError
from .sidecar import Payload, SidecarError
from .tbutil import Scoreboard, TbContext

#: Schedule stream -> AXI4-Stream port prefix (the sidecar's stream name).
PORTS = {"params": "s_axis_params", "weights": "s_axis_weights", "act": "s_axis_act"}
OUT = "m_axis_out"
#: Cycles without any handshake after which a run is declared stalled.
STALL_CYCLES = 2000
#: Cycles to keep watching ``m_axis_out`` after the expected beats (a surplus beat fails).
DRAIN_CYCLES = 16
#: Full rate: cycles from a pass's last activation to the next pass's first weight beat
#: beyond the array's drain (``array_latency``). The array takes a load only once its
#: vectors in flight have left (``hw.lean``): the last vector is accepted at cycle t and
#: leaves at t + array_latency, and the weight beat is accepted the cycle after that.
PASS_GAP = 1
#: Full rate: cycles of the whole run beyond the passes, the drains and the tile's latency:
#: the first beat after reset (cocotbext-axi drives a cycle after it is handed the frame)
#: and one of slack.
RUN_OVERHEAD = 2
#: The accumulator-extremes test sums at most this many products (option ``extremes_max_k``).
EXTREMES_MAX_K = 4096
#: The random and the full-rate test stream the same layer (seeded by the configuration
#: and this name).
LAYER_RNG = "axis_layer"


@dataclass
class Layer:
    """A random layer: its schedule, what the summary says about it, and its integers
    ``(a[T, K], w_codes[N, K], M[N], sh[N])``."""

    sched: golden.Schedule
    desc: str
    inputs: tuple = ()


def tile_geometry(ctx: TbContext) -> golden.TileGeometry:
    """The tile's geometry (rows, cols, depth, formats) from the sidecar."""
    sc = ctx.sidecar
    if sc.design != "tile":
        raise SidecarError(f"{sc.top} is a {sc.design!r} design; sim.tb_tile drives hw.Tile")
    p = sc.parameters
    act = (sc.data.get("act_format") or {}).get("name", "int8")
    g = golden.TileGeometry(
        int(p["rows"]), int(p["cols"]), int(p["depth"]), sc.weight_format_name, act
    )
    return g


def check_point(ctx: TbContext, chk: Scoreboard, g: golden.TileGeometry) -> None:
    """The export is the registry's point: its accumulator width, rows, columns and depth."""
    point, sc = ctx.designs.get("dut", {}), ctx.sidecar
    pairs = [("acc_width", point.get("acc_width"), sc.acc_width)]
    if point:
        cols = point.get("cols") or point.get("size")
        pairs += [("rows", point.get("size"), g.rows), ("cols", cols, g.cols)]
        pairs += [("depth", point.get("depth"), g.depth)]
    for name, want, got in pairs:
        if want is not None and int(want) != int(got):
            chk.fail(0, name, int(want), int(got), "hw registry point vs sidecar")


def random_layer(ctx: TbContext, g: golden.TileGeometry, rng: np.random.Generator) -> Layer:
    """A random layer of the options' ``T``, ``K``, ``N`` and its schedule on the tile.

    Defaults: ``T = 2*depth + 3`` (two full token blocks and a short one; ``depth + 3`` in
    quick runs), ``K = 3*rows + 1``, ``N = 2*cols + 1``. Per-channel ``M``/``sh`` from
    ``golden.requant_constants`` map the typical ``|acc|`` of each output onto the int8
    range (some outputs clamp), as ``sim.tb_layer`` does.
    """
    R, C, D = g.rows, g.cols, g.depth
    t = int(ctx.opt("T", 2 * D + 3))
    k = int(ctx.opt("K", 3 * R + 1))
    n = int(ctx.opt("N", 2 * C + 1))
    if ctx.quick:
        t = min(t, D + 3)
    acc_width, k_max = ctx.sidecar.acc_width, ctx.sidecar.parameters.get("k_max")
    # The accumulators hold K products (the padding adds zeros): a longer K than the width
    # allows is a configuration error, not a tile bug.
    golden.check_acc_width(k, acc_width, g.act, g.weight)
    a = rng.integers(min(g.act.ints), max(g.act.ints) + 1, (t, k))
    w = rng.integers(0, 1 << g.weight.bits, (n, k))
    acc = golden.accumulate(a, w, g.weight, g.act)
    typical = np.maximum(np.abs(acc).max(axis=0), 1).astype(np.float64)
    M, sh = golden.requant_constants(Q_MAX / typical * rng.uniform(0.5, 2.0, n))
    sched = golden.schedule(a, w, M, sh, g)
    desc = (
        f"random T={t} K={k} N={n} on {R}x{C} depth {D} ({g.weight.name}, acc {acc_width} bits"
        f", k_max {k_max}): {len(sched.jobs)} jobs x {sched.jobs[0].passes} passes"
    )
    return Layer(sched, desc, (a, w, M, sh))


# ---- frames: the schedule's phases as AXI4-Stream frames of sidecar-packed bytes ----------


def tdata_bytes(ctx: TbContext, port: str) -> int:
    """Bytes of ``port``'s tdata: the payload width, byte-aligned and as the sidecar says."""
    sc = ctx.sidecar
    width = sc.stream(port).payload.width
    said = int(sc.parameters["axis"][port]["tdata_bytes"])
    if width % 8 or width // 8 != said:
        raise SidecarError(
            f"{sc.top}: {port} tdata is {width} bits but the sidecar's axis says "
            f"{said} bytes; AXI4-Stream tdata must be whole bytes"
        )
    return said


def pack_bytes(payload: Payload, nbytes: int, n: int, **groups) -> bytes:
    """``n`` beats packed at the sidecar's field offsets, each ``nbytes`` little-endian."""
    return b"".join(v.to_bytes(nbytes, "little") for v in payload.pack(n, **groups))


def input_frames(ctx: TbContext, sched) -> dict[str, list[bytes]]:
    """Per input port, its frames in order (see the module docstring).

    A frame's tlast is on its last beat only (cocotbext-axi puts it there); this checks that
    the schedule's ``last`` of the beats joined into a frame is exactly that.
    """
    sc = ctx.sidecar
    frames: dict[str, list[bytes]] = {}
    for stream, port in PORTS.items():
        payload, nbytes = sc.stream(port).payload, tdata_bytes(ctx, port)
        phases = sched.phases_of(stream)
        if stream == "weights":  # one frame per job: its passes' loads back to back
            groups, i = [], 0
            for job in sched.jobs:
                groups.append(phases[i : i + job.passes])
                i += job.passes
        else:
            groups = [[ph] for ph in phases]
        out = []
        for group in groups:
            last = np.concatenate([ph.last for ph in group])
            if not last[-1] or last[:-1].any():
                raise SimError(
                    f"golden schedule: a {stream} frame has tlast on beats "
                    f"{np.flatnonzero(last).tolist()}, not on its last beat only"
                )
            out.append(b"".join(pack_bytes(payload, nbytes, ph.beats, **ph.fields) for ph in group))
        frames[port] = out
    return frames


# ---- the passive handshake monitor -------------------------------------------------------


@dataclass
class Handshakes:
    """Cycle of every handshake on every port (``tlast`` too on ``m_axis_out``), counted
    from the first cycle after reset; sampled in ``ReadOnly`` of each cycle (what the next
    rising edge completes).

    Also the AXI4-Stream rule for the tile's output: once ``m_axis_out_tvalid`` is high it
    stays high, with ``tdata`` and ``tlast`` unchanged, until ``tready`` takes the beat;
    ``held`` lists each break of it as ``(cycle, what, expected, got)``.
    """

    dut: object
    cycle: int = 0
    beats: dict[str, list[int]] = field(default_factory=dict)
    out_last: list[bool] = field(default_factory=list)
    last_move: int = 0
    held: list[tuple[int, str, int, int]] = field(default_factory=list)
    waits: int = 0  # cycles an output beat waited for tready

    async def run(self) -> None:
        ports = [*PORTS.values(), OUT]
        sigs = [
            (p, getattr(self.dut, f"{p}_tvalid"), getattr(self.dut, f"{p}_tready")) for p in ports
        ]
        for p in ports:
            self.beats[p] = []
        out_valid, out_ready = self.dut.m_axis_out_tvalid, self.dut.m_axis_out_tready
        out_data, out_tlast = self.dut.m_axis_out_tdata, self.dut.m_axis_out_tlast
        waiting = None  # (tdata, tlast) of an output beat offered but not taken
        ro, fall = ReadOnly(), FallingEdge(self.dut.clk)
        while True:
            await ro
            for p, valid, ready in sigs:
                if valid.value and ready.value:
                    self.beats[p].append(self.cycle)
                    self.last_move = self.cycle
                    if p == OUT:
                        self.out_last.append(bool(out_tlast.value))
            if waiting is not None or out_valid.value:
                v, t = int(out_valid.value), int(out_tlast.value)
                d = out_data.value.to_unsigned() if v else 0
                self.held += held_breaks(self.cycle, waiting, v, d, t)
                waiting = None
                if v and not out_ready.value:
                    waiting = (d, t)
                    self.waits += 1
            self.cycle += 1
            await fall


def held_breaks(cycle: int, waiting, valid: int, data: int, last: int) -> list:
    """The breaks of the AXI4-Stream holding rule in one cycle: ``waiting`` is the
    ``(tdata, tlast)`` offered and not taken in the cycle before (or None)."""
    if waiting is None:
        return []
    if not valid:
        return [(cycle, "m_axis_out_tvalid", 1, 0)]
    pairs = (("m_axis_out_tdata", waiting[0], data), ("m_axis_out_tlast", waiting[1], last))
    return [(cycle, name, want, got) for name, want, got in pairs if want != got]


# ---- running a layer ---------------------------------------------------------------------


def pauses(rng: np.random.Generator, max_rate: float, block: int = 48):
    """A pause pattern (True = pause this cycle) whose rate changes every ``block`` cycles:
    uniform in ``[0, max_rate]``, with whole blocks of no pause and some long stalls."""
    while True:
        rate = rng.uniform(0.0, max_rate) if rng.random() < 0.8 else rng.choice([0.0, 0.95])
        yield from (rng.random(block) < rate).tolist()


@dataclass
class Traffic:
    """What one run saw: output frames (bytes), the monitor, and the run's cycles."""

    frames: list[bytes]
    monitor: Handshakes
    cycles: int
    stalled: str = ""


def params_wait(job, g: golden.TileGeometry, array_latency: int) -> int:
    """Cycles a job's last pass waits for its params at full rate, when the jobs before it
    did not wait (0 unless ``C`` is long against the job's passes).

    The params bank is freed when the previous job's last token enters the requantizer
    (``array_latency`` + 1 after its last activation, about when this job's first load
    starts); the ``C`` beats then take ``C`` cycles, and the last pass's first sum is ready
    for them ``(P-1)*(R+Tb+L) + R + L`` cycles after the bank was freed.
    """
    R, L = g.rows, array_latency
    ready_at = (job.passes - 1) * (R + job.tokens + L) + R + L
    return max(0, g.cols - ready_at)


def job_cycles(job, g: golden.TileGeometry, array_latency: int) -> int:
    """Full-rate cycles of a job in a stream of jobs: its passes (``R + Tb + L`` each: the
    load, the activations, the array's drain) or, when the params are the bottleneck, the
    ``C`` params beats (the bank is freed by the previous job's last token) and its ``Tb``
    outputs, whichever is longer."""
    R, L = g.rows, array_latency
    return max(job.passes * (R + job.tokens + L), g.cols + job.tokens)


def full_rate_bound(sched, array_latency: int, latency: int) -> tuple[int, int]:
    """``(ideal, bound)`` cycles of a full-rate run, from the tile's flow control.

    ``ideal`` is the input beats that cannot overlap: per pass its ``R`` weight beats, then
    (``loaded``) its ``Tb`` activations. ``bound`` is :func:`job_cycles` summed over the
    jobs (the array drains, ``L`` cycles, between passes: it takes a load only once the
    vectors in flight have left), less the last drain, plus the tile's ``latency`` (the last
    activation to ``m_axis_out``) and :data:`RUN_OVERHEAD`. A bubble every other beat would
    cost ``ideal`` cycles more.
    """
    g = sched.geometry
    ideal = sum((g.rows + j.tokens) * j.passes for j in sched.jobs)
    jobs = sum(job_cycles(j, g, array_latency) for j in sched.jobs)
    bound = jobs - array_latency + latency + RUN_OVERHEAD
    return ideal, bound


def first_bubble(cycles, start: int) -> tuple[int, int] | None:
    """``(index, expected cycle)`` of the first of ``cycles`` that is not back to back from
    cycle ``start``, or None."""
    for i, c in enumerate(cycles):
        if c > start + i:
            return i, start + i
    return None


def check_full_rate(ctx: TbContext, chk: Scoreboard, layer: Layer, traffic: Traffic) -> None:
    """The handshakes of a full-rate run (see the module docstring) and its total cycles."""
    sched, mon, g = layer.sched, traffic.monitor, layer.sched.geometry
    L = int(ctx.sidecar.parameters["array_latency"])
    R, C = g.rows, g.cols
    # Params-bound (C long against a job's passes): the activations wait for params, and the
    # waits carry over to the next jobs; only the per-job bound then holds for them.
    params_bound = any(params_wait(j, g, L) for j in sched.jobs)
    w_cyc, a_cyc = mon.beats[PORTS["weights"]], mon.beats[PORTS["act"]]
    p_cyc, o_cyc = mon.beats[PORTS["params"]], mon.beats[OUT]
    wi = ai = oi = 0
    prev_last_act = None

    def late(cycle, element, want, why) -> bool:
        if cycle > want:
            chk.fail(cycle, f"cycle of {element}", want, cycle, why)
            return True
        return False

    for j, job in enumerate(sched.jobs):
        # The job's params: C beats back to back, the first as soon as the bank is free
        # (with the previous job's last output: the release and the output register are
        # the same cycle's requantizer handshake).
        params = p_cyc[j * C : (j + 1) * C]
        if len(params) < C:
            return  # check_outputs reported the missing beats
        if j and late(
            params[0],
            f"params beat 0 of job {j}",
            o_cyc[oi - 1],
            "the bank is free when the previous job's last output enters the requantizer",
        ):
            return
        bubble = first_bubble(params, params[0])
        if bubble and late(params[bubble[0]], f"params beat {bubble[0]} of job {j}", bubble[1], ""):
            return
        oi += job.tokens
        for q in range(job.passes):
            where = f"job {j} pass {q}"
            w = w_cyc[wi : wi + R]
            a = a_cyc[ai : ai + job.tokens]
            wi, ai = wi + R, ai + job.tokens
            if len(w) < R or len(a) < job.tokens:
                return
            bubble = first_bubble(w, w[0])
            why = "a bubble at full rate (a pass's weights, then its activations, one per cycle)"
            if bubble and late(w[bubble[0]], f"weight beat {bubble[0]} of {where}", bubble[1], why):
                return
            if params_bound:
                continue
            if prev_last_act is not None and late(
                w[0],
                f"the first weight beat of {where}",
                prev_last_act + L + PASS_GAP,
                f"at most array_latency={L} + {PASS_GAP} cycles after the last activation of "
                "the previous pass (the array's drain)",
            ):
                return
            bubble = first_bubble(a, w[-1] + 1)
            if bubble and late(a[bubble[0]], f"activation {bubble[0]} of {where}", bubble[1], why):
                return
            prev_last_act = a[-1]
    ideal, bound = full_rate_bound(sched, L, ctx.sidecar.latency)
    gaps = [b - a for a, b in zip(a_cyc, a_cyc[1:], strict=False)]
    chk.extra.update(
        ideal_cycles=ideal,
        bound_cycles=bound,
        params_bound=params_bound,
        first_beat_cycle=min(w_cyc[0], p_cyc[0]),
        act_gap_max=max(gaps, default=0),
        tail_cycles=o_cyc[-1] - a_cyc[-1],
    )
    late(
        traffic.cycles,
        "the end of the full-rate run",
        bound,
        f"ideal {ideal} (R + Tb per pass); per job its passes with the array's drain "
        f"(L={L}) or its params (C={C}) and outputs; + latency {ctx.sidecar.latency} "
        f"+ {RUN_OVERHEAD}",
    )


def extreme_layer(ctx: TbContext, g: golden.TileGeometry) -> tuple[Layer, tuple[int, int]]:
    """The accumulators at the edge of their width: ``K = golden.max_k_for_width(acc_width)``
    products (one more could overflow; at most :data:`EXTREMES_MAX_K`), every one the
    extreme of its sign, summed over the K-tile passes; and the sum's ``golden.acc_range``
    ends ``(lo, hi)``, which it reaches.

    Tokens: all -128 (the most negative activation), all +127; columns alternate the codes
    of the most negative and the most positive weight. ``M``/``sh`` map ``|bound|`` to 100,
    so a wrapped sum cannot hide behind the int8 clamp.
    """
    sc = ctx.sidecar
    edge = golden.max_k_for_width(sc.acc_width, g.act, g.weight)
    # A wide accumulator (not sized by need) would take thousands of passes: stop earlier.
    k = min(edge, int(ctx.opt("extremes_max_k", EXTREMES_MAX_K)))
    ints = np.asarray(g.weight.ints)
    codes = [int(np.argmin(ints)), int(np.argmax(ints))]
    a = np.array([[min(g.act.ints)] * k, [max(g.act.ints)] * k], np.int64)
    n = max(g.cols, 2)
    w = np.array([[codes[c % 2]] * k for c in range(n)], np.int64)
    lo, hi = golden.acc_range(k, g.act, g.weight)
    M, sh = golden.requant_constants(np.full(n, 100.0 / max(-lo, hi)))
    sched = golden.schedule(a, w, M, sh, g)
    held = "the most" if k == edge else f"capped; {edge} is the most"
    desc = (
        f"accumulator extremes: K={k} ({held} acc_width={sc.acc_width} bits hold) "
        f"on {g.rows}x{g.cols}, {sched.jobs[0].passes} passes, bound [{lo}, {hi}]"
    )
    return Layer(sched, desc, (a, w, M, sh)), (lo, hi)
