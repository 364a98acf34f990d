import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from dosezoo.data import TrialData
from dosezoo.designs import Backfill, Conduct, Design, three_plus_three_design
from dosezoo.designs.three_plus_three import ThreePlusThreeRule
from dosezoo.errors import DataError
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import operating_characteristics, run_trial, simulate

LEVELS = (10.0, 20.0, 30.0, 40.0)


def _run(design, steps):
    """Play (dlt of the cohort, expected next dose or stop text) steps from an empty trial."""
    data = TrialData.empty(outcomes=("dlt",))
    decision = design.next(data)
    assert decision.next_dose == design.start_dose
    for dlt, expected in steps:
        data = data.with_cohort(decision.next_dose, dlt=dlt)
        decision = design.next(data)
        if isinstance(expected, str):
            assert decision.stopped
            assert decision.stop_reason.startswith(expected)
        else:
            assert decision.next_dose == expected
    return data, decision


def test_sizes():
    design = three_plus_three_design(LEVELS)
    assert (design.cohort_size, design.sample_size, design.start_dose) == (3, 24, 10.0)
    assert three_plus_three_design(LEVELS, start_dose=20).start_dose == 20.0


def test_one_of_six_escalates_then_two_of_three_stops_at_the_lower_dose():
    data, decision = _run(
        three_plus_three_design(LEVELS),
        [
            ([0, 0, 0], 20.0),  # 0/3 at 10: escalate
            ([0, 1, 0], 20.0),  # 1/3 at 20: 3 more
            ([0, 0, 0], 30.0),  # 1/6 at 20: escalate
            ([1, 1, 0], "MTD 20: 2 DLTs in 3 patients at 30"),  # 20 already has 6
        ],
    )
    assert decision.quantities == {"n_at_dose": 3.0, "dlt_at_dose": 2.0, "selected_dose": 20.0}
    assert three_plus_three_design(LEVELS).recommend(data).next_dose == 20.0


def test_deescalation_completes_the_lower_dose_to_six():
    design = three_plus_three_design(LEVELS)
    data, decision = _run(
        design,
        [
            ([0, 0, 0], 20.0),
            ([0, 0, 0], 30.0),
            ([1, 0, 1], 20.0),  # 2/3 at 30: back to 20, which has only 3
            # 1/6 at 20; 30 is too toxic (it said "no higher dose to try", 30 given)
            ([0, 1, 0], "MTD 20: 1 DLTs in 6 patients, and 2 DLTs in 3 patients at 30"),
        ],
    )
    assert decision.bound_by == ("toxic_dose",)
    assert decision.quantities["selected_dose"] == 20.0
    assert design.recommend(data).next_dose == 20.0


def test_two_of_six_deescalates_and_never_reescalates():
    design = three_plus_three_design(LEVELS)
    data, decision = _run(
        design,
        [
            ([0, 0, 0], 20.0),
            ([1, 0, 0], 20.0),
            ([0, 1, 0], 10.0),  # 2/6 at 20: back to 10, which has only 3
            # 20 had 2 DLTs: no re-escalation
            ([0, 0, 0], "MTD 10: 0 DLTs in 6 patients, and 2 DLTs in 6 patients at 20"),
        ],
    )
    assert decision.bound_by == ("toxic_dose",)
    assert decision.quantities["selected_dose"] == 10.0
    assert design.recommend(data).next_dose == 10.0


def test_escalation_past_the_highest_dose_confirms_it_with_six():
    design = three_plus_three_design(LEVELS)
    data, decision = _run(
        design,
        [
            ([0, 0, 0], 20.0),
            ([0, 0, 0], 30.0),
            ([0, 0, 0], 40.0),
            ([0, 0, 0], 40.0),  # 0/3 at the highest dose: 3 more there
            ([0, 0, 1], "MTD 40: 1 DLTs in 6 patients, no higher dose to try"),
        ],
    )
    assert decision.bound_by == ("highest_dose",)
    assert design.recommend(data).next_dose == 40.0


def test_a_toxic_lowest_dose_stops_with_no_mtd():
    design = three_plus_three_design(LEVELS)
    data, decision = _run(design, [([1, 0, 0], 10.0), ([0, 1, 0], "no MTD: 2 DLTs in 6")])
    assert math.isnan(decision.quantities["selected_dose"])
    recommendation = design.recommend(data)
    assert recommendation.stopped
    assert recommendation.stop_reason == "no MTD: no dose had at most 1 DLT in 6 patients"
    _run(design, [([1, 1, 0], "no MTD: 2 DLTs in 3 patients at the lowest dose 10")])


def test_a_higher_start_dose_deescalates_to_an_untreated_dose():
    design = three_plus_three_design(LEVELS, start_dose=20.0)
    data, _ = _run(
        design,
        [
            ([1, 1, 1], 10.0),  # 3/3 at the start dose: 3 patients at 10
            ([0, 0, 0], 10.0),  # 0/3, but 20 is too toxic: complete 10 to 6
            ([0, 0, 0], "MTD 10"),
        ],
    )
    assert design.recommend(data).next_dose == 10.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="three_plus_three_design: dose_levels must be strictly"):
        three_plus_three_design((10.0, 10.0))
    with pytest.raises(ValueError, match=r"Design: start_dose 15\.0 is not one of"):
        three_plus_three_design(LEVELS, start_dose=15)
    design = three_plus_three_design(LEVELS)
    with pytest.raises(DataError, match="dose 10 has 4 patients; the 3\\+3 design treats 3 or 6"):
        design.next(TrialData.empty(outcomes=("dlt",)).with_cohort(10.0, dlt=[0, 0, 0, 0]))
    with pytest.raises(DataError, match=r"row 0: dose 12\.5 is not one of the dose levels"):
        design.next(TrialData.empty(outcomes=("dlt",)).with_cohort(12.5, dlt=[0, 0, 0]))
    # An engine for a design that fits nothing (a misspelt one was kept as given).
    with pytest.raises(ValueError, match=r"conduct\.engine 'nutz': ThreePlusThreeRule uses no"):
        Design(None, ThreePlusThreeRule(LEVELS), Conduct(cohort_size=3, engine="nutz"))


def test_the_last_cohort_may_be_cut_short_at_the_sample_size_only():
    """The recommendation reads a last cohort the sample size cut short; nothing else."""
    cut = TrialData.empty(outcomes=("dlt",)).with_cohort(10.0, dlt=[0, 0, 0])
    cut = cut.with_cohort(20.0, dlt=[0, 0, 0]).with_cohort(30.0, dlt=[1, 0])
    eight = Design(None, ThreePlusThreeRule(LEVELS), Conduct(cohort_size=3, sample_size=8))
    assert eight.next(cut).stop_reason == "sample size reached: 8 of 8"
    assert eight.recommend(cut).stop_reason == "no MTD: no dose had at most 1 DLT in 6 patients"
    with pytest.raises(DataError, match="dose 30 has 2 patients; the 3\\+3 design treats 3 or 6"):
        three_plus_three_design(LEVELS).recommend(cut)
    with pytest.raises(DataError, match="dose 20 has 2 patients"):
        eight.recommend(cut.head(5).with_cohort(30.0, dlt=[0, 0, 0]))


def test_describe_is_flat():
    record = three_plus_three_design(LEVELS).describe()
    assert record == {
        "name": "3+3",
        "rule_dose_levels": "10,20,30,40",
        "conduct_start_dose": 10.0,
        "conduct_cohort_size": 3,
        "conduct_sample_size": 24,
    }


# --------------------------------------------------------------------------- simulation

P_TRUE = (0.05, 0.15, 0.35, 0.55)
SCENARIO = BinaryToxicityScenario(LEVELS, P_TRUE, 0.3, planned_sample_size=24)


def _exact_selection(design, p_true):
    """Selection probabilities of the design, enumerating every outcome of every cohort."""
    probabilities = np.zeros(len(p_true) + 1)  # the last entry: no MTD

    def walk(data, weight):
        decision = design.next(data)
        if decision.stopped:
            selected = decision.quantities["selected_dose"]
            index = -1 if math.isnan(selected) else design.dose_levels.index(selected)
            probabilities[index] += weight
            return
        p = p_true[design.dose_levels.index(decision.next_dose)]
        for y in range(4):
            cohort = data.with_cohort(decision.next_dose, dlt=[1] * y + [0] * (3 - y))
            walk(cohort, weight * stats.binom.pmf(y, 3, p))

    walk(TrialData.empty(outcomes=("dlt",)), 1.0)
    return probabilities


def _passes(p):
    """P(escalate from a dose): 0/3, or 1/3 then 0/3 (Lin and Shih 2001, A = B = 3)."""
    q = 1 - p
    return q**3 + 3 * p * q**2 * q**3


def _confirmed_at_the_top(p):
    """P(the highest dose ends with <= 1/6): 0/3 then <= 1 of 3 more, or 1/3 then 0/3."""
    q = 1 - p
    return q**3 * (q**3 + 3 * p * q**2) + 3 * p * q**2 * q**3


def test_exact_selection_agrees_with_closed_forms():
    probabilities = _exact_selection(three_plus_three_design(LEVELS), P_TRUE)
    assert probabilities.sum() == pytest.approx(1.0)
    top = np.prod([_passes(p) for p in P_TRUE[:-1]]) * _confirmed_at_the_top(P_TRUE[-1])
    assert probabilities[3] == pytest.approx(top)
    single = _exact_selection(three_plus_three_design((10.0,)), (0.3,))
    assert single[0] == pytest.approx(_confirmed_at_the_top(0.3))
    assert single[-1] == pytest.approx(1 - _confirmed_at_the_top(0.3))


@pytest.fixture(scope="module")
def results():
    return simulate(three_plus_three_design(LEVELS), SCENARIO, 200, random_seed=7, progress=False)


def test_simulated_selection_matches_the_exact_distribution(results):
    exact = _exact_selection(three_plus_three_design(LEVELS), P_TRUE)
    oc = operating_characteristics(results, n_bootstrap=2)["mean"].to_series()
    simulated = [oc[f"selected_{k}"] for k in range(4)] + [oc["no_selection"]]
    se = np.sqrt(exact * (1 - exact) / 200)
    assert np.all(np.abs(np.array(simulated) - exact) <= 4.5 * se + 1e-12)
    assert SCENARIO.mtd_level == 2  # |0.35 - 0.3| < |0.15 - 0.3|
    assert oc["correct_selection"] == oc["selected_2"]
    full = np.mean(results["n_patients"].values == 24)
    assert oc["stopped_early"] == pytest.approx(1 - full)  # only full trials ask recommend()
    assert 6.0 <= oc["n_treated"] <= 24.0
    assert oc["n_treated"] == pytest.approx(sum(oc[f"n_at_{k}"] for k in range(4)))


def test_same_seed_same_results(results):
    again = simulate(three_plus_three_design(LEVELS), SCENARIO, 200, random_seed=7, progress=False)
    xr.testing.assert_identical(results, again)


def test_every_stop_selects_what_recommend_selects(results):
    design = three_plus_three_design(LEVELS)
    for trial in range(20):
        n = int(results["n_patients"][trial])
        data = TrialData.empty(outcomes=("dlt",))
        for dose, dlt in zip(
            results["dose"].values[trial, :n], results["dlt"].values[trial, :n], strict=True
        ):
            data = data.with_cohort(float(dose), dlt=[int(dlt)])
        recommendation = design.recommend(data)
        selected = np.nan if recommendation.stopped else recommendation.next_dose
        # the last decision is the engine's call of recommend(); the stop is just before it
        last = int(np.sum(results["decision_kind"].values[trial] != "")) - 1
        np.testing.assert_equal(
            float(results["decision_selected_dose"].values[trial, last - 1]), selected
        )
        np.testing.assert_equal(float(results["recommended_dose"].values[trial]), selected)


def test_a_sample_size_that_cuts_the_last_cohort_short_simulates_as_it_decides():
    # 8 patients: the lockstep engine's count states hold the last cohort of 2 that the data
    # path reads (they were refused: "dose 30 has 2 patients"), and select the same.
    eight = Design(None, ThreePlusThreeRule(LEVELS), Conduct(cohort_size=3, sample_size=8))
    scenario = BinaryToxicityScenario(LEVELS, P_TRUE, 0.3, planned_sample_size=8)
    results = simulate(eight, scenario, 60, random_seed=3, progress=False)
    n_patients = results["n_patients"].values
    assert (n_patients == 8).any()
    for trial in np.flatnonzero(n_patients == 8):
        data = TrialData.empty(outcomes=("dlt",))
        for dose, dlt in zip(
            results["dose"].values[trial, :8], results["dlt"].values[trial, :8], strict=True
        ):
            data = data.with_cohort(float(dose), dlt=[int(dlt)])
        recommendation = eight.recommend(data)
        selected = np.nan if recommendation.stopped else recommendation.next_dose
        np.testing.assert_equal(float(results["recommended_dose"].values[trial]), selected)


def test_no_mtd_above_the_lowest_dose_does_not_call_it_the_lowest():
    design = three_plus_three_design(LEVELS)
    data = TrialData.empty(outcomes=("dlt",)).with_cohort(10.0, dlt=[1, 1, 0])
    decision = design.next(data.with_cohort(20.0, dlt=[1, 1, 0]))
    assert decision.stop_reason == (
        "no MTD: 2 DLTs in 3 patients at 20, and every lower dose had too many DLTs"
    )
    lowest = design.next(data)
    assert lowest.stop_reason == "no MTD: 2 DLTs in 3 patients at the lowest dose 10"


# --------------------------------------------------------------------------- backfill

ESC, BF = "escalation", "backfill"
WITH_BACKFILL = three_plus_three_design(LEVELS, backfill=Backfill(1.0, 2.0))


def _timed(*blocks):
    """Trial data from (dose, DLTs, role) blocks, in enrolment order."""
    rows = [(dose, dlt, role) for dose, dlts, role in blocks for dlt in dlts]
    dose, dlt, role = (list(column) for column in zip(*rows, strict=True))
    enrolled = np.arange(len(dose), dtype=float)
    return TrialData({"dose": dose, "dlt": dlt, "enrolled": enrolled, "role": role})


CLIMBED = ((10.0, [0, 0, 0], ESC), (20.0, [0, 0, 0], ESC), (30.0, [0, 0, 0], ESC))


def test_backfill_dlts_at_a_cleared_dose_deescalate_below_it():
    design = WITH_BACKFILL
    assert design.next(_timed(*CLIMBED)).next_dose == 40.0
    assert design.next(_timed(*CLIMBED, (20.0, [1, 0], BF))).next_dose == 40.0  # 1 in 5
    data = _timed(*CLIMBED, (20.0, [1, 0, 1], BF))  # 2 DLTs in 6 at 20: too toxic
    decision = design.next(data)
    assert decision.next_dose == 10.0  # 3 more at 10, which has 3
    assert decision.bound_by == ("toxic_lower_dose",)
    assert design.backfill_doses(data, 30.0) == (10.0,)  # 20 and above closed to backfill
    data = data.with_cohort(10.0, dlt=[0, 0, 0], enrolled=[12.0, 12.0, 12.0], role=ESC)
    decision = design.next(data)
    # 20 was given: "no higher dose to try" misled (an audit)
    assert decision.stop_reason == "MTD 10: 0 DLTs in 6 patients, and 2 DLTs in 6 patients at 20"
    assert decision.bound_by == ("toxic_dose",)
    assert decision.quantities["selected_dose"] == 10.0
    assert design.recommend(data).next_dose == 10.0


def test_a_backfill_dlt_stops_the_trial_when_the_dose_below_has_six():
    """Backfill patients count towards the 6 that confirm the MTD."""
    data = _timed(
        (10.0, [0, 0, 0], ESC),
        (20.0, [0, 0, 0], ESC),
        (10.0, [0, 0, 0], BF),
        (30.0, [0, 0, 0], ESC),
        (20.0, [1, 1], BF),
    )
    decision = WITH_BACKFILL.next(data)
    assert decision.stop_reason == "MTD 10: 2 DLTs in 5 patients at 20"
    assert decision.bound_by == ("toxic_lower_dose",)
    assert decision.quantities["selected_dose"] == 10.0
    assert WITH_BACKFILL.recommend(data).next_dose == 10.0


def test_the_bar_of_pooled_data_is_two_dlts_and_a_rate_of_one_third():
    climbed = ((10.0, [0, 0, 0], ESC), (20.0, [1, 0, 0], ESC), (20.0, [0, 0, 0], ESC))
    climbed += ((30.0, [0, 0, 0], ESC),)
    two_in_nine = _timed(*climbed, (20.0, [1, 0, 0], BF))
    assert WITH_BACKFILL.next(two_in_nine).next_dose == 40.0
    assert WITH_BACKFILL.recommend(two_in_nine).next_dose == 20.0  # 9 patients, below 1/3
    three_in_nine = _timed(*climbed, (20.0, [1, 1, 0], BF))
    assert WITH_BACKFILL.next(three_in_nine).next_dose == 10.0
    assert WITH_BACKFILL.recommend(three_in_nine).stopped  # 10 has 3 patients only


def test_a_dose_left_with_two_dlts_is_never_given_again_nor_selected():
    """Late outcomes without a DLT bring 20 back to 2 in 7; the escalation stays below it."""
    full = _timed(*CLIMBED, (20.0, [1, 1, 0, 0], BF), (10.0, [0, 0, 0], ESC))
    assert WITH_BACKFILL.next(full.head(11)).next_dose == 10.0  # 2 in 5 known at 20
    decision = WITH_BACKFILL.next(full)
    assert decision.stop_reason == "MTD 10: 0 DLTs in 6 patients, and 2 DLTs in 7 patients at 20"
    assert decision.quantities["selected_dose"] == 10.0
    assert WITH_BACKFILL.recommend(full).next_dose == 10.0


def test_backfill_doses_read_a_pending_cohort_in_part():
    design = three_plus_three_design(LEVELS, backfill=Backfill(1.0, 2.0, max_dlt_rate=1.0))
    partial = _timed(*CLIMBED[:2], (10.0, [1, 0], BF), (30.0, [0, 0], ESC))
    assert design.backfill_doses(partial, 30.0) == (10.0, 20.0)
    toxic = _timed(*CLIMBED[:2], (10.0, [1, 1], BF), (30.0, [0, 0], ESC))
    assert design.conduct.backfill.cleared(toxic, LEVELS, 30.0) == (10.0, 20.0)
    assert design.backfill_doses(toxic, 30.0) == ()  # 10 too toxic closes 10 and above
    with pytest.raises(DataError, match="dose 30 has 2 patients in the escalation"):
        design.next(partial)


def test_bad_backfill_data_are_refused_naming_row_and_dose():
    with pytest.raises(
        DataError,
        match=r"column 'dose', row 6: backfill patient at dose 20, not below the escalation "
        r"dose 20",
    ):
        WITH_BACKFILL.next(_timed(*CLIMBED[:2], (20.0, [0], BF)))
    with pytest.raises(
        DataError, match=r"column 'role', row 0: a backfill patient \(dose 10\) before any"
    ):
        WITH_BACKFILL.next(_timed((10.0, [0], BF), (10.0, [0, 0, 0], ESC)))
    with pytest.raises(
        DataError, match=r"dose 20 has 4 patients in the escalation \(backfill patients aside\)"
    ):
        WITH_BACKFILL.next(_timed((10.0, [0, 0, 0], ESC), (20.0, [0] * 4, ESC), (10.0, [0], BF)))
    with pytest.raises(DataError, match=r"row 3: dose 25\.0 is not one of the dose levels"):
        WITH_BACKFILL.next(_timed((10.0, [0, 0, 0], ESC), (25.0, [0], BF)))


def test_in_time_backfill_dlts_bring_the_escalation_below_a_cleared_dose():
    """Replay each decision bound by a too-toxic lower dose on the outcomes known then."""
    design = three_plus_three_design(LEVELS, backfill=Backfill(1.0, 2.0))
    scenario = BinaryToxicityScenario(
        LEVELS, (0.1, 0.35, 0.5, 0.6), 0.3, planned_sample_size=design.sample_size
    )
    kinds = []
    # Each kind binds in 1 to 2% of these trials (0.4 s for 300).
    for seed in range(300):
        record = run_trial(design, scenario, np.random.default_rng(seed))
        for k in np.flatnonzero(record["decision_bound_by"] == "toxic_lower_dose"):
            known = record["enrolled"] + 2.0 <= record["decision_quantities"]["time"][k]
            level = np.searchsorted(LEVELS, record["dose"][known])
            dlt, escalation = record["outcomes"]["dlt"][known], record["role"][known] == ESC
            n, y = np.bincount(level, minlength=4), np.bincount(level, dlt, minlength=4)
            toxic = np.flatnonzero((y >= 2) & (3 * y >= n))
            h, current = toxic[0], level[escalation][-1]
            assert h < current  # a cleared dose below the escalation's ...
            assert dlt[(level == h) & escalation].sum() < 2  # ... cleared by the escalation ...
            assert dlt[(level == h) & ~escalation].sum() >= 1  # ... and too toxic by backfill
            if math.isnan(record["decision_dose"][k]):
                assert n[h - 1] >= 6 if h else True
                expected = f"MTD {LEVELS[h - 1]:g}:" if h else "no MTD:"
                assert record["decision_stop_reason"][k].startswith(expected)
                kinds.append("stop")
            else:
                assert record["decision_dose"][k] == LEVELS[h - 1] and n[h - 1] < 6
                kinds.append("down")
    assert {"stop", "down"} <= set(kinds), kinds


def test_a_trial_the_rule_ends_says_why_even_when_every_level_had_six():
    # With every level at its 6 patients the stop said "sample size reached" (in 1130 of 8000
    # simulated trials of an audit), where the rule had found the MTD or no MTD.
    design = three_plus_three_design([1.0, 2.0])
    dlt = [0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0]
    data = TrialData.from_dataframe(
        pd.DataFrame(
            {"dose": [1.0] * 6 + [2.0] * 6, "dlt": dlt, "cohort": np.repeat([1, 2, 3, 4], 3)}
        )
    )
    decision = design.next(data)
    assert decision.stop_reason == "MTD 1: 3 DLTs in 6 patients at 2"
    assert decision.quantities["selected_dose"] == 1.0
    one = three_plus_three_design([5.0])
    toxic = TrialData.from_dataframe(
        pd.DataFrame({"dose": [5.0] * 6, "dlt": [1, 0, 0, 1, 1, 0], "cohort": [1, 1, 1, 2, 2, 2]})
    )
    assert one.next(toxic).stop_reason == "no MTD: 3 DLTs in 6 patients at the lowest dose 5"
