"""The per-trial engine: one trial at a time, for any design and scenario.

The engine knows nothing about models. It talks to a *design* (how a trial is conducted:
`Design.next`, `Design.recommend`, the cohort and sample sizes) and to a *scenario* (the truth:
`Scenario.respond`, `Scenario.trial_metrics`) only through the protocols
`dosezoo.protocols.Design` and `dosezoo.protocols.Scenario`, so any model, rule or
data-generating process offering those methods can be simulated.

One trial (`run_trial`) starts from ``scenario.empty_data()``; the design names the dose of the
next cohort, the scenario answers with the outcomes of the cohort at that dose, and so on until
the design stops or the sample size is reached. The design then recommends a dose and the
scenario scores the trial. The decisions and metrics are checked on the way (a `Decision`, a
reason to stop, real-valued metrics and quantities whose names do not clash with the results).
`_run_trials_batch` runs a batch of trials one after the other, each with its own generator,
and pads their records into the batch's Dataset.
"""

from collections.abc import Callable, Sequence
from typing import TypedDict

import numpy as np
import xarray as xr

from dosezoo.checks import positive_int
from dosezoo.decision import Decision
from dosezoo.protocols import CountRuleDesign, Design, Scenario
from dosezoo.simulate.layout import (
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
    """Dose of each patient, float, shape (n_patients,)."""
    cohort: np.ndarray
    """Cohort of each patient, int64, shape (n_patients,)."""
    outcomes: dict[str, np.ndarray]
    """Each outcome column as floats, shape (n_patients,)."""
    decision_dose: np.ndarray
    """``next_dose`` of each decision, NaN for a stop, shape (n_decisions,)."""
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
    recommended_dose: float
    """The recommended dose; NaN when the trial stopped or nothing was recommended."""
    metrics: dict[str, float]
    """What ``scenario.trial_metrics`` returned."""


def _conduct(design: Design | CountRuleDesign, owner: str) -> tuple[int, int]:
    """Return the validated ``(cohort_size, sample_size)`` of a design; ``owner`` is the caller."""
    cohort_size = positive_int(owner, "design.cohort_size", getattr(design, "cohort_size", None))
    sample_size = positive_int(owner, "design.sample_size", getattr(design, "sample_size", None))
    return cohort_size, sample_size


def _real_scalar(value: object) -> float | None:
    """Return a real scalar (Python, numpy or 0-d array) as a float, anything else as None."""
    if isinstance(value, str | bytes):
        return None
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "biuf":
        return None
    return float(array)


def _checked(decision: object, who: str) -> Decision:
    if not isinstance(decision, Decision):
        raise TypeError(f"{who} must return a Decision; got {decision!r}")
    if decision.next_dose is None and not decision.stop_reason:
        raise ValueError(f"{who} stopped with an empty stop_reason; give the reason to stop")
    return decision


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
    while data.n_patients < sample_size:
        decision = _checked(design.next(data), "design.next")
        decisions.append(decision)
        if decision.next_dose is None:
            stop = decision
            break
        n = min(cohort_size, sample_size - data.n_patients)
        dose = float(decision.next_dose)
        data = data.with_cohort(dose, **scenario.respond(np.full(n, dose), rng))
    recommendation = _checked(design.recommend(data), "design.recommend")
    decisions.append(recommendation)
    kinds = ["next"] * (len(decisions) - 1) + ["recommend"]

    metrics: dict[str, float] = {}
    for name, value in scenario.trial_metrics(data, recommendation).items():
        _check_metric_name(name, scenario.outcomes)
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
            number = _real_scalar(value)
            if number is not None:
                quantities.setdefault(key, np.full(len(decisions), np.nan))[i] = number

    return TrialRecord(
        dose=np.asarray(data.dose, dtype=float),
        cohort=np.asarray(data.cohort, dtype=np.int64),
        outcomes={name: np.asarray(data.column(name), dtype=float) for name in scenario.outcomes},
        decision_dose=np.array(
            [np.nan if d.next_dose is None else float(d.next_dose) for d in decisions]
        ),
        decision_stop_reason=np.array([d.stop_reason or "" for d in decisions], dtype=str),
        decision_bound_by=np.array([",".join(d.bound_by) for d in decisions], dtype=str),
        decision_kind=np.array(kinds, dtype=str),
        decision_quantities=quantities,
        n_patients=data.n_patients,
        stop_reason="" if stop is None else str(stop.stop_reason),
        recommended_dose=(
            np.nan if recommendation.next_dose is None else float(recommendation.next_dose)
        ),
        metrics=metrics,
    )


def _to_dataset(records: Sequence[TrialRecord], trials: np.ndarray, layout: _Layout) -> xr.Dataset:
    """Pad the records of a batch of trials into one Dataset (dims trial, patient, decision)."""
    n = len(records)
    batch = _empty_batch(n, layout)
    for row, record in enumerate(records):
        k, m = record["n_patients"], record["decision_dose"].size
        batch.dose[row, :k] = record["dose"]
        batch.cohort[row, :k] = record["cohort"]
        for name in layout.outcomes:
            batch.outcomes[name][row, :k] = record["outcomes"][name]
        batch.decision_dose[row, :m] = record["decision_dose"]
        batch.decision_text["stop_reason"][row, :m] = record["decision_stop_reason"]
        batch.decision_text["bound_by"][row, :m] = record["decision_bound_by"]
        batch.decision_text["kind"][row, :m] = record["decision_kind"]
        for key, values in record["decision_quantities"].items():
            batch.quantities.setdefault(key, np.full(batch.decision_dose.shape, np.nan))[
                row, :m
            ] = values
        for name, value in record["metrics"].items():
            batch.metrics.setdefault(name, np.full(n, np.nan))[row] = value
        batch.n_patients[row] = k
        batch.stop_reason[row] = record["stop_reason"]
        batch.recommended_dose[row] = record["recommended_dose"]
    return _assemble(batch, trials, layout)


def _run_trials_batch(
    design: Design,
    scenario: Scenario,
    trials: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    layout: _Layout,
    advance: Callable[[int], None] | None = None,
) -> xr.Dataset:
    """Run the trials of one batch one after the other, each with its own generator."""
    records = []
    for seed in seeds:
        records.append(run_trial(design, scenario, np.random.default_rng(seed)))
        if advance is not None:
            advance(1)
    return _to_dataset(records, trials, layout)
