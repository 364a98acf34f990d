r"""Exact posteriors of one- and two-parameter models on an adaptive grid.

CRM (one parameter), BLRM and EWOC (two) are small enough that their posterior is computed by
numerical integration instead of sampled. With :math:`\theta \in \mathbb{R}^d` the model's
parameters in unconstrained coordinates (bounded parameters mapped by logit, with the log
Jacobian added to the log prior), :func:`adaptive_grid` evaluates the unnormalised log
posterior :math:`\ell(\theta)`

1. on a coarse grid spanning ``span`` prior scales either side of the prior centre, doubling the
   span while the region where :math:`\ell > \max \ell - \text{drop}` touches its edge (a
   posterior that the data push far into the prior's tail);
2. then on a fine grid of ``size`` cells per axis over the bounding box of that region, widened
   by one coarse cell on each side, so that the cells outside hold less than
   :math:`e^{-\text{drop}}` of the mass per coarse cell.

The fine grid defines the posterior: the density is taken constant over each cell, at its value
at the cell centre (midpoint rule). :class:`GridPosterior` integrates exactly under that
piecewise-constant density: expectations are weighted sums over cells, a coordinate's marginal
CDF is piecewise linear, and :meth:`GridPosterior.sample` draws from it exactly (a cell by its
mass, then a uniform point in the cell). Rules, plots and the InferenceData of
``engine="grid"`` therefore all see the same distribution; its distance from the true
posterior is the midpoint rule's, O(h^2) for smooth expectations, and the tests bound it
against independent integration and against NUTS.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GridPosterior", "adaptive_grid"]

#: How many times the coarse span may double before the posterior is declared unbounded.
_MAX_DOUBLINGS = 6


@dataclass(frozen=True)
class GridPosterior:
    """A posterior with constant density over each cell of a regular grid.

    Attributes
    ----------
    nodes : numpy.ndarray
        Cell centres in unconstrained coordinates, shape (m, d).
    weights : numpy.ndarray
        Posterior mass of each cell, shape (m,), summing to 1.
    step : numpy.ndarray
        Cell widths per coordinate, shape (d,).
    shape : tuple of int
        Cells per axis (``m`` is their product; nodes are in C order).
    log_evidence : float
        Log marginal likelihood, ``log`` of the integral of the unnormalised posterior.
    """

    nodes: np.ndarray
    weights: np.ndarray
    step: np.ndarray
    shape: tuple[int, ...]
    log_evidence: float

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """Return the posterior mean of per-cell ``values`` (shape (m, ...))."""
        return np.tensordot(self.weights, values, axes=(0, 0))

    def marginal_cdf(self, axis: int, x: float | np.ndarray) -> np.ndarray:
        """Return ``P(theta[axis] <= x)``, piecewise linear in ``x``."""
        edges, cumulative = self._marginal(axis)
        return np.interp(x, edges, cumulative)

    def marginal_quantile(self, axis: int, p: float | np.ndarray) -> np.ndarray:
        """Return the ``p``-quantile of coordinate ``axis`` (inverse of :meth:`marginal_cdf`)."""
        edges, cumulative = self._marginal(axis)
        # Cells of zero mass make flat stretches; keep the first edge of each level.
        keep = np.concatenate(([True], np.diff(cumulative) > 0))
        return np.interp(p, cumulative[keep], edges[keep])

    def _marginal(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        masses = self.weights.reshape(self.shape)
        other = tuple(i for i in range(len(self.shape)) if i != axis)
        mass = masses.sum(axis=other) if other else masses
        centres = np.unique(self.nodes[:, axis])
        edges = np.concatenate(
            (centres - 0.5 * self.step[axis], [centres[-1] + 0.5 * self.step[axis]])
        )
        cumulative = np.concatenate(([0.0], np.cumsum(mass)))
        return edges, np.minimum(cumulative / cumulative[-1], 1.0)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` independent points: a cell by its mass, then uniformly within it.

        Returns
        -------
        numpy.ndarray
            Unconstrained draws, shape (n, d).
        """
        cells = rng.choice(self.weights.size, size=n, p=self.weights)
        jitter = rng.random((n, self.step.size)) - 0.5
        return self.nodes[cells] + jitter * self.step


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
    coarse_size: int = 48,
    span: float = 10.0,
    drop: float = 30.0,
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
    for _ in range(_MAX_DOUBLINGS + 1):
        nodes, step = _grid(centre - span * scale, centre + span * scale, coarse_size)
        values = _checked(log_density(nodes))
        kept = values > values.max() - drop
        index = np.stack(np.unravel_index(np.flatnonzero(kept), (coarse_size,) * centre.size), 1)
        low, high = index.min(axis=0), index.max(axis=0)
        if low.min() > 0 and high.max() < coarse_size - 1:
            break
        span *= 2.0
    else:
        raise FloatingPointError(
            f"the posterior's mass does not fit within {span / 2:g} prior scales of the prior "
            "centre; the data and the prior disagree too much for the grid engine"
        )
    lower = centre - span * scale + low * step
    upper = centre - span * scale + (high + 1) * step
    # One coarse cell more on each side holds the tail beyond the drop.
    fine_nodes, fine_step = _grid(lower - step, upper + step, size)
    values = _checked(log_density(fine_nodes))
    highest = values.max()
    unnormalised = np.exp(values - highest)
    total = unnormalised.sum()
    log_mass = highest + np.log(total)
    return GridPosterior(
        nodes=fine_nodes,
        weights=unnormalised / total,
        step=fine_step,
        shape=(size,) * centre.size,
        log_evidence=float(log_mass + np.log(fine_step).sum()),
    )


def _checked(values: np.ndarray) -> np.ndarray:
    if np.isnan(values).any():
        raise FloatingPointError("the log posterior is NaN at a grid node")
    if not np.isfinite(values.max()):
        raise FloatingPointError("the log posterior is nowhere finite on the grid")
    return values
