"""Multipliers ``a * Format.ints[w]``: generic ``*`` or shift-and-add, each its own submodule.

:func:`build_product` adds a decoder and a multiplier (named ``{prefix}decoder`` and
``{prefix}multiplier``) to a module and returns the product signal, so every block keeps the
decoder and the multiplier as separate hierarchy levels for area attribution.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Format

from .decoder import ShiftAddDecoder, ShiftAddPlan, WeightDecoder
from .params import act_format_of, constructing, product_width, weight_format_of
from .styles import effective_style, resolve_style


class GenericMultiplier(wiring.Component):
    """``product = a * value`` with Amaranth's ``*`` (a ``$mul`` cell in Yosys).

    Ports: ``a: In(signed(act.bits))``, ``value: In(signed(weight.int_width))``,
    ``product: Out(signed(product_width))`` (exact: the width holds every product).
    """

    def __init__(self, act_format: Format, weight_format: Format):
        self.act_format, self.weight_format = act_format, weight_format
        super().__init__(
            {
                "a": In(signed(act_format.bits)),
                "value": In(signed(weight_format.int_width)),
                "product": Out(signed(product_width(act_format, weight_format))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.product.eq(self.a * self.value)
        return m


class ShiftAddMultiplier(wiring.Component):
    """``product = (neg ? -a : a) << s0 [+|-] ((neg ? -a : a) << s1)`` from a decoder's control.

    The shifts are multiplexed from the sets the :class:`ShiftAddPlan` uses; a disabled term is
    zero. Ports: ``a: In(signed(act.bits))``, ``ctrl: In(plan.ctrl_layout)``,
    ``product: Out(signed(product_width))``.
    """

    def __init__(self, act_format: Format, plan: ShiftAddPlan):
        self.act_format, self.plan = act_format, plan
        super().__init__(
            {
                "a": In(signed(act_format.bits)),
                "ctrl": In(plan.ctrl_layout),
                "product": Out(signed(product_width(act_format, plan.weight_format))),
            }
        )

    def _term(self, m: Module, x: Value, en: Value, sel: Value, shifts, name: str) -> Signal:
        width = len(x) + max(shifts)
        term = Signal(signed(width), name=name)
        with m.If(en):
            with m.Switch(sel):
                for i, s in enumerate(shifts[:-1]):
                    with m.Case(i):
                        m.d.comb += term.eq(x << s)
                with m.Default():  # the last shift: keeps the case statement complete
                    m.d.comb += term.eq(x << shifts[-1])
        return term

    def elaborate(self, platform) -> Module:
        m = Module()
        plan, ctrl = self.plan, self.ctrl
        x = Signal(signed(len(self.a) + 1))  # -(-128) = 128 needs one more bit
        m.d.comb += x.eq(Mux(ctrl.neg, -self.a, self.a) if plan.uses_neg else self.a)
        total = self._term(m, x, ctrl.en0, ctrl.sel0, plan.shifts0, "term0")
        if plan.shifts1:
            term1 = self._term(m, x, ctrl.en1, ctrl.sel1, plan.shifts1, "term1")
            if plan.uses_sub:
                # t0 - t1 = t0 + ~t1 + 1: one adder with carry-in instead of two adders.
                total = total + Mux(ctrl.sub1, ~term1, term1) + ctrl.sub1
            else:
                total = total + term1
        m.d.comb += self.product.eq(total)
        return m


def build_product(
    m: Module, a: Value, code: Value, weight: Format, act: Format, style: str, prefix: str = ""
) -> Signal:
    """Add ``{prefix}decoder`` and ``{prefix}multiplier`` to ``m``; return ``a * ints[code]``.

    ``style="shiftadd"`` uses :class:`ShiftAddDecoder` + :class:`ShiftAddMultiplier` when the
    format has a :class:`ShiftAddPlan`, and falls back to the generic pair otherwise.
    """
    plan = ShiftAddPlan.from_format(weight) if style == "shiftadd" else None
    if plan is not None:
        dec = ShiftAddDecoder(plan)
        mul = ShiftAddMultiplier(act, plan)
        m.d.comb += mul.ctrl.eq(dec.ctrl)
    else:
        dec = WeightDecoder(weight)
        mul = GenericMultiplier(act, weight)
        m.d.comb += mul.value.eq(dec.value)
    m.submodules[prefix + "decoder"] = dec
    m.submodules[prefix + "multiplier"] = mul
    m.d.comb += [dec.code.eq(code), mul.a.eq(a)]
    return mul.product


class MultiplierUnit(wiring.Component):
    """Decoder + multiplier only: ``product = a * ints[w]``, combinational.

    Built with :func:`build_product`, so it is exactly the pair every MAC, dot product and PE
    instantiates (``decoder`` and ``multiplier`` submodules); the reports synthesize it as the
    ``mul`` level. Ports: ``a: In(signed(act.bits))``, ``w: In(unsigned(weight.bits))``,
    ``product: Out(signed(golden.product_width(act, weight)))``.
    """

    design = "mul"
    latency = 0  # combinational

    def __init__(
        self,
        weight_format: Format | str,
        act_format: Format | str = "int8",
        style: str | None = None,
    ):
        with constructing(self):
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            self.style = resolve_style(style, self.weight_format)
        super().__init__(
            {
                "a": In(signed(self.act_format.bits)),
                "w": In(unsigned(self.weight_format.bits)),
                "product": Out(signed(product_width(self.act_format, self.weight_format))),
            }
        )

    def parameters(self) -> dict:
        return {
            "weight_format": self.weight_format.name,
            "act_format": self.act_format.name,
            "style": self.style,
            "multiplier": effective_style(self.style, self.weight_format),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        product = build_product(m, self.a, self.w, self.weight_format, self.act_format, self.style)
        m.d.comb += self.product.eq(product)
        return m
