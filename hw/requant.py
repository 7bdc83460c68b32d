"""Requantizer: int32-style fixed-point rescale of accumulators to int8, exactly golden's rule."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.contract import M_BITS, OUT_BITS, Q_MAX, Q_MIN, SH_BITS

from .params import HwError, check_count, constructing

#: Field widths of the requantization constants and the output, from golden's contract:
#: M in [2**30, 2**31), sh in [1, 63], y in [-127, 127].
M_WIDTH, SH_WIDTH, OUT_WIDTH = M_BITS, SH_BITS, OUT_BITS


class RequantLane(wiring.Component):
    """One lane: ``y = clamp((acc * M + 2**(sh-1)) >> sh, -127, 127)`` (``golden.requantize``).

    Computed as ``((acc * M) >> (sh - 1)) + 1) >> 1``, which equals the rounded shift for
    every ``sh >= 1`` (floor of a floor) and needs one narrow incrementer instead of a wide
    adder. ``sh = 0`` is outside the contract (``golden.requantize`` rejects it). With
    ``pipeline`` the product and ``sh`` are registered when ``en`` is high (one more cycle).
    """

    def __init__(self, acc_width: int, pipeline: bool = False):
        self.acc_width, self.pipeline = acc_width, pipeline
        super().__init__(
            {
                "en": In(1),
                "acc": In(signed(acc_width)),
                "M": In(unsigned(M_WIDTH)),
                "sh": In(unsigned(SH_WIDTH)),
                "y": Out(signed(OUT_WIDTH)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        prod = Signal(signed(self.acc_width + M_WIDTH))
        sh = Signal(unsigned(SH_WIDTH))
        domain = m.d.sync if self.pipeline else m.d.comb
        if self.pipeline:
            with m.If(self.en):
                domain += [prod.eq(self.acc * self.M), sh.eq(self.sh)]
        else:
            domain += [prod.eq(self.acc * self.M), sh.eq(self.sh)]
        half = Signal(signed(len(prod)))  # floor((acc*M) / 2**(sh-1))
        m.d.comb += half.eq(prod >> (sh - 1)[:SH_WIDTH])
        rounded = Signal(signed(len(prod)))
        m.d.comb += rounded.eq((half + 1) >> 1)
        m.d.comb += self.y.eq(Mux(rounded > Q_MAX, Q_MAX, Mux(rounded < Q_MIN, Q_MIN, rounded)))
        return m


class Requantizer(wiring.Component):
    """``lanes`` requantizer lanes behind one stream handshake.

    Input stream ``i`` payload ``{acc: Array(signed(acc_width), lanes), M: Array(unsigned(31),
    lanes), sh: Array(unsigned(6), lanes)}``; output stream ``o`` payload
    ``Array(signed(8), lanes)``, ``o[l] = clamp((acc[l]*M[l] + 2**(sh[l]-1)) >> sh[l], -127,
    127)`` (exactly ``golden.requantize``). One output per input, in order. Latency 1 (a
    registered output), 2 with ``pipeline`` (the products registered too). The whole pipeline
    advances when the output register is empty or being read (``i.ready`` = that).
    """

    design = "requant"

    def __init__(self, lanes: int, acc_width: int, pipeline: bool = False):
        with constructing(self):
            self.lanes = check_count("lanes", lanes)
            if isinstance(acc_width, bool) or not isinstance(acc_width, int):
                raise HwError(f"acc_width must be an integer, got {acc_width!r}")
            if not 2 <= acc_width <= 64:
                raise HwError(f"acc_width must be in [2, 64] for the requantizer, got {acc_width}")
            self.acc_width = acc_width
            self.pipeline = bool(pipeline)
            self.latency = 2 if self.pipeline else 1
        in_layout = data.StructLayout(
            {
                "acc": data.ArrayLayout(signed(acc_width), lanes),
                "M": data.ArrayLayout(unsigned(M_WIDTH), lanes),
                "sh": data.ArrayLayout(unsigned(SH_WIDTH), lanes),
            }
        )
        super().__init__(
            {
                "i": In(stream.Signature(in_layout)),
                "o": Out(stream.Signature(data.ArrayLayout(signed(OUT_WIDTH), lanes))),
            }
        )

    def parameters(self) -> dict:
        return {"lanes": self.lanes, "acc_width": self.acc_width, "pipeline": self.pipeline}

    def elaborate(self, platform) -> Module:
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        valid = self.i.valid
        if self.pipeline:
            valid1 = Signal()
            with m.If(advance):
                m.d.sync += valid1.eq(self.i.valid)
            valid = valid1
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
        for lane in range(self.lanes):
            unit = RequantLane(self.acc_width, self.pipeline)
            m.submodules[f"lane{lane}"] = unit
            m.d.comb += [
                unit.en.eq(advance),
                unit.acc.eq(self.i.payload.acc[lane]),
                unit.M.eq(self.i.payload.M[lane]),
                unit.sh.eq(self.i.payload.sh[lane]),
            ]
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(unit.y)
        return m
