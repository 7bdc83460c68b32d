"""Arithmetic building blocks kept as their own hierarchy levels: accumulator, adder tree."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import signed_width


class Accumulator(wiring.Component):
    """Registered accumulator: on a clock edge with ``en``, ``acc <= (clear ? 0 : acc) + addend``.

    Without ``en`` it holds; the domain reset clears it. Ports: ``en``, ``clear``,
    ``addend: In(signed(in_width))``, ``acc: Out(signed(acc_width))``. The sum wraps modulo
    ``2**acc_width``; callers size ``acc_width`` so that it cannot (``golden.acc_width_for``).
    """

    def __init__(self, in_width: int, acc_width: int):
        self.in_width, self.acc_width = in_width, acc_width
        super().__init__(
            {
                "en": In(1),
                "clear": In(1),
                "addend": In(signed(in_width)),
                "acc": Out(signed(acc_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(self.clear, 0, self.acc) + self.addend)
        return m


class AdderTree(wiring.Component):
    """Combinational balanced binary adder tree: ``total = sum(terms)``, exact.

    Ports: ``terms: In(ArrayLayout(signed(in_width), lanes))``, ``total: Out(signed(w))`` with
    ``w`` the signed width of ``lanes * [lo, hi]`` for a term range ``[lo, hi]`` (given) — each
    level is only as wide as its partial sums need.
    """

    def __init__(self, lanes: int, in_width: int, lo: int, hi: int):
        self.lanes, self.in_width, self.lo, self.hi = lanes, in_width, lo, hi
        self.out_width = signed_width(lanes * lo, lanes * hi)
        super().__init__(
            {
                "terms": In(data.ArrayLayout(signed(in_width), lanes)),
                "total": Out(signed(self.out_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        level = [(self.terms[i], 1) for i in range(self.lanes)]  # (value, lanes covered)
        depth = 0
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level) - 1, 2):
                (x, nx), (y, ny) = level[j], level[j + 1]
                n = nx + ny
                s = Signal(
                    signed(signed_width(n * self.lo, n * self.hi)), name=f"sum_l{depth}_{j // 2}"
                )
                m.d.comb += s.eq(x + y)
                nxt.append((s, n))
            if len(level) % 2:
                nxt.append(level[-1])
            level, depth = nxt, depth + 1
        m.d.comb += self.total.eq(level[0][0])
        return m
