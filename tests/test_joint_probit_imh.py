"""The independence Metropolis-Hastings engine of the joint probit model targets its posterior.

Its log density is checked against the PyMC model's (the specification) and its gradient
against finite differences; the engine against NUTS and by simulation-based calibration; the
Pareto diagnostic against ArviZ's PSIS; the fallback to the Gibbs kernel; the posterior of the
simulation path as a function of the outcome counts.
"""

import numpy as np
import pandas as pd
import pytest
from arviz_stats.base import array_stats

import dosezoo.models.joint_probit as joint_probit
from dosezoo.data import TrialData
from dosezoo.diagnostics import ConvergenceCriteria, pareto_khat
from dosezoo.models.joint_probit import PARAMETERS, JointProbit
from dosezoo.posterior import Sampling
from dosezoo.samplers import joint_probit_imh as imh
from dosezoo.validation import agreement_z, joint_probit_sbc

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
MODEL = JointProbit(LEVELS)
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
