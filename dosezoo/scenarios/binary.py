r"""Binary-toxicity scenarios: true DLT probabilities per dose level, with common random numbers.

:class:`BinaryToxicityScenario` is the simulation setting of the binary-DLT designs (Seno et al.
2025, Section 5.2 and Table 1; Liu and Yuan 2015, Section 4): dose level :math:`k` has true DLT
probability :math:`p_k`, and the true MTD is the level whose :math:`p_k` is closest to the
target :math:`\phi` (every level tied for closest is one: two levels at the same rate are the
same dose for a statistician); with ``no_mtd_above`` set, a scenario whose every :math:`p_k`
exceeds it has no MTD (every dose overly toxic: the correct decision is to stop without one).
A level is an overdose when its true rate exceeds the MTD's (the highest MTD's, among ties):
for increasing rates, a level above the MTD, as in the papers.

Common random numbers. Patient :math:`i` of a trial (in enrolment order) carries a latent
tolerance :math:`u_i \sim U(0, 1)`, the :math:`i`-th draw ``rng.random()`` of the trial's
generator, and has a DLT at dose :math:`d` iff :math:`u_i < p(d)`. Trial :math:`t` of two
designs simulated with the same ``random_seed`` therefore gives its :math:`i`-th patients the
same tolerance, so two designs that give them the same dose see the same outcome, and the
difference between designs is not blurred by different draws. With increasing :math:`p`, a
patient with a DLT at one dose would have one at every higher dose.

Per-trial metrics (Seno et al. 2025, Section 5.2: PCS, PCA, POS, POA), where "treated" is the number
of patients of the trial and "planned" the planned maximum sample size:

- ``correct_selection``: 1 if the selected dose is a true MTD (0 if none is selected; in a
  scenario without an MTD, 1 if none is selected);
- ``overdose_selection``: 1 if the selected dose is an overdose (for increasing rates a level
  above the true MTD, as in the POS of Seno et al. (2025) and the BOIN papers' "dose above the
  MTD"; any dose, in a scenario without an MTD);
- ``no_selection``: 1 if no dose is selected (BOIN's "percentage of early stopping");
- ``selected_<k>``: 1 if level :math:`k` (0-based) is selected;
- ``n_at_<k>``: patients at level :math:`k`;
- ``n_at_mtd_fraction`` / ``n_at_mtd_over_planned``: patients at a true MTD over treated
  (PCA) / over planned;
- ``n_overdosed_fraction`` / ``n_overdosed_over_planned``: patients at an overdose over
  treated (POA) / over planned;
- ``dlt_rate`` / ``dlt_over_planned``: DLTs over treated / over planned;
- ``stopped_early``: 1 if the trial treated fewer patients than planned (whether or not it
  selected a dose). "Planned" is the scenario's ``planned_sample_size``, not the design's own
  sample size: a study comparing designs of several sizes (3+3's maximum is 6 per level) scores
  them on one denominator; a configuration's ``[scenario]`` takes the design's by default;
- ``n_treated``: patients of the trial (the engine's own ``n_patients`` holds it too; a metric
  may not take that name).

The selected dose is the recommendation's ``next_dose`` (the engine asks the design for a
recommendation after an early stop too: BOIN's ``n_earlystop`` stop and every 3+3 stop select
an MTD), none when the recommendation is a stop.

Array face. The scenario offers the engine's `dosezoo.protocols.LevelScenario` capability, so
that many trials can be simulated in lockstep: ``draw_latent`` (the tolerances of the next
patients), ``outcomes_at_levels`` (DLTs from levels and tolerances) and ``metrics_at_counts``
(the metrics above for many trials from their counts per level). ``respond`` and
``trial_metrics`` are these on one trial, so both faces give the same numbers.
"""

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from dosezoo.checks import probability
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.levels import (
    checked_level_indices,
    checked_trial_counts,
    level_counts,
    level_index,
    selected_level,
    validate_dose_levels,
)
from dosezoo.protocols import Described, number_text
from dosezoo.scenarios.registry import ScenarioType, design_attribute, register_scenario

__all__ = ["BinaryToxicityScenario"]

#: Distances to the target that differ by less than this are ties: every tied level is an MTD
#: (``mtd_levels``); ``mtd_level`` names the lowest of them.
_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class BinaryToxicityScenario:
    r"""True DLT probabilities per dose level; a patient's DLT is ``u < p(dose)``, ``u ~ U(0,1)``.

    Parameters
    ----------
    dose_levels : tuple of float
        The dose levels, strictly increasing (those of the design); another sequence is
        stored as a tuple.
    p_true : tuple of float
        True DLT probability of each level, in (0, 1) (need not increase); another sequence
        is stored as a tuple.
    target : float
        Target DLT rate :math:`\phi` in (0, 1).
    planned_sample_size : int
        The design's planned maximum sample size, denominator of the ``*_over_planned``
        metrics.
    no_mtd_above : float, optional
        A DLT probability above the target: when every level's exceeds it, the scenario has no
        MTD (None, the default: the level closest to the target is the MTD whatever its rate,
        Seno et al.'s and Liu and Yuan's convention).

    Attributes
    ----------
    mtd_level : int
        0-based level of the true MTD: :math:`\arg\min_k |p_k - \phi|`, the lowest level
        among ties; -1 when the scenario has none (``no_mtd_above``), whose patients are all
        overdosed.
    mtd_levels : tuple of int
        Every level tied for closest to the target (empty without an MTD): selecting any of
        them is correct.
    """

    dose_levels: tuple[float, ...]
    p_true: tuple[float, ...]
    target: float
    _: KW_ONLY
    planned_sample_size: int
    no_mtd_above: float | None = None
    outcomes: tuple[str, ...] = field(default=("dlt",), init=False)
    mtd_level: int = field(init=False)
    mtd_levels: tuple[int, ...] = field(init=False)
    _empty: TrialData = field(init=False, repr=False, compare=False)
    #: Whether each level is a true MTD, and whether it is an overdose.
    _at_mtd: np.ndarray = field(init=False, repr=False, compare=False)
    _overdose: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the truth, naming the field and value at fault."""
        owner = "BinaryToxicityScenario"
        levels = validate_dose_levels(owner, self.dose_levels)
        if isinstance(self.p_true, str | bytes) or not isinstance(
            self.p_true, Sequence | np.ndarray
        ):
            raise ValueError(
                f"{owner}: p_true must be a sequence of probabilities, got {self.p_true!r}"
            )
        p_true: list[float] = []
        for k, value in enumerate(self.p_true):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not 0 < float(value) < 1
            ):
                raise ValueError(f"{owner}: p_true[{k}] must lie in (0, 1), got {value!r}")
            p_true.append(float(value))
        if len(p_true) != len(levels):
            raise ValueError(
                f"{owner}: p_true has {len(p_true)} values but dose_levels has {len(levels)}"
            )
        if (
            isinstance(self.target, bool)
            or not isinstance(self.target, numbers.Real)
            or not 0 < float(self.target) < 1
        ):
            raise ValueError(f"{owner}: target must lie in (0, 1), got {self.target!r}")
        planned = self.planned_sample_size
        if isinstance(planned, bool) or not isinstance(planned, numbers.Integral) or planned < 1:
            raise ValueError(
                f"{owner}: planned_sample_size must be an integer >= 1, got {planned!r}"
            )
        rates = np.asarray(p_true)
        distance = np.round(np.abs(rates - float(self.target)), 12)
        tied = np.flatnonzero(distance <= distance.min() + _TIE_TOLERANCE)
        mtd = int(tied[0])
        if self.no_mtd_above is not None:
            bound = probability(owner, "no_mtd_above", self.no_mtd_above)
            if bound <= float(self.target):
                raise ValueError(
                    f"{owner}: no_mtd_above must exceed the target {self.target!r}, got {bound!r}"
                )
            object.__setattr__(self, "no_mtd_above", bound)
            if min(p_true) > bound:
                mtd, tied = -1, tied[:0]
        at_mtd = np.zeros(rates.size, dtype=bool)
        at_mtd[tied] = True
        overdose = rates > rates[tied].max() if tied.size else np.ones(rates.size, dtype=bool)
        object.__setattr__(self, "_at_mtd", at_mtd)
        object.__setattr__(self, "_overdose", overdose)
        object.__setattr__(self, "mtd_levels", tuple(int(k) for k in tied))
        object.__setattr__(self, "dose_levels", levels)
        object.__setattr__(self, "p_true", tuple(p_true))
        object.__setattr__(self, "target", float(self.target))
        object.__setattr__(self, "planned_sample_size", int(planned))
        object.__setattr__(self, "mtd_level", mtd)
        # Trial data are immutable, so every trial can start from the same empty data.
        object.__setattr__(self, "_empty", TrialData.empty(outcomes=self.outcomes))

    def empty_data(self) -> TrialData:
        """Return the data of a trial before its first patient."""
        return self._empty

    def probability(self, doses: np.ndarray) -> np.ndarray:
        """Return the true DLT probability at each dose (each one of ``dose_levels``)."""
        return np.asarray(self.p_true)[self._levels_of(doses)]

    def _levels_of(self, doses: np.ndarray) -> np.ndarray:
        """Return the level of each dose; raise ValueError naming a dose off the levels."""
        return level_index(doses, self.dose_levels, owner="BinaryToxicityScenario")

    def draw_latent(self, rng: np.random.Generator, n_patients: int) -> np.ndarray:
        """Draw the latent tolerances of the next ``n_patients`` patients, in enrolment order.

        One ``rng.random()`` per patient, so drawing for a whole trial at once gives the same
        tolerances as drawing cohort by cohort.
        """
        return rng.random(n_patients)

    def outcomes_at_levels(self, levels: np.ndarray, latent: np.ndarray) -> dict[str, np.ndarray]:
        """DLTs of patients at ``levels`` (any shape) with tolerances ``latent`` (same shape).

        A patient has a DLT iff the tolerance is below the level's true DLT probability; the
        DLTs are int64 of the shape of ``levels``.

        Raises
        ------
        ValueError
            If a level is not an integer in ``[0, K)`` (numpy would read -1 as the top level).
        """
        owner = "BinaryToxicityScenario.outcomes_at_levels"
        levels = checked_level_indices(owner, levels, len(self.p_true))
        return {"dlt": (latent < np.asarray(self.p_true)[levels]).astype(np.int64)}

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """DLTs of new patients: one latent tolerance ``rng.random()`` per patient, in order."""
        tolerance = self.draw_latent(rng, len(doses))
        return self.outcomes_at_levels(self._levels_of(doses), tolerance)

    def metrics_at_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        selected: np.ndarray,
        treated: np.ndarray,
        outcomes: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Score ``m`` trials from their counts (see the module docstring for the metrics).

        Parameters
        ----------
        n, y : numpy.ndarray
            Patients and DLTs per level, (m, K) integers.
        selected : numpy.ndarray
            Level of the selected dose, -1 when none, (m,) integers.
        treated : numpy.ndarray
            Patients of each trial, (m,) integers.
        outcomes : mapping, optional
            The patients' outcomes; not needed (every metric comes from the counts).

        Returns
        -------
        dict of str to numpy.ndarray
            Each metric as floats, (m,); the ``*_fraction`` and ``dlt_rate`` metrics are NaN
            for a trial with no patient.
        """
        n, y, selected, treated = checked_trial_counts(
            "BinaryToxicityScenario.metrics_at_counts", n, y, selected, treated, len(self.p_true)
        )
        planned = self.planned_sample_size
        at_mtd = n[:, self._at_mtd].sum(axis=1).astype(float)
        overdosed = n[:, self._overdose].sum(axis=1).astype(float)
        chosen = np.maximum(selected, 0)
        stopped = selected < 0
        dlts = y.sum(axis=1).astype(float)
        some = treated > 0

        def per_treated(count: np.ndarray) -> np.ndarray:
            return np.where(some, count / np.where(some, treated, 1), math.nan)

        return {
            "correct_selection": np.where(stopped, self.mtd_level < 0, self._at_mtd[chosen]).astype(
                float
            ),
            "overdose_selection": (~stopped & self._overdose[chosen]).astype(float),
            "no_selection": stopped.astype(float),
            **{
                f"selected_{k}": (selected == k).astype(float) for k in range(len(self.dose_levels))
            },
            **{f"n_at_{k}": n[:, k].astype(float) for k in range(len(self.dose_levels))},
            "n_at_mtd_fraction": per_treated(at_mtd),
            "n_overdosed_fraction": per_treated(overdosed),
            "n_at_mtd_over_planned": at_mtd / planned,
            "n_overdosed_over_planned": overdosed / planned,
            "dlt_rate": per_treated(dlts),
            "dlt_over_planned": dlts / planned,
            "stopped_early": (treated < planned).astype(float),
            "n_treated": treated.astype(float),
        }

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Score one trial: selection, allocation and toxicity (see the module docstring)."""
        owner = "BinaryToxicityScenario"
        counts = level_counts(data, self.dose_levels, owner=owner)
        selected = selected_level(owner, recommendation.scalar_dose(owner), self.dose_levels)
        metrics = self.metrics_at_counts(
            counts.n[None], counts.y[None], np.array([selected]), np.array([data.n_patients])
        )
        return {name: float(values[0]) for name, values in metrics.items()}

    def describe(self) -> Described:
        """Flat record of the truth (for simulation results)."""
        return {
            "name": "BinaryToxicityScenario",
            "dose_levels": ",".join(map(number_text, self.dose_levels)),
            "p_true": ",".join(map(number_text, self.p_true)),
            "target": self.target,
            "mtd_level": self.mtd_level,
            "mtd_dose": self.dose_levels[self.mtd_level] if self.mtd_level >= 0 else None,
            "mtd_doses": ",".join(number_text(self.dose_levels[k]) for k in self.mtd_levels),
            "planned_sample_size": self.planned_sample_size,
            "no_mtd_above": self.no_mtd_above,
        }


def _from_design(design: object) -> dict[str, object]:
    """Return the design's dose levels, target and sample size (the planned one), if any."""
    values = {
        "dose_levels": design_attribute(design, "dose_levels"),
        "target": design_attribute(design, "target", "theta"),
        "planned_sample_size": design_attribute(design, "sample_size"),
    }
    return {key: value for key, value in values.items() if value is not None}


register_scenario(
    ScenarioType(
        name="binary",
        summary=(
            "binary DLTs with true probabilities per dose level and common random numbers "
            "(Liu and Yuan 2015; Seno et al. 2025)"
        ),
        build=BinaryToxicityScenario,
        from_design=_from_design,
        design_keys=("dose_levels", "target", "planned_sample_size"),
    )
)
