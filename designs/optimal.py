r"""Optimal approximate designs for the Weibull AFT model: criterion, algorithm, GET, efficiency.

The Weibull D-optimal paper ("adaptive optimal designs for dose-finding studies with Weibull
time-to-event outcomes"; its text names no authors), sections "Optimal designs" to "Designs
with early stopping", and its Discussion.

Approximate designs and the criterion
-------------------------------------
A design :math:`\xi = \{(x_j, w_j)\}` on :math:`\mathcal{X} = [0, 1]` has information
:math:`M(\xi, \theta) = \sum_j w_j M_{x_j}(\theta)` (:meth:`WeibullAFT.information`, eq 6 with the
derived prefactor :math:`1/b^2`). One criterion covers every design of the paper:

.. math::

    \Phi(\xi) = \sum_s \omega_s \log\det\{P_s + N M(\xi, \theta_s)\},

- **locally D-optimal** (the paper's eq before 7): one point :math:`\theta`, :math:`P = 0`;
- **MLE updating** (eq 8): :math:`\theta = \hat\theta_{MLE}^{(k-1)}`,
  :math:`P = M_{obs}` the observed information of the earlier cohorts at the MLE and
  :math:`N = n^{(k)}` the new stage's size (the paper leaves this scale implicit: the expected
  information of :math:`n^{(k)}` patients is :math:`n^{(k)} M(\xi, \theta)`);
- **Bayesian updating** (Discussion): points :math:`\theta_s` of a posterior (draws of a PyMC
  fit, equally weighted) and :math:`P_s = n_{prev} M(\tilde\xi_{prev}, \theta_s)`, the expected
  information of the earlier patients' realised allocation at each draw (``accrued="none"``
  gives the paper's literal formula :math:`\int \log|M(\xi, \theta)| \pi(\theta \mid
  \text{data}) d\theta`).

The directional derivative of :math:`\Phi` at :math:`\xi` towards the one-point design at
:math:`x` is the **sensitivity function**

.. math::

    d(x, \xi) = \sum_s \omega_s N \left[\operatorname{tr}\{Q_s^{-1} M_x(\theta_s)\} -
    \operatorname{tr}\{Q_s^{-1} M(\xi, \theta_s)\}\right], \qquad Q_s = P_s + N M(\xi, \theta_s),

which for the local criterion is the paper's :math:`\operatorname{tr}\{M^{-1}(\xi, \theta)
M_x(\theta)\} - k`. **General equivalence theorem** (Kiefer-Wolfowitz; the paper's (a)-(c)):
:math:`\xi` maximises :math:`\Phi` iff :math:`\max_x d(x, \xi) \le 0`, with equality at the
support points. (The paper prints the identity :math:`\operatorname{tr}\{M^{-1}(\xi_U) M_x\} =
72 x (x - 0.5)^2 (x - 1)` for the uniform design without censoring; it is
:math:`\operatorname{tr}\{\cdot\} - 4` that equals the polynomial.)

Algorithm
---------
1. On a grid of ``grid_size`` doses (or the finite ``candidates``), the weights are optimised by
   Frank-Wolfe vertex-direction steps alternating with vertex-exchange (pairwise) steps
   (Böhning 1986), each with an exact line search (Newton on the concave
   :math:`t \mapsto \Phi`), from equal weights (or random weights: ``random_seed``), until
   :math:`\max_{grid} d \le` ``grid_tol``.
2. Continuous refinement: the grid support is merged into clusters (adjacent grid points), and
   locations and weights are optimised jointly by L-BFGS-B on :math:`(x_j, z_j)`,
   :math:`w = \operatorname{softmax}(z)`, with the analytic gradients
   :math:`\partial\Phi / \partial w_j = \sum_s \omega_s N \operatorname{tr}(Q_s^{-1}
   M_{x_j})` and :math:`\partial\Phi / \partial x_j = w_j \sum_s \omega_s N
   \operatorname{tr}(Q_s^{-1} \partial M_{x_j} / \partial x)`.
3. GET check: :math:`d` on 201 doses, the four best local maxima refined by golden-section
   search;
   if :math:`\max d >` ``tol``, the maximiser joins the support and step 2 repeats.

Rounding and randomisation
--------------------------
:func:`efficient_rounding` turns weights into counts for :math:`n` patients (Pukelsheim and
Rieder 1992). Within a stage, patients are randomised to the stage's doses one by one with the
design's weights (the paper: "the randomization probabilities were applied individually to
every subject"); ``allocation="rounded"`` allocates the efficiently rounded counts in a random
order instead.

The multi-stage adaptive designs built on these are in :mod:`dosezoo.designs.d_optimal`.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import xarray as xr
from numba import njit

from dosezoo.checks import integer, positive_int, positive_number, real_array
from dosezoo.models.weibull_aft import WeibullAFT, WeibullPosterior, information_kernel
from dosezoo.scenarios.weibull import WeibullScenario

__all__ = [
    "ApproximateDesign",
    "OptimalDesign",
    "RealisedEfficiency",
    "bayesian_d_optimal",
    "d_efficiency",
    "efficient_rounding",
    "equivalence_check",
    "information_matrix",
    "locally_d_optimal",
    "optimal_design",
    "sensitivity",
    "uniform_design",
    "with_reference",
]

_DROP = 1e-9
#: Smallest Cholesky pivot, as a share of its diagonal entry, of a matrix taken as regular.
_PIVOT_SHARE = 1e-10


# ---------------------------------------------------------------------------- designs


@dataclass(frozen=True, eq=False)
class ApproximateDesign:
    r"""An approximate design :math:`\xi`: doses and their weights.

    Parameters
    ----------
    support : array_like
        Distinct doses (sorted on construction; equal doses are merged).
    weights : array_like
        Non-negative weights summing to 1 (to 1e-9; renormalised).

    Raises
    ------
    ValueError
        Naming the field at fault.
    """

    support: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        """Validate, sort and merge."""
        owner = type(self).__name__
        support = real_array(owner, "support", self.support)
        weights = real_array(owner, "weights", self.weights)
        if support.size == 0:
            raise ValueError(f"{owner}: support must hold at least one dose")
        if support.shape != weights.shape:
            raise ValueError(
                f"{owner}: support has {support.size} doses but weights has {weights.size}"
            )
        if not np.all(np.isfinite(support)):
            raise ValueError(f"{owner}: support must be finite, got {support.tolist()}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"{owner}: weights must be finite and >= 0, got {weights.tolist()}")
        total = weights.sum()
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"{owner}: weights must sum to 1, got {total!r}")
        order = np.argsort(support, kind="stable")
        support, weights = support[order], weights[order] / total
        keep = np.concatenate([[True], np.diff(support) > 0])
        merged = np.add.reduceat(weights, np.flatnonzero(keep))
        object.__setattr__(self, "support", support[keep])
        object.__setattr__(self, "weights", merged)

    def __len__(self) -> int:
        """Return the number of support points."""
        return int(self.support.size)

    def __eq__(self, other: object) -> bool:
        """Whether ``other`` is the same kind of design with the same doses and weights."""
        if type(other) is not type(self):
            return NotImplemented
        return bool(
            np.array_equal(self.support, other.support)
            and np.array_equal(self.weights, other.weights)
        )

    def __hash__(self) -> int:
        """Hash of the doses and weights."""
        return hash((tuple(self.support.tolist()), tuple(self.weights.tolist())))

    def counts(self, n: int) -> np.ndarray:
        """Patients per support point for ``n`` patients (:func:`efficient_rounding`)."""
        return efficient_rounding(self.weights, n)

    def allocate(self, uniforms: np.ndarray, *, rounded: bool = False) -> np.ndarray:
        """Doses of patients with randomisation uniforms ``uniforms`` (one per patient).

        Each patient independently gets dose :math:`x_j` with probability :math:`w_j`
        (inverse CDF of ``uniforms``); ``rounded``: the efficiently rounded counts, in the
        random order of ``uniforms``.
        """
        u = real_array("ApproximateDesign.allocate", "uniforms", uniforms)
        if not np.all((u >= 0.0) & (u < 1.0)):  # NaN and 7 would get the highest dose
            raise ValueError(
                "ApproximateDesign.allocate: uniforms must lie in [0, 1), got "
                f"{u[~((u >= 0.0) & (u < 1.0))][:5].tolist()}"
            )
        if rounded:
            counts = self.counts(u.size)
            doses = np.repeat(self.support, counts)
            return doses[np.argsort(np.argsort(u, kind="stable"), kind="stable")]
        index = np.searchsorted(np.cumsum(self.weights), u, side="right")
        return self.support[np.minimum(index, self.support.size - 1)]

    def quantities(self) -> dict[str, float]:
        """Support and weights as flat quantities (``support_<j>``, ``weight_<j>``)."""
        record: dict[str, float] = {"n_support": float(len(self))}
        for j, (x, w) in enumerate(zip(self.support, self.weights, strict=True)):
            record[f"support_{j}"] = float(x)
            record[f"weight_{j}"] = float(w)
        return record

    def __repr__(self) -> str:
        """Show the design as ``{x: w, ...}``."""
        body = ", ".join(
            f"{x:.4g}: {w:.4g}" for x, w in zip(self.support, self.weights, strict=True)
        )
        return f"{type(self).__name__}({{{body}}})"


@dataclass(frozen=True, eq=False, repr=False)
class OptimalDesign(ApproximateDesign):
    r"""An optimised design with its criterion and equivalence-theorem check.

    Attributes
    ----------
    criterion : float
        :math:`\\Phi(\\xi)` (for a local design, :math:`\\log\\det M(\\xi, \\theta)`).
    get_max : float
        :math:`\\max_x d(x, \\xi)` over the design space (<= ``tol`` at the optimum).
    get_argmax : float
        Where it is attained.
    iterations : int
        Grid iterations plus refinement rounds.
    """

    criterion: float = math.nan
    get_max: float = math.nan
    get_argmax: float = math.nan
    iterations: int = 0

    def quantities(self) -> dict[str, float]:
        """Support, weights, the criterion and the GET maximum as flat quantities."""
        return super().quantities() | {"criterion": self.criterion, "get_max": self.get_max}


def uniform_design(doses: Sequence[float] = (0.0, 0.5, 1.0)) -> ApproximateDesign:
    """Equal weights on ``doses`` (the paper's eq 7 by default)."""
    points = real_array("uniform_design", "doses", doses)
    if points.size == 0:
        raise ValueError(f"uniform_design: doses must hold at least one dose, got {doses!r}")
    if np.unique(points).size != points.size:  # a dose twice would get twice the weight
        raise ValueError(f"uniform_design: doses must be distinct, got {points.tolist()}")
    return ApproximateDesign(points, np.full(points.size, 1.0 / points.size))


def efficient_rounding(weights: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    r"""Efficient rounding of weights to counts summing to ``n`` (Pukelsheim and Rieder 1992).

    :math:`n_j = \lceil (n - \ell/2) w_j \rceil` for the :math:`\ell` points with
    :math:`w_j > 0`, then counts are added where :math:`n_j / w_j` is smallest, or removed
    where :math:`(n_j - 1) / w_j` is largest, until they sum to ``n``.
    """
    owner = "efficient_rounding"
    n = positive_int(owner, "n", n)
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or not w.size or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{owner}: weights must be finite and >= 0, at least one, got {weights!r}")
    if not math.isclose(float(w.sum()), 1.0, rel_tol=1e-3):  # weights printed to 4 digits
        raise ValueError(f"{owner}: weights must sum to 1, got {float(w.sum())!r}")
    positive = w > 0
    counts = np.zeros(w.size, dtype=np.int64)
    counts[positive] = np.ceil((n - positive.sum() / 2.0) * w[positive]).astype(np.int64)
    safe = np.where(positive, w, 1.0)
    index = np.arange(w.size)
    while counts.sum() < n:  # ties: the larger weight, then the first point
        ratio = np.where(positive, counts / safe, np.inf)
        counts[int(np.lexsort((index, -w, ratio))[0])] += 1
    while counts.sum() > n:  # ties: the smaller weight, then the last point
        ratio = np.where(positive & (counts > 0), (counts - 1) / safe, -np.inf)
        counts[int(np.lexsort((-index, w, -ratio))[0])] -= 1
    return counts


# ---------------------------------------------------------------------------- kernels


@njit(cache=True)
def _inverse(q: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Inverse and log-determinant of a small SPD matrix by Cholesky; ``ok`` False if not SPD.

    A pivot is the share of its diagonal entry the earlier columns leave unexplained
    (:math:`1 - R^2`) times that entry; one below :data:`_PIVOT_SHARE` of the entry is a
    column the earlier ones determine to rounding: the matrix is taken as singular. (A
    matrix of rank 2 of 4, from one dose with censoring, left pivots of 1e-17 that a
    positivity test accepted, and a singular design came out "optimal".) The share does not
    depend on the units of the parameters.
    """
    k = q.shape[0]
    low = np.zeros((k, k))
    for j in range(k):
        total = q[j, j]
        for c in range(j):
            total -= low[j, c] * low[j, c]
        if not total > _PIVOT_SHARE * q[j, j]:
            return low, -np.inf, False
        low[j, j] = math.sqrt(total)
        for i in range(j + 1, k):
            total = q[i, j]
            for c in range(j):
                total -= low[i, c] * low[j, c]
            low[i, j] = total / low[j, j]
    logdet = 0.0
    for j in range(k):
        logdet += 2.0 * math.log(low[j, j])
    # inverse of the triangle, then inv(q) = inv(L)' inv(L)
    inv_low = np.zeros((k, k))
    for j in range(k):
        inv_low[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, k):
            total = 0.0
            for c in range(j, i):
                total -= low[i, c] * inv_low[c, j]
            inv_low[i, j] = total / low[i, i]
    inverse = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            total = 0.0
            for c in range(j, k):
                total += inv_low[c, i] * inv_low[c, j]
            inverse[i, j] = total
            inverse[j, i] = total
    return inverse, logdet, True


@njit(cache=True)
def _trace_product(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`\\operatorname{tr}(A B)`."""
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j] * b[j, i]
    return total


@njit(cache=True)
def _line_search(q: np.ndarray, d: np.ndarray, omega: np.ndarray, t_max: float) -> float:
    r"""Maximise the concave :math:`\sum_s \omega_s \log\det(Q_s + t D_s)` over [0, t_max].

    With :math:`Q_s = L L'` and :math:`C = L^{-1} D_s L^{-T}`,
    :math:`\det(Q_s + t D_s) = \det Q_s \, p_s(t)`, :math:`p_s(t) = \det(I + t C) =
    \sum_m e_m t^m`, whose coefficients (the elementary symmetric functions of the eigenvalues
    of :math:`C`) follow from :math:`\operatorname{tr} C^i` by Newton's identities. The
    maximiser of :math:`\sum_s \omega_s \log p_s(t)` is then found by safeguarded Newton on
    scalars.
    """
    count, k, _ = q.shape
    coef = np.zeros((count, k + 1))
    for s in range(count):
        inv, _, ok = _inverse(q[s])
        if not ok:
            return 0.0
        product = inv @ d[s]  # similar to C: same characteristic polynomial
        power = product.copy()
        traces = np.zeros(k + 1)
        for i in range(1, k + 1):
            if i > 1:
                power = power @ product
            traces[i] = np.trace(power)
        coef[s, 0] = 1.0
        for m in range(1, k + 1):
            total = 0.0
            sign = 1.0
            for i in range(1, m + 1):
                total += sign * coef[s, m - i] * traces[i]
                sign = -sign
            coef[s, m] = total / m

    def derivatives(t: float) -> tuple[float, float, bool]:
        g = 0.0
        h = 0.0
        for s in range(count):
            p = 0.0
            dp = 0.0
            ddp = 0.0
            for m in range(k, -1, -1):
                ddp = ddp * t + 2.0 * dp
                dp = dp * t + p
                p = p * t + coef[s, m]
            if not p > 0.0:
                return -np.inf, -np.inf, False
            g += omega[s] * dp / p
            h += omega[s] * (ddp * p - dp * dp) / (p * p)
        return g, h, True

    g0, h0, _ = derivatives(0.0)
    if g0 <= 0.0:
        return 0.0
    # The end point exactly (the polynomial loses precision where Q + tD turns singular).
    g1 = 0.0
    ok = True
    for s in range(count):
        inv, _, fine = _inverse(q[s] + t_max * d[s])
        if not fine:
            ok = False
            break
        g1 += omega[s] * _trace_product(inv, d[s])
    if ok and g1 >= 0.0:
        return t_max
    lo, hi = 0.0, t_max
    t = -g0 / h0 if h0 < 0.0 else 0.5 * t_max
    for _ in range(100):
        if not lo < t < hi:
            t = 0.5 * (lo + hi)
        g, h, ok = derivatives(t)
        if ok and abs(g) <= 1e-13 * g0:
            return t
        if not ok or g < 0.0:
            hi = t
        else:
            lo = t
        if hi - lo <= 1e-14 * t_max:
            return lo
        t = t - g / h if ok and h < 0.0 else 0.5 * (lo + hi)
    return lo


@njit(cache=True)
def _accumulate(info: np.ndarray, prior: np.ndarray, scale: float, w: np.ndarray) -> np.ndarray:
    r""":math:`Q_s = P_s + N \sum_i w_i M_{s,i}` for every point s."""
    count, size, k, _ = info.shape
    q = prior.copy()
    for s in range(count):
        for i in range(size):
            weight = scale * w[i]
            if weight > 0.0:
                for a in range(k):
                    for b in range(k):
                        q[s, a, b] += weight * info[s, i, a, b]
    return q


@njit(cache=True)
def _gradient(info: np.ndarray, q: np.ndarray, omega: np.ndarray, scale: float) -> tuple:
    r""":math:`g_i = \sum_s \omega_s N \operatorname{tr}(Q_s^{-1} M_{s,i})` and the criterion."""
    count, size, k, _ = info.shape
    g = np.zeros(size)
    value = 0.0
    for s in range(count):
        inv, logdet, ok = _inverse(q[s])
        if not ok:
            return g, -np.inf
        value += omega[s] * logdet
        factor = omega[s] * scale
        for i in range(size):
            total = 0.0
            for a in range(k):
                for b in range(k):
                    total += inv[a, b] * info[s, i, b, a]
            g[i] += factor * total
    return g, value


@njit(cache=True)
def _optimise_weights(
    info: np.ndarray,
    prior: np.ndarray,
    omega: np.ndarray,
    scale: float,
    w: np.ndarray,
    max_iter: int,
    tol: float,
    multiplicative: int = 0,
) -> tuple[np.ndarray, float, float, int]:
    r"""Frank-Wolfe steps alternating with vertex exchanges, each with an exact line search.

    Returns the weights, the criterion, the gap :math:`\\max_i d_i` and the iterations.
    """
    count, size, k, _ = info.shape
    w = w.copy()
    q = _accumulate(info, prior, scale, w)
    gap = np.inf
    value = -np.inf
    iteration = 0
    direction = np.empty((count, k, k))
    # Multiplicative warm-up (w_i <- w_i g_i / sum_j w_j g_j; Silvey, Titterington and Torsney
    # 1978) while it improves the criterion and the gap is large: it drains every poor dose
    # at once, which exchange steps do one at a time.
    previous = -np.inf
    for _ in range(multiplicative):
        g, value = _gradient(info, q, omega, scale)
        if not np.isfinite(value) or value < previous:
            break
        average = np.dot(w, g)
        if g.max() - average <= 0.05 or average <= 0.0:
            break
        previous = value
        trial = w * g / average
        w = trial / trial.sum()
        q = _accumulate(info, prior, scale, w)
    for iteration in range(1, max_iter + 1):
        g, value = _gradient(info, q, omega, scale)
        if not np.isfinite(value):
            return w, value, np.inf, iteration
        average = 0.0
        for i in range(size):
            average += w[i] * g[i]
        best = int(np.argmax(g))
        gap = g[best] - average
        if gap <= tol:
            break
        worst = -1
        for i in range(size):
            if w[i] > 0.0 and i != best and (worst < 0 or g[i] < g[worst]):
                worst = i
        if iteration % 2 == 1 or worst < 0:
            for s in range(count):
                direction[s] = scale * info[s, best] - (q[s] - prior[s])
            t = _line_search(q, direction, omega, 1.0)
            for i in range(size):
                w[i] *= 1.0 - t
            w[best] += t
        else:
            for s in range(count):
                direction[s] = scale * (info[s, best] - info[s, worst])
            t = _line_search(q, direction, omega, w[worst])
            if t >= w[worst] * (1.0 - 1e-12):
                t = w[worst]
            w[worst] -= t
            w[best] += t
        for i in range(size):
            if w[i] < 1e-15:
                w[i] = 0.0
        w /= w.sum()
        q = _accumulate(info, prior, scale, w)
    return w, value, gap, iteration


@njit(cache=True)
def _solve(matrix: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, bool]:
    """Gaussian elimination with partial pivoting for a small system."""
    size = rhs.size
    a = matrix.copy()
    b = rhs.copy()
    for c in range(size):
        pivot = c
        for r in range(c + 1, size):
            if abs(a[r, c]) > abs(a[pivot, c]):
                pivot = r
        if abs(a[pivot, c]) < 1e-300:
            return b, False
        if pivot != c:
            for j in range(size):
                a[c, j], a[pivot, j] = a[pivot, j], a[c, j]
            b[c], b[pivot] = b[pivot], b[c]
        for r in range(c + 1, size):
            factor = a[r, c] / a[c, c]
            for j in range(c, size):
                a[r, j] -= factor * a[c, j]
            b[r] -= factor * b[c]
    for c in range(size - 1, -1, -1):
        total = b[c]
        for j in range(c + 1, size):
            total -= a[c, j] * b[j]
        b[c] = total / a[c, c]
    return b, True


@njit(cache=True)
def _newton_weights(
    info: np.ndarray,
    prior: np.ndarray,
    omega: np.ndarray,
    scale: float,
    w: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, float, float]:
    """Optimise the weights on a few fixed doses: Newton on the simplex (KKT system).

    An active set drops doses whose weight reaches 0; a Frank-Wolfe step brings back a dose
    whose directional derivative is positive. Returns the weights, the criterion and the gap.
    """
    count, size, k, _ = info.shape
    w = w.copy()
    value = -np.inf
    gap = np.inf
    direction = np.empty((count, k, k))
    for _ in range(max_iter):
        q = _accumulate(info, prior, scale, w)
        inverses = np.empty_like(q)
        value = 0.0
        for s in range(count):
            inverses[s], logdet, ok = _inverse(q[s])
            if not ok:
                return w, -np.inf, np.inf
            value += omega[s] * logdet
        g = np.zeros(size)
        products = np.empty((count, size, k, k))
        for s in range(count):
            for i in range(size):
                products[s, i] = inverses[s] @ info[s, i]
                g[i] += omega[s] * scale * np.trace(products[s, i])
        average = np.dot(w, g)
        best = int(np.argmax(g))
        gap = g[best] - average
        if gap <= tol:
            break
        if w[best] == 0.0:
            for s in range(count):
                direction[s] = scale * info[s, best] - (q[s] - prior[s])
            t = _line_search(q, direction, omega, 1.0)
            w *= 1.0 - t
            w[best] += t
            continue
        active = np.flatnonzero(w > 0.0)
        m = active.size
        system = np.zeros((m + 1, m + 1))
        rhs = np.zeros(m + 1)
        for a in range(m):
            i = active[a]
            rhs[a] = -g[i]
            system[a, m] = 1.0
            system[m, a] = 1.0
            for c in range(a, m):
                j = active[c]
                total = 0.0
                for s in range(count):
                    total -= (
                        omega[s] * scale * scale * _trace_product(products[s, i], products[s, j])
                    )
                system[a, c] = total
                system[c, a] = total
        solution, ok = _solve(system, rhs)
        if not ok:
            break
        step = solution[:m]
        limit = 1.0
        for a in range(m):
            if step[a] < 0.0:
                limit = min(limit, -w[active[a]] / step[a])
        alpha = limit
        accepted = False
        for _ in range(40):
            trial = w.copy()
            for a in range(m):
                trial[active[a]] += alpha * step[a]
            for i in range(size):
                if trial[i] < 1e-14:
                    trial[i] = 0.0
            trial /= trial.sum()
            q_trial = _accumulate(info, prior, scale, trial)
            trial_value = 0.0
            fine = True
            for s in range(count):
                _, logdet, ok = _inverse(q_trial[s])
                if not ok:
                    fine = False
                    break
                trial_value += omega[s] * logdet
            if fine and trial_value >= value:
                accepted = trial_value > value + 1e-15 * abs(value)
                w = trial
                break
            alpha *= 0.5
        if not accepted:
            break
    return w, value, gap


@njit(cache=True)
def _directional(
    info: np.ndarray, inverses: np.ndarray, omega: np.ndarray, scale: float, baseline: float
) -> np.ndarray:
    """:math:`d(x)` at the doses of ``info`` (S, n, k, k) given :math:`Q_s^{-1}`."""
    count, size, k, _ = info.shape
    out = np.full(size, -baseline)
    for s in range(count):
        factor = omega[s] * scale
        for i in range(size):
            total = 0.0
            for a in range(k):
                for b in range(k):
                    total += inverses[s, a, b] * info[s, i, b, a]
            out[i] += factor * total
    return out


@njit(cache=True)
def _state(
    x: np.ndarray,
    w: np.ndarray,
    thetas: np.ndarray,
    log_tau: float,
    prior: np.ndarray,
    omega: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, float, float]:
    r""":math:`Q_s^{-1}`, the criterion and :math:`\\sum_j w_j g(x_j)` of the design (x, w)."""
    info, _ = information_kernel(x, thetas, log_tau, False)
    q = _accumulate(info, prior, scale, w)
    g, value = _gradient(info, q, omega, scale)
    inverses = np.empty_like(q)
    for s in range(q.shape[0]):
        inverses[s] = _inverse(q[s])[0]
    return inverses, value, float(np.dot(w, g))


@njit(cache=True)
def _get_kernel(
    x: np.ndarray,
    w: np.ndarray,
    thetas: np.ndarray,
    log_tau: float,
    prior: np.ndarray,
    omega: np.ndarray,
    scale: float,
    lo: float,
    hi: float,
    n_grid: int,
) -> tuple[float, float]:
    r""":math:`\\max_x d(x, \\xi)` on [lo, hi]: a grid, its four best local maxima refined."""
    inverses, _, baseline = _state(x, w, thetas, log_tau, prior, omega, scale)
    grid = np.linspace(lo, hi, n_grid)
    values = _directional(
        information_kernel(grid, thetas, log_tau, False)[0], inverses, omega, scale, baseline
    )
    peaks = np.zeros(n_grid, dtype=np.bool_)
    for i in range(n_grid):
        left = i == 0 or values[i] >= values[i - 1]
        right = i == n_grid - 1 or values[i] >= values[i + 1]
        peaks[i] = left and right
    order = np.argsort(-values)
    best = -np.inf
    where = lo
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    probe = np.empty(1)
    found = 0
    for index in order:
        if not peaks[index]:
            continue
        found += 1
        if found > 4:
            break
        if values[index] > best:
            best, where = values[index], grid[index]
        a = grid[max(index - 1, 0)]
        b = grid[min(index + 1, n_grid - 1)]
        c = b - ratio * (b - a)
        e = a + ratio * (b - a)
        probe[0] = c
        fc = _directional(
            information_kernel(probe, thetas, log_tau, False)[0], inverses, omega, scale, baseline
        )[0]
        probe[0] = e
        fe = _directional(
            information_kernel(probe, thetas, log_tau, False)[0], inverses, omega, scale, baseline
        )[0]
        for _ in range(40):
            if fc > fe:
                b, e, fe = e, c, fc
                c = b - ratio * (b - a)
                probe[0] = c
                fc = _directional(
                    information_kernel(probe, thetas, log_tau, False)[0],
                    inverses,
                    omega,
                    scale,
                    baseline,
                )[0]
            else:
                a, c, fc = c, e, fe
                e = a + ratio * (b - a)
                probe[0] = e
                fe = _directional(
                    information_kernel(probe, thetas, log_tau, False)[0],
                    inverses,
                    omega,
                    scale,
                    baseline,
                )[0]
        if fc > best:
            best, where = fc, c
        if fe > best:
            best, where = fe, e
    return best, where


@njit(cache=True)
def _point_slope(
    q: np.ndarray,
    own: np.ndarray,
    x_new: float,
    weight: float,
    thetas: np.ndarray,
    log_tau: float,
    omega: np.ndarray,
    scale: float,
) -> tuple[float, float, bool]:
    """Return the criterion and its derivative when one support point moves to ``x_new``.

    ``own`` is the point's information at its current dose, ``weight`` its weight.
    """
    probe = np.array([x_new])
    info, slope = information_kernel(probe, thetas, log_tau, True)
    value = 0.0
    derivative = 0.0
    for s in range(q.shape[0]):
        moved = q[s] + scale * weight * (info[s, 0] - own[s])
        inv, logdet, ok = _inverse(moved)
        if not ok:
            return -np.inf, 0.0, False
        value += omega[s] * logdet
        derivative += omega[s] * scale * weight * _trace_product(inv, slope[s, 0])
    return value, derivative, True


@njit(cache=True)
def _refine_kernel(
    x: np.ndarray,
    w: np.ndarray,
    thetas: np.ndarray,
    log_tau: float,
    prior: np.ndarray,
    omega: np.ndarray,
    scale: float,
    lo: float,
    hi: float,
    max_rounds: int,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Alternate exact weights (fixed doses) and a safeguarded Newton step per dose.

    The second derivative of the criterion in a dose is the central difference of its
    analytic first derivative.
    """
    x = x.copy()
    w = w.copy()
    value = -np.inf
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        info, _ = information_kernel(x, thetas, log_tau, False)
        w, value, gap = _newton_weights(info, prior, omega, scale, w, 100, 1e-13)
        keep = w > 1e-10
        merged = np.zeros(x.size, dtype=np.bool_)
        for j in range(1, x.size):
            if keep[j] and keep[j - 1] and x[j] - x[j - 1] < 1e-7:
                w[j - 1] += w[j]
                merged[j] = True
        keep &= ~merged
        if not np.all(keep):
            x = x[keep].copy()
            w = w[keep].copy()
            w /= w.sum()
            continue
        q = _accumulate(info, prior, scale, w)
        biggest = 0.0
        for j in range(x.size):
            own = info[:, j].copy()
            base, g, _ = _point_slope(q, own, x[j], w[j], thetas, log_tau, omega, scale)
            h = 1e-5
            up = min(x[j] + h, hi)
            down = max(x[j] - h, lo)
            _, g_up, ok_up = _point_slope(q, own, up, w[j], thetas, log_tau, omega, scale)
            _, g_down, ok_down = _point_slope(q, own, down, w[j], thetas, log_tau, omega, scale)
            curvature = (g_up - g_down) / (up - down) if ok_up and ok_down and up > down else 0.0
            if curvature < 0.0:
                step = -g / curvature
            else:
                step = 0.02 if g > 0 else -0.02
            step = max(-0.1, min(0.1, step))
            left = lo if j == 0 else 0.5 * (x[j - 1] + x[j])
            right = hi if j == x.size - 1 else 0.5 * (x[j] + x[j + 1])
            target = max(left, min(right, x[j] + step))
            if target == x[j]:
                continue
            if abs(target - x[j]) > 1e-9:
                for _ in range(30):
                    trial, _, ok = _point_slope(q, own, target, w[j], thetas, log_tau, omega, scale)
                    if ok and trial >= base - 1e-14 * abs(base):
                        break
                    target = 0.5 * (target + x[j])
                else:
                    continue
            moved, _ = information_kernel(np.array([target]), thetas, log_tau, False)
            for s in range(q.shape[0]):
                q[s] += scale * w[j] * (moved[s, 0] - own[s])
            biggest = max(biggest, abs(target - x[j]))
            x[j] = target
        order = np.argsort(x)
        x = x[order].copy()
        w = w[order].copy()
        if biggest < 1e-10 and gap < 1e-11:
            break
    info, _ = information_kernel(x, thetas, log_tau, False)
    w, value, gap = _newton_weights(info, prior, omega, scale, w, 100, 1e-13)
    keep = w > 1e-10
    x = x[keep].copy()
    w = w[keep] / w[keep].sum()
    return x, w, value, rounds


# ---------------------------------------------------------------------------- criterion


@dataclass(frozen=True, eq=False)
class _Criterion:
    r""":math:`\\Phi(\\xi) = \\sum_s \\omega_s \\log\\det(P_s + N M(\\xi, \\theta_s))`."""

    model: WeibullAFT
    thetas: np.ndarray
    omega: np.ndarray
    tau: float | None
    prior: np.ndarray
    scale: float

    @property
    def log_tau(self) -> float:
        return math.inf if self.tau is None else math.log(self.tau)

    def info(self, doses: np.ndarray, slope: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return self.model.information_points(
            np.asarray(doses, float), self.thetas, self.tau, slope=slope
        )

    def state(self, support: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float, float]:
        r"""Inverses of :math:`Q_s`, the criterion and :math:`\\sum_j w_j g(x_j)`."""
        return _state(
            np.asarray(support, float),
            np.asarray(weights, float),
            self.thetas,
            self.log_tau,
            self.prior,
            self.omega,
            self.scale,
        )

    def sensitivity(self, design: ApproximateDesign, doses: np.ndarray) -> np.ndarray:
        inverses, _, baseline = self.state(design.support, design.weights)
        return _directional(self.info(doses)[0], inverses, self.omega, self.scale, baseline)

    def get_maximum(self, design: ApproximateDesign, lo: float, hi: float) -> tuple[float, float]:
        best, where = _get_kernel(
            np.asarray(design.support, float),
            np.asarray(design.weights, float),
            self.thetas,
            self.log_tau,
            self.prior,
            self.omega,
            self.scale,
            lo,
            hi,
            201,
        )
        return float(best), float(where)


def _criterion(
    model: WeibullAFT,
    thetas: np.ndarray,
    tau: float | None,
    *,
    omega: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    scale: float = 1.0,
) -> _Criterion:
    if not isinstance(model, WeibullAFT):
        raise TypeError(f"the Weibull designs need a WeibullAFT model, got {model!r}")
    model._no_covariates("an optimal design")
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    if not np.all(np.isfinite(thetas)) or np.any(thetas[:, -1] <= 0):
        raise ValueError("the parameter points must be finite with b > 0")
    count, k = thetas.shape
    if k != model.n_parameters:
        raise ValueError(f"the parameter points must have {model.n_parameters} values, got {k}")
    thetas = np.ascontiguousarray(thetas)
    omega = np.full(count, 1.0 / count) if omega is None else np.asarray(omega, float)
    if omega.shape != (count,) or np.any(omega < 0) or not np.isclose(omega.sum(), 1.0):
        raise ValueError(f"the point weights must be {count} non-negative numbers summing to 1")
    if prior is None:
        prior = np.zeros((count, k, k))
    else:
        prior = np.asarray(prior, dtype=float)
        prior = np.broadcast_to(prior, (count, k, k)).copy() if prior.ndim == 2 else prior
        if prior.shape != (count, k, k):
            raise ValueError(f"prior_information must be ({k}, {k}) or ({count}, {k}, {k})")
        # An information matrix: finite, symmetric and positive semi-definite (one triangle
        # of an asymmetric one would be read silently; a NaN made every design "singular").
        for s, matrix in enumerate(prior):
            where = f"prior_information[{s}]" if count > 1 else "prior_information"
            if not np.all(np.isfinite(matrix)):
                raise ValueError(f"{where} must be finite, got {matrix.tolist()}")
            if not np.allclose(matrix, matrix.T, rtol=1e-10, atol=0.0):
                raise ValueError(f"{where} must be symmetric, got {matrix.tolist()}")
            smallest = float(np.linalg.eigvalsh(matrix)[0])
            if smallest < -1e-10 * max(float(np.abs(matrix).max()), 1e-300):
                raise ValueError(
                    f"{where} must be positive semi-definite (an information matrix); its "
                    f"smallest eigenvalue is {smallest:g}"
                )
    if tau is not None:
        tau = positive_number("optimal_design", "tau", tau)
    scale = positive_number("optimal_design", "stage_size", scale)
    return _Criterion(model, thetas, omega, tau, np.ascontiguousarray(prior), scale)


# ---------------------------------------------------------------------------- optimiser


def optimal_design(
    model: WeibullAFT,
    thetas: np.ndarray,
    tau: float | None = None,
    *,
    point_weights: np.ndarray | None = None,
    prior_information: np.ndarray | None = None,
    stage_size: float = 1.0,
    candidates: Sequence[float] | None = None,
    grid_size: int = 51,
    grid_tol: float = 1e-2,
    tol: float = 1e-7,
    start: ApproximateDesign | None = None,
    random_seed: int | None = None,
    max_rounds: int = 6,
) -> OptimalDesign:
    r"""Maximise :math:`\Phi(\xi) = \sum_s \omega_s \log\det\{P_s + N M(\xi, \theta_s)\}`.

    Parameters
    ----------
    model : WeibullAFT
        The model (without covariates).
    thetas : array_like
        Parameter points, (S, k) (or one vector).
    tau : float or None
        Type I censoring time of the patients to be allocated; None: no censoring.
    point_weights : array_like, optional
        :math:`\omega_s` (equal by default).
    prior_information : array_like, optional
        :math:`P_s`, (k, k) or (S, k, k); zero by default.
    stage_size : float
        :math:`N`, the patients to be allocated (scales :math:`M` against :math:`P`).
    candidates : sequence of float, optional
        A finite design space (no continuous refinement); by default the model's
        ``dose_range``.
    grid_size : int
        Grid of step 1 (the continuous case).
    grid_tol, tol : float
        Gap of step 1; GET tolerance of the result (:math:`\max_x d \le` ``tol``).
    start : ApproximateDesign, optional
        Starting weights on the grid: the grid points nearest its support.
    random_seed : int, optional
        Random (Dirichlet) starting weights on the grid instead of equal ones.
    max_rounds : int
        Refinement rounds that may add a support point.

    Returns
    -------
    OptimalDesign
    """
    criterion = _criterion(
        model, thetas, tau, omega=point_weights, prior=prior_information, scale=stage_size
    )
    owner = "optimal_design"
    for name, value in (("grid_tol", grid_tol), ("tol", tol)):
        positive_number(owner, name, value)
    max_rounds = integer(owner, "max_rounds", max_rounds, minimum=1)
    if start is not None and not isinstance(start, ApproximateDesign):
        raise ValueError(f"{owner}: start must be an ApproximateDesign, got {start!r}")
    lo, hi = model.dose_range
    if start is not None and not (lo <= start.support[0] and start.support[-1] <= hi):
        raise ValueError(
            f"{owner}: start's support must lie in the design space [{lo:g}, {hi:g}], got "
            f"{start.support.tolist()}"
        )
    if candidates is not None:
        grid = np.unique(real_array(owner, "candidates", candidates))
        if not np.all(np.isfinite(grid)):
            raise ValueError(f"{owner}: candidates must be finite doses, got {grid.tolist()}")
        if grid.size == 0 or grid[0] < lo or grid[-1] > hi:
            raise ValueError(
                f"optimal_design: candidates must lie in the design space [{lo:g}, {hi:g}]"
            )
    else:
        grid = np.linspace(
            lo, hi, integer("optimal_design", "grid_size", grid_size, minimum=model.n_coefficients)
        )
    info, _ = criterion.info(grid)
    if start is not None:
        w0 = np.full(grid.size, 1e-3 / grid.size)
        for x, w in zip(start.support, start.weights, strict=True):
            w0[int(np.argmin(np.abs(grid - x)))] += w
    elif random_seed is not None:
        w0 = np.random.default_rng(random_seed).dirichlet(np.ones(grid.size))
    else:
        w0 = np.full(grid.size, 1.0 / grid.size)
    w0 = w0 / w0.sum()
    exact = candidates is not None
    w, value, _, iterations = _optimise_weights(
        info,
        criterion.prior,
        criterion.omega,
        criterion.scale,
        w0,
        50000 if exact else 5000,
        tol if exact else grid_tol,
        200,
    )
    if not np.isfinite(value):
        raise ValueError(
            "optimal_design: every design is singular (the information has no full rank)"
        )
    if exact:
        keep = w > _DROP
        design = ApproximateDesign(grid[keep], w[keep] / w[keep].sum())
        inverses, value, baseline = criterion.state(design.support, design.weights)
        d = _directional(info, inverses, criterion.omega, criterion.scale, baseline)
        top = int(np.argmax(d))
        return OptimalDesign(
            design.support,
            design.weights,
            criterion=float(value),
            get_max=float(d[top]),
            get_argmax=float(grid[top]),
            iterations=int(iterations),
        )
    support, weights = _clusters(grid, w)
    rounds = 0
    for _ in range(max_rounds):
        support, weights, value, used = _refine_kernel(
            support,
            weights,
            criterion.thetas,
            criterion.log_tau,
            criterion.prior,
            criterion.omega,
            criterion.scale,
            lo,
            hi,
            200,
        )
        rounds += used
        design = ApproximateDesign(support, weights)
        get_max, argmax = criterion.get_maximum(design, lo, hi)
        if get_max <= tol:
            break
        support = np.append(design.support, argmax)
        order = np.argsort(support)
        support = support[order]
        weights = np.append(design.weights * 0.95, 0.05)[order]
    return OptimalDesign(
        design.support,
        design.weights,
        criterion=float(value),
        get_max=float(get_max),
        get_argmax=float(argmax),
        iterations=int(iterations + rounds),
    )


def _clusters(grid: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs of adjacent grid points with weight into one point (weighted mean)."""
    active = w > 1e-6 * w.max()
    support: list[float] = []
    masses: list[float] = []
    i = 0
    while i < grid.size:
        if not active[i]:
            i += 1
            continue
        j = i
        while j + 1 < grid.size and active[j + 1]:
            j += 1
        mass = float(w[i : j + 1].sum())
        support.append(float(np.dot(w[i : j + 1], grid[i : j + 1]) / mass))
        masses.append(mass)
        i = j + 1
    weights = np.asarray(masses)
    return np.asarray(support), weights / weights.sum()


def locally_d_optimal(
    model: WeibullAFT, theta: Any, tau: float | None = None, **options: Any
) -> OptimalDesign:
    r"""Find the locally D-optimal design :math:`\arg\max_\xi \log\det M(\xi, \theta)`.

    Parameters
    ----------
    model : WeibullAFT
        The model (the design space is its ``dose_range``).
    theta : mapping or array_like
        The parameters, e.g. ``{"beta": (1.9, 0.6, 2.8), "b": 0.5772}``.
    tau : float or None
        Type I censoring time; None: no censoring.
    **options
        Options of :func:`optimal_design` (``candidates``, ``grid_size``, ``tol``,
        ``random_seed``, ``prior_information``, ``stage_size``, ...).

    Returns
    -------
    OptimalDesign
        ``support``, ``weights``, ``criterion`` (:math:`\log\det M`), ``get_max``
        (:math:`\max_x \operatorname{tr}\{M^{-1} M_x\} - k`).
    """
    return optimal_design(model, model.theta(theta)[None], tau, **options)


def bayesian_d_optimal(
    model: WeibullAFT,
    draws: np.ndarray | WeibullPosterior | xr.DataTree,
    tau: float | None = None,
    *,
    max_points: int = 200,
    **options: Any,
) -> OptimalDesign:
    r"""Maximise the posterior expectation of :math:`\log\det\{P + N M(\xi, \theta)\}`.

    Parameters
    ----------
    model : WeibullAFT
    draws : numpy.ndarray, WeibullPosterior or xarray.DataTree
        Parameter draws (m, k), a posterior, or a fit (InferenceData) of ``model``.
    tau : float or None
    max_points : int
        At most this many draws, equally spaced in chain-major order, enter the average.
    **options
        Options of :func:`optimal_design` (``prior_information`` per draw, ``stage_size``).

    Returns
    -------
    OptimalDesign
    """
    thetas = _draws(model, draws)
    max_points = positive_int("bayesian_d_optimal", "max_points", max_points)
    keep = np.unique(
        np.linspace(0, len(thetas) - 1, min(max_points, len(thetas))).round().astype(int)
    )
    prior = options.pop("prior_information", None)
    if prior is not None and np.ndim(prior) == 3:
        prior = np.asarray(prior)[keep]
    return optimal_design(model, thetas[keep], tau, prior_information=prior, **options)


def _draws(model: WeibullAFT, draws: Any) -> np.ndarray:
    if isinstance(draws, xr.DataTree):
        draws = model.posterior_from_idata(draws)
    if isinstance(draws, WeibullPosterior):
        return np.asarray(draws.theta, dtype=float)
    return np.atleast_2d(np.asarray(draws, dtype=float))


def information_matrix(
    model: WeibullAFT, design: ApproximateDesign, theta: Any, tau: float | None = None
) -> np.ndarray:
    r""":math:`M(\xi, \theta) = \sum_j w_j M_{x_j}(\theta)`, (k, k)."""
    info = model.information(design.support, theta, tau)
    return np.einsum("j,jab->ab", design.weights, info)


def sensitivity(
    model: WeibullAFT,
    design: ApproximateDesign,
    theta: Any,
    tau: float | None = None,
    doses: Sequence[float] | None = None,
) -> np.ndarray:
    r"""Evaluate :math:`d(x, \xi, \theta) = \operatorname{tr}\{M^{-1}(\xi) M_x\} - k` (sensitivity).

    Parameters
    ----------
    doses : sequence of float, optional
        Where to evaluate it (201 points of the design space by default).

    Returns
    -------
    numpy.ndarray
    """
    points = np.linspace(*model.dose_range, 201) if doses is None else np.asarray(doses, float)
    inverse = np.linalg.inv(information_matrix(model, design, theta, tau))
    info = model.information(points, theta, tau)
    return np.einsum("ab,nba->n", inverse, info) - model.n_parameters


def equivalence_check(
    model: WeibullAFT, design: ApproximateDesign, theta: Any, tau: float | None = None
) -> tuple[float, float]:
    r""":math:`\\max_x d(x, \\xi, \\theta)` over the design space and its argmax (GET: <= 0)."""
    criterion = _criterion(model, model.theta(theta)[None], tau)
    return criterion.get_maximum(design, *model.dose_range)


def d_efficiency(
    model: WeibullAFT,
    design: ApproximateDesign,
    theta: Any,
    tau: float | None = None,
    *,
    reference: ApproximateDesign | None = None,
) -> float:
    r"""D-efficiency :math:`\{|M(\xi, \theta)| / |M(\xi^*, \theta)|\}^{1/k}` in (0, 1].

    ``reference`` is :math:`\xi^*` (the locally D-optimal design by default).
    """
    reference = locally_d_optimal(model, theta, tau) if reference is None else reference
    own = np.linalg.slogdet(information_matrix(model, design, theta, tau))
    best = np.linalg.slogdet(information_matrix(model, reference, theta, tau))
    if own[0] <= 0:
        return 0.0
    return float(math.exp((own[1] - best[1]) / model.n_parameters))


# ---------------------------------------------------------------------------- reference


@dataclass(frozen=True, eq=False)
class RealisedEfficiency:
    r"""D-efficiency of a trial's realised allocation against :math:`\xi^*(\theta_{true})`.

    Called with the doses of a trial's patients: the realised design puts weight
    :math:`n_j / n` on each distinct dose, and its information at the truth is compared with
    that of the locally D-optimal design.
    """

    model: WeibullAFT
    theta: np.ndarray
    tau: float | None
    reference_log_det: float

    def __call__(self, doses: np.ndarray) -> float:
        """Efficiency of the allocation ``doses`` (NaN for no patients)."""
        doses = np.asarray(doses, dtype=float)
        if doses.size == 0:
            return math.nan
        support, counts = np.unique(doses, return_counts=True)
        info = self.model.information(support, self.theta, self.tau)
        sign, log_det = np.linalg.slogdet(np.einsum("j,jab->ab", counts / doses.size, info))
        if sign <= 0:
            return 0.0
        return math.exp((log_det - self.reference_log_det) / self.model.n_parameters)


def with_reference(scenario: WeibullScenario, model: WeibullAFT | None = None) -> WeibullScenario:
    """Return the scenario with its D-efficiency reference (the local optimum at the truth).

    Parameters
    ----------
    scenario : WeibullScenario
    model : WeibullAFT, optional
        The model whose information is used (the quadratic model by default).

    Returns
    -------
    WeibullScenario
        A copy whose ``trial_metrics`` include ``d_efficiency``.
    """
    model = WeibullAFT(degree=len(scenario.beta) - 1) if model is None else model
    optimum = locally_d_optimal(model, scenario.theta, scenario.tau)
    reference = RealisedEfficiency(model, scenario.theta, scenario.tau, optimum.criterion)
    return replace(scenario, reference=reference)
