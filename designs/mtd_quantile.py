r"""Dose-finding by the posterior alpha-quantile of the MTD (seed 001, Algorithm 2; EWOC).

The next dose is :math:`x_{n+1} = \Pi_n^{-1}(\alpha)`, the :math:`\alpha`-quantile of the
posterior of the MTD, so that :math:`P(\mathrm{MTD} < x_{n+1} \mid \mathcal F_n) \le \alpha`
(eq (10)): :math:`\alpha` is the feasibility bound of overdose control. Practical options
(seed 001, Discussion) restrict the choice, in this order: no dose above the last one plus
``max_increment``; no dose below the last one (``monotone``); then the dose is moved to a
level of ``dose_levels``, the nearest one. Every option that changes the dose is recorded in
``Decision.bound_by``, and the posterior probability of overdosing at the dose finally chosen
is reported, so a user sees what the options cost in overdose control.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.designs.decision import Decision
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.errors import ConvergenceError


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
    monotone : bool
        Never de-escalate below the last dose given.
    max_increment : float, optional
        Largest increase over the last dose given.
    convergence : ConvergenceCriteria
        Checks on ``mtd`` that the fit must pass; the rule refuses to act otherwise.
    """

    alpha: float = 0.1
    dose_levels: Sequence[float] | None = None
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
        if self.max_increment is not None and not (
            np.isfinite(self.max_increment) and self.max_increment > 0
        ):
            raise ValueError(
                f"MTDQuantileRule: max_increment must be > 0, got {self.max_increment!r}"
            )

    def decide(self, idata: xr.DataTree, data: TrialData) -> Decision:
        """Choose the next dose from a posterior that has an ``mtd`` variable.

        Parameters
        ----------
        idata : xarray.DataTree
            A fit of the trial so far (any engine).
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
        report = self.convergence.check(idata, ["mtd"])
        if not report.ok:
            raise ConvergenceError(
                "MTDQuantileRule will not act on this fit: " + "; ".join(report.failures)
            )
        mtd = idata["posterior"]["mtd"].to_numpy().ravel()
        quantile = float(np.quantile(mtd, self.alpha))
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
                "p_overdose": float(np.mean(mtd < dose)),
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
        return float(candidates[np.argmin(np.abs(candidates - dose))])
