"""Bad values the public methods of the other families refuse by name, rather than use.

The kernels' entry points (3PND, latent GP, joint probit), the scenarios' outcome and truth
methods, the Weibull model and its staged design, the combination and Optimus helpers: each
case below was accepted before, giving a wrong posterior, a wrong outcome, a NaN or a complex
number without a word, or an error from deep inside numpy or numba.
"""

import math
import re

import numpy as np
import pytest

from dosezoo.data import TrialData
from dosezoo.designs.backfill import Backfill
from dosezoo.designs.boin12 import boin12_design, boin12_utility
from dosezoo.designs.combination_bo import effective_best, expected_improvement
from dosezoo.designs.d_optimal import DOptimalRule, adaptive_d_optimal_design, run_staged_trial
from dosezoo.designs.lse import AdmissibleSet, LSERule, TwoStageGPRule
from dosezoo.designs.mtd_quantile import MTDQuantileRule
from dosezoo.designs.optimal import bayesian_d_optimal, locally_d_optimal, uniform_design
from dosezoo.designs.optimus import OptimusRule
from dosezoo.designs.pick_the_winner_stage import ArmCriteria, PickTheWinnerStage
from dosezoo.errors import DataError
from dosezoo.models import GPSurface, JointProbit, LatentGP, ThreePND
from dosezoo.models.joint_probit import PARAMETERS, cell_probabilities
from dosezoo.models.latent_gp import effective_sample_size
from dosezoo.models.three_pnd_groups import ThreePNDGroups
from dosezoo.models.three_pnd_plateau import ThreePNDPlateau
from dosezoo.models.weibull_aft import WeibullAFT
from dosezoo.scenarios.continuous import O6BGResampling
from dosezoo.scenarios.efftox import standard_efftox_scenario
from dosezoo.scenarios.weibull import calibrate_tau, weibull_scenario, weibull_truth
from dosezoo.scenarios.willard2024 import CombinationSurfaceScenario

LATENT_GP = LatentGP.from_quantiles([1, 2, 3, 4, 5], target=0.3)
ZEROS = np.zeros(5)


@pytest.mark.parametrize(
    ("n", "y", "options", "message"),
    [
        ([3, 0, 0, 0, 0], [5, 0, 0, 0, 0], {}, "level 0 has n = 3 and y = 5"),
        ([-3, 0, 0, 0, 0], ZEROS, {}, "level 0 has n = -3"),
        ([3, 0], [0, 0], {}, r"one count per dose level \(5\), got shapes \(2,\)"),
        ([math.nan, 0, 0, 0, 0], ZEROS, {}, "n row 0 holds nan, not a whole number"),
        (["3", 0, 0, 0, 0], ZEROS, {}, "n \\(row 0\\) holds '3', not a number"),
        ([3, 0, 0, 0, 0], ZEROS, {"mean": np.full(5, math.nan)}, "mean must be 5 finite"),
        ([3, 0, 0, 0, 0], ZEROS, {"mean": np.zeros(2)}, "mean must be 5 finite"),
        ([3, 0, 0, 0, 0], ZEROS, {"draws": 2.7}, "draws must be an integer >= 1, got 2.7"),
        ([3, 0, 0, 0, 0], ZEROS, {"chains": 0}, "chains must be an integer >= 1, got 0"),
    ],
)
def test_the_latent_gp_kernel_refuses_counts_its_posterior_cannot_have(n, y, options, message):
    # Wrong lengths ran, the numba kernel reading past the arrays' ends.
    with pytest.raises(ValueError, match=f"LatentGP.sample_kernel: .*{message}"):
        LATENT_GP.sample_kernel(np.asarray(n), np.asarray(y), random_seed=1, **options)


def test_the_latent_gp_kernel_still_takes_counts_as_floats():
    n, y = np.array([3.0, 3.0, 0, 0, 0]), np.array([0.0, 1.0, 0, 0, 0])
    draws = LATENT_GP.sample_kernel(n, y, draws=20, tune=5, random_seed=1)["p_dlt"]
    assert draws.shape == (1, 20, 5) and np.all((draws > 0) & (draws < 1))


def test_the_latent_gp_curve_between_doses_refuses_doses_off_zero_one():
    f = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"dose -1.0 \(entry 0\) lies outside the scaled"):
        LATENT_GP.latent_between(f, np.array([-1.0, 0.5]))
    with pytest.raises(ValueError, match=r"f_draws must have shape \(draws, 5\)"):
        LATENT_GP.latent_between(np.zeros((4, 3)), np.array([0.5]))
    with pytest.raises(ValueError, match="mean must be 5 finite numbers"):
        LATENT_GP.latent_between(f, np.array([0.5]), mean=np.full(5, math.nan))
    assert LATENT_GP.latent_between(f, np.array([0.0, 0.5])).shape == (4, 2)


@pytest.mark.parametrize(
    ("dose", "y", "options", "error", "message"),
    [
        ([10.0, 60.0], [1.0, 2.0], {}, DataError, "value 10.0 is outside the dose range"),
        ([60.0, 80.0], [math.nan, 2.0], {}, DataError, "column 'y', row 0: value nan"),
        ([60.0, 80.0], [1.0], {}, DataError, "column 'y' has 1 rows"),
        ([60.0, 80.0], [1.0, 2.0], {"draws": 2.5}, ValueError, "draws must be an integer"),
    ],
)
def test_the_3pnd_kernel_checks_its_arrays_as_data(dose, y, options, error, message):
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    settings = {"draws": 10, "tune": 5, "chains": 1, "random_seed": 0} | options
    with pytest.raises(error, match=message):
        model.sample_kernel(np.array(dose), np.array(y), **settings)


def test_the_joint_probit_sampler_refuses_impossible_cell_counts():
    model = JointProbit((10.0, 20.0, 40.0))
    x = np.array([-1.0, 1.0])
    counts = np.array([[2.0, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0]])
    settings = {"draws": 10, "tune": 5, "chains": 1, "random_seed": 1}
    for bad, message in [
        (-counts, "counts must hold patients >= 0"),
        (counts * 0.5, "counts row 0 holds 0.5, not a whole number"),
        (counts[:1], r"shape \(2, 6\)"),
    ]:
        with pytest.raises(ValueError, match=f"JointProbit.sample_imh: .*{message}"):
            model.sample_imh(x, bad, **settings)
    with pytest.raises(ValueError, match="x must hold finite standardised doses"):
        model.sample_imh(np.array([math.nan, 1.0]), counts, **settings)
    with pytest.raises(ValueError, match="doses must be finite and > 0"):
        model.standardise([10.0, -5.0])


def test_the_efftox_scenario_refuses_levels_and_latent_pairs_it_cannot_read():
    scenario = standard_efftox_scenario("plateau")
    latent = scenario.latent_pairs(3, np.random.default_rng(1))
    for levels in ([-1, -1, -1], [1.7, 1.0, 1.0], [9, 0, 0]):
        with pytest.raises(ValueError, match=r"levels must be integers in \[0, 5\)"):
            scenario.outcomes_at_levels(np.array(levels), latent)
    for pairs in (latent[:1], latent[:, 0], np.full((3, 2), math.nan)):
        with pytest.raises(ValueError, match=r"latent must hold finite pairs of shape \(3, 2\)"):
            scenario.outcomes_at_levels(np.array([0, 1, 2]), pairs)
    n, y = np.array([[3, 3, 0, 0, 0]]), np.array([[0, 1, 0, 0, 0]])
    efficacy = {"efficacy": np.array([[0, 1, 2, 0, 0, 1] + [math.nan] * 4])}
    with pytest.raises(ValueError, match=r"trial 0 has .* selected=9, treated=6"):
        scenario.metrics_at_counts(n, y, np.array([9]), np.array([6]), efficacy)
    with pytest.raises(ValueError, match=r"trial 0 has .* treated=60"):
        scenario.metrics_at_counts(n, y, np.array([1]), np.array([60]), efficacy)
    with pytest.raises(ValueError, match="efficacy must be"):
        bad = {"efficacy": np.array([[5, 1, 2, 0, 0, 1] + [math.nan] * 4])}
        scenario.metrics_at_counts(n, y, np.array([1]), np.array([6]), bad)
    metrics = scenario.metrics_at_counts(n, y, np.array([1]), np.array([6]), efficacy)
    assert metrics["response_rate"].tolist() == [0.5]


def test_the_o6bg_resampling_refuses_agt_values_and_doses_that_are_not_numbers():
    for agt, message in [
        ({40.0: (math.nan,)}, r"agt\[40\] must be finite"),
        ({40.0: (-50.0,)}, r"agt\[40\] must hold values >= 0"),
        ({40.0: ()}, r"agt\[40\] must be a non-empty sequence"),
        ({40.0: "12"}, r"agt\[40\] must be a non-empty sequence"),
    ]:
        with pytest.raises(ValueError, match=f"O6BGResampling: {message}"):
            O6BGResampling(agt=agt, perturbation={40.0: 1.0})
    scenario = O6BGResampling(agt={40.0: (10.0, 20.0)}, perturbation={40.0: 1.0})
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match=r"doses \(row 0\) holds '60', not a number"):
        scenario.respond(["60"], rng)
    with pytest.raises(ValueError, match="doses must be finite"):
        scenario.respond([math.nan], rng)
    assert 39.0 <= scenario.respond([60.0], rng)["y"][0] <= 51.0


def test_the_3pnd_variants_refuse_curves_outside_their_support():
    plateau = ThreePNDPlateau(eta=55, gamma=0.6, x_min=20, x_max=140)
    # sigma beyond eta / z gave a complex ed50 and a complex MTD
    with pytest.raises(ValueError, match=r"sigma must lie in \(0, "):
        plateau.truth(emax=70, mtd=80, hill=1.5, sigma=1000)
    with pytest.raises(ValueError, match=r"sigma must lie in \(0, "):
        plateau.mtd_of(70, 80, 1.5, 1000)
    with pytest.raises(ValueError, match="hill must be finite and > 0"):
        plateau.mtd_of(70, 80, 0.0, 5.0)
    with pytest.raises(ValueError, match="mtd must be finite and > 20"):
        plateau.truth(emax=70, mtd=10, hill=1.5, sigma=5.0)
    truth = plateau.truth(emax=70, mtd=80, hill=1.5, sigma=5.0)
    assert plateau.mtd_of(truth["emax"], truth["ed50"], 1.5, 5.0) == pytest.approx(80.0)
    groups = ThreePNDGroups(eta=55, gamma=0.6, x_min=20, x_max=140, groups=("a", "b"))
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        groups.mtd_of([-1.0, 0.1], 5.0, 1.0)


def test_a_quadrature_mtd_posterior_refuses_bools_and_takes_a_seed():
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    data = TrialData({"dose": [40.0, 40.0, 60.0], "cohort": [1, 1, 2], "y": [10.0, 15.0, 30.0]})
    mtd = model.mtd_posterior(data)
    with pytest.raises(ValueError, match="cdf: x must be a number, got True"):
        mtd.cdf(True)
    with pytest.raises(ValueError, match=r"quantile: p must lie in \[0, 1\], got '0.3'"):
        mtd.quantile("0.3")
    with pytest.raises(ValueError, match=r"size must be an integer >= 0, got 2\.7"):
        mtd.sample(2.7, np.random.default_rng(1))
    assert np.array_equal(mtd.sample(3, 7)["mtd"], mtd.sample(3, np.random.default_rng(7))["mtd"])
    with pytest.raises(ValueError, match=r"doses \(row 0\) holds '50', not a number"):
        model.mean_response(model.fit(data, engine="quadrature", draws=20, chains=1), ["50"])


def test_the_weibull_model_refuses_covariates_that_are_its_columns_and_split_parameters():
    for covariates in (("time",), ("dose",), ("age", "age"), (1,)):
        with pytest.raises(ValueError, match="WeibullAFT: covariates must"):
            WeibullAFT(covariates=covariates)
    model = WeibullAFT()
    theta = {"beta": (1.9, 0.6, 2.8), "b": 0.577}
    with pytest.raises(ValueError, match=r"theta\['beta'\] must have 3 values"):
        model.theta({"beta": (1.9, 0.6), "b": (2.8, 0.5)})
    with pytest.raises(ValueError, match=r"theta\['b'\] holds True, not a number"):
        model.theta({"beta": (1.9, 0.6, 2.8), "b": True})
    with pytest.raises(ValueError, match=r"dose 5.0 \(entry 0\) lies outside the design space"):
        model.median_time(5.0, theta)
    assert model.median_time(0.5, theta) == pytest.approx(
        math.exp(1.9 + 0.6 * 0.5 + 2.8 * 0.25) * math.log(2.0) ** 0.577
    )


def test_the_weibull_scenario_and_staged_trial_refuse_draws_a_patient_cannot_have():
    scenario = weibull_scenario("I", 0.577, 0.5)
    with pytest.raises(ValueError, match="latent must hold one positive finite draw per dose"):
        scenario.outcomes_from_latent(np.array([0.5]), np.array([-1.0]))
    with pytest.raises(ValueError, match="latent must hold one positive finite draw per dose"):
        scenario.outcomes_from_latent(np.array([0.5, 0.5]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"dose 9.0 \(patient 0\) lies outside"):
        scenario.outcomes_from_latent(np.array([9.0]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"the estimate must be \(beta_0, ..., beta_2, b\)"):
        scenario.median_errors(np.array([1.9, 0.577]))
    design = adaptive_d_optimal_design(WeibullAFT(), first_stage=12, sample_size=30)
    with pytest.raises(ValueError, match="latent must hold positive finite exponential draws"):
        run_staged_trial(design, scenario, np.full(30, math.nan))
    with pytest.raises(ValueError, match=r"uniforms must be one sequence of numbers in \[0, 1\)"):
        run_staged_trial(design, scenario, np.ones(30), uniforms=np.full(30, 5.0))
    dose = np.repeat([0.0, 0.5, 1.0], 4)
    time = np.array([3, 4, 5, 6, 8, 9, 10, 11, 20, 22, 25, 30.0])
    with pytest.raises(DataError, match=r"column 'event', row 0: value 2\.0 must be 0 or 1"):
        design.rule.final_estimate(dose, time, np.full(12, 2.0))
    with pytest.raises(DataError, match=r"column 'time', row 0: value -3\.0 must be > 0"):
        design.rule.plan(dose, -time, np.ones(12))
    with pytest.raises(ValueError, match=r"candidates\[0\] must be a real number, got '0'"):
        DOptimalRule(10, candidates=("0", "0.5", "1"))
    assert design.rule.final_estimate(dose, time, np.ones(12))["estimate_is_mle"] == 1.0


def test_optimus_helpers_refuse_rates_and_counts_that_are_not_possible():
    stage = PickTheWinnerStage(n_per_arm=10)
    uniforms = np.random.default_rng(1).random((3, 2, 10))
    with pytest.raises(ValueError, match=r"orr_a must hold one response rate in \[0, 1\]"):
        stage.run(np.full(3, 1.5), np.full(3, 0.3), uniforms)
    with pytest.raises(ValueError, match=r"orr_b must hold one response rate in \[0, 1\]"):
        stage.run(np.full(3, 0.3), np.full(1, 0.3), uniforms)
    with pytest.raises(ValueError, match=r"uniforms must hold numbers in \[0, 1\)"):
        stage.run(np.full(3, 0.3), np.full(3, 0.3), uniforms * 2)
    with pytest.raises(DataError, match="responses and n must be of one shape"):
        ArmCriteria().status([3], [10, 20])
    with pytest.raises(ValueError, match="responses \\(row 0\\) holds '3', not a number"):
        ArmCriteria().status(["3"], ["10"])
    rule = boin12_design(0.35, (1, 2, 3, 4, 5)).rule
    with pytest.raises(ValueError, match=r"desirability: the counts at \(0,\) are impossible"):
        rule.desirability([3], [5], [1], [0])
    with pytest.raises(ValueError, match=r"eliminated: the counts at \(0,\) are impossible"):
        rule.eliminated([3], [9], [0])
    assert rule.desirability([3], [1], [2], [1]).shape == (1,)


def test_combination_helpers_refuse_mismatched_means_and_a_misspelled_goal():
    with pytest.raises(ValueError, match="mean and sd must be of one shape"):
        expected_improvement([0.0, 1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="effective_best: gamma must be finite"):
        effective_best([3.0, 1.0], [0.1, 0.1], math.nan)
    with pytest.raises(ValueError, match="effective_best: gamma must be >= 0"):
        effective_best([3.0, 1.0], [0.1, 0.1], -5.0)
    assert effective_best([3.0, 1.0, 2.0], [0.1, 0.1, 0.1], 1.0) == (1, 1.0)
    surface = GPSurface()
    with pytest.raises(ValueError, match=r"points \(row 0\) holds '0\.5', not a number"):
        surface.inputs([["0.5", "0.5"]])
    with pytest.raises(ValueError, match="goal must be one of 'minimize', 'maximize'"):
        # checked before the posterior is read
        surface.optimum_probabilities(None, goal="maximise")  # type: ignore[arg-type]


def test_combination_scenarios_refuse_text_strata_and_indices_off_the_strata():
    terms = (("g1", 1.0),)
    # The stratum ("0",) was read as (0.0,), the stratum (0,) of the same scenario dropped.
    with pytest.raises(ValueError, match=r"stratum \('0',\) must be a real number, got '0'"):
        CombinationSurfaceScenario("x", ("z",), {(0,): terms, ("0",): terms}, 1.0)
    scenario = CombinationSurfaceScenario("x", ("z",), {(0,): terms, (1,): terms}, 1.0)
    with pytest.raises(ValueError, match="stratum must be an integer >= 0, got -1"):
        scenario.mean_response(np.array([[0.5, 0.5]]), -1)
    with pytest.raises(ValueError, match="stratum must be an index below 2, got 2"):
        scenario.optimum(2)
    with pytest.raises(ValueError, match="stratum must be an integer >= 0, got True"):
        scenario.optimum(True)


def test_design_points_refuse_a_dose_twice_and_uniforms_off_zero_one():
    with pytest.raises(ValueError, match="uniform_design: doses must be distinct"):
        uniform_design([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="allocate: uniforms must lie in \\[0, 1\\)"):
        uniform_design().allocate(np.array([math.nan, 0.5]))
    assert uniform_design().allocate(np.array([0.1, 0.5, 0.9])).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="current level must be an integer, got True"):
        AdmissibleSet().mask(np.array([0.1, 0.2, 0.3]), True)


def test_the_optimal_design_search_refuses_settings_that_end_it_without_a_design():
    model, theta = WeibullAFT(), {"beta": (1.9, 0.6, 2.8), "b": 0.5772}
    for options, message in [
        ({"max_rounds": 0}, "max_rounds must be an integer >= 1, got 0"),  # UnboundLocalError
        ({"candidates": [0.0, 0.5, math.nan]}, "candidates must be finite doses"),
        ({"tol": -1.0}, "tol must be > 0, got -1.0"),
        ({"grid_tol": math.nan}, "grid_tol must be finite, got nan"),
        ({"start": uniform_design([5.0, 6.0])}, "start's support must lie in the design space"),
    ]:
        with pytest.raises(ValueError, match=f"optimal_design: {re.escape(message)}"):
            locally_d_optimal(model, theta, **options)
    with pytest.raises(ValueError, match="max_points must be an integer >= 1, got 0"):
        bayesian_d_optimal(model, np.array([[1.9, 0.6, 2.8, 0.5772]] * 3), max_points=0)


def test_the_plateau_curve_and_joint_probit_rates_refuse_values_off_their_support():
    plateau = ThreePNDPlateau(eta=55, gamma=0.6, x_min=20, x_max=140)
    with pytest.raises(ValueError, match=r"dose 10\.0 \(entry 0\) lies outside the model's"):
        plateau.curve([10.0], 70, 80, 1.5)  # NaN before
    model = JointProbit((10.0, 20.0, 40.0))
    draws = {name: np.zeros((1, 3)) for name in PARAMETERS}
    with pytest.raises(ValueError, match="draws need threshold > 0 and -1 < rho < 1"):
        model.dose_probabilities(draws | {"threshold": np.full((1, 3), -1.0)})
    rates = model.dose_probabilities(draws | {"threshold": np.ones((1, 3))})
    assert np.all(rates["p_high_response"] <= rates["p_response"])
    assert MTDQuantileRule(alpha=np.float32(0.25)).alpha == 0.25


def test_backfill_refuses_a_pending_dose_off_the_levels_and_negative_counts():
    backfill = Backfill(1.0, 1.0)
    data = TrialData({"dose": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0], "dlt": [0, 0, 0, 0, 0, 1]})
    for current in (math.nan, "3", 99.0, True):
        with pytest.raises(ValueError, match="current must be one of the dose levels"):
            backfill.cleared(data, (1.0, 2.0, 3.0), current)
    # 1 DLT in 3 at 2.0 is not below the default 1/3
    assert backfill.cleared(data, (1.0, 2.0, 3.0), 3.0) == (1.0,)
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="backfilled counts must be >= 0"):
        backfill.choose((1.0, 2.0), {1.0: -100}, rng)
    with pytest.raises(ValueError, match="eligible doses must increase"):
        backfill.choose((2.0, 1.0), {}, rng)
    with pytest.raises(ValueError, match="max_dlt_rate must be a real number, got True"):
        Backfill(1.0, 1.0, max_dlt_rate=True)


def test_the_gp_statements_ess_and_weibull_truths_refuse_values_before_they_are_used():
    # The two-stage rule's prior statements were checked only when a design bound them.
    with pytest.raises(ValueError, match="TwoStageGPRule: margin must be a real number"):
        TwoStageGPRule(LSERule(0.3), margin="x")
    with pytest.raises(ValueError, match=r"TwoStageGPRule: prob_low must lie in \(0, 1\)"):
        TwoStageGPRule(LSERule(0.3), prob_low=2)
    for draws in (np.array([1.0, math.nan, 2.0]), np.array([]), np.zeros((3, 3, 3))):
        # NaN gave an ESS of 0, no draws a ZeroDivisionError, 3-D a numba TypingError
        with pytest.raises(ValueError, match="effective_sample_size: draws must be at least 2"):
            effective_sample_size(draws)
    with pytest.raises(ValueError, match=r"weibull_truth: b must be a real number, got '0\.5'"):
        weibull_truth("I", b="0.5")  # numpy's "Unknown format code 'g'" before
    with pytest.raises(ValueError, match=r"calibrate_tau: dose 5\.0 \(entry 1\) lies outside"):
        calibrate_tau((1.9, 0.6, 2.8), 0.577, 0.5, doses=(0.0, 5.0))


def test_the_efftox_cells_boin12_utility_and_optimus_limit_refuse_values_off_their_support():
    # NaN cells, or negative "probabilities" (threshold <= 0, |rho| >= 1), before
    ok = cell_probabilities(np.array([0.3]), np.array([-0.2]), 0.7, -0.4, lib=np)
    assert np.allclose(ok.sum(axis=-1), 1.0) and np.all(ok >= 0)
    with pytest.raises(ValueError, match=r"cell_probabilities: mu_tox\[1\] must be finite"):
        cell_probabilities(np.array([0.3, math.nan]), np.zeros(2), 0.7, 0.1, lib=np)
    with pytest.raises(ValueError, match=r"threshold must be finite and > 0, got -0\.5"):
        cell_probabilities(0.3, 0.1, -0.5, 0.1, lib=np)
    with pytest.raises(ValueError, match=r"rho\[1, 0\] must be in \(-1, 1\), got -1\.2"):
        cell_probabilities(0.3, 0.1, 0.5, np.array([[0.1], [-1.2]]), lib=np)
    # rates off [0, 1], text, and utilities off [0, 100] gave a number before
    assert boin12_utility([0.2, 0.4], [0.1, 0.3], 60, 40) == pytest.approx([48.0, 52.0])
    with pytest.raises(ValueError, match=r"boin12_utility: p_eff\[1\] must lie in \[0, 1\]"):
        boin12_utility([0.2, math.nan], 0.3, 60, 40)
    with pytest.raises(ValueError, match=r"boin12_utility: p_tox holds '0\.3', not a number"):
        boin12_utility(0.5, "0.3", 60, 40)
    with pytest.raises(ValueError, match=r"boin12_utility: u11 must lie in \[0, 100\], got 160"):
        boin12_utility(0.5, 0.3, 160, 40)
    with pytest.raises(ValueError, match="p_eff and p_tox must be of shapes that broadcast"):
        boin12_utility([0.1, 0.2], [0.1, 0.2, 0.3], 60, 40)
    # an overdose limit inside the target interval excluded the doses it targets
    with pytest.raises(ValueError, match="overdose_limit must exceed the top of tox_interval"):
        OptimusRule(tox_interval=(0.16, 0.33), overdose_limit=0.3)
    assert OptimusRule(overdose_limit=0.34).overdose_limit == 0.34
