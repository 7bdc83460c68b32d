"""golden.hadamard: Hadamard matrices of order m*2^p (m in 1, 12, 20, 28, 36), the exact integer
transform and the float rotation (checked against a plain matrix product)."""

from __future__ import annotations

import numpy as np
import pytest

from golden import hadamard

SIZES = [1, 2, 8, 12, 20, 24, 28, 36, 40, 56, 96, 576, 1536]


@pytest.mark.parametrize("n", SIZES)
def test_matrix_is_hadamard(n):
    h = hadamard.hadamard_matrix(n)
    assert h.shape == (n, n) and set(np.unique(h)) <= {-1, 1}
    assert np.array_equal(h @ h.T, n * np.eye(n, dtype=np.int64))


@pytest.mark.parametrize("n", SIZES)
def test_integer_transform_is_the_exact_matrix_product(n):
    rng = np.random.default_rng(n)
    x = rng.integers(-128, 128, size=(3, 5, n))
    x[0, 0] = 127  # the int8 extremes
    x[0, 1] = -127
    got = hadamard.hadamard_transform(x.astype(np.int8))
    assert got.dtype == np.int64
    assert np.array_equal(got, x @ hadamard.hadamard_matrix(n))


@pytest.mark.parametrize("n", [12, 128, 1536])
def test_rotation_is_orthogonal_and_inverts_itself_with_the_transpose(n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, n))
    h = hadamard.hadamard_matrix(n).astype(np.float64)
    r = hadamard.rotate(x)
    np.testing.assert_allclose(r, x @ h / np.sqrt(n), rtol=0, atol=1e-12 * np.abs(x).sum())
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), np.linalg.norm(x, axis=1), rtol=1e-12)
    np.testing.assert_allclose(r @ h.T / np.sqrt(n), x, atol=1e-12)
    # A linear is unchanged: (x Q)(W Q)^T == x W^T.
    w = rng.standard_normal((3, n))
    np.testing.assert_allclose(r @ hadamard.rotate(w).T, x @ w.T, atol=1e-9)


def test_an_outlier_channel_is_spread_over_every_channel():
    x = np.zeros(1536)
    x[7] = 1000.0
    assert np.allclose(np.abs(hadamard.rotate(x)), 1000.0 / np.sqrt(1536))


def test_factors_name_the_construction():
    assert hadamard.hadamard_factors(1536) == "H12 (Paley) x H128 (Sylvester)"
    assert hadamard.hadamard_factors(64) == "H64 (Sylvester)"
    assert hadamard.hadamard_factors(576) == "H36 (Paley) x H16 (Sylvester)"
    assert hadamard.hadamard_factors(28) == "H28 (Paley)"
    assert hadamard.hadamard_size_ok(576) and not hadamard.hadamard_size_ok(44)


@pytest.mark.parametrize("n", [0, 3, 9, 44, 100])
def test_unsupported_sizes_are_refused_naming_the_sizes(n):
    with pytest.raises(ValueError, match=r"order .*m\*2\^p with m in 1, 12, 20, 28, 36"):
        hadamard.hadamard_matrix(n)


def test_bad_inputs():
    with pytest.raises(ValueError, match="takes integers"):
        hadamard.hadamard_transform(np.ones(8))
    with pytest.raises(ValueError, match="overflows int64"):
        hadamard.hadamard_transform(np.full(8, 2**61, dtype=np.int64))
    with pytest.raises(ValueError, match="NaN or Inf"):
        hadamard.rotate(np.array([1.0, np.nan]))
