"""The 3PND extensions of Lee (2023)'s Discussion: groups, repeated measures, a plateau.

Fast tests: each model builds, its log density at a point is finite and equals an independent
scipy computation, and bad data are refused naming the column, row and value. Slow tests
(``make test-slow``): NUTS on a seeded simulated data set of adequate size recovers the truth
(the 95 % posterior intervals cover the true parameters and MTDs).
"""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from dosezoo.data import DataError, TrialData
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.models.three_pnd_groups import ThreePNDGroups
from dosezoo.models.three_pnd_plateau import ThreePNDPlateau
from dosezoo.models.three_pnd_repeated import ThreePNDRepeated

NUTS = {"draws": 1000, "tune": 1000, "chains": 2}


def constrained_and_logp(model, seeds=(0,)):
    """Random points of the model's value space: their constrained values and PyMC's logp.

    ``logp(jacobian=False)`` is the density of the constrained values, which the models'
    scipy ``log_density`` computes independently. Compiled once, in FAST_COMPILE mode (the
    default linker's compilation takes seconds per function on a loaded machine).
    """
    rvs = model.free_RVs
    outputs = [*model.replace_rvs_by_values(rvs), model.logp(jacobian=False)]
    function = model.compile_fn(
        outputs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE"
    )
    dims = model.named_vars_to_dims
    shapes = {
        model.rvs_to_values[rv].name: tuple(len(model.coords[d]) for d in dims.get(rv.name, ()))
        for rv in rvs
    }
    for seed in seeds:
        rng = np.random.default_rng(seed)
        point = {name: rng.normal(0.0, 0.5, size=shape) for name, shape in shapes.items()}
        *values, logp = function(point)
        yield {rv.name: np.asarray(v) for rv, v in zip(rvs, values, strict=True)}, float(logp)


def covers(draws: np.ndarray, truth: float, level: float = 0.95) -> bool:
    """Whether the central ``level`` interval of ``draws`` holds ``truth``."""
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return bool(low < truth < high)


# ------------------------------------------------------------------------- groups


def groups_truth():
    """Two groups with MTDs 40 and 60, shared sigma 0.3 and nu 1.2 (Lee's A and B)."""
    model = ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "B"))
    sigma, nu, mtd = 0.3, 1.2, {"A": 40.0, "B": 60.0}
    beta = {g: (model.eta - sigma * model.z) / (m - model.x_min) ** nu for g, m in mtd.items()}
    return model, sigma, nu, mtd, beta


def groups_data(n: int, seed: int) -> TrialData:
    model, sigma, nu, _, beta = groups_truth()
    rng = np.random.default_rng(seed)
    group = np.array(["A", "B"] * (n // 2))
    dose = rng.uniform(10.0, 70.0, n)
    mean = np.array([beta[g] for g in group]) * (dose - model.x_min) ** nu
    frame = pd.DataFrame({"dose": dose, "y": rng.normal(mean, sigma), "group": group})
    return TrialData.from_dataframe(frame, covariates=("group",))


def sigma_and_log_jacobian(pymc_model, values) -> tuple[float, float]:
    """The model's sigma at ``values`` and ``log |dsigma / dsigma_position|`` by differences.

    Sigma itself when it is the free variable (nu free), with no Jacobian.
    """
    if "sigma_position" not in values:
        return float(values["sigma"]), 0.0
    sigma = pymc_model.compile_fn(
        pymc_model.replace_rvs_by_values([pymc_model["sigma"]])[0],
        inputs=pymc_model.value_vars,
        on_unused_input="ignore",
        mode="FAST_COMPILE",
    )
    point = {"sigma_position": float(values["sigma_position"])}
    if "nu" in values:
        point["nu_log__"] = float(np.log(values["nu"]))
    point["beta_quantile_interval__"] = special.logit(values["beta_quantile"])
    step = 1e-6
    up, down = (dict(point, sigma_position=point["sigma_position"] + h) for h in (step, -step))
    slope = (float(sigma(up)) - float(sigma(down))) / (2 * step)
    return float(sigma(point)), float(np.log(slope))


def quantile_log_density(model, data, pymc_model, values) -> float:
    """The density of the model's free values from scipy: the MTD scale's, times |dxi/dq|.

    Each slope is scipy's truncated-normal quantile of its conditional posterior given sigma
    and nu (a uniform for a group without patients); ``dbeta/dq`` is one over that density.
    Sigma and the Jacobian of its position are read from the model, the latter by differences.
    """
    sigma, log_jacobian = sigma_and_log_jacobian(pymc_model, values)
    quantile = np.asarray(values["beta_quantile"])
    nu = model.nu if model.nu is not None else float(values["nu"])
    dose, y = np.asarray(data.dose), np.asarray(data.column("y"))
    index = np.array([model.groups.index(str(g)) for g in data.column("group")])
    power = (model.x_max - model.x_min) ** nu
    lower, upper = (model.eta - sigma * model.z) / power, model.eta / power + sigma * model.z
    w = (dose - model.x_min) ** nu
    beta = np.empty(len(model.groups))
    for g, q in enumerate(quantile):
        mine = index == g
        if not mine.any():
            beta[g] = lower + (upper - lower) * q
            log_jacobian += np.log(upper - lower)
            continue
        s_ww = np.sum(w[mine] ** 2)
        centre, spread = np.sum(w[mine] * y[mine]) / s_ww, sigma / np.sqrt(s_ww)
        a, b = (lower - centre) / spread, (upper - centre) / spread
        beta[g] = stats.truncnorm.ppf(q, a, b, loc=centre, scale=spread)
        log_jacobian -= stats.truncnorm.logpdf(beta[g], a, b, loc=centre, scale=spread)
    mtd = model.mtd_of(beta, sigma, nu)
    log_jacobian += np.sum(np.log((mtd - model.x_min) / (nu * beta)))
    return model.log_density(data, mtd, sigma, nu) + log_jacobian


def test_groups_log_density_matches_scipy():
    model = groups_truth()[0]
    data = groups_data(20, seed=1)
    pymc_model = model.build(data)
    assert set(pymc_model.named_vars) >= {"sigma", "nu", "beta_quantile", "mtd", "beta", "y"}
    for values, logp in constrained_and_logp(pymc_model, seeds=range(3)):
        assert np.isfinite(logp)
        expected = quantile_log_density(model, data, pymc_model, values)
        assert logp == pytest.approx(expected, rel=1e-6)


def test_groups_known_nu_log_density_matches_scipy_with_an_empty_group():
    model = ThreePNDGroups(
        eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "B", "C"), nu=1.2
    )
    data = groups_data(20, seed=2)
    pymc_model = model.build(data)
    assert "nu" not in {rv.name for rv in pymc_model.free_RVs}
    for values, logp in constrained_and_logp(pymc_model, seeds=(4, 5)):
        expected = quantile_log_density(model, data, pymc_model, values)
        assert logp == pytest.approx(expected, rel=1e-6)


def test_groups_slope_quantiles_are_uniform_given_sigma_and_nu_whatever_the_data():
    # The slopes are integrated out exactly: the density does not move with the quantiles,
    # also where the responses lie far above what the prior allows at this sigma (the
    # quantile's tail series) and with one patient.
    model = ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "B"), nu=1.2)
    for dose, y, group in (
        ([40.0], [1.5], ["A"]),
        ([20.0, 40.0, 60.0], [150.0, 300.0, 450.0], "B"),
    ):
        frame = pd.DataFrame({"dose": dose, "y": y, "group": group})
        pymc_model = model.build(TrialData.from_dataframe(frame, covariates=("group",)))
        logp = pymc_model.compile_logp(jacobian=False)
        beta = pymc_model.compile_fn(
            pymc_model.replace_rvs_by_values([pymc_model["beta"]])[0],
            inputs=pymc_model.value_vars,
            mode="FAST_COMPILE",
        )
        for position in (-9.0, -3.0, 0.0, 2.0, 9.0):
            values = [
                logp({"sigma_position": position, "beta_quantile_interval__": np.array([q, -q])})
                for q in (-4.0, -1.0, 0.5, 3.0)
            ]
            assert np.all(np.isfinite(values)) and np.ptp(values) < 1e-9 * max(1, abs(values[0]))
            slopes = beta({"sigma_position": position, "beta_quantile_interval__": np.ones(2)})
            assert np.all(np.isfinite(slopes) & (slopes > 0))


def test_group_mtds_warn_when_the_fit_fails_its_checks():
    model = ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "B"), nu=1.2)
    frame = pd.DataFrame({"dose": [40.0], "y": [1.5], "group": ["A"]})
    data = TrialData.from_dataframe(frame, covariates=("group",))
    idata = model.fit(data, draws=100, tune=100, chains=2, random_seed=1)
    strict = ConvergenceCriteria(min_ess_bulk=1e6)
    with pytest.warns(RuntimeWarning, match=r"group_mtds: the fit fails .*bulk ESS \d+ < 1e\+06"):
        model.group_mtds(idata, strict)
    lenient = ConvergenceCriteria(
        max_rhat=100.0, min_ess_bulk=0.0, min_ess_tail=0.0, max_divergences=10**6
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mtds = model.group_mtds(idata, lenient)
    assert set(mtds) == {"A", "B"}
    with pytest.raises(TypeError, match=r"criteria must be a ConvergenceCriteria or None, got"):
        model.group_mtds(idata, {"max_divergences": 5})


def test_groups_beta_is_the_slope_of_the_mtd():
    model, sigma, nu, mtd, beta = groups_truth()
    assert model.mtd_of([beta["A"], beta["B"]], sigma, nu) == pytest.approx([mtd["A"], mtd["B"]])


def test_groups_refuses_an_unknown_group_and_a_missing_column():
    model = groups_truth()[0]
    frame = pd.DataFrame({"dose": [10.0, 20.0, 30.0], "y": [0.1, 0.5, 0.9], "group": "A"})
    frame.loc[2, "group"] = "C"
    with pytest.raises(DataError, match=r"column 'group', row 2: value 'C'"):
        model.check_data(TrialData.from_dataframe(frame, covariates=("group",)))
    with pytest.raises(DataError, match=r"column 'group'"):
        model.check_data(TrialData.from_dataframe(frame))
    with pytest.raises(ValueError, match="groups must be at least two"):
        ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "A"))


def test_groups_prior_draws_each_slope_uniform_given_sigma_and_nu():
    # The fitted model is written on the MTD scale with a potential, which PyMC's forward
    # sampler ignores: its prior draws once put the MTD uniform (median 47 instead of 9.8).
    model = groups_truth()[0]
    prior = model.sample_prior_predictive(draws=4000, random_seed=5)["prior"]
    sigma = prior["sigma"].values.reshape(-1, 1)
    nu = prior["nu"].values.reshape(-1, 1)
    beta = prior["beta"].transpose("chain", "draw", "group").values.reshape(-1, 2)
    power = (model.x_max - model.x_min) ** nu
    lower, upper = (model.eta - sigma * model.z) / power, model.eta / power + sigma * model.z
    for position in ((beta - lower) / (upper - lower)).T:
        assert stats.kstest(position, "uniform").pvalue > 1e-3
    mtd = prior["mtd"].transpose("chain", "draw", "group").values.reshape(-1, 2)
    threshold = model.eta - sigma * model.z
    np.testing.assert_allclose(mtd, model.x_min + (threshold / beta) ** (1 / nu), rtol=1e-9)


def test_groups_prior_summary_gives_each_groups_mtd_with_or_without_planned_data():
    model = groups_truth()[0]
    alone = model.prior_predictive_summary(draws=500, random_seed=1)
    assert alone["mtd_quantile"].dims == ("quantile", "group")
    assert list(alone["group"].values) == ["A", "B"]
    planned = TrialData.from_dataframe(
        pd.DataFrame({"dose": [20.0, 40.0], "y": [1.0, 2.0], "group": ["A", "B"]}),
        covariates=("group",),
    )
    summary = model.prior_predictive_summary(planned, draws=500, random_seed=1)
    assert summary["mtd_quantile"].dims == ("quantile", "group")
    assert summary["predictive_mean"].dims == ("statistic", "data_dose")


def test_groups_predictive_statistics_are_per_group_and_dose():
    # Pooled per dose, group B's misfit hid behind group A's (0.88 / 0.91 / 0.22 read as
    # 0.73 / 0.73 / 0.37 in an audit).
    model = groups_truth()[0]
    frame = pd.DataFrame(
        {"dose": [20.0, 20.0, 40.0, 40.0, 60.0], "y": [0.5, 1.0, 1.5, 2.5, 2.0]}
    ).assign(group=["A", "B", "B", "A", "B"])
    data = TrialData.from_dataframe(frame, covariates=("group",))
    index, labels = model.predictive_groups(data)
    assert labels == ["A: 20", "A: 40", "B: 20", "B: 40", "B: 60"]
    assert [labels[i] for i in index] == ["A: 20", "B: 20", "B: 40", "A: 40", "B: 60"]
    summary = model.prior_predictive_summary(data, draws=100, random_seed=1)
    assert list(summary["data_dose"].values) == labels


@pytest.mark.slow
def test_groups_nuts_recovers_the_truth():
    model, sigma, nu, mtd, beta = groups_truth()
    idata = model.fit(groups_data(60, seed=3), random_seed=11, **NUTS)
    post = idata["posterior"]
    assert covers(post["sigma"].values, sigma)
    assert covers(post["nu"].values, nu)
    for group in model.groups:
        assert covers(post["mtd"].sel(group=group).values, mtd[group])
        assert covers(post["beta"].sel(group=group).values, beta[group])
    report = model.posterior_from_idata(idata).report
    assert report is not None and report.ok, report
    assert model.group_mtds(idata)["B"].quantile(0.5) > model.group_mtds(idata)["A"].quantile(0.5)


# ------------------------------------------------------------------------- plateau


def plateau_truth():
    """An Emax curve with plateau 5 (above eta = 3), Hill 2, sigma 0.3, MTD 45."""
    model = ThreePNDPlateau(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    return model, model.truth(emax=5.0, mtd=45.0, hill=2.0, sigma=0.3)


def plateau_data(n: int, seed: int) -> TrialData:
    model, truth = plateau_truth()
    rng = np.random.default_rng(seed)
    dose = np.linspace(8.0, 78.0, n)
    mean = model.curve(dose, truth["emax"], truth["ed50"], truth["hill"])
    frame = pd.DataFrame({"dose": dose, "y": rng.normal(mean, truth["sigma"])})
    return TrialData.from_dataframe(frame)


def test_plateau_mtd_is_where_the_dlt_probability_is_the_target():
    model, truth = plateau_truth()
    assert model.mtd_of(truth["emax"], truth["ed50"], truth["hill"], truth["sigma"]) == (
        pytest.approx(truth["mtd"])
    )
    # At the MTD P(Y >= eta) = 1 - gamma (Theorem 1's definition), below it less.
    for dose, expected in ((truth["mtd"], 1 - model.gamma), (truth["mtd"] - 5, None)):
        mean = model.curve(dose, truth["emax"], truth["ed50"], truth["hill"])
        p_dlt = 1 - stats.norm.cdf(model.eta, mean, truth["sigma"])
        if expected is None:
            assert p_dlt < 1 - model.gamma
        else:
            assert p_dlt == pytest.approx(expected)
    assert model.mtd_of(2.0, 40.0, 2.0, 0.3) == np.inf  # plateau below the threshold


def plateau_mtd_of_quantile(model, data, sigma, hill, rho, quantile) -> tuple[float, float, float]:
    """The MTD of ``mtd_quantile``, ``log |dMTD / dm|`` and ``log |dm / dq|``, from scipy.

    ``m`` is the anchor dose's mean: scipy's truncated-normal quantile of its likelihood on the
    range the curve allows; the MTD is the curve's inverse there (module notes).
    """
    level, n_anchor, mean = model.anchor(data)
    reach, span = level - model.x_min, model.x_max - model.x_min
    emax = (model.eta - sigma * model.z) * (1 + rho)
    lower, spread = emax / (1 + rho * (span / reach) ** hill), sigma / np.sqrt(n_anchor)
    a, b = (lower - mean) / spread, (emax - mean) / spread
    at_anchor = stats.truncnorm.ppf(quantile, a, b, loc=mean, scale=spread)
    offset = reach * ((emax - at_anchor) / (rho * at_anchor)) ** (1 / hill)
    log_dmtd_dm = np.log(offset * emax / (hill * at_anchor * (emax - at_anchor)))
    log_dm_dq = -stats.truncnorm.logpdf(at_anchor, a, b, loc=mean, scale=spread)
    return model.x_min + offset, float(log_dmtd_dm), float(log_dm_dq)


def deterministic(pymc_model, name: str, point: dict) -> float:
    """The model's deterministic ``name`` at the value-space ``point``."""
    function = pymc_model.compile_fn(
        pymc_model.replace_rvs_by_values([pymc_model[name]])[0],
        inputs=pymc_model.value_vars,
        on_unused_input="ignore",
        mode="FAST_COMPILE",
    )
    return float(function(point))


def plateau_point(model, sigma, hill, rho, quantile) -> dict:
    """The value-space point of the constrained ``sigma, hill, rho, mtd_quantile``."""
    return {
        "sigma_interval__": float(special.logit(sigma / model.sigma_max)),
        "hill_log__": np.log(hill),
        "rho_log__": np.log(rho),
        "mtd_quantile_interval__": float(special.logit(quantile)),
    }


def test_plateau_log_density_matches_scipy():
    model = plateau_truth()[0]
    data = plateau_data(15, seed=1)
    pymc_model = model.build(data)
    assert {"emax", "ed50", "mtd"} <= set(pymc_model.named_vars)
    for values, logp in constrained_and_logp(pymc_model, seeds=range(3)):
        assert np.isfinite(logp)
        sigma, hill, rho, quantile = (values[k] for k in ("sigma", "hill", "rho", "mtd_quantile"))
        mtd, *log_jacobians = plateau_mtd_of_quantile(model, data, sigma, hill, rho, quantile)
        point = plateau_point(model, sigma, hill, rho, quantile)
        # PyMC's log Phi is good to about 1e-8, so the map is the quantile of a truncated
        # normal whose ends are that close to these; its Jacobian is the map's own.
        assert deterministic(pymc_model, "mtd", point) == pytest.approx(mtd, rel=1e-7)
        by_scipy = model.log_density(data, {"sigma": sigma, "hill": hill, "rho": rho, "mtd": mtd})
        assert logp == pytest.approx(by_scipy + sum(log_jacobians), rel=1e-7)


def test_plateau_anchor_likelihood_cancels_in_the_quantile_however_small_sigma():
    # Every patient at one dose: given (sigma, hill, rho) the density of the quantile is
    # |dMTD/dm| times a constant, though the log-likelihood alone varies by about 5 over
    # these quantiles and its mode is 1e-4 wide in the mean.
    model = plateau_truth()[0]
    frame = pd.DataFrame({"dose": [40.0] * 3, "y": [1.4999, 1.5, 1.5001]})
    data = TrialData.from_dataframe(frame)
    assert model.anchor(data) == (40.0, 3, pytest.approx(1.5))
    # Patients weighted by their distance from x_min: at x_min + 1e-4 the mean says little
    # of the MTD (anchored there, 811 of 2000 transitions diverged).
    near_x_min = pd.DataFrame({"dose": [5.0001, 5.0001, 30.0], "y": [0.01, 0.02, 1.0]})
    assert model.anchor(TrialData.from_dataframe(near_x_min)) == (30.0, 1, 1.0)
    pymc_model = model.build(data)
    logp = pymc_model.compile_fn(pymc_model.logp(jacobian=False), mode="FAST_COMPILE")
    likelihood = pymc_model.compile_fn(
        pymc_model.logp(vars=pymc_model.observed_RVs, jacobian=False), mode="FAST_COMPILE"
    )
    sigma, hill, rho = 1e-4, 2.0, 2.0
    rest, log_likelihood = [], []
    for quantile in (1e-3, 0.2, 0.5, 0.8, 1 - 1e-3):
        point = plateau_point(model, sigma, hill, rho, quantile)
        _, log_dmtd_dm, _ = plateau_mtd_of_quantile(model, data, sigma, hill, rho, quantile)
        rest.append(float(logp(point)) - log_dmtd_dm)
        log_likelihood.append(float(likelihood(point)))
    assert np.ptp(log_likelihood) > 4.0
    assert np.ptp(rest) < 1e-6


def test_plateau_refuses_a_dose_outside_the_range():
    model = plateau_truth()[0]
    frame = pd.DataFrame({"dose": [10.0, 90.0], "y": [0.1, 0.5]})
    with pytest.raises(DataError, match=r"row 1.*90"):
        model.check_data(TrialData.from_dataframe(frame))


def plateau_posterior_by_importance(model, frame, draws: int, seed: int):
    """Weighted draws of (sigma, MTD) from the plateau posterior, by importance sampling.

    Independent of PyMC: (sigma, hill, rho) from their priors by scipy; the MTD from an even
    mixture of its uniform prior and the anchor dose's truncated-normal mean mapped to the MTD
    (so a weight is at most twice the likelihood); weight = likelihood x prior / proposal.
    """
    rng = np.random.default_rng(seed)
    dose, y = frame["dose"].to_numpy(float), frame["y"].to_numpy(float)
    level, n_anchor, mean = model.anchor(TrialData.from_dataframe(frame))
    reach, span = level - model.x_min, model.x_max - model.x_min
    top = stats.halfcauchy.cdf(model.sigma_max)
    sigma = stats.halfcauchy.ppf(rng.uniform(0, top, draws))
    hill = stats.lognorm.rvs(model.delta, size=draws, random_state=rng)
    rho = stats.lognorm.rvs(model.plateau_scale, size=draws, random_state=rng)
    emax = (model.eta - sigma * model.z) * (1 + rho)
    lower, spread = emax / (1 + rho * (span / reach) ** hill), sigma / np.sqrt(n_anchor)
    a, b = (lower - mean) / spread, (emax - mean) / spread
    from_anchor = stats.truncnorm.rvs(a, b, loc=mean, scale=spread, random_state=rng)
    offset = np.where(
        rng.uniform(size=draws) < 0.5,
        reach * ((emax - from_anchor) / (rho * from_anchor)) ** (1 / hill),
        span * rng.uniform(size=draws),
    )
    offset = np.clip(offset, 1e-12, span * (1 - 1e-15))
    at_anchor = emax / (1 + rho * (offset / reach) ** hill)
    dm_doffset = emax * hill * (at_anchor / emax) * (1 - at_anchor / emax) / offset
    anchor_density = stats.truncnorm.pdf(at_anchor, a, b, loc=mean, scale=spread) * dm_doffset
    ed50 = offset * rho ** (1 / hill)
    curve = emax[:, None] / (1 + (ed50[:, None] / (dose - model.x_min)) ** hill[:, None])
    log_likelihood = stats.norm.logpdf(y, curve, sigma[:, None]).sum(axis=1)
    log_weight = log_likelihood - np.log(span) - np.log(0.5 * anchor_density + 0.5 / span)
    weight = np.exp(log_weight - log_weight.max())
    return weight / weight.sum(), sigma, model.x_min + offset


@pytest.mark.slow
def test_plateau_nuts_matches_importance_sampling_with_one_patient():
    # On (sigma, hill, rho, mtd) NUTS undersampled small sigma: P(sigma < 0.05) 0.045 and a
    # chain stuck (0.089 +- 0.046) against 0.075 (two seeds of 4 x 5000 draws).
    model = plateau_truth()[0]
    frame = pd.DataFrame({"dose": [40.0], "y": [3.5]})
    weight, sigma, mtd = plateau_posterior_by_importance(model, frame, 2_000_000, seed=5)
    assert 1 / np.sum(weight**2) > 500_000  # the reference's effective sample size
    idata = model.fit(
        TrialData.from_dataframe(frame), random_seed=11, draws=5000, tune=1500, chains=4
    )
    post = idata["posterior"]
    for event, reference in (
        (post["sigma"].values < 0.05, np.sum(weight[sigma < 0.05])),
        (post["mtd"].values < 40.0, np.sum(weight[mtd < 40.0])),
    ):
        ess = float(az.ess(event.astype(float)))
        error = np.std(event) / np.sqrt(ess)
        assert error < 0.006, error
        assert abs(event.mean() - reference) < 4 * error + 1e-3, (event.mean(), reference, error)


@pytest.mark.slow
def test_plateau_nuts_recovers_the_truth():
    model, truth = plateau_truth()
    idata = model.fit(plateau_data(80, seed=3), random_seed=12, **NUTS)
    post = idata["posterior"]
    for name in ("emax", "ed50", "hill", "sigma", "mtd"):
        assert covers(post[name].values, truth[name]), name
    report = model.posterior_from_idata(idata).report
    assert report is not None and report.ok, report


# ------------------------------------------------------------------------- repeated measures


def repeated_truth(n_subjects: int, seed: int):
    """Patients drawn from the population model: population MTD 50, spreads 0.5 and 0.2."""
    model = ThreePNDRepeated(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    rng = np.random.default_rng(seed)
    span = model.x_max - model.x_min
    mu_mtd, tau_mtd, mu_log_nu, tau_log_nu, sigma = np.log(0.6 / 0.4), 0.5, 0.0, 0.2, 0.2
    mtd = model.x_min + span * special.expit(mu_mtd + tau_mtd * rng.normal(size=n_subjects))
    nu = np.exp(mu_log_nu + tau_log_nu * rng.normal(size=n_subjects))
    truth = {
        "sigma": sigma,
        "mu_log_nu": mu_log_nu,
        "mtd_population": model.x_min + span * special.expit(mu_mtd),
        "mtd": mtd,
        "nu": nu,
        "beta": (model.eta - sigma * model.z) / (mtd - model.x_min) ** nu,
    }
    return model, truth, rng


def repeated_data(n_subjects: int, seed: int, doses=(15.0, 25.0, 35.0, 45.0, 55.0)):
    """Each patient measured at ``doses`` (jittered): one row per measurement."""
    model, truth, rng = repeated_truth(n_subjects, seed)
    rows = []
    for i in range(n_subjects):
        for dose in np.asarray(doses) + rng.uniform(-2, 2, len(doses)):
            mean = truth["beta"][i] * (dose - model.x_min) ** truth["nu"][i]
            rows.append({"dose": dose, "y": rng.normal(mean, truth["sigma"]), "subject": f"p{i}"})
    data = TrialData.from_dataframe(pd.DataFrame(rows), covariates=("subject",))
    return model, truth, data


def test_repeated_log_density_matches_scipy():
    model, _, data = repeated_data(4, seed=1, doses=(20.0, 40.0))
    pymc_model = model.build(data)
    assert model.subjects(data) == ["p0", "p1", "p2", "p3"]
    assert {"mtd", "nu", "beta", "mtd_population"} <= set(pymc_model.named_vars)
    for values, logp in constrained_and_logp(pymc_model, seeds=range(3)):
        assert np.isfinite(logp)
        assert logp == pytest.approx(model.log_density(data, values), rel=1e-7)


def test_repeated_beta_gives_the_individual_mtd():
    _, truth, _ = repeated_truth(5, seed=2)
    model = ThreePNDRepeated(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    # Theorem 1 per patient: x_min + ((eta - sigma z) / beta_i)^(1 / nu_i) is the MTD.
    threshold = model.eta - truth["sigma"] * model.z
    back = model.x_min + (threshold / truth["beta"]) ** (1 / truth["nu"])
    assert back == pytest.approx(truth["mtd"])


def test_repeated_needs_the_subject_column():
    model, _, data = repeated_data(2, seed=3, doses=(20.0,))
    frame = data.to_dataframe().drop(columns="subject")
    with pytest.raises(DataError, match=r"column 'subject'"):
        model.check_data(TrialData.from_dataframe(frame))
    bad = data.to_dataframe()
    bad.loc[1, "dose"] = 85.0
    with pytest.raises(DataError, match=r"row 1.*85"):
        model.check_data(TrialData.from_dataframe(bad, covariates=("subject",)))


def test_repeated_prior_summary_without_patients_gives_the_population_mtd():
    model = ThreePNDRepeated(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    summary = model.prior_predictive_summary(draws=4000, random_seed=2)
    assert "mtd_quantile" not in summary  # no subjects, no individual MTDs
    # x_min + R expit(mu), mu ~ N(0, s^2): quantile q at x_min + R expit(s Phi^-1(q)).
    q = np.array([0.05, 0.5, 0.95])
    scale = model.mtd_location_scale
    exact = model.x_min + (model.x_max - model.x_min) * special.expit(scale * stats.norm.ppf(q))
    np.testing.assert_allclose(summary["mtd_population_quantile"].values, exact, atol=2.5)


def test_repeated_keeps_numeric_patient_ids_of_seven_digits_apart():
    # Labels were f"{value:g}": six digits, so patients 1010001..1010004 became one.
    model = ThreePNDRepeated(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    ids = [1010001, 1010002, 1010003, 1010004]
    frame = pd.DataFrame(
        {"dose": [15.0, 25.0] * 4, "y": [0.4, 0.9, 1.0, 2.2, 0.3, 0.6, 0.8, 1.7]}
    ).assign(subject=np.repeat(ids, 2))
    data = TrialData.from_dataframe(frame, covariates=("subject",))
    assert list(model.subjects(data)) == [str(i) for i in ids]
    floats = TrialData.from_dataframe(
        frame.assign(subject=frame.subject / 1e7), covariates=("subject",)
    )
    assert len(model.subjects(floats)) == 4
    assert ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=ids[:2]).groups


@pytest.mark.parametrize(
    "model",
    [
        ThreePNDPlateau(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0),
        ThreePNDGroups(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, groups=("A", "B")),
    ],
    ids=["plateau", "groups"],
)
def test_variants_refuse_equal_responses_at_one_dose_as_3pnd_does(model):
    # The posterior of sigma is then improper (its density grows as sigma^-2 for the plateau,
    # sigma^-3 for the groups near 0); the variants fitted it, with divergences.
    frame = pd.DataFrame({"dose": [20.0] * 4, "y": [1.0] * 4, "group": ["A", "A", "B", "B"]})
    data = TrialData.from_dataframe(frame, covariates=("group",))
    with pytest.raises(DataError, match=r"all at dose 20, are all equal \(1\).* improper"):
        model.check_data(data)


@pytest.mark.slow
def test_repeated_nuts_recovers_the_truth():
    model, truth, data = repeated_data(12, seed=4)
    idata = model.fit(data, random_seed=13, **NUTS)
    post = idata["posterior"]
    for name in ("sigma", "mu_log_nu", "mtd_population"):
        assert covers(post[name].values, truth[name]), name
    covered = [covers(post["mtd"].isel(subject=i).values, truth["mtd"][i]) for i in range(12)]
    assert sum(covered) >= 10, covered
    posterior = model.posterior_from_idata(idata)
    assert posterior.report is not None and posterior.report.ok, posterior.report
    assert posterior.mtd is not None
    assert posterior.mtd.quantile(0.5) == pytest.approx(np.median(post["mtd_population"]))
