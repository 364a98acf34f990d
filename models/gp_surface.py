r"""Gaussian-process surface over drug combinations and strata (Willard et al. 2024).

Willard, Golchi, Moodie, Boulanger and Carlin (2024), *Bayesian optimization for personalized
dose-finding trials with combination therapies*, Section 2. A patient given the combination
:math:`d = (d_1, \dots, d_J)` (doses standardised to :math:`[0, 1]`) in the stratum of
covariates :math:`z = (z_1, \dots, z_P)` has the response

.. math::

    y = f(d, z) + \varepsilon, \qquad \varepsilon \sim N(0, \sigma_y^2),

and the unknown surface :math:`f` has a Gaussian-process prior with constant mean
:math:`\beta_0`, scale :math:`\nu` and the separable (ARD) squared-exponential kernel of eqs
(1) and (5),

.. math::

    \mathcal K((d, z), (d', z')) = \exp\Big\{-\sum_j \frac{(d_j - d'_j)^2}{2 l_{d_j}^2}
        - \sum_p \frac{(z_p - z'_p)^2}{2 l_p^2}\Big\},

so that :math:`y \sim N(\beta_0 1, \nu K)`, :math:`K = \mathcal K(X, X) + \tau^2 I` and
:math:`\sigma_y^2 = \nu \tau^2` (the nugget :math:`\tau^2` is relative to :math:`\nu`). For a
binary covariate the correlation between strata is :math:`\exp(-1/(2 l_p^2))`. Without
covariates this is the standard model of Algorithm 1, with them the personalised model of
Algorithm 2. Doses are mapped to :math:`[0, 1]` by the model's ``dose_bounds`` (the identity by
default); covariates enter the kernel as numbers (0/1 for the binary covariates of the paper).

Empirical Bayes (``posterior``, engine ``"eb"``; the paper's fit, R's ``hetGP::mleHomGP``)
--------------------------------------------------------------------------------------------
With hetGP's length-scales :math:`\theta_j = 2 l_j^2` (its kernel is
:math:`\exp(-\sum_j (x_j - x'_j)^2 / \theta_j)`), nugget :math:`g = \tau^2`, the :math:`n`
distinct inputs :math:`X_0` with :math:`a_i` replicates and mean responses :math:`\bar y_i`
(of :math:`N` responses), :math:`K_0 = \mathcal K(X_0, X_0) + \operatorname{diag}(\epsilon +
g / a_i)` with hetGP's :math:`\epsilon = \sqrt{\text{machine } \epsilon}`, the mean and the
scale are profiled out in closed form (generalised least squares; not REML):

.. math::

    \hat\beta_0 = \frac{1^\top K_0^{-1} \bar y}{1^\top K_0^{-1} 1}, \qquad
    \hat\nu = \frac1N\Big[\frac{W}{g} + (\bar y - \hat\beta_0)^\top K_0^{-1}
        (\bar y - \hat\beta_0)\Big],

with :math:`W = \sum_i \sum_r (y_{ir} - \bar y_i)^2`, and the concentrated log likelihood

.. math::

    \ell(\theta, g) = -\frac N2 \log(2\pi) - \frac N2 \log\hat\nu - \frac12 \log|K_0|
        - \frac{N - n}2 \log g - \frac12 \sum_i \log a_i - \frac N2

is maximised over :math:`(\log\theta, \log g)` in hetGP's default box: its ``auto_bounds``
rescales :math:`X_0` to the unit cube (each column by its range :math:`r_j`), takes the 5% and
95% quantiles :math:`q_{05}, q_{95}` of the squared distances between the rescaled points,
and sets :math:`\theta_j \in [-q_{05} / \log 0.01, \, -q_{95} / \log 0.5] \, r_j^2` (the
correlation at the small distance at least 0.01, at the large one at most 0.5), with
:math:`g \in [\sqrt{\text{machine } \epsilon}, 100]`. hetGP starts from
:math:`\theta_j = \sqrt{\text{lower}_j \, \text{upper}_j}` and :math:`g = 0.1` (or, when some
input has more than two replicates, the mean within-input variance of those inputs over the
variance of :math:`\bar y`). The optimiser here is a box-constrained quasi-Newton (projected
BFGS with hetGP's analytic gradient, compiled with numba; the full-memory counterpart of
L-BFGS-B for these at most a handful of parameters) from hetGP's start and from the best
``n_starts - 1`` of ``screen`` scrambled Sobol points of the box, the best point of each cell
of the box first (a cell: which half of its range each length-scale and the nugget lie in).
On these small designs the likelihood is flat, often bimodal (interpolating the data with a
small nugget, or smoothing them with a large one) and its maximum often sits on a bound; the
posterior says which parameters do (:attr:`GPSurfacePosterior.on_bound`). 4 starts of 32
points from cells of the length-scales alone stopped 1e-3 to 0.24 below the maximum on 7 of
260 random data sets of 2 to 8 points (with replicates, outliers, rounding, strata), and the
design's next combination changed; the default 16 starts of 128 points came within 2e-5 of it
on all 260, the maximum taken from a dense grid of the box polished by L-BFGS-B (the tests
check two of the seven against scipy's L-BFGS-B from random starts). A
column that is constant in the data (e.g. one stratum only) gets :math:`r_j = 1` where hetGP
would divide by zero; the likelihood does not depend on its :math:`\theta_j`, which keeps
hetGP's start :math:`\sqrt{\text{lower}_j \, \text{upper}_j}` (hetGP's own optimiser, with
a zero gradient there, would not move it; the winning start's value was arbitrary and set how
much an unseen stratum borrows).

The posterior of the surface given the estimates is the universal-kriging predictor (eq 2;
Binois and Gramacy 2021, hetGP's ``predict``), with :math:`k(x) = \mathcal K(X_0, x)`:

.. math::

    \mu(x) &= \hat\beta_0 + k(x)^\top K_0^{-1} (\bar y - \hat\beta_0 1) \\
    \sigma^2(x) &= \hat\nu\Big[1 - k(x)^\top K_0^{-1} k(x)
        + \frac{(1 - k(x)^\top K_0^{-1} 1)^2}{1^\top K_0^{-1} 1}\Big],

jointly normal over any set of points (the covariance replaces :math:`1` by
:math:`\mathcal K(x, x')` and the squares by products). Eq (2) as printed drops the factor
:math:`\hat\nu` on the last (trend) term; it belongs there, as in hetGP and in Gramacy (2020),
and :mod:`tests` check it against PyMC's ``gp.Marginal`` conditional with a flat trend. The
joint normal posterior of the surface on the candidate grid gives the posterior of the
optimal combination per stratum (:meth:`GPSurface.optimum_probabilities`).

Full Bayes (``fit(engine="nuts")``; recommended by the paper's Discussion)
--------------------------------------------------------------------------
:meth:`GPSurface.build` is the marginal GP (``ExpQuad`` of ``pm.gp.cov`` with one
length-scale per input, the marginal likelihood written on its sufficient statistics) with
weakly informative priors on the scale of the data, :math:`m` and :math:`s` the mean and
standard deviation of the responses (``response_scale`` to fix them):
:math:`\beta_0 \sim N(m, (2s)^2)`, :math:`\sqrt\nu \sim \text{HalfNormal}(s)`,
:math:`\sigma_y \sim \text{HalfNormal}(s)`, :math:`l_{d_j} \sim \text{InverseGamma}(2.153,
0.5836)` for every dose (95% of its mass between 0.1 and 2 on the unit dose scale: from
surfaces that change within a grid step to nearly flat ones) and :math:`l_p \sim
\text{InverseGamma}(3.046, 2.554)` for every covariate (95% between 0.35 and 4: for a binary
covariate, a correlation :math:`\exp\{-1/(2 l_p^2)\}` between strata from 0.02 to 0.97,
median 0.57, favouring neither separate nor shared surfaces). The surface on the candidate grid
is the deterministic ``f`` (dims ``dose``, one level per grid combination and stratum, with
coordinates naming each level's doses and covariates), written non-centred as the
conditional mean given the hyper-parameters plus the Cholesky factor of the conditional
covariance times standard normals ``z_grid``. ``fit(engine="eb")`` returns the same schema:
the hyper-parameters at their estimates, :math:`\beta_0` drawn from its normal posterior
given them (flat prior, which is what the GLS estimate is) and ``z_grid`` standard normal, so
that the draws of ``f`` are exact draws of the universal-kriging posterior.
"""

import hashlib
import itertools
import math
import numbers
import time
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from dataclasses import replace as dataclass_replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numba as nb
import numpy as np
import pandas as pd
import xarray as xr

from dosezoo.checks import choice, number_array, positive_int, positive_number, real_number
from dosezoo.data import TrialData, reserved_columns
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import DataError
from dosezoo.inference import IdataBuilder
from dosezoo.models.base import DoseModel, chain_generators, engine
from dosezoo.outcomes import Outcome, register_outcome
from dosezoo.posterior import DosePosterior, NormalLevels, Sampling
from dosezoo.samplers.linalg import cholesky, forward_substitution

if TYPE_CHECKING:
    import pymc as pm


__all__ = ["RESPONSE", "GPSurface", "GPSurfacePosterior", "hetgp_bounds"]

#: The outcome column of the model: a continuous response, any finite number.
RESPONSE = "response"
register_outcome(Outcome(RESPONSE))

#: hetGP's jitter on the diagonal and lower bound of the nugget: sqrt(machine epsilon).
HETGP_EPS = math.sqrt(np.finfo(float).eps)
#: hetGP's default bounds of the nugget g (``noiseControl$g_bounds``).
HETGP_G_BOUNDS = (HETGP_EPS, 100.0)
#: Starts of the empirical-Bayes optimiser and Sobol points screened for them (module notes).
EB_STARTS, EB_SCREEN = 16, 128
#: Responses closer than this, relative to their size, are equal: with all of them equal the
#: GP's variance has no maximum, and with each point's replicates equal sigma_y's posterior
#: is improper.
EQUAL_RESPONSES = 1e-12
#: Inverse-gamma prior of the dose length-scales of the PyMC model (95% in [0.1, 2]).
LENGTHSCALE_PRIOR = (2.153, 0.5836)
#: Inverse-gamma prior of the covariate length-scales (95% in [0.35, 4]: for a binary
#: covariate, a correlation between strata from 0.02 to 0.97, median 0.57).
COVARIATE_LENGTHSCALE_PRIOR = (3.046, 2.554)
#: Relative jitter of the conditional covariance whose Cholesky factor draws the surface.
SURFACE_JITTER = 1e-6
#: Fixed unit Sobol points of the start screen (scaled to each fit's box).
_SCREEN_SEED = 20240601
_MAX_INPUTS = 16


# --------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True)
def _correlation(x1: np.ndarray, x2: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """HetGP's Gaussian correlation ``exp(-sum_j (x1_j - x2_j)^2 / theta_j)``, (n1, n2)."""
    n1, n2, p = x1.shape[0], x2.shape[0], x1.shape[1]
    out = np.empty((n1, n2))
    for i in range(n1):
        for k in range(n2):
            s = 0.0
            for j in range(p):
                d = x1[i, j] - x2[k, j]
                s += d * d / theta[j]
            out[i, k] = math.exp(-s)
    return out


@nb.njit(cache=True)
def _inverse_from_cholesky(low: np.ndarray) -> np.ndarray:
    """``A^{-1} = L^{-T} L^{-1}`` from the lower Cholesky factor ``L`` of ``A`` (row-wise loops)."""
    n = low.shape[0]
    linv = np.zeros((n, n))
    for i in range(n):
        for k in range(i):
            factor = low[i, k]
            for j in range(k + 1):
                linv[i, j] -= factor * linv[k, j]
        diagonal = 1.0 / low[i, i]
        for j in range(i):
            linv[i, j] *= diagonal
        linv[i, i] = diagonal
    inv = np.zeros((n, n))
    for k in range(n):
        for i in range(k + 1):
            factor = linv[k, i]
            for j in range(i + 1):
                inv[i, j] += factor * linv[k, j]
    for i in range(n):
        for j in range(i):
            inv[j, i] = inv[i, j]
    return inv


@nb.njit(cache=True)
def _negative_log_likelihood(
    u: np.ndarray,
    x0: np.ndarray,
    mult: np.ndarray,
    z0: np.ndarray,
    within: float,
    n_total: float,
    with_gradient: bool,
) -> tuple[float, np.ndarray]:
    """Minus hetGP's concentrated log likelihood at ``u = (log theta, log g)``, and its gradient.

    ``logLikHom`` and ``dlogLikHom`` of hetGP (Gaussian kernel, unknown trend), the gradient
    taken with respect to the logs. Returns ``inf`` when the matrix is not positive definite.
    """
    n, p = x0.shape
    theta = np.exp(u[:p])
    g = math.exp(u[p])
    grad = np.zeros(p + 1)
    c = _correlation(x0, x0, theta)
    k = c.copy()
    for i in range(n):
        k[i, i] += HETGP_EPS + g / mult[i]
    low, ok = cholesky(k)
    if not ok:
        return np.inf, grad
    log_det = 0.0
    for i in range(n):
        log_det += 2.0 * math.log(low[i, i])
    if with_gradient:
        ki = _inverse_from_cholesky(low)
        ones = ki.sum(axis=0)
        total = ones.sum()
        beta = (ones @ z0) / total
        resid = z0 - beta
        kiz = ki @ resid
        n_psi = within / g + resid @ kiz
    else:
        ki = low  # unused
        kiz = z0  # unused
        a = forward_substitution(low, np.ones(n))
        b = forward_substitution(low, z0)
        total = a @ a
        beta = (a @ b) / total
        w = b - beta * a
        n_psi = within / g + w @ w
    if not n_psi > 0.0:
        return np.inf, grad
    log_mult = 0.0
    for i in range(n):
        log_mult += math.log(mult[i])
    loglik = (
        -0.5 * n_total * math.log(2.0 * math.pi)
        - 0.5 * n_total * math.log(n_psi / n_total)
        - 0.5 * log_det
        - 0.5 * (n_total - n) * math.log(g)
        - 0.5 * log_mult
        - 0.5 * n_total
    )
    if not with_gradient:
        return -loglik, grad
    scale = 0.5 * n_total / n_psi
    for i in range(n):
        for j in range(i):
            weight = 2.0 * c[i, j] * (scale * kiz[i] * kiz[j] - 0.5 * ki[i, j])
            for q in range(p):
                d = x0[i, q] - x0[j, q]
                grad[q] += weight * d * d
    for q in range(p):
        grad[q] = -grad[q] / theta[q]  # d/dlog theta = theta * d/dtheta, dC/dtheta = C D / theta^2
    quad = 0.0
    trace = 0.0
    for i in range(n):
        quad += kiz[i] * kiz[i] / mult[i]
        trace += ki[i, i] / mult[i]
    dg = scale * (within / (g * g) + quad) - 0.5 * (n_total - n) / g - 0.5 * trace
    grad[p] = -dg * g
    return -loglik, grad


@nb.njit(cache=True)
def _objective(v, lower, upper, x0, mult, z0, within, n_total, with_gradient):
    """Return the negative log likelihood at unit-box coordinates ``v`` and its gradient."""
    width = upper - lower
    value, grad = _negative_log_likelihood(
        lower + width * v, x0, mult, z0, within, n_total, with_gradient
    )
    return value, grad * width


@nb.njit(cache=True)
def _projected_bfgs(v0, lower, upper, x0, mult, z0, within, n_total, max_iter, pgtol, ftol):
    """Minimise on the unit box by projected BFGS (Bertsekas 1982) with Armijo backtracking.

    Variables at a bound with the gradient pointing out of the box are held fixed for the
    step; the quasi-Newton direction uses the others. Stops when the projected gradient is
    below ``pgtol``, the relative decrease of an iteration below ``ftol`` (L-BFGS-B's
    ``factr`` times machine epsilon) or after ``max_iter`` iterations. Returns the point, the
    value and the number of evaluations.
    """
    m = v0.size
    v = np.minimum(np.maximum(v0, 0.0), 1.0)
    f, g = _objective(v, lower, upper, x0, mult, z0, within, n_total, True)
    evaluations = 1
    if not np.isfinite(f):
        return v, f, evaluations
    h = np.eye(m)
    fresh = True
    previous_free = np.ones(m, dtype=np.bool_)
    for _ in range(max_iter):
        projected = np.minimum(np.maximum(v - g, 0.0), 1.0) - v
        if np.max(np.abs(projected)) < pgtol:
            break
        free = np.ones(m, dtype=np.bool_)
        for i in range(m):
            if (v[i] <= 0.0 and g[i] > 0.0) or (v[i] >= 1.0 and g[i] < 0.0):
                free[i] = False
        if np.any(free != previous_free):
            # A new active set: the curvature learnt along the fixed variables misleads.
            h = np.eye(m)
            fresh = True
        previous_free = free
        d = np.zeros(m)
        for i in range(m):
            if free[i]:
                s = 0.0
                for j in range(m):
                    if free[j]:
                        s -= h[i, j] * g[j]
                d[i] = s
        if g @ d >= 0.0:
            h = np.eye(m)
            fresh = True
            for i in range(m):
                d[i] = -g[i] if free[i] else 0.0
        step = 1.0
        largest = np.max(np.abs(d))
        if fresh and largest > 0.25:
            step = 0.25 / largest
        accepted = False
        for _ in range(40):
            trial = np.minimum(np.maximum(v + step * d, 0.0), 1.0)
            f_new, g_new = _objective(trial, lower, upper, x0, mult, z0, within, n_total, True)
            evaluations += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * (g @ (trial - v)):
                accepted = True
                break
            step *= 0.3
        if not accepted:
            break
        s_vec = trial - v
        y_vec = g_new - g
        sy = s_vec @ y_vec
        previous = f
        v, f, g = trial, f_new, g_new
        if sy > 1e-12:
            if fresh:
                h = np.eye(m) * (sy / (y_vec @ y_vec))
                fresh = False
            rho = 1.0 / sy
            a = np.eye(m) - rho * np.outer(s_vec, y_vec)
            h = a @ h @ a.T + rho * np.outer(s_vec, s_vec)
        if previous - f <= ftol * max(abs(previous), abs(f), 1.0):
            break
    return v, f, evaluations


@nb.njit(cache=True)
def _multistart(
    lower, upper, first, unit, n_starts, x0, mult, z0, within, n_total, max_iter, pgtol, ftol
):
    """Screen the unit points, then optimise from ``first`` and the best ``n_starts - 1``.

    Returns the best point (log scale), its value, the start it came from (0: ``first``),
    the values reached from every start and the number of evaluations.
    """
    m = lower.size
    screened = unit.shape[0]
    values = np.empty(screened)
    for i in range(screened):
        values[i] = _objective(unit[i], lower, upper, x0, mult, z0, within, n_total, False)[0]
    order = np.argsort(values)
    # The best screened point of each cell of the box (which half of its range each
    # length-scale and the nugget lie in), best cells first: the likelihood is often bimodal
    # in a length-scale (an input that matters, or one that does not) and in the nugget
    # (interpolating the data, or smoothing them), so the starts look on both sides. Cells
    # beyond the starts' number are ignored; too few cells repeat the best ones.
    cells = np.empty(screened, dtype=np.int64)
    for i in range(screened):
        code = 0
        for j in range(m):
            code = 2 * code + (1 if unit[i, j] >= 0.5 else 0)
        cells[i] = code
    starts = np.empty((n_starts, m))
    starts[0] = first
    taken = np.zeros(screened, dtype=np.bool_)
    used_cells = np.full(n_starts, -1, dtype=np.int64)
    count = 1
    for i in order:
        if count == n_starts:
            break
        fresh = True
        for c in range(count):
            if used_cells[c] == cells[i]:
                fresh = False
        if fresh:
            starts[count] = unit[i]
            used_cells[count] = cells[i]
            taken[i] = True
            count += 1
    for i in order:
        if count == n_starts:
            break
        if not taken[i]:
            starts[count] = unit[i]
            taken[i] = True
            count += 1
    reached = np.empty(n_starts)
    best_v = starts[0].copy()
    best_f = np.inf
    best_start = 0
    evaluations = screened
    for s in range(n_starts):
        v, f, used = _projected_bfgs(
            starts[s], lower, upper, x0, mult, z0, within, n_total, max_iter, pgtol, ftol
        )
        evaluations += used
        reached[s] = f
        if f < best_f:
            best_v, best_f, best_start = v, f, s
    return lower + (upper - lower) * best_v, best_f, best_start, reached, evaluations


# --------------------------------------------------------------------------- hetGP helpers


def _distinct(
    inputs: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """HetGP's ``find_reps``: distinct inputs, replicates, mean responses, within-input SS."""
    x0, index = np.unique(inputs, axis=0, return_inverse=True)
    index = index.ravel()
    mult = np.bincount(index).astype(float)
    z0 = np.bincount(index, weights=y) / mult
    within = float(np.sum((y - z0[index]) ** 2))
    return x0, mult, z0, within, index


def _refuse_equal_replicates(
    y: np.ndarray, mult: np.ndarray, within: float, index: np.ndarray
) -> None:
    r"""Raise a DataError when there are replicates and each point's are equal.

    The PyMC model's within-point sum of squares :math:`W \sim \sigma_y^2 \chi^2_{N - n}`
    then has :math:`W = 0`: the likelihood of the responses grows as
    :math:`\sigma_y^{-(N - n)}` as :math:`\sigma_y \to 0` (the mean responses' covariance
    keeps its jitter), and the posterior of :math:`\sigma_y` is improper. "Equal" is within
    :data:`EQUAL_RESPONSES` of the responses' size, as in :func:`fit_hetgp` (rounding leaves
    a :math:`W` of ``1e-32`` that PyMC samples as :math:`\sigma_y \approx 10^{-16}`).
    """
    extra = y.size - mult.size
    if not extra or within > extra * (EQUAL_RESPONSES * np.max(np.abs(y))) ** 2:
        return
    rows = np.flatnonzero(index == int(np.argmax(mult > 1)))
    raise DataError(
        f"column {RESPONSE!r}, rows {rows.tolist()}: the responses of each repeated (dose, "
        f"covariate) point are equal (here {float(y[rows[0]])!r}), so the posterior of sigma_y "
        "is improper (it grows as sigma_y^-(N - n) near 0) and NUTS cannot fit it; the 'eb' "
        "engine bounds the nugget and fits these data"
    )


def hetgp_bounds(x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""HetGP's ``auto_bounds`` for the Gaussian kernel: the box of the length-scales theta.

    Rescales the distinct inputs to the unit cube (a constant column keeps its scale), takes
    the 5% and 95% quantiles of the squared Euclidean distances between them (R's default
    quantile, numpy's "linear") and returns
    ``(-q05 / log 0.01 * range^2, -q95 / log 0.5 * range^2)`` per column, hetGP's
    :math:`\theta = 2 l^2`.

    Parameters
    ----------
    x0 : numpy.ndarray
        Distinct inputs, shape (n, p), n >= 2.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper bounds of theta, each (p,).
    """
    x0 = np.asarray(x0, dtype=float)
    low, high = x0.min(axis=0), x0.max(axis=0)
    ranges = np.where(high > low, high - low, 1.0)
    scaled = (x0 - low) / ranges
    rows, cols = np.tril_indices(scaled.shape[0], -1)
    distances = np.sum((scaled[rows] - scaled[cols]) ** 2, axis=1)
    q_low, q_high = np.quantile(distances, [0.05, 0.95])
    return (
        -q_low / math.log(0.01) * ranges**2,
        -q_high / math.log(0.5) * ranges**2,
    )


def hetgp_start_nugget(mult: np.ndarray, z0: np.ndarray, y: np.ndarray, index: np.ndarray) -> float:
    """HetGP's starting nugget: 0.1, or the within/between variance ratio with > 2 replicates."""
    many = mult > 2
    if not many.any() or z0.size < 2:
        return 0.1
    squares = np.bincount(index, weights=(y - z0[index]) ** 2, minlength=z0.size)
    ratio = float(np.mean(squares[many] / mult[many]) / np.var(z0, ddof=1))
    return ratio if math.isfinite(ratio) and ratio > 0 else 0.1


@dataclass(frozen=True, eq=False)
class _Fit:
    """The empirical-Bayes fit: hyper-parameters and what the kriging predictor needs."""

    x0: np.ndarray
    mult: np.ndarray
    z0: np.ndarray
    theta: np.ndarray
    g: float
    nu: float
    beta0: float
    log_likelihood: float
    k_inverse: np.ndarray
    k_inverse_ones: np.ndarray
    ones_k_inverse_ones: float
    weights: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    start: int
    reached: np.ndarray
    evaluations: int

    def cross(self, points: np.ndarray) -> np.ndarray:
        """Correlations of ``points`` with the distinct inputs, (m, n)."""
        return _correlation(np.ascontiguousarray(points, dtype=float), self.x0, self.theta)

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kriging mean and variance at ``points`` (scaled inputs), and the (m, n) factors."""
        k = self.cross(points)
        mean = self.beta0 + k @ self.weights
        a = k @ self.k_inverse
        trend = 1.0 - a.sum(axis=1)
        variance = self.nu * (
            1.0 - np.einsum("ij,ij->i", a, k) + trend**2 / self.ones_k_inverse_ones
        )
        return mean, np.maximum(variance, 0.0), k

    def covariance(self, points: np.ndarray) -> np.ndarray:
        """Joint kriging covariance at ``points`` (scaled inputs), (m, m)."""
        k = self.cross(points)
        a = k @ self.k_inverse
        trend = 1.0 - a.sum(axis=1)
        prior = _correlation(np.ascontiguousarray(points, dtype=float), points, self.theta)
        cov = self.nu * (prior - a @ k.T + np.outer(trend, trend) / self.ones_k_inverse_ones)
        return 0.5 * (cov + cov.T)


def fit_hetgp(
    inputs: np.ndarray,
    y: np.ndarray,
    *,
    n_starts: int = EB_STARTS,
    screen: int = EB_SCREEN,
    max_iter: int = 100,
    pgtol: float = 1e-5,
    ftol: float = 1e7 * np.finfo(float).eps,
) -> _Fit:
    """Maximise hetGP's concentrated likelihood (``mleHomGP``, Gaussian kernel) from several starts.

    Parameters
    ----------
    inputs : numpy.ndarray
        Scaled inputs, shape (N, p).
    y : numpy.ndarray
        Responses, shape (N,).
    n_starts : int
        hetGP's start and the best ``n_starts - 1`` of the screen.
    screen : int
        Scrambled Sobol points of the box whose likelihood is evaluated to choose the starts.
    max_iter, pgtol, ftol : float
        Stopping rules of each quasi-Newton run (iterations, projected gradient on the unit
        box, relative decrease of an iteration; hetGP's L-BFGS-B uses ``factr = 1e7``).

    Returns
    -------
    _Fit

    Raises
    ------
    DataError
        For responses that are all equal (the likelihood has no maximum) or fewer than two
        distinct inputs.
    """
    y = np.asarray(y, dtype=float)
    x0, mult, z0, within, index = _distinct(np.asarray(inputs, dtype=float), y)
    # With every response equal the concentrated likelihood grows without bound as nu -> 0;
    # the spread is judged relative to the responses' size, free of their units.
    if y.size and np.ptp(y) <= EQUAL_RESPONSES * np.max(np.abs(y)):
        raise DataError(
            f"column {RESPONSE!r}: the responses are all equal ({float(y[0])!r}), so the GP's "
            "variance has no maximum-likelihood estimate"
        )
    if x0.shape[0] < 2:
        raise DataError(
            "the GP surface needs responses at two distinct (dose, covariate) points at least; "
            f"the data have {x0.shape[0]}"
        )
    p = x0.shape[1]
    theta_low, theta_high = hetgp_bounds(x0)
    lower = np.log(np.append(theta_low, HETGP_G_BOUNDS[0]))
    upper = np.log(np.append(theta_high, HETGP_G_BOUNDS[1]))
    g_start = min(max(hetgp_start_nugget(mult, z0, y, index), HETGP_G_BOUNDS[0]), 100.0)
    first = np.append(0.5 * (lower[:p] + upper[:p]), math.log(g_start))
    first_unit = (first - lower) / (upper - lower)
    unit = _screen_points(screen, p + 1)
    n_total = float(y.size)
    best, value, start, reached, evaluations = _multistart(
        lower, upper, first_unit, unit, n_starts, x0, mult, z0, within, n_total,
        max_iter, pgtol, ftol,
    )  # fmt: skip
    if not np.isfinite(value):
        raise DataError("the GP likelihood could not be evaluated at any start (singular data)")
    # A column constant in the data leaves the likelihood flat in its theta (every distance
    # along it is 0), so the winning start's value would be arbitrary, yet it sets how the
    # surface at another stratum borrows: it keeps hetGP's start, where hetGP's own
    # optimiser (gradient 0) leaves it.
    constant = np.ptp(x0, axis=0) == 0.0
    best[:p][constant] = first[:p][constant]
    theta, g = np.exp(best[:p]), float(np.exp(best[p]))
    k = _correlation(x0, x0, theta) + np.diag(HETGP_EPS + g / mult)
    low, _ = cholesky(k)
    k_inverse = _inverse_from_cholesky(low)
    ones = k_inverse.sum(axis=0)
    total = float(ones.sum())
    beta0 = float(ones @ z0 / total)
    resid = z0 - beta0
    nu = float((within / g + resid @ k_inverse @ resid) / n_total)
    return _Fit(
        x0=x0,
        mult=mult,
        z0=z0,
        theta=theta,
        g=g,
        nu=nu,
        beta0=beta0,
        log_likelihood=-float(value),
        k_inverse=k_inverse,
        k_inverse_ones=ones,
        ones_k_inverse_ones=total,
        weights=k_inverse @ resid,
        lower=lower,
        upper=upper,
        start=int(start),
        reached=-np.asarray(reached),
        evaluations=int(evaluations),
    )


_SCREENS: dict[tuple[int, int], np.ndarray] = {}


def _screen_points(count: int, dim: int) -> np.ndarray:
    """Return the first ``count`` points of a fixed scrambled Sobol sequence in the unit cube."""
    from scipy.stats import qmc

    key = (count, dim)
    if key not in _SCREENS:
        power = max(1, math.ceil(math.log2(max(count, 1))))
        points = qmc.Sobol(dim, scramble=True, seed=_SCREEN_SEED).random_base2(power)
        _SCREENS[key] = np.ascontiguousarray(points[:count])
    return _SCREENS[key]


# --------------------------------------------------------------------------- posterior


@dataclass(frozen=True, eq=False)
class GPSurfacePosterior(DosePosterior):
    r"""The empirical-Bayes posterior of the surface: exact kriging moments on the levels.

    A :class:`~dosezoo.posterior.DosePosterior` whose levels are the model's candidate
    combinations in every stratum (``level_columns`` = dose columns, then covariates) and
    whose surface ``f`` is exactly normal given the estimated hyper-parameters
    (``normal["f"]``), with what the fit found.

    Attributes
    ----------
    log_likelihood : float
        hetGP's concentrated log marginal likelihood at the estimates.
    hyperparameters : dict of str to float
        ``beta0``, ``nu``, ``nugget`` (:math:`\tau^2 = g`), ``sigma_y``
        (:math:`\sqrt{\nu g}`), and per input ``lengthscale_<column>`` (:math:`l`) and
        ``theta_<column>`` (hetGP's :math:`2 l^2`).
    bounds : dict of str to (float, float)
        The optimiser's box of ``theta_<column>`` and ``nugget`` (hetGP's defaults).
    on_bound : dict of str to str
        The estimated parameters on a bound of the box: ``"lower"`` or ``"upper"``.
    optimizer : dict
        ``starts`` (reached log likelihood from each start), ``best_start`` (0: hetGP's
        start) and ``evaluations`` of the likelihood.
    """

    log_likelihood: float = math.nan
    hyperparameters: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    on_bound: Mapping[str, str] = field(default_factory=dict)
    optimizer: Mapping[str, Any] = field(default_factory=dict)
    fit: _Fit | None = field(default=None, repr=False)
    model: "GPSurface | None" = field(default=None, repr=False)

    def predict(
        self, points: np.ndarray, *, full_covariance: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Kriging mean and variance of the latent surface at ``points``.

        Parameters
        ----------
        points : array_like
            Shape (m, J + P): doses (the model's units) then covariate values, in the order
            of ``level_columns``; a single point may be given as a 1-d array.
        full_covariance : bool
            Return the (m, m) joint covariance instead of the variances.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            :math:`\mu` (m,) and :math:`\sigma^2` (m,) (or the covariance), eq (2) with the
            factor :math:`\hat\nu` on the trend term.

        Raises
        ------
        DataError
            (a ValueError) For a dose that is not finite or lies outside the model's
            ``dose_bounds``, or a covariate value that is not a declared level, naming its
            column, row and value (:meth:`GPSurface.check_points`): the kernel would return
            NaN, or the prior mean far from the data, as if it were a prediction.
        """
        if self.fit is None or self.model is None:
            raise ValueError("this posterior holds no fit to predict from")
        self.model.check_points(points)
        inputs = self.model.inputs(points)
        mean, variance, _ = self.fit.predict(inputs)
        if full_covariance:
            return mean, self.fit.covariance(inputs)
        return mean, variance

    @cached_property
    def diagnostics(self) -> pd.DataFrame:
        """One row per estimated hyper-parameter: estimate, lower, upper, ``on_bound``."""
        rows = {
            name: {
                "estimate": self.hyperparameters[name],
                "lower": low,
                "upper": high,
                "on_bound": self.on_bound.get(name, ""),
            }
            for name, (low, high) in self.bounds.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- the model


def _names(owner: str, field_name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str | list | tuple):
        raise ValueError(f"{owner}: {field_name} must be column names, got {value!r}")
    names = (value,) if isinstance(value, str) else tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{owner}: {field_name} must be column names, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: {field_name} names a column twice: {names!r}")
    return names


def _digest(data: TrialData) -> str:
    """Return a hash of everything the model reads from the data."""
    digest = hashlib.sha256(np.asarray(data.doses, float).tobytes())
    for name in data.covariates:
        digest.update(np.asarray(data.column(name)).astype(str).tobytes())
    if RESPONSE in data.outcomes:
        digest.update(np.asarray(data.column(RESPONSE), float).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class GPSurface(DoseModel):
    r"""Gaussian-process surface of a continuous response over drug combinations (and strata).

    See the module docstring for the model, the empirical-Bayes fit (the paper's, the fast
    posterior) and the PyMC model (full Bayes, ``fit(engine="nuts")``).

    Parameters
    ----------
    dose_columns : sequence of str
        The J >= 2 dose columns of the data (default ``("d1", "d2")``).
    covariates : sequence of str
        Covariates whose levels define the strata (none: the standard model of Algorithm 1).
    covariate_levels : mapping of str to sequence of float, optional
        The declared levels of each covariate (default ``(0, 1)``: binary); data with another
        value are refused.
    dose_bounds : sequence of (float, float), optional
        The box of doses of interest per dose column, mapped to :math:`[0, 1]` (default
        ``(0, 1)`` each: standardised doses). Data outside it are refused.
    grid_step : float
        Spacing of the candidate grid as a fraction of each dose range (0.25: the five
        levels 0, 0.25, ..., 1 of the paper's manufacturing precision).
    n_starts : int
        Starts of the empirical-Bayes optimiser: hetGP's own and the best ``n_starts - 1``
        of the screen, one per cell of the box first (16).
    screen : int
        Scrambled Sobol points of the box screened for starts (128).
    response_scale : (float, float), optional
        Location and scale :math:`(m, s)` of the PyMC model's priors; by default the mean
        and standard deviation of the responses (1 for fewer than two distinct values).
    lengthscale_prior : (float, float)
        Shape and scale of the inverse-gamma prior of every dose length-scale (PyMC model).
    covariate_lengthscale_prior : (float, float)
        The same for every covariate length-scale.

    Examples
    --------
    >>> gp = GPSurface(dose_columns=("d1", "d2"), covariates=("z",))
    >>> post = gp.posterior(data)  # doctest: +SKIP
    >>> mean, var = post.predict([[0.25, 0.75, 0.0]])  # doctest: +SKIP
    """

    model_name: ClassVar[str] = "GPSurface"
    outcomes: ClassVar[tuple[str, ...]] = (RESPONSE,)
    default_engine: ClassVar[str] = "eb"
    fast_engine: ClassVar[str | None] = "eb"
    min_fit_patients: ClassVar[int] = 2

    # Annotated as __post_init__ stores them (tuples; None replaced by the defaults above).
    dose_columns: tuple[str, ...] = ("d1", "d2")
    covariates: tuple[str, ...] = ()
    _: KW_ONLY
    covariate_levels: Mapping[str, tuple[float, ...]] = None  # type: ignore[assignment]
    dose_bounds: tuple[tuple[float, float], ...] = None  # type: ignore[assignment]
    grid_step: float = 0.25
    n_starts: int = EB_STARTS
    screen: int = EB_SCREEN
    response_scale: tuple[float, float] | None = None
    lengthscale_prior: tuple[float, float] = LENGTHSCALE_PRIOR
    covariate_lengthscale_prior: tuple[float, float] = COVARIATE_LENGTHSCALE_PRIOR

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "GPSurface"
        doses = _names(owner, "dose_columns", self.dose_columns)
        if len(doses) < 2:
            raise ValueError(f"{owner}: dose_columns must name J >= 2 columns, got {doses!r}")
        covariates = _names(owner, "covariates", self.covariates)
        if set(covariates) & set(doses) or RESPONSE in (*doses, *covariates):
            raise ValueError(
                f"{owner}: covariates {covariates!r} and dose_columns {doses!r} must be "
                f"distinct columns, none named {RESPONSE!r}"
            )
        reserved = reserved_columns()
        for name in (*doses, *covariates):
            if name in reserved:
                raise ValueError(
                    f"{owner}: {name!r} cannot be a dose column or covariate: the trial data "
                    "keep it as their cohort, schedule or outcome column"
                )
        if len(doses) + len(covariates) > _MAX_INPUTS:
            raise ValueError(f"{owner}: at most {_MAX_INPUTS} dose columns and covariates")
        given = {} if self.covariate_levels is None else self.covariate_levels
        if not isinstance(given, Mapping) or set(given) - set(covariates):
            raise ValueError(
                f"{owner}: covariate_levels must map covariates {covariates!r} to their "
                f"levels, got {self.covariate_levels!r}"
            )
        levels: dict[str, tuple[float, ...]] = {}
        for name in covariates:
            raw = given.get(name, (0.0, 1.0))
            values = tuple(
                real_number(owner, f"covariate_levels[{name!r}][{i}]", v) for i, v in enumerate(raw)
            )
            if len(values) < 2 or len(set(values)) != len(values):
                raise ValueError(
                    f"{owner}: covariate_levels[{name!r}] must be at least two distinct "
                    f"numbers, got {raw!r}"
                )
            levels[name] = tuple(sorted(values))
        raw_bounds = self.dose_bounds if self.dose_bounds is not None else [(0.0, 1.0)] * len(doses)
        if isinstance(raw_bounds, str) or len(raw_bounds) != len(doses):
            raise ValueError(
                f"{owner}: dose_bounds must give (lo, hi) for each of the {len(doses)} dose "
                f"columns, got {self.dose_bounds!r}"
            )
        bounds = []
        for j, pair in enumerate(raw_bounds):
            if isinstance(pair, str) or len(pair) != 2:
                raise ValueError(f"{owner}: dose_bounds[{j}] must be (lo, hi), got {pair!r}")
            low = real_number(owner, f"dose_bounds[{j}][0]", pair[0])
            high = real_number(owner, f"dose_bounds[{j}][1]", pair[1])
            if not low < high:
                raise ValueError(f"{owner}: dose_bounds[{j}] must have lo < hi, got {pair!r}")
            bounds.append((low, high))
        step = positive_number(owner, "grid_step", self.grid_step)
        intervals = 1.0 / step
        if step > 1 or abs(intervals - round(intervals)) > 1e-9:
            raise ValueError(
                f"{owner}: grid_step must divide [0, 1] into whole steps (1/step an integer "
                f"<= 1/step), got {self.grid_step!r}"
            )
        n_starts = positive_int(owner, "n_starts", self.n_starts)
        screen = positive_int(owner, "screen", self.screen)
        if screen < n_starts - 1:
            raise ValueError(
                f"{owner}: screen must be at least n_starts - 1 = {n_starts - 1}, got {screen!r}"
            )
        scale = None
        if self.response_scale is not None:
            if isinstance(self.response_scale, str) or len(self.response_scale) != 2:
                raise ValueError(
                    f"{owner}: response_scale must be (location, scale), got "
                    f"{self.response_scale!r}"
                )
            scale = (
                real_number(owner, "response_scale[0]", self.response_scale[0]),
                positive_number(owner, "response_scale[1]", self.response_scale[1]),
            )
        priors: dict[str, tuple[float, ...]] = {}
        for name in ("lengthscale_prior", "covariate_lengthscale_prior"):
            value = getattr(self, name)
            if isinstance(value, str) or len(value) != 2:
                raise ValueError(f"{owner}: {name} must be (shape, scale), got {value!r}")
            priors[name] = tuple(
                positive_number(owner, f"{name}[{i}]", v) for i, v in enumerate(value)
            )
        validated: dict[str, object] = {
            "dose_columns": doses,
            "covariates": covariates,
            "covariate_levels": levels,
            "dose_bounds": tuple(bounds),
            "grid_step": step,
            "n_starts": n_starts,
            "screen": screen,
            "response_scale": scale,
            **priors,
        }
        for name, value in validated.items():
            object.__setattr__(self, name, value)

    def parameters(self) -> dict[str, Any]:
        """Return the options as a JSON-serialisable dict."""
        return {
            "dose_columns": list(self.dose_columns),
            "covariates": list(self.covariates),
            "covariate_levels": {k: list(v) for k, v in self.covariate_levels.items()},
            "dose_bounds": [list(pair) for pair in self.dose_bounds],
            "grid_step": self.grid_step,
            "n_starts": self.n_starts,
            "screen": self.screen,
            "response_scale": None if self.response_scale is None else list(self.response_scale),
            "lengthscale_prior": list(self.lengthscale_prior),
            "covariate_lengthscale_prior": list(self.covariate_lengthscale_prior),
        }

    # ------------------------------------------------------------------ the grid and strata

    @property
    def level_columns(self) -> tuple[str, ...]:
        """Names of the components of a level: the dose columns, then the covariates."""
        return (*self.dose_columns, *self.covariates)

    @cached_property
    def grid(self) -> np.ndarray:
        """The candidate combinations in dose units, (G, J), the last dose column fastest."""
        steps = round(1.0 / self.grid_step)
        axes = [np.linspace(low, high, steps + 1) for low, high in self.dose_bounds]
        grid = np.array(list(itertools.product(*axes)), dtype=float)
        grid.flags.writeable = False
        return grid

    @cached_property
    def strata(self) -> tuple[tuple[float, ...], ...]:
        """The strata: every combination of covariate levels (one empty stratum without)."""
        return tuple(itertools.product(*(self.covariate_levels[c] for c in self.covariates)))

    @cached_property
    def stratum_labels(self) -> tuple[str, ...]:
        """A label per stratum, e.g. ``"z=0"`` or ``"z1=0,z2=1"`` (``"all"`` without)."""
        if not self.covariates:
            return ("all",)
        return tuple(
            ",".join(f"{c}={v:g}" for c, v in zip(self.covariates, stratum, strict=True))
            for stratum in self.strata
        )

    def stratum_values(self, index: int) -> dict[str, float]:
        """Return the covariate values of stratum ``index`` (empty without covariates)."""
        return dict(zip(self.covariates, self.strata[index], strict=True))

    @cached_property
    def levels(self) -> np.ndarray:
        """Every candidate combination in every stratum, (S * G, J + P), stratum-major."""
        blocks = [
            np.column_stack([self.grid, np.tile(np.asarray(stratum, float), (len(self.grid), 1))])
            for stratum in self.strata
        ]
        levels = np.vstack(blocks) if self.covariates else self.grid.copy()
        levels.flags.writeable = False
        return levels

    def _points(self, points: np.ndarray) -> np.ndarray:
        """Points as a float array (m, J + P); a ValueError for another number of columns."""
        points = np.atleast_2d(np.asarray(number_array("GPSurface", "points", points), float))
        width = len(self.level_columns)
        if points.ndim != 2 or points.shape[1] != width:
            raise ValueError(
                f"GPSurface: points must have {width} columns ({', '.join(self.level_columns)})"
                f", got shape {points.shape}"
            )
        return points

    def inputs(self, points: np.ndarray) -> np.ndarray:
        """Kernel inputs of points (doses in units, then covariates): doses mapped to [0, 1]."""
        points = self._points(points)
        inputs = points.copy()
        for j, (low, high) in enumerate(self.dose_bounds):
            inputs[:, j] = (points[:, j] - low) / (high - low)
        return np.ascontiguousarray(inputs)

    def data_points(self, data: TrialData) -> np.ndarray:
        """Return the data's doses and covariates as points, (n, J + P)."""
        columns = [data.column(name) for name in self.dose_columns]
        columns += [np.asarray(data.column(name), dtype=float) for name in self.covariates]
        if not data.n_patients:
            return np.empty((0, len(self.level_columns)))
        return np.column_stack(columns).astype(float)

    # ------------------------------------------------------------------ data

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Raise a DataError for data the model cannot use, naming the column, row and value.

        The data need the model's dose columns, its covariates and ``response``; every dose
        must lie in the model's box and every covariate value be a declared level.
        """
        owner = self.model_name
        if tuple(data.dose_columns) != tuple(self.dose_columns):
            raise DataError(
                f"{owner}: the data's dose columns {tuple(data.dose_columns)!r} are not the "
                f"model's {tuple(self.dose_columns)!r}"
            )
        for name in self.covariates:
            if name not in data.covariates:
                raise DataError(
                    f"{owner}: the data lack covariate column {name!r} (declare it: "
                    f"TrialData(..., covariates={tuple(self.covariates)!r}))"
                )
        data.require(RESPONSE, min_patients=min_patients, model=owner)
        self._check_columns({name: data.column(name) for name in self.level_columns})

    def check_points(self, points: np.ndarray) -> None:
        """Raise a DataError for points off the model's box or strata, naming column, row, value.

        The checks of :meth:`check_data`, on points (doses in the model's units, then
        covariate values, in the order of ``level_columns``): each dose finite and inside
        ``dose_bounds``, each covariate value a declared level.
        """
        self._check_columns(dict(zip(self.level_columns, self._points(points).T, strict=True)))

    def _check_columns(self, columns: Mapping[str, np.ndarray]) -> None:
        """Refuse a dose off the box (NaN and inf included) or an undeclared covariate level."""
        for j, name in enumerate(self.dose_columns):
            values = np.asarray(columns[name], dtype=float)
            low, high = self.dose_bounds[j]
            # Written as "not inside" so that NaN, which compares False, is refused too.
            outside = np.flatnonzero(~((values >= low) & (values <= high)))
            if outside.size:
                row = int(outside[0])
                raise DataError(
                    f"column {name!r}, row {row}: value {float(values[row])!r} is outside the "
                    f"model's dose box [{low:g}, {high:g}]"
                )
        for name in self.covariates:
            values = columns[name]
            declared = self.covariate_levels[name]
            for row, value in enumerate(values):
                # A number only: float() would read the text "0_0" or a full-width digit as one.
                real = isinstance(value, numbers.Real) and not isinstance(value, bool)
                if not real or float(value) not in declared:
                    shown = value.item() if isinstance(value, np.generic) else value
                    raise DataError(
                        f"column {name!r}, row {row}: value {shown!r} is not a declared level "
                        f"of the covariate {declared!r}"
                    )

    # ------------------------------------------------------------------ empirical Bayes

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> GPSurfacePosterior:
        """Compute the empirical-Bayes posterior of the surface (hetGP's fit; exact).

        Parameters
        ----------
        data : TrialData
            Two distinct (dose, covariate) points at least.
        sampling : Sampling, optional
            Ignored: the posterior given the estimates is exact.

        Returns
        -------
        GPSurfacePosterior
        """
        self.check_data(data, min_patients=self.min_fit_patients)
        inputs = self.inputs(self.data_points(data))
        fit = fit_hetgp(
            inputs, np.asarray(data.column(RESPONSE)), n_starts=self.n_starts, screen=self.screen
        )
        return self._posterior(fit)

    def _posterior(self, fit: _Fit) -> GPSurfacePosterior:
        levels = self.inputs(self.levels)
        mean, variance, _ = fit.predict(levels)
        names = [f"theta_{c}" for c in self.level_columns] + ["nugget"]
        estimates = np.append(fit.theta, fit.g)
        lower, upper = np.exp(fit.lower), np.exp(fit.upper)
        width = fit.upper - fit.lower
        logs = np.log(estimates)
        on_bound = {}
        for i, name in enumerate(names):
            if logs[i] <= fit.lower[i] + 1e-6 * width[i]:
                on_bound[name] = "lower"
            elif logs[i] >= fit.upper[i] - 1e-6 * width[i]:
                on_bound[name] = "upper"
        hyper = {
            "beta0": fit.beta0,
            "nu": fit.nu,
            "nugget": fit.g,
            "sigma_y": math.sqrt(fit.nu * fit.g),
        }
        for c, theta in zip(self.level_columns, fit.theta, strict=True):
            hyper[f"lengthscale_{c}"] = math.sqrt(theta / 2.0)
            hyper[f"theta_{c}"] = float(theta)
        normal = NormalLevels(mean, variance, lambda: fit.covariance(levels))
        return GPSurfacePosterior(
            dose_levels=tuple(map(tuple, self.levels.tolist())),
            rates={},
            level_columns=self.level_columns,
            normal={"f": normal},
            parameter_mean={
                "beta0": fit.beta0,
                "nu": fit.nu,
                "tau2": fit.g,
                "sigma_y": hyper["sigma_y"],
                "eta": math.sqrt(fit.nu),
            },
            log_likelihood=fit.log_likelihood,
            hyperparameters=hyper,
            bounds={name: (float(lower[i]), float(upper[i])) for i, name in enumerate(names)},
            on_bound=on_bound,
            optimizer={
                "starts": fit.reached.tolist(),
                "best_start": fit.start,
                "evaluations": fit.evaluations,
            },
            fit=fit,
            model=self,
        )

    # ------------------------------------------------------------------ the optimum

    def optimum_probabilities(
        self,
        posterior: DosePosterior,
        *,
        draws: int = 4000,
        random_seed: int | np.random.Generator | None = None,
        goal: str = "minimize",
    ) -> np.ndarray:
        r"""Posterior probability that each candidate combination is the optimum, per stratum.

        :math:`P(d_{opt} = d \mid \text{data}, z_k)` from joint draws of the surface on the
        grid (:meth:`~dosezoo.posterior.DosePosterior.joint_draws`: every MCMC draw of a fit,
        whatever ``draws`` says, or ``draws`` draws of the exact normal of the empirical-Bayes
        posterior),
        :math:`d_{opt,s} = \arg\min_d f_s(d, z_k)` (``argmax`` with ``goal="maximize"``).

        Returns
        -------
        numpy.ndarray
            Shape (S, G): strata by candidate combinations, rows summing to 1.
        """
        choice("optimum_probabilities", "goal", goal, ("minimize", "maximize"))
        draws = positive_int("optimum_probabilities", "draws", draws)
        # Resampling MCMC draws would only add to their Monte Carlo error.
        exact = "f" in posterior.normal or not posterior.sampled
        surfaces = posterior.joint_draws("f", draws if exact else None, random_seed)
        n_grid, n_strata = len(self.grid), len(self.strata)
        if surfaces.shape[1] != n_grid * n_strata:
            raise ValueError(
                f"the posterior's surface has {surfaces.shape[1]} levels, the model "
                f"{n_grid * n_strata} ({n_strata} strata x {n_grid} combinations)"
            )
        blocks = surfaces.reshape(surfaces.shape[0], n_strata, n_grid)
        best = blocks.argmax(axis=2) if goal == "maximize" else blocks.argmin(axis=2)
        out = np.zeros((n_strata, n_grid))
        for k in range(n_strata):
            out[k] = np.bincount(best[:, k], minlength=n_grid) / best.shape[0]
        return out

    # ------------------------------------------------------------------ prior and predictive checks

    def _point_labels(self, points: np.ndarray) -> list[str]:
        """Labels of points (dose columns, then covariates): ``"d1, d2[, covariate]"``."""
        return [", ".join(f"{value:g}" for value in row) for row in points]

    def prior_moments(self, prior: xr.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
        """Prior draws of the surface ``f`` and of the noise variance ``sigma_y**2`` per level.

        The variance-ratio ESS of a level is the number of responses there whose mean has the
        prior's variance of the surface.
        """
        f = prior["f"].stack(sample=("chain", "draw")).transpose("sample", "dose").to_numpy()
        noise = prior["sigma_y"].to_numpy().reshape(-1, 1) ** 2
        return {"f": (f, np.broadcast_to(noise, f.shape), self._point_labels(self.levels))}

    # The PyMC model's likelihood is that of the mean response at each distinct point (and of
    # the within-point sum of squares), so the predictive statistic is that mean per point.

    def predictive_groups(self, data: TrialData) -> tuple[np.ndarray, list]:
        """Group patients by distinct point (doses, then covariates), in the model's order."""
        points = self.data_points(data)
        if not points.shape[0]:
            return np.zeros(0, dtype=int), []
        distinct, index = np.unique(points, axis=0, return_inverse=True)
        return index.reshape(-1), self._point_labels(distinct)

    def _observe(self, data: TrialData, group: np.ndarray, labels: list) -> dict[str, np.ndarray]:
        """Mean response per distinct point."""
        y = np.asarray(data.column(RESPONSE), dtype=float)
        mean = np.bincount(group, weights=y, minlength=len(labels)) / np.bincount(group)
        return {f"{RESPONSE} mean": mean}

    def _replicate(
        self, replicates: xr.Dataset, group: np.ndarray, labels: list
    ) -> dict[str, np.ndarray]:
        """Replicated mean response per distinct point."""
        mean = replicates[f"{RESPONSE}_mean"].stack(sample=("chain", "draw"))
        return {f"{RESPONSE} mean": mean.transpose("sample", "point").to_numpy()}

    # ------------------------------------------------------------------ PyMC model

    def _scale(self, y: np.ndarray) -> tuple[float, float]:
        """Location and scale of the priors: ``response_scale`` or the data's mean and sd."""
        if self.response_scale is not None:
            return float(self.response_scale[0]), float(self.response_scale[1])
        if y.size == 0:
            return 0.0, 1.0
        sd = float(np.std(y, ddof=1)) if y.size > 1 else 0.0
        return float(np.mean(y)), sd if sd > 0 else 1.0

    def build(
        self,
        data: TrialData,
        *,
        surface_given_responses: bool = True,
        replicates_given_responses: bool = False,
    ) -> "pm.Model":
        r"""Build the PyMC model: the marginal GP and the surface on the candidate grid.

        Free variables ``beta0``, ``eta`` (:math:`\sqrt\nu`), ``ls`` (dims ``input``),
        ``sigma_y`` and ``z_grid`` (dims ``dose``); deterministics ``f`` (the surface on
        the levels, dims ``dose``), ``nu`` and ``tau2`` (:math:`\sigma_y^2 / \nu`).

        The likelihood is the marginal GP written on its sufficient statistics, which cuts the
        cost of every gradient from the patients to the distinct points: the mean response
        at each of the :math:`n` distinct (dose, covariate) points, ``response_mean`` (dims
        ``point``) :math:`\sim N(\beta_0 1, \nu\,\mathcal K(X_0, X_0) + \sigma_y^2
        \operatorname{diag}(1/a_i))`, and, with replicates, the within-point sum of squares
        ``response_ss`` :math:`\sim \sigma_y^2 \chi^2_{N - n}` (a gamma with shape
        :math:`(N - n)/2` and rate :math:`1 / (2\sigma_y^2)`), independent of the means; the
        likelihood of the :math:`N` responses is their product up to a constant. The
        covariance of the means carries hetGP's jitter :math:`\nu\epsilon I`,
        :math:`\epsilon = \sqrt{\text{machine } \epsilon}` (``HETGP_EPS``), relative to
        the scale as in the empirical-Bayes :math:`K_0`, so that the model is
        :math:`y \sim N(\beta_0 1, \nu(\mathcal K(X, X) + \epsilon B) + \sigma_y^2 I)`
        (:math:`B_{ik} = 1` where patients :math:`i, k` share a point) on any scale of the
        responses.

        Parameters
        ----------
        data : TrialData
            The model's dose columns, covariates and ``response``; may be empty (the prior).
        surface_given_responses : bool
            ``f`` is :math:`\beta_0 + \sqrt{\mathcal C}\, z` with :math:`\mathcal C` the
            covariance on the grid given the mean responses (the kriging mean and covariance;
            what a fit samples), True; or the prior covariance alone, False: the prior
            predictive's surface, which must not read the planned data's responses.
        replicates_given_responses : bool
            ``response_mean`` is the likelihood's marginal GP, False; or, True, the model of
            a new mean response at each point given the responses (its latent value's
            kriging distribution plus its noise), what a posterior predictive check
            replicates. The marginal GP's replicates do not read the responses: their mean
            is :math:`\beta_0` at every point, however the fitted surface bends.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        self.check_data(data)
        y = np.asarray(data.column(RESPONSE), dtype=float)
        grid = self.inputs(self.levels)
        location, scale = self._scale(y)
        width = len(self.level_columns)
        n_levels = grid.shape[0]
        if y.size:
            x0, mult, z0, within, index = _distinct(self.inputs(self.data_points(data)), y)
            if surface_given_responses:
                _refuse_equal_replicates(y, mult, within, index)
        else:
            x0, mult, z0, within = np.empty((0, width)), np.empty(0), np.empty(0), 0.0
        coords = {
            "input": list(self.level_columns),
            "dose": np.arange(n_levels),
            "point": np.arange(z0.size),
        }
        n_doses = len(self.dose_columns)
        shapes_scales = [self.lengthscale_prior] * n_doses + [self.covariate_lengthscale_prior] * (
            width - n_doses
        )
        alpha, beta = (np.array(values) for values in zip(*shapes_scales, strict=True))
        with pm.Model(coords=coords) as model:
            beta0 = pm.Normal("beta0", mu=location, sigma=2.0 * scale)
            eta = pm.HalfNormal("eta", sigma=scale)
            ls = pm.InverseGamma("ls", alpha=alpha, beta=beta, dims="input")
            sigma_y = pm.HalfNormal("sigma_y", sigma=scale)
            z = pm.Normal("z_grid", 0.0, 1.0, dims="dose")
            cov = eta**2 * pm.gp.cov.ExpQuad(width, ls=ls)
            prior = cov(grid)
            if z0.size:
                # hetGP's jitter, relative to nu as in the empirical-Bayes K0: a fixed one
                # outweighs sigma_y**2 for responses on a small scale.
                noise = sigma_y**2 / mult
                k_data = cov(x0) + pt.diag(HETGP_EPS * eta**2 + noise)
                chol = pt.linalg.cholesky(k_data)
                white = pt.linalg.solve_triangular(chol, z0 - beta0, lower=True)
                if replicates_given_responses:
                    # With C the latent covariance at the points and D = diag(noise):
                    # mean z0 - D (C + D)^-1 (z0 - beta0), covariance 2D - D (C + D)^-1 D,
                    # the form of C - C (C + D)^-1 C + D that keeps it positive definite.
                    weighted = pt.linalg.solve_triangular(chol, pt.diag(noise), lower=True)
                    pm.MvNormal(
                        f"{RESPONSE}_mean",
                        mu=z0 - weighted.T @ white,
                        cov=2.0 * pt.diag(noise) - weighted.T @ weighted,
                        observed=z0,
                        dims="point",
                    )
                else:
                    pm.MvNormal(f"{RESPONSE}_mean", mu=beta0, cov=k_data, observed=z0, dims="point")
                if y.size > z0.size:
                    pm.Gamma(
                        f"{RESPONSE}_ss",
                        alpha=0.5 * (y.size - z0.size),
                        beta=0.5 / sigma_y**2,
                        observed=within,
                    )
            if z0.size and surface_given_responses:
                cross = pt.linalg.solve_triangular(chol, cov(x0, grid), lower=True)
                mean = beta0 + cross.T @ white
                conditional = prior - cross.T @ cross
            else:
                mean = beta0 * pt.ones(n_levels)
                conditional = prior
            conditional = conditional + SURFACE_JITTER * eta**2 * pt.eye(n_levels)
            root = pt.linalg.cholesky(conditional)
            pm.Deterministic("f", mean + root @ z, dims="dose")
            pm.Deterministic("nu", eta**2)
            pm.Deterministic("tau2", sigma_y**2 / eta**2)
        return model

    def _builder(self, data: TrialData) -> IdataBuilder:
        """Return a DataTree builder of the PyMC model for ``data`` (kept for the last data)."""
        key = ("builder", _digest(data))
        builder = self._cache.get(key)
        if builder is None:
            self._cache.clear()
            builder = self._cache[key] = IdataBuilder(self.build(data))
        return builder

    def _with_level_coords(self, idata: xr.DataTree) -> xr.DataTree:
        """Name the doses and covariates of every level as coordinates of the ``dose`` dim."""
        for group in ("posterior", "prior"):
            if group in idata.children and "dose" in idata[group].dims:
                dataset = idata[group].to_dataset()
                dataset = dataset.assign_coords(
                    {name: ("dose", self.levels[:, j]) for j, name in enumerate(self.level_columns)}
                )
                idata[group] = xr.DataTree(dataset)
        return idata

    @engine("nuts")
    def _fit_nuts(self, data: TrialData, **settings: Any) -> xr.DataTree:
        """PyMC's NUTS on :meth:`build` (full Bayes), with the levels named."""
        return self._with_level_coords(super()._fit_nuts(data, **settings))

    @engine("eb")
    def _fit_eb(
        self,
        data: TrialData,
        *,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | np.random.Generator | None,
        **_: Any,
    ) -> xr.DataTree:
        r"""Empirical Bayes in the PyMC schema: draws of the surface given the estimates.

        The hyper-parameters sit at their estimates, ``beta0`` is drawn from its normal
        posterior given them (flat prior: mean the GLS estimate, variance
        :math:`\hat\nu / 1^\top K_0^{-1} 1`) and ``z_grid`` is standard normal, so ``f``
        has exactly the kriging posterior. The estimates and the parameters on a bound are
        in the posterior group's attributes.
        """
        started = time.perf_counter()
        posterior = self.posterior(data)
        fit = posterior.fit
        assert fit is not None
        n_levels = self.levels.shape[0]
        beta0 = np.empty((chains, draws))
        z = np.empty((chains, draws, n_levels))
        for c, rng in enumerate(chain_generators(random_seed, chains)):
            beta0[c] = fit.beta0 + math.sqrt(
                fit.nu / fit.ones_k_inverse_ones
            ) * rng.standard_normal(draws)
            z[c] = rng.standard_normal((draws, n_levels))
        full = np.ones((chains, draws))
        free = {
            "beta0": beta0,
            "eta": full * math.sqrt(fit.nu),
            "ls": np.broadcast_to(np.sqrt(fit.theta / 2.0), (chains, draws, fit.theta.size)).copy(),
            "sigma_y": full * posterior.hyperparameters["sigma_y"],
            "z_grid": z,
        }
        idata = self._from_draws(data, free, {}, started=started, tune=0)
        idata = self._with_level_coords(idata)
        idata["posterior"].attrs.update(
            {
                "log_likelihood": posterior.log_likelihood,
                "on_bound": ",".join(f"{k}:{v}" for k, v in posterior.on_bound.items()),
                **{f"estimate_{k}": v for k, v in posterior.hyperparameters.items()},
            }
        )
        return idata

    def data_schema(self) -> dict[str, Any]:
        """Return the model's data schema: its dose columns, covariates and coded doses."""
        return {
            "dose_columns": tuple(self.dose_columns),
            "covariates": tuple(self.covariates),
            "coded_doses": True,
        }

    def empty_data(self) -> TrialData:
        """Return trial data with no patients in the model's schema (coded doses)."""
        return TrialData.empty(outcomes=(RESPONSE,), **self.data_schema())

    def _prior_model(self, data: TrialData) -> "pm.Model":
        """Return the model with the surface's prior, not its conditional on the responses."""
        return self.build(data, surface_given_responses=False)

    def _posterior_predictive_model(self, data: TrialData) -> "pm.Model":
        """Return the model whose mean responses are replicated given the responses."""
        return self.build(data, replicates_given_responses=True)

    def sample_prior_predictive(
        self,
        data: TrialData | None = None,
        *,
        draws: int = 1000,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataTree:
        """Draw surfaces from the prior (set ``response_scale`` when there are no data).

        As :meth:`DoseModel.sample_prior_predictive`, with empty data in the model's schema
        by default and the levels named on the ``dose`` dim. Without ``response_scale`` the
        priors are scaled by the responses of ``data`` (the prior a fit to them uses): for
        planned patients, whose responses are placeholders, set ``response_scale`` to the
        location and scale of the responses expected.
        """
        data = self.empty_data() if data is None else data
        idata = super().sample_prior_predictive(data, draws=draws, random_seed=random_seed)
        return self._with_level_coords(idata)

    def posterior_from_idata(
        self, idata: xr.DataTree, criteria: ConvergenceCriteria | None = None, **options: Any
    ) -> DosePosterior:
        """Read the surface ``f`` and the parameters from a fit, judged by ``criteria``.

        ``f`` is judged, and ``sigma_y`` too when its draws vary: the rule reads its posterior
        mean (the noise of the acquisition); a fit that holds it fixed (the empirical-Bayes
        one) has nothing of it to judge.
        """
        options.pop("levels", None)
        checked = ["f"]
        if isinstance(idata, xr.DataTree) and "posterior" in idata.children:
            noise = idata["posterior"].to_dataset().get("sigma_y")
            if noise is not None and np.ptp(noise.values) > 0:
                checked.append("sigma_y")
        posterior = DosePosterior.from_idata(idata, criteria, checked=checked)
        return replace_levels(posterior, self)


def replace_levels(posterior: DosePosterior, model: GPSurface) -> DosePosterior:
    """Return ``posterior`` with the model's levels (points) and their column names."""
    return dataclass_replace(
        posterior,
        dose_levels=tuple(map(tuple, model.levels.tolist())),
        level_columns=model.level_columns,
    )
