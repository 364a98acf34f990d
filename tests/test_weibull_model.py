import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.optimize import minimize

from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.models import MLENotFound, WeibullAFT
from dosezoo.models.weibull_aft import EULER_GAMMA, censored_moments
from dosezoo.scenarios import weibull_scenario

THETA = np.array([1.9, 0.6, 2.8, EULER_GAMMA])  # shape I, b = gamma
TAU = 14.887  # 50% events for the uniform design


def simulate_arrays(rng, n, theta=THETA, tau=TAU, doses=(0.0, 0.5, 1.0)):
    x = rng.choice(doses, n)
    mu = theta[0] + theta[1] * x + theta[2] * x**2
    t = np.exp(mu) * rng.standard_exponential(n) ** theta[3]
    event = (t <= tau).astype(int) if tau is not None else np.ones(n, dtype=int)
    return x, np.minimum(t, tau if tau is not None else np.inf), event


def trial(x, t, event):
    return TrialData.from_dataframe(pd.DataFrame({"dose": x, "time": t, "event": event}))


def scores(theta, x, t, event):
    """Per-patient score vectors from the formulas of the paper's eq 2 (independent code)."""
    f = np.column_stack([np.ones_like(x), x, x**2])
    b = theta[-1]
    w = (np.log(t) - f @ theta[:-1]) / b
    g = np.exp(w) - event
    return np.column_stack([g[:, None] * f / b, (g * w - event) / b])


# ------------------------------------------------------------------ expectations


@pytest.mark.parametrize("level", [-12.0, -3.0, -0.5, 0.0, 1.0, 1.5, 2.2, 3.0])
def test_censored_moments_match_quadrature(level):
    a, b, d = censored_moments(level)

    def moment(k):
        inside = integrate.quad(
            lambda z: z**k * math.exp(2 * z - math.exp(z)), -60, level, epsabs=1e-14, limit=200
        )[0]
        return inside + level**k * math.exp(level - math.exp(level))

    assert a == pytest.approx(-math.expm1(-math.exp(level)), rel=1e-13, abs=1e-16)
    assert b == pytest.approx(moment(1), abs=1e-12)
    assert d == pytest.approx(moment(2), abs=1e-12)


def test_uncensored_limit_of_the_moments_and_information():
    a, b, d = censored_moments(np.array([np.inf, 40.0]))
    expected_b = 1 - EULER_GAMMA
    expected_d = math.pi**2 / 6 - 1 + (1 - EULER_GAMMA) ** 2
    np.testing.assert_allclose(a, [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(b, [expected_b] * 2, rtol=1e-14)
    np.testing.assert_allclose(d, [expected_d] * 2, rtol=1e-14)
    model = WeibullAFT()
    np.testing.assert_allclose(
        model.information(0.3, THETA, tau=None), model.information(0.3, THETA, tau=1e30), rtol=1e-12
    )
    # without censoring the information does not depend on beta
    other = np.array([-3.0, 5.0, 1.0, EULER_GAMMA])
    np.testing.assert_allclose(model.information(0.7, THETA), model.information(0.7, other))


@pytest.mark.parametrize("dose, tau", [(0.0, TAU), (0.5, TAU), (1.0, 60.0), (0.3, None)])
def test_information_is_the_covariance_of_the_score(dose, tau):
    # The Monte Carlo covariance of the score equals M_x with the prefactor 1/b^2 (eq 3), not
    # the 1/b printed in eq 6.
    rng = np.random.default_rng(11)
    n = 400_000
    x = np.full(n, dose)
    _, t, event = simulate_arrays(rng, n, tau=tau, doses=(dose,))
    s = scores(THETA, x, t, event)
    np.testing.assert_allclose(s.mean(axis=0), 0.0, atol=5 * s.std(axis=0).max() / math.sqrt(n))
    empirical = np.cov(s, rowvar=False)
    # Monte Carlo SE of each covariance entry: sd of the products / sqrt(n)
    centred = s - s.mean(axis=0)
    products = centred[:, :, None] * centred[:, None, :]
    se = products.std(axis=0) / math.sqrt(n)
    expected = WeibullAFT().information(dose, THETA, tau=tau)
    varying = se > 0  # at dose 0 the scores of beta_1 and beta_2 are exactly 0
    np.testing.assert_array_equal(expected[~varying], 0.0)
    z = np.abs(empirical - expected)[varying] / se[varying]
    assert z.max() < 5, z
    wrong = expected * THETA[-1]  # the 1/b prefactor of eq 6
    assert (np.abs(empirical - wrong)[varying] / se[varying]).max() > 20


def test_score_and_observed_information_are_the_derivatives_of_the_loglik():
    rng = np.random.default_rng(3)
    data = trial(*simulate_arrays(rng, 60))
    model = WeibullAFT()
    theta = THETA + np.array([0.05, -0.1, 0.1, 0.02])
    score = model.score(data, theta)
    information = model.observed_information(data, theta)
    h = 1e-6
    for j in range(4):
        step = np.zeros(4)
        step[j] = h
        numeric = (model.loglik(data, theta + step) - model.loglik(data, theta - step)) / (2 * h)
        assert score[j] == pytest.approx(numeric, rel=1e-6, abs=1e-6)
        slope = (model.score(data, theta + step) - model.score(data, theta - step)) / (2 * h)
        np.testing.assert_allclose(-information[:, j], slope, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        scores(theta, data.dose, data.column("time"), data.column("event")).sum(0), score
    )


# ------------------------------------------------------------------ MLE


def test_mle_is_the_maximum():
    rng = np.random.default_rng(4)
    data = trial(*simulate_arrays(rng, 200, tau=40.0))
    model = WeibullAFT()
    fit = model.mle(data)
    found = minimize(
        lambda p: -model.loglik(data, np.r_[p[:3], math.exp(p[3])]),
        np.r_[fit.theta[:3] + 0.2, math.log(fit.b)],
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 20_000},
    )
    np.testing.assert_allclose(found.x[:3], fit.theta[:3], atol=1e-5)
    assert math.exp(found.x[3]) == pytest.approx(fit.b, abs=1e-5)
    assert fit.loglik >= -found.fun - 1e-9
    assert np.all(np.abs(model.score(data, fit.theta)) < 1e-6)
    assert fit.names == ("beta_0", "beta_1", "beta_2", "b")
    assert set(fit.as_dict()) == {*fit.names, *(f"se_{n}" for n in fit.names)}


@pytest.mark.parametrize("unit", [0.01, 1e-3, 1e4])
def test_mle_does_not_depend_on_the_dose_unit(unit):
    # The same trial with doses in another unit: the coefficients scale by unit^-j (beta_2 =
    # 28,000 on a range of 0.01), the curve does not. A bound on the coefficients themselves
    # refused this MLE as diverging, and the D-optimal design fell back to the prior's mode.
    x, t, event = simulate_arrays(np.random.default_rng(3), 300, tau=TAU)
    standard = WeibullAFT().mle(trial(x, t, event))
    scaled = WeibullAFT(dose_range=(0.0, unit)).mle(trial(x * unit, t, event))
    powers = unit ** -np.arange(3.0)
    np.testing.assert_allclose(scaled.theta[:3], standard.theta[:3] * powers, rtol=1e-7)
    assert scaled.b == pytest.approx(standard.b, rel=1e-7)
    assert not scaled.penalised


def test_mle_recovers_the_truth_and_its_standard_errors_match_the_spread():
    # 400 trials of 300 patients with 75% events: mean within 4 Monte Carlo SE of the truth,
    # mean standard error within 12% of the empirical spread.
    model = WeibullAFT()
    rng = np.random.default_rng(2024)
    tau = weibull_scenario("I", EULER_GAMMA, 0.75).tau
    estimates, errors = [], []
    for _ in range(400):
        x, t, event = simulate_arrays(rng, 300, tau=tau)
        fit = model.estimate(model.regressors(x), np.log(t), event.astype(float))
        estimates.append(fit.theta)
        errors.append(fit.se)
    estimates, errors = np.array(estimates), np.array(errors)
    spread = estimates.std(axis=0, ddof=1)
    assert np.all(
        np.abs(estimates.mean(axis=0) - THETA) < 4 * spread / math.sqrt(400) + 0.02 * spread
    )
    ratio = errors.mean(axis=0) / spread
    assert np.all((ratio > 0.88) & (ratio < 1.12)), ratio


def test_mle_on_large_data_is_close_to_the_truth():
    x, t, event = simulate_arrays(np.random.default_rng(8), 20_000, tau=60.0)
    fit = WeibullAFT().mle(trial(x, t, event))
    assert np.all(np.abs(fit.theta - THETA) < 4 * fit.se)


def test_mle_refuses_data_without_a_maximum():
    model = WeibullAFT()
    with pytest.raises(DataError, match=r"column 'event': no events among the 4 patients"):
        model.mle(trial([0.0, 0.5, 1.0, 1.0], [5.0, 5.0, 5.0, 5.0], [0, 0, 0, 0]))
    with pytest.raises(DataError, match=r"column 'event': 2 events .* needs at least 4"):
        model.mle(trial([0.0, 0.5, 1.0, 1.0], [1.0, 2.0, 5.0, 5.0], [1, 1, 0, 0]))
    with pytest.raises(DataError, match=r"column 'dose': 2 distinct doses \(0, 1\); the degree-2"):
        model.mle(trial([0.0, 0.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0], [1] * 5))
    # every patient at dose 1 censored: the curve can move later there without bound
    x = np.repeat([0.0, 0.5, 1.0], 10)
    t = np.r_[np.linspace(1, 3, 10), np.linspace(2, 6, 10), np.full(10, 7.0)]
    event = np.r_[np.ones(20, dtype=int), np.zeros(10, dtype=int)]
    with pytest.raises(MLENotFound, match=r"MLE does not exist.*events \(at doses 0, 0.5\).*\(1\)"):
        model.mle(trial(x, t, event))
    assert issubclass(MLENotFound, DataError)
    mode = model.map_estimate(trial(x, t, event))  # the fallback always exists
    assert mode.penalised and np.all(np.isfinite(mode.theta))
    assert np.all(np.linalg.eigvalsh(mode.observed_information) > 0)


def test_bad_data_raise_data_error_naming_column_row_value():
    with pytest.raises(DataError, match=r"column 'time', row 1: value 0.0 must be > 0"):
        trial([0.0, 0.5], [1.0, 0.0], [1, 1])
    with pytest.raises(DataError, match=r"column 'time', row 0: value -2.0 must be > 0"):
        trial([0.0, 0.5], [-2.0, 1.0], [1, 1])
    with pytest.raises(DataError, match=r"column 'event', row 1: value 2 must be 0 or 1"):
        trial([0.0, 0.5], [1.0, 1.0], [1, 2])
    data = trial([0.0, 1.5, 0.5, 1.0], [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1])
    model = WeibullAFT()
    with pytest.raises(DataError, match=r"column 'dose', row 1: value 1.5 is outside the design"):
        model.mle(data)
    with pytest.raises(DataError, match=r"column 'dose', row 1: value 1.5 is outside"):
        model.fit(data, engine="laplace")
    with pytest.raises(DataError, match=r"needs column 'time'"):
        model.check_data(TrialData.from_dataframe(pd.DataFrame({"dose": [0.5], "y": [1.0]})))
    with pytest.raises(DataError, match="no events"):
        model.fit(trial([0.0, 0.5, 1.0], [3.0, 3.0, 3.0], [0, 0, 0]), engine="nuts")
    # A covariate of labels failed in numpy's words ("could not convert string to float").
    frame = pd.DataFrame(
        {"dose": [0.0, 0.5], "time": [1.0, 2.0], "event": [1, 1], "sex": ["m", "f"]}
    )
    labelled = TrialData.from_dataframe(frame, covariates=("sex",))
    with pytest.raises(DataError, match=r"column 'sex' \(row 0\) holds 'm', not a number"):
        WeibullAFT(covariates=("sex",)).check_data(labelled)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"degree": -1}, "degree must be an integer >= 0"),
        ({"dose_range": (1.0, 0.0)}, "dose_range must have lo < hi"),
        ({"beta_prior_sd": (1.0, 0.0, 1.0)}, r"beta_prior_sd\[1\] must be > 0"),
        ({"beta_prior_mean": (1.0, 2.0)}, "beta_prior_mean must have 3 values"),
        ({"b_prior_sigma": 0.0}, "b_prior_sigma must be > 0"),
        ({"follow_up": -1.0}, "follow_up must be > 0"),
        ({"dose_grid": (0.0, 2.0)}, "dose_grid must be non-empty and inside dose_range"),
    ],
)
def test_options_are_validated_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        WeibullAFT(**options)


def test_a_theta_without_a_parameter_and_a_zero_tau_are_named():
    # Were a bare KeyError 'beta' and "math domain error".
    model = WeibullAFT()
    with pytest.raises(ValueError, match=r"theta has no 'beta' \(it needs beta, b\)"):
        model.theta({"b": 1.0})
    with pytest.raises(ValueError, match=r"tau must be > 0, got 0\.0"):
        model.information_points(np.array([0.5]), THETA[None, :], 0.0)


def test_theta_forms_and_derived_curves():
    model = WeibullAFT()
    as_dict = {"beta": (1.9, 0.6, 2.8), "b": EULER_GAMMA}
    np.testing.assert_array_equal(model.theta(as_dict), THETA)
    assert model.median_time(0.0, as_dict) == pytest.approx(
        math.exp(1.9) * math.log(2) ** EULER_GAMMA
    )
    p = model.event_probability(np.array([0.0, 0.5, 1.0]), as_dict, tau=TAU)
    assert p.mean() == pytest.approx(0.5, abs=1e-4)  # tau = 14.887 calibrates 50% events
    assert model.event_probability(0.5, as_dict) == 1.0
    with pytest.raises(ValueError, match="theta must have 4 values"):
        model.theta((1.0, 2.0))
    with pytest.raises(ValueError, match="b > 0"):
        model.theta((1.0, 2.0, 3.0, -1.0))


def test_covariates_enter_the_likelihood():
    rng = np.random.default_rng(5)
    x, t, _ = simulate_arrays(rng, 400, tau=60.0)
    z = rng.normal(size=400)
    t = np.minimum(t * np.exp(0.5 * z), 60.0)
    frame = pd.DataFrame({"dose": x, "time": t, "event": (t < 60.0).astype(int), "age": z})
    data = TrialData.from_dataframe(frame, covariates=("age",))
    model = WeibullAFT(covariates=("age",))
    fit = model.mle(data)
    assert fit.names == ("beta_0", "beta_1", "beta_2", "gamma_age", "b")
    assert abs(fit.theta[3] - 0.5) < 4 * fit.se[3]
    with pytest.raises(ValueError, match="without covariates"):
        model.information(0.5, fit.theta, tau=60.0)


# ------------------------------------------------------------------ engines


def test_laplace_engine_returns_the_nuts_schema_and_a_posterior():
    rng = np.random.default_rng(6)
    data = trial(*simulate_arrays(rng, 120, tau=150.0))
    model = WeibullAFT()
    idata = model.fit(data, engine="laplace", draws=300, chains=2, random_seed=1)
    assert set(idata.children) == {"posterior", "sample_stats", "observed_data", "constant_data"}
    posterior = idata["posterior"]
    assert posterior["beta"].dims == ("chain", "draw", "coef")
    assert posterior["median_time"].dims == ("chain", "draw", "dose")
    assert posterior["b"].shape == (2, 300)
    assert idata.attrs["engine"] == "laplace"
    fast = model.posterior(data)
    assert fast.mode is not None and fast.mode.penalised and fast.theta.shape == (2000, 4)
    assert fast.rates == {} and fast.median_time.shape == (2000, 21)
    read = model.posterior_from_idata(idata)
    assert read.theta.shape == (600, 4) and read.report.ok
    error = np.abs(read.theta.mean(0) - fast.mode.theta)
    assert np.all(error < 5 * fast.mode.se / math.sqrt(600) + 1e-3), error
    # with the weak default prior the mode is close to the MLE
    mle = model.mle(data)
    assert np.all(np.abs(fast.mode.theta - mle.theta) < 0.1 * mle.se)


def test_nuts_fit_schema_and_predictive_events():
    rng = np.random.default_rng(7)
    x, t, event = simulate_arrays(rng, 60, tau=60.0)
    data = trial(x, t, event)
    model = WeibullAFT(follow_up=60.0)
    idata = model.fit(data, engine="nuts", draws=200, tune=300, random_seed=2)
    posterior = idata["posterior"]
    assert {"beta", "b", "median_time"} <= set(posterior.data_vars)
    assert "time" in idata["observed_data"].data_vars
    extended = model.sample_posterior_predictive(idata, data, random_seed=3)
    replicate = extended["posterior_predictive"]
    assert replicate["time"].max() <= 60.0
    censored = replicate["time"] > 60.0 * (1 - 1e-9)
    np.testing.assert_array_equal(replicate["event"], (~censored).astype(int))
    assert 0.2 < float(censored.mean()) < 0.8
    prior = model.sample_prior_predictive(draws=20, random_seed=1)
    assert prior["prior"]["median_time"].shape == (1, 20, 21)


def test_predictive_check_compares_event_counts_only_with_a_follow_up():
    # Without a follow-up a patient with an event replicates one every time: the event
    # count's p-value was at least 0.5 whatever the fit (0.996 and 0.988 on a real example).
    rng = np.random.default_rng(11)
    data = trial(*simulate_arrays(rng, 40, tau=60.0))
    statistics = {}
    for follow_up in (None, 60.0):
        model = WeibullAFT(follow_up=follow_up)
        idata = model.fit(data, engine="laplace", draws=300, chains=2, random_seed=1)
        check = model.posterior_predictive_check(idata, data, random_seed=2)
        statistics[follow_up] = list(check["statistic"].values)
    assert statistics[None] == ["time mean", "time sd"]
    assert statistics[60.0] == ["time mean", "time sd", "event count"]


@pytest.mark.slow
def test_nuts_agrees_with_the_mle_on_large_data():
    rng = np.random.default_rng(9)
    data = trial(*simulate_arrays(rng, 1500, tau=60.0))
    model = WeibullAFT()
    fit = model.mle(data)
    idata = model.fit(data, engine="nuts", draws=1000, tune=1000, random_seed=4)
    posterior = model.posterior_from_idata(idata)
    assert posterior.report.ok, posterior.report.failures
    # posterior mean within 0.25 SE of the MLE, posterior sd within 10% of the SE
    assert np.all(np.abs(posterior.theta.mean(0) - fit.theta) < 0.25 * fit.se)
    np.testing.assert_allclose(posterior.theta.std(0), fit.se, rtol=0.1)
