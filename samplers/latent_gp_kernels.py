r"""Numba kernels that sample the latent-logit GP posterior (Seno et al. 2025, eqs 15-18, 21).

The PyMC model :class:`dosezoo.models.latent_gp.LatentGP` is the specification; the step
methods of :mod:`dosezoo.samplers.latent_gp` and the kernel engine (:func:`run_chain`) call
the functions below, so both target the same posterior.

Model (non-centred, "whitened")
-------------------------------
With :math:`K` doses at scaled positions :math:`x_k \in [0, 1]`, prior mean :math:`m_k`
(logit scale), the squared-exponential correlation
:math:`C_{jk} = \exp\{-(x_j - x_k)^2 / (2 \ell^2)\} + \epsilon 1\{j = k\}` (a fixed jitter
:math:`\epsilon` keeps the Cholesky factor :math:`L L^\top = C` numerically stable; with
:math:`\ell = 1` and five doses in [0, 1] the smallest eigenvalue of the exact matrix is about
:math:`10^{-6}`) and :math:`t = \log \sigma_f`:

.. math::

    z &\sim N(0, I_K), \qquad t \sim N(\mu_\sigma, s_\sigma^2) \\
    f &= m + e^{t} L z \quad (\text{so } f \mid \sigma_f \sim N(m, \sigma_f^2 C)) \\
    y_k \mid f &\sim \mathrm{Binomial}(n_k, \operatorname{logistic}(f_k)),

where :math:`n_k, y_k` are the patients and DLTs at dose :math:`k` (the per-patient
Bernoulli likelihood of eq 18 summed by dose). The log-likelihood is
:math:`\ell(f) = \sum_k y_k f_k - n_k \log(1 + e^{f_k})`. The log-normal prior of
:math:`\sigma_f` on :math:`t` with its Jacobian is exactly the normal density of :math:`t`
(this is PyMC's ``sigma_f_log__`` value variable).

Moves (each leaves the joint posterior of :math:`(z, t)` invariant)
-------------------------------------------------------------------
**z** (:func:`elliptical_slice`). Given :math:`t`, the prior of :math:`z` is exactly
:math:`N(0, I)`, so elliptical slice sampling (Murray, Adams and MacKay 2010) with the
likelihood :math:`\ell(m + e^t L z)` leaves :math:`p(z \mid t, y)` invariant. It is the same
as elliptical slice on :math:`f` with prior :math:`N(m, \sigma_f^2 C)`, whitened.

**t** (:func:`slice_log_sigma`). Given :math:`z`, :math:`\log p(t \mid z, y) =
-(t - \mu_\sigma)^2 / (2 s_\sigma^2) + \ell(m + e^t L z) + \text{const}`; a univariate slice
sampler with stepping out and shrinkage (Neal 2003, Figs 3 and 5) leaves it invariant.
Updating :math:`\sigma_f` with :math:`z` (not :math:`f`) fixed is the non-centred move: it
mixes when the data say little about :math:`\sigma_f`, which is the rule in dose finding.

**t given f** (:func:`slice_log_sigma_centred`). The centred move: with :math:`f` fixed,
:math:`w = L^{-1}(f - m) = e^t z` is fixed and
:math:`\log p(t \mid f) = -(t - \mu_\sigma)^2 / (2 s_\sigma^2) - K t - |w|^2 e^{-2t} / 2
+ \text{const}` (the density of :math:`f \mid \sigma_f`; the likelihood does not change), the
same slice sampler moves :math:`t`, and :math:`z` is rescaled to :math:`e^{-t'} w`. When the
data pull :math:`f` far from the prior mean, the non-centred move alone is slow (moving
:math:`t` with :math:`z` fixed moves :math:`f`); alternating both moves (interweaving, Yu and
Meng 2011) keeps :math:`\sigma_f` mixing in both regimes (the property test of the two-stage design
found data, many DLTs at the lowest doses, where the non-centred move alone left the ESS of
:math:`p_k` below 100 in 1200 draws).

One sweep of :func:`run_chain`: elliptical slice on :math:`z`, centred slice on :math:`t`,
non-centred slice on :math:`t`.
"""

import math

import numpy as np
from numba import njit

#: Statistics of one sweep, in the order :func:`run_chain` stores them.
SWEEP_STATS = {"ess_shrinks": np.int64, "slice_evaluations": np.int64}
#: Stepping-out budget of the slice move on log sigma_f (Neal's m).
_MAX_STEP_OUT = 32


@njit(cache=True)
def log_likelihood(f: np.ndarray, n: np.ndarray, y: np.ndarray) -> float:
    """Binomial log-likelihood ``sum y f - n log(1 + e^f)`` (constant dropped)."""
    total = 0.0
    for k in range(f.size):
        if n[k] == 0.0:  # an untreated dose adds exactly 0: skip its exp and log1p
            continue
        fk = f[k]
        softplus = fk + math.log1p(math.exp(-fk)) if fk > 0.0 else math.log1p(math.exp(fk))
        total += y[k] * fk - n[k] * softplus
    return total


@njit(cache=True)
def whitened_to_latent(
    z: np.ndarray, log_sigma: float, chol: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    """Return ``f = m + exp(log_sigma) L z``."""
    scale = math.exp(log_sigma)
    size = z.size
    f = np.empty(size)
    for i in range(size):
        acc = 0.0
        for j in range(i + 1):
            acc += chol[i, j] * z[j]
        f[i] = mean[i] + scale * acc
    return f


@njit(cache=True)
def _shape(z: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Return ``L z`` (lower-triangular product)."""
    size = z.size
    g = np.empty(size)
    for i in range(size):
        acc = 0.0
        for j in range(i + 1):
            acc += chol[i, j] * z[j]
        g[i] = acc
    return g


@njit(cache=True)
def _loglik_scaled(
    g: np.ndarray, scale: float, mean: np.ndarray, n: np.ndarray, y: np.ndarray
) -> float:
    """Log-likelihood at ``f = m + scale * g``."""
    total = 0.0
    for k in range(g.size):
        if n[k] == 0.0:  # an untreated dose adds exactly 0: skip its exp and log1p
            continue
        fk = mean[k] + scale * g[k]
        softplus = fk + math.log1p(math.exp(-fk)) if fk > 0.0 else math.log1p(math.exp(fk))
        total += y[k] * fk - n[k] * softplus
    return total


@njit(cache=True)
def elliptical_slice(
    rng: np.random.Generator,
    z: np.ndarray,
    log_sigma: float,
    chol: np.ndarray,
    mean: np.ndarray,
    n: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, int]:
    """One elliptical slice move of ``z`` given ``log_sigma``; return new ``z`` and shrinks."""
    size = z.size
    scale = math.exp(log_sigma)
    current = _loglik_scaled(_shape(z, chol), scale, mean, n, y)
    nu = np.empty(size)
    for i in range(size):
        nu[i] = rng.standard_normal()
    threshold = current + math.log(rng.random())
    theta = rng.uniform(0.0, 2.0 * math.pi)
    lower, upper = theta - 2.0 * math.pi, theta
    proposal = np.empty(size)
    shrinks = 0
    while True:
        c, s = math.cos(theta), math.sin(theta)
        for i in range(size):
            proposal[i] = z[i] * c + nu[i] * s
        if _loglik_scaled(_shape(proposal, chol), scale, mean, n, y) > threshold:
            return proposal, shrinks
        shrinks += 1
        if theta < 0.0:
            lower = theta
        else:
            upper = theta
        if upper - lower < 1e-12:  # numerically at the current point, which is on the slice
            return z.copy(), shrinks
        theta = rng.uniform(lower, upper)


@njit(cache=True)
def _log_target_t(
    t: float,
    g: np.ndarray,
    mean: np.ndarray,
    n: np.ndarray,
    y: np.ndarray,
    mu: float,
    sd: float,
) -> float:
    return -0.5 * ((t - mu) / sd) ** 2 + _loglik_scaled(g, math.exp(t), mean, n, y)


@njit(cache=True)
def slice_log_sigma(
    rng: np.random.Generator,
    z: np.ndarray,
    log_sigma: float,
    chol: np.ndarray,
    mean: np.ndarray,
    n: np.ndarray,
    y: np.ndarray,
    mu: float,
    sd: float,
    width: float,
) -> tuple[float, int]:
    """One slice move of ``t = log sigma_f`` given ``z``; return new ``t`` and evaluations."""
    g = _shape(z, chol)
    threshold = _log_target_t(log_sigma, g, mean, n, y, mu, sd) + math.log(rng.random())
    left = log_sigma - width * rng.random()
    right = left + width
    budget = int(_MAX_STEP_OUT * rng.random())
    evaluations = 1
    steps = budget
    while steps > 0 and _log_target_t(left, g, mean, n, y, mu, sd) > threshold:
        left -= width
        steps -= 1
        evaluations += 1
    steps = _MAX_STEP_OUT - 1 - budget
    while steps > 0 and _log_target_t(right, g, mean, n, y, mu, sd) > threshold:
        right += width
        steps -= 1
        evaluations += 1
    while True:
        proposal = rng.uniform(left, right)
        evaluations += 1
        if _log_target_t(proposal, g, mean, n, y, mu, sd) > threshold:
            return proposal, evaluations
        if proposal < log_sigma:
            left = proposal
        else:
            right = proposal
        if right - left < 1e-12:
            return log_sigma, evaluations


@njit(cache=True)
def _log_target_t_centred(t: float, norm2: float, size: int, mu: float, sd: float) -> float:
    return -0.5 * ((t - mu) / sd) ** 2 - size * t - 0.5 * norm2 * math.exp(-2.0 * t)


@njit(cache=True)
def slice_log_sigma_centred(
    rng: np.random.Generator,
    z: np.ndarray,
    log_sigma: float,
    mu: float,
    sd: float,
    width: float,
) -> tuple[np.ndarray, float, int]:
    """Slice move of ``t = log sigma_f`` given ``f`` (so ``z`` is rescaled); no likelihood.

    Returns the new ``z`` (``f`` unchanged), the new ``t`` and the number of evaluations.
    """
    size = z.size
    norm2 = 0.0
    for i in range(size):
        norm2 += z[i] * z[i]
    norm2 *= math.exp(2.0 * log_sigma)  # |L^-1 (f - m)|^2
    threshold = _log_target_t_centred(log_sigma, norm2, size, mu, sd) + math.log(rng.random())
    left = log_sigma - width * rng.random()
    right = left + width
    budget = int(_MAX_STEP_OUT * rng.random())
    evaluations = 1
    steps = budget
    while steps > 0 and _log_target_t_centred(left, norm2, size, mu, sd) > threshold:
        left -= width
        steps -= 1
        evaluations += 1
    steps = _MAX_STEP_OUT - 1 - budget
    while steps > 0 and _log_target_t_centred(right, norm2, size, mu, sd) > threshold:
        right += width
        steps -= 1
        evaluations += 1
    new = log_sigma
    while True:
        proposal = rng.uniform(left, right)
        evaluations += 1
        if _log_target_t_centred(proposal, norm2, size, mu, sd) > threshold:
            new = proposal
            break
        if proposal < log_sigma:
            left = proposal
        else:
            right = proposal
        if right - left < 1e-12:
            break
    scale = math.exp(log_sigma - new)
    out = np.empty(size)
    for i in range(size):
        out[i] = z[i] * scale
    return out, new, evaluations


@njit(cache=True)
def run_chain(
    rng: np.random.Generator,
    z0: np.ndarray,
    log_sigma0: float,
    chol: np.ndarray,
    mean: np.ndarray,
    n: np.ndarray,
    y: np.ndarray,
    mu: float,
    sd: float,
    width: float,
    tune: int,
    draws: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``tune + draws`` sweeps (elliptical slice on z, then slice on log sigma_f).

    Returns
    -------
    z : numpy.ndarray
        Kept draws of ``z``, shape (draws, K).
    log_sigma : numpy.ndarray
        Kept draws of ``log sigma_f``, shape (draws,).
    stats : numpy.ndarray
        ``ess_shrinks`` and ``slice_evaluations`` per kept draw, shape (draws, 2).
    """
    size = z0.size
    z = z0.copy()
    t = log_sigma0
    z_out = np.empty((draws, size))
    t_out = np.empty(draws)
    stats = np.empty((draws, 2), dtype=np.int64)
    for it in range(tune + draws):
        z, shrinks = elliptical_slice(rng, z, t, chol, mean, n, y)
        z, t, centred = slice_log_sigma_centred(rng, z, t, mu, sd, width)
        t, evaluations = slice_log_sigma(rng, z, t, chol, mean, n, y, mu, sd, width)
        evaluations += centred
        if it >= tune:
            k = it - tune
            z_out[k] = z
            t_out[k] = t
            stats[k, 0] = shrinks
            stats[k, 1] = evaluations
    return z_out, t_out, stats


@njit(cache=True)
def dlt_probabilities(
    z: np.ndarray, log_sigma: np.ndarray, chol: np.ndarray, mean: np.ndarray
) -> np.ndarray:
    """Return ``logistic(m + exp(t) L z)`` per draw, shape (draws, K)."""
    draws, size = z.shape
    out = np.empty((draws, size))
    for d in range(draws):
        f = whitened_to_latent(z[d], log_sigma[d], chol, mean)
        for k in range(size):
            out[d, k] = 1.0 / (1.0 + math.exp(-f[k]))
    return out


@njit(cache=True)
def geyer_ess(x: np.ndarray) -> np.ndarray:
    r"""Effective sample size of each column of one chain, ``x`` of shape (N, m).

    Geyer's initial monotone sequence: :math:`N / (1 + 2\sum_t \hat\rho_t)`, with the sums of
    the lag pairs :math:`\hat\rho_{2k} + \hat\rho_{2k+1}` taken while positive and made
    non-increasing, :math:`\hat\rho_t = \hat\gamma_t / \hat\gamma_0`,
    :math:`\hat\gamma_t = \frac1N \sum_{i < N - t} c_i c_{i+t}` (centred draws). The
    autocovariances are summed directly, lag by lag, and only up to the first non-positive
    pair: a well-mixing chain needs a few lags, so this costs O(N) where the FFT of all lags
    costs O(N log N) plus numpy's per-call overhead, which dominates in a simulation loop.
    A column without variation gets N. The floor :math:`\tau \ge 1/\log_{10} N` is ArviZ's.
    """
    size, columns = x.shape
    ess = np.full(columns, float(size))
    centred = np.empty(size)
    for j in range(columns):
        mean = 0.0
        for i in range(size):
            mean += x[i, j]
        mean /= size
        for i in range(size):
            centred[i] = x[i, j] - mean
        gamma0 = 0.0
        for i in range(size):
            gamma0 += centred[i] * centred[i]
        gamma0 /= size
        if gamma0 <= 0.0:
            continue
        total = 0.0
        previous = math.inf
        for lag in range(0, size - size % 2, 2):
            pair = 0.0
            for t in (lag, lag + 1):
                acov = 0.0
                for i in range(size - t):
                    acov += centred[i] * centred[i + t]
                pair += acov / size / gamma0
            if pair <= 0.0:
                break
            previous = min(previous, pair)
            total += previous
        tau = -1.0 + 2.0 * total
        ess[j] = size / max(tau, 1.0 / math.log10(size))
    return ess
