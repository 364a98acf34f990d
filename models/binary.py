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
(e.g. EWOC's ``mtd``). Rules read a :class:`~dosezoo.posterior.DosePosterior`: the nodes of an
exact integration with their masses (:meth:`GridDoseModel.posterior`, in simulation loops: the
grid's cells, exact up to the midpoint rule; the CRM's one parameter by Gauss-Legendre
quadrature, :mod:`dosezoo.samplers.crm_quadrature`; the two of BLRM and EWOC by a tensor
Gauss-Legendre rule, :class:`LogisticQuadratureModel`) or the draws of any fit
(``posterior_from_idata``).
"""

import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from dosezoo.checks import real_number
from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.inference import random_generator
from dosezoo.models.base import DoseModel, engine
from dosezoo.posterior import Deferred, DosePosterior, QuantileLevelTails, Sampling
from dosezoo.samplers.grid import GridPosterior, adaptive_grid
from dosezoo.samplers.logistic_quadrature import LogisticQuadrature

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "BinaryDoseModel",
    "DoseSummary",
    "GridDoseModel",
    "GridTails",
    "LogisticQuadratureModel",
]

#: :meth:`GridTails.quantile` works in ``logit t`` within this bound, to this width of its
#: bracket, in at most this many steps of regula falsi.
_QUANTILE_LOGIT_BOUND, _QUANTILE_TOLERANCE, _QUANTILE_MAX_STEPS = 34.0, 1e-8, 100


@dataclass(frozen=True)
class DoseSummary:
    """Patients and DLTs per distinct dose of a trial (the likelihood's sufficient statistics)."""

    dose: np.ndarray
    """Distinct doses, increasing, shape (u,)."""
    n: np.ndarray
    """Patients per dose, shape (u,)."""
    y: np.ndarray
    """DLTs per dose, shape (u,)."""

    def key(self) -> tuple[bytes, bytes, bytes]:
        """Return the summary as a hashable key (of posterior caches)."""
        return (self.dose.tobytes(), self.n.tobytes(), self.y.tobytes())


class BinaryDoseModel(DoseModel):
    """Base of the binary-DLT models: data checks, the exact engine and the posterior table.

    Subclasses are frozen dataclasses and define :attr:`dose_levels`, :meth:`build`,
    :meth:`parameters`, :meth:`check_doses`, :meth:`posterior` and :meth:`exact_draws`.
    """

    outcomes: ClassVar[tuple[str, ...]] = ("dlt",)
    default_engine: ClassVar[str] = "grid"
    fast_engine: ClassVar[str | None] = "grid"
    probability_rates: ClassVar[tuple[str, ...]] = ("p_dlt",)

    dose_levels: tuple[float, ...]

    # ------------------------------------------------------------- to define

    @abstractmethod
    def check_doses(self, dose: np.ndarray) -> None:
        """Raise a DataError naming the row and value of a dose the model cannot take."""

    @abstractmethod
    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent posterior draws of the PyMC model's free variables."""

    # ------------------------------------------------------------ shared

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data: a 0/1 ``dlt`` column and doses the model can take."""
        data.require("dlt", min_patients=min_patients, model=self.model_name)
        self.check_doses(np.asarray(data.dose, dtype=float))

    def summarise(self, data: TrialData) -> DoseSummary:
        """Check the data (``dose`` and 0/1 ``dlt``) and count patients and DLTs per dose.

        A decision asks for the summary three times (the data check, the posterior's cache
        key and the posterior), so the summary of the last data is kept (data are immutable).
        """
        last = self._cache.get("last_summary")
        if last is not None and last[0] is data:
            return last[1]
        if not isinstance(data, TrialData):
            raise TypeError(f"{self.model_name} needs a TrialData, got {type(data).__name__}")
        data.require("dlt", min_patients=0, model=self.model_name)
        summary = self._count(data)
        self._cache["last_summary"] = (data, summary)
        return summary

    @property
    def level_array(self) -> np.ndarray:
        """The dose levels as a read-only float array, (K,) (made once per model)."""
        levels = self._cache.get("level_array")
        if levels is None:
            levels = self._cache["level_array"] = np.array(self.dose_levels, dtype=float)
            levels.setflags(write=False)
        return levels

    def _keep_counts(self, data: TrialData, n: np.ndarray, y: np.ndarray) -> None:
        """Keep the summary of data made from counts, as :meth:`summarise` keeps the last data's.

        The patients and DLTs per dose given, on the model's levels (which need no check): the
        decision on the data reads the counts given rather than counting its patients again.
        """
        levels = self.level_array
        given = n > 0
        summary = DoseSummary(
            dose=levels[given], n=n[given].astype(float), y=y[given].astype(float)
        )
        self._cache["last_summary"] = (data, summary)

    def _count(self, data: TrialData) -> DoseSummary:
        """Check the doses and count patients and DLTs per distinct dose.

        On Python lists: it runs at every decision, on tens of patients, where a sort of the
        doses and two ``bincount`` calls cost several times the counting (``list.count``, and
        the doses of the DLTs, 0/1 as TrialData checks). The doses are checked once per
        distinct value (``check_doses`` judges each dose on its own); only when one fails are
        they checked again row by row, for the error that names the first row at fault.
        """
        doses = data.dose.tolist()
        toxic = [dose for dose, dlt in zip(doses, data.column("dlt").tolist(), strict=True) if dlt]
        values = sorted(set(doses))
        distinct = np.array(values, dtype=float)
        try:
            self.check_doses(distinct)
        except DataError:
            self.check_doses(np.asarray(data.dose, dtype=float))
            raise
        return DoseSummary(
            dose=distinct,
            n=np.array([doses.count(dose) for dose in values], dtype=float),
            y=np.array([toxic.count(dose) for dose in values], dtype=float),
        )

    def sufficient_statistic(self, data: TrialData) -> tuple[bytes, bytes, bytes]:
        """Return the distinct doses with their patients and DLTs (the binomial likelihood's)."""
        return self.summarise(data).key()

    @engine("grid")
    def _fit_grid(
        self, data: TrialData, *, draws: int, chains: int, random_seed, **_: object
    ) -> "xr.DataTree":
        """Independent draws from the exact posterior (``tune`` is unused)."""
        started = time.perf_counter()
        sample = self.exact_draws(data, draws * chains, random_generator(random_seed))
        free = {
            name: value.reshape(chains, draws, *value.shape[1:]) for name, value in sample.items()
        }
        return self._from_draws(data, free, {}, started=started, tune=0)

    def summary(self, posterior: DosePosterior, *, target: float) -> "pd.DataFrame":
        """Tabulate per level: posterior mean, 95% interval bounds and ``P(p > target)``.

        Parameters
        ----------
        posterior : DosePosterior
            From :meth:`posterior` or :meth:`posterior_from_idata`.
        target : float
            The target DLT rate.

        Returns
        -------
        pandas.DataFrame
            Index ``dose``; columns ``mean``, ``q2.5``, ``q97.5``, ``p_above_target``.
        """
        target = real_number(f"{self.model_name}.summary", "target", target)
        if not 0 < target < 1:
            raise ValueError(
                f"{self.model_name}.summary: target must lie in (0, 1), got {target!r}"
            )
        tails = posterior.tails.get("p_dlt")
        if isinstance(tails, QuantileLevelTails):
            lower, upper = tails.quantile(0.025), tails.quantile(0.975)
        else:
            lower, upper = _weighted_quantiles(posterior, (0.025, 0.975))
        mean = posterior.mean()
        above = posterior.prob_above(target)
        rows = [
            {
                "dose": dose,
                "mean": float(mean[k]),
                "q2.5": float(lower[k]),
                "q97.5": float(upper[k]),
                "p_above_target": float(above[k]),
            }
            for k, dose in enumerate(posterior.dose_levels)
        ]
        import pandas as pd  # loaded on use: pandas costs a fifth of a second of every start

        return pd.DataFrame(rows).set_index("dose")


@dataclass(frozen=True, eq=False)
class GridTails:
    """Exact tail probabilities and quantiles of ``p_dlt`` per level on a rule of rows.

    ``P(p_k > t)`` integrates, row by row of the rule (the adaptive grid's cells or the
    Gauss-Legendre rule's nodes), the half-line of the last coordinate where the model's DLT
    probability at level ``k`` exceeds ``t`` (:meth:`GridDoseModel.rate_cut`,
    :meth:`GridPosterior.tail_mass`, :meth:`LogisticQuadrature.tail_mass`).
    """

    rule: "GridPosterior | LogisticQuadrature"
    model: "GridDoseModel"

    def prob_above(self, threshold: float) -> np.ndarray:
        """Return ``P(p_k > threshold)`` per level, shape (K,)."""
        threshold = float(threshold)
        return self.rule.tail_mass(lambda rows: self.model.rate_cut(rows, threshold))

    def quantile(self, q: float) -> np.ndarray:
        r"""Return the ``q``-quantile of ``p_k`` per level, shape (K,), inverting the tails.

        The :math:`t_k` where :math:`P(p_k > t_k) = 1 - q`, found in :math:`u = \operatorname{logit}
        t` for all levels at once, one integral of the tails per step (a threshold per level):
        steps doubling out from :math:`u = 0` bracket it, then the Illinois variant of regula
        falsi narrows the bracket to :data:`_QUANTILE_TOLERANCE`. The tails are exact to about
        1e-5, the quantile as exact as that in probability. Not the quantile of the rule's
        points: their weights resolve the density, not the rates, and a point's weight is a
        step of the discrete CDF (the 97.5 % point erred by 0.019 with one patient, 0.049
        under a vague prior). A quantile beyond :math:`u = \pm`:data:`_QUANTILE_LOGIT_BOUND`
        is that bound's rate (0 or 1 within 2e-15).
        """
        from scipy.special import expit  # loaded on use, as pandas is

        q = real_number("GridTails.quantile", "q", q)
        if not 0.0 < q < 1.0:
            raise ValueError(f"GridTails.quantile: q must lie in (0, 1), got {q!r}")
        goal = 1.0 - q
        bound = _QUANTILE_LOGIT_BOUND
        levels = len(self.model.dose_levels)

        def excess(u: np.ndarray) -> np.ndarray:
            thresholds = expit(u)

            def cuts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                pairs = [self.model.rate_cut(rows, float(t)) for t in thresholds]
                cut = np.stack([cut[:, k] for k, (cut, _) in enumerate(pairs)], axis=1)
                above = np.stack([above[:, k] for k, (_, above) in enumerate(pairs)], axis=1)
                return cut, above

            return self.rule.tail_mass(cuts) - goal

        # P(p_k > expit(u)) - goal falls with u: lo where it is >= 0, hi where it is < 0.
        lo, hi = np.full(levels, -bound), np.full(levels, bound)
        f_lo, f_hi = np.full(levels, np.nan), np.full(levels, np.nan)
        u, step = np.zeros(levels), np.ones(levels)
        while True:
            f = excess(u)
            rising = f >= 0.0
            lo, f_lo = np.where(rising, u, lo), np.where(rising, f, f_lo)
            hi, f_hi = np.where(rising, hi, u), np.where(rising, f_hi, f)
            open_low, open_high = np.isnan(f_lo), np.isnan(f_hi)
            if not (open_low | open_high).any():
                break
            at_bound = np.where(open_low, hi <= -bound, lo >= bound)
            if (at_bound | ~(open_low | open_high)).all():
                break
            u = np.where(open_high, np.minimum(lo + step, bound), u)
            u = np.where(open_low, np.maximum(hi - step, -bound), u)
            step *= 2.0
        # not bracketed within the bound: the bound itself
        done = np.isnan(f_lo) | np.isnan(f_hi)
        result = np.where(np.isnan(f_lo), -bound, bound)
        # Illinois: a secant step in the bracket; an end kept twice has its value halved.
        kept = np.zeros(levels, dtype=int)
        for _ in range(_QUANTILE_MAX_STEPS):
            active = ~done & (hi - lo > _QUANTILE_TOLERANCE)
            if not active.any():
                break
            with np.errstate(invalid="ignore", divide="ignore"):
                u = np.where(active, hi - f_hi * (hi - lo) / (f_hi - f_lo), 0.5 * (lo + hi))
            u = np.where(np.isfinite(u) & (u > lo) & (u < hi), u, 0.5 * (lo + hi))
            f = excess(u)
            rising = active & (f >= 0.0)
            falling = active & (f < 0.0)
            f_hi = np.where(rising & (kept == 1), 0.5 * f_hi, f_hi)
            f_lo = np.where(falling & (kept == -1), 0.5 * f_lo, f_lo)
            kept = np.where(rising, 1, np.where(falling, -1, kept))
            lo, f_lo = np.where(rising, u, lo), np.where(rising, f, f_lo)
            hi, f_hi = np.where(falling, u, hi), np.where(falling, f, f_hi)
            exact = active & (f == 0.0)
            result = np.where(exact, u, result)
            done |= exact
        result = np.where(done, result, 0.5 * (lo + hi))
        return expit(result)


class GridDoseModel(BinaryDoseModel):
    """Base of the one- and two-parameter models whose exact engine is the adaptive grid.

    Subclasses define the prior and the likelihood in unconstrained coordinates.

    The posterior depends on the data only through the patients and DLTs at each distinct dose
    (the binomial likelihood's sufficient statistic), so :meth:`posterior` keeps the last
    ``posterior_cache_size`` posteriors by that summary: in a simulation, the states early in
    a trial recur in trial after trial and are integrated once.
    """

    #: The exact posterior depends on the data only through the patients and DLTs per dose
    #: (a design whose rule reads the counts only may then run in lockstep).
    count_posterior: ClassVar[bool] = True
    #: :meth:`posterior` integrates by quadrature (the sampling it is given is unused).
    exact_posterior: ClassVar[bool] = True

    #: Names of the unconstrained coordinates of the grid (for messages and docs).
    coordinates: ClassVar[tuple[str, ...]]
    #: Fine cells per axis of the grid engine.
    grid_size: ClassVar[int]

    def _unintegrable(self, error: FloatingPointError) -> ValueError:
        """Return the error a quadrature rule's failure is reported by, naming the prior.

        Only a prior so vague or so far out that the posterior's mass escapes the rule (or
        overflows it) leaves a posterior the rule cannot hold.
        """
        prior = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items() if "prior" in k)
        return ValueError(
            f"{self.model_name}: the posterior under {prior} cannot be integrated ({error}); "
            "give a less vague or less extreme prior"
        )

    def check_data(self, data: TrialData, *, min_patients: int = 0) -> None:
        """Check the data by :meth:`summarise`, whose summary the decision's posterior reuses."""
        data.require("dlt", min_patients=min_patients, model=self.model_name)
        self.summarise(data)

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

    @abstractmethod
    def rate_cut(self, leading: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        r"""Where the DLT probability at each level crosses ``threshold``, given the rest.

        Given the leading unconstrained coordinates of a point, the event
        :math:`p_k > t` is a half-line of the last coordinate :math:`\theta_d` (the models
        are monotone in it); :meth:`GridPosterior.tail_mass` integrates it exactly.

        Parameters
        ----------
        leading : numpy.ndarray
            Leading coordinates of ``r`` points, shape (r, d - 1).
        threshold : float
            The DLT probability :math:`t` in (0, 1).

        Returns
        -------
        cut, above : numpy.ndarray
            Shape (r, K) each: :math:`p_k > t` iff :math:`\theta_d >` ``cut`` (``above``
            True) or :math:`\theta_d <` ``cut`` (``above`` False); ``-inf``/``inf`` cuts for
            an event that holds for every or no :math:`\theta_d`.
        """

    def grid(self, data: TrialData | DoseSummary) -> GridPosterior:
        """Integrate the posterior on the adaptive grid (the prior when ``data`` is empty)."""
        summary = data if isinstance(data, DoseSummary) else self.summarise(data)
        centre, scale = self.prior_location()

        def log_density(theta: np.ndarray) -> np.ndarray:
            return self.log_prior(theta) + self.log_likelihood(theta, summary)

        return adaptive_grid(log_density, centre, scale, size=self.grid_size)

    def posterior(self, data: TrialData, sampling: Sampling | None = None) -> DosePosterior:
        """Compute the exact posterior of the DLT probabilities per level on the grid.

        Parameters
        ----------
        data : TrialData
            Columns ``dose`` and ``dlt``; may be empty (the prior).
        sampling : Sampling, optional
            Unused: the grid has no Monte Carlo error.

        Returns
        -------
        DosePosterior
            Cells of the grid with their masses; ``p_dlt`` per cell and level.
        """
        summary = self.summarise(data)
        key = summary.key()
        memo = self._memo("posteriors")
        posterior = memo.get(key)
        if posterior is None:
            posterior = self._posterior(summary)
            memo.keep(key, posterior, posterior.nbytes)
        return posterior

    def _posterior(self, summary: DoseSummary) -> DosePosterior:
        """Integrate the posterior given the patients and DLTs per dose (no cache)."""
        grid = self.grid(summary)
        levels = np.asarray(self.dose_levels, dtype=float)
        p_dlt = self.prob(grid.nodes, levels)
        free = self.free_values(grid.nodes)
        return DosePosterior._of_engine(
            dose_levels=self.dose_levels,
            rates={"p_dlt": p_dlt},
            weights=grid.weights,
            tails={"p_dlt": GridTails(grid, self)},
            quadrature_points=True,
            parameter_mean={
                name: float(grid.weights @ value)
                for name, value in free.items()
                if np.ndim(value) == 1
            },
            grid=grid,
        )

    def exact_draws(
        self, data: TrialData, n: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Return ``n`` independent draws from the grid posterior (free variables)."""
        return self.free_values(self.grid(data).sample(n, rng))

    def unconstrained_mean(self, posterior: DosePosterior) -> np.ndarray:
        """Return the posterior mean of the unconstrained coordinates, shape (d,), from the grid."""
        grid = posterior.grid
        assert isinstance(grid, GridPosterior)  # the grid engine's posterior keeps its grid
        return grid.weights @ grid.nodes

    def prior_effective_sample_size(
        self, *, draws: int = 4000, random_seed: int | np.random.Generator | None = 0
    ) -> float | dict[str, float]:
        r"""Return Morita, Thall and Mueller's (2008) prior effective sample size.

        With :math:`\bar\theta` the prior mean of the grid's unconstrained coordinates,
        :math:`D_p = -\nabla^2 \log p(\bar\theta)` the prior's curvature there and

        .. math::

            I = \frac1K \sum_{k=1}^K \left[\bar p_k\, (-\nabla^2 \log p_k(\bar\theta))
            + (1 - \bar p_k)\, (-\nabla^2 \log(1 - p_k(\bar\theta)))\right]

        the information of one patient, at a dose level drawn uniformly, whose DLT is drawn
        from the prior predictive (:math:`\bar p_k` the prior mean DLT probability at level
        :math:`k`), the ESS is :math:`\operatorname{tr} D_p / \operatorname{tr} I` (MTM's
        trace criterion), and per coordinate :math:`(D_p)_{jj} / I_{jj}`. The m patients of
        MTM's :math:`\epsilon`-information prior add :math:`m I` to its curvature, whose own
        curvature vanishes in these coordinates as its scale grows (for a logit-Beta(a, b)
        coordinate it is :math:`(a + b) f (1 - f) / c`), so the ESS solves
        :math:`\operatorname{tr} D_p = m \operatorname{tr} I` without rounding m to an
        integer. For a Beta(a, b) prior on a probability on the logit scale it is exactly
        a + b. Derivatives are central differences (step 1e-3 of the prior scale).

        ``draws`` and ``random_seed`` are unused: the prior is integrated on the grid.

        Where :math:`I_{jj} \le 0` (the prior predictive's DLT rates :math:`\bar p_k` weigh
        the curvatures of :math:`\log p_k` and :math:`\log(1 - p_k)` at :math:`\bar\theta`
        into a negative one, as a vague prior can: it is no Fisher information), no number of
        patients matches the prior's curvature: that coordinate's ESS is NaN, and so is
        ``overall``, whose trace the negative term would shrink into an ESS of hundreds.

        Returns
        -------
        float or dict of str to float
            The ESS for one coordinate; ``overall`` and one entry per coordinate otherwise.
        """
        prior = self.posterior(TrialData.empty(outcomes=self.outcomes))
        centre = self.unconstrained_mean(prior)
        _, scale = self.prior_location()
        step = 1e-3 * np.asarray(scale, dtype=float)
        curvature = -_hessian(self.log_prior, centre, step)
        levels = np.asarray(self.dose_levels, dtype=float)
        p_bar = prior.mean()
        information = np.zeros_like(curvature)
        for k, dose in enumerate(levels):
            for dlt, weight in ((1.0, p_bar[k]), (0.0, 1.0 - p_bar[k])):
                one = DoseSummary(dose=np.array([dose]), n=np.array([1.0]), y=np.array([dlt]))
                hessian = _hessian(lambda theta: self.log_likelihood(theta, one), centre, step)
                information -= weight * hessian / levels.size
        diagonal = np.diag(information)
        defined = bool(np.all(diagonal > 0))
        overall = float(np.trace(curvature) / np.trace(information)) if defined else math.nan
        if centre.size == 1:
            return overall
        per = np.where(
            diagonal > 0, np.diag(curvature) / np.where(diagonal > 0, diagonal, 1), np.nan
        )
        return {"overall": overall} | {
            name: float(value) for name, value in zip(self.coordinates, per, strict=True)
        }


def _weighted_quantiles(posterior: DosePosterior, probabilities: tuple[float, ...]) -> np.ndarray:
    """Quantiles of ``p_dlt`` per level from the posterior's weighted points, (len(probs), K).

    The ``q``-quantile is the first point, in increasing order, whose cumulative weight
    reaches ``q``.
    """
    p_dlt = posterior.rate("p_dlt")
    weights = posterior.weights
    if weights is None:
        weights = np.full(p_dlt.shape[0], 1.0 / p_dlt.shape[0])
    order = np.argsort(p_dlt, axis=0)
    out = np.empty((len(probabilities), p_dlt.shape[1]))
    for k in range(p_dlt.shape[1]):
        values = p_dlt[order[:, k], k]
        cumulative = np.cumsum(weights[order[:, k]])
        index = np.minimum(np.searchsorted(cumulative, probabilities), values.size - 1)
        out[:, k] = values[index]
    return out


def _hessian(function, centre: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of ``function`` (vectorised over points (m, d)) at ``centre``."""
    d = centre.size
    signs = ((1, 1), (1, -1), (-1, 1), (-1, -1))
    shifts = [(i, j, si, sj) for i in range(d) for j in range(d) for si, sj in signs]
    points = np.empty((len(shifts), d))
    for row, (i, j, si, sj) in enumerate(shifts):
        points[row] = centre
        points[row, i] += si * step[i]
        points[row, j] += sj * step[j]
    values = np.asarray(function(points), dtype=float)
    hessian = np.zeros((d, d))
    for (i, j, si, sj), value in zip(shifts, values, strict=True):
        hessian[i, j] += si * sj * value / (4 * step[i] * step[j])
    return hessian


class LogisticQuadratureModel(GridDoseModel):
    """Base of the two-parameter logistic models (BLRM, EWOC): decisions by quadrature.

    :meth:`posterior` integrates the posterior by the tensor Gauss-Legendre rule of
    :mod:`dosezoo.samplers.logistic_quadrature` (compiled, fitted to the posterior; a decision
    costs a fraction of the grid's); the grid engine (:meth:`grid`, :meth:`exact_draws`, fits
    with ``engine="grid"``) is unchanged. The kernel computes the same log density as
    :meth:`log_prior` plus :meth:`log_likelihood`, from :meth:`scaled_dose` and
    :meth:`prior_constants`.
    """

    #: The model's code in :mod:`dosezoo.samplers.logistic_quadrature`.
    quadrature_model: ClassVar[int]

    @abstractmethod
    def scaled_dose(self, dose: np.ndarray) -> np.ndarray:
        """Return the covariate ``x`` of ``logit p = a + b x`` at each dose."""

    @abstractmethod
    def prior_constants(self) -> np.ndarray:
        """Return the prior's constants in the kernel's order (its ``problem`` tuple)."""

    @cached_property
    def _quadrature_constants(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return what every fit reads of the model's options alone, computed once.

        The transformed dose levels, the prior's constants, and its centre and scale.
        """
        levels = self.scaled_dose(np.asarray(self.dose_levels, dtype=float))
        centre, scale = self.prior_location()
        prior = self.prior_constants()
        return levels, prior, np.asarray(centre, dtype=float), np.asarray(scale, dtype=float)

    def quadrature(self, summary: DoseSummary) -> LogisticQuadrature:
        """Fit the Gauss-Legendre rule to the posterior given the patients and DLTs per dose."""
        levels, prior, centre, scale = self._quadrature_constants
        try:
            return LogisticQuadrature.fit(
                self.quadrature_model,
                self.scaled_dose(summary.dose),
                summary.n,
                summary.y,
                levels,
                prior,
                centre,
                scale,
            )
        except FloatingPointError as error:
            raise self._unintegrable(error) from None

    def _posterior(self, summary: DoseSummary) -> DosePosterior:
        """Integrate the posterior by quadrature (no cache).

        The rates at the nodes, the rates' means and variances and the parameters' means are
        computed when first read: the rules of these models read tails only, and the rates
        cost as much as the rule.
        """
        quadrature = self.quadrature(summary)
        return DosePosterior._of_engine(
            dose_levels=self.dose_levels,
            rates=Deferred(lambda: {"p_dlt": quadrature.rates}, keys=("p_dlt",)),
            weights=quadrature.weights,
            tails={"p_dlt": GridTails(quadrature, self)},
            means=Deferred(lambda: {"p_dlt": quadrature.rate_moments[0]}, keys=("p_dlt",)),
            variances=Deferred(lambda: {"p_dlt": quadrature.rate_moments[1]}, keys=("p_dlt",)),
            quadrature_points=True,
            parameter_mean=Deferred(lambda: self.parameter_means(quadrature)),
            grid=quadrature,
            **self._posterior_fields(quadrature),
        )

    def _posterior_fields(self, quadrature: LogisticQuadrature) -> dict:
        """Return further fields of the posterior a model defines (e.g. EWOC's ``mtd``).

        Given to the posterior as it is built: a ``dataclasses.replace`` afterwards costs a
        decision several microseconds. None here.
        """
        return {}

    def parameter_means(self, quadrature: LogisticQuadrature) -> dict[str, float]:
        """Return the posterior mean of each scalar free variable of the PyMC model."""
        free = self.free_values(quadrature.nodes)
        return {
            name: float(quadrature.weights @ value)
            for name, value in free.items()
            if np.ndim(value) == 1
        }

    def unconstrained_mean(self, posterior: DosePosterior) -> np.ndarray:
        """Return the posterior mean of the unconstrained coordinates, shape (2,)."""
        quadrature = posterior.grid
        assert isinstance(quadrature, LogisticQuadrature)  # kept by _posterior
        return quadrature.mean
