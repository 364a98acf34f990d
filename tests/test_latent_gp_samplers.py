"""The latent GP samplers target the PyMC model's posterior: NUTS agreement and SBC.

Three engines sample one PyMC model (``LatentGP.build``): NUTS (the reference), the PyMC
step methods (elliptical slice on the whitened latent + slice on log sigma_f) and the numba
kernel. Agreement is judged by z-scores of the difference in means and quantiles over their
Monte Carlo standard errors (dosezoo.validation.agreement_z). Simulation-based calibration
draws parameters and data from PyMC's forward sampler; its negative control is a sampler
that believes the log-normal prior of sigma_f is centred one unit too high.
"""

import math

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats
from scipy.special import expit

from dosezoo.data import TrialData
from dosezoo.models.latent_gp import LatentGP
from dosezoo.samplers import latent_gp_kernels as kernels
from dosezoo.samplers.latent_gp import LatentGPLayout, LogSigmaSlice, latent_gp_steps
from dosezoo.validation import agreement_z, simulation_based_calibration

LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
MODEL = LatentGP.from_quantiles(LEVELS, 0.3, prior_mtd_level=2)
DATA = TrialData.from_dataframe(
    pd.DataFrame(
        {
            "dose": [1.0] * 3 + [2.0] * 3 + [3.0] * 6 + [4.0] * 3,
            "dlt": [0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0],
        }
    )
)
Z_LIMIT = 4.0
#: The SBC design: three patients at each dose.
SBC_DOSES = np.repeat(LEVELS, 3)
KEPT, THIN = 990, 10  # 99 thinned draws: ranks 0..99 fall evenly into 10 bins
ALPHA = 0.001


def _z_scores(reference, other):
    scores = {"sigma_f": agreement_z(other["sigma_f"], reference["sigma_f"])}
    for k in range(len(LEVELS)):
        scores[f"p_dlt[{k}]"] = agreement_z(other["p_dlt"][..., k], reference["p_dlt"][..., k])
    return {name: max(z.values()) for name, z in scores.items()}


def _arrays(idata):
    posterior = idata["posterior"]
    return {"sigma_f": posterior["sigma_f"].values, "p_dlt": posterior["p_dlt"].values}


@pytest.fixture(scope="module")
def nuts():
    return _arrays(MODEL.fit(DATA, engine="nuts", draws=1000, tune=1000, chains=2, random_seed=11))


# ---------------------------------------------------------------- pieces


def test_log_likelihood_is_the_binomial_one():
    f = np.array([-3.0, -1.0, 0.0, 2.0, 40.0])
    n, y = np.array([3.0, 6.0, 2.0, 4.0, 1.0]), np.array([0.0, 2.0, 1.0, 4.0, 1.0])
    binomial = stats.binom.logpmf(y, n, expit(f)).sum()
    constant = sum(math.log(math.comb(int(a), int(b))) for a, b in zip(n, y, strict=True))
    assert kernels.log_likelihood(f, n, y) == pytest.approx(binomial - constant)


def test_layout_reads_the_model_and_its_data():
    model = MODEL.build(DATA)
    layout = LatentGPLayout(model)
    n, y = layout.observations()
    assert n.tolist() == [3, 3, 6, 3, 0] and y.tolist() == [0, 1, 2, 2, 0]
    assert np.allclose(layout.chol, MODEL.chol) and np.allclose(layout.mean, MODEL.prior_mean)
    with pytest.raises(ValueError, match=r"LogSigmaSlice updates \['sigma_f'\]"):
        LogSigmaSlice([model["z"]], model=model)
    with pytest.raises(ValueError, match="not a LatentGP model"):
        with pm.Model():
            pm.Normal("x")
            LatentGPLayout(pm.modelcontext(None))


def test_kernel_and_step_methods_share_the_moves():
    """One sweep of the step methods equals one sweep of the kernel from the same generators."""
    model = MODEL.build(DATA)
    steps = latent_gp_steps(model)
    n, y = MODEL.counts(DATA)
    mean, chol = np.asarray(MODEL.prior_mean), MODEL.chol
    point = model.initial_point()
    point["z"] = np.full(5, 0.3)
    for step, rng in zip(steps, np.random.default_rng(5).spawn(3), strict=True):
        step.rng = rng
    after = point
    for step in steps:
        after, _ = step.step(after)
    ref = np.random.default_rng(5).spawn(3)
    t = float(point["sigma_f_log__"])
    z, _ = kernels.elliptical_slice(ref[0], np.full(5, 0.3), t, chol, mean, n, y)
    mu, sd, width = MODEL.log_sigma_mu, MODEL.log_sigma_sd, MODEL.slice_width
    z_c, t_c, _ = kernels.slice_log_sigma_centred(ref[1], z, t, mu, sd, width)
    f_before = kernels.whitened_to_latent(z, t, chol, mean)
    assert np.allclose(kernels.whitened_to_latent(z_c, t_c, chol, mean), f_before)  # f kept
    t_n, _ = kernels.slice_log_sigma(ref[2], z_c, t_c, chol, mean, n, y, mu, sd, width)
    assert np.allclose(after["z"], z_c) and float(after["sigma_f_log__"]) == pytest.approx(t_n)
    assert list(after) == list(point)  # key order kept


# ---------------------------------------------------------------- NUTS agreement


def test_kernel_agrees_with_nuts(nuts):
    kernel = _arrays(MODEL.fit(DATA, engine="kernel", draws=4000, tune=500, random_seed=12))
    scores = _z_scores(nuts, kernel)
    assert max(scores.values()) < Z_LIMIT, scores


def test_step_methods_agree_with_nuts(nuts):
    steps = _arrays(MODEL.fit(DATA, engine="pymc", draws=1000, tune=200, random_seed=13))
    scores = _z_scores(nuts, steps)
    assert max(scores.values()) < Z_LIMIT, scores


def test_agreement_detects_a_wrong_sampler(nuts):
    """Negative control: the kernel with the sigma_f prior centred one unit too high."""
    n, y = MODEL.counts(DATA)
    rng = np.random.default_rng(14)
    z, t, _ = kernels.run_chain(
        rng,
        np.zeros(5),
        MODEL.log_sigma_mu,
        MODEL.chol,
        np.asarray(MODEL.prior_mean),
        n,
        y,
        MODEL.log_sigma_mu + 1.0,
        MODEL.log_sigma_sd,
        MODEL.slice_width,
        500,
        8000,
    )
    wrong = {"sigma_f": np.exp(t).reshape(2, -1)}
    wrong["p_dlt"] = kernels.dlt_probabilities(z, t, MODEL.chol, np.asarray(MODEL.prior_mean))
    wrong["p_dlt"] = wrong["p_dlt"].reshape(2, -1, 5)
    assert _z_scores(nuts, wrong)["sigma_f"] > Z_LIMIT


def test_kernel_mixes():
    raw = MODEL.sample_kernel(*MODEL.counts(DATA), draws=2000, tune=200, chains=1, random_seed=3)
    ess = [float(az.ess(raw["p_dlt"][..., k])) for k in range(5)]
    assert min(ess) > 800, ess  # of 2000 draws
    assert float(az.ess(np.exp(raw["log_sigma_f"]))) > 300


# ---------------------------------------------------------------- SBC


def _sbc(n_reps, seed, *, sampler_mu_shift=0.0, engine="kernel"):
    pm_model = MODEL.build(
        TrialData.from_dataframe(pd.DataFrame({"dose": SBC_DOSES, "dlt": np.zeros(15, int)}))
    )
    sigma, p, dlt = pm.draw(
        [pm_model["sigma_f"], pm_model["p_dlt"], pm_model["dlt"]], draws=n_reps, random_seed=seed
    )
    truth = {"sigma_f": sigma, **{f"p_dlt[{k}]": p[:, k] for k in range(5)}}
    level = np.searchsorted(LEVELS, SBC_DOSES)
    mean = np.asarray(MODEL.prior_mean)

    def kernel_fit(y, seed_sequence):
        n = np.bincount(level, minlength=5).astype(float)
        counts = np.bincount(level, weights=y, minlength=5).astype(float)
        z, t, _ = kernels.run_chain(
            np.random.default_rng(seed_sequence),
            np.zeros(5),
            MODEL.log_sigma_mu,
            MODEL.chol,
            mean,
            n,
            counts,
            MODEL.log_sigma_mu + sampler_mu_shift,
            MODEL.log_sigma_sd,
            MODEL.slice_width,
            200,
            KEPT,
        )
        probs = kernels.dlt_probabilities(z, t, MODEL.chol, mean)
        return {"sigma_f": np.exp(t), **{f"p_dlt[{k}]": probs[:, k] for k in range(5)}}

    def pymc_fit(y, seed_sequence):
        data = TrialData.from_dataframe(pd.DataFrame({"dose": SBC_DOSES, "dlt": y.astype(int)}))
        idata = MODEL.fit(
            data,
            engine="pymc",
            draws=KEPT,
            tune=200,
            chains=1,
            random_seed=int(seed_sequence.generate_state(1)[0]),
        )
        post = idata["posterior"]
        return {
            "sigma_f": post["sigma_f"].values,
            **{f"p_dlt[{k}]": post["p_dlt"].values[..., k] for k in range(5)},
        }

    fit = kernel_fit if engine == "kernel" else pymc_fit
    return simulation_based_calibration(truth, list(dlt), fit, thin=THIN, random_seed=seed + 1)


def test_kernel_sbc_quick():
    result = _sbc(300, 100)
    assert result.n_draws == KEPT // THIN
    p = result.p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p


def test_kernel_sbc_quick_rejects_the_wrong_prior():
    p = _sbc(300, 100, sampler_mu_shift=1.0).p_values(bins=10)
    assert min(p.values()) < ALPHA, p


@pytest.mark.slow
def test_kernel_sbc_thorough():
    p = _sbc(3000, 300).p_values(bins=10)
    print(f"SBC kernel, 3000 replications, chi-square p per variable: {p}")
    assert min(p.values()) > ALPHA / len(p), p


@pytest.mark.slow
def test_kernel_sbc_thorough_rejects_a_subtly_wrong_prior():
    p = _sbc(3000, 400, sampler_mu_shift=0.3).p_values(bins=10)
    print(f"SBC negative control (mu + 0.3), 3000 replications, chi-square p: {p}")
    assert min(p.values()) < ALPHA, p


@pytest.mark.slow
def test_step_methods_sbc():
    p = _sbc(200, 500, engine="pymc").p_values(bins=10)
    print(f"SBC step methods, 200 replications, chi-square p per variable: {p}")
    assert min(p.values()) > ALPHA / len(p), p
