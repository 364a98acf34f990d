"""Each Gibbs move targets its exact full conditional; engines agree with NUTS; SBC.

The moves are checked against conditionals computed independently here with SciPy; the
whole sampler against NUTS on the PyMC model (rectangle likelihood, no latent variables) and
by simulation-based calibration, whose negative control (the slice on log(threshold) without
the Jacobian of the log, a deliberately wrong sampler of :mod:`dosezoo.validation`) must fail.
"""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from dosezoo.data import TrialData
from dosezoo.models.joint_probit import PARAMETERS, JointProbit
from dosezoo.samplers import joint_probit_kernels as kernels
from dosezoo.samplers.joint_probit import JointProbitLayout, LatentState, joint_probit_steps
from dosezoo.validation import agreement_z, draw_threshold_without_jacobian, joint_probit_sbc

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
MODEL = JointProbit(LEVELS)
SBC_DOSES = np.repeat(LEVELS, 3)
ALPHA = 0.001


def trial_data() -> TrialData:
    return TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": np.repeat(LEVELS[:4], 3),
                "dlt": [0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0],
                "efficacy": [0, 0, 1, 0, 1, 1, 1, 2, 1, 2, 1, 0],
            }
        )
    )


@pytest.fixture(scope="module")
def state():
    """A typical state of the augmented chain on the trial data, after burn-in."""
    x, tox, eff = MODEL.arrays(trial_data())
    prior = MODEL.prior.packed()
    rng = np.random.default_rng(7)
    theta = MODEL.initial_theta()
    theta[kernels.RHO] = 0.5
    z_tox, z_eff = kernels.initial_latents(rng, theta, x, tox, eff)
    for _ in range(300):
        kernels.sweep(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    return theta, x, tox, eff, z_tox, z_eff, prior


def _cdf_on_grid(grid, log_density):
    weights = np.exp(log_density - np.max(log_density))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (weights[1:] + weights[:-1]) * np.diff(grid))])
    return cdf / cdf[-1]


# ---------------------------------------------------------------- latent pairs


def test_latent_draws_are_exact_truncated_normals(state):
    theta, x, tox, eff, z_tox, z_eff, _ = state
    rng = np.random.default_rng(1)
    rho = theta[kernels.RHO]
    sd = np.sqrt(1 - rho**2)
    i = int(np.flatnonzero(eff == 1)[0])
    mu_t = theta[kernels.ALPHA_TOX] + theta[kernels.BETA_TOX] * x[i]
    mu_e = (
        theta[kernels.ALPHA_EFF]
        + theta[kernels.BETA_EFF] * x[i]
        + theta[kernels.GAMMA_EFF] * x[i] ** 2
    )
    draws_t, draws_e = [], []
    zt, ze = z_tox.copy(), z_eff.copy()
    for _ in range(3000):
        kernels.draw_latent_toxicity(rng, theta, x, tox, zt, ze)
        draws_t.append(zt[i])
        ze[i] = z_eff[i]  # hold Z_E fixed: this checks Z_T | Z_E
    mean = mu_t + rho * (z_eff[i] - mu_e)
    lo, hi = (0.0, np.inf) if tox[i] else (-np.inf, 0.0)
    law = stats.truncnorm((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
    assert stats.kstest(draws_t, law.cdf).pvalue > 1e-3
    zt[:] = z_tox
    for _ in range(3000):
        kernels.draw_latent_efficacy(rng, theta, x, eff, zt, ze)
        draws_e.append(ze[i])
    mean = mu_e + rho * (z_tox[i] - mu_t)
    c = theta[kernels.THRESHOLD]
    law = stats.truncnorm((0 - mean) / sd, (c - mean) / sd, loc=mean, scale=sd)
    assert np.all((np.array(draws_e) > 0) & (np.array(draws_e) <= c))
    assert stats.kstest(draws_e, law.cdf).pvalue > 1e-3


# ---------------------------------------------------------------- rho and threshold


def _collapsed_log_density(theta, x, eff, z_tox, prior, *, rho=None, threshold=None):
    """log p(rho, c | Z_T, ...) up to a constant on a grid, written independently with SciPy."""
    rho = np.atleast_1d(theta[kernels.RHO] if rho is None else rho)[:, None]
    c = np.atleast_1d(theta[kernels.THRESHOLD] if threshold is None else threshold)[:, None]
    sd = np.sqrt(1 - rho**2)
    mu_t = theta[kernels.ALPHA_TOX] + theta[kernels.BETA_TOX] * x
    mu_e = theta[kernels.ALPHA_EFF] + theta[kernels.BETA_EFF] * x + theta[kernels.GAMMA_EFF] * x**2
    centre = mu_e + rho * (z_tox - mu_t)
    upper = np.where(eff == 0, 0.0, np.where(eff == 1, c, np.inf))
    lower = np.where(eff == 0, -np.inf, np.where(eff == 1, 0.0, c))
    mass = stats.norm.cdf((upper - centre) / sd) - stats.norm.cdf((lower - centre) / sd)
    log_prior_c = stats.lognorm(
        s=prior[kernels.LOG_THRESHOLD_SD], scale=np.exp(prior[kernels.LOG_THRESHOLD_MEAN])
    ).logpdf(c[:, 0])
    with np.errstate(divide="ignore"):  # a cell of probability 0 far in a tail: log 0 = -inf
        return np.sum(np.log(mass), axis=1) + log_prior_c


def _slice_chain(move, n=3000, thin=3):
    out = []
    for i in range(n * thin):
        value = move()
        if i % thin == 0:
            out.append(value)
    return np.array(out)


def test_rho_slice_targets_the_collapsed_conditional(state):
    theta, x, tox, eff, z_tox, z_eff, prior = state
    grid = np.linspace(-0.999, 0.999, 4001)
    cdf = _cdf_on_grid(grid, _collapsed_log_density(theta, x, eff, z_tox, prior, rho=grid))
    work = theta.copy()
    rng = np.random.default_rng(2)

    def move():
        kernels.draw_rho(rng, work, x, tox, eff, z_tox, z_eff, prior)
        return work[kernels.RHO]

    assert stats.kstest(_slice_chain(move), lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3


def test_threshold_slice_targets_the_collapsed_conditional(state):
    theta, x, tox, eff, z_tox, z_eff, prior = state
    grid = np.linspace(1e-3, 6.0, 6001)
    cdf = _cdf_on_grid(grid, _collapsed_log_density(theta, x, eff, z_tox, prior, threshold=grid))
    work = theta.copy()
    rng = np.random.default_rng(3)

    def move():
        kernels.draw_threshold(rng, work, x, tox, eff, z_tox, z_eff, prior)
        return work[kernels.THRESHOLD]

    assert stats.kstest(_slice_chain(move), lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3

    def broken():
        draw_threshold_without_jacobian(rng, work, x, tox, eff, z_tox, z_eff, prior)
        return work[kernels.THRESHOLD]

    # The Jacobian bug shifts the cut point's conditional by a few percent of its sd: a
    # longer chain gives the KS test the power to see it whatever the prior.
    chain = _slice_chain(broken, n=12000)
    assert stats.kstest(chain, lambda v: np.interp(v, grid, cdf)).pvalue < 1e-3


def test_toxicity_slices_target_the_collapsed_conditional(state):
    """alpha_T | beta_T, Z_E with Z_T integrated out: prod Phi(+-(mu_T + rho v) / s) x prior."""
    theta, x, tox, eff, z_tox, z_eff, prior = state
    rho = theta[kernels.RHO]
    mu_e = theta[kernels.ALPHA_EFF] + theta[kernels.BETA_EFF] * x + theta[kernels.GAMMA_EFF] * x**2
    grid = np.linspace(-6.0, 6.0, 4001)
    mean_t = grid[:, None] + theta[kernels.BETA_TOX] * x + rho * (z_eff - mu_e)
    signed = np.where(tox == 1, 1.0, -1.0) * mean_t / np.sqrt(1 - rho**2)
    log_density = stats.norm.logcdf(signed).sum(axis=1) + stats.norm.logpdf(
        grid, prior[kernels.ALPHA_TOX], prior[kernels.N_COEF + kernels.ALPHA_TOX]
    )
    cdf = _cdf_on_grid(grid, log_density)
    work = theta.copy()
    rng = np.random.default_rng(9)

    def move():
        value, _ = kernels.slice_update(
            rng,
            kernels.ALPHA_TOX_TARGET,
            work[kernels.ALPHA_TOX],
            1.0,
            work,
            x,
            tox,
            eff,
            z_tox,
            z_eff,
            prior,
        )
        work[kernels.ALPHA_TOX] = value
        return value

    assert stats.kstest(_slice_chain(move), lambda v: np.interp(v, grid, cdf)).pvalue > 1e-3


# ---------------------------------------------------------------- coefficients


def _regression(design, response, noise_var, mean, sd):
    precision = design.T @ design / noise_var + np.diag(1 / sd**2)
    cov = np.linalg.inv(precision)
    return cov @ (design.T @ response / noise_var + mean / sd**2), cov


def test_efficacy_coefficients_follow_their_normal_conditional(state):
    theta, x, _, _, z_tox, z_eff, prior = state
    rho = theta[kernels.RHO]
    mu_t = theta[kernels.ALPHA_TOX] + theta[kernels.BETA_TOX] * x
    design = np.column_stack([np.ones_like(x), x, x**2])
    mean, cov = _regression(
        design, z_eff - rho * (z_tox - mu_t), 1 - rho**2, prior[2:5], prior[7:10]
    )
    rng = np.random.default_rng(4)
    work = theta.copy()
    draws = []
    for _ in range(20000):
        kernels.draw_efficacy_coefficients(rng, work, x, z_tox, z_eff, prior)
        draws.append(work[kernels.ALPHA_EFF : kernels.GAMMA_EFF + 1].copy())
    draws = np.array(draws)
    z = (draws.mean(0) - mean) / np.sqrt(np.diag(cov) / draws.shape[0])
    assert np.all(np.abs(z) < 4.5), z
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.05, atol=0.02 * np.max(cov))


def test_toxicity_coefficients_follow_their_truncated_normal_conditional(state):
    theta, x, _, _, z_tox, z_eff, prior = state
    rho = theta[kernels.RHO]
    mu_e = theta[kernels.ALPHA_EFF] + theta[kernels.BETA_EFF] * x + theta[kernels.GAMMA_EFF] * x**2
    design = np.column_stack([np.ones_like(x), x])
    mean, cov = _regression(
        design, z_tox - rho * (z_eff - mu_e), 1 - rho**2, prior[0:2], prior[5:7]
    )
    # Reference: the untruncated normal by rejection of beta_tox <= 0.
    reference = np.random.default_rng(5).multivariate_normal(mean, cov, size=60000)
    reference = reference[reference[:, 1] > 0][:6000]
    rng = np.random.default_rng(6)
    work = theta.copy()
    draws = []
    for _ in range(6000):
        kernels.draw_toxicity_coefficients(rng, work, x, z_tox, z_eff, prior)
        draws.append(work[kernels.ALPHA_TOX : kernels.BETA_TOX + 1].copy())
    draws = np.array(draws)
    assert np.all(draws[:, 1] > 0)
    for k in range(2):
        assert stats.ks_2samp(draws[:, k], reference[:, k]).pvalue > 1e-3


def test_cholesky_regression_matches_numpy():
    rng = np.random.default_rng(8)
    design = np.column_stack([np.ones(9), rng.normal(size=9), rng.normal(size=9)])
    response = rng.normal(size=9)
    mean_prior, sd_prior = np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 0.5])
    mean, chol = kernels.regression_posterior(design, response, 0.7, mean_prior, sd_prior)
    expected_mean, expected_cov = _regression(design, response, 0.7, mean_prior, sd_prior)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(chol @ chol.T), expected_cov, rtol=1e-10)


# ---------------------------------------------------------------- step methods


def test_layout_decodes_and_encodes_as_pymc_transforms():
    model = MODEL.build(trial_data())
    layout = JointProbitLayout(model)
    point = model.initial_point()
    point |= {"beta_tox_interval__": np.asarray(0.3), "threshold_log__": np.asarray(-0.4)}
    point["rho_interval__"] = np.asarray(1.1)
    theta = layout.decode(point)
    constrained = model.compile_fn(
        model.replace_rvs_by_values([model[name] for name in PARAMETERS]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    np.testing.assert_allclose(theta, np.array(constrained(point), dtype=float), rtol=1e-12)
    again = layout.encode(point, theta, PARAMETERS)
    assert list(again) == list(point)
    for key in point:
        np.testing.assert_allclose(again[key], point[key], rtol=1e-12)


def test_step_methods_share_one_latent_state_reset_per_chain():
    model = MODEL.build(trial_data())
    steps = joint_probit_steps(model)
    assert len({id(step.latent) for step in steps}) == 1
    latent: LatentState = steps[0].latent
    point = model.initial_point()
    for step in steps:
        step.setup_chain(np.random.default_rng(1), 0, 1)
        point, _ = step.step(point)
    assert latent.z_tox is not None
    steps[1].setup_chain(np.random.default_rng(2), 0, 1)
    assert latent.z_tox is None


def test_kernel_agrees_with_step_methods():
    data = trial_data()
    kernel = MODEL.fit(data, engine="kernel", draws=2000, tune=300, chains=2, random_seed=11)
    steps = MODEL.fit(data, engine="pymc", draws=1000, tune=300, chains=2, random_seed=12)
    for name in ("alpha_tox", "beta_tox", "alpha_eff", "threshold", "rho"):
        z = agreement_z(kernel["posterior"][name].to_numpy(), steps["posterior"][name].to_numpy())
        assert max(z.values()) < 4.5, (name, z)


@pytest.mark.slow
def test_engines_agree_with_nuts():
    data = trial_data()
    nuts = MODEL.fit(data, engine="nuts", draws=2000, tune=1000, chains=2, random_seed=21)
    kernel = MODEL.fit(data, engine="kernel", draws=4000, tune=1000, chains=2, random_seed=22)
    steps = MODEL.fit(data, engine="pymc", draws=2000, tune=500, chains=2, random_seed=23)
    names = [*PARAMETERS, "p_tox", "p_response"]
    for fit in (kernel, steps):
        for name in names:
            a, b = fit["posterior"][name], nuts["posterior"][name]
            columns = a.to_numpy().reshape(*a.shape[:2], -1)
            reference = b.to_numpy().reshape(*b.shape[:2], -1)
            for k in range(columns.shape[-1]):
                z = agreement_z(columns[:, :, k], reference[:, :, k])
                assert max(z.values()) < 4.5, (fit.attrs["engine"], name, k, z)


# ---------------------------------------------------------------- SBC


def _sbc(n_reps, seed, negative_control=None, engine="kernel"):
    return joint_probit_sbc(
        MODEL,
        SBC_DOSES,
        engine=engine,
        n_reps=n_reps,
        random_seed=seed,
        negative_control=negative_control,
        tune=100,
    )


def test_kernel_sbc_quick():
    result = _sbc(100, 100)
    assert result.n_draws == 99
    p = result.p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p


def test_kernel_sbc_quick_rejects_the_jacobian_bug():
    p = _sbc(150, 100, "jacobian_bug").p_values(bins=10)
    assert p["threshold"] < ALPHA, p


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"negative_control": "no_such_bug"}, "negative_control must be None or one of"),
        ({"negative_control": "jacobian_bug", "engine": "pymc"}, "runs the kernel engine"),
        ({"engine": "nuts"}, "engine must be one of"),
    ],
)
def test_sbc_refuses_unknown_options(options, message):
    with pytest.raises(ValueError, match=message):
        joint_probit_sbc(MODEL, SBC_DOSES, n_reps=1, random_seed=0, **options)


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "n_reps"), [("kernel", 1000), ("pymc", 100)])
def test_sbc_thorough(engine, n_reps):
    p = _sbc(n_reps, 300, engine=engine).p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p


@pytest.mark.slow
def test_sbc_thorough_rejects_the_jacobian_bug():
    p = _sbc(1000, 400, "jacobian_bug").p_values(bins=10)
    assert p["threshold"] < 1e-6, p


def test_steps_refuse_a_foreign_model():
    with pm.Model() as other:
        pm.Normal("alpha_tox")
    with pytest.raises(ValueError, match="not a JointProbit model"):
        joint_probit_steps(other)
