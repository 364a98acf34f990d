r"""The CRM rule: the dose whose estimated DLT probability is closest to the target.

O'Quigley, Pepe and Fisher (1990), with the options of dfcrm (Cheung 2011) and of Seno et al.
(2025, Appendix C.1). After each cohort the CRM posterior (:class:`~dosezoo.models.CRM`) gives
an estimate :math:`\hat p_k` per level, either dfcrm's plug-in :math:`p_k(E[\beta])`
(``estimate="plugin"``) or the posterior mean :math:`E[p_k]` (``"mean"``, Seno et al.). The
next dose is :math:`\arg\min_k |\hat p_k - \phi|` (the lower level among ties), then
restricted:

- ``max_step_up`` (default 1): at most that many levels above the current dose, i.e. no
  skipping when escalating; ``max_step_down`` (default off; Seno et al. use 1) likewise down;
- ``coherent`` (default off): dfcrm's coherent restriction (``crmsim``'s ``restrict = TRUE``,
  its default; Cheung 2005, *Biometrika* 92, 863-873): after a cohort whose proportion of DLTs
  is at least :math:`\phi`, the next dose is not above the current one;
- safety stop: when the lowest dose has at least ``safety_min_patients`` patients and
  :math:`P(p_1 > \phi \mid \text{data}) > c` (``safety_cutoff``, 0.95 by default, following
  BOIN's elimination rule; Seno et al.'s own value was lost from their text), the trial stops
  and no dose is recommended.

At the end the recommended dose is :math:`\arg\min_k |\hat p_k - \phi|` over all levels
(dfcrm's MTD), unless the safety rule stops the trial. Like every model-based design, the CRM
also keeps the package's hard overdose limit (:mod:`dosezoo.designs.base`), which dfcrm does
not have: no cohort at a dose with :math:`P(\mathrm{MTD} < d) >`
``conduct.max_overdose_probability`` (0.5), and the trial stops with no MTD when even the
lowest level exceeds it once ``overdose_min_patients`` had it; ``max_overdose_probability=1``
turns it off.
"""

import functools
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from dosezoo.checks import choice, positive_int, probability
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import (
    Design,
    ModelRule,
    compose,
    dataclass_options,
    mtd_level_below,
    mtd_level_below_mcse,
)
from dosezoo.designs.registry import Family, register
from dosezoo.levels import level_index
from dosezoo.models.crm import CRM
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = ["CRMRule", "crm_design"]

_TIE_TOLERANCE = 1e-12


@functools.cache
def _estimate_keys(name: str, size: int) -> tuple[str, ...]:
    """Return the quantity names of an estimate per level: ``p_<name>_<k>``."""
    return tuple(f"p_{name}_{k}" for k in range(size))


@dataclass(frozen=True)
class CRMRule(ModelRule):
    r"""Continual reassessment method with dfcrm's conventions and Seno et al.'s options.

    Parameters
    ----------
    estimate : {"plugin", "mean"}
        :math:`p_k(E[\beta])` (dfcrm) or :math:`E[p_k]` (Seno et al. 2025).
    max_step_up : int or None
        Most levels above the current dose the next one may be (1: no skipping); None: free.
    max_step_down : int or None
        Most levels below the current dose the next one may be; None (default): free.
    safety_cutoff : float or None
        Stop when :math:`P(p_1 > \phi) >` this (0.95); None: never.
    safety_min_patients : int
        Patients the lowest dose needs before the safety rule applies (3).
    coherent : bool
        Never escalate after a cohort with a proportion of DLTs at or above the target, as
        dfcrm's ``crmsim`` (``restrict = TRUE``) (False). The rule then reads the last
        cohort's patients and DLTs besides the counts per level.

    Notes
    -----
    The target :math:`\phi` and the dose levels are the model's (:class:`~dosezoo.models.CRM`).
    """

    label: ClassVar[str] = "CRM"
    model_type: ClassVar[type] = CRM

    _: KW_ONLY
    estimate: Literal["plugin", "mean"] = "plugin"
    max_step_up: int | None = 1
    max_step_down: int | None = None
    safety_cutoff: float | None = 0.95
    safety_min_patients: int = 3
    coherent: bool = False

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "CRMRule"
        choice(owner, "estimate", self.estimate, ("plugin", "mean"))
        for name in ("max_step_up", "max_step_down"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        if self.safety_cutoff is not None:
            cutoff = probability(owner, "safety_cutoff", self.safety_cutoff)
            object.__setattr__(self, "safety_cutoff", cutoff)
        object.__setattr__(
            self,
            "safety_min_patients",
            positive_int(owner, "safety_min_patients", self.safety_min_patients),
        )
        if not isinstance(self.coherent, bool | np.bool_):
            raise ValueError(f"{owner}: coherent must be True or False, got {self.coherent!r}")
        object.__setattr__(self, "coherent", bool(self.coherent))

    # ------------------------------------------------------------------ estimates

    def estimates(self, posterior: DosePosterior) -> dict[str, np.ndarray]:
        """Return dfcrm's plug-in estimate, the posterior mean and the one the rule uses."""
        plugin = posterior.point_estimates["p_dlt"]
        mean = posterior.mean()
        return {
            "plugin": plugin,
            "mean": mean,
            "used": plugin if self.estimate == "plugin" else mean,
        }

    def _closest(self, estimate: np.ndarray) -> int:
        """Return the level whose estimate is closest to the target (the lower of two as close).

        The estimates increase with the level (the skeleton's rates do, at every ``beta``), so
        the closest is the highest level at or below the target or the next one up: only those
        two are compared (two within ``_TIE_TOLERANCE`` tie). Comparing every level's
        ``|p - target|`` instead made all of them tie when every estimate was within the
        tolerance of 0 (a vague prior after patients without a DLT), and the lowest won.
        """
        # On Python floats: a few levels, called at every decision of a simulation.
        target = self.model.target
        values = estimate.tolist()
        above = sum(value > target for value in values)
        first_above = len(values) - above
        if first_above in (0, len(values)):
            return min(first_above, len(values) - 1)
        below_distance = target - values[first_above - 1]
        closer_above = values[first_above] - target < below_distance - _TIE_TOLERANCE
        return first_above if closer_above else first_above - 1

    def _safety_stop(self, posterior: DosePosterior, data: TrialData) -> tuple[str | None, float]:
        """Why the safety rule stops the trial (or None), and ``P(p_1 > target)``."""
        target = self.model.target
        p_too_toxic = posterior.prob_above_at(target, 0)
        if self.safety_cutoff is None:
            return None, p_too_toxic
        lowest = self.model.dose_levels[0]
        # On Python floats (every decision comes here). The patients first: the comparison is
        # recorded (for its Monte Carlo error) only where it decides.
        at_lowest = data.dose.tolist().count(lowest)
        if at_lowest < self.safety_min_patients or not posterior.exceeds_value(
            "p_lowest_too_toxic",
            p_too_toxic,
            self.safety_cutoff,
            lambda: float(posterior.mcse_above(target)[0]),
        ):
            return None, p_too_toxic
        return (
            f"safety: P(p > {target:g} at the lowest dose {lowest:g}) = {p_too_toxic:.3f} > "
            f"{self.safety_cutoff:g} with {at_lowest} patients there",
            p_too_toxic,
        )

    @staticmethod
    def _quantities(
        posterior: DosePosterior, estimates: dict[str, np.ndarray], p_too_toxic: float
    ) -> dict[str, float]:
        quantities = {
            "beta_mean": posterior.parameter_mean["beta"],
            "p_lowest_too_toxic": p_too_toxic,
        }
        for name in ("plugin", "mean"):
            values = estimates[name].tolist()
            quantities.update(zip(_estimate_keys(name, len(values)), values, strict=True))
        return quantities

    # ------------------------------------------------------------------ rule

    def reads_counts_only(self) -> bool:
        """Return True: the rule reads the counts per level and the current level.

        And the last cohort when it is coherent (:meth:`reads_last_cohort`).
        """
        return True

    def reads_last_cohort(self) -> bool:
        """Whether the rule reads the last cohort's patients and DLTs: when coherent."""
        return self.coherent

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next dose from the posterior of the trial so far.

        Parameters
        ----------
        posterior : DosePosterior
            The CRM posterior given ``data`` (grid or a fit).
        data : TrialData
            The trial so far, at least one patient; its last dose is the current dose.

        Returns
        -------
        Decision
            The dose, or a stop by the safety rule; quantities ``beta_mean``,
            ``p_lowest_too_toxic`` and both estimates per level (``p_plugin_<k>``,
            ``p_mean_<k>``).
        """
        assert posterior is not None
        reason, p_too_toxic = self._safety_stop(posterior, data)
        estimates = self.estimates(posterior)
        quantities = self._quantities(posterior, estimates, p_too_toxic)
        if reason:
            return Decision(None, stop_reason=reason, quantities=quantities)
        levels = self.model.dose_levels
        try:
            current = levels.index(data.last_dose)
        except ValueError:  # off the levels: the error names the dose
            current = int(level_index(np.array([data.last_dose]), levels, owner="CRMRule")[0])
        level = self._closest(estimates["used"])
        bound_by: list[str] = []
        if self.max_step_up is not None and level > current + self.max_step_up:
            level = current + self.max_step_up
            bound_by.append("max_step_up")
        if self.max_step_down is not None and level < current - self.max_step_down:
            level = current - self.max_step_down
            bound_by.append("max_step_down")
        if self.coherent and level > current:
            last_cohort = np.asarray(data.column("dlt"))[data.last_cohort]
            if last_cohort.size and last_cohort.mean() >= self.model.target:
                level = current
                bound_by.append("coherence")
        return Decision(levels[level], quantities=quantities, bound_by=tuple(bound_by))

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the level whose estimate is closest to the target (dfcrm's MTD).

        Parameters
        ----------
        posterior : DosePosterior
            The posterior given every patient.
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
            The MTD, or a stop when the safety rule applies.
        """
        assert posterior is not None
        reason, p_too_toxic = self._safety_stop(posterior, data)
        estimates = self.estimates(posterior)
        quantities = self._quantities(posterior, estimates, p_too_toxic)
        if reason:
            return Decision(None, stop_reason=f"no MTD: {reason}", quantities=quantities)
        level = self._closest(estimates["used"])
        return Decision(self.model.dose_levels[level], quantities=quantities)

    def overdose_probability(self, posterior: DosePosterior | None, dose: float) -> float | None:
        """``P(MTD < dose | data)``, the MTD the level closest to the target.

        See :func:`~dosezoo.designs.base.mtd_level_below`.
        """
        return mtd_level_below(posterior, dose, self.model.target)

    def overdose_mcse(self, posterior: DosePosterior, dose: float) -> float:
        """Monte Carlo standard error of :meth:`overdose_probability`."""
        return mtd_level_below_mcse(posterior, dose, self.model.target)

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        return dataclass_options(self)


def crm_design(model: CRM, **options: Any) -> Design:
    """Return the CRM design: ``Design(model, CRMRule(...), Conduct(...))``.

    Parameters
    ----------
    model : CRM
        The working model, skeleton, prior and target.
    **options
        Options of :class:`CRMRule` and of :class:`~dosezoo.designs.base.Conduct` (start dose
        the lowest level, cohorts of 3, 36 patients by default).

    Returns
    -------
    Design
    """
    return compose(model, CRMRule, options)


register(
    Family(
        name="crm",
        summary=(
            "continual reassessment method (O'Quigley, Pepe and Fisher 1990) with dfcrm's "
            "conventions (Cheung 2011)"
        ),
        model=CRM,
        rule=CRMRule,
        example="crm.toml",
        example_data="binary_cohorts.csv",
    )
)
