r"""The CRM design: the dose whose estimated DLT probability is closest to the target.

O'Quigley, Pepe and Fisher (1990), with the options of dfcrm (Cheung 2011) and of seed 003,
Appendix C.1. After each cohort the CRM posterior (:class:`~dosezoo.models.CRM`) gives an
estimate :math:`\hat p_k` per level, either dfcrm's plug-in :math:`p_k(E[\beta])`
(``estimate="plugin"``) or the posterior mean :math:`E[p_k]` (``"mean"``, seed 003). The next
dose is :math:`\arg\min_k |\hat p_k - \phi|` (the lower level among ties), then restricted:

- ``max_step_up`` (default 1): at most that many levels above the current dose, i.e. no
  skipping when escalating; ``max_step_down`` (default off; seed 003 uses 1) likewise down;
- safety stop: when the lowest dose has at least ``safety_min_patients`` patients and
  :math:`P(p_1 > \phi \mid \text{data}) > c` (``safety_cutoff``, 0.95 by default, following
  BOIN's elimination rule; seed 003's own value was lost from its text), the trial stops and no
  dose is recommended.

At the end the recommended dose is :math:`\arg\min_k |\hat p_k - \phi|` over all levels
(dfcrm's MTD), unless the safety rule stops the trial.
"""

from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

import numpy as np

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.model_based import DesignEngine, ModelBasedDesign
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.levels import level_index, positive_int, real_number
from dosezoo.models.binary import DLTPosterior
from dosezoo.models.crm import CRM

__all__ = ["CRMDesign"]

_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class CRMDesign(ModelBasedDesign):
    r"""Continual reassessment method with dfcrm's conventions and seed 003's options.

    Parameters
    ----------
    model : CRM
        The working model, skeleton, prior and target.
    start_dose : float, optional
        First cohort's dose, one of the model's levels (the lowest by default).
    cohort_size, sample_size : int
        Patients per cohort (3) and maximum (36).
    estimate : {"plugin", "mean"}
        :math:`p_k(E[\beta])` (dfcrm) or :math:`E[p_k]` (seed 003).
    max_step_up : int or None
        Most levels above the current dose the next one may be (1: no skipping); None: free.
    max_step_down : int or None
        Most levels below the current dose the next one may be; None (default): free.
    safety_cutoff : float or None
        Stop when :math:`P(p_1 > \phi) >` this (0.95); None: never.
    safety_min_patients : int
        Patients the lowest dose needs before the safety rule applies (3).
    engine : {"grid", "nuts"}
        Exact grid posterior (default) or NUTS fits of the PyMC model.
    draws, chains, random_seed, convergence
        NUTS settings and the checks its fits must pass.
    """

    model: CRM
    _: KW_ONLY
    start_dose: float | None = None
    cohort_size: int = 3
    sample_size: int = 36
    estimate: Literal["plugin", "mean"] = "plugin"
    max_step_up: int | None = 1
    max_step_down: int | None = None
    safety_cutoff: float | None = 0.95
    safety_min_patients: int = 3
    engine: DesignEngine = "grid"
    draws: int = 1000
    chains: int = 2
    random_seed: int = 0
    convergence: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "CRMDesign"
        self._validate_conduct(owner, CRM)
        if self.estimate not in ("plugin", "mean"):
            raise ValueError(f"{owner}: estimate must be 'plugin' or 'mean', got {self.estimate!r}")
        for name in ("max_step_up", "max_step_down"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        if self.safety_cutoff is not None:
            cutoff = real_number(owner, "safety_cutoff", self.safety_cutoff)
            if not 0 < cutoff < 1:
                raise ValueError(
                    f"{owner}: safety_cutoff must lie in (0, 1) or be None, got "
                    f"{self.safety_cutoff!r}"
                )
            object.__setattr__(self, "safety_cutoff", cutoff)
        object.__setattr__(
            self,
            "safety_min_patients",
            positive_int(owner, "safety_min_patients", self.safety_min_patients),
        )

    # ------------------------------------------------------------------ estimates

    def estimates(self, posterior: DLTPosterior) -> dict[str, np.ndarray]:
        """Return dfcrm's plug-in estimate, the posterior mean and the one the design uses."""
        plugin = self.model.p_dlt(posterior.parameter_mean["beta"])
        mean = posterior.mean()
        return {
            "plugin": plugin,
            "mean": mean,
            "used": plugin if self.estimate == "plugin" else mean,
        }

    def _closest(self, estimate: np.ndarray) -> int:
        distance = np.abs(estimate - self.model.target)
        return int(np.flatnonzero(distance <= distance.min() + _TIE_TOLERANCE)[0])

    def _safety_stop(self, posterior: DLTPosterior, data: TrialData) -> tuple[str | None, float]:
        """Why the safety rule stops the trial (or None), and ``P(p_1 > target)``."""
        p_too_toxic = float(posterior.prob_above(self.model.target)[0])
        if self.safety_cutoff is None:
            return None, p_too_toxic
        at_lowest = int(np.sum(np.asarray(data.dose, float) == self.model.dose_levels[0]))
        if at_lowest >= self.safety_min_patients and p_too_toxic > self.safety_cutoff:
            return (
                f"safety: P(p > {self.model.target:g} at the lowest dose "
                f"{self.model.dose_levels[0]:g}) = {p_too_toxic:.3f} > {self.safety_cutoff:g} "
                f"with {at_lowest} patients there",
                p_too_toxic,
            )
        return None, p_too_toxic

    def _quantities(
        self, posterior: DLTPosterior, estimates: dict[str, np.ndarray], p_too_toxic: float
    ) -> dict[str, float]:
        quantities = {
            "beta_mean": posterior.parameter_mean["beta"],
            "p_lowest_too_toxic": p_too_toxic,
        }
        for name in ("plugin", "mean"):
            quantities |= {f"p_{name}_{k}": float(v) for k, v in enumerate(estimates[name])}
        return quantities

    # ------------------------------------------------------------------ rule

    def choose(self, posterior: DLTPosterior, data: TrialData) -> Decision:
        """Decide the next dose from the posterior of the trial so far.

        Parameters
        ----------
        posterior : DLTPosterior
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
        reason, p_too_toxic = self._safety_stop(posterior, data)
        estimates = self.estimates(posterior)
        quantities = self._quantities(posterior, estimates, p_too_toxic)
        if reason:
            return Decision(None, stop_reason=reason, quantities=quantities)
        levels = self.model.dose_levels
        current = int(level_index(np.array([data.last_dose]), levels, owner="CRMDesign")[0])
        level = self._closest(estimates["used"])
        bound_by: list[str] = []
        if self.max_step_up is not None and level > current + self.max_step_up:
            level = current + self.max_step_up
            bound_by.append("max_step_up")
        if self.max_step_down is not None and level < current - self.max_step_down:
            level = current - self.max_step_down
            bound_by.append("max_step_down")
        return Decision(levels[level], quantities=quantities, bound_by=tuple(bound_by))

    def select(self, posterior: DLTPosterior, data: TrialData) -> Decision:
        """Recommend the level whose estimate is closest to the target (dfcrm's MTD).

        Parameters
        ----------
        posterior : DLTPosterior
            The posterior given every patient.
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
            The MTD, or a stop when the safety rule applies.
        """
        reason, p_too_toxic = self._safety_stop(posterior, data)
        estimates = self.estimates(posterior)
        quantities = self._quantities(posterior, estimates, p_too_toxic)
        if reason:
            return Decision(None, stop_reason=f"no MTD: {reason}", quantities=quantities)
        level = self._closest(estimates["used"])
        return Decision(self.model.dose_levels[level], quantities=quantities)

    def describe(self) -> dict[str, float | int | str | bool | None]:
        """Flat record of the design's parameters (for simulation results)."""
        return self._conduct_record() | {
            "estimate": self.estimate,
            "max_step_up": self.max_step_up,
            "max_step_down": self.max_step_down,
            "safety_cutoff": self.safety_cutoff,
            "safety_min_patients": self.safety_min_patients,
        }
