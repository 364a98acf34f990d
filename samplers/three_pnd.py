"""PyMC step methods for the 3PND posterior (Lee 2023, Appendix, Algorithms 3-5).

Four step methods, each a thin PyMC wrapper around a numba move of
:mod:`dosezoo.samplers.three_pnd_kernels` (where the full conditionals are derived):

* :class:`BetaTruncatedNormalGibbs`: exact Gibbs draw of beta (Algorithm 3, step 1);
* :class:`SigmaAuxiliarySlice`: slice move on ``tau = sigma^2`` (Algorithm 4);
* :class:`NuEllipticalSlice`: elliptical slice on ``phi = log(nu)`` (Algorithm 5, with the
  factor the paper drops restored);
* :class:`RidgeMove`: (sigma, nu) updated with beta integrated out, then beta redrawn, so
  beta and nu move along their posterior ridge.

PyMC samples on the value scale: ``sigma_interval__``, ``nu_log__`` and ``beta_interval__``
(whose interval ``(l, u)`` depends on sigma and nu). Each step decodes the point to
``(beta, sigma, nu)``, moves on the constrained scale, and encodes all three back: a move of
sigma or nu that holds the constrained beta fixed must re-encode beta, because the same
``beta_interval__`` means a different beta once its bounds have moved.

Use :func:`three_pnd_steps` to get the sweep that ``ThreePND.fit(engine="pymc")`` runs.
"""

import numpy as np
import pymc as pm
from pymc.pytensorf import extract_obs_data
from scipy.special import expit, ndtri

from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.base import Layout, LayoutStep

_FREE = ("beta", "sigma", "nu")


class ThreePNDLayout(Layout):
    """Where (beta, sigma, nu) and the data live in a 3PND PyMC model.

    Hyper-parameters are read once from the model's ``pm.Data`` scalars; the data are read
    at every call of :meth:`observations`, so ``pm.set_data`` and ``pm.observe`` are seen.

    Parameters
    ----------
    model : pymc.Model
        A model built by :meth:`dosezoo.models.ThreePND.build` (or ``pm.observe`` of one).
    """

    def __init__(self, model: pm.Model) -> None:
        missing = [
            name
            for name in (*_FREE, "y", "dose", "eta", "gamma", "x_min", "x_max", "delta")
            if name not in model
        ]
        if missing:
            raise ValueError(f"not a ThreePND model: it lacks {missing}")
        self.value_names = {name: model.rvs_to_values[model[name]].name for name in _FREE}
        scalar = {
            name: float(extract_obs_data(model[name]))
            for name in ("eta", "gamma", "x_min", "x_max", "delta")
        }
        self.hyper = kernels.pack_hyper(
            scalar["eta"],
            float(ndtri(scalar["gamma"])),
            scalar["x_min"],
            scalar["x_max"],
            scalar["delta"],
        )
        self._dose = model["dose"]
        self._y = model.rvs_to_values[model["y"]]
        # The data last seen and their statistics.
        self._seen: tuple[np.ndarray, np.ndarray, tuple] | None = None

    def observations(self) -> tuple:
        """Return the current data as the kernels' per-dose statistics (recomputed on change)."""
        dose, y = extract_obs_data(self._dose), extract_obs_data(self._y)
        seen = self._seen
        if seen is None or not (np.array_equal(dose, seen[0]) and np.array_equal(y, seen[1])):
            seen = (
                np.array(dose),
                np.array(y),
                kernels.summarise(dose, y, self.hyper[kernels.X_MIN]),
            )
            self._seen = seen
        return seen[2]

    def decode(self, point: dict) -> tuple[float, float, float]:
        """Constrained ``(beta, sigma, nu)`` of a value-scale point (PyMC's inverse transforms)."""
        fraction = expit(float(point[self.value_names["sigma"]]))
        sigma = fraction * self.hyper[kernels.SIGMA_MAX]
        nu = float(np.exp(point[self.value_names["nu"]]))
        lower, upper = kernels.beta_bounds(sigma, nu, self.hyper)
        fraction = expit(float(point[self.value_names["beta"]]))
        return fraction * upper + (1.0 - fraction) * lower, sigma, nu

    def encode(self, point: dict, state: tuple, names: tuple[str, ...]) -> dict:
        """Copy ``point`` with all of ``(beta, sigma, nu)`` put on the value scale, keys in order.

        Every step writes all three: a move of sigma or nu that holds the constrained beta
        fixed must re-encode beta, whose interval depends on them.
        """
        beta, sigma, nu = state
        lower, upper = kernels.beta_bounds(sigma, nu, self.hyper)
        new = point.copy()
        new[self.value_names["sigma"]] = np.asarray(
            np.log(sigma) - np.log(self.hyper[kernels.SIGMA_MAX] - sigma)
        )
        new[self.value_names["nu"]] = np.asarray(np.log(nu))
        new[self.value_names["beta"]] = np.asarray(np.log(beta - lower) - np.log(upper - beta))
        return new


class ThreePNDStep(LayoutStep):
    """Base of the 3PND step methods: the state is ``(beta, sigma, nu)``, constrained."""

    layout_class = ThreePNDLayout
    layout: ThreePNDLayout


def _stats(spec: dict) -> dict:
    return {name: (dtype, []) for name, dtype in spec.items()}


class BetaTruncatedNormalGibbs(ThreePNDStep):
    """Exact Gibbs draw of beta from ``N(S_wy/S_ww, sigma^2/S_ww)`` truncated to ``(l, u)``."""

    name = "three_pnd_beta_gibbs"
    updates = ("beta",)
    stats_dtypes_shapes = _stats(kernels.BETA_STATS)

    def move(self, state, obs):
        """Draw beta given sigma and nu."""
        beta, sigma, nu = state
        hyper = self.layout.hyper
        beta = kernels.draw_beta(self.rng, sigma, nu, kernels.moments(nu, obs), obs, hyper)
        return (beta, sigma, nu), {}


class SigmaAuxiliarySlice(ThreePNDStep):
    """Slice move on ``tau = sigma^2`` with the auxiliary variable of Lee's Algorithm 4."""

    name = "three_pnd_sigma_slice"
    updates = ("sigma",)
    stats_dtypes_shapes = _stats(kernels.SIGMA_STATS)

    def move(self, state, obs):
        """Draw sigma given beta and nu."""
        beta, sigma, nu = state
        hyper = self.layout.hyper
        sigma, fallback = kernels.draw_sigma_slice(
            self.rng, beta, sigma, nu, kernels.moments(nu, obs), obs, hyper
        )
        return (beta, sigma, nu), {"sigma_slice_fallback": bool(fallback)}


class NuEllipticalSlice(ThreePNDStep):
    """Elliptical slice move on ``phi = log(nu)`` with its N(0, delta^2) prior (Algorithm 5)."""

    name = "three_pnd_nu_ess"
    updates = ("nu",)
    stats_dtypes_shapes = _stats(kernels.NU_STATS)

    def move(self, state, obs):
        """Draw nu given beta and sigma."""
        beta, sigma, nu = state
        hyper = self.layout.hyper
        nu, shrinks = kernels.draw_nu_elliptical(self.rng, beta, sigma, nu, obs, hyper)
        return (beta, sigma, nu), {"nu_ess_shrinks": int(shrinks)}


class RidgeMove(ThreePNDStep):
    """(sigma, nu) from their marginal with beta integrated out, then beta redrawn exactly."""

    name = "three_pnd_ridge"
    updates = ("beta", "sigma", "nu")
    stats_dtypes_shapes = _stats(kernels.RIDGE_STATS)

    def move(self, state, obs):
        """Move along the beta-nu ridge."""
        beta, sigma, nu = state
        hyper = self.layout.hyper
        beta, sigma, nu, sigma_evals, nu_evals = kernels.ridge_move(
            self.rng, sigma, nu, kernels.moments(nu, obs), obs, hyper
        )
        return (beta, sigma, nu), {
            "ridge_sigma_evals": int(sigma_evals),
            "ridge_nu_evals": int(nu_evals),
        }


def three_pnd_steps(model: pm.Model | None = None, *, ridge: bool = True) -> list[ThreePNDStep]:
    """Return the sweep of ``ThreePND.fit(engine="pymc")``, in the kernel's order.

    Parameters
    ----------
    model : pymc.Model, optional
        A 3PND model; the model on the context stack by default.
    ridge : bool
        The ridge sweep (default); without it, Lee's Algorithm 3.

    Returns
    -------
    list of ThreePNDStep
        Sigma slice then the ridge move; or (``ridge=False``) beta Gibbs, sigma slice and nu
        elliptical slice. See :func:`dosezoo.samplers.three_pnd_kernels.run_chain` for why
        the ridge sweep leaves out the other two.
    """
    model = pm.modelcontext(model)
    if ridge:
        classes = [SigmaAuxiliarySlice, RidgeMove]
    else:
        classes = [BetaTruncatedNormalGibbs, SigmaAuxiliarySlice, NuEllipticalSlice]
    return [cls(model=model) for cls in classes]
