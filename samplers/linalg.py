"""Small dense linear algebra for numba kernels: Cholesky factors and solves.

The kernels work on matrices of a few rows (regression coefficients, Newton steps, proposal
scales), where a loop compiled with the kernel is cheaper than a LAPACK call and a failed
factorisation is a value (``ok``), not an exception.
"""

import math

import numpy as np
from numba import njit

#: Relative jitter :func:`jittered_cholesky` starts from, and how many tenfold increases it tries.
JITTER_START = 1e-10
JITTER_STEPS = 30


@njit(cache=True, error_model="numpy")
def cholesky(a):
    """Lower Cholesky factor ``L`` of a symmetric matrix (``L L^T = a``), and whether it exists.

    ``ok`` is False when ``a`` is not positive definite; ``L`` is then incomplete.
    """
    d = a.shape[0]
    lower = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1):
            total = a[i, j]
            for k in range(j):
                total -= lower[i, k] * lower[j, k]
            if i == j:
                if not total > 0.0:
                    return lower, False
                lower[i, i] = math.sqrt(total)
            else:
                lower[i, j] = total / lower[j, j]
    return lower, True


@njit(cache=True, error_model="numpy")
def forward_substitution(lower, b):
    """Solve ``L z = b`` for a lower-triangular ``L``."""
    d = b.size
    z = np.empty(d)
    for i in range(d):
        total = b[i]
        for k in range(i):
            total -= lower[i, k] * z[k]
        z[i] = total / lower[i, i]
    return z


@njit(cache=True, error_model="numpy")
def cholesky_solve(lower, b):
    """Solve ``L L^T y = b`` by forward then back substitution."""
    d = b.size
    z = forward_substitution(lower, b)
    y = np.empty(d)
    for i in range(d - 1, -1, -1):
        total = z[i]
        for k in range(i + 1, d):
            total -= lower[k, i] * y[k]
        y[i] = total / lower[i, i]
    return y


@njit(cache=True, error_model="numpy")
def jittered_cholesky(a):
    """Cholesky factor of ``a``, adding ``jitter * (1 + a_kk)`` to its diagonal if it must.

    The jitter starts at ``JITTER_START`` and grows tenfold until the factor exists (a matrix
    positive definite up to rounding, such as a weighted sample covariance).
    """
    d = a.shape[0]
    lower, ok = cholesky(a)
    jitter = JITTER_START
    for _ in range(JITTER_STEPS):
        if ok:
            break
        shifted = a.copy()
        for k in range(d):
            shifted[k, k] += jitter * (1.0 + a[k, k])
        lower, ok = cholesky(shifted)
        jitter *= 10.0
    return lower
