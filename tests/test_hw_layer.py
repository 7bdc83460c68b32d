"""SystolicArray -> Requantizer: a whole int8 -> int8 layer tile against golden.linear_int8."""

from __future__ import annotations

import random

import numpy as np
from amaranth.hdl import Module, Signal

import golden
from hw.requant import M_WIDTH, SH_WIDTH, Requantizer
from hw.systolic import SystolicArray
from hw.testing import simulate, stream_receive, stream_send


def test_array_then_requantizer_is_linear_int8():
    fmt = golden.get("dint4")
    rows, cols, T = 4, 3, 12
    rng = np.random.default_rng(21)
    a = rng.integers(-127, 128, size=(T, rows))
    w = rng.integers(0, 16, size=(cols, rows))
    multiplier = golden.output_multiplier(0.05, rng.uniform(0.01, 0.05, cols), fmt, 0.1)
    M, sh = golden.requant_constants(multiplier)

    array = SystolicArray(rows, cols, fmt, k_max=rows)
    requant = Requantizer(cols, array.acc_width)
    m = Module()
    m.submodules.array, m.submodules.requant = array, requant
    M_sig = [Signal(M_WIDTH, name=f"M_{c}") for c in range(cols)]
    sh_sig = [Signal(SH_WIDTH, name=f"sh_{c}") for c in range(cols)]
    m.d.comb += [
        requant.i.valid.eq(array.o.valid),
        array.o.ready.eq(requant.i.ready),
    ]
    for c in range(cols):
        m.d.comb += [
            requant.i.payload.acc[c].eq(array.o.payload[c]),
            requant.i.payload.M[c].eq(M_sig[c]),
            requant.i.payload.sh[c].eq(sh_sig[c]),
        ]
    got = []

    async def send(ctx):
        for c in range(cols):
            ctx.set(M_sig[c], int(M[c]))
            ctx.set(sh_sig[c], int(sh[c]))
        beats = [[int(w[c, r]) for c in range(cols)] for r in range(rows)]
        await stream_send(ctx, array.w_in, beats)
        vectors = [{"a": [int(x) for x in a[t]], "psum": [0] * cols} for t in range(T)]
        await stream_send(ctx, array.a_in, vectors, random.Random(3), gap=0.2)

    async def receive(ctx):
        got.extend(await stream_receive(ctx, requant.o, T, random.Random(4), stall=0.3))

    simulate(m, send, receive)
    want = golden.linear_int8(a, w, fmt, M, sh)
    assert np.array_equal(np.array(got), want)
    assert len(np.unique(want)) > 5  # not all clamped: the scales exercise the rounding
