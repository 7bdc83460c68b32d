"""cocotb testbench of the exported MAC: ``acc <= (clear ? 0 : acc) + a * ints[w]`` with ``en``.

Expected products come from ``golden.accumulate`` on the full (a, code) table of the
registered format (``golden.FORMATS``, never the sidecar's copy of the table), so a wrong
decoder entry in the design fails here.

Tests:

- ``test_exhaustive``: every (a, code) pair, one per cycle with ``en=clear=1``, in a
  shuffled order; the next cycle's ``acc`` must be exactly the product.
- ``test_sequences``: random ``en`` / ``clear`` / ``rst`` / operands; ``acc`` checked every
  cycle against the contract applied to golden products.
- ``test_acc_extremes``: for each sign combination of the extreme operands, ``k_max``
  worst-case products accumulated; every intermediate and the final value (the exact
  ``golden.accumulate``) must come out, proving the accumulator holds the documented K.
"""

from __future__ import annotations

import dataclasses

import cocotb
import numpy as np

import golden

from .tbutil import Checker, TbContext, start


def _setup():
    ctx = TbContext.load()
    sc = ctx.sidecar
    weight = golden.get(sc.weight_format_name)
    act = golden.get(sc.parameters.get("act_format", "int8"))
    # The product table from the golden kernel: table[a - min_a, code] = a * ints[code].
    a_values = np.arange(min(act.ints), max(act.ints) + 1, dtype=np.int64)
    codes = np.arange(1 << weight.bits, dtype=np.int64)
    table = golden.accumulate(a_values[:, None], codes[:, None], weight, act)
    return ctx, weight, act, a_values, codes, table


async def _drive(dut, a, w, en, clear, rst=None) -> np.ndarray:
    """Apply one (a, w, en, clear[, rst]) per cycle; return ``acc`` after each edge."""
    from cocotb.triggers import FallingEdge

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
    ctx, weight, act, a_values, codes, table = _setup()
    chk = Checker(ctx, "test_exhaustive")
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
    expected = table[a - a_values[0], w]
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
    ctx, weight, act, a_values, codes, table = _setup()
    chk = Checker(ctx, "test_sequences")
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
    # The MAC contract applied to golden products: rst clears; en updates; clear restarts.
    prod = table[a - a_values[0], w]
    expected = np.zeros(n, dtype=np.int64)
    acc = 0
    for i in range(n):
        if rst[i]:
            acc = 0
        elif en[i]:
            acc = (0 if clear[i] else acc) + int(prod[i])
        expected[i] = acc
    chk.compare(
        expected,
        got,
        np.arange(n),
        "acc after cycle {row}",
        context="random en/clear/rst sequence",
    )
    chk.macs = int(en.sum() - (en & rst).sum()) if chk.mismatch is None else 0
    chk.finish()


@cocotb.test()
async def test_acc_extremes(dut):
    ctx, weight, act, a_values, codes, table = _setup()
    chk = Checker(ctx, "test_acc_extremes")
    sc = ctx.sidecar
    k_max = int(sc.parameters.get("k_max") or ctx.opt("k_max", 4096))
    acc_width = sc.acc_width
    # The width the design has must be the documented rule, and must hold the exact bound.
    rule = golden.acc_width_for(k_max, act, weight)
    if acc_width != rule:
        chk.fail(0, "acc_width", rule, acc_width, f"golden.acc_width_for({k_max}) vs sidecar")
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
            # Running sums of the first k products, each an exact golden dot product of
            # length k; the last one is the K = k_max result.
            final = int(golden.accumulate(a[None, :], w[None, :], weight, act)[0, 0])
            step = int(table[a0 - a_values[0], w0])
            expected = np.arange(1, k_max + 1, dtype=np.int64) * step
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
        "finals": finals,
        "headroom_bits": float(np.log2(hi / max(abs(v) for v in finals.values()))),
        "range": [lo, hi],
    }
    chk.finish()
