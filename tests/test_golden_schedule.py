"""The tile schedule: stream order, tlast, padding, and a behavioural tile that runs it.

Expected outputs come from ``golden.linear_int8`` only; the protocol checks index the inputs
directly, as the spec in ``golden/schedule.py`` states them.
"""

from dataclasses import replace

import numpy as np
import pytest

from golden import (
    FormatError,
    Phase,
    TileGeometry,
    accumulate,
    linear_int8,
    min_acc_width,
    requant_constants,
    run_model,
    schedule,
)
from golden.contract import M_MAX, M_MIN, SH_MIN


def layer(t, k, n, weight, seed=0, act="int8"):
    """A random layer whose requant constants spread the outputs over the int8 range."""
    g = TileGeometry(1, 1, 1, weight, act)
    rng = np.random.default_rng(seed)
    lo, hi = min(g.act.ints), max(g.act.ints)
    a = rng.integers(lo, hi + 1, size=(t, k))
    w = rng.integers(0, 2**g.weight.bits, size=(n, k))
    peak = np.abs(accumulate(a, w, g.weight, g.act)).max(axis=0) + 1
    M, sh = requant_constants(150.0 / peak)
    return a, w, M, sh


# (T, K, N, rows, cols, depth, weight format)
CASES = [
    (5, 13, 7, 4, 3, 8, "dint4"),  # K % R, N % C != 0; T < depth
    (20, 16, 8, 4, 4, 6, "int4"),  # T > depth with a short last block
    (12, 8, 4, 4, 4, 4, "fp4_e2m1"),  # T a multiple of depth
    (3, 5, 2, 1, 1, 1, "int8"),  # R = C = depth = 1
    (7, 9, 5, 3, 8, 1, "dint4"),  # depth 1, C > N
    (9, 2, 3, 8, 2, 16, "dint4_0.25"),  # R > K
    (11, 6, 9, 2, 1, 4, "int8"),  # C = 1, several blocks
    (1, 1, 1, 1, 1, 1, "int4"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "T{}K{}N{}_R{}C{}D{}_{}".format(*c))
def test_tile_model_computes_the_layer(case):
    t, k, n, rows, cols, depth, fmt = case
    a, w, M, sh = layer(t, k, n, fmt, seed=sum(case[:6]))
    geom = TileGeometry(rows, cols, depth, fmt)
    sched = schedule(a, w, M, sh, geom)
    y = linear_int8(a, w, fmt, M, sh)
    assert np.any(y != 0)
    out, last = run_model(sched.phases, geom)
    assert np.array_equal(out, sched.expected_out)
    assert np.array_equal(last, sched.expected_last)
    assert np.array_equal(sched.assemble(out), y)
    assert sched.macs == t * k * n
    k_pad, n_pad = -(-k // rows) * rows, -(-n // cols) * cols
    assert sched.array_macs == t * k_pad * n_pad
    assert sched.array_macs == sum(p.beats for p in sched.phases_of("act")) * rows * cols


def test_int4_activations():
    a, w, M, sh = layer(6, 7, 5, "dint4", seed=4, act="int4")
    geom = TileGeometry(3, 2, 4, "dint4", act="int4")
    sched = schedule(a, w, M, sh, geom)
    out, _ = run_model(sched.phases, geom)
    assert np.array_equal(sched.assemble(out), linear_int8(a, w, "dint4", M, sh, act="int4"))


def test_stream_order_tlast_and_payloads():
    t, k, n, rows, cols, depth = 7, 10, 5, 4, 2, 3
    a, w, M, sh = layer(t, k, n, "dint4", seed=1)
    sched = schedule(a, w, M, sh, TileGeometry(rows, cols, depth, "dint4"))
    passes = 3  # ceil(10 / 4)
    expected_jobs = [(n0, t0) for n0 in (0, 2, 4) for t0 in (0, 3, 6)]
    assert [(j.n0, j.t0) for j in sched.jobs] == expected_jobs
    assert [j.tokens for j in sched.jobs] == [3, 3, 1] * 3
    assert all(j.passes == passes for j in sched.jobs)
    per_job = ["params"] + ["weights", "act"] * passes
    assert [p.stream for p in sched.phases] == per_job * len(sched.jobs)

    it = iter(sched.phases)
    for job in sched.jobs:
        params = next(it)
        assert params.beats == cols
        assert params.last.tolist() == [False] * (cols - 1) + [True]
        for c in range(cols):
            col = job.n0 + c
            want = (M[col], sh[col]) if col < n else (M_MIN, SH_MIN)
            assert (params.fields["M"][c], params.fields["sh"][c]) == want
        for p in range(passes):
            k0 = p * rows
            weights, acts = next(it), next(it)
            assert weights.beats == rows
            last_pass = p == passes - 1
            assert weights.last.tolist() == [False] * (rows - 1) + [last_pass]
            for r in range(rows):
                for c in range(cols):
                    inside = job.n0 + c < n and k0 + r < k
                    want = w[job.n0 + c, k0 + r] if inside else 0
                    assert weights.fields["w"][r, c] == want
            assert acts.beats == job.tokens
            assert acts.last.tolist() == [False] * (job.tokens - 1) + [True]
            for j in range(job.tokens):
                for r in range(rows):
                    want = a[job.t0 + j, k0 + r] if k0 + r < k else 0
                    assert acts.fields["a"][j, r] == want

    assert sched.expected_out.shape == (t * 3, cols)
    ends = np.cumsum([j.tokens for j in sched.jobs]) - 1
    assert np.flatnonzero(sched.expected_last).tolist() == ends.tolist()
    y = linear_int8(a, w, "dint4", M, sh)
    for i, job in enumerate(sched.jobs):
        beats = sched.expected_out[ends[i] - job.tokens + 1 : ends[i] + 1]
        width = min(cols, n - job.n0)
        assert np.array_equal(
            beats[:, :width], y[job.t0 : job.t0 + job.tokens, job.n0 :][:, :width]
        )
        assert not beats[:, width:].any()  # padded outputs are 0


def test_phases_are_read_only_views():
    a, w, M, sh = layer(4, 8, 4, "int4")
    sched = schedule(a, w, M, sh, TileGeometry(4, 2, 4, "int4"))
    acts = sched.phases_of("act")
    # Jobs of two N-tiles stream the same token block: the same memory, not copies.
    assert np.shares_memory(acts[0].fields["a"], acts[2].fields["a"])
    with pytest.raises(ValueError):
        acts[0].fields["a"][0, 0] = 1
    with pytest.raises(FormatError, match="unknown stream"):
        sched.phases_of("out")


# ---- bad inputs ------------------------------------------------------------------------


def _bad_layer():
    a, w, M, sh = layer(4, 6, 3, "int4")
    return {"a": a, "w_codes": w, "M": M, "sh": sh}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"w_codes": np.zeros((3, 5), int)}, r"a has K=6.*w_codes has K=5"),
        ({"w_codes": np.full((3, 6), 16)}, r"weight codes .*int4.*\[0, 15\].*16"),
        ({"w_codes": np.full((3, 6), -1)}, r"weight codes"),
        ({"a": np.full((4, 6), 128)}, r"activations a \(int8\).*\[-128, 127\]"),
        ({"a": np.zeros((4, 6))}, r"a must hold integers"),
        ({"a": np.zeros((0, 6), int)}, r"T=0"),
        ({"a": np.zeros(6, int)}, r"a must be 2-D"),
        ({"M": np.full(3, M_MIN - 1)}, r"multiplier M out of range"),
        ({"M": np.full(3, M_MAX)}, r"multiplier M out of range"),
        ({"sh": np.zeros(3, int)}, r"shift sh out of range"),
        ({"sh": np.ones(4, int)}, r"sh has shape \(4,\); expected \(3,\)"),
        ({"M": np.full(2, M_MIN)}, r"M has shape \(2,\); expected \(3,\)"),
    ],
)
def test_schedule_rejects_bad_inputs(change, match):
    args = {**_bad_layer(), **change}
    with pytest.raises(FormatError, match=match):
        schedule(**args, geometry=TileGeometry(2, 2, 2, "int4"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, r"depth must be an integer >= 1, got 0"),
        ({"rows": -2}, r"rows must be an integer >= 1"),
        ({"cols": 2.0}, r"cols must be an integer >= 1"),
        ({"rows": True}, r"rows must be an integer"),
        ({"weight": "int5"}, r"unknown format 'int5'"),
        ({"act": "nope"}, r"unknown format 'nope'"),
    ],
)
def test_geometry_rejects_bad_parameters(kwargs, match):
    base = {"rows": 2, "cols": 2, "depth": 2, "weight": "dint4"}
    with pytest.raises(FormatError, match=match):
        TileGeometry(**{**base, **kwargs})


def test_geometry_resolves_format_names():
    g = TileGeometry(2, 3, 4, "fp4_e2m1")
    assert (g.weight.name, g.act.name) == ("fp4_e2m1", "int8")


def test_assemble_rejects_wrong_beat_count():
    a, w, M, sh = layer(5, 4, 3, "dint4")
    sched = schedule(a, w, M, sh, TileGeometry(2, 2, 2, "dint4"))
    with pytest.raises(FormatError, match=r"needs 10 output beats"):
        sched.assemble(sched.expected_out[:-1])


# ---- protocol violations -----------------------------------------------------------------


@pytest.fixture
def small():
    """Two token blocks x two N-tiles, three passes each."""
    a, w, M, sh = layer(5, 6, 4, "dint4", seed=2)
    geom = TileGeometry(2, 2, 3, "dint4")
    return schedule(a, w, M, sh, geom), geom


def test_model_rejects_acts_before_weights(small):
    sched, geom = small
    phases = list(sched.phases)
    phases[1], phases[2] = phases[2], phases[1]
    with pytest.raises(FormatError, match=r"phase 1 \(act of job 0.*expects a weights phase"):
        run_model(phases, geom)


def test_model_rejects_weights_before_params(small):
    sched, geom = small
    with pytest.raises(FormatError, match=r"phase 0 .*expects a params phase"):
        run_model(sched.phases[1:], geom)


def test_model_rejects_params_mid_job(small):
    sched, geom = small
    phases = list(sched.phases)
    phases.insert(3, phases[0])
    with pytest.raises(FormatError, match=r"phase 3 \(params of job 0\).*expects a weights"):
        run_model(phases, geom)


def test_model_rejects_too_many_tokens(small):
    sched, geom = small
    phases = list(sched.phases)
    a = np.zeros((4, 2), np.int64)
    phases[2] = Phase("act", {"a": a}, np.array([False, False, False, True]))
    with pytest.raises(FormatError, match=r"4 tokens do not fit .* depth 3"):
        run_model(phases, geom)


def test_model_rejects_changing_token_count(small):
    sched, geom = small
    phases = list(sched.phases)
    ph = phases[4]
    phases[4] = replace(ph, fields={"a": ph.fields["a"][:2]}, last=np.array([False, True]))
    with pytest.raises(FormatError, match=r"phase 4 .*pass 1.*2 tokens, but .* first pass had 3"):
        run_model(phases, geom)


def test_model_rejects_wrong_weight_beats(small):
    sched, geom = small
    phases = list(sched.phases)
    ph = phases[1]
    phases[1] = replace(ph, fields={"w": ph.fields["w"][:1]}, last=ph.last[:1])
    with pytest.raises(FormatError, match=r"1 beats; a weights phase has exactly R=2"):
        run_model(phases, geom)


def test_model_rejects_misplaced_tlast(small):
    sched, geom = small
    phases = list(sched.phases)
    ph = phases[2]
    phases[2] = replace(ph, last=np.array([False, True, False]))
    with pytest.raises(FormatError, match=r"tlast on beats \[1\]; expected it on beat 2"):
        run_model(phases, geom)
    phases = list(sched.phases)
    phases[1] = replace(phases[1], last=np.array([True, False]))
    with pytest.raises(FormatError, match=r"weights tlast on beat 0"):
        run_model(phases, geom)


def test_weights_tlast_ends_the_job(small):
    sched, geom = small
    phases = list(sched.phases)
    # tlast on the first pass's weights: the job ends after one pass, the rest is out of order.
    phases[1] = replace(phases[1], last=np.array([False, True]))
    with pytest.raises(FormatError, match=r"phase 3 \(weights of job 1.*expects a params"):
        run_model(phases, geom)
    # Without the weights tlast the job does not end after its third pass.
    phases = list(sched.phases)
    phases[5] = replace(phases[5], last=np.array([False, False]))
    with pytest.raises(FormatError, match=r"phase 7 \(params of job 0\).*expects a weights"):
        run_model(phases, geom)


def test_model_rejects_truncated_stream(small):
    sched, geom = small
    with pytest.raises(FormatError, match=r"end in the middle of job 0 .*expecting a act"):
        run_model(sched.phases[:4], geom)
    out, last = run_model(sched.phases[:7], geom)  # exactly one job
    assert np.array_equal(out, sched.expected_out[:3])
    assert last.tolist() == [False, False, True]


def test_model_checks_accumulator_width(small):
    sched, geom = small
    k_pad = 6
    out, _ = run_model(sched.phases, geom, acc_width=min_acc_width(k_pad, "int8", "dint4"))
    assert np.array_equal(out, sched.expected_out)
    narrow = min_acc_width(k_pad, "int8", "dint4") - 1
    with pytest.raises(FormatError, match=r"phase 5 .*accumulator of .* bits can overflow"):
        run_model(sched.phases, geom, acc_width=narrow)


def test_phase_rejects_bad_fields():
    with pytest.raises(FormatError, match=r"unknown stream 'out'"):
        Phase("out", {"y": np.zeros((1, 1))}, np.array([True]))
    with pytest.raises(FormatError, match=r"expected \['a'\]"):
        Phase("act", {"w": np.zeros((1, 1))}, np.array([True]))
    with pytest.raises(FormatError, match=r"field 'a' has 2 beats but last has 1"):
        Phase("act", {"a": np.zeros((2, 1))}, np.array([True]))
