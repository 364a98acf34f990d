r"""Numba kernel of the binomial log likelihood of logistic dose-toxicity models.

For intercepts :math:`a_i`, slopes :math:`b_i` (one pair per grid point) and covariates
:math:`x_j` of the distinct doses with :math:`y_j` DLTs in :math:`n_j` patients,

.. math::

    \ell_i = \sum_j y_j \log\sigma(\eta_{ij}) + (n_j - y_j) \log\sigma(-\eta_{ij}),
    \qquad \eta_{ij} = a_i + b_i x_j,

with :math:`\log\sigma(\eta) = -\log(1 + e^{-\eta})` evaluated without overflow. BLRM
(:math:`x = \log(d/d^*)`) and EWOC (:math:`x = d`) are of this form; the kernel computes the
grid's likelihood without the temporaries of the numpy expression, several times faster.
"""

import math

import numba
import numpy as np

__all__ = ["logistic_log_likelihood"]


@numba.njit(cache=True, fastmath=False)
def _log_sigmoid(eta: float) -> float:
    if eta >= 0:
        return -math.log1p(math.exp(-eta))
    return eta - math.log1p(math.exp(eta))


@numba.njit(cache=True)
def logistic_log_likelihood(
    intercept: np.ndarray, slope: np.ndarray, x: np.ndarray, n: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Return the binomial log likelihood of each (intercept, slope) pair, shape (m,)."""
    out = np.zeros(intercept.size)
    for i in range(intercept.size):
        total = 0.0
        for j in range(x.size):
            eta = intercept[i] + slope[i] * x[j]
            log_p = _log_sigmoid(eta)
            # log(1 - p) = log p - eta
            total += y[j] * log_p + (n[j] - y[j]) * (log_p - eta)
        out[i] = total
    return out
