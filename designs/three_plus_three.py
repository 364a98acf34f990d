r"""The 3+3 design: the A+B rule with A = B = 3, with de-escalation to confirm the MTD.

Storer, B.E. (1989). Design and analysis of phase I clinical trials. *Biometrics* 45,
925-937; Lin, Y. and Shih, W.J. (2001). Statistical properties of the traditional
algorithm-based designs for phase I cancer clinical trials. *Biostatistics* 2, 203-215 (the
A+B designs; this is their "3+3 with dose de-escalation"). Seno et al. (2025, Introduction)
cite it as the traditional comparator.

Conventions, for the current dose level :math:`j` with :math:`y_j` DLTs in :math:`n_j`
patients (every level gets cohorts of 3, at most 6 patients):

- :math:`n_j = 3`: 0 DLTs: escalate to :math:`j + 1`; 1 DLT: 3 more patients at :math:`j`;
  2 or 3 DLTs: dose :math:`j` is too toxic (de-escalate, below).
- :math:`n_j = 6`: at most 1 DLT: escalate to :math:`j + 1`; 2 or more: too toxic.
- Escalation is never to a dose that had 2 or more DLTs, nor beyond the highest dose: then
  dose :math:`j` is completed to 6 patients (if it has 3) or, with 6, the trial stops with
  MTD :math:`= j`.
- De-escalation from a too-toxic dose goes to the next lower dose that is not too toxic: if
  it already has 6 patients the trial stops with that dose as MTD; otherwise it gets 3 more
  patients (and the rules above apply, never re-escalating to a too-toxic dose). A too-toxic
  lowest dose stops the trial with no MTD.

So the MTD is the highest dose at which at most 1 of 6 patients had a DLT, below every dose
with 2 or more DLTs; the recommendation selects it from the data, and a stop records it as the
quantity ``selected_dose``. No level gets more than 6 patients, so the design's sample size
(:func:`three_plus_three_design`) is 6 per level. Decisions are deterministic functions of the
counts per level, so the rule is a :class:`~dosezoo.designs.base.CountRule`, written once for a
batch of count states, which the simulation engine runs in lockstep. The 3+3 uses no model.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions
from dosezoo.designs.backfill import Backfill
from dosezoo.designs.base import Conduct, CountRule, Design, RuleOptions
from dosezoo.designs.registry import Derived, Family, register
from dosezoo.errors import DataError
from dosezoo.levels import CountStates, count_state, format_rows, last_true, validate_dose_levels
from dosezoo.models.base import DoseModel
from dosezoo.posterior import DosePosterior

__all__ = ["ThreePlusThreeRule", "three_plus_three_design"]

_COHORT = 3
_FULL = 6
_TOXIC = 2
"""DLTs at a dose (in 3 or 6 patients) that make it too toxic."""


@dataclass(frozen=True)
class ThreePlusThreeRule(CountRule):
    """The 3+3 rule with de-escalation (conventions in the module docstring).

    Parameters
    ----------
    dose_levels : tuple of float
        Candidate doses, strictly increasing; another sequence is stored as a tuple.

    Notes
    -----
    Every decision after the first records, as floats, ``n_at_dose`` and ``dlt_at_dose`` at
    the current dose; a stop records ``selected_dose`` (NaN when no dose is the MTD).
    ``bound_by`` names what turned an escalation into more patients at the current dose or a
    stop: ``"highest_dose"`` or ``"toxic_dose"`` (the next dose had 2 or more DLTs).
    """

    label: ClassVar[str] = "3+3"

    dose_levels: tuple[float, ...]
    _start_level: int = field(default=0, init=False, repr=False, compare=False)
    _sample_size: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the levels, naming the field at fault."""
        object.__setattr__(
            self, "dose_levels", validate_dose_levels("ThreePlusThreeRule", self.dose_levels)
        )

    def bind(self, model: DoseModel | None, conduct: Conduct) -> "ThreePlusThreeRule":
        """Check that there is no model and that cohorts are of 3; take start and sample size."""
        owner = "ThreePlusThreeRule"
        if model is not None:
            raise TypeError(f"{owner}: the 3+3 uses no model, got {model!r}")
        if conduct.backfill is not None:
            raise ValueError(
                f"{owner}: the 3+3 decides on cohorts of 3 and 6 patients per level; backfill "
                "patients at lower levels would break those counts (use a design that reads "
                "any counts, e.g. BOIN, with backfill)"
            )
        if conduct.cohort_size != _COHORT:
            raise ValueError(
                f"{owner}: the 3+3 treats cohorts of {_COHORT}, got cohort_size "
                f"{conduct.cohort_size}"
            )
        return self._bound(
            _start_level=self.dose_levels.index(conduct.start_dose),
            _sample_size=conduct.sample_size,
        )

    def counts(self, data: TrialData) -> CountStates:
        """Count patients and DLTs per level; refuse a level with other than 0, 3 or 6."""
        n, y, current, _ = super().counts(data)
        for level in np.flatnonzero(n[0]):
            if n[0, level] not in (_COHORT, _FULL):
                raise DataError(
                    f"ThreePlusThreeRule: dose {self.dose_levels[level]:g} has "
                    f"{n[0, level]} patients; the 3+3 design treats 3 or 6 per level"
                )
        return CountStates(n, y, current)

    def _count_state(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> CountStates:
        """Check a batch of count states (``count_state``, and 0, 3 or 6 patients per level)."""
        owner = "ThreePlusThreeRule"
        n, y, current, _ = count_state(owner, n, y, current, len(self.dose_levels), events)
        off = (n != 0) & (n != _COHORT) & (n != _FULL)
        if off.any():
            row, level = (int(i) for i in np.argwhere(off)[0])
            raise ValueError(
                f"{owner}: count state row {row}: dose {self.dose_levels[level]:g} has "
                f"{n[row, level]} patients; the 3+3 design treats 3 or 6 per level"
            )
        return CountStates(n, y, current)

    def _mtd_levels(self, n: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return per row of counts the MTD level, -1 where there is none.

        The MTD is the highest level with at most 1 DLT in 6 patients below every level with
        2 or more DLTs.
        """
        levels = np.arange(n.shape[1])
        toxic = y >= _TOXIC
        ceiling = np.where(toxic.any(axis=1), np.argmax(toxic, axis=1), n.shape[1])
        return last_true((n == _FULL) & (y < _TOXIC) & (levels < ceiling[:, None]))

    def _decide(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        n, y, current = states.n, states.y, states.current
        size, top = current.size, len(self.dose_levels) - 1
        rows = np.arange(size)
        doses = np.asarray(self.dose_levels)
        started = current >= 0
        at = np.maximum(current, 0)
        n_at, y_at = n[rows, at], y[rows, at]
        level = at.copy()
        bound_by = np.full(size, "", dtype=object)
        stop_reason = np.full(size, "", dtype=object)
        counts_at = {"y": y_at, "n": n_at, "dose": doses[at]}

        n_patients = n.sum(axis=1)
        full = started & (n_patients >= self._sample_size)
        stop_reason[full] = format_rows(
            "sample size reached: {n} of {planned}", full, n=n_patients, planned=self._sample_size
        )
        # A too-toxic dose: down to the next lower dose that is not too toxic.
        toxic = started & ~full & (y_at >= _TOXIC)
        lower = last_true((y < _TOXIC) & (np.arange(top + 1) < at[:, None]))
        no_mtd = toxic & (lower < 0)
        lower_full = toxic & (lower >= 0) & (n[rows, np.maximum(lower, 0)] == _FULL)
        level[toxic] = lower[toxic]
        lowest = no_mtd & (at == 0)
        stop_reason[lowest] = format_rows(
            "no MTD: {y} DLTs in {n} patients at the lowest dose {dose:g}", lowest, **counts_at
        )
        above = no_mtd & (at > 0)
        stop_reason[above] = format_rows(
            "no MTD: {y} DLTs in {n} patients at {dose:g}, and every lower dose had too many DLTs",
            above,
            **counts_at,
        )
        stop_reason[lower_full] = format_rows(
            "MTD {lower:g}: {y} DLTs in {n} patients at {dose:g}",
            lower_full,
            lower=doses[np.maximum(lower, 0)],
            **counts_at,
        )
        # Otherwise 3 more at 1/3, else up one level unless the highest or a too-toxic one.
        climbing = started & ~full & ~toxic & ~((n_at == _COHORT) & (y_at == 1))
        at_top = climbing & (at == top)
        next_toxic = climbing & ~at_top & (y[rows, np.minimum(at + 1, top)] >= _TOXIC)
        blocked = at_top | next_toxic
        level[climbing & ~blocked] += 1
        bound_by[at_top], bound_by[next_toxic] = "highest_dose", "toxic_dose"
        confirmed = blocked & (n_at != _COHORT)
        stop_reason[confirmed] = format_rows(
            "MTD {dose:g}: {y} DLTs in {n} patients, no higher dose to try", confirmed, **counts_at
        )
        stops = full | no_mtd | lower_full | confirmed
        level[stops] = -1
        level[~started], bound_by[~started] = self._start_level, "start_dose"

        # A stop records the dose recommend() selects from the same counts.
        selected = np.full(size, math.nan)
        if stops.any():
            mtd = self._mtd_levels(n[stops], y[stops])
            selected[stops] = np.where(mtd >= 0, doses[np.maximum(mtd, 0)], math.nan)
        return CountDecisions(
            level=level,
            stop_reason=stop_reason,
            bound_by=bound_by,
            quantities={
                "n_at_dose": n_at.astype(float),
                "dlt_at_dose": y_at.astype(float),
                "selected_dose": selected,
            },
            present={"n_at_dose": started, "dlt_at_dose": started, "selected_dose": stops},
        )

    def _recommend(
        self, states: CountStates, posterior: DosePosterior | None = None
    ) -> CountDecisions:
        level = self._mtd_levels(states.n, states.y)
        stop_reason = np.where(
            level < 0, "no MTD: no dose had at most 1 DLT in 6 patients", ""
        ).astype(object)
        return CountDecisions(
            level=level,
            stop_reason=stop_reason,
            bound_by=np.full(level.size, "", dtype=object),
            quantities={},
            present={},
        )

    def describe(self) -> RuleOptions:
        """Record of the rule's options."""
        return {"dose_levels": list(self.dose_levels)}


def three_plus_three_design(
    dose_levels: Sequence[float],
    *,
    start_dose: float | None = None,
    backfill: Backfill | None = None,
) -> Design:
    """Return the 3+3 design: cohorts of 3, at most 6 patients per level.

    Parameters
    ----------
    dose_levels : sequence of float
        Candidate doses, strictly increasing.
    start_dose : float, optional
        Dose of the first cohort, one of ``dose_levels``; the lowest by default.
    backfill : Backfill, optional
        Passed to the conduct like every family's; the 3+3 refuses it (ValueError): its rule
        reads exactly 3 or 6 patients per level.

    Returns
    -------
    Design
        A :class:`~dosezoo.designs.base.CountDesign` with no model.
    """
    levels = validate_dose_levels("three_plus_three_design", dose_levels)
    conduct = Conduct(
        start_dose, cohort_size=_COHORT, sample_size=_FULL * len(levels), backfill=backfill
    )
    return Design(None, ThreePlusThreeRule(levels), conduct)


register(
    Family(
        name="3+3",
        summary=(
            "the 3+3 design with dose de-escalation (Storer 1989; Lin and Shih 2001); no model"
        ),
        model=None,
        rule=ThreePlusThreeRule,
        conduct={
            "cohort_size": _COHORT,
            "sample_size": Derived(
                f"{_FULL} per dose level", lambda model, rule: _FULL * len(rule.dose_levels)
            ),
        },
        example="three_plus_three.toml",
        example_data="binary_cohorts.csv",
    )
)
