"""Weight decoders generated from ``Format.ints``.

- :class:`WeightDecoder`: ``code -> value = Format.ints[code]`` (for the generic ``*``).
- :class:`ShiftAddPlan`: every nonzero ``ints[code]`` written as
  ``(-1)**neg * (2**s0 + sign1 * 2**s1)`` (one or two terms), derived from the table.
- :class:`ShiftAddDecoder`: ``code -> ctrl`` (``neg``, ``en0``, ``sel0``, ``en1``, ``sel1``,
  ``sub1``), the control word that :class:`hw.multiplier.ShiftAddMultiplier` consumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden import Format

from .params import weight_format_of

#: A magnitude needing more than this many signed powers of two is not shift-add friendly.
MAX_TERMS = 2


class WeightDecoder(wiring.Component):
    """Combinational decoder: ``value = weight_format.ints[code]``.

    Ports: ``code: In(unsigned(bits))``, ``value: Out(signed(int_width))``.
    """

    def __init__(self, weight_format: Format | str):
        self.weight_format = weight_format_of(weight_format)
        fmt = self.weight_format
        super().__init__({"code": In(unsigned(fmt.bits)), "value": Out(signed(fmt.int_width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.Switch(self.code):
            # Every code gets a case (zeros too): a complete case statement lints clean.
            for code, value in enumerate(self.weight_format.ints):
                with m.Case(code):
                    m.d.comb += self.value.eq(value)
        return m


def _terms_of(magnitude: int) -> tuple[tuple[int, int], ...] | None:
    """Fewest signed powers of two summing to ``magnitude`` (at most :data:`MAX_TERMS`).

    Returns ``((s0, +1),)`` or ``((s0, +1), (s1, sign1))`` with ``s0 > s1``; sums are
    preferred to differences and, among equals, the smallest shifts. ``None`` if more terms
    would be needed.
    """
    if magnitude == 0:
        return ()
    if magnitude & (magnitude - 1) == 0:
        return ((magnitude.bit_length() - 1, 1),)
    top = magnitude.bit_length() + 1
    for sign in (1, -1):
        for s0 in range(top):
            for s1 in range(s0):
                if (1 << s0) + sign * (1 << s1) == magnitude:
                    return ((s0, 1), (s1, sign))
    return None


@dataclass(frozen=True)
class ShiftAddPlan:
    """Shift-and-add structure of a weight format, derived from ``Format.ints``.

    For every code: ``ints[code] = (-1)**neg[code] * sum(sign * 2**shift for shift, sign in
    terms[code])`` with at most two terms; the first term is always added. ``shifts0`` and
    ``shifts1`` are the distinct shifts used by term 0 and term 1 (the multiplexer inputs);
    ``uses_sub`` says whether any term 1 is subtracted (int4's 7 = 8 - 1).
    """

    weight_format: Format
    neg: tuple[bool, ...]
    terms: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def from_format(cls, weight_format: Format | str) -> ShiftAddPlan | None:
        """The plan, or ``None`` when some magnitude needs more than two powers of two."""
        fmt = weight_format_of(weight_format)
        terms = []
        for value in fmt.ints:
            t = _terms_of(abs(value))
            if t is None:
                return None
            terms.append(t)
        return cls(fmt, tuple(v < 0 for v in fmt.ints), tuple(terms))

    @property
    def shifts0(self) -> tuple[int, ...]:
        return tuple(sorted({t[0][0] for t in self.terms if len(t) >= 1}))

    @property
    def shifts1(self) -> tuple[int, ...]:
        return tuple(sorted({t[1][0] for t in self.terms if len(t) >= 2}))

    @property
    def uses_sub(self) -> bool:
        return any(len(t) == 2 and t[1][1] < 0 for t in self.terms)

    @property
    def uses_neg(self) -> bool:
        return any(self.neg)

    @property
    def ctrl_layout(self) -> data.StructLayout:
        """Layout of the decoder's control word (fields present only when used)."""
        fields: dict[str, object] = {}
        if self.uses_neg:
            fields["neg"] = 1
        if self.shifts0:
            fields["en0"] = 1
            fields["sel0"] = max(1, (len(self.shifts0) - 1).bit_length())
        if self.shifts1:
            fields["en1"] = 1
            fields["sel1"] = max(1, (len(self.shifts1) - 1).bit_length())
        if self.uses_sub:
            fields["sub1"] = 1
        return data.StructLayout(fields)

    def evaluate(self, code: int, a: int) -> int:
        """Software model of the multiplier for this plan: equals ``a * ints[code]``."""
        x = -a if self.neg[code] else a
        return sum(sign * (x << shift) for shift, sign in self.terms[code])


class ShiftAddDecoder(wiring.Component):
    """Combinational decoder: weight code -> shift/add control word of a :class:`ShiftAddPlan`.

    Ports: ``code: In(unsigned(bits))``, ``ctrl: Out(plan.ctrl_layout)``.
    """

    def __init__(self, plan: ShiftAddPlan):
        self.plan = plan
        super().__init__(
            {"code": In(unsigned(plan.weight_format.bits)), "ctrl": Out(plan.ctrl_layout)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        plan, ctrl = self.plan, self.ctrl
        with m.Switch(self.code):
            for code, terms in enumerate(plan.terms):
                with m.Case(code):
                    if not terms:
                        m.d.comb += ctrl.en0.eq(0)  # a zero weight: no term (explicit case)
                        continue
                    if plan.neg[code]:
                        m.d.comb += ctrl.neg.eq(1)
                    m.d.comb += [ctrl.en0.eq(1), ctrl.sel0.eq(plan.shifts0.index(terms[0][0]))]
                    if len(terms) == 2:
                        m.d.comb += [ctrl.en1.eq(1), ctrl.sel1.eq(plan.shifts1.index(terms[1][0]))]
                        if terms[1][1] < 0:
                            m.d.comb += ctrl.sub1.eq(1)
        return m
