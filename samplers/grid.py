r"""Exact posteriors of one- and two-parameter models on an adaptive grid.

CRM (one parameter), BLRM and EWOC (two) are small enough that their posterior is computed by
numerical integration instead of sampled. The grid is their ``engine="grid"`` (exact draws for
an InferenceData); their decisions integrate the posterior by Gauss-Legendre rules instead
(:mod:`dosezoo.samplers.crm_quadrature`, :mod:`dosezoo.samplers.logistic_quadrature`).

With :math:`\theta \in \mathbb{R}^d` the model's parameters in unconstrained coordinates
(bounded parameters mapped by logit, with the log Jacobian added to the log prior),
:func:`adaptive_grid` evaluates the unnormalised log posterior :math:`\ell(\theta)`

1. on a coarse grid spanning ``span`` prior scales either side of the prior centre, doubling the
   span while the region where :math:`\ell > \max \ell - \text{drop}` touches its edge (a
   posterior that the data push far into the prior's tail);
2. then on a fine grid of ``size`` cells per axis in whitened coordinates
   :math:`z = L^{-1}(\theta - \bar\theta)`, where :math:`\bar\theta` and :math:`L L^T`
   are the mean and covariance of the coarse grid's posterior, over the bounding box (in
   :math:`z`) of that region widened by ``margin`` on each side. Whitening puts the cells where
   a correlated posterior has its mass; a box aligned with :math:`\theta`'s axes would waste
   most of them.

The fine grid defines the posterior: the density is taken constant over each cell, at its value
at the cell centre (midpoint rule). Expectations are weighted sums over cells, and
:meth:`GridPosterior.sample` draws from that piecewise-constant density exactly (a cell by its
mass, then a uniform point in the cell): the InferenceData of ``engine="grid"``, and the
posterior of a model that defines the grid alone (``GridDoseModel``'s default). Its distance
from the true posterior is the midpoint rule's, O(h^2) in the cell width relative to the
posterior's scale. The box spans the region within ``drop`` of the peak, so a prior with heavy
tails widens it relative to the bulk: under EWOC's default uniform priors, whose logits have
exponential tails, the 128 cells per axis are coarser on the bulk than BLRM's 96 under normal
priors (``tests/test_blrm_ewoc_boin.py`` holds both grids' draws, and BLRM's tail masses
below, to the quadrature's tail probabilities). The library's models decide by the
Gauss-Legendre rules above, not the grid.

Tail probabilities without the midpoint rule's error
-----------------------------------------------------
The whitening factor :math:`L` is lower triangular, so along a row of the grid (the leading
whitened coordinates fixed) the last unconstrained coordinate :math:`\theta_d` is an
increasing affine function of the last whitened one, :math:`z_d`. For the models of this
family every event a rule reads (a DLT probability above a threshold, the MTD below a dose) is,
given the leading coordinates, a half-line of :math:`\theta_d`: a cut per row. The mass of the
event (:meth:`GridPosterior.tail_mass`) sums the whole cells of each row on the event's side
and the part of the cell the cut falls in, with the density taken log-linear within that cell
(its slope from the neighbouring cells), and corrects the midpoint sum up to that cell's edge
by its Euler-Maclaurin term :math:`h^2 f'/24` (a partial midpoint sum is only O(h^2)
accurate), instead of counting cells whole or by a linear share. Where the row masses are
smooth the midpoint rule sums them with its fast convergence. Where an event's cut moves
steeply with the leading coordinates, or runs off to infinity between rows (EWOC's events
near the lowest dose), the cut at a row's centre does not describe its cells: under EWOC's
default priors these masses are off by up to 2.5e-2 where the draws are within 5e-3 (the
bounds ``tests/test_blrm_ewoc_boin.py`` asserts; BLRM's masses within 1e-4).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

__all__ = [
    "GridPosterior",
    "adaptive_grid",
]

#: How many times the coarse span may double before the posterior is declared unbounded.
_MAX_DOUBLINGS = 6


@dataclass(frozen=True)
class GridPosterior:
    """A posterior with constant density over each cell of a regular grid in whitened coordinates.

    Attributes
    ----------
    nodes : numpy.ndarray
        Cell centres in unconstrained coordinates, shape (m, d).
    weights : numpy.ndarray
        Posterior mass of each cell, shape (m,), summing to 1.
    step : numpy.ndarray
        Cell widths per whitened coordinate, shape (d,).
    transform : numpy.ndarray
        The whitening's Cholesky factor ``L`` (d, d): a cell spans ``L @ (step * u)`` around
        its centre for ``u`` in ``[-1/2, 1/2]^d``.
    shape : tuple of int
        Cells per axis (``m`` is their product; nodes are in C order).
    log_evidence : float
        Log marginal likelihood, ``log`` of the integral of the unnormalised posterior.
    centre : numpy.ndarray
        The whitening's origin ``mean`` (d,): a node is ``centre + transform @ z``.
    lower : numpy.ndarray
        Lower corner of the grid in whitened coordinates (d,).
    """

    nodes: np.ndarray
    weights: np.ndarray
    step: np.ndarray
    transform: np.ndarray
    shape: tuple[int, ...]
    log_evidence: float
    centre: np.ndarray
    lower: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        """The leading unconstrained coordinates of each row (cells sharing them), (r, d - 1)."""
        last = self.shape[-1]
        return self.nodes[::last, :-1]

    def cut_positions(self, cut: np.ndarray) -> np.ndarray:
        r"""Map cuts of the last coordinate per row, (r, c), to cell units along each row.

        Position 0 is the lower edge of a row's first cell, ``shape[-1]`` the upper edge of
        its last: :math:`(z_d - \text{lower}_d) / h_d` with
        :math:`z_d = (\theta_d - \bar\theta_d - \sum_{l<d} L_{dl} z_l) / L_{dd}`.
        """
        d = self.step.size
        leading = self.rows - self.centre[:-1]
        z_leading = np.linalg.solve(self.transform[:-1, :-1], leading.T).T if d > 1 else leading
        offset = self.centre[-1] + z_leading @ self.transform[-1, :-1]
        z_last = (cut - offset[:, None]) / self.transform[-1, -1]
        return (z_last - self.lower[-1]) / self.step[-1]

    def tail_mass(self, cuts: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Posterior mass where the last coordinate is above (or below) a cut per row.

        Parameters
        ----------
        cuts : callable
            ``cuts(rows)`` gives, for the leading coordinates of rows (m, d - 1), the cut of
            each of ``c`` events on every row, shape (m, c) (``-inf`` or ``inf`` for an event
            that holds on the whole row or nowhere on it), and whether each event is
            ``theta_d > cut`` (True) or ``theta_d < cut``, shape (m, c). It is asked about
            :attr:`rows`.

        Returns
        -------
        numpy.ndarray
            The mass of each event, shape (c,).
        """
        cut, above = cuts(self.rows)
        position = self.cut_positions(np.asarray(cut, dtype=float))
        table = self._tail_table()
        return _tail_masses(table[0], table[1], table[2], position, np.asarray(above, bool))

    def _tail_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the cells' masses, their cumulative sums and the log-density slopes."""
        cached = self.__dict__.get("_table")
        if cached is None:
            cached = _row_table(self.weights.reshape(-1, self.shape[-1]))
            object.__setattr__(self, "_table", cached)
        return cached

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """Return the posterior mean of per-cell ``values`` (shape (m, ...))."""
        return np.tensordot(self.weights, values, axes=(0, 0))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent points: a cell by its mass, then uniformly within it.

        Returns
        -------
        numpy.ndarray
            Unconstrained draws, shape (n, d).
        """
        cells = rng.choice(self.weights.size, size=n, p=self.weights)
        jitter = (rng.random((n, self.step.size)) - 0.5) * self.step
        return self.nodes[cells] + jitter @ self.transform.T


def _grid(lower: np.ndarray, upper: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (C order) and widths of ``size`` cells per axis over the box."""
    step = (upper - lower) / size
    axes = [lo + (np.arange(size) + 0.5) * h for lo, h in zip(lower, step, strict=True)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1), step


def adaptive_grid(
    log_density: Callable[[np.ndarray], np.ndarray],
    centre: np.ndarray,
    scale: np.ndarray,
    *,
    size: int,
    coarse_size: int = 32,
    span: float = 10.0,
    drop: float = 25.0,
    margin: float = 0.5,
) -> GridPosterior:
    """Integrate a posterior on a grid fitted to where it has mass (see the module docstring).

    Parameters
    ----------
    log_density : callable
        Unnormalised log posterior of unconstrained points, ``(m, d) -> (m,)``; ``-inf``
        where the density is 0. It must not return NaN.
    centre, scale : numpy.ndarray
        Prior centre and scale per coordinate, shape (d,).
    size : int
        Fine cells per axis.
    coarse_size : int
        Coarse cells per axis.
    span : float
        Half-width of the first coarse grid, in prior scales.
    drop : float
        Log-density drop below the maximum that bounds the fine grid.
    margin : float
        Widening of the fine grid's box on each side, in posterior standard deviations.

    Returns
    -------
    GridPosterior

    Raises
    ------
    FloatingPointError
        If the log density is NaN or nowhere finite, or its mass does not fit in a span of
        ``span * 2**6`` prior scales.
    """
    centre = np.asarray(centre, dtype=float)
    scale = np.asarray(scale, dtype=float)
    dim = centre.size
    for _ in range(_MAX_DOUBLINGS + 1):
        nodes, step = _grid(centre - span * scale, centre + span * scale, coarse_size)
        values = _checked(log_density(nodes))
        kept = values > values.max() - drop
        index = np.stack(np.unravel_index(np.flatnonzero(kept), (coarse_size,) * dim), 1)
        if index.min() > 0 and index.max() < coarse_size - 1:
            break
        span *= 2.0
    else:
        raise FloatingPointError(
            f"the posterior's mass does not fit within {span / 2:g} prior scales of the prior "
            "centre; the data and the prior disagree too much for the grid engine"
        )
    weights = np.exp(values - values.max())
    weights /= weights.sum()
    mean = weights @ nodes
    deviation = nodes - mean
    # The coarse cells' own width is added so that a posterior narrower than a coarse cell
    # still gets a positive-definite, not too small, covariance.
    covariance = (deviation * weights[:, None]).T @ deviation + np.diag(step**2) / 12
    transform = np.linalg.cholesky(covariance)
    corners = np.stack(np.meshgrid(*([-0.5, 0.5],) * dim, indexing="ij"), -1).reshape(-1, dim)
    region = (nodes[kept][:, None, :] + corners * step).reshape(-1, dim)
    whitened = np.linalg.solve(transform, (region - mean).T).T
    lower, upper = whitened.min(axis=0) - margin, whitened.max(axis=0) + margin
    fine, fine_step = _grid(lower, upper, size)
    fine_nodes = mean + fine @ transform.T
    values = _checked(log_density(fine_nodes))
    highest = values.max()
    unnormalised = np.exp(values - highest)
    total = unnormalised.sum()
    volume = np.log(fine_step).sum() + np.log(np.diag(transform)).sum()
    return GridPosterior(
        nodes=fine_nodes,
        weights=unnormalised / total,
        step=fine_step,
        transform=transform,
        shape=(size,) * dim,
        log_evidence=float(highest + np.log(total) + volume),
        centre=mean,
        lower=lower,
    )


def _checked(values: np.ndarray) -> np.ndarray:
    if np.isnan(values).any():
        raise FloatingPointError("the log posterior is NaN at a grid node")
    if not np.isfinite(values.max()):
        raise FloatingPointError("the log posterior is nowhere finite on the grid")
    return values


#: Floor of the log mass ratio between neighbouring cells used for a slope (an empty cell
#: next to a full one would give an infinite slope).
_SLOPE_FLOOR = -50.0


@numba.njit(cache=True)
def _row_table(mass: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative masses (r, n + 1) and log-density slopes per cell (r, n) of each row."""
    rows, n = mass.shape
    cumulative = np.zeros((rows, n + 1))
    slope = np.zeros((rows, n))
    for i in range(rows):
        for j in range(n):
            cumulative[i, j + 1] = cumulative[i, j] + mass[i, j]
        if n < 2:
            continue
        peak = mass[i].max()
        if peak <= 0.0:
            continue
        for j in range(n):
            lo = j - 1 if j > 0 else j
            hi = j + 1 if j < n - 1 else j
            a = math.log(mass[i, lo] / peak) if mass[i, lo] > 0.0 else _SLOPE_FLOOR
            b = math.log(mass[i, hi] / peak) if mass[i, hi] > 0.0 else _SLOPE_FLOOR
            slope[i, j] = (max(b, _SLOPE_FLOOR) - max(a, _SLOPE_FLOOR)) / (hi - lo)
    return mass, cumulative, slope


@numba.njit(cache=True)
def _row_mass_below(
    mass: np.ndarray, cumulative: np.ndarray, slope: np.ndarray, i: int, position: float
) -> float:
    """Mass of row ``i`` below ``position`` (cell units), the cut cell log-linear."""
    n = mass.shape[1]
    if position <= 0.0:
        return 0.0
    if position >= n:
        return cumulative[i, n]
    j = int(position)
    t = position - j
    b = slope[i, j]
    # Density within cell j: mass[i, j] * exp(b (u - 1/2)) for u in [0, 1] (log-linear through
    # its centre). The midpoint sum up to the cell's lower edge misses b m e^{-b/2} / 24 (the
    # Euler-Maclaurin term h^2 f'(edge) / 24, with f' from the same log-linear density); then
    # the density is integrated exactly from the edge to the cut.
    if abs(b) < 1e-8:
        return cumulative[i, j] + mass[i, j] * t
    shift = math.exp(-0.5 * b)
    inside = shift * math.expm1(b * t) / b
    return cumulative[i, j] + mass[i, j] * (b * shift / 24.0 + inside)


@numba.njit(cache=True)
def _tail_masses(
    mass: np.ndarray,
    cumulative: np.ndarray,
    slope: np.ndarray,
    position: np.ndarray,
    above: np.ndarray,
) -> np.ndarray:
    rows, events = position.shape
    n = mass.shape[1]
    out = np.zeros(events)
    for c in range(events):
        total = 0.0
        for i in range(rows):
            below = _row_mass_below(mass, cumulative, slope, i, position[i, c])
            total += cumulative[i, n] - below if above[i, c] else below
        out[c] = total
    return out
