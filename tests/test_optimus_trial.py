"""The whole Project Optimus trial (escalation, dose range, pick-the-winner) against the
MTD-only path, on count designs so that it stays fast."""

import numpy as np
import pytest
import xarray as xr

from dosezoo.designs import PickTheWinnerStage, boin12_design, boin_design
from dosezoo.scenarios import EffToxScenario
from dosezoo.simulate import simulate
from dosezoo.studies import (
    compare_optimus_paths,
    mtd_only_path,
    optimal_level,
    optimus_path,
    optimus_scenarios,
)

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)


def test_the_six_scenarios_and_their_optimal_doses():
    scenarios = optimus_scenarios()
    assert set(scenarios) == {
        "monotone",
        "plateau",
        "bell",
        "flat-efficacy",
        "all-toxic",
        "all-safe",
    }
    # The lowest dose as active as the best acceptable one (within 0.05).
    expected = {
        "monotone": 3,
        "plateau": 2,
        "bell": 2,
        "flat-efficacy": 0,
        "all-toxic": -1,
        "all-safe": 4,
    }
    assert {name: optimal_level(s) for name, s in scenarios.items()} == expected


def test_the_optimus_path_adds_the_stage_to_the_escalation():
    scenario = optimus_scenarios()["plateau"]
    design = boin12_design(0.3, LEVELS, efficacy_limit=0.2)
    ds = simulate(design, scenario, 80, random_seed=11, progress=False)
    stage = PickTheWinnerStage(n_per_arm=20)
    path = optimus_path(ds, scenario, stage, random_seed=11)
    again = optimus_path(ds, scenario, stage, random_seed=11)
    for name in path:
        np.testing.assert_array_equal(path[name], again[name])
    escalation = ds["n_treated"].values
    np.testing.assert_array_equal(path["sample_size"], escalation + path["stage_n"])
    assert set(np.unique(path["stage_n"])) <= {0.0, 20.0, 40.0}
    final = path["final_level"]
    # The final dose is a dose of the trial's range, or none.
    assert np.all((final == -1) | (final >= 0))
    np.testing.assert_array_equal(path["ends_optimal"], (final == 2).astype(float))
    mtd = mtd_only_path(ds, scenario)
    np.testing.assert_array_equal(mtd["sample_size"], escalation)
    assert np.all(path["patients_above_mtd"] >= mtd["patients_above_mtd"])


def test_the_comparison_uses_common_random_numbers_and_is_reproducible(tmp_path):
    scenario = EffToxScenario(
        LEVELS,
        (0.03, 0.08, 0.15, 0.25, 0.40),
        (0.30, 0.31, 0.32, 0.33, 0.34),
        rho=0.3,
        planned_sample_size=36,
    )
    design = boin12_design(0.3, LEVELS, efficacy_limit=0.2)
    first = compare_optimus_paths(
        design, boin_design(0.25, LEVELS), scenario, n_trials=60, random_seed=3
    )
    second = compare_optimus_paths(
        design, boin_design(0.25, LEVELS), scenario, n_trials=60, random_seed=3
    )
    assert first == second
    # kept in files, as simulate keeps them, the comparison is the same and resumes from them
    paths = {"optimus": tmp_path / "optimus.nc", "mtd_only": tmp_path / "mtd_only.nc"}
    kept = compare_optimus_paths(
        design, boin_design(0.25, LEVELS), scenario, n_trials=60, random_seed=3, paths=paths
    )
    assert kept == first
    assert all(path.is_file() for path in paths.values())
    # The same escalation design on both paths sees the same patients: same escalation size.
    same = compare_optimus_paths(design, design, scenario, n_trials=60, random_seed=3)
    assert same["optimus"]["sample_size"] == pytest.approx(
        same["mtd_only"]["sample_size"] + same["optimus"]["stage_n"]
    )


def test_a_range_of_one_dose_takes_the_interim_look():
    # A range of one dose ran all 30 patients of its arm even when the interim look at 15 was
    # No-Go, while each arm of two stopped there.
    scenario = optimus_scenarios()["flat-efficacy"]
    ds = simulate(boin_design(0.25, LEVELS), scenario, 200, random_seed=2026, progress=False)
    stage = PickTheWinnerStage(interim_fraction=0.5)
    path = optimus_path(ds, scenario, stage, random_seed=2026)
    one = path["range_size"] == 1
    dropped = one & (path["stage_n"] == stage.interim)
    assert one.sum() > dropped.sum() > 0
    assert set(path["stage_n"][one]) == {stage.interim, stage.n_per_arm}
    assert np.all(path["final_level"][dropped] == -1)


def _joint_probit_trial(p_overdose: float, excluded: bool) -> xr.Dataset:
    """One escalation of 9 patients at the lowest dose, as the joint probit design records it:
    its summaries at the recommendation, P(overdose) and its overdose control's verdict."""
    levels = len(LEVELS)
    patients = {"dose": [10.0] * 9, "dlt": [1, 1, 0, 1, 0, 0, 1, 0, 0], "efficacy": [1] * 9}
    data = {name: (("trial", "patient"), [values]) for name, values in patients.items()}
    data["decision_kind"] = (("trial", "decision"), [["next", "recommend"]])
    for k in range(levels):
        for name, value in (
            ("p_efficacious", 0.9),
            ("p_overdose", p_overdose if k == 0 else 0.9),
            ("excluded", float(excluded or k > 0)),
        ):
            data[f"decision_{name}_{k}"] = (("trial", "decision"), [[value, value]])
    return xr.Dataset(data)


def test_the_range_keeps_out_a_dose_the_design_excluded():
    # The joint probit design stopped for safety (its P(overdose) at the lowest dose within its
    # Monte Carlo error of the cut-off 0.25); the path read the estimate 0.246 alone and ran a
    # stage of 30 patients at that dose.
    scenario = optimus_scenarios()["all-toxic"]
    stage = PickTheWinnerStage()
    stopped = optimus_path(_joint_probit_trial(0.246, True), scenario, stage, random_seed=1)
    assert stopped["range_size"][0] == 0 and stopped["stage_n"][0] == 0
    assert stopped["no_dose"][0] == 1.0
    allowed = optimus_path(_joint_probit_trial(0.246, False), scenario, stage, random_seed=1)
    assert allowed["range_size"][0] == 1 and allowed["stage_n"][0] == stage.n_per_arm
