r"""The Weibull accelerated failure time model for censored time-to-event dose-response data.

The Weibull D-optimal paper ("adaptive optimal designs for
dose-finding studies with Weibull time-to-event outcomes"), eqs (1)-(6). With regressors
:math:`f(x) = (1, x, \dots, x^d)` of the dose :math:`x \in \mathcal{X} = [0, 1]` (the paper's
quadratic model is :math:`d = 2`, eq 5) and, optionally, covariates :math:`z`,

.. math::

    \log T = \beta' f(x) + \gamma' z + b W, \qquad
    f_W(w) = \exp(w - e^w), \quad S_W(w) = \exp(-e^w),

:math:`W` standard minimum extreme value, :math:`b > 0`: :math:`T` is Weibull with shape
:math:`1/b` and scale :math:`e^{\mu}`, :math:`\mu = \beta' f(x)`, so
:math:`\operatorname{Median}(T \mid x) = e^{\mu} (\log 2)^b` and the hazard increases for
:math:`b < 1`. A patient followed up to :math:`c` contributes :math:`t = \min(T, c)` and
:math:`\delta = 1\{T \le c\}`; with :math:`w = (\log t - \mu) / b` the log-likelihood is (eq 2)

.. math::

    \ell(\theta) = \sum_i \delta_i (w_i - \log b) - e^{w_i}, \qquad \theta = (\beta, b).

Score and Hessian (with :math:`\partial w / \partial \beta = -f / b`,
:math:`\partial w / \partial b = -w / b`):

.. math::

    \partial_\beta \ell &= \tfrac{1}{b} \sum_i (e^{w_i} - \delta_i) f_i, \qquad
    \partial_b \ell = \tfrac{1}{b} \sum_i \{(e^{w_i} - \delta_i) w_i - \delta_i\}, \\
    \partial^2_{\beta\beta} \ell &= -\tfrac{1}{b^2} \sum_i e^{w_i} f_i f_i', \quad
    \partial^2_{\beta b} \ell = -\tfrac{1}{b^2} \sum_i \{e^{w_i} (1 + w_i) - \delta_i\} f_i, \\
    \partial^2_{bb} \ell &= \tfrac{1}{b^2} \sum_i \{\delta_i - e^{w_i} w_i^2
        - 2 (e^{w_i} - \delta_i) w_i\}.

The observed information is :math:`-\partial^2 \ell` at the MLE.

Expected information under type I censoring (eq 6, prefactor derived)
----------------------------------------------------------------------
At dose :math:`x` with follow-up :math:`\tau`, :math:`L_x = (\log \tau - \mu_x) / b` and
:math:`w_x = \min(W, L_x)`. Taking expectations of the Hessian, with
:math:`E(e^{w_x}) = E(\delta_x)` (because :math:`e^W \sim \mathrm{Exp}(1)`) and
:math:`E\{(e^{w_x} - \delta_x) w_x\} = E(\delta_x)` (the score of :math:`b` has mean zero),

.. math::

    M_x(\theta) = \frac{1}{b^2} \begin{pmatrix} A_x f f' & B_x f \\ B_x f' & E(\delta_x) + D_x
    \end{pmatrix}, \qquad
    \begin{aligned}
    A_x &= E(\delta_x) = 1 - \exp(-e^{L_x}), \\
    B_x &= E(w_x e^{w_x}) = I_1(e^{L_x}) + L_x e^{L_x - e^{L_x}}, \\
    D_x &= E(w_x^2 e^{w_x}) = I_2(e^{L_x}) + L_x^2 e^{L_x - e^{L_x}},
    \end{aligned}

with :math:`I_k(s) = \int_{-\infty}^{\log s} z^k e^{2z - e^z} dz = \int_0^s u (\log u)^k
e^{-u} du`. **The prefactor is** :math:`1/b^2`: the paper prints :math:`1/b` in eq 6 and
:math:`1/b^2` in eq 3; both derivatives of :math:`w` carry a :math:`1/b`, so every second
derivative carries :math:`1/b^2` (the test suite checks it against the Monte Carlo covariance of
the score, which :math:`1/b` fails by the factor :math:`b`). D-optimal designs and D-efficiencies
do not depend on the prefactor; eq 8, which adds the expected information of a new stage to the
*observed* information of the earlier ones, does.

:math:`I_k` (within 1e-12 of adaptive quadrature, which
``test_censored_moments_match_quadrature`` checks) is computed
for :math:`s \le 3` by the series :math:`\sum_n (-1)^n / n! \int_0^s u^{n+1} (\log u)^k du`
(each term in closed form), above by :math:`I_k(\infty) - e^{-s} \int_0^\infty (s + t)
\log^k(s + t) e^{-t} dt` with Gauss-Laguerre quadrature (24 nodes up to :math:`s = 6`, 12 up to
10, 8 up to 40, none beyond), where :math:`I_1(\infty) = \Gamma'(2) = 1 - \gamma_E` and
:math:`I_2(\infty) = \Gamma''(2) = (1 - \gamma_E)^2 + \pi^2/6 - 1`. Without censoring
(:math:`\tau = \infty`): :math:`A = 1`, :math:`B = 1 - \gamma_E`,
:math:`D = \pi^2/6 - 1 + (1 - \gamma_E)^2`, and :math:`M_x` does not depend on :math:`\beta`.
The derivatives in :math:`L` (for the designs' continuous refinement) are
:math:`A' = e^{L - e^L}`, :math:`B' = (1 + L) e^{L - e^L}`, :math:`D' = (2L + L^2) e^{L - e^L}`.

Priors of the PyMC model (weakly informative, documented choices; not in the paper)
-----------------------------------------------------------------------------------
:math:`\beta_j \sim N(m_j, s_j^2)` with :math:`m = 0`, :math:`s = 10` by default (on the
log-time scale: a coefficient of 10 is a 22,000-fold change of the median over the dose range),
covariate coefficients :math:`N(0, 10^2)`, and :math:`b \sim \log N(\log 1, 1)` (median 1, the
exponential model; 95% prior interval (0.14, 7.1), covering the paper's 0.4-1.5). Time units
are the user's; set ``beta_prior_mean[0]`` near the log of a typical event time when the
times are far from 1. The likelihood is ``pm.Censored(pm.Weibull(1/b, exp(mu)), upper=c)``,
observed ``time``, with :math:`c_i = t_i` for a censored patient and the follow-up
(``follow_up``, or :math:`\infty`) for one with an event.
"""

import itertools
import math
import time as clock
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from numba import njit
from numpy.polynomial.laguerre import laggauss

from dosezoo.checks import (
    doses_within,
    integer,
    number_array,
    positive_number,
    real_array,
    real_number,
)
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import DataError
from dosezoo.inference import random_generator
from dosezoo.models.base import DoseModel, engine
from dosezoo.posterior import DosePosterior, Sampling
from dosezoo.samplers.linalg import cholesky, cholesky_solve

if TYPE_CHECKING:
    import pymc as pm


__all__ = [
    "EULER_GAMMA",
    "MLENotFound",
    "WeibullAFT",
    "WeibullMLE",
    "WeibullPosterior",
    "censored_moments",
    "information_kernel",
]

#: Euler's constant, the paper's gamma.
EULER_GAMMA = 0.5772156649015329
_I1_INF = 1.0 - EULER_GAMMA
_I2_INF = (1.0 - EULER_GAMMA) ** 2 + math.pi**2 / 6.0 - 1.0
_LAGUERRE_T, _LAGUERRE_W = laggauss(24)
_LAGUERRE_T12, _LAGUERRE_W12 = laggauss(12)
_LAGUERRE_T8, _LAGUERRE_W8 = laggauss(8)
_SERIES_LIMIT = 3.0
_SERIES_TERMS = 40
#: Beyond it, exp(-s) < 5e-18: the censored moments equal the uncensored ones.
_TAIL_LIMIT = 40.0
#: Status codes of the Newton kernel.
_CONVERGED, _MAX_ITER, _DIVERGED = 0, 1, 2


class MLENotFound(DataError):
    """The maximum likelihood estimate does not exist (or was not found) for these data."""


# ---------------------------------------------------------------------------- kernels


@njit(cache=True)
def _moments(level: float) -> tuple[float, float, float]:
    """:math:`(A, B, D)` at :math:`L` (``inf``: no censoring)."""
    if level == np.inf:
        return 1.0, _I1_INF, _I2_INF
    if level < -700.0:
        return 0.0, 0.0, 0.0
    s = math.exp(level)
    if s <= _SERIES_LIMIT:
        i1 = 0.0
        i2 = 0.0
        term = s * s  # (-1)^n s^(n+2) / n!
        for n in range(_SERIES_TERMS):
            if n > 0:
                term *= -s / n
            m = n + 2.0
            d1 = term * (level / m - 1.0 / (m * m))
            d2 = term * (level * level / m - 2.0 * level / (m * m) + 2.0 / (m * m * m))
            i1 += d1
            i2 += d2
            if n > 2 and abs(d1) <= 1e-17 * abs(i1) and abs(d2) <= 1e-17 * abs(i2):
                break
    elif s >= _TAIL_LIMIT:
        i1 = _I1_INF
        i2 = _I2_INF
    else:
        # Gauss-Laguerre for the upper tail; fewer nodes suffice further out (error < 1e-15).
        if s <= 6.0:
            nodes, weights = _LAGUERRE_T, _LAGUERRE_W
        elif s <= 10.0:
            nodes, weights = _LAGUERRE_T12, _LAGUERRE_W12
        else:
            nodes, weights = _LAGUERRE_T8, _LAGUERRE_W8
        t1 = 0.0
        t2 = 0.0
        for j in range(nodes.size):
            u = s + nodes[j]
            lu = math.log(u)
            t1 += weights[j] * u * lu
            t2 += weights[j] * u * lu * lu
        tail = math.exp(-s)
        i1 = _I1_INF - tail * t1
        i2 = _I2_INF - tail * t2
    edge = math.exp(level - s)
    return -math.expm1(-s), i1 + level * edge, i2 + level * level * edge


@njit(cache=True)
def _moment_slopes(level: float) -> tuple[float, float, float]:
    """Differentiate :math:`(A, B, D)` in :math:`L`."""
    if level == np.inf or level < -700.0:
        return 0.0, 0.0, 0.0
    edge = math.exp(level - math.exp(level))
    return edge, (1.0 + level) * edge, (2.0 * level + level * level) * edge


@njit(cache=True)
def _unit_information(
    doses: np.ndarray, theta: np.ndarray, log_tau: float, with_slope: bool
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`M_x(\theta)` per dose, (n, k, k), and its derivative in :math:`x` (or zeros)."""
    k = theta.size
    p = k - 1
    b = theta[p]
    scale = 1.0 / (b * b)
    n = doses.size
    out = np.zeros((n, k, k))
    slope = np.zeros((n, k, k))
    f = np.empty(p)
    df = np.empty(p)
    for i in range(n):
        x = doses[i]
        mu = 0.0
        dmu = 0.0
        power = 1.0
        for j in range(p):
            f[j] = power
            df[j] = j * x ** (j - 1) if j > 0 else 0.0
            mu += theta[j] * power
            dmu += theta[j] * df[j]
            power *= x
        level = np.inf if log_tau == np.inf else (log_tau - mu) / b
        a, bb, d = _moments(level)
        for r in range(p):
            for c in range(p):
                out[i, r, c] = scale * a * f[r] * f[c]
            out[i, r, p] = scale * bb * f[r]
            out[i, p, r] = out[i, r, p]
        out[i, p, p] = scale * (a + d)
        if with_slope:
            da, db, dd = _moment_slopes(level)
            dlevel = -dmu / b if level != np.inf else 0.0
            for r in range(p):
                for c in range(p):
                    slope[i, r, c] = scale * (
                        da * dlevel * f[r] * f[c] + a * (df[r] * f[c] + f[r] * df[c])
                    )
                slope[i, r, p] = scale * (db * dlevel * f[r] + bb * df[r])
                slope[i, p, r] = slope[i, r, p]
            slope[i, p, p] = scale * (da + dd) * dlevel
    return out, slope


@njit(cache=True)
def information_kernel(
    doses: np.ndarray, thetas: np.ndarray, log_tau: float, with_slope: bool
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`M_x(\theta_s)` and :math:`\partial M_x / \partial x` (zeros unless ``with_slope``).

    The numba kernel behind :meth:`WeibullAFT.information_points`, callable from other
    kernels (the optimal designs'): ``doses`` (n,), ``thetas`` (S, k) with :math:`b > 0`,
    ``log_tau`` (``inf``: no censoring); returns two arrays (S, n, k, k).
    """
    count, k = thetas.shape
    out = np.empty((count, doses.size, k, k))
    slope = np.empty((count, doses.size, k, k))
    for s in range(count):
        out[s], slope[s] = _unit_information(doses, thetas[s], log_tau, with_slope)
    return out, slope


@njit(cache=True)
def _loglik_derivatives(
    design: np.ndarray, log_time: np.ndarray, event: np.ndarray, theta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    r"""Log-likelihood, score and Hessian in :math:`(\beta, b)`."""
    n, p = design.shape
    k = p + 1
    b = theta[p]
    loglik = 0.0
    score = np.zeros(k)
    hessian = np.zeros((k, k))
    for i in range(n):
        mu = 0.0
        for j in range(p):
            mu += design[i, j] * theta[j]
        w = (log_time[i] - mu) / b
        ew = math.exp(w)
        d = event[i]
        loglik += d * (w - math.log(b)) - ew
        g = ew - d
        for r in range(p):
            score[r] += g * design[i, r]
            for c in range(r, p):
                hessian[r, c] -= ew * design[i, r] * design[i, c]
            hessian[r, p] -= (ew * (1.0 + w) - d) * design[i, r]
        score[p] += g * w - d
        hessian[p, p] += d - ew * w * w - 2.0 * g * w
    for r in range(k):
        score[r] /= b
        for c in range(r, k):
            hessian[r, c] /= b * b
            hessian[c, r] = hessian[r, c]
    return loglik, score, hessian


@njit(cache=True)
def _cholesky_solve(matrix: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, bool]:
    """Solve ``matrix @ x = rhs`` for a small SPD matrix; ``ok`` False when it is not SPD."""
    lower, ok = cholesky(matrix)
    if not ok:
        return rhs.copy(), False
    return cholesky_solve(lower, rhs), True


@njit(cache=True)
def _newton(
    design: np.ndarray,
    log_time: np.ndarray,
    event: np.ndarray,
    start: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    max_iter: int,
    tol: float,
    bound: float,
) -> tuple[np.ndarray, float, int, int]:
    r"""Damped Newton (Levenberg-Marquardt) on :math:`\phi = (\beta, \log b)`.

    Maximises :math:`\ell(\theta) - \tfrac12 \sum_j \pi_j (\phi_j - m_j)^2` (``prior_precision``
    :math:`\pi` zero: the likelihood). Returns the estimate, the objective, a status (0
    converged, 1 no convergence in ``max_iter`` iterations, 2 diverged: the fitted location
    :math:`f(x_i)^\top \beta` of a patient beyond ``bound`` in absolute value, or :math:`b`
    outside :math:`(10^{-8}, 10^8)`) and the iterations.

    Divergence is judged on the curve at the patients, on the log-time scale, not on the
    coefficients: a coefficient's size depends on the dose unit (:math:`\beta_2` of a quadratic
    is 28,000 on a range of 0.01 for a curve that is 2.8 on a range of 1), the curve's does not.
    The design has full column rank (:meth:`WeibullAFT._check_estimable`, or the prior), so
    coefficients that run off take the curve off at some patient.
    """
    k = start.size
    p = k - 1
    theta = start.copy()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loglik, score, hessian = _loglik_derivatives(design, log_time, event, theta)
        b = theta[p]
        grad = score.copy()
        grad[p] = b * score[p]
        neg = -hessian
        for r in range(p):
            neg[r, p] *= b
            neg[p, r] *= b
        neg[p, p] = -(b * b * hessian[p, p] + b * score[p])
        for r in range(k):
            phi = theta[r] if r < p else math.log(b)
            loglik -= 0.5 * prior_precision[r] * (phi - prior_mean[r]) ** 2
            grad[r] -= prior_precision[r] * (phi - prior_mean[r])
            neg[r, r] += prior_precision[r]
        return loglik, grad, neg

    value, grad, neg = objective(theta)
    damping = 0.0
    for iteration in range(1, max_iter + 1):
        accepted = False
        for _ in range(60):
            system = neg.copy()
            for r in range(k):
                system[r, r] += damping * (1.0 + abs(neg[r, r]))
            step, ok = _cholesky_solve(system, grad)
            if not ok:
                damping = max(2.0 * damping, 1e-6) * 4.0
                continue
            trial = theta.copy()
            for r in range(p):
                trial[r] += step[r]
            trial[p] = theta[p] * math.exp(min(max(step[p], -5.0), 5.0))
            new_value, new_grad, new_neg = objective(trial)
            if np.isfinite(new_value) and new_value >= value - 1e-12 * abs(value):
                accepted = True
                break
            damping = max(2.0 * damping, 1e-6) * 4.0
        if not accepted:
            return theta, value, _MAX_ITER, iteration
        theta = trial
        change = 0.0
        for r in range(k):
            change = max(change, abs(step[r]))
        improvement = new_value - value
        value, grad, neg = new_value, new_grad, new_neg
        damping = damping / 10.0 if damping > 1e-12 else 0.0
        for i in range(design.shape[0]):
            location = 0.0
            for r in range(p):
                location += design[i, r] * theta[r]
            if abs(location) > bound:
                return theta, value, _DIVERGED, iteration
        if theta[p] < 1e-8 or theta[p] > 1e8:
            return theta, value, _DIVERGED, iteration
        if change < tol and improvement < 1e-9:
            return theta, value, _CONVERGED, iteration
    return theta, value, _MAX_ITER, max_iter


def censored_moments(level: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Return the expectations :math:`A, B, D` of eq 6 at :math:`L = (\log \tau - \mu) / b`.

    Parameters
    ----------
    level : float or array_like
        :math:`L`; ``inf`` for no censoring.

    Returns
    -------
    tuple of numpy.ndarray
        :math:`A = E(\delta) = E(e^{w})`, :math:`B = E(w e^{w})`, :math:`D = E(w^2 e^{w})`
        for :math:`w = \min(W, L)`, each of the shape of ``level``.
    """
    levels = np.asarray(level, dtype=float)
    flat = levels.ravel()
    out = np.array([_moments(float(v)) for v in flat]).reshape(*levels.shape, 3)
    return out[..., 0], out[..., 1], out[..., 2]


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class WeibullMLE:
    r"""The maximum likelihood estimate of a :class:`WeibullAFT` fit.

    Attributes
    ----------
    theta : numpy.ndarray
        :math:`(\beta_0, \dots, \beta_d, \gamma, b)`, shape (k,).
    names : tuple of str
        The name of each component.
    loglik : float
        The maximised log-likelihood.
    observed_information : numpy.ndarray
        :math:`-\partial^2 \ell` at the MLE, in :math:`(\beta, b)`, shape (k, k).
    n_patients, n_events : int
        Patients and events of the data.
    iterations : int
        Newton iterations.
    penalised : bool
        Whether this is the posterior mode (the MLE's fallback) rather than the MLE; its
        ``observed_information`` then includes the prior precision.
    """

    theta: np.ndarray
    names: tuple[str, ...]
    loglik: float
    observed_information: np.ndarray
    n_patients: int
    n_events: int
    iterations: int
    penalised: bool = False

    @property
    def covariance(self) -> np.ndarray:
        """Inverse of the observed information (asymptotic covariance), (k, k)."""
        return np.linalg.inv(self.observed_information)

    @property
    def se(self) -> np.ndarray:
        """Standard errors, (k,)."""
        return np.sqrt(np.diag(self.covariance))

    @property
    def beta(self) -> np.ndarray:
        """The regression coefficients."""
        return self.theta[:-1]

    @property
    def b(self) -> float:
        """The scale :math:`b`."""
        return float(self.theta[-1])

    def as_dict(self) -> dict[str, float]:
        """Estimates and standard errors by name (``<name>`` and ``se_<name>``)."""
        se = self.se
        return {name: float(v) for name, v in zip(self.names, self.theta, strict=True)} | {
            f"se_{name}": float(s) for name, s in zip(self.names, se, strict=True)
        }


@dataclass(frozen=True, eq=False)
class WeibullPosterior(DosePosterior):
    r"""A :class:`~dosezoo.posterior.DosePosterior` holding the parameter points and the curves.

    The doses are continuous, so there are no per-level rates (``rates`` is empty, as for the
    3PND); the parameters and the median curve on the model's dose grid are here.

    Attributes
    ----------
    theta : numpy.ndarray
        Points :math:`(\beta, b)`, shape (m, k): posterior draws (NUTS), or draws of the
        Laplace approximation (engine ``"laplace"``).
    names : tuple of str
        Name of each column of ``theta``.
    dose_grid : tuple of float
        The doses of ``median_time``.
    median_time : numpy.ndarray
        Median time to event per point and dose of ``dose_grid``, (m, G).
    mode : WeibullMLE or None
        The posterior mode and its information, when the posterior is its Laplace
        approximation.
    """

    theta: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    names: tuple[str, ...] = ()
    dose_grid: tuple[float, ...] = ()
    median_time: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    mode: WeibullMLE | None = None


# ---------------------------------------------------------------------------- model


def _as_floats(owner: str, name: str, value: object, size: int) -> tuple[float, ...]:
    if isinstance(value, str | bytes):
        raise ValueError(f"{owner}: {name} must be a number or a sequence of numbers")
    if isinstance(value, Sequence | np.ndarray):
        values = tuple(real_number(owner, f"{name}[{i}]", v) for i, v in enumerate(value))
        if len(values) != size:
            raise ValueError(f"{owner}: {name} must have {size} values, got {len(values)}")
        return values
    return (real_number(owner, name, value),) * size


@dataclass(frozen=True)
class WeibullAFT(DoseModel):
    r"""Weibull AFT model, polynomial in dose, with right censoring (the Weibull D-optimal paper).

    Parameters
    ----------
    degree : int
        Degree :math:`d` of the polynomial in dose (2, the paper's quadratic model).
    dose_range : (float, float)
        The design space :math:`\mathcal{X} = [x_{lo}, x_{hi}]` (closed; [0, 1]).
    covariates : tuple of str
        Covariate columns of the data entering :math:`\log T` linearly (none by default;
        optimal designs need a model without covariates).
    dose_grid : sequence of float, optional
        Doses of the ``median_time`` deterministic (21 points on the range by default).
    beta_prior_mean, beta_prior_sd : float or sequence of float
        Normal prior of the dose coefficients :math:`\beta_0, \dots, \beta_d` (0 and 10).
        The coefficients carry the dose unit (:math:`\beta_j` scales as the unit to the
        :math:`-j`), so the default sd of 10 is vague for a design space of length about 1;
        for a range of length :math:`L`, give sds of :math:`10 / L^j` for the same prior on
        the curve. The MLE does not depend on the unit; the prior, and so the posterior mode
        the adaptive designs fall back to when there is no MLE, does.
    b_prior_median, b_prior_sigma : float
        Log-normal prior of :math:`b` (median 1, log-scale sd 1).
    follow_up : float, optional
        Administrative censoring time of the trial: the censoring time of patients with an
        event in posterior predictive replicates (none: their replicates are uncensored,
        and the predictive checks compare the times alone, not the event counts).

    Examples
    --------
    >>> model = WeibullAFT()
    >>> theta = {"beta": (1.9, 0.6, 2.8), "b": EULER_GAMMA}
    >>> round(float(model.event_probability(0.5, theta, tau=14.887)), 3)
    0.507
    """

    model_name: ClassVar[str] = "WeibullAFT"
    outcomes: ClassVar[tuple[str, ...]] = ("time", "event")
    default_engine: ClassVar[str] = "nuts"
    fast_engine: ClassVar[str | None] = "laplace"
    min_fit_patients: ClassVar[int] = 1

    degree: int = 2
    _: KW_ONLY
    dose_range: tuple[float, float] = (0.0, 1.0)
    covariates: tuple[str, ...] = ()
    dose_grid: Sequence[float] | None = None
    beta_prior_mean: float | Sequence[float] = 0.0
    beta_prior_sd: float | Sequence[float] = 10.0
    b_prior_median: float = 1.0
    b_prior_sigma: float = 1.0
    follow_up: float | None = None

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "WeibullAFT"
        degree = integer(owner, "degree", self.degree, minimum=0)
        if isinstance(self.dose_range, str) or len(self.dose_range) != 2:
            raise ValueError(
                f"{owner}: dose_range must be a pair (lo, hi), got {self.dose_range!r}"
            )
        lo = real_number(owner, "dose_range[0]", self.dose_range[0])
        hi = real_number(owner, "dose_range[1]", self.dose_range[1])
        if not lo < hi:
            raise ValueError(f"{owner}: dose_range must have lo < hi, got {self.dose_range!r}")
        if isinstance(self.covariates, str):
            raise ValueError(f"{owner}: covariates must be a sequence of column names")
        covariates = tuple(self.covariates)
        reserved = {"dose", "time", "event"}
        for name in covariates:
            if not isinstance(name, str) or not name or name in reserved:
                raise ValueError(
                    f"{owner}: covariates must be column names other than dose, time and "
                    f"event, got {name!r}"
                )
        if len(set(covariates)) != len(covariates):
            raise ValueError(f"{owner}: covariates must not repeat a column, got {covariates!r}")
        grid = (
            tuple(np.linspace(lo, hi, 21).tolist())
            if self.dose_grid is None
            else tuple(
                real_number(owner, f"dose_grid[{i}]", v) for i, v in enumerate(self.dose_grid)
            )
        )
        if not grid or any(not lo <= x <= hi for x in grid):
            raise ValueError(f"{owner}: dose_grid must be non-empty and inside dose_range {lo, hi}")
        if any(b <= a for a, b in itertools.pairwise(grid)):
            raise ValueError(f"{owner}: dose_grid must be strictly increasing, got {grid!r}")
        size = degree + 1
        prior_sd = _as_floats(owner, "beta_prior_sd", self.beta_prior_sd, size)
        for i, sd in enumerate(prior_sd):
            if sd <= 0:
                raise ValueError(f"{owner}: beta_prior_sd[{i}] must be > 0, got {sd!r}")
        values = {
            "degree": degree,
            "dose_range": (lo, hi),
            "covariates": covariates,
            "dose_grid": grid,
            "beta_prior_mean": _as_floats(owner, "beta_prior_mean", self.beta_prior_mean, size),
            "beta_prior_sd": prior_sd,
            "b_prior_median": positive_number(owner, "b_prior_median", self.b_prior_median),
            "b_prior_sigma": positive_number(owner, "b_prior_sigma", self.b_prior_sigma),
            "follow_up": (
                None
                if self.follow_up is None
                else positive_number(owner, "follow_up", self.follow_up)
            ),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ parameters

    def parameters(self) -> dict[str, Any]:
        """Return the options as a plain dict (recorded in every fit's attributes)."""
        return {
            "degree": self.degree,
            "dose_range": list(self.dose_range),
            "covariates": list(self.covariates),
            "dose_grid": list(self.grid),
            "beta_prior_mean": self.prior_mean.tolist(),
            "beta_prior_sd": self.prior_sd.tolist(),
            "b_prior_median": self.b_prior_median,
            "b_prior_sigma": self.b_prior_sigma,
            "follow_up": self.follow_up,
        }

    @property
    def grid(self) -> tuple[float, ...]:
        """The doses of the ``median_time`` deterministic (the validated ``dose_grid``)."""
        return tuple(self.dose_grid or ())

    @property
    def prior_mean(self) -> np.ndarray:
        """Prior means of the dose coefficients, (d + 1,)."""
        return np.atleast_1d(np.asarray(self.beta_prior_mean, dtype=float))

    @property
    def prior_sd(self) -> np.ndarray:
        """Prior standard deviations of the dose coefficients, (d + 1,)."""
        return np.atleast_1d(np.asarray(self.beta_prior_sd, dtype=float))

    @property
    def x_min(self) -> float:
        """The lowest dose of the design space."""
        return self.dose_range[0]

    @property
    def x_max(self) -> float:
        """The highest dose of the design space."""
        return self.dose_range[1]

    @property
    def n_coefficients(self) -> int:
        """Dose coefficients :math:`d + 1`."""
        return self.degree + 1

    @property
    def n_parameters(self) -> int:
        """Parameters :math:`k`: the coefficients, covariate effects and :math:`b`."""
        return self.degree + 2 + len(self.covariates)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """``beta_0, ..., beta_d``, ``gamma_<covariate>`` ..., ``b``."""
        return (
            *(f"beta_{j}" for j in range(self.n_coefficients)),
            *(f"gamma_{name}" for name in self.covariates),
            "b",
        )

    def theta(self, theta: Mapping[str, Any] | Sequence[float] | np.ndarray) -> np.ndarray:
        r"""Return parameters as the vector :math:`(\beta, \gamma, b)`, shape (k,).

        Parameters
        ----------
        theta : mapping or array_like
            ``{"beta": (...), "b": ...}`` (and ``"gamma"`` for covariates), or the vector.

        Raises
        ------
        ValueError
            For a wrong length, a non-finite value or :math:`b \le 0`.
        """
        if isinstance(theta, Mapping):
            unknown = sorted(set(theta) - {"beta", "gamma", "b"})
            if unknown:
                raise ValueError(f"WeibullAFT: unknown parameter {unknown[0]!r} in theta")
            needed = ("beta", "gamma", "b") if self.covariates else ("beta", "b")
            missing = [name for name in needed if name not in theta]
            if missing:
                raise ValueError(
                    f"WeibullAFT: theta has no {missing[0]!r} (it needs {', '.join(needed)})"
                )
            sizes = {"beta": self.n_coefficients, "gamma": len(self.covariates), "b": 1}
            parts = []
            for name in needed:
                part = real_array("WeibullAFT", f"theta[{name!r}]", theta[name])
                if part.size != sizes[name]:
                    raise ValueError(
                        f"WeibullAFT: theta[{name!r}] must have {sizes[name]} values, got "
                        f"{part.tolist()}"
                    )
                parts.append(part)
            vector = np.concatenate(parts)
        else:
            vector = real_array("WeibullAFT", "theta", theta)
        if vector.size != self.n_parameters:
            raise ValueError(
                f"WeibullAFT: theta must have {self.n_parameters} values "
                f"({', '.join(self.parameter_names)}), got {vector.size}"
            )
        if not np.all(np.isfinite(vector)) or vector[-1] <= 0:
            raise ValueError(f"WeibullAFT: theta must be finite with b > 0, got {vector.tolist()}")
        return vector

    # ------------------------------------------------------------------ dose-response

    def regressors(self, doses: float | np.ndarray) -> np.ndarray:
        r""":math:`f(x) = (1, x, \dots, x^d)` per dose, shape (n, d + 1)."""
        x = np.atleast_1d(np.asarray(doses, dtype=float))
        return x[:, None] ** np.arange(self.n_coefficients)

    def _location(self, doses: float | np.ndarray, vector: np.ndarray) -> np.ndarray:
        """``beta' f(x)`` at doses of the design space (the model is a model of those doses)."""
        self._no_covariates("the dose-response curve")
        doses = doses_within(
            "WeibullAFT", doses, *self.dose_range, entry="entry", space="the design space"
        )
        return self.regressors(doses) @ vector[: self.n_coefficients]

    def _no_covariates(self, what: str) -> None:
        if self.covariates:
            raise ValueError(
                f"WeibullAFT: {what} is defined for a model without covariates; this one has "
                f"{', '.join(self.covariates)}"
            )

    def median_time(self, doses: float | np.ndarray, theta: Any) -> np.ndarray:
        r"""Median time to event :math:`e^{\beta' f(x)} (\log 2)^b` at ``doses``."""
        vector = self.theta(theta)
        result = np.exp(self._location(doses, vector)) * math.log(2.0) ** vector[-1]
        return result if np.ndim(doses) else result[0]

    def event_probability(
        self, doses: float | np.ndarray, theta: Any, tau: float | None = None
    ) -> np.ndarray:
        r""":math:`P(T \le \tau \mid x) = 1 - \exp(-e^{L_x})`; 1 when ``tau`` is None."""
        vector = self.theta(theta)
        level = self.censoring_level(doses, vector, tau)
        result = -np.expm1(-np.exp(level))
        return result if np.ndim(doses) else result[0]

    def censoring_level(
        self, doses: float | np.ndarray, theta: Any, tau: float | None
    ) -> np.ndarray:
        r""":math:`L_x = (\log \tau - \beta' f(x)) / b` per dose (``inf`` without censoring)."""
        vector = self.theta(theta)
        location = self._location(doses, vector)
        if tau is None:
            return np.full(location.shape, np.inf)
        tau = positive_number("WeibullAFT", "tau", tau)
        return (math.log(tau) - location) / vector[-1]

    def information(
        self, doses: float | np.ndarray, theta: Any, tau: float | None = None
    ) -> np.ndarray:
        r"""Return the expected information :math:`M_x(\theta)` of one patient (eq 6, 1/b^2).

        Parameters
        ----------
        doses : float or array_like
            Dose(s) in the design space.
        theta : mapping or array_like
            The parameters (see :meth:`theta`).
        tau : float, optional
            Type I censoring time; None for no censoring.

        Returns
        -------
        numpy.ndarray
            Shape (k, k) for a scalar dose, (n, k, k) for an array.

        Raises
        ------
        ValueError
            For a dose that is not finite or lies outside the design space (the model is a
            model of the doses there), naming it and its entry.
        """
        out, _ = self.information_and_slope(doses, theta, tau, slope=False)
        return out if np.ndim(doses) else out[0]

    def information_and_slope(
        self, doses: float | np.ndarray, theta: Any, tau: float | None, *, slope: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`M_x(\theta)` and :math:`\partial M_x / \partial x` per dose, (n, k, k) each."""
        self._no_covariates("the expected information")
        vector = self.theta(theta)
        x = np.atleast_1d(
            doses_within(
                "WeibullAFT", doses, *self.dose_range, entry="entry", space="the design space"
            )
        )
        log_tau = math.inf if tau is None else math.log(positive_number("WeibullAFT", "tau", tau))
        return _unit_information(x, vector, log_tau, slope)

    def information_points(
        self, doses: np.ndarray, thetas: np.ndarray, tau: float | None, *, slope: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`M_x(\theta_s)` (and :math:`\partial M_x / \partial x`) for many parameter points.

        Parameters
        ----------
        doses : numpy.ndarray
            Doses, (n,).
        thetas : numpy.ndarray
            Parameter vectors, (S, k), with :math:`b > 0` (not re-validated: the designs'
            inner loop).
        tau : float or None
            Type I censoring time.
        slope : bool
            Also compute the derivative in the dose (zeros otherwise).

        Returns
        -------
        tuple of numpy.ndarray
            Two arrays of shape (S, n, k, k).
        """
        self._no_covariates("the expected information")
        log_tau = math.inf if tau is None else math.log(positive_number("WeibullAFT", "tau", tau))
        return information_kernel(
            np.ascontiguousarray(doses, dtype=float),
            np.ascontiguousarray(np.atleast_2d(thetas), dtype=float),
            log_tau,
            slope,
        )

    # ------------------------------------------------------------------ data

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data: ``time`` and ``event``, doses in the closed dose range, covariates.

        With ``follow_up``, no time may exceed it (every patient is censored at it at the
        latest). A fit (``min_patients`` >= 1) also needs at least one event.

        Raises
        ------
        DataError
            Naming the column, the row and the value at fault.
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"WeibullAFT needs a TrialData, got {type(data).__name__}")
        data.require(
            "time", "event", *self.covariates, min_patients=min_patients, model="WeibullAFT"
        )
        for name in self.covariates:  # coefficients multiply them: numbers, not labels
            try:
                number_array("WeibullAFT", f"column {name!r}", data.column(name))
            except ValueError as error:
                raise DataError(f"{error} (a covariate of the model)") from None
        lo, hi = self.dose_range
        dose = np.asarray(data.dose, dtype=float)
        outside = np.flatnonzero((dose < lo) | (dose > hi))
        if outside.size:
            row = int(outside[0])
            raise DataError(
                f"column 'dose', row {row}: value {dose[row]:g} is outside the design space "
                f"[{lo:g}, {hi:g}] of model 'WeibullAFT'"
            )
        if self.follow_up is not None and data.n_patients:
            time = np.asarray(data.column("time"), dtype=float)
            beyond = np.flatnonzero(time > self.follow_up * (1 + 1e-12))
            if beyond.size:
                row = int(beyond[0])
                raise DataError(
                    f"column 'time', row {row}: value {time[row]:g} exceeds the follow-up "
                    f"{self.follow_up:g} of model 'WeibullAFT' (its administrative censoring "
                    "time, the longest a patient is observed)"
                )
        if min_patients >= 1 and data.n_patients and not np.any(data.column("event")):
            raise DataError(
                f"column 'event': no events among the {data.n_patients} patients (all censored); "
                "the Weibull model cannot be fitted"
            )

    def _arrays(self, data: TrialData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Design matrix (with covariates), log times and events."""
        design = self.regressors(np.asarray(data.dose, dtype=float))
        if self.covariates:
            columns = [np.asarray(data.column(name), dtype=float) for name in self.covariates]
            design = np.column_stack([design, *columns])
        log_time = np.log(np.asarray(data.column("time"), dtype=float))
        event = np.asarray(data.column("event"), dtype=float)
        return design, log_time, event

    # ------------------------------------------------------------------ likelihood

    def loglik(self, data: TrialData, theta: Any) -> float:
        """Censored log-likelihood (eq 2, without the Jacobian of the log times)."""
        design, log_time, event = self._arrays(data)
        return float(_loglik_derivatives(design, log_time, event, self.theta(theta))[0])

    def score(self, data: TrialData, theta: Any) -> np.ndarray:
        r"""Score :math:`\partial \ell / \partial (\beta, b)`, shape (k,)."""
        design, log_time, event = self._arrays(data)
        return _loglik_derivatives(design, log_time, event, self.theta(theta))[1]

    def observed_information(self, data: TrialData, theta: Any) -> np.ndarray:
        r"""Observed information :math:`-\partial^2 \ell` at ``theta``, shape (k, k)."""
        design, log_time, event = self._arrays(data)
        return -_loglik_derivatives(design, log_time, event, self.theta(theta))[2]

    def mle(self, data: TrialData, **options: Any) -> WeibullMLE:
        r"""Maximum likelihood by damped Newton on the analytic score and Hessian.

        Newton (Levenberg-Marquardt damped) runs on :math:`(\beta, \log b)` from least
        squares on the log times; the observed information is returned in
        :math:`(\beta, b)`.

        Parameters
        ----------
        data : TrialData
            Doses in the design space, ``time`` and ``event`` (and the covariates).
        **options
            ``start`` (a starting point), ``max_iter`` (200), ``tol`` (1e-9, the largest
            Newton step on :math:`(\beta, \log b)` at convergence), ``bound`` (1e3: a fitted
            log time :math:`f(x_i)^\top \beta` at a patient's dose beyond it, in absolute
            value, is taken as divergence, whatever the dose unit); see :meth:`estimate`.

        Returns
        -------
        WeibullMLE

        Raises
        ------
        DataError
            No events, fewer events than parameters, or fewer distinct doses than dose
            coefficients (the design matrix is singular).
        MLENotFound
            The likelihood has no maximum: the events leave a direction along which the
            curve can move without bound (e.g. every patient censored at a dose the curve
            needs), or Newton did not converge.
        """
        self.check_data(data, min_patients=1)
        design, log_time, event = self._arrays(data)
        return self.estimate(design, log_time, event, **options)

    def map_estimate(self, data: TrialData, **options: Any) -> WeibullMLE:
        r"""Posterior mode under the model's priors (on :math:`(\beta, \log b)`).

        The fallback of the adaptive designs when the MLE does not exist. The returned
        ``observed_information`` is that of the log posterior (likelihood plus prior
        precision), in :math:`(\beta, b)`. The mode exists for any data, but the solver
        refuses one with :math:`b` outside :math:`(10^{-8}, 10^8)` as it refuses the MLE
        (:class:`MLENotFound`): event times tied at every dose, which a curve in the dose fits
        with no spread, put the mode at a vanishing :math:`b` (the adaptive designs then keep
        their initial design, and record why).
        """
        self.check_data(data, min_patients=1)
        design, log_time, event = self._arrays(data)
        return self.estimate(design, log_time, event, penalised=True, **options)

    def estimate(
        self,
        design: np.ndarray,
        log_time: np.ndarray,
        event: np.ndarray,
        *,
        penalised: bool = False,
        start: Any = None,
        max_iter: int = 200,
        tol: float = 1e-9,
        bound: float = 1e3,
    ) -> WeibullMLE:
        r"""Estimate by maximum likelihood (or, ``penalised``, the posterior mode) from arrays.

        Parameters
        ----------
        design : numpy.ndarray
            Regressors :math:`f(x)` (and covariates) per patient, (n, k - 1).
        log_time : numpy.ndarray
            Log event or censoring times, (n,).
        event : numpy.ndarray
            1 for an event, 0 for censoring, (n,) floats.
        penalised : bool
            Add the log prior of :meth:`build` (normal coefficients, normal :math:`\log b`).

        Returns
        -------
        WeibullMLE
            See :meth:`mle`.
        """
        k = self.n_parameters
        events = int(event.sum())
        prior_mean = np.zeros(k)
        precision = np.zeros(k)
        if penalised:
            p = self.n_coefficients
            prior_mean[:p] = self.prior_mean
            precision[:p] = 1.0 / self.prior_sd**2
            precision[p:-1] = 1.0 / 100.0
            prior_mean[-1] = math.log(self.b_prior_median)
            precision[-1] = 1.0 / self.b_prior_sigma**2
        else:
            self._check_estimable(design, event)
        theta0 = self._start(design, log_time) if start is None else self.theta(start)
        theta, _, status, iterations = _newton(
            design,
            log_time,
            event,
            theta0,
            prior_mean,
            precision,
            int(max_iter),
            float(tol),
            float(bound),
        )
        if status != _CONVERGED:
            reason = (
                f"the estimates diverge (the fitted log time at a patient's dose beyond "
                f"{bound:g} in absolute value, or b outside (1e-8, 1e8))"
                if status == _DIVERGED
                else f"Newton did not converge in {iterations} iterations"
            )
            raise MLENotFound(
                f"columns 'time', 'event': the {'posterior mode' if penalised else 'MLE'} was "
                f"not found: {reason}; {events} events among {event.size} patients"
            )
        loglik, _, hessian = _loglik_derivatives(design, log_time, event, theta)
        information = -hessian
        if penalised:
            b = theta[-1]
            information[np.diag_indices(k - 1)] += precision[:-1]
            information[-1, -1] += precision[-1] * (1.0 - (math.log(b) - prior_mean[-1])) / b**2
        if not np.all(np.isfinite(information)) or not _cholesky_solve(information, theta)[1]:
            raise MLENotFound(
                "columns 'time', 'event': the observed information at the estimate is not "
                "positive definite (a saddle point or a flat likelihood)"
            )
        return WeibullMLE(
            theta=theta,
            names=self.parameter_names,
            loglik=float(loglik),
            observed_information=information,
            n_patients=int(event.size),
            n_events=events,
            iterations=int(iterations),
            penalised=penalised,
        )

    def _check_estimable(self, design: np.ndarray, event: np.ndarray) -> None:
        """Refuse data with too few events or doses for an MLE (DataError, MLENotFound)."""
        k = self.n_parameters
        events = int(event.sum())
        if events < k:
            raise DataError(
                f"column 'event': {events} events among {event.size} patients; the MLE of the "
                f"{k} parameters ({', '.join(self.parameter_names)}) needs at least {k}"
            )
        dose = design[:, 1] if self.degree >= 1 else np.zeros(len(design))
        distinct = np.unique(dose)
        if distinct.size < self.n_coefficients:
            raise DataError(
                f"column 'dose': {distinct.size} distinct doses "
                f"({', '.join(f'{d:g}' for d in distinct)}); the degree-{self.degree} model "
                f"needs at least {self.n_coefficients}"
            )
        if self.covariates and np.linalg.matrix_rank(design) < design.shape[1]:
            raise DataError(
                "the design matrix of 'dose' and the covariates "
                f"({', '.join(self.covariates)}) is singular: collinear covariates"
            )
        if self.covariates or np.unique(dose[event == 1]).size < self.n_coefficients:
            self._check_recession(design, event, dose)

    @staticmethod
    def _start(design: np.ndarray, log_time: np.ndarray) -> np.ndarray:
        """Least squares on the log times, with :math:`b` from the residual sd."""
        gram = design.T @ design
        try:
            coef = np.linalg.solve(gram, design.T @ log_time)
        except np.linalg.LinAlgError:
            coef, *_ = np.linalg.lstsq(design, log_time, rcond=None)
        residual = log_time - design @ coef
        b = max(float(np.std(residual)) * math.sqrt(6.0) / math.pi, 0.05)
        coef[0] += EULER_GAMMA * b  # E(W) = -gamma_E
        return np.append(coef, b)

    def _check_recession(self, design: np.ndarray, event: np.ndarray, dose: np.ndarray) -> None:
        r"""Refuse data whose likelihood increases without bound along some :math:`\beta`.

        Along :math:`v` with :math:`F_E v = 0` (events unchanged) and :math:`F_C v \ge 0`
        (censored patients pushed later), the log-likelihood never decreases: no maximum.
        Only possible when the event rows do not span the coefficients. For the polynomial
        model, with :math:`e < d + 1` distinct event doses, :math:`v` is a polynomial
        vanishing there times any polynomial of degree :math:`d - e`, which can take any signs
        at :math:`d + 1 - e` further doses: the MLE does not exist when at most that many doses
        have no event. Otherwise (or with covariates) a linear program looks for :math:`v`.
        """
        from scipy.optimize import linprog

        event_doses = np.unique(dose[event == 1])
        silent = np.setdiff1d(np.unique(dose), event_doses)
        free = self.n_coefficients - event_doses.size
        message = (
            "columns 'time', 'event': the MLE does not exist: the events (at doses "
            f"{', '.join(f'{d:g}' for d in event_doses)}) leave the curve free to move later at "
            f"the doses where every patient is censored "
            f"({', '.join(f'{d:g}' for d in silent) or 'none'}); the likelihood increases "
            "without bound"
        )
        if not self.covariates and free > 0 and silent.size <= free:
            raise MLENotFound(message)
        events = design[event == 1]
        if np.linalg.matrix_rank(events) == design.shape[1]:
            return
        censored = design[event == 0]
        found = linprog(
            -censored.sum(axis=0),
            A_ub=-censored,
            b_ub=np.zeros(len(censored)),
            A_eq=events,
            b_eq=np.zeros(len(events)),
            bounds=[(-1.0, 1.0)] * design.shape[1],
            method="highs",
        )
        if found.status == 0 and -found.fun > 1e-9:
            raise MLENotFound(message)

    # ------------------------------------------------------------------ PyMC model

    def build(self, data: TrialData) -> "pm.Model":
        """Build the PyMC model: normal coefficients, log-normal ``b``, censored Weibull times.

        Parameters
        ----------
        data : TrialData
            Doses, ``time`` and ``event`` (and covariates); may be empty (prior checks).

        Returns
        -------
        pymc.Model
            Free ``beta`` (dim ``coef``), ``gamma`` (dim ``covariate``, with covariates),
            ``b``; deterministic ``median_time`` on ``dose`` (the model's ``dose_grid``, at
            covariates 0); observed ``time`` (dim ``patient``) censored at the patient's
            censoring time.
        """
        import pymc as pm
        import pytensor.tensor as pt

        self.check_data(data)
        design, log_time, event = self._arrays(data)
        time = np.exp(log_time)
        infinite = math.inf if self.follow_up is None else self.follow_up
        upper = np.where(event == 1, np.where(time < infinite, infinite, math.inf), time)
        coords = {
            "coef": list(range(self.n_coefficients)),
            "dose": list(self.grid),
            "patient": np.arange(data.n_patients),
        }
        if self.covariates:
            coords["covariate"] = list(self.covariates)
        grid = self.regressors(np.asarray(self.grid))
        with pm.Model(coords=coords) as model:
            dose_design = pm.Data(
                "dose_design", design[:, : self.n_coefficients], dims=("patient", "coef")
            )
            beta = pm.Normal(
                "beta",
                mu=self.prior_mean,
                sigma=self.prior_sd,
                dims="coef",
            )
            location = pt.dot(dose_design, beta)
            if self.covariates:
                covariates = pm.Data(
                    "covariates", design[:, self.n_coefficients :], dims=("patient", "covariate")
                )
                gamma = pm.Normal("gamma", 0.0, 10.0, dims="covariate")
                location = location + pt.dot(covariates, gamma)
            b = pm.LogNormal("b", mu=math.log(self.b_prior_median), sigma=self.b_prior_sigma)
            pm.Deterministic(
                "median_time", pt.exp(pt.dot(grid, beta)) * math.log(2.0) ** b, dims="dose"
            )
            censor_at = pm.Data("censoring_time", upper, dims="patient")
            pm.Censored(
                "time",
                pm.Weibull.dist(alpha=1.0 / b, beta=pt.exp(location)),
                lower=None,
                upper=censor_at,
                observed=time,
                dims="patient",
            )
        return model

    def prior_moments(self, prior: xr.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
        r"""Prior draws of the mean and variance of a log event time per dose (no censoring).

        With :math:`T = \lambda E^b`, :math:`E \sim \operatorname{Exp}(1)`: :math:`E[\log T] =
        \log m - b(\gamma_E + \log\log 2)` from the median :math:`m = \lambda (\log 2)^b`,
        and :math:`\operatorname{Var}[\log T] = b^2 \pi^2 / 6` (covariates at 0).
        """
        median = prior["median_time"].stack(sample=("chain", "draw")).transpose("sample", "dose")
        b = prior["b"].to_numpy().reshape(-1, 1)
        mean = np.log(median.to_numpy()) - b * (np.euler_gamma + math.log(math.log(2.0)))
        variance = np.broadcast_to(b**2 * math.pi**2 / 6.0, mean.shape)
        return {"log_time": (mean, variance, list(median["dose"].values))}

    @property
    def predictive_outcomes(self) -> tuple[str, ...]:
        """``time`` and ``event``; without ``follow_up``, ``time`` alone.

        Without a follow-up a patient with an event replicates one every time, so the
        replicated event count can never fall below the observed one: its p-value is at
        least 0.5 whatever the fit, a statistic that checks nothing.
        """
        return self.outcomes if self.follow_up is not None else ("time",)

    def _add_predictive(self, idata: xr.DataTree, group: str) -> None:
        """Add the replicated ``event`` indicator (a time below its censoring time)."""
        if group not in idata.children or "time" not in idata[group].data_vars:
            return
        dataset = idata[group].to_dataset()
        constant = idata.get("constant_data")
        if constant is not None and "censoring_time" in constant.data_vars:
            bound = constant["censoring_time"]
        else:
            return
        # PyMC's censored draws land on the bound to within rounding (e.g. 59.999999999999986)
        dataset["event"] = (dataset["time"] < bound * (1.0 - 1e-9)).astype(np.int64)
        idata[group] = xr.DataTree(dataset)

    # ------------------------------------------------------------------ posteriors

    def _points_posterior(
        self, theta: np.ndarray, *, chains: int, mode: WeibullMLE | None, report: Any = None
    ) -> WeibullPosterior:
        grid = np.asarray(self.grid)
        location = theta[:, : self.n_coefficients] @ self.regressors(grid).T
        return WeibullPosterior(
            dose_levels=(),
            rates={},
            chains=chains,
            parameter_mean=dict(
                zip(self.parameter_names, theta.mean(axis=0).tolist(), strict=True)
            ),
            report=report,
            theta=theta,
            names=self.parameter_names,
            dose_grid=self.grid,
            median_time=np.exp(location) * math.log(2.0) ** theta[:, -1:],
            mode=mode,
        )

    def normal_draws(self, fit: WeibullMLE, draws: int, rng: np.random.Generator) -> np.ndarray:
        r"""Draw :math:`(\beta, b)` from the normal approximation at ``fit`` (on :math:`\log b`).

        The covariance on :math:`(\beta, \log b)` is :math:`J I^{-1} J` with
        :math:`J = \operatorname{diag}(1, \dots, 1, 1/b)` and :math:`I` the information of
        ``fit`` (observed, plus the prior precision for the posterior mode).
        """
        k = self.n_parameters
        jacobian = np.ones(k)
        jacobian[-1] = 1.0 / fit.b
        covariance = fit.covariance * np.outer(jacobian, jacobian)
        centre = fit.theta.copy()
        centre[-1] = math.log(fit.b)
        points = rng.multivariate_normal(centre, covariance, size=draws, method="cholesky")
        points[:, -1] = np.exp(points[:, -1])
        return points

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> WeibullPosterior:
        r"""Return the Laplace approximation of the posterior (the fast engine ``"laplace"``).

        The posterior mode of :meth:`build`'s model on :math:`(\beta, \log b)`
        (:meth:`map_estimate`, which exists whenever there is an event) and the normal
        approximation there: ``sampling.draws * sampling.chains`` independent draws of
        :math:`(\beta, b)` (``theta``), the median curve per draw (``median_time``), the mode
        itself (``mode``).

        Raises
        ------
        DataError
            As :meth:`map_estimate` (no events, doses outside the design space).
        """
        sampling = sampling or Sampling()
        mode = self.map_estimate(data)
        rng = random_generator(sampling.random_seed)
        theta = self.normal_draws(mode, sampling.draws * sampling.chains, rng)
        return self._points_posterior(theta, chains=sampling.chains, mode=mode)

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> WeibullPosterior:
        """Read the draws of ``beta`` (``gamma``) and ``b`` from a fit (any engine).

        The convergence is judged on ``beta``, ``b`` and ``median_time`` (``criteria``, the
        default thresholds when None); ``options`` (e.g. ``levels``) do not apply to
        continuous doses.
        """
        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise TypeError(
                "expected an InferenceData (xarray.DataTree) with a posterior group, got "
                f"{type(idata).__name__}"
            )
        posterior = idata["posterior"]
        parts = [posterior["beta"].transpose("chain", "draw", "coef").to_numpy()]
        checked = ["beta", "b", "median_time"]
        if self.covariates:
            parts.append(posterior["gamma"].transpose("chain", "draw", "covariate").to_numpy())
            checked.append("gamma")
        parts.append(posterior["b"].transpose("chain", "draw").to_numpy()[..., None])
        chains, draws = parts[0].shape[:2]
        theta = np.concatenate(parts, axis=2).reshape(chains * draws, -1)
        report = (criteria or ConvergenceCriteria()).check(idata, checked)
        return self._points_posterior(theta, chains=chains, mode=None, report=report)

    @engine("laplace")
    def _fit_laplace(
        self,
        data: TrialData,
        *,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | np.random.Generator | None,
        progressbar: bool,
    ) -> xr.DataTree:
        """Draw from the Laplace approximation, in ``pm.sample``'s schema (attrs: the mode)."""
        started = clock.perf_counter()
        mode = self.map_estimate(data)
        rng = random_generator(random_seed)
        theta = self.normal_draws(mode, draws * chains, rng).reshape(chains, draws, -1)
        p = self.n_coefficients
        free = {"beta": theta[:, :, :p], "b": theta[:, :, -1]}
        if self.covariates:
            free["gamma"] = theta[:, :, p:-1]
        idata = self._from_draws(data, free, {}, started=started, tune=0)
        idata["posterior"].attrs["mode"] = [float(v) for v in mode.theta]
        return idata
