"""Each 3PND move targets the exact full conditional of the PyMC model; engines agree with NUTS."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from dosezoo.data import TrialData
from dosezoo.models import ThreePND
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.three_pnd import ThreePNDLayout, three_pnd_steps
from dosezoo.validation import agreement_z

PARAMS = ("beta", "sigma", "nu", "mtd")


@pytest.mark.parametrize(
    ("mean", "sd", "lower", "upper"),
    [
        (0.0, 1.0, -1.0, 2.0),
        (0.0, 1.0, 8.0, 9.0),
        (0.0, 1.0, -40.0, -39.5),
        (5.0, 2.0, 0.0, 100.0),
        (0.0, 3.0, 0.1, 0.2),
    ],
)
def test_truncated_normal_is_exact(mean, sd, lower, upper):
    rng = np.random.default_rng(1)
    draws = np.array([kernels.truncated_normal(rng, mean, sd, lower, upper) for _ in range(4000)])
    assert np.all((draws > lower) & (draws < upper))
    reference = stats.truncnorm((lower - mean) / sd, (upper - mean) / sd, loc=mean, scale=sd)
    assert stats.kstest(draws, reference.cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("shape", "rate", "lower", "upper"),
    [(12.0, 3.0, 2.0, 6.0), (12.0, 3.0, 9.0, np.inf), (0.5, 2.0, 0.0, 0.01)],
)
def test_truncated_gamma_is_exact(shape, rate, lower, upper):
    rng = np.random.default_rng(2)
    pairs = [kernels.truncated_gamma(rng, shape, rate, lower, upper) for _ in range(4000)]
    assert all(ok for _, ok in pairs)
    draws = np.array([d for d, _ in pairs])
    assert np.all((draws > lower) & (draws < upper))
    base = stats.gamma(shape, scale=1 / rate)
    cdf_lo, cdf_hi = base.cdf(lower), base.cdf(upper)
    assert stats.kstest(draws, lambda x: (base.cdf(x) - cdf_lo) / (cdf_hi - cdf_lo)).pvalue > 1e-3


# ---------------------------------------------------------------- conditionals vs PyMC


@pytest.fixture(scope="module")
def pymc_density(o6bg_model, o6bg):
    """Log density of the PyMC model at constrained (beta, sigma, nu), no Jacobian."""
    model = o6bg_model.build(o6bg)
    layout = ThreePNDLayout(model)
    logp = model.compile_logp(jacobian=False)
    base = model.initial_point()

    def density(beta, sigma, nu):
        return float(logp(layout.encode(base, (beta, sigma, nu), ("beta", "sigma", "nu"))))

    return density, layout


@pytest.fixture(scope="module")
def typical_state(o6bg_model, o6bg):
    raw = o6bg_model.sample_kernel(
        o6bg.dose, o6bg.column("y"), draws=1, tune=300, chains=1, random_seed=21
    )
    return float(raw["beta"][0, 0]), float(raw["sigma"][0, 0]), float(raw["nu"][0, 0])


def _cdf_on_grid(grid, log_density):
    weights = np.exp(log_density - np.max(log_density))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (weights[1:] + weights[:-1]) * np.diff(grid))])
    return cdf / cdf[-1]


def _chain(move, start, n, thin=5):
    value, out = start, []
    for i in range(n * thin):
        value = move(value)
        if i % thin == 0:
            out.append(value)
    return np.array(out)


def test_beta_gibbs_targets_the_pymc_conditional(pymc_density, typical_state):
    density, layout = pymc_density
    _, sigma, nu = typical_state
    lower, upper = kernels.beta_bounds(sigma, nu, layout.hyper)
    grid = np.linspace(lower, upper, 4001)[1:-1]
    cdf = _cdf_on_grid(grid, np.array([density(b, sigma, nu) for b in grid]))
    rng = np.random.default_rng(3)
    obs = layout.observations()
    at_nu = kernels.moments(nu, obs)
    draws = np.array(
        [kernels.draw_beta(rng, sigma, nu, at_nu, obs, layout.hyper) for _ in range(3000)]
    )
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_sigma_slice_targets_the_pymc_conditional(pymc_density, typical_state):
    density, layout = pymc_density
    beta, sigma, nu = typical_state
    floor = kernels.sigma_floor(beta, nu, layout.hyper)
    grid = np.linspace(floor, layout.hyper[kernels.SIGMA_MAX], 6001)[1:-1]
    cdf = _cdf_on_grid(grid, np.array([density(beta, s, nu) for s in grid]))
    rng = np.random.default_rng(4)
    obs = layout.observations()
    at_nu = kernels.moments(nu, obs)
    draws = _chain(
        lambda s: kernels.draw_sigma_slice(rng, beta, s, nu, at_nu, obs, layout.hyper)[0],
        sigma,
        3000,
    )
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_nu_elliptical_slice_targets_the_pymc_conditional(pymc_density, typical_state):
    density, layout = pymc_density
    beta, sigma, nu = typical_state

    def in_support(v):
        lower, upper = kernels.beta_bounds(sigma, v, layout.hyper)
        return lower < beta < upper

    # The support in nu given (beta, sigma) is a narrow interval: locate it, then grid it finely.
    coarse = np.geomspace(0.01, 5.0, 20001)
    inside = coarse[[in_support(v) for v in coarse]]
    grid = np.linspace(inside[0], inside[-1], 4001)
    grid = grid[[in_support(v) for v in grid]]
    cdf = _cdf_on_grid(grid, np.array([density(beta, sigma, v) for v in grid]))
    rng = np.random.default_rng(5)
    obs = layout.observations()
    move = lambda v: kernels.draw_nu_elliptical(rng, beta, sigma, v, obs, layout.hyper)[0]  # noqa: E731
    draws = _chain(move, nu, 3000, thin=10)
    assert stats.kstest(draws, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_lee2023_eq_20_without_the_prior_factor_is_a_different_conditional(
    pymc_density, typical_state
):
    """The factor 1/(1 + R^-nu) Lee (2023) drops changes the conditional of nu measurably."""
    density, layout = pymc_density
    beta, sigma, nu = typical_state
    candidates = nu * np.linspace(0.8, 1.2, 401)
    inside = [
        v
        for v in candidates
        if kernels.beta_bounds(sigma, v, layout.hyper)[0]
        < beta
        < kernels.beta_bounds(sigma, v, layout.hyper)[1]
    ]
    nus = np.array([inside[0], inside[len(inside) // 2], inside[-1]])
    full = np.array([density(beta, sigma, v) for v in nus])
    obs = layout.observations()
    ours = np.array(
        [kernels.nu_log_likelihood(math.log(v), beta, sigma, obs, layout.hyper) for v in nus]
    )
    ours += stats.norm.logpdf(np.log(nus), 0, layout.hyper[kernels.DELTA])
    paper = ours + np.log1p(np.exp(-nus * layout.hyper[kernels.LOG_RANGE]))
    # log p(nu | .) + log(dnu/dphi) differs from ours by a constant; the paper's by more.
    differences = full + np.log(nus) - ours
    np.testing.assert_allclose(differences - differences[0], 0.0, atol=1e-8)
    assert np.ptp(full + np.log(nus) - paper) > 1e-3


def test_ridge_marginal_integrates_the_pymc_joint_over_beta(pymc_density, typical_state):
    density, layout = pymc_density
    _, sigma0, nu0 = typical_state
    obs = layout.observations()
    gaps = []
    for sigma, nu in [
        (sigma0, nu0),
        (0.8 * sigma0, nu0),
        (sigma0, 1.2 * nu0),
        (1.3 * sigma0, 0.9 * nu0),
    ]:
        lower, upper = kernels.beta_bounds(sigma, nu, layout.hyper)
        s_ww, s_wy = kernels.moments(nu, obs)
        mode = min(max(s_wy / s_ww, lower + 1e-9), upper - 1e-9)
        peak = density(mode, sigma, nu)
        integral, _ = integrate.quad(
            lambda b, s=sigma, v=nu, p=peak: np.exp(density(b, s, v) - p),
            lower,
            upper,
            points=[mode],
            limit=200,
            epsabs=0.0,
            epsrel=1e-10,
        )
        log_integral = peak + np.log(integral)
        collapsed = kernels.collapsed_log_density(sigma, nu, obs, layout.hyper)
        collapsed += stats.lognorm.logpdf(nu, layout.hyper[kernels.DELTA])
        gaps.append(log_integral - collapsed)
    np.testing.assert_allclose(np.array(gaps) - gaps[0], 0.0, atol=1e-8)


# ------------------------------------------------------------------- NUTS agreement


@pytest.fixture(scope="module")
def o6bg_fits(o6bg_model, o6bg):
    return {
        "nuts": o6bg_model.fit(
            o6bg, engine="nuts", draws=1000, tune=1000, chains=2, random_seed=31
        ),
        "pymc": o6bg_model.fit(o6bg, engine="pymc", draws=1000, tune=500, chains=2, random_seed=32),
        "kernel": o6bg_model.fit(
            o6bg, engine="kernel", draws=10000, tune=1000, chains=2, random_seed=33
        ),
    }


@pytest.mark.parametrize("engine", ["pymc", "kernel"])
@pytest.mark.parametrize("name", PARAMS)
def test_engines_agree_with_nuts_on_o6bg(o6bg_fits, engine, name):
    nuts = o6bg_fits["nuts"]["posterior"][name].to_numpy()
    ours = o6bg_fits[engine]["posterior"][name].to_numpy()
    z = agreement_z(ours, nuts)
    assert max(z.values()) < 4.0, z
    assert stats.ks_2samp(ours.ravel()[::10], nuts.ravel()[::3]).pvalue > 1e-3


def test_ridge_move_mixes_every_parameter(o6bg_fits):
    from dosezoo.diagnostics import convergence_table

    table = convergence_table(o6bg_fits["kernel"], list(PARAMS))
    assert (table["r_hat"] < 1.01).all(), table
    assert (table["ess_bulk"] > 1000).all(), table


# ----------------------------------------------------------------- support property


@st.composite
def problems(draw):
    eta = draw(st.floats(0.5, 100.0))
    gamma = draw(st.floats(0.55, 0.99))
    x_min = draw(st.floats(0.0, 50.0))
    span = draw(st.floats(1.0, 200.0))
    delta = draw(st.floats(0.05, 1.0))
    n = draw(st.integers(1, 30))
    levels = np.sort(draw(st.lists(st.floats(0.01, 0.99), min_size=1, max_size=5, unique=True)))
    dose = x_min + span * np.asarray(
        draw(st.lists(st.sampled_from(list(levels)), min_size=n, max_size=n))
    )
    scale = draw(st.floats(0.01, 2.0))
    y = eta * scale * np.asarray(draw(st.lists(st.floats(-1.0, 2.0), min_size=n, max_size=n)))
    y[0] = eta * scale * draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(0.05, 2.0))
    # Equal responses all at one dose have an improper posterior, which the model refuses.
    assume(np.unique(dose).size > 1 or np.unique(y).size > 1)
    return ThreePND(eta=eta, gamma=gamma, x_min=x_min, x_max=x_min + span, delta=delta), dose, y


def _assert_in_support(model, beta, sigma, nu, mtd):
    lower, upper = np.vectorize(lambda s, v: kernels.beta_bounds(s, v, model.hyper))(sigma, nu)
    assert np.all(np.isfinite([beta, sigma, nu, mtd]))
    assert np.all((sigma > 0) & (sigma < model.sigma_max))
    assert np.all((lower < beta) & (beta < upper))
    assert np.all(nu > 0)
    assert np.all((mtd > model.x_min) & (mtd < model.x_max))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_kernel_draws_respect_the_support(problem):
    model, dose, y = problem
    raw = model.sample_kernel(dose, y, draws=40, tune=10, chains=1, random_seed=0)
    _assert_in_support(model, raw["beta"], raw["sigma"], raw["nu"], raw["mtd"])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_step_methods_respect_the_support(problem):
    model, dose, y = problem
    pm_model = model.build(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    steps = three_pnd_steps(pm_model)
    for step, seed in zip(steps, range(len(steps)), strict=True):
        step.rng = np.random.default_rng(seed)
    point = pm_model.initial_point()
    for _ in range(15):
        for step in steps:
            point, _ = step.step(point)
            beta, sigma, nu = steps[0].layout.decode(point)
            mtd = kernels.mtd(beta, sigma, nu, model.hyper)
            _assert_in_support(model, beta, sigma, nu, mtd)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([30.0, 45.5, 60.0, 100.0, 139.0]), min_size=0, max_size=60),
    st.integers(0, 2**32 - 1),
)
def test_the_summary_is_numpys_to_the_last_bit(doses, seed):
    """Every float of the per-dose statistics as numpy's unique, bincount and sum formed them
    (the kernels were checked against the samplers on those): the same data, the same numbers."""
    dose = np.array(doses, dtype=float)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(dose.size) * 10.0 ** rng.uniform(-3, 3, dose.size)
    levels = np.unique(dose)
    index = np.searchsorted(levels, dose)
    count = np.bincount(index, minlength=levels.size)
    mean = np.bincount(index, weights=y, minlength=levels.size) / np.maximum(count, 1)
    expected = (
        np.log(levels - 20.0),
        count.astype(float),
        mean,
        float(np.sum((y - mean[index]) ** 2)),
        float(dose.size),
        float(np.sum(y**2)),
    )
    got = kernels.summarise(dose, y, 20.0)
    for value, wanted in zip(got[:3], expected[:3], strict=True):
        assert value.dtype == np.float64 and np.array_equal(value, wanted)
    assert got[3:] == expected[3:] and all(type(value) is float for value in got[3:])
