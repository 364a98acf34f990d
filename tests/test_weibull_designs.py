import math
import tomllib

import numpy as np
import pandas as pd
import pytest

from dosezoo.data import TrialData
from dosezoo.designs import (
    ApproximateDesign,
    Conduct,
    Design,
    DOptimalRule,
    PrecisionStopping,
    adaptive_d_optimal_design,
    bayesian_d_optimal,
    d_efficiency,
    design_config,
    design_from_config,
    efficient_rounding,
    equivalence_check,
    information_matrix,
    locally_d_optimal,
    optimal_design,
    run_staged_trial,
    sensitivity,
    uniform_design,
    with_reference,
)
from dosezoo.designs.registry import toml_text
from dosezoo.models import WeibullAFT
from dosezoo.models.weibull_aft import EULER_GAMMA
from dosezoo.scenarios import WEIBULL_SHAPES, weibull_scenario
from dosezoo.simulate import simulate

MODEL = WeibullAFT()
THETA = {"beta": (1.9, 0.6, 2.8), "b": 0.5772156649}
TAU = 14.887
UNIFORM = ApproximateDesign([0.0, 0.5, 1.0], [1 / 3, 1 / 3, 1 / 3])


# ------------------------------------------------------------------ the paper's identities


def test_uniform_design_is_optimal_without_censoring_get_identity():
    # the paper's "trace{M^-1 M_x} = 72 x (x - 0.5)^2 (x - 1)": it is trace - 4 that equals it
    x = np.linspace(0, 1, 201)
    d = sensitivity(MODEL, UNIFORM, THETA, tau=None, doses=x)
    np.testing.assert_allclose(d, 72 * x * (x - 0.5) ** 2 * (x - 1), atol=1e-11)
    best = locally_d_optimal(MODEL, THETA, tau=None)
    np.testing.assert_allclose(best.support, [0.0, 0.5, 1.0], atol=1e-7)
    np.testing.assert_allclose(best.weights, [1 / 3] * 3, atol=1e-8)
    assert d_efficiency(MODEL, UNIFORM, THETA, tau=None) == pytest.approx(1.0, abs=1e-10)


def test_interface_example():
    opt = locally_d_optimal(MODEL, THETA, tau=14.887)
    assert isinstance(opt, ApproximateDesign)
    assert isinstance(opt.support, np.ndarray) and isinstance(opt.weights, np.ndarray)
    assert len(opt) == 3 and opt.weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(opt.support, [0.0, 0.29260, 0.71097], atol=2e-5)
    np.testing.assert_allclose(opt.weights, [0.39290, 0.34752, 0.25958], atol=2e-5)
    assert opt.get_max <= 1e-7
    eff = d_efficiency(MODEL, UNIFORM, THETA, tau=14.887)
    assert eff == pytest.approx(0.70638, abs=1e-4)
    assert MODEL.event_probability(0.5, THETA, tau=14.887) == pytest.approx(0.5073, abs=1e-4)
    # the GET check of any design, by itself
    assert equivalence_check(MODEL, opt, THETA, TAU)[0] <= 1e-7
    assert equivalence_check(MODEL, UNIFORM, THETA, TAU)[0] > 0.5


@pytest.mark.parametrize("shape", list(WEIBULL_SHAPES))
def test_optimal_designs_from_random_starts_agree_and_satisfy_the_get(shape):
    scenario = weibull_scenario(shape, EULER_GAMMA, 0.5)
    designs = [
        locally_d_optimal(MODEL, scenario.theta, scenario.tau, random_seed=seed)
        for seed in range(6)
    ]
    reference = locally_d_optimal(
        MODEL, scenario.theta, scenario.tau, grid_size=1001, grid_tol=1e-6
    )
    for design in designs:
        assert design.get_max <= 1e-7
        assert len(design) == len(reference) == 3  # the paper: always three points
        np.testing.assert_allclose(design.support, reference.support, atol=1e-6)
        np.testing.assert_allclose(design.weights, reference.weights, atol=1e-6)
        assert design.criterion == pytest.approx(reference.criterion, abs=1e-10)
    # the sensitivity function is <= 0 everywhere and 0 at the support points
    x = np.linspace(0, 1, 1001)
    d = sensitivity(MODEL, reference, scenario.theta, scenario.tau, doses=x)
    assert d.max() <= 1e-7
    at_support = sensitivity(MODEL, reference, scenario.theta, scenario.tau, reference.support)
    np.testing.assert_allclose(at_support, 0.0, atol=1e-7)


def test_designs_approach_uniform_as_tau_grows_and_efficiency_rises():
    efficiencies = []
    for tau in (1.0, 10.0, 100.0, 1e4):
        best = locally_d_optimal(MODEL, THETA, tau)
        efficiencies.append(d_efficiency(MODEL, UNIFORM, THETA, tau, reference=best))
    assert efficiencies == sorted(efficiencies)
    assert efficiencies[0] < 0.65 and efficiencies[-1] > 0.999


def test_finite_candidates():
    candidates = np.linspace(0, 1, 11)
    best = locally_d_optimal(MODEL, THETA, TAU, candidates=candidates)
    assert set(best.support) <= set(candidates)
    d = sensitivity(MODEL, best, THETA, TAU, candidates)
    assert d.max() <= 1e-6
    continuous = locally_d_optimal(MODEL, THETA, TAU)
    assert best.criterion <= continuous.criterion + 1e-12
    with pytest.raises(ValueError, match="candidates must lie in the design space"):
        locally_d_optimal(MODEL, THETA, TAU, candidates=[0.0, 2.0])


@pytest.mark.parametrize("tau", [TAU, None])
def test_one_candidate_dose_is_no_design_with_censoring_either(tau):
    # One dose gives an information of rank 2 of 4; with censoring its Cholesky pivots were
    # 1e-17, accepted as positive, and {0.5: 1} came out "optimal" with a finite criterion.
    with pytest.raises(ValueError, match="every design is singular"):
        optimal_design(MODEL, np.array([1.9, 0.6, 2.8, EULER_GAMMA]), tau, candidates=[0.5])


@pytest.mark.parametrize("dose", [-2.0, 3.0, math.nan])
def test_the_information_of_a_dose_off_the_design_space_is_refused(dose):
    # d_efficiency of a design off [0, 1] was 11.18 (documented within (0, 1]); a NaN dose
    # gave a NaN information.
    if math.isfinite(dose):  # ApproximateDesign refuses a NaN itself
        with pytest.raises(ValueError, match=rf"dose {dose!r} \(entry \d\) lies outside the"):
            d_efficiency(MODEL, ApproximateDesign([0.5, dose], [0.5, 0.5]), THETA, TAU)
    with pytest.raises(ValueError, match=r"\(entry 0\) lies outside the design space \[0, 1\]"):
        MODEL.information(dose, THETA, TAU)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"prior_information": np.diag([10.0, np.nan, 10.0, 10.0])}, "must be finite"),
        ({"prior_information": np.eye(4) + np.eye(4, k=1)}, "must be symmetric"),
        ({"prior_information": -np.eye(4)}, "must be positive semi-definite"),
        ({"grid_size": 2}, "grid_size must be an integer >= 3, got 2"),
    ],
)
def test_optimal_design_names_a_bad_prior_information_or_grid(options, message):
    # Each was "every design is singular", or (asymmetric) one triangle read silently.
    theta = np.array([1.9, 0.6, 2.8, EULER_GAMMA])
    with pytest.raises(ValueError, match=message):
        optimal_design(MODEL, theta, TAU, stage_size=90, **options)


def test_stage_design_with_accrued_information_satisfies_its_get():
    # eq 8: maximise log det(P + N M(xi)); with P = 0 it is the local design
    theta = MODEL.theta(THETA)
    prior = 90 * information_matrix(MODEL, UNIFORM, theta, TAU)
    stage = optimal_design(MODEL, theta, TAU, prior_information=prior, stage_size=210)
    assert stage.get_max <= 1e-7
    local = optimal_design(MODEL, theta, TAU)
    alone = locally_d_optimal(MODEL, theta, TAU)
    np.testing.assert_allclose(local.support, alone.support, atol=1e-7)
    # the stage complements the uniform first stage: the total beats both alternatives
    total = np.linalg.slogdet(prior + 210 * information_matrix(MODEL, stage, theta, TAU))[1]
    for other in (UNIFORM, alone):
        assert (
            total
            >= np.linalg.slogdet(prior + 210 * information_matrix(MODEL, other, theta, TAU))[1]
        )


def test_bayesian_design_of_a_point_mass_is_the_local_design_and_draws_satisfy_get():
    theta = MODEL.theta(THETA)
    point = bayesian_d_optimal(MODEL, np.tile(theta, (5, 1)), TAU)
    local = locally_d_optimal(MODEL, theta, TAU)
    np.testing.assert_allclose(point.support, local.support, atol=1e-6)
    rng = np.random.default_rng(1)
    draws = theta + rng.normal(size=(300, 4)) * np.array([0.05, 0.3, 0.3, 0.03])
    averaged = bayesian_d_optimal(MODEL, draws, TAU, max_points=100)
    assert averaged.get_max <= 1e-6
    assert averaged.weights.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ designs as objects


def test_approximate_design_validation_and_merging():
    design = ApproximateDesign([0.5, 0.0, 0.5], [0.25, 0.5, 0.25])
    np.testing.assert_array_equal(design.support, [0.0, 0.5])
    np.testing.assert_array_equal(design.weights, [0.5, 0.5])
    with pytest.raises(ValueError, match="weights must sum to 1"):
        ApproximateDesign([0.0, 1.0], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"support has 2 doses but weights has 1"):
        ApproximateDesign([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        ApproximateDesign([0.0, 1.0], [1.5, -0.5])
    assert repr(uniform_design()) == "ApproximateDesign({0: 0.3333, 0.5: 0.3333, 1: 0.3333})"
    # Text and bools were read as numbers ([false, true, true] in a TOML became [0, 1]).
    with pytest.raises(ValueError, match=r"support \(row 0\) holds '0\.0', not a number"):
        ApproximateDesign(["0.0", "0.5"], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"support \(row \d\) holds False, not a number"):
        ApproximateDesign([False, True, True], [1 / 3, 1 / 3, 1 / 3])


def test_efficient_rounding():
    # Pukelsheim and Rieder (1992), Adams' apportionment: sums to n, every support point gets
    # a patient once n >= the support size, and counts never fall as n grows (house monotone)
    for weights in ([1 / 3] * 3, [0.3929, 0.3475, 0.2596], [0.5, 0.5, 0.0], [0.9, 0.05, 0.05]):
        positive = np.asarray(weights) > 0
        previous = efficient_rounding(weights, 3)
        for n in range(3, 120):
            counts = efficient_rounding(weights, n)
            assert counts.sum() == n
            assert np.all(counts[positive] >= 1) and np.all(counts[~positive] == 0)
            assert np.all(counts >= previous)
            previous = counts
    np.testing.assert_array_equal(efficient_rounding([0.3929, 0.3475, 0.2596], 90), [35, 31, 24])
    np.testing.assert_array_equal(efficient_rounding([0.5, 0.5, 0.0], 5)[2], 0)
    np.testing.assert_array_equal(efficient_rounding([0.9, 0.05, 0.05], 2), [1, 1, 0])
    assert efficient_rounding([0.2, 0.3, 0.5], 1).sum() == 1


def test_per_patient_randomisation_follows_the_weights():
    design = ApproximateDesign([0.0, 0.3, 0.7], [0.5, 0.3, 0.2])
    u = np.random.default_rng(2).random(100_000)
    doses = design.allocate(u)
    shares = [np.mean(doses == x) for x in design.support]
    np.testing.assert_allclose(shares, design.weights, atol=0.005)
    rounded = design.allocate(u[:90], rounded=True)
    assert [np.sum(rounded == x) for x in design.support] == design.counts(90).tolist()


# ------------------------------------------------------------------ the multi-stage design


def test_stopping_rule_eq_9():
    stopping = PrecisionStopping(0.2)
    estimate = np.array([2.0, 1.0, 3.0, 0.5])
    sd = 0.1 * np.abs(estimate)  # CV 0.1 < 0.2 for every parameter, no correlation
    stop, statistics = stopping.evaluate(estimate, np.diag(sd**2))
    assert stop and statistics["max_cv"] == pytest.approx(0.1)
    bound = 2 * (4 * math.log(0.2) + np.log(np.abs(estimate)).sum())
    assert statistics["log_volume_bound"] == pytest.approx(bound)
    stop, _ = stopping.evaluate(estimate, np.diag((0.3 * estimate) ** 2))
    assert not stop
    max_cv = PrecisionStopping(0.2, "max_cv")
    uneven = np.diag((np.array([0.01, 0.01, 0.01, 0.25]) * estimate) ** 2)
    assert stopping.evaluate(estimate, uneven)[0]  # the volume is small...
    assert not max_cv.evaluate(estimate, uneven)[0]  # ...but b's CV is 0.25
    with pytest.raises(ValueError, match="eta must lie in"):
        PrecisionStopping(1.5)


def _two_stage(**options):
    return adaptive_d_optimal_design(MODEL, first_stage=30, sample_size=60, tau=TAU, **options)


def test_the_engine_runs_the_staged_design_as_the_fast_runner_does():
    scenario = with_reference(weibull_scenario("I", EULER_GAMMA, 0.5))
    design = _two_stage()
    results = simulate(design, scenario, 3, random_seed=5, progress=False)
    seeds = np.random.SeedSequence(5).spawn(3)
    for i in range(3):
        latent = np.random.default_rng(seeds[i]).standard_exponential(60)
        fast = run_staged_trial(design, scenario, latent)
        np.testing.assert_array_equal(fast["dose"], results["dose"].values[i])
        np.testing.assert_array_equal(fast["time"], results["time"].values[i])
        assert fast["final"]["beta_0"] == results["decision_beta_0"].values[i][-1]
    assert np.all((results["d_efficiency"] > 0) & (results["d_efficiency"] <= 1))
    stages = results["decision_stage"].values[:, 1:60]  # the first patient gets the start dose
    assert set(np.unique(stages)) == {1.0, 2.0}
    np.testing.assert_array_equal(results["dose"].values[:, 0], 0.0)
    assert set(results["decision_bound_by"].values[:, 0]) == {"start_dose"}
    assert np.all(results["recommended_dose"].isnull())


def test_stage_decisions_carry_the_allocation():
    scenario = weibull_scenario("IV", EULER_GAMMA, 0.75)
    rng = np.random.default_rng(3)
    x = uniform_design().allocate(rng.random(30))
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": x, **scenario.outcomes_from_latent(x, rng.standard_exponential(30))})
    )
    design = _two_stage()
    first = design.rule.stage(TrialData.empty(outcomes=("time", "event")))
    assert first.bound_by == ("initial_design",) and first.quantities["n_support"] == 3
    decision = design.rule.stage(data)
    q = decision.quantities
    counts = [q[f"count_{j}"] for j in range(int(q["n_support"]))]
    weights = [q[f"weight_{j}"] for j in range(int(q["n_support"]))]
    assert sum(counts) == 30 and sum(weights) == pytest.approx(1.0)
    assert q["get_max"] <= 1e-6 and q["estimate_is_mle"] == 1.0
    assert {"beta_0", "beta_1", "beta_2", "b", "criterion", "stage"} <= set(q)
    assert decision.next_dose in [q[f"support_{j}"] for j in range(int(q["n_support"]))]
    with pytest.raises(ValueError, match="7 patients is not an interim"):
        design.rule.stage(TrialData.from_dataframe(data.to_dataframe().iloc[:7]))
    # a patient's dose is one of the stage's support points
    patient = design.next(data)
    assert patient.next_dose in [q[f"support_{j}"] for j in range(int(q["n_support"]))]


def test_no_mle_falls_back_to_the_posterior_mode():
    x = np.repeat([0.0, 0.5, 1.0], 10)
    t = np.r_[np.linspace(1, 3, 10), np.linspace(2, 6, 10), np.full(10, TAU)]
    event = np.r_[np.ones(20), np.zeros(10)]
    rule = _two_stage().rule
    plan = rule.plan(x, t, event, 60)
    assert plan.bound_by == ("no_mle",) and plan.quantities["estimate_is_mle"] == 0.0
    assert plan.design.weights.sum() == pytest.approx(1.0)
    fallback = _two_stage(no_mle="initial").rule.plan(x, t, event, 60)
    assert fallback.bound_by == ("no_mle", "initial_design")


def test_precision_stopping_stops_earlier_for_a_larger_eta():
    scenario = weibull_scenario("I", EULER_GAMMA, 0.5)
    sizes = {}
    for eta in (0.15, 0.2, 0.25):
        design = adaptive_d_optimal_design(
            MODEL,
            first_stage=90,
            stage_size=90,
            sample_size=2500,
            tau=scenario.tau,
            precision=PrecisionStopping(eta),
        )
        sizes[eta] = []
        for seed in range(8):  # common random numbers across the three designs
            rng = np.random.default_rng(seed)
            out = run_staged_trial(
                design, scenario, rng.standard_exponential(2500), rng.random(2500)
            )
            sizes[eta].append(out["dose"].size)
            assert out["stop_reason"].startswith("precision reached") or out["dose"].size == 2500
    assert np.all(np.array(sizes[0.25]) <= np.array(sizes[0.2]))
    assert np.all(np.array(sizes[0.2]) <= np.array(sizes[0.15]))
    assert np.mean(sizes[0.15]) > np.mean(sizes[0.25])


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DOptimalRule(0), "first_stage must be an integer >= 1"),
        (lambda: DOptimalRule(30, updating="greedy"), "updating must be one of"),
        (lambda: DOptimalRule(30, allocation="blocks"), "allocation must be one of"),
        (lambda: DOptimalRule(30, updating="bayes", accrued="observed"), "accrued='observed'"),
        (
            lambda: Design(MODEL, DOptimalRule(30), Conduct(0.0, cohort_size=3, sample_size=60)),
            "cohort_size must be 1",
        ),
        (
            lambda: Design(MODEL, DOptimalRule(90), Conduct(0.0, cohort_size=1, sample_size=60)),
            "first_stage 90 exceeds the sample size 60",
        ),
        (
            lambda: Design(
                MODEL,
                DOptimalRule(30, updating="bayes"),
                Conduct(0.0, cohort_size=1, sample_size=60),
            ),
            "needs conduct.engine",
        ),
        (
            lambda: Design(
                MODEL,
                DOptimalRule(30, initial=ApproximateDesign([0.0, 2.0], [0.5, 0.5])),
                Conduct(0.0, cohort_size=1, sample_size=60),
            ),
            "outside the design space",
        ),
        (
            lambda: Design(MODEL, DOptimalRule(30), Conduct(3.0, cohort_size=1, sample_size=60)),
            r"conduct.start_dose has doses \[3.0\] outside the design space \[0, 1\]",
        ),
        (
            lambda: Design(
                WeibullAFT(covariates=("age",)),
                DOptimalRule(30),
                Conduct(0.0, cohort_size=1, sample_size=60),
            ),
            "DOptimalRule is defined for a model without covariates; this one has age",
        ),
    ],
)
def test_rule_options_are_validated_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_fixed_designs_and_describe():
    best = locally_d_optimal(MODEL, THETA, TAU)
    design = adaptive_d_optimal_design(
        MODEL, first_stage=60, sample_size=60, tau=TAU, updating="none", initial=best
    )
    record = design.describe()
    assert record["rule_updating"] == "none" and record["conduct_cohort_size"] == 1
    scenario = weibull_scenario("I", EULER_GAMMA, 0.5)
    rng = np.random.default_rng(0)
    out = run_staged_trial(design, scenario, rng.standard_exponential(60), rng.random(60))
    assert set(np.unique(out["dose"])) <= set(best.support)


def test_stages_of_given_sizes():
    design = adaptive_d_optimal_design(
        MODEL, first_stage=30, stage_size=(20, 40), sample_size=120, tau=TAU
    )
    assert design.rule.boundaries() == [0, 30, 50, 90]  # the 30 patients left form a last stage
    assert design.rule.stage_start(60) == 50
    scenario = weibull_scenario("IV", EULER_GAMMA, 0.75)
    rng = np.random.default_rng(4)
    out = run_staged_trial(design, scenario, rng.standard_exponential(120), rng.random(120))
    assert [p.quantities["stage_patients"] for p in out["plans"]] == [30, 20, 40, 30]
    with pytest.raises(ValueError, match=r"stage_size\[1\] must be an integer >= 1"):
        DOptimalRule(30, stage_size=(20, 0))


def test_a_design_survives_its_configuration_with_every_option():
    best = locally_d_optimal(MODEL, THETA, TAU)
    design = adaptive_d_optimal_design(
        MODEL,
        first_stage=90,
        stage_size=(60, 60),
        sample_size=300,
        tau=TAU,
        updating="none",
        initial=best,
        precision=PrecisionStopping(0.2, "max_cv"),
        random_seed=3,
    )
    assert type(design.rule.initial) is ApproximateDesign  # the optimiser's extras are dropped
    text = toml_text(design_config(design))
    rebuilt = design_from_config(tomllib.loads(text), "round trip")
    assert rebuilt == design and rebuilt.describe() == design.describe()


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([], "weights must be finite and >= 0, at least one"),
        ([-1.0, 2.0], "weights must be finite and >= 0"),
        ([1e300, 1e300], r"weights must sum to 1, got 2e\+300"),
        ([0.0, 0.0], "weights must sum to 1, got 0.0"),
    ],
)
def test_efficient_rounding_refuses_what_are_not_weights(weights, message):
    # IndexError for none; a negative or zero weight gave counts silently
    with pytest.raises(ValueError, match=message):
        efficient_rounding(weights, 3)


def test_a_uniform_design_needs_a_dose():
    with pytest.raises(ValueError, match="doses must hold at least one dose"):
        uniform_design(())
