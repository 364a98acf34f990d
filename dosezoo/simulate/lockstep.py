"""The lockstep engine: a batch of count-rule trials advanced together, step by step.

When the design decides from the patients and DLTs per dose level only
(`dosezoo.protocols.CountRuleDesign`: BOIN, 3+3; or a model-based design whose
``counts_view()`` offers it: CRM, BLRM, EWOC on their levels; a coherent CRM or EWOC reads
the last cohort's patients and DLTs too, which the engine keeps per trial) and the scenario
answers for dose levels from latent per-patient draws (`dosezoo.protocols.LevelScenario`: the
binary-toxicity scenario), on the same dose levels, a batch of trials runs in lockstep instead
of trial by trial: every trial
still running at step ``s`` has had ``s`` cohorts, so one call of the design's array rule
decides the next cohort of all of them, the scenario gives their outcomes from the latent draws
each trial made up front from its own generator, and the batch's arrays go straight into its
Dataset. The result is identical to the one of `dosezoo.simulate.run_trial`, trial by trial
(the design's ``next`` and ``recommend`` are its array rule on a batch of one); only the time
differs.
"""

from collections.abc import Sequence

import numpy as np
import xarray as xr

from dosezoo.decision import CountDecisions
from dosezoo.protocols import CountRuleDesign, LevelScenario
from dosezoo.simulate.engine import _conduct
from dosezoo.simulate.layout import (
    _assemble,
    _Batch,
    _check_metric_name,
    _check_quantity_key,
    _empty_batch,
    _Layout,
)

#: The outcome whose events a count rule counts per level (as ``dosezoo.levels.level_counts``).
_COUNTED_OUTCOME = "dlt"


def _count_design(design: object) -> CountRuleDesign | None:
    """Return the design as a count-rule design, or None when it is not one.

    A design is one when it offers the count capability itself (BOIN, 3+3), or when its
    ``counts_view()`` returns such a view (a model-based design whose model's posterior and
    whose rule read the counts per level only: CRM, BLRM, EWOC on their levels). A design
    whose conduct has data-based stopping rules is not: they read the trial's rows, which the
    lockstep engine does not build.
    """
    if getattr(getattr(design, "conduct", None), "stopping", ()):
        return None
    if isinstance(design, CountRuleDesign):
        return design
    view = getattr(design, "counts_view", None)
    counts = view() if callable(view) else None
    return counts if isinstance(counts, CountRuleDesign) else None


def _counts_suffice(design: CountRuleDesign, scenario: LevelScenario) -> bool:
    """Whether two sides with the count capabilities can run in lockstep.

    They can when the scenario has the outcomes the design counts and both have the same dose
    levels.
    """
    counted = {_COUNTED_OUTCOME, *design.counted_outcomes}
    return counted <= set(scenario.outcomes) and tuple(design.dose_levels) == tuple(
        scenario.dose_levels
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
    cohort_size, sample_size = _conduct(design, "simulate")
    n_trials = len(seeds)
    doses = np.asarray(design.dose_levels, dtype=float)
    latent = np.stack(
        [scenario.draw_latent(np.random.default_rng(seed), sample_size) for seed in seeds]
    )
    batch = _empty_batch(n_trials, layout)
    n = np.zeros((n_trials, doses.size), dtype=np.int64)
    y = np.zeros_like(n)
    # The other events the design counts, known by name from the outcomes of no patient.
    no_patient = {name: np.zeros(0, dtype=np.int64) for name in design.counted_outcomes}
    events = {name: np.zeros_like(n) for name in design.events_of(no_patient)}
    current = np.full(n_trials, -1, dtype=np.int64)
    # Each trial's last cohort, patients and DLTs, for a design that reads it.
    last_n, last_y = np.zeros(n_trials, dtype=np.int64), np.zeros(n_trials, dtype=np.int64)
    reads_last = design.reads_last_cohort
    running = np.ones(n_trials, dtype=bool)
    decided = np.zeros(n_trials, dtype=np.int64)
    first_seen: dict[str, tuple[int, int, int]] = {}
    for step in range(layout.n_decisions - 1):
        rows = np.flatnonzero(running)
        if not rows.size:
            break
        decisions = design.decide_counts(
            n[rows],
            y[rows],
            current[rows],
            {name: e[rows] for name, e in events.items()},
            (last_n[rows], last_y[rows]) if reads_last else None,
        )
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
        last_n[go] = last - first
        last_y[go] = np.asarray(outcomes[_COUNTED_OUTCOME], dtype=np.int64).sum(axis=1)
        n[go, level] += last_n[go]
        y[go, level] += last_y[go]
        counted = {name: outcomes[name] for name in design.counted_outcomes}
        for name, flags in design.events_of(counted).items():
            events[name][go, level] += np.asarray(flags, dtype=np.int64).sum(axis=1)
        current[go] = level
    recommendations = design.recommend_counts(
        n, y, current, events, (last_n, last_y) if reads_last else None
    )
    _record_decisions(
        batch, np.arange(n_trials), decided, recommendations, doses, "recommend", first_seen
    )
    selected = recommendations.level
    batch.n_patients[:] = n.sum(axis=1)
    batch.recommended_dose[:] = np.where(selected < 0, np.nan, doses[np.maximum(selected, 0)])
    metrics = scenario.metrics_at_counts(n, y, selected, batch.n_patients, outcomes=batch.outcomes)
    for name, values in metrics.items():
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
