"""Each Gibbs move targets its exact full conditional; engines agree with NUTS; SBC.

The moves are checked against conditionals computed independently here with SciPy; the
whole sampler against NUTS on the PyMC model (rectangle likelihood, no latent variables) and
by simulation-based calibration, whose negative control (the slice on log(threshold) without
the Jacobian of the log, a deliberately wrong sampler of :mod:`dosezoo.validation`) must fail.

The independence Metropolis-Hastings engine (``imh``): its log density against the PyMC
model's and its gradient against finite differences; the engine against NUTS and by SBC; the
Pareto diagnostic against ArviZ's PSIS; the fallback to the Gibbs kernel; the posterior of the
simulation path as a function of the outcome counts.
"""

import itertools

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from arviz_stats.base import array_stats
from scipy import stats

import dosezoo.models.joint_probit as joint_probit
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria, pareto_khat
from dosezoo.models.base import PosteriorMemo
from dosezoo.models.joint_probit import PARAMETERS, JointProbit
from dosezoo.posterior import Sampling
from dosezoo.samplers import joint_probit_imh as imh
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


# ---------------------------------------------------------------- independence MH


def _unconstrained_points(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.8, size=(n, len(PARAMETERS)))


def test_log_density_is_the_pymc_models_up_to_a_constant():
    data = trial_data()
    x, counts = MODEL.outcome_counts(data)
    prior = MODEL.prior.packed()
    model = MODEL.build(data)
    # PyMC's log density of the constrained values (jacobian=False), fed through its own
    # transforms; ours adds the log Jacobians of softplus (beta_tox), exp (threshold) and
    # 2 Phi(v) - 1 (rho).
    logp = model.compile_logp(jacobian=False)
    differences = []
    for u in _unconstrained_points(12, 1):
        theta = imh.constrained(u)
        point = {}
        for var in model.free_RVs:
            value = model.rvs_to_values[var]
            constrained = theta[PARAMETERS.index(var.name)]
            transform = model.rvs_to_transforms[var]
            point[value.name] = (
                transform.forward(constrained, *var.owner.inputs).eval()
                if transform is not None
                else constrained
            )
        sigmoid = 1.0 / (1.0 + np.exp(-u[1]))
        log_jacobian = np.log(sigmoid) + u[5] + np.log(2.0) + imh_log_normal_pdf(u[6])
        ours = imh.log_density(u, x, counts, prior, np.empty(0))
        differences.append(ours - log_jacobian - float(logp(point)))
    assert np.ptp(differences) < 1e-8, differences


def test_sheppard_rule_of_each_rho_band_is_exact_to_double_precision():
    # The 96-node rule as reference: the band's rule must agree with it as the model's
    # 32-node rule does, on a grid of (a, b) and rho across each band.
    nodes, weights = np.polynomial.legendre.leggauss(96)
    grid = np.linspace(-8.0, 8.0, 33)
    a, b = np.meshgrid(grid, grid)
    terms = np.empty((2, imh.BAND_NODES[-1]))
    bounds = (0.0, *imh.RHO_BANDS, 0.999)
    for low, high in itertools.pairwise(bounds):
        for rho in (*np.linspace(low, high, 7)[1:-1], -0.5 * (low + high)):
            half = 0.5 * np.arcsin(rho)
            t = half * (nodes + 1.0)
            integrand = np.exp(
                -(
                    a[..., None] ** 2
                    + b[..., None] ** 2
                    - 2 * a[..., None] * b[..., None] * np.sin(t)
                )
                / (2 * np.cos(t) ** 2)
            )
            reference = stats.norm.cdf(a) * stats.norm.cdf(b) + half * (integrand @ weights) / (
                2 * np.pi
            )
            half_rho, rule = imh.sheppard_terms(rho, terms)
            ours = np.vectorize(lambda x, y: imh.bivariate_cdf(x, y, half_rho, rule, terms))(a, b)
            assert np.max(np.abs(ours - reference)) < 5e-15, rho


def imh_log_normal_pdf(v):
    return -0.5 * v * v - 0.5 * np.log(2.0 * np.pi)


def test_gradient_matches_finite_differences():
    x, counts = MODEL.outcome_counts(trial_data())
    prior = MODEL.prior.packed()
    # Points in the posterior's bulk: far out, an observed cell's probability rounds to 0 and
    # the likelihood is floored (flat).
    mode, _, _ = imh.find_mode(imh.unconstrained(MODEL.initial_theta()), x, counts, prior)
    for u in mode + 0.4 * _unconstrained_points(10, 2):
        gradient = np.empty(u.size)
        imh.log_density(u, x, counts, prior, gradient)
        step = 1e-6
        numeric = np.array(
            [
                (
                    imh.log_density(u + step * e, x, counts, prior, np.empty(0))
                    - imh.log_density(u - step * e, x, counts, prior, np.empty(0))
                )
                / (2 * step)
                for e in np.eye(u.size)
            ]
        )
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-6)


def test_unconstrained_inverts_constrained():
    for u in _unconstrained_points(20, 3):
        np.testing.assert_allclose(imh.unconstrained(imh.constrained(u)), u, atol=1e-9)


def test_mode_has_a_vanishing_gradient_and_a_positive_definite_precision():
    x, counts = MODEL.outcome_counts(trial_data())
    prior = MODEL.prior.packed()
    start = imh.unconstrained(MODEL.initial_theta())
    mode, precision, found = imh.find_mode(start, x, counts, prior)
    gradient = np.empty(mode.size)
    imh.log_density(mode, x, counts, prior, gradient)
    assert found
    assert np.max(np.abs(gradient)) < 1e-6
    assert np.linalg.eigvalsh(precision).min() > 0


@pytest.mark.parametrize("size", [30, 200, 1500])
def test_pareto_khat_is_arviz_psis(size):
    rng = np.random.default_rng(size)
    for df in (1.5, 4.0, 30.0):
        log_ratios = 2 * np.log(np.abs(rng.standard_t(df, size=size))) + rng.normal(size=size)
        expected = float(array_stats.psislw(-log_ratios, r_eff=1.0)[1])
        assert pareto_khat(log_ratios) == pytest.approx(expected, abs=1e-12)


def test_pareto_khat_reads_minus_infinity_as_a_zero_weight_and_refuses_nan():
    rng = np.random.default_rng(5)
    log_ratios = rng.normal(size=400)
    with_zero = np.append(log_ratios, -np.inf)
    assert np.isfinite(pareto_khat(with_zero))
    assert pareto_khat(np.append(log_ratios, np.nan)) == np.inf
    assert pareto_khat(log_ratios[:10]) == np.inf


def test_engine_agrees_with_nuts():
    data = trial_data()
    nuts = MODEL.fit(data, engine="nuts", draws=1000, tune=1000, chains=2, random_seed=21)
    fit = MODEL.fit(data, engine="imh", draws=3000, tune=200, chains=2, random_seed=22)
    assert fit.attrs["sampler"] == "imh" and fit.attrs["pareto_k"] < 0.7
    for name in [*PARAMETERS, "p_tox", "p_response"]:
        a, b = fit["posterior"][name], nuts["posterior"][name]
        columns = a.to_numpy().reshape(*a.shape[:2], -1)
        reference = b.to_numpy().reshape(*b.shape[:2], -1)
        for k in range(columns.shape[-1]):
            z = agreement_z(columns[:, :, k], reference[:, :, k])
            assert max(z.values()) < 4.5, (name, k, z)


def test_engine_falls_back_to_gibbs_when_the_proposal_misses_the_tails(monkeypatch):
    data = trial_data()
    monkeypatch.setattr(joint_probit, "MAX_PARETO_K", -np.inf)
    fit = MODEL.fit(data, engine="imh", draws=200, tune=100, chains=2, random_seed=3)
    assert fit.attrs["sampler"] == "gibbs"
    assert "accepted" not in fit["sample_stats"]
    # The same seed, the patients in the canonical order of the counts: the kernel's chain on
    # data sorted by dose and cell.
    order = np.lexsort((3 * data.column("dlt") + data.column("efficacy"), data.dose))
    sorted_data = TrialData.from_dataframe(
        data.to_dataframe()[["dose", "dlt", "efficacy"]].iloc[order]
    )
    kernel = MODEL.fit(sorted_data, engine="kernel", draws=200, tune=100, chains=2, random_seed=3)
    np.testing.assert_array_equal(
        fit["posterior"]["rho"].to_numpy(), kernel["posterior"]["rho"].to_numpy()
    )


def test_posterior_is_a_function_of_the_outcome_counts():
    data = trial_data()
    columns = data.to_dataframe()[["dose", "dlt", "efficacy"]]
    shuffled = TrialData.from_dataframe(columns.sample(frac=1.0, random_state=4))
    assert MODEL.sufficient_statistic(data) == MODEL.sufficient_statistic(shuffled)
    sampling = Sampling(draws=300, tune=50, chains=2, random_seed=9)
    first = MODEL.posterior(data, sampling)
    again = JointProbit(LEVELS).posterior(shuffled, sampling)
    np.testing.assert_array_equal(first.rate("p_tox"), again.rate("p_tox"))
    np.testing.assert_array_equal(first.rate("p_response"), again.rate("p_response"))
    other = trial_data().to_dataframe()
    other.loc[0, "efficacy"] = 2
    assert MODEL.sufficient_statistic(data) != MODEL.sufficient_statistic(
        TrialData.from_dataframe(other)
    )


def test_posteriors_are_kept_by_the_counts_within_the_memo_bytes():
    class SmallMemo(JointProbit):
        posterior_cache_bytes = 3 * 2 * (2 * 300 * len(LEVELS)) * 8  # three posteriors

    model = SmallMemo(LEVELS)
    sampling = Sampling(draws=300, tune=50, chains=2, random_seed=9)
    data = trial_data()
    first = model.posterior(data, sampling)
    memo = model._memo("posterior_rates")
    assert len(memo) == 1 and memo.nbytes == 2 * first.rates["p_tox"].nbytes
    # The same counts, settings and seed: the kept draws, not a new run.
    assert np.shares_memory(model.posterior(data, sampling).rates["p_tox"], first.rates["p_tox"])
    for seed in range(10, 15):
        model.posterior(data, Sampling(draws=300, tune=50, chains=2, random_seed=seed))
    assert len(memo) == 3 and memo.nbytes <= model.posterior_cache_bytes
    # The oldest was dropped and is sampled again, to the same draws.
    again = model.posterior(data, sampling)
    np.testing.assert_array_equal(again.rate("p_tox"), first.rate("p_tox"))


def test_memo_drops_the_least_recently_used_beyond_its_bounds():
    memo = PosteriorMemo(max_entries=3, max_bytes=100)
    for key in "abc":
        memo.keep(key, key.upper(), 10)
    assert memo.get("a") == "A"  # now the most recently used
    memo.keep("d", "D", 10)
    assert memo.get("b") is None and len(memo) == 3 and memo.nbytes == 30
    memo.keep("e", "E", 75)  # over the bytes: the oldest (c) goes, then it fits
    assert [memo.get(key) for key in "cade"] == [None, "A", "D", "E"]
    assert memo.nbytes == 95
    memo.keep("e", "E2", 5)  # a key kept again counts its new bytes only
    assert memo.get("e") == "E2" and memo.nbytes == 25
    memo.keep("f", "F", 500)  # larger than the bound: kept alone
    assert len(memo) == 1 and memo.get("f") == "F" and memo.nbytes == 500


def test_posterior_equals_the_fit_of_the_same_engine():
    data = trial_data()
    sampling = Sampling(
        draws=400, tune=100, chains=2, random_seed=5, criteria=ConvergenceCriteria()
    )
    direct = MODEL.posterior(data, sampling)
    fit = MODEL.fit(data, engine="imh", draws=400, tune=100, chains=2, random_seed=5)
    via_fit = MODEL.posterior_from_idata(fit, ConvergenceCriteria())
    for name in ("p_tox", "p_response"):
        np.testing.assert_allclose(direct.rate(name), via_fit.rate(name), rtol=1e-12)
    pd.testing.assert_frame_equal(direct.report.table, via_fit.report.table, rtol=1e-9)


def test_imh_sbc_quick():
    result = joint_probit_sbc(
        MODEL, np.repeat(LEVELS, 3), engine="imh", n_reps=100, random_seed=100, tune=100
    )
    p = result.p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p


@pytest.mark.slow
def test_imh_sbc_thorough():
    result = joint_probit_sbc(
        MODEL, np.repeat(LEVELS, 3), engine="imh", n_reps=1000, random_seed=300, tune=100
    )
    p = result.p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p
