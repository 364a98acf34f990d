import math
import warnings

import numpy as np
import pytest

from dosezoo.decision import Decision
from dosezoo.designs import with_reference
from dosezoo.models.weibull_aft import EULER_GAMMA
from dosezoo.scenarios import (
    WEIBULL_B,
    WEIBULL_SHAPES,
    WeibullScenario,
    calibrate_tau,
    weibull_scenario,
    weibull_scenarios,
)


def test_the_24_scenarios_are_calibrated():
    for p in (0.25, 0.5, 0.75):
        scenarios = weibull_scenarios(p)
        assert len(scenarios) == 24
        for scenario in scenarios:
            uniform = scenario.event_probability(np.array([0.0, 0.5, 1.0])).mean()
            assert uniform == pytest.approx(p, abs=1e-10)
    assert list(WEIBULL_SHAPES) == ["I", "II", "III", "IV"]
    assert WEIBULL_B[1] == pytest.approx(EULER_GAMMA)
    # shape I, b = gamma, 50% events: tau = 14.887 (the build specification's worked value)
    assert weibull_scenario("I", EULER_GAMMA, 0.5).tau == pytest.approx(14.887, abs=5e-4)
    assert weibull_scenario("I", 1.0, None).tau is None


def test_shape_i_at_half_events_leaves_the_top_dose_often_without_an_event():
    # docs/models_and_designs.md: why the MLE often does not exist in the paper's settings
    p = float(weibull_scenario("I", EULER_GAMMA, 0.5).event_probability(np.array([1.0]))[0])
    assert p == pytest.approx(0.011, abs=5e-4)
    assert (1 - p) ** 100 == pytest.approx(0.33, abs=5e-3)  # 100 patients at dose 1


def test_calibration_is_monotone_in_the_event_probability():
    taus = [calibrate_tau(WEIBULL_SHAPES["III"], 0.8, p) for p in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert taus == sorted(taus)
    with pytest.raises(ValueError, match="event_probability must lie in"):
        calibrate_tau(WEIBULL_SHAPES["III"], 0.8, 1.0)


def test_outcomes_follow_the_weibull_model_with_common_random_numbers():
    scenario = weibull_scenario("II", 0.8, 0.5)
    rng = np.random.default_rng(1)
    n = 200_000
    doses = np.full(n, 0.3)
    outcomes = scenario.respond(doses, rng)
    assert outcomes["time"].max() <= scenario.tau
    np.testing.assert_array_equal(outcomes["event"], outcomes["time"] < scenario.tau)
    p = scenario.event_probability(np.array([0.3]))[0]
    assert outcomes["event"].mean() == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    # the median of the uncensored times
    free = WeibullScenario(scenario.beta, scenario.b, None)
    times = free.respond(doses, np.random.default_rng(2))["time"]
    median = free.median_time(np.array([0.3]))[0]
    assert np.median(times) == pytest.approx(median, rel=0.01)
    # drawing in one go or patient by patient gives the same latent draws
    one = scenario.respond(np.array([0.0, 1.0, 0.5]), np.random.default_rng(3))
    rng = np.random.default_rng(3)
    parts = [scenario.respond(np.array([d]), rng) for d in (0.0, 1.0, 0.5)]
    np.testing.assert_array_equal(one["time"], np.concatenate([p["time"] for p in parts]))


def test_trial_metrics():
    scenario = weibull_scenario("I", EULER_GAMMA, 0.5)
    rng = np.random.default_rng(4)
    doses = np.repeat([0.0, 0.5, 1.0], 20)
    data = scenario.empty_data().with_cohort(doses, **scenario.respond(doses, rng))
    truth = dict(zip(["beta_0", "beta_1", "beta_2", "b"], scenario.theta, strict=True))
    exact = Decision(None, stop_reason="end", quantities=truth | {"estimate_is_mle": 1.0})
    metrics = scenario.trial_metrics(data, exact)
    assert metrics["events"] == data.column("event").sum()
    assert metrics["event_proportion"] == pytest.approx(metrics["events"] / 60)
    for dose in scenario.metric_doses:
        assert metrics[f"log_median_error_{dose:g}"] == pytest.approx(0.0, abs=1e-12)
    assert "d_efficiency" not in metrics
    nothing = scenario.trial_metrics(data, Decision(None, stop_reason="no estimate"))
    assert math.isnan(nothing["log_median_error_0.5"])
    referenced = with_reference(scenario)
    efficiency = referenced.trial_metrics(data, exact)["d_efficiency"]
    assert 0.6 < efficiency < 0.8  # the uniform allocation (about 0.706 for the paper's design)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"beta": (), "b": 1.0}, "beta must be a non-empty"),
        ({"beta": (1.0, "a"), "b": 1.0}, r"beta\[1\] must be a real number"),
        ({"beta": (1.0,), "b": 0.0}, "b must be > 0"),
        ({"beta": (1.0,), "b": 1.0, "tau": -3.0}, "tau must be > 0"),
        # each metric dose names a metric: a second 0.5 overwrote the first
        (
            {"beta": (1.0,), "b": 1.0, "metric_doses": (0.5, 0.5)},
            r"metric_doses must be distinct, got \[0.5, 0.5\]",
        ),
    ],
)
def test_scenario_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        WeibullScenario(**options)
    with pytest.raises(ValueError, match="shape must be one of"):
        weibull_scenario("V", 1.0)


@pytest.mark.parametrize(("b", "event_probability"), [(0.58, 1e-30), (1e5, 0.58)])
def test_a_censoring_time_out_of_double_precision_is_named(b, event_probability):
    # scipy's "f(a) and f(b) must have different signs" (a probability of 1e-30), or a tau
    # that underflowed to 0, refused as if the user had given it (b = 1e5)
    with pytest.raises(ValueError, match=rf"calibrate_tau: no censoring time .* with b={b!r}"):
        calibrate_tau(WEIBULL_SHAPES["I"], b, event_probability)


def test_a_steep_hazard_calibrates_without_overflow_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau = calibrate_tau(WEIBULL_SHAPES["I"], 1e-4, 0.5)
    assert 0 < tau < math.inf


def test_the_event_probability_of_a_configured_scenario_is_used():
    # The design's follow-up came in as tau, and event_probability was refused as "both".
    import tomllib
    from pathlib import Path

    from dosezoo.config import design_from_config, scenario_from_config

    example = Path(__file__).resolve().parents[1] / "examples" / "weibull_d_optimal.toml"
    config = tomllib.loads(example.read_text())
    design = design_from_config(config, "example")
    config["scenario"]["event_probability"] = 0.3
    scenario = scenario_from_config(config, design, "example")
    assert scenario.describe()["event_probability_uniform"] == pytest.approx(0.3)
    del config["scenario"]["event_probability"]
    scenario = scenario_from_config(config, design, "example")
    assert scenario.tau == design.rule.tau or scenario.tau == design.model.tau
