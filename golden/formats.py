"""Number formats as data: one table per format, from which everything is derived.

A :class:`Format` is the single source of truth for a weight or activation
format. The golden model (this package), the torch fake-quantizer (``quant``)
and the RTL weight decoder (``hw``) are all derived from ``Format.values``;
nothing else writes a format's values down a second time.

Codes are unsigned integers in ``[0, 2**bits)``: the bit pattern on the wire.
``values[code]`` is the real value of that code. Every value is ``k * 2**-f``
for an integer ``k``; ``frac_bits`` is the smallest such ``f`` and ``ints`` are
the ``k`` — what the hardware decoder outputs, in units of ``2**-frac_bits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .bits import signed_width

#: The largest fractional precision a table may need. A value that is not a
#: multiple of 2**-MAX_FRAC_BITS is rejected: hardware decodes to integers.
MAX_FRAC_BITS = 16


class FormatError(ValueError):
    """A format table, name or input is not usable; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class Format:
    """A number format defined by the real value of each of its codes.

    Attributes:
        name: registry name, e.g. ``"dint4"``.
        values: ``values[code]`` is the real value of ``code``; ``len(values)``
            is ``2**bits``. Code 0 must decode to 0.
        description: one line for reports and ``--help``.
    """

    name: str
    values: tuple[float, ...]
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.values)
        if n < 2 or n & (n - 1):
            raise FormatError(
                f"format {self.name!r}: {n} values is not a power of two; "
                "give one value per code (2**bits of them)"
            )
        v = np.asarray(self.values, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise FormatError(f"format {self.name!r}: values must be finite, got {self.values}")
        if v[0] != 0.0:
            raise FormatError(
                f"format {self.name!r}: code 0 must decode to 0 (got {v[0]}); "
                "put zero first in the table"
            )
        # frac_bits: smallest f with every value * 2**f an integer.
        for f in range(MAX_FRAC_BITS + 1):
            if np.all(v * 2.0**f == np.round(v * 2.0**f)):
                break
        else:
            raise FormatError(
                f"format {self.name!r}: values {self.values} are not all of the form "
                f"k*2**-f with f <= {MAX_FRAC_BITS}; hardware decodes codes to integers, "
                "so use dyadic values (e.g. 0.25, 0.5, 0.75)"
            )
        if self.max_abs <= 0:
            raise FormatError(
                f"format {self.name!r}: no nonzero magnitude is representable with both "
                "signs; a symmetric quantizer needs one"
            )

    # ---- derived properties ---------------------------------------------------

    @property
    def bits(self) -> int:
        """Width of a code in bits."""
        return len(self.values).bit_length() - 1

    @cached_property
    def frac_bits(self) -> int:
        """Smallest f such that every value times 2**f is an integer."""
        v = np.asarray(self.values, dtype=np.float64)
        for f in range(MAX_FRAC_BITS + 1):
            if np.all(v * 2.0**f == np.round(v * 2.0**f)):
                return f
        raise AssertionError("unreachable: checked in __post_init__")

    @cached_property
    def ints(self) -> tuple[int, ...]:
        """``ints[code] = values[code] * 2**frac_bits``: the decoder's integer output."""
        return tuple(int(round(v * 2**self.frac_bits)) for v in self.values)

    @cached_property
    def ints_array(self) -> np.ndarray:
        """``ints`` as a read-only int64 array, for table look-ups."""
        a = np.asarray(self.ints, dtype=np.int64)
        a.setflags(write=False)
        return a

    @cached_property
    def max_abs(self) -> float:
        """Largest magnitude representable with both signs: the scale divisor."""
        vals = set(self.values)
        both = [abs(v) for v in vals if v != 0 and -v in vals]
        return max(both) if both else 0.0

    @cached_property
    def max_int(self) -> int:
        """Largest |ints[code]| over all codes (sizes multipliers and accumulators)."""
        return max(abs(i) for i in self.ints)

    @cached_property
    def int_width(self) -> int:
        """Width of a signed integer that holds every ``ints[code]``."""
        lo, hi = min(self.ints), max(self.ints)
        return signed_width(lo, hi)

    @cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rounding grid, shared by every encoder (numpy here, torch in ``quant``).

        Returns ``(sorted_values, sorted_codes, midpoints, tie_up)``: the distinct
        values in increasing order, the code chosen for each (the smallest code
        with that value, so zero is code 0), the midpoints between neighbours,
        and for each midpoint whether a tie goes to the upper neighbour (true
        when the upper neighbour has the smaller magnitude).
        """
        order: dict[float, int] = {}
        for code, v in enumerate(self.values):
            order.setdefault(float(v), code)
        sv = np.array(sorted(order), dtype=np.float64)
        sc = np.array([order[float(x)] for x in sv], dtype=np.int64)
        mid = (sv[:-1] + sv[1:]) / 2
        tie_up = np.abs(sv[1:]) < np.abs(sv[:-1])
        for a in (sv, sc, mid, tie_up):
            a.setflags(write=False)
        return sv, sc, mid, tie_up

    # ---- encode / decode --------------------------------------------------------

    def encode(self, x) -> np.ndarray:
        """Nearest code to each element of ``x`` (real values, not scaled).

        Rounds to the nearest representable value; a tie (x exactly halfway
        between two neighbours) goes to the value of smaller magnitude. Values
        beyond the table saturate to its extremes. Zero is always code 0.
        NaN or Inf raise :class:`FormatError`.

        Returns an ``uint8`` array of codes (``uint16`` for formats over 8 bits).
        """
        x = np.asarray(x, dtype=np.float64)
        _check_finite(x, f"{self.name}.encode")
        sv, sc, mid, tie_up = self.grid
        # idx = number of midpoints strictly below x: the neighbour at or above x's cell.
        idx = np.searchsorted(mid, x, side="left")
        at_mid = np.zeros(x.shape, dtype=bool)
        inside = idx < len(mid)
        at_mid[inside] = x[inside] == mid[idx[inside]]
        idx = idx + (at_mid & tie_up[np.minimum(idx, len(mid) - 1)])
        dtype = np.uint8 if self.bits <= 8 else np.uint16
        return sc[idx].astype(dtype)

    def decode(self, codes) -> np.ndarray:
        """Real value (float64) of each code; raises on a code outside ``[0, 2**bits)``."""
        return self.decode_ints(codes) * 2.0**-self.frac_bits

    def decode_ints(self, codes) -> np.ndarray:
        """Integer value (``ints``, int64) of each code."""
        c = np.asarray(codes)
        if c.size and (
            not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() >= len(self.values)
        ):
            raise FormatError(
                f"{self.name}: codes must be integers in [0, {len(self.values)}); "
                f"got dtype {c.dtype}, range [{c.min()}, {c.max()}]"
            )
        return self.ints_array[c.astype(np.int64)]

    def codes_of_ints(self, ints) -> np.ndarray:
        """Inverse of ``decode_ints``: the canonical code of each integer of ``ints``.

        Raises :class:`FormatError` for a non-integer input or an integer the format cannot
        represent (no rounding: use :meth:`encode` to round real values).
        """
        x = np.asarray(ints)
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise FormatError(
                f"{self.name}.codes_of_ints: inputs must be integers, got dtype {x.dtype}; "
                "round real values with encode() instead"
            )
        bad = ~np.isin(x, np.asarray(self.ints))
        if np.any(bad):
            v = x[bad].reshape(-1)[0]
            raise FormatError(
                f"{self.name} cannot represent the integer {v} (its integers are "
                f"{sorted(set(self.ints))}); round real values with encode() instead"
            )
        return self.encode(x.astype(np.float64) * 2.0**-self.frac_bits)

    def __repr__(self) -> str:
        return f"Format({self.name!r}, bits={self.bits}, frac_bits={self.frac_bits})"


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise FormatError(
            f"{what}: input contains NaN or Inf (first at index {tuple(int(i) for i in bad)}); "
            "clean the tensor before quantizing"
        )


# ---- constructors ---------------------------------------------------------------


def twos_complement(name: str, bits: int, description: str = "") -> Format:
    """Two's-complement integer: code c means c, or c - 2**bits when the top bit is set."""
    if not 2 <= bits <= 16:
        raise FormatError(f"two's-complement width must be 2..16 bits, got {bits}")
    n = 1 << bits
    values = tuple(float(c if c < n // 2 else c - n) for c in range(n))
    return Format(name, values, description or f"{bits}-bit two's-complement integer")


def sign_magnitude(name: str, magnitudes, description: str = "") -> Format:
    """Sign-magnitude format: code = sign * 2**(bits-1) + m, value = ±magnitudes[m].

    The negative zero code decodes to 0.
    """
    mags = tuple(float(m) for m in magnitudes)
    if any(m < 0 for m in mags) or list(mags) != sorted(mags) or len(set(mags)) != len(mags):
        raise FormatError(f"format {name!r}: magnitudes must be distinct, >= 0 and increasing")
    values = mags + tuple(-m if m else 0.0 for m in mags)
    return Format(name, values, description)


DINT_MAGNITUDES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def dint4_variant(special: float = 0.5) -> Format:
    """dINT4 with the given special value near zero.

    Magnitudes ``[0, special, 1, 2, 3, 4, 5, 6]`` in sign-magnitude layout
    (code = sign*8 + m). The special value replaces the integer 7 of a
    balanced int4 range with a denormal between 0 and 1, so small weights do
    not all underflow to zero. ``special`` must be in (0, 1) and dyadic.
    """
    special = float(special)
    if not 0.0 < special < 1.0:
        raise FormatError(f"dINT special value must be in (0, 1), got {special}")
    name = "dint4" if special == 0.5 else f"dint4_{special:g}"
    return sign_magnitude(
        name,
        (0.0, special) + DINT_MAGNITUDES,
        f"4-bit integer with denormal: ±{{0, {special:g}, 1..6}}, sign-magnitude",
    )


# ---- registry -------------------------------------------------------------------

INT8 = twos_complement("int8", 8, "8-bit two's-complement integer, -128..127")
INT4 = twos_complement("int4", 4, "4-bit two's-complement integer, -8..7")
DINT4 = dint4_variant(0.5)
FP4_E2M1 = sign_magnitude(
    "fp4_e2m1",
    (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "4-bit float E2M1 (OCP MX): ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}",
)

FORMATS: dict[str, Format] = {
    f.name: f for f in (INT8, INT4, DINT4, dint4_variant(0.25), dint4_variant(0.75), FP4_E2M1)
}

_DINT_NAME = re.compile(r"dint4_(0?\.\d+)$")


def get(name: str | Format) -> Format:
    """Look a format up by name; ``dint4_<special>`` (e.g. ``dint4_0.375``) builds a variant.

    Raises :class:`FormatError` listing the known names for anything else.
    """
    if isinstance(name, Format):
        return name
    if name in FORMATS:
        return FORMATS[name]
    m = _DINT_NAME.match(str(name))
    if m:
        return dint4_variant(float(m.group(1)))
    raise FormatError(
        f"unknown format {name!r}; known formats: {', '.join(FORMATS)} "
        "(or dint4_<special> for another dINT special value, e.g. dint4_0.375)"
    )
