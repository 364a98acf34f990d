"""The vectorised simulation of count rules (BOIN, 3+3) equals the trial-by-trial engine.

Two claims are checked. (1) A count rule's array face, ``decide_counts`` / ``recommend_counts``
on a batch of count states, gives row by row the `Decision` of ``next`` / ``recommend`` on a
data set with those counts (property tests on random states and designs). These tests were
written first and passed against the per-data rules as they were before the array rules
existed (commit 6c8f842 still holds both); since then ``next`` and ``recommend`` count the data
and apply the array rule to a batch of one, so the tests keep every row of a batch equal to
its own batch of one and the data counting right. (2) `simulate` of a design and scenario
offering the count capabilities, which advances all the trials of a batch in lockstep, returns
a Dataset identical to the one of the engine's per-trial path (``run_trial`` for each seed),
which the engine takes for the same design hidden behind a proxy that offers only the
`Design` protocol.
"""

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions, Decision
from dosezoo.designs import Design, blrm_design, crm_design, ewoc_design
from dosezoo.designs.boin import boin_design
from dosezoo.designs.three_plus_three import three_plus_three_design
from dosezoo.levels import checked_last_cohorts, count_state, data_from_counts
from dosezoo.models import BLRM, CRM, EWOC
from dosezoo.protocols import CountRuleDesign, LevelScenario
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import runner, simulate

LEVELS = (10.0, 20.0, 40.0, 60.0, 80.0)
#: Scenario 13 of Seno et al. (2025) (target 0.3), the first scenario of bench_binary.py.
P_SENO2025_13 = (0.08, 0.30, 0.38, 0.42, 0.52)
P_TOXIC_LOWEST = (0.45, 0.55, 0.65, 0.75, 0.85)
P_ALL_SAFE = (0.01, 0.02, 0.03, 0.04, 0.05)


# --------------------------------------------------------------------------- helpers


def _assert_same_decision(got: Decision, expected: Decision) -> None:
    """Exactly the same decision: dose, reason, bounds and every quantity (NaN equals NaN)."""
    assert got.next_dose == expected.next_dose
    assert got.stop_reason == expected.stop_reason
    assert got.bound_by == expected.bound_by
    assert list(got.quantities) == list(expected.quantities)
    np.testing.assert_equal(got.quantities, expected.quantities)
    assert got.diagnostics is None and expected.diagnostics is None


def _data_with_counts(levels, n, y, current) -> TrialData:
    """Trial data with ``n[k]`` patients and ``y[k]`` DLTs at level k, the last at ``current``."""
    data = TrialData.empty(outcomes=("dlt",))
    order = [k for k in range(len(levels)) if n[k] and k != current]
    if current >= 0:
        order.append(current)
    for k in order:
        data = data.with_cohort(levels[k], dlt=[1] * y[k] + [0] * (n[k] - y[k]))
    return data


@st.composite
def count_states(draw, n_levels: int, patients: st.SearchStrategy[int]):
    """A batch of count states: (n, y, current), several rows, on ``n_levels`` levels."""
    rows = draw(st.integers(1, 6))
    n = np.array([[draw(patients) for _ in range(n_levels)] for _ in range(rows)], dtype=np.int64)
    y = np.array([[draw(st.integers(0, int(v))) for v in row] for row in n], dtype=np.int64)
    current = np.array(
        [draw(st.sampled_from(np.flatnonzero(row).tolist() or [-1])) for row in n], dtype=np.int64
    )
    return n, y, current


@st.composite
def boin_cases(draw):
    k = draw(st.integers(1, 5))
    levels = LEVELS[:k]
    cohort_size = draw(st.integers(1, 3))
    design = boin_design(
        draw(st.sampled_from([0.2, 0.25, 0.3])),
        levels,
        start_dose=draw(st.sampled_from(levels)),
        cohort_size=cohort_size,
        sample_size=draw(st.sampled_from([cohort_size, 12, 36])),
        extra_safe=draw(st.booleans()),
        n_earlystop=draw(st.sampled_from([3, 6, 9, 100])),
        prior_a=draw(st.sampled_from([1.0, 0.5])),
        prior_b=draw(st.sampled_from([1.0, 2.0])),
    )
    return design, draw(count_states(k, st.integers(0, 14)))


@st.composite
def three_plus_three_cases(draw):
    k = draw(st.integers(1, 5))
    levels = LEVELS[:k]
    design = three_plus_three_design(levels, start_dose=draw(st.sampled_from(levels)))
    return design, draw(count_states(k, st.sampled_from([0, 3, 6])))


def _check_rows_against_per_data_rule(design, state) -> None:
    n, y, current = state
    decided = design.decide_counts(n, y, current)
    recommended = design.recommend_counts(n, y, current)
    for row in range(current.size):
        data = _data_with_counts(design.dose_levels, n[row], y[row], int(current[row]))
        _assert_same_decision(decided.decision(row, design.dose_levels), design.next(data))
        _assert_same_decision(recommended.decision(row, design.dose_levels), design.recommend(data))


# --------------------------------------------------------------------------- the array rules


@settings(max_examples=200, deadline=None)
@given(boin_cases())
def test_boin_array_rule_equals_the_per_data_rule(case):
    _check_rows_against_per_data_rule(*case)


@settings(max_examples=200, deadline=None)
@given(three_plus_three_cases())
def test_three_plus_three_array_rule_equals_the_per_data_rule(case):
    _check_rows_against_per_data_rule(*case)


def test_count_states_that_cannot_happen_are_refused():
    n, y = np.array([[3, 0]]), np.array([[1, 0]])
    with pytest.raises(ValueError, match=r"must have shape \(m, 3\) and current \(m,\)"):
        count_state("Rule", n, y, [0], 3)
    with pytest.raises(ValueError, match=r"Rule: count state row 1 is impossible: .*y=\[4, 0\]"):
        count_state("Rule", [[3, 0], [3, 0]], [[1, 0], [4, 0]], [0, 0], 2)
    with pytest.raises(ValueError, match=r"row 0 is impossible: .*current=1"):
        count_state("Rule", n, y, [1], 2)
    with pytest.raises(ValueError, match=r"row 0 is impossible: .*current=-1"):
        count_state("Rule", n, y, [-1], 2)
    with pytest.raises(ValueError, match="BOINRule: count state row 0"):
        boin_design(0.3, (10.0, 20.0)).decide_counts(n, y, [1])
    with pytest.raises(ValueError, match="row 0: dose 20 has 4 patients; the 3\\+3 design"):
        three_plus_three_design((10.0, 20.0)).recommend_counts([[3, 4]], [[0, 0]], [1])


def test_count_states_that_are_not_whole_numbers_are_named():
    # A cast truncated 3.5 patients to 3 and read NaN as -2**63 in the message.
    with pytest.raises(ValueError, match=r"Rule: n row 1 holds 3.5, not a whole number"):
        count_state("Rule", [[3, 0], [3.5, 0]], [[1, 0], [1, 0]], [0, 0], 2)
    with pytest.raises(ValueError, match=r"Rule: y row 0 holds nan, not a whole number"):
        count_state("Rule", [[3.0, 0.0]], [[math.nan, 0.0]], [0], 2)
    with pytest.raises(ValueError, match=r"event counts 'responses' row 0 holds 0.5"):
        count_state("Rule", [[3, 0]], [[1, 0]], [0], 2, {"responses": [[0.5, 0.0]]})


def test_the_binary_scenario_responds_through_its_array_face():
    scenario = BinaryToxicityScenario(LEVELS, P_SENO2025_13, 0.3, planned_sample_size=36)
    doses = np.array([10.0, 10.0, 10.0, 40.0, 40.0, 40.0])
    split = np.random.default_rng(8)
    by_cohort = [scenario.respond(doses[:3], split)["dlt"], scenario.respond(doses[3:], split)]
    tolerance = scenario.draw_latent(np.random.default_rng(8), 36)
    levels = np.array([[0, 0, 0, 2, 2, 2]])
    at_once = scenario.outcomes_at_levels(levels, tolerance[None, :6])["dlt"][0]
    np.testing.assert_array_equal(np.concatenate([by_cohort[0], by_cohort[1]["dlt"]]), at_once)
    np.testing.assert_array_equal(at_once, tolerance[:6] < np.array(P_SENO2025_13)[levels[0]])


# --------------------------------------------------------------------------- simulations


class PerTrial:
    """A design offering only the `Design` protocol, so `simulate` runs it trial by trial."""

    def __init__(self, design) -> None:
        self.design = design
        self.start_dose = design.start_dose
        self.cohort_size = design.cohort_size
        self.sample_size = design.sample_size

    def next(self, data: TrialData) -> Decision:
        return self.design.next(data)

    def recommend(self, data: TrialData) -> Decision:
        return self.design.recommend(data)

    def describe(self) -> dict:
        return self.design.describe()


CASES = {
    # name: (design, p_true, a stop reason some trial must reach, or None)
    "boin": (boin_design(0.3, LEVELS), P_SENO2025_13, None),
    "boin-extra-safe": (boin_design(0.3, LEVELS, extra_safe=True), P_TOXIC_LOWEST, "extra-safe"),
    "boin-earlystop": (boin_design(0.3, LEVELS, n_earlystop=9), P_SENO2025_13, "n_earlystop: 9"),
    "boin-toxic-lowest": (boin_design(0.3, LEVELS), P_TOXIC_LOWEST, "lowest dose 10 eliminated"),
    "boin-cohorts-of-1": (
        boin_design(0.25, LEVELS, cohort_size=1, sample_size=10, start_dose=40.0),
        P_SENO2025_13,
        None,
    ),
    "boin-cohorts-of-2": (
        boin_design(0.3, LEVELS, cohort_size=2, sample_size=25, n_earlystop=8),
        P_TOXIC_LOWEST,
        "n_earlystop: 8",
    ),
    "3+3": (three_plus_three_design(LEVELS), P_SENO2025_13, "MTD"),
    "3+3-toxic-lowest": (three_plus_three_design(LEVELS), P_TOXIC_LOWEST, "no MTD"),
    "3+3-all-safe": (three_plus_three_design(LEVELS), P_ALL_SAFE, "no higher dose to try"),
    "3+3-start-high": (three_plus_three_design(LEVELS, start_dose=40.0), P_SENO2025_13, "MTD"),
}
N_TRIALS = 200
SEED = 20260611


def _scenario(design, p_true) -> BinaryToxicityScenario:
    return BinaryToxicityScenario(
        design.dose_levels, p_true, 0.3, planned_sample_size=design.sample_size
    )


@pytest.mark.parametrize("name", list(CASES))
def test_vectorised_simulation_is_identical_to_the_per_trial_engine(name):
    design, p_true, reached = CASES[name]
    scenario = _scenario(design, p_true)
    assert isinstance(design, CountRuleDesign) and isinstance(scenario, LevelScenario)
    assert not isinstance(PerTrial(design), CountRuleDesign)
    per_trial = simulate(PerTrial(design), scenario, N_TRIALS, random_seed=SEED, progress=False)
    vectorised = simulate(design, scenario, N_TRIALS, random_seed=SEED, progress=False)
    xr.testing.assert_identical(vectorised, per_trial)
    assert list(vectorised.data_vars) == list(per_trial.data_vars)
    for variable in vectorised.data_vars:
        assert vectorised[variable].dtype == per_trial[variable].dtype, variable
    if reached is not None:  # the case reaches the rule it is meant to exercise
        reasons = vectorised["decision_stop_reason"].values.ravel()
        assert any(reached in str(reason) for reason in reasons)


@pytest.mark.parametrize(("n_jobs", "batch_size"), [(1, 7), (1, 1000), (2, 30)])
def test_vectorised_simulation_does_not_depend_on_jobs_or_batches(n_jobs, batch_size):
    design, p_true, _ = CASES["boin-earlystop"]
    scenario = _scenario(design, p_true)
    reference = simulate(design, scenario, 120, random_seed=SEED, progress=False)
    result = simulate(
        design,
        scenario,
        120,
        random_seed=SEED,
        n_jobs=n_jobs,
        batch_size=batch_size,
        progress=False,
    )
    xr.testing.assert_identical(result, reference)
    assert list(result.data_vars) == list(reference.data_vars)


@pytest.mark.parametrize(
    ("n_trials", "n_jobs", "sizes"),
    [(500, 1, [500]), (2500, 1, [1000, 1000, 500]), (500, 2, [250, 250]), (3, 2, [2, 1])],
)
def test_lockstep_runs_take_one_batch_per_worker(monkeypatch, n_trials, n_jobs, sizes):
    """One batch per worker, at most 1000 trials: a lockstep batch's fixed costs are most of
    what a few hundred trials cost."""
    seen = []
    run_batches = runner._run_batches

    def in_this_process(designs, scenario, batches, *args, **options):
        seen.append([batch.size for batch in batches])
        return run_batches(designs, scenario, batches, *args, **options | {"n_jobs": 1})

    monkeypatch.setattr(runner, "_run_batches", in_this_process)
    design, p_true, _ = CASES["boin-earlystop"]
    simulate(
        design, _scenario(design, p_true), n_trials, random_seed=SEED, n_jobs=n_jobs, progress=False
    )
    assert seen == [sizes]


_BATCHES_BEFORE_THE_KILL = {"left": 0}


class KilledScenario(BinaryToxicityScenario):
    """The binary scenario (same description), killed after scoring a few batches."""

    def metrics_at_counts(self, n, y, selected, treated, outcomes=None):
        if _BATCHES_BEFORE_THE_KILL["left"] == 0:
            raise KeyboardInterrupt("simulated kill")
        _BATCHES_BEFORE_THE_KILL["left"] -= 1
        return super().metrics_at_counts(n, y, selected, treated, outcomes)


def test_a_killed_vectorised_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    design, p_true, _ = CASES["3+3"]
    scenario = _scenario(design, p_true)
    reference = simulate(design, scenario, 100, random_seed=SEED, progress=False)
    path = tmp_path / "sim.nc"
    killed = KilledScenario(design.dose_levels, p_true, 0.3, planned_sample_size=30)
    monkeypatch.setitem(_BATCHES_BEFORE_THE_KILL, "left", 2)
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        simulate(
            design,
            killed,
            100,
            random_seed=SEED,
            path=path,
            batch_size=30,
            progress=False,
            save_every=0,
        )
    assert len(list(path.with_name("sim.nc.parts").glob("trials-*.batch"))) == 2
    result = simulate(
        design, scenario, 100, random_seed=SEED, path=path, batch_size=40, progress=False
    )
    xr.testing.assert_identical(result, reference)


def test_other_dose_levels_fall_back_to_the_per_trial_engine():
    # The scenario knows one more level than the design: counts per level do not line up, so
    # the engine runs the trials one by one; the result is still that of the per-trial path.
    design = boin_design(0.3, LEVELS[:4])
    scenario = BinaryToxicityScenario(LEVELS, P_SENO2025_13, 0.3, planned_sample_size=36)
    result = simulate(design, scenario, 30, random_seed=SEED, progress=False)
    expected = simulate(PerTrial(design), scenario, 30, random_seed=SEED, progress=False)
    xr.testing.assert_identical(result, expected)
    assert (result["n_at_4"] == 0).all() and (result["n_at_0"] > 0).all()


class _AfterSixPatients:
    """A data-based stopping rule: stop once 6 patients were treated."""

    def reason(self, data: TrialData) -> str | None:
        return "six patients treated" if data.n_patients >= 6 else None

    def describe(self) -> dict:
        return {"after_patients": 6}


@pytest.mark.parametrize("factory", [boin_design, lambda t, lv: three_plus_three_design(lv)])
def test_count_designs_with_stopping_rules_obey_them_in_simulation(factory):
    # The lockstep engine builds no trial rows, so it cannot read a data-based stopping rule:
    # such a design runs trial by trial and stops where the per-trial engine stops.
    plain = factory(0.3, LEVELS)
    design = Design(
        plain.model, plain.rule, replace(plain.conduct, stopping=(_AfterSixPatients(),))
    )
    scenario = BinaryToxicityScenario(LEVELS, P_SENO2025_13, 0.3, planned_sample_size=36)
    result = simulate(design, scenario, 20, random_seed=SEED, progress=False)
    expected = simulate(PerTrial(design), scenario, 20, random_seed=SEED, progress=False)
    xr.testing.assert_identical(result, expected)
    assert (result["n_patients"] <= 6).all() and (result["n_patients"] == 6).any()


# ------------------------------------------------------------- model-based designs in lockstep

MODEL_CASES = {
    # name: (design, p_true, a stop reason some trial must reach, or None)
    "crm": (
        crm_design(CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS), sample_size=12),
        P_SENO2025_13,
        None,
    ),
    "crm-toxic-lowest": (  # the CRM's own safety stop, with the hard overdose limit off
        crm_design(
            CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS),
            sample_size=12,
            max_overdose_probability=1.0,
        ),
        P_TOXIC_LOWEST,
        "safety",
    ),
    "crm-overdose-limit": (  # without the CRM's own safety stop, the limit's stop
        crm_design(
            CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS),
            sample_size=12,
            safety_cutoff=None,
        ),
        (0.8, 0.85, 0.9, 0.92, 0.95),  # the lowest dose's rate above twice the target
        "overdose limit",
    ),
    "blrm": (
        blrm_design(BLRM(LEVELS, LEVELS[2]), target_interval=(0.2, 0.4), sample_size=15),
        P_SENO2025_13,
        None,
    ),
    "ewoc": (
        ewoc_design(EWOC(0.3, LEVELS[0], LEVELS[-1], dose_levels=LEVELS), sample_size=8),
        P_SENO2025_13,
        None,
    ),
}


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_model_designs_run_in_lockstep_with_the_per_trial_results(name):
    design, p_true, reached = MODEL_CASES[name]
    scenario = _scenario(design.counts_view(), p_true)
    assert isinstance(design.counts_view(), CountRuleDesign)
    per_trial = simulate(PerTrial(design), scenario, 12, random_seed=SEED, progress=False)
    lockstep = simulate(design, scenario, 12, random_seed=SEED, progress=False)
    xr.testing.assert_identical(lockstep, per_trial)
    assert list(lockstep.data_vars) == list(per_trial.data_vars)
    if reached is not None:
        reasons = lockstep["decision_stop_reason"].values.ravel()
        assert any(reached in str(reason) for reason in reasons)


def test_a_design_decides_each_count_state_once_across_batches(monkeypatch):
    design = crm_design(
        CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS), sample_size=12
    )
    scenario = _scenario(design.counts_view(), P_SENO2025_13)
    decided = []
    original = Design.next

    def counted(self, data, **options):
        index = np.searchsorted(LEVELS, np.asarray(data.dose, float))
        n = np.bincount(index, minlength=len(LEVELS))
        y = np.bincount(index, weights=np.asarray(data.column("dlt")), minlength=len(LEVELS))
        decided.append((tuple(n), tuple(y), data.last_dose))
        return original(self, data, **options)

    monkeypatch.setattr(Design, "next", counted)
    simulate(design, scenario, 20, random_seed=SEED, batch_size=4, progress=False)
    # The first states recur in every one of the 5 batches: each is decided once.
    assert decided and len(decided) == len(set(decided))
    assert "_counts_view" not in pickle.loads(pickle.dumps(design)).__dict__


def test_a_batch_with_repeated_states_is_decided_as_its_rows_stacked():
    """Each distinct state is decided once; the rows, and the quantities' order, are those of
    every row's decision stacked (the empty state's start-dose quantities come second)."""
    design = crm_design(
        CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS), sample_size=12
    )
    n = np.array([[3, 0, 0, 0, 0], [0] * 5, [3, 0, 0, 0, 0], [3, 3, 0, 0, 0], [0] * 5])
    y = np.array([[0, 0, 0, 0, 0], [0] * 5, [0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0] * 5])
    current = np.array([0, -1, 0, 1, -1])
    decided = design.counts_view().decide_counts(n, y, current)
    rows = [design.next(data_from_counts(n[i], y[i], int(current[i]), LEVELS)) for i in range(5)]
    stacked = CountDecisions.from_decisions(rows, LEVELS)
    assert decided.level.tolist() == stacked.level.tolist() == [1, 0, 1, 2, 0]
    assert decided.stop_reason.tolist() == stacked.stop_reason.tolist()
    assert decided.bound_by.tolist() == stacked.bound_by.tolist()
    assert list(decided.quantities) == list(stacked.quantities)
    for key, values in stacked.quantities.items():
        np.testing.assert_array_equal(decided.quantities[key], values)
        np.testing.assert_array_equal(decided.present[key], stacked.present[key])


def test_decisions_stack_into_rows_with_their_quantities_in_first_seen_order():
    """Stacked decisions: the level or -1 with the reason, bound_by joined, every quantity in
    the order the rows first list it, NaN and not present in a row lacking it; rows listing
    the same quantities stack alike; a dose off the levels is named with its row."""
    mixed = [
        Decision(20.0, quantities={"b": 1.0, "a": 2}, bound_by=("max_step_up", "coherence")),
        Decision(None, stop_reason="safety", quantities={"a": 3.0, "c": np.float64(4.0)}),
        Decision(80.0),
    ]
    stacked = CountDecisions.from_decisions(mixed, LEVELS)
    assert stacked.level.tolist() == [1, -1, 4]
    assert stacked.stop_reason.tolist() == ["", "safety", ""]
    assert stacked.bound_by.tolist() == ["max_step_up,coherence", "", ""]
    assert list(stacked.quantities) == ["b", "a", "c"]
    np.testing.assert_array_equal(stacked.quantities["b"], [1.0, np.nan, np.nan])
    np.testing.assert_array_equal(stacked.quantities["a"], [2.0, 3.0, np.nan])
    np.testing.assert_array_equal(stacked.quantities["c"], [np.nan, 4.0, np.nan])
    assert stacked.present["a"].tolist() == [True, True, False]
    assert stacked.present["c"].tolist() == [False, True, False]
    alike = [Decision(dose, quantities={"p": dose / 100, "q": -dose}) for dose in LEVELS]
    same = CountDecisions.from_decisions(alike, LEVELS)
    assert same.level.tolist() == [0, 1, 2, 3, 4] and list(same.quantities) == ["p", "q"]
    np.testing.assert_array_equal(same.quantities["q"], [-dose for dose in LEVELS])
    assert all(flags.all() for flags in same.present.values())
    assert [same.decision(i, LEVELS) for i in range(5)] == alike
    empty = CountDecisions.from_decisions([], LEVELS)
    assert empty.level.shape == empty.stop_reason.shape == (0,) and not empty.quantities
    with pytest.raises(ValueError, match=r"dose 15\.0 of row 1 is not one of the dose levels"):
        CountDecisions.from_decisions([alike[0], Decision(15.0)], LEVELS)


COHERENT_CASES = {
    "crm-coherent": crm_design(
        CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS), sample_size=12, coherent=True
    ),
    "ewoc-coherent": ewoc_design(
        EWOC(0.3, LEVELS[0], LEVELS[-1], dose_levels=LEVELS),
        sample_size=12,
        cohort_size=2,
        coherent=True,
    ),
}


@pytest.mark.parametrize("name", list(COHERENT_CASES))
def test_coherent_designs_run_in_lockstep_with_the_per_trial_results(name):
    """A coherent rule reads the last cohort too: the lockstep engine keeps it per trial."""
    design = COHERENT_CASES[name]
    assert design.counts_view().reads_last_cohort
    scenario = _scenario(design.counts_view(), P_SENO2025_13)
    per_trial = simulate(PerTrial(design), scenario, 12, random_seed=SEED, progress=False)
    lockstep = simulate(design, scenario, 12, random_seed=SEED, progress=False)
    xr.testing.assert_identical(lockstep, per_trial)
    assert "coherence" in lockstep["decision_bound_by"].values  # the restriction bound


def test_designs_reading_more_than_the_counts_have_no_lockstep_view():
    model = EWOC(0.3, LEVELS[0], LEVELS[-1], dose_levels=LEVELS)
    assert not ewoc_design(model).counts_view().reads_last_cohort
    assert ewoc_design(model, coherent=True).counts_view().reads_last_cohort
    assert ewoc_design(model, doses="continuous").counts_view() is None
    assert (
        crm_design(
            CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS),
            stopping=(_AfterSixPatients(),),
        ).counts_view()
        is None
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=5, max_size=5))
def test_data_from_counts_are_the_data_the_constructor_validates(counts):
    """The data a count state is decided on are built without validating them again: they are
    those TrialData validates from the same columns (same arrays, dtypes, schema), read-only."""
    n = np.array([max(a, b) for a, b in counts])
    y = np.array([min(a, b) for a, b in counts])
    levels = (10.0, 20.0, 40.0, 80.0, 160.0)
    for current in [k for k in range(5) if n[k] > 0]:
        built = data_from_counts(n, y, current, levels)
        validated = TrialData(
            {
                "dose": built.dose.copy(),
                "dlt": built.column("dlt").copy(),
                "cohort": built.cohort.copy(),
            }
        )
        assert repr(built) == repr(validated)
        assert (built.outcomes, built.schedule, built.dose_columns) == (
            validated.outcomes,
            validated.schedule,
            validated.dose_columns,
        )
        for name in ("dose", "cohort", "dlt"):
            mine, theirs = built.column(name), validated.column(name)
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
            assert not mine.flags.writeable
        assert np.array_equal(built.doses, validated.doses) and built.doses.shape == (n.sum(), 1)
        assert [int(np.sum(built.dose == level)) for level in levels] == n.tolist()
        assert built.to_dataframe().equals(validated.to_dataframe())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_binary_model_keeps_the_counts_its_data_were_made_from(data):
    """A binary model's data from counts are those of `data_from_counts`, and the summary it
    keeps with them is the one counting their patients gives: same doses, counts and dtypes,
    hence the same posterior key and posterior."""
    n = np.array(data.draw(st.lists(st.integers(0, 12), min_size=5, max_size=5)))
    y = np.array([data.draw(st.integers(0, int(v))) for v in n])
    if not n.any():
        return
    current = data.draw(st.sampled_from(np.flatnonzero(n).tolist()))
    model = data.draw(
        st.sampled_from(
            [
                CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS),
                BLRM(LEVELS, 40.0),
                EWOC(0.3, LEVELS[0], LEVELS[-1], dose_levels=LEVELS),
            ]
        )
    )
    built = model.data_from_counts(n, y, current)
    plain = data_from_counts(n, y, current, LEVELS)
    assert built.to_dataframe().equals(plain.to_dataframe())
    # the lockstep engine's path, for states it checked already: the same data
    trusted = model.data_from_counts(n, y, current, checked=True)
    assert trusted.to_dataframe().equals(plain.to_dataframe())
    assert model.summarise(trusted).key() == model._count(plain).key()
    kept, counted = model.summarise(built), model._count(plain)
    for name in ("dose", "n", "y"):
        mine, theirs = getattr(kept, name), getattr(counted, name)
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert kept.key() == counted.key()
    fresh = replace(model)  # a copy whose caches are empty
    assert np.array_equal(model.posterior(built).mean(), fresh.posterior(plain).mean())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_data_from_counts_end_with_the_last_cohort_given(data):
    """With a last cohort (patients, DLTs), the data end with that cohort at the current level:
    the counts per level are unchanged, and the data are those TrialData validates."""
    n = np.array(data.draw(st.lists(st.integers(0, 12), min_size=5, max_size=5)))
    y = np.array([data.draw(st.integers(0, int(v))) for v in n])
    levels = (10.0, 20.0, 40.0, 80.0, 160.0)
    if not n.any():
        return
    current = data.draw(st.sampled_from(np.flatnonzero(n).tolist()))
    size = data.draw(st.integers(1, int(n[current])))
    events = data.draw(
        st.integers(max(0, size - int(n[current] - y[current])), min(size, int(y[current])))
    )
    state = count_state("test", n[None], y[None], [current], 5)
    checked_last_cohorts("test", state, ([size], [events]))  # a possible last cohort
    built = data_from_counts(n, y, current, levels, (size, events))
    last = built.last_cohort
    assert int(last.sum()) == size and int(built.column("dlt")[last].sum()) == events
    assert np.all(built.dose[last] == levels[current]) and built.last_dose == levels[current]
    assert [int(np.sum(built.dose == level)) for level in levels] == n.tolist()
    assert [int(built.column("dlt")[built.dose == level].sum()) for level in levels] == y.tolist()
    validated = TrialData({name: built.column(name).copy() for name in ("dose", "dlt", "cohort")})
    assert built.to_dataframe().equals(validated.to_dataframe())


@pytest.mark.parametrize(
    ("n", "y", "current", "last_cohort"),
    [
        ([2, 1, 0, 0, 0], [3, 0, 0, 0, 0], 1, None),  # more DLTs than patients
        ([2, 1, 0, 0, 0], [0, -1, 0, 0, 0], 1, None),  # a negative count
        ([2, 0, 0, 0, 0], [0, 0, 0, 0, 0], 1, None),  # the current level has no patient
        ([2, 0, 0, 0, 0], [0, 0, 0, 0, 0], -1, None),  # patients, yet none given
        ([2, 0, 0, 0, 0], [0, 0, 0, 0, 0], 5, None),  # no such level
        ([2.5, 0, 0, 0, 0], [0, 0, 0, 0, 0], 0, None),  # not an integer
        ([2, 0, 0, 0], [0, 0, 0, 0], 0, None),  # four levels of five
        ([[2], [0], [0], [0], [0]], [[0], [0], [0], [0], [0]], 0, None),  # not one state
        ([3, 3, 0, 0, 0], [0, 1, 0, 0, 0], 1, (2, 2)),  # more DLTs than the level's 1
        ([3, 3, 0, 0, 0], [0, 1, 0, 0, 0], 1, (0, 0)),  # an empty last cohort
        ([3, 3, 0, 0, 0], [0, 1, 0, 0, 0], 1.0, None),  # a level that is not an integer
    ],
)
def test_data_from_impossible_counts_are_refused(n, y, current, last_cohort):
    """Counts that no trial can have are named, never turned into data whose columns disagree
    (more DLT rows than dose rows) or whose last dose is not the current level."""
    with pytest.raises(ValueError, match=r"data_from_counts: the count state n=.* is impossible"):
        data_from_counts(np.array(n), np.array(y), current, LEVELS, last_cohort)
    model = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS)
    with pytest.raises(ValueError, match="is impossible"):
        model.data_from_counts(np.array(n), np.array(y), current, last_cohort)


def test_data_from_counts_take_numpy_integers_and_an_empty_first_cohort():
    built = data_from_counts(
        np.array([3, 3, 0, 0, 0]), np.array([0, 1, 0, 0, 0]), np.int64(1), LEVELS, (np.int64(1), 1)
    )
    assert built.last_dose == LEVELS[1] and built.column("dlt")[-1] == 1
    empty = data_from_counts(np.zeros(5, dtype=int), np.zeros(5, dtype=int), -1, LEVELS, (0, 0))
    assert empty.n_patients == 0


@pytest.mark.parametrize(
    ("last_cohort", "problem"),
    [
        (([0], [0]), "0 patients with 0 DLTs at level 2"),
        (([4], [1]), "4 patients with 1 DLTs"),  # more than the level's 3
        (([2], [2]), "2 patients with 2 DLTs"),  # more DLTs than the level's 1
        (([3], [0]), "3 patients with 0 DLTs"),  # the level's DLT is in no cohort
        (([1, 1], [0, 0]), r"must have shape \(1,\)"),
    ],
)
def test_impossible_last_cohorts_are_refused(last_cohort, problem):
    state = count_state("test", [[3, 3, 3, 0, 0]], [[0, 0, 1, 0, 0]], [2], 5)
    with pytest.raises(ValueError, match=problem):
        checked_last_cohorts("test", state, last_cohort)
