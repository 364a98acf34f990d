r"""Backfill: patients enrolled at lower, cleared doses while an escalation cohort is pending.

"Backfilling is not a design": it is a way of conducting any escalation design (Dehbi et al.
2021; Barnett et al. 2022). While the outcomes of the current escalation cohort are pending
(inside their DLT assessment window), patients who arrive are given a dose *below* the
current escalation dose that the trial has already cleared, instead of waiting; their
outcomes enter every later decision and the final recommendation like any other patient's.

Time and accrual (the conduct of a timed trial, as the simulation engine runs it):

- patients arrive by a Poisson process of rate :math:`\lambda` (``arrival_rate``: the
  inter-arrival times are exponential with mean :math:`1/\lambda`);
- a patient's DLT outcome is known ``dlt_window`` time units after enrolment, not before;
- an escalation cohort takes the next ``cohort_size`` arrivals after a decision; the next
  decision is made when the last of them completes the window, on the patients whose
  outcomes are known then (a backfill patient still in the window is left out);
- a patient who arrives while the cohort is pending is a backfill patient at a dose the
  design finds eligible (:meth:`Backfill.cleared`, then the rule's
  :meth:`~dosezoo.designs.base.Rule.backfill_eligible`), within the caps; with no eligible
  dose, or the caps reached, the patient is turned away (not enrolled; counted);
- ``sample_size`` of the conduct counts every patient, escalation and backfill (a choice:
  the design's maximum sample size stays the trial's, and the caps bound the backfill part);
  the trial ends when the last patient completes the window, and the recommendation reads
  every patient.

Cleared dose (the default of every design; a rule removes further doses it eliminated):
a dose :math:`d_k` below the current escalation dose, with at least ``min_cleared`` patients
whose outcomes are known, whose observed DLT rate :math:`y_k / n_k` is below
``max_dlt_rate``. Rules remove the doses they exclude (BOIN's elimination, the overdose
control of BLRM, EWOC's feasibility bound, the admissible set of the LSE and BO designs, the
overdose and futility exclusions of the joint-probit selection), and the design removes those
over its hard overdose limit (``conduct.max_overdose_probability``).
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dosezoo.checks import choice, integer, positive_int, positive_number, probability, real_number
from dosezoo.data import TrialData
from dosezoo.levels import level_counts
from dosezoo.protocols import Described

__all__ = ["Backfill"]


@dataclass(frozen=True)
class Backfill:
    """How backfill patients are enrolled during the escalation (see the module docstring).

    Parameters
    ----------
    arrival_rate : float
        Patients arriving per unit time (a Poisson process), > 0.
    dlt_window : float
        Time units after enrolment until a patient's DLT outcome is known, > 0.
    per_dose_cap : int
        Most backfill patients at one dose, >= 0.
    total_cap : int
        Most backfill patients in the trial, >= 0.
    allocation : {"highest", "random"}
        The highest eligible dose, or one drawn uniformly among the eligible doses (Dehbi
        et al. 2021).
    min_cleared : int
        Patients with known outcomes a dose needs before it takes backfill patients, >= 1.
    max_dlt_rate : float
        A dose whose observed DLT rate among patients with known outcomes reaches this takes
        no more backfill patients, in (0, 1]; 1/3 by default (the 3+3's 2 DLTs in 6).
    """

    arrival_rate: float
    dlt_window: float
    per_dose_cap: int = 6
    total_cap: int = 12
    allocation: Literal["highest", "random"] = "highest"
    min_cleared: int = 3
    max_dlt_rate: float = 1 / 3

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "Backfill"
        for name in ("arrival_rate", "dlt_window"):
            object.__setattr__(self, name, positive_number(owner, name, getattr(self, name)))
        for name in ("per_dose_cap", "total_cap"):
            object.__setattr__(self, name, integer(owner, name, getattr(self, name), minimum=0))
        object.__setattr__(
            self, "min_cleared", positive_int(owner, "min_cleared", self.min_cleared)
        )
        choice(owner, "allocation", self.allocation, ("highest", "random"))
        rate = real_number(owner, "max_dlt_rate", self.max_dlt_rate)
        if rate != 1:
            rate = probability(owner, "max_dlt_rate", rate)
        object.__setattr__(self, "max_dlt_rate", float(rate))

    def cleared(
        self, data: TrialData, dose_levels: tuple[float, ...], current: float
    ) -> tuple[float, ...]:
        """Return the doses below ``current`` cleared for backfill by the data.

        Parameters
        ----------
        data : TrialData
            The patients whose outcomes are known (a ``dlt`` outcome).
        dose_levels : tuple of float
            The design's dose levels, increasing.
        current : float
            The dose of the pending escalation cohort.

        Returns
        -------
        tuple of float
            Doses below ``current`` with at least ``min_cleared`` patients and an observed
            DLT rate below ``max_dlt_rate``, increasing.
        """
        counts = level_counts(data, dose_levels, owner="Backfill")
        if isinstance(current, bool) or current not in dose_levels:  # NaN, text, a bool
            raise ValueError(
                f"Backfill.cleared: current must be one of the dose levels {tuple(dose_levels)}, "
                f"got {current!r}"
            )
        levels = np.asarray(dose_levels, dtype=float)
        ok = (
            (levels < current)
            & (counts.n >= self.min_cleared)
            & (counts.y < self.max_dlt_rate * counts.n)
        )
        return tuple(float(dose) for dose in levels[ok])

    def choose(
        self, eligible: tuple[float, ...], backfilled: dict[float, int], rng: np.random.Generator
    ) -> float | None:
        """Return the dose of the next backfill patient, or None to turn the patient away.

        Parameters
        ----------
        eligible : tuple of float
            The doses eligible now, increasing.
        backfilled : dict of float to int
            Backfill patients so far at each dose.
        rng : numpy.random.Generator
            The trial's generator: one ``rng.integers`` draw for a ``"random"`` choice among
            two or more open doses, none otherwise.
        """
        if any(count < 0 for count in backfilled.values()):
            raise ValueError(f"Backfill.choose: backfilled counts must be >= 0, got {backfilled}")
        if list(eligible) != sorted(eligible):
            raise ValueError(f"Backfill.choose: eligible doses must increase, got {eligible}")
        if sum(backfilled.values()) >= self.total_cap:
            return None
        open_doses = [dose for dose in eligible if backfilled.get(dose, 0) < self.per_dose_cap]
        if not open_doses:
            return None
        if self.allocation == "highest" or len(open_doses) == 1:
            return open_doses[-1]
        return open_doses[int(rng.integers(len(open_doses)))]

    def describe(self) -> Described:
        """Flat record of the options (for simulation results)."""
        return {
            "arrival_rate": self.arrival_rate,
            "dlt_window": self.dlt_window,
            "per_dose_cap": self.per_dose_cap,
            "total_cap": self.total_cap,
            "allocation": self.allocation,
            "min_cleared": self.min_cleared,
            "max_dlt_rate": self.max_dlt_rate,
        }
