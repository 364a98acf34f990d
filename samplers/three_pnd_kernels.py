r"""Numba kernels that sample the 3PND posterior (Lee 2023, eqs (6)-(9)).

The PyMC model :class:`dosezoo.models.ThreePND` is the specification; the step methods in
:mod:`dosezoo.samplers.three_pnd` and the kernel engine (:func:`run_chain`) both call the
functions below, so they target the same posterior.

Model
-----
With :math:`w_i(\nu) = (x_i - x_{min})^\nu`, :math:`z = \Phi^{-1}(\gamma)`,
:math:`R = x_{max} - x_{min}` and :math:`S = \eta / z`:

.. math::

    y_i \mid \beta, \sigma, \nu &\sim N(\beta w_i(\nu), \sigma^2) \\
    \beta \mid \sigma, \nu &\sim U(l, u), \quad l = (\eta - \sigma z) R^{-\nu},
        \quad u = \eta R^{-\nu} + \sigma z \\
    \sigma &\sim C^+(0, 1) \text{ truncated to } (0, S) \\
    \nu &\sim \log N(0, \delta^2)

The uniform prior of :math:`\beta` is *normalised*: its density is
:math:`1 / (u - l) = 1 / \{\sigma z (1 + R^{-\nu})\}`, which depends on :math:`\sigma` and
:math:`\nu`. The joint posterior density is therefore

.. math::

    p(\beta, \sigma, \nu \mid y) \propto \sigma^{-n}
        \exp\{-c(\beta, \nu) / \sigma^2\}
        \cdot \frac{1\{l < \beta < u\}}{\sigma (1 + R^{-\nu})}
        \cdot \frac{1\{0 < \sigma < S\}}{1 + \sigma^2}
        \cdot \log N(\nu \mid 0, \delta^2),
    \qquad c(\beta, \nu) = \tfrac12 \sum_i (y_i - \beta w_i(\nu))^2 .

Full conditionals (derived here; they are what each move leaves invariant)
---------------------------------------------------------------------------
**beta** (Gibbs, :func:`draw_beta`). Only the likelihood and the indicator depend on
:math:`\beta`: with :math:`S_{ww} = \sum w_i^2`, :math:`S_{wy} = \sum w_i y_i`,

.. math:: \beta \mid \sigma, \nu, y \sim N(S_{wy}/S_{ww}, \sigma^2 / S_{ww})
          \text{ truncated to } (l, u),

drawn exactly by inversion of the normal CDF in log space (:func:`truncated_normal`).

**sigma** (slice with the auxiliary variable of the paper's Algorithm 4,
:func:`draw_sigma_slice`). The support :math:`l < \beta < u` is a constraint on
:math:`\sigma` too: :math:`\beta > l \iff \sigma > (\eta - \beta R^\nu)/z` and
:math:`\beta < u \iff \sigma > (\beta - \eta R^{-\nu})/z`, so
:math:`h < \sigma < S` with :math:`h = \max\{0, (\eta - \beta R^\nu)/z,
(\beta - \eta R^{-\nu})/z\}`. In :math:`\tau = \sigma^2`
(:math:`d\sigma/d\tau = \tau^{-1/2}/2`),

.. math:: p(\tau \mid \beta, \nu, y) \propto \tau^{-n/2 - 1} e^{-c/\tau} \cdot
          \frac{1}{1 + \tau} \cdot 1\{h^2 < \tau < S^2\},

the paper's eq (19): the factor :math:`1/\sigma` of the normalised uniform prior is what
turns :math:`\tau^{-(n+1)/2}` into :math:`\tau^{-n/2-1}`. With
:math:`g(\tau) = 1/(1+\tau)` and an auxiliary :math:`v \mid \tau \sim U(0, g(\tau))`, the
conditional of :math:`\tau` given :math:`v` is the inverse gamma :math:`IG(n/2, c)`
truncated to :math:`(h^2, \min\{S^2, (1-v)/v\})`; :math:`1/\tau` is then a truncated
:math:`\mathrm{Gamma}(n/2, \text{rate } c)`, drawn exactly by inverting the regularised
incomplete gamma function in whichever tail is accurate (:func:`truncated_gamma`).

**nu** (elliptical slice on :math:`\phi = \log\nu`, the paper's Algorithm 5,
:func:`draw_nu_elliptical`). The log-normal prior with its Jacobian is exactly
:math:`N(\phi \mid 0, \delta^2)`, the Gaussian "prior" of elliptical slice sampling; the
"likelihood" is everything else that depends on :math:`\nu`:

.. math:: L(\phi) = \exp\{-c(\beta, e^\phi)/\sigma^2\} \cdot
          \frac{1\{l(\sigma, e^\phi) < \beta < u(\sigma, e^\phi)\}}{1 + R^{-e^\phi}} .

*Where the paper is wrong.* Its eq (20) omits the factor :math:`1/(1 + R^{-\nu})` of the
normalised uniform prior and the support indicator; both are kept here. Without them the
sampler targets a different posterior than the model it states.

Ridge move (:func:`ridge_move`)
-------------------------------
With informative data :math:`\beta` and :math:`\nu` lie on a narrow ridge and the
component-wise sweep above barely moves along it. The ridge move integrates
:math:`\beta` out. Writing :math:`\mu = S_{wy}/S_{ww}`, :math:`s = \sigma/\sqrt{S_{ww}}`,
:math:`Q = \sum_i (y_i - \mu w_i)^2`,

.. math::

    \int_l^u \prod_i N(y_i \mid \beta w_i, \sigma^2) \, d\beta
      = (2\pi\sigma^2)^{-n/2} e^{-Q/(2\sigma^2)} \sqrt{2\pi} \, s
        \{\Phi((u - \mu)/s) - \Phi((l - \mu)/s)\},

so the marginal posterior of :math:`(\sigma, \nu)` is, up to a constant,

.. math::

    p(\sigma, \nu \mid y) \propto \sigma^{-n} e^{-Q/(2\sigma^2)} S_{ww}^{-1/2}
        \left\{\Phi(b) - \Phi(a)\right\} \frac{1}{(1 + R^{-\nu})(1 + \sigma^2)}
        \, 1\{0 < \sigma < S\} \, \log N(\nu \mid 0, \delta^2).

The move updates :math:`\log\sigma` and then :math:`\phi = \log\nu` by univariate slice
sampling (stepping out and shrinkage, Neal 2003) on this marginal, then draws
:math:`\beta` exactly from its truncated-normal conditional. A kernel that leaves the marginal of
:math:`(\sigma, \nu)` invariant followed by an exact draw from :math:`\beta \mid \sigma, \nu`
leaves the joint posterior invariant (partially collapsed
Gibbs, van Dyk & Park 2008), and since :math:`\beta` is redrawn given the new
:math:`(\sigma, \nu)`, the chain moves along the ridge freely. (The marginal of
:math:`(\sigma, \nu)` is nearly uncorrelated on the O6-BG data, so one-at-a-time slice
updates mix well there; slice rather than elliptical slice for :math:`\phi` because its
posterior is often much narrower than its prior, where elliptical slice moves take small
steps.)

Numerical support: where :math:`S_{ww}(\nu) = \sum_i (x_i - x_{min})^{2\nu}` underflows
(below ``MIN_BASIS_MASS`` = 1e-280, i.e. :math:`\nu` in the hundreds when every dose is
within one unit of :math:`x_{min}`) the likelihood cannot be evaluated in double precision;
the moves treat such :math:`\nu` as outside the support. The posterior mass cut off is
negligible except for degenerate data that push :math:`\nu` to infinity (see
:class:`dosezoo.models.ThreePND`). The MTD is clamped into the open interval
:math:`(x_{min}, x_{max})` by at most one unit in the last place, where eq (5) rounds to an end
point.

Numerics: the kernels use numba's numpy error model, so an overflow far out in a tail (say
:math:`(x - x_{min})^\nu` for an extreme :math:`\nu` tried while stepping out) gives
``inf``/``nan`` rather than an exception; a ``nan`` log density compares as outside every
slice, so such points, whose posterior mass is negligible, are never accepted.

All functions take the hyper-parameters as one float array ``hyper`` laid out by
:func:`pack_hyper` and the data as the per-dose statistics ``obs`` of :func:`summarise`.
"""

import math

import numpy as np
from numba import njit

from dosezoo.samplers.numerics import exp_without_errno, numpy_sum
from dosezoo.samplers.special import (
    gammainc,
    gammaincc,
    gammainccinv,
    gammaincinv,
    log_ndtr,
    ndtri_exp,
)

# Layout of the ``hyper`` array.
ETA, Z, SIGMA_MAX, X_MIN, LOG_RANGE, DELTA, X_MAX = range(7)

#: Smallest ``S_ww`` for which the likelihood is evaluated (see "Numerical support").
MIN_BASIS_MASS = 1e-280

#: Initial slice width on log(sigma) (on log(nu) it is delta), and the stepping-out budget.
LOG_SIGMA_SLICE_WIDTH = 1.0
SLICE_MAX_STEPS = 32

#: Shrinkages after which a slice bracket has collapsed onto the current point (it keeps it).
MAX_SHRINKS = 200

#: Names and dtypes of the statistics each move reports (shared with the step methods), in
#: the order of the columns of :func:`run_chain`'s statistics.
BETA_STATS: dict[str, type[np.generic]] = {}
SIGMA_STATS = {"sigma_slice_fallback": np.bool_}
NU_STATS = {"nu_ess_shrinks": np.int64}
RIDGE_STATS = {"ridge_sigma_evals": np.int64, "ridge_nu_evals": np.int64}
SWEEP_STATS = BETA_STATS | SIGMA_STATS | NU_STATS | RIDGE_STATS


def pack_hyper(eta: float, z: float, x_min: float, x_max: float, delta: float) -> np.ndarray:
    """Lay the 3PND hyper-parameters out as the kernels expect them.

    Parameters
    ----------
    eta, z, x_min, x_max, delta : float
        Maximum toxicity level, ``Phi^-1(gamma)``, dose range and log-normal scale of nu.

    Returns
    -------
    numpy.ndarray
        ``[eta, z, eta / z, x_min, log(x_max - x_min), delta, x_max]``.
    """
    return np.array([eta, z, eta / z, x_min, math.log(x_max - x_min), delta, x_max])


@njit(cache=True, error_model="numpy")
def beta_bounds(sigma, nu, hyper):
    """Support ``(l, u)`` of beta given sigma and nu (Lee 2023, eq (7))."""
    r_neg = exp_without_errno(-nu * hyper[LOG_RANGE])
    return (hyper[ETA] - sigma * hyper[Z]) * r_neg, hyper[ETA] * r_neg + sigma * hyper[Z]


@njit(cache=True, error_model="numpy")
def sigma_floor(beta, nu, hyper):
    """Smallest sigma for which ``l(sigma, nu) < beta < u(sigma, nu)``."""
    r_pos = exp_without_errno(nu * hyper[LOG_RANGE])
    from_lower = (hyper[ETA] - beta * r_pos) / hyper[Z]
    from_upper = (beta - hyper[ETA] / r_pos) / hyper[Z]
    return max(0.0, from_lower, from_upper)


@njit(cache=True, error_model="numpy")
def mtd(beta, sigma, nu, hyper):
    """MTD of eq (5): ``x_min + ((eta - sigma z) / beta)^(1/nu)``, inside ``(x_min, x_max)``."""
    value = hyper[X_MIN] + ((hyper[ETA] - sigma * hyper[Z]) / beta) ** (1.0 / nu)
    return inside_open(value, hyper[X_MIN], hyper[X_MAX])


def summarise(dose: np.ndarray, y: np.ndarray, x_min: float) -> tuple:
    """Reduce the data to per-dose sufficient statistics, the form every kernel takes.

    Trials use a handful of dose levels, so working per level costs ``K`` exponentials per
    likelihood evaluation instead of ``n``. The within-level sum of squares keeps
    ``c(beta, nu)`` free of cancellation.

    Parameters
    ----------
    dose, y : numpy.ndarray
        One entry per patient; doses above ``x_min``.
    x_min : float
        Lower end of the dose range.

    Returns
    -------
    tuple
        ``(log_dx, count, mean, within_ss, n, s_yy)``: per level ``log(x - x_min)``, number
        of patients and mean response (float arrays), then the within-level sum of squares,
        the number of patients and ``sum_i y_i^2`` (floats).
    """
    y = np.asarray(y, float)
    levels, count, mean, within_ss, s_yy = _dose_moments(np.asarray(dose, float), y)
    return np.log(levels - x_min), count, mean, within_ss, float(y.size), s_yy


@njit(cache=True, error_model="numpy")
def _dose_moments(dose, y):
    """Return the distinct doses with their patients and mean responses, and two sums.

    The doses increasing; the sums are the within-dose sum of squares and ``sum_i y_i^2``.
    Compiled (a decision summarises its data, and numpy's dozen calls on a trial's few
    patients cost several times the work), with every float as numpy's ``bincount`` and
    ``sum`` formed it: the sums per dose in patient order, the two sums of squares by
    numpy's pairwise summation (:func:`~dosezoo.samplers.numerics.numpy_sum`).
    """
    levels = np.unique(dose)
    index = np.searchsorted(levels, dose)
    count = np.zeros(levels.size)
    total = np.zeros(levels.size)
    for i in range(dose.size):
        count[index[i]] += 1.0
        total[index[i]] += y[i]
    mean = total / np.maximum(count, 1.0)
    squares = np.empty(y.size)
    for i in range(y.size):
        residual = y[i] - mean[index[i]]
        squares[i] = residual * residual
    within_ss = numpy_sum(squares)
    for i in range(y.size):
        squares[i] = y[i] * y[i]
    return levels, count, mean, within_ss, numpy_sum(squares)


@njit(cache=True, error_model="numpy")
def moments(nu, obs):
    """Return ``S_ww = sum_i w_i^2`` and ``S_wy = sum_i w_i y_i`` for ``w = (x - x_min)^nu``."""
    log_dx, count, mean = obs[0], obs[1], obs[2]
    s_ww = 0.0
    s_wy = 0.0
    for j in range(log_dx.size):
        w = exp_without_errno(nu * log_dx[j])
        s_ww += count[j] * w * w
        s_wy += count[j] * w * mean[j]
    return s_ww, s_wy


@njit(cache=True, error_model="numpy")
def half_sum_squares(beta, nu, obs, s_ww, s_wy):
    """``c(beta, nu) = sum_i (y_i - beta w_i)^2 / 2``, given ``S_ww`` and ``S_wy`` at ``nu``.

    Expanded as ``(S_yy - 2 beta S_wy + beta^2 S_ww) / 2``, which needs no exponential; its
    absolute rounding error is about ``1e-16 S_yy``. When the fit is so close that ``c`` is
    below ``1e-8 S_yy`` (relative error above 1e-8), it is recomputed residual by residual.
    """
    expanded = 0.5 * (obs[5] - 2.0 * beta * s_wy + beta * beta * s_ww)
    if expanded > 1e-8 * obs[5]:
        return expanded
    log_dx, count, mean = obs[0], obs[1], obs[2]
    total = obs[3]
    for j in range(log_dx.size):
        r = mean[j] - beta * exp_without_errno(nu * log_dx[j])
        total += count[j] * r * r
    return 0.5 * total


@njit(cache=True, error_model="numpy")
def log_normal_mass(a, b, log_phi_b=np.nan, log_phi_minus_b=np.nan):
    """``log(Phi(b) - Phi(a))`` for ``a < b``, accurate in both tails.

    ``log_phi_b`` and ``log_phi_minus_b`` are ``log Phi(b)`` and ``log Phi(-b)`` when the
    caller has them (NaN when not): the one the tail needs is then not computed again.
    """
    if a + b > 0.0:  # in the upper tail: log(Phi(-a) - Phi(-b))
        log_a = log_ndtr(-b) if math.isnan(log_phi_minus_b) else log_phi_minus_b
        log_b = log_ndtr(-a)
    else:
        log_a = log_ndtr(a)
        log_b = log_ndtr(b) if math.isnan(log_phi_b) else log_phi_b
    if log_a >= log_b:
        return -np.inf
    return log_b + math.log1p(-exp_without_errno(log_a - log_b))


@njit(cache=True, error_model="numpy")
def inside_open(value, lower, upper):
    """Clamp a draw into the open interval (lower, upper) against rounding."""
    if value <= lower:
        return np.nextafter(lower, upper)
    if value >= upper:
        return np.nextafter(upper, lower)
    return value


@njit(cache=True, error_model="numpy")
def truncated_normal(rng, mean, sd, lower, upper):
    """Exact draw from ``N(mean, sd^2)`` truncated to ``(lower, upper)``.

    Inverts the CDF in log space (``log_ndtr`` / ``ndtri_exp``) on whichever side of the
    mean the interval mostly lies, so intervals far in a tail are handled exactly.
    """
    a = (lower - mean) / sd
    b = (upper - mean) / sd
    flip = a + b > 0.0
    if flip:
        a, b = -b, -a
    log_a = log_ndtr(a)
    log_b = log_ndtr(b)
    ratio = math.exp(log_a - log_b)
    standard = ndtri_exp(log_b + math.log(ratio + rng.uniform() * (1.0 - ratio)))
    standard = min(max(standard, a), b)
    if flip:
        standard = -standard
    return inside_open(mean + sd * standard, lower, upper)


@njit(cache=True, error_model="numpy")
def truncated_gamma(rng, shape, rate, lower, upper):
    """Exact draw from ``Gamma(shape, rate)`` truncated to ``(lower, upper)``.

    Returns ``(draw, ok)``; ``ok`` is False when the interval's probability underflows
    in double precision (the caller then keeps its current state and reports it).
    """
    x_lo = rate * lower
    x_hi = rate * upper
    p_lo = gammainc(shape, x_lo)
    if p_lo < 0.5:
        p_hi = gammainc(shape, x_hi)
        if not p_hi > p_lo:
            return 0.0, False
        x = gammaincinv(shape, p_lo + rng.uniform() * (p_hi - p_lo))
    else:
        q_lo = gammaincc(shape, x_lo)
        q_hi = gammaincc(shape, x_hi)
        if not q_lo > q_hi:
            return 0.0, False
        x = gammainccinv(shape, q_lo - rng.uniform() * (q_lo - q_hi))
    if not (x > 0.0 and x < np.inf):
        return 0.0, False
    return inside_open(x, x_lo, x_hi) / rate, True


@njit(cache=True, error_model="numpy")
def draw_beta(rng, sigma, nu, nu_moments, obs, hyper):
    """Exact Gibbs draw of beta from its truncated-normal full conditional.

    ``nu_moments`` is ``moments(nu, obs)``: callers that hold nu fixed compute it once.
    """
    lower, upper = beta_bounds(sigma, nu, hyper)
    s_ww, s_wy = nu_moments
    if not s_ww >= MIN_BASIS_MASS:  # no data, or a likelihood flat in beta (its exact limit)
        return inside_open(lower + rng.uniform() * (upper - lower), lower, upper)
    return truncated_normal(rng, s_wy / s_ww, sigma / math.sqrt(s_ww), lower, upper)


@njit(cache=True, error_model="numpy")
def draw_sigma_slice(rng, beta, sigma, nu, nu_moments, obs, hyper):
    """Slice move on ``tau = sigma^2`` with the auxiliary variable of Algorithm 4.

    ``nu_moments`` is ``moments(nu, obs)``.

    Returns ``(sigma, fallback)``; ``fallback`` flags the (numerically rare) case where the
    truncated gamma could not be inverted and sigma was left unchanged.
    """
    tau = sigma * sigma
    aux = rng.uniform() / (1.0 + tau)
    tau_hi = hyper[SIGMA_MAX] ** 2
    if aux > 0.0:
        tau_hi = min(tau_hi, (1.0 - aux) / aux)
    tau_lo = sigma_floor(beta, nu, hyper) ** 2
    omega_hi = np.inf if tau_lo == 0.0 else 1.0 / tau_lo
    precision, ok = truncated_gamma(
        rng,
        0.5 * obs[4],
        half_sum_squares(beta, nu, obs, *nu_moments),
        1.0 / tau_hi,
        omega_hi,
    )
    if not ok:
        return sigma, True
    return inside_open(1.0 / math.sqrt(precision), 0.0, hyper[SIGMA_MAX]), False


@njit(cache=True, error_model="numpy")
def nu_log_likelihood(phi, beta, sigma, obs, hyper):
    """``log L(phi)`` of the elliptical slice on ``phi = log(nu)`` (everything but its prior)."""
    nu = math.exp(phi)
    lower, upper = beta_bounds(sigma, nu, hyper)
    if not (lower < beta < upper):
        return -np.inf
    s_ww, s_wy = moments(nu, obs)
    if obs[4] > 0.0 and not s_ww >= MIN_BASIS_MASS:
        return -np.inf
    return -half_sum_squares(beta, nu, obs, s_ww, s_wy) / (sigma * sigma) - math.log1p(
        exp_without_errno(-nu * hyper[LOG_RANGE])
    )


@njit(cache=True, error_model="numpy")
def collapsed_log_density(sigma, nu, obs, hyper):
    """Log marginal posterior of ``(sigma, nu)`` with beta integrated out, minus nu's prior."""
    if not (0.0 < sigma < hyper[SIGMA_MAX]):
        return -np.inf
    if obs[4] == 0.0:
        return -math.log1p(sigma * sigma)  # the normalised uniform integrates to one
    return collapsed_log_density_from_moments(sigma, nu, moments(nu, obs), obs, hyper)


@njit(cache=True, error_model="numpy")
def collapsed_log_density_from_moments(sigma, nu, nu_moments, obs, hyper):
    """:func:`collapsed_log_density` given ``nu_moments = moments(nu, obs)``, with data."""
    if not (0.0 < sigma < hyper[SIGMA_MAX]):
        return -np.inf
    s_ww, s_wy = nu_moments
    if not s_ww >= MIN_BASIS_MASS:
        return -np.inf
    mean = s_wy / s_ww
    residual_half_ss = half_sum_squares(mean, nu, obs, s_ww, s_wy)
    lower, upper = beta_bounds(sigma, nu, hyper)
    sd = sigma / math.sqrt(s_ww)
    return (
        -obs[4] * math.log(sigma)
        - residual_half_ss / (sigma * sigma)
        - 0.5 * math.log(s_ww)
        + log_normal_mass((lower - mean) / sd, (upper - mean) / sd)
        - math.log1p(math.exp(-nu * hyper[LOG_RANGE]))
        - math.log1p(sigma * sigma)
    )


# Targets of the generic slice updates below (numba cannot cache a kernel that takes a
# function argument, so the target is chosen by a code instead).
NU_CONDITIONAL, RIDGE_PHI, RIDGE_LOG_SIGMA = 0, 1, 2


@njit(cache=True, error_model="numpy")
def log_target(target, value, beta, sigma, nu, nu_moments, obs, hyper):
    """Log density (up to a constant) of one slice update's variable ``value``.

    ``NU_CONDITIONAL``: ``log L(phi)`` of ``phi = log(nu)`` given beta and sigma.
    ``RIDGE_PHI``: the collapsed density of ``phi`` given sigma (beta integrated out), with
    its N(0, delta^2) prior.
    ``RIDGE_LOG_SIGMA``: the collapsed density of ``log(sigma)`` given nu, with its Jacobian;
    nu does not change during the update, so ``nu_moments = moments(nu, obs)`` is computed
    once by the caller. Arguments a target does not use are ignored.
    """
    if target == NU_CONDITIONAL:
        return nu_log_likelihood(value, beta, sigma, obs, hyper)
    if target == RIDGE_PHI:
        standard = value / hyper[DELTA]
        return collapsed_log_density(sigma, math.exp(value), obs, hyper) - 0.5 * standard * standard
    if obs[4] == 0.0:
        return collapsed_log_density(math.exp(value), nu, obs, hyper) + value
    return collapsed_log_density_from_moments(math.exp(value), nu, nu_moments, obs, hyper) + value


@njit(cache=True, error_model="numpy")
def elliptical_slice(rng, phi, prior_sd, target, beta, sigma, nu, nu_moments, obs, hyper):
    """One elliptical slice update (Murray, Adams & MacKay 2010) of a scalar with prior N(0, sd^2).

    The likelihood is :func:`log_target` of ``target``; it must be finite at ``phi``. Returns
    the new value and the number of bracket shrinkages.
    """
    threshold = log_target(target, phi, beta, sigma, nu, nu_moments, obs, hyper) + math.log(
        rng.uniform()
    )
    auxiliary = rng.normal() * prior_sd
    angle = rng.uniform() * 2.0 * math.pi
    lower, upper = angle - 2.0 * math.pi, angle
    shrinks = 0
    while True:
        proposal = phi * math.cos(angle) + auxiliary * math.sin(angle)
        if log_target(target, proposal, beta, sigma, nu, nu_moments, obs, hyper) > threshold:
            return proposal, shrinks
        shrinks += 1
        if shrinks >= MAX_SHRINKS:
            return phi, shrinks
        if angle < 0.0:
            lower = angle
        else:
            upper = angle
        angle = lower + rng.uniform() * (upper - lower)


@njit(cache=True, error_model="numpy")
def slice_stepping_out(
    rng, x, log_density_x, width, max_steps, target, beta, sigma, nu, nu_moments, obs, hyper
):
    """One univariate slice update with stepping out and shrinkage (Neal 2003, Figs 3 and 5).

    The density is :func:`log_target` of ``target``; ``log_density_x`` is its value at ``x``,
    which the caller often has at hand. Returns the new value and the number of density
    evaluations (counting the one at ``x``).
    """
    threshold = log_density_x + math.log(rng.uniform())
    left = x - width * rng.uniform()
    right = left + width
    steps_left = math.floor(max_steps * rng.uniform())
    steps_right = max_steps - 1 - steps_left
    evals = 1
    while (
        steps_left > 0
        and log_target(target, left, beta, sigma, nu, nu_moments, obs, hyper) > threshold
    ):
        left -= width
        steps_left -= 1
        evals += 1
    while (
        steps_right > 0
        and log_target(target, right, beta, sigma, nu, nu_moments, obs, hyper) > threshold
    ):
        right += width
        steps_right -= 1
        evals += 1
    while True:
        proposal = left + rng.uniform() * (right - left)
        evals += 1
        if log_target(target, proposal, beta, sigma, nu, nu_moments, obs, hyper) > threshold:
            return proposal, evals
        if evals >= MAX_SHRINKS + max_steps:
            return x, evals
        if proposal < x:
            left = proposal
        else:
            right = proposal


@njit(cache=True, error_model="numpy")
def draw_nu_elliptical(rng, beta, sigma, nu, obs, hyper):
    """Elliptical slice move on ``phi = log(nu)`` given beta and sigma (Algorithm 5, corrected)."""
    phi, shrinks = elliptical_slice(
        rng, math.log(nu), hyper[DELTA], NU_CONDITIONAL, beta, sigma, nu, (0.0, 0.0), obs, hyper
    )
    return math.exp(phi), shrinks


@njit(cache=True, error_model="numpy")
def ridge_move(rng, sigma, nu, nu_moments, obs, hyper):
    """Update (sigma, nu) on their marginal with beta integrated out, then redraw beta exactly.

    ``nu_moments`` is ``moments(nu, obs)`` at the current nu. Returns
    ``(beta, sigma, nu, sigma_evals, nu_evals)``.
    """
    log_sigma = math.log(sigma)
    log_sigma, sigma_evals = slice_stepping_out(
        rng,
        log_sigma,
        log_target(RIDGE_LOG_SIGMA, log_sigma, 0.0, sigma, nu, nu_moments, obs, hyper),
        LOG_SIGMA_SLICE_WIDTH,
        SLICE_MAX_STEPS,
        RIDGE_LOG_SIGMA,
        0.0,
        sigma,
        nu,
        nu_moments,
        obs,
        hyper,
    )
    sigma = inside_open(math.exp(log_sigma), 0.0, hyper[SIGMA_MAX])
    phi = math.log(nu)
    at_phi = (
        collapsed_log_density(sigma, nu, obs, hyper)
        if obs[4] == 0.0
        else collapsed_log_density_from_moments(sigma, nu, nu_moments, obs, hyper)
    )
    phi, nu_evals = slice_stepping_out(
        rng,
        phi,
        at_phi - 0.5 * (phi / hyper[DELTA]) ** 2,
        hyper[DELTA],
        SLICE_MAX_STEPS,
        RIDGE_PHI,
        0.0,
        sigma,
        nu,
        (0.0, 0.0),
        obs,
        hyper,
    )
    nu = math.exp(phi)
    beta = draw_beta(rng, sigma, nu, moments(nu, obs), obs, hyper)
    return beta, sigma, nu, sigma_evals, nu_evals


@njit(cache=True, error_model="numpy")
def run_chain(rng, beta, sigma, nu, obs, hyper, n_tune, n_draws, ridge):
    """Run one chain of the sweep: sigma slice then the ridge move, or the paper's sweep.

    With ``ridge`` an iteration is the sigma slice of Algorithm 4 followed by the ridge move,
    which updates sigma and nu on their marginal and redraws beta exactly. The paper's beta
    Gibbs draw and nu elliptical slice are then redundant: beta is already an exact draw
    given (sigma, nu) when the next iteration starts, and the ridge's slice on log nu mixes
    better than the elliptical slice, whose proposals come from nu's prior: with informative
    data its bracket shrinks many times per update (``nu_ess_shrinks``), each shrinkage a
    likelihood evaluation.
    Without ``ridge`` the sweep is the paper's Algorithm 3: beta Gibbs, sigma slice, nu
    elliptical slice (with the corrected nu conditional).

    Parameters
    ----------
    rng : numpy.random.Generator
        The chain's generator; numba draws numpy's exact stream from it.
    beta, sigma, nu : float
        Initial state, inside the support.
    obs : tuple
        Per-dose statistics from :func:`summarise`.
    hyper : numpy.ndarray
        From :func:`pack_hyper`.
    n_tune, n_draws : int
        Iterations discarded as burn-in, then kept.
    ridge : bool
        Use the ridge sweep (default of every engine) rather than the paper's (Lee 2023).

    Returns
    -------
    draws : numpy.ndarray
        ``(n_draws, 4)``: beta, sigma, nu, mtd.
    stats : numpy.ndarray
        ``(n_draws, 4)``, columns in the order of ``SWEEP_STATS`` (0 for the moves a sweep
        does not make).
    """
    draws = np.empty((n_draws, 4))
    stats = np.zeros((n_draws, 4))
    fell_back, shrinks, sigma_evals, nu_evals = False, 0, 0, 0
    for it in range(n_tune + n_draws):
        nu_moments = moments(nu, obs)  # shared by the moves that keep nu
        if not ridge:
            beta = draw_beta(rng, sigma, nu, nu_moments, obs, hyper)
        sigma, fell_back = draw_sigma_slice(rng, beta, sigma, nu, nu_moments, obs, hyper)
        if ridge:
            beta, sigma, nu, sigma_evals, nu_evals = ridge_move(
                rng, sigma, nu, nu_moments, obs, hyper
            )
        else:
            nu, shrinks = draw_nu_elliptical(rng, beta, sigma, nu, obs, hyper)
        k = it - n_tune
        if k >= 0:
            draws[k, 0] = beta
            draws[k, 1] = sigma
            draws[k, 2] = nu
            draws[k, 3] = mtd(beta, sigma, nu, hyper)
            stats[k, 0] = fell_back
            stats[k, 1] = shrinks
            stats[k, 2] = sigma_evals
            stats[k, 3] = nu_evals
    return draws, stats
