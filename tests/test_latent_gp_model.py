"""Latent-logit GP model: prior mean (Seno et al. 2025, 4.2.1), eq (21), schema and bad input."""

import math

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats
from scipy.special import expit, logit

from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.models.latent_gp import (
    LatentGP,
    effective_sample_size,
    equal_spacing,
    quantile_prior_mean,
    sigma_f_lognormal,
)

LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
TARGET, MARGIN, Q = 0.3, 0.05, 0.8


def _data(doses, dlts):
    return TrialData.from_dataframe(pd.DataFrame({"dose": doses, "dlt": dlts}))


# ------------------------------------------------------------------ eq (21)


def test_sigma_f_prior_has_the_plausible_range_as_its_central_95_percent_interval():
    mu, sd = sigma_f_lognormal((0.5, 2.0))
    prior = stats.lognorm(s=sd, scale=math.exp(mu))
    assert prior.ppf(0.025) == pytest.approx(0.5, rel=1e-3)
    assert prior.ppf(0.975) == pytest.approx(2.0, rel=1e-3)


def test_pymc_prior_of_sigma_f_matches_eq_21():
    model = LatentGP.from_quantiles(LEVELS, TARGET, sigma_f_range=(0.3, 3.0))
    draws = pm.draw(model.build(_data([], []))["sigma_f"], draws=20000, random_seed=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    assert low == pytest.approx(0.3, rel=0.05)
    assert high == pytest.approx(3.0, rel=0.05)


# ------------------------------------------------------------------ prior mean, 4.2.1


@pytest.fixture(scope="module")
def worked_example():
    """Section 4.2.1's example: five equally spaced doses, target 0.3, margin 0.05."""
    mu, sd = sigma_f_lognormal((0.5, 2.0))
    scale = math.exp(mu + sd**2 / 2)
    x = equal_spacing(5)
    by_case = {
        level: quantile_prior_mean(
            TARGET,
            x,
            sigma_f_mean=scale,
            margin=MARGIN,
            prob_low=Q,
            prob_high=Q,
            prior_mtd_level=level,
        )
        for level in (None, 0, 1, 2, 3, 4)
    }
    return x, scale, by_case


def test_end_points_satisfy_the_prior_statements(worked_example):
    _, scale, by_case = worked_example
    m = by_case[None]
    # P(p_1 < phi - delta) = q_1 and P(p_K > phi + delta) = q_K under f ~ N(m, sigma_bar^2).
    assert stats.norm(m[0], scale).cdf(logit(TARGET - MARGIN)) == pytest.approx(Q)
    assert stats.norm(m[-1], scale).sf(logit(TARGET + MARGIN)) == pytest.approx(Q)
    assert np.allclose(np.diff(m, 2), 0)  # linear in between
    assert np.all(np.diff(m) > 0)


def test_prior_mtd_cases_i_to_iv(worked_example):
    _, _, by_case = worked_example
    m1, mk, at = by_case[None][0], by_case[None][-1], logit(TARGET)
    for level, m in by_case.items():
        if level is None:
            continue
        assert m[level] == pytest.approx(at), level  # the prior MTD sits at the target
        assert np.allclose(np.diff(m, 2), 0), level  # one straight line
        assert np.all(np.diff(m) > 0), level
    assert by_case[0][-1] == pytest.approx(mk)  # (i): through (x_1, logit phi), (x_K, m_K)
    assert by_case[1][-1] == pytest.approx(mk)  # (ii): anchored on the highest dose
    assert by_case[2][-1] == pytest.approx(mk)  # (ii): the middle dose belongs to case (ii)
    assert by_case[3][0] == pytest.approx(m1)  # (iii): anchored on the lowest dose
    assert by_case[4][0] == pytest.approx(m1)  # (iv): through (x_1, m_1), (x_K, logit phi)
    # A higher prior MTD means a less toxic prior curve at every dose.
    for low, high in ((0, 1), (1, 2), (2, 3), (3, 4)):
        assert np.all(by_case[high] <= by_case[low] + 1e-12)


def test_from_quantiles_uses_the_prior_mean_of_sigma_f():
    model = LatentGP.from_quantiles(LEVELS, TARGET, prior_mtd_level=2)
    expected = quantile_prior_mean(
        TARGET, equal_spacing(5), sigma_f_mean=model.sigma_f_mean, prior_mtd_level=2
    )
    assert np.allclose(model.prior_mean, expected)
    assert model.sigma_f_mean == pytest.approx(
        stats.lognorm(s=model.log_sigma_sd, scale=math.exp(model.log_sigma_mu)).mean()
    )


def test_initial_guess_prior_mean_is_its_logit():
    guess = (0.05, 0.1, 0.2, 0.3, 0.45)
    model = LatentGP.from_initial_guess(LEVELS, guess)
    assert np.allclose(expit(np.asarray(model.prior_mean)), guess)


def test_unequal_spacing_changes_the_correlation():
    equal = LatentGP.from_quantiles(LEVELS, TARGET)
    unequal = LatentGP.from_quantiles(LEVELS, TARGET, scaled_doses=(0.0, 0.1, 0.2, 0.6, 1.0))
    assert unequal.scaled_doses == (0.0, 0.1, 0.2, 0.6, 1.0)
    c_equal, c_unequal = equal.chol @ equal.chol.T, unequal.chol @ unequal.chol.T
    assert c_unequal[0, 1] > c_equal[0, 1]  # closer doses are more correlated
    assert np.allclose(np.diag(c_unequal), 1 + unequal.jitter)


def test_latent_between_interpolates_through_the_doses():
    model = LatentGP.from_quantiles(LEVELS, TARGET)
    z = np.random.default_rng(0).normal(size=(50, 5))
    f = np.asarray(model.prior_mean) + 1.5 * z @ model.chol.T  # draws of the GP at the doses
    at_doses = model.latent_between(f, np.asarray(model.scaled_doses))
    # exact up to the jitter, which acts as noise of sd sqrt(1e-6) * 1.5 on the latent scale
    assert np.allclose(at_doses, f, atol=5e-3)


# ------------------------------------------------------------------ model and schema


def test_build_has_p_dlt_on_dose_and_bernoulli_likelihood():
    model = LatentGP.from_quantiles(LEVELS, TARGET)
    data = _data([1.0, 1.0, 2.0], [0, 1, 0])
    pm_model = model.build(data)
    assert pm_model.named_vars_to_dims["p_dlt"] == ("dose",)
    point = pm_model.initial_point()
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs)(point)
    f = np.asarray(model.prior_mean)  # z = 0 at the initial point
    expected = stats.bernoulli(expit(f[[0, 0, 1]])).logpmf([0, 1, 0]).sum()
    assert float(logp) == pytest.approx(expected)


def test_kernel_fit_has_the_schema_of_pm_sample():
    model = LatentGP.from_quantiles(LEVELS, TARGET)
    data = _data([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], [0, 0, 0, 0, 1, 0])
    idata = model.fit(data, engine="kernel", draws=200, tune=50, chains=2, random_seed=3)
    assert idata["posterior"]["p_dlt"].dims == ("chain", "draw", "dose")
    assert idata["posterior"]["p_dlt"].shape == (2, 200, 5)
    assert list(idata["posterior"]["dose"].values) == list(LEVELS)
    assert set(idata.children) == {"posterior", "sample_stats", "observed_data", "constant_data"}
    again = model.fit(data, engine="kernel", draws=200, tune=50, chains=2, random_seed=3)
    assert np.array_equal(idata["posterior"]["p_dlt"].values, again["posterior"]["p_dlt"].values)
    # the cached builder follows new data
    other = _data([1.0, 1.0, 1.0], [1, 1, 0])
    moved = model.fit(other, engine="kernel", draws=50, tune=10, chains=1, random_seed=3)
    assert moved["observed_data"]["dlt"].values.tolist() == [1, 1, 0]


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_effective_sample_size_matches_arviz_on_ar1_chains(phi):
    rng = np.random.default_rng(7)
    noise = rng.normal(size=(20000, 2))
    x = np.empty_like(noise)
    x[0] = noise[0]
    for t in range(1, x.shape[0]):
        x[t] = phi * x[t - 1] + noise[t]
    ours = effective_sample_size(x)
    reference = [float(az.ess(x[None, :, j], method="mean")) for j in range(2)]
    assert np.allclose(ours, reference, rtol=0.1)
    theory = noise.shape[0] * (1 - phi) / (1 + phi)
    assert np.allclose(ours, theory, rtol=0.2)
    assert effective_sample_size(np.ones(50)) == 50


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior_mean": (0.0,) * 4}, "prior_mean has 4 values"),
        ({"prior_mean": (0.0, 0.0, math.nan, 0.0, 0.0)}, r"prior_mean\[2\] must be finite"),
        ({"scaled_doses": (0.0, 0.5, 0.4, 0.8, 1.0)}, r"scaled_doses\[2\]"),
        ({"scaled_doses": (0.0, 0.2, 0.4, 0.8, 1.5)}, r"scaled_doses\[4\]"),
        ({"length_scale": -1.0}, "length_scale must be > 0"),
        ({"sigma_f_range": (2.0, 0.5)}, "sigma_f_range must satisfy"),
        ({"jitter": 0.0}, "jitter must lie in"),
        ({"dose_levels": (1.0, 3.0, 2.0, 4.0, 5.0)}, "strictly increasing"),
    ],
)
def test_bad_hyper_parameters_are_named(kwargs, message):
    base = {"dose_levels": LEVELS, "prior_mean": (0.0,) * 5}
    base |= kwargs
    with pytest.raises(ValueError, match=message):
        LatentGP(base.pop("dose_levels"), base.pop("prior_mean"), **base)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.3}, "margin must be > 0"),
        ({"prob_low": 1.0}, "prob_low must lie in"),
        ({"prior_mtd_level": 5}, "prior_mtd_level must be an integer in"),
        ({"prior_mtd_level": True}, "prior_mtd_level must be an integer in"),
    ],
)
def test_bad_prior_statements_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatentGP.from_quantiles(LEVELS, TARGET, **kwargs)


def test_initial_guess_outside_0_1_is_named():
    with pytest.raises(ValueError, match=r"p_guess\[1\] must lie in"):
        LatentGP.from_initial_guess(LEVELS, (0.1, 1.0, 0.3, 0.4, 0.5))


def test_dose_off_the_levels_names_row_and_value():
    model = LatentGP.from_quantiles(LEVELS, TARGET)
    with pytest.raises(DataError, match=r"row 2: dose 2\.5"):
        model.fit(_data([1.0, 1.0, 2.5], [0, 0, 0]), engine="kernel", draws=10, tune=0)


def test_missing_dlt_and_bad_engine_are_refused():
    model = LatentGP.from_quantiles(LEVELS, TARGET)
    no_dlt = TrialData.from_dataframe(pd.DataFrame({"dose": [1.0], "y": [0.5]}))
    with pytest.raises(DataError, match="dlt"):
        model.fit(no_dlt, engine="kernel", draws=10, tune=0)
    with pytest.raises(ValueError, match="engine must be one of"):
        model.fit(_data([1.0], [0]), engine="gibbs")
    with pytest.raises(ValueError, match="draws must be an integer"):
        model.fit(_data([1.0], [0]), engine="kernel", draws=0)


# ------------------------------------------------------------ prior monotonicity (Appendix B)


def test_near_infinite_length_scale_gives_monotone_prior_draws():
    # f = m + sigma_f * (common shift): the increasing prior mean is kept by every draw.
    model = LatentGP.from_quantiles(LEVELS, target=0.3, length_scale=1e4)
    assert np.all(np.diff(model.prior_mean) > 0)
    p, se = model.prior_monotone_probability(5000, random_seed=1)
    assert p > 0.999 and se < 0.001


def test_independent_doses_with_a_flat_mean_are_monotone_with_probability_one_over_k_factorial():
    # A tiny length-scale makes the K values independent and exchangeable: 1/K! orderings.
    model = LatentGP((1.0, 2.0, 3.0, 4.0), (0.0, 0.0, 0.0, 0.0), length_scale=1e-3)
    p, se = model.prior_monotone_probability(40000, random_seed=2)
    assert abs(p - 1 / math.factorial(4)) < 4 * se


def test_two_dose_monotone_probability_matches_a_quadrature_over_sigma_f():
    # P(f_2 > f_1) = E[Phi(dm / (sigma_f sqrt(2 + 2 jitter - 2 rho)))], log sigma_f normal.
    from scipy import integrate

    model = LatentGP((1.0, 2.0), (-1.0, -0.6), length_scale=0.7)
    rho = math.exp(-0.5 / 0.7**2)
    scale = math.sqrt(2 + 2 * model.jitter - 2 * rho)
    mu, sd = model.log_sigma_mu, model.log_sigma_sd

    def integrand(u: float) -> float:
        return stats.norm.pdf(u) * stats.norm.cdf(0.4 / (math.exp(mu + sd * u) * scale))

    expected, _ = integrate.quad(integrand, -10, 10)
    p, se = model.prior_monotone_probability(40000, random_seed=3)
    assert abs(p - expected) < 4 * se


def test_prior_monotone_probability_takes_another_mean_and_names_bad_input():
    model = LatentGP.from_quantiles(LEVELS, target=0.3, length_scale=1e4)
    p, _ = model.prior_monotone_probability(2000, random_seed=4, mean=np.zeros(5) - np.arange(5))
    assert p < 0.001  # a decreasing mean with a rigid shift is never increasing
    with pytest.raises(ValueError, match="n_draws"):
        model.prior_monotone_probability(0)
    with pytest.raises(ValueError, match="mean must be 5"):
        model.prior_monotone_probability(10, mean=[0.0, 1.0])


@pytest.mark.parametrize(
    ("doses", "options", "message"),
    [
        # NaN passed through to the mean; doses off [0, 1] were taken
        ([0.0, np.nan, 1.0], {}, r"increasing values in \[0, 1\]"),
        ([-1.0, 0.0, 2.0], {}, r"increasing values in \[0, 1\]"),
        # probabilities below 1/2 gave a mean decreasing with the dose, silently
        (
            np.linspace(0, 1, 5),
            {"prob_low": 0.2, "prob_high": 0.2},
            "prior mean that decreases with the dose",
        ),
    ],
)
def test_the_quantile_prior_mean_refuses_what_no_increasing_curve_gives(doses, options, message):
    with pytest.raises(ValueError, match=message):
        quantile_prior_mean(0.25, doses, sigma_f_mean=1.0, **options)
