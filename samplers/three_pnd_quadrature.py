r"""Exact 3PND posterior of the MTD by two-dimensional quadrature (no Monte Carlo).

The dose-finding rule of Lee (2023) needs one number from the posterior: the
:math:`\alpha`-quantile of the MTD, with :math:`\alpha` as small as 0.001 in the paper's
standard designs, where a quantile estimated from MCMC draws is noisy. This module computes
the posterior CDF of the MTD deterministically.

Derivation
----------
Integrating :math:`\beta` out of the joint posterior gives the marginal density of
:math:`(\sigma, \nu)` in closed form
(:func:`dosezoo.samplers.three_pnd_kernels.collapsed_log_density`; its derivation is in that
module). On :math:`u = \log\sigma`, :math:`\phi = \log\nu` the
density is

.. math:: g(u, \phi) \propto p(e^u, e^\phi \mid y) \, e^u \, N(\phi \mid 0, \delta^2)

(the log-normal prior of :math:`\nu` is exactly :math:`N(0, \delta^2)` in :math:`\phi`).
Given :math:`(\sigma, \nu)`, :math:`\beta` is :math:`N(\mu, s^2)` truncated to
:math:`(l, u)` with :math:`\mu = S_{wy}/S_{ww}`, :math:`s = \sigma/\sqrt{S_{ww}}`
(the prior's uniform :math:`U(l, u)` when there are no data). The MTD of eq (5) is
decreasing in :math:`\beta`, so for :math:`x_{min} < x < x_{max}`

.. math::

    P(\mathrm{MTD} \le x \mid \sigma, \nu, y) = P\{\beta \ge b(x)\}, \qquad
    b(x) = \frac{\eta - \sigma z}{(x - x_{min})^\nu},

a ratio of normal masses, and :math:`d b / d x = -\nu\, b(x) / (x - x_{min})`. The
posterior CDF is :math:`F(x) = \int\!\!\int g(u, \phi) P\{\beta \ge b(x)\} \, du \, d\phi`,
computed by the midpoint rule on a grid of cells; its density :math:`F'(x)` the same way, and
quantiles :math:`F^{-1}(p)` by Newton steps safeguarded by bisection.

The grid adapts to the posterior: it starts on :math:`u \in (\log S - 30, \log S)` (the
support of :math:`\sigma` is :math:`(0, S)`, :math:`S = \eta / z`) and
:math:`\phi \in (-12\delta, 12\delta)`, then is refitted to the cells whose log density is
within :data:`LOG_DENSITY_RANGE` of the maximum, widened where that region touches an open
edge, narrowed where it covers too few cells, until it covers the region with at least
:data:`MIN_CELLS_ACROSS` cells in each direction. The midpoint rule on a smooth density that
decays to :math:`e^{-36}` within the grid is accurate far beyond Monte Carlo error (tests
compare grids of different sizes and compare with long MCMC runs and NUTS).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from dosezoo.diagnostics import ConvergenceReport
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.special import log_ndtr

#: Cells whose log density is more than this below the maximum carry no weight (e^-36 ~ 2e-16).
LOG_DENSITY_RANGE = 36.0
#: The grid is refitted until the retained region spans at least this many cells each way.
MIN_CELLS_ACROSS = 0.6
#: Most refits of the grid before giving up.
MAX_REFITS = 12
#: Tolerance on the dose of a quantile, as a fraction of the dose range.
QUANTILE_TOLERANCE = 1e-7
SQRT_2PI = math.sqrt(2.0 * math.pi)


@njit(cache=True, error_model="numpy")
def log_density_grid(log_sigma, phi, obs, hyper):
    """Log of the marginal density ``g(u, phi)`` (up to a constant) at every grid point."""
    out = np.empty((log_sigma.size, phi.size))
    for j in range(phi.size):
        nu = math.exp(phi[j])
        nu_moments = kernels.moments(nu, obs)
        prior = -0.5 * (phi[j] / hyper[kernels.DELTA]) ** 2
        for i in range(log_sigma.size):
            sigma = math.exp(log_sigma[i])
            if obs[4] == 0.0:
                density = kernels.collapsed_log_density(sigma, nu, obs, hyper)
            else:
                density = kernels.collapsed_log_density_from_moments(
                    sigma, nu, nu_moments, obs, hyper
                )
            # nan (an overflow far out in a tail) is a point of no mass
            out[i, j] = density + log_sigma[i] + prior if density > -np.inf else -np.inf
    return out


@njit(cache=True, error_model="numpy")
def beta_conditionals(sigma, nu, obs, hyper):
    """Per cell, beta's truncated normal: ``(mean, sd, lower, upper, log_mass, top, log_top)``.

    ``top = (upper - mean) / sd`` and ``log_top = (log Phi(top), log Phi(-top))`` are kept
    because every CDF evaluation needs them. ``sd = inf`` marks a cell without data, where
    beta's conditional is the uniform prior.
    """
    n = sigma.size
    out = np.empty((n, 8))
    for k in range(n):
        lower, upper = kernels.beta_bounds(sigma[k], nu[k], hyper)
        s_ww, s_wy = kernels.moments(nu[k], obs)
        out[k, 2] = lower
        out[k, 3] = upper
        if obs[4] == 0.0 or not s_ww >= kernels.MIN_BASIS_MASS:
            out[k, 0:2] = (0.0, np.inf)
            out[k, 4] = math.log(upper - lower)
            out[k, 5:8] = (np.inf, 0.0, -np.inf)
        else:
            mean = s_wy / s_ww
            sd = sigma[k] / math.sqrt(s_ww)
            top = (upper - mean) / sd
            out[k, 0:2] = (mean, sd)
            out[k, 4] = kernels.log_normal_mass((lower - mean) / sd, top)
            out[k, 5:8] = (top, log_ndtr(top), log_ndtr(-top))
    return out


@njit(cache=True, error_model="numpy")
def _log_upper_mass(t, cell):
    """``log(Phi(top) - Phi(t))`` for ``t < top``, in whichever tail is accurate."""
    top = cell[5]
    if t + top > 0.0:  # mostly above the mean: use the upper tails Phi(-t) - Phi(-top)
        log_a, log_b = cell[7], log_ndtr(-t)
    else:
        log_a, log_b = log_ndtr(t), cell[6]
    if log_a >= log_b:
        return -np.inf
    return log_b + math.log1p(-math.exp(log_a - log_b))


@njit(cache=True, error_model="numpy")
def mtd_cdf_and_density(x, weight, sigma, nu, beta, hyper):
    """``F(x) = P(MTD <= x | y)`` and its derivative, summed over the grid cells."""
    log_dx = math.log(x - hyper[kernels.X_MIN])
    cdf = 0.0
    density = 0.0
    for k in range(weight.size):
        cell = beta[k]
        mean, sd, lower, upper, log_mass = cell[0], cell[1], cell[2], cell[3], cell[4]
        threshold = (hyper[kernels.ETA] - sigma[k] * hyper[kernels.Z]) * math.exp(-nu[k] * log_dx)
        if threshold >= upper:
            continue
        if threshold <= lower:
            cdf += weight[k]
            continue
        slope = nu[k] * threshold / (x - hyper[kernels.X_MIN])  # -db/dx
        if math.isinf(sd):
            cdf += weight[k] * (upper - threshold) / (upper - lower)
            density += weight[k] * slope / (upper - lower)
        else:
            t = (threshold - mean) / sd
            cdf += weight[k] * math.exp(_log_upper_mass(t, cell) - log_mass)
            density += weight[k] * slope * math.exp(-0.5 * t * t - log_mass) / (sd * SQRT_2PI)
    return cdf, density


@njit(cache=True, error_model="numpy")
def mtd_quantile(p, weight, sigma, nu, beta, hyper):
    """``F^{-1}(p)``: Newton steps on ``F(x) - p``, kept inside a shrinking bisection bracket.

    The first guess is the ``p``-quantile of the cells' MTDs at beta's conditional mean. The
    result is kept inside the open interval ``(x_min, x_max)`` (by one unit in the last place
    where the posterior piles up at an end, as :func:`dosezoo.samplers.three_pnd_kernels.mtd`
    does).
    """
    lower = hyper[kernels.X_MIN]
    upper = hyper[kernels.X_MAX]
    tolerance = QUANTILE_TOLERANCE * (upper - lower)
    typical = np.empty(weight.size)
    for k in range(weight.size):
        centre = (
            min(max(beta[k, 0], beta[k, 2]), beta[k, 3])
            if beta[k, 1] < np.inf
            else 0.5 * (beta[k, 2] + beta[k, 3])
        )
        typical[k] = kernels.mtd(centre, sigma[k], nu[k], hyper)
    order = np.argsort(typical)
    x = typical[order[-1]]
    mass = 0.0
    for k in order:
        mass += weight[k]
        if mass >= p:
            x = typical[k]
            break
    for _ in range(200):
        cdf, density = mtd_cdf_and_density(x, weight, sigma, nu, beta, hyper)
        if cdf < p:
            lower = x
        else:
            upper = x
        step_ok = density > 0.0
        if step_ok:
            candidate = x - (cdf - p) / density
            step_ok = lower < candidate < upper
        new_x = candidate if step_ok else 0.5 * (lower + upper)
        if abs(new_x - x) <= tolerance:
            break
        x = new_x
    else:
        new_x = x
    # like the sampled MTD, keep a quantile piled up at an end inside the open dose range
    return kernels.inside_open(new_x, hyper[kernels.X_MIN], hyper[kernels.X_MAX])


@dataclass(frozen=True, eq=False)
class QuadratureGrid:
    """The retained cells of the posterior of ``(sigma, nu)`` with beta's conditional per cell.

    Attributes
    ----------
    weight : numpy.ndarray
        Posterior probability of each cell (sums to one).
    sigma, nu : numpy.ndarray
        Cell centres.
    beta : numpy.ndarray
        Shape (cells, 8): beta's truncated normal per cell (:func:`beta_conditionals`).
    hyper : numpy.ndarray
        The model's hyper-parameters (:func:`dosezoo.samplers.three_pnd_kernels.pack_hyper`).
    cell_width : tuple of float
        Widths of a cell in ``log(sigma)`` and ``log(nu)``.
    shape : tuple of int
        Size of the full grid the cells were retained from.
    refits : int
        Times the grid was refitted to the posterior.
    obs : tuple
        The data's per-dose statistics (:func:`dosezoo.samplers.three_pnd_kernels.summarise`).
    """

    weight: np.ndarray
    sigma: np.ndarray
    nu: np.ndarray
    beta: np.ndarray
    hyper: np.ndarray
    cell_width: tuple[float, float]
    shape: tuple[int, int]
    refits: int
    obs: tuple

    @property
    def report(self) -> ConvergenceReport:
        """Diagnostics of the quadrature (it has no Monte Carlo error to fail on)."""
        return _quadrature_report(self.shape)

    def cdf(self, x: float) -> float:
        """Posterior ``P(MTD <= x)``; 0 at or below ``x_min``, 1 at or above ``x_max``."""
        if not math.isfinite(x):
            raise ValueError(f"cdf: x must be a finite dose, got {x!r}")
        if x <= self.hyper[kernels.X_MIN]:
            return 0.0
        if x >= self.hyper[kernels.X_MAX]:
            return 1.0
        cdf, _ = mtd_cdf_and_density(x, self.weight, self.sigma, self.nu, self.beta, self.hyper)
        return min(1.0, max(0.0, cdf))

    def quantile(self, p: float) -> float:
        """Posterior ``p``-quantile of the MTD, ``0 < p < 1``."""
        if not 0.0 < p < 1.0:
            raise ValueError(f"quantile: p must lie in (0, 1), got {p!r}")
        return float(mtd_quantile(p, self.weight, self.sigma, self.nu, self.beta, self.hyper))

    def sample(self, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Independent draws of ``beta, sigma, nu, mtd`` from the quadrature posterior.

        A cell is drawn by its weight and ``(log sigma, log nu)`` uniformly within it, then
        beta exactly from its truncated normal given ``(sigma, nu)``.
        """
        cell = rng.choice(self.weight.size, size=size, p=self.weight)
        log_sigma = np.log(self.sigma[cell]) + (rng.random(size) - 0.5) * self.cell_width[0]
        log_nu = np.log(self.nu[cell]) + (rng.random(size) - 0.5) * self.cell_width[1]
        sigma = np.minimum(np.exp(log_sigma), np.nextafter(self.hyper[kernels.SIGMA_MAX], 0))
        nu = np.exp(log_nu)
        beta, mtd = _draw_beta_and_mtd(rng, sigma, nu, self.obs, self.hyper)
        return {"beta": beta, "sigma": sigma, "nu": nu, "mtd": mtd}


@functools.cache
def _quadrature_report(shape: tuple[int, int]) -> ConvergenceReport:
    """One shared (read-only) report per grid shape: a DataFrame costs as much as a decision."""
    table = pd.DataFrame(
        {"engine": ["quadrature"], "grid": [f"{shape[0]}x{shape[1]}"]},
        index=pd.Index(["mtd"], name="variable"),
    )
    return ConvergenceReport(table=table, divergences=0, failures=())


@njit(cache=True, error_model="numpy")
def _draw_beta_and_mtd(rng, sigma, nu, obs, hyper):
    beta = np.empty(sigma.size)
    mtd = np.empty(sigma.size)
    for k in range(sigma.size):
        at_nu = kernels.moments(nu[k], obs)
        beta[k] = kernels.draw_beta(rng, sigma[k], nu[k], at_nu, obs, hyper)
        mtd[k] = kernels.mtd(beta[k], sigma[k], nu[k], hyper)
    return beta, mtd


def posterior_grid(obs: tuple, hyper: np.ndarray, *, size: int = 48) -> QuadratureGrid:
    """Fit a ``size x size`` grid to the posterior of ``(log sigma, log nu)``.

    Parameters
    ----------
    obs : tuple
        Per-dose statistics from :func:`dosezoo.samplers.three_pnd_kernels.summarise`.
    hyper : numpy.ndarray
        Hyper-parameters from :func:`dosezoo.samplers.three_pnd_kernels.pack_hyper`.
    size : int
        Cells per direction.

    Returns
    -------
    QuadratureGrid

    Raises
    ------
    FloatingPointError
        If the posterior density is nowhere finite, or the grid does not settle on it.
    """
    log_s = math.log(hyper[kernels.SIGMA_MAX])
    delta = hyper[kernels.DELTA]
    box = [[log_s - 30.0, log_s], [-12.0 * delta, 12.0 * delta]]
    for refit in range(MAX_REFITS):
        edges = [np.linspace(lo, hi, size + 1) for lo, hi in box]
        centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
        log_density = log_density_grid(centres[0], centres[1], obs, hyper)
        top = np.max(log_density)
        if not np.isfinite(top):
            raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
        kept = log_density > top - LOG_DENSITY_RANGE
        if not kept.any():  # top - 36 == top: the log density has lost its resolution
            raise FloatingPointError(
                f"3PND quadrature: the log density (maximum {top:g}) is too large in magnitude "
                "for double precision to resolve; some response is far outside the model's scale"
            )
        new_box, settled = [], True
        for axis, (lo, hi) in enumerate(box):
            index = np.flatnonzero(kept.any(axis=1 - axis))
            first, last = index[0], index[-1]
            width = (hi - lo) / size
            # sigma's upper end is the support's: the density stops there, it need not decay
            hard_top = axis == 0 and hi >= log_s
            new_lo = lo - 0.5 * (hi - lo) if first == 0 else lo + (first - 1) * width
            if last == size - 1:
                new_hi = hi if hard_top else hi + 0.5 * (hi - lo)
            else:
                new_hi = lo + (last + 2) * width
            new_hi = min(new_hi, log_s) if axis == 0 else new_hi
            touches = first == 0 or (last == size - 1 and not hard_top)
            too_coarse = (last - first + 1) < MIN_CELLS_ACROSS * size
            settled &= not (touches or too_coarse)
            new_box.append([new_lo, new_hi])
        if settled:
            break
        box = new_box
    else:
        raise FloatingPointError(
            f"3PND quadrature: the grid did not settle on the posterior in {MAX_REFITS} refits; "
            "the posterior is improper or nearly so, e.g. responses that a 3PND curve fits "
            "exactly, whose posterior piles up at sigma -> 0"
        )
    weight = np.exp(log_density[kept] - top)
    weight /= weight.sum()
    log_sigma_c, phi_c = np.meshgrid(centres[0], centres[1], indexing="ij")
    sigma = np.exp(log_sigma_c[kept])
    nu = np.exp(phi_c[kept])
    return QuadratureGrid(
        weight=weight,
        sigma=sigma,
        nu=nu,
        beta=beta_conditionals(sigma, nu, obs, hyper),
        hyper=hyper,
        cell_width=(edges[0][1] - edges[0][0], edges[1][1] - edges[1][0]),
        shape=(size, size),
        refits=refit,
        obs=obs,
    )
