"""Build any exportable design by name: one place where the CLI, sim/ and reports/ build blocks."""

from __future__ import annotations

from amaranth.lib import wiring

from golden import Format, acc_width_for

from .dot import DotProduct
from .lean import ARCHS, DEFAULT_ARCH, LeanSystolicArray, arch_of
from .mac import MAC
from .multiplier import MultiplierUnit
from .params import HwError, act_format_of, weight_format_of
from .requant import Requantizer
from .systolic import SystolicArray
from .tile import DEFAULT_DEPTH, Tile

#: Designs ``python -m hw verilog`` can emit.
DESIGNS = ("mul", "mac", "dot", "systolic", "requant", "tile")


def build_design(
    design: str,
    weight_format: Format | str = "dint4",
    act_format: Format | str = "int8",
    acc_width: int | None = None,
    k_max: int | None = None,
    lanes: int | None = None,
    rows: int | None = None,
    cols: int | None = None,
    style: str | None = None,
    pipeline: bool = False,
    arch: str | None = None,
    a_reg_every: int | None = None,
    depth: int | None = None,
) -> wiring.Component:
    """Construct ``design`` from CLI-style parameters (sizes default to small useful values).

    A size or option that does not apply to ``design`` raises. ``dot`` uses ``lanes`` (default 8);
    ``systolic`` uses ``rows`` x ``cols`` (default 4 x 4), ``lanes`` (weights per PE) and
    ``pipeline`` (lean arrays only) and ``arch`` (default
    :data:`hw.lean.DEFAULT_ARCH`; ``classic`` is :class:`SystolicArray`); every design but
    ``mul`` (decoder + multiplier only) and a ``lean`` array (K summed outside: its output is
    the tile sum) needs ``acc_width`` or ``k_max`` (a clear error otherwise);
    ``requant`` uses ``lanes`` (default 1) and ``acc_width`` (or the width for ``k_max``);
    ``tile`` (:class:`hw.tile.Tile`) uses ``rows`` x ``cols`` (default 8 x 8), ``depth``, the
    lean array's ``style`` and ``lanes``, and ``acc_width`` or ``k_max``.
    """
    given = {
        "lanes": lanes is not None,
        "rows": rows is not None,
        "cols": cols is not None,
        "style": style is not None,
        "pipeline": bool(pipeline),
        "arch": arch is not None,
        "a_reg_every": a_reg_every is not None,
        "depth": depth is not None,
    }
    applies = {
        "mul": {"style"},
        "mac": {"style"},
        "dot": {"lanes", "style", "pipeline"},
        "systolic": {"rows", "cols", "style", "arch", "lanes", "pipeline", "a_reg_every"},
        "requant": {"lanes", "pipeline"},
        "tile": {"rows", "cols", "style", "lanes", "depth"},
    }
    if design in applies:
        extra = sorted(k for k, v in given.items() if v and k not in applies[design])
        if extra:
            raise HwError(
                f"{design} does not take {', '.join(extra)}; it takes "
                f"{', '.join(sorted(applies[design]))} (and the formats and width)"
            )
    if design not in applies:
        raise HwError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
    # The formats are checked for every design, also where they only size a width (requant).
    weight_format, act_format = weight_format_of(weight_format), act_format_of(act_format)
    if design == "mul":
        if acc_width is not None or k_max is not None:
            raise HwError("mul (decoder + multiplier only) has no accumulator: drop the width")
        return MultiplierUnit(weight_format, act_format, style=style)
    if design == "mac":
        return MAC(weight_format, act_format, acc_width=acc_width, k_max=k_max, style=style)
    if design == "dot":
        return DotProduct(
            lanes if lanes is not None else 8,
            weight_format,
            act_format,
            acc_width=acc_width,
            k_max=k_max,
            style=style,
            pipeline=pipeline,
        )
    if design == "systolic" and arch_of(arch or DEFAULT_ARCH).ksum != "chain":
        return LeanSystolicArray(
            rows if rows is not None else 4,
            cols if cols is not None else 4,
            weight_format,
            act_format,
            arch=arch or DEFAULT_ARCH,
            acc_width=acc_width,
            k_max=k_max,
            style=style,
            lanes=lanes,
            pipeline=pipeline,
            a_reg_every=a_reg_every,
        )
    if design == "systolic":
        if lanes is not None or pipeline or a_reg_every is not None:
            raise HwError(
                "lanes (weights per PE), a_reg_every and pipeline are options of the lean arrays; "
                "the classic array takes neither: drop them or choose --arch lean"
            )
        if style == "shared":
            raise HwError(
                "style shared (row-shared multiples) needs a lean array: "
                f"choose --arch from {', '.join(a for a in ARCHS if a != 'classic')}"
            )
        return SystolicArray(
            rows if rows is not None else 4,
            cols if cols is not None else 4,
            weight_format,
            act_format,
            acc_width=acc_width,
            k_max=k_max,
            style=style,
        )
    if design == "requant":
        if acc_width is None:
            if k_max is None:
                raise HwError("requant needs --acc-width N or --k-max K")
            acc_width = acc_width_for(k_max, act_format, weight_format)
        return Requantizer(lanes if lanes is not None else 1, acc_width, pipeline=pipeline)
    if design == "tile":
        return Tile(
            rows if rows is not None else 8,
            cols if cols is not None else 8,
            weight_format,
            act_format,
            depth=depth if depth is not None else DEFAULT_DEPTH,
            acc_width=acc_width,
            k_max=k_max,
            style=style,
            lanes=lanes,
        )
    raise HwError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
