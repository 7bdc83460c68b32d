"""Requantizer against golden.requantize: random, extreme, rounding ties, gaps, back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest

import golden
from golden.kernels import M_MAX, M_MIN, SH_MAX, SH_MIN
from hw.requant import Requantizer
from hw.testing import simulate, stream_receive, stream_send


def _vectors(rng: random.Random, lanes: int, acc_width: int, count: int):
    lo, hi = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
    beats = []
    for t in range(count):
        acc, M, sh = [], [], []
        for _ in range(lanes):
            kind = rng.random()
            if t < 4:  # extremes first
                acc.append([lo, hi, 0, -1][t])
            elif kind < 0.3:
                acc.append(rng.randint(-3000, 3000))
            else:
                acc.append(rng.randint(lo, hi))
            M.append(rng.choice([M_MIN, M_MAX - 1, rng.randrange(M_MIN, M_MAX)]))
            sh.append(
                rng.choice([SH_MIN, SH_MAX, rng.randint(SH_MIN, SH_MAX), rng.randint(28, 45)])
            )
        beats.append({"acc": acc, "M": M, "sh": sh})
    # Exact ties: acc * M == (2k+1) * 2**(sh-1) round half up (towards +inf).
    beats.append({"acc": [3] * lanes, "M": [M_MIN] * lanes, "sh": [31] * lanes})
    beats.append({"acc": [-3] * lanes, "M": [M_MIN] * lanes, "sh": [31] * lanes})
    return beats


def _expected(beats):
    acc = np.array([b["acc"] for b in beats], dtype=np.int64)
    M = np.array([b["M"] for b in beats], dtype=np.int64)
    sh = np.array([b["sh"] for b in beats], dtype=np.int64)
    return golden.requantize(acc, M, sh).tolist()


@pytest.mark.parametrize(
    "lanes, acc_width, pipeline, gap, stall",
    [
        (1, 24, False, 0.0, 0.0),
        (3, 24, True, 0.3, 0.4),
        (2, 32, False, 0.5, 0.5),
        (2, 17, True, 0.0, 0.7),
    ],
)
def test_requantizer_matches_golden(lanes, acc_width, pipeline, gap, stall):
    rng = random.Random(lanes * 100 + acc_width)
    beats = _vectors(rng, lanes, acc_width, 60)
    dut = Requantizer(lanes, acc_width, pipeline=pipeline)
    got = []

    async def send(ctx):
        await stream_send(ctx, dut.i, beats, random.Random(5), gap)

    async def receive(ctx):
        got.extend(await stream_receive(ctx, dut.o, len(beats), random.Random(6), stall))

    simulate(dut, send, receive)
    assert got == _expected(beats)
    assert dut.latency == (2 if pipeline else 1)


@pytest.mark.parametrize(
    "args, match", [((0, 24), "lanes"), ((2, 1), "acc_width"), ((2, 65), "acc_width")]
)
def test_requantizer_rejects_bad_parameters(args, match):
    with pytest.raises(ValueError, match=match):
        Requantizer(*args)
