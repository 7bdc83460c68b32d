"""Integer widths: the one definition of how many bits a two's-complement value needs."""

from __future__ import annotations


def signed_width(lo: int, hi: int | None = None) -> int:
    """Bits of a two's-complement integer that holds every integer in ``[lo, hi]``.

    ``signed_width(v)`` is the width of the single value ``v``.
    """

    def one(v: int) -> int:
        v = int(v)
        return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1

    return one(lo) if hi is None else max(one(lo), one(hi))
