"""The per-trial engine: one trial at a time, for any design and scenario.

The engine knows nothing about models. It talks to a *design* (how a trial is conducted:
`Design.next`, `Design.recommend`, the cohort and sample sizes) and to a *scenario* (the truth:
`Scenario.respond`, `Scenario.trial_metrics`) only through the protocols
`dosezoo.protocols.Design` and `dosezoo.protocols.Scenario`, so any model, rule or
data-generating process offering those methods can be simulated.

One trial (`run_trial`) starts from ``scenario.empty_data()``; the design names the dose of the
next cohort, the scenario answers with the outcomes of the cohort at that dose, and so on until
the design stops or the sample size is reached. A dose may be a drug combination (a tuple, one
value per dose column), and a decision may name one dose per stratum of patients
(`Decision.strata`): the cohort is then one arm of ``cohort_size`` patients per stratum that goes
on, in order, the last arms truncated to the sample size, and the scenario is told the
patients' covariates (``respond(doses, rng, covariates=...)``). For data with covariates and a
decision for every patient, the scenario draws the patients' covariates and returns them with
the outcomes. The design then recommends a dose and the
scenario scores the trial. The decisions and metrics are checked on the way (a `Decision`, a
reason to stop, real-valued metrics and quantities whose names do not clash with the results).

A design with a ``backfill`` (its conduct's, :class:`dosezoo.designs.backfill.Backfill`) is run
in time instead (`_run_timed`): patients arrive by a Poisson process, the first
``cohort_size`` arrivals after a decision form the escalation cohort, whose outcomes are
pending for ``dlt_window``; each patient arriving meanwhile gets a dose the design names by
``design.backfill_doses(known, current)`` (chosen by ``backfill.choose`` within the caps) or
is turned away; the next decision is made when the cohort's window closes, on the patients
whose outcomes are known then (enrolled at least ``dlt_window`` before). The recommendation
reads every patient once all windows have closed. Such a trial also records each patient's
``enrolled`` time and ``role``, each decision's ``time`` (quantity) and the metrics
``duration`` (until the last window closes), ``n_backfill`` and ``n_turned_away``. The arrival
times and the backfill doses come from a stream of their own (`_timing_stream`), so the trial's
generator draws only the patients' outcomes, in enrolment order, as without backfill: the
scenarios' common random numbers pair a design run with and without backfill. Without a
backfill nothing of this runs and no extra random number is drawn.
`_run_trials_batch` runs a batch of trials one after the other, each with its own generator,
for one design or several in turn, and pads their records into each design's Dataset.
"""

import bisect
from collections.abc import Callable, Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np
import xarray as xr

from dosezoo.checks import positive_int
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.protocols import BackfillDesign, CountRuleDesign, Design, Scenario
from dosezoo.simulate.layout import (
    TIMED_METRICS,
    _assemble,
    _check_metric_name,
    _check_quantity_key,
    _empty_batch,
    _Layout,
)


class TrialRecord(TypedDict):
    """One simulated trial as plain arrays (small and picklable).

    Decisions are every `Decision` of the trial in order: those of ``design.next``
    (kind ``"next"``), then the one of ``design.recommend`` (kind ``"recommend"``).
    """

    dose: np.ndarray
    """Dose of each patient, float, shape (n_patients,), or (n_patients, J) for combinations."""
    cohort: np.ndarray
    """Cohort of each patient, int64, shape (n_patients,)."""
    outcomes: dict[str, np.ndarray]
    """Each outcome column as floats, shape (n_patients,)."""
    covariates: dict[str, np.ndarray]
    """Each covariate column as objects, shape (n_patients,)."""
    decision_dose: np.ndarray
    """``next_dose`` of each decision, NaN for a stop and a decision per stratum, shape
    (n_decisions,) or (n_decisions, J) for combinations."""
    decision_stop_reason: np.ndarray
    """``stop_reason`` of each decision, ``""`` when it names a dose."""
    decision_bound_by: np.ndarray
    """``bound_by`` of each decision, comma-joined."""
    decision_kind: np.ndarray
    """``"next"`` or ``"recommend"``."""
    decision_quantities: dict[str, np.ndarray]
    """Each real scalar quantity of the decisions, NaN where a decision lacks it."""
    n_patients: int
    """Number of patients enrolled."""
    stop_reason: str
    """Why the design stopped the trial early; ``""`` when it reached its sample size."""
    recommended_dose: float | np.ndarray
    """The recommended dose ((J,) for combinations), the design's ``recommend`` at the end of
    every trial, one stopped early too (e.g. the 3+3's MTD); NaN when nothing was recommended
    (a stop without an MTD) or one dose per stratum was."""
    recommended_strata: dict[str, np.ndarray]
    """A recommendation per stratum: each stratum's dose by its label (``"z1=0"``), NaN for a
    stratum with none; empty otherwise."""
    metrics: dict[str, float]
    """What ``scenario.trial_metrics`` returned (and, run in time, the `TIMED_METRICS`)."""
    enrolled: NotRequired[np.ndarray]
    """Run in time: each patient's enrolment time, float, shape (n_patients,)."""
    role: NotRequired[np.ndarray]
    """Run in time: each patient's role, ``"escalation"`` or ``"backfill"``."""


def _conduct(design: Design | CountRuleDesign, owner: str) -> tuple[int, int]:
    """Return the validated ``(cohort_size, sample_size)`` of a design; ``owner`` is the caller."""
    cohort_size = positive_int(owner, "design.cohort_size", getattr(design, "cohort_size", None))
    sample_size = positive_int(owner, "design.sample_size", getattr(design, "sample_size", None))
    return cohort_size, sample_size


def _real_scalar(value: object) -> float | None:
    """Return a real scalar (Python, numpy or 0-d array) as a float, anything else as None."""
    if type(value) is float:  # what nearly every quantity and metric is: no array to make
        return value
    if isinstance(value, str | bytes):
        return None
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "biuf":
        return None
    return float(array)


def _checked(decision: object, who: str) -> Decision:
    if not isinstance(decision, Decision):
        raise TypeError(f"{who} must return a Decision; got {decision!r}")
    if decision.stopped and not decision.stop_reason:
        raise ValueError(f"{who} stopped with an empty stop_reason; give the reason to stop")
    return decision


def stratum_label(stratum: dict) -> str:
    """Return a stratum's label, e.g. ``"z1=0,z2=1"`` (numbers with ``:g``)."""
    return ",".join(
        f"{key}={value:g}" if isinstance(value, int | float | np.number) else f"{key}={value}"
        for key, value in stratum.items()
    )


def _dose_array(dose: object, n_doses: int) -> np.ndarray:
    """Return a decision's dose as floats: () for one dose column, (J,) for a combination."""
    if dose is None:
        return np.full((() if n_doses == 1 else (n_doses,)), np.nan)
    return np.asarray(dose, dtype=float)


def _cohort(
    decision: Decision, data: TrialData, cohort_size: int, room: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return the doses (n,) or (n, J) and the given covariates of a decision's next cohort.

    One arm per dose the decision names, ``cohort_size`` patients each, in order, the last
    ones truncated to the ``room`` left; covariates come from the arms' strata (none for a
    decision for every patient).
    """
    doses: list[np.ndarray] = []
    strata: list[tuple[dict[str, Any], int]] = []
    for dose, stratum in decision.arms:
        n = min(cohort_size, room - sum(len(block) for block in doses))
        if n <= 0:
            break
        doses.append(np.repeat(np.atleast_2d(np.asarray(dose, dtype=float)), n, axis=0))
        strata.append((stratum, n))
    block = np.concatenate(doses)
    if len(data.dose_columns) == 1:
        block = block[:, 0]
    covariates: dict[str, np.ndarray] = {}
    if any(stratum for stratum, _ in strata):
        for name in data.covariates:
            values = []
            for stratum, n in strata:
                if name not in stratum:
                    raise ValueError(
                        f"design.next: a decision's stratum {stratum!r} does not give "
                        f"covariate {name!r} of the data"
                    )
                values += [stratum[name]] * n
            covariates[name] = np.asarray(values)
    return block, covariates


def run_trial(design: Design, scenario: Scenario, rng: np.random.Generator) -> TrialRecord:
    """Simulate one trial of a design under a scenario.

    Parameters
    ----------
    design : Design
        How the trial is conducted.
    scenario : Scenario
        The truth the outcomes are drawn from.
    rng : numpy.random.Generator
        The trial's only source of randomness, handed to ``scenario.respond``.

    Returns
    -------
    TrialRecord
        The patients, every decision, the recommendation and the metrics of the trial.

    Raises
    ------
    ValueError
        If the design's sizes are not positive integers, ``scenario.empty_data()`` has
        patients, a decision stops without a reason, or a metric or quantity name
        clashes with a variable of the results.
    TypeError
        If the design returns something else than a `Decision`.
    """
    cohort_size, sample_size = _conduct(design, "run_trial")
    data = scenario.empty_data()
    if data.n_patients:
        raise ValueError(
            f"scenario.empty_data() must return data with no patients; got {data.n_patients}"
        )
    decisions: list[Decision] = []
    stop: Decision | None = None
    single = len(data.dose_columns) == 1
    timed: dict[str, float] = {}
    times: list[float] = []
    if getattr(design, "backfill", None) is not None:
        data, decisions, stop, times, timed = _run_timed(
            design,  # type: ignore[arg-type]  # a Design whose backfill is set
            scenario,
            data,
            cohort_size,
            sample_size,
            rng,
        )
    while not timed and data.n_patients < sample_size:
        decision = _checked(design.next(data), "design.next")
        decisions.append(decision)
        if decision.stopped:
            stop = decision
            break
        room = sample_size - data.n_patients
        if single and not decision.strata and not decision.stratum:
            n = min(cohort_size, room)
            dose = decision.scalar_dose("design.next")
            assert dose is not None  # a decision that goes on, with no strata, names a dose
            data = data.with_cohort(dose, **scenario.respond(np.full(n, dose), rng))
            continue
        doses, covariates = _cohort(decision, data, cohort_size, room)
        if covariates:
            values = scenario.respond(doses, rng, covariates=covariates)  # type: ignore[call-arg]
        else:
            values = scenario.respond(doses, rng)
        data = data.with_cohort(doses, **{**values, **covariates})
    recommendation = _checked(design.recommend(data), "design.recommend")
    decisions.append(recommendation)
    kinds = ["next"] * (len(decisions) - 1) + ["recommend"]

    metrics: dict[str, float] = dict(timed)
    for name, value in scenario.trial_metrics(data, recommendation).items():
        _check_metric_name(name, (*scenario.outcomes, *data.covariates))
        number = _real_scalar(value)
        if number is None:
            raise TypeError(
                f"scenario.trial_metrics: metric {name!r} is not a real number: {value!r}"
            )
        metrics[name] = number

    quantities: dict[str, np.ndarray] = {}
    for i, decision in enumerate(decisions):
        for key, value in decision.quantities.items():
            _check_quantity_key(key)
            if timed and key == "time":
                raise ValueError(
                    "decision quantity 'time' clashes with the decision times of a trial run "
                    "in time (backfill); rename it"
                )
            number = _real_scalar(value)
            if number is None:
                continue
            # Made once per quantity (setdefault would build the NaN array at every call).
            if key not in quantities:
                quantities[key] = np.full(len(decisions), np.nan)
            quantities[key][i] = number
    if timed:
        quantities["time"] = np.array([*times, timed["duration"]])

    n_doses = len(data.dose_columns)
    record = TrialRecord(
        dose=np.asarray(data.doses[:, 0] if single else data.doses, dtype=float),
        cohort=np.asarray(data.cohort, dtype=np.int64),
        outcomes={name: np.asarray(data.column(name), dtype=float) for name in scenario.outcomes},
        covariates={name: np.asarray(data.column(name), dtype=object) for name in data.covariates},
        decision_dose=np.array([_dose_array(d.next_dose, n_doses) for d in decisions]),
        decision_stop_reason=np.array([d.stop_reason or "" for d in decisions], dtype=str),
        decision_bound_by=np.array([",".join(d.bound_by) for d in decisions], dtype=str),
        decision_kind=np.array(kinds, dtype=str),
        decision_quantities=quantities,
        n_patients=data.n_patients,
        stop_reason="" if stop is None else str(stop.stop_reason),
        recommended_dose=_dose_array(recommendation.next_dose, n_doses),
        recommended_strata={
            stratum_label(decision.stratum): _dose_array(decision.next_dose, n_doses)
            for decision in recommendation.strata
        },
        metrics=metrics,
    )
    if timed:
        record["enrolled"] = np.asarray(data.column("enrolled"), dtype=float)
        record["role"] = np.asarray(data.column("role"), dtype=object)
    return record


#: The spawn key that names a trial's stream of arrival times and backfill choices.
_TIMING_KEY = 0x74696D65  # "time"


def _timing_stream(rng: np.random.Generator) -> np.random.Generator:
    """Return the generator of a timed trial's arrivals and backfill choices.

    The child of the trial's seed sequence under a fixed spawn key, as ``SeedSequence.spawn``
    makes children (a counter would give the second of two designs run together on the
    trial's seed another stream); the trial's generator does not advance. A generator
    without a seed sequence (rebuilt from a state) seeds it with one draw of its own.
    """
    sequence = getattr(rng.bit_generator, "seed_seq", None)
    if not isinstance(sequence, np.random.SeedSequence):
        return np.random.default_rng(rng.integers(2**63))
    key = (*sequence.spawn_key, _TIMING_KEY)
    child = np.random.SeedSequence(sequence.entropy, spawn_key=key, pool_size=sequence.pool_size)
    return np.random.default_rng(child)


def _run_timed(
    design: BackfillDesign,
    scenario: Scenario,
    data: TrialData,
    cohort_size: int,
    sample_size: int,
    rng: np.random.Generator,
) -> tuple[TrialData, list[Decision], Decision | None, list[float], dict[str, float]]:
    """Run a trial in time with backfill (see the module docstring).

    Returns the data of every patient, the decisions of ``design.next`` with their times, the
    stop (None if the sample size was reached) and the `TIMED_METRICS`.
    """
    if len(data.dose_columns) != 1 or data.covariates:
        raise ValueError(
            "run_trial: backfill runs single-drug trials without covariates; the scenario's "
            f"data have dose columns {data.dose_columns} and covariates {data.covariates}"
        )
    backfill = design.backfill
    assert backfill is not None  # run_trial calls this for a design with a backfill
    window, scale = float(backfill.dlt_window), 1.0 / float(backfill.arrival_rate)
    decisions: list[Decision] = []
    times: list[float] = []
    stop: Decision | None = None
    backfilled: dict[float, int] = {}
    n_backfilled = turned_away = 0
    # When each patient's outcomes become known (enrolment + window): the patients known at a
    # time are a prefix of the data, as windows are equal and enrolment times do not decrease.
    known_at: list[float] = []
    heads: dict[int, TrialData] = {}  # the known prefixes given to the design, by size

    def known(time: float) -> TrialData:
        """Return the data of the patients whose outcomes are known at ``time``."""
        n = bisect.bisect_right(known_at, time)
        if n == data.n_patients:
            return data
        if n not in heads:
            heads[n] = data.head(n)
        return heads[n]

    timing = _timing_stream(rng)
    clock = 0.0
    arrival = float(timing.exponential(scale))
    while data.n_patients < sample_size:
        decision = _checked(design.next(known(clock)), "design.next")
        decisions.append(decision)
        times.append(clock)
        if decision.stopped:
            stop = decision
            break
        if decision.strata or decision.stratum:
            raise ValueError("run_trial: backfill runs decisions of one dose for every patient")
        dose = decision.scalar_dose("design.next")
        assert dose is not None  # a decision that goes on names a dose
        enrolled = []
        for _ in range(min(cohort_size, sample_size - data.n_patients)):
            enrolled.append(arrival)
            arrival += float(timing.exponential(scale))
        values = scenario.respond(np.full(len(enrolled), dose), rng)
        data = data.with_cohort(dose, **values, enrolled=enrolled, role="escalation")
        known_at += [time + window for time in enrolled]
        clock = known_at[-1]
        # The doses eligible change only when outcomes become known: kept by the known prefix
        # while this cohort waits.
        eligible: dict[int, tuple[float, ...]] = {}
        while arrival < clock and data.n_patients < sample_size:
            chosen = None
            if n_backfilled < backfill.total_cap:
                prefix = known(arrival)
                if prefix.n_patients not in eligible:
                    eligible[prefix.n_patients] = tuple(design.backfill_doses(prefix, dose))
                chosen = backfill.choose(eligible[prefix.n_patients], backfilled, timing)
            if chosen is None:
                turned_away += 1
            else:
                values = scenario.respond(np.array([chosen]), rng)
                data = data.with_cohort(chosen, **values, enrolled=[arrival], role="backfill")
                known_at.append(arrival + window)
                backfilled[chosen] = backfilled.get(chosen, 0) + 1
                n_backfilled += 1
            arrival += float(timing.exponential(scale))
    duration = float(np.max(data.column("enrolled")) + window) if data.n_patients else 0.0
    counts = (duration, float(n_backfilled), float(turned_away))
    return data, decisions, stop, times, dict(zip(TIMED_METRICS, counts, strict=True))


def _to_dataset(records: Sequence[TrialRecord], trials: np.ndarray, layout: _Layout) -> xr.Dataset:
    """Pad the records of a batch of trials into one Dataset (dims trial, patient, decision)."""
    n = len(records)
    batch = _empty_batch(n, layout)._replace(recommended_strata={})
    for row, record in enumerate(records):
        k, m = record["n_patients"], record["decision_dose"].shape[0]
        batch.dose[row, :k] = record["dose"]
        batch.cohort[row, :k] = record["cohort"]
        for name in layout.outcomes:
            batch.outcomes[name][row, :k] = record["outcomes"][name]
        for name in layout.covariates:
            batch.covariates[name][row, :k] = record["covariates"][name]
        if batch.enrolled is not None and batch.role is not None:
            batch.enrolled[row, :k] = record["enrolled"]
            batch.role[row, :k] = record["role"]
        batch.decision_dose[row, :m] = record["decision_dose"]
        batch.decision_text["stop_reason"][row, :m] = record["decision_stop_reason"]
        batch.decision_text["bound_by"][row, :m] = record["decision_bound_by"]
        batch.decision_text["kind"][row, :m] = record["decision_kind"]
        # Each variable's NaN array is made when it first appears (not at every trial).
        for key, values in record["decision_quantities"].items():
            if key not in batch.quantities:
                batch.quantities[key] = np.full(batch.decision_dose.shape[:2], np.nan)
            batch.quantities[key][row, :m] = values
        for name, value in record["metrics"].items():
            if name not in batch.metrics:
                batch.metrics[name] = np.full(n, np.nan)
            batch.metrics[name][row] = value
        batch.n_patients[row] = k
        batch.stop_reason[row] = record["stop_reason"]
        batch.recommended_dose[row] = record["recommended_dose"]
        for label, dose in record["recommended_strata"].items():
            strata = batch.recommended_strata
            assert strata is not None
            strata.setdefault(label, np.full(batch.recommended_dose.shape, np.nan))[row] = dose
    return _assemble(batch, trials, layout)


def _run_trials_batch(
    designs: Sequence[Design],
    scenario: Scenario,
    trials: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    layouts: Sequence[_Layout],
    advance: Callable[[int], None] | None = None,
) -> list[xr.Dataset]:
    """Run the trials of one batch one after the other, each with its own generator.

    With several designs, trial ``i`` of every design runs before trial ``i + 1`` of any, each
    from a new generator of ``seeds[i]``: the designs' results are those of separate runs, and
    what designs sharing a model memoise (posteriors by count state) is read while it is fresh.
    """
    records: list[list[TrialRecord]] = [[] for _ in designs]
    for seed in seeds:
        for design, kept in zip(designs, records, strict=True):
            kept.append(run_trial(design, scenario, np.random.default_rng(seed)))
        if advance is not None:
            advance(1)
    return [
        _to_dataset(kept, trials, layout) for kept, layout in zip(records, layouts, strict=True)
    ]
