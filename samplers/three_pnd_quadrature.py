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
:math:`(b, u_\beta)` only. Beta's masses are differences of two normal CDFs, taken in the
tail where they are accurate; where the larger term is at least :math:`\Phi(-20)`
(:data:`LINEAR_REACH`) the difference is formed directly (an ``erfc`` each), further out
as a difference of logs (``log_ndtr``).

:math:`F'(x)` is the same integral of :math:`g\,\partial_x P`, and a quantile
:math:`F^{-1}(p)` is found by Newton steps on :math:`\Phi^{-1}(F(x))` (nearly linear in
:math:`x`, tails included) safeguarded by bisection, until a step is within
:data:`QUANTILE_TOLERANCE` of the dose range (the point it starts from, where :math:`F` is
known, is the answer). Each step is a pass over the level's nodes, so they start near the
root: at the coarsest level from the weighted :math:`p`-quantile of the MTD at beta's
conditional mean (beta's spread ignored) of the nodes that carry weight (within
:data:`LOG_DENSITY_RANGE` of the largest), at a finer one from the coarser level's answer.
Where :math:`1 - F` is all rounding (:data:`NEWTON_MAX_SCORE`), the iteration bisects.

Where the integrand is not smooth
---------------------------------
*The kink of* :math:`P`. :math:`b(x) \ge l` always (:math:`D < R`), and :math:`b(x) < u_\beta`
exactly when :math:`\sigma > \sigma_k(\nu, x) = \eta (D^{-\nu} - R^{-\nu}) / \{z (1 +
D^{-\nu})\}`: below :math:`\sigma_k` the probability is 0, above it rises linearly, a kink in
:math:`u`. The numerator is integrated from :math:`\log\sigma_k` up.

*The rise of* :math:`P` *in* :math:`u`. With :math:`t = (b(x) - \mu)/s`,
:math:`P \approx \Phi(-t)` rises where :math:`b(x) = \mu`, at
:math:`\sigma_m = (\eta - \mu D^\nu)/z`, within :math:`1/(z D^{-\nu}\sqrt{S_{ww}})` in
:math:`u` (:math:`|dt/du|` there): sharp with many patients. Where it is narrower than a
quarter of a panel, the panel holding it is integrated in pieces two rise-widths wide within
:data:`SIGMOID_REACH` of it.

*The rise of* :math:`P` *in* :math:`\phi`. :math:`\sigma_m` moves with :math:`\nu`, and
past the :math:`\nu` at which the curve through the data reaches :math:`\eta` below
:math:`x` every :math:`\sigma` has :math:`P \approx 1`: with few patients the slice's mean
of :math:`P` can rise from near 0 to near 1 within a fraction of a panel of :math:`\phi`
(one O6-BG patient: from 0.02 to 0.97 within 0.2 in :math:`\phi`). Where that mean jumps
by more than :data:`PHI_JUMP` between neighbouring nodes of :math:`\phi` in a panel that
holds enough mass for it to matter, the panel is integrated again in sub-panels, for that
:math:`x` only (:meth:`QuadratureLevel.cdf_and_density`).

*The support edge.* Where beta's conditional mean is outside the support,
:math:`\mu > m_0 = \eta R^{-\nu}` (or below it), beta's normal mass falls from about one to
nothing as :math:`\sigma` drops below :math:`h = |m_0 - \mu| / z_e` (:math:`z_e = z`, or
:math:`z R^{-\nu}` below), within about :math:`1/(z_e \sqrt{S_{ww}})` in :math:`u`: sharp
with many patients. Panels in :math:`u` are split at :math:`\log h` and graded from it (the
first :math:`1/(z_e\sqrt{S_{ww}})` wide, doubling).

*Sharp points of the marginal of* :math:`\nu`. As :math:`\sigma \to 0`,
:math:`(l, u_\beta)` shrinks to :math:`m_0`, and the exponent of :math:`g` tends to
:math:`-C(\nu)/\sigma^2` with

.. math:: C(\nu) = \tfrac12 \sum_i \big(y_i - \eta ((x_i - x_{min})/R)^\nu\big)^2
          = \tfrac12 Q + \tfrac12 (m_0 - \mu)^2 S_{ww},

the misfit of the curve through :math:`(x_{max}, \eta)`. Where :math:`C` vanishes, at the
exact-fit point :math:`\nu^*` (one patient with :math:`0 < y < \eta` always has one), the
slice :math:`\int g \, du` grows like :math:`-\log|\phi - \phi^*|`: the marginal of
:math:`\nu` has a logarithmic singularity, and with :math:`C(\nu^*)` small but positive (two
or three patients, near ties) a peak of width :math:`w = \sqrt{2 C(\nu^*) / C''(\nu^*)}`.
The least-squares misfit :math:`Q(\nu)/2` makes a second one: where it is small (two
patients at two doses are fitted exactly by some :math:`\hat\nu`), :math:`g` decays in
:math:`\sigma` only from the support edge :math:`h` down, and the marginal peaks like
:math:`1/\max(h, |\phi - \hat\phi|)` (two O6-BG patients, at 100 and 120 mg/m^2, one of
them toxic: a peak 0.002 wide). A uniform grid in :math:`\phi` converges slowly near either
(a midpoint grid of 48^2 cells, the previous rule, missed the 0.1-quantile after one patient
by several dose units). The nodes in :math:`\phi` are Gauss-Legendre panels of equal width,
except that each such point is a panel end and the panels next to it are graded
geometrically towards it (ratio :data:`GRADING`), down to a quarter of its peak's width
(:func:`_sharp_point`) or :math:`10^{-6}` of the region's. With :math:`C(\nu^*) = 0` and
two or more patients the posterior is improper (its slice grows like
:math:`|\phi - \phi^*|^{1 - n}`): refused with a ``FloatingPointError``.

The rule and its refinement
---------------------------
The region of :math:`\phi` is found first: a scan of :data:`SCAN_POINTS` slices, narrowed to
those whose log mass is within :data:`LOG_DENSITY_RANGE` of the largest and widened where
they touch an end (as a zoom, until they span at least :data:`MIN_CELLS_ACROSS` of it). Each
slice in :math:`u` runs from :math:`\log\sigma_{lo}` to :math:`\log S`, where below
:math:`\sigma_{lo} = \max\{\sqrt{Q/(2L)}, |m_0 - \mu| / (z_e + \sqrt{2L/S_{ww}})\}` either
:math:`e^{-Q/(2\sigma^2)}` or beta's mass is below :math:`e^{-L}`
(:math:`L = 72 + 2n`), in panels of :data:`ORDER` Gauss-Legendre points.

In :math:`u`, the factor :math:`\sigma^{1-n} e^{-Q/(2\sigma^2)}` of :math:`g` has an sd of
about :math:`1/\sqrt{2(n - 1)}` (:func:`sigma_panel_width`), so level 0's panels are at
most :data:`PANEL_SDS` of it wide (and :data:`BASE_PANEL_WIDTH` at most). Level :math:`k`
has :data:`BASE_PHI_PANELS` :math:`\cdot 2^k` panels in :math:`\phi` and panels
:math:`2^{-k/2}` times level 0's width in :math:`u`. A query is answered at levels 0 and 1,
then 2, ... until two successive levels agree within the tolerance, and the finer answer is
returned. Every query starts from level 0, so an answer does not depend on the queries made
before it. The rules converge fast once the features above are resolved, so the difference
of two levels bounds the error of the finer one: the tests compare the quantiles and the CDF
with a brute-force nested ``scipy.integrate.quad`` of the model's density
(``tests/test_three_pnd_reference.py``), with long MCMC runs and with importance sampling.

Two levels agree only when their normalising constants do too (within
:data:`NORMALISER_TOLERANCE` in log): the difference of two levels bounds the error once the
bulk of the posterior is resolved, not before. Where the posterior of :math:`\sigma` piles up
at its bound :math:`\eta / z_\gamma` with many patients (responses below every curve the prior
allows), the MTD's lower tail is a boundary layer in :math:`\sigma` that each level resolves a
little further, and two coarse levels agreed on a wrong tail quantile: 20 of 21 responses of
-1 at one dose under :math:`\eta = 1` gave a 0.1-quantile of 0.59 where
:math:`P(\text{MTD} \le 0.59)` is 0.27 by importance sampling. Such a quantile is now refused
(its levels never settle); with 2 to 10 such patients the quadrature answers, and is right.
Grading :math:`\sigma`'s panels towards its bound would resolve the layer.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit
from scipy.special import ndtri

from dosezoo.checks import check_cdf_point, check_quantile_level, integer
from dosezoo.diagnostics import ConvergenceReport
from dosezoo.errors import DataError
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.numerics import exp_without_errno
from dosezoo.samplers.special import log_ndtr

#: Default tolerance of the decision quantities: a quantile is stable when two successive levels
#: agree within this fraction of the dose range, a probability when they agree within it.
MTD_TOLERANCE = 1e-3
#: Slices and nodes whose log density is more than this below the maximum carry no weight.
LOG_DENSITY_RANGE = 36.0
#: Gauss-Legendre points per panel in log(sigma).
ORDER = 6
#: Level 0's panels of equal width in log(nu); each level doubles them.
BASE_PHI_PANELS = 6
#: Ratio of successive panels graded towards a sharp point of log(nu)'s marginal.
GRADING = 4.0
#: Gauss-Legendre points per panel in log(nu). With ORDER and BASE_PHI_PANELS, the rule chosen
#: by ``benchmarks/three_pnd_rules.py`` (``docs/results/three_pnd_rules.md``): the fastest of
#: the rules tried whose answers stay within a third of MTD_TOLERANCE of a fine reference.
PHI_ORDER = 4
#: Level 0's panels in log(sigma) are at most BASE_PANEL_WIDTH wide, and at most PANEL_SDS
#: sds of sigma^(1-n) exp(-Q / (2 sigma^2)); each level narrows them by sqrt(2).
BASE_PANEL_WIDTH = 3.0
PANEL_SDS = 3.0
#: Most levels tried before giving up; fewest compared. A posterior that almost fits the data
#: exactly (27 of 28 responses on one line) needs 7 levels; the 8th has about a million nodes
#: (0.1 s). A query stops at the first two levels that agree, so a higher cap changes no
#: answer that settled below it.
MAX_LEVELS = 8
MIN_LEVELS = 2
#: Largest change of the log normalising constant between two levels whose answers are taken
#: as settled (:meth:`QuadraturePosterior._refine`).
NORMALISER_TOLERANCE = 0.01
#: Points of the scan that finds the region of log(nu) with mass, and its most refits.
SCAN_POINTS = 24
MIN_CELLS_ACROSS = 0.6
SCAN_PANEL_WIDTH = 4.0
MAX_REFITS = 12
#: Narrowest panel graded towards a sharp point, as a fraction of the log(nu) region.
MIN_GRADED_WIDTH = 1e-6
#: Panels whose nodes weigh less than e^-NEGLIGIBLE (normalised) are left out of F(x).
NEGLIGIBLE = LOG_DENSITY_RANGE + 4.0
#: A panel of log(nu) is integrated again in PHI_SPLIT sub-panels for P(MTD <= x) when the
#: mean of P jumps by more than PHI_JUMP between neighbouring nodes (a rise narrower than the
#: nodes' spacing) and the panel's mass times that jump exceeds PHI_REFINE_ERROR; at most
#: MAX_PHI_DEPTH times over.
PHI_SPLIT = 4
PHI_JUMP = 0.25
PHI_REFINE_ERROR = 1e-4
MAX_PHI_DEPTH = 4
#: Half-width, in widths of P(beta >= b(x))'s rise, of the window integrated in pieces.
SIGMOID_REACH = 8.0
#: Tolerance on the dose of a quantile's root at one level, as a fraction of the dose range.
QUANTILE_TOLERANCE = 1e-6
#: A quantile's Newton step is taken from a point whose ``Phi^{-1}(F)`` is below this (``F``
#: below 1 - 1e-9): ``F`` is a sum of masses, accurate relative to itself near 0 but only to
#: its rounding (about 1e-15) near 1, where that rounding makes up ``1 - F`` and a step on
#: its probit is as small as it is meaningless (the iteration bisects there instead).
NEWTON_MAX_SCORE = 6.0
#: Exact-fit residual C*, relative to sum y^2 + eta^2, below which two or more responses are
#: fitted exactly by a curve through (x_max, eta): the posterior is then improper.
EXACT_FIT = 1e-12
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_HALF = math.sqrt(0.5)
#: Beta's mass at a node (and its part above b(x)) is the difference of two normal CDFs, not
#: of their logs, where the larger is at least ``Phi(-LINEAR_REACH)`` (and, for the part, the
#: node's log weight ``base`` is below LINEAR_BASE: ``exp(base)`` finite): an ``erfc`` each
#: instead of a ``log_ndtr`` each, an ``exp`` and a ``log1p``, with the same absolute error
#: relative to the larger term.
LINEAR_REACH = 20.0
LINEAR_BASE = 700.0
#: Below this argument ``Phi`` is 0 in double precision (``log_ndtr`` is below -765).
PHI_UNDERFLOW = -39.0
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(ORDER)
_PHI_NODES, _PHI_WEIGHTS = np.polynomial.legendre.leggauss(PHI_ORDER)
# columns of a level's slice table
NU, RNEG, MEAN, ROOT_SWW, HALF_RESID, LOG_FACTOR, U_LO, U_EDGE, EDGE_SCALE = range(9)


@njit(cache=True, error_model="numpy", inline="always")
def exact_fit_residual(phi, obs, hyper):
    """``C(nu) = sum_i (y_i - eta ((x_i - x_min) / R)^nu)^2 / 2`` at ``nu = exp(phi)``."""
    nu = math.exp(phi)
    log_dx, count, mean = obs[0], obs[1], obs[2]
    total = obs[3]
    for j in range(log_dx.size):
        r = mean[j] - hyper[kernels.ETA] * exp_without_errno(
            nu * (log_dx[j] - hyper[kernels.LOG_RANGE])
        )
        total += count[j] * r * r
    return 0.5 * total


@njit(cache=True, error_model="numpy", inline="always")
def misfit(phi, obs, hyper, constrained):
    """Return the exponent's misfit at ``nu = exp(phi)``.

    That is :func:`exact_fit_residual` ``C(nu)`` when ``constrained``, else ``Q(nu) / 2``, the
    least-squares misfit of ``beta (x - x_min)^nu`` (``inf`` where ``S_ww`` under- or
    overflows).
    """
    if constrained:
        return exact_fit_residual(phi, obs, hyper)
    nu = math.exp(phi)
    s_ww, s_wy = kernels.moments(nu, obs)
    if not kernels.MIN_BASIS_MASS <= s_ww < np.inf:
        return np.inf
    return kernels.half_sum_squares(s_wy / s_ww, nu, obs, s_ww, s_wy)


@njit(cache=True, error_model="numpy")
def _misfits(phi, obs, hyper, constrained):
    """:func:`misfit` at every point of ``phi``."""
    out = np.empty(phi.size)
    for j in range(phi.size):
        out[j] = misfit(phi[j], obs, hyper, constrained)
    return out


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
        rneg = exp_without_errno(-nu * hyper[kernels.LOG_RANGE])
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


@njit(cache=True, error_model="numpy", inline="always")
def _row(table, j):
    """Row ``j`` of a slice table as a tuple of its columns, which the per-node helpers index.

    Not an array view: a view passed to a helper costs two atomic updates of its reference
    count, at every node (a tenth of a decision's time, with the helpers inlined).
    """
    return (
        table[j, 0],
        table[j, 1],
        table[j, 2],
        table[j, 3],
        table[j, 4],
        table[j, 5],
        table[j, 6],
        table[j, 7],
        table[j, 8],
    )


@njit(cache=True, error_model="numpy", inline="always")
def _constants(hyper):
    """``hyper`` as a tuple (see `_row`)."""
    return (hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5], hyper[6])


@njit(cache=True, error_model="numpy", inline="always")
def node_log_base(u, sigma, n, row):
    """Log of ``g`` at ``u = log(sigma)`` without beta's normal mass (with the slice's factor).

    ``sigma`` is ``exp(u)``, which the callers need too. The prior's ``log(1 + sigma^2)`` is
    needed to an absolute error (it is added to the log weight), which ``log`` gives as well
    as ``log1p`` at half the cost.
    """
    prior = math.log(1.0 + sigma * sigma)
    if n == 0.0:
        return u - prior + row[LOG_FACTOR]
    return -(n - 1.0) * u - row[HALF_RESID] / (sigma * sigma) - prior + row[LOG_FACTOR]


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
def node_log_density(table, offsets, lower, upper, obs, hyper, gl_nodes, gl_weights, log_top):
    """Per Gauss-Legendre node: ``sigma`` and the log weights without and with beta's mass.

    The weights are those of both directions. Also ``(Phi(top), Phi(-top))``,
    ``top = (u_beta - mu) / s``, which an evaluation of ``P(beta >= b(x))`` at the node
    needs: the one of the tail that beta's mass reads (that of ``P`` too unless its cut is
    low), NaN for the other (computed by :func:`_node_terms` where it is read) and without
    data.

    Beta's mass (at most 1) is computed only in the panels that can weigh: a panel whose
    largest weight without it, ``base``, is below ``e^-NEGLIGIBLE`` of the normalising
    constant ``e^log_top`` (NaN: not yet known) is negligible, and its nodes keep ``base``, an
    upper bound, as their weight (:func:`slice_cdf_and_density` skips the panel either
    way). Where ``log_top`` is not known, the largest weight found on each slice's panel of
    the largest ``base`` bounds it from below.
    """
    order = gl_nodes.size
    size = lower.size * order
    sigma_out = np.empty(size)
    base = np.empty(size)
    log_g = np.empty(size)
    tails = np.full((size, 2), np.nan)
    panel_base = np.full(lower.size, -np.inf)
    n = obs[4]
    # The panels of a slice are mostly of one width: their log weights are computed once.
    log_weights = np.empty(order)
    weights_half = np.nan
    constants = _constants(hyper)
    for j in range(table.shape[0]):
        row = _row(table, j)
        for p in range(offsets[j], offsets[j + 1]):
            half = 0.5 * (upper[p] - lower[p])
            mid = 0.5 * (upper[p] + lower[p])
            if half != weights_half:
                weights_half = half
                for i in range(order):
                    log_weights[i] = math.log(half * gl_weights[i])
            for i in range(order):
                k = p * order + i
                u = mid + half * gl_nodes[i]
                sigma = math.exp(u)
                sigma_out[k] = sigma
                if row[LOG_FACTOR] == -np.inf:
                    base[k] = -np.inf
                    continue
                base[k] = node_log_base(u, sigma, n, row) + log_weights[i]
                panel_base[p] = max(panel_base[p], base[k])
    if n == 0.0:
        log_g[:] = base
        return sigma_out, base, log_g, tails
    bound = log_top
    done = np.zeros(lower.size, dtype=np.bool_)
    if math.isnan(bound):
        bound = -np.inf
        for j in range(table.shape[0]):
            if offsets[j + 1] > offsets[j] and table[j, LOG_FACTOR] > -np.inf:
                p = offsets[j] + np.argmax(panel_base[offsets[j] : offsets[j + 1]])
                row = _row(table, j)
                for k in range(p * order, (p + 1) * order):
                    log_g[k], tails[k, 0], tails[k, 1] = _node_log_weight(
                        sigma_out[k], base[k], row, constants
                    )
                    bound = max(bound, log_g[k])
                done[p] = True
    for j in range(table.shape[0]):
        row = _row(table, j)
        for p in range(offsets[j], offsets[j + 1]):
            if done[p]:
                continue
            negligible = panel_base[p] < bound - NEGLIGIBLE
            for k in range(p * order, (p + 1) * order):
                if negligible:
                    log_g[k] = base[k]
                else:
                    log_g[k], tails[k, 0], tails[k, 1] = _node_log_weight(
                        sigma_out[k], base[k], row, constants
                    )
    return sigma_out, base, log_g, tails


@njit(cache=True, error_model="numpy", inline="always")
def _node_log_weight(sigma, base, row, constants):
    """Return a node's log weight with beta's mass and the ``Phi(+-top)`` it read.

    That is ``(log weight, Phi(top), Phi(-top))``, the one of the last two that beta's mass
    did not read NaN; ``row`` and ``constants`` as in `_node_terms`.
    """
    if base == -np.inf:
        return -np.inf, np.nan, np.nan
    z = constants[kernels.Z]
    eta = constants[kernels.ETA]
    sd = sigma / row[ROOT_SWW]
    lo = (eta - sigma * z) * row[RNEG]
    top = (eta * row[RNEG] + sigma * z - row[MEAN]) / sd
    bottom = (lo - row[MEAN]) / sd
    # the tail beta's mass is read in; a CDF's cut (above bottom) mostly reads the same one,
    # and computes the other where it needs it
    phi_top, phi_minus_top = np.nan, np.nan
    big, small = 0.0, 0.0
    if bottom + top > 0.0:  # Phi(-bottom) - Phi(-top)
        phi_minus_top = _phi(-top, np.nan)
        linear = bottom <= LINEAR_REACH
        if linear:
            big, small = 0.5 * math.erfc(bottom * SQRT_HALF), phi_minus_top
    else:  # Phi(top) - Phi(bottom)
        phi_top = _phi(top, np.nan)
        linear = top >= -LINEAR_REACH
        if linear:
            big, small = phi_top, _phi(bottom, np.nan)
    if not linear:  # the larger term below Phi(-LINEAR_REACH): in logs
        log_mass = kernels.log_normal_mass(bottom, top)
    elif small >= big:
        log_mass = -np.inf
    else:
        log_mass = math.log(big - small)
    return base + log_mass, phi_top, phi_minus_top


@njit(cache=True, error_model="numpy", inline="always")
def _node_terms(sigma, base, row, n, dneg, inverse_d_x, constants, phi_top, phi_minus_top):
    """``(g P, g dP/dx)`` at one node above the kink (``base`` already normalised).

    ``inverse_d_x`` is ``1 / (x - x_min)``; ``phi_top, phi_minus_top`` are the node's cached
    ``Phi(+-top)`` (:func:`node_log_density`), or NaN to compute them here. ``row`` and
    ``constants`` are the slice's row and ``hyper`` as tuples (`_row`).
    """
    z = constants[kernels.Z]
    eta = constants[kernels.ETA]
    threshold = (eta - sigma * z) * dneg
    slope = row[NU] * threshold * inverse_d_x
    hi = eta * row[RNEG] + sigma * z
    if n == 0.0:
        lo = (eta - sigma * z) * row[RNEG]
        weight = math.exp(base) / (hi - lo)
        return weight * max(hi - threshold, 0.0), weight * slope
    sd = sigma / row[ROOT_SWW]
    t = (threshold - row[MEAN]) / sd
    top = (hi - row[MEAN]) / sd
    density = exp_without_errno(base - 0.5 * t * t) * slope / (sd * SQRT_2PI)
    if t >= top:
        return 0.0, density
    upper = t + top > 0.0  # then Phi(-t) - Phi(-top), accurate in the upper tail
    if base < LINEAR_BASE and (t <= LINEAR_REACH if upper else top >= -LINEAR_REACH):
        # The larger term is at least Phi(-LINEAR_REACH): the difference of the two terms is as
        # accurate as the difference of their logs below, at a third of the cost.
        if upper:
            big, small = _phi(-t, np.nan), _phi(-top, phi_minus_top)
        else:
            big, small = _phi(top, phi_top), _phi(t, np.nan)
        if small >= big:
            return 0.0, density
        return exp_without_errno(base) * (big - small), density
    # log(Phi(top) - Phi(t)) in whichever tail is accurate
    if upper:
        log_a = _log_phi(-top, phi_minus_top)
        log_b = log_ndtr(-t)
    else:
        log_a = log_ndtr(t)
        log_b = _log_phi(top, phi_top)
    if log_a >= log_b:
        return 0.0, density
    mass = base + log_b + math.log1p(-exp_without_errno(log_a - log_b))
    return exp_without_errno(mass), density


@njit(cache=True, error_model="numpy", inline="always")
def _phi(x, cached):
    """``Phi(x)``: ``cached`` when it is given (not NaN), else computed.

    As ``0.5 erfc(-x / sqrt(2))`` from ``x = -LINEAR_REACH`` up, where SciPy's ``log_ndtr``
    works from its ``ndtr``, the same ``erfc``; further down as ``exp(log_ndtr(x))`` (there
    an asymptotic series), and as 0 below :data:`PHI_UNDERFLOW`, where that is 0.
    """
    if not math.isnan(cached):
        return cached
    if x >= -LINEAR_REACH:
        return 0.5 * math.erfc(-x * SQRT_HALF)
    if x < PHI_UNDERFLOW:
        return 0.0
    return exp_without_errno(log_ndtr(x))


@njit(cache=True, error_model="numpy", inline="always")
def _log_phi(x, cached):
    """``log Phi(x)`` from ``cached`` (``Phi(x)``, or NaN).

    The log of ``cached`` where :func:`_phi` formed it from ``erfc`` (it is then a normal
    number, accurate relative to itself), else ``log_ndtr(x)``.
    """
    if x >= -LINEAR_REACH and not math.isnan(cached):
        return math.log(cached)
    return log_ndtr(x)


@njit(cache=True, error_model="numpy", inline="always")
def _panel_terms(a, b, row, n, dneg, inverse_d_x, log_top, constants, gl_nodes, gl_weights):
    """``(g P, g dP/dx)`` integrated over ``(a, b)`` in log(sigma) by fresh Gauss-Legendre nodes."""
    half = 0.5 * (b - a)
    mid = 0.5 * (b + a)
    cdf = 0.0
    density = 0.0
    for i in range(gl_nodes.size):
        v = mid + half * gl_nodes[i]
        sigma = math.exp(v)
        base = node_log_base(v, sigma, n, row) + math.log(half * gl_weights[i]) - log_top
        c, d = _node_terms(sigma, base, row, n, dneg, inverse_d_x, constants, np.nan, np.nan)
        cdf += c
        density += d
    return cdf, density


@njit(cache=True, error_model="numpy")
def slice_cdf_and_density(
    x,
    table,
    offsets,
    lower,
    upper,
    panel_top,
    sigma,
    base,
    tails,
    log_top,
    obs,
    hyper,
    gl_nodes,
    gl_weights,
):
    """Each slice's share of ``F(x)`` and ``F'(x)`` at one level (normalised by ``log_top``).

    Panels below the kink of ``P(beta >= b(x))`` contribute nothing, the panel holding it is
    integrated from the kink up. ``P`` rises where ``b(x) = mu``, at
    ``sigma_m = (eta - mu D^nu) / z``, within about ``w = 1 / (z D^{-nu} sqrt(S_ww))`` in
    log(sigma) (``|dt/du| = z D^{-nu} sqrt(S_ww)`` there, ``t = (b - mu) / s``): where ``w``
    is narrower than a quarter of a panel, the panel is integrated in pieces of ``2 w``
    within ``SIGMOID_REACH w`` of ``log(sigma_m)``. Other panels use the level's nodes.
    Panels whose nodes all weigh less than ``e^-NEGLIGIBLE`` are skipped (``P <= 1``).
    """
    n = obs[4]
    z = hyper[kernels.Z]
    eta = hyper[kernels.ETA]
    log_d_x = math.log(x - hyper[kernels.X_MIN])
    inverse_d_x = math.exp(-log_d_x)
    cdf = np.zeros(table.shape[0])
    density = np.zeros(table.shape[0])
    constants = _constants(hyper)
    for j in range(table.shape[0]):
        row = _row(table, j)
        if row[LOG_FACTOR] == -np.inf:
            continue
        dneg = math.exp(-row[NU] * log_d_x)
        kink_sigma = eta * (dneg - row[RNEG]) / (z * (1.0 + dneg))
        kink = math.log(kink_sigma) if kink_sigma > 0.0 else -np.inf
        rise, reach = 0.0, -1.0  # the window (rise - reach, rise + reach) of P's steep rise
        if n > 0.0:
            sigma_m = (eta - row[MEAN] / dneg) / z
            if sigma_m > 0.0:
                rise = math.log(sigma_m)
                reach = SIGMOID_REACH / (z * dneg * row[ROOT_SWW])
        for p in range(offsets[j], offsets[j + 1]):
            a, b = max(lower[p], kink), upper[p]
            if b <= a or panel_top[p] < -NEGLIGIBLE:
                continue
            steep = 4.0 * reach < SIGMOID_REACH * (b - a) and (
                rise - reach < b and a < rise + reach
            )
            if not steep and a == lower[p]:
                for i in range(gl_nodes.size):
                    k = p * gl_nodes.size + i
                    if base[k] - log_top < -2.0 * LOG_DENSITY_RANGE:
                        continue
                    c, d = _node_terms(
                        sigma[k],
                        base[k] - log_top,
                        row,
                        n,
                        dneg,
                        inverse_d_x,
                        constants,
                        tails[k, 0],
                        tails[k, 1],
                    )
                    cdf[j] += c
                    density[j] += d
                continue
            if not steep:
                c, d = _panel_terms(
                    a, b, row, n, dneg, inverse_d_x, log_top, constants, gl_nodes, gl_weights
                )
                cdf[j] += c
                density[j] += d
                continue
            # pieces: up to the window, 2 w each across it, and the rest of the panel
            start = max(a, rise - reach)
            stop = min(b, rise + reach)
            pieces = max(1, math.ceil((stop - start) * SIGMOID_REACH / (2.0 * reach)))
            cuts = [a] if a < start else [start]
            for i in range(pieces + 1):
                cuts.append(start + (stop - start) * i / pieces)
            if stop < b:
                cuts.append(b)
            for i in range(len(cuts) - 1):
                if cuts[i + 1] > cuts[i]:
                    c, d = _panel_terms(
                        cuts[i],
                        cuts[i + 1],
                        row,
                        n,
                        dneg,
                        inverse_d_x,
                        log_top,
                        constants,
                        gl_nodes,
                        gl_weights,
                    )
                    cdf[j] += c
                    density[j] += d
    return cdf, density


@njit(cache=True, error_model="numpy")
def _golden_minimum(a, b, obs, hyper, constrained):
    """Minimum of :func:`misfit` on ``(a, b)`` by golden-section search."""
    ratio = 0.5 * (math.sqrt(5.0) - 1.0)
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc = misfit(c, obs, hyper, constrained)
    fd = misfit(d, obs, hyper, constrained)
    for _ in range(200):
        if abs(b - a) <= 1e-13 * (1.0 + abs(a)):
            break
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = misfit(c, obs, hyper, constrained)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = misfit(d, obs, hyper, constrained)
    return 0.5 * (a + b)


@dataclass(frozen=True, eq=False)
class QuadratureLevel:
    """One level of the rule: the nodes of ``(log sigma, log nu)`` with their log weights.

    Attributes
    ----------
    level : int
        0 for the coarsest; each level doubles the panels in ``log(nu)`` and narrows those in
        ``log(sigma)`` by ``sqrt(2)``.
    width : float
        Width of the panels in ``log(sigma)`` (graded ones aside).
    phi_bounds : numpy.ndarray
        Panels of ``log(nu)``, shape (panels, 2), each holding :data:`PHI_ORDER` nodes.
    table : numpy.ndarray
        Per node of ``log(nu)``, :func:`slice_table`'s columns.
    offsets, lower, upper : numpy.ndarray
        Panels of ``log(sigma)`` per slice (:func:`panels`).
    panel_top : numpy.ndarray
        Per panel, the log of its largest normalised node weight.
    sigma, base : numpy.ndarray
        Per Gauss-Legendre node, ``sigma`` and the log weight without beta's mass.
    tails : numpy.ndarray
        Per node, ``(Phi(top), Phi(-top))`` of beta's mass, NaN where not computed
        (:func:`node_log_density`).
    log_top : float
        Log of the normalising constant (the sum of the nodes' weights ``g``).
    weight : numpy.ndarray
        Normalised posterior weight of each node.
    slice_mass : numpy.ndarray
        Posterior mass of each node of ``log(nu)`` (the sum of its slice's node weights).
    """

    level: int
    width: float
    phi_bounds: np.ndarray
    table: np.ndarray
    offsets: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    panel_top: np.ndarray
    sigma: np.ndarray
    base: np.ndarray
    tails: np.ndarray
    log_top: float
    weight: np.ndarray
    slice_mass: np.ndarray
    _panels_split: dict = field(default_factory=dict, repr=False)
    _at: dict = field(default_factory=dict, repr=False)

    def _split_panel(self, a: float, b: float, obs: tuple, hyper: np.ndarray) -> "QuadratureLevel":
        """Return the panel ``(a, b)`` of ``log(nu)`` as :data:`PHI_SPLIT` sub-panels, built once.

        The sub-level depends on the panel alone, not on the ``x`` that asked for it: the
        steps of a quantile's Newton iteration ask for the same ones.
        """
        key = (a, b)
        if key not in self._panels_split:
            self._panels_split[key] = build_level(
                _even_panels(a, b, PHI_SPLIT),
                self.width,
                obs,
                hyper,
                self.level,
                log_top=self.log_top,
            )
        return self._panels_split[key]

    def cdf_and_density(
        self, x: float, obs: tuple, hyper: np.ndarray, depth: int = 0
    ) -> tuple[float, float]:
        """``P(MTD <= x)`` and its derivative at this level, kept per ``x``.

        A quantile's last step and the CDF at that quantile ask for the same ``x``.
        ``P(beta >= b(x))`` can rise steeply across ``log(nu)`` (from nu where the curve
        through the data reaches eta below ``x`` on): a panel of ``log(nu)`` whose nodes' mean
        of it, ``F_j / m_j``, jumps by ``J`` between neighbours while the panel holds mass ``m``
        is integrated again in :data:`PHI_SPLIT` sub-panels when ``J`` exceeds
        :data:`PHI_JUMP` and ``m J`` exceeds :data:`PHI_REFINE_ERROR`, recursively (at most
        :data:`MAX_PHI_DEPTH` times).
        """
        if depth == 0:
            if x not in self._at:
                self._at[x] = self._cdf_and_density(x, obs, hyper, 0)
            return self._at[x]
        return self._cdf_and_density(x, obs, hyper, depth)

    def _cdf_and_density(
        self, x: float, obs: tuple, hyper: np.ndarray, depth: int
    ) -> tuple[float, float]:
        arrays = (
            x,
            self.table,
            self.offsets,
            self.lower,
            self.upper,
            self.panel_top,
            self.sigma,
            self.base,
            self.tails,
            self.log_top,
            obs,
            hyper,
            _GL_NODES,
            _GL_WEIGHTS,
        )
        if depth >= MAX_PHI_DEPTH:
            cdf, density = slice_cdf_and_density(*arrays)
            return float(cdf.sum()), float(density.sum())
        total_cdf, total_density, fine = _resolved_sums(self.slice_mass, PHI_ORDER, *arrays)
        for panel in fine:
            a, b = self.phi_bounds[panel]
            c, d = self._split_panel(a, b, obs, hyper)._cdf_and_density(x, obs, hyper, depth + 1)
            total_cdf += c
            total_density += d
        return total_cdf, total_density


@njit(cache=True, error_model="numpy")
def _resolved_sums(mass, order, *arrays):
    """:func:`slice_cdf_and_density` of ``arrays``, then :func:`_coarse_sums`, in one call.

    Returns the two sums over the panels of ``log(nu)`` that resolve ``P`` and the indices of
    those to refine.
    """
    cdf, density = slice_cdf_and_density(*arrays)
    total_cdf, total_density, fine = _coarse_sums(cdf, density, mass, order)
    return total_cdf, total_density, np.flatnonzero(fine)


@njit(cache=True, error_model="numpy")
def _coarse_sums(cdf, density, mass, order):
    """Sum the slices' ``F`` and ``F'`` over the panels of ``log(nu)`` that resolve them.

    A panel (``order`` nodes) is refined when the mean of ``P`` at its nodes, ``F_j / m_j``,
    jumps by more than :data:`PHI_JUMP` between some node and a neighbour (the jump to or
    from a node without mass counts as none) and its mass times that jump exceeds
    :data:`PHI_REFINE_ERROR`. Returns the two sums over the other panels and the mask of
    the panels to refine.
    """
    nodes = mass.size
    jump = np.zeros(nodes + 1)  # jump[j]: between nodes j - 1 and j (none at the ends)
    for j in range(1, nodes):
        if mass[j] > 0.0 and mass[j - 1] > 0.0:
            jump[j] = abs(cdf[j] / mass[j] - cdf[j - 1] / mass[j - 1])
    fine = np.zeros(nodes // order, dtype=np.bool_)
    total_cdf, total_density = 0.0, 0.0
    for p in range(fine.size):
        panel_jump, panel_mass = 0.0, 0.0
        for j in range(p * order, (p + 1) * order):
            panel_jump = max(panel_jump, jump[j], jump[j + 1])
            panel_mass += mass[j]
        if panel_jump > PHI_JUMP and panel_mass * panel_jump > PHI_REFINE_ERROR:
            fine[p] = True
            continue
        for j in range(p * order, (p + 1) * order):
            total_cdf += cdf[j]
            total_density += density[j]
    return total_cdf, total_density, fine


def sigma_panel_width(n: float) -> float:
    r"""Level 0's panel width in :math:`u = \log\sigma` for ``n`` patients.

    The factor :math:`\sigma^{1-n} e^{-q/\sigma^2}` of ``g`` is, in :math:`u`, peaked with
    curvature :math:`-2(n - 1)` at its mode: an sd of :math:`1/\sqrt{2(n-1)}`, narrower than
    :data:`BASE_PANEL_WIDTH` from a few patients on. Panels span at most :data:`PANEL_SDS` of it.
    """
    if n <= 1.0:
        return BASE_PANEL_WIDTH
    return min(BASE_PANEL_WIDTH, PANEL_SDS / math.sqrt(2.0 * (n - 1.0)))


def _level(level, width, bounds, *arrays):
    """Return the :class:`QuadratureLevel` of :func:`_level_arrays`' arrays."""
    table, offsets, lower, upper, sigma, base, tails, log_top, weight, panel_top, mass = arrays
    if math.isnan(log_top):
        raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
    return QuadratureLevel(
        level=level,
        width=width,
        phi_bounds=np.empty((0, 2)) if bounds is None else bounds,
        table=table,
        offsets=offsets,
        lower=lower,
        upper=upper,
        panel_top=panel_top,
        sigma=sigma,
        base=base,
        tails=tails,
        log_top=log_top,
        weight=weight,
        slice_mass=mass,
    )


@njit(cache=True, error_model="numpy")
def _level_arrays(phi, log_weight, width, obs, hyper, gl_nodes, gl_weights, log_top):
    """Compute the arrays of a level on nodes ``phi`` of ``log(nu)``.

    ``(table, offsets, lower, upper, sigma, base, tails, log_top, weight, panel_top,
    slice_mass)`` as :class:`QuadratureLevel` holds them; the weights are normalised by
    ``log_top``, or by their own total when it is NaN. A NaN ``log_top`` returned means that
    the density is nowhere finite (or NaN somewhere).
    """
    table = slice_table(phi, log_weight, obs, hyper)
    offsets, lower, upper = panels(table, hyper, width)
    sigma, base, log_g, tails = node_log_density(
        table, offsets, lower, upper, obs, hyper, gl_nodes, gl_weights, log_top
    )
    weight = np.empty(log_g.size)
    if math.isnan(log_top):
        top = -np.inf
        for k in range(log_g.size):
            if log_g[k] > top or math.isnan(log_g[k]):
                top = log_g[k]
                if math.isnan(top):
                    break
        if np.isfinite(top):
            # the weights relative to the largest are the normalised ones times the total: one
            # exp per node, not two, and no rounding of log_top amplified by |log_g - log_top|
            total = 0.0
            for k in range(log_g.size):
                weight[k] = exp_without_errno(log_g[k] - top)
                total += weight[k]
            log_top = top + math.log(total)
            inverse = 1.0 / total
            for k in range(log_g.size):
                weight[k] *= inverse
    else:
        for k in range(log_g.size):
            weight[k] = exp_without_errno(log_g[k] - log_top)
    panel_top, slice_mass = _panel_tops_and_slice_masses(
        log_g, weight, offsets, log_top, gl_nodes.size
    )
    return (
        table,
        offsets,
        lower,
        upper,
        sigma,
        base,
        tails,
        log_top,
        weight,
        panel_top,
        slice_mass,
    )


@njit(cache=True, error_model="numpy")
def _panel_tops_and_slice_masses(log_g, weight, offsets, log_top, order):
    """Each panel's largest log weight less ``log_top``, and each slice's sum of ``weight``.

    As numpy's ``max`` (a NaN weight makes its panel's NaN) and ``bincount`` (a slice's
    weights summed in order) would give them.
    """
    panel_top = np.empty(log_g.size // order)
    slice_mass = np.zeros(offsets.size - 1)
    for j in range(offsets.size - 1):
        for p in range(offsets[j], offsets[j + 1]):
            top = -np.inf
            for k in range(p * order, (p + 1) * order):
                if log_g[k] > top or math.isnan(log_g[k]):
                    top = log_g[k]
                slice_mass[j] += weight[k]
            panel_top[p] = top - log_top
    return panel_top, slice_mass


def build_level(bounds, width, obs, hyper, level, log_top=None):
    """Build the level on the panels ``bounds`` of ``log(nu)``, ``width`` wide in log(sigma).

    The weights are normalised by ``log_top``, or by their own total when it is None.
    """
    arrays = _panel_level_arrays(
        bounds,
        width,
        obs,
        hyper,
        _PHI_NODES,
        _PHI_WEIGHTS,
        _GL_NODES,
        _GL_WEIGHTS,
        np.nan if log_top is None else log_top,
    )
    return _level(level, width, bounds, *arrays)


@njit(cache=True, error_model="numpy")
def _panel_level_arrays(
    bounds, width, obs, hyper, phi_nodes, phi_weights, gl_nodes, gl_weights, log_top
):
    """:func:`_level_arrays` on the nodes of :func:`_gauss_legendre_phi`, in one call."""
    phi, log_weight = _gauss_legendre_phi(bounds, phi_nodes, phi_weights)
    return _level_arrays(phi, log_weight, width, obs, hyper, gl_nodes, gl_weights, log_top)


@njit(cache=True, error_model="numpy")
def _even_edges(a, b, panels):
    """Return the edges of ``panels`` equal panels of ``(a, b)``, as ``numpy.linspace`` would.

    ``i * step + a``, the last edge ``b`` itself (``panels + 1`` edges): the same floats as
    ``numpy.linspace(a, b, panels + 1)``, without its cost on a handful of points.
    """
    step = (b - a) / panels
    edges = np.empty(panels + 1)
    for i in range(panels):
        edges[i] = i * step + a
    edges[panels] = b
    return edges


@njit(cache=True, error_model="numpy")
def _even_panels(a, b, panels):
    """``panels`` equal panels of ``(a, b)``, shape (panels, 2) (:func:`_even_edges`)."""
    edges = _even_edges(a, b, panels)
    bounds = np.empty((panels, 2))
    for i in range(panels):
        bounds[i, 0] = edges[i]
        bounds[i, 1] = edges[i + 1]
    return bounds


def _slice_log_mass(phi, obs, hyper):
    """``log`` of the posterior mass density of ``log(nu)`` at ``phi`` (unnormalised)."""
    log_mass = _slice_log_masses(phi, SCAN_PANEL_WIDTH, obs, hyper, _GL_NODES, _GL_WEIGHTS)
    if np.isnan(log_mass).all():
        raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
    return log_mass


@njit(cache=True, error_model="numpy")
def _slice_log_masses(phi, width, obs, hyper, gl_nodes, gl_weights):
    """:func:`_slice_log_mass` without the level around it (NaN: nowhere finite)."""
    arrays = _level_arrays(phi, np.zeros(phi.size), width, obs, hyper, gl_nodes, gl_weights, np.nan)
    log_top, slice_mass = arrays[7], arrays[10]
    if math.isnan(log_top):
        return np.full(phi.size, np.nan)
    return _log_masses(slice_mass, log_top)


@njit(cache=True, error_model="numpy")
def _log_masses(slice_mass, log_top):
    """``log`` of each slice's mass plus ``log_top``; ``-inf`` for one without mass."""
    out = np.full(slice_mass.size, -np.inf)
    for j in range(out.size):
        if slice_mass[j] > 0.0:
            out[j] = math.log(slice_mass[j]) + log_top
    return out


def _phi_region(obs, hyper):
    """Interval of ``log(nu)`` where its posterior density is within e^-36 of the maximum."""
    status, lo, hi = _phi_region_scans(obs, hyper, _GL_NODES, _GL_WEIGHTS)
    if status == NOWHERE_FINITE:
        raise FloatingPointError("3PND quadrature: the posterior density is nowhere finite")
    if status == NOT_SETTLED:
        raise FloatingPointError(
            f"3PND quadrature: the region of log(nu) did not settle in {MAX_REFITS} refits; "
            "the posterior is improper or nearly so"
        )
    return lo, hi


#: Outcomes of :func:`_phi_region_scans`.
SETTLED, NOWHERE_FINITE, NOT_SETTLED = 0, 1, 2


@njit(cache=True, error_model="numpy")
def _phi_region_scans(obs, hyper, gl_nodes, gl_weights):
    """:func:`_phi_region` in one call from Python: ``(outcome, lo, hi)``.

    The scans of :data:`SCAN_POINTS` slice masses (:func:`_slice_log_masses`), narrowed to
    those within :data:`LOG_DENSITY_RANGE` of the largest and widened where they touch an
    end; the outcome is :data:`SETTLED`, :data:`NOWHERE_FINITE` or :data:`NOT_SETTLED`.
    """
    delta = hyper[kernels.DELTA]
    lo, hi = -12.0 * delta, 12.0 * delta
    top = -np.inf
    phi = np.empty(SCAN_POINTS)
    for _ in range(MAX_REFITS):
        width = (hi - lo) / SCAN_POINTS
        for i in range(SCAN_POINTS):
            phi[i] = lo + width * (i + 0.5)
        log_mass = _slice_log_masses(phi, SCAN_PANEL_WIDTH, obs, hyper, gl_nodes, gl_weights)
        scan_top = -np.inf  # as numpy's max: NaN if any is
        for i in range(SCAN_POINTS):
            if log_mass[i] > scan_top or math.isnan(log_mass[i]):
                scan_top = log_mass[i]
                if math.isnan(scan_top):
                    break
        if not np.isfinite(scan_top):
            return NOWHERE_FINITE, lo, hi
        # The largest density any scan found: a sharp peak that one scan's points hit and the
        # next one's miss would otherwise move the threshold, and the region, back and forth.
        top = max(top, scan_top)
        first, last = _kept_range(log_mass, top - LOG_DENSITY_RANGE)
        if first < 0:  # this scan missed the peak by more than the range
            first, last = _kept_range(log_mass, scan_top - LOG_DENSITY_RANGE)
        new_lo = lo - 0.5 * (hi - lo) if first == 0 else lo + (first - 1) * width
        new_hi = hi + 0.5 * (hi - lo) if last == SCAN_POINTS - 1 else lo + (last + 2) * width
        touches = first == 0 or last == SCAN_POINTS - 1
        if not touches and (last - first + 1) >= MIN_CELLS_ACROSS * SCAN_POINTS:
            return SETTLED, lo, hi
        lo, hi = new_lo, new_hi
    return NOT_SETTLED, lo, hi


@njit(cache=True, error_model="numpy")
def _kept_range(log_mass, threshold):
    """First and last index of ``log_mass`` above ``threshold`` (-1, -1 when none is)."""
    first, last = -1, -1
    for i in range(log_mass.size):
        if log_mass[i] > threshold:
            if first < 0:
                first = i
            last = i
    return first, last


def _sharp_point(lo, hi, obs, hyper, constrained):
    """Where the marginal of ``log(nu)`` may peak sharply, and the peak's width.

    The minimum ``phi_0`` of :func:`misfit` on ``(lo, hi)`` (None when it is at an end, or the
    misfit is flat there, as ``Q`` is for one patient or for patients all at one dose). With
    the exponent ``-m(phi) / sigma^2``, the slice at ``phi`` carries mass down to
    ``sigma_c^2 = max(m(phi_0), h^2)`` (``h`` the support edge of :func:`slice_table`, which
    bounds ``Q``'s peak only), where ``m`` rises by ``sigma_c^2`` within
    ``w = sigma_c sqrt(2 / m'')`` of ``phi_0``. Returns ``(phi_0, w / 4)``, the width bounded
    to ``[MIN_GRADED_WIDTH, 10]`` times the region's.
    """
    found, centre, width = _sharp_point_search(float(lo), float(hi), obs, hyper, constrained)
    return (centre, width) if found else None


@njit(cache=True, error_model="numpy")
def _sharp_point_search(lo, hi, obs, hyper, constrained):
    """:func:`_sharp_point` in one call from Python: ``(found, phi_0, w / 4)``.

    The grid of 65 points is numpy's ``linspace(lo, hi, 65)``, in its operations.
    """
    span = hi - lo
    size = 65
    grid = np.empty(size)
    step = span / (size - 1)
    for i in range(size):
        grid[i] = (i / (size - 1)) * span + lo if step == 0.0 else i * step + lo
    grid[size - 1] = hi
    values = _misfits(grid, obs, hyper, constrained)
    k = 0  # as numpy's argmin: the first minimum, or the first NaN
    for i in range(size):
        if math.isnan(values[i]):
            k = i
            break
        if values[i] < values[k]:
            k = i
    if k == 0 or k == size - 1 or not np.isfinite(values[k]):
        return False, np.nan, np.nan
    centre = _golden_minimum(grid[k - 1], grid[k + 1], obs, hyper, constrained)
    floor = misfit(centre, obs, hyper, constrained)
    step = 1e-3 * span
    curvature = (
        misfit(centre + step, obs, hyper, constrained)
        - 2.0 * floor
        + misfit(centre - step, obs, hyper, constrained)
    ) / step**2
    if not curvature > 1e-12 * (obs[5] + hyper[kernels.ETA] ** 2):
        return False, np.nan, np.nan
    cutoff = floor
    if not constrained:
        row = slice_table(np.array([centre]), np.zeros(1), obs, hyper)[0]
        if np.isfinite(row[U_EDGE]):
            cutoff = max(cutoff, math.exp(2.0 * row[U_EDGE]))
    width = math.sqrt(2.0 * cutoff / curvature)
    return True, centre, min(max(width / 4.0, MIN_GRADED_WIDTH * span), 10.0 * span)


@njit(cache=True, error_model="numpy")
def _graded_panels(centre, far, scale, edges):
    """Append to ``edges`` panels from ``centre`` to ``far``, shrinking to ``scale`` at centre."""
    sign = 1.0 if far > centre else -1.0
    reach = abs(far - centre)
    while reach > scale:
        a, b = centre + sign * reach / GRADING, centre + sign * reach
        edges.append((min(a, b), max(a, b)))
        reach /= GRADING
    edges.append((min(centre, centre + sign * reach), max(centre, centre + sign * reach)))


@njit(cache=True, error_model="numpy")
def _panel_edges(lo, hi, inside, width):
    """Return the panels of :func:`phi_panels`, unsorted; ``inside`` its sharp points by centre."""
    ends = [lo]
    scales = [np.nan]  # NaN: an end that no panel is graded towards
    for i in range(inside.shape[0]):
        if i:
            ends.append(0.5 * (inside[i - 1, 0] + inside[i, 0]))
            scales.append(np.nan)
        ends.append(inside[i, 0])
        scales.append(inside[i, 1])
    ends.append(hi)
    scales.append(np.nan)
    edges = [(lo, hi)]
    edges.pop()  # typed as a list of pairs, empty
    for s in range(len(ends) - 1):
        a, b = ends[s], ends[s + 1]
        count = max(1, math.ceil((b - a) / width))
        for i in range(count):
            p = a + (b - a) * i / count
            q = a + (b - a) * (i + 1) / count if i + 1 < count else b
            if i == 0 and not math.isnan(scales[s]):
                _graded_panels(a, q, scales[s], edges)
            elif i == count - 1 and not math.isnan(scales[s + 1]):
                _graded_panels(b, p, scales[s + 1], edges)
            else:
                edges.append((p, q))
    out = np.empty((len(edges), 2))
    for k in range(len(edges)):
        out[k, 0], out[k, 1] = edges[k]
    return out


def phi_panels(region, points, level):
    """Panels of ``log(nu)`` at ``level``, shape (panels, 2), in order.

    Gauss-Legendre panels of equal width, graded geometrically towards each sharp point
    ``(centre, scale)`` of ``points`` inside ``region``, down to its ``scale``. Two sharp
    points are separated at their midpoint, so that a panel is graded towards one at most.
    """
    lo, hi = region
    width = (hi - lo) / (BASE_PHI_PANELS * 2**level)
    inside = np.array(sorted((c, w) for c, w in points if lo < c < hi), dtype=float)
    return _ordered_panel_edges(lo, hi, inside.reshape(-1, 2), width)


@njit(cache=True, error_model="numpy")
def _ordered_panel_edges(lo, hi, inside, width):
    """:func:`_panel_edges` in order: by their lower edge, then their upper one.

    The order of ``numpy.lexsort`` on the two columns (stable sorts, the second key first).
    """
    edges = _panel_edges(lo, hi, inside, width)
    order = np.argsort(edges[:, 1], kind="mergesort")
    order = order[np.argsort(edges[order, 0], kind="mergesort")]
    ordered = np.empty_like(edges)
    for k in range(order.size):
        ordered[k, 0] = edges[order[k], 0]
        ordered[k, 1] = edges[order[k], 1]
    return ordered


@njit(cache=True, error_model="numpy")
def _gauss_legendre_phi(bounds, nodes, weights):
    """Nodes and log weights of ``log(nu)``: :data:`PHI_ORDER` points per panel of ``bounds``.

    ``nodes, weights`` are the Gauss-Legendre rule (passed, not read as globals, which numba
    would freeze at compile time).
    """
    phi = np.empty(bounds.shape[0] * nodes.size)
    log_weight = np.empty(phi.size)
    for p in range(bounds.shape[0]):
        half = 0.5 * (bounds[p, 1] - bounds[p, 0])
        mid = 0.5 * (bounds[p, 1] + bounds[p, 0])
        for i in range(nodes.size):
            phi[p * nodes.size + i] = mid + half * nodes[i]
            log_weight[p * nodes.size + i] = math.log(half * weights[i])
    return phi, log_weight


@njit(cache=True, error_model="numpy")
def _plug_in_mtd(table, offsets, sigma, hyper, order, weight=None):
    """Per node of a level, the MTD of eq (5) at beta's conditional mean.

    The mean is clipped into beta's support (its middle without data); NaN where
    ``eta - sigma z <= 0`` leaves no MTD. The factors of :func:`kernels.beta_bounds` and
    :func:`kernels.mtd` that depend on nu alone are computed once per slice, in the same
    operations, so each value is theirs to the last bit. Given the nodes' ``weight``, NaN too
    at the nodes that carry none: below ``e^-LOG_DENSITY_RANGE`` of the largest weight.
    """
    out = np.full(sigma.size, np.nan)
    eta, z = hyper[kernels.ETA], hyper[kernels.Z]
    cutoff = -np.inf
    if weight is not None:
        cutoff = np.max(weight) * math.exp(-LOG_DENSITY_RANGE)
    for j in range(table.shape[0]):
        nu = table[j, NU]
        r_neg = exp_without_errno(-nu * hyper[kernels.LOG_RANGE])
        exponent = 1.0 / nu
        for k in range(offsets[j] * order, offsets[j + 1] * order):
            if weight is not None and not weight[k] >= cutoff:
                continue
            reach = eta - sigma[k] * z
            lower, upper = reach * r_neg, eta * r_neg + sigma[k] * z
            beta = table[j, MEAN] if table[j, ROOT_SWW] > 0.0 else 0.5 * (lower + upper)
            beta = min(max(beta, lower), upper)
            if beta > 0.0 and reach > 0.0:
                value = hyper[kernels.X_MIN] + (reach / beta) ** exponent
                out[k] = kernels.inside_open(value, hyper[kernels.X_MIN], hyper[kernels.X_MAX])
    return out


@njit(cache=True, error_model="numpy")
def weighted_quantile(values, weights, p):
    """Return the smallest value whose weight with every smaller value's is ``p`` or more.

    That is the ``p``-quantile of the distribution with mass ``weights`` (non-negative, in
    proportion) on ``values``; entries whose value is NaN or whose weight is not positive are
    left out, and NaN is returned when none is left. Weighted quickselect (Hoare's FIND with
    a three-way partition and the median of three as pivot): expected ``O(n)``, where a sort
    costs ``O(n log n)``. The partial sums are formed in another order than the total, so
    rounding can leave every one of them short of ``p`` times it: the largest value is then
    returned.
    """
    index = np.empty(values.size, dtype=np.int64)
    size, total = 0, 0.0
    for i in range(values.size):
        if weights[i] > 0.0 and not math.isnan(values[i]):
            index[size] = i
            size += 1
            total += weights[i]
    if size == 0:
        return np.nan
    target = p * total
    lo, hi, below = 0, size, 0.0  # below: the weight of every value under index[lo:hi]'s
    while True:
        a, b, c = values[index[lo]], values[index[(lo + hi) // 2]], values[index[hi - 1]]
        pivot = max(min(a, b), min(max(a, b), c))
        # index[lo:less] < pivot, index[less:i] == pivot, index[greater:hi] > pivot
        less, i, greater = lo, lo, hi
        weight_less, weight_equal = 0.0, 0.0
        while i < greater:
            value = values[index[i]]
            if value < pivot:
                weight_less += weights[index[i]]
                index[less], index[i] = index[i], index[less]
                less += 1
                i += 1
            elif value > pivot:
                greater -= 1
                index[greater], index[i] = index[i], index[greater]
            else:
                weight_equal += weights[index[i]]
                i += 1
        if below + weight_less >= target and less > lo:
            hi = less
        elif below + weight_less + weight_equal >= target or greater == hi:
            return pivot
        else:
            below += weight_less + weight_equal
            lo = greater


def _plug_in_quantile(level, p, hyper):
    """Where a quantile's Newton steps start at a level without a coarser answer.

    The weighted ``p``-quantile of the nodes' MTD at beta's conditional mean
    (:func:`_plug_in_mtd`): it ignores beta's spread given ``(sigma, nu)``, but it is near
    the root, so that the steps (each a pass over the level's nodes) are few. The nodes that
    carry no weight (each below ``e^-LOG_DENSITY_RANGE``, 2e-16, of the largest), most of a
    level's, are left out. The midpoint of the dose range where no node has such an MTD.
    """
    mtd = _plug_in_mtd(level.table, level.offsets, level.sigma, hyper, ORDER, level.weight)
    start = weighted_quantile(mtd, level.weight, p)
    if math.isnan(start):
        return 0.5 * (hyper[kernels.X_MIN] + hyper[kernels.X_MAX])
    return float(start)


def _solve_quantile(level, p, start, obs, hyper):
    """``F^{-1}(p)`` at one level, kept inside a shrinking bisection bracket.

    Newton steps on ``Phi^{-1}(F(x)) = Phi^{-1}(p)``, nearly linear in ``x`` where the
    posterior of the MTD is nearly normal, so that the steps hold in its tails too. Returns
    the first point whose step is within :data:`QUANTILE_TOLERANCE` of the dose range (the
    level keeps its ``F``, which the CDF at the quantile reads).
    """
    lower, upper = hyper[kernels.X_MIN], hyper[kernels.X_MAX]
    tolerance = QUANTILE_TOLERANCE * (upper - lower)
    target = ndtri(p)
    x = start
    for _ in range(200):
        cdf, density = level.cdf_and_density(x, obs, hyper)
        if cdf < p:
            lower = x
        else:
            upper = x
        candidate = np.nan
        score = ndtri(cdf) if 0.0 < cdf < 1.0 else math.inf
        if score < NEWTON_MAX_SCORE and density > 0.0:
            candidate = x - (score - target) * math.exp(-0.5 * score * score) / (SQRT_2PI * density)
        new_x = candidate if lower < candidate < upper else 0.5 * (lower + upper)
        # x is within the tolerance of the root: kept (not new_x), its F is known.
        if abs(new_x - x) <= tolerance:
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
    points : tuple of (float, float)
        The sharp points of the marginal of :math:`\log\nu` that the panels are graded
        towards, with the narrowest panel's width (:func:`_sharp_point`).
    advice : str
        What a refusal to settle says first about the data (e.g. an outlying response),
        before the usual causes; empty for none.
    """

    obs: tuple
    hyper: np.ndarray
    tolerance: float
    region: tuple[float, float]
    points: tuple[tuple[float, float], ...]
    advice: str = ""
    _levels: list = field(default_factory=list, repr=False)
    _answers: dict = field(default_factory=dict, repr=False)

    def level(self, index: int) -> QuadratureLevel:
        """Level ``index`` of the rule, built on first use."""
        while len(self._levels) <= index:
            k = len(self._levels)
            bounds = phi_panels(self.region, self.points, k)
            width = sigma_panel_width(self.obs[4]) / 2 ** (0.5 * k)
            self._levels.append(build_level(bounds, width, self.obs, self.hyper, k))
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
        """Answer at successive levels, from ``MIN_LEVELS - 1`` up, until two agree.

        Two levels agree when their answers do, within ``tolerance``, and so do their
        normalising constants, within :data:`NORMALISER_TOLERANCE` in log: a level whose total
        mass still moves has not resolved the posterior's bulk, and two such levels can agree
        on a tail quantile by chance. (Responses below every curve the prior allows piled the
        posterior of sigma at its bound: levels 0 and 1, whose log normalising constants
        differ by 0.067, agreed on a 0.1-quantile of 0.59 where P(MTD <= 0.59) is 0.27 by
        importance sampling; the finer levels never settle it, and it is refused. In the
        decisions of Lee (2023)'s 36 configurations the two coarsest levels' constants
        differ by 0.002 at most.) Every query refines from the same coarsest level, so an
        answer does not depend on which queries came before it (the levels themselves are
        fixed rules of the data).

        Raises
        ------
        DataError
            If no two successive levels agree: a posterior concentrated beyond what the
            levels resolve, by responses that nearly all lie on one 3PND curve or that lie
            below every curve the prior allows (a refusal the command line reports in one
            line, with what to do).
        """
        if key in self._answers:
            return self._answers[key][0]
        previous = answer(self.level(MIN_LEVELS - 2), None)
        for index in range(MIN_LEVELS - 1, MAX_LEVELS):
            value = answer(self.level(index), previous)
            settled = abs(self.level(index).log_top - self.level(index - 1).log_top)
            if abs(value - previous) <= self.tolerance * scale and settled <= (
                NORMALISER_TOLERANCE
            ):
                self._answers[key] = (value, index)
                return value
            previous = value
        raise DataError(
            f"column 'y': the 3PND quadrature's {key[0]} at {key[1]:g} did not settle within "
            f"tolerance {self.tolerance:g} in {MAX_LEVELS} levels (last two: {previous:g}): "
            + (f"{self.advice}; " if self.advice else "")
            + f"these {int(self.obs[4])} responses concentrate the posterior beyond what the "
            "quadrature resolves (nearly all on one curve, or below every curve the prior "
            "allows); record them at their measured precision, check their scale against "
            'eta, or use an MCMC engine ([conduct] engine = "kernel")'
        )

    def cdf(self, x: float) -> float:
        """Posterior ``P(MTD <= x)``; 0 at or below ``x_min``, 1 at or above ``x_max``."""
        check_cdf_point(x)
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
        check_quantile_level(p)
        if not 0.0 < p < 1.0:
            raise ValueError(f"quantile: p must lie in (0, 1), got {p!r}")
        lower, upper = self.hyper[kernels.X_MIN], self.hyper[kernels.X_MAX]

        def answer(level, previous):
            start = _plug_in_quantile(level, p, self.hyper) if previous is None else previous
            return _solve_quantile(level, float(p), start, self.obs, self.hyper)

        return self._refine(("quantile", float(p)), answer, upper - lower)

    @property
    def median_level(self) -> QuadratureLevel:
        """The level at which the median of the MTD settles (a fixed rule of the data)."""
        self.quantile(0.5)
        return self.level(self._answers[("quantile", 0.5)][1])

    @property
    def weight(self) -> np.ndarray:
        """Posterior weights of the nodes of :attr:`median_level` (they sum to one)."""
        return self.median_level.weight

    def sample(self, size: int, rng: np.random.Generator | int) -> dict[str, np.ndarray]:
        """Draw ``beta, sigma, nu, mtd`` from the quadrature posterior.

        A node of :attr:`median_level` is drawn by its weight, then beta exactly from its
        truncated normal given ``(sigma, nu)``. ``rng``: a generator, or a seed of one.
        """
        size = integer("QuadraturePosterior.sample", "size", size, minimum=0)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        level = self.median_level
        node = rng.choice(level.weight.size, size=size, p=level.weight)
        slice_of_node = np.repeat(np.arange(level.table.shape[0]), np.diff(level.offsets) * ORDER)
        sigma = np.minimum(level.sigma[node], np.nextafter(self.hyper[kernels.SIGMA_MAX], 0))
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
    obs: tuple, hyper: np.ndarray, *, tolerance: float = MTD_TOLERANCE, advice: str = ""
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
    advice : str
        What a refusal to settle says first about the data (:attr:`QuadraturePosterior.advice`).

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
        exact = _sharp_point(-12.0 * delta, 12.0 * delta, obs, hyper, True)
        reference = obs[5] + hyper[kernels.ETA] ** 2
        if exact is not None and exact_fit_residual(exact[0], obs, hyper) <= EXACT_FIT * reference:
            raise FloatingPointError(
                "3PND quadrature: a 3PND curve through (x_max, eta) fits exactly all the "
                "responses, so the posterior piles up at sigma -> 0 and is improper"
            )
    lo, hi = _phi_region(obs, hyper)
    points = []
    if obs[4] > 0.0:
        for constrained in (True, False):
            point = _sharp_point(lo, hi, obs, hyper, constrained)
            if point is not None:
                points.append(point)
    if points:
        near = np.array([c + sign * 1e-3 * (hi - lo) for c, _ in points for sign in (-1.0, 1.0)])
        scan = _even_edges(lo, hi, SCAN_POINTS - 1)
        masses = _slice_log_mass(np.concatenate([near, scan]), obs, hyper)
        top = np.max(masses)
        # a point without mass near it needs no grading
        points = [
            point
            for i, point in enumerate(points)
            if max(masses[2 * i], masses[2 * i + 1]) >= top - LOG_DENSITY_RANGE
        ]
    return QuadraturePosterior(
        obs=obs,
        hyper=hyper,
        tolerance=float(tolerance),
        region=(lo, hi),
        points=tuple(points),
        advice=advice,
    )
