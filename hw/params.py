"""Parameter validation shared by every block: formats, widths and sizes.

The multiplier styles live in :mod:`hw.styles`; every width comes from ``golden``.

Every check raises one clear exception (``golden.FormatError``, a ``ValueError``) that says
what was wrong and what to do, at construction time, before any hardware is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from golden import (
    Format,
    FormatError,
    acc_width_for,
    check_acc_width,
    get,
    min_acc_width,
    product_range,
    product_width,
    signed_width,
)


class HwError(ValueError):
    """A hardware parameter (size, style, design, name, option) is not usable; the message says
    what was wrong and what to do. Format and width errors are ``golden.FormatError``."""


# Re-exported for the blocks: the contract numbers themselves live in golden.
__all__ = [
    "HwError",
    "act_format_of",
    "check_count",
    "constructing",
    "is_twos_complement",
    "min_acc_width",
    "product_range",
    "product_width",
    "resolve_acc_width",
    "signed_width",
    "weight_format_of",
]


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
        raise HwError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")
    return value


def is_twos_complement(fmt: Format) -> bool:
    """True when ``ints[code]`` is the code read as a two's-complement integer (int8, int4)."""
    n = 1 << fmt.bits
    return fmt.ints == tuple(c if c < n // 2 else c - n for c in range(n))


@contextmanager
def constructing(component) -> Iterator[None]:
    """Wrap a component's validation: if it raises, Amaranth's "created but never used"
    warning is silenced for that half-built object (the exception is the whole message)."""
    component._MustUse__silence = True
    yield
    del component._MustUse__silence


def is_row(load_row, loading, r: int):
    """``load_row == r`` for a weight-load row counter; row 0 is ``~loading`` (Verilator's
    lint rejects the ``!`` that Amaranth writes for a multi-bit ``== 0``)."""
    return ~loading if r == 0 else load_row == r
