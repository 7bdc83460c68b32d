"""The lean weight-stationary systolic array and the array architecture options.

:class:`hw.systolic.SystolicArray` (architecture ``classic``) feeds a full-width partial sum
into the top of every column and keeps a full-width adder and register, a stall enable and a
reset in every PE. :class:`LeanSystolicArray` spends its area on the multipliers instead:

- **per-row partial sums**: psums start at 0 in row 0, and row r's adder and register hold
  exactly r + 1 products (``golden.min_acc_width(r + 1, act, weight)`` bits);
- **K summed outside** (``ksum="outside"``): the output stream carries each column's tile
  sum (``min_acc_width(rows)`` bits) and the next stage adds the K-tiles; or **in column
  accumulators** (``ksum="column"``): a ``psum_in`` stream supplies, for every output, the
  running sum of the earlier K-tiles (read from wherever the caller keeps it), and one
  ``acc_width`` adder per column at the bottom adds it to the tile sum;
- **no reset on datapath flip-flops** (weights, activations, psums): only the valid bits and
  the load counter are reset, which is all the stream contract needs;
- **activations broadcast along each row** (``a_reg_every=0``), or a register every n PEs
  (column c then sees its activation ``c // n`` cycles later, and the outputs are deskewed);
- **shared row multiples** (style ``shared``, :mod:`hw.shared`): a row makes ``a, 3a, 5a``
  once and each PE selects, shifts and (for negative weights) inverts one, with the +1 in its
  psum adder's carry-in; int8 gets radix-8 Booth digits sharing ``3a``.

Stall is a global enable in the RTL (as in ``classic``). Architectures with
``clock_gate=True`` are synthesized with the enables replaced by clock gates (one per group of
flip-flops sharing an enable: the reports' flow does it, as a real ASIC flow inserts
integrated clock-gating cells from enables); the Verilog that sim verifies and users export
has the enables, which FPGAs map to their flip-flops' clock enables.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import Format, min_acc_width

from .multiplier import build_product
from .params import (
    HwError,
    act_format_of,
    check_count,
    constructing,
    is_row,
    resolve_acc_width,
    weight_format_of,
)
from .shared import RowMultiples, SharedDecoder, SharedPlan, SharedSelector, digit_sum
from .styles import multiplier_parameters


@dataclass(frozen=True)
class ArrayArch:
    """A systolic-array architecture (see the module docstring).

    ``ksum``: ``"chain"`` (the classic full-width psum input at the top), ``"column"`` or
    ``"outside"``; ``a_reg_every``: 1 = an activation register per PE, 0 = broadcast;
    ``datapath_reset``: reset on datapath flip-flops; ``clock_gate``: the synthesis flow turns
    the stall enables into clock gates.
    """

    name: str
    ksum: str
    a_reg_every: int
    datapath_reset: bool
    clock_gate: bool
    summary: str


#: The architectures, in report order. ``classic`` is :class:`hw.systolic.SystolicArray`.
ARCHS = {
    "classic": ArrayArch(
        "classic",
        "chain",
        1,
        True,
        False,
        "full-width psum chain from the top, activation register per PE, enable + reset on "
        "every flip-flop",
    ),
    "lean": ArrayArch(
        "lean",
        "outside",
        0,
        False,
        True,
        "per-row psum widths from 0, K summed outside (tile sums out), row broadcast, "
        "no datapath reset, clock-gated stall",
    ),
    "lean-col": ArrayArch(
        "lean-col",
        "column",
        0,
        False,
        True,
        "as lean, plus a column accumulator adder adding the earlier K-tiles' sum (psum_in)",
    ),
}
#: The architecture ``python -m hw verilog systolic`` builds by default.
DEFAULT_ARCH = "lean"
#: Weights per PE of a lean array by default (when the rows divide by it; else 1): two
#: products share one psum adder and register. On OSU018 (8 x 8, shared dINT4 PEs) it is
#: 10% smaller than one weight per PE at the same MACs/(area x delay).
DEFAULT_LANES = 2
#: Multiplier styles a lean array takes (``shared``: :mod:`hw.shared`), default first.
LEAN_STYLES = ("shared", "shiftadd", "mul")


def arch_of(name: str) -> ArrayArch:
    if name not in ARCHS:
        raise HwError(f"unknown array architecture {name!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[name]


class LeanPE(wiring.Component):
    """One PE of the lean array: ``psum_out <= [psum_in +] sum_l a_l * ints[weight_l]`` on
    ``en``, for its ``lanes`` weights (one per array row of its group).

    The first PE row has no ``psum_in``. With a :class:`SharedPlan` lane l takes its row's odd
    multiples (``m{odd}_{l}``) and has ``lane{l}_decoder`` + ``lane{l}_selector`` submodules;
    otherwise it takes ``a_in_{l}`` and has ``lane{l}_decoder`` + ``lane{l}_multiplier``
    (:func:`hw.multiplier.build_product`); with one lane the prefix is dropped. ``load`` has a
    bit per lane. With ``pipeline`` the product operands are registered (on ``en``) before the
    psum adder: one more cycle of latency, a shorter path.
    """

    def __init__(
        self, weight_format, act_format, style, plan, in_width, out_width, reset, lanes, pipeline
    ):
        self.weight_format, self.act_format, self.style = weight_format, act_format, style
        self.plan, self.in_width, self.out_width, self.reset = plan, in_width, out_width, reset
        self.lanes, self.pipeline = lanes, pipeline
        members = {
            "en": In(1),
            "load": In(lanes),
            "w_load": In(unsigned(weight_format.bits)),
            "psum_out": Out(signed(out_width)),
        }
        for lane in range(lanes):
            if plan is not None:
                for odd in plan.odds:
                    members[f"m{odd}_{lane}"] = In(signed(act_format.bits + odd.bit_length()))
            else:
                members[f"a_in_{lane}"] = In(signed(act_format.bits))
        if in_width is not None:
            members["psum_in"] = In(signed(in_width))
        super().__init__(members)

    def _lane(self, m: Module, lane: int) -> list:
        """The operands lane ``lane`` contributes to the psum adder."""
        prefix = f"lane{lane}_" if self.lanes > 1 else ""
        weight = Signal(
            unsigned(self.weight_format.bits), reset_less=not self.reset, name=f"weight_{lane}"
        )
        with m.If(self.load[lane]):
            m.d.sync += weight.eq(self.w_load)
        if self.plan is None:
            a = getattr(self, f"a_in_{lane}")
            fmt, act = self.weight_format, self.act_format
            return [build_product(m, a, weight, fmt, act, self.style, prefix)]
        dec, sel = SharedDecoder(self.plan), SharedSelector(self.plan, self.act_format.bits)
        m.submodules[prefix + "decoder"], m.submodules[prefix + "selector"] = dec, sel
        m.d.comb += [dec.code.eq(weight), sel.ctrl.eq(dec.ctrl)]
        for odd in self.plan.odds:
            m.d.comb += getattr(sel, f"m{odd}").eq(getattr(self, f"m{odd}_{lane}"))
        terms, cin = digit_sum(self.plan, sel)
        return [*terms, cin]

    def elaborate(self, platform) -> Module:
        m = Module()
        operands = [x for lane in range(self.lanes) for x in self._lane(m, lane)]
        if self.pipeline:
            staged = []
            for i, x in enumerate(operands):
                reg = Signal.like(x, name=f"product_reg_{i}", reset_less=not self.reset)
                with m.If(self.en):
                    m.d.sync += reg.eq(x)
                staged.append(reg)
            operands = staged
        if self.in_width is not None:
            operands = [self.psum_in, *operands]
        total = operands[0]
        for x in operands[1:]:
            total = total + x
        psum = Signal(signed(self.out_width), reset_less=not self.reset)
        with m.If(self.en):
            m.d.sync += psum.eq(total)
        m.d.comb += self.psum_out.eq(psum)
        return m


class LeanSystolicArray(wiring.Component):
    """R x C weight-stationary array with per-row psums (see the module docstring).

    Streams (as :class:`hw.systolic.SystolicArray`, without the psum chain):

    - ``w_in``: ``Array(unsigned(wbits), cols)``, one beat per row, rows 0..R-1; a complete
      load replaces the weights for every vector accepted after its last beat; it waits for
      the vectors in flight to leave, and a pending beat has priority over ``a_in``;
    - ``a_in``: ``{a: Array(signed(act.bits), rows)}``, one activation vector per beat;
    - ``psum_in`` (``ksum="column"`` only): ``Array(signed(acc_width), cols)``, the earlier
      K-tiles' sums for the output about to leave, consumed with it;
    - ``o``: ``Array(signed(out_width), cols)``: ``sum_r a[r] * ints[W[r][c]]`` (``outside``,
      ``out_width = min_acc_width(rows)``) or ``psum_in[c] +`` that (``column``, ``acc_width``).

    Flow control: a global enable (``advance``) moves every pipeline register unless an
    output is waiting (for ``column``: also for its ``psum_in``). One vector per cycle;
    latency ``rows / lanes + pipeline + (cols - 1) // a_reg_every`` (the last term is 0 when
    broadcast).

    ``lanes`` weights per PE (a short dot product per PE, one psum adder per ``lanes`` rows;
    it must divide ``rows``) and ``pipeline`` (a register between the products and the psum
    adder) are options of every lean architecture.
    """

    design = "systolic"

    def __init__(
        self,
        rows: int,
        cols: int,
        weight_format: Format | str,
        act_format: Format | str = "int8",
        arch: str = DEFAULT_ARCH,
        acc_width: int | None = None,
        k_max: int | None = None,
        style: str | None = None,
        a_reg_every: int | None = None,
        lanes: int | None = None,
        pipeline: bool = False,
    ):
        with constructing(self):
            self.rows = check_count("rows", rows, maximum=256)
            self.cols = check_count("cols", cols, maximum=256)
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            self.arch = arch_of(arch)
            if self.arch.ksum == "chain":
                raise HwError("the classic architecture is hw.SystolicArray, not the lean one")
            self.style = LEAN_STYLES[0] if style is None else style
            if self.style not in LEAN_STYLES:
                raise HwError(
                    f"unknown style {self.style!r} for a lean array; "
                    f"choose one of {', '.join(LEAN_STYLES)}"
                )
            self.plan = (
                SharedPlan.from_format(self.weight_format) if self.style == "shared" else None
            )
            every = self.arch.a_reg_every if a_reg_every is None else a_reg_every
            self.a_reg_every = check_count("a_reg_every", every, minimum=0, maximum=256)
            if lanes is None:
                lanes = DEFAULT_LANES if rows % DEFAULT_LANES == 0 else 1
            self.lanes = check_count("lanes (weights per PE)", lanes, maximum=rows)
            if rows % lanes:
                raise HwError(f"lanes={lanes} must divide rows={rows}: a PE takes `lanes` rows")
            self.pipeline = bool(pipeline)
            self.pe_rows = rows // lanes
            wf, af = self.weight_format, self.act_format
            self.psum_widths = [min_acc_width((g + 1) * lanes, af, wf) for g in range(self.pe_rows)]
            if self.arch.ksum == "outside":
                if acc_width is not None or k_max is not None:
                    raise HwError(
                        f"architecture {self.arch.name} sums K outside the array: its output is "
                        f"the tile sum ({self.psum_widths[-1]} bits); drop the accumulator "
                        "width / k_max, or use lean-col for column accumulators"
                    )
                self.acc_width, self.k_max = self.psum_widths[-1], rows
            else:
                self.acc_width = resolve_acc_width(
                    acc_width, k_max, af, wf, rows, "one tile (rows)"
                )
                self.k_max = k_max
            n = self.a_reg_every
            self.delay_of_col = [c // n if n else 0 for c in range(cols)]
            self.latency = self.pe_rows + int(self.pipeline) + self.delay_of_col[-1]
        a_layout = data.StructLayout({"a": data.ArrayLayout(signed(af.bits), rows)})
        members = {
            "w_in": In(stream.Signature(data.ArrayLayout(unsigned(wf.bits), cols))),
            "a_in": In(stream.Signature(a_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.acc_width), cols))),
        }
        if self.arch.ksum == "column":
            members["psum_in"] = In(
                stream.Signature(data.ArrayLayout(signed(self.acc_width), cols))
            )
        super().__init__(members)

    def parameters(self) -> dict:
        return {
            "rows": self.rows,
            "cols": self.cols,
            "arch": self.arch.name,
            "ksum": self.arch.ksum,
            "a_reg_every": self.a_reg_every,
            "datapath_reset": self.arch.datapath_reset,
            "clock_gate": self.arch.clock_gate,
            "psum_widths": list(self.psum_widths),
            "lanes": self.lanes,
            "pipeline": self.pipeline,
            **multiplier_parameters(self),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        R, C, L, G, LN = self.rows, self.cols, self.latency, self.pe_rows, self.lanes
        reset = self.arch.datapath_reset
        abits = self.act_format.bits

        # ---- flow control (valid bits and the load counter keep their reset) --------------
        valid = [Signal(name=f"valid_{j}") for j in range(L)]
        advance = Signal()
        if self.arch.ksum == "column":
            m.d.comb += [
                advance.eq(~valid[-1] | (self.o.ready & self.psum_in.valid)),
                self.o.valid.eq(valid[-1] & self.psum_in.valid),
                self.psum_in.ready.eq(valid[-1] & self.o.ready),
            ]
        else:
            m.d.comb += [advance.eq(~valid[-1] | self.o.ready), self.o.valid.eq(valid[-1])]
        loading = Signal()
        if R > 1:
            load_row = Signal(range(R), name="load_row")
            m.d.comb += loading.eq(load_row != 0)
        in_flight = Signal()
        m.d.comb += [
            in_flight.eq(Cat(*valid).any()),
            self.w_in.ready.eq(~in_flight),
            self.a_in.ready.eq(advance & ~loading & ~self.w_in.valid),
        ]
        w_accept = Signal()
        m.d.comb += w_accept.eq(self.w_in.valid & self.w_in.ready)
        if R > 1:
            with m.If(w_accept):
                m.d.sync += load_row.eq(Mux(load_row == R - 1, 0, load_row + 1))
        with m.If(advance):
            m.d.sync += valid[0].eq(self.a_in.valid & self.a_in.ready)
            for j in range(1, L):
                m.d.sync += valid[j].eq(valid[j - 1])

        def delay(value, depth, shape, name):
            prev = value
            for k in range(depth):
                reg = Signal(shape, name=f"{name}_{k}", reset_less=not reset)
                with m.If(advance):
                    m.d.sync += reg.eq(prev)
                prev = reg
            return prev

        # ---- activations: row r delayed r // lanes cycles, then a register per segment -----
        n_seg = self.delay_of_col[-1] + 1
        seg_a = []
        for r in range(R):
            a = delay(self.a_in.payload.a[r], r // LN, signed(abits), f"a_skew_{r}")
            segs = [a]
            for s in range(1, n_seg):
                segs.append(delay(segs[-1], 1, signed(abits), f"a_seg_{r}_{s}"))
            seg_a.append(segs)
        mults = {}
        if self.plan is not None:
            for r in range(R):
                for s in range(n_seg):
                    mu = RowMultiples(self.plan, abits)
                    name = f"row{r}_multiples" if n_seg == 1 else f"row{r}_seg{s}_multiples"
                    m.submodules[name] = mu
                    m.d.comb += mu.a.eq(seg_a[r][s])
                    mults[r, s] = mu

        # ---- the PE grid: PE row g takes array rows g*lanes .. g*lanes + lanes - 1 ---------
        pes = [[None] * C for _ in range(G)]
        for g in range(G):
            for c in range(C):
                pe = LeanPE(
                    self.weight_format,
                    self.act_format,
                    self.style,
                    self.plan,
                    self.psum_widths[g - 1] if g else None,
                    self.psum_widths[g],
                    reset,
                    LN,
                    self.pipeline,
                )
                m.submodules[f"pe_{g}_{c}"] = pe
                pes[g][c] = pe
                s = self.delay_of_col[c]
                m.d.comb += [pe.en.eq(advance), pe.w_load.eq(self.w_in.payload[c])]
                for lane in range(LN):
                    r = g * LN + lane
                    load = w_accept & is_row(load_row, loading, r) if R > 1 else w_accept
                    m.d.comb += pe.load[lane].eq(load)
                    if self.plan is not None:
                        for odd in self.plan.odds:
                            m.d.comb += getattr(pe, f"m{odd}_{lane}").eq(
                                getattr(mults[r, s], f"m{odd}")
                            )
                    else:
                        m.d.comb += getattr(pe, f"a_in_{lane}").eq(seg_a[r][s])
                if g:
                    m.d.comb += pe.psum_in.eq(pes[g - 1][c].psum_out)

        # ---- outputs: deskew the later segments' columns, then (column) add psum_in ---------
        last = self.delay_of_col[-1]
        for c in range(C):
            out = delay(
                pes[G - 1][c].psum_out,
                last - self.delay_of_col[c],
                signed(self.psum_widths[-1]),
                f"deskew_{c}",
            )
            if self.arch.ksum == "column":
                m.d.comb += self.o.payload[c].eq(self.psum_in.payload[c] + out)
            else:
                m.d.comb += self.o.payload[c].eq(out)
        return m
