r"""Exact posteriors of one- and two-parameter models on an adaptive grid.

CRM (one parameter), BLRM and EWOC (two) are small enough that their posterior is computed by
numerical integration instead of sampled. With :math:`\theta \in \mathbb{R}^d` the model's
parameters in unconstrained coordinates (bounded parameters mapped by logit, with the log
Jacobian added to the log prior), :func:`adaptive_grid` evaluates the unnormalised log
posterior :math:`\ell(\theta)`

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
mass, then a uniform point in the cell). Rules, plots and the InferenceData of
``engine="grid"`` therefore all see the same distribution; its distance from the true
posterior is the midpoint rule's, O(h^2) for smooth expectations, and the tests bound it
against independent integration and against NUTS.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["GridPosterior", "adaptive_grid", "soft_mass_below", "soft_quantile"]

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
    """

    nodes: np.ndarray
    weights: np.ndarray
    step: np.ndarray
    transform: np.ndarray
    shape: tuple[int, ...]
    log_evidence: float

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """Return the posterior mean of per-cell ``values`` (shape (m, ...))."""
        return np.tensordot(self.weights, values, axes=(0, 0))

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Return how much per-cell ``values`` (m, ...) vary across each cell (finite differences).

        The sum over grid axes of the absolute change between neighbouring cells; for a
        function linear within a cell it is the width of its range over the cell.
        """
        on_grid = values.reshape(*self.shape, *values.shape[1:])
        total = sum(np.abs(np.gradient(on_grid, axis=axis)) for axis in range(len(self.shape)))
        return np.asarray(total).reshape(values.shape)

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
    )


def _checked(values: np.ndarray) -> np.ndarray:
    if np.isnan(values).any():
        raise FloatingPointError("the log posterior is NaN at a grid node")
    if not np.isfinite(values.max()):
        raise FloatingPointError("the log posterior is nowhere finite on the grid")
    return values


@numba.njit(cache=True)
def soft_mass_below(x: float, values: np.ndarray, spread: np.ndarray, weights: np.ndarray) -> float:
    r"""Posterior mass where a per-cell quantity is at most ``x``, counting fractions of cells.

    The quantity is taken linear within each cell, ranging over ``values +- spread / 2``
    (:meth:`GridPosterior.spread`), so cell :math:`i` counts
    :math:`w_i \min(1, \max(0, 1/2 + (x - v_i)/s_i))`, or :math:`w_i 1(v_i \le x)` where
    :math:`s_i = 0`: the CDF of the quantity, continuous and piecewise linear in ``x``.
    """
    total = 0.0
    for i in range(values.size):
        if spread[i] > 0.0:
            total += weights[i] * min(1.0, max(0.0, 0.5 + (x - values[i]) / spread[i]))
        elif values[i] <= x:
            total += weights[i]
    return total


@numba.njit(cache=True)
def soft_quantile(
    p: float,
    low: float,
    high: float,
    bisections: int,
    values: np.ndarray,
    spread: np.ndarray,
    weights: np.ndarray,
) -> float:
    """Invert :func:`soft_mass_below` on ``[low, high]`` by ``bisections`` halvings."""
    for _ in range(bisections):
        middle = 0.5 * (low + high)
        if soft_mass_below(middle, values, spread, weights) < p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
