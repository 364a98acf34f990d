"""Trial simulation: run a design against a scenario many times, reproducibly.

The engine knows nothing about models. It talks to a *design* (how a trial is
conducted: `Design.next`, `Design.recommend`, the cohort and sample sizes) and to a
*scenario* (the truth: `Scenario.respond`, `Scenario.trial_metrics`) only through
the `Design` and `Scenario` protocols, so any model, rule or data-generating process
offering those methods can be simulated.

One trial (`run_trial`) starts from ``scenario.empty_data()``; the design names the
dose of the next cohort, the scenario answers with the outcomes of the cohort at
that dose, and so on until the design stops or the sample size is reached. The
design then recommends a dose and the scenario scores the trial.

Count rules in lockstep. When the design decides from the patients and DLTs per dose
level only (`CountRuleDesign`: BOIN, 3+3) and the scenario answers for dose levels from
latent per-patient draws (`LevelScenario`: the binary-toxicity scenario), on the same dose
levels, a batch of trials runs in lockstep instead: every trial still running at step ``s``
has had ``s`` cohorts, so one call of the design's array rule decides the next cohort of all
of them, the scenario gives their outcomes from the latent draws each trial made up front
from its own generator, and the batch's arrays go straight into its Dataset. The result is
identical to the one of `run_trial`, trial by trial (the design's ``next`` and ``recommend``
are its array rule on a batch of one); only the time differs.

`simulate` runs many trials in process, on local worker processes (joblib, loky
backend) or on a dask cluster, and gathers them in one `xarray.Dataset` with one
entry per trial. With ``path``, every finished batch of trials is saved at once, so
a run that was killed resumes where it stopped: only the missing trials are run.
`operating_characteristics` summarises the per-trial metrics with their Monte Carlo
standard errors.

Reproducibility
---------------
Trial ``i`` draws its random numbers from ``numpy.random.default_rng(children[i])``,
where ``children = numpy.random.SeedSequence(random_seed).spawn(n_trials)``, and from
nothing else. The result of `simulate` therefore depends only on the design, the
scenario, ``n_trials`` and ``random_seed``: not on ``n_jobs``, ``batch_size``, the
use of dask, the order in which workers finish, nor on how often a run was
interrupted and resumed. This holds provided the design is a deterministic function
of the data it is given (a design that fits a posterior by MCMC must seed the fit
from its own settings and the data, never from global state).
"""

import math
import numbers
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypedDict

import numpy as np
import xarray as xr
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from dosezoo import __version__
from dosezoo.decision import CountDecisions, Decision
from dosezoo.protocols import CountRuleDesign, Design, LevelScenario, Scenario

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CountDecisions",
    "CountRuleDesign",
    "Design",
    "LevelScenario",
    "Scenario",
    "TrialRecord",
    "operating_characteristics",
    "run_trial",
    "simulate",
]


AttrValue = str | int | float
"""A netCDF-safe attribute value."""

_RUN_KEYS = ("random_seed", "n_trials", "sample_size", "cohort_size")
_DESCRIBED_PREFIXES = ("design_", "scenario_")
_RESERVED = (
    "trial",
    "patient",
    "decision",
    "dose",
    "cohort",
    "n_patients",
    "stop_reason",
    "recommended_dose",
)
_DECISION_TEXT = ("stop_reason", "bound_by", "kind")
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
_OPTIONAL_PACKAGES = ("pymc", "arviz")
_MAX_BATCH = 100
_BATCHES_PER_WORKER = 4
_BOOTSTRAP_CELLS = 2**22
_PART_GLOB = "trials-*.nc"
#: The outcome whose events a count rule counts per level (as ``dosezoo.levels.level_counts``).
_COUNTED_OUTCOME = "dlt"


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


class _Layout(NamedTuple):
    """Shape of the result of one simulation, shared by every batch."""

    outcomes: tuple[str, ...]
    sample_size: int
    n_decisions: int
    fingerprint: dict[str, AttrValue]


# --------------------------------------------------------------------------- validation


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _seed(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _conduct(design: Design) -> tuple[int, int]:
    """Return the validated ``(cohort_size, sample_size)`` of a design."""
    cohort_size = _positive_int(getattr(design, "cohort_size", None), "design.cohort_size")
    sample_size = _positive_int(getattr(design, "sample_size", None), "design.sample_size")
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


def _check_metric_name(name: str, outcomes: Sequence[str]) -> None:
    """Raise ValueError if a metric's name would clash with a variable of the results."""
    if name in _RESERVED or name in outcomes or name.startswith("decision_") or "," in name:
        raise ValueError(
            f"scenario.trial_metrics: metric name {name!r} clashes with a variable of "
            "the results or contains a comma; rename it"
        )


def _check_quantity_key(key: str) -> None:
    """Raise ValueError if a decision quantity would clash with a ``decision_*`` variable."""
    if key == "dose" or key in _DECISION_TEXT:
        raise ValueError(
            f"decision quantity {key!r} clashes with the variable 'decision_{key}' "
            "of the results; rename it"
        )


def _attr_value(value: object, name: str) -> AttrValue:
    """Convert a described parameter to a netCDF-safe attribute value."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{name} must be a str, int, float, bool or None; got {value!r}")


# --------------------------------------------------------------------------- one trial


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
    cohort_size, sample_size = _conduct(design)
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


# --------------------------------------------------------------------------- batches


class _Batch(NamedTuple):
    """The padded arrays of a batch of trials, from which `_assemble` builds its Dataset."""

    dose: np.ndarray
    """(trial, patient) floats, NaN past a trial's last patient."""
    cohort: np.ndarray
    """(trial, patient) int64, -1 past a trial's last patient."""
    outcomes: dict[str, np.ndarray]
    """Each outcome, (trial, patient) floats, NaN past a trial's last patient."""
    decision_dose: np.ndarray
    """(trial, decision) floats, NaN for a stop and past a trial's last decision."""
    decision_text: dict[str, np.ndarray]
    """``stop_reason``, ``bound_by`` and ``kind`` of each decision, (trial, decision), objects."""
    quantities: dict[str, np.ndarray]
    """Each decision quantity, (trial, decision) floats, in the order of first appearance."""
    metrics: dict[str, np.ndarray]
    """Each metric, (trial,) floats, in the order of first appearance."""
    n_patients: np.ndarray
    """(trial,) int64."""
    stop_reason: np.ndarray
    """(trial,) objects: the reason of the early stop, ``""`` for none."""
    recommended_dose: np.ndarray
    """(trial,) floats, NaN when nothing was recommended."""


def _empty_batch(n_trials: int, layout: _Layout) -> _Batch:
    """Return the arrays of a batch of ``n_trials`` trials, all padding (no quantity, no metric)."""
    patient_shape, decision_shape = (n_trials, layout.sample_size), (n_trials, layout.n_decisions)
    return _Batch(
        dose=np.full(patient_shape, np.nan),
        cohort=np.full(patient_shape, -1, dtype=np.int64),
        outcomes={name: np.full(patient_shape, np.nan) for name in layout.outcomes},
        decision_dose=np.full(decision_shape, np.nan),
        decision_text={key: np.full(decision_shape, "", dtype=object) for key in _DECISION_TEXT},
        quantities={},
        metrics={},
        n_patients=np.zeros(n_trials, dtype=np.int64),
        stop_reason=np.full(n_trials, "", dtype=object),
        recommended_dose=np.full(n_trials, np.nan),
    )


def _assemble(batch: _Batch, trials: np.ndarray, layout: _Layout) -> xr.Dataset:
    """Build the Dataset of a batch (dims trial, patient, decision) from its arrays."""
    patient, decision = ("trial", "patient"), ("trial", "decision")
    variables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        "dose": (patient, batch.dose),
        "cohort": (patient, batch.cohort),
        **{name: (patient, values) for name, values in batch.outcomes.items()},
        "decision_dose": (decision, batch.decision_dose),
        **{
            f"decision_{key}": (decision, text.astype(str))
            for key, text in batch.decision_text.items()
        },
        **{f"decision_{key}": (decision, values) for key, values in batch.quantities.items()},
        "n_patients": (("trial",), batch.n_patients),
        "stop_reason": (("trial",), batch.stop_reason.astype(str)),
        "recommended_dose": (("trial",), batch.recommended_dose),
        **{name: (("trial",), values) for name, values in batch.metrics.items()},
    }
    return xr.Dataset(
        variables,
        coords={"trial": np.asarray(trials, dtype=np.int64)},
        attrs={**layout.fingerprint, "metrics": ",".join(batch.metrics)},
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
        for key in _DECISION_TEXT:
            batch.decision_text[key][row, :m] = record[f"decision_{key}"]
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


def _counts_suffice(design: Design, scenario: Scenario) -> bool:
    """Whether the trials can run in lockstep: both sides offer the count capabilities."""
    return (
        isinstance(design, CountRuleDesign)
        and isinstance(scenario, LevelScenario)
        and _COUNTED_OUTCOME in scenario.outcomes
        and tuple(design.dose_levels) == tuple(scenario.dose_levels)
    )


def _record_decisions(
    batch: _Batch,
    rows: np.ndarray,
    columns: np.ndarray,
    decisions: CountDecisions,
    doses: np.ndarray,
    kind: str,
    first_seen: dict[str, tuple[int, int, int]],
) -> None:
    """Write the decisions of trials ``rows`` into decision slots ``columns`` of the batch.

    ``first_seen`` keeps, for each quantity, the first (trial row, decision, position in the
    decision) where it appears, so that the quantities can be put in the order in which
    `_to_dataset` meets them in the per-trial records.
    """
    stops = decisions.level < 0
    if np.any(stops & (decisions.stop_reason == "")):
        who = "design.decide_counts" if kind == "next" else "design.recommend_counts"
        raise ValueError(f"{who} stopped with an empty stop_reason; give the reason to stop")
    batch.decision_dose[rows, columns] = np.where(
        stops, np.nan, doses[np.maximum(decisions.level, 0)]
    )
    batch.decision_text["stop_reason"][rows, columns] = decisions.stop_reason
    batch.decision_text["bound_by"][rows, columns] = decisions.bound_by
    batch.decision_text["kind"][rows, columns] = kind
    for position, (key, values) in enumerate(decisions.quantities.items()):
        present = decisions.present[key]
        if not present.any():
            continue
        _check_quantity_key(key)
        first = int(np.argmax(present))
        seen = (int(rows[first]), int(columns[first]), position)
        first_seen[key] = min(first_seen.get(key, seen), seen)
        target = batch.quantities.setdefault(key, np.full(batch.decision_dose.shape, np.nan))
        target[rows[present], columns[present]] = values[present]


def _run_count_batch(
    design: CountRuleDesign,
    scenario: LevelScenario,
    trials: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    layout: _Layout,
) -> xr.Dataset:
    """Run the trials of one batch in lockstep on their counts per level (see `simulate`).

    Every trial still running at step ``s`` has had ``s`` cohorts, so one call of the rule
    decides cohort ``s`` of all of them, and the scenario answers for all at once from each
    trial's latent draws, made up front from the generator of its own seed.
    """
    cohort_size, sample_size = _conduct(design)
    n_trials = len(seeds)
    doses = np.asarray(design.dose_levels, dtype=float)
    latent = np.stack(
        [scenario.draw_latent(np.random.default_rng(seed), sample_size) for seed in seeds]
    )
    batch = _empty_batch(n_trials, layout)
    n = np.zeros((n_trials, doses.size), dtype=np.int64)
    y = np.zeros_like(n)
    current = np.full(n_trials, -1, dtype=np.int64)
    running = np.ones(n_trials, dtype=bool)
    decided = np.zeros(n_trials, dtype=np.int64)
    first_seen: dict[str, tuple[int, int, int]] = {}
    for step in range(layout.n_decisions - 1):
        rows = np.flatnonzero(running)
        if not rows.size:
            break
        decisions = design.decide_counts(n[rows], y[rows], current[rows])
        _record_decisions(
            batch, rows, np.full(rows.size, step), decisions, doses, "next", first_seen
        )
        decided[rows] += 1
        stops = decisions.level < 0
        batch.stop_reason[rows[stops]] = decisions.stop_reason[stops]
        running[rows[stops]] = False
        go, level = rows[~stops], decisions.level[~stops]
        first, last = step * cohort_size, min(sample_size, (step + 1) * cohort_size)
        levels = np.repeat(level[:, None], last - first, axis=1)
        outcomes = scenario.outcomes_at_levels(levels, latent[go, first:last])
        batch.dose[go, first:last] = doses[levels]
        batch.cohort[go, first:last] = step + 1
        for name in layout.outcomes:
            batch.outcomes[name][go, first:last] = outcomes[name]
        n[go, level] += last - first
        y[go, level] += np.asarray(outcomes[_COUNTED_OUTCOME], dtype=np.int64).sum(axis=1)
        current[go] = level
    recommendations = design.recommend_counts(n, y, current)
    _record_decisions(
        batch, np.arange(n_trials), decided, recommendations, doses, "recommend", first_seen
    )
    selected = recommendations.level
    batch.n_patients[:] = n.sum(axis=1)
    batch.recommended_dose[:] = np.where(selected < 0, np.nan, doses[np.maximum(selected, 0)])
    for name, values in scenario.metrics_at_counts(n, y, selected, batch.n_patients).items():
        _check_metric_name(name, scenario.outcomes)
        values = np.asarray(values)
        if values.shape != (n_trials,) or values.dtype.kind not in "biuf":
            raise TypeError(
                f"scenario.metrics_at_counts: metric {name!r} is not {n_trials} real numbers: "
                f"{values!r}"
            )
        batch.metrics[name] = values.astype(float)
    ordered = sorted(batch.quantities.items(), key=lambda item: first_seen[item[0]])
    return _assemble(batch._replace(quantities=dict(ordered)), trials, layout)


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


def _run_batch(
    design: Design,
    scenario: Scenario,
    trials: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    layout: _Layout,
    advance: Callable[[int], None] | None = None,
) -> xr.Dataset:
    """Run the trials of one batch: in lockstep if counts suffice, else one by one."""
    if not _counts_suffice(design, scenario):
        return _run_trials_batch(design, scenario, trials, seeds, layout, advance)
    part = _run_count_batch(design, scenario, trials, seeds, layout)
    if advance is not None:
        advance(len(seeds))
    return part


def _run_batch_in_worker(
    design: Design,
    scenario: Scenario,
    trials: np.ndarray,
    seeds: Sequence[np.random.SeedSequence],
    layout: _Layout,
) -> xr.Dataset:
    """`_run_batch` in a worker process: one BLAS thread unless the user chose otherwise."""
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")
    return _run_batch(design, scenario, trials, seeds, layout)


def _run_batches(
    design: Design,
    scenario: Scenario,
    batches: Sequence[np.ndarray],
    seeds: Sequence[np.random.SeedSequence],
    layout: _Layout,
    *,
    n_jobs: int,
    client: "Client | None",
    advance: Callable[[int], None],
) -> Iterator[xr.Dataset]:
    """Yield the Dataset of every batch as soon as it is finished, in any order."""
    if client is not None:
        from distributed import as_completed

        design_future, scenario_future = client.scatter(
            [design, scenario], broadcast=True, hash=False
        )
        futures = [
            client.submit(
                _run_batch_in_worker,
                design_future,
                scenario_future,
                trials,
                [seeds[i] for i in trials],
                layout,
                pure=False,
            )
            for trials in batches
        ]
        try:
            for future in as_completed(futures):
                part = future.result()
                advance(part.sizes["trial"])
                yield part
        finally:
            client.cancel(futures)
    elif n_jobs == 1:
        for trials in batches:
            yield _run_batch(design, scenario, trials, [seeds[i] for i in trials], layout, advance)
    else:
        from joblib import Parallel, delayed

        tasks = (
            delayed(_run_batch_in_worker)(
                design, scenario, trials, [seeds[i] for i in trials], layout
            )
            for trials in batches
        )
        for part in Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(tasks):
            advance(part.sizes["trial"])
            yield part


@contextmanager
def _progress_bar(show: bool, total: int, completed: int) -> Iterator[Callable[[int], None]]:
    """Show a bar over finished trials; yield the function that advances it."""
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task("simulating trials", total=total, completed=completed)
        yield lambda n: bar.advance(task, n)


# --------------------------------------------------------------------------- storage


def _fingerprint(design: Design, scenario: Scenario, run: dict[str, int]) -> dict[str, AttrValue]:
    """Attributes that identify a simulation: run settings and both descriptions."""
    attrs: dict[str, AttrValue] = dict(run)
    for prefix, described in (("design", design.describe()), ("scenario", scenario.describe())):
        for key, value in described.items():
            attrs[f"{prefix}_{key}"] = _attr_value(value, f"{prefix}.describe()[{key!r}]")
    return attrs


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b) or bool(np.isnan(a) and np.isnan(b))


def _check_fingerprint(attrs: dict, fingerprint: dict[str, AttrValue], path: Path) -> None:
    """Raise ValueError if stored attributes belong to another simulation."""
    stored = {
        key: value.item() if isinstance(value, np.generic) else value
        for key, value in attrs.items()
        if key in _RUN_KEYS or key.startswith(_DESCRIBED_PREFIXES)
    }
    differences = [
        f"{key}: stored {stored.get(key, 'nothing')!r}, now {fingerprint.get(key, 'nothing')!r}"
        for key in dict.fromkeys([*stored, *fingerprint])
        if key not in stored
        or key not in fingerprint
        or not _same_value(stored[key], fingerprint[key])
    ]
    if differences:
        raise ValueError(
            f"path {str(path)!r} holds a different simulation ({'; '.join(differences)}); "
            "choose another path or delete it"
        )


def _write_atomically(dataset: xr.Dataset, target: Path) -> None:
    """Write netCDF to a temporary name next to ``target``, then rename it."""
    temporary = target.with_name(f".{target.name}.tmp")
    dataset.to_netcdf(temporary, engine="h5netcdf")
    os.replace(temporary, target)


class _Store:
    """The netCDF file of a simulation and the directory of its saved batches."""

    def __init__(self, path: Path, fingerprint: dict[str, AttrValue]) -> None:
        self.path = path
        self.parts_dir = path.with_name(f"{path.name}.parts")
        self.fingerprint = fingerprint

    def finished(self) -> xr.Dataset | None:
        """Load the finished file of this simulation, if there is one."""
        if not self.path.exists():
            return None
        finished = xr.load_dataset(self.path, engine="h5netcdf")
        _check_fingerprint(finished.attrs, self.fingerprint, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return finished

    def parts(self) -> list[xr.Dataset]:
        """Load the saved batches, checking they belong to this simulation."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.parts_dir.glob(".*.tmp"):
            stale.unlink()
        loaded = []
        for file in sorted(self.parts_dir.glob(_PART_GLOB)):
            part = xr.load_dataset(file, engine="h5netcdf").drop_encoding()
            _check_fingerprint(part.attrs, self.fingerprint, self.path)
            loaded.append(part)
        return loaded

    def save(self, part: xr.Dataset) -> None:
        """Save one finished batch at once."""
        trials = part["trial"].values
        _write_atomically(part, self.parts_dir / f"trials-{trials[0]:09d}-{trials[-1]:09d}.nc")

    def finish(self, result: xr.Dataset) -> None:
        """Write the combined results and remove the saved batches."""
        _write_atomically(result, self.path)
        shutil.rmtree(self.parts_dir)


def _combine(parts: Sequence[xr.Dataset], n_trials: int, attrs: dict[str, AttrValue]) -> xr.Dataset:
    """Concatenate batches into one Dataset sorted by trial, checking every trial is there once.

    A variable missing from a batch (a quantity or metric none of its trials had) is NaN
    there. The arrays are concatenated with numpy and the Dataset built once: ``xr.concat``
    of many small batches cost more than simulating them.
    """
    parts = sorted(parts, key=lambda part: int(part["trial"].values[0]))
    templates: dict[str, xr.Variable] = {}
    metrics: dict[str, None] = {}
    for part in parts:
        for name in part.data_vars:
            templates.setdefault(str(name), part.variables[name])
        metrics.update(dict.fromkeys(filter(None, part.attrs["metrics"].split(","))))
    trials = np.concatenate([part["trial"].values for part in parts])
    if not np.array_equal(np.sort(trials), np.arange(n_trials)):
        raise RuntimeError(
            f"the batches hold {trials.size} trials, not each of the {n_trials} trials once; "
            "the simulation store is corrupt"
        )
    order = np.argsort(trials)

    def values(part: xr.Dataset, name: str, template: xr.Variable) -> np.ndarray:
        if name in part.variables:
            return part.variables[name].values
        return np.full((part.sizes["trial"], *template.shape[1:]), np.nan)

    variables = {
        name: (
            template.dims,
            np.concatenate([values(part, name, template) for part in parts])[order],
        )
        for name, template in templates.items()
    }
    return xr.Dataset(
        variables,
        coords={"trial": trials[order]},
        attrs={**attrs, "metrics": ",".join(metrics), **_versions()},
    )


def _versions() -> dict[str, str]:
    """Versions of dosezoo and the packages that shape its results."""
    versions = {"version_dosezoo": __version__}
    for package in ("numpy", "xarray", "scipy", *_OPTIONAL_PACKAGES):
        try:
            versions[f"version_{package}"] = version(package)
        except PackageNotFoundError:
            if package not in _OPTIONAL_PACKAGES:
                raise
    return versions


# --------------------------------------------------------------------------- simulate


def simulate(
    design: Design,
    scenario: Scenario,
    n_trials: int,
    *,
    random_seed: int,
    n_jobs: int = 1,
    client: "Client | None" = None,
    path: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Simulate many trials of a design under a scenario.

    Parameters
    ----------
    design : Design
        How each trial is conducted.
    scenario : Scenario
        The truth the outcomes are drawn from.
    n_trials : int
        Number of trials, a positive integer.
    random_seed : int
        Non-negative seed; trial ``i`` uses child ``i`` of
        ``numpy.random.SeedSequence(random_seed).spawn(n_trials)``, so the result does
        not depend on ``n_jobs``, ``batch_size``, ``client`` or on resuming.
    n_jobs : int, default 1
        Local worker processes (joblib, loky backend); -1 for one per CPU. With 1 and no
        ``client`` the trials run in this process.
    client : distributed.Client, optional
        Run the batches on this dask cluster instead (then ``n_jobs`` must be 1).
    path : str or path-like, optional
        netCDF file of the results. Each finished batch is saved at once in the
        directory ``<path>.parts``; a later call with the same arguments runs only the
        trials not saved yet, then writes ``path`` and removes the parts. If ``path``
        already holds this simulation, it is loaded and returned.
    batch_size : int, optional
        Trials per batch (the unit of work sent to a worker and of saving). Default:
        about four batches per worker, at most 100 trials each.
    progress : bool, default True
        Show a progress bar over finished trials.

    Returns
    -------
    xarray.Dataset
        One entry per trial, dims ``trial`` (coordinate 0..n_trials-1), ``patient``
        (``design.sample_size``) and ``decision`` (``ceil(sample_size / cohort_size)
        + 1``; a trial's decisions are those of ``design.next`` and then the one of
        ``design.recommend``). Per patient: ``dose``,
        ``cohort`` (-1 past the last patient) and one float variable per outcome (NaN
        past the last patient). Per decision: ``decision_dose`` (NaN for a stop),
        ``decision_stop_reason``, ``decision_bound_by`` (comma-joined),
        ``decision_kind`` (``"next"``, ``"recommend"``, ``""`` past the last decision)
        and ``decision_<key>`` for every real scalar in ``Decision.quantities``. Per
        trial: ``n_patients``, ``stop_reason`` (``""`` when the trial reached its
        sample size), ``recommended_dose`` (NaN if none) and one variable per metric.
        Attributes: ``random_seed``, ``n_trials``, ``sample_size``, ``cohort_size``,
        ``design_<key>`` and ``scenario_<key>`` from ``describe()`` (bool as int, None
        as ``"none"``), ``metrics`` (comma-joined names) and ``version_<package>``.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it), or ``path`` holds a
        different simulation.

    Notes
    -----
    A design offering `CountRuleDesign` with a scenario offering `LevelScenario` on the same
    dose levels (and an outcome ``dlt``) is simulated with its trials in lockstep (see the
    module docstring): trial ``i`` still draws the latent variables of its patients from
    ``numpy.random.default_rng(children[i])``, in enrolment order, so the result is identical
    to the trial-by-trial run, for any ``n_jobs``, ``batch_size`` or resumption; any other
    pair is run trial by trial with `run_trial`.
    """
    n_trials = _positive_int(n_trials, "n_trials")
    random_seed = _seed(random_seed, "random_seed")
    if (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, numbers.Integral)
        or not (n_jobs >= 1 or n_jobs == -1)
    ):
        raise ValueError(f"n_jobs must be a positive integer or -1 (one per CPU); got {n_jobs!r}")
    if client is not None and n_jobs != 1:
        raise ValueError(
            f"n_jobs must be 1 when a dask client runs the trials; got n_jobs={n_jobs!r}"
        )
    if batch_size is not None:
        batch_size = _positive_int(batch_size, "batch_size")
    cohort_size, sample_size = _conduct(design)
    run = {
        "random_seed": random_seed,
        "n_trials": n_trials,
        "sample_size": sample_size,
        "cohort_size": cohort_size,
    }
    fingerprint = _fingerprint(design, scenario, run)
    layout = _Layout(
        outcomes=tuple(scenario.outcomes),
        sample_size=sample_size,
        n_decisions=math.ceil(sample_size / cohort_size) + 1,
        fingerprint=fingerprint,
    )

    store = None if path is None else _Store(Path(path), fingerprint)
    parts: list[xr.Dataset] = []
    if store is not None:
        finished = store.finished()
        if finished is not None:
            return finished
        parts = store.parts()

    done = np.concatenate([part["trial"].values for part in parts]) if parts else []
    todo = np.setdiff1d(np.arange(n_trials), done)
    if batch_size is None:
        if client is not None:
            workers = sum(client.nthreads().values())
        else:
            workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
        batch_size = max(1, min(_MAX_BATCH, math.ceil(todo.size / (_BATCHES_PER_WORKER * workers))))
    batches = [todo[start : start + batch_size] for start in range(0, todo.size, batch_size)]
    seeds = np.random.SeedSequence(random_seed).spawn(n_trials)

    if batches:
        with _progress_bar(progress, n_trials, n_trials - todo.size) as advance:
            for part in _run_batches(
                design,
                scenario,
                batches,
                seeds,
                layout,
                n_jobs=int(n_jobs),
                client=client,
                advance=advance,
            ):
                if store is None:
                    parts.append(part)
                else:
                    store.save(part)
    if store is None:
        return _combine(parts, n_trials, fingerprint)
    result = _combine(store.parts(), n_trials, fingerprint)
    store.finish(result)
    return result


# --------------------------------------------------------------------------- summaries


def _summary(values: np.ndarray, rng: np.random.Generator, n_bootstrap: int) -> tuple:
    """Median, mean, their Monte Carlo SEs and n of the non-NaN values."""
    x = values[~np.isnan(values)]
    n = x.size
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan, 0
    if n == 1:
        return float(x[0]), float(x[0]), np.nan, np.nan, 1
    medians = np.empty(n_bootstrap)
    rows = max(1, _BOOTSTRAP_CELLS // n)
    for start in range(0, n_bootstrap, rows):
        stop = min(n_bootstrap, start + rows)
        medians[start:stop] = np.median(x[rng.integers(0, n, size=(stop - start, n))], axis=1)
    return (
        float(np.median(x)),
        float(np.mean(x)),
        float(np.std(medians, ddof=1)),
        float(np.std(x, ddof=1) / math.sqrt(n)),
        n,
    )


def operating_characteristics(
    results: xr.Dataset, *, random_seed: int = 0, n_bootstrap: int = 1000
) -> xr.Dataset:
    """Summarise the per-trial metrics of a simulation.

    Trials where a metric is NaN (undefined, e.g. no dose recommended) are left out of
    that metric's summary; ``n`` counts the trials used.

    Parameters
    ----------
    results : xarray.Dataset
        What `simulate` returned (or its netCDF file, loaded).
    random_seed : int, default 0
        Seed of the bootstrap; metric ``j`` uses child ``j`` of
        ``numpy.random.SeedSequence(random_seed).spawn(n_metrics)``.
    n_bootstrap : int, default 1000
        Bootstrap resamples for the Monte Carlo SE of the median, at least 2.

    Returns
    -------
    xarray.Dataset
        Dim ``metric`` (the names in ``results.attrs["metrics"]``), data variables
        ``median``, ``mean``, ``mcse_median`` (bootstrap SD of the median), ``mcse_mean``
        (SD / sqrt(n)), ``n`` and the scalar ``p_stopped_early`` (fraction of trials with
        a non-empty ``stop_reason``). The SEs are NaN when n < 2. Attributes: those of
        ``results`` plus ``bootstrap_seed`` and ``n_bootstrap``.

    Raises
    ------
    ValueError
        If ``results`` is not a simulation result, or an option is invalid.
    """
    if not (
        isinstance(results, xr.Dataset) and "metrics" in results.attrs and "stop_reason" in results
    ):
        raise ValueError(
            "results must be the Dataset returned by simulate (with attrs['metrics'] and "
            f"a stop_reason variable); got {type(results).__name__}"
        )
    random_seed = _seed(random_seed, "random_seed")
    n_bootstrap = _positive_int(n_bootstrap, "n_bootstrap")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2; got {n_bootstrap!r}")
    names = [name for name in str(results.attrs["metrics"]).split(",") if name]
    for name in names:
        if name not in results:
            raise ValueError(f"results: metric {name!r} is in attrs['metrics'] but not a variable")
    streams = np.random.SeedSequence(random_seed).spawn(len(names))
    rows = [
        _summary(
            np.asarray(results[name].values, dtype=float),
            np.random.default_rng(stream),
            n_bootstrap,
        )
        for name, stream in zip(names, streams, strict=True)
    ]
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    stopped = results["stop_reason"].values != ""
    return xr.Dataset(
        {
            "median": ("metric", np.array(columns[0], dtype=float)),
            "mean": ("metric", np.array(columns[1], dtype=float)),
            "mcse_median": ("metric", np.array(columns[2], dtype=float)),
            "mcse_mean": ("metric", np.array(columns[3], dtype=float)),
            "n": ("metric", np.array(columns[4], dtype=np.int64)),
            "p_stopped_early": float(np.mean(stopped)),
        },
        coords={"metric": np.array(names, dtype=str)},
        attrs={**results.attrs, "bootstrap_seed": random_seed, "n_bootstrap": n_bootstrap},
    )
