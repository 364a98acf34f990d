r"""The CRM's exact posterior of :math:`\beta` by Gauss-Legendre quadrature, compiled with numba.

The CRM (O'Quigley, Pepe and Fisher 1990; Cheung 2011) has one parameter. With scaled doses
:math:`x_k` (:math:`\log s_k` for the empiric working model, :math:`\operatorname{logit} s_k -
a_0` for the logistic one), :math:`n_k` patients and :math:`y_k` DLTs at level :math:`k` and the
prior :math:`\beta \sim N(\mu, \sigma^2)`, the unnormalised log posterior is

.. math::

    \ell(\beta) = -\tfrac12 \left(\tfrac{\beta - \mu}{\sigma}\right)^2
    + \sum_k y_k \log p_k(\beta) + (n_k - y_k) \log(1 - p_k(\beta)),
    \qquad \log p_k = e^\beta x_k \ \text{(empiric)}, \quad
    \operatorname{logit} p_k = a_0 + e^\beta x_k \ \text{(logistic)},

an analytic function of :math:`\beta` that depends on the data only through the counts per
level. The posterior is integrated by a rule of Gauss-Legendre panels fitted to it:

1. **Where the mass is.** :math:`\ell` on 17 points spanning 10 prior scales either side of the
   prior mean (the span doubled while the region :math:`\ell > \max \ell - D` touches an end);
   its mode by Newton's method on :math:`\ell'` (analytic derivatives), safeguarded by
   bisection; then the interval :math:`[a, b]` where :math:`\ell` has dropped to
   :math:`\ell(\hat\beta) - D` on either side, by the Illinois variant of regula falsi (to
   1e-3 of a scan step: the ends need not be exact, only far enough out). With
   :math:`D = 30` the density at the ends is :math:`e^{-30} \approx 10^{-13}` of its peak,
   and the mass outside is negligible for a log density that is concave (the empiric
   model's is) or nearly so.
2. **The rule.** :math:`[a, b]` is cut into :data:`PANELS` equal panels, or more so that none
   is wider than :data:`MAX_PANEL_WIDTH` in :math:`\beta` (the working models are functions of
   :math:`e^\beta`, whose features have that scale whatever the prior's width), each with the
   :data:`ORDER`-point Gauss-Legendre rule (nodes and weights computed once, at import). A panel
   whose density is not resolved is halved until it is: the density at its points, projected
   on the Legendre polynomials, must have its two highest coefficients times the half-width
   below 1e-3 of the total mass (a bound far above the rule's own error, which depends on the
   coefficients of twice that degree). For a near-normal posterior the interval spans about
   :math:`2\sqrt{2D} \approx 15` standard deviations and a panel about 1.9, over which the rule
   integrates an analytic density to about 1e-10 of its mass; elsewhere (a wide prior's tail
   beyond a flat likelihood) :data:`MAX_PANEL_WIDTH` bounds the error. On random states of both
   working models under priors of sd 0.3 to 30, every quantity a rule reads is within 1.5e-7
   of a rule three times finer, and within 1e-6 of ``scipy.integrate.quad`` under dfcrm's
   prior and priors of sd 3 and 10 (both checked in ``tests/test_binary_tails.py``). Twelve
   panels, the rule before, gave the same answers within 7e-8 with half as many nodes again;
   on the crmsim runs and the binary scenarios' CRM runs no dose or recommendation changed.
   Expectations (the posterior means of :math:`\beta` and of every :math:`p_k`) are weighted
   sums over the nodes.
3. **The CDF** :math:`F(c) = P(\beta < c)` sums the panels below :math:`c` and integrates the
   panel :math:`c` falls in, from its lower edge to :math:`c`, by the same rule on that
   sub-interval (the density evaluated anew): it is as accurate as the total, with no midpoint
   or interpolation error. Every event a CRM rule reads is a set of :math:`\beta` bounded by
   cuts: :math:`p_k > t` iff :math:`e^\beta x_k > c_t` (:func:`level_cuts`); and the MTD, the
   level whose rate is closest to the target :math:`\phi` (a placebo level of rate 0 below the
   lowest), is below level :math:`j` iff :math:`p_{j-1} + p_j \ge 2\phi`, since the levels'
   rates are ordered at every :math:`\beta` (:meth:`CRMQuadrature.mass_closest_below`: the
   roots are found by scanning half-panels and refined by regula falsi).
4. **Draws** invert :math:`F`: the panel by its mass, then Newton's method within it,
   safeguarded by bisection.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np

from dosezoo.samplers.logistic_kernels import _log_sigmoid

__all__ = ["EMPIRIC", "LOGISTIC", "ORDER", "PANELS", "CRMQuadrature", "level_cuts"]

#: Working model codes of the kernels.
EMPIRIC, LOGISTIC = 0, 1
#: Panels of the rule and Gauss-Legendre points per panel.
PANELS, ORDER = 8, 8
#: Widest panel, in beta: the working models change on that scale whatever the prior's width.
MAX_PANEL_WIDTH = 1.5
#: Drop of the log density, below its maximum, at the ends of the rule's interval.
LOG_DENSITY_DROP = 30.0
#: Points of the scan that finds the posterior's region, and its first half-width in prior sd.
_SCAN_POINTS, _SCAN_SPAN = 17, 10.0
#: How many times the scan's span may double before the posterior is declared unbounded.
_MAX_DOUBLINGS = 6
#: Most panels of the rule's first pass: a posterior wider than that many panels of
#: :data:`MAX_PANEL_WIDTH` (a prior sd of thousands where the likelihood is flat) is refused.
_MAX_PANELS = 1 << 14
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(ORDER)
#: Rows mapping the density at the Gauss-Legendre points to its two highest Legendre
#: coefficients, :math:`c_j = (2j + 1) / 2 \sum_q w_q f(t_q) P_j(t_q)` (:func:`_panel`).
_GL_TAIL = np.array(
    [
        (2 * j + 1) / 2 * _GL_WEIGHTS * np.polynomial.legendre.legval(_GL_NODES, np.eye(ORDER)[j])
        for j in (ORDER - 2, ORDER - 1)
    ]
)
#: A panel is resolved when its two highest Legendre coefficients, times its half-width, are
#: below this share of the total mass; a panel is halved at most this many times.
_RESOLUTION, _MAX_HALVINGS = 1e-3, 30

# A problem is the tuple (model, x, n, y, a0, mu, sd): the working model's code, the scaled
# doses and the patients and DLTs per level (float arrays of one size), the logistic intercept,
# the prior mean and sd. A rule is (edges, peak, cumulative): the panels' edges, the peak log
# density and the unnormalised mass below each edge.


@numba.njit(cache=True, error_model="numpy")
def _level_logs(model: int, a0: float, w: float) -> tuple[float, float]:
    """``log p`` and ``log(1 - p)`` of a level with ``w = e^beta x_k``."""
    if model == EMPIRIC:
        return w, math.log(-math.expm1(w))
    return _log_sigmoid(a0 + w), _log_sigmoid(-(a0 + w))


@numba.njit(cache=True, error_model="numpy")
def _log_density(beta, problem):
    """Return the unnormalised log posterior of ``beta`` (the prior's constant left out)."""
    model, x, n, y, a0, mu, sd = problem
    z = (beta - mu) / sd
    total = -0.5 * z * z
    u = math.exp(beta)
    for k in range(x.size):
        if n[k] == 0.0:
            continue
        log_p, log_q = _level_logs(model, a0, u * x[k])
        # Counts of 0 are skipped, not multiplied: log p or log(1 - p) may be -inf.
        if y[k] > 0.0:
            total += y[k] * log_p
        if n[k] > y[k]:
            total += (n[k] - y[k]) * log_q
    return total


@numba.njit(cache=True, error_model="numpy")
def _slope_and_curvature(beta, problem):
    r""":math:`\ell'(\beta)` and :math:`\ell''(\beta)`.

    With :math:`w = e^\beta x_k` (so :math:`dw/d\beta = w`). Empiric: :math:`\log p = w`, and
    with :math:`r = p / (1 - p)`, :math:`d \log(1 - p) / d\beta = -r w` and
    :math:`d^2 \log(1 - p) / d\beta^2 = -r (1 + r) w^2 - r w`. Logistic:
    :math:`d[y \log p + (n - y) \log(1 - p)] / d\beta = (y - n p) w`, whose derivative is
    :math:`-n p (1 - p) w^2 + (y - n p) w`.
    """
    model, x, n, y, a0, mu, sd = problem
    slope = -(beta - mu) / (sd * sd)
    curvature = -1.0 / (sd * sd)
    u = math.exp(beta)
    for k in range(x.size):
        if n[k] == 0.0:
            continue
        w = u * x[k]
        failures = n[k] - y[k]
        if model == EMPIRIC:
            slope += y[k] * w
            curvature += y[k] * w
            if failures > 0.0 and w != 0.0:
                r = 1.0 / math.expm1(-w)
                slope -= failures * r * w
                curvature -= failures * (r * (1.0 + r) * w * w + r * w)
        else:
            p = math.exp(_log_sigmoid(a0 + w))
            slope += (y[k] - n[k] * p) * w
            curvature += (y[k] - n[k] * p) * w - n[k] * p * (1.0 - p) * w * w
    return slope, curvature


@numba.njit(cache=True, error_model="numpy")
def _objective(kind, beta, level, threshold, problem):
    """``l(beta) - threshold`` (kind 0) or ``p_{level-1} + p_level - threshold`` (kind 1)."""
    if kind == 0:
        return _log_density(beta, problem) - threshold
    model, x, _, _, a0, _, _ = problem
    u = math.exp(beta)
    total = math.exp(_level_logs(model, a0, u * x[level])[0]) - threshold
    if level > 0:
        total += math.exp(_level_logs(model, a0, u * x[level - 1])[0])
    return total


@numba.njit(cache=True, error_model="numpy")
def _root(kind, low, high, f_low, f_high, level, threshold, problem, tolerance, keep=0):
    """Find a root of :func:`_objective` in ``[low, high]`` (signs differ) to ``tolerance``.

    The Illinois variant of regula falsi: superlinear, and it never leaves the bracket. The
    root returned is the end of the last bracket with the smaller objective (``keep`` 0), its
    lower end (-1) or its upper end (1): the side of the root the caller needs it on.
    """
    side = 0
    for _ in range(200):
        if high - low <= tolerance:
            break
        middle = (low * f_high - high * f_low) / (f_high - f_low)
        if not low < middle < high:
            middle = 0.5 * (low + high)
        value = _objective(kind, middle, level, threshold, problem)
        if value == 0.0:
            return middle
        if (value > 0.0) == (f_high > 0.0):
            high, f_high = middle, value
            if side == 1:
                f_low *= 0.5
            side = 1
        else:
            low, f_low = middle, value
            if side == -1:
                f_high *= 0.5
            side = -1
    if keep:
        return low if keep < 0 else high
    return low if abs(f_low) < abs(f_high) else high


@numba.njit(cache=True, error_model="numpy")
def _mode(low, high, problem):
    """Find the maximum of ``l`` in ``[low, high]``: Newton on ``l'``, bisection if it strays."""
    beta = 0.5 * (low + high)
    for _ in range(100):
        slope, curvature = _slope_and_curvature(beta, problem)
        if slope > 0.0:
            low = beta
        else:
            high = beta
        step = beta - slope / curvature if curvature < 0.0 else math.nan
        if not low < step < high:
            step = 0.5 * (low + high)
        if abs(step - beta) <= 1e-10 * max(1.0, abs(beta)):
            return step
        beta = step
    return beta


@numba.njit(cache=True, error_model="numpy")
def _panel(left, width, peak, gl_nodes, gl_weights, gl_tail, problem, nodes, mass):
    """Fill a panel's nodes and masses; return how far its density is from being resolved.

    The density at the Gauss-Legendre points, projected on the Legendre polynomials, has its
    two highest coefficients (``gl_tail`` @ density) near 0 when a polynomial of lower degree
    represents it; their size times the half-width bounds the panel's error far above the
    rule's true error (which depends on the coefficients of twice the degree).
    """
    half = 0.5 * width
    second, last = 0.0, 0.0
    for q in range(gl_nodes.size):
        nodes[q] = left + half * (gl_nodes[q] + 1.0)
        density = math.exp(_log_density(nodes[q], problem) - peak)
        mass[q] = half * gl_weights[q] * density
        second += gl_tail[0, q] * density
        last += gl_tail[1, q] * density
    return half * (abs(second) + abs(last))


@numba.njit(cache=True, error_model="numpy")
def _room(edges, nodes, mass, count):
    """Return the panel arrays with room for panel ``count`` and the last edge (grown x2)."""
    if count < nodes.shape[0]:
        return edges, nodes, mass
    # Always one more edge than panel rows.
    grown_edges = np.empty(2 * nodes.shape[0] + 1)
    grown_edges[: edges.size] = edges
    grown_nodes = np.empty((2 * nodes.shape[0], nodes.shape[1]))
    grown_nodes[: nodes.shape[0]] = nodes
    grown_mass = np.empty((2 * mass.shape[0], mass.shape[1]))
    grown_mass[: mass.shape[0]] = mass
    return grown_edges, grown_nodes, grown_mass


@numba.njit(cache=True, error_model="numpy")
def _fit(problem, gl_nodes, gl_weights, gl_tail, panels, drop, max_width):
    """Fit the rule: status, the rule (edges, peak, cumulative), nodes and masses.

    Status 0: fitted; 1: the log density is NaN somewhere; 2: the region does not fit within
    the largest span; 3: it needs more than :data:`_MAX_PANELS` panels. The masses are
    unnormalised (relative to the peak density).
    """
    mu, sd = problem[5], problem[6]
    order = gl_nodes.size
    empty = np.zeros(0)
    scan = np.empty(_SCAN_POINTS)
    values = np.empty(_SCAN_POINTS)
    span = _SCAN_SPAN
    mode, peak, level, first, last = 0.0, 0.0, 0.0, 0, 0
    for attempt in range(_MAX_DOUBLINGS + 1):
        step = 2.0 * span * sd / (_SCAN_POINTS - 1)
        best = 0
        for i in range(_SCAN_POINTS):
            scan[i] = mu - span * sd + i * step
            values[i] = _log_density(scan[i], problem)
            if math.isnan(values[i]):
                return 1, (empty, 0.0, empty), empty, empty
            if values[i] > values[best]:
                best = i
        if 0 < best < _SCAN_POINTS - 1:
            mode = _mode(scan[best - 1], scan[best + 1], problem)
            peak = _log_density(mode, problem)
            if not peak >= values[best]:
                mode, peak = scan[best], values[best]
            level = peak - drop
            # The region: from the first to the last scan point above the level (a second
            # mode beyond a valley included).
            first, last = best, best
            for i in range(_SCAN_POINTS):
                if values[i] > level:
                    first = min(first, i)
                    last = max(last, i)
            if first > 0 and last < _SCAN_POINTS - 1:
                break
        if attempt == _MAX_DOUBLINGS:
            return 2, (empty, 0.0, empty), empty, empty
        span *= 2.0
    # The ends on their outer side, where the density has dropped below the level, to a
    # tolerance on the models' own scale: a scan step spans hundreds of units of beta under a
    # vague prior, and an end that many thousandths of it inside cut off the posterior.
    inner = min(scan[first], mode)
    tolerance = 1e-3 * min(step, max_width)
    f_inner = _log_density(inner, problem) - level
    lower = _root(
        0,
        scan[first - 1],
        inner,
        values[first - 1] - level,
        f_inner,
        0,
        level,
        problem,
        tolerance,
        -1,
    )
    inner = max(scan[last], mode)
    f_inner = _log_density(inner, problem) - level
    upper = _root(
        0, inner, scan[last + 1], f_inner, values[last + 1] - level, 0, level, problem, tolerance, 1
    )
    # Equal panels first; then each panel whose density the rule does not resolve is replaced
    # by its halves, depth first, the left half first (so the panels stay in order).
    # Compared as a float: a span of 1e300 in beta (a prior sd as large) overflows an integer.
    span = (upper - lower) / max_width
    if not span <= _MAX_PANELS:
        return 3, (empty, 0.0, empty), empty, empty
    first_panels = max(panels, math.ceil(span))
    width = (upper - lower) / first_panels
    first_nodes = np.empty((first_panels, order))
    first_mass = np.empty((first_panels, order))
    unresolved = np.empty(first_panels)
    total = 0.0
    for p in range(first_panels):
        unresolved[p] = _panel(
            lower + p * width,
            width,
            peak,
            gl_nodes,
            gl_weights,
            gl_tail,
            problem,
            first_nodes[p],
            first_mass[p],
        )
        total += first_mass[p].sum()
    tolerance = _RESOLUTION * total
    if unresolved.max() <= tolerance:  # the common case: the equal panels are the rule
        edges = lower + width * np.arange(first_panels + 1)
        edges[first_panels] = upper
        cumulative = np.zeros(first_panels + 1)
        for p in range(first_panels):
            cumulative[p + 1] = cumulative[p] + first_mass[p].sum()
        return 0, (edges, peak, cumulative), first_nodes.ravel(), first_mass.ravel()
    edges = np.empty(first_panels + 1)
    nodes = np.empty((first_panels, order))
    mass = np.empty((first_panels, order))
    count = 0
    stack = np.empty((_MAX_HALVINGS + 2, 3))
    for p in range(first_panels):
        edges, nodes, mass = _room(edges, nodes, mass, count)
        if unresolved[p] <= tolerance:
            edges[count] = lower + p * width
            nodes[count] = first_nodes[p]
            mass[count] = first_mass[p]
            count += 1
            continue
        half = 0.5 * width
        stack[0] = (lower + p * width + half, half, 1.0)
        stack[1] = (lower + p * width, half, 1.0)
        size = 2
        while size:
            size -= 1
            left, panel_width, depth = stack[size]
            edges, nodes, mass = _room(edges, nodes, mass, count)
            error = _panel(
                left,
                panel_width,
                peak,
                gl_nodes,
                gl_weights,
                gl_tail,
                problem,
                nodes[count],
                mass[count],
            )
            if error > tolerance and depth < _MAX_HALVINGS:
                half = 0.5 * panel_width
                stack[size] = (left + half, half, depth + 1.0)
                stack[size + 1] = (left, half, depth + 1.0)
                size += 2
                continue
            edges[count] = left
            count += 1
    edges[count] = upper
    cumulative = np.zeros(count + 1)
    for p in range(count):
        cumulative[p + 1] = cumulative[p] + mass[p].sum()
    rule = (edges[: count + 1].copy(), peak, cumulative)
    return 0, rule, nodes[:count].copy().ravel(), mass[:count].copy().ravel()


@numba.njit(cache=True, error_model="numpy")
def _posterior(problem, gl_nodes, gl_weights, gl_tail, panels, drop, max_width):
    """Fit the rule, then compute what every decision reads, in one compiled call.

    :func:`_fit`, then the normalised weights, the rates at the nodes, the posterior means of
    the rates (:func:`_weighted_means`) and of ``beta``, and the rates there. Status 4: fitted,
    but the weights or the mean are not finite.
    """
    status, rule, nodes, mass = _fit(
        problem, gl_nodes, gl_weights, gl_tail, panels, drop, max_width
    )
    weights = mass / rule[2][rule[2].size - 1] if status == 0 else mass
    rates = _rates(nodes, problem)
    beta_mean = 0.0
    for i in range(nodes.size):
        beta_mean += weights[i] * nodes[i]
    plugin = _rates(np.array([beta_mean]), problem)[0]
    if status == 0 and not (np.isfinite(beta_mean) and np.isfinite(weights).all()):
        status = 4
    return status, rule, nodes, weights, rates, _weighted_means(weights, rates), beta_mean, plugin


@numba.njit(cache=True, error_model="numpy")
def _weighted_means(weights, rates):
    """Return ``weights @ rates``, each level's mean kept within the range of its rates.

    The weights sum to 1 only within rounding: where the posterior piles up at a rate of 1
    (every node's ``p_k`` rounds to 1.0), the sum would exceed 1 by an ulp or two.
    """
    means = np.empty(rates.shape[1])
    for k in range(rates.shape[1]):
        total, low, high = 0.0, np.inf, -np.inf
        for i in range(weights.size):
            rate = rates[i, k]
            total += weights[i] * rate
            low, high = min(low, rate), max(high, rate)
        means[k] = min(max(total, low), high)
    return means


@numba.njit(cache=True, error_model="numpy")
def _partial(edge, c, peak, gl_nodes, gl_weights, problem):
    """Unnormalised mass between ``edge`` and ``c`` by Gauss-Legendre on that interval."""
    half = 0.5 * (c - edge)
    total = 0.0
    for q in range(gl_nodes.size):
        beta = edge + half * (gl_nodes[q] + 1.0)
        total += gl_weights[q] * math.exp(_log_density(beta, problem) - peak)
    return half * total


@numba.njit(cache=True, error_model="numpy")
def _mass_below(c, rule, gl_nodes, gl_weights, problem):
    """Unnormalised mass below ``c``: the whole panels below, then the part of its own."""
    edges, peak, cumulative = rule
    panels = cumulative.size - 1
    if c <= edges[0]:
        return 0.0
    if c >= edges[panels]:
        return cumulative[panels]
    p = min(np.searchsorted(edges, c, side="right") - 1, panels - 1)
    return cumulative[p] + _partial(edges[p], c, peak, gl_nodes, gl_weights, problem)


@numba.njit(cache=True, error_model="numpy")
def _cdf(cuts, rule, gl_nodes, gl_weights, problem):
    """``P(beta < cut)`` for each cut."""
    total = rule[2][rule[2].size - 1]
    out = np.empty(cuts.size)
    for i in range(cuts.size):
        out[i] = _mass_below(cuts[i], rule, gl_nodes, gl_weights, problem) / total
    return out


@numba.njit(cache=True, error_model="numpy")
def _prob_above(x, c, rule, gl_nodes, gl_weights, problem):
    """``P(e^beta x_k > c)`` per scaled dose ``x_k`` (:func:`_level_cuts`), within [0, 1].

    ``x``: the problem's scaled doses, or some of them. The rule's error may carry a sum just
    past either end; it is clipped.
    """
    cut, above = _level_cuts(x, c)
    below = _cdf(cut, rule, gl_nodes, gl_weights, problem)
    for k in range(cut.size):
        if above[k]:
            below[k] = 1.0 - below[k]
        below[k] = min(max(below[k], 0.0), 1.0)
    return below


@numba.njit(cache=True, error_model="numpy")
def _closest_below(level, target, rule, gl_nodes, gl_weights, problem):
    """Mass of ``p_{level-1}(beta) + p_level(beta) >= 2 target`` (``p_{-1} = 0``)."""
    edges, _, cumulative = rule
    total = cumulative[cumulative.size - 1]
    threshold = 2.0 * target
    previous = edges[0]
    f_previous = _objective(1, previous, level, threshold, problem)
    start = previous if f_previous >= 0.0 else math.nan
    mass = 0.0
    for i in range(1, 2 * edges.size - 1):
        # The panels' midpoints and edges, in order.
        beta = edges[i // 2] if i % 2 == 0 else 0.5 * (edges[i // 2] + edges[i // 2 + 1])
        value = _objective(1, beta, level, threshold, problem)
        if (value >= 0.0) != (f_previous >= 0.0):
            tolerance = 1e-13 * max(1.0, abs(beta))
            root = _root(1, previous, beta, f_previous, value, level, threshold, problem, tolerance)
            if f_previous >= 0.0:
                mass += _mass_below(root, rule, gl_nodes, gl_weights, problem) - _mass_below(
                    start, rule, gl_nodes, gl_weights, problem
                )
            else:
                start = root
        previous, f_previous = beta, value
    if f_previous >= 0.0:
        mass += total - _mass_below(start, rule, gl_nodes, gl_weights, problem)
    return mass / total


@numba.njit(cache=True, error_model="numpy")
def _rates(nodes, problem):
    """``p_k`` at every node, shape (m, K)."""
    model, x, _, _, a0, _, _ = problem
    out = np.empty((nodes.size, x.size))
    for i in range(nodes.size):
        u = math.exp(nodes[i])
        for k in range(x.size):
            out[i, k] = math.exp(_level_logs(model, a0, u * x[k])[0])
    return out


@numba.njit(cache=True, error_model="numpy")
def _draws(uniforms, rule, gl_nodes, gl_weights, problem):
    """Invert the CDF at each uniform: the panel by its mass, then safeguarded Newton."""
    edges, peak, cumulative = rule
    panels = cumulative.size - 1
    out = np.empty(uniforms.size)
    for i in range(uniforms.size):
        goal = uniforms[i] * cumulative[panels]
        p = 0
        while p < panels - 1 and cumulative[p + 1] <= goal:
            p += 1
        low, high = edges[p], edges[p + 1]
        edge, left = low, goal - cumulative[p]
        share = left / max(cumulative[p + 1] - cumulative[p], 1e-300)
        beta = low + min(max(share, 0.0), 1.0) * (high - low)
        for _ in range(100):
            excess = _partial(edge, beta, peak, gl_nodes, gl_weights, problem) - left
            if excess > 0.0:
                high = beta
            else:
                low = beta
            density = math.exp(_log_density(beta, problem) - peak)
            step = beta - excess / density if density > 0.0 else math.nan
            if not low < step < high:
                step = 0.5 * (low + high)
            if abs(step - beta) <= 1e-12 * max(1.0, abs(beta)):
                beta = step
                break
            beta = step
        out[i] = beta
    return out


@numba.njit(cache=True, error_model="numpy")
def _level_cuts(x, c):
    """Cuts and sides of ``e^beta x_k > c`` per level (see :func:`level_cuts`)."""
    cut = np.empty(x.size)
    above = np.empty(x.size, dtype=np.bool_)
    for k in range(x.size):
        if x[k] == 0.0:
            cut[k] = -math.inf if c < 0.0 else math.inf
            above[k] = True
            continue
        ratio = c / x[k]
        cut[k] = math.log(ratio) if ratio > 0.0 else -math.inf
        above[k] = x[k] > 0.0
    return cut, above


def level_cuts(x: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Where :math:`e^\beta x_k > c`, per level: a half-line of :math:`\beta`.

    :math:`\beta > \log(c / x_k)` when :math:`x_k > 0`, :math:`\beta < \log(c / x_k)` when
    :math:`x_k < 0` (for :math:`c / x_k > 0`; otherwise always, cut :math:`-\infty` above, or
    never, cut :math:`-\infty` below); for :math:`x_k = 0`, whatever :math:`\beta` iff
    :math:`0 > c` (cut :math:`\mp\infty` above).

    Returns
    -------
    cut, above : numpy.ndarray
        Shape (K,) each: the event is :math:`\beta >` ``cut`` where ``above`` else
        :math:`\beta <` ``cut``.
    """
    return _level_cuts(np.asarray(x, dtype=float), float(c))


@dataclass(frozen=True, eq=False)
class CRMQuadrature:
    """The fitted rule of one CRM posterior (build it with :meth:`fit`).

    Attributes
    ----------
    problem : tuple
        ``(model, x, n, y, a0, mu, sd)``: the working model's code (:data:`EMPIRIC`,
        :data:`LOGISTIC`), the scaled doses, patients and DLTs per level, the logistic
        intercept, the prior mean and sd of ``beta``.
    rule : tuple
        ``(edges, peak, cumulative)``: the panels' edges, the peak log density and the
        unnormalised mass below each edge.
    nodes, weights : numpy.ndarray
        The rule's nodes (values of ``beta``) and their normalised weights, shape (m,).
    rates : numpy.ndarray
        ``p_k`` at every node, shape (m, K).
    means : numpy.ndarray
        The posterior mean of ``p_k``, within the range of ``rates``, shape (K,), read-only.
    beta_mean : float
        The posterior mean of ``beta``.
    plugin : numpy.ndarray
        ``p_k`` at ``beta_mean`` (dfcrm's plug-in estimate), shape (K,).
    """

    problem: tuple
    rule: tuple
    nodes: np.ndarray
    weights: np.ndarray
    rates: np.ndarray
    means: np.ndarray
    beta_mean: float
    plugin: np.ndarray

    @classmethod
    def fit(
        cls,
        model: int,
        x: np.ndarray,
        n: np.ndarray,
        y: np.ndarray,
        intercept: float,
        prior_mean: float,
        prior_sd: float,
    ) -> "CRMQuadrature":
        """Fit the rule to the posterior given the patients ``n`` and DLTs ``y`` per level.

        Raises
        ------
        FloatingPointError
            If the log density is NaN, its mass does not fit within ``10 * 2**6`` prior
            scales of the prior mean, it spans more than :data:`_MAX_PANELS` panels, or the
            rule's weights are not finite.
        """
        problem = (
            int(model),
            np.asarray(x, dtype=float),
            np.asarray(n, dtype=float),
            np.asarray(y, dtype=float),
            float(intercept),
            float(prior_mean),
            float(prior_sd),
        )
        status, rule, nodes, weights, rates, means, beta_mean, plugin = _posterior(
            problem, _GL_NODES, _GL_WEIGHTS, _GL_TAIL, PANELS, LOG_DENSITY_DROP, MAX_PANEL_WIDTH
        )
        if status == 1:
            raise FloatingPointError("the CRM's log posterior is NaN at a point of its scan")
        if status == 2:
            raise FloatingPointError(
                "the CRM posterior's mass does not fit within "
                f"{_SCAN_SPAN * 2**_MAX_DOUBLINGS:g} prior scales of the prior mean"
            )
        if status == 3:
            raise FloatingPointError(
                f"the CRM posterior spans more than {_MAX_PANELS} panels of width "
                f"{MAX_PANEL_WIDTH:g} in beta (where the likelihood is flat, the prior alone)"
            )
        if status == 4:  # e.g. a prior so wide that e^beta overflows at the scan's points
            raise FloatingPointError("the CRM posterior's rule has weights that are not finite")
        means.flags.writeable = False  # a memoised posterior hands them out
        return cls(problem, rule, nodes, weights, rates, means, beta_mean, plugin)

    def cdf(self, cuts: np.ndarray) -> np.ndarray:
        """``P(beta < cut)`` for each cut."""
        return _cdf(np.asarray(cuts, dtype=float), self.rule, _GL_NODES, _GL_WEIGHTS, self.problem)

    def prob_above(self, c: float) -> np.ndarray:
        r"""``P(e^beta x_k > c)`` per level, within [0, 1], shape (K,) (:func:`level_cuts`)."""
        x = self.problem[1]
        return _prob_above(x, float(c), self.rule, _GL_NODES, _GL_WEIGHTS, self.problem)

    def prob_above_level(self, c: float, level: int) -> float:
        r"""``P(e^beta x_level > c)``: :meth:`prob_above` at one level (0-based), alone."""
        x = self.problem[1][level : level + 1]
        return float(_prob_above(x, float(c), self.rule, _GL_NODES, _GL_WEIGHTS, self.problem)[0])

    def mass_closest_below(self, level: int, target: float) -> float:
        """``P(p_{level-1} + p_level >= 2 target)`` with ``p_{-1} = 0`` (0-based levels).

        The probability that the level whose rate is closest to ``target`` (the lower one
        among ties; a placebo level of rate 0 below the lowest) is below ``level``.
        """
        rule, problem = self.rule, self.problem
        mass = _closest_below(int(level), float(target), rule, _GL_NODES, _GL_WEIGHTS, problem)
        return min(max(mass, 0.0), 1.0)

    def draws(self, uniforms: np.ndarray) -> np.ndarray:
        """Draws of ``beta`` by inverting the CDF at ``uniforms`` (in [0, 1))."""
        return _draws(
            np.asarray(uniforms, dtype=float), self.rule, _GL_NODES, _GL_WEIGHTS, self.problem
        )
