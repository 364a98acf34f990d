r"""Independence Metropolis-Hastings for the joint latent-probit model, on outcome counts.

The PyMC model :class:`dosezoo.models.joint_probit.JointProbit` is the specification. Its
likelihood integrates the latent pair out: patient :math:`i` contributes the probability of
its cell :math:`3T_i + E_i`, a function of its dose only, so the likelihood depends on the data
through the counts :math:`n_{lj}` of cell :math:`j` at distinct dose :math:`x_l`:

.. math::

    \log p(T, E \mid \theta) = \sum_l \sum_{j=0}^{5} n_{lj} \log \pi_j(x_l; \theta),

with the rectangle probabilities :math:`\pi_j` of the model
(:func:`dosezoo.models.joint_probit.cell_probabilities`:
Sheppard's formula for :math:`\Phi_2` by Gauss-Legendre quadrature, with as many nodes as
double precision needs at :math:`\rho` (``RHO_BANDS``), floored at ``1e-300`` and renormalised
exactly as the PyMC model does). Its cost is one pair of
:math:`\Phi_2` per distinct dose, whatever the number of patients; the data-augmentation Gibbs
sampler of :mod:`dosezoo.samplers.joint_probit_kernels` draws two latent variables per patient
per sweep and mixes slowly (Albert-Chib coefficients and latent variables are strongly
dependent).

Unconstrained parameters
------------------------
:math:`u = (\alpha_T, v_1, \alpha_E, \beta_E, \gamma_E, \log c, v_6)` with
:math:`\beta_T = \log(1 + e^{v_1})` (softplus) and :math:`\rho = 2\Phi(v_6) - 1`. The log
density of :math:`u` is the log posterior plus the log Jacobian: :math:`\log\sigma(v_1)` for
the softplus (the prior of :math:`\beta_T`, a normal truncated to :math:`(0, \infty)`, has a
constant normaliser), none for :math:`\log c` (a log-normal :math:`c` has a normal
:math:`\log c`), and :math:`\log 2\phi(v_6)` for :math:`\rho`, so that the uniform prior of
:math:`\rho` is exactly :math:`v_6 \sim N(0, 1)`. Both transforms make the posterior closer to
normal than :math:`\log\beta_T` and :math:`\operatorname{atanh}\rho` (whose uniform prior has
density :math:`\propto\operatorname{sech}^2`), which raises the acceptance rate.
:math:`|\rho| \ge` ``RHO_LIMIT`` (:math:`|v_6| > 6.1`) has density 0, as in the
Gibbs kernel.

Gradient (for the mode)
-----------------------
With :math:`h = -\mu_T`, :math:`k_0 = -\mu_E`, :math:`k_1 = c - \mu_E`,
:math:`F_m = \Phi_2(h, k_m; \rho)` and :math:`D_j = n_j / \pi_j`, the cells are linear in
:math:`(F_0, F_1, \Phi(h), \Phi(k_0), \Phi(k_1))`, whose coefficients give
:math:`g_{F_0} = D_0 - D_1 - D_3 + D_4`, :math:`g_{F_1} = D_1 - D_2 - D_4 + D_5`,
:math:`g_h = D_2 - D_5`, :math:`g_{k_0} = D_3 - D_4`, :math:`g_{k_1} = D_4 - D_5`, and with
:math:`s = \sqrt{1 - \rho^2}`

.. math::

    \partial_a \Phi_2(a, b; \rho) = \phi(a)\,\Phi\Big(\frac{b - \rho a}{s}\Big), \qquad
    \partial_\rho \Phi_2(a, b; \rho) = \frac{1}{2\pi s}
        \exp\Big\{-\frac{a^2 - 2\rho a b + b^2}{2 s^2}\Big\},

then the chain rule through :math:`h, k_0, k_1` and the transforms. The gradient serves only
the search for the mode; it is checked against finite differences in the tests.

Sampler
-------
1. The mode :math:`\hat u` of the log density by Newton's method, damped
   (Levenberg-Marquardt) where the Hessian is not negative definite; the Hessian is the central
   difference of the analytic gradient.
2. The proposal. The posterior is not normal in :math:`u` while the data are few (with DLTs
   at every dose :math:`\beta_T` has mass near 0, a long left tail in :math:`v_1`), so the
   Laplace approximation is only a start: ``PILOT_DRAWS`` draws of a multivariate
   :math:`t_\nu` (``PROPOSAL_DF``) centred at :math:`\hat u` with scale matrix
   :math:`(-H)^{-1}` inflated by ``PILOT_SCALES[0]``, weighted by :math:`p/q` (truncated at
   :math:`\sqrt{S}` times their mean, Ionides 2008), give importance estimates of the posterior
   mean :math:`m` and covariance :math:`S` (:func:`pilot_moments`); a second stage samples the
   :math:`t_\nu` at :math:`(m, S)` inflated by ``PILOT_SCALES[1]`` for better estimates (one
   stage alone gives estimates of the variance of :math:`v_1` that vary severalfold across
   seeds). The proposal :math:`q` is the :math:`t_\nu` at :math:`m` with scale matrix
   :math:`S` inflated by ``PROPOSAL_SCALE`` squared, mixed with weight ``DEFENSIVE_WEIGHT``
   with the same :math:`t` ``DEFENSIVE_SCALE`` times wider (Hesterberg 1995), which bounds
   :math:`p/q` where the main component is too narrow.
3. Independence Metropolis-Hastings (Tierney 1994): propose :math:`u' \sim q` independently of
   the current :math:`u`, accept with probability
   :math:`\min\{1, w(u') / w(u)\}`, :math:`w = p / q`. The chain leaves the posterior invariant
   whatever :math:`q`; it is uniformly ergodic when :math:`w` is bounded, which the
   :math:`t` tails make likely and the Pareto diagnostic checks.
4. The proposals are an iid sample from :math:`q`: the Pareto :math:`\hat k` of their
   importance ratios (Vehtari et al. 2024) says whether :math:`q` covers the posterior's tails;
   above 0.7 the caller falls back to the Gibbs sampler.
"""

import math

import numpy as np
from numba import njit
from scipy.special import ndtri

from dosezoo.samplers.joint_probit_kernels import (
    ALPHA_EFF,
    ALPHA_TOX,
    BETA_EFF,
    BETA_TOX,
    GAMMA_EFF,
    LOG_THRESHOLD_MEAN,
    LOG_THRESHOLD_SD,
    N_COEF,
    RHO,
    RHO_LIMIT,
    THRESHOLD,
)
from dosezoo.samplers.linalg import (
    cholesky,
    cholesky_solve,
    forward_substitution,
    jittered_cholesky,
)

#: Gauss-Legendre nodes of Sheppard's formula by |rho|: up to each bound the rule of that many
#: nodes, beyond the last the PyMC model's 32 (Genz 2004 uses 6, 12 and 20 below 0.3, 0.75
#: and 0.925). In its band each rule agrees with a 96-node rule to double precision, as the
#: 32-node rule does up to |rho| = 0.99 (checked in the tests on a grid of (a, b) in [-8, 8]^2):
#: the same likelihood with fewer terms. Nearer |rho| = 1 Sheppard's integrand sharpens and the
#: 32-node rule (the PyMC model's too) loses digits: against adaptive quadrature on a grid of
#: (a, b) in [-3, 3]^2, errors up to 7e-10 at |rho| = 0.999 and 3e-7 at 0.9999.
RHO_BANDS = (0.3, 0.75, 0.925)
BAND_NODES = (6, 12, 20, 32)
_RULES = [np.polynomial.legendre.leggauss(n) for n in BAND_NODES]
NODES = np.zeros((len(BAND_NODES), max(BAND_NODES)))
WEIGHTS = np.zeros((len(BAND_NODES), max(BAND_NODES)))
for _band, (_nodes, _weights) in enumerate(_RULES):
    NODES[_band, : _nodes.size] = _nodes
    WEIGHTS[_band, : _weights.size] = _weights
#: Cell probabilities are floored here before normalising, as in the PyMC model.
CELL_FLOOR = 1e-300
#: Degrees of freedom of the multivariate t proposal, and the inflation of its scale matrix's
#: square root over the posterior covariance's.
PROPOSAL_DF = 10.0
PROPOSAL_SCALE = 1.15
#: The defensive mixture (Hesterberg 1995): this share of the proposals come from the t with a
#: square-root scale this many times wider, which bounds the importance ratios where the
#: main t is too narrow (a chain that reaches such a point would stay there).
DEFENSIVE_WEIGHT = 0.1
DEFENSIVE_SCALE = 2.0
#: Draws of each stage of the pilot importance sampler, and the inflation of each stage's
#: scale: the Laplace approximation's, then the first stage's moments'.
PILOT_DRAWS = 250
PILOT_SCALES = (1.6, 1.2)
#: Newton's method: iterations, gradient tolerance, finite-difference step of the Hessian.
NEWTON_ITERATIONS = 100
GRADIENT_TOLERANCE = 1e-7
HESSIAN_STEP = 1e-5
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True, error_model="numpy")
def _ndtr(z):
    return 0.5 * math.erfc(-z / _SQRT2)


@njit(cache=True, error_model="numpy")
def _npdf(z):
    return _INV_SQRT_2PI * math.exp(-0.5 * z * z)


@njit(cache=True, error_model="numpy")
def sheppard_terms(rho, terms):
    """Fill the parts of Sheppard's quadrature that depend on rho; return ``half, weights``.

    ``half`` is half of arcsin rho and ``weights`` the weights of the rule of rho's band
    (``RHO_BANDS``); ``terms[0, j]`` and ``terms[1, j]`` get ``sin t_j`` and
    ``1 / (2 cos^2 t_j)`` at its nodes (``terms`` has room for the largest rule).
    """
    band = 0
    while band < len(RHO_BANDS) and abs(rho) > RHO_BANDS[band]:
        band += 1
    n = BAND_NODES[band]
    half = 0.5 * math.asin(rho)
    for j in range(n):
        t = half * (NODES[band, j] + 1.0)
        terms[0, j] = math.sin(t)
        terms[1, j] = 0.5 / math.cos(t) ** 2
    return half, WEIGHTS[band, :n]


@njit(cache=True, error_model="numpy")
def bivariate_cdf(a, b, half, weights, terms):
    r""":math:`\Phi_2(a, b; \rho)` by Sheppard's formula, from :func:`sheppard_terms`."""
    total = 0.0
    squares = a * a + b * b
    for j in range(weights.size):
        total += weights[j] * math.exp(-(squares - 2.0 * a * b * terms[0, j]) * terms[1, j])
    return _ndtr(a) * _ndtr(b) + half * total / (2.0 * math.pi)


@njit(cache=True, error_model="numpy")
def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


@njit(cache=True, error_model="numpy")
def constrained(u):
    """Model parameters ``theta`` (layout ``ALPHA_TOX ... RHO``) of unconstrained ``u``."""
    theta = u.copy()
    theta[BETA_TOX] = _softplus(u[BETA_TOX])
    theta[THRESHOLD] = math.exp(u[THRESHOLD])
    theta[RHO] = math.erf(u[RHO] / _SQRT2)
    return theta


def unconstrained(theta: np.ndarray) -> np.ndarray:
    """Inverse of :func:`constrained` (numpy, any leading shape)."""
    u = np.array(theta, dtype=float, copy=True)
    # The inverse of softplus: log(exp(beta) - 1).
    u[..., BETA_TOX] = u[..., BETA_TOX] + np.log(-np.expm1(-u[..., BETA_TOX]))
    u[..., THRESHOLD] = np.log(u[..., THRESHOLD])
    u[..., RHO] = ndtri(0.5 * (u[..., RHO] + 1.0))
    return u


@njit(cache=True, error_model="numpy")
def log_density(u, x, counts, prior, gradient):
    """Log posterior density of unconstrained ``u`` (up to a constant), and its gradient.

    Parameters
    ----------
    u : numpy.ndarray
        Unconstrained parameters, shape (7,).
    x : numpy.ndarray
        Standardised log dose of each distinct dose, shape (L,).
    counts : numpy.ndarray
        Patients in each cell ``3 T + E`` at each distinct dose, shape (L, 6), float.
    prior : numpy.ndarray
        From :func:`dosezoo.samplers.joint_probit_kernels.pack_prior`.
    gradient : numpy.ndarray
        Shape (7,) to fill with the gradient, or shape (0,) to skip it.

    Returns
    -------
    float
    """
    want = gradient.size > 0
    alpha_t, beta_t = u[ALPHA_TOX], _softplus(u[BETA_TOX])
    alpha_e, beta_e, gamma_e = u[ALPHA_EFF], u[BETA_EFF], u[GAMMA_EFF]
    c, rho = math.exp(u[THRESHOLD]), math.erf(u[RHO] / _SQRT2)
    total = 0.0
    # Priors (truncated normal's and uniform's constants dropped) and log Jacobians.
    for k in range(N_COEF):
        z = ((beta_t if k == BETA_TOX else u[k]) - prior[k]) / prior[N_COEF + k]
        total -= 0.5 * z * z
        if want:
            gradient[k] = -z / prior[N_COEF + k]
    total -= _softplus(-u[BETA_TOX])  # log sigmoid(u): the Jacobian of softplus
    z = (u[THRESHOLD] - prior[LOG_THRESHOLD_MEAN]) / prior[LOG_THRESHOLD_SD]
    total -= 0.5 * z * z
    # rho = 2 Phi(v) - 1: its uniform prior with the Jacobian 2 phi(v) is v's N(0, 1).
    total -= 0.5 * u[RHO] * u[RHO]
    if not abs(rho) < RHO_LIMIT:
        return -np.inf
    if want:
        gradient[THRESHOLD] = -z / prior[LOG_THRESHOLD_SD]
        gradient[RHO] = 0.0
    terms = np.empty((2, BAND_NODES[-1]))
    half, weights = sheppard_terms(rho, terms)
    s = math.sqrt(1.0 - rho * rho)
    d_rho = 0.0
    cells = np.empty(6)
    d = np.empty(6)
    for level in range(counts.shape[0]):
        n = counts[level]
        xl = x[level]
        mu_t = alpha_t + beta_t * xl
        mu_e = alpha_e + beta_e * xl + gamma_e * xl * xl
        h, k0, k1 = -mu_t, -mu_e, c - mu_e
        f0 = bivariate_cdf(h, k0, half, weights, terms)
        f1 = bivariate_cdf(h, k1, half, weights, terms)
        ph, p0, p1 = _ndtr(h), _ndtr(k0), _ndtr(k1)
        cells[0], cells[1], cells[2] = f0, f1 - f0, ph - f1
        cells[3], cells[4], cells[5] = p0 - f0, p1 - p0 - f1 + f0, 1.0 - p1 - ph + f1
        norm = 0.0
        for j in range(6):
            cells[j] = max(cells[j], CELL_FLOOR)
            norm += cells[j]
        patients = 0.0
        for j in range(6):
            if n[j] > 0.0:
                total += n[j] * math.log(cells[j])
                patients += n[j]
        total -= patients * math.log(norm)
        if not want or patients == 0.0:
            continue
        for j in range(6):
            # A floored cell is constant: no derivative.
            d[j] = n[j] / cells[j] if cells[j] > CELL_FLOOR else 0.0
        g_f0 = d[0] - d[1] - d[3] + d[4]
        g_f1 = d[1] - d[2] - d[4] + d[5]
        d_h = (
            g_f0 * _npdf(h) * _ndtr((k0 - rho * h) / s)
            + g_f1 * _npdf(h) * _ndtr((k1 - rho * h) / s)
            + (d[2] - d[5]) * _npdf(h)
        )
        d_k0 = g_f0 * _npdf(k0) * _ndtr((h - rho * k0) / s) + (d[3] - d[4]) * _npdf(k0)
        d_k1 = g_f1 * _npdf(k1) * _ndtr((h - rho * k1) / s) + (d[4] - d[5]) * _npdf(k1)
        for m in range(2):
            k = k0 if m == 0 else k1
            density = math.exp(-(h * h - 2.0 * rho * h * k + k * k) / (2.0 * s * s))
            d_rho += (g_f0 if m == 0 else g_f1) * density / (2.0 * math.pi * s)
        gradient[ALPHA_TOX] -= d_h
        gradient[BETA_TOX] -= d_h * xl  # d/d beta_T, before the chain rule below
        d_mu_e = d_k0 + d_k1
        gradient[ALPHA_EFF] -= d_mu_e
        gradient[BETA_EFF] -= d_mu_e * xl
        gradient[GAMMA_EFF] -= d_mu_e * xl * xl
        gradient[THRESHOLD] += d_k1 * c  # d/d log c of the likelihood
    if want:
        # The chain rule of the transforms; the Jacobians' own derivatives.
        sigmoid = 1.0 / (1.0 + math.exp(-u[BETA_TOX]))
        gradient[BETA_TOX] = gradient[BETA_TOX] * sigmoid + 1.0 - sigmoid
        gradient[RHO] = d_rho * 2.0 * _npdf(u[RHO]) - u[RHO]
    return total


@njit(cache=True, error_model="numpy")
def hessian(u, x, counts, prior):
    """Hessian of :func:`log_density` by central differences of its gradient (symmetrised)."""
    d = u.size
    out = np.empty((d, d))
    plus, minus = np.empty(d), np.empty(d)
    for k in range(d):
        step = HESSIAN_STEP * (1.0 + abs(u[k]))
        shifted = u.copy()
        shifted[k] = u[k] + step
        log_density(shifted, x, counts, prior, plus)
        shifted[k] = u[k] - step
        log_density(shifted, x, counts, prior, minus)
        out[:, k] = (plus - minus) / (2.0 * step)
    return 0.5 * (out + out.T)


@njit(cache=True, error_model="numpy")
def find_mode(start, x, counts, prior):
    """Mode of :func:`log_density` by damped Newton steps; return ``(mode, precision, ok)``.

    ``precision`` is minus the Hessian at the mode; ``ok`` says that the gradient vanished
    there (to ``GRADIENT_TOLERANCE``) and the precision is positive definite.
    """
    d = start.size
    u = start.copy()
    gradient = np.empty(d)
    value = log_density(u, x, counts, prior, gradient)
    damping = 0.0
    new_gradient = np.empty(d)
    for _ in range(NEWTON_ITERATIONS):
        if np.max(np.abs(gradient)) < GRADIENT_TOLERANCE:
            break
        precision = -hessian(u, x, counts, prior)
        moved = False
        for _ in range(60):
            shifted = precision.copy()
            for k in range(d):
                shifted[k, k] += damping
            lower, ok = cholesky(shifted)
            if ok:
                candidate = u + cholesky_solve(lower, gradient)
                new_value = log_density(candidate, x, counts, prior, new_gradient)
                if new_value >= value and np.isfinite(new_value):
                    u, value = candidate, new_value
                    gradient[:] = new_gradient
                    damping *= 0.1
                    moved = True
                    break
            damping = max(1e-4, 10.0 * damping)
        if not moved:
            break
    precision = -hessian(u, x, counts, prior)
    _, positive = cholesky(precision)
    return u, precision, positive and np.max(np.abs(gradient)) < 1e3 * GRADIENT_TOLERANCE


@njit(cache=True, error_model="numpy")
def _propose(rng, centre, root, factor, out):
    """Draw from the t at ``(centre, factor * root)`` into ``out``; return its Mahalanobis norm.

    That is the squared :math:`|(fR)^{-1}(u - m)|^2`, which the log density of the t is a
    function of. The factor multiplies each entry of the root as it is read: no scaled copy
    of the root per draw.
    """
    d = centre.size
    z = np.empty(d)
    squared = 0.0
    for k in range(d):
        z[k] = rng.standard_normal()
        squared += z[k] * z[k]
    scale = math.sqrt(PROPOSAL_DF / (2.0 * rng.standard_gamma(0.5 * PROPOSAL_DF)))
    for i in range(d):
        total = 0.0
        for k in range(d):
            total += factor * root[i, k] * z[k]
        out[i] = centre[i] + scale * total
    return scale * scale * squared


@njit(cache=True, error_model="numpy")
def _log_t(squared, d):
    """Log density of a t (``PROPOSAL_DF``) at a squared Mahalanobis norm, up to a constant."""
    return -0.5 * (PROPOSAL_DF + d) * math.log1p(squared / PROPOSAL_DF)


@njit(cache=True, error_model="numpy")
def _propose_defensive(rng, centre, root, out):
    """Draw from the defensive mixture into ``out``; return its log density up to a constant.

    With probability ``DEFENSIVE_WEIGHT`` the t's scale is ``DEFENSIVE_SCALE`` times wider.
    """
    d = centre.size
    wide = rng.random() < DEFENSIVE_WEIGHT
    factor = DEFENSIVE_SCALE if wide else 1.0
    # The squared norm under the narrow component: the drawn component's times its factor^2.
    squared = factor * factor * _propose(rng, centre, root, factor, out)
    narrow = _log_t(squared, d)
    broad = -d * math.log(DEFENSIVE_SCALE) + _log_t(squared / DEFENSIVE_SCALE**2, d)
    top = max(narrow, broad)
    mixture = (1.0 - DEFENSIVE_WEIGHT) * math.exp(narrow - top)
    return top + math.log(mixture + DEFENSIVE_WEIGHT * math.exp(broad - top))


@njit(cache=True, error_model="numpy")
def fit_proposal(rng, start, x, counts, prior):
    """Return the centre and the Cholesky root of the t proposal's scale, and whether it exists.

    The mode from ``start`` (:func:`find_mode`), then one :func:`pilot_moments` stage per
    ``PILOT_SCALES``: from the Laplace approximation, then from the previous stage's moments.
    """
    mode, precision, found = find_mode(start, x, counts, prior)
    centre, root = mode, proposal_root(precision)
    if not found:
        return centre, root, False
    for scale in PILOT_SCALES:
        centre, covariance = pilot_moments(rng, centre, scale * root, x, counts, prior)
        root = jittered_cholesky(covariance)
    return centre, PROPOSAL_SCALE * root, True


@njit(cache=True, error_model="numpy")
def pilot_moments(rng, centre, root, x, counts, prior):
    """Estimate the posterior mean and covariance by importance sampling from a t.

    Parameters
    ----------
    rng : numpy.random.Generator
    centre, root : numpy.ndarray
        Centre and square root of the scale matrix of the t (``PROPOSAL_DF``) to sample.
    x, counts, prior
        As in :func:`log_density`.

    Returns
    -------
    mean : numpy.ndarray
        Shape (7,).
    covariance : numpy.ndarray
        Shape (7, 7).
    """
    d = centre.size
    empty = np.empty(0)
    points = np.empty((PILOT_DRAWS, d))
    log_weights = np.empty(PILOT_DRAWS)
    for i in range(PILOT_DRAWS):
        log_q = _log_t(_propose(rng, centre, root, 1.0, points[i]), d)
        log_weights[i] = log_density(points[i], x, counts, prior, empty) - log_q
    weights = np.exp(log_weights - np.max(log_weights))
    # Truncated importance sampling (Ionides 2008): no weight above sqrt(S) times the mean,
    # so that one draw far in a tail cannot make the moments.
    np.minimum(weights, np.mean(weights) * math.sqrt(PILOT_DRAWS), weights)
    weights /= np.sum(weights)
    mean = np.zeros(d)
    for i in range(PILOT_DRAWS):
        mean += weights[i] * points[i]
    covariance = np.zeros((d, d))
    for i in range(PILOT_DRAWS):
        centred = points[i] - mean
        covariance += weights[i] * np.outer(centred, centred)
    return mean, covariance


@njit(cache=True, error_model="numpy")
def run_chain(rng, mode, root, x, counts, prior, n_tune, n_draws):
    r"""Run one independence Metropolis-Hastings chain started at a proposal draw.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chain's generator.
    mode : numpy.ndarray
        Centre of the proposal (unconstrained).
    root : numpy.ndarray
        A square root :math:`R` of the proposal's scale matrix (:math:`R R^\top`).
    x, counts, prior
        As in :func:`log_density`.
    n_tune, n_draws : int
        Iterations discarded, then kept.

    Returns
    -------
    draws : numpy.ndarray
        ``(n_draws, 7)`` constrained parameters (layout ``ALPHA_TOX ... RHO``).
    accepted : numpy.ndarray
        ``(n_draws,)`` whether each kept iteration accepted its proposal.
    log_ratios : numpy.ndarray
        ``(n_tune + n_draws + 1,)`` log importance ratio ``log p - log q`` of every proposal.
    """
    d = mode.size
    empty = np.empty(0)
    current = np.empty(d)
    proposal = np.empty(d)
    log_ratios = np.empty(n_tune + n_draws + 1)
    log_q = _propose_defensive(rng, mode, root, current)
    current_ratio = log_density(current, x, counts, prior, empty) - log_q
    log_ratios[0] = current_ratio
    draws = np.empty((n_draws, d))
    accepted = np.zeros(n_draws, dtype=np.bool_)
    for it in range(n_tune + n_draws):
        log_q = _propose_defensive(rng, mode, root, proposal)
        ratio = log_density(proposal, x, counts, prior, empty) - log_q
        log_ratios[it + 1] = ratio
        accept = math.log(rng.random()) < ratio - current_ratio
        if accept:
            current[:] = proposal
            current_ratio = ratio
        k = it - n_tune
        if k >= 0:
            draws[k] = constrained(current)
            accepted[k] = accept
    return draws, accepted, log_ratios


@njit(cache=True, error_model="numpy")
def proposal_root(precision):
    """:math:`L^{-T}`, for the Cholesky factor :math:`L` of ``precision``: a root of its inverse."""
    lower = jittered_cholesky(precision)
    identity = np.eye(lower.shape[0])
    root = np.empty_like(lower)
    for k in range(lower.shape[0]):
        root[k] = forward_substitution(lower, identity[k])  # row k of L^{-T}: L z = e_k
    return root
