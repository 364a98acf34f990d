"""Pick-the-winner: the talk's decision matrix cell by cell, the per-arm dual criterion and
P(ORR_A > ORR_B) against independent calculations, the randomised stage's simulation, and the
therapeutic dose range."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import beta

from dosezoo.designs import (
    PTW_MATRIX,
    ArmCriteria,
    PickTheWinnerScenario,
    PickTheWinnerStage,
    pick_the_winner,
    pick_the_winner_cell,
    prob_a_better,
    simulate_pick_the_winner,
    therapeutic_dose_range,
)
from dosezoo.errors import DataError

# The slide "Dose optimization after dose expansion: randomized phase 2 with Pick-the-Winner
# approach", read row by row (DL B) and column by column (DL A; "Continue" is Go), and what
# each cell decides with P(ORR_A > ORR_B) above (0.9) and below (0.5) delta = 0.8.
SLIDE = [
    # status_b, status_a, cell text, choice if p > delta, choice if p < delta
    ("no-go", "no-go", "No-Go", "no-go", "no-go"),
    ("no-go", "consider", "Consider DL A", "A", "A"),
    ("no-go", "go", "Go DL A", "A", "A"),
    ("consider", "no-go", "Consider DL B", "B", "B"),
    ("consider", "consider", "Pick-the-winner for Consider", "A", "B"),
    ("consider", "go", "Pick-the-winner for Go", "A", "B"),
    ("go", "no-go", "Go DL B", "B", "B"),
    ("go", "consider", "Pick-the-winner for Go", "A", "B"),
    ("go", "go", "Pick-the-winner for Go", "A", "B"),
]


@pytest.mark.parametrize(("status_b", "status_a", "cell", "high", "low"), SLIDE)
def test_the_matrix_reproduces_the_slide_cell_by_cell(status_b, status_a, cell, high, low):
    assert pick_the_winner_cell(status_a, status_b) == cell
    assert PTW_MATRIX[(status_b, status_a)] == cell
    assert pick_the_winner(status_a, status_b, 0.9, 0.8) == high
    assert pick_the_winner(status_a, status_b, 0.5, 0.8) == low


def test_the_higher_dose_needs_p_strictly_above_delta():
    assert pick_the_winner("go", "go", 0.8, 0.8) == "B"
    assert pick_the_winner("go", "go", 0.8000001, 0.8) == "A"
    assert len(PTW_MATRIX) == 9


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("continue", "go", 0.5, 0.8), "status_a"),
        (("go", "Go", 0.5, 0.8), "status_b"),
        (("go", "go", 1.5, 0.8), "p_a_better"),
        (("go", "go", 0.5, -0.1), "delta"),
        (("go", "go", float("nan"), 0.8), "p_a_better"),
    ],
)
def test_bad_input_raises_a_data_error_naming_the_argument(args, match):
    with pytest.raises(DataError, match=match):
        pick_the_winner(*args)


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb", "prior"),
    [
        (12, 30, 8, 30, (1, 1)),
        (0, 20, 5, 20, (1, 1)),
        (15, 25, 14, 40, (0.5, 0.5)),
        (3, 3, 0, 3, (1, 2)),
    ],
)
def test_p_a_better_matches_quadrature(xa, na, xb, nb, prior):
    a, b = prior
    expected, _ = integrate.quad(
        lambda p: beta.pdf(p, a + xa, b + na - xa) * beta.cdf(p, a + xb, b + nb - xb), 0, 1
    )
    assert prob_a_better(xa, na, xb, nb, prior) == pytest.approx(expected, abs=1e-8)


def test_the_dual_criterion_against_its_definition():
    criteria = ArmCriteria(lrv=0.2, tv=0.35, c_lrv=0.8, c_tv=0.1)
    n = 30
    statuses = criteria.status(np.arange(n + 1), np.full(n + 1, n))
    for x, status in enumerate(statuses):
        above_lrv = beta.sf(0.2, 1 + x, 1 + n - x)
        above_tv = beta.sf(0.35, 1 + x, 1 + n - x)
        if above_lrv >= 0.8 and above_tv >= 0.1:
            assert status == "go", x
        elif above_lrv < 0.8 and above_tv < 0.1:
            assert status == "no-go", x
        else:
            assert status == "consider", x
    assert set(statuses) == {"go", "consider", "no-go"}  # all three occur at n = 30
    with pytest.raises(ValueError, match="lrv"):
        ArmCriteria(lrv=0.4, tv=0.3)
    with pytest.raises(DataError, match="responses"):
        criteria.status(np.array([5]), np.array([3]))


def test_the_stage_simulation_is_reproducible_and_sensible():
    a_better = PickTheWinnerScenario(0.45, 0.25)
    first = simulate_pick_the_winner(a_better, n_trials=400, random_seed=3)
    again = simulate_pick_the_winner(a_better, n_trials=400, random_seed=3)
    assert first == again
    total = first["p_select_a"] + first["p_select_b"] + first["p_no_go"]
    assert total == pytest.approx(1.0)
    assert first["p_select_better"] == first["p_select_a"] > 0.6
    assert first["expected_n"] == 60
    poor = simulate_pick_the_winner(PickTheWinnerScenario(0.1, 0.08), n_trials=400, random_seed=3)
    assert poor["p_no_go"] > 0.8
    # An interim look drops hopeless arms: fewer patients on average.
    interim = simulate_pick_the_winner(
        PickTheWinnerScenario(0.1, 0.08),
        PickTheWinnerStage(n_per_arm=30, interim_fraction=0.5),
        n_trials=400,
        random_seed=3,
    )
    assert interim["expected_n"] < 60


def test_the_stage_uses_common_random_numbers():
    stage = PickTheWinnerStage(n_per_arm=20)
    uniforms = np.random.default_rng(1).random((50, 2, 20))
    low = stage.run(np.full(50, 0.2), np.full(50, 0.2), uniforms)
    high = stage.run(np.full(50, 0.4), np.full(50, 0.2), uniforms)
    # Same patients: raising A's rate can only add responders in arm A.
    assert np.all(high["responses_a"] >= low["responses_a"])
    np.testing.assert_array_equal(high["responses_b"], low["responses_b"])


def test_the_dose_range_runs_from_the_minimum_active_dose_to_the_mtd():
    p_eff = [0.1, 0.6, 0.8, 0.9, 0.95]
    p_od = [0.0, 0.01, 0.05, 0.2, 0.6]
    dose_range = therapeutic_dose_range(p_eff, p_od, [3, 3, 6, 9, 3])
    assert (dose_range.mad, dose_range.mtd) == (1, 3)
    assert dose_range.levels == (1, 2, 3)
    assert dose_range.rp2s == (3, 2)  # DL A (higher), DL B
    # An untried dose is never in the range; the overdose cut-off moves the MTD.
    assert therapeutic_dose_range(p_eff, p_od, [3, 3, 6, 0, 0]).mtd == 2
    assert therapeutic_dose_range(p_eff, p_od, [3, 3, 6, 9, 3], overdose_cutoff=0.1).mtd == 2
    # No active dose: no range.
    none = therapeutic_dose_range([0.1] * 5, p_od, [3] * 5)
    assert none.levels == () and none.rp2s == ()
    with pytest.raises(DataError, match=r"p_overdose\[1\]"):
        therapeutic_dose_range(p_eff, [0.0, 1.2, 0, 0, 0], [3] * 5)


def test_a_dose_the_design_excluded_bounds_the_range_whatever_its_estimate():
    # The joint probit design excludes a dose whose P(overdose) estimate is within its Monte
    # Carlo error of the cut-off: 0.246 <= 0.25 counted as allowed, and the path treated there.
    p_eff, n_at = [0.9, 0.9, 0.9], [9, 6, 3]
    p_od = [0.246, 0.1, 0.1]
    assert therapeutic_dose_range(p_eff, p_od, n_at).levels == (0, 1, 2)
    assert therapeutic_dose_range(p_eff, p_od, n_at, excluded=[True] * 3).levels == ()
    middle = therapeutic_dose_range(p_eff, p_od, n_at, excluded=[False, True, False])
    assert middle.levels == (0,)  # and the doses above an excluded one
    with pytest.raises(DataError, match=r"excluded must be one bool per level \(3\)"):
        therapeutic_dose_range(p_eff, p_od, n_at, excluded=[0.0, 1.0, 0.0])


def test_one_arm_takes_the_interim_look_as_each_of_two_does():
    stage = PickTheWinnerStage(n_per_arm=20, interim_fraction=0.5)
    uniforms = np.random.default_rng(3).random((400, 2, 20))
    orr = np.full(400, 0.2)
    two = stage.run(orr, orr, uniforms)
    one = stage.run_one_arm(orr, uniforms[:, 0])
    np.testing.assert_array_equal(one["n"], two["n_a"])
    np.testing.assert_array_equal(one["responses"], two["responses_a"])
    np.testing.assert_array_equal(one["status"], two["status_a"])
    # Dropped at the interim: its 10 patients, No-Go on their responses.
    dropped = one["n"] == 10
    assert 0 < dropped.sum() < 400
    early = (uniforms[:, 0, :10] < 0.2).sum(axis=1)
    np.testing.assert_array_equal(stage.criteria.status(early, 10) == "no-go", dropped)
    assert np.all(one["status"][dropped] == "no-go")


@pytest.mark.parametrize(
    ("responses", "n", "message"),
    [
        (math.nan, 10, r"responses must be whole numbers >= 0, got nan"),
        (3, math.nan, r"n must be whole numbers >= 1, got nan"),
        (2.5, 10, r"responses must be whole numbers >= 0, got 2.5"),
        (0, 0, r"n must be whole numbers >= 1, got 0.0"),
    ],
)
def test_an_arm_assessment_names_counts_that_are_not_counts(responses, n, message):
    # Were a silent "no-go" (NaN), "consider" (2.5 responses) and "go" for an arm without
    # patients (the Beta(1, 1) prior alone has P(ORR > 0.2) = 0.8, the LRV criterion).
    with pytest.raises(DataError, match=message):
        ArmCriteria().status(responses, n)


def test_a_dose_the_escalation_skipped_is_neither_in_the_range_nor_randomised():
    # Levels 0 and 2 given, 1 skipped: level 1 was randomised as DL B (with a prior-only
    # P(overdose) of 0.6), though the range holds only doses given to patients.
    skipped = therapeutic_dose_range([0.7, 0.5, 0.9], [0.02, 0.6, 0.1], [3, 0, 6])
    assert (skipped.mad, skipped.mtd) == (0, 2)
    assert skipped.levels == (0, 2)
    assert skipped.rp2s == (2, 0)


@pytest.mark.parametrize("count", [math.nan, -3.0, 2.5])
def test_a_count_of_patients_that_is_not_whole_is_named(count):
    # A NaN or negative count was read as an untried dose.
    with pytest.raises(DataError, match=r"n_at\[1\] must be a whole number >= 0, got"):
        therapeutic_dose_range([0.9] * 3, [0.0] * 3, [3, count, 3])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0, 3, 0, 3, (0, 0)), r"prior's shapes must lie in \(0, 100000\], got \(0, 0\)"),
        ((-1, 3, 0, 3), "responses_a must be an integer >= 0, got -1"),
        ((0, 3, 4, 3), "responses_b=4 exceeds n_b=3 patients"),
        ((0, 3, 0, 3, (1e300, 1e300)), "prior's shapes must lie in"),
        ((10**15, 10**16, 0, 3), "n_a must be at most 100000, got 10000000000000000"),
        ((0, 3, 0, 3, (1.0,)), r"prior must be two Beta shapes \(a, b\)"),
    ],
)
def test_p_a_better_refuses_impossible_arms_by_name(arguments, message):
    # They returned 0 for identical arms under a (0, 0) prior and for -1 responses, a
    # RuntimeWarning past n, and numpy's allocation errors for huge counts or shapes.
    with pytest.raises(ValueError, match=message):
        prob_a_better(*arguments)
