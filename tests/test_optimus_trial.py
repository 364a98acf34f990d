"""The whole Project Optimus trial (escalation, dose range, pick-the-winner) against the
MTD-only path, on count designs so that it stays fast."""

import numpy as np
import pytest

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
