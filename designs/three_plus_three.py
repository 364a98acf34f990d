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

**With backfill** (the conduct's :class:`~dosezoo.designs.backfill.Backfill`: patients who
arrive while an escalation cohort is in its DLT window are treated at lower, cleared levels;
Dehbi, O'Quigley and Iasonos 2021; Barnett et al. 2023). The escalation still treats cohorts
of 3, at most 6 escalation patients per level ("3 then 6"), and reads at each level the
patients and DLTs whose outcomes are known, *escalation and backfill pooled*, as BF-BOIN
reads BOIN's boundaries on the pooled data of every dose (Zhao, Yuan, Korn and Freidlin 2024,
Backfilling patients in phase I dose-escalation trials using Bayesian optimal interval design
(BOIN), *Clinical Cancer Research* 30, 673-679: a backfilled dose whose pooled data call for
de-escalation, when the doses from it up to the current one pooled do too, brings the
escalation down to the highest dose still judged safe). The 3+3 has no boundary to pool across
doses, so a too-toxic level acts on its own. The conventions chosen:

- A level is *too toxic* when its pooled data reach the 3+3's de-escalation bar:
  :math:`y_k \ge 2` and :math:`y_k / n_k \ge 1/3` (2 DLTs among 3 to 6 patients, and among
  more than 6 an observed rate of at least 1/3, the rate of the bar's 2 in 6). Without backfill
  (3 or 6 patients per level) this is the 3+3's "2 or more DLTs".
- A level that the escalation passed stays cleared until its pooled data reach the bar. When
  a level at or below the current one is too toxic (the current cohort's DLTs, or backfill
  DLTs at a lower level), the escalation goes to the level just below the lowest too-toxic
  one, :math:`h - 1`: the trial stops with MTD :math:`h - 1` when that level has 6 or more
  patients (pooled), else it gets 3 more escalation patients; a too-toxic lowest level stops
  with no MTD. ``bound_by`` names ``"toxic_lower_dose"`` when the too-toxic level is below the
  current one. So a backfill DLT can de-escalate the trial, and the MTD is then at most one
  level below the too-toxic level.
- The escalation never returns to a level that had 2 or more DLTs: DLTs never go away, so a
  level stays closed even when pending non-DLT outcomes arriving later bring its pooled rate
  back under 1/3 (the 3+3's "never re-escalate to a too-toxic dose").
- At the current level, 1 DLT among fewer than 6 patients asks for 3 more; a blocked
  escalation confirms the current level as MTD once it has 6 or more patients (pooled).
  Backfill patients go only below the current level, so on the way up the current level's
  counts are its escalation patients' (3 or 6), exactly as without backfill.
- Backfill patients go to the levels :meth:`Backfill.cleared
  <dosezoo.designs.backfill.Backfill.cleared>` clears, below the lowest too-toxic level
  (:meth:`ThreePlusThreeRule.backfill_eligible`).
- The recommendation reads every patient: the MTD is the highest level with 6 or more patients
  below the lowest too-toxic level and below every level above the current one that had 2 or
  more DLTs (one the escalation came down from); without backfill, at most 1 DLT in 6, as
  above. Outcomes still pending at a stop enter it as they are: a late DLT can lower the MTD,
  and late outcomes without a DLT can bring a level the trial stopped below back under the
  bar (its pooled rate is then below 1/3 among more than 6 patients).
- The sample size (the maximum, every patient counted) is 6 per level plus the backfill's
  ``total_cap``: the escalation is never cut short by the backfill patients.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions, Decision
from dosezoo.designs.backfill import Backfill
from dosezoo.designs.base import Conduct, CountRule, Design, RuleOptions
from dosezoo.designs.registry import Derived, Family, register
from dosezoo.errors import DataError
from dosezoo.levels import (
    CountStates,
    count_state,
    format_rows,
    last_true,
    level_index,
    validate_dose_levels,
)
from dosezoo.models.base import DoseModel
from dosezoo.posterior import DosePosterior

__all__ = ["ThreePlusThreeRule", "three_plus_three_design"]

_COHORT = 3
_FULL = 6
_TOXIC = 2
"""DLTs at a dose (in 3 or 6 patients) that make it too toxic."""
_RATE = 3
"""Among more patients, too toxic at an observed DLT rate of at least ``1 / _RATE``."""
_BACKFILL_CONVENTION = (
    "escalation and backfill counts pooled; too toxic: >= 2 DLTs and a DLT rate >= 1/3; "
    "a too-toxic level at or below the current one sends the escalation just below the "
    "lowest such level (MTD there with >= 6 patients); never back to a level with >= 2 DLTs; "
    "MTD: highest level with >= 6 patients below every too-toxic level and every level the "
    "escalation left with >= 2 DLTs (after BF-BOIN, Zhao et al. 2024)"
)


def _too_toxic(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each level's counts reach the 3+3's bar: at least 2 DLTs and a rate >= 1/3.

    With 3 or 6 patients at a level, 2 or more DLTs (the module docstring).
    """
    return (y >= _TOXIC) & (_RATE * y >= n)


def _first_true(mask: np.ndarray) -> np.ndarray:
    """Return per row the first level where ``mask`` holds, the number of levels if none."""
    return np.where(mask.any(axis=1), np.argmax(mask, axis=1), mask.shape[1])


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
    stop: ``"highest_dose"`` or ``"toxic_dose"`` (the next dose had 2 or more DLTs); and
    ``"toxic_lower_dose"`` when a level below the current one is too toxic (backfill DLTs).
    The counts are the patients whose outcomes are known, escalation and backfill pooled.
    """

    label: ClassVar[str] = "3+3"

    dose_levels: tuple[float, ...]
    _start_level: int = field(default=0, init=False, repr=False, compare=False)
    _sample_size: int = field(default=0, init=False, repr=False, compare=False)
    _backfill: bool = field(default=False, init=False, repr=False, compare=False)

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
        if conduct.cohort_size != _COHORT:
            raise ValueError(
                f"{owner}: the 3+3 treats cohorts of {_COHORT}, got cohort_size "
                f"{conduct.cohort_size}"
            )
        return self._bound(
            _start_level=self.dose_levels.index(conduct.start_dose),
            _sample_size=conduct.sample_size,
            _backfill=conduct.backfill is not None,
        )

    def counts(self, data: TrialData) -> CountStates:
        """Count patients and DLTs per level, escalation and backfill pooled.

        Raises
        ------
        DataError
            If a backfill patient comes before any escalation patient, or at a dose not below
            the escalation dose of the last escalation patient before it (naming the row).
        """
        states = super().counts(data)
        backfill = np.flatnonzero(~data.escalation)
        if not backfill.size:
            return states
        owner = "ThreePlusThreeRule"
        index = level_index(data.dose, self.dose_levels, owner=owner)
        escalation = np.flatnonzero(data.escalation)
        before = np.searchsorted(escalation, backfill) - 1
        current = index[escalation[np.maximum(before, 0)]]
        bad = (before < 0) | (index[backfill] >= current)
        if bad.any():
            i = int(np.argmax(bad))
            row, dose = int(backfill[i]), float(data.dose[backfill[i]])
            if before[i] < 0:
                raise DataError(
                    f"{owner}: column 'role', row {row}: a backfill patient (dose {dose:g}) "
                    "before any escalation patient; backfill patients are treated below the "
                    "escalation's dose"
                )
            raise DataError(
                f"{owner}: column 'dose', row {row}: backfill patient at dose {dose:g}, not "
                f"below the escalation dose {self.dose_levels[current[i]]:g} of the last "
                "escalation patient before it; the 3+3 backfills cleared doses below the "
                "escalation only"
            )
        return states

    def choose(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Decide on data whose escalation treated 3 or 6 patients per level."""
        self._check_cohorts(data)
        return super().choose(posterior, data)

    def select(self, posterior: DosePosterior | None, data: TrialData) -> Decision:
        """Select on every patient; the last cohort may be cut short at the sample size."""
        self._check_cohorts(data)
        return super().select(posterior, data)

    def _check_cohorts(self, data: TrialData) -> None:
        """Refuse a level with other than 0, 3 or 6 escalation patients (backfill aside).

        In a trial that reached its sample size the last escalation cohort may have been cut
        short: its level may have fewer (the decision is then the sample size's stop).

        Raises
        ------
        DataError
            Naming the dose and its number of escalation patients.
        """
        index = level_index(data.dose, self.dose_levels, owner="ThreePlusThreeRule")
        escalation = data.escalation
        treated = np.bincount(index[escalation], minlength=len(self.dose_levels))
        off = (treated != 0) & (treated != _COHORT) & (treated != _FULL)
        if data.n_patients >= self._sample_size and escalation.any():
            last = index[np.flatnonzero(escalation)[-1]]
            off[last] = treated[last] > _FULL
        for level in np.flatnonzero(off):
            aside = "" if escalation.all() else " in the escalation (backfill patients aside)"
            raise DataError(
                f"ThreePlusThreeRule: dose {self.dose_levels[level]:g} has "
                f"{treated[level]} patients{aside}; the 3+3 design treats 3 or 6 per level"
            )

    def backfill_eligible(
        self, posterior: DosePosterior | None, data: TrialData, cleared: tuple[float, ...]
    ) -> tuple[float, ...]:
        """Return the cleared doses below the lowest too-toxic level (pooled counts).

        ``data`` may hold part of the pending escalation cohort (the patients whose window has
        closed), so the counts are not held to 3 or 6 per level here.
        """
        states = self.counts(data)
        first = int(_first_true(_too_toxic(states.n, states.y))[0])
        return tuple(dose for dose in cleared if self.dose_levels.index(dose) < first)

    def _count_state(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
    ) -> CountStates:
        """Check a batch of count states (``count_state``, and 0, 3 or 6 patients per level).

        Or, once the sample size is reached, fewer than 3 at the current level (a last cohort
        cut short, as :meth:`counts` allows). A count state holds no roles: its patients are
        escalation patients (the lockstep engine runs designs without backfill), as for
        ``next`` on data with those counts.
        """
        owner = "ThreePlusThreeRule"
        n, y, current, _ = count_state(owner, n, y, current, len(self.dose_levels), events)
        off = (n != 0) & (n != _COHORT) & (n != _FULL)
        # A last cohort the sample size cut short, at the current level, as counts() allows.
        full = np.flatnonzero((n.sum(axis=1) >= self._sample_size) & (current >= 0))
        off[full, current[full]] = n[full, current[full]] > _FULL
        if off.any():
            row, level = (int(i) for i in np.argwhere(off)[0])
            raise ValueError(
                f"{owner}: count state row {row}: dose {self.dose_levels[level]:g} has "
                f"{n[row, level]} patients; the 3+3 design treats 3 or 6 per level"
            )
        return CountStates(n, y, current)

    def _mtd_levels(self, n: np.ndarray, y: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Return per row of counts the MTD level, -1 where there is none.

        The MTD is the highest level with 6 or more patients below every too-toxic level and
        below every level above the current one with 2 or more DLTs (a level the escalation
        came down from and never gives again); without backfill, the highest level with at
        most 1 DLT in 6 below every level with 2 or more DLTs.
        """
        levels = np.arange(n.shape[1])
        left = (y >= _TOXIC) & (levels > current[:, None])
        ceiling = np.minimum(_first_true(_too_toxic(n, y)), _first_true(left))
        return last_true((n >= _FULL) & (levels < ceiling[:, None]))

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

        # A too-toxic level at or below the current one: down below the lowest such level.
        too_toxic = _too_toxic(n, y)
        ceiling = _first_true(too_toxic)
        down = started & (ceiling <= at)
        lower = ceiling - 1
        bound_by[down & (ceiling < at)] = "toxic_lower_dose"
        h = np.minimum(ceiling, top)
        counts_toxic = {"y": y[rows, h], "n": n[rows, h], "dose": doses[h]}
        no_mtd = down & (lower < 0)
        lower_full = down & (lower >= 0) & (n[rows, np.maximum(lower, 0)] >= _FULL)
        level[down] = lower[down]
        # Every level up to the current one too toxic: say so from the current one.
        every = (too_toxic | (np.arange(top + 1) > at[:, None])).all(axis=1)
        above = no_mtd & (at > 0) & every
        lowest = no_mtd & ~above
        stop_reason[lowest] = format_rows(
            "no MTD: {y} DLTs in {n} patients at the lowest dose {dose:g}", lowest, **counts_toxic
        )
        stop_reason[above] = format_rows(
            "no MTD: {y} DLTs in {n} patients at {dose:g}, and every lower dose had too many DLTs",
            above,
            **counts_at,
        )
        stop_reason[lower_full] = format_rows(
            "MTD {lower:g}: {y} DLTs in {n} patients at {dose:g}",
            lower_full,
            lower=doses[np.maximum(lower, 0)],
            **counts_toxic,
        )
        # Otherwise 3 more at 1 DLT in fewer than 6, else up one level unless the highest or
        # one that had 2 or more DLTs.
        climbing = started & ~down & ~((y_at == 1) & (n_at < _FULL))
        at_top = climbing & (at == top)
        next_toxic = climbing & ~at_top & (y[rows, np.minimum(at + 1, top)] >= _TOXIC)
        blocked = at_top | next_toxic
        level[climbing & ~blocked] += 1
        bound_by[at_top], bound_by[next_toxic] = "highest_dose", "toxic_dose"
        confirmed = blocked & (n_at >= _FULL)
        stop_reason[confirmed & at_top] = format_rows(
            "MTD {dose:g}: {y} DLTs in {n} patients, no higher dose to try",
            confirmed & at_top,
            **counts_at,
        )
        # The level above was given and had 2 or more DLTs: say so, not "no higher dose".
        above_at = np.minimum(at + 1, top)
        stop_reason[confirmed & next_toxic] = format_rows(
            "MTD {dose:g}: {y} DLTs in {n} patients, and {y_next} DLTs in {n_next} patients "
            "at {dose_next:g}",
            confirmed & next_toxic,
            **counts_at,
            y_next=y[rows, above_at],
            n_next=n[rows, above_at],
            dose_next=doses[above_at],
        )
        # The sample size stops a trial the rule would go on with; one that the rule ends
        # says why (every level having had its 6 patients, the rule's outcome is the news).
        n_patients = n.sum(axis=1)
        full = started & (n_patients >= self._sample_size) & ~(no_mtd | lower_full | confirmed)
        stop_reason[full] = format_rows(
            "sample size reached: {n} of {planned}", full, n=n_patients, planned=self._sample_size
        )
        bound_by[full] = ""
        stops = full | no_mtd | lower_full | confirmed
        level[stops] = -1
        level[~started], bound_by[~started] = self._start_level, "start_dose"

        # A stop records the dose recommend() selects from the same counts.
        selected = np.full(size, math.nan)
        if stops.any():
            mtd = self._mtd_levels(n[stops], y[stops], current[stops])
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
        level = self._mtd_levels(states.n, states.y, states.current)
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
        """Record of the rule's options, and its backfill convention when run with backfill."""
        record: dict[str, object] = {"dose_levels": list(self.dose_levels)}
        if self._backfill:
            record["backfill_convention"] = _BACKFILL_CONVENTION
        return record


def three_plus_three_design(
    dose_levels: Sequence[float],
    *,
    start_dose: float | None = None,
    backfill: Backfill | None = None,
) -> Design:
    """Return the 3+3 design: cohorts of 3, at most 6 escalation patients per level.

    Parameters
    ----------
    dose_levels : sequence of float
        Candidate doses, strictly increasing.
    start_dose : float, optional
        Dose of the first cohort, one of ``dose_levels``; the lowest by default.
    backfill : Backfill, optional
        Backfill patients at lower, cleared levels while an escalation cohort is pending (the
        conventions in the module docstring); the sample size then grows by its
        ``total_cap``.

    Returns
    -------
    Design
        A :class:`~dosezoo.designs.base.CountDesign` with no model.
    """
    levels = validate_dose_levels("three_plus_three_design", dose_levels)
    conduct = Conduct(
        start_dose,
        cohort_size=_COHORT,
        # Anything but a Backfill is refused by the conduct, naming the field.
        sample_size=_sample_size(len(levels), backfill if isinstance(backfill, Backfill) else None),
        backfill=backfill,
    )
    return Design(None, ThreePlusThreeRule(levels), conduct)


def _sample_size(n_levels: int, backfill: Backfill | None) -> int:
    """Return the 3+3's most patients: 6 per level, and the backfill's ``total_cap``."""
    return _FULL * n_levels + (0 if backfill is None else backfill.total_cap)


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
                f"{_FULL} per dose level, plus the backfill's total_cap",
                lambda model, rule, conduct: _sample_size(
                    len(rule.dose_levels), conduct.get("backfill")
                ),
            ),
        },
        example="three_plus_three.toml",
        example_data="binary_cohorts.csv",
    )
)
