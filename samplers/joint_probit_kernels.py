r"""Numba kernels of the data-augmentation Gibbs sampler of the joint latent-probit model.

The PyMC model :class:`dosezoo.models.joint_probit.JointProbit` is the specification; the step
methods of :mod:`dosezoo.samplers.joint_probit` and the kernel engine (:func:`run_chain`) call
the moves below, so both target the same posterior.

Model (augmented)
-----------------
Patient :math:`i` has standardised log dose :math:`x_i`, toxicity :math:`T_i \in \{0, 1\}` and
ordinal efficacy :math:`E_i \in \{0, 1, 2\}`. With
:math:`\mu_{T,i} = \alpha_T + \beta_T x_i`, :math:`\mu_{E,i} = \alpha_E + \beta_E x_i +
\gamma_E x_i^2`, and cut points :math:`c_0 = -\infty < c_1 = 0 < c_2 = c < c_3 = \infty`,

.. math::

    (Z_{T,i}, Z_{E,i}) &\sim N_2\big((\mu_{T,i}, \mu_{E,i}),
        \begin{pmatrix} 1 & \rho \\ \rho & 1 \end{pmatrix}\big), \\
    T_i = 1\{Z_{T,i} > 0\}, &\qquad E_i = e \iff c_e < Z_{E,i} \le c_{e+1}.

Priors: :math:`\alpha_T, \alpha_E, \beta_E, \gamma_E` normal; :math:`\beta_T` normal truncated to
:math:`(0, \infty)`; :math:`\log c` normal; :math:`\rho \sim U(-1, 1)`. Integrating the latent
pair out gives the rectangle likelihood of the PyMC model; keeping it gives the augmented
posterior :math:`p(\theta, Z \mid T, E)` whose :math:`\theta`-marginal is the same posterior
(Albert & Chib 1993).

Full conditionals (each move leaves the augmented posterior invariant)
-----------------------------------------------------------------------
Write :math:`s = \sqrt{1 - \rho^2}`, :math:`u_i = Z_{T,i} - \mu_{T,i}` and
:math:`v_i = Z_{E,i} - \mu_{E,i}`.

**Latent pair** (:func:`draw_latent_toxicity`, :func:`draw_latent_efficacy`). Given
:math:`\theta` the pair is a bivariate normal truncated to the rectangle of the observed cell;
the rectangle is a product set, so each coordinate given the other is a univariate truncated
normal:

.. math::

    Z_{T,i} \mid Z_{E,i} &\sim N(\mu_{T,i} + \rho v_i, s^2)
        \text{ on } (0, \infty) \text{ if } T_i = 1, \ (-\infty, 0] \text{ otherwise}, \\
    Z_{E,i} \mid Z_{T,i} &\sim N(\mu_{E,i} + \rho u_i, s^2) \text{ on } (c_{E_i}, c_{E_i + 1}],

drawn exactly by inverting the normal CDF in log space
(:func:`dosezoo.samplers.three_pnd_kernels.truncated_normal`).

**Correlation and threshold, with** :math:`Z_E` **integrated out** (:func:`draw_rho`,
:func:`draw_threshold`). :math:`Z_{T,i}` alone is :math:`N(\mu_{T,i}, 1)` whatever
:math:`\rho` and :math:`c`, so

.. math::

    p(\rho, c \mid Z_T, \alpha, \beta, \gamma, T, E) \propto p(\rho)\, p(c)
        \prod_i \Big\{\Phi\Big(\frac{c_{E_i+1} - \mu_{E,i} - \rho u_i}{s}\Big)
                 - \Phi\Big(\frac{c_{E_i} - \mu_{E,i} - \rho u_i}{s}\Big)\Big\}.

:math:`\rho` is updated by a univariate slice step (stepping out and shrinkage, Neal 2003) on
this density over :math:`(-1, 1)`, then :math:`\log c` by a slice step on the same density times
the normal prior of :math:`\log c` (the log-normal prior of :math:`c` with its Jacobian is
exactly that normal). :math:`Z_E` is then redrawn exactly from its truncated normal given
:math:`Z_T` and the new :math:`(\rho, c)`. A kernel that leaves the :math:`Z_E`-marginal
invariant followed by an exact draw of :math:`Z_E` leaves the joint invariant (partially
collapsed Gibbs, van Dyk & Park 2008). Conditioning on :math:`Z_E` instead would confine
:math:`c` to :math:`[\max_{E_i = 1} Z_{E,i}, \min_{E_i = 2} Z_{E,i})`, the slowly mixing
threshold update of Albert & Chib (Cowles 1996).

**Toxicity coefficients** (:func:`draw_toxicity_coefficients`). Given the latent pair,
:math:`Z_{T,i} - \rho v_i = \alpha_T + \beta_T x_i + \epsilon_i` with
:math:`\epsilon_i \sim N(0, s^2)` independent, a normal linear regression. With design rows
:math:`(1, x_i)`, prior :math:`N(m, \mathrm{diag}(\sigma^2))`,

.. math::

    (\alpha_T, \beta_T) \mid \cdot \sim N(P^{-1} b, P^{-1}) \, 1\{\beta_T > 0\},
    \quad P = X^\top X / s^2 + \mathrm{diag}(\sigma^{-2}),
    \quad b = X^\top r / s^2 + m / \sigma^2.

The truncation region is a half-plane in :math:`\beta_T` only, so :math:`\beta_T` is drawn from
its normal marginal truncated to :math:`(0, \infty)` and :math:`\alpha_T \mid \beta_T` from the
normal conditional: an exact block draw.

**Toxicity coefficients with** :math:`Z_T` **integrated out** (:func:`toxicity_block`). The
normal draw above is exact but, as usual for Albert-Chib samplers of binary data, the
coefficients and the latent :math:`Z_T` are strongly dependent and the chain moves slowly.
:math:`Z_{E,i}` alone is :math:`N(\mu_{E,i}, 1)` whatever :math:`(\alpha_T, \beta_T)`, so

.. math::

    p(\alpha_T, \beta_T \mid Z_E, \alpha_E, \beta_E, \gamma_E, \rho, T) \propto
        p(\alpha_T)\, p(\beta_T) \prod_i
        \Phi\Big((2T_i - 1)\,\frac{\mu_{T,i} + \rho v_i}{s}\Big),

on which :math:`\alpha_T` and then :math:`\beta_T > 0` take slice steps
(:func:`toxicity_slices`); :math:`Z_T` is then redrawn exactly given :math:`Z_E` (the same
partially collapsed scheme as for :math:`(\rho, c)`), and the exact normal block draw follows.

**Efficacy coefficients with** :math:`Z_E` **integrated out** (:func:`efficacy_block`).
Likewise, with the density of :math:`(\rho, c)` above read as a function of
:math:`(\alpha_E, \beta_E, \gamma_E)` (through :math:`\mu_{E,i}`) times their normal
priors, each takes a slice step (:func:`efficacy_slices`); :math:`Z_E` is redrawn exactly given
:math:`Z_T`, then the exact normal draw below follows.

**Efficacy coefficients** (:func:`draw_efficacy_coefficients`). Likewise
:math:`Z_{E,i} - \rho u_i = \alpha_E + \beta_E x_i + \gamma_E x_i^2 + \epsilon_i`, a
three-coefficient normal regression drawn exactly through the Cholesky factor of its precision.

Identifiability: the first cut point is fixed at 0 and the intercept :math:`\alpha_E` is kept
(an intercept and two free cut points would be one location parameter too many).

All functions take the parameters as one array ``theta`` (layout ``ALPHA_TOX ... RHO``) and the
prior as one array from :func:`pack_prior`.
"""

import math

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from dosezoo.samplers.linalg import cholesky, cholesky_solve
from dosezoo.samplers.special import log_ndtr
from dosezoo.samplers.three_pnd_kernels import log_normal_mass, truncated_normal

#: Layout of ``theta``.
ALPHA_TOX, BETA_TOX, ALPHA_EFF, BETA_EFF, GAMMA_EFF, THRESHOLD, RHO = range(7)
#: Names of the free parameters in the order of ``theta`` (the PyMC model's names).
PARAMETERS = (
    "alpha_tox",
    "beta_tox",
    "alpha_eff",
    "beta_eff",
    "gamma_eff",
    "threshold",
    "rho",
)
#: Layout of the prior array: means and sds of the five coefficients, then the log threshold.
N_COEF = 5
LOG_THRESHOLD_MEAN, LOG_THRESHOLD_SD = 2 * N_COEF, 2 * N_COEF + 1
#: Names of the entries of the prior array.
PRIOR_NAMES = (
    *(f"{name}_mean" for name in PARAMETERS[:N_COEF]),
    *(f"{name}_sd" for name in PARAMETERS[:N_COEF]),
    "log_threshold_mean",
    "log_threshold_sd",
)

#: Slice widths (rho on (-1, 1); log threshold; toxicity coefficients), stepping-out budget.
RHO_SLICE_WIDTH = 0.5
LOG_THRESHOLD_SLICE_WIDTH = 0.5
COEFFICIENT_SLICE_WIDTH = 1.0
SLICE_MAX_STEPS = 32
#: Shrinkages after which a slice bracket has collapsed onto the current point (it keeps it).
MAX_SHRINKS = 200
#: Largest |rho| the moves accept: beyond it s = sqrt(1 - rho^2) loses all precision.
RHO_LIMIT = 1.0 - 1e-9

#: Names and dtypes of the statistics of a sweep (columns of :func:`run_chain`'s statistics).
SWEEP_STATS = {
    "rho_slice_evals": np.int64,
    "threshold_slice_evals": np.int64,
    "toxicity_slice_evals": np.int64,
    "efficacy_slice_evals": np.int64,
}

#: Slice targets of :func:`log_target` (its ``which``): rho and log(threshold) with ``Z_E``
#: integrated out, alpha_T and beta_T with ``Z_T`` integrated out, then alpha_E, beta_E and
#: gamma_E (``ALPHA_EFF_TARGET + 0, 1, 2``) with ``Z_E`` integrated out.
RHO_TARGET, LOG_THRESHOLD_TARGET, ALPHA_TOX_TARGET, BETA_TOX_TARGET, ALPHA_EFF_TARGET = range(5)


def pack_prior(means: ArrayLike, sds: ArrayLike, log_threshold: tuple[float, float]) -> np.ndarray:
    """Lay the prior out for the kernels.

    Parameters
    ----------
    means, sds : array_like of float
        Prior means and sds of ``alpha_tox, beta_tox, alpha_eff, beta_eff, gamma_eff``
        (``beta_tox``'s normal is truncated to (0, inf)).
    log_threshold : tuple of float
        Mean and sd of the normal prior of ``log(threshold)``.

    Returns
    -------
    numpy.ndarray
    """
    return np.concatenate(
        [np.asarray(means, float), np.asarray(sds, float), np.asarray(log_threshold, float)]
    )


@njit(cache=True, error_model="numpy")
def band(efficacy, threshold):
    """Cut points ``(c_E, c_{E+1})`` of an efficacy category."""
    if efficacy == 0:
        return -np.inf, 0.0
    if efficacy == 1:
        return 0.0, threshold
    return threshold, np.inf


@njit(cache=True, error_model="numpy")
def means(theta, x):
    """Latent means ``mu_T`` and ``mu_E`` of every patient."""
    mu_t = theta[ALPHA_TOX] + theta[BETA_TOX] * x
    mu_e = theta[ALPHA_EFF] + theta[BETA_EFF] * x + theta[GAMMA_EFF] * x * x
    return mu_t, mu_e


@njit(cache=True, error_model="numpy")
def draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff):
    """Exact draw of every ``Z_T`` given ``Z_E`` (in place)."""
    rho = theta[RHO]
    sd = math.sqrt(1.0 - rho * rho)
    mu_t, mu_e = means(theta, x)
    for i in range(x.size):
        mean = mu_t[i] + rho * (z_eff[i] - mu_e[i])
        if tox[i] == 1:
            z_tox[i] = truncated_normal(rng, mean, sd, 0.0, np.inf)
        else:
            z_tox[i] = truncated_normal(rng, mean, sd, -np.inf, 0.0)


@njit(cache=True, error_model="numpy")
def draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff):
    """Exact draw of every ``Z_E`` given ``Z_T`` (in place)."""
    rho = theta[RHO]
    sd = math.sqrt(1.0 - rho * rho)
    mu_t, mu_e = means(theta, x)
    for i in range(x.size):
        lower, upper = band(eff[i], theta[THRESHOLD])
        z_eff[i] = truncated_normal(rng, mu_e[i] + rho * (z_tox[i] - mu_t[i]), sd, lower, upper)


@njit(cache=True, error_model="numpy")
def efficacy_log_likelihood(rho, threshold, theta, x, eff, z_tox):
    """``sum_i log P(E_i | Z_T,i)`` with ``Z_E`` integrated out, at ``(rho, threshold)``."""
    if not (-RHO_LIMIT < rho < RHO_LIMIT) or not threshold > 0.0:
        return -np.inf
    sd = math.sqrt(1.0 - rho * rho)
    mu_t, mu_e = means(theta, x)
    total = 0.0
    for i in range(x.size):
        centre = mu_e[i] + rho * (z_tox[i] - mu_t[i])
        lower, upper = band(eff[i], threshold)
        if eff[i] == 0:
            total += log_ndtr((upper - centre) / sd)
        elif eff[i] == 2:
            total += log_ndtr((centre - lower) / sd)
        else:
            total += log_normal_mass((lower - centre) / sd, (upper - centre) / sd)
    return total


@njit(cache=True, error_model="numpy")
def toxicity_log_likelihood(alpha, beta, theta, x, tox, z_eff):
    """``sum_i log P(T_i | Z_E,i)`` with ``Z_T`` integrated out, at ``(alpha_T, beta_T)``."""
    rho = theta[RHO]
    sd = math.sqrt(1.0 - rho * rho)
    _, mu_e = means(theta, x)
    total = 0.0
    for i in range(x.size):
        z = (alpha + beta * x[i] + rho * (z_eff[i] - mu_e[i])) / sd
        total += log_ndtr(z if tox[i] == 1 else -z)
    return total


@njit(cache=True, error_model="numpy")
def log_target(which, value, theta, x, tox, eff, z_tox, z_eff, prior):
    """Log density of a slice update, up to a constant.

    ``which`` (the ``*_TARGET`` constants): ``RHO_TARGET`` and ``LOG_THRESHOLD_TARGET`` with
    ``Z_E`` integrated out (the log-normal prior of the threshold with its Jacobian is the
    normal prior of its log), ``ALPHA_TOX_TARGET`` and ``BETA_TOX_TARGET`` with ``Z_T``
    integrated out, ``ALPHA_EFF_TARGET + 0, 1, 2`` (alpha_E, beta_E, gamma_E) with ``Z_E``
    integrated out.
    """
    if which == RHO_TARGET:
        return efficacy_log_likelihood(value, theta[THRESHOLD], theta, x, eff, z_tox)
    if which == LOG_THRESHOLD_TARGET:
        z = (value - prior[LOG_THRESHOLD_MEAN]) / prior[LOG_THRESHOLD_SD]
        log_likelihood = efficacy_log_likelihood(theta[RHO], math.exp(value), theta, x, eff, z_tox)
        return log_likelihood - 0.5 * z * z
    if which == ALPHA_TOX_TARGET:
        z = (value - prior[ALPHA_TOX]) / prior[N_COEF + ALPHA_TOX]
        return toxicity_log_likelihood(value, theta[BETA_TOX], theta, x, tox, z_eff) - 0.5 * z * z
    if which == BETA_TOX_TARGET:
        if not value > 0.0:
            return -np.inf
        z = (value - prior[BETA_TOX]) / prior[N_COEF + BETA_TOX]
        return toxicity_log_likelihood(theta[ALPHA_TOX], value, theta, x, tox, z_eff) - 0.5 * z * z
    # alpha_E, beta_E, gamma_E with Z_E integrated out (theta restored after use).
    index = ALPHA_EFF + which - ALPHA_EFF_TARGET
    z = (value - prior[index]) / prior[N_COEF + index]
    current = theta[index]
    theta[index] = value
    log_density = efficacy_log_likelihood(theta[RHO], theta[THRESHOLD], theta, x, eff, z_tox)
    theta[index] = current
    return log_density - 0.5 * z * z


@njit(cache=True, error_model="numpy")
def slice_update(rng, which, current, width, theta, x, tox, eff, z_tox, z_eff, prior):
    """One univariate slice update with stepping out and shrinkage (Neal 2003, Figs 3 and 5).

    Returns the new value and the number of density evaluations.
    """
    threshold = log_target(which, current, theta, x, tox, eff, z_tox, z_eff, prior) + math.log(
        rng.uniform()
    )
    left = current - width * rng.uniform()
    right = left + width
    steps_left = math.floor(SLICE_MAX_STEPS * rng.uniform())
    steps_right = SLICE_MAX_STEPS - 1 - steps_left
    evals = 1
    while (
        steps_left > 0
        and log_target(which, left, theta, x, tox, eff, z_tox, z_eff, prior) > threshold
    ):
        left -= width
        steps_left -= 1
        evals += 1
    while (
        steps_right > 0
        and log_target(which, right, theta, x, tox, eff, z_tox, z_eff, prior) > threshold
    ):
        right += width
        steps_right -= 1
        evals += 1
    while True:
        proposal = left + rng.uniform() * (right - left)
        evals += 1
        if log_target(which, proposal, theta, x, tox, eff, z_tox, z_eff, prior) > threshold:
            return proposal, evals
        if evals >= MAX_SHRINKS + SLICE_MAX_STEPS:
            return current, evals
        if proposal < current:
            left = proposal
        else:
            right = proposal


@njit(cache=True, error_model="numpy")
def draw_rho(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice update of rho with ``Z_E`` integrated out (in place); returns the evaluations."""
    rho, evals = slice_update(
        rng, RHO_TARGET, theta[RHO], RHO_SLICE_WIDTH, theta, x, tox, eff, z_tox, z_eff, prior
    )
    theta[RHO] = rho
    return evals


@njit(cache=True, error_model="numpy")
def draw_threshold(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice update of log(threshold) with ``Z_E`` integrated out (in place).

    Returns the density evaluations.
    """
    log_c, evals = slice_update(
        rng,
        LOG_THRESHOLD_TARGET,
        math.log(theta[THRESHOLD]),
        LOG_THRESHOLD_SLICE_WIDTH,
        theta,
        x,
        tox,
        eff,
        z_tox,
        z_eff,
        prior,
    )
    theta[THRESHOLD] = math.exp(log_c)
    return evals


@njit(cache=True, error_model="numpy")
def regression_posterior(design, response, noise_var, prior_mean, prior_sd):
    """Mean and lower Cholesky factor of the precision of a normal regression posterior."""
    k = design.shape[1]
    precision = design.T @ design / noise_var
    shift = design.T @ response / noise_var
    for j in range(k):
        precision[j, j] += 1.0 / prior_sd[j] ** 2
        shift[j] += prior_mean[j] / prior_sd[j] ** 2
    chol, _ = cholesky(precision)  # positive definite: the prior's precision is on it
    mean = cholesky_solve(chol, shift)
    return mean, chol


@njit(cache=True, error_model="numpy")
def draw_toxicity_coefficients(rng, theta, x, z_tox, z_eff, prior):
    """Exact block draw of ``(alpha_T, beta_T)``, ``beta_T > 0`` (in place)."""
    rho = theta[RHO]
    _, mu_e = means(theta, x)
    design = np.empty((x.size, 2))
    design[:, 0] = 1.0
    design[:, 1] = x
    response = z_tox - rho * (z_eff - mu_e)
    noise_var = 1.0 - rho * rho
    mean, chol = regression_posterior(
        design, response, noise_var, prior[0:2], prior[N_COEF : N_COEF + 2]
    )
    # Covariance of a 2x2 precision L L^T, inverted in closed form.
    p11 = chol[0, 0] ** 2
    p12 = chol[1, 0] * chol[0, 0]
    p22 = chol[1, 0] ** 2 + chol[1, 1] ** 2
    det = p11 * p22 - p12 * p12
    var_a, cov_ab, var_b = p22 / det, -p12 / det, p11 / det
    beta = truncated_normal(rng, mean[1], math.sqrt(var_b), 0.0, np.inf)
    theta[BETA_TOX] = beta
    theta[ALPHA_TOX] = rng.normal(
        mean[0] + cov_ab / var_b * (beta - mean[1]), math.sqrt(var_a - cov_ab * cov_ab / var_b)
    )


@njit(cache=True, error_model="numpy")
def draw_efficacy_coefficients(rng, theta, x, z_tox, z_eff, prior):
    """Exact draw of ``(alpha_E, beta_E, gamma_E)`` from their normal conditional (in place)."""
    rho = theta[RHO]
    mu_t, _ = means(theta, x)
    design = np.empty((x.size, 3))
    design[:, 0] = 1.0
    design[:, 1] = x
    design[:, 2] = x * x
    response = z_eff - rho * (z_tox - mu_t)
    noise_var = 1.0 - rho * rho
    mean, chol = regression_posterior(
        design, response, noise_var, prior[2:5], prior[N_COEF + 2 : N_COEF + 5]
    )
    # theta = mean + L^{-T} z has covariance (L L^T)^{-1}.
    z = np.array([rng.normal(), rng.normal(), rng.normal()])
    draw = np.zeros(3)
    for j in range(2, -1, -1):
        total = z[j]
        for m in range(j + 1, 3):
            total -= chol[m, j] * draw[m]
        draw[j] = total / chol[j, j]
    theta[ALPHA_EFF] = mean[0] + draw[0]
    theta[BETA_EFF] = mean[1] + draw[1]
    theta[GAMMA_EFF] = mean[2] + draw[2]


@njit(cache=True, error_model="numpy")
def toxicity_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice steps on alpha_T, then beta_T, with ``Z_T`` integrated out (in place).

    Returns the slice evaluations of the two coefficients.
    """
    alpha, alpha_evals = slice_update(
        rng,
        ALPHA_TOX_TARGET,
        theta[ALPHA_TOX],
        COEFFICIENT_SLICE_WIDTH,
        theta,
        x,
        tox,
        eff,
        z_tox,
        z_eff,
        prior,
    )
    theta[ALPHA_TOX] = alpha
    beta, beta_evals = slice_update(
        rng,
        BETA_TOX_TARGET,
        theta[BETA_TOX],
        COEFFICIENT_SLICE_WIDTH,
        theta,
        x,
        tox,
        eff,
        z_tox,
        z_eff,
        prior,
    )
    theta[BETA_TOX] = beta
    return alpha_evals + beta_evals


@njit(cache=True, error_model="numpy")
def toxicity_block(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice alpha_T and beta_T with ``Z_T`` integrated out, draw ``Z_T``, then both exactly.

    In place: the slice steps (:func:`toxicity_slices`), ``Z_T | Z_E``, then the normal block
    draw of ``(alpha_T, beta_T)``. Returns the slice evaluations of the two coefficients.
    """
    evals = toxicity_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff)
    draw_toxicity_coefficients(rng, theta, x, z_tox, z_eff, prior)
    return evals


@njit(cache=True, error_model="numpy")
def efficacy_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice steps on alpha_E, beta_E, gamma_E with ``Z_E`` integrated out (in place).

    Returns the slice evaluations.
    """
    evals = 0
    for offset in range(3):
        which = ALPHA_EFF_TARGET + offset
        index = ALPHA_EFF + offset
        value, used = slice_update(
            rng,
            which,
            theta[index],
            COEFFICIENT_SLICE_WIDTH,
            theta,
            x,
            tox,
            eff,
            z_tox,
            z_eff,
            prior,
        )
        theta[index] = value
        evals += used
    return evals


@njit(cache=True, error_model="numpy")
def efficacy_block(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """Slice the efficacy coefficients with ``Z_E`` integrated out, draw ``Z_E``, then exactly.

    In place: slice steps on alpha_E, beta_E, gamma_E (:func:`efficacy_slices`),
    ``Z_E | Z_T``, then the normal draw of the three. Returns the slice evaluations.
    """
    evals = efficacy_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff)
    draw_efficacy_coefficients(rng, theta, x, z_tox, z_eff, prior)
    return evals


@njit(cache=True, error_model="numpy")
def initial_latents(rng, theta, x, tox, eff):
    """Draw a latent state in the observed rectangles: ``Z_T`` given ``Z_E = mu_E``, then ``Z_E``.

    Any such state is a valid start of the augmented chain.
    """
    z_tox = np.empty(x.size)
    _, mu_e = means(theta, x)
    z_eff = mu_e.copy()
    draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff)
    draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff)
    return z_tox, z_eff


@njit(cache=True, error_model="numpy")
def latent_block(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """``Z_T | Z_E``, then rho and the threshold with ``Z_E`` integrated out, then ``Z_E``.

    Returns the slice evaluations of rho and of the threshold.
    """
    draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff)
    rho_evals = draw_rho(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    threshold_evals = draw_threshold(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff)
    return rho_evals, threshold_evals


@njit(cache=True, error_model="numpy")
def sweep(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """One iteration: the latent block, the toxicity block, the efficacy block (in place).

    Returns the slice evaluations of rho, the threshold, the toxicity and efficacy
    coefficients.
    """
    rho_evals, threshold_evals = latent_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    toxicity_evals = toxicity_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    efficacy_evals = efficacy_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    return rho_evals, threshold_evals, toxicity_evals, efficacy_evals


@njit(cache=True, error_model="numpy")
def run_chain(rng, theta0, x, tox, eff, prior, n_tune, n_draws):
    """Run one chain of the data-augmentation Gibbs sampler (:func:`sweep`).

    Parameters
    ----------
    rng : numpy.random.Generator
        The chain's generator; numba draws numpy's exact stream from it.
    theta0 : numpy.ndarray
        Initial parameters (layout ``ALPHA_TOX ... RHO``), inside the support.
    x : numpy.ndarray
        Standardised log dose of each patient.
    tox, eff : numpy.ndarray
        Toxicity (0/1) and efficacy (0/1/2) of each patient, int64.
    prior : numpy.ndarray
        From :func:`pack_prior`.
    n_tune, n_draws : int
        Iterations discarded as burn-in, then kept.

    Returns
    -------
    draws : numpy.ndarray
        ``(n_draws, 7)`` in the layout of ``theta``.
    stats : numpy.ndarray
        ``(n_draws, 4)``: slice evaluations of rho, of the threshold, of the toxicity and of
        the efficacy coefficients.
    """
    theta = theta0.copy()
    z_tox, z_eff = initial_latents(rng, theta, x, tox, eff)
    draws = np.empty((n_draws, theta.size))
    stats = np.zeros((n_draws, 4))
    for it in range(n_tune + n_draws):
        evals = sweep(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        k = it - n_tune
        if k >= 0:
            draws[k] = theta
            stats[k, 0] = evals[0]
            stats[k, 1] = evals[1]
            stats[k, 2] = evals[2]
            stats[k, 3] = evals[3]
    return draws, stats
