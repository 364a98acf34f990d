r"""What the binary-DLT models share: data checks, the grid engine, fits and predictive draws.

A model of this family gives each dose :math:`d` a DLT probability :math:`p(d \mid \theta)` with
one or two parameters :math:`\theta`. Its PyMC model (``build``) is the specification; its grid
engine integrates the same posterior on an adaptive grid (:mod:`dosezoo.samplers.grid`) in
unconstrained coordinates, with the prior density there (Jacobian included) times the binomial
likelihood of the DLT counts at each distinct dose,

.. math::

    \log L(\theta) = \sum_j y_j \log p(d_j \mid \theta) + (n_j - y_j) \log(1 - p(d_j \mid \theta)).

Both engines return the same InferenceData: the free variables of the PyMC model, the
deterministic ``p_dlt`` per dose level (dims chain, draw, dose) and any other deterministic
(e.g. EWOC's ``mtd``). Rules read either an InferenceData or, in simulation loops, the grid's
:class:`DLTPosterior` directly.
"""

import math
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pymc.util import get_random_generator

from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport
from dosezoo.inference import (
    IdataBuilder,
    PredictiveDraws,
    check_fit_settings,
    fit_identity,
    sample_pymc,
)
from dosezoo.samplers.grid import GridPosterior, adaptive_grid

__all__ = ["BinaryDoseModel", "DLTPosterior", "DoseSummary", "GridDoseModel"]

Engine = Literal["grid", "nuts"]
ENGINES = ("grid", "nuts")


@dataclass(frozen=True)
class DoseSummary:
    """Patients and DLTs per distinct dose of a trial (the likelihood's sufficient statistics)."""

    dose: np.ndarray
    """Distinct doses, increasing, shape (u,)."""
    n: np.ndarray
    """Patients per dose, shape (u,)."""
    y: np.ndarray
    """DLTs per dose, shape (u,)."""


@dataclass(frozen=True)
class DLTPosterior:
    r"""A posterior of the DLT probabilities per dose level, as weighted points.

    The grid engine's points are the grid's cells with their masses; a fit's are its draws with
    equal weights. Rules compute every probability they need from this one object.

    On a grid, the probability that :math:`p_k` exceeds a threshold :math:`t` counts the
    fraction of each cell where it does, with :math:`p_k` linear within the cell:
    :math:`\min(1, \max(0, 1/2 + (p_k(c) - t) / s_k(c)))`, where :math:`s_k(c) = \sum_a
    |\partial p_k / \partial \theta_a| h_a` is the spread of :math:`p_k` over cell :math:`c`
    (``spread``, from finite differences). Counting whole cells instead (the midpoint rule
    applied to an indicator) errs by up to a cell's mass, e.g. 0.006 with 512 cells.

    Attributes
    ----------
    dose_levels : tuple of float
        The doses of the columns of ``p_dlt``.
    p_dlt : numpy.ndarray
        DLT probability per point and level, shape (m, K).
    weights : numpy.ndarray
        Mass of each point, shape (m,), summing to 1.
    parameter_mean : dict of str to float
        Posterior mean of each scalar parameter of the model.
    report : ConvergenceReport or None
        The fit's convergence diagnostics (None for the grid, which has no Monte Carlo error).
    mtd_quantile, mtd_cdf : callable or None
        For models that define an MTD (EWOC): its ``p``-quantile and ``P(MTD <= x)``.
    grid : GridPosterior or None
        The grid, when the points are its cells.
    spread : numpy.ndarray or None
        Spread of ``p_dlt`` over each cell, shape (m, K) (grid only).
    """

    dose_levels: tuple[float, ...]
    p_dlt: np.ndarray
    weights: np.ndarray
    parameter_mean: dict[str, float]
    report: ConvergenceReport | None = None
    mtd_quantile: Callable[[float], float] | None = None
    mtd_cdf: Callable[[float], float] | None = None
    grid: GridPosterior | None = None
    spread: np.ndarray | None = None

    @classmethod
    def from_idata(
        cls,
        idata: xr.DataTree,
        criteria: ConvergenceCriteria | None = None,
    ) -> "DLTPosterior":
        """Read ``p_dlt`` (and ``mtd``, scalar parameters) from a fit's posterior.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of a binary-DLT model (any engine).
        criteria : ConvergenceCriteria, optional
            Checks on ``p_dlt`` (and ``mtd``) to record in :attr:`report` (default thresholds
            when None).

        Returns
        -------
        DLTPosterior
        """
        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise TypeError(
                "expected an InferenceData (xarray.DataTree) with a posterior group, got "
                f"{type(idata).__name__}"
            )
        posterior = idata["posterior"].to_dataset()
        if "p_dlt" not in posterior.data_vars:
            raise ValueError("the posterior has no 'p_dlt' variable; fit a binary-DLT model")
        p_dlt = posterior["p_dlt"]
        levels = tuple(float(d) for d in p_dlt["dose"].values)
        draws = p_dlt.stack(sample=("chain", "draw")).transpose("sample", "dose").to_numpy()
        scalars = {
            name: float(value.mean())
            for name, value in posterior.data_vars.items()
            if value.dims == ("chain", "draw")
        }
        checked = ["p_dlt"]
        mtd_quantile = mtd_cdf = None
        if "mtd" in posterior.data_vars:
            checked.append("mtd")
            mtd = np.sort(posterior["mtd"].to_numpy().ravel())

            def mtd_quantile(p: float) -> float:
                return float(np.quantile(mtd, p))

            def mtd_cdf(x: float) -> float:
                return float(np.searchsorted(mtd, x, side="right") / mtd.size)

        return cls(
            dose_levels=levels,
            p_dlt=draws,
            weights=np.full(draws.shape[0], 1.0 / draws.shape[0]),
            parameter_mean=scalars,
            report=(criteria or ConvergenceCriteria()).check(idata, checked),
            mtd_quantile=mtd_quantile,
            mtd_cdf=mtd_cdf,
        )

    def mean(self) -> np.ndarray:
        """Posterior mean of the DLT probability per level, shape (K,)."""
        return self.weights @ self.p_dlt

    def _fraction_above(self, threshold: float) -> np.ndarray:
        excess = self.p_dlt - threshold
        if self.spread is None:
            return (excess > 0).astype(float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fraction = np.clip(0.5 + excess / self.spread, 0.0, 1.0)
        return np.where(self.spread > 0, fraction, excess > 0)

    def prob_between(self, lower: float, upper: float) -> np.ndarray:
        """Posterior probability that ``lower <= p_k < upper`` per level, shape (K,)."""
        return self.weights @ (self._fraction_above(lower) - self._fraction_above(upper))

    def prob_above(self, threshold: float) -> np.ndarray:
        """Posterior probability that ``p_k > threshold`` per level, shape (K,)."""
        return self.weights @ self._fraction_above(threshold)


class BinaryDoseModel(PredictiveDraws, ABC):
    """Base of the binary-DLT models: data checks, fits and predictive draws.

    Subclasses are frozen dataclasses with a ``_cache`` field (``init=False``) and define
    :attr:`dose_levels`, :meth:`build`, :meth:`parameters`, :meth:`check_doses` and
    :meth:`exact_draws`.
    """

    model_name: ClassVar[str]
    outcomes: ClassVar[tuple[str, ...]] = ("dlt",)

    dose_levels: tuple[float, ...]
    _cache: dict

    # ------------------------------------------------------------- to define

    @abstractmethod
    def parameters(self) -> dict:
        """Return the model's options as a JSON-serialisable dict."""

    @abstractmethod
    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row and value of a dose the model cannot take."""

    @abstractmethod
    def build(self, data: TrialData) -> pm.Model:
        """Build the PyMC model (the specification) for ``data``."""

    @abstractmethod
    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent posterior draws of the PyMC model's free variables."""

    # ------------------------------------------------------------ shared

    def __getstate__(self) -> dict:
        """Pickle the options only: the cached PyMC model is rebuilt on demand."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_cache"}

    def __setstate__(self, state: dict) -> None:
        """Restore from :meth:`__getstate__` (used by process pools)."""
        for name, value in state.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_cache", {})

    def summarise(self, data: TrialData) -> DoseSummary:
        """Check the data (``dose`` and 0/1 ``dlt``) and count patients and DLTs per dose."""
        if not isinstance(data, TrialData):
            raise TypeError(f"{self.model_name} needs a TrialData, got {type(data).__name__}")
        data.require("dlt", min_patients=0, model=self.model_name)
        dose = np.asarray(data.dose, dtype=float)
        self.check_doses(dose)
        distinct, index = np.unique(dose, return_inverse=True)
        dlt = np.asarray(data.column("dlt"), dtype=float)
        return DoseSummary(
            dose=distinct,
            n=np.bincount(index, minlength=distinct.size).astype(float),
            y=np.bincount(index, weights=dlt, minlength=distinct.size),
        )

    def _identity(self, engine: str) -> dict:
        return fit_identity(self.model_name, self.parameters(), engine)

    def _builder(self, data: TrialData) -> IdataBuilder:
        """Return a DataTree builder of the PyMC model built for ``data`` (cached per size)."""
        key = ("builder", data.n_patients, tuple(np.asarray(data.dose, dtype=float)))
        builder = self._cache.get(key)
        if builder is None:
            self._cache.clear()
            builder = self._cache[key] = IdataBuilder(self.build(data))
        return builder

    def fit(
        self,
        data: TrialData,
        *,
        engine: Engine = "grid",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        random_seed: int | np.random.Generator | None = None,
        progressbar: bool = False,
    ) -> xr.DataTree:
        """Compute the posterior and return it as InferenceData.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` and ``dlt``; at least one patient.
        engine : {"grid", "nuts"}
            ``"grid"``: independent draws from the exact posterior (the grid's, exact up to
            its midpoint rule, or a closed form; ``tune`` is unused); ``"nuts"``: PyMC's NUTS,
            the reference.
        draws, tune, chains : int
            Draws kept and burn-in iterations per chain, number of chains.
        random_seed : int or numpy.random.Generator, optional
            The same seed gives the same draws.
        progressbar : bool
            Show ``pm.sample``'s progress bar.

        Returns
        -------
        xarray.DataTree
            ``posterior`` (free variables, ``p_dlt`` with dims chain, draw, dose, and the
            model's other deterministics), ``sample_stats``, ``observed_data`` and
            ``constant_data``; the root attributes name the model, its options and the engine.
        """
        check_fit_settings(f"{self.model_name}.fit", engine, ENGINES, draws, tune, chains)
        if not isinstance(data, TrialData):
            raise TypeError(f"{self.model_name} needs a TrialData, got {type(data).__name__}")
        data.require("dlt", min_patients=1, model=self.model_name)
        if engine == "grid":
            started = time.perf_counter()
            sample = self.exact_draws(data, draws * chains, get_random_generator(random_seed))
            free = {
                name: value.reshape(chains, draws, *value.shape[1:])
                for name, value in sample.items()
            }
            idata = self._builder(data)(
                free, {}, sampling_time=time.perf_counter() - started, tuning_steps=0
            )
        else:
            idata = sample_pymc(
                self.build(data),
                engine=engine,
                steps=None,
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                progressbar=progressbar,
            )
        idata.attrs.update(self._identity(engine))
        return idata

    def summary(self, posterior: DLTPosterior, *, target: float) -> pd.DataFrame:
        """Tabulate per level: posterior mean, 95% interval bounds and ``P(p > target)``.

        Parameters
        ----------
        posterior : DLTPosterior
            From :meth:`posterior` or :meth:`DLTPosterior.from_idata`.
        target : float
            The target DLT rate.

        Returns
        -------
        pandas.DataFrame
            Index ``dose``; columns ``mean``, ``q2.5``, ``q97.5``, ``p_above_target``.
        """
        if not 0 < target < 1 or not math.isfinite(target):
            raise ValueError(
                f"{self.model_name}.summary: target must lie in (0, 1), got {target!r}"
            )
        order = np.argsort(posterior.p_dlt, axis=0)
        rows = []
        for k, dose in enumerate(posterior.dose_levels):
            values = posterior.p_dlt[order[:, k], k]
            cumulative = np.cumsum(posterior.weights[order[:, k]])
            last = values.size - 1
            rows.append(
                {
                    "dose": dose,
                    "mean": float(posterior.weights @ posterior.p_dlt[:, k]),
                    "q2.5": float(values[min(np.searchsorted(cumulative, 0.025), last)]),
                    "q97.5": float(values[min(np.searchsorted(cumulative, 0.975), last)]),
                    "p_above_target": float(posterior.prob_above(target)[k]),
                }
            )
        return pd.DataFrame(rows).set_index("dose")


class GridDoseModel(BinaryDoseModel):
    """Base of the one- and two-parameter models whose exact engine is the adaptive grid.

    Subclasses define the prior and the likelihood in unconstrained coordinates.

    The posterior depends on the data only through the patients and DLTs at each distinct dose
    (the binomial likelihood's sufficient statistic), so :meth:`posterior` keeps the last
    ``posterior_cache_size`` posteriors by that summary: in a simulation, the states early in
    a trial recur in trial after trial and are integrated once.
    """

    #: Posteriors kept by :meth:`posterior` (least recently used dropped first).
    posterior_cache_size: ClassVar[int] = 64

    #: Names of the unconstrained coordinates of the grid (for messages and docs).
    coordinates: ClassVar[tuple[str, ...]]
    #: Fine cells per axis of the grid engine.
    grid_size: ClassVar[int]

    @abstractmethod
    def prob(self, theta: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Return the DLT probability at ``dose`` (u,) for points ``theta`` (m, d), shape (m, u)."""

    @abstractmethod
    def log_likelihood(self, theta: np.ndarray, summary: DoseSummary) -> np.ndarray:
        """Return the binomial log likelihood of points ``theta`` (m, d), shape (m,)."""

    @abstractmethod
    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """Return the log prior density of unconstrained points ``theta`` (m, d), Jacobian in."""

    @abstractmethod
    def prior_location(self) -> tuple[np.ndarray, np.ndarray]:
        """Return a centre and scale per unconstrained coordinate of the prior."""

    @abstractmethod
    def free_values(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Map unconstrained points (m, d) to the PyMC model's free variables (constrained)."""

    def grid(self, data: TrialData | DoseSummary) -> GridPosterior:
        """Integrate the posterior on the adaptive grid (the prior when ``data`` is empty)."""
        summary = data if isinstance(data, DoseSummary) else self.summarise(data)
        centre, scale = self.prior_location()

        def log_density(theta: np.ndarray) -> np.ndarray:
            return self.log_prior(theta) + self.log_likelihood(theta, summary)

        return adaptive_grid(log_density, centre, scale, size=self.grid_size)

    def posterior(self, data: TrialData) -> DLTPosterior:
        """Compute the exact posterior of the DLT probabilities per level on the grid.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` and ``dlt``; may be empty (the prior).

        Returns
        -------
        DLTPosterior
            Cells of the grid with their masses; ``p_dlt`` per cell and level.
        """
        summary = self.summarise(data)
        key = (summary.dose.tobytes(), summary.n.tobytes(), summary.y.tobytes())
        cache = self._cache.setdefault("posteriors", OrderedDict())
        posterior = cache.get(key)
        if posterior is None:
            posterior = cache[key] = self._posterior(summary)
            if len(cache) > self.posterior_cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return posterior

    def _posterior(self, summary: DoseSummary) -> DLTPosterior:
        """Integrate the posterior given the patients and DLTs per dose (no cache)."""
        grid = self.grid(summary)
        levels = np.asarray(self.dose_levels, dtype=float)
        p_dlt = self.prob(grid.nodes, levels)
        spread = grid.spread(p_dlt)
        free = self.free_values(grid.nodes)
        return DLTPosterior(
            dose_levels=self.dose_levels,
            p_dlt=p_dlt,
            weights=grid.weights,
            parameter_mean={
                name: float(grid.weights @ value)
                for name, value in free.items()
                if np.ndim(value) == 1
            },
            grid=grid,
            spread=spread,
        )

    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent draws from the grid posterior (free variables)."""
        return self.free_values(self.grid(data).sample(n, rng))
