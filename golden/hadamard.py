"""Walsh–Hadamard transforms for online activation rotation (the QuaRot idea).

A Hadamard matrix ``H`` (entries ±1, ``H Hᵀ = n I``) gives the orthogonal rotation
``Q = H / √n``. A linear ``y = x Wᵀ`` equals ``(x Q)(W Q)ᵀ``: the weights are rotated once
offline, the activations online, and the rotation spreads an outlier channel over all ``n``
channels so that a per-tensor int8 scale is no longer set by a few channels.

Sizes (:func:`hadamard_size_ok`): ``n = m · 2^p`` with ``m`` in {1, 12, 20, 28, 36} and
``H_n = H_m ⊗ H_(2^p)``: Sylvester's construction for the power of two (a fast butterfly,
``p`` stages of additions and subtractions) and Paley's constructions for the small factor
(I: ``m = q + 1``, ``q`` prime ≡ 3 mod 4, for 12 and 20; II: ``m = 2(q + 1)``, ``q`` prime
≡ 1 mod 4, for 28 and 36; an m × m matrix of ±1 applied as additions). SmolLM2's widths:
``down_proj``'s input 1536 = 12 · 128 is ``H_12 ⊗ H_128``, the hidden 576 = 36 · 16 is
``H_36 ⊗ H_16``.

Two transforms, both ``x @ H`` along the last axis:

- :func:`hadamard_transform` on integers is **exact** (int64, additions and subtractions
  only: what a hardware transform of integer codes computes; the output grows by
  ``log2(n)`` bits, checked against int64 overflow);
- :func:`rotate` on floats returns ``x @ H / √n`` in float64 through the same butterflies.
  **Where rounding happens**: float64 additions (relative error below ``log2(n) · 2^-53``)
  and the one multiplication by ``1/√n``; the int8 quantizer that follows rounds the result
  to codes. This is the rotation quant applies to the ``down_proj`` input before its int8
  quantizer (the unit that computes ``silu(gate) · up`` would apply it in hardware).
"""

from __future__ import annotations

import functools

import numpy as np

#: Small Hadamard orders by Paley's constructions I (q + 1, prime q ≡ 3 mod 4) and II
#: (2(q + 1), prime q ≡ 1 mod 4).
PALEY_ORDERS = (12, 20, 28, 36)


def _factor(n: int) -> tuple[int, int] | None:
    """``(m, 2^p)`` with ``n = m · 2^p``, ``m`` in {1, 12, 20}, largest power of two first."""
    if n < 1:
        return None
    for m in (1, *PALEY_ORDERS):
        if n % m == 0:
            p = n // m
            if p & (p - 1) == 0:
                return m, p
    return None


def hadamard_size_ok(n: int) -> bool:
    """Whether :func:`hadamard_matrix` has an order-``n`` matrix (``m·2^p``, ``m`` in
    :data:`PALEY_ORDERS` or 1)."""
    return _factor(n) is not None


def _check_size(n: int) -> tuple[int, int]:
    f = _factor(n)
    if f is None:
        raise ValueError(
            f"no Hadamard matrix of order {n} here: use a size m*2^p with m in 1, 12, 20, 28, "
            "36 (e.g. 1536 = 12*128, 576 = 36*16), or leave this layer unrotated"
        )
    return f


def _jacobsthal(q: int) -> np.ndarray:
    """``Q[i, j] = χ(j − i)``, χ the quadratic character mod the prime ``q``."""
    squares = {(i * i) % q for i in range(1, q)}
    chi = np.array([0] + [1 if r in squares else -1 for r in range(1, q)], dtype=np.int64)
    return chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]


@functools.lru_cache(maxsize=8)
def _paley(m: int) -> np.ndarray:
    """Order-``m`` Hadamard matrix: Paley I (``q = m − 1`` prime ≡ 3 mod 4: 12, 20) or
    Paley II (``q = m/2 − 1`` prime ≡ 1 mod 4: 28, 36)."""
    if m == 1:
        return np.ones((1, 1), dtype=np.int64)
    q = m - 1 if m in (12, 20) else m // 2 - 1
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[1:, 1:] = _jacobsthal(q)
    s[0, 1:] = 1
    if m in (12, 20):  # I: H = I + S, S skew-symmetric
        s[1:, 0] = -1
        h = np.eye(m, dtype=np.int64) + s
    else:  # II: S symmetric, H = S ⊗ [[1, -1], [-1, -1]] + I ⊗ [[1, 1], [1, -1]]
        s[1:, 0] = 1
        eye = np.eye(q + 1, dtype=np.int64)
        h = np.kron(s, [[1, -1], [-1, -1]]) + np.kron(eye, [[1, 1], [1, -1]])
    assert np.array_equal(h @ h.T, m * np.eye(m, dtype=np.int64)), m
    return h.astype(np.int64)


def hadamard_matrix(n: int) -> np.ndarray:
    """The order-``n`` Hadamard matrix ``H_m ⊗ H_(2^p)`` used here (int64, entries ±1)."""
    m, p = _check_size(n)
    syl = np.ones((1, 1), dtype=np.int64)
    while syl.shape[0] < p:
        syl = np.block([[syl, syl], [syl, -syl]])
    return np.kron(_paley(m), syl)


def hadamard_factors(n: int) -> str:
    """How order ``n`` is built, e.g. ``"H12 (Paley) x H128 (Sylvester)"``."""
    m, p = _check_size(n)
    if m == 1:
        return f"H{p} (Sylvester)"
    return f"H{m} (Paley)" if p == 1 else f"H{m} (Paley) x H{p} (Sylvester)"


def _butterflies(x: np.ndarray) -> np.ndarray:
    """``x @ H_m ⊗ H_(2^p)`` along the last axis, in ``x``'s dtype (a new array)."""
    n = x.shape[-1]
    m, p = _check_size(n)
    lead = x.shape[:-1]
    y = np.array(x, copy=True).reshape(*lead, m, p)
    h = 1
    while h < p:  # Sylvester butterflies on the last axis
        y = y.reshape(*lead, m, p // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        y = np.stack([a + b, a - b], axis=-2)
        h *= 2
    y = y.reshape(*lead, m, p)
    if m > 1:  # (H_m ⊗ H_p): mix the m blocks with H_mᵀ, additions of ±1 entries
        y = np.einsum("ac,...ab->...cb", _paley(m), y)
    return y.reshape(*lead, n)


def hadamard_transform(x: np.ndarray) -> np.ndarray:
    """Exact integer ``x @ H`` along the last axis (int64), e.g. on int8 codes."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"hadamard_transform takes integers, got {x.dtype}; use rotate")
    n = x.shape[-1]
    _check_size(n)
    big = int(np.abs(x).max(initial=0))
    if big * n >= 2**63:
        raise ValueError(f"|x| up to {big} times {n} overflows int64")
    return _butterflies(x.astype(np.int64))


def rotate(x: np.ndarray) -> np.ndarray:
    """``x @ H / √n`` along the last axis in float64 (an orthogonal rotation)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("rotate: input contains NaN or Inf")
    return _butterflies(x) * (1.0 / np.sqrt(x.shape[-1]))
