"""BLRM, EWOC and BOIN models and the BLRM and EWOC designs.

Each grid posterior is checked against a brute-force integration written here from the model's
equations in its natural coordinates (no adaptivity, no whitening), and against NUTS.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import betaincc, expit, logit

from dosezoo.data import TrialData
from dosezoo.designs import blrm_design, ewoc_design
from dosezoo.errors import DataError
from dosezoo.levels import data_from_counts
from dosezoo.models import (
    BLRM,
    BOIN,
    EWOC,
    BLRMPrior,
    blrm_minimal_informative_prior,
    blrm_prior_from_quantiles,
)
from dosezoo.models.binary import GridTails

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)


def _data(doses, dlts):
    return TrialData.from_dataframe(
        pd.DataFrame({"dose": np.asarray(doses, float), "dlt": np.asarray(dlts, int)})
    )


SMALL = _data([10, 10, 10, 20, 20, 20, 40, 40, 40], [0, 0, 0, 0, 0, 0, 0, 1, 1])
LONGER = _data(
    [10] * 3 + [20] * 3 + [40] * 6 + [80] * 6,
    [0] * 3 + [0, 0, 0] + [0, 1, 0, 0, 0, 1] + [1, 0, 1, 1, 0, 0],
)


def _counts(data):
    dose = np.asarray(data.dose, float)
    dlt = np.asarray(data.column("dlt"), float)
    distinct = np.unique(dose)
    return (
        distinct,
        np.array([np.sum(dose == d) for d in distinct]),
        np.array([dlt[dose == d].sum() for d in distinct]),
    )


def _brute_force(log_posterior, p_levels, axes):
    """Midpoint-rule moments on a dense rectangle: mean p per level and P(p > t)."""
    a, b = np.meshgrid(*axes, indexing="ij")
    lp = log_posterior(a, b)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    p = p_levels(a, b)  # (..., K)
    return w, p


# --------------------------------------------------------------------------- BLRM


@pytest.mark.parametrize("data", [SMALL, LONGER], ids=["small", "longer"])
def test_blrm_grid_agrees_with_brute_force_integration(data):
    prior = BLRMPrior(mean=(logit(0.2), 0.0), sd=(2.0, 1.0), correlation=0.3)
    model = BLRM(LEVELS, 40.0, prior=prior)
    dose, n, y = _counts(data)
    x = np.log(dose / 40.0)
    levels_x = np.log(np.asarray(LEVELS) / 40.0)

    def log_posterior(la, lb):
        za, zb = (la - prior.mean[0]) / 2.0, (lb - prior.mean[1]) / 1.0
        total = -0.5 * (za**2 - 0.6 * za * zb + zb**2) / (1 - 0.09)
        for xi, ni, yi in zip(x, n, y, strict=True):
            eta = la + np.exp(lb) * xi
            total = total - yi * np.logaddexp(0, -eta) - (ni - yi) * np.logaddexp(0, eta)
        return total

    axes = (np.linspace(-12, 10, 2001), np.linspace(-6, 5, 2001))
    w, p = _brute_force(
        log_posterior, lambda la, lb: expit(la[..., None] + np.exp(lb)[..., None] * levels_x), axes
    )
    posterior = model.posterior(data)
    mean = np.tensordot(w, p, axes=([0, 1], [0, 1]))
    assert posterior.mean() == pytest.approx(mean, abs=1e-3)
    for threshold in (0.16, 0.33):
        above = np.tensordot(w, p > threshold, axes=([0, 1], [0, 1]))
        assert posterior.prob_above(threshold) == pytest.approx(above, abs=4e-3)


def test_blrm_grid_fit_and_nuts_agree():
    model = BLRM(LEVELS, 40.0)
    grid = model.fit(LONGER, engine="grid", draws=2000, random_seed=1)
    nuts = model.fit(LONGER, engine="nuts", draws=1000, tune=1000, random_seed=2)
    assert set(grid["posterior"].data_vars) == set(nuts["posterior"].data_vars)
    a = grid["posterior"]["p_dlt"].stack(s=("chain", "draw")).values
    b = nuts["posterior"]["p_dlt"].stack(s=("chain", "draw")).values
    z = (a.mean(1) - b.mean(1)) / np.sqrt(a.var(1) / a.shape[1] + b.var(1) / 500)
    assert np.max(np.abs(z)) < 4, z


def test_prior_from_quantiles_recovers_a_known_prior():
    known = BLRMPrior(mean=(-1.0, 0.3), sd=(1.2, 0.6), correlation=-0.2)
    doses = (10.0, 40.0, 160.0)
    x = np.log(np.asarray(doses) / 40.0)
    quantiles = expit(known.logit_quantiles(x, (0.025, 0.5, 0.975)))
    fitted = blrm_prior_from_quantiles(doses, 40.0, quantiles)
    assert fitted.mean == pytest.approx(known.mean, abs=0.02)
    assert fitted.sd == pytest.approx(known.sd, abs=0.02)
    assert fitted.correlation == pytest.approx(known.correlation, abs=0.05)


def test_logit_quantiles_match_monte_carlo():
    prior = BLRMPrior(mean=(-1.0, 0.3), sd=(1.2, 0.6), correlation=-0.4)
    rng = np.random.default_rng(0)
    cov = [[1.44, -0.4 * 1.2 * 0.6], [-0.4 * 1.2 * 0.6, 0.36]]
    draws = rng.multivariate_normal(prior.mean, cov, size=400_000)
    for x in (-1.0, 0.0, 1.5):
        simulated = np.quantile(draws[:, 0] + np.exp(draws[:, 1]) * x, [0.025, 0.5, 0.975])
        exact = prior.logit_quantiles(np.array([x]), (0.025, 0.5, 0.975))[0]
        assert exact == pytest.approx(simulated, abs=0.03)


def test_logit_quantiles_under_a_steep_slope_prior_are_found():
    # Slopes up to e^50 at the Gauss-Hermite nodes: the root search's bracket spanned 1e22,
    # beyond brentq's 100 steps (a RuntimeError, which the minimally informative prior of
    # doses 1..5 with reference 2.5 met inside its fit). At x = 0 the slope drops out: the
    # quantiles are log alpha's, normal.
    prior = BLRMPrior(mean=(0.0, 3.0), sd=(1.0, 5.0), correlation=0.0)
    quantiles = prior.logit_quantiles(np.array([1.0, 0.0]), (0.025, 0.5, 0.975))
    assert np.all(np.isfinite(quantiles)) and np.all(np.diff(quantiles, axis=1) > 0)
    assert quantiles[1] == pytest.approx(stats.norm.ppf([0.025, 0.5, 0.975]), abs=1e-9)


def _quantile_by_quad(sd_b: float, p: float) -> float:
    """The quantile of log alpha + e^(log beta) (x = 1; means 0, sd of log alpha 1) by quad."""
    from scipy import integrate, optimize

    def cdf(t: float) -> float:
        def integrand(z: float) -> float:
            return stats.norm.pdf(z) * stats.norm.cdf(t - np.exp(sd_b * z))

        return integrate.quad(integrand, -12, 12, limit=500, epsabs=1e-13)[0]

    return optimize.brentq(lambda t: cdf(t) - p, -50, 1e6, xtol=1e-12)


@pytest.mark.parametrize(
    ("sd_b", "p", "error"),
    [(0.5, 0.025, 3e-8), (0.5, 0.975, 3e-8), (1.0, 0.5, 3e-5), (1.0, 0.975, 0.13)],
)
def test_logit_quantiles_are_as_accurate_as_documented(sd_b, p, error):
    prior = BLRMPrior(mean=(0.0, 0.0), sd=(1.0, sd_b), correlation=0.0)
    got = prior.logit_quantiles(np.array([1.0]), (p,))[0, 0]
    assert got == pytest.approx(_quantile_by_quad(sd_b, p), abs=error)


def test_minimal_informative_prior_of_small_doses_is_built():
    prior = blrm_minimal_informative_prior((1.0, 2.0, 3.0, 4.0, 5.0), 2.5)
    implied = expit(prior.logit_quantiles(np.log(np.array([1.0, 5.0]) / 2.5), (0.5,)))[:, 0]
    assert implied[0] < 0.2 < 0.3 < implied[1]  # the medians on either side of the statements


def test_prior_from_quantiles_needs_two_doses():
    with pytest.raises(ValueError, match="doses needs at least two doses"):
        blrm_prior_from_quantiles((4.0,), 4.0, [[0.05, 0.2, 0.5]])


def test_the_minimal_informative_prior_may_lie_at_the_search_bounds_by_design():
    # Its intervals are nearly parallel: the closest normal can have the slope's sd at the
    # bound; the construction returns it (statements of a user's own are refused there).
    prior = blrm_minimal_informative_prior(
        (0.5, 1.0, 2.0, 4.0),
        4.0,
        threshold_min=0.1,
        threshold_max=0.4,
        prob_min=0.1,
        prob_max=0.1,
    )
    assert all(math.isfinite(sd) and sd > 0 for sd in prior.sd)


def test_minimal_informative_prior_meets_its_statements_approximately():
    prior = blrm_minimal_informative_prior(LEVELS, 40.0)
    model = BLRM(LEVELS, 40.0, prior=prior)
    at_prior = model.posterior(TrialData.empty(outcomes=("dlt",)))
    # Least squares over all doses: the end-point statements hold only approximately.
    assert 0.0 < at_prior.prob_above(0.2)[0] < 0.15
    assert 0.0 < 1 - at_prior.prob_above(0.3)[-1] < 0.15


def test_minimal_informative_prior_follows_crmpacks_construction():
    """Quantiles built as crmPack's MinimalInformative builds them, independently, here."""
    # Minimal informative betas: Beta(1, b) with P(p > 0.2) = 0.05 at the lowest dose,
    # Beta(a, 1) with P(p < 0.3) = 0.05 at the highest; medians linear in log dose on the
    # logit scale; at each dose the minimal informative beta with that median.
    b = np.log(0.05) / np.log(0.8)
    a = np.log(0.05) / np.log(0.3)
    low_median, high_median = 1 - 0.5 ** (1 / b), 0.5 ** (1 / a)
    share = np.log(np.asarray(LEVELS) / LEVELS[0]) / np.log(LEVELS[-1] / LEVELS[0])
    medians = expit(logit(low_median) + share * (logit(high_median) - logit(low_median)))
    expected = []
    for median in medians:
        shape = (
            (np.log(0.5) / np.log(median), 1.0)
            if median > 0.5
            else (1.0, np.log(0.5) / np.log(1 - median))
        )
        expected.append(stats.beta(*shape).ppf([0.025, 0.5, 0.975]))
    prior = blrm_minimal_informative_prior(LEVELS, 40.0)
    implied = expit(prior.logit_quantiles(np.log(np.asarray(LEVELS) / 40.0), (0.025, 0.5, 0.975)))
    # The bivariate normal cannot match 15 quantiles exactly; it is within 0.05 of each.
    np.testing.assert_allclose(implied, np.asarray(expected), atol=0.05)
    # A different construction (e.g. all three quantiles interpolated) would miss by more.
    assert np.abs(implied[2, 1] - expected[2][1]) < 0.02


def test_grid_posteriors_are_kept_by_the_counts_per_dose():
    model = BLRM(LEVELS, 40.0)
    first = model.posterior(_data([10, 20, 10], [0, 1, 0]))
    # The same patients and DLTs per dose, in another order: the same posterior.
    assert model.posterior(_data([20, 10, 10], [1, 0, 0])) is first
    fresh = BLRM(LEVELS, 40.0).posterior(_data([10, 20, 10], [0, 1, 0]))
    np.testing.assert_array_equal(first.rate("p_dlt"), fresh.rate("p_dlt"))
    assert model.posterior(_data([10, 20, 10], [0, 1, 1])) is not first
    for k in range(model.posterior_cache_size + 3):
        model.posterior(_data([10.0] * (k + 1), [0] * (k + 1)))
    assert len(model._cache["posteriors"]) == model.posterior_cache_size


def test_blrm_rejects_bad_input_by_name():
    with pytest.raises(DataError, match=r"row 1.*must be > 0"):
        BLRM(LEVELS, 40.0).posterior(_data([10, 0], [0, 0]))
    with pytest.raises(ValueError, match=r"sd\[1\]"):
        BLRMPrior(sd=(1.0, -1.0))
    with pytest.raises(ValueError, match="correlation"):
        BLRMPrior(correlation=1.0)
    with pytest.raises(ValueError, match="reference_dose"):
        BLRM(LEVELS, 0.0)


@settings(max_examples=40, deadline=None)
@given(
    n_cohorts=st.integers(1, 6),
    levels=st.lists(st.integers(0, 4), min_size=6, max_size=6),
    dlts=st.lists(st.integers(0, 3), min_size=6, max_size=6),
)
def test_blrm_design_never_picks_an_inadmissible_dose(n_cohorts, levels, dlts):
    design = blrm_design(BLRM(LEVELS, 40.0), stop_min_patients=None)
    doses, outcomes = [], []
    for level, count in zip(levels[:n_cohorts], dlts[:n_cohorts], strict=True):
        doses += [LEVELS[level]] * 3
        outcomes += [1] * count + [0] * (3 - count)
    data = _data(doses, outcomes)
    decision = design.next(data)
    posterior = design.model.posterior(data)
    excessive = design.rule.interval_probabilities(posterior)["excessive"]
    if decision.stopped:
        allowed = [
            k
            for k, d in enumerate(LEVELS)
            if d <= 2 * doses[-1] and k <= LEVELS.index(max(doses)) + 1
        ]
        assert all(excessive[k] >= 0.25 for k in allowed)
        assert doses.count(LEVELS[0]) >= 3
        return
    if "safety_min_patients" in decision.bound_by:
        # no admissible level, and fewer than 3 patients had the lowest: it is given again
        assert decision.next_dose == LEVELS[0] and doses.count(LEVELS[0]) < 3
        reachable = min(LEVELS.index(max(doses)) + 2, len(LEVELS))
        assert all(excessive[k] >= 0.25 for k in range(reachable))
        return
    k = LEVELS.index(decision.next_dose)
    assert excessive[k] < 0.25
    assert decision.next_dose <= 2 * doses[-1]
    assert k <= LEVELS.index(max(doses)) + 1
    # The record names an option where, and only where, a level of larger P(target) was
    # passed over, and each option it names excluded one (overdose_cutoff was never named).
    target = design.rule.interval_probabilities(posterior)["target"]
    better = [j for j in range(len(LEVELS)) if target[j] > target[k] + 1e-9]
    excluded_by = {
        "overdose_cutoff": [j for j in better if excessive[j] >= 0.25],
        "max_increase": [j for j in better if LEVELS[j] > 2 * doses[-1]],
        "no_skipping": [j for j in better if j > LEVELS.index(max(doses)) + 1],
    }
    assert bool(decision.bound_by) == bool(better)
    assert all(excluded_by[name] for name in decision.bound_by)


def test_the_blrm_design_refuses_a_dose_above_its_levels_that_the_model_takes():
    # The model reads any positive dose; 200 typed for 20 lifted the design's no-skipping
    # limit (next dose 80 instead of 40, no message).
    design = blrm_design(BLRM(LEVELS, 40.0))
    doses = [10.0] * 3 + [20.0] * 3 + [40.0] * 3
    mistyped = _data([*doses[:4], 200.0, *doses[5:]], [0] * 7 + [1, 0])
    design.model.check_data(mistyped)
    for decide in (design.next, design.recommend):
        with pytest.raises(DataError, match=r"column 'dose', row 4: dose 200.0 is above the"):
            decide(mistyped)


def test_blrm_needs_three_patients_at_the_lowest_level_before_it_stops_for_toxicity():
    # One patient with a DLT makes no level admissible under the default prior, as do 2 of 3;
    # like the CRM's, BOIN's and Optimus's safety stops, only the second stops the trial.
    design = blrm_design(BLRM(LEVELS, 40.0), cohort_size=1)
    one = _data([10.0], [1])
    assert design.rule.interval_probabilities(design.posterior(one))["excessive"][0] >= 0.25
    decision = design.next(one)
    assert decision.next_dose == 10.0 and decision.bound_by[0] == "safety_min_patients"
    three = _data([10.0] * 3, [1, 1, 0])
    assert design.next(three).stop_reason.startswith("no admissible dose")
    assert blrm_design(BLRM(LEVELS, 40.0), safety_min_patients=1).next(one).stopped


def test_blrm_recommends_no_mtd_when_no_level_was_given_and_says_so():
    design = blrm_design(BLRM(LEVELS, 40.0))
    off = _data([5.0] * 3, [0, 0, 0])  # the model is continuous in dose: 5 mg is valid data
    final = design.recommend(off)
    assert final.next_dose is None
    levels = "10, 20, 40, 80, 160"
    assert final.stop_reason == f"no MTD: no dose level was given (the model's levels are {levels})"


def test_blrm_design_stops_when_enough_evidence_and_recommends_a_given_dose():
    design = blrm_design(BLRM(LEVELS, 40.0), stop_target_probability=0.3)
    data = _data([10] * 3 + [20] * 3 + [40] * 9, [0] * 6 + [0, 1, 0, 0, 0, 0, 0, 1, 0])
    decision = design.next(data)
    assert decision.stopped and "stopping rule" in decision.stop_reason
    assert design.recommend(data).next_dose == decision.quantities["selected_dose"] == 40.0


# --------------------------------------------------------------------------- EWOC


@pytest.mark.parametrize("data", [SMALL, LONGER], ids=["small", "longer"])
def test_ewoc_grid_agrees_with_brute_force_integration(data):
    theta, x_min, x_max = 0.25, 10.0, 160.0
    model = EWOC(theta, x_min, x_max, dose_levels=LEVELS)
    dose, n, y = _counts(data)

    def linear_predictor(rho0, gamma, x):
        slope = (logit(theta) - logit(rho0)) / (gamma - x_min)
        return logit(rho0) + slope * (x - x_min)

    def probability(rho0, gamma, x):
        return expit(linear_predictor(rho0, gamma, x))

    def log_posterior(rho0, gamma):  # uniform priors: the likelihood alone
        total = np.zeros_like(rho0)
        for xi, ni, yi in zip(dose, n, y, strict=True):
            eta = linear_predictor(rho0, gamma, xi)
            total = total - yi * np.logaddexp(0, -eta) - (ni - yi) * np.logaddexp(0, eta)
        return total

    size = 1500
    axes = ((np.arange(size) + 0.5) / size * theta, x_min + (np.arange(size) + 0.5) / size * 150)
    w, p = _brute_force(
        log_posterior,
        lambda r, g: probability(r[..., None], g[..., None], np.asarray(LEVELS)),
        axes,
    )
    posterior = model.posterior(data)
    assert posterior.mean() == pytest.approx(np.tensordot(w, p, axes=([0, 1], [0, 1])), abs=2e-3)
    gamma_marginal = w.sum(axis=0)
    cdf = np.cumsum(gamma_marginal)
    for q in (0.1, 0.25, 0.5):
        expected = np.interp(q, cdf, axes[1] + 0.5 * 150 / size)
        assert posterior.mtd.quantile(q) == pytest.approx(expected, abs=1.0)
        assert posterior.mtd.cdf(posterior.mtd.quantile(q)) == pytest.approx(q, abs=1e-6)


def test_ewoc_grid_fit_and_nuts_agree_on_the_mtd():
    model = EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS)
    grid = model.fit(LONGER, engine="grid", draws=2000, random_seed=1)
    nuts = model.fit(LONGER, engine="nuts", draws=1000, tune=1000, random_seed=2)
    for name in ("mtd", "rho0"):
        a = grid["posterior"][name].values.ravel()
        b = nuts["posterior"][name].values.ravel()
        z = (a.mean() - b.mean()) / math.sqrt(a.var() / a.size + b.var() / 500)
        assert abs(z) < 4, (name, z)
    assert grid["posterior"]["p_dlt"].dims == ("chain", "draw", "dose")


def test_ewoc_rejects_doses_outside_the_range():
    with pytest.raises(DataError, match=r"row 0.*outside the dose range"):
        EWOC(0.25, 10.0, 160.0).posterior(_data([5], [0]))
    with pytest.raises(ValueError, match="theta"):
        EWOC(1.5, 10.0, 160.0)
    with pytest.raises(ValueError, match="x_min"):
        EWOC(0.25, 160.0, 10.0)


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.integers(0, 4), min_size=1, max_size=8),
    dlts=st.lists(st.integers(0, 1), min_size=8, max_size=8),
    alpha=st.sampled_from([0.1, 0.25, 0.5]),
)
def test_ewoc_design_controls_overdosing_and_never_skips(levels, dlts, alpha):
    design = ewoc_design(EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS), alpha=alpha)
    doses = [LEVELS[k] for k in levels]
    data = _data(doses, dlts[: len(doses)])
    decision = design.next(data)
    k = LEVELS.index(decision.next_dose)
    assert k <= LEVELS.index(max(doses)) + 1
    if k > 0:
        assert decision.quantities["p_overdose"] <= alpha + 1e-6
        assert decision.next_dose <= decision.quantities["mtd_quantile"]


def test_ewoc_alpha_increases_with_patients_up_to_its_maximum():
    design = ewoc_design(
        EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS), alpha=0.1, alpha_step=0.05, alpha_max=0.5
    )
    assert design.rule.alpha_for(SMALL) == pytest.approx(0.5)
    assert design.rule.alpha_for(_data([10, 10], [0, 0])) == pytest.approx(0.2)


def test_ewoc_continuous_doses_respect_the_increment():
    model = EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS)
    design = ewoc_design(model, doses="continuous", max_increment=15.0)
    decision = design.next(_data([10, 10, 10], [0, 0, 0]))
    assert decision.next_dose == pytest.approx(25.0)
    assert decision.bound_by == ("max_increment",)


def test_ewoc_quantile_rule_can_de_escalate_after_a_dlt_free_cohort_unless_coherent():
    model = EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS)
    data = _data([160, 160, 160], [0, 0, 0])  # a high start, no DLT
    plain = ewoc_design(model).next(data)
    assert plain.next_dose < 160.0
    coherent = ewoc_design(model, coherent=True, max_overdose_probability=1.0).next(data)
    assert coherent.next_dose == 160.0
    assert "coherence" in coherent.bound_by
    assert coherent.quantities["p_overdose"] > plain.quantities["p_overdose"]
    # Coherence keeps 160, where P(MTD < 160) > 0.5: the design's hard limit does not.
    assert coherent.quantities["p_overdose"] > 0.5
    limited = ewoc_design(model, coherent=True).next(data)
    assert limited.next_dose < 160.0 and limited.bound_by[-1] == "overdose_limit"


@settings(max_examples=30, deadline=None)
@given(
    levels=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    dlts=st.lists(st.integers(0, 1), min_size=6, max_size=6),
)
def test_coherent_ewoc_never_moves_against_the_last_outcome(levels, dlts):
    design = ewoc_design(EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS), coherent=True)
    doses = [LEVELS[k] for k in levels]
    data = _data(doses, dlts[: len(doses)])  # one patient per cohort
    decision = design.next(data)
    if decision.stopped or "overdose_limit" in decision.bound_by:
        # The design's hard limit overrides coherence, downwards only.
        assert decision.stopped or decision.next_dose < doses[-1]
        limit = design.conduct.max_overdose_probability
        assert decision.quantities["overdose_probability"] > limit or not decision.stopped
        return
    if dlts[len(doses) - 1]:
        assert decision.next_dose <= doses[-1]
    else:
        assert decision.next_dose >= doses[-1]


# --------------------------------------------------------------------------- BOIN model


def test_boin_model_posterior_is_the_conjugate_beta():
    model = BOIN(0.3, LEVELS)
    data = _data([10, 10, 10, 20, 20, 20], [0, 1, 0, 1, 1, 0])
    assert model.prob_above(data)[:2] == pytest.approx([betaincc(2, 3, 0.3), betaincc(3, 2, 0.3)])
    idata = model.fit(data, engine="grid", draws=4000, random_seed=3)
    draws = idata["posterior"]["p_dlt"]
    assert draws.dims == ("chain", "draw", "dose")
    assert draws.mean(("chain", "draw")).values == pytest.approx(
        [2 / 5, 3 / 5, 1 / 2, 1 / 2, 1 / 2], abs=0.01
    )


def test_boin_model_nuts_agrees_with_the_exact_posterior():
    model = BOIN(0.3, LEVELS)
    data = _data([10, 10, 10, 20, 20, 20], [0, 1, 0, 1, 1, 0])
    nuts = model.fit(data, engine="nuts", draws=1000, tune=1000, random_seed=4)
    mean = nuts["posterior"]["p_dlt"].mean(("chain", "draw")).values
    sd = nuts["posterior"]["p_dlt"].std(("chain", "draw")).values
    exact = np.array([2 / 5, 3 / 5, 1 / 2, 1 / 2, 1 / 2])
    assert np.all(np.abs(mean - exact) < 4 * sd / math.sqrt(500))


def test_boin_model_rejects_doses_off_the_levels():
    with pytest.raises(DataError, match=r"row 1.*15\.0"):
        BOIN(0.3, LEVELS).fit(_data([10, 15], [0, 0]))


def test_blrm_refuses_a_dose_whose_log_ratio_to_the_reference_is_not_finite():
    # 1e-323 / 40 underflows to 0: log(d / d*) = -inf made the posterior NaN, blamed on the prior
    with pytest.raises(DataError, match=r"row 1: dose 1e-323 is too far from the reference"):
        BLRM(LEVELS, 40.0).posterior(_data([10, 1e-323], [0, 0]))


def test_ewoc_recommends_no_level_above_the_doses_given_nor_on_empty_data():
    # Every dose given (20) lies below the lowest level (40): the final recommendation may not
    # be a level never given (it was the highest level, 160, through an index of -1).
    model = EWOC(0.25, 10.0, 160.0, dose_levels=(40.0, 80.0, 160.0))
    design = ewoc_design(model)
    data = _data([20, 20, 20], [1, 1, 1])
    final = design.recommend(data)
    assert final.next_dose is None
    assert final.stop_reason.startswith("no MTD: no dose level was given")
    assert "20" in final.stop_reason and "40" in final.stop_reason
    # The next cohort may get the lowest level (the rule's choice, before the design's limit).
    assert design.rule.choose(design.posterior(data), data).next_dose == 40.0
    # On empty data: a clear answer, not numpy's zero-size ValueError.
    empty = TrialData.empty(outcomes=("dlt",))
    for options in ({}, {"doses": "continuous", "max_increment": 10.0}):
        decision = ewoc_design(model, **options).recommend(empty)
        assert decision.next_dose is None and decision.stop_reason == "no MTD: no patients"


def test_ewoc_reaches_a_level_equal_to_the_mtd_quantile():
    # The ewoc package's example (theta 0.33, range 20-100, levels 20, 40, ..., 100, uniform
    # priors): patients at x_min inform rho0 only, the MTD's posterior stays uniform and its
    # 0.25-quantile is the level 40 exactly; the grid's quantile, a little below, used to round
    # down to 20 after every DLT-free patient, so the trial never left the lowest level.
    model = EWOC(0.33, 20.0, 100.0, dose_levels=(20.0, 40.0, 60.0, 80.0, 100.0))
    design = ewoc_design(model, alpha=0.25)
    for n in (1, 3, 6):
        decision = design.next(_data([20.0] * n, [0] * n))
        assert decision.next_dose == 40.0
        assert decision.quantities["p_overdose"] == pytest.approx(0.25, abs=1e-4)
    # A quantile clearly below a level still rounds down.
    assert ewoc_design(model, alpha=0.2).next(_data([20.0] * 3, [0] * 3)).next_dose == 20.0


def test_ewoc_with_x_min_at_the_lowest_level_cannot_stop_and_says_so():
    # At x_min the DLT rate is rho0 < theta whatever the data: 3/3 DLTs there leave the
    # MTD's posterior at its prior, P(MTD < lowest) is 0, and a safety cutoff could never fire.
    model = EWOC(0.25, 10.0, 160.0, dose_levels=LEVELS)
    toxic = _data([10.0] * 3, [1] * 3)
    assert model.posterior(toxic).mtd.cdf(10.0) == 0.0
    with pytest.raises(ValueError, match=r"safety_cutoff 0.9 can never stop.*x_min \(10\)"):
        ewoc_design(model, safety_cutoff=0.9)
    # With x_min below the lowest level the data can say it: the cutoff stops the trial and
    # the overdose limit alone stops it too, both without an MTD.
    below = EWOC(0.25, 0.0, 160.0, dose_levels=LEVELS)
    p_overdose = below.posterior(toxic).mtd.cdf(10.0)
    assert p_overdose > 0.5
    cutoff = ewoc_design(below, safety_cutoff=0.5)
    expected = f"safety: P(MTD < lowest dose 10) = {p_overdose:.3f} > 0.5"
    assert cutoff.next(toxic).stop_reason == expected
    assert cutoff.recommend(toxic).stop_reason.startswith("no MTD: safety")
    limited = ewoc_design(below)
    assert limited.next(toxic).stop_reason.startswith("overdose limit")
    assert limited.recommend(toxic).stop_reason.startswith("no MTD: overdose limit")


# ------------------------------------------------------------------ the likelihood's kernel


@st.composite
def _binomial_terms(draw):
    """A linear predictor and counts per dose: extreme slopes, whole and fractional counts."""
    size = draw(st.integers(1, 6))
    x = np.array(draw(st.lists(st.floats(-3.0, 200.0), min_size=size, max_size=size)))
    counts = st.one_of(
        st.integers(0, 40),
        st.integers(500, 700),  # past the whole power's limit
        st.floats(0.0, 30.0),  # a weighted count: no whole power
    )
    n = np.array(draw(st.lists(counts, min_size=size, max_size=size)), dtype=float)
    y = np.array([draw(st.floats(0.0, 1.0)) * count for count in n])
    y[n == np.floor(n)] = np.floor(y[n == np.floor(n)])
    a = draw(st.floats(-50.0, 50.0))
    b = draw(st.floats(-8.0, 8.0))
    factor = draw(st.one_of(st.just(1.0), st.floats(1.0, 2.0**256)))
    return a, b, x, n, y, factor


@settings(max_examples=300, deadline=None)
@given(_binomial_terms())
# Every factor 1 + u is 2: 2^2256 with the 2^256 given, logged on the way or it overflows.
@example((0.0, 0.0, np.arange(4.0), np.full(4, 500.0), np.full(4, 250.0), 2.0**256))
def test_the_one_logarithm_likelihood_is_the_sum_of_log_sigmoids(terms):
    """``binomial_log_likelihood`` against the textbook sum, where overflow and limits bite."""
    from scipy.special import log_expit

    from dosezoo.samplers.logistic_kernels import binomial_log_likelihood

    a, b, x, n, y, factor = terms
    eta = a + b * x
    expected = float(np.sum(y * log_expit(eta) + (n - y) * log_expit(-eta))) - math.log(factor)
    got = binomial_log_likelihood(a, b, x, n, y, factor)
    # Each term is exact to a few units in the last place of its size.
    scale = float(np.sum(n * (np.abs(eta) + 1.0))) + math.log(factor) + 1.0
    assert got == pytest.approx(expected, rel=0, abs=1e-13 * scale)


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-745.13)  # the last exp that rounds up to the smallest subnormal
@example(-746.0)
@example(709.78)  # the last finite exp
@example(710.0)
def test_exp_without_errno_is_exp_to_the_last_bit(x):
    from dosezoo.samplers.numerics import exp_without_errno

    try:
        expected = math.exp(x)
    except OverflowError:
        expected = math.inf
    got = exp_without_errno(x)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 700),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-300, 1e-8, 1.0, 1e8, 1e290]),  # no sum reaches the overflow
)
@example(5000, 0, 1.0)  # parts split three times over
def test_numpy_sum_is_numpys_sum_to_the_last_bit(size, seed, scale):
    """Summands of mixed signs and magnitudes: any other order of the additions rounds apart."""
    from dosezoo.samplers.numerics import numpy_sum

    rng = np.random.default_rng(seed)
    values = rng.standard_normal(size) * scale * 10.0 ** rng.uniform(-6, 6, size)
    assert numpy_sum(values) == np.sum(values)


def test_a_count_that_is_no_number_gives_a_nan_likelihood_not_a_cast():
    """NaN never reaches the whole-power branch (a NaN cast to int is undefined in numba)."""
    from dosezoo.samplers.logistic_kernels import binomial_log_likelihood

    x, y = np.array([0.0, 1.0]), np.array([0.0, 0.0])
    assert math.isnan(binomial_log_likelihood(0.1, 0.2, x, np.array([3.0, np.nan]), y))
    assert math.isfinite(binomial_log_likelihood(0.1, 0.2, x, np.array([3.0, 2.0]), y))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 0),
        (3.0, 3),
        (512.0, 512),
        (512.5, -1),
        (513.0, -1),
        (2.5, -1),
        (-1.0, -1),
        (-0.5, -1),
        (math.nan, -1),
        (math.inf, -1),
        (1e300, -1),
    ],
)
def test_whole_within_takes_only_whole_numbers_inside_the_limit(value, expected):
    """The kernels raise a factor to a count by squarings only where this says it is whole."""
    from dosezoo.samplers.numerics import whole_within

    assert whole_within(value, 512) == expected


@pytest.mark.parametrize(
    "prior", [BLRMPrior(sd=(100.0, 100.0)), BLRMPrior(mean=(0.0, 700.0))], ids=["vague", "far"]
)
def test_a_blrm_prior_the_quadrature_cannot_hold_is_named(prior):
    # A bare FloatingPointError ('the log posterior is NaN at a point of the quadrature')
    # named neither the model nor its prior.
    design = blrm_design(BLRM(LEVELS, 40.0, prior=prior))
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [LEVELS[0]] * 3 + [LEVELS[1]] * 3, "dlt": [0, 0, 0, 0, 1, 0]})
    )
    with pytest.raises(ValueError, match=r"BLRM: the posterior under prior_mean=.* cannot be"):
        design.next(data)


def test_an_ewoc_dose_range_of_infinite_width_is_refused():
    # -1e308 to 1e308: the scaled doses overflowed (a RuntimeWarning, then NaN); with doses
    # not negative, only a negative x_min made the width overflow
    with pytest.raises(ValueError, match=r"x_min must be >= 0 \(a dose is not negative\)"):
        EWOC(0.33, -1e308, 1e308)


def test_a_stop_by_the_blrm_stopping_rule_records_the_dose_recommend_selects():
    # Stopped "at dose 4" (the next dose: max_increase held it below 8.5, given before to 30
    # patients with P(target) 0.83), the stop recorded 4 as selected where recommend, which
    # the simulation records, gives 8.5.
    levels = (2.0, 4.0, 8.5)
    design = blrm_design(BLRM(levels, 4.0), sample_size=200)
    data = data_from_counts(np.array([30, 30, 30]), np.array([3, 6, 7]), 1, levels, (3, 1))
    decision = design.next(data)
    assert decision.stop_reason.startswith("stopping rule met at dose 4: 30 patients there")
    assert decision.stop_reason.endswith("; recommended 8.5")
    assert decision.quantities["selected_dose"] == design.recommend(data).next_dose == 8.5


# --------------------------------------------------------------------------- the grid engine

GRID_CASES = {
    "no patients": ([], []),
    "3/3 at the lowest": ([10.0] * 3, [1] * 3),
    "0/6 in the middle": ([40.0] * 6, [0] * 6),
    "a trial": (
        [10.0] * 3 + [20.0] * 3 + [40.0] * 6 + [80.0] * 6,
        [0] * 6 + [0, 1] + [0] * 4 + [1] * 3 + [0] * 3,
    ),
}


@pytest.mark.parametrize("case", sorted(GRID_CASES))
@pytest.mark.parametrize(
    "model", [BLRM(LEVELS, 40.0), EWOC(0.33, 0.0, 200.0, dose_levels=LEVELS)], ids=["blrm", "ewoc"]
)
def test_the_grid_engine_draws_agree_with_the_quadrature_on_tail_probabilities(model, case):
    """The draws of ``fit(engine="grid")`` against the decisions' quadrature (checked against
    3000 x 3000 grids above), P(p_k > 0.25).

    Under EWOC's default uniform priors the grid's box is wide for its bulk (logits with
    exponential tails): the draws, which sample each cell's share of an event, stay within
    2e-3 of the quadrature (2,000,000 draws), but the grid's row sums up to a cut per row
    (``GridTails`` on the grid, the posterior of a model that defines the grid alone) are up
    to 2e-2 off, as the cut moves steeply within a cell; BLRM's are within 3e-5.
    """
    dose, dlt = GRID_CASES[case]
    data = _data(dose, dlt)
    exact = model.posterior(data).prob_above(0.25)
    grid = model.grid(data)
    draws = grid.sample(200_000, np.random.default_rng(1))
    counted = (model.prob(draws, np.asarray(LEVELS)) > 0.25).mean(axis=0)
    assert np.abs(counted - exact).max() < 5e-3  # a 200,000-draw MCSE is at most 1.1e-3
    rows = np.abs(GridTails(grid, model).prob_above(0.25) - exact).max()
    assert rows < (1e-4 if isinstance(model, BLRM) else 2.5e-2)
