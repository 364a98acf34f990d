"""Combination BO (Willard et al. 2024): EI/AEI, the Sobol start, Algorithms 1-2, scenarios."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs import (
    CombinationBORule,
    augmented_expected_improvement,
    combination_bo_design,
    expected_improvement,
    sobol_start,
)
from dosezoo.designs.combination_bo import effective_best
from dosezoo.errors import DataError
from dosezoo.models import GPSurface
from dosezoo.posterior import DosePosterior, NormalLevels
from dosezoo.scenarios import willard2024_scenario
from dosezoo.simulate import run_trial, simulate

# --------------------------------------------------------------------------- acquisitions


def test_expected_improvement_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean = np.array([-1.0, 0.0, 0.3, 2.0, -0.2])
    sd = np.array([0.5, 1.0, 0.2, 3.0, 1e-3])
    best = 0.1
    draws = mean + sd * rng.standard_normal((400_000, mean.size))
    improvement = np.maximum(best - draws, 0.0)
    monte_carlo = improvement.mean(axis=0)
    error = improvement.std(axis=0) / math.sqrt(draws.shape[0])
    closed = expected_improvement(mean, sd, best)
    assert np.all(np.abs(closed - monte_carlo) < 4 * error + 1e-12)
    np.testing.assert_allclose(expected_improvement([1.0, -1.0], [0.0, 0.0], 0.0), [0.0, 1.0])


def test_aei_is_at_most_ei_and_vanishes_with_the_posterior_sd():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=200)
    sd = rng.gamma(1.0, size=200)
    best = float(mean.min())
    ei = expected_improvement(mean, sd, best)
    aei = augmented_expected_improvement(mean, sd, best, noise_sd=0.7)
    assert np.all(aei <= ei + 1e-15) and np.all(aei >= 0)
    shrinking = np.logspace(0, -8, 9)
    values = augmented_expected_improvement(np.full(9, best - 1.0), shrinking, best, 0.5)
    assert np.all(np.diff(values) < 0) and values[-1] < 1e-7
    assert augmented_expected_improvement([0.0], [0.0], 1.0, 0.5)[0] == 0.0
    with pytest.raises(ValueError, match="noise_sd"):
        augmented_expected_improvement([0.0], [1.0], 0.0, 0.0)


def test_effective_best_point_is_the_84_percent_quantile_minimiser():
    index, f_star = effective_best([0.0, -1.0, -0.5], [0.1, 2.0, 0.1])
    assert (index, f_star) == (2, -0.5)
    assert effective_best([0.0, -1.0, -0.5], [0.1, 2.0, 0.1], gamma=0.0) == (1, -1.0)


# --------------------------------------------------------------------------- Sobol start


def test_sobol_start_is_reproducible_from_the_seed_and_on_the_grid():
    model = GPSurface()
    first = sobol_start(model, 10, random_seed=3)
    np.testing.assert_array_equal(first, sobol_start(model, 10, random_seed=3))
    assert not np.array_equal(first, sobol_start(model, 10, random_seed=4))
    grid = {tuple(point) for point in model.grid}
    assert all(tuple(point) in grid for point in first)
    assert len({tuple(point) for point in first}) == 10
    design = combination_bo_design(model, random_seed=3, n_initial=10, cohort_size=2)
    np.testing.assert_array_equal(design.rule.initial_design, first)
    seeded = combination_bo_design(model, random_seed=9, sobol_seed=3, n_initial=10, cohort_size=2)
    np.testing.assert_array_equal(seeded.rule.initial_design, first)
    boxed = sobol_start(GPSurface(dose_bounds=[(10, 50), (1, 3)]), 5, random_seed=3)
    assert set(boxed[:, 0]) <= {10.0, 20.0, 30.0, 40.0, 50.0}
    with pytest.raises(ValueError, match="exceeds the 25 grid combinations"):
        sobol_start(model, 26, random_seed=0)


# --------------------------------------------------------------------------- designs


def _run(design, scenario, seed):
    return run_trial(design, scenario, np.random.default_rng(seed))


def test_standard_design_runs_algorithm_one():
    scenario = willard2024_scenario("2")
    design = combination_bo_design(GPSurface(), cohort_size=4, sample_size=40, random_seed=1)
    record = _run(design, scenario, 2)
    assert record["n_patients"] == 40 and record["stop_reason"] == ""
    assert record["dose"].shape == (40, 2)
    np.testing.assert_array_equal(record["dose"][:20:4], design.rule.initial_design)
    assert set(record["covariates"]) == {"z1"}  # the standard design enrols whoever comes
    kinds = record["decision_kind"]
    assert list(kinds).count("next") == 10 and kinds[-1] == "recommend"
    quantities = record["decision_quantities"]
    assert np.all(np.isnan(quantities["iteration"][:5]))
    np.testing.assert_array_equal(quantities["iteration"][5:], np.arange(6))
    assert {"max_aei", "f_star", "d_hat_d1", "mu_hat", "sd_hat", "on_bound_nugget"} <= set(
        quantities
    )
    assert {"expected_dose_units_s0", "rpsel_s1", "unique_combinations"} <= set(record["metrics"])


def test_personalised_design_enrols_every_stratum_each_iteration():
    scenario = willard2024_scenario("2")
    model = GPSurface(covariates=("z1",))
    design = combination_bo_design(model, cohort_size=2, sample_size=40, random_seed=1)
    record = _run(design, scenario, 3)
    assert record["n_patients"] == 40
    cohort = record["cohort"]
    z = np.asarray(record["covariates"]["z1"], dtype=float)
    for c in np.unique(cohort):
        assert sorted(z[cohort == c]) == [0, 0, 1, 1]
    quantities = record["decision_quantities"]
    assert {"max_aei_s0", "max_aei_s1", "d_hat_d1_s1", "running_s0"} <= set(quantities)
    next_decisions = record["decision_kind"] == "next"
    assert np.all(np.isnan(record["decision_dose"][next_decisions]))  # doses are per stratum


def test_personalised_decision_names_one_combination_per_stratum():
    scenario = willard2024_scenario("2")
    model = GPSurface(covariates=("z1",))
    design = combination_bo_design(model, cohort_size=2, sample_size=40, random_seed=1)
    data = scenario.empty_data()
    first = design.next(data)
    assert first.next_dose is None and not first.stopped and len(first.strata) == 2
    assert [d.stratum for d in first.strata] == [{"z1": 0.0}, {"z1": 1.0}]
    rng = np.random.default_rng(0)
    for _ in range(5):
        decision = design.next(data)
        doses = np.array([dose for dose, _ in decision.arms for _ in range(2)])
        z = np.array([s["z1"] for _, s in decision.arms for _ in range(2)])
        data = data.with_cohort(doses, **scenario.respond(doses, rng, covariates={"z1": z}), z1=z)
    decision = design.next(data)
    assert decision.quantities["iteration"] == 0.0
    for stratum in decision.strata:
        assert stratum.quantities["aei"].shape == (25,)
        assert stratum.quantities["mean"].shape == (25,)
        assert len(stratum.next_dose) == 2
        assert stratum.quantities["max_aei"] == pytest.approx(stratum.quantities["aei"].max())
        # the acquisition's maximum is the unconstrained choice: no option moved it
        assert stratum.bound_by == ()
    assert all(d.bound_by == ("initial_design",) for d in first.strata)
    recommendation = design.recommend(data)
    assert [d.stratum for d in recommendation.strata] == [{"z1": 0.0}, {"z1": 1.0}]


def test_p_optimal_is_a_monte_carlo_seeded_by_the_data_and_the_design_seed():
    scenario = willard2024_scenario("1")
    rng = np.random.default_rng(3)
    design = combination_bo_design(GPSurface(), cohort_size=2, sample_size=40, random_seed=5)
    data = scenario.empty_data()
    for _ in range(6):
        doses = np.repeat(np.atleast_2d(design.next(data).next_dose), 2, axis=0)
        data = data.with_cohort(doses, **scenario.respond(doses, rng))

    def p_optimal(seed: int) -> float:
        design = combination_bo_design(
            GPSurface(), cohort_size=2, sample_size=40, random_seed=seed, optimum_draws=50
        )
        return design.recommend(data).quantities["p_optimal"]

    by_seed = [p_optimal(seed) for seed in (0, 0, 1, 2)]
    assert all(0.0 <= p <= 1.0 for p in by_seed)
    assert by_seed[0] == by_seed[1]  # reproducible
    assert len(set(by_seed[1:])) > 1  # the design's seed reaches the Monte Carlo


def test_stopping_after_j_plus_one_iterations_below_delta():
    scenario = willard2024_scenario("1")
    design = combination_bo_design(
        GPSurface(), cohort_size=4, sample_size=80, delta=1e9, random_seed=2
    )
    record = _run(design, scenario, 4)
    # Iterations 1, 2 and 3 each have max AEI < delta: stop before the fourth new cohort.
    assert record["n_patients"] == 20 + 3 * 4
    assert record["stop_reason"].startswith("max AEI < delta")
    assert record["decision_quantities"]["stop_count"][-2] == 3


def test_a_stopped_stratum_leaves_its_budget_to_the_others_and_never_exceeds_n():
    scenario = willard2024_scenario("implant")
    model = GPSurface(covariates=("z1",))
    seen_reallocation = False
    for reallocate in (True, False):
        for delta, seed in ((0.02, 1), (0.02, 4), (0.0, 7)):
            design = combination_bo_design(
                model, cohort_size=2, sample_size=60, delta=delta, reallocate=reallocate,
                random_seed=seed,
            )  # fmt: skip
            record = _run(design, scenario, seed)
            z = np.asarray(record["covariates"]["z1"], dtype=float)
            cohort = record["cohort"]
            n = record["n_patients"]
            assert n <= 60
            if not reallocate:
                assert np.sum(z == 0) <= 30 and np.sum(z == 1) <= 30
            if n < 60:
                assert record["stop_reason"] == "every stratum stopped"
            present = [set(z[cohort == c]) for c in np.unique(cohort)]
            for before, after in itertools.pairwise(present):
                assert after <= before, "a stopped stratum never comes back"
            if reallocate and len(present[-1]) == 1 and n == 60:
                seen_reallocation = True
    assert seen_reallocation, "no trial went on with one stratum after the other stopped"
    # An odd budget: the last arms are truncated to the sample size.
    design = combination_bo_design(model, cohort_size=2, sample_size=27, random_seed=1)
    assert _run(design, scenario, 1)["n_patients"] == 27


def test_rule_reads_a_sampled_posterior_as_well():
    scenario = willard2024_scenario("2")
    model = GPSurface()
    design = combination_bo_design(model, cohort_size=4, sample_size=80, random_seed=1)
    data = scenario.empty_data()
    rng = np.random.default_rng(1)
    for _ in range(6):
        dose = design.next(data).next_dose
        doses = np.tile(dose, (4, 1))
        data = data.with_cohort(doses, **scenario.respond(doses, rng))
    exact = design.next(data)
    # A fit in the InferenceData schema: draws of the surface on the levels.
    posterior = model.posterior(data)
    draws = posterior.joint_draws("f", 4000, random_seed=3).reshape(2, 2000, -1)
    dataset = xr.Dataset(
        {
            "f": (("chain", "draw", "dose"), draws),
            "sigma_y": (("chain", "draw"), np.full((2, 2000), posterior.parameter_mean["sigma_y"])),
        },
        coords={
            "dose": np.arange(25),
            "d1": ("dose", model.grid[:, 0]),
            "d2": ("dose", model.grid[:, 1]),
        },
    )
    idata = model.stamp(xr.DataTree(children={"posterior": xr.DataTree(dataset)}), data)
    sampled = design.decide(idata, data)
    assert sampled.quantities["max_aei"] == pytest.approx(exact.quantities["max_aei"], rel=0.25)
    assert np.corrcoef(sampled.quantities["aei"], exact.quantities["aei"])[0, 1] > 0.95
    assert model.posterior_from_idata(idata).level_columns == ("d1", "d2")


def test_the_rule_refuses_a_model_without_a_surface_and_validates_options():
    with pytest.raises(ValueError, match="delta"):
        CombinationBORule(delta=-1.0)
    with pytest.raises(ValueError, match="goal"):
        CombinationBORule(goal="max")
    with pytest.raises(ValueError, match="initial design needs"):
        combination_bo_design(GPSurface(covariates=("z",)), cohort_size=10, sample_size=80)


def test_maximize_seeks_the_largest_response():
    model = GPSurface()
    rule = combination_bo_design(model, goal="maximize", random_seed=0).rule
    mean = -np.abs(model.grid - 0.5).sum(axis=1)
    posterior = DosePosterior(
        dose_levels=tuple(map(tuple, model.levels.tolist())),
        rates={},
        normal={"f": NormalLevels(mean, np.full(25, 0.01), np.eye(25) * 0.01)},
        parameter_mean={"sigma_y": 0.1},
    )
    surface = rule.surfaces(posterior)[0]
    assert tuple(model.grid[surface.best]) == (0.5, 0.5)


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(
    ("name", "optima", "values", "effect_sizes"),
    [
        ("1", [(1, 1), (1, 1)], [-1.592, -1.592], [0.79, 0.79]),
        ("2", [(0.25, 0.75), (0.75, 0.25)], [-1.203, -1.203], [3.77, 3.77]),
        (
            "3",
            [None, (0.25, 0.75), (0.75, 0.25), (1, 1)],
            [None, -1, -3.77, -0.79],
            [0, 1, 3.77, 0.79],
        ),
        ("implant", [(0.25, 0.75), (0.75, 0.25)], [-5, -10], [1, 2]),
    ],
)
def test_table_1(name, optima, values, effect_sizes):
    scenario = willard2024_scenario(name)
    for k, (optimum, value, ses) in enumerate(zip(optima, values, effect_sizes, strict=True)):
        best, f_opt = scenario.optimum(k)
        assert best == (None if optimum is None else tuple(map(float, optimum)))
        assert (f_opt is None) == (value is None)
        if value is not None:
            assert f_opt == pytest.approx(value, abs=0.006)
        assert scenario.effect_size(k) == pytest.approx(ses, abs=0.006)


def test_scenario_draws_strata_and_shares_the_noise_across_designs():
    scenario = willard2024_scenario("3")
    doses = np.tile([0.5, 0.5], (4000, 1))
    drawn = scenario.respond(doses, np.random.default_rng(1))
    counts = pd.Series(list(zip(drawn["z1"], drawn["z2"], strict=True))).value_counts()
    assert len(counts) == 4 and counts.min() > 900
    given = {"z1": np.ones(4000), "z2": np.zeros(4000)}
    chosen = scenario.respond(doses, np.random.default_rng(1), covariates=given)
    truth = scenario.mean_response(doses[:1], 2)[0]
    noise_drawn = (
        drawn["response"]
        - np.array(
            [scenario.mean_response(doses[:1], scenario.stratum_index(p))[0] for p in counts.index]
        )[[list(counts.index).index(p) for p in zip(drawn["z1"], drawn["z2"], strict=True)]]
    )
    np.testing.assert_allclose(chosen["response"] - truth, noise_drawn)
    with pytest.raises(ValueError, match="no stratum"):
        scenario.respond(doses[:1], np.random.default_rng(1), covariates={"z1": [2], "z2": [0]})


def test_metrics_are_eqs_6_and_7():
    scenario = willard2024_scenario("2")
    metrics = scenario.metrics_at(np.array([[0.5, 0.5], [0.25, 0.75]]), [0.0, -1.0], [0.3, 0.1], 0)
    truth = scenario.mean_response(np.array([[0.5, 0.5], [0.25, 0.75]]), 0)
    np.testing.assert_allclose(metrics["expected_dose_units"], [math.hypot(0.25, 0.25) / 0.25, 0])
    np.testing.assert_allclose(metrics["abs_deviation"], np.abs([0.0, -1.0] - truth))
    np.testing.assert_allclose(
        metrics["rpsel"], np.sqrt(np.array([0.3, 0.1]) ** 2 + ([0.0, -1.0] - truth) ** 2)
    )
    flat = willard2024_scenario("3").metrics_at(np.array([[0.5, 0.5]]), [0.1], [0.2], 0)
    assert np.isnan(flat["expected_dose_units"][0])
    assert flat["abs_deviation"][0] == pytest.approx(0.1)


def test_a_surface_of_zero_scale_is_flat_and_the_grid_divides_the_doses():
    from dosezoo.scenarios.willard2024 import CombinationSurfaceScenario

    def scenario(**options):
        return CombinationSurfaceScenario(
            name="x", covariates=("z1",), strata={(0.0,): (), (1.0,): (("g1", 0.0),)}, sigma=1.0,
            **options,
        )  # fmt: skip

    # a term of scale 0 invented the optimum (0, 0) and scored 2.83 dose units at (0.5, 0.5)
    assert scenario().optimum(1) == (None, None)
    assert np.isnan(scenario().metrics_at(np.array([[0.5, 0.5]]), [0.1], [0.2], 1)[
        "expected_dose_units"
    ][0])  # fmt: skip
    # 0.3 became a grid of thirds; 3 a grid of the one point (0, 0)
    for step in (0.3, 3.0):
        with pytest.raises(ValueError, match=rf"grid_step must divide \[0, 1\].*got {step}"):
            scenario(grid_step=step)
    assert len(scenario(grid_step=0.2).grid) == 36


# --------------------------------------------------------------------------- the contract


def test_decision_with_a_combination_and_with_strata():
    assert Decision(np.array([0.25, 0.5])).next_dose == (0.25, 0.5)
    per_stratum = Decision(
        None,
        strata=(
            Decision((0.0, 1.0), stratum={"z": 0}),
            Decision(None, stop_reason="done", stratum={"z": 1}),
        ),
    )
    assert not per_stratum.stopped
    assert per_stratum.arms == (((0.0, 1.0), {"z": 0}),)
    with pytest.raises(ValueError, match="exactly when every stratum stopped"):
        Decision(None, stop_reason="x", strata=per_stratum.strata)
    with pytest.raises(ValueError, match="naming its stratum"):
        Decision(None, strata=(Decision((0.0, 1.0)),))
    stopped = Decision(
        None, stop_reason="all", strata=(Decision(None, stop_reason="s", stratum={"z": 0}),)
    )
    assert stopped.stopped and stopped.arms == ()


def test_coded_doses_accept_zero_combinations():
    frame = pd.DataFrame({"d1": [0.0, 1.0], "d2": [0.0, 0.5], "response": [1.0, 2.0]})
    with pytest.raises(DataError, match="are all 0"):
        TrialData.from_dataframe(frame, dose_columns=("d1", "d2"))
    data = TrialData.from_dataframe(frame, dose_columns=("d1", "d2"), coded_doses=True)
    grown = data.with_cohort([0.0, 0.0], response=[3.0])
    assert grown.coded_doses and grown.n_patients == 3
    assert "coded doses" in repr(grown)
    single = TrialData.from_dataframe(
        pd.DataFrame({"dose": [-1.0, 0.0], "y": [1.0, 2.0]}), coded_doses=True
    )
    assert list(single.dose) == [-1.0, 0.0]


def test_simulate_records_combinations_covariates_and_per_stratum_quantities():
    scenario = willard2024_scenario("2")
    model = GPSurface(covariates=("z1",))
    design = combination_bo_design(model, cohort_size=2, sample_size=24, random_seed=1)
    results = simulate(design, scenario, 3, random_seed=5, progress=False)
    assert results["dose"].dims == ("trial", "patient", "dose_column")
    assert list(results["dose_column"].values) == ["d1", "d2"]
    assert results["z1"].dims == ("trial", "patient")
    assert int(results["n_patients"].min()) == 24
    assert "decision_d_hat_d1_s1" in results and "expected_dose_units_s0" in results
    again = simulate(design, scenario, 3, random_seed=5, progress=False, n_jobs=1, batch_size=1)
    np.testing.assert_array_equal(results["dose"].values, again["dose"].values)


def test_posterior_moments_and_joint_draws_for_every_kind_of_posterior():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(4000, 3))
    sampled = DosePosterior(dose_levels=(1.0, 2.0, 3.0), rates={"f": points}, chains=2)
    np.testing.assert_allclose(sampled.variance("f"), points.var(axis=0))
    assert sampled.joint_draws("f") is points
    grid = DosePosterior(
        dose_levels=(1.0,), rates={"f": np.array([[0.0], [1.0]])}, weights=np.array([0.25, 0.75])
    )
    assert grid.variance("f")[0] == pytest.approx(0.1875)
    draws = grid.joint_draws("f", 20000, random_seed=1)
    assert draws.mean() == pytest.approx(0.75, abs=0.02)
    with pytest.raises(ValueError, match="give draws"):
        grid.joint_draws("f")
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    exact = DosePosterior(
        dose_levels=((0.0, 0.0), (0.0, 1.0)),
        rates={},
        level_columns=("d1", "d2"),
        normal={"f": NormalLevels(np.array([1.0, 2.0]), np.diag(cov).copy(), lambda: cov)},
    )
    np.testing.assert_array_equal(exact.mean("f"), [1.0, 2.0])
    draws = exact.joint_draws("f", 20000, random_seed=2)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05)
    singular = NormalLevels(np.zeros(2), np.ones(2), np.ones((2, 2)))  # rank 1
    sample = singular.sample(100, np.random.default_rng(0))
    np.testing.assert_allclose(sample[:, 0], sample[:, 1], atol=1e-7)


def test_aei_noise_variance_shrinks_the_acquisition_when_sigma_y_exceeds_one():
    model = GPSurface()
    mean = -np.abs(model.grid - 0.5).sum(axis=1)
    posterior = DosePosterior(
        dose_levels=tuple(map(tuple, model.levels.tolist())),
        rates={},
        normal={"f": NormalLevels(mean, np.full(25, 1.0), np.eye(25))},
        parameter_mean={"sigma_y": 3.0},
    )
    by_sd = combination_bo_design(model, random_seed=0).rule.surfaces(posterior)[0]
    by_variance = combination_bo_design(model, random_seed=0, aei_noise="variance").rule
    shrunk = by_variance.surfaces(posterior)[0]
    assert np.all(shrunk.acquisition < by_sd.acquisition)
    np.testing.assert_allclose(
        by_sd.acquisition,
        augmented_expected_improvement(mean, np.ones(25), by_sd.f_star, 3.0),
    )


def test_expected_improvement_refuses_a_negative_sd():
    from dosezoo.designs.combination_bo import expected_improvement

    with pytest.raises(ValueError, match=r"sd must be >= 0, got -1.0"):
        expected_improvement([0.0, 1.0], [1.0, -1.0], 0.5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: expected_improvement([0.0, 1.0], [np.nan, 1.0], 0.5),
            "sd must be finite, got nan",
        ),
        (
            lambda: expected_improvement([np.nan, 1.0], [1.0, 1.0], 0.5),
            "mean must be finite, got nan",
        ),
        (
            lambda: expected_improvement([0.0, 1.0], [1.0, 1.0], np.nan),
            "best must be finite, got nan",
        ),
        (
            lambda: augmented_expected_improvement([0.0, 1.0], [1.0, 1.0], np.inf, 1.0),
            "best must be finite, got inf",
        ),
        (
            lambda: augmented_expected_improvement([0.0, 1.0], [1.0, 1.0], 0.5, np.inf),
            "noise_sd must be finite, got inf",
        ),
        (lambda: effective_best([np.nan, 1.0], [1.0, 1.0]), "mean must be finite, got nan"),
        (lambda: effective_best([0.0, 1.0], [1.0, -np.inf]), "sd must be finite, got -inf"),
    ],
)
def test_acquisitions_refuse_values_that_are_not_finite(call, message):
    # An sd of NaN read as 0 (EI 0.5), a NaN best gave NaN, an infinite noise_sd NaN and a
    # NaN mean an effective best point (0, nan).
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ([np.nan, 0.5, 0], r"column 'd1', row 1: value nan is outside the model's dose box"),
        ([0.5, np.inf, 0], r"column 'd2', row 1: value inf is outside the model's dose box"),
        ([5.0, 0.5, 0], r"column 'd1', row 1: value 5\.0 is outside the model's dose box"),
        ([0.5, 0.5, 0.5], r"column 'z', row 1: value 0\.5 is not a declared level"),
        ([0.5, 0.5, 7], r"column 'z', row 1: value 7\.0 is not a declared level"),
    ],
)
def test_predict_refuses_points_off_the_box_or_the_strata(point, message):
    # A NaN dose predicted (nan, nan); an infinite dose, a dose of 5 on [0, 1] and z = 7
    # the prior mean; z = 0.5 a value between the strata.
    gp = GPSurface(covariates=("z",))
    doses = np.array([[0, 0], [0.5, 0.5], [1, 1], [0, 1], [1, 0], [0.25, 0.75]])
    data = TrialData.from_dataframe(
        pd.DataFrame(
            {
                "d1": doses[:, 0],
                "d2": doses[:, 1],
                "z": [0, 1, 0, 1, 0, 1],
                "response": [1.0, 0.0, 2.0, 0.3, -1.0, 0.4],
            }
        ),
        dose_columns=("d1", "d2"),
        covariates=("z",),
        coded_doses=True,
    )
    post = gp.posterior(data)
    mean, variance = post.predict([0.5, 0.5, 1.0])
    assert np.isfinite(mean).all() and np.isfinite(variance).all()
    with pytest.raises(ValueError, match=message):
        post.predict([[0.5, 0.5, 1.0], point])


@pytest.mark.parametrize(("covariates", "per_stratum"), [((), 4), (("z1",), 2), (("z1", "z2"), 1)])
def test_the_factory_and_a_configuration_give_the_same_cohort_size(covariates, per_stratum):
    # Willard et al. (2024): 4 patients per iteration, shared by the strata. The configuration's
    # default was 2 whatever the strata, the factory's 4.
    from dosezoo.designs import design_from_config

    model = {"type": "combination-bo", "covariates": list(covariates)}
    configured = design_from_config({"model": model}, "x.toml")
    built = combination_bo_design(GPSurface(covariates=covariates))
    assert configured.cohort_size == built.cohort_size == per_stratum


def test_data_without_cohorts_are_refused_since_each_cohort_is_an_iteration():
    # Without the column the 24 patients of the example were 24 iterations, and a stratum
    # stopped (delta reached) where with its cohorts it goes on at (1, 1).
    from pathlib import Path

    from dosezoo.config import design_from_config, read_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    design = design_from_config(read_config(examples / "combination_bo.toml"), "example")
    frame = pd.read_csv(examples / "combination_cohorts.csv")
    schema = design.model.data_schema()
    assert design.rule.reads_cohorts() and design.conduct.cohort_size > 1
    decision = design.next(TrialData.from_dataframe(frame, **schema))
    assert decision.strata[0].next_dose == (1.0, 1.0)
    with pytest.raises(DataError, match="no column 'cohort'"):
        design.next(TrialData.from_dataframe(frame.drop(columns="cohort"), **schema))


@pytest.mark.slow
def test_a_full_bayes_stop_reads_the_full_bayes_fits_of_earlier_iterations():
    # The stop (eq 4) reads the maximum AEI of earlier iterations. A new design (a trial
    # resumed from a file, `dosezoo next-dose`) recomputed them by the empirical-Bayes fit,
    # the design that decided them had read NUTS fits: the same data stopped one trial and not
    # the other.
    scenario = willard2024_scenario("2")

    def design():
        return combination_bo_design(
            GPSurface(), cohort_size=4, sample_size=80, delta=0.0067, random_seed=1,
            engine="nuts", draws=500, tune=500, chains=2,
        )  # fmt: skip

    sequential = design()
    data = scenario.empty_data()
    rng = np.random.default_rng(1)
    decisions = []
    for _ in range(7):
        decisions.append(sequential.next(data))
        doses = np.tile(decisions[-1].next_dose, (4, 1))
        data = data.with_cohort(doses, **scenario.respond(doses, rng))
    last, fresh = sequential.next(data), design()
    again = fresh.next(data)
    assert again.quantities["stop_count"] == last.quantities["stop_count"]
    assert again.quantities["max_aei"] == last.quantities["max_aei"]
    # The fresh design's value at the sixth cohort is the NUTS fit the sequential one read.
    assert fresh.rule._max_acquisitions(data, 6) == (decisions[6].quantities["max_aei"],)


def test_a_refused_fit_of_an_earlier_iteration_is_not_read_by_the_stop(monkeypatch):
    # A new design recomputes the maximum AEI of earlier iterations; a fit of one that failed
    # its convergence checks (no decision could have read it) was read all the same.
    import dataclasses

    from dosezoo.designs import combination_bo
    from dosezoo.diagnostics import ConvergenceReport
    from dosezoo.errors import ConvergenceError

    scenario = willard2024_scenario("2")
    design = combination_bo_design(
        GPSurface(), cohort_size=4, sample_size=80, delta=0.0067, random_seed=1
    )
    data = scenario.empty_data()
    rng = np.random.default_rng(1)
    for _ in range(7):
        doses = np.tile(design.next(data).next_dose, (4, 1))
        data = data.with_cohort(doses, **scenario.respond(doses, rng))
    fit = combination_bo.conduct_posterior
    failed = ConvergenceReport(table=None, divergences=0, failures=("f: R-hat 1.2 > 1.01",))

    def refused(*args, **options):
        return dataclasses.replace(fit(*args, **options), report=failed)

    monkeypatch.setattr(combination_bo, "conduct_posterior", refused)
    fresh = combination_bo_design(
        GPSurface(), cohort_size=4, sample_size=80, delta=0.0067, random_seed=1
    )
    with pytest.raises(ConvergenceError, match=r"fit to the first 6 cohorts.*R-hat 1.2"):
        fresh.next(data)
    design.next(data)  # the design that decided cohort 6 itself read its own fit
