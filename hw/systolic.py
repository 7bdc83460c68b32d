"""Weight-stationary systolic array: R x C processing elements, streams in and out."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import Format

from .multiplier import build_product
from .params import (
    act_format_of,
    check_count,
    constructing,
    is_row,
    resolve_acc_width,
    weight_format_of,
)
from .styles import multiplier_parameters, resolve_style


class ProcessingElement(wiring.Component):
    """One PE: a stationary weight code, ``psum_out <= psum_in + a_in * ints[weight]``.

    On an edge with ``en``: ``psum_out <= psum_in + a_in * ints[weight]`` and (with ``pass_a``)
    ``a_out <= a_in``. On an edge with ``load``: ``weight <= w_load``. Hierarchy: ``decoder``,
    ``multiplier``; the adder and the registers are this level.
    """

    def __init__(
        self, weight_format: Format, act_format: Format, acc_width: int, style: str, pass_a: bool
    ):
        self.weight_format, self.act_format = weight_format, act_format
        self.acc_width, self.style, self.pass_a = acc_width, style, pass_a
        members = {
            "en": In(1),
            "load": In(1),
            "w_load": In(unsigned(weight_format.bits)),
            "a_in": In(signed(act_format.bits)),
            "psum_in": In(signed(acc_width)),
            "psum_out": Out(signed(acc_width)),
        }
        if pass_a:
            members["a_out"] = Out(signed(act_format.bits))
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        weight = Signal(unsigned(self.weight_format.bits))
        with m.If(self.load):
            m.d.sync += weight.eq(self.w_load)
        product = build_product(
            m, self.a_in, weight, self.weight_format, self.act_format, self.style
        )
        with m.If(self.en):
            m.d.sync += self.psum_out.eq(self.psum_in + product)
            if self.pass_a:
                m.d.sync += self.a_out.eq(self.a_in)
        return m


class SystolicArray(wiring.Component):
    """R x C weight-stationary array: ``o[c] = psum[c] + sum_r a[r] * ints[W[r][c]]``.

    ``rows`` is the K of one tile, ``cols`` the N outputs. PE (r, c) holds ``W[r][c]``; the
    activation of row r moves right, partial sums move down, both through registers.

    Streams:

    - ``w_in``: payload ``Array(unsigned(wbits), cols)``, one beat per row, rows 0..R-1 in
      order; a complete load replaces the weights for every activation vector accepted after
      its last beat. A pending ``w_in`` beat has priority: ``a_in`` is not accepted while
      ``w_in.valid`` is high or a load is incomplete, and loading waits until the vectors in
      flight have left the array (they keep the weights they were accepted under).
    - ``a_in``: payload ``{a: Array(signed(act.bits), rows), psum: Array(signed(acc_width),
      cols)}``; ``psum`` enters the top of each column (0 for the first K-tile, the previous
      tile's output to chain tiles). Skewing is done inside.
    - ``o``: payload ``Array(signed(acc_width), cols)``, one output per accepted vector, in order.

    Flow control is a global enable: every pipeline register (input skew, PEs, output deskew,
    valid bits) advances unless a result sits on ``o`` and ``o.ready`` is low, so nothing is
    lost or duplicated under any valid/ready pattern. Throughput one vector per cycle; latency
    ``rows + cols - 1`` cycles from acceptance to ``o.valid``.

    ``acc_width`` is given or derived from ``k_max`` (the largest total K over chained tiles,
    >= ``rows``). Hierarchy: ``pe_{r}_{c}`` (each with ``decoder`` and ``multiplier``).
    """

    design = "systolic"

    def __init__(
        self,
        rows: int,
        cols: int,
        weight_format: Format | str,
        act_format: Format | str = "int8",
        acc_width: int | None = None,
        k_max: int | None = None,
        style: str | None = None,
    ):
        with constructing(self):
            self.rows = check_count("rows", rows, maximum=256)
            self.cols = check_count("cols", cols, maximum=256)
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            self.acc_width = resolve_acc_width(
                acc_width, k_max, self.act_format, self.weight_format, rows, "one tile (rows)"
            )
            self.k_max = k_max
            self.style = resolve_style(style, self.weight_format)
            self.latency = rows + cols - 1
        a_layout = data.StructLayout(
            {
                "a": data.ArrayLayout(signed(self.act_format.bits), rows),
                "psum": data.ArrayLayout(signed(self.acc_width), cols),
            }
        )
        super().__init__(
            {
                "w_in": In(
                    stream.Signature(data.ArrayLayout(unsigned(self.weight_format.bits), cols))
                ),
                "a_in": In(stream.Signature(a_layout)),
                "o": Out(stream.Signature(data.ArrayLayout(signed(self.acc_width), cols))),
            }
        )

    def parameters(self) -> dict:
        return {
            "rows": self.rows,
            "cols": self.cols,
            **multiplier_parameters(self),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        R, C, L = self.rows, self.cols, self.latency
        abits = self.act_format.bits

        # ---- flow control -----------------------------------------------------------
        valid = [Signal(name=f"valid_{j}") for j in range(L)]  # valid[j]: after j+1 edges
        advance = Signal()
        m.d.comb += [advance.eq(~valid[-1] | self.o.ready), self.o.valid.eq(valid[-1])]

        loading = Signal()  # a weight load has started and is not complete
        if R > 1:
            load_row = Signal(range(R), name="load_row")  # next row of the load
            m.d.comb += loading.eq(load_row != 0)
        else:
            load_row = 0
        in_flight = Signal()
        m.d.comb += in_flight.eq(Cat(*valid).any())
        m.d.comb += [
            self.w_in.ready.eq(~in_flight),
            self.a_in.ready.eq(advance & ~loading & ~self.w_in.valid),
        ]
        w_accept = Signal()
        m.d.comb += w_accept.eq(self.w_in.valid & self.w_in.ready)
        if R > 1:
            with m.If(w_accept):
                with m.If(load_row == R - 1):
                    m.d.sync += load_row.eq(0)
                with m.Else():
                    m.d.sync += load_row.eq(load_row + 1)

        with m.If(advance):
            m.d.sync += valid[0].eq(self.a_in.valid & self.a_in.ready)
            for j in range(1, L):
                m.d.sync += valid[j].eq(valid[j - 1])

        # ---- input skew: row r delayed r edges, column c's psum delayed c edges --------
        def delay_line(m, value, depth, shape, name):
            prev = value
            for k in range(depth):
                reg = Signal(shape, name=f"{name}_{k}")
                with m.If(advance):
                    m.d.sync += reg.eq(prev)
                prev = reg
            return prev

        row_in = [
            delay_line(m, self.a_in.payload.a[r], r, signed(abits), f"a_skew_{r}") for r in range(R)
        ]
        col_in = [
            delay_line(m, self.a_in.payload.psum[c], c, signed(self.acc_width), f"psum_skew_{c}")
            for c in range(C)
        ]

        # ---- the PE grid ----------------------------------------------------------------
        pes = [[None] * C for _ in range(R)]
        for r in range(R):
            for c in range(C):
                pe = ProcessingElement(
                    self.weight_format, self.act_format, self.acc_width, self.style, c < C - 1
                )
                m.submodules[f"pe_{r}_{c}"] = pe
                pes[r][c] = pe
                m.d.comb += [
                    pe.en.eq(advance),
                    pe.load.eq(w_accept & is_row(load_row, loading, r) if R > 1 else w_accept),
                    pe.w_load.eq(self.w_in.payload[c]),
                    pe.a_in.eq(row_in[r] if c == 0 else pes[r][c - 1].a_out),
                    pe.psum_in.eq(col_in[c] if r == 0 else pes[r - 1][c].psum_out),
                ]

        # ---- output deskew: column c delayed C-1-c edges --------------------------------
        for c in range(C):
            out = delay_line(
                m, pes[R - 1][c].psum_out, C - 1 - c, signed(self.acc_width), f"deskew_{c}"
            )
            m.d.comb += self.o.payload[c].eq(out)
        return m
