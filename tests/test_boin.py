import math
import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import betaincc

from dosezoo.data import TrialData
from dosezoo.designs import (
    Conduct,
    Decision,
    Design,
    boin_boundaries,
    boin_design,
    three_plus_three_design,
)
from dosezoo.designs.boin import beta_tail_of_counts, isotonic_regression
from dosezoo.errors import DataError
from dosezoo.levels import level_counts
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import operating_characteristics, simulate

LEVELS = (10.0, 20.0, 30.0, 40.0, 50.0)

# Liu & Yuan (2015, JRSS-C 64, 507-523), Table 1, and Yuan et al. (2016, Clin Cancer Res 22,
# 4291-4301), Table 1: (lambda_e, lambda_d) for phi1 = 0.6 phi, phi2 = 1.4 phi, printed to 3
# decimals (0.3585 is printed 0.358, so agreement is to within 0.001).
PUBLISHED_BOUNDARIES = {0.2: (0.157, 0.238), 0.25: (0.197, 0.298), 0.3: (0.236, 0.358)}

# R package BOIN, get.boundary(target = 0.3, ncohort = 10, cohortsize = 3)$full_boundary_tab
# (printed e.g. at https://rstudio-pubs-static.s3.amazonaws.com/
# 1437814_79ba5accbdfc4c6aaed63b046a781eab.html, with lambda_e = 0.2364907 and
# lambda_d = 0.3585195): for n patients at the current dose, escalate if DLTs <= escalate,
# de-escalate if DLTs >= deescalate, eliminate the dose (and higher) if DLTs >= eliminate.
PUBLISHED_TABLE_03 = {
    # n: (escalate if <=, de-escalate if >=, eliminate if >=)
    3: (0, 2, 3),
    4: (0, 2, 3),
    5: (1, 2, 4),
    6: (1, 3, 4),
    7: (1, 3, 5),
    8: (1, 3, 5),
    9: (2, 4, 5),
    10: (2, 4, 6),
    11: (2, 4, 6),
    12: (2, 5, 7),
}


def _data(*cohorts):
    """Trial data from (dose, [dlt, ...]) cohorts."""
    data = TrialData.empty(outcomes=("dlt",))
    for dose, dlt in cohorts:
        data = data.with_cohort(dose, dlt=dlt)
    return data


def _cohort(dose, n, y):
    return dose, [1] * y + [0] * (n - y)


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("target", sorted(PUBLISHED_BOUNDARIES))
def test_boundaries_match_the_published_values(target):
    lambda_e, lambda_d = boin_boundaries(target)
    published_e, published_d = PUBLISHED_BOUNDARIES[target]
    assert abs(lambda_e - published_e) < 1e-3
    assert abs(lambda_d - published_d) < 1e-3
    assert 0.6 * target < lambda_e < target < lambda_d < 1.4 * target


def test_boundaries_match_the_r_package_to_its_printed_digits():
    lambda_e, lambda_d = boin_boundaries(0.3)
    assert lambda_e == pytest.approx(0.2364907, abs=5e-8)
    assert lambda_d == pytest.approx(0.3585195, abs=5e-8)
    assert boin_boundaries(0.3, 0.18, 0.42) == (lambda_e, lambda_d)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.0}, "target must lie in \\(0, 1\\), got 0.0"),
        ({"target": "0.3"}, "target must be a real number, got '0.3'"),
        ({"target": 0.3, "phi1": 0.3}, "phi1 must lie in \\(0, target=0.3\\), got 0.3"),
        ({"target": 0.3, "phi1": -0.1}, "phi1 must lie in .*got -0.1"),
        ({"target": 0.3, "phi2": 0.25}, "phi2 must lie in \\(target=0.3, 1\\), got 0.25"),
        (
            {"target": 0.8},
            "phi2 must lie in \\(target=0.8, 1\\), got the default 1.4 \\* target = 1.12",
        ),
    ],
)
def test_boundaries_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        boin_boundaries(**kwargs)


@pytest.mark.parametrize(
    ("phi1", "phi2"), [(0.3 - 1e-9, None), (0.3 - 1e-15, None), (None, 0.3 + 1e-12)]
)
def test_boundaries_next_to_the_target_stay_between_the_rates(phi1, phi2):
    # The quotient of logarithms cancelled: phi1 = 0.3 - 1e-15 gave lambda_e = 0.304 > target
    # (and the next representable phi1, 0.5: escalation after 1 DLT in 3).
    low, high = phi1 or 0.18, phi2 or 0.42
    lambda_e, lambda_d = boin_boundaries(0.3, phi1, phi2)
    assert low < lambda_e < 0.3 < lambda_d < high


def test_boundaries_that_round_onto_the_target_are_refused():
    with pytest.raises(ValueError, match=r"too close to target=0\.3 for BOIN's boundaries"):
        boin_boundaries(0.3, float(np.nextafter(0.3, 0)))
    # a tiny target is no longer rounded to boundaries of 0
    lambda_e, lambda_d = boin_boundaries(1e-300)
    assert 0.6e-300 < lambda_e < 1e-300 < lambda_d < 1.4e-300


# --------------------------------------------------------------------------- decision table


def _table_from_design(design, n):
    """(max DLTs to escalate, min DLTs to de-escalate, min DLTs to eliminate) at n patients."""
    escalate, deescalate, eliminate = -1, None, None
    for y in range(n + 1):
        decision = design.next(_data(_cohort(20.0, n, y)))
        if decision.next_dose == 30.0:
            escalate = y
        if decision.next_dose == 10.0 and deescalate is None:
            deescalate = y
        if decision.quantities["n_eliminated"] == 2 and eliminate is None:
            eliminate = y
    return escalate, deescalate, eliminate


def _table_from_formulas(target, n):
    """The same table computed independently from the formulas (Beta(1, 1) prior)."""
    phi1, phi2 = 0.6 * target, 1.4 * target
    lambda_e = np.log((1 - phi1) / (1 - target)) / np.log(
        target * (1 - phi1) / (phi1 * (1 - target))
    )
    lambda_d = np.log((1 - target) / (1 - phi2)) / np.log(
        phi2 * (1 - target) / (target * (1 - phi2))
    )
    eliminate = next(y for y in range(n + 1) if stats.beta.sf(target, y + 1, n - y + 1) > 0.95)
    return math.floor(lambda_e * n), min(math.ceil(lambda_d * n), eliminate), eliminate


@pytest.mark.parametrize("n", sorted(PUBLISHED_TABLE_03))
def test_decision_table_for_target_03_matches_the_published_table(n):
    design = boin_design(0.3, (10.0, 20.0, 30.0), sample_size=36)
    assert _table_from_formulas(0.3, n) == PUBLISHED_TABLE_03[n]
    assert _table_from_design(design, n) == PUBLISHED_TABLE_03[n]


@pytest.mark.parametrize("target", [0.2, 0.3, 0.33])
def test_a_boundary_that_is_a_simple_fraction_includes_its_ties(target):
    # phi2 = 1 - target makes lambda_d = 1/2 exactly; in floating point it comes out
    # 0.5000000000000001 (0.2), 0.5 (0.3) or 0.49999999999999994 (0.33). The paper's rule
    # de-escalates at p_hat >= lambda_d, so 2/4 de-escalates at every one of them (and 2/4
    # eliminates nothing: P(p > 0.2 | 2 of 4) = 0.942 < 0.95).
    design = boin_design(target, LEVELS, phi2=1 - target)
    assert design.rule.lambda_d == pytest.approx(0.5, abs=1e-15)
    decision = design.next(_data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 1), _cohort(20.0, 1, 1)))
    assert decision.next_dose == 10.0
    assert decision.quantities["n_eliminated"] == 0.0
    # One DLT fewer is below the boundary: no de-escalation.
    data = _data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 1), _cohort(20.0, 1, 0))
    assert design.next(data).next_dose >= 20.0


def test_stay_between_the_boundaries_records_the_quantities():
    design = boin_design(0.3, LEVELS)
    # 2/6 = 0.333 lies between lambda_e = 0.236 and lambda_d = 0.359: stay.
    decision = design.next(_data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 1), _cohort(20.0, 3, 1)))
    assert decision.next_dose == 20.0
    assert decision.bound_by == ()
    assert decision.quantities == pytest.approx(
        {
            "n_at_dose": 6.0,
            "dlt_at_dose": 2.0,
            "p_hat": 1 / 3,
            "lambda_e": 0.2364907,
            "lambda_d": 0.3585195,
            "p_above_target": stats.beta.sf(0.3, 3, 5),
            "n_eliminated": 0.0,
        },
        abs=1e-7,
    )
    # 1/6 = 0.167 <= lambda_e: escalate by one level.
    decision = design.next(_data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 1), _cohort(20.0, 3, 0)))
    assert decision.next_dose == 30.0


def test_a_kept_decision_is_the_one_decided_afresh_and_a_rebound_rule_keeps_none():
    design = boin_design(0.3, LEVELS)
    data = _data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 1), _cohort(20.0, 3, 1))
    first, again = design.next(data), design.next(data)
    assert again == first and again is not first  # each call its own Decision
    assert again.quantities is not first.quantities
    fresh = boin_design(0.3, LEVELS).rule._decide(design.rule.counts(data))
    assert again == fresh.decision(0, LEVELS)
    final = design.recommend(data)
    assert repr(final) == repr(boin_design(0.3, LEVELS).recommend(data))  # NaN estimates
    assert len(design.rule.__dict__["_decisions"]) == 2
    # Bound to another sample size (6 patients: stop), the rule decides anew.
    small = Design(design.model, design.rule, Conduct(sample_size=6))
    assert "_decisions" not in small.rule.__dict__
    assert small.next(data).stop_reason.startswith("sample size reached")
    assert "_decisions" not in pickle.loads(pickle.dumps(design.rule)).__dict__


# --------------------------------------------------------------------------- elimination


def test_a_dose_with_3_of_3_is_eliminated_with_every_higher_dose():
    design = boin_design(0.3, LEVELS)
    data = _data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 3))
    decision = design.next(data)
    assert decision.next_dose == 10.0
    assert decision.bound_by == ("eliminated",)
    assert decision.quantities["n_eliminated"] == 4.0
    assert decision.quantities["p_above_target"] == pytest.approx(1 - 0.3**4)
    # 0/3 at the lowest dose would escalate, but 20 is eliminated: stay.
    data = data.with_cohort(10.0, dlt=[0, 0, 0])
    decision = design.next(data)
    assert decision.next_dose == 10.0
    assert decision.bound_by == ("eliminated",)
    recommendation = design.recommend(data)
    assert recommendation.next_dose == 10.0
    assert math.isnan(recommendation.quantities["p_iso_1"])


def test_lowest_dose_eliminated_stops_with_no_mtd():
    design = boin_design(0.3, LEVELS)
    data = _data(_cohort(10.0, 3, 3))
    decision = design.next(data)
    assert decision.stopped
    assert decision.stop_reason.startswith("lowest dose 10 eliminated")
    assert math.isnan(decision.quantities["selected_dose"])
    assert design.recommend(data).stopped


def test_extra_safe_stops_earlier_at_the_lowest_dose():
    data = _data(_cohort(10.0, 3, 2))
    # P(p > 0.3 | 2/3, Beta(1, 1)) = 1 - I_0.3(3, 2) = 0.9163: above 0.95 - 0.05, below 0.95.
    assert stats.beta.sf(0.3, 3, 2) == pytest.approx(0.9163)
    plain = boin_design(0.3, LEVELS).next(data)
    assert plain.next_dose == 10.0
    assert plain.bound_by == ("lowest_dose",)
    safe = boin_design(0.3, LEVELS, extra_safe=True)
    decision = safe.next(data)
    assert decision.stopped
    assert decision.stop_reason.startswith("extra-safe stop at the lowest dose 10")
    assert safe.recommend(data).stop_reason.startswith("no MTD: extra-safe")


def test_n_earlystop_stops_when_the_rule_would_stay():
    design = boin_design(0.3, LEVELS, n_earlystop=9)
    staying = _data(_cohort(10.0, 3, 0), _cohort(20.0, 9, 3))
    decision = design.next(staying)
    assert decision.stopped
    assert decision.stop_reason == "n_earlystop: 9 patients at dose 20"
    assert decision.quantities["selected_dose"] == design.recommend(staying).next_dose == 20.0
    escalating = _data(_cohort(10.0, 3, 0), _cohort(20.0, 9, 1))
    assert design.next(escalating).next_dose == 30.0


def test_escalation_stops_at_the_highest_dose_and_deescalation_at_the_lowest():
    design = boin_design(0.3, (10.0, 20.0))
    top = design.next(_data(_cohort(10.0, 3, 0), _cohort(20.0, 3, 0)))
    assert (top.next_dose, top.bound_by) == (20.0, ("highest_dose",))
    assert top.quantities["p_hat"] == 0.0
    first = design.next(TrialData.empty(outcomes=("dlt",)))
    assert (first.next_dose, first.bound_by) == (10.0, ("start_dose",))


# --------------------------------------------------------------------------- MTD selection


def test_isotonic_regression_pools_adjacent_violators():
    np.testing.assert_allclose(isotonic_regression([3.0, 1.0, 2.0], [1.0, 1.0, 1.0]), [2, 2, 2])
    np.testing.assert_allclose(
        isotonic_regression([3.0, 1.0, 2.0], [1.0, 3.0, 1.0]), [1.5, 1.5, 2.0]
    )
    np.testing.assert_allclose(isotonic_regression([0.1, 0.2], [1.0, 1.0]), [0.1, 0.2])
    with pytest.raises(ValueError, match="weights must be > 0"):
        isotonic_regression([0.1, 0.2], [1.0, 0.0])


def _r_pava(x, wt):
    """The R package BOIN's pava(), transcribed: pool the level sets at the first violation."""
    x = np.array(x, dtype=float)
    levels = np.arange(x.size)
    while np.any(np.diff(x) < 0):
        i = int(np.flatnonzero(np.diff(x) < 0)[0])
        pooled = (levels == levels[i]) | (levels == levels[i + 1])
        x[pooled] = np.sum(x[pooled] * wt[pooled]) / np.sum(wt[pooled])
        levels[pooled] = levels[i]
    return x


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.1, 10.0)), min_size=1, max_size=8))
def test_isotonic_regression_equals_the_r_package_pava(pairs):
    values, weights = (np.array(v) for v in zip(*pairs, strict=True))
    np.testing.assert_allclose(isotonic_regression(values, weights), _r_pava(values, weights))


def test_select_mtd_example_of_the_r_package():
    # select.mtd(target = 0.3, npts = c(3, 3, 15, 9, 0), ntox = c(0, 0, 4, 4, 0)) -> MTD 3.
    design = boin_design(0.3, LEVELS)
    data = _data(
        _cohort(10.0, 3, 0), _cohort(20.0, 3, 0), _cohort(30.0, 15, 4), _cohort(40.0, 9, 4)
    )
    recommendation = design.recommend(data)
    assert recommendation.next_dose == 30.0
    assert recommendation.quantities["p_iso_2"] == pytest.approx(4.05 / 15.1)
    assert math.isnan(recommendation.quantities["p_iso_4"])


def test_isotonic_selection_hand_worked_with_ties():
    design = boin_design(0.3, (10.0, 20.0, 30.0))
    # n = (3, 6, 6), y = (1, 1, 1): p~ = 1.05/3.1 = 0.33871, 1.05/6.1 = 0.17213, 0.17213;
    # v = 1.05*2.05/(3.1^2*4.1) = 0.054631, 1.05*5.05/(6.1^2*7.1) = 0.020071 (twice).
    # Levels 0 and 1 violate: pooled (0.33871/0.054631 + 0.17213/0.020071) /
    # (1/0.054631 + 1/0.020071) = 0.21689 > 0.17213, so level 2 joins:
    # (14.7761 + 8.5761) / (18.3047 + 2 * 49.8233) = 0.19798 at all three levels.
    data = _data(_cohort(10.0, 3, 1), _cohort(20.0, 6, 1), _cohort(30.0, 6, 1))
    estimates = design.rule.isotonic_estimates(data)
    np.testing.assert_allclose(estimates, [0.19798] * 3, atol=2e-5)
    # A three-way tie below the target: the highest dose.
    assert design.recommend(data).next_dose == 30.0
    # n = (3, 3), y = (2, 1): 0.66129 and 0.33871 with equal weights pool to 0.5 > 0.3:
    # a tie above the target, so the lowest dose (2/3 is not eliminated: P = 0.916 < 0.95).
    data = _data(_cohort(10.0, 3, 2), _cohort(20.0, 3, 1))
    np.testing.assert_allclose(design.rule.isotonic_estimates(data)[:2], [0.5, 0.5])
    assert design.recommend(data).next_dose == 10.0


# --------------------------------------------------------------------------- properties


@st.composite
def trials(draw):
    k = draw(st.integers(1, 5))
    levels = tuple(10.0 * (i + 1) for i in range(k))
    cohorts = draw(
        st.lists(
            st.tuples(st.integers(0, k - 1), st.lists(st.integers(0, 1), min_size=1, max_size=4)),
            min_size=1,
            max_size=10,
        )
    )
    design = boin_design(
        draw(st.sampled_from([0.2, 0.25, 0.3])),
        levels,
        sample_size=60,
        extra_safe=draw(st.booleans()),
        n_earlystop=draw(st.sampled_from([6, 100])),
    )
    return design, _data(*((levels[level], dlt) for level, dlt in cohorts))


@settings(max_examples=200, deadline=None)
@given(trials())
def test_boin_stays_on_levels_never_skips_and_never_picks_an_eliminated_dose(trial):
    design, data = trial
    decision = design.next(data)
    counts = level_counts(data, design.dose_levels, owner="test")
    eliminated_from = int(design.rule.eliminated_from(counts.n[None], counts.y[None])[0])
    current = design.dose_levels.index(data.last_dose)
    if not decision.stopped:
        assert decision.next_dose in design.dose_levels
        level = design.dose_levels.index(decision.next_dose)
        assert level < eliminated_from
        assert level <= current + 1
    else:
        assert decision.stop_reason
    recommendation = design.recommend(data)
    if not recommendation.stopped:
        level = design.dose_levels.index(recommendation.next_dose)
        assert level < eliminated_from
        assert np.any(data.dose == recommendation.next_dose)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dose_levels": (10.0, 5.0)}, "BOIN: dose_levels must be strictly increasing, got 5.0"),
        ({"dose_levels": ()}, "BOIN: dose_levels must hold at least one dose"),
        ({"dose_levels": (0.0, 5.0)}, "BOIN: dose_levels\\[0\\] must be > 0, got 0.0"),
        ({"start_dose": 15.0}, "Design: start_dose 15.0 is not one of the dose levels"),
        ({"cohort_size": 0}, "Conduct: cohort_size must be an integer >= 1, got 0"),
        ({"sample_size": 2}, "Conduct: cohort_size 3 exceeds sample_size 2"),
        (
            {"elimination_cutoff": 1.5},
            "BOINRule: elimination_cutoff must lie in \\(0, 1\\), got 1.5",
        ),
        ({"offset": 0.6}, "BOINRule: offset must lie in \\(0, 0.5\\).*got 0.6"),
        ({"prior_a": -1.0}, "BOIN: prior_a must be > 0, got -1.0"),
        ({"n_earlystop": 2.5}, "BOINRule: n_earlystop must be an integer >= 1, got 2.5"),
        ({"extra_safe": "yes"}, "BOINRule: extra_safe must be True or False, got 'yes'"),
        ({"phi2": 0.2}, "BOINRule: phi2 must lie in \\(target=0.3, 1\\), got 0.2"),
    ],
)
def test_design_rejects_bad_options(kwargs, message):
    # The owner of each message is the part that holds the option: the model (BOIN), the
    # rule (BOINRule), the conduct (Conduct) or the design binding them (Design).
    options = {"target": 0.3, "dose_levels": LEVELS, **kwargs}
    with pytest.raises(ValueError, match=message):
        boin_design(**options)


def test_data_off_the_levels_or_without_dlt_are_refused():
    design = boin_design(0.3, LEVELS)
    with pytest.raises(DataError, match=r"column 'dose', row 3: dose 15\.0 is not one of"):
        design.next(_data(_cohort(10.0, 3, 0), _cohort(15.0, 3, 0)))
    with pytest.raises(DataError, match="needs column 'dlt'"):
        design.next(TrialData.empty(outcomes=("y",)).with_cohort(10.0, y=[1.0]))


def test_describe_is_flat():
    record = boin_design(0.3, LEVELS).describe()
    assert record["model_dose_levels"] == "10,20,30,40,50"
    assert record["rule_phi1"] == pytest.approx(0.18)
    assert all(isinstance(v, str | int | float | bool) for v in record.values())


# --------------------------------------------------------------------------- scenario


def test_scenario_truth_and_validation():
    scenario = BinaryToxicityScenario(
        LEVELS, (0.05, 0.25, 0.35, 0.5, 0.6), 0.3, planned_sample_size=30
    )
    assert scenario.mtd_level == 1  # |0.25 - 0.3| == |0.35 - 0.3|: the lower level
    assert scenario.outcomes == ("dlt",)
    assert scenario.describe()["p_true"] == "0.05,0.25,0.35,0.5,0.6"
    bad = [
        ({"p_true": (0.1, 0.2, 1.0, 0.4, 0.5)}, r"p_true\[2\] must lie in \(0, 1\), got 1\.0"),
        ({"p_true": (0.1, 0.2)}, "p_true has 2 values but dose_levels has 5"),
        ({"target": 1.5}, r"target must lie in \(0, 1\), got 1\.5"),
        ({"dose_levels": (10.0, 30.0, 20.0, 40.0, 50.0)}, "dose_levels must be strictly"),
        ({"planned_sample_size": 0}, "planned_sample_size must be an integer >= 1, got 0"),
    ]
    for change, message in bad:
        options = {
            "dose_levels": LEVELS,
            "p_true": (0.05, 0.25, 0.35, 0.5, 0.6),
            "target": 0.3,
            "planned_sample_size": 30,
            **change,
        }
        with pytest.raises(ValueError, match=f"BinaryToxicityScenario: {message}"):
            BinaryToxicityScenario(**options)


def test_respond_uses_one_tolerance_per_patient_in_order():
    doses = np.array([10.0, 10.0, 10.0, 30.0, 30.0, 30.0])
    split = np.random.default_rng(4)
    first = SCENARIO.respond(doses[:3], split)["dlt"]
    second = SCENARIO.respond(doses[3:], split)["dlt"]
    tolerance = np.random.default_rng(4).random(6)
    expected = tolerance < np.array([0.05] * 3 + [0.30] * 3)
    np.testing.assert_array_equal(np.concatenate([first, second]), expected)
    with pytest.raises(ValueError, match=r"dose 15\.0 is not one of the dose levels"):
        SCENARIO.respond(np.array([15.0]), split)


def test_trial_metrics_by_hand():
    # 3 at 10 (0 DLT), 6 at 20 (1 DLT), 3 at 40 (2 DLTs), 3 at 30 (1 DLT); 15 of 36 planned.
    data = _data(
        _cohort(10.0, 3, 0),
        _cohort(20.0, 6, 1),
        _cohort(40.0, 3, 2),
        _cohort(30.0, 3, 1),  # last: 1/3 stays, so n_earlystop = 3 stops below
    )
    metrics = SCENARIO.trial_metrics(data, boin_design(0.3, LEVELS).recommend(data))
    # Isotonic estimates: 0.016, 0.172, 0.339, 0.661: level 2 (30) is closest to 0.3.
    assert metrics["correct_selection"] == 1.0
    assert metrics["overdose_selection"] == 0.0
    assert [metrics[f"selected_{k}"] for k in range(5)] == [0, 0, 1, 0, 0]
    assert [metrics[f"n_at_{k}"] for k in range(5)] == [3, 6, 3, 3, 0]
    assert metrics["n_at_mtd_fraction"] == pytest.approx(3 / 15)
    assert metrics["n_overdosed_fraction"] == pytest.approx(3 / 15)
    assert metrics["n_at_mtd_over_planned"] == pytest.approx(3 / 36)
    assert metrics["n_overdosed_over_planned"] == pytest.approx(3 / 36)
    assert metrics["dlt_rate"] == pytest.approx(4 / 15)
    assert metrics["dlt_over_planned"] == pytest.approx(4 / 36)
    assert (metrics["stopped_early"], metrics["no_selection"], metrics["n_treated"]) == (1, 0, 15)
    assert all("," not in name for name in metrics)
    capped = boin_design(0.3, LEVELS, n_earlystop=3)
    stop = capped.next(data)
    assert stop.stopped and stop.quantities["selected_dose"] == 30.0
    # the engine asks for the recommendation after the stop: the same dose
    stopped = SCENARIO.trial_metrics(data, capped.recommend(data))
    assert (stopped["stopped_early"], stopped["correct_selection"]) == (1.0, 1.0)
    nothing = SCENARIO.trial_metrics(data, Decision(None, stop_reason="lowest dose eliminated"))
    assert (nothing["no_selection"], nothing["correct_selection"]) == (1.0, 0.0)


# --------------------------------------------------------------------------- simulation

SCENARIO = BinaryToxicityScenario(
    LEVELS, (0.05, 0.12, 0.30, 0.50, 0.70), 0.3, planned_sample_size=36
)


@pytest.fixture(scope="module")
def boin_results():
    return simulate(boin_design(0.3, LEVELS), SCENARIO, 200, random_seed=11, progress=False)


def test_boin_operating_characteristics_are_plausible(boin_results):
    oc = operating_characteristics(boin_results, n_bootstrap=2)
    mean = oc["mean"].to_series()
    assert mean["correct_selection"] > 0.4
    assert mean["overdose_selection"] < 0.3
    assert mean["selected_2"] == mean["correct_selection"]
    assert sum(mean[f"selected_{k}"] for k in range(5)) + mean["no_selection"] == pytest.approx(1)
    assert mean["n_at_mtd_fraction"] > 0.3
    assert mean["n_treated"] == 36.0  # no stopping rule can fire in this scenario
    assert sum(mean[f"n_at_{k}"] for k in range(5)) == pytest.approx(36.0)
    assert 0.1 < mean["dlt_rate"] < 0.35
    assert "decision_p_hat" in boin_results


def test_same_seed_same_results(boin_results):
    again = simulate(boin_design(0.3, LEVELS), SCENARIO, 200, random_seed=11, progress=False)
    xr.testing.assert_identical(boin_results, again)


def test_early_stops_still_select_a_dose():
    design = boin_design(0.3, LEVELS, n_earlystop=9)
    results = simulate(design, SCENARIO, 40, random_seed=3, progress=False)
    stopped = results["stop_reason"].str.startswith("n_earlystop").values
    assert stopped.any()
    assert np.all(results["no_selection"].values[stopped] == 0)
    assert np.all(results["stopped_early"].values[stopped] == 1)
    assert np.all(results["n_patients"].values[stopped] < 36)


def test_common_random_numbers_across_designs():
    seed, n_trials = 5, 20
    boin = simulate(boin_design(0.3, LEVELS), SCENARIO, n_trials, random_seed=seed, progress=False)
    three = simulate(
        three_plus_three_design(LEVELS), SCENARIO, n_trials, random_seed=seed, progress=False
    )
    children = np.random.SeedSequence(seed).spawn(n_trials)
    p_true = dict(zip(LEVELS, SCENARIO.p_true, strict=True))
    shared = 0
    for trial in range(n_trials):
        tolerance = np.random.default_rng(children[trial]).random(36)
        doses = []
        for results in (boin, three):
            n = int(results["n_patients"][trial])
            dose = results["dose"].values[trial, :n]
            dlt = results["dlt"].values[trial, :n]
            expected = tolerance[:n] < np.array([p_true[d] for d in dose])
            np.testing.assert_array_equal(dlt, expected.astype(float))
            doses.append(dose)
        m = min(len(doses[0]), len(doses[1]))
        same = doses[0][:m] == doses[1][:m]
        np.testing.assert_array_equal(
            boin["dlt"].values[trial, :m][same], three["dlt"].values[trial, :m][same]
        )
        shared += int(same.sum())
    assert shared >= 3 * n_trials  # every trial starts with a cohort at the lowest dose


def test_beta_tail_of_counts_is_betaincc_of_the_counts():
    rng = np.random.default_rng(4)
    n = rng.integers(0, 150, size=(40, 5))  # past the first table's 64: it grows
    y = rng.integers(0, 1 + n)
    direct = betaincc(1.0 + y, 1.0 + n - y, 0.3)
    assert np.array_equal(beta_tail_of_counts(1.0, 1.0, 0.3, n, y), direct)
    assert np.array_equal(
        beta_tail_of_counts(0.5, 2.0, 0.25, n[:3], y[:3]),
        betaincc(0.5 + y[:3], 2.0 + n[:3] - y[:3], 0.25),
    )
    # Counts past the largest table, or not integers, are computed, not looked up.
    many = n + 2000
    assert np.array_equal(
        beta_tail_of_counts(1.0, 1.0, 0.3, many, y), betaincc(1.0 + y, 1.0 + many - y, 0.3)
    )
    fractional = n + 0.5
    assert np.array_equal(
        beta_tail_of_counts(1.0, 1.0, 0.3, fractional, y), betaincc(1.0 + y, 1.5 + n - y, 0.3)
    )
    assert beta_tail_of_counts(1.0, 1.0, 0.3, [], []).shape == (0,)


def test_level_counts_of_the_same_data_are_counted_once_and_read_only():
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0, 10.0, 20.0], "dlt": [0, 1, 0]}))
    counts = level_counts(data, LEVELS, owner="test")
    np.testing.assert_array_equal(counts.n, [2, 1, 0, 0, 0])
    np.testing.assert_array_equal(counts.y, [1, 0, 0, 0, 0])
    assert counts.current == 1
    # The same data, the levels as a list: the kept counts.
    assert level_counts(data, list(LEVELS), owner="test") is counts
    with pytest.raises(ValueError, match="read-only"):
        counts.n[0] = 5
    # Equal but other data, or other levels: counted again.
    twin = TrialData.from_dataframe(data.to_dataframe()[["dose", "dlt"]])
    again = level_counts(twin, LEVELS, owner="test")
    assert again is not counts
    np.testing.assert_array_equal(again.n, counts.n)
    wider = level_counts(data, (*LEVELS, 60.0), owner="test")
    np.testing.assert_array_equal(wider.n, [2, 1, 0, 0, 0, 0])
    # A cohort more: new data, new counts; the old data's counts are unchanged.
    grown = data.with_cohort([30.0], dlt=[1])
    np.testing.assert_array_equal(level_counts(grown, LEVELS, owner="test").y, [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(level_counts(data, LEVELS, owner="test").y, [1, 0, 0, 0, 0])
