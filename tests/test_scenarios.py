"""Scenarios of Lee (2023), and the simulation engine running the real 3PND design."""

import importlib
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import ndtr

from dosezoo.data import TrialData
from dosezoo.datasets import o6bg_frame
from dosezoo.designs import Decision, MTDQuantileRule, mtd_quantile_design
from dosezoo.models import ThreePND
from dosezoo.scenarios import (
    SENO2025_DOSE_LEVELS,
    SENO2025_SCENARIOS,
    BinaryToxicityScenario,
    ContinuousToxicityScenario,
    O6BGResampling,
    seno2025_scenario,
    seno2025_target,
    weibull_scenario,
    willard2024_scenario,
)
from dosezoo.scenarios.registry import SCENARIO_TYPES
from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.studies import (
    lee2023_configurations,
    o6bg_arms,
    o6bg_design,
    o6bg_ewoc_design,
    o6bg_replicates,
    o6bg_trial,
)

TRUTH = {"true_mtd": 50.0, "nu": 1.4, "sigma": 0.1, "eta": 3.0, "gamma": 0.9, "x_min": 5.0}


def test_the_true_mtd_has_the_target_toxicity():
    scenario = ContinuousToxicityScenario(**TRUTH)
    mean = scenario.mean_response(np.array([scenario.true_mtd]))[0]
    assert 1 - ndtr((scenario.eta - mean) / scenario.sigma) == pytest.approx(1 - scenario.gamma)
    y = scenario.respond(np.full(20000, 30.0), np.random.default_rng(0))["y"]
    assert y.mean() == pytest.approx(scenario.mean_response(np.array([30.0]))[0], abs=0.005)
    assert y.std() == pytest.approx(0.1, rel=0.03)


def test_lee2023_metrics():
    scenario = ContinuousToxicityScenario(**TRUTH)
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [6.0, 30.0, 52.0, 48.0], "y": [0.1, 1.2, 3.05, 2.9]})
    )
    metrics = scenario.trial_metrics(data, Decision(49.0))
    assert metrics == pytest.approx(
        {
            "NPD": 1.0,
            "NPO": 1.0,
            "BTM": -2.0,
            "RMSE": 0.04,
            "BTM_recommended": -1.0,
            "RMSE_recommended": 0.02,
        }
    )
    stopped = scenario.trial_metrics(data, Decision(None, stop_reason="toxicity"))
    assert math.isnan(stopped["BTM"]) and stopped["NPD"] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nu": 0.0}, "nu must be > 0"),
        ({"gamma": 1.0}, r"gamma must lie in \(0.5, 1\)"),
        ({"true_mtd": 4.0}, "true_mtd must exceed x_min"),
        ({"sigma": 5.0}, "so that the MTD exists"),
        ({"eta": float("nan")}, "eta must be finite"),
    ],
)
def test_scenario_is_validated(change, message):
    with pytest.raises(ValueError, match=message):
        ContinuousToxicityScenario(**(TRUTH | change))


def test_o6bg_resampling_draws_perturbed_trial_values():
    scenario = O6BGResampling()
    frame = o6bg_frame()
    rng = np.random.default_rng(1)
    for dose, width in ((40.0, 8.0), (100.0, 2.0)):
        agt = 60.0 - scenario.respond(np.full(5000, dose), rng)["y"]
        values = frame.loc[frame["dose"] == dose, "agt"].to_numpy()
        distance = np.min(np.abs(agt[:, None] - values[None, :]), axis=1)
        assert distance.max() <= width
        assert agt.mean() == pytest.approx(values.mean(), abs=4 * width / np.sqrt(5000) + 0.5)
    at_120 = 60.0 - scenario.respond(np.full(2000, 120.0), rng)["y"]
    assert at_120.min() >= frame.loc[frame["dose"] == 100.0, "agt"].min() - 2.0
    with pytest.raises(ValueError, match="below every level with data"):
        scenario.respond(np.array([30.0]), rng)
    with pytest.raises(ValueError, match=r"no perturbation for the dose levels \[60.0\]"):
        O6BGResampling(perturbation={40.0: 8.0, 80.0: 4.0, 100.0: 2.0})


def test_o6bg_dichotomised_responses_are_the_same_patients():
    plain, binary = O6BGResampling(), O6BGResampling(dichotomise=True)
    doses = np.repeat([40.0, 60.0, 80.0, 100.0, 120.0], 400)
    y = plain.respond(doses, np.random.default_rng(5))
    both = binary.respond(doses, np.random.default_rng(5))
    np.testing.assert_array_equal(both["y"], y["y"])  # same draws, same patients
    agt = 60.0 - both["y"]
    np.testing.assert_array_equal(both["dlt"], (agt < 5.0).astype(int))
    assert 0 < both["dlt"][doses == 100.0].mean() < 1 and both["dlt"][doses == 40.0].sum() == 0
    assert (plain.outcomes, binary.outcomes) == (("y",), ("y", "dlt"))
    assert "dlt" not in plain.describe() and binary.describe()["dlt"].startswith("1(AGT < 5")
    assert SCENARIO_TYPES["o6bg"].build(dichotomise=True) == binary
    with pytest.raises(ValueError, match="dichotomise must be True or False"):
        O6BGResampling(dichotomise="yes")


def test_o6bg_ewoc_design_matches_table_3():
    design = o6bg_ewoc_design(0.1)
    model, rule = design.model, design.rule
    assert (model.theta, model.x_min, model.x_max) == (0.4, 20.0, 140.0)
    assert model.rho0_prior == model.mtd_prior == (1.0, 1.0)  # uniform priors
    assert (rule.alpha, rule.doses, rule.no_skipping) == (0.1, "levels", True)
    assert (design.cohort_size, design.sample_size, design.start_dose) == (3, 30, 40.0)


def test_o6bg_arms_treat_the_same_patients():
    arms = o6bg_arms()
    assert len(arms) == 8
    seeded = {
        name: o6bg_trial(design.rule.alpha, 11, design=design, scenario=scenario)
        for name, (design, scenario) in arms.items()
        if name in ("3PND, accelerated", "3PND level-aware, accelerated", "EWOC, accelerated")
    }
    first = {name: trial["agt"][:3] for name, trial in seeded.items()}  # all start at 40
    assert len({tuple(agt) for agt in first.values()}) == 1
    ewoc = seeded["EWOC, accelerated"]
    assert ewoc["n_agt_below_5"] == sum(a < 5.0 for a in ewoc["agt"])


def test_o6bg_seeded_trial_is_reproducible_and_monotone():
    first, again = o6bg_trial(0.1, 7), o6bg_trial(0.1, 7)
    assert first == again
    assert first["cohort_doses"][0] == 40.0
    assert first["cohort_doses"] == sorted(first["cohort_doses"])
    assert len(first["agt"]) == 30


def test_study_has_the_36_configurations_of_table_1():
    configurations = lee2023_configurations()
    assert len(configurations) == 36
    assert len({c.name for c in configurations}) == 36
    cells = {(c.labels["design"], c.labels["N"], c.labels["nu0"]) for c in configurations}
    designs = {"FSAD (acc)", "FSAD (std)", "CSAD (acc)", "CSAD (std)"}
    assert cells == set(itertools.product(designs, (18, 30, 45), (0.6, 1.0, 1.4)))
    standard = next(c for c in configurations if c.labels["design"] == "CSAD (std)")
    assert (standard.design.model.gamma, standard.design.rule.alpha) == (0.99, 0.001)
    assert standard.design.cohort_size == 3


@pytest.fixture(scope="module")
def small_design():
    model = ThreePND(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, delta=0.1)
    return mtd_quantile_design(
        model, MTDQuantileRule(alpha=0.01), start_dose=6.0, cohort_size=3, sample_size=9
    )


def test_3pnd_simulation_is_identical_for_any_number_of_workers(small_design):
    scenario = ContinuousToxicityScenario(**TRUTH)
    serial = simulate(small_design, scenario, 6, random_seed=11, progress=False)
    parallel = simulate(small_design, scenario, 6, random_seed=11, n_jobs=2, progress=False)
    xr.testing.assert_identical(serial.drop_attrs(), parallel.drop_attrs())
    # More workers asked for than there are batches (joblib overflowed a C int here): no
    # more start than the batches or the CPUs, whichever are more.
    many = simulate(small_design, scenario, 6, random_seed=11, n_jobs=10**12, progress=False)
    xr.testing.assert_identical(serial.drop_attrs(), many.drop_attrs())
    assert np.all(serial["dose"].isel(patient=slice(0, 3)) == 6.0)
    summary = operating_characteristics(serial)
    assert set(summary["metric"].values) >= {"NPD", "NPO", "BTM", "RMSE"}


class Interrupted(Exception):
    pass


@dataclass(frozen=True)
class FailingAfter(ContinuousToxicityScenario):
    """The same truth, but the run is killed after a number of cohorts."""

    budget: list = None

    def respond(self, doses, rng):
        if not self.budget:
            raise Interrupted
        self.budget.pop()
        return super().respond(doses, rng)

    def describe(self):
        return ContinuousToxicityScenario(**TRUTH).describe()


def test_3pnd_simulation_resumes_without_losing_or_repeating_trials(small_design, tmp_path):
    scenario = ContinuousToxicityScenario(**TRUTH)
    reference = simulate(small_design, scenario, 6, random_seed=5, progress=False)
    path = tmp_path / "run.nc"
    killed = FailingAfter(**TRUTH, budget=[None] * 10)  # 3 trials and a third of the 4th
    with pytest.raises(Interrupted):
        simulate(
            small_design,
            killed,
            6,
            random_seed=5,
            path=path,
            batch_size=1,
            progress=False,
            save_every=0,
        )
    del killed
    saved = sorted((tmp_path / "run.nc.parts").glob("trials-*.batch"))
    assert len(saved) == 3
    resumed = simulate(small_design, scenario, 6, random_seed=5, path=path, progress=False)
    xr.testing.assert_identical(reference.drop_attrs(), resumed.drop_attrs())
    assert xr.load_dataset(path, engine="h5netcdf").sizes["trial"] == 6


def test_o6bg_design_matches_lee2023():
    design = o6bg_design(0.05)
    assert (design.cohort_size, design.sample_size, design.start_dose) == (3, 30, 40.0)
    assert design.rule.monotone and design.rule.dose_levels == (40.0, 60.0, 80.0, 100.0, 120.0)
    assert design.model.parameters() == {
        "eta": 55.0,
        "gamma": 0.6,
        "x_min": 20.0,
        "x_max": 140.0,
        "delta": 0.5,
        "dose_unit": "mg/m^2",
    }


def test_o6bg_replicates_summarise_the_final_doses(tmp_path):
    summary = o6bg_replicates(0.1, 4, 3)
    path = tmp_path / "replicates.nc"
    assert o6bg_replicates(0.1, 4, 3, path=path) == summary
    assert path.is_file()
    assert summary["mean_sample_size"] == 30.0 and summary["mean_sample_size_se"] == 0.0
    assert summary["mean_n_agt_below_5_se"] >= 0.0
    assert sum(summary["final_dose"].values()) == pytest.approx(1.0)
    assert sum(summary["recommended"].values()) == pytest.approx(1.0)
    assert 0.0 <= summary["p_any_patient_above_100"] <= 1.0


def test_o6bg_summary_gives_each_share_its_monte_carlo_se():
    # The shares had no SE; the share of decisions is a ratio over trials whose decisions are
    # not independent, so its SE is checked against a bootstrap of the trials.
    from dosezoo.studies import o6bg_design, o6bg_scenario, o6bg_simulate, o6bg_summary

    results = o6bg_simulate(o6bg_design(0.25), o6bg_scenario(), 40, 5, 1)
    summary = o6bg_summary(results, 0.25, 5)
    n = results.sizes["trial"]
    for name in ("p_any_patient_above_100", "share_recommended_over_limit"):
        p = summary[name]
        assert summary[f"{name}_se"] == pytest.approx(np.sqrt(p * (1 - p) / n))
    for level, p in summary["final_dose"].items():
        assert summary["final_dose_se"][level] == pytest.approx(np.sqrt(p * (1 - p) / n))
    rng = np.random.default_rng(1)
    boot = [
        o6bg_summary(results.isel(trial=rng.integers(0, n, n)), 0.25, 5)[
            "share_decisions_over_bound"
        ]
        for _ in range(300)
    ]
    assert 0 < summary["share_decisions_over_bound"] < 1
    assert summary["share_decisions_over_bound_se"] == pytest.approx(np.std(boot), rel=0.3)


def test_seno2025_table1():
    assert [seno2025_target(n) for n in (1, 10, 11, 20)] == [0.2, 0.2, 0.3, 0.3]
    with pytest.raises(ValueError, match=r"Seno et al\. \(2025\) scenario must be one of 1\.\.20"):
        seno2025_target(21)
    scenario = seno2025_scenario(13)
    assert scenario.dose_levels == SENO2025_DOSE_LEVELS
    assert scenario.p_true == SENO2025_SCENARIOS[13] and scenario.target == 0.3
    assert scenario.mtd_level == 1 and scenario.planned_sample_size == 36


def test_the_package_exports_every_public_name_of_its_modules():
    import dosezoo.scenarios as package

    for family in ("continuous", "binary", "efftox", "seno2025"):
        module = importlib.import_module(f"dosezoo.scenarios.{family}")
        for name in module.__all__:
            assert name in package.__all__ and getattr(package, name) is getattr(module, name)


def test_a_scenario_whose_every_dose_is_too_toxic_has_no_mtd():
    # With no_mtd_above, stopping without an MTD is the correct selection and every patient
    # is overdosed; by default the closest level is the MTD whatever its rate.
    levels = (10.0, 20.0, 40.0)
    toxic = BinaryToxicityScenario(
        levels, (0.6, 0.7, 0.8), 0.25, planned_sample_size=12, no_mtd_above=0.4
    )
    assert toxic.mtd_level == -1 and toxic.describe()["mtd_dose"] is None
    n, y = np.array([[6, 3, 0], [3, 0, 0]]), np.array([[4, 2, 0], [3, 0, 0]])
    metrics = toxic.metrics_at_counts(n, y, np.array([0, -1]), np.array([9, 3]))
    assert metrics["correct_selection"].tolist() == [0.0, 1.0]
    assert metrics["overdose_selection"].tolist() == [1.0, 0.0]
    assert metrics["n_overdosed_fraction"].tolist() == [1.0, 1.0]
    assert metrics["n_at_mtd_fraction"].tolist() == [0.0, 0.0]
    closest = BinaryToxicityScenario(levels, (0.6, 0.7, 0.8), 0.25, planned_sample_size=12)
    assert closest.mtd_level == 0
    mild = BinaryToxicityScenario(
        levels, (0.3, 0.7, 0.8), 0.25, planned_sample_size=12, no_mtd_above=0.4
    )
    assert mild.mtd_level == 0  # one level within the bound: the closest is the MTD
    with pytest.raises(ValueError, match="no_mtd_above must exceed the target"):
        BinaryToxicityScenario(
            levels, (0.6, 0.7, 0.8), 0.25, planned_sample_size=12, no_mtd_above=0.2
        )


def test_levels_tied_for_the_mtd_are_all_correct_and_a_safer_level_is_no_overdose():
    # Two levels at the target's rate were scored as one MTD and one overdose (PCS 0.39 for
    # 0.70 with BOIN), and with rates falling above the MTD a safer level counted as an
    # overdose: a level is an overdose when its rate exceeds the MTD's.
    levels = (10.0, 20.0, 40.0, 80.0)
    tied = BinaryToxicityScenario(levels, (0.05, 0.3, 0.3, 0.6), 0.3, planned_sample_size=12)
    assert tied.mtd_level == 1 and tied.mtd_levels == (1, 2)
    assert tied.describe()["mtd_doses"] == "20,40"
    n, y = np.array([[3, 3, 6, 0]] * 4), np.zeros((4, 4), dtype=int)
    metrics = tied.metrics_at_counts(n, y, np.array([1, 2, 3, -1]), np.array([12] * 4))
    assert metrics["correct_selection"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert metrics["overdose_selection"].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert metrics["n_at_mtd_fraction"].tolist() == [0.75] * 4
    assert metrics["n_overdosed_fraction"].tolist() == [0.0] * 4
    falling = BinaryToxicityScenario(levels, (0.5, 0.3, 0.1, 0.6), 0.3, planned_sample_size=12)
    metrics = falling.metrics_at_counts(n, y, np.array([0, 1, 2, 3]), np.array([12] * 4))
    assert metrics["overdose_selection"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert metrics["n_overdosed_fraction"].tolist() == [0.25] * 4  # the 3 at level 0


def test_the_report_marks_every_tied_mtd():
    from dosezoo.designs import boin_design
    from dosezoo.report import targets

    levels = (10.0, 20.0, 40.0, 80.0)
    tied = BinaryToxicityScenario(levels, (0.05, 0.3, 0.3, 0.6), 0.3, planned_sample_size=12)
    results = simulate(boin_design(0.3, levels), tied, 4, random_seed=1, progress=False)
    assert targets(results) == [20.0, 40.0]


def test_the_report_of_a_scenario_without_an_mtd_marks_no_dose():
    from dosezoo.designs import boin_design
    from dosezoo.report import per_dose, targets

    levels = (10.0, 20.0, 40.0)
    toxic = BinaryToxicityScenario(
        levels, (0.6, 0.7, 0.8), 0.25, planned_sample_size=12, no_mtd_above=0.4
    )
    results = simulate(boin_design(0.25, levels), toxic, 8, random_seed=1, progress=False)
    assert results.attrs["scenario_mtd_dose"] == "none"
    assert targets(results) == []
    table = per_dose(results)
    assert table["targets"] == [] and table["no_selection"]["fraction"] == 1.0


@pytest.mark.parametrize(
    ("scenario", "doses", "message"),
    [
        # nu = 0.6: (4 - x_min)^nu is NaN, which the data then blamed on the response.
        (
            ContinuousToxicityScenario(**{**TRUTH, "nu": 0.6}),
            [4.0, 4.0],
            r"dose 4\.0 \(patient 0\) lies outside the scenario's dose range \[5, inf\]",
        ),
        (weibull_scenario("I", 1.0, None), [0.5, 1.5], r"dose 1\.5 \(patient 1\) lies outside"),
        (willard2024_scenario("1"), [[1.5, -0.2]], r"dose 1\.5 \(patient 0\) lies outside"),
        (willard2024_scenario("1"), [[0.5], [0.5]], r"combinations of two doses, \(n, 2\)"),
    ],
)
def test_scenarios_refuse_doses_off_their_range(scenario, doses, message):
    with pytest.raises(ValueError, match=message):
        scenario.respond(np.asarray(doses), np.random.default_rng(0))
