"""Dot-product unit: N lanes, an adder tree (optionally pipelined), one accumulator, streams."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import Format

from .arith import Accumulator, AdderTree
from .multiplier import build_product
from .params import (
    act_format_of,
    check_count,
    constructing,
    product_range,
    product_width,
    resolve_acc_width,
    weight_format_of,
)
from .styles import multiplier_parameters, resolve_style


class DotProduct(wiring.Component):
    """``lanes`` multipliers, an adder tree and one accumulator behind stream interfaces.

    Input stream ``i`` payload ``{a: Array(signed(act.bits), lanes), w: Array(unsigned(wbits),
    lanes), first: 1, last: 1}``. Every accepted beat does
    ``acc <= (first ? 0 : acc) + sum_l a[l] * ints[w[l]]``; a beat with ``last`` emits the
    updated ``acc`` on output stream ``o`` (payload ``signed(acc_width)``). While a result waits
    on ``o``, ``i`` is stalled (``i.ready = ~o.valid | o.ready``).

    ``acc_width`` is given or derived from ``k_max`` (the largest total number of products,
    over all beats, of one sum; must be >= ``lanes``). ``pipeline=True`` registers the adder
    tree output (latency 2 instead of 1: cycles from the accepted ``last`` beat to ``o.valid``).
    Hierarchy: ``lane{l}_decoder``, ``lane{l}_multiplier``, ``adder_tree``, ``accumulator``.
    """

    design = "dot"

    def __init__(
        self,
        lanes: int,
        weight_format: Format | str,
        act_format: Format | str = "int8",
        acc_width: int | None = None,
        k_max: int | None = None,
        style: str | None = None,
        pipeline: bool = False,
    ):
        with constructing(self):
            self.lanes = check_count("lanes", lanes)
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            self.acc_width = resolve_acc_width(
                acc_width, k_max, self.act_format, self.weight_format, lanes, "one beat (lanes)"
            )
            self.k_max = k_max
            self.style = resolve_style(style, self.weight_format)
            self.pipeline = bool(pipeline)
            self.latency = 2 if self.pipeline else 1
        layout = data.StructLayout(
            {
                "a": data.ArrayLayout(signed(self.act_format.bits), lanes),
                "w": data.ArrayLayout(unsigned(self.weight_format.bits), lanes),
                "first": 1,
                "last": 1,
            }
        )
        super().__init__(
            {
                "i": In(stream.Signature(layout)),
                "o": Out(stream.Signature(signed(self.acc_width))),
            }
        )

    def parameters(self) -> dict:
        return {
            "lanes": self.lanes,
            **multiplier_parameters(self),
            "pipeline": self.pipeline,
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        act, weight = self.act_format, self.weight_format
        lo, hi = product_range(act, weight)
        m.submodules.adder_tree = tree = AdderTree(self.lanes, product_width(act, weight), lo, hi)
        for lane in range(self.lanes):
            product = build_product(
                m,
                self.i.payload.a[lane],
                self.i.payload.w[lane],
                weight,
                act,
                self.style,
                prefix=f"lane{lane}_",
            )
            m.d.comb += tree.terms[lane].eq(product)

        advance = Signal()  # the whole pipeline moves: no result is stuck on o
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        total, first, last, valid = (
            tree.total,
            self.i.payload.first,
            self.i.payload.last,
            self.i.valid,
        )
        if self.pipeline:
            total_r = Signal.like(tree.total, name="sum_r")
            first_r, last_r, valid_r = Signal(), Signal(), Signal()
            with m.If(advance):
                m.d.sync += [
                    total_r.eq(total),
                    first_r.eq(first),
                    last_r.eq(last),
                    valid_r.eq(valid),
                ]
            total, first, last, valid = total_r, first_r, last_r, valid_r

        m.submodules.accumulator = acc = Accumulator(tree.out_width, self.acc_width)
        m.d.comb += [
            acc.en.eq(valid & advance),
            acc.clear.eq(first),
            acc.addend.eq(total),
            # acc changes only on an advancing edge, i.e. when o is empty or being read.
            self.o.payload.eq(acc.acc),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid & last)
        return m
