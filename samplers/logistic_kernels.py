r"""Numba kernel of the binomial log likelihood of logistic dose-toxicity models.

For intercepts :math:`a_i`, slopes :math:`b_i` (one pair per grid point) and covariates
:math:`x_j` of the distinct doses with :math:`y_j` DLTs in :math:`n_j` patients,

.. math::

    \ell_i = \sum_j y_j \log\sigma(\eta_{ij}) + (n_j - y_j) \log\sigma(-\eta_{ij}),
    \qquad \eta_{ij} = a_i + b_i x_j,

evaluated without overflow. BLRM (:math:`x = \log(d/d^*)`) and EWOC (:math:`x = d`) are of this
form; the kernel computes the grid's likelihood without the temporaries of the numpy expression,
several times faster.

With :math:`u_j = e^{-|\eta_j|} \in (0, 1]`, :math:`\log\sigma(\eta_j) = \min(\eta_j, 0) -
\log(1 + u_j)` and :math:`\log\sigma(-\eta_j) = \log\sigma(\eta_j) - \eta_j`, so

.. math::

    \ell = \sum_j \left[n_j \min(\eta_j, 0) - (n_j - y_j)\,\eta_j\right]
    - \log \prod_j (1 + u_j)^{n_j}:

one exponential per dose and one logarithm in all, where a sum of :math:`\log\sigma` takes an
exponential and a logarithm per dose: the BLRM's and EWOC's quadratures
(:mod:`dosezoo.samplers.logistic_quadrature`) spend most of their time here. Each factor is in
:math:`(1, 2]`, raised to the whole :math:`n_j` by squarings; the product is taken into the sum
before it passes :data:`_PRODUCT_LIMIT`, so nothing overflows. Rounding
:math:`1 + u_j` errs by at most one unit in the last place of the factor, :math:`n_j` times that
in :math:`\ell`: about :math:`10^{-14}` for a hundred patients, where the densities
:math:`e^{\ell}` that the quadratures weigh err alike.
"""

import math

import numba
import numpy as np

from dosezoo.samplers.numerics import exp_without_errno, whole_within

__all__ = ["binomial_log_likelihood", "logistic_log_likelihood", "whole_counts"]


@numba.njit(cache=True, fastmath=False)
def _log_sigmoid(eta: float) -> float:
    if eta >= 0:
        return -math.log1p(math.exp(-eta))
    return eta - math.log1p(math.exp(eta))


#: The running product of the factors :math:`(1 + u_j)^{n_j}` is taken into the sum (as its
#: log) past this; a factor is at most :math:`2^{512}` (:data:`_POWER_LIMIT`), so the product
#: stays below the largest double.
_PRODUCT_LIMIT = 1e150
#: Patients at one dose above this (or a count that is not whole) take their log1p term alone.
_POWER_LIMIT = 512


@numba.njit(cache=True, error_model="numpy")
def whole_counts(n: np.ndarray) -> np.ndarray:
    """Return each count as an int where it is raised to its power (see the module), else -1.

    What :func:`binomial_log_likelihood` reads of ``n`` at every call, for a caller that
    evaluates it at many points of the same data to compute once (its ``whole``).
    """
    out = np.empty(n.size, dtype=np.int64)
    for j in range(n.size):
        out[j] = whole_within(n[j], _POWER_LIMIT)
    return out


@numba.njit(cache=True, error_model="numpy")
def binomial_log_likelihood(
    a: float,
    b: float,
    x: np.ndarray,
    n: np.ndarray,
    y: np.ndarray,
    factor: float = 1.0,
    whole: np.ndarray | None = None,
) -> float:
    r"""Return :math:`\sum_j y_j \log\sigma(\eta_j) + (n_j - y_j) \log\sigma(-\eta_j) - \log f`.

    :math:`\eta_j = a + b x_j`; see the module docstring for the one-logarithm form. The
    factor :math:`f` (at most :data:`_PRODUCT_LIMIT`; 1 by default) joins the product: a caller
    with a log term of its own saves its logarithm. ``whole`` is :func:`whole_counts` of ``n``
    (None: computed here, dose by dose).
    """
    total = 0.0
    product = factor
    for j in range(x.size):
        eta = a + b * x[j]
        u = exp_without_errno(-abs(eta))
        count = n[j]
        total += count * min(eta, 0.0) - (count - y[j]) * eta
        # numba compiles the two cases apart (the branch on None is pruned)
        if whole is None:
            power = whole_within(count, _POWER_LIMIT)
        else:
            power = whole[j]
        if power >= 0:
            product *= (1.0 + u) ** power
            if product > _PRODUCT_LIMIT:
                total -= math.log(product)
                product = 1.0
        else:
            total -= count * math.log1p(u)
    return total - math.log(product)


@numba.njit(cache=True)
def logistic_log_likelihood(
    intercept: np.ndarray, slope: np.ndarray, x: np.ndarray, n: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Return the binomial log likelihood of each (intercept, slope) pair, shape (m,)."""
    out = np.empty(intercept.size)
    for i in range(intercept.size):
        out[i] = binomial_log_likelihood(intercept[i], slope[i], x, n, y)
    return out
