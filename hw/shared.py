"""Shared row multiples: the ``shared`` multiplier style of the lean systolic array.

In a weight-stationary array every PE of a row multiplies the same activation ``a``. A
product ``a * w`` of a small weight set is one *odd multiple* of ``a`` shifted left and maybe
negated, so a row makes each odd multiple it needs once (``3a = a + 2a``, ``5a = a + 4a``:
:class:`RowMultiples`) and each PE only selects one of them, shifts it by wiring and, for a
negative weight, inverts it; the ``+1`` of the two's-complement negation goes into the PE's
partial-sum adder as a carry-in (``-x = ~x + 1``), so a PE has no adder of its own.

:class:`SharedPlan` derives all of it from ``Format.ints``:

- ``single``: every ``|ints[code]|`` is ``odd << shift`` with at most :data:`MAX_ODDS`
  distinct odd parts: dint4 (and its 0.25/0.75 variants) need ``a, 3a, 5a``; fp4_e2m1
  ``a, 3a``; int4 ``a, 3a, 5a, 7a``. One digit per weight.
- ``booth8``: a two's-complement format with more odd parts (int8) is recoded in radix-8
  Booth digits ``d_i`` in -4..4 (``w = sum d_i 8**i``, digit ``i`` from code bits
  ``3i+2 .. 3i-1``), each digit ``|d|`` in ``{0, a, 2a, 3a, 4a}``: the row shares ``3a`` and a
  PE adds ``ceil(bits / 3)`` selected terms. This is the fair INT8 counterpart of the shared
  dINT4 PE.

:class:`SharedDecoder` maps a weight code to per-digit controls (``hot``: one bit per
``(odd, shift)`` term, none for a zero digit; ``neg``); :class:`SharedSelector` turns the
row's multiples and those controls into per-digit terms
``t_i`` (``~x`` when negative) and carry-in bits; the PE adds ``psum + sum(t_i << 3i) +
sum(neg_i << 3i)`` (:func:`digit_sum`).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden import Format, signed_width

from .decoder import _terms_of
from .params import HwError, is_twos_complement, weight_format_of

#: A single-digit plan shares at most this many odd multiples per row (int4 needs 1, 3, 5, 7).
MAX_ODDS = 4
#: Bits between radix-8 Booth digits.
BOOTH_SHIFT = 3
#: Radix-8 Booth digit magnitude -> (odd multiple, shift).
_BOOTH_TERM = {1: (1, 0), 2: (1, 1), 3: (3, 0), 4: (1, 2)}


def _odd_shift(magnitude: int) -> tuple[int, int]:
    shift = (magnitude & -magnitude).bit_length() - 1
    return magnitude >> shift, shift


def _booth_digit(window: int) -> int:
    """Radix-8 Booth digit of a 4-bit window ``b[3i+2] b[3i+1] b[3i] b[3i-1]``."""
    b = [(window >> k) & 1 for k in range(4)]  # b[0] is bit 3i-1
    return -4 * b[3] + 2 * b[2] + b[1] + b[0]


def booth_window(code: int, bits: int, digit: int) -> int:
    """The 4-bit window of digit ``digit`` of ``code`` (bit -1 is 0, bits above sign-extend)."""
    out = 0
    for k in range(4):
        j = min(BOOTH_SHIFT * digit - 1 + k, bits - 1)
        out |= ((code >> j) & 1 if j >= 0 else 0) << k
    return out


@dataclass(frozen=True)
class SharedPlan:
    """How a format's products are made from shared odd multiples (see the module docstring).

    ``pairs`` are the distinct ``(odd, shift)`` terms a digit selects from (one-hot: an AND-OR
    multiplexer measured 10% smaller on OSU018 than a binary-coded one for the whole array);
    ``digits[code]`` gives, per digit, ``(pair index or None for 0, negative)``.
    """

    weight_format: Format
    kind: str
    odds: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]
    digits: tuple[tuple[tuple[int | None, bool], ...], ...]

    @classmethod
    def from_format(cls, weight_format: Format | str) -> SharedPlan:
        fmt = weight_format_of(weight_format)
        mags = [abs(v) for v in fmt.ints if v]
        terms = sorted({_odd_shift(m) for m in mags})
        odds = sorted({o for o, _ in terms})
        if len(odds) <= MAX_ODDS and all(_terms_of(o) is not None for o in odds):
            digits = []
            for v in fmt.ints:
                digits.append(((terms.index(_odd_shift(abs(v))), v < 0) if v else (None, False),))
            return cls(fmt, "single", tuple(odds), tuple(terms), tuple(digits))
        if is_twos_complement(fmt):
            pairs = tuple(sorted(_BOOTH_TERM.values()))
            n = -(-fmt.bits // BOOTH_SHIFT)
            digits = []
            for code in range(1 << fmt.bits):
                ds = [_booth_digit(booth_window(code, fmt.bits, i)) for i in range(n)]
                digits.append(
                    tuple(
                        (pairs.index(_BOOTH_TERM[abs(d)]), d < 0) if d else (None, False)
                        for d in ds
                    )
                )
            return cls(fmt, "booth8", (1, 3), pairs, tuple(digits))
        raise HwError(
            f"format {fmt.name!r} has no shared-multiple plan: its magnitudes need "
            f"{len(odds)} odd multiples (at most {MAX_ODDS}) and it is not a two's-complement "
            "integer format (radix-8 Booth); use style mul or shiftadd"
        )

    @property
    def n_digits(self) -> int:
        return len(self.digits[0])

    @property
    def digit_shift(self) -> int:
        return BOOTH_SHIFT if self.kind == "booth8" else 0

    def term_width(self, act_bits: int) -> int:
        """Signed width of one selected term ``odd * a << shift`` (a signed ``act_bits``)."""
        lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
        big = max(o << s for o, s in self.pairs)
        return signed_width(lo * big, hi * big)

    @property
    def ctrl_layout(self) -> data.StructLayout:
        fields = {}
        for i in range(self.n_digits):
            fields.update({f"hot{i}": len(self.pairs), f"neg{i}": 1})
        return data.StructLayout(fields)

    def evaluate(self, code: int, a: int) -> int:
        """Software model of a PE's product for this plan (equals ``a * ints[code]``)."""
        total = 0
        for i, (sel, neg) in enumerate(self.digits[code]):
            if sel is None:
                continue
            odd, shift = self.pairs[sel]
            x = (odd * a) << shift
            total += (-x if neg else x) << (self.digit_shift * i)
        return total


class SharedDecoder(wiring.Component):
    """Weight code -> per-digit controls of a :class:`SharedPlan` (combinational).

    ``single`` plans switch on the whole code; ``booth8`` plans switch each digit on its
    4-bit window of the code. A zero digit has ``hot = neg = 0``.
    """

    def __init__(self, plan: SharedPlan):
        self.plan = plan
        super().__init__(
            {"code": In(unsigned(plan.weight_format.bits)), "ctrl": Out(plan.ctrl_layout)}
        )

    def _set(self, m: Module, i: int, digit: tuple[int | None, bool]) -> None:
        sel, neg = digit
        ctrl = self.ctrl
        if sel is None:
            m.d.comb += [ctrl[f"hot{i}"].eq(0), ctrl[f"neg{i}"].eq(0)]
        else:
            m.d.comb += [ctrl[f"hot{i}"].eq(1 << sel), ctrl[f"neg{i}"].eq(neg)]

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        if plan.kind == "single":
            with m.Switch(self.code):
                for code, digits in enumerate(plan.digits):
                    with m.Case(code):
                        self._set(m, 0, digits[0])
            return m
        bits = plan.weight_format.bits
        for i in range(plan.n_digits):
            # The window's bits (bit -1 of digit 0 is the constant 0: left out, so that the
            # case statement covers every value of what it switches on).
            lo = 1 if i == 0 else 0
            window = Signal(4 - lo, name=f"window{i}")
            m.d.comb += window.eq(
                Cat(*(self.code[min(BOOTH_SHIFT * i - 1 + k, bits - 1)] for k in range(lo, 4)))
            )
            with m.Switch(window):
                for w in range(1 << (4 - lo)):
                    d = _booth_digit(w << lo)
                    digit = (plan.pairs.index(_BOOTH_TERM[abs(d)]), d < 0) if d else (None, False)
                    with m.Case(w):
                        self._set(m, i, digit)
        return m


class RowMultiples(wiring.Component):
    """The odd multiples of one activation a row shares: ``m[j] = plan.odds[j] * a``.

    ``1a`` is ``a`` itself; every other odd multiple is one adder (``3a = a + (a << 1)``,
    ``7a = (a << 3) - a``). Ports: ``a: In(signed(act_bits))``, ``m{odd}: Out(signed(...))``.
    """

    def __init__(self, plan: SharedPlan, act_bits: int):
        self.plan, self.act_bits = plan, act_bits
        members = {"a": In(signed(act_bits))}
        for odd in plan.odds:
            members[f"m{odd}"] = Out(signed(act_bits + odd.bit_length()))
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        for odd in self.plan.odds:
            total = None
            for shift, sign in _terms_of(odd):
                term = self.a << shift if sign > 0 else -(self.a << shift)
                total = term if total is None else total + term
            m.d.comb += getattr(self, f"m{odd}").eq(total)
        return m


class SharedSelector(wiring.Component):
    """One PE's share of the product: per digit ``t{i} = neg ? ~x : x`` with ``x`` the
    selected ``odd * a << shift`` (0 when the digit is 0), and ``cin{i} = neg``; the PE adds
    ``sum(t_i << 3i) + sum(cin_i << 3i)`` (:func:`digit_sum`), which is ``a * ints[code]``."""

    def __init__(self, plan: SharedPlan, act_bits: int):
        self.plan, self.act_bits = plan, act_bits
        width = plan.term_width(act_bits)
        members = {f"m{odd}": In(signed(act_bits + odd.bit_length())) for odd in plan.odds}
        members["ctrl"] = In(plan.ctrl_layout)
        for i in range(plan.n_digits):
            members[f"t{i}"] = Out(signed(width))
            members[f"cin{i}"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan, ctrl = self.plan, self.ctrl
        width = plan.term_width(self.act_bits)
        for i in range(plan.n_digits):
            x = Signal(signed(width), name=f"x{i}")
            hot = ctrl[f"hot{i}"]
            picks = [
                Mux(hot[j], getattr(self, f"m{odd}") << shift, 0)
                for j, (odd, shift) in enumerate(plan.pairs)
            ]
            total = picks[0]
            for p in picks[1:]:
                total = total | p
            m.d.comb += x.eq(total)
            neg = ctrl[f"neg{i}"]
            m.d.comb += [
                getattr(self, f"t{i}").eq(Mux(neg, ~x, x)),
                getattr(self, f"cin{i}").eq(neg),
            ]
        return m


def digit_sum(plan: SharedPlan, sel: SharedSelector) -> tuple[list[Value], Value]:
    """The operands a PE adds for its product: the shifted terms and one carry-in vector."""
    step = plan.digit_shift
    terms = [getattr(sel, f"t{i}") << (step * i) for i in range(plan.n_digits)]
    if plan.n_digits == 1:
        return terms, sel.cin0
    pieces = []
    for i in range(plan.n_digits):
        pieces.append(getattr(sel, f"cin{i}"))
        if i < plan.n_digits - 1:
            pieces.append(Const(0, step - 1))
    return terms, Cat(*pieces).as_unsigned()
