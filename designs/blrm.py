r"""The BLRM rule: maximal target probability under overdose control (Neuenschwander 2008).

From the BLRM posterior (:class:`~dosezoo.models.BLRM`) each dose level gets the interval
probabilities of underdosing :math:`p < 0.16`, target toxicity :math:`0.16 \le p < 0.33` and
excessive toxicity :math:`p \ge 0.33`. A level is admissible when

- :math:`P(\text{excessive}) <` ``overdose_cutoff`` (0.25: escalation with overdose control);
- it is at most ``max_increase`` times the current dose (2: at most doubling; None: off);
- with ``no_skipping``, it is at most one level above the highest level given so far.

The next dose is the admissible level with the largest :math:`P(\text{target})` (the lower one
among ties); with no admissible level the trial stops with no MTD once the lowest level had
``safety_min_patients`` patients (3, as the CRM's, BOIN's and Optimus's safety stops), and
before that the next cohort gets the lowest level again (a single DLT in the first patient does
not end a trial). The trial also stops once the next dose has at least ``stop_min_patients``
patients (6) and either :math:`P(\text{target}) \ge` ``stop_target_probability`` (0.5) or the
trial has ``stop_max_patients`` patients (off by default); these are the stopping rules of the
Novartis BLRM designs. At the end of a trial, however it ends, the recommended dose is the level
with the largest :math:`P(\text{target})` among the levels that were given and satisfy the
overdose control: the next dose of a stop by these rules, unless an escalation limit
(``max_increase``, ``no_skipping``) held the next dose below such a level, whose patients are
then the better evidence (the stop records both).
"""

import bisect
import functools
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import numpy as np

from dosezoo.checks import positive_int, real_number
from dosezoo.data import DataError, TrialData
from dosezoo.decision import Decision
from dosezoo.designs.base import (
    Design,
    ModelRule,
    compose,
    dataclass_options,
    rate_above,
    rate_above_mcse,
)
from dosezoo.designs.registry import Family, register
from dosezoo.models.blrm import BLRM
from dosezoo.posterior import DosePosterior
from dosezoo.protocols import Described

__all__ = ["BLRMRule", "blrm_design"]

_TIE_TOLERANCE = 1e-12


@functools.cache
def _interval_keys(names: tuple[str, ...], size: int) -> tuple[str, ...]:
    """Return the quantity names of interval probabilities per level: ``p_<name>_<k>``."""
    return tuple(f"p_{name}_{k}" for name in names for k in range(size))


@dataclass(frozen=True)
class BLRMRule(ModelRule):
    r"""The BLRM rule: interval probabilities with overdose control and escalation limits.

    Parameters
    ----------
    target_interval : tuple of float
        :math:`[0.16, 0.33)`: below is underdosing, from the upper end on excessive toxicity.
    overdose_cutoff : float
        Largest admissible :math:`P(\text{excessive})` (0.25).
    max_increase : float or None
        Largest ratio of the next dose to the current one (2.0); None: no limit.
    no_skipping : bool
        Never more than one level above the highest level given (True).
    stop_min_patients : int or None
        Patients the next dose needs before the trial may stop (6); None: never stop early.
    stop_target_probability : float
        Stop when, in addition, :math:`P(\text{target})` at the next dose is at least this.
    stop_max_patients : int or None
        Or when the trial has this many patients (None: off).
    safety_min_patients : int
        Patients the lowest level needs before no admissible level stops the trial (3); with
        fewer it is given again (``bound_by`` ``"safety_min_patients"``).

    Notes
    -----
    The dose levels are the model's. :func:`blrm_design`'s conduct starts at the lowest level,
    with cohorts of 3 and 36 patients.
    """

    label: ClassVar[str] = "BLRM"
    model_type: ClassVar[type] = BLRM

    _: KW_ONLY
    target_interval: tuple[float, float] = (0.16, 0.33)
    overdose_cutoff: float = 0.25
    max_increase: float | None = 2.0
    no_skipping: bool = True
    stop_min_patients: int | None = 6
    stop_target_probability: float = 0.5
    stop_max_patients: int | None = None
    safety_min_patients: int = 3

    def __post_init__(self) -> None:
        """Validate the options, naming the field at fault."""
        owner = "BLRMRule"
        interval = self.target_interval
        if (
            isinstance(interval, str | bytes)
            or not isinstance(interval, Sequence | np.ndarray)
            or len(interval) != 2
        ):
            raise ValueError(f"{owner}: target_interval must be a pair, got {interval!r}")
        low, high = (real_number(owner, f"target_interval[{i}]", v) for i, v in enumerate(interval))
        if not 0 < low < high < 1:
            raise ValueError(
                f"{owner}: target_interval must satisfy 0 < lower < upper < 1, got {interval!r}"
            )
        object.__setattr__(self, "target_interval", (low, high))
        for name in ("overdose_cutoff", "stop_target_probability"):
            value = real_number(owner, name, getattr(self, name))
            if not 0 < value <= 1:
                raise ValueError(f"{owner}: {name} must lie in (0, 1], got {value!r}")
            object.__setattr__(self, name, value)
        if self.max_increase is not None:
            increase = real_number(owner, "max_increase", self.max_increase)
            if increase <= 1:
                raise ValueError(f"{owner}: max_increase must be > 1 or None, got {increase!r}")
            object.__setattr__(self, "max_increase", increase)
        for name in ("stop_min_patients", "stop_max_patients"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, positive_int(owner, name, getattr(self, name)))
        object.__setattr__(
            self,
            "safety_min_patients",
            positive_int(owner, "safety_min_patients", self.safety_min_patients),
        )
        if not isinstance(self.no_skipping, bool | np.bool_):
            raise ValueError(
                f"{owner}: no_skipping must be True or False, got {self.no_skipping!r}"
            )

    def interval_probabilities(self, posterior: DosePosterior) -> dict[str, np.ndarray]:
        """Return ``underdose``, ``target`` and ``excessive`` probabilities per level."""
        low, high = self.target_interval
        excessive = posterior.prob_above(high)
        underdose = 1.0 - posterior.prob_above(low)
        return {
            "underdose": underdose,
            "target": np.clip(1.0 - underdose - excessive, 0.0, 1.0),
            "excessive": excessive,
        }

    def admissible(self, posterior: DosePosterior, excessive: np.ndarray) -> np.ndarray:
        r"""Return whether each level satisfies the overdose control.

        That is :math:`P(\text{excessive}) <` ``overdose_cutoff``, a comparison of the
        posterior (:meth:`~dosezoo.posterior.DosePosterior.exceeds`): on a fit with Monte Carlo
        error, the design resolves a level too close to the cutoff.
        """
        names = _interval_keys(("excessive",), excessive.size)
        high = self.target_interval[1]
        return ~posterior.exceeds(
            names,
            excessive,
            self.overdose_cutoff,
            lambda: posterior.mcse_above(high),
            inclusive=True,
        )

    def _quantities(self, intervals: dict[str, np.ndarray]) -> dict[str, float]:
        keys = _interval_keys(tuple(intervals), len(self.model.dose_levels))
        values = [value for probabilities in intervals.values() for value in probabilities.tolist()]
        return dict(zip(keys, values, strict=True))

    @staticmethod
    def _best(candidates: Sequence[int], target: Sequence[float]) -> int:
        """Return the candidate level of largest ``target`` (the lowest among ties)."""
        top = max(target[k] for k in candidates)
        return next(k for k in candidates if target[k] >= top - _TIE_TOLERANCE)

    @classmethod
    def _bound_by(
        cls, target: Sequence[float], constraints: Sequence[tuple[str, Sequence[bool]]]
    ) -> tuple[str, ...]:
        """Name each constraint that moved the choice, applied in turn (some level allowed)."""
        names: list[str] = []
        allowed = [True] * len(target)
        choice = cls._best(range(len(target)), target)
        for name, limit in constraints:
            allowed = [ok and within for ok, within in zip(allowed, limit, strict=True)]
            moved = cls._best([k for k, ok in enumerate(allowed) if ok], target)
            if moved != choice:
                names.append(name)
                choice = moved
        return tuple(names)

    def check_data(self, data: TrialData) -> None:
        """Raise a DataError naming the row of a dose above the highest level.

        The model takes any positive dose, and the design a dose off its levels below the
        highest (e.g. a cohort at a lower dose): the model reads it, the rule's selection
        does not. A dose above the levels is none the design could have given (e.g. 200
        typed for 20), and would lift the no-skipping limit, which reads the highest dose
        given, above every level.
        """
        highest = self.model.dose_levels[-1]
        doses = data.dose.tolist()
        if doses and max(doses) > highest:
            row = next(i for i, dose in enumerate(doses) if dose > highest)
            raise DataError(
                f"{self.label}: column 'dose', row {row}: dose {doses[row]!r} is above the "
                f"highest dose level {highest:g}, which the design cannot exceed"
            )

    def reads_counts_only(self) -> bool:
        """Return True: the rule reads the counts per level and the current level only."""
        return True

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide the next dose from the posterior of the trial so far.

        Parameters
        ----------
        posterior : DosePosterior
            The BLRM posterior given ``data``.
        data : TrialData
            The trial so far, at least one patient.

        Returns
        -------
        Decision
            Quantities ``p_underdose_<k>``, ``p_target_<k>``, ``p_excessive_<k>``; ``bound_by``
            names the options that moved the choice away from the level of largest target
            probability, in the order they apply: ``overdose_cutoff`` (the escalation with
            overdose control), ``max_increase``, ``no_skipping``.
        """
        assert posterior is not None
        intervals = self.interval_probabilities(posterior)
        quantities = self._quantities(intervals)
        # On Python lists: a few levels, at every decision of a simulation.
        levels = self.model.dose_levels
        target = intervals["target"].tolist()
        safe = self.admissible(posterior, intervals["excessive"]).tolist()
        limits: list[tuple[str, list[bool]]] = []
        if self.max_increase is not None:
            last = data.last_dose
            assert isinstance(last, float)  # one dose column, and the rule decides after patients
            ceiling = self.max_increase * last * (1 + 1e-12)
            limits.append(("max_increase", [dose <= ceiling for dose in levels]))
        if self.no_skipping:
            highest = bisect.bisect_right(levels, max(data.dose.tolist()))
            limits.append(("no_skipping", [k <= highest for k in range(len(levels))]))
        allowed = safe
        for _, limit in limits:
            allowed = [ok and within for ok, within in zip(allowed, limit, strict=True)]
        if not any(allowed):
            lowest = float(levels[0])
            if data.dose.tolist().count(lowest) < self.safety_min_patients:
                return Decision(lowest, quantities=quantities, bound_by=("safety_min_patients",))
            # On the cautious side of a fit's Monte Carlo error, an estimate below the cutoff
            # counts as above it: the reason says so, or it would contradict the quantities.
            cautious = any(
                not ok and p < self.overdose_cutoff
                for ok, p in zip(safe, intervals["excessive"].tolist(), strict=True)
            )
            near = f" or within {posterior.caution:g} MCSEs of it" if cautious else ""
            return Decision(
                None,
                stop_reason=(
                    "no admissible dose: every allowed level has P(p >= "
                    f"{self.target_interval[1]:g}) >= {self.overdose_cutoff:g}{near}"
                ),
                quantities=quantities,
            )
        level = self._best([k for k, ok in enumerate(allowed) if ok], target)
        bound_by = self._bound_by(target, [("overdose_cutoff", safe), *limits])
        next_dose = float(levels[level])
        at_next = data.dose.tolist().count(next_dose)
        if self.stop_min_patients is not None and at_next >= self.stop_min_patients:
            enough_target = target[level] >= self.stop_target_probability
            enough_patients = (
                self.stop_max_patients is not None and data.n_patients >= self.stop_max_patients
            )
            if enough_target or enough_patients:
                # What recommend() selects from the same posterior, as the trial ends here.
                selected = self.select(posterior, data).next_dose
                return Decision(
                    None,
                    stop_reason=(
                        f"stopping rule met at dose {next_dose:g}: {at_next} patients there and "
                        + (
                            f"P(target) = {target[level]:.3f} >= {self.stop_target_probability:g}"
                            if enough_target
                            else f"{data.n_patients} patients in the trial"
                        )
                        + ("" if selected == next_dose else f"; recommended {selected:g}")
                    ),
                    quantities=quantities | {"selected_dose": selected},
                )
        return Decision(next_dose, quantities=quantities, bound_by=bound_by)

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        r"""Return the cleared doses the overdose control allows.

        A level with :math:`P(p \ge` ``target_interval[1]`` :math:`) \ge` ``overdose_cutoff``
        is not given in the escalation, and not to backfill patients either.
        """
        assert posterior is not None
        safe = self.admissible(posterior, self.interval_probabilities(posterior)["excessive"])
        levels = tuple(self.model.dose_levels)
        return tuple(dose for dose in cleared if safe[levels.index(dose)])

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Recommend the given, overdose-controlled level with the largest P(target).

        Parameters
        ----------
        posterior : DosePosterior
            The posterior given every patient.
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
            The MTD, or a stop when no level given satisfies the overdose control.
        """
        assert posterior is not None
        intervals = self.interval_probabilities(posterior)
        quantities = self._quantities(intervals)
        levels = np.asarray(self.model.dose_levels)
        given = np.isin(levels, np.asarray(data.dose, float))
        candidates = np.flatnonzero(given & self.admissible(posterior, intervals["excessive"]))
        if not candidates.size:
            reason = (
                "no dose given satisfies the overdose control"
                if given.any()
                else "no dose level was given (the model's levels are "
                + ", ".join(f"{level:g}" for level in levels)
                + ")"
            )
            return Decision(None, stop_reason=f"no MTD: {reason}", quantities=quantities)
        best = self._best(candidates.tolist(), intervals["target"].tolist())
        return Decision(float(levels[best]), quantities=quantities)

    def overdose_probability(self, posterior: DosePosterior | None, dose: float) -> float | None:
        """``P(p_k > target_interval[1] | data)``: the excessive toxicity at ``dose``."""
        return rate_above(posterior, dose, self.target_interval[1])

    def overdose_mcse(self, posterior: DosePosterior, dose: float) -> float:
        """Monte Carlo standard error of :meth:`overdose_probability`."""
        return rate_above_mcse(posterior, dose, self.target_interval[1])

    def describe(self) -> Described:
        """Flat record of the rule's options."""
        return dataclass_options(self)


def blrm_design(model: BLRM, **options: Any) -> Design:
    """Return the BLRM design: ``Design(model, BLRMRule(...), Conduct(...))``.

    Parameters
    ----------
    model : BLRM
        The model and its dose levels.
    **options
        Options of :class:`BLRMRule` and of :class:`~dosezoo.designs.base.Conduct` (start dose
        the lowest level, cohorts of 3, 36 patients by default).

    Returns
    -------
    Design
    """
    return compose(model, BLRMRule, options)


register(
    Family(
        name="blrm",
        summary=(
            "Bayesian logistic regression with escalation with overdose control "
            "(Neuenschwander, Branson and Gsponer 2008)"
        ),
        model=BLRM,
        rule=BLRMRule,
        example="blrm.toml",
        example_data="binary_cohorts.csv",
    )
)
