"""Backfill: the conduct option, the timed data, the engine's timed trials and their guarantees."""

import dataclasses
import importlib.util
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from dosezoo.config import read_config
from dosezoo.data import TrialData
from dosezoo.designs import (
    Backfill,
    boin12_design,
    boin_design,
    crm_design,
    three_plus_three_design,
)
from dosezoo.designs.registry import design_config, design_from_config
from dosezoo.errors import ConfigError, DataError
from dosezoo.models.crm import CRM
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import run_trial, simulate, simulate_designs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_SPEC = importlib.util.spec_from_file_location(
    "backfill_baseline", Path(__file__).with_name("backfill_baseline.py")
)
assert _SPEC is not None and _SPEC.loader is not None
backfill_baseline = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(backfill_baseline)
LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
SKELETON = (0.084, 0.157, 0.25, 0.355, 0.46)
TARGET = 0.25
ESCALATION_EXAMPLES = ("crm", "blrm", "ewoc", "boin", "joint_probit", "three_plus_three")


def _boin(backfill: Backfill | None, sample_size: int = 24):
    return boin_design(TARGET, LEVELS, sample_size=sample_size, backfill=backfill)


def _three_plus_three(backfill: Backfill | None):
    return three_plus_three_design(LEVELS, backfill=backfill)


def _scenario(p_true, sample_size: int = 24) -> BinaryToxicityScenario:
    return BinaryToxicityScenario(LEVELS, p_true, TARGET, planned_sample_size=sample_size)


# ---------------------------------------------------------------------------- the option


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arrival_rate", 0.0),
        ("arrival_rate", -1.0),
        ("dlt_window", 0),
        ("dlt_window", math.inf),
        ("per_dose_cap", -1),
        ("per_dose_cap", 1.5),
        ("total_cap", True),
        ("allocation", "lowest"),
        ("min_cleared", 0),
        ("max_dlt_rate", 0.0),
        ("max_dlt_rate", 1.2),
    ],
)
def test_backfill_refuses_bad_options_naming_the_field(field, value):
    options = {"arrival_rate": 1.0, "dlt_window": 2.0, field: value}
    with pytest.raises(ValueError, match=f"Backfill: {field}"):
        Backfill(**options)


def test_backfill_in_a_toml_configuration_round_trips(tmp_path):
    text = (EXAMPLES / "crm.toml").read_text()
    path = tmp_path / "crm_backfill.toml"
    path.write_text(
        text + "\n[backfill]\narrival_rate = 0.5\ndlt_window = 4.0\nallocation = 'random'\n"
    )
    design = design_from_config(read_config(path), str(path))
    assert design.backfill == Backfill(0.5, 4.0, allocation="random")
    assert design_from_config(design_config(design), "again") == design


def test_backfill_configuration_errors_name_file_section_key_and_value(tmp_path):
    config = read_config(EXAMPLES / "boin.toml")
    bad = {**config, "backfill": {"arrival_rate": -2.0, "dlt_window": 1.0}}
    with pytest.raises(ConfigError, match=r"boin\.toml.*backfill.*arrival_rate.*-2"):
        design_from_config(bad, "boin.toml")
    twice = {
        **config,
        "conduct": {**config["conduct"], "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0}},
        "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0},
    }
    with pytest.raises(ConfigError, match="given twice"):
        design_from_config(twice, "boin.toml")
    unknown = {**config, "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0, "cap": 3}}
    with pytest.raises(ConfigError, match="unknown key 'cap'"):
        design_from_config(unknown, "boin.toml")


@pytest.mark.parametrize("example", ESCALATION_EXAMPLES)
def test_every_escalation_family_takes_backfill_in_its_conduct(example):
    config = read_config(EXAMPLES / f"{example}.toml")
    backfill = Backfill(1.0, 3.0, per_dose_cap=4, total_cap=9)
    design = design_from_config({**config, "backfill": dataclasses.asdict(backfill)}, example)
    assert design.backfill == backfill
    described = design.describe()
    assert described["conduct_backfill_per_dose_cap"] == 4
    assert described["conduct_backfill_allocation"] == "highest"
    assert design_from_config(design_config(design), example) == design
    without = design_from_config(config, example)
    assert without.backfill is None
    assert not any(key.startswith("conduct_backfill") for key in without.describe())


def test_factories_pass_backfill_to_the_conduct():
    backfill = Backfill(2.0, 1.0)
    assert crm_design(CRM(SKELETON, TARGET), backfill=backfill).conduct.backfill is backfill
    assert _boin(backfill).conduct.backfill is backfill


def test_the_three_plus_three_takes_backfill_and_its_cap_in_the_sample_size():
    """6 per level for the escalation, and the total cap: backfill never cuts the 3+3 short."""
    backfill = Backfill(1.0, 2.0, total_cap=9)
    design = three_plus_three_design(LEVELS, backfill=backfill)
    assert design.backfill is backfill
    assert design.sample_size == 6 * len(LEVELS) + 9
    config = read_config(EXAMPLES / "three_plus_three.toml")
    built = design_from_config({**config, "backfill": dataclasses.asdict(backfill)}, "3+3")
    assert built == design and built.sample_size == 39
    assert "Zhao et al. 2024" in built.describe()["rule_backfill_convention"]
    plain = three_plus_three_design(LEVELS, backfill=None)
    assert plain.backfill is None and plain.sample_size == 30
    assert "rule_backfill_convention" not in plain.describe()
    assert design_from_config(config, "3+3").sample_size == 30
    with pytest.raises(ValueError, match="Conduct: backfill must be a Backfill or None"):
        three_plus_three_design(LEVELS, backfill={"arrival_rate": 1.0, "dlt_window": 2.0})


# ---------------------------------------------------------------------------- timed data


def _timed_frame(**changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "dose": [10.0, 10.0, 10.0, 20.0, 10.0],
            "dlt": [0, 0, 0, 1, 0],
            "enrolled": [0.0, 0.5, 1.0, 4.0, 4.5],
            "role": ["escalation"] * 4 + ["backfill"],
        }
    )
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("enrolled", 2, -1.0, "must be >= 0"),
        ("enrolled", 1, math.nan, "NaN"),
        ("enrolled", 3, math.inf, "infinite"),
        ("enrolled", 3, 0.25, "earlier than 1.0"),
        ("enrolled", 0, "soon", "not numeric"),
        ("role", 4, "expansion", "must be 'escalation' or 'backfill'"),
        ("role", 1, None, "must be 'escalation' or 'backfill'"),
    ],
)
def test_bad_schedule_values_raise_data_error_naming_row_column_value(column, row, value, message):
    with pytest.raises(DataError, match=rf"column '{column}', row {row}: value .*{message}"):
        TrialData.from_dataframe(_timed_frame(**{column: (row, value)}))


def test_timed_data_grow_and_keep_the_escalation_current_dose():
    data = TrialData.from_dataframe(_timed_frame())
    assert data.schedule == ("enrolled", "role")
    assert data.last_dose == 20.0  # the backfill patient at 10 is not the escalation's
    assert data.last_cohort.tolist() == [False, False, False, True, False]
    grown = data.with_cohort(10.0, dlt=[1], enrolled=[5.0], role="backfill")
    assert grown.column("role").tolist()[-1] == "backfill"
    assert grown.head(3) == TrialData.from_dataframe(_timed_frame().iloc[:3])
    with pytest.raises(DataError, match="schedule columns none; the data have enrolled, role"):
        data.with_cohort(10.0, dlt=[0])
    with pytest.raises(DataError, match=r"row 5 \(patient 0 of the new cohort\).*earlier"):
        data.with_cohort(10.0, dlt=[0], enrolled=[1.0], role="backfill")


def test_data_without_schedule_columns_are_unchanged():
    frame = _timed_frame().drop(columns=["enrolled", "role"])
    data = TrialData.from_dataframe(frame)
    assert data.schedule == ()
    assert data.columns == ("dose", "cohort", "dlt")
    assert data.escalation.all()
    assert data.last_dose == 10.0
    weibull = TrialData.from_dataframe(
        pd.DataFrame({"dose": [1.0, 2.0], "time": [3.0, 4.0], "event": [1, 0]})
    )
    assert weibull.outcomes == ("time", "event") and weibull.schedule == ()


# ---------------------------------------------------------------------------- posterior


rows = st.lists(
    st.tuples(st.sampled_from(LEVELS), st.integers(0, 1), st.booleans()), min_size=1, max_size=15
)


@settings(max_examples=25, deadline=None)
@given(rows=rows)
def test_backfill_patients_change_the_posterior_as_escalation_patients(rows):
    """The same doses and DLTs give the identical posterior whatever the patients' roles."""
    doses, dlts, backfill = (list(column) for column in zip(*rows, strict=True))
    roles = ["backfill" if b else "escalation" for b in backfill]
    roles[0] = "escalation"
    enrolled = np.arange(len(rows), dtype=float)
    timed = TrialData({"dose": doses, "dlt": dlts, "enrolled": enrolled, "role": roles})
    plain = TrialData({"dose": doses, "dlt": dlts})
    crm = crm_design(CRM(SKELETON, TARGET, dose_levels=LEVELS))
    blrm = design_from_config(read_config(EXAMPLES / "blrm.toml"), "blrm")
    for design in (crm, blrm):
        a, b = design.posterior(timed), design.posterior(plain)
        for name in a.rates:
            assert np.array_equal(a.rates[name], b.rates[name])
        assert (a.weights is None and b.weights is None) or np.array_equal(a.weights, b.weights)
        assert design.conduct.seed_for(timed, ("dlt",)) == design.conduct.seed_for(plain, ("dlt",))
    boin = _boin(None)
    assert np.array_equal(boin.rule.counts(timed).n, boin.rule.counts(plain).n)
    assert np.array_equal(boin.rule.counts(timed).y, boin.rule.counts(plain).y)


def test_backfill_dlts_enter_the_next_decision_and_can_deescalate():
    design = crm_design(CRM(SKELETON, TARGET, dose_levels=LEVELS))
    escalation = {
        "dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 3,
        "dlt": [0] * 9,
        "enrolled": np.arange(9.0),
        "role": ["escalation"] * 9,
    }
    before = design.next(TrialData(escalation)).next_dose
    backfilled = {
        "dose": escalation["dose"] + [20.0] * 3,
        "dlt": escalation["dlt"] + [1, 1, 1],
        "enrolled": np.arange(12.0),
        "role": escalation["role"] + ["backfill"] * 3,
    }
    after = design.next(TrialData(backfilled)).next_dose
    assert before == 80.0
    assert after < 40.0


# ---------------------------------------------------------------------------- the engine


def _p_above(n: np.ndarray, y: np.ndarray) -> np.ndarray:
    """BOIN's elimination probability, P(p > target | Beta(1 + y, 1 + n - y)), by scipy."""
    return stats.beta.sf(TARGET, 1 + y, 1 + n - y)


def _counts(doses: np.ndarray, dlts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.searchsorted(LEVELS, doses)
    n = np.bincount(index, minlength=len(LEVELS))
    y = np.bincount(index, weights=dlts, minlength=len(LEVELS)).astype(int)
    return n, y


def _boin_closed(n: np.ndarray, y: np.ndarray, escalation: bool) -> np.ndarray:
    """BOIN's closed levels: from the lowest with P(p > target) > 0.95 (3 or more patients)."""
    gone = (n >= 3) & (_p_above(n, y) > 0.95)
    return np.arange(len(LEVELS)) >= (int(np.argmax(gone)) if gone.any() else len(LEVELS))


def _three_plus_three_closed(n: np.ndarray, y: np.ndarray, escalation: bool) -> np.ndarray:
    """The 3+3's closed levels: from the lowest with >= 2 DLTs and a rate >= 1/3 (pooled).

    An escalation cohort never goes to a level that had 2 or more DLTs either (no
    re-escalation), whatever its rate.
    """
    toxic = (y >= 2) & (y >= n / 3)
    closed = np.arange(len(LEVELS)) >= (int(np.argmax(toxic)) if toxic.any() else len(LEVELS))
    return closed | (escalation & (y >= 2))


def _check_allocations(
    record, backfill: Backfill | None, closed: Callable[..., np.ndarray] | None = None
) -> None:
    """Replay a trial: no patient at a closed, skipped or not-yet-cleared dose.

    Escalation cohort ``k`` was decided at ``decision_time[k]`` on the patients whose window
    had closed then (all of them without backfill); a backfill patient was placed at its own
    enrolment time, on the patients whose window had closed then. ``closed(n, y, escalation)``
    gives the levels the design must not give a patient (an escalation patient if
    ``escalation``) on those counts; None: no level is closed.
    """
    dose, dlt, cohort = record["dose"], record["outcomes"]["dlt"], record["cohort"]
    levels = np.searchsorted(LEVELS, dose)
    if backfill is None:
        enrolled, role = cohort.astype(float), np.full(dose.size, "escalation")
        window, times = 0.5, list(np.unique(cohort) - 0.5)  # decide after the cohort before
    else:
        enrolled, role = record["enrolled"], record["role"]
        window, times = backfill.dlt_window, list(record["decision_quantities"]["time"])
    escalation_cohorts = list(dict.fromkeys(cohort[role == "escalation"]))
    current = -1
    for i in range(dose.size):
        if role[i] == "escalation":
            k = escalation_cohorts.index(cohort[i])
            time = times[k]
        else:
            time = enrolled[i]
        known = enrolled + window <= time
        n, y = _counts(dose[known], dlt[known])
        tried = levels[:i].max() if i else -1
        assert levels[i] <= tried + 1, f"patient {i} skipped a dose"
        if closed is not None:
            shut = closed(n, y, role[i] == "escalation")
            assert not shut[levels[i]], f"patient {i} ({role[i]}) at a closed dose"
        if role[i] == "escalation":
            current = levels[i]
            continue
        assert backfill is not None
        assert levels[i] < current, f"backfill patient {i} not below the escalation dose"
        at = levels[i]
        assert n[at] >= backfill.min_cleared, f"backfill patient {i} at an uncleared dose"
        assert y[at] < backfill.max_dlt_rate * n[at], f"backfill patient {i} at a toxic dose"


backfills = st.one_of(
    st.none(),
    st.builds(
        Backfill,
        arrival_rate=st.floats(0.2, 5.0),
        dlt_window=st.floats(0.5, 6.0),
        per_dose_cap=st.integers(0, 6),
        total_cap=st.integers(0, 15),
        allocation=st.sampled_from(["highest", "random"]),
        min_cleared=st.integers(1, 4),
        max_dlt_rate=st.sampled_from([1 / 3, 0.5, 1.0]),
    ),
)
truths = st.lists(st.floats(0.02, 0.9), min_size=len(LEVELS), max_size=len(LEVELS))


COUNT_DESIGNS = {
    "boin": (_boin, _boin_closed),
    "3+3": (_three_plus_three, _three_plus_three_closed),
}


@pytest.mark.parametrize("name", COUNT_DESIGNS)
@settings(max_examples=40, deadline=None)
@given(backfill=backfills, p_true=truths, seed=st.integers(0, 2**32 - 1))
# A trial whose backfill DLTs make a cleared dose too toxic for the 3+3 while a cohort waits.
@example(backfill=Backfill(3.0, 2.0, max_dlt_rate=1.0), p_true=[0.3, 0.3, 0.4, 0.5, 0.6], seed=8)
def test_count_designs_never_treat_at_a_closed_skipped_or_uncleared_dose(
    name, backfill, p_true, seed
):
    build, closed = COUNT_DESIGNS[name]
    design = build(backfill)
    scenario = _scenario(p_true, design.sample_size)
    record = run_trial(design, scenario, np.random.default_rng(seed))
    _check_allocations(record, backfill, closed)
    if backfill is not None:
        backfilled = record["dose"][record["role"] == "backfill"]
        assert backfilled.size <= backfill.total_cap
        assert all(np.sum(backfilled == d) <= backfill.per_dose_cap for d in LEVELS)
    if name == "3+3":  # cohorts of 3, at most 6 escalation patients per level
        escalation = (
            record["dose"] if backfill is None else record["dose"][record["role"] == "escalation"]
        )
        assert all(np.sum(escalation == d) in (0, 3, 6) for d in LEVELS)


@settings(max_examples=10, deadline=None)
@given(backfill=backfills, p_true=truths, seed=st.integers(0, 2**32 - 1))
def test_crm_never_treats_at_a_skipped_or_uncleared_dose(backfill, p_true, seed):
    design = crm_design(
        CRM(SKELETON, TARGET, dose_levels=LEVELS), sample_size=15, backfill=backfill
    )
    record = run_trial(design, _scenario(p_true, 15), np.random.default_rng(seed))
    _check_allocations(record, backfill)


class Spy:
    """A design that records the data of every decision it is asked for."""

    def __init__(self, design):
        self.design = design
        self.seen: list[TrialData] = []

    def __getattr__(self, name):
        return getattr(self.design, name)

    def next(self, data):
        self.seen.append(data)
        return self.design.next(data)


@pytest.mark.parametrize("name", COUNT_DESIGNS)
@settings(max_examples=15, deadline=None)
@given(p_true=truths, seed=st.integers(0, 2**32 - 1), window=st.floats(0.5, 8.0))
def test_pending_outcomes_are_never_used_before_their_window_closes(name, p_true, seed, window):
    build, _ = COUNT_DESIGNS[name]
    spy = Spy(build(Backfill(2.0, window, per_dose_cap=3)))
    record = run_trial(spy, _scenario(p_true, spy.sample_size), np.random.default_rng(seed))
    times = record["decision_quantities"]["time"]
    assert len(spy.seen) == len(times) - 1  # every next(), then the recommendation
    for data, time in zip(spy.seen, times, strict=False):
        known = record["enrolled"] + window <= time
        assert known.sum() == data.n_patients  # exactly the closed windows ...
        if data.n_patients:  # ... and no other
            assert np.all(np.asarray(data.column("enrolled")) + window <= time)
        assert np.array_equal(data.dose, record["dose"][: data.n_patients])
    assert record["metrics"]["duration"] == pytest.approx(record["enrolled"].max() + window)
    assert times[-1] == record["metrics"]["duration"]


def test_a_timed_simulation_reports_duration_roles_and_backfill_counts():
    backfill = Backfill(2.0, 3.0)
    result = simulate(
        _boin(backfill), _scenario((0.05, 0.1, 0.2, 0.35, 0.5)), 12, random_seed=5, progress=False
    )
    roles = result["role"].values
    assert set(np.unique(roles)) <= {"escalation", "backfill", ""}
    n_backfill = (roles == "backfill").sum(axis=1)
    assert np.array_equal(result["n_backfill"].values, n_backfill)
    assert n_backfill.sum() > 0
    last = np.nanmax(result["enrolled"].values, axis=1)
    assert np.allclose(result["duration"].values, last + backfill.dlt_window)
    assert np.array_equal(result["n_patients"].values, (roles != "").sum(axis=1))
    assert result.attrs["design_conduct_backfill_arrival_rate"] == 2.0


def test_same_seed_same_results_for_any_n_jobs():
    design = _boin(Backfill(1.5, 2.0, allocation="random"))
    scenario = _scenario((0.05, 0.1, 0.2, 0.35, 0.5))
    one = simulate(design, scenario, 8, random_seed=11, progress=False)
    two = simulate(design, scenario, 8, random_seed=11, n_jobs=2, batch_size=3, progress=False)
    xr.testing.assert_identical(one, two)
    other = simulate(design, scenario, 8, random_seed=12, progress=False)
    assert not one["dose"].equals(other["dose"])


def test_without_backfill_the_results_are_those_before_backfill_existed():
    """Digests written by tests/backfill_baseline.py on the commit before backfill."""
    expected = json.loads(backfill_baseline.PATH.read_text())
    assert backfill_baseline.digests() == expected


def test_trials_run_in_time_give_the_results_recorded_before_the_engine_was_made_cheaper():
    """Digests written by tests/backfill_baseline.py --timed (BOIN, BOIN12, 3+3, CRM): on 097d868,
    and again when the arrivals got a stream of their own (the module's docstring)."""
    expected = json.loads(backfill_baseline.TIMED_PATH.read_text())
    assert backfill_baseline.timed_digests() == expected


def test_a_design_with_backfill_gives_its_patients_the_outcomes_it_gives_without():
    """Common random numbers: arrivals and backfill choices drew from the outcomes' generator,
    so the first cohort (the same patients at the same dose) had other DLTs in 82% of trials."""
    p_true = (0.3, 0.4, 0.5, 0.6, 0.7)
    scenario = BinaryToxicityScenario(LEVELS, p_true, 0.3, planned_sample_size=24)
    plain = three_plus_three_design(LEVELS)
    timed = three_plus_three_design(LEVELS, backfill=Backfill(arrival_rate=1.0, dlt_window=1.0))
    options = {"random_seed": 1, "progress": False}
    results = [simulate(design, scenario, 200, **options) for design in (plain, timed)]
    first = [result["dlt"].values[:, :3] for result in results]
    assert np.all(results[1]["dose"].values[:, :3] == LEVELS[0])
    np.testing.assert_array_equal(first[0], first[1])
    together = simulate_designs({"plain": plain, "timed": timed}, scenario, 200, **options)
    xr.testing.assert_identical(together["timed"], results[1])


def test_boin_closes_backfill_at_and_above_an_eliminated_dose():
    """4 DLTs in 6 at 20 (P(p > 0.25) > 0.95 by scipy) close 20 and above, not 10."""
    design = _boin(Backfill(1.0, 1.0, max_dlt_rate=1.0))
    data = TrialData(
        {
            "dose": [10.0] * 3 + [20.0] * 6 + [40.0] * 3,
            "dlt": [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0],
            "enrolled": np.arange(12.0),
            "role": ["escalation"] * 6 + ["backfill"] * 3 + ["escalation"] * 3,
        }
    )
    assert _p_above(np.array(6), np.array(4)) > 0.95 > _p_above(np.array(3), np.array(0))
    assert design.conduct.backfill.cleared(data, LEVELS, 80.0) == (10.0, 20.0, 40.0)
    assert design.backfill_doses(data, 80.0) == (10.0,)
    plain = crm_design(
        CRM(SKELETON, TARGET, dose_levels=LEVELS),
        backfill=design.backfill,
        max_overdose_probability=1.0,
    )
    assert plain.backfill_doses(data, 80.0) == (10.0, 20.0, 40.0)  # the CRM rule's: all cleared


def _crm_p_mtd_below(n: np.ndarray, y: np.ndarray, level: int) -> float:
    """P(MTD < level) of the CRM, p_k = s_k^exp(b), b ~ N(0, 1.34), by quadrature here.

    The MTD is the level whose rate is closest to the target, a placebo of rate 0 below.
    """
    b = np.linspace(-12.0, 12.0, 200_001)
    log_p = np.exp(b)[:, None] * np.log(SKELETON)
    log_density = (y * log_p + (n - y) * np.log1p(-np.exp(log_p))).sum(axis=1) - b**2 / 2.68
    weights = np.exp(log_density - log_density.max())
    rates = np.column_stack([np.zeros(b.size), np.exp(log_p)])
    mtd = np.argmin(np.abs(rates - TARGET), axis=1) - 1
    return float(weights[mtd < level].sum() / weights.sum())


def test_the_hard_overdose_limit_closes_backfill_at_a_dose_likely_overdosed():
    """1 DLT in 3 at 10, none in 3 at 20, then DLTs in the first 2 of the cohort at 40.

    20 is cleared, but more likely than not above the CRM's MTD: no backfill patient is given
    it, as no escalation cohort would be (a backfill patient got it before).
    """
    data = TrialData(
        {
            "dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 2,
            "dlt": [1, 0, 0, 0, 0, 0, 1, 1],
            "enrolled": [0.0, 0.5, 1.0, 4.0, 4.5, 5.0, 8.0, 8.5],
            "cohort": [1, 1, 1, 2, 2, 2, 3, 3],
        }
    )
    p_over = _crm_p_mtd_below(np.array([3, 3, 2, 0, 0]), np.array([1, 0, 2, 0, 0]), 1)
    assert 0.6 < p_over  # 0.654: over the limit of 0.5
    model, backfill = CRM(SKELETON, TARGET, dose_levels=LEVELS), Backfill(4.0, 3.0)
    design = crm_design(model, backfill=backfill)
    assert design.conduct.backfill.cleared(data, LEVELS, 40.0) == (20.0,)
    assert design.rule.overdose_probability(design.posterior(data), 20.0) == pytest.approx(
        p_over, abs=1e-4
    )
    assert design.backfill_doses(data, 40.0) == ()
    lax = crm_design(model, backfill=backfill, max_overdose_probability=0.7)
    assert lax.backfill_doses(data, 40.0) == (20.0,)


def test_ewoc_closes_backfill_above_its_feasibility_bound():
    """A cleared level whose P(MTD < x) exceeds alpha (0.25) but not the hard limit (0.5).

    40, with no DLT in 3, after DLTs in the first 2 patients at 80: P(MTD < 40) = 0.32.
    """
    config = read_config(EXAMPLES / "ewoc.toml")
    design = design_from_config(
        {**config, "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0, "min_cleared": 1}},
        "ewoc",
    )
    data = TrialData(
        {
            "dose": [10.0, 20.0, 40.0, 40.0, 40.0, 80.0, 80.0],
            "dlt": [0, 0, 0, 0, 0, 1, 1],
            "enrolled": np.arange(7.0),
        }
    )
    p_below = [design.posterior(data).mtd.cdf(dose) for dose in LEVELS]
    cleared = design.conduct.backfill.cleared(data, LEVELS, 80.0)
    assert cleared == (10.0, 20.0, 40.0)
    feasible = tuple(dose for dose, p in zip(LEVELS, p_below, strict=False) if p <= 0.25)
    assert set(cleared) - set(feasible)  # the bound has a cleared level to close
    assert all(p <= 0.5 for p in p_below[:3])  # and the hard limit none
    assert design.backfill_doses(data, 80.0) == tuple(d for d in cleared if d in feasible)


def test_boin12_closes_backfill_at_a_dose_eliminated_for_futility():
    """No response in 9 at 10 (P(p_E < 0.25) = 1 - 0.75^10 > 0.9) drops 10, not 20."""
    design = boin12_design(
        0.35, (10.0, 20.0, 40.0), efficacy_limit=0.25, backfill=Backfill(1.0, 1.0)
    )
    data = TrialData(
        {
            "dose": [10.0] * 9 + [20.0] * 3,
            "dlt": [0] * 12,
            "efficacy": [0] * 9 + [1, 1, 0],
            "enrolled": np.arange(12.0),
            "role": ["escalation"] * 12,
        }
    )
    assert stats.beta.cdf(0.25, 1, 10) > 0.9
    assert design.conduct.backfill.cleared(data, (10.0, 20.0, 40.0), 40.0) == (10.0, 20.0)
    assert design.backfill_doses(data, 40.0) == (20.0,)


def test_blrm_closes_backfill_at_overdosed_doses():
    config = read_config(EXAMPLES / "blrm.toml")
    design = design_from_config(
        {**config, "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0, "max_dlt_rate": 1.0}},
        "blrm",
    )
    data = TrialData(
        {
            "dose": [10.0] * 3 + [20.0] * 6 + [40.0] * 3,
            "dlt": [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1],
            "enrolled": np.arange(12.0),
            "role": ["escalation"] * 6 + ["backfill"] * 3 + ["escalation"] * 3,
        }
    )
    # P(p >= 0.33) at each level from the grid posterior, summed here over its points.
    posterior = design.posterior(data)
    excessive = np.average(posterior.rate("p_dlt") >= 0.33, axis=0, weights=posterior.weights)
    safe = tuple(d for d, p in zip(LEVELS, excessive, strict=True) if p < 0.25)
    cleared = design.conduct.backfill.cleared(data, LEVELS, 80.0)
    assert set(cleared) - set(safe)  # the overdose control has something to close
    assert design.backfill_doses(data, 80.0) == tuple(d for d in cleared if d in safe)


def test_the_joint_probit_rule_closes_backfill_at_overdosed_and_futile_doses():
    """Draws built by hand: level 1 overdosed, level 2 futile, levels 0 and 3 open."""
    from dosezoo.designs import optimus_design
    from dosezoo.models import JointProbit
    from dosezoo.posterior import DosePosterior

    levels = (10.0, 20.0, 40.0, 80.0, 160.0)
    model = JointProbit(dose_levels=levels)
    design = optimus_design(model, futility_cutoff=0.2, backfill=Backfill(1.0, 1.0))
    draws = np.linspace(0.0, 1.0, 200)[:, None]
    p_tox = np.tile([0.05, 0.2, 0.1, 0.2, 0.3], (200, 1))
    p_tox[:, 1] = np.where(draws[:, 0] < 0.5, 0.6, 0.2)  # P(p_tox > 0.4) = 0.5 > 0.25
    p_response = np.tile([0.3, 0.4, 0.05, 0.5, 0.5], (200, 1))  # level 2: never >= 0.2
    posterior = DosePosterior(levels, {"p_tox": p_tox, "p_response": p_response}, None)
    data = TrialData({"dose": [10.0] * 3, "dlt": [0] * 3, "efficacy": [1] * 3})
    cleared = (10.0, 20.0, 40.0, 80.0)
    assert design.rule.backfill_eligible(posterior, data, cleared) == (10.0, 80.0)
    no_futility = optimus_design(model, backfill=Backfill(1.0, 1.0))
    assert no_futility.rule.backfill_eligible(posterior, data, cleared) == (10.0, 40.0, 80.0)


@pytest.mark.parametrize("example", ["crm", "blrm", "ewoc"])
def test_model_based_designs_run_in_time_with_backfill(example):
    config = read_config(EXAMPLES / f"{example}.toml")
    config["conduct"] = {**config["conduct"], "sample_size": 12}
    backfill = Backfill(3.0, 2.0, allocation="random", min_cleared=1)  # EWOC: cohorts of 1
    design = design_from_config({**config, "backfill": dataclasses.asdict(backfill)}, example)
    scenario = _scenario((0.05, 0.1, 0.2, 0.35, 0.5), 12)
    records = [run_trial(design, scenario, np.random.default_rng(seed)) for seed in range(3)]
    for record in records:
        _check_allocations(record, backfill)
        assert record["n_patients"] <= 12
    assert sum(record["metrics"]["n_backfill"] for record in records) > 0


def test_backfill_needs_dose_levels_and_dlt():
    config = read_config(EXAMPLES / "o6bg_accelerated.toml")  # continuous toxicity, no DLT
    with pytest.raises(ConfigError, match="needs dose levels and a model with the outcome 'dlt'"):
        design_from_config({**config, "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0}}, "o6bg")


def test_a_timed_trial_reuses_the_posterior_of_the_same_data(monkeypatch):
    """The kept posterior saves fits and changes nothing: same records as without it.

    The design keeps the posterior of a model that is not an exact integration (which it seeds
    from the data); the CRM's exact posterior is memoised by the model itself, so the CRM
    stands in for such a model here.
    """
    monkeypatch.setattr(CRM, "exact_posterior", False)
    design = crm_design(
        CRM(SKELETON, TARGET, dose_levels=LEVELS), sample_size=24, backfill=Backfill(2.0, 3.0)
    )
    scenario = _scenario((0.05, 0.1, 0.2, 0.35, 0.5))
    fits: list[int] = []
    fast = CRM.posterior

    def counted(self, data, sampling=None):
        fits.append(data.n_patients)
        return fast(self, data, sampling)

    monkeypatch.setattr(CRM, "posterior", counted)
    kept = [run_trial(design, scenario, np.random.default_rng(seed)) for seed in range(4)]
    n_kept = len(fits)
    fits.clear()
    posterior = type(design).posterior

    def forgetful(self, data, *, final=False):
        self.__dict__.pop("_last_posterior", None)
        return posterior(self, data, final=final)

    monkeypatch.setattr(type(design), "posterior", forgetful)
    again = [run_trial(design, scenario, np.random.default_rng(seed)) for seed in range(4)]
    assert n_kept < len(fits)
    for one, other in zip(kept, again, strict=True):
        for key in ("dose", "decision_dose", "enrolled"):
            assert np.array_equal(one[key], other[key])
        quantities = one["decision_quantities"]
        assert quantities.keys() == other["decision_quantities"].keys()
        for key, values in quantities.items():
            assert np.array_equal(values, other["decision_quantities"][key], equal_nan=True)


def test_an_exact_posterior_is_asked_of_the_model_without_a_seed(monkeypatch):
    """A design asks an exact model directly: no seed derived, nothing kept by the design."""
    design = crm_design(
        CRM(SKELETON, TARGET, dose_levels=LEVELS), sample_size=24, backfill=Backfill(2.0, 3.0)
    )
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [LEVELS[0]] * 3, "dlt": [0, 0, 1], "cohort": [1, 1, 1]})
    )

    def no_seed(*args, **kwargs):
        raise AssertionError("an exact posterior needs no seed")

    monkeypatch.setattr(type(design.conduct), "seed_for", no_seed)
    posterior = design.posterior(data)
    assert posterior is design.model.posterior(data)
    assert "_last_posterior" not in design.__dict__


def test_dosezoo_simulate_runs_the_three_plus_three_with_backfill(tmp_path):
    from typer.testing import CliRunner

    from dosezoo.cli import app

    config = tmp_path / "three_plus_three_backfill.toml"
    extra = "\n[backfill]\narrival_rate = 1.0\ndlt_window = 2.0\ntotal_cap = 9\n"
    config.write_text((EXAMPLES / "three_plus_three.toml").read_text() + extra)
    output = tmp_path / "three_plus_three_backfill.nc"
    arguments = ["simulate", str(config), "-o", str(output), "--trials", "20", "--no-progress"]
    result = CliRunner().invoke(app, arguments, terminal_width=200)
    assert result.exit_code == 0, result.output
    results = xr.load_dataset(output, engine="h5netcdf")
    assert results.attrs["design_conduct_sample_size"] == 6 * 5 + 9
    assert results.attrs["design_conduct_backfill_total_cap"] == 9
    assert "design_rule_backfill_convention" in results.attrs
    roles, doses = results["role"].values, results["dose"].values
    assert (roles == "backfill").sum() == results["n_backfill"].values.sum() > 0
    for trial in range(results.sizes["trial"]):  # the escalation: 3 or 6 per level
        escalation = doses[trial][roles[trial] == "escalation"]
        assert all(np.sum(escalation == dose) in (0, 3, 6) for dose in (10, 20, 40, 80, 160))


@pytest.mark.parametrize(
    ("doses", "dlts"),
    [
        ([1] * 3 + [2] * 3 + [3] * 9, [0] * 6 + [1] * 8 + [0]),  # (iii) at 3: P(p_3 > 0.3) > 0.99
        ([1] * 3 + [2] * 3 + [1] * 3, [1, 1, 0, 0, 1, 0, 1, 0, 1]),  # (ii): P(p_1 > 0.3) > 0.8
    ],
    ids=["excluded", "lowest-only"],
)
def test_the_gp_designs_close_backfill_outside_their_admissible_set(doses, dlts):
    """Stage 2 of the LSE design, the hard overdose limit off: the admissible set alone."""
    config = read_config(EXAMPLES / "lse.toml")
    config["conduct"] = {**config["conduct"], "max_overdose_probability": 1.0}
    design = design_from_config(
        {**config, "backfill": {"arrival_rate": 1.0, "dlt_window": 1.0, "max_dlt_rate": 1.0}},
        "lse",
    )
    data = TrialData(
        {
            "dose": np.asarray(doses, dtype=float),
            "dlt": dlts,
            "enrolled": np.arange(float(len(doses))),
            "cohort": np.arange(len(doses)) // 3 + 1,
        }
    )
    assert design.rule.stage1_end(data) is not None
    above = np.mean(design.posterior(data).rate("p_dlt") > 0.3, axis=0)
    admissible = design.rule.admissible
    # Condition (i) bounds escalation; the others, read here from the thresholds.
    allowed = (above < admissible.exclusion_threshold) & (
        (np.arange(above.size) == 0) | (above[0] <= admissible.single_dose_threshold)
    )
    cleared = design.conduct.backfill.cleared(data, design.dose_levels, 4.0)
    expected = tuple(d for d in cleared if allowed[design.dose_levels.index(d)])
    assert set(cleared) - set(expected)  # the admissible set has a cleared dose to close
    assert design.backfill_doses(data, 4.0) == expected


def test_a_dose_within_monte_carlo_error_of_the_cutoff_takes_no_backfill(monkeypatch):
    """Draws built by hand: P(p_tox > 0.4) at 20 estimated at 0.24, within 2 MCSEs of 0.25."""
    from dosezoo.designs import optimus_design
    from dosezoo.models import JointProbit
    from dosezoo.posterior import DosePosterior

    model = JointProbit(dose_levels=LEVELS)
    design = optimus_design(model, backfill=Backfill(1.0, 1.0, min_cleared=1))
    rng = np.random.default_rng(0)
    p_tox = np.tile([0.05, 0.2, 0.1, 0.2, 0.3], (400, 1))
    p_tox[:, 1] = np.where(rng.permutation(400) < 96, 0.6, 0.2)  # 96 of 400 draws over 0.4
    posterior = DosePosterior(LEVELS, {"p_tox": p_tox, "p_response": np.full((400, 5), 0.5)}, None)
    p_over = posterior.prob_above(0.4, "p_tox")[1]
    mcse = posterior.mcse_above(0.4, "p_tox")[1]
    assert p_over == 0.24 and 0.25 - p_over < design.conduct.mcse_margin * mcse
    monkeypatch.setattr(type(design), "posterior", lambda self, data, **options: posterior)
    data = TrialData({"dose": [10.0, 20.0], "dlt": [0, 0], "efficacy": [1, 1]})
    assert design.rule.backfill_eligible(posterior, data, (10.0, 20.0)) == (10.0, 20.0)
    assert design.backfill_doses(data, 40.0) == (10.0,)
