"""Workloads for gate-level power: one unit's inputs per cycle from an operand stream, the
golden outputs it must show, and how many multiply-accumulates the cycles perform.

Each builder takes a :class:`hw.DesignPoint`, int8 activations and weight codes (from
:func:`reports.gatesim.operands` or :func:`layer_tiles`) and returns a :class:`Workload`
whose ``stimulus`` drives every input port but ``clk``/``rst`` (payloads packed by the
export's field offsets, :func:`hw.export.describe_ports`) and whose ``expected`` comes from
golden: :func:`golden.mac_trace` for the MAC, :func:`golden.accumulate` for the dot product
and the array. Every stream runs at full rate (``valid`` and ``ready`` high), so the energy
per MAC is that of the unit at full throughput plus what its own protocol costs (a
systolic array's weight loads and drain bubbles are in the cycles, and say so in ``note``).

Sampling follows :func:`reports.gatesim.simulate`: ``outputs[i]`` is what the design shows
during cycle ``i``, after the edges that took rows ``0..i-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import golden
import hw
from hw.export import describe_ports


class WorkloadError(ValueError):
    """The workload cannot be built for this design point; the message says why."""


@dataclass(frozen=True)
class Workload:
    """Inputs per cycle, golden outputs per cycle (checked where ``check`` is true; absent =
    every cycle), the multiply-accumulates performed, and a note on the schedule."""

    stimulus: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]
    macs: int
    note: str
    check: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return len(next(iter(self.stimulus.values())))


def _fields(component) -> dict[str, list[dict]]:
    """Port name -> its payload leaves (``{"path", "offset", "width", "signed"}``)."""
    out = {}
    component._MustUse__silence = True  # described, not elaborated: no UnusedElaboratable
    for p in describe_ports(component)[0]:
        out[p["name"]] = p.get("fields", [{"path": "", "offset": 0, "width": p["width"]}])
    return out


def pack(leaves: list[dict], values: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Payload integers (Python ints, two's complement per field) of ``n`` beats; ``values``
    maps a leaf path (``"a[3]"``, ``"first"``, ``"[0]"``) to ``n`` integers; leaves not
    given are 0 and a path that is not a leaf raises."""
    by_path = {leaf["path"]: leaf for leaf in leaves}
    total = np.zeros(n, dtype=object)
    total[:] = 0
    for path, col in values.items():
        if path not in by_path:
            raise WorkloadError(f"no payload field {path!r}; have {sorted(by_path)[:6]}...")
        leaf = by_path[path]
        mask = (1 << leaf["width"]) - 1
        bits = np.array([int(v) & mask for v in np.asarray(col).tolist()], dtype=object)
        total = total + bits * (1 << leaf["offset"])
    return total


def _shifted(col, first) -> np.ndarray:
    """``col`` one cycle later (``first`` during cycle 0): a registered output's view."""
    col = np.asarray(col)
    return np.concatenate([np.asarray([first], dtype=col.dtype), col[:-1]])


def mul(point: hw.DesignPoint, a, w) -> Workload:
    """One product per cycle on the combinational ``mul`` level (decoder + multiplier):
    ``product`` during cycle ``i`` is row ``i``'s, from :func:`golden.accumulate`."""
    a, w = np.asarray(a, dtype=np.int64), np.asarray(w, dtype=np.int64)
    prods = np.array(
        [
            golden.accumulate([[x]], [[c]], point.weight_format, point.act_format)[0, 0]
            for x, c in zip(a.tolist(), w.tolist(), strict=True)
        ],
        dtype=np.int64,
    )
    return Workload({"a": a, "w": w}, {"product": prods}, len(a), "one product per cycle")


def mac(point: hw.DesignPoint, a, w, k: int) -> Workload:
    """Dot products of ``k`` back to back on :class:`hw.MAC` (``en`` = 1, ``clear`` on each
    group's first product); ``expected["acc"]`` from :func:`golden.mac_trace`."""
    a, w = np.asarray(a, dtype=np.int64), np.asarray(w, dtype=np.int64)
    n = len(a)
    clear = (np.arange(n) % k == 0).astype(np.int64)
    stim = {"a": a, "w": w, "en": np.ones(n, np.int64), "clear": clear}
    rows = [_shifted(c, c[0]) for c in (a, w, stim["en"], stim["clear"])]  # reset edge first
    rst = (np.arange(n) == 0).astype(np.int64)
    acc = golden.mac_trace(*rows, rst, point.weight_format, point.act_format, point.acc_width)
    return Workload(stim, {"acc": acc}, n, f"dot products of {k}, one product per cycle")


def dot(point: hw.DesignPoint, a, w, k: int) -> Workload:
    """Dot products of ``k`` (a multiple of the lanes) on :class:`hw.DotProduct`, one beat
    of ``lanes`` products per cycle, ``first``/``last`` on each group's first and last
    beat. ``o`` shows a group's :func:`golden.accumulate` sum (and ``o.valid``) during the
    cycle after its last beat; ``o.valid`` is checked every cycle, the payload when valid."""
    lanes = point.size
    if k % lanes:
        raise WorkloadError(f"dot{lanes}: k = {k} must be a multiple of the {lanes} lanes")
    beats = len(a) // lanes
    if beats < 2:
        raise WorkloadError(f"dot{lanes}: {len(a)} operands make fewer than 2 beats")
    a = np.asarray(a, dtype=np.int64)[: beats * lanes].reshape(beats, lanes)
    w = np.asarray(w, dtype=np.int64)[: beats * lanes].reshape(beats, lanes)
    per = k // lanes
    pos = np.arange(beats) % per
    first, last = (pos == 0).astype(np.int64), (pos == per - 1).astype(np.int64)
    leaves = _fields(point.build())["i__payload"]
    vals = {f"a[{i}]": a[:, i] for i in range(lanes)} | {f"w[{i}]": w[:, i] for i in range(lanes)}
    payload = pack(leaves, vals | {"first": first, "last": last}, beats)
    ones = np.ones(beats, np.int64)
    stim = {"i__payload": payload, "i__valid": ones, "o__ready": ones}
    # Each group's sum: golden.accumulate of its products, group by group.
    groups = beats // per
    sums = np.zeros(beats, np.int64)
    for g in range(groups):
        rows = slice(g * per, (g + 1) * per)
        sums[g * per + per - 1] = golden.accumulate(
            a[rows].reshape(1, -1), w[rows].reshape(1, -1), point.weight_format, point.act_format
        )[0, 0]
    valid = _shifted(last, 0)
    want = _shifted(sums, 0)
    return Workload(
        stim,
        {"o__valid": valid, "o__payload": want},
        beats * lanes,
        f"dot products of {k}, {lanes} products per cycle",
        {"o__payload": valid.astype(bool)},
    )


def layer_tiles(tiles, rows: int, cols: int, tokens: int, rng: np.random.Generator):
    """Weight tiles of a real layer for an R x C array, lazily: ``(a[T, R], W[R, C] codes,
    psum[T, C])``, ``psum`` the exact sum of the earlier K-tiles of the same outputs
    (:func:`golden.accumulate`), as the array chains them in a layer. ``tiles``:
    :class:`golden.layerfile` tiles; ``rng`` orders the (linear, output block, K-tile)
    positions at random, so a short run samples every linear; each tile streams ``tokens``
    consecutive tokens from a random start (wrapping around when the tile has fewer)."""
    where = [
        (i, n0, k0)
        for i, t in enumerate(tiles)
        for n0 in range(0, t.shape[2] - cols + 1, cols)
        for k0 in range(0, t.shape[1] - rows + 1, rows)
    ]
    for j in rng.permutation(len(where)):
        i, n0, k0 = where[j]
        tile = tiles[i]
        w_blk = tile.w_codes[n0 : n0 + cols]
        t_idx = (int(rng.integers(tile.shape[0])) + np.arange(tokens)) % tile.shape[0]
        a_blk = tile.a[t_idx].astype(np.int64)
        psum = golden.accumulate(a_blk[:, :k0], w_blk[:, :k0], tile.weight_format)
        yield a_blk[:, k0 : k0 + rows], w_blk[:, k0 : k0 + rows].T, psum


def systolic(point: hw.DesignPoint, tiles, max_cycles: int) -> Workload:
    """The tiles of :func:`layer_tiles` through a systolic array (``classic``, or ``lean``
    whose output is the tile sum): per tile, ``rows`` weight beats on ``w_in``, then its
    ``T`` activation vectors on ``a_in`` one per cycle (the classic array's with their
    psums); the next load waits for the array to drain (the arrays' rule), and ``o`` shows
    each vector's ``psum + golden.accumulate(a, W)`` (lean: ``golden.accumulate(a, W)``)
    ``latency`` cycles after it was taken. Tiles are taken while they fit in
    ``max_cycles``; ``o.valid`` is checked every cycle, the payload when valid."""
    if point.level != "systolic" or point.arch not in ("classic", "lean"):
        raise WorkloadError(
            f"{point.name}: arrays with this workload are classic and lean, not {point.arch}"
        )
    R, C = point.rows, point.columns
    component = point.build()
    latency = component.latency
    f = _fields(component)
    chain = any(leaf["path"].startswith("psum") for leaf in f["a_in__payload"])
    w_rows, a_rows, p_rows, valid_in, w_valid, out_rows = [], [], [], [], [], []
    macs = ntiles = T = 0
    weight, act = point.weight_format, point.act_format
    cycle = 0
    for a_t, w_t, psum in tiles:
        T = len(a_t)
        need = R + T + latency
        if cycle + need > max_cycles and cycle:
            break
        w_t = np.asarray(w_t)
        if w_t.shape != (R, C) or a_t.shape[1] != R or psum.shape != (T, C):
            raise WorkloadError(f"tile shapes {a_t.shape}, {w_t.shape}, {psum.shape} for {R}x{C}")
        # R load cycles, then T vectors, then the drain (latency cycles, nothing offered).
        for r in range(R):
            w_rows.append(w_t[r])
            w_valid.append(1)
            a_rows.append(np.zeros(R, np.int64))
            p_rows.append(np.zeros(C, np.int64))
            valid_in.append(0)
        sums = golden.accumulate(a_t, w_t.T, weight, act) + (psum if chain else 0)
        for t in range(T):
            w_rows.append(np.zeros(C, np.int64))
            w_valid.append(0)
            a_rows.append(a_t[t])
            p_rows.append(psum[t])
            valid_in.append(1)
        for _ in range(latency):
            w_rows.append(np.zeros(C, np.int64))
            w_valid.append(0)
            a_rows.append(np.zeros(R, np.int64))
            p_rows.append(np.zeros(C, np.int64))
            valid_in.append(0)
        # Vector t is taken on the edge closing cycle c0 + R + t; o shows it `latency`
        # edges later: during cycle c0 + R + t + latency.
        base = cycle + R + latency
        out_rows.extend([(base + t, sums[t]) for t in range(T)])
        cycle += need
        macs += T * R * C
        ntiles += 1
    if not macs:
        raise WorkloadError(f"no tile fits in {max_cycles} cycles")
    n = cycle
    w_arr, a_arr, p_arr = np.array(w_rows), np.array(a_rows), np.array(p_rows)
    stim = {
        "w_in__payload": pack(f["w_in__payload"], {f"[{c}]": w_arr[:, c] for c in range(C)}, n),
        "w_in__valid": np.array(w_valid, np.int64),
        "a_in__payload": pack(
            f["a_in__payload"],
            {f"a[{r}]": a_arr[:, r] for r in range(R)}
            | ({f"psum[{c}]": p_arr[:, c] for c in range(C)} if chain else {}),
            n,
        ),
        "a_in__valid": np.array(valid_in, np.int64),
        "o__ready": np.ones(n, np.int64),
    }
    valid = np.zeros(n, np.int64)
    want = np.zeros(n, dtype=object)
    want[:] = 0
    width = component.acc_width
    for c_out, vec in out_rows:
        valid[c_out] = 1
        want[c_out] = sum((int(v) & ((1 << width) - 1)) << (c * width) for c, v in enumerate(vec))
    return Workload(
        stim,
        {"o__valid": valid, "o__payload": want},
        macs,
        f"{ntiles} weight tiles of {T} tokens: {R} load cycles, the vectors, "
        f"{latency} drain cycles each ({macs / (n * R * C):.0%} of peak)",
        {"o__payload": valid.astype(bool)},
    )
