"""One multiply-accumulate lane with a registered accumulator (the stable, documented port list)."""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import Format

from .arith import Accumulator
from .multiplier import build_product
from .params import (
    act_format_of,
    constructing,
    product_range,
    product_width,
    resolve_acc_width,
    weight_format_of,
)
from .styles import multiplier_parameters, resolve_style


class MAC(wiring.Component):
    """``acc <= (clear ? 0 : acc) + a * weight_format.ints[w]`` on a rising edge with ``en``.

    Ports (exported Verilog adds ``clk`` and ``rst``; ``rst`` clears ``acc``):

    - ``en: In(1)`` — update on this edge; without it ``acc`` holds;
    - ``clear: In(1)`` — start a new sum (``acc`` becomes this product);
    - ``a: In(signed(act.bits))`` — activation integer (int8: -128..127);
    - ``w: In(unsigned(weight.bits))`` — weight code;
    - ``acc: Out(signed(acc_width))`` — the sum in units of ``2**-weight.frac_bits``.

    ``acc_width`` is given, or derived from ``k_max`` with ``golden.acc_width_for``; with both,
    ``golden.check_acc_width`` must pass. ``style``: ``"mul"`` or ``"shiftadd"`` (default: the
    smaller one for the format, :func:`hw.default_style`). Hierarchy: ``decoder``,
    ``multiplier``, ``accumulator``. Latency 1: an update is visible the cycle after ``en``.
    """

    design = "mac"
    latency = 1

    def __init__(
        self,
        weight_format: Format | str,
        act_format: Format | str = "int8",
        acc_width: int | None = None,
        k_max: int | None = None,
        style: str | None = None,
    ):
        with constructing(self):
            self.weight_format = weight_format_of(weight_format)
            self.act_format = act_format_of(act_format)
            self.acc_width = resolve_acc_width(
                acc_width, k_max, self.act_format, self.weight_format
            )
            self.k_max = k_max
            self.style = resolve_style(style, self.weight_format)
        self.product_range = product_range(self.act_format, self.weight_format)
        super().__init__(
            {
                "en": In(1),
                "clear": In(1),
                "a": In(signed(self.act_format.bits)),
                "w": In(unsigned(self.weight_format.bits)),
                "acc": Out(signed(self.acc_width)),
            }
        )

    def parameters(self) -> dict:
        """Constructor parameters as resolved (for the export sidecar)."""
        return multiplier_parameters(self)

    def elaborate(self, platform) -> Module:
        m = Module()
        product = build_product(m, self.a, self.w, self.weight_format, self.act_format, self.style)
        m.submodules.accumulator = acc = Accumulator(
            product_width(self.act_format, self.weight_format), self.acc_width
        )
        m.d.comb += [
            acc.en.eq(self.en),
            acc.clear.eq(self.clear),
            acc.addend.eq(product),
            self.acc.eq(acc.acc),
        ]
        return m
