r"""Dose-finding by the posterior alpha-quantile of the MTD (seed 001, Algorithm 2; EWOC).

The next dose is :math:`x_{n+1} = \Pi_n^{-1}(\alpha)`, the :math:`\alpha`-quantile of the
posterior of the MTD, so that :math:`P(\mathrm{MTD} < x_{n+1} \mid \mathcal F_n) \le \alpha`
(eq (10)): :math:`\alpha` is the feasibility bound of overdose control. Practical options
(seed 001, Discussion) restrict the choice, in this order: no dose above the last one plus
``max_increment``; no dose below the last one (``monotone``); then the dose is moved to a
level of ``dose_levels``, the nearest one (the seed's rule) or the highest one not above it
(``rounding="down"``, EWOC's, which keeps the overdose control). Every option that changes
the dose is recorded in ``Decision.bound_by``, and the posterior probability of overdosing at
the dose finally chosen is reported, so a user sees what the options cost in overdose control.

The rule needs two functions of the posterior, its quantile and its CDF. :meth:`decide`
takes them from MCMC draws in an InferenceData (:class:`SampledMTD`, after the convergence
checks); :meth:`choose` takes any :class:`MTDPosterior`, e.g. the exact quadrature posterior
of :meth:`dosezoo.models.ThreePND.mtd_posterior`, which designs and simulations use.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport
from dosezoo.errors import ConvergenceError


class MTDPosterior(Protocol):
    """What the rule needs from a posterior of the MTD."""

    def quantile(self, p: float) -> float:
        """Posterior ``p``-quantile of the MTD."""

    def cdf(self, x: float) -> float:
        """Posterior probability that the MTD is below ``x``."""

    @property
    def report(self) -> ConvergenceReport:
        """Whether the posterior computation can be trusted, with its diagnostics."""


@dataclass(frozen=True, eq=False)
class SampledMTD:
    """The posterior of the MTD as MCMC draws, with the convergence report of the fit.

    Attributes
    ----------
    draws : numpy.ndarray
        Posterior draws of the MTD (all chains).
    report : ConvergenceReport
        The fit's diagnostics on ``mtd``.
    """

    draws: np.ndarray
    report: ConvergenceReport

    @classmethod
    def from_idata(cls, idata: xr.DataTree, criteria: ConvergenceCriteria) -> "SampledMTD":
        """Read ``mtd`` from a fit's ``posterior`` group and judge it by ``criteria``."""
        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise TypeError(
                f"expected an InferenceData (xarray.DataTree) with a posterior group, got "
                f"{type(idata).__name__}"
            )
        if "mtd" not in idata["posterior"].data_vars:
            raise ValueError("the posterior has no 'mtd' variable; fit a model that defines it")
        return cls(
            draws=idata["posterior"]["mtd"].to_numpy().ravel(),
            report=criteria.check(idata, ["mtd"]),
        )

    def quantile(self, p: float) -> float:
        """Empirical ``p``-quantile of the draws."""
        return float(np.quantile(self.draws, p))

    def cdf(self, x: float) -> float:
        """Fraction of draws below ``x``."""
        return float(np.mean(self.draws < x))


@dataclass(frozen=True)
class MTDQuantileRule:
    """Next dose = posterior ``alpha``-quantile of ``mtd``, with the seed's practical options.

    Parameters
    ----------
    alpha : float
        Feasibility bound in (0, 0.5]: the largest tolerated posterior probability that the
        next dose exceeds the MTD.
    dose_levels : sequence of float, optional
        Discrete doses; the chosen dose is moved to the nearest level.
    rounding : {"nearest", "down"}
        How a dose is moved to ``dose_levels``: the nearest level (seed 001) or the highest
        level not above it (EWOC; keeps ``P(overdose) <= alpha`` when no other option binds).
    monotone : bool
        Never de-escalate below the last dose given.
    max_increment : float, optional
        Largest increase over the last dose given.
    convergence : ConvergenceCriteria
        Checks on ``mtd`` that the fit must pass; the rule refuses to act otherwise.
    """

    alpha: float = 0.1
    dose_levels: Sequence[float] | None = None
    rounding: Literal["nearest", "down"] = "nearest"
    monotone: bool = False
    max_increment: float | None = None
    convergence: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)

    def __post_init__(self) -> None:
        """Validate the options, naming the one at fault."""
        if not (isinstance(self.alpha, int | float) and 0 < self.alpha <= 0.5):
            raise ValueError(f"MTDQuantileRule: alpha must lie in (0, 0.5], got {self.alpha!r}")
        if self.dose_levels is not None:
            try:
                levels = np.asarray(self.dose_levels, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(
                    f"MTDQuantileRule: dose_levels must be numbers, got {self.dose_levels!r}"
                ) from None
            if (
                levels.ndim != 1
                or levels.size == 0
                or not np.all(np.isfinite(levels))
                or np.any(levels <= 0)
            ):
                raise ValueError(
                    f"MTDQuantileRule: dose_levels must be a non-empty list of finite doses > 0, "
                    f"got {self.dose_levels!r}"
                )
            if np.any(np.diff(levels) <= 0):
                raise ValueError(
                    f"MTDQuantileRule: dose_levels must be increasing, got {self.dose_levels!r}"
                )
            object.__setattr__(self, "dose_levels", tuple(float(v) for v in levels))
        if self.rounding not in ("nearest", "down"):
            raise ValueError(
                f"MTDQuantileRule: rounding must be 'nearest' or 'down', got {self.rounding!r}"
            )
        if not isinstance(self.monotone, bool | np.bool_):
            raise ValueError(
                f"MTDQuantileRule: monotone must be True or False, got {self.monotone!r}"
            )
        if self.max_increment is not None and not (
            np.isfinite(self.max_increment) and self.max_increment > 0
        ):
            raise ValueError(
                f"MTDQuantileRule: max_increment must be > 0, got {self.max_increment!r}"
            )

    def decide(self, idata: xr.DataTree, data: TrialData) -> Decision:
        """Choose the next dose from a fit whose posterior has an ``mtd`` variable.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of the trial so far (any MCMC engine).
        data : TrialData
            The trial so far (its last dose anchors ``monotone`` and ``max_increment``).

        Returns
        -------
        Decision

        Raises
        ------
        ConvergenceError
            If the fit fails the convergence criteria on ``mtd``.
        """
        return self.choose(SampledMTD.from_idata(idata, self.convergence), data)

    def choose(self, posterior: MTDPosterior, data: TrialData) -> Decision:
        """Choose the next dose from a posterior of the MTD.

        Parameters
        ----------
        posterior : MTDPosterior
            E.g. :class:`SampledMTD` or the quadrature posterior of 3PND.
        data : TrialData
            The trial so far.

        Returns
        -------
        Decision

        Raises
        ------
        ConvergenceError
            If ``posterior.report`` records a failure.
        """
        if not isinstance(data, TrialData):
            raise TypeError(f"MTDQuantileRule needs a TrialData, got {type(data).__name__}")
        report = posterior.report
        if not report.ok:
            raise ConvergenceError(
                "MTDQuantileRule will not act on this fit: " + "; ".join(report.failures)
            )
        quantile = posterior.quantile(self.alpha)
        dose, bound_by = quantile, []
        last = data.last_dose if data.n_patients else None
        if last is not None and self.max_increment is not None and dose > last + self.max_increment:
            dose = last + self.max_increment
            bound_by.append("max_increment")
        if last is not None and self.monotone and dose < last:
            dose = last
            bound_by.append("monotone")
        if self.dose_levels is not None:
            unrounded, dose = dose, self._to_level(dose, last)
            if dose != unrounded:
                bound_by.append("dose_levels")
        return Decision(
            next_dose=dose,
            quantities={
                "alpha": self.alpha,
                "mtd_quantile": quantile,
                "p_overdose": posterior.cdf(dose),
            },
            bound_by=tuple(bound_by),
            diagnostics=report.table,
        )

    def _to_level(self, dose: float, last: float | None) -> float:
        """Nearest level to ``dose`` that keeps the monotone and increment options."""
        levels = np.asarray(self.dose_levels)
        allowed = np.ones(levels.size, dtype=bool)
        if last is not None and self.max_increment is not None:
            allowed &= levels <= last + self.max_increment
        if last is not None and self.monotone:
            allowed &= levels >= last
        if not allowed.any():
            raise ValueError(
                f"MTDQuantileRule: no dose level is within max_increment={self.max_increment} "
                f"of the "
                f"last dose {last} without de-escalating; levels are {self.dose_levels}"
            )
        candidates = levels[allowed]
        if self.rounding == "down":
            below = candidates[candidates <= dose]
            # every allowed level is above the dose: the lowest one is the least overdosing
            return float(below[-1] if below.size else candidates[0])
        return float(candidates[np.argmin(np.abs(candidates - dose))])
