"""The joint latent-probit model: exact rectangle likelihood, deterministics, priors, bad input."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import ndtr, ndtri
from scipy.stats import truncnorm

from dosezoo.data import DataError, TrialData
from dosezoo.models.joint_probit import (
    CELLS,
    PARAMETERS,
    TOXIC_RESPONSES,
    JointProbit,
    JointProbitPrior,
    bivariate_normal_cdf_numpy,
    cell_probabilities,
)

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)


def small_data() -> TrialData:
    return TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": [10, 10, 10, 20, 20, 20, 40, 40, 40, 80, 80, 80],
                "dlt": [0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0],
                "efficacy": [0, 0, 1, 0, 1, 1, 1, 2, 1, 2, 1, 0],
            }
        )
    )


@pytest.fixture(scope="module")
def model():
    return JointProbit(LEVELS)


# ---------------------------------------------------------------- rectangle likelihood


def test_bivariate_normal_cdf_matches_scipy():
    grid = np.linspace(-4, 4, 9)
    worst = 0.0
    for rho in (-0.99, -0.9, -0.5, 0.0, 0.3, 0.8, 0.95, 0.99):
        h, k = np.meshgrid(grid, grid)
        ours = bivariate_normal_cdf_numpy(h, k, rho)
        reference = stats.multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf(
            np.stack([h.ravel(), k.ravel()], axis=1)
        )
        worst = max(worst, float(np.max(np.abs(ours.ravel() - reference))))
    # SciPy's own default tolerance is about 1e-8; the quadrature is far below it.
    assert worst < 1e-7


@pytest.mark.parametrize(
    ("mu_tox", "mu_eff", "threshold", "rho"),
    [(-0.5, 0.3, 0.8, 0.6), (0.4, -1.0, 0.3, -0.7), (-1.5, 1.2, 1.5, 0.0), (0.0, 0.0, 0.5, 0.95)],
)
def test_rectangle_probabilities_match_monte_carlo(mu_tox, mu_eff, threshold, rho):
    """Simulate the latent pair itself, cut it, and compare the cell counts (chi-square)."""
    rng = np.random.default_rng(11)
    n = 200_000
    z = rng.multivariate_normal([mu_tox, mu_eff], [[1, rho], [rho, 1]], size=n)
    tox = (z[:, 0] > 0).astype(int)
    eff = np.where(z[:, 1] <= 0, 0, np.where(z[:, 1] <= threshold, 1, 2))
    counts = np.bincount(3 * tox + eff, minlength=6)
    probs = cell_probabilities(np.array(mu_tox), np.array(mu_eff), threshold, rho, lib=np)
    assert probs.shape == (6,) and len(CELLS) == 6
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(probs > 0)
    assert stats.chisquare(counts, n * probs).pvalue > 1e-3


def test_marginals_of_the_cells_are_the_probit_rates():
    probs = cell_probabilities(np.array([0.3]), np.array([-0.2]), 0.7, -0.4, lib=np)[0]
    assert probs[3:].sum() == pytest.approx(ndtr(0.3), abs=1e-10)  # P(T = 1)
    assert probs[[1, 2, 4, 5]].sum() == pytest.approx(ndtr(-0.2), abs=1e-10)  # P(E >= 1)
    assert probs[[2, 5]].sum() == pytest.approx(ndtr(-0.2 - 0.7), abs=1e-10)  # P(E = 2)


def test_pymc_log_likelihood_is_the_sum_of_log_cells(model):
    data = small_data()
    pm_model = model.build(data)
    point = {
        "alpha_tox": -0.3,
        "beta_tox": 1.1,
        "alpha_eff": 0.2,
        "beta_eff": 0.5,
        "gamma_eff": -0.4,
        "threshold": 0.9,
        "rho": 0.45,
    }
    values = {pm_model.rvs_to_values[pm_model[name]].name: value for name, value in point.items()}
    # To the value scale of the transformed variables.
    values["beta_tox_interval__"] = np.log(point["beta_tox"])
    values["threshold_log__"] = np.log(point["threshold"])
    values["rho_interval__"] = 2 * np.arctanh(point["rho"])
    loglik = pm_model.compile_fn(
        pm_model.logp(vars=pm_model.observed_RVs), inputs=pm_model.value_vars
    )
    x, tox, eff = model.arrays(data)
    mu_t = point["alpha_tox"] + point["beta_tox"] * x
    mu_e = point["alpha_eff"] + point["beta_eff"] * x + point["gamma_eff"] * x**2
    cells = cell_probabilities(mu_t, mu_e, point["threshold"], point["rho"], lib=np)
    expected = np.sum(np.log(cells[np.arange(x.size), 3 * tox + eff]))
    assert float(loglik(values)) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------- deterministics


def test_deterministics_are_the_per_dose_rates(model):
    idata = model.fit(small_data(), engine="kernel", draws=200, tune=100, random_seed=3)
    posterior = idata["posterior"]
    assert list(posterior["p_tox"].dims) == ["chain", "draw", "dose"]
    np.testing.assert_array_equal(posterior["dose"].to_numpy(), LEVELS)
    rates = model.dose_probabilities({n: posterior[n].to_numpy() for n in PARAMETERS})
    for name, values in rates.items():
        np.testing.assert_allclose(posterior[name].to_numpy(), values, rtol=1e-9, atol=1e-12)
    low, high = model.tox_interval
    met = (rates["p_tox"] >= low) & (rates["p_tox"] <= high)
    met &= rates["p_response"] >= model.efficacy_threshold
    np.testing.assert_array_equal(posterior["target_met"].to_numpy(), met.astype(float))
    # Toxicity increases with dose in every draw (beta_tox > 0).
    assert np.all(np.diff(posterior["p_tox"].to_numpy(), axis=-1) > 0)


def test_kernel_fit_is_reproducible_and_seeded(model):
    data = small_data()
    a = model.fit(data, engine="kernel", draws=100, tune=50, random_seed=5)
    b = model.fit(data, engine="kernel", draws=100, tune=50, random_seed=5)
    c = model.fit(data, engine="kernel", draws=100, tune=50, random_seed=6)
    np.testing.assert_array_equal(a["posterior"]["rho"], b["posterior"]["rho"])
    assert not np.array_equal(a["posterior"]["rho"], c["posterior"]["rho"])
    assert a.attrs["engine"] == "kernel" and a.attrs["model"] == "JointProbit"


def test_kernel_and_step_method_outputs_have_the_same_schema(model):
    data = small_data()
    kernel = model.fit(data, engine="kernel", draws=20, tune=10, random_seed=1)
    steps = model.fit(data, engine="pymc", draws=20, tune=10, random_seed=1)
    assert set(kernel.children) == set(steps.children)
    for group in ("posterior", "observed_data", "constant_data"):
        a, b = kernel[group], steps[group]
        assert list(a.data_vars) == list(b.data_vars), group
        for name in a.data_vars:
            assert a[name].dims == b[name].dims and a[name].shape == b[name].shape, name
    assert set(kernel["sample_stats"].data_vars) == set(steps["sample_stats"].data_vars)


# ---------------------------------------------------------------- priors and predictive


def test_prior_statements_set_the_probit_means():
    prior = JointProbitPrior.from_statements(
        tox_lowest=0.05,
        tox_highest=0.5,
        response_lowest=0.1,
        response_highest=0.6,
        high_share_highest=0.4,
    )
    # Toxicity: the slope's normal is truncated to (0, inf), so the statements are matched
    # as prior medians; checked here on 400,000 independent draws from scipy's truncnorm.
    rng = np.random.default_rng(7)
    alpha = rng.normal(prior.alpha_tox_mean, prior.alpha_tox_sd, 400_000)
    lower = -prior.beta_tox_mean / prior.beta_tox_sd
    beta = truncnorm.rvs(
        lower,
        np.inf,
        loc=prior.beta_tox_mean,
        scale=prior.beta_tox_sd,
        size=400_000,
        random_state=rng,
    )
    # The median's Monte Carlo SE is about 1.25 sd / sqrt(n) = 0.003 on the probit scale.
    assert np.median(ndtr(alpha - beta)) == pytest.approx(0.05, abs=0.002)
    assert np.median(ndtr(alpha + beta)) == pytest.approx(0.5, abs=0.004)
    # The naive means alpha = (z_K + z_1)/2, beta = (z_K - z_1)/2 would miss the top median.
    naive_beta = truncnorm.rvs(
        -(ndtri(0.5) - ndtri(0.05)) / 2,
        np.inf,
        loc=(ndtri(0.5) - ndtri(0.05)) / 2,
        size=400_000,
        random_state=rng,
    )
    naive_alpha = rng.normal((ndtri(0.5) + ndtri(0.05)) / 2, 1.0, 400_000)
    assert np.median(ndtr(naive_alpha + naive_beta)) > 0.55
    assert ndtr(prior.alpha_eff_mean - prior.beta_eff_mean) == pytest.approx(0.1)
    top = prior.alpha_eff_mean + prior.beta_eff_mean
    assert ndtr(top) == pytest.approx(0.6)
    # P(E = 2) at the highest dose, at the prior median of the cut point.
    assert ndtr(top - np.exp(prior.log_threshold_mean)) == pytest.approx(0.4 * 0.6)
    assert prior.gamma_eff_mean == 0.0


@pytest.mark.parametrize(
    ("lowest", "highest", "sd", "slope"),
    [
        # An independent solution (scipy's truncnorm, a 1-D root) of each: a two-dimensional
        # root search raised ZeroDivisionError for the first three (the truncated mass
        # underflowed) and refused the last as having no prior.
        (0.3, 0.31, 1.0, -70.02),
        (0.2, 0.35, 10.0, -437.78),
        (0.05, 0.45, 50.0, -3289.45),
        (0.05, 0.31, 0.1, 0.5745),
    ],
)
def test_prior_statements_are_matched_for_any_slope_location(lowest, highest, sd, slope):
    prior = JointProbitPrior.from_statements(
        tox_lowest=lowest, tox_highest=highest, coefficient_sd=sd
    )
    assert prior.beta_tox_mean == pytest.approx(slope, abs=0.01)
    z_low, z_high = ndtri(lowest), ndtri(highest)
    assert prior.alpha_tox_mean == pytest.approx((z_low + z_high) / 2, abs=1e-12)
    # The median of s eps + beta is (z_K - z_1) / 2, by quadrature of truncnorm's density.
    half = (z_high - z_low) / 2
    slope_law = truncnorm(-prior.beta_tox_mean / sd, np.inf, loc=prior.beta_tox_mean, scale=sd)
    below = integrate.quad(
        lambda b: slope_law.pdf(b) * ndtr((half - b) / sd),
        *slope_law.ppf([1e-12, 1 - 1e-12]),
        epsabs=1e-13,
    )[0]
    assert below == pytest.approx(0.5, abs=1e-7)


def test_prior_predictive_draws_rates_and_joint_outcomes(model):
    data = small_data()
    prior = model.sample_prior_predictive(data, draws=300, random_seed=2)
    assert prior["prior"]["p_tox"].shape == (1, 300, len(LEVELS))
    outcome = prior["prior_predictive"]["outcome"].to_numpy()
    np.testing.assert_array_equal(prior["prior_predictive"]["dlt"], outcome // 3)
    np.testing.assert_array_equal(prior["prior_predictive"]["efficacy"], outcome % 3)
    # The empirical toxicity rate at the lowest dose follows the prior's p_tox there.
    at_low = data.dose == LEVELS[0]
    simulated = prior["prior_predictive"]["dlt"].to_numpy()[0][:, at_low].mean()
    assert simulated == pytest.approx(float(prior["prior"]["p_tox"][0, :, 0].mean()), abs=0.05)


def test_posterior_predictive_replicates_every_patient(model):
    data = small_data()
    idata = model.fit(data, engine="kernel", draws=50, tune=50, random_seed=4)
    out = model.sample_posterior_predictive(idata, data, random_seed=5)
    assert "posterior_predictive" not in idata.children  # the input is left unchanged
    replicated = out["posterior_predictive"]
    assert replicated["efficacy"].shape == (2, 50, data.n_patients)
    assert set(np.unique(replicated["efficacy"])) <= {0, 1, 2}
    assert set(np.unique(replicated["dlt"])) <= {0, 1}


def test_the_predictive_check_counts_toxic_responses_which_read_rho(model):
    # The check compared the margins alone (DLTs, responses by category), which a wrong
    # correlation between the two outcomes leaves unchanged.
    data = small_data()
    idata = model.fit(data, engine="kernel", draws=400, tune=200, random_seed=4)
    check = model.posterior_predictive_check(idata, data, random_seed=5)
    counts = check.sel(statistic=TOXIC_RESPONSES)
    doses = counts["dose"].values
    toxic_response = (data.column("dlt") == 1) & (data.column("efficacy") >= 1)
    np.testing.assert_array_equal(
        counts["observed"].values, [toxic_response[data.dose == dose].sum() for dose in doses]
    )
    # Its replicated mean is the posterior mean of the patients' P(T = 1, E >= 1) summed per
    # dose, from the rectangle probabilities of each draw.
    draws = {n: idata["posterior"][n].to_numpy().reshape(-1, 1) for n in PARAMETERS}
    x = model.standardise(data.dose)
    cells = cell_probabilities(
        draws["alpha_tox"] + draws["beta_tox"] * x,
        draws["alpha_eff"] + draws["beta_eff"] * x + draws["gamma_eff"] * x**2,
        draws["threshold"],
        draws["rho"],
        lib=np,
    )
    per_patient = cells[..., CELLS.index("T1E1")] + cells[..., CELLS.index("T1E2")]
    for dose, replicated in zip(doses, counts["replicated_mean"].values, strict=True):
        expected = per_patient[:, data.dose == dose].sum(axis=1).mean()
        # 800 replicates of a count of at most 3 patients (sd <= 1.5): MC sd <= 0.053
        assert replicated == pytest.approx(expected, abs=0.2)


# ---------------------------------------------------------------- bad input


def test_efficacy_outside_0_1_2_is_refused_naming_row_and_value():
    with pytest.raises(DataError, match=r"column 'efficacy', row 1: value 3"):
        TrialData.from_dataframe(
            pd.DataFrame({"dose": [10, 20], "dlt": [0, 1], "efficacy": [1, 3]})
        )


def test_missing_toxicity_is_refused(model):
    no_dlt = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0], "efficacy": [1]}))
    with pytest.raises(DataError, match="needs column 'dlt'"):
        model.fit(no_dlt, engine="kernel")
    with pytest.raises(DataError, match=r"column 'dlt', row 1: value nan is NaN"):
        TrialData.from_dataframe(
            pd.DataFrame({"dose": [10, 20], "dlt": [0, np.nan], "efficacy": [1, 1]})
        )


def test_missing_efficacy_and_dose_outside_the_levels_are_refused(model):
    no_eff = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0], "dlt": [1]}))
    with pytest.raises(DataError, match="needs column 'efficacy'"):
        model.build(no_eff)
    far = TrialData.from_dataframe(
        pd.DataFrame({"dose": [10.0, 320.0], "dlt": [0, 1], "efficacy": [1, 1]})
    )
    with pytest.raises(DataError, match=r"row 1: dose 320.0 is outside"):
        model.fit(far, engine="kernel")
    with pytest.raises(DataError, match="needs at least 1 patient"):
        model.fit(TrialData.empty(outcomes=("dlt", "efficacy")), engine="kernel")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dose_levels": [10.0]}, "at least two"),
        ({"dose_levels": [10.0, 5.0]}, "strictly increasing"),
        ({"tox_interval": (0.4, 0.2)}, "low < high"),
        ({"tox_interval": (0.1, 1.2)}, r"tox_interval\[1\]"),
        ({"efficacy_threshold": 0.0}, "efficacy_threshold"),
        ({"prior": "flat"}, "JointProbitPrior"),
    ],
)
def test_bad_options_are_refused_naming_the_field(kwargs, message):
    options = {"dose_levels": LEVELS, **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        JointProbit(options.pop("dose_levels"), **options)


def test_bad_prior_statements_are_refused():
    with pytest.raises(ValueError, match="tox_lowest must be < tox_highest"):
        JointProbitPrior.from_statements(tox_lowest=0.4, tox_highest=0.3)
    with pytest.raises(ValueError, match="response_highest"):
        JointProbitPrior.from_statements(response_highest=1.0)
    values = JointProbitPrior.from_statements().as_dict() | {"beta_tox_sd": -1.0}
    with pytest.raises(ValueError, match="beta_tox_sd must be > 0"):
        JointProbitPrior(**values)


def test_bad_fit_options_are_refused(model):
    with pytest.raises(ValueError, match="engine must be one of"):
        model.fit(small_data(), engine="gibbs")
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        model.fit(small_data(), engine="kernel", draws=0)


def test_log_dose_is_standardised_on_the_lowest_and_highest_levels(model):
    np.testing.assert_allclose(model.standardise([10.0, 160.0, 40.0]), [-1.0, 1.0, 0.0])


# ---------------------------------------------------------------- predictive draws in numpy


def test_predictive_draws_never_run_pymcs_forward_sampler(model, monkeypatch):
    # PyMC's forward sampler compiles the bivariate normal quadrature on every call (~11 s of
    # CPU), which made the prior checks of a notebook take minutes; the draws are numpy's.
    import pymc as pm

    def refuse(*args, **kwargs):
        raise AssertionError("PyMC's forward sampler was called")

    monkeypatch.setattr(pm, "sample_prior_predictive", refuse)
    monkeypatch.setattr(pm, "sample_posterior_predictive", refuse)
    data = small_data()
    prior = model.sample_prior_predictive(data, draws=40, random_seed=1)
    assert prior["prior_predictive"]["outcome"].shape == (1, 40, data.n_patients)
    idata = model.fit(data, engine="kernel", draws=30, tune=30, random_seed=2)
    replicated = model.sample_posterior_predictive(idata, data, random_seed=3)
    assert replicated["posterior_predictive"]["outcome"].shape == (2, 30, data.n_patients)
    check = model.posterior_predictive_check(idata, data, random_seed=3)
    assert set(check["statistic"].values) == {
        "dlt count",
        "efficacy=0 count",
        "efficacy=1 count",
        "efficacy=2 count",
        TOXIC_RESPONSES,
    }


def test_prior_draws_have_the_schema_of_the_pymc_model(model):
    data = small_data()
    prior = model.sample_prior_predictive(data, draws=20, random_seed=4)
    pymc_model = model.build(data)
    named = {rv.name for rv in (*pymc_model.free_RVs, *pymc_model.deterministics)}
    assert set(prior["prior"].data_vars) == named
    for name in named:
        assert prior["prior"][name].dims[2:] == tuple(pymc_model.named_vars_to_dims.get(name, ()))
    assert set(prior["prior_predictive"].data_vars) == {"outcome", "dlt", "efficacy"}
    assert set(prior["constant_data"].data_vars) == {v.name for v in pymc_model.data_vars}
    np.testing.assert_array_equal(
        prior["observed_data"]["outcome"], 3 * data.column("dlt") + data.column("efficacy")
    )
    again = model.sample_prior_predictive(data, draws=20, random_seed=4)
    np.testing.assert_array_equal(
        again["prior_predictive"]["outcome"], prior["prior_predictive"]["outcome"]
    )


def test_prior_draws_follow_the_prior_distributions(model):
    draws = model.sample_prior_predictive(draws=4000, random_seed=5)["prior"]
    p = model.prior

    def values(name):
        return draws[name].to_numpy().ravel()

    references = {
        "alpha_tox": stats.norm(p.alpha_tox_mean, p.alpha_tox_sd),
        "beta_tox": truncnorm(
            -p.beta_tox_mean / p.beta_tox_sd, np.inf, loc=p.beta_tox_mean, scale=p.beta_tox_sd
        ),
        "alpha_eff": stats.norm(p.alpha_eff_mean, p.alpha_eff_sd),
        "beta_eff": stats.norm(p.beta_eff_mean, p.beta_eff_sd),
        "gamma_eff": stats.norm(p.gamma_eff_mean, p.gamma_eff_sd),
        "threshold": stats.lognorm(p.log_threshold_sd, scale=np.exp(p.log_threshold_mean)),
        "rho": stats.uniform(-1.0, 2.0),
    }
    for name, reference in references.items():
        assert stats.kstest(values(name), reference.cdf).pvalue > 1e-3, name
    rates = model.dose_probabilities({name: values(name) for name in PARAMETERS})
    for name, rate in rates.items():
        np.testing.assert_allclose(draws[name].to_numpy()[0], rate)
    met = (rates["p_tox"] >= 0.16) & (rates["p_tox"] <= 0.33) & (rates["p_response"] >= 0.2)
    np.testing.assert_array_equal(draws["target_met"].to_numpy()[0], met)


def test_predictive_cells_follow_the_rectangle_probabilities(model):
    data = small_data()
    prior = model.sample_prior_predictive(data, draws=6000, random_seed=6)
    post = prior["prior"]
    x = model.standardise(data.dose)
    mu_tox = post["alpha_tox"].to_numpy()[0][:, None] + post["beta_tox"].to_numpy()[0][:, None] * x
    mu_eff = (
        post["alpha_eff"].to_numpy()[0][:, None]
        + post["beta_eff"].to_numpy()[0][:, None] * x
        + post["gamma_eff"].to_numpy()[0][:, None] * x**2
    )
    cells = cell_probabilities(
        mu_tox,
        mu_eff,
        post["threshold"].to_numpy()[0][:, None],
        post["rho"].to_numpy()[0][:, None],
        lib=np,
    )
    outcome = prior["prior_predictive"]["outcome"].to_numpy()[0]
    for patient in (0, 6, 11):
        expected = cells[:, patient].mean(axis=0)
        seen = np.bincount(outcome[:, patient], minlength=len(CELLS)) / outcome.shape[0]
        # 6000 draws: a cell's frequency has sd <= 0.0065.
        np.testing.assert_allclose(seen, expected, atol=0.03)
