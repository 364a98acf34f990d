"""Protocols through which the engine, the command line and the tests see designs and scenarios.

The engine knows nothing about models: it talks to a *design* (how a trial is conducted) and
to a *scenario* (the truth the outcomes are drawn from) only through :class:`Design` and
:class:`Scenario`. Two optional capabilities let it run many trials in lockstep:
:class:`CountRuleDesign` (a rule that decides from the patients and DLTs per dose level only)
and :class:`LevelScenario` (outcomes from latent per-patient draws at dose levels). A third,
:class:`BackfillDesign`, makes it run a trial in time with backfill patients.
"""

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions, Decision

__all__ = [
    "BackfillDesign",
    "BackfillPolicy",
    "CountRuleDesign",
    "Described",
    "Design",
    "LevelScenario",
    "Scenario",
    "number_text",
]

type Described = dict[str, float | int | str | bool | None]
"""Flat parameters returned by ``describe()``."""


def number_text(value: float) -> str:
    """Return a number as the shortest text that reads back as the same float.

    ``40`` for 40.0, ``0.084``, ``1000001``, ``1e-09``: a described sequence of doses or
    rates (comma-joined) must read back exactly, where ``f"{value:g}"`` keeps six digits
    (1000000 and 1000001 both became ``1e+06``, and a report merged the two levels).
    """
    text = repr(float(value))
    return text.removesuffix(".0")


class Design(Protocol):
    """How a trial is conducted, as the engine sees it.

    `next` and `recommend` get no random generator: they must be deterministic
    functions of the data (see the module's reproducibility guarantee). Doses are
    scalars for data with one dose column, tuples (one value per dose column) for drug
    combinations; a decision may name one dose per stratum of patients
    (`Decision.strata`), each stratum an arm of ``cohort_size`` patients. The attributes are
    read-only (properties here), so that a frozen dataclass, or a class computing them, is a
    Design.

    Attributes
    ----------
    start_dose : float or None
        Dose of the first cohort, which ``next`` returns for data with no patients (None
        for a design whose rule decides the first cohort too). The engine does not read it.
    cohort_size : int
        Patients per cohort; the last cohort is truncated to ``sample_size``.
    sample_size : int
        Maximum number of patients.
    """

    @property
    def start_dose(self) -> float | None:
        """Dose of the first cohort (None when the rule decides the first cohort itself)."""
        ...

    @property
    def cohort_size(self) -> int:
        """Patients per cohort."""
        ...

    @property
    def sample_size(self) -> int:
        """Maximum number of patients."""
        ...

    def next(self, data: TrialData) -> Decision:
        """Decide the dose of the next cohort, or to stop the trial.

        Parameters
        ----------
        data : TrialData
            Everything observed so far (no patients at the start).

        Returns
        -------
        Decision
            ``next_dose`` for the next cohort, or ``next_dose=None`` with a non-empty
            ``stop_reason``.
        """
        ...

    def recommend(self, data: TrialData) -> Decision:
        """Recommend a dose at the end of a trial, whether or not it stopped early.

        A design that stopped for safety typically recommends nothing (a stop); one whose
        stop ends the escalation (3+3, BOIN's cap on patients at a dose) names its MTD.

        Parameters
        ----------
        data : TrialData
            Every patient of the trial.

        Returns
        -------
        Decision
            The recommended dose as ``next_dose``, or a stop with a non-empty
            ``stop_reason`` when no dose can be recommended.
        """
        ...

    def describe(self) -> Described:
        """Return the design's parameters, flat, to be recorded in the results.

        Returns
        -------
        dict of str to float, int, str, bool or None
            One entry per parameter.
        """
        ...


class Scenario(Protocol):
    """The truth a design is simulated against.

    Attributes
    ----------
    outcomes : tuple of str
        Outcome columns of the trial data (e.g. ``("y",)``), read-only.
    """

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Outcome columns of the trial data."""
        ...

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw the outcomes of new patients.

        Scenarios whose data have covariates (strata of patients) also accept a keyword
        ``covariates``: the engine passes the covariates of patients enrolled in a given
        stratum (a decision per stratum), one array (n,) per covariate; when it passes none,
        the scenario draws the patients' covariates from its population and returns them
        with the outcomes.

        Parameters
        ----------
        doses : numpy.ndarray
            Dose of each new patient, shape (n,), or (n, J) for drug combinations.
        rng : numpy.random.Generator
            The trial's generator, the only source of randomness allowed.

        Returns
        -------
        dict of str to numpy.ndarray
            One array of shape (n,) per name in `outcomes` (and per covariate the scenario
            drew).
        """
        ...

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        """Score one finished trial.

        Parameters
        ----------
        data : TrialData
            Every patient of the trial.
        recommendation : Decision
            The design's recommendation at the end of the trial (a stop when it recommends
            no dose).

        Returns
        -------
        dict of str to float
            Operating metrics of the trial (e.g. NPD, NPO, BTM, RMSE); a metric that is
            undefined for this trial is NaN.
        """
        ...

    def describe(self) -> Described:
        """Return the truth, flat, to be recorded in the results.

        Returns
        -------
        dict of str to float, int, str, bool or None
            One entry per parameter.
        """
        ...

    def empty_data(self) -> TrialData:
        """Return the data a trial starts from.

        Returns
        -------
        TrialData
            No patients, with the scenario's `outcomes` (``TrialData.empty``).
        """
        ...


class BackfillPolicy(Protocol):
    """Arrivals, DLT window and caps of a trial run in time (e.g. ``designs.backfill.Backfill``)."""

    @property
    def arrival_rate(self) -> float:
        """Patients arriving per unit time (a Poisson process)."""
        ...

    @property
    def dlt_window(self) -> float:
        """Time until a patient's DLT outcome is known."""
        ...

    @property
    def total_cap(self) -> int:
        """Most backfill patients in a trial."""
        ...

    def choose(
        self, eligible: tuple[float, ...], backfilled: dict[float, int], rng: np.random.Generator
    ) -> float | None:
        """Dose of the next backfill patient among ``eligible``, or None (turned away)."""
        ...


class BackfillDesign(Design, Protocol):
    """A design run in time, with backfill patients at lower doses while a cohort is pending.

    ``backfill`` is None for a design that is not (then the engine runs it as a `Design`).
    """

    @property
    def backfill(self) -> BackfillPolicy | None:
        """The backfill policy, or None."""
        ...

    def backfill_doses(self, data: TrialData, current: float) -> tuple[float, ...]:
        """Return the doses a backfill patient may get now (increasing; empty: none).

        ``data`` are the patients whose outcomes are known, ``current`` the dose of the
        pending escalation cohort.
        """
        ...


@runtime_checkable
class CountRuleDesign(Protocol):
    """A design whose decisions depend on the counts per dose level only.

    The state of a trial is ``n`` and ``y``, the patients and DLTs (the outcome ``dlt``) at
    each of ``dose_levels``, ``current``, the level of the last cohort (-1 before the
    first patient), and the counts per level of any other events the design counts
    (``events_of`` of the ``counted_outcomes``, e.g. responses). Both methods decide for a
    batch of ``m`` states at once: arrays ``n``, ``y`` of shape (m, K) (int64) and
    ``current`` of shape (m,), and return a
    `CountDecisions` whose row ``i`` is exactly what ``next`` / ``recommend`` return for
    data with the counts of row ``i``. `simulate` then advances many trials in lockstep.
    A design that ``reads_last_cohort`` decides from the patients and DLTs of each state's last
    cohort too (``last_cohort``, a pair of (m,) integer arrays; dfcrm's coherent CRM reads
    them); the others are never given them.
    ``dose_levels``, ``cohort_size``, ``sample_size`` and ``reads_last_cohort`` are read-only.
    """

    @property
    def dose_levels(self) -> tuple[float, ...]:
        """The dose levels the counts are kept at."""
        ...

    @property
    def cohort_size(self) -> int:
        """Patients per cohort."""
        ...

    @property
    def sample_size(self) -> int:
        """Maximum number of patients."""
        ...

    @property
    def counted_outcomes(self) -> tuple[str, ...]:
        """Outcome columns the design counts (``dlt`` and those of its other events)."""
        ...

    @property
    def reads_last_cohort(self) -> bool:
        """Whether the decisions read the last cohort's patients and DLTs besides the counts."""
        ...

    def events_of(self, outcomes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the events besides DLTs that the design counts, per patient (0/1)."""
        ...

    def decide_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Decide the next level of each state (``next``), or to stop."""
        ...

    def recommend_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        current: np.ndarray,
        events: Mapping[str, np.ndarray] | None = None,
        last_cohort: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> CountDecisions:
        """Recommend a level for each finished trial (``recommend``), or none (a stop)."""
        ...


@runtime_checkable
class LevelScenario(Protocol):
    """A scenario whose outcomes are functions of each patient's dose level and latent draws.

    ``draw_latent(rng, n)`` draws the latent variables of the next ``n`` patients of a
    trial in enrolment order, such that drawing for ``n1`` then ``n2`` patients gives the
    same values as drawing for ``n1 + n2`` at once (so the draws of a whole trial can be made
    up front); ``respond`` must equal ``outcomes_at_levels`` of the dose levels and of
    ``draw_latent(rng, len(doses))``. ``outcomes_at_levels`` maps levels (m, c) and their
    latent draws (m, c) to the outcome arrays (m, c); ``metrics_at_counts`` scores ``m``
    finished trials from their counts per level ``n``, ``y`` (m, K), the recommended level
    (``-1`` for none) and the patients treated, each metric an array (m,), equal to
    ``trial_metrics`` of each trial. ``dose_levels`` and ``outcomes`` are read-only.
    """

    @property
    def dose_levels(self) -> tuple[float, ...]:
        """The dose levels patients are treated at."""
        ...

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Outcome columns of the trial data."""
        ...

    def draw_latent(self, rng: np.random.Generator, n_patients: int) -> np.ndarray:
        """Draw the latent variables of the next ``n_patients`` patients, (n_patients,)."""
        ...

    def outcomes_at_levels(self, levels: np.ndarray, latent: np.ndarray) -> dict[str, np.ndarray]:
        """Outcomes of patients at ``levels`` with latent draws ``latent`` (same shape)."""
        ...

    def metrics_at_counts(
        self,
        n: np.ndarray,
        y: np.ndarray,
        selected: np.ndarray,
        treated: np.ndarray,
        outcomes: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Score ``m`` trials from their counts; one array (m,) per metric.

        ``outcomes`` are the patients' outcomes (m, sample size), NaN after the last patient,
        for metrics that counts per level do not give (e.g. response rates).
        """
        ...
