r"""The 3PND posterior of the MTD by quadrature refined until the decision is stable.

The dose-finding rule of Lee (2023) reads two numbers from the posterior: the
:math:`\alpha`-quantile of the MTD (:math:`\alpha` as small as 0.001 in the paper's standard
designs) and the probability of overdosing at the dose chosen. This module computes them
deterministically, and refines the rule until each agrees between two successive levels
within a stated tolerance (:data:`MTD_TOLERANCE`, a fraction of the dose range for a quantile,
a probability for the CDF), for any number of patients.

The integral
------------
Integrating :math:`\beta` out of the joint posterior gives the marginal density of
:math:`(\sigma, \nu)` in closed form (derived in
:mod:`dosezoo.samplers.three_pnd_kernels`). On :math:`u = \log\sigma`,
:math:`\phi = \log\nu`, with :math:`\mu = S_{wy}/S_{ww}`, :math:`s = \sigma/\sqrt{S_{ww}}`,
:math:`Q = \sum_i (y_i - \mu w_i)^2` and beta's support :math:`(l, u_\beta)`,

.. math::

    g(u, \phi) \propto \sigma^{1-n} e^{-Q/(2\sigma^2)} S_{ww}^{-1/2}
        \frac{\Phi((u_\beta - \mu)/s) - \Phi((l - \mu)/s)}{(1 + R^{-\nu})(1 + \sigma^2)}
        \, N(\phi \mid 0, \delta^2).

The MTD of eq (5) is decreasing in :math:`\beta`, so for :math:`x_{min} < x < x_{max}`,
with :math:`D = x - x_{min}`,

.. math::

    F(x) = \frac{\iint g \, P\{\beta \ge b(x)\} \, du \, d\phi}{\iint g \, du \, d\phi},
    \qquad b(x) = \frac{\eta - \sigma z}{D^\nu},

where :math:`g \, P\{\beta \ge b\}` is :math:`g` with beta's mass taken over
:math:`(b, u_\beta)` only. :math:`F'(x)` is the same integral of :math:`g\,\partial_x P`, and
a quantile :math:`F^{-1}(p)` is found by Newton steps safeguarded by bisection.

Where the integrand is not smooth
---------------------------------
*The kink of* :math:`P`. :math:`b(x) \ge l` always (:math:`D < R`), and :math:`b(x) < u_\beta`
exactly when :math:`\sigma > \sigma_k(\nu, x) = \eta (D^{-\nu} - R^{-\nu}) / \{z (1 +
D^{-\nu})\}`: below :math:`\sigma_k` the probability is 0, above it rises linearly, a kink in
:math:`u`. The numerator is integrated from :math:`\log\sigma_k` up, where it is smooth.

*The support edge.* Where beta's conditional mean is outside the support,
:math:`\mu > m_0 = \eta R^{-\nu}` (or below it), beta's normal mass falls from about one to
nothing as :math:`\sigma` drops below :math:`h = |m_0 - \mu| / z_e` (:math:`z_e = z`, or
:math:`z R^{-\nu}` below), within about :math:`1/(z_e \sqrt{S_{ww}})` in :math:`u`: sharp
with many patients. Panels in :math:`u` are split at :math:`\log h` and graded from it (the
first :math:`1/(z_e\sqrt{S_{ww}})` wide, doubling).

*The exact-fit singularity in* :math:`\nu`. As :math:`\sigma \to 0`, :math:`(l, u_\beta)`
shrinks to :math:`m_0`, and the exponent of :math:`g` tends to
:math:`-C(\nu)/\sigma^2` with

.. math:: C(\nu) = \tfrac12 \sum_i \big(y_i - \eta ((x_i - x_{min})/R)^\nu\big)^2
          = \tfrac12 Q + \tfrac12 (m_0 - \mu)^2 S_{ww},

the misfit of the curve through :math:`(x_{max}, \eta)`. Where :math:`C` vanishes, at the
exact-fit point :math:`\nu^*` (one patient with :math:`0 < y < \eta` always has one), the
slice :math:`\int g \, du` grows like :math:`-\log|\phi - \phi^*|`: the marginal of
:math:`\nu` has a logarithmic singularity, and with :math:`C(\nu^*)` small but positive (two
or three patients, near ties) a peak of width :math:`w = \sqrt{2 C(\nu^*) / C''(\nu^*)}`. A
uniform grid in :math:`\phi` then converges slowly (a midpoint grid of 48^2 cells, the
previous rule, missed the 0.1-quantile after one patient by several dose units). The nodes in
:math:`\phi` are Gauss-Legendre panels of equal width, except that :math:`\phi^*` is a panel
end and the two panels next to it are graded geometrically towards it (ratio
:data:`GRADING`), down to :math:`\max(w/4, 10^{-6}` of the region's width). With
:math:`C(\nu^*) = 0` and two or more patients the posterior is improper (its slice grows
like :math:`|\phi - \phi^*|^{1 - n}`): refused with a ``FloatingPointError``.

The rule and its refinement
---------------------------
The region of :math:`\phi` is found first: a scan of :data:`SCAN_POINTS` slices, narrowed to
those whose log mass is within :data:`LOG_DENSITY_RANGE` of the largest and widened where
they touch an end (as a zoom, until they span at least :data:`MIN_CELLS_ACROSS` of it). Each
slice in :math:`u` runs from :math:`\log\sigma_{lo}` to :math:`\log S`, where below
:math:`\sigma_{lo} = \max\{\sqrt{Q/(2L)}, |m_0 - \mu| / (z_e + \sqrt{2L/S_{ww}})\}` either
:math:`e^{-Q/(2\sigma^2)}` or beta's mass is below :math:`e^{-L}`
(:math:`L = 72 + 2n`), in panels of :data:`ORDER` Gauss-Legendre points.

Level :math:`k` has :data:`BASE_PHI_PANELS` :math:`\cdot 2^k` panels in :math:`\phi` and
panels of width :data:`BASE_PANEL_WIDTH` :math:`\cdot 2^{-k/2}` in :math:`u` (the
:math:`\phi` direction limits the accuracy; :math:`F(x)` also has a steep but smooth rise in
:math:`\phi` where the kink :math:`\sigma_k` crosses the support edge). A query is answered at
level :math:`k` and :math:`k - 1`, starting from the finest level an earlier query of the
same posterior settled on, and :math:`k` grows until the two agree within the tolerance; the
finer answer is returned. The rules converge fast (geometrically, once the features are
resolved), so the difference of two levels bounds the error of the finer one: the tests
compare the quantiles with a brute-force nested ``scipy.integrate.quad`` of the model's
density (``tests/test_three_pnd_reference.py``), with long MCMC runs and with importance
sampling.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from dosezoo.diagnostics import ConvergenceReport
from dosezoo.samplers import three_pnd_kernels as kernels

#: Default tolerance of the decision quantities: a quantile is stable when two successive levels
#: agree within this fraction of the dose range, a probability when they agree within it.
MTD_TOLERANCE = 1e-3
#: Slices and nodes whose log density is more than this below the maximum carry no weight.
LOG_DENSITY_RANGE = 36.0
#: Gauss-Legendre points per panel in log(sigma).
ORDER = 8
#: Level 0: midpoints in the sinh variable t of log(nu), and panel width in log(sigma);
#: each level doubles the first and halves the second.
BASE_PHI_PANELS = 8
#: Ratio of successive panels graded towards the exact-fit point.
GRADING = 4.0
#: Gauss-Legendre points per panel in log(nu).
PHI_ORDER = 4
BASE_PANEL_WIDTH = 3.0
#: Most levels tried before giving up; fewest compared.
MAX_LEVELS = 6
MIN_LEVELS = 2
#: Points of the scan that finds the region of log(nu) with mass, and its most refits.
SCAN_POINTS = 24
MIN_CELLS_ACROSS = 0.6
SCAN_PANEL_WIDTH = 4.0
MAX_REFITS = 12
#: Narrowest sinh scale, as a fraction of the width of the log(nu) region.
MIN_SINH_SCALE = 1e-6
#: Tolerance on the dose of a quantile's root at one level, as a fraction of the dose range.
QUANTILE_TOLERANCE = 1e-7
#: Exact-fit residual C*, relative to sum y^2 + eta^2, below which two or more responses are
#: fitted exactly by a curve through (x_max, eta): the posterior is then improper.
EXACT_FIT = 1e-12
SQRT_2PI = math.sqrt(2.0 * math.pi)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(ORDER)
_PHI_NODES, _PHI_WEIGHTS = np.polynomial.legendre.leggauss(PHI_ORDER)
# columns of a level's slice table
NU, RNEG, MEAN, ROOT_SWW, HALF_RESID, LOG_FACTOR, U_LO, U_EDGE, EDGE_SCALE = range(9)


@njit(cache=True, error_model="numpy")
def exact_fit_residual(phi, obs, hyper):
    """``C(nu) = sum_i (y_i - eta ((x_i - x_min) / R)^nu)^2 / 2`` at ``nu = exp(phi)``."""
    nu = math.exp(phi)
    log_dx, count, mean = obs[0], obs[1], obs[2]
    total = obs[3]
    for j in range(log_dx.size):
        r = mean[j] - hyper[kernels.ETA] * math.exp(nu * (log_dx[j] - hyper[kernels.LOG_RANGE]))
        total += count[j] * r * r
    return 0.5 * total


@njit(cache=True, error_model="numpy")
def slice_table(phi, log_weight, obs, hyper):
    """Per node of log(nu), what every node of its slice in log(sigma) shares (columns above).

    ``LOG_FACTOR`` holds the node's weight, nu's prior and the factors of ``g`` free of sigma
    (``-inf`` where ``S_ww`` underflows); ``U_LO`` the lower end of the slice, ``U_EDGE`` the
    support edge ``log h(mu)`` (``-inf`` when beta's conditional mean is inside the support at
    every sigma).
    """
    out = np.empty((phi.size, 9))
    log_s = math.log(hyper[kernels.SIGMA_MAX])
    n = obs[4]
    for j in range(phi.size):
        nu = math.exp(phi[j])
        rneg = math.exp(-nu * hyper[kernels.LOG_RANGE])
        prior = -0.5 * (phi[j] / hyper[kernels.DELTA]) ** 2 + log_weight[j]
        out[j, NU] = nu
        out[j, RNEG] = rneg
        out[j, MEAN : HALF_RESID + 1] = 0.0
        out[j, U_EDGE] = -np.inf
        out[j, EDGE_SCALE] = np.inf
        if n == 0.0:
            out[j, LOG_FACTOR] = prior
            out[j, U_LO] = log_s - 40.0
            continue
        s_ww, s_wy = kernels.moments(nu, obs)
        if not kernels.MIN_BASIS_MASS <= s_ww < np.inf:  # underflow, or nu far in its tail
            out[j, LOG_FACTOR] = -np.inf
            out[j, U_LO] = log_s - 2.0
            continue
        mean = s_wy / s_ww
        out[j, MEAN] = mean
        out[j, ROOT_SWW] = math.sqrt(s_ww)
        out[j, HALF_RESID] = kernels.half_sum_squares(mean, nu, obs, s_ww, s_wy)
        out[j, LOG_FACTOR] = prior - 0.5 * math.log(s_ww) - math.log1p(rneg)
        # Below sigma_lo the slice carries no mass: there exp(-Q / (2 sigma^2)) < e^-L, or beta's
        # mean is so far outside (l, u) that its normal mass is below Phi(-sqrt(2 L)) < e^-L.
        level = 2.0 * LOG_DENSITY_RANGE + 2.0 * n
        m0 = hyper[kernels.ETA] * rneg
        gap = m0 - mean
        z_edge = hyper[kernels.Z] * (rneg if gap > 0.0 else 1.0)
        sigma_lo = max(
            math.sqrt(out[j, HALF_RESID] / level),
            abs(gap) / (z_edge + math.sqrt(2.0 * level / s_ww)),
        )
        u_lo = math.log(sigma_lo) if sigma_lo > 0.0 else -np.inf
        out[j, U_LO] = min(max(u_lo, log_s - 80.0), log_s - 2.0)
        # beta's mean leaves the support (l, u) below sigma = |gap| / z_edge; the normal mass
        # rises from 1/2 to 1 within about 3 / (z_edge sqrt(S_ww)) of it in log(sigma)
        if gap != 0.0:
            out[j, U_EDGE] = math.log(abs(gap) / z_edge)
            out[j, EDGE_SCALE] = 1.0 / (z_edge * math.sqrt(s_ww))
    return out


@njit(cache=True, error_model="numpy")
def node_log_base(u, n, row):
    """Log of ``g`` at ``u = log(sigma)`` without beta's normal mass (with the slice's factor)."""
    sigma = math.exp(u)
    if n == 0.0:
        return u - math.log1p(sigma * sigma) + row[LOG_FACTOR]
    return (
        -(n - 1.0) * u
        - row[HALF_RESID] / (sigma * sigma)
        - math.log1p(sigma * sigma)
        + row[LOG_FACTOR]
    )


@njit(cache=True, error_model="numpy")
def _segment_panels(a, b, width, first, out, k):
    """Panels on ``(a, b)``, graded from ``a``; returns the next free row of ``out``.

    Sizes ``first, 2 first, 4 first, ...`` up to ``width``, then equal ones no wider than
    ``width``; written to ``out[k:]`` when ``out`` has rows (else only counted).
    """
    size = min(max(first, 1e-6 * width), width)
    while size < width and a + size < b:
        if out.shape[0]:
            out[k, 0], out[k, 1] = a, a + size
        k += 1
        a += size
        size *= 2.0
    m = max(1, math.ceil((b - a) / width))
    for i in range(m):
        if out.shape[0]:
            out[k, 0], out[k, 1] = a + (b - a) * i / m, a + (b - a) * (i + 1) / m
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def panels(table, hyper, width):
    """Panels of each slice in log(sigma): ``(offsets, lower, upper)``.

    From ``U_LO`` to the support edge, then graded from the edge up (first panel
    ``EDGE_SCALE``, doubling up to ``width``), then of equal width up to ``log(S)``.
    """
    log_s = math.log(hyper[kernels.SIGMA_MAX])
    offsets = np.zeros(table.shape[0] + 1, dtype=np.int64)
    empty = np.empty((0, 2))
    for j in range(table.shape[0]):
        lo, edge = table[j, U_LO], table[j, U_EDGE]
        k = 0
        if lo < edge < log_s:
            k = _segment_panels(lo, edge, width, width, empty, k)
            k = _segment_panels(edge, log_s, width, table[j, EDGE_SCALE], empty, k)
        else:
            k = _segment_panels(lo, log_s, width, width, empty, k)
        offsets[j + 1] = offsets[j] + k
    bounds = np.empty((offsets[-1], 2))
    for j in range(table.shape[0]):
        lo, edge = table[j, U_LO], table[j, U_EDGE]
        k = offsets[j]
        if lo < edge < log_s:
            k = _segment_panels(lo, edge, width, width, bounds, k)
            k = _segment_panels(edge, log_s, width, table[j, EDGE_SCALE], bounds, k)
        else:
            k = _segment_panels(lo, log_s, width, width, bounds, k)
    return offsets, bounds[:, 0].copy(), bounds[:, 1].copy()


@njit(cache=True, error_model="numpy")
def node_log_density(table, offsets, lower, upper, obs, hyper, gl_nodes, gl_weights):
    """Per Gauss-Legendre node: ``u`` and ``log(weight g)`` (weights of both directions)."""
    size = lower.size * gl_nodes.size
    u_out = np.empty(size)
    base = np.empty(size)
    log_g = np.empty(size)
    n = obs[4]
    z = hyper[kernels.Z]
    eta = hyper[kernels.ETA]
    for j in range(table.shape[0]):
        row = table[j]
        for p in range(offsets[j], offsets[j + 1]):
            half = 0.5 * (upper[p] - lower[p])
            mid = 0.5 * (upper[p] + lower[p])
            for i in range(gl_nodes.size):
                k = p * gl_nodes.size + i
                u = mid + half * gl_nodes[i]
                u_out[k] = u
                if row[LOG_FACTOR] == -np.inf:
                    base[k] = -np.inf
                    log_g[k] = -np.inf
                    continue
                b = node_log_base(u, n, row) + math.log(half * gl_weights[i])
                base[k] = b
                if n == 0.0:
                    log_g[k] = b
                else:
                    sigma = math.exp(u)
                    sd = sigma / row[ROOT_SWW]
                    lo = (eta - sigma * z) * row[RNEG]
                    hi = eta * row[RNEG] + sigma * z
                    log_g[k] = b + kernels.log_normal_mass(
                        (lo - row[MEAN]) / sd, (hi - row[MEAN]) / sd
                    )
    return u_out, base, log_g


@njit(cache=True, error_model="numpy")
def _node_terms(u, base, row, n, dneg, log_d_x, hyper):
    """``(g P, g dP/dx)`` at one node above the kink (``base`` already normalised)."""
    sigma = math.exp(u)
    z = hyper[kernels.Z]
    eta = hyper[kernels.ETA]
    threshold = (eta - sigma * z) * dneg
    slope = row[NU] * threshold * math.exp(-log_d_x)
    hi = eta * row[RNEG] + sigma * z
    if n == 0.0:
        lo = (eta - sigma * z) * row[RNEG]
        weight = math.exp(base) / (hi - lo)
        return weight * max(hi - threshold, 0.0), weight * slope
    sd = sigma / row[ROOT_SWW]
    t = (threshold - row[MEAN]) / sd
    top = (hi - row[MEAN]) / sd
    if t >= top:
        return 0.0, math.exp(base - 0.5 * t * t) * slope / (sd * SQRT_2PI)
    mass = math.exp(base + kernels.log_normal_mass(t, top))
    return mass, math.exp(base - 0.5 * t * t) * slope / (sd * SQRT_2PI)


@njit(cache=True, error_model="numpy")
def mtd_cdf_and_density(
    x, table, offsets, lower, upper, u, base, log_top, obs, hyper, gl_nodes, gl_weights
):
    """``F(x)`` and ``F'(x)`` at one level (normalised by ``log_top``).

    Panels wholly above the kink of ``P(beta >= b(x))`` use the level's nodes; the panel
    holding the kink is integrated from the kink up; panels below it contribute nothing.
    """
    n = obs[4]
    z = hyper[kernels.Z]
    eta = hyper[kernels.ETA]
    log_d_x = math.log(x - hyper[kernels.X_MIN])
    cdf = 0.0
    density = 0.0
    for j in range(table.shape[0]):
        row = table[j]
        if row[LOG_FACTOR] == -np.inf:
            continue
        dneg = math.exp(-row[NU] * log_d_x)
        kink_sigma = eta * (dneg - row[RNEG]) / (z * (1.0 + dneg))
        kink = math.log(kink_sigma) if kink_sigma > 0.0 else -np.inf
        for p in range(offsets[j], offsets[j + 1]):
            if upper[p] <= kink:
                continue
            if lower[p] >= kink:
                for i in range(gl_nodes.size):
                    k = p * gl_nodes.size + i
                    if base[k] - log_top < -2.0 * LOG_DENSITY_RANGE:
                        continue
                    c, d = _node_terms(u[k], base[k] - log_top, row, n, dneg, log_d_x, hyper)
                    cdf += c
                    density += d
            else:
                half = 0.5 * (upper[p] - kink)
                mid = 0.5 * (upper[p] + kink)
                for i in range(gl_nodes.size):
                    v = mid + half * gl_nodes[i]
                    b = node_log_base(v, n, row) + math.log(half * gl_weights[i]) - log_top
                    c, d = _node_terms(v, b, row, n, dneg, log_d_x, hyper)
                    cdf += c
                    density += d
    return cdf, density


@njit(cache=True, error_model="numpy")
def _golden_minimum(a, b, obs, hyper):
    """Minimum of :func:`exact_fit_residual` on ``(a, b)`` by golden-section search."""
    ratio = 0.5 * (math.sqrt(5.0) - 1.0)
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc = exact_fit_residual(c, obs, hyper)
    fd = exact_fit_residual(d, obs, hyper)
    for _ in range(200):
        if abs(b - a) <= 1e-13 * (1.0 + abs(a)):
            break
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = exact_fit_residual(c, obs, hyper)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = exact_fit_residual(d, obs, hyper)
    return 0.5 * (a + b)


@dataclass(frozen=True, eq=False)
class QuadratureLevel:
    """One level of the rule: the nodes of ``(log sigma, log nu)`` with their log weights.

    Attributes
    ----------
    level : int
        0 for the coarsest; each level doubles the nodes in ``log(nu)`` and halves the panels
        in ``log(sigma)``.
    table : numpy.ndarray
        Per node of ``log(nu)``, :func:`slice_table`'s columns.
    offsets, lower, upper : numpy.ndarray
        Panels of ``log(sigma)`` per slice (:func:`panels`).
    u, base : numpy.ndarray
        Per Gauss-Legendre node, ``log(sigma)`` and the log weight without beta's mass.
    log_top : float
        Log of the normalising constant (the sum of the nodes' weights ``g``).
    weight : numpy.ndarray
        Normalised posterior weight of each node.
    """

    level: int
    table: np.ndarray
    offsets: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    u: np.ndarray
    base: np.ndarray
    log_top: float
    weight: np.ndarray

    def cdf_and_density(self, x: float, obs: tuple, hyper: np.ndarray) -> tuple[float, float]:
        """``P(MTD <= x)`` and its derivative at this level."""
        return mtd_cdf_and_density(
            x,
            self.table,
            self.offsets,
            self.lower,
            self.upper,
            self.u,
            self.base,
            self.log_top,
            obs,
            hyper,
            _GL_NODES,
            _GL_WEIGHTS,
        )


def _build_level(phi, log_weight, width, obs, hyper, level):
    table = slice_table(phi, log_weight, obs, hyper)
    offsets, lower, upper = panels(table, hyper, width)
    u, base, log_g = node_log_density(
        table, offsets, lower, upper, obs, hyper, _GL_NODES, _GL_WEIGHTS
    )
    top = np.max(log_g)
    if not np.isfinite(top):
        raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
    weight = np.exp(log_g - top)
    total = weight.sum()
    weight /= total
    return QuadratureLevel(
        level=level,
        table=table,
        offsets=offsets,
        lower=lower,
        upper=upper,
        u=u,
        base=base,
        log_top=top + math.log(total),
        weight=weight,
    )


def _slice_log_mass(phi, obs, hyper):
    """``log`` of the posterior mass density of ``log(nu)`` at ``phi`` (unnormalised)."""
    level = _build_level(phi, np.zeros(phi.size), SCAN_PANEL_WIDTH, obs, hyper, 0)
    with np.errstate(divide="ignore"):
        per_node = np.log(level.weight) + level.log_top
    out = np.full(phi.size, -np.inf)
    for j in range(phi.size):
        chunk = per_node[level.offsets[j] * ORDER : level.offsets[j + 1] * ORDER]
        if chunk.size and np.isfinite(chunk.max()):
            top = chunk.max()
            out[j] = top + math.log(np.exp(chunk - top).sum())
    return out


def _phi_region(obs, hyper):
    """Interval of ``log(nu)`` where its posterior density is within e^-36 of the maximum."""
    delta = hyper[kernels.DELTA]
    lo, hi = -12.0 * delta, 12.0 * delta
    for _ in range(MAX_REFITS):
        width = (hi - lo) / SCAN_POINTS
        phi = lo + width * (np.arange(SCAN_POINTS) + 0.5)
        log_mass = _slice_log_mass(phi, obs, hyper)
        top = np.max(log_mass)
        if not np.isfinite(top):
            raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
        kept = np.flatnonzero(log_mass > top - LOG_DENSITY_RANGE)
        first, last = kept[0], kept[-1]
        new_lo = lo - 0.5 * (hi - lo) if first == 0 else lo + (first - 1) * width
        new_hi = hi + 0.5 * (hi - lo) if last == SCAN_POINTS - 1 else lo + (last + 2) * width
        touches = first == 0 or last == SCAN_POINTS - 1
        if not touches and (last - first + 1) >= MIN_CELLS_ACROSS * SCAN_POINTS:
            return lo, hi
        lo, hi = new_lo, new_hi
    raise FloatingPointError(
        f"3PND quadrature: the region of log(nu) did not settle in {MAX_REFITS} refits; "
        "the posterior is improper or nearly so"
    )


def _sinh_map(lo, hi, obs, hyper):
    """Centre and scale of the sinh map of ``log(nu)``: the exact-fit point and its width."""
    span = hi - lo
    if obs[4] == 0.0:
        return 0.5 * (lo + hi), 10.0 * span
    grid = np.linspace(lo, hi, 65)
    values = np.array([exact_fit_residual(p, obs, hyper) for p in grid])
    k = int(np.argmin(values))
    if k == 0 or k == grid.size - 1:
        return 0.5 * (lo + hi), 10.0 * span
    centre = _golden_minimum(grid[k - 1], grid[k + 1], obs, hyper)
    c_star = exact_fit_residual(centre, obs, hyper)
    step = 1e-3 * span
    curvature = (
        exact_fit_residual(centre + step, obs, hyper)
        - 2.0 * c_star
        + exact_fit_residual(centre - step, obs, hyper)
    ) / step**2
    scale = math.sqrt(2.0 * c_star / curvature) if curvature > 0.0 else span
    return centre, min(max(scale / 4.0, MIN_SINH_SCALE * span), 10.0 * span)


def phi_nodes(region, centre, scale, level):
    """Nodes and log weights of ``log(nu)`` at ``level``.

    Gauss-Legendre panels of equal width, graded geometrically towards the exact-fit point
    ``centre`` (when it is inside ``region``) down to ``scale``.
    """
    lo, hi = region
    width = (hi - lo) / (BASE_PHI_PANELS * 2**level)
    edges: list[tuple[float, float]] = []
    if lo < centre < hi:
        for side_lo, side_hi, sign in ((lo, centre, -1.0), (centre, hi, 1.0)):
            count = max(1, math.ceil((side_hi - side_lo) / width))
            step = (side_hi - side_lo) / count
            # uniform panels away from the centre, the one next to it graded
            for i in range(1, count):
                a = centre + sign * i * step
                edges.append((min(a, a + sign * step), max(a, a + sign * step)))
            reach = step
            while reach > scale:
                a, b = centre + sign * reach / GRADING, centre + sign * reach
                edges.append((min(a, b), max(a, b)))
                reach /= GRADING
            edges.append((min(centre, centre + sign * reach), max(centre, centre + sign * reach)))
    else:
        count = max(1, math.ceil((hi - lo) / width))
        step = (hi - lo) / count
        edges = [(lo + i * step, lo + (i + 1) * step) for i in range(count)]
    bounds = np.array(edges)
    half = 0.5 * (bounds[:, 1] - bounds[:, 0])
    mid = 0.5 * (bounds[:, 1] + bounds[:, 0])
    phi = (mid[:, None] + half[:, None] * _PHI_NODES[None, :]).ravel()
    log_weight = np.log((half[:, None] * _PHI_WEIGHTS[None, :]).ravel())
    return phi, log_weight


def _solve_quantile(level, p, start, obs, hyper):
    """``F^{-1}(p)`` at one level: Newton steps kept inside a shrinking bisection bracket."""
    lower, upper = hyper[kernels.X_MIN], hyper[kernels.X_MAX]
    tolerance = QUANTILE_TOLERANCE * (upper - lower)
    x = start
    for _ in range(200):
        cdf, density = level.cdf_and_density(x, obs, hyper)
        if cdf < p:
            lower = x
        else:
            upper = x
        candidate = x - (cdf - p) / density if density > 0.0 else np.nan
        new_x = candidate if lower < candidate < upper else 0.5 * (lower + upper)
        if abs(new_x - x) <= tolerance:
            x = new_x
            break
        x = new_x
    return float(kernels.inside_open(x, hyper[kernels.X_MIN], hyper[kernels.X_MAX]))


@dataclass(frozen=True, eq=False)
class QuadraturePosterior:
    r"""The 3PND posterior of the MTD by a quadrature refined until the answer is stable.

    Levels of the rule (:class:`QuadratureLevel`) are built when a query needs them; a query
    (:meth:`quantile`, :meth:`cdf`) is answered at successive levels until two agree within
    ``tolerance`` (of the dose range for a quantile, in probability for the CDF), and the finer
    answer is returned.

    Attributes
    ----------
    obs : tuple
        The data's per-dose statistics (:func:`dosezoo.samplers.three_pnd_kernels.summarise`).
    hyper : numpy.ndarray
        The model's hyper-parameters (:func:`dosezoo.samplers.three_pnd_kernels.pack_hyper`).
    tolerance : float
        Stopping tolerance of the refinement.
    region : tuple of float
        Interval of :math:`\log\nu` integrated over.
    centre, scale : float
        The sinh map's centre (the exact-fit point) and scale.
    """

    obs: tuple
    hyper: np.ndarray
    tolerance: float
    region: tuple[float, float]
    centre: float
    scale: float
    _levels: list = field(default_factory=list, repr=False)
    _answers: dict = field(default_factory=dict, repr=False)
    _settled: list = field(default_factory=lambda: [MIN_LEVELS - 1], repr=False)

    def level(self, index: int) -> QuadratureLevel:
        """Level ``index`` of the rule, built on first use."""
        while len(self._levels) <= index:
            k = len(self._levels)
            phi, log_weight = phi_nodes(self.region, self.centre, self.scale, k)
            width = BASE_PANEL_WIDTH / 2 ** (0.5 * k)
            self._levels.append(_build_level(phi, log_weight, width, self.obs, self.hyper, k))
        return self._levels[index]

    @property
    def levels(self) -> int:
        """Number of levels built so far."""
        return len(self._levels)

    @property
    def report(self) -> ConvergenceReport:
        """Diagnostics of the quadrature (it has no Monte Carlo error to fail on)."""
        return _quadrature_report(self.tolerance)

    def _refine(self, key, answer, scale):
        """Answer at the settled level if it agrees with the level below, else refine.

        Every query starts at the finest level an earlier query settled on, so that the
        answers of one posterior come from one rule (``cdf(quantile(p)) == p``).
        """
        if key in self._answers:
            return self._answers[key]
        start = self._settled[0]
        previous = answer(self.level(start - 1), None)
        for index in range(start, MAX_LEVELS):
            value = answer(self.level(index), previous)
            if abs(value - previous) <= self.tolerance * scale:
                self._settled[0] = index
                self._answers[key] = value
                return value
            previous = value
        raise FloatingPointError(
            f"3PND quadrature: {key[0]} at {key[1]:g} did not settle within tolerance "
            f"{self.tolerance:g} in {MAX_LEVELS} levels (last two: {previous:g})"
        )

    def cdf(self, x: float) -> float:
        """Posterior ``P(MTD <= x)``; 0 at or below ``x_min``, 1 at or above ``x_max``."""
        if not math.isfinite(x):
            raise ValueError(f"cdf: x must be a finite dose, got {x!r}")
        if x <= self.hyper[kernels.X_MIN]:
            return 0.0
        if x >= self.hyper[kernels.X_MAX]:
            return 1.0

        def answer(level, previous):
            cdf, _ = level.cdf_and_density(float(x), self.obs, self.hyper)
            return min(1.0, max(0.0, cdf))

        return self._refine(("cdf", float(x)), answer, 1.0)

    def quantile(self, p: float) -> float:
        """Posterior ``p``-quantile of the MTD, ``0 < p < 1``."""
        if not 0.0 < p < 1.0:
            raise ValueError(f"quantile: p must lie in (0, 1), got {p!r}")
        lower, upper = self.hyper[kernels.X_MIN], self.hyper[kernels.X_MAX]

        def answer(level, previous):
            start = 0.5 * (lower + upper) if previous is None else previous
            return _solve_quantile(level, float(p), start, self.obs, self.hyper)

        return self._refine(("quantile", float(p)), answer, upper - lower)

    @property
    def weight(self) -> np.ndarray:
        """Posterior weights of the nodes of the finest level built (they sum to one)."""
        return self.level(max(self.levels - 1, MIN_LEVELS - 1)).weight

    def sample(self, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``beta, sigma, nu, mtd`` from the quadrature posterior.

        A node of the finest level built (at least level ``MIN_LEVELS - 1``) is drawn by its
        weight, then beta exactly from its truncated normal given ``(sigma, nu)``.
        """
        level = self.level(max(self.levels - 1, MIN_LEVELS - 1))
        node = rng.choice(level.weight.size, size=size, p=level.weight)
        slice_of_node = np.repeat(np.arange(level.table.shape[0]), np.diff(level.offsets) * ORDER)
        sigma = np.minimum(np.exp(level.u[node]), np.nextafter(self.hyper[kernels.SIGMA_MAX], 0))
        nu = level.table[slice_of_node[node], NU]
        beta, mtd = _draw_beta_and_mtd(rng, sigma, nu, self.obs, self.hyper)
        return {"beta": beta, "sigma": sigma, "nu": nu, "mtd": mtd}


@functools.cache
def _quadrature_report(tolerance: float) -> ConvergenceReport:
    """One shared (read-only) report per tolerance: a DataFrame costs as much as a decision."""
    table = pd.DataFrame(
        {"engine": ["quadrature"], "tolerance": [tolerance]},
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


def posterior_quadrature(
    obs: tuple, hyper: np.ndarray, *, tolerance: float = MTD_TOLERANCE
) -> QuadraturePosterior:
    """Set up the refined quadrature of the 3PND posterior (levels are built on demand).

    Parameters
    ----------
    obs : tuple
        Per-dose statistics from :func:`dosezoo.samplers.three_pnd_kernels.summarise`.
    hyper : numpy.ndarray
        Hyper-parameters from :func:`dosezoo.samplers.three_pnd_kernels.pack_hyper`.
    tolerance : float
        Stopping tolerance (:data:`MTD_TOLERANCE`).

    Returns
    -------
    QuadraturePosterior

    Raises
    ------
    FloatingPointError
        If the posterior is improper (two or more responses fitted exactly by a curve through
        ``(x_max, eta)``) or its density is nowhere finite.
    """
    if obs[4] >= 2.0:
        delta = hyper[kernels.DELTA]
        centre, _ = _sinh_map(-12.0 * delta, 12.0 * delta, obs, hyper)
        reference = obs[5] + hyper[kernels.ETA] ** 2
        if exact_fit_residual(centre, obs, hyper) <= EXACT_FIT * reference:
            raise FloatingPointError(
                "3PND quadrature: a 3PND curve through (x_max, eta) fits exactly all the "
                "responses, so the posterior piles up at sigma -> 0 and is improper"
            )
    lo, hi = _phi_region(obs, hyper)
    centre, scale = _sinh_map(lo, hi, obs, hyper)
    if lo < centre < hi:
        near = np.array([centre - 1e-3 * (hi - lo), centre + 1e-3 * (hi - lo)])
        scan = np.linspace(lo, hi, SCAN_POINTS)
        masses = _slice_log_mass(np.concatenate([near, scan]), obs, hyper)
        if np.max(masses[:2]) < np.max(masses) - LOG_DENSITY_RANGE:
            centre, scale = 0.5 * (lo + hi), 10.0 * (hi - lo)  # no mass there: no grading
    return QuadraturePosterior(
        obs=obs,
        hyper=hyper,
        tolerance=float(tolerance),
        region=(lo, hi),
        centre=centre,
        scale=scale,
    )
