"""sim.tbutil's stream scheduler, clocked against a Python model of a design (no simulator):
phases in order or overlapped, the stream rules, stalls named, surplus beats taken."""

from __future__ import annotations

import numpy as np
import pytest

from sim import tbutil
from sim.sidecar import Payload, Stream
from sim.tbutil import Sink, Source, StallError, run_streams


class Value(int):
    """An integer with cocotb's ``LogicArray.to_unsigned``."""

    def to_unsigned(self) -> int:
        return int(self)


class Signal:
    def __init__(self):
        self.value = 0


class Trigger:
    def __init__(self, name: str):
        self.name = name

    def __await__(self):
        yield self


def _stream(name: str, direction: str) -> Stream:
    payload = Payload.from_port({"name": f"{name}__payload", "width": 16, "signed": False})
    return Stream(name, direction, f"{name}__valid", f"{name}__ready", payload)


class Pipes:
    """``n`` independent one-entry buffers ``i<k> -> o<k>`` (``ready`` = empty or draining).

    ``stuck`` makes one input never ready; ``duplicate`` emits one beat twice. Records
    every input handshake and any break of the stream rules (valid dropped, or payload
    changed, before the beat was accepted).
    """

    def __init__(self, n: int, stuck: int | None = None, duplicate: bool = False):
        self.n, self.stuck, self.duplicate = n, stuck, duplicate
        for k in range(n):
            for port in ("i", "o"):
                for sig in ("valid", "ready", "payload"):
                    setattr(self, f"{port}{k}__{sig}", Signal())
        self.full = [False] * n
        self.data = [0] * n
        self.taken: list[list[int]] = [[] for _ in range(n)]
        self.pending: list[int | None] = [None] * n  # offered, not yet accepted
        self.violations: list[str] = []
        self.dup_done = False

    def port(self, name: str) -> Signal:
        return getattr(self, name)

    def settle(self) -> None:
        for k in range(self.n):
            o_ready = self.port(f"o{k}__ready").value
            ready = k != self.stuck and (not self.full[k] or o_ready)
            self.port(f"i{k}__ready").value = int(ready)
            self.port(f"o{k}__valid").value = int(self.full[k])
            self.port(f"o{k}__payload").value = Value(self.data[k])

    def edge(self) -> None:
        for k in range(self.n):
            i_valid, i_ready = self.port(f"i{k}__valid").value, self.port(f"i{k}__ready").value
            payload = self.port(f"i{k}__payload").value
            if self.pending[k] is not None and (not i_valid or payload != self.pending[k]):
                self.violations.append(f"i{k}: beat {self.pending[k]} withdrawn")
            out_fire = self.full[k] and self.port(f"o{k}__ready").value
            if i_valid and i_ready:
                self.taken[k].append(payload)
                self.pending[k] = None
                self.data[k], self.full[k] = payload, True
            else:
                self.pending[k] = payload if i_valid else None
                if out_fire and self.duplicate and not self.dup_done:
                    self.dup_done = True  # keep the beat: it comes out again
                elif out_fire:
                    self.full[k] = False


def simulate(coro, model: Pipes):
    """Run a scheduler coroutine: a rising edge before each falling edge, settle at ReadOnly."""
    try:
        trigger = coro.send(None)
        while True:
            if trigger.name == "fall":
                model.edge()
            else:
                model.settle()
            trigger = coro.send(None)
    except StopIteration as stop:
        return stop.value


@pytest.fixture(autouse=True)
def fake_clock(monkeypatch):
    monkeypatch.setattr(tbutil, "clock_edges", lambda dut: (Trigger("fall"), Trigger("ro")))


def _ends(model: Pipes, p_valid: float, p_ready: float):
    sources = [Source(model, _stream(f"i{k}", "in"), p_valid) for k in range(model.n)]
    sinks = [Sink(model, _stream(f"o{k}", "out"), p_ready) for k in range(model.n)]
    return sources, sinks


def test_sequential_phases_keep_their_order():
    model = Pipes(2)
    (s0, s1), (k0, k1) = _ends(model, 0.6, 0.5)
    first, second = list(range(20)), list(range(100, 130))
    rng = np.random.default_rng(1)
    cycles = simulate(
        run_streams(model, [[(s0, first)], [(s1, second)]], [k0, k1], [20, 30], rng, 200, 1000),
        model,
    )
    assert (k0.words, k1.words) == (first, second)
    assert model.taken == [first, second] and model.violations == []
    assert (len(s0.accepted), len(s1.accepted)) == (20, 30)
    assert max(s0.accepted) < min(s1.accepted)  # the second phase waits for the first
    assert min(k0.cycles) >= 1000 and k0.cycles == sorted(k0.cycles)
    assert cycles > 50  # 50 beats with random gaps cannot take fewer cycles
    idle = [model.port(n).value for n in ("i0__valid", "i1__valid", "o0__ready", "o1__ready")]
    assert idle == [0, 0, 0, 0]


def test_feeds_of_one_phase_overlap():
    model = Pipes(2)
    (s0, s1), (k0, k1) = _ends(model, 0.5, 0.7)
    first, second = list(range(40)), list(range(200, 240))
    rng = np.random.default_rng(2)
    simulate(run_streams(model, [[(s0, first), (s1, second)]], [k0, k1], [40, 40], rng), model)
    assert (k0.words, k1.words) == (first, second) and model.violations == []
    assert min(s1.accepted) < max(s0.accepted) and min(s0.accepted) < max(s1.accepted)


def test_a_stall_names_the_waiting_stream():
    model = Pipes(1, stuck=0)
    (s0,), (k0,) = _ends(model, 1.0, 1.0)
    rng = np.random.default_rng(3)
    with pytest.raises(
        StallError, match=r"waiting on input i0 beat 0 of phase 0; outputs so far: o0 0/3"
    ):
        simulate(run_streams(model, [[(s0, [1, 2, 3])]], [k0], [3], rng, stall_limit=50), model)


def test_a_surplus_output_beat_is_taken_for_the_scoreboard():
    model = Pipes(1, duplicate=True)
    (s0,), (k0,) = _ends(model, 1.0, 0.3)
    rng = np.random.default_rng(4)
    simulate(run_streams(model, [[(s0, [7, 8, 9])]], [k0], [3], rng), model)
    # The repeated beat is taken, so the scoreboard's count check sees 4 outputs for 3.
    assert len(k0.words) == 4 and sorted(set(k0.words)) == [7, 8, 9]


def test_sink_count_must_match_the_expected_counts():
    model = Pipes(1)
    (s0,), (k0,) = _ends(model, 1.0, 1.0)
    with pytest.raises(ValueError, match="1 sinks but 2 expected"):
        simulate(run_streams(model, [[(s0, [1])]], [k0], [1, 1], np.random.default_rng()), model)
