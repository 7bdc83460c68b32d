"""cocotb testbench of the exported MAC: the update rule ``golden.MAC_UPDATE`` on every edge.

Every expected ``acc`` trace is ``golden.mac_trace`` (the cycle-level reference of the MAC
contract, with products from the registered format ``golden.FORMATS``, never the sidecar's
copy of the table), so a wrong decoder entry or a wrong ``en``/``clear``/``rst`` priority in
the design fails here.

Tests:

- ``test_exhaustive``: every (a, code) pair, one per cycle with ``en=clear=1``, in a
  shuffled order; the next cycle's ``acc`` must be exactly the product.
- ``test_sequences``: random ``en`` / ``clear`` / ``rst`` / operands; ``acc`` checked every
  cycle.
- ``test_acc_extremes``: the exported width is the registry's and ``golden.check_acc_width``
  accepts it for ``k_max``; then, for each sign combination of the extreme operands,
  ``k_max`` worst-case products accumulated, every running sum checked, the last one equal
  to the exact ``golden.accumulate``.
"""

from __future__ import annotations

import dataclasses

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

import golden

from .tbutil import Scoreboard, TbContext, start


def _setup():
    ctx = TbContext.load()
    sc = ctx.sidecar
    weight = golden.get(sc.weight_format_name)
    act = golden.get(sc.parameters.get("act_format", "int8"))
    a_values = np.arange(min(act.ints), max(act.ints) + 1, dtype=np.int64)
    codes = np.arange(1 << weight.bits, dtype=np.int64)
    return ctx, weight, act, a_values, codes


def _trace(weight, act, a, w, en, clear, rst=None, acc_width=None) -> np.ndarray:
    """The expected ``acc`` after each edge: ``golden.mac_trace``."""
    return golden.mac_trace(a, w, en, clear, rst, weight=weight, act=act, acc_width=acc_width)


async def _drive(dut, a, w, en, clear, rst=None) -> np.ndarray:
    """Apply one (a, w, en, clear[, rst]) per cycle; return ``acc`` after each edge."""
    fall = FallingEdge(dut.clk)
    acc_h, a_h, w_h, en_h, clear_h, rst_h = dut.acc, dut.a, dut.w, dut.en, dut.clear, dut.rst
    n = len(a)
    out = np.zeros(n, dtype=np.int64)
    a_l, w_l, en_l, cl_l = (x.tolist() for x in (a, w, en, clear))
    rst_l = rst.tolist() if rst is not None else None
    prev = (None, None, None, None, None)
    await fall
    for i in range(n):
        cur = (a_l[i], w_l[i], en_l[i], cl_l[i], rst_l[i] if rst_l else 0)
        if cur[0] != prev[0]:
            a_h.value = cur[0]
        if cur[1] != prev[1]:
            w_h.value = cur[1]
        if cur[2] != prev[2]:
            en_h.value = cur[2]
        if cur[3] != prev[3]:
            clear_h.value = cur[3]
        if cur[4] != prev[4]:
            rst_h.value = cur[4]
        prev = cur
        await fall
        out[i] = acc_h.value.to_signed()
    en_h.value = 0
    clear_h.value = 0
    rst_h.value = 0
    return out


@cocotb.test()
async def test_exhaustive(dut):
    ctx, weight, act, a_values, codes = _setup()
    chk = Scoreboard(ctx, "test_exhaustive")
    await start(dut)
    aa, cc = np.meshgrid(a_values, codes, indexing="ij")
    pairs = np.stack([aa.ravel(), cc.ravel()], axis=1)
    pairs = pairs[ctx.rng("exhaustive").permutation(len(pairs))]
    a, w = pairs[:, 0], pairs[:, 1]
    ones = np.ones(len(a), dtype=np.int64)
    chk.start_clock()
    got = await _drive(dut, a, w, ones, ones)
    chk.stop_clock()
    chk.cycles = len(a)
    expected = _trace(weight, act, a, w, ones, ones)
    chk.compare(
        expected,
        got,
        np.arange(len(a)),
        "product {row}",
        context=f"weight format {weight.name}",
    )
    if chk.mismatch is not None:
        i = int(np.argmax(expected != got))
        chk.mismatch = dataclasses.replace(
            chk.mismatch,
            element=f"a={int(a[i])} x code {int(w[i])} (ints[{int(w[i])}]="
            f"{weight.ints[int(w[i])]}; {weight.name})",
        )
    chk.extra = {"pairs": len(a)}
    chk.finish()


@cocotb.test()
async def test_sequences(dut):
    ctx, weight, act, a_values, codes = _setup()
    chk = Scoreboard(ctx, "test_sequences")
    rng = ctx.rng("sequences")
    n = int(ctx.opt("sequence_cycles", 20000, quick=4000))
    await start(dut)
    a = rng.integers(a_values[0], a_values[-1] + 1, n)
    w = rng.integers(0, len(codes), n)
    en = (rng.random(n) < 0.8).astype(np.int64)
    clear = (rng.random(n) < 0.08).astype(np.int64)
    rst = (rng.random(n) < 0.005).astype(np.int64)
    chk.start_clock()
    got = await _drive(dut, a, w, en, clear, rst)
    chk.stop_clock()
    chk.cycles = n
    chk.compare(
        _trace(weight, act, a, w, en, clear, rst, acc_width=ctx.sidecar.acc_width),
        got,
        np.arange(n),
        "acc after cycle {row}",
        context="random en/clear/rst sequence",
    )
    chk.macs = int(en.sum() - (en & rst).sum()) if chk.mismatch is None else 0
    chk.finish()


@cocotb.test()
async def test_acc_extremes(dut):
    ctx, weight, act, a_values, codes = _setup()
    chk = Scoreboard(ctx, "test_acc_extremes")
    sc = ctx.sidecar
    k_max, acc_width = int(sc.parameters["k_max"]), sc.acc_width
    # The exported design is the registry's point, and its width holds k_max products.
    point = ctx.designs.get("dut", {})
    for key, got in (("acc_width", acc_width), ("k_max", k_max)):
        if key in point and point[key] != got:
            chk.fail(0, key, point[key], got, "hw registry point vs exported sidecar")
    golden.check_acc_width(k_max, acc_width, act, weight)  # raises if it could overflow
    await start(dut)
    a_ext = (min(act.ints), max(act.ints))
    w_ext = (int(np.argmin(weight.ints_array)), int(np.argmax(weight.ints_array)))
    total_cycles = 0
    finals = {}
    for a0 in a_ext:
        for w0 in w_ext:
            a = np.full(k_max, a0, dtype=np.int64)
            w = np.full(k_max, w0, dtype=np.int64)
            en = np.ones(k_max, dtype=np.int64)
            clear = np.zeros(k_max, dtype=np.int64)
            clear[0] = 1
            chk.start_clock()
            got = await _drive(dut, a, w, en, clear)
            chk.stop_clock()
            # Running sums of the first k products (the trace raises if one would not fit
            # acc_width); the last one is the exact K = k_max dot product.
            expected = _trace(weight, act, a, w, en, clear, acc_width=acc_width)
            final = int(golden.accumulate(a[None, :], w[None, :], weight, act)[0, 0])
            if expected[-1] != final:
                chk.fail(total_cycles + k_max - 1, "golden final", final, int(expected[-1]))
            chk.compare(
                expected,
                got,
                np.arange(total_cycles, total_cycles + k_max),
                f"acc after {{row}}+1 products of a={a0} x code {w0}",
                context=f"k_max={k_max}, acc_width={acc_width}",
            )
            finals[f"{a0}*ints[{w0}]"] = int(got[-1])
            total_cycles += k_max
    chk.cycles = total_cycles
    lo, hi = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
    chk.extra = {
        "k_max": k_max,
        "acc_width": acc_width,
        "min_acc_width": golden.min_acc_width(k_max, act, weight),
        "finals": finals,
        "headroom_bits": float(np.log2(hi / max(abs(v) for v in finals.values()))),
        "range": [lo, hi],
    }
    chk.finish()
