"""The numba kernels' Cholesky factor and solves agree with NumPy; failures are values."""

import numpy as np

from dosezoo.samplers.linalg import cholesky, cholesky_solve, jittered_cholesky


def _spd(d, seed):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


def test_cholesky_and_solve_agree_with_numpy():
    for d in (1, 2, 5, 7):
        a = _spd(d, d)
        lower, ok = cholesky(a)
        assert ok
        np.testing.assert_allclose(lower, np.linalg.cholesky(a), rtol=1e-12, atol=1e-14)
        b = np.arange(1.0, d + 1.0)
        np.testing.assert_allclose(cholesky_solve(lower, b), np.linalg.solve(a, b), rtol=1e-10)


def test_cholesky_reports_a_matrix_that_is_not_positive_definite():
    _, ok = cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))
    assert not ok


def test_jittered_cholesky_factors_a_singular_covariance():
    v = np.array([1.0, 2.0, 3.0])
    singular = np.outer(v, v)  # rank one
    assert not cholesky(singular)[1]
    lower = jittered_cholesky(singular)
    assert np.all(np.isfinite(lower))
    np.testing.assert_allclose(lower @ lower.T, singular, atol=1e-6)
