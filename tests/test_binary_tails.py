"""Tail quantities of the binary models' exact posteriors against brute-force integration.

The rules act on tails: CRM's safety rule on ``P(p_1 > target)``, BLRM on ``P(p_k >= 0.33)``
near its 0.25 cut-off, EWOC on the MTD's alpha-quantile (alpha down to 0.01). Each is compared
here with an integration written from the model's equations in its natural parameters, with
no adaptivity and no whitening: ``scipy.integrate.quad`` for CRM's one parameter, a 3000 x 3000
midpoint rule for the two of BLRM and EWOC. Required: 1e-3 in probability and 0.1 % of the
dose range for a quantile.
"""

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats
from scipy.special import expit, log_expit, logit, xlog1py, xlogy

from dosezoo.data import TrialData
from dosezoo.models import BLRM, CRM, EWOC, BLRMPrior
from dosezoo.samplers.logistic_quadrature import _kinds, _kinked

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
PROBABILITY_TOLERANCE = 1e-3
QUANTILE_TOLERANCE = 1e-3  # of the dose range
#: The CRM's quadrature is held to far less than the requirement (its error is about 1e-7 at
#: most in these cases): a regression shows at once.
CRM_TOLERANCE = 1e-6


def _data(doses, dlts):
    return TrialData.from_dataframe(
        pd.DataFrame({"dose": np.asarray(doses, float), "dlt": np.asarray(dlts, int)})
    )


def _counts(data):
    dose = np.asarray(data.dose, float)
    dlt = np.asarray(data.column("dlt"), float)
    distinct = np.unique(dose)
    n = np.array([np.sum(dose == d) for d in distinct])
    y = np.array([dlt[dose == d].sum() for d in distinct])
    return distinct, n, y


DATA_SETS = {
    "one_patient": _data([10], [0]),
    "small": _data([10, 10, 10, 20, 20, 20, 40, 40, 40], [0, 0, 0, 0, 0, 0, 0, 1, 1]),
    "longer": _data(
        [10] * 3 + [20] * 3 + [40] * 6 + [80] * 6,
        [0] * 3 + [0, 0, 0] + [0, 1, 0, 0, 0, 1] + [1, 0, 1, 1, 0, 0],
    ),
    "toxic_start": _data([10, 10, 10], [1, 1, 1]),
    "no_toxicity": _data([10] * 3 + [20] * 3 + [40] * 3 + [80] * 3, [0] * 12),
}


def _midpoint_2d(log_posterior, a_range, b_range, size=3000):
    """Cell centres and normalised masses of a size x size midpoint rule on a rectangle."""
    a = a_range[0] + (np.arange(size) + 0.5) * (a_range[1] - a_range[0]) / size
    b = b_range[0] + (np.arange(size) + 0.5) * (b_range[1] - b_range[0]) / size
    log_w = log_posterior(a[:, None], b[None, :])
    w = np.exp(log_w - log_w.max())
    return a, b, w / w.sum()


def _mass_below(w, edges, cut):
    """Mass of a midpoint grid below a cut of its second axis, one cut per first-axis value.

    ``w`` (n, m) are the masses of cells between ``edges`` (m + 1,) of the second axis; the
    CDF along it is interpolated linearly between cell edges, so a cut inside a cell counts
    its share of the cell (a hard indicator at the cell centres errs by up to half a cell's
    mass along the whole boundary).
    """
    cumulative = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1)
    return sum(
        np.interp(c, edges, row) for c, row in zip(np.broadcast_to(cut, w.shape[:1]), cumulative)
    )


# ------------------------------------------------------------------------------------ CRM


@pytest.mark.parametrize("name", list(DATA_SETS))
@pytest.mark.parametrize("working", ["empiric", "logistic"])
def test_crm_tail_probabilities_match_quad(name, working):
    skeleton = (0.05, 0.12, 0.25, 0.40, 0.55)
    model = CRM(skeleton, 0.25, model=working, dose_levels=LEVELS)
    dose, n, y = _counts(DATA_SETS[name])
    index = [LEVELS.index(d) for d in dose]

    def p_levels(beta):
        s = np.asarray(skeleton)
        if working == "empiric":
            return s ** np.exp(beta)
        return expit(3.0 + np.exp(beta) * (logit(s) - 3.0))

    def density(beta):
        p = p_levels(beta)[index]
        log_lik = np.sum(xlogy(y, p) + xlog1py(n - y, -p))
        return np.exp(log_lik) * stats.norm.pdf(beta, 0, np.sqrt(1.34))

    def tail(k, t):
        """Integral of the density where p_k(beta) > t, split where p_k crosses t."""
        edges = [-12.0, 12.0]
        if (p_levels(-12.0)[k] - t) * (p_levels(12.0)[k] - t) < 0:
            edges.insert(1, optimize.brentq(lambda b: p_levels(b)[k] - t, -12.0, 12.0))
        return sum(
            integrate.quad(density, lo, hi, epsabs=1e-13, limit=200)[0]
            for lo, hi in itertools.pairwise(edges)
            if p_levels(0.5 * (lo + hi))[k] > t
        )

    total = integrate.quad(density, -12.0, 12.0, epsabs=1e-13, limit=200)[0]
    posterior = model.posterior(DATA_SETS[name])
    for t in (0.1, 0.25, 0.33):
        expected = [tail(k, t) / total for k in range(len(skeleton))]
        assert posterior.prob_above(t) == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)


#: Skeletons of the CRM cases: dfcrm's crmsim, one far below a 0.25 target, one far above it
#: (its top level is above expit(3), where the logistic model's scaled dose changes sign).
CRM_SKELETONS = {
    "crmsim": (0.05, 0.12, 0.25, 0.40, 0.55),
    "low": (0.005, 0.01, 0.02, 0.04, 0.08),
    "high": (0.30, 0.50, 0.70, 0.90, 0.97),
}
#: Patients and DLTs per level of the CRM cases.
CRM_COUNTS = {
    "empty": ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
    "toxic_lowest": ((3, 0, 0, 0, 0), (3, 0, 0, 0, 0)),
    "safe_top": ((3, 3, 3, 3, 12), (0, 0, 0, 0, 0)),
    "mixed_24": ((3, 3, 6, 9, 3), (0, 0, 1, 3, 2)),
    "toxic_24": ((12, 6, 3, 3, 0), (5, 4, 2, 3, 0)),
}


def _counts_data(n, y):
    doses = np.repeat(LEVELS, n)
    dlts = np.concatenate([np.arange(c) < d for c, d in zip(n, y, strict=True)])
    return _data(doses, dlts.astype(int))


class _BruteForceCRM:
    """The CRM posterior of beta by ``scipy.integrate.quad``, from the model's equations.

    Every event is integrated piecewise between its breakpoints in beta, found by root finding
    on the DLT probabilities themselves (no use of the model's cuts); the MTD is the argmin of
    the distance to the target over a placebo level of rate 0 and the levels, as defined.
    """

    def __init__(self, skeleton, working, n, y, prior_sd=np.sqrt(1.34)):
        self.s = np.asarray(skeleton)
        self.working = working
        self.n, self.y = np.asarray(n, float), np.asarray(y, float)
        self.sd = prior_sd
        self.ends = (-12.0 * prior_sd, 12.0 * prior_sd)
        options = {"xatol": 1e-10}
        self.mode = optimize.minimize_scalar(
            lambda b: -self.log_density(b), bounds=self.ends, method="bounded", options=options
        ).x
        self.peak = self.log_density(self.mode)
        self.total = self.integral(lambda b: 1.0)

    def p(self, beta):
        """DLT probability per level, shape ``beta.shape + (K,)``."""
        return np.exp(self.log_p(beta))

    def log_p(self, beta):
        """Log DLT probability per level (finite where the probability underflows)."""
        return self.log_p_and_q(beta)[0]

    def log_p_and_q(self, beta):
        """``log p`` and ``log(1 - p)`` per level."""
        u = np.exp(np.asarray(beta, dtype=float))[..., None]
        if self.working == "empiric":
            log_p = u * np.log(self.s)
            return log_p, np.log(-np.expm1(log_p))
        eta = 3.0 + u * (logit(self.s) - 3.0)
        return log_expit(eta), log_expit(-eta)

    def log_density(self, beta):
        # From the logarithms: p and 1 - p underflow far out in a wide prior's tails.
        log_p, log_q = self.log_p_and_q(beta)
        failures = self.n - self.y
        log_lik = np.where(self.y > 0, self.y * log_p, 0.0) + np.where(
            failures > 0, failures * log_q, 0.0
        )
        return float(np.sum(log_lik) - 0.5 * (beta / self.sd) ** 2)

    def integral(self, f, low=None, high=None):
        low = self.ends[0] if low is None else low
        high = self.ends[1] if high is None else high
        breaks = sorted({low, high, *(b for b in (self.mode,) if low < b < high)})

        def density(b):
            return f(b) * np.exp(self.log_density(b) - self.peak)

        options = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": 400}
        return sum(
            integrate.quad(density, lo, hi, **options)[0] for lo, hi in itertools.pairwise(breaks)
        )

    def mean(self, f):
        return self.integral(f) / self.total

    def probability(self, event):
        """Posterior probability of ``event(beta)`` (vectorised, boolean), split where it flips."""
        scan = np.linspace(*self.ends, 4001)
        flags = event(scan)
        edges = [self.ends[0]]
        for i in np.flatnonzero(flags[1:] != flags[:-1]):
            lo, hi = scan[i], scan[i + 1]
            for _ in range(80):
                middle = 0.5 * (lo + hi)
                lo, hi = (middle, hi) if event(middle) == flags[i] else (lo, middle)
            edges.append(0.5 * (lo + hi))
        edges.append(self.ends[1])
        return (
            sum(
                self.integral(lambda b: 1.0, lo, hi)
                for lo, hi in itertools.pairwise(edges)
                if event(0.5 * (lo + hi))
            )
            / self.total
        )

    def quantile(self, q):
        return optimize.brentq(
            lambda c: self.integral(lambda b: 1.0, high=c) / self.total - q, *self.ends, xtol=1e-12
        )


@pytest.mark.parametrize("counts", list(CRM_COUNTS))
@pytest.mark.parametrize("skeleton", list(CRM_SKELETONS))
@pytest.mark.parametrize("working", ["empiric", "logistic"])
def test_crm_posterior_quantities_match_quad(counts, skeleton, working):
    """Everything the CRM rule and its overdose limit read, and the summary's quantiles."""
    _check_crm_against_quad(CRM_SKELETONS[skeleton], working, *CRM_COUNTS[counts])


@pytest.mark.parametrize("counts", ["empty", "mixed_24", "toxic_24"])
@pytest.mark.parametrize("prior_sd", [3.0, 10.0])
@pytest.mark.parametrize("working", ["empiric", "logistic"])
def test_crm_posterior_quantities_match_quad_under_wide_priors(counts, prior_sd, working):
    """A vague prior spreads the posterior over tens of units of beta, where the working
    models change within one: the rule's panels must stay that narrow."""
    _check_crm_against_quad(CRM_SKELETONS["crmsim"], working, *CRM_COUNTS[counts], prior_sd)


@pytest.mark.parametrize("counts", ["mixed_24", "first_cohorts"])
@pytest.mark.parametrize("prior_sd", [100.0, 300.0, 1e4, 1e6])
def test_the_crm_posterior_under_a_vague_prior_is_the_flat_prior_one(counts, prior_sd):
    """Where DLTs and non-DLTs bound the empiric likelihood, a vaguer prior tends to a flat one.

    The rule scanned 10 prior sds either side in 16 steps and sought the ends of the mass to a
    thousandth of a step: under sd 300 an end fell 0.375 inside a posterior about 1 wide, and
    the posterior mean of beta was -0.51 where it is -0.18 (a different next dose).
    """
    n, y = CRM_COUNTS.get(counts, ((3, 3, 0, 0, 0), (0, 1, 0, 0, 0)))
    skeleton = CRM_SKELETONS["crmsim"]
    model = CRM(skeleton, 0.25, dose_levels=LEVELS, prior_sd=prior_sd)
    posterior = model.posterior(_counts_data(n, y))
    log_s, n, y = np.log(skeleton), np.asarray(n), np.asarray(y)

    def log_density(beta):  # the likelihood confines beta to [-20, 20]; the prior is flat there
        log_p = np.exp(beta) * log_s
        return np.sum(y * log_p + (n - y) * np.log(-np.expm1(log_p))) - 0.5 * (beta / prior_sd) ** 2

    peak = max(log_density(b) for b in np.linspace(-20, 20, 4001))
    options = {"points": [-1.0, 0.0, 1.0], "limit": 400, "epsabs": 1e-14}
    total = integrate.quad(lambda b: np.exp(log_density(b) - peak), -20, 20, **options)[0]
    mean = integrate.quad(lambda b: b * np.exp(log_density(b) - peak), -20, 20, **options)[0]
    assert posterior.parameter_mean["beta"] == pytest.approx(mean / total, abs=CRM_TOLERANCE)


@pytest.mark.parametrize(
    ("working", "prior_sd", "counts"),
    [
        # flat as beta -> -inf: the rule would need 10^6 panels (it ran out of memory)
        ("logistic", 1e6, ((3, 3, 0, 0, 0), (0, 1, 0, 0, 0))),
        # e^beta overflows at the scan's points (a NaN decision)
        ("empiric", 1e300, ((3, 3, 0, 0, 0), (0, 1, 0, 0, 0))),
        # without a DLT the empiric likelihood is flat as beta -> inf
        ("empiric", 1e6, ((3, 3, 0, 0, 0), (0, 0, 0, 0, 0))),
        # the prior alone, so wide that its panels overflowed an integer (a wrong prior)
        ("empiric", 1e100, ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0))),
        ("logistic", 1e300, ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0))),
    ],
)
def test_a_crm_prior_too_vague_to_integrate_is_named(working, prior_sd, counts):
    model = CRM(CRM_SKELETONS["crmsim"], 0.25, model=working, dose_levels=LEVELS, prior_sd=prior_sd)
    with pytest.raises(ValueError, match=re.escape(f"prior_sd={prior_sd!r} cannot be integrated")):
        model.posterior(_counts_data(*counts))


def _check_crm_against_quad(skeleton, working, n, y, prior_sd=np.sqrt(1.34)):
    from dosezoo.designs import crm_design

    target = 0.25
    model = CRM(skeleton, target, model=working, dose_levels=LEVELS, prior_sd=prior_sd)
    design = crm_design(model)
    truth = _BruteForceCRM(skeleton, working, n, y, prior_sd)
    posterior = model.posterior(_counts_data(n, y))
    tolerance = {"abs": CRM_TOLERANCE}
    beta_mean = truth.mean(lambda b: b)
    assert posterior.parameter_mean["beta"] == pytest.approx(beta_mean, **tolerance)
    assert posterior.point_estimates["p_dlt"] == pytest.approx(truth.p(beta_mean), **tolerance)
    p_mean = [truth.mean(lambda b, k=k: truth.p(b)[k]) for k in range(len(LEVELS))]
    assert posterior.mean() == pytest.approx(p_mean, **tolerance)
    for t in (0.1, target, 0.33, 0.5):
        expected = [truth.probability(lambda b, k=k: truth.p(b)[..., k] > t) for k in range(5)]
        assert posterior.prob_above(t) == pytest.approx(expected, **tolerance), t

    def mtd_below(beta, level):
        log_rates = truth.log_p(beta)
        placebo = np.full((*log_rates.shape[:-1], 1), -np.inf)
        log_rates = np.concatenate([placebo, log_rates], axis=-1)
        rates = np.exp(log_rates)
        distance = np.abs(rates - target)
        # Rates so close to 0 (or 1) that their distances to the target round to the same
        # number, or that underflow to 0, are told apart by their logarithms: below the target
        # the larger rate is closer, above it the smaller (of two equidistant rates the lower
        # is taken, as the definition says).
        tie_break = np.where(rates < target, -log_rates, log_rates)
        closest = np.lexsort((tie_break, distance), axis=-1)[..., 0]
        return closest - 1 < level

    for level, dose in enumerate(LEVELS):
        expected = truth.probability(lambda b, j=level: mtd_below(b, j))
        got = design.rule.overdose_probability(posterior, dose)
        assert got == pytest.approx(expected, **tolerance), dose
    # The summary's 95 % interval: p_k at quantiles of beta (p_k decreases in beta here but
    # where the logistic model's scaled dose is positive).
    table = model.summary(posterior, target=target)
    at = truth.p(np.array([truth.quantile(0.025), truth.quantile(0.975)]))
    increasing = model.scaled_doses > 0
    expected = {
        "q2.5": np.where(increasing, at[0], at[1]),
        "q97.5": np.where(increasing, at[1], at[0]),
    }
    for column, values in expected.items():
        assert table[column].to_numpy() == pytest.approx(values, abs=QUANTILE_TOLERANCE)


def test_crm_draws_invert_the_posterior_cdf():
    model = CRM(CRM_SKELETONS["crmsim"], 0.25, dose_levels=LEVELS)
    n, y = CRM_COUNTS["mixed_24"]
    quadrature = model.posterior(_counts_data(n, y)).grid
    uniforms = np.linspace(0.0005, 0.9995, 301)
    assert quadrature.cdf(quadrature.draws(uniforms)) == pytest.approx(uniforms, abs=1e-10)


def test_the_crm_rule_agrees_with_a_three_times_finer_one_on_random_states(monkeypatch):
    # Random skeletons, counts and priors (sd 0.3 to 30, both working models): every quantity
    # a CRM rule reads, from the shipped rule and from one with three times its panels, each a
    # third as wide at most, within CRM_TOLERANCE (they agree within 1.5e-7 here; with a
    # MAX_PANEL_WIDTH three times as large, within 8e-6 only).
    from dosezoo.samplers import crm_quadrature

    def quantities(model, x, n, y, prior_mean, prior_sd):
        fit = crm_quadrature.CRMQuadrature.fit(model, x, n, y, 3.0, prior_mean, prior_sd)
        cut = math.log(0.3) if model == crm_quadrature.EMPIRIC else logit(0.3) - 3.0
        return np.concatenate(
            [
                fit.weights @ fit.rates,
                fit.plugin,
                fit.prob_above(cut),
                [fit.mass_closest_below(k, 0.25) for k in range(x.size)],
                fit.cdf(fit.beta_mean + np.array([-1.0, 0.5])),
            ]
        )

    rng = np.random.default_rng(7)
    settings = itertools.product(
        (crm_quadrature.EMPIRIC, crm_quadrature.LOGISTIC), (0.3, 1.16, 3.0, 10.0, 30.0), (-1, 0, 1)
    )
    for model, prior_sd, prior_mean in settings:
        for _ in range(10):
            skeleton = np.sort(rng.uniform(0.01, 0.8, rng.integers(3, 8)))
            x = np.log(skeleton) if model == crm_quadrature.EMPIRIC else logit(skeleton) - 3.0
            n = rng.integers(0, 10, x.size) * (rng.random(x.size) < 0.7)
            y = rng.integers(0, n + 1)
            problem = (model, x, n, y, prior_mean, prior_sd)
            shipped = quantities(*problem)
            monkeypatch.setattr(crm_quadrature, "PANELS", 3 * crm_quadrature.PANELS)
            monkeypatch.setattr(
                crm_quadrature, "MAX_PANEL_WIDTH", crm_quadrature.MAX_PANEL_WIDTH / 3
            )
            finer = quantities(*problem)
            monkeypatch.undo()
            assert shipped == pytest.approx(finer, abs=CRM_TOLERANCE), problem


# ----------------------------------------------------------------------------------- BLRM


@pytest.mark.parametrize("name", list(DATA_SETS))
def test_blrm_interval_probabilities_match_a_3000_grid(name):
    prior = BLRMPrior(mean=(logit(0.2), 0.0), sd=(2.0, 1.0), correlation=0.3)
    model = BLRM(LEVELS, 40.0, prior=prior)
    dose, n, y = _counts(DATA_SETS[name])
    x = np.log(dose / 40.0)

    def log_posterior(la, lb):
        za, zb = (la - prior.mean[0]) / 2.0, lb / 1.0
        total = -0.5 * (za**2 - 0.6 * za * zb + zb**2) / (1 - 0.09)
        for xi, ni, yi in zip(x, n, y, strict=True):
            eta = la + np.exp(lb) * xi
            total = total - yi * np.logaddexp(0, -eta) - (ni - yi) * np.logaddexp(0, eta)
        return total

    b, a, w = _midpoint_2d(lambda lb, la: log_posterior(la, lb), (-7.0, 5.0), (-14.0, 10.0))
    a_edges = np.linspace(-14.0, 10.0, a.size + 1)
    posterior = model.posterior(DATA_SETS[name])
    for t in (0.16, 0.33):
        # p_k > t iff log alpha > logit t - exp(log beta) x_k
        expected = [
            1.0 - _mass_below(w, a_edges, logit(t) - np.exp(b) * np.log(d / 40.0)) for d in LEVELS
        ]
        assert posterior.prob_above(t) == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)


def test_blrm_events_whose_cut_sweeps_across_the_rows_match_a_3000_grid():
    # Data at the reference dose only inform log alpha; at 10.29, far from the reference
    # 1.35, the cut of p > t in log alpha moves as beta (prior sd 1): across the rows' mass
    # within a tenth of an outer panel, which the outer rule missed by up to 6e-3 (0.4471 for
    # 0.4411; at 4.71 0.2514 for 0.2481, over the EWOC cut-off of 0.25). Found by an audit
    # against scipy's dblquad and importance sampling.
    levels = (1.35, 1.62, 2.31, 3.69, 4.71, 10.29)
    prior = BLRMPrior(
        mean=(-3.1079163477377043, -0.008264383510305768), sd=(0.5, 1.0), correlation=-0.5
    )
    model = BLRM(levels, 1.35, prior=prior)
    data = _data([1.35] * 3, [0] * 3)

    def log_posterior(la, lb):
        za, zb = (la - prior.mean[0]) / 0.5, (lb - prior.mean[1]) / 1.0
        total = -0.5 * (za**2 + za * zb + zb**2) / (1 - 0.25)
        return total - 3 * np.logaddexp(0, la)  # three patients without a DLT at x = 0

    b, a, w = _midpoint_2d(lambda lb, la: log_posterior(la, lb), (-6.0, 5.0), (-7.0, 1.0))
    a_edges = np.linspace(-7.0, 1.0, a.size + 1)
    posterior = model.posterior(data)
    for t in (0.16, 0.33):
        expected = [
            1.0 - _mass_below(w, a_edges, logit(t) - np.exp(b) * np.log(d / 1.35)) for d in levels
        ]
        assert posterior.prob_above(t) == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)


# ----------------------------------------------------------------------------------- EWOC

#: The example of the R package ewoc (``ewoc_d1classic``): one patient at 20 without a DLT,
#: theta 0.33, doses 0 to 100, uniform priors; and the data sets above on 10 to 160.
EWOC_CASES = {
    "ewoc_package_example": (0.33, 0.0, 100.0, _data([20], [0])),
    **{name: (0.25, 10.0, 160.0, data) for name, data in DATA_SETS.items()},
    # Nearly every patient at one dose: the posterior is a long curved ridge, whose rows' log
    # densities fall off cliffs (a state of the benchmark's simulations where a first
    # quadrature's interpolants overshot).
    "one_dose_ridge": (0.3, 10.0, 80.0, _data([10] * 3 + [20] * 24, [0] * 3 + [1] * 7 + [0] * 17)),
    # A longer ridge, where the quadrature errs most (about 3e-4 in P(MTD < dose)) of the states
    # of the benchmark's simulations.
    "long_ridge": (0.3, 10.0, 80.0, _data([10] * 3 + [20] * 27, [0] * 3 + [1] * 8 + [0] * 19)),
    # Ridges an audit found (2026-12): the rows integrated again where a cut sweeps across
    # them read l's interpolant, unresolved between their nodes, and P(MTD < 40) was 0.5353 for
    # 0.5230; the MTD's quantiles inverted the outer rule alone, the 0.1-quantile 49.10 for
    # 50.16 with 150 patients at 40.
    "ridge_80_at_20": (0.25, 0.0, 160.0, _data([20] * 80, [1] * 24 + [0] * 56)),
    "ridge_150_at_40": (0.25, 0.0, 160.0, _data([40] * 150, [1] * 28 + [0] * 122)),
    # 203 patients at 7 levels: the rows of the ridge cross a fixed MTD within a tenth of an
    # outer panel, and the CDF by the outer rule alone erred by 1.1e-2 (an independent audit:
    # P(MTD < 10) 0.5719 for 0.5613).
    "many_patients": (
        0.2,
        0.0,
        90.0,
        _data(
            np.repeat([10, 20, 30, 40, 50, 60, 70], [13, 7, 57, 31, 32, 15, 48]),
            np.concatenate(
                [
                    [1] * dlts + [0] * (patients - dlts)
                    for patients, dlts in zip(
                        [13, 7, 57, 31, 32, 15, 48], [2, 3, 24, 19, 17, 10, 37], strict=True
                    )
                ]
            ),
        ),
    ),
}


def _within(x_max):
    """The levels up to ``x_max``."""
    return tuple(level for level in LEVELS if level <= x_max)


def _ewoc_log_posterior(theta, x_min, data):
    """Log posterior of (rho0, gamma) with uniform priors on (0, theta) and (x_min, x_max)."""
    dose, n, y = _counts(data)

    def log_posterior(rho0, gamma):
        slope = (logit(theta) - logit(rho0)) / (gamma - x_min)
        total = np.zeros(np.broadcast_shapes(rho0.shape, gamma.shape))
        for xi, ni, yi in zip(dose, n, y, strict=True):
            eta = logit(rho0) + slope * (xi - x_min)
            total = total - yi * np.logaddexp(0, -eta) - (ni - yi) * np.logaddexp(0, eta)
        return total

    return log_posterior


@pytest.mark.parametrize("name", list(EWOC_CASES))
def test_ewoc_mtd_quantiles_and_overdose_probabilities_match_a_3000_grid(name):
    """The MTD's alpha-quantiles and P(MTD < dose) at and just past them (what the rule reads)."""
    theta, x_min, x_max, data = EWOC_CASES[name]
    span = x_max - x_min
    levels = tuple(np.linspace(x_min, x_max, 6)[1:]) if x_min == 0 else _within(x_max)
    model = EWOC(theta, x_min, x_max, dose_levels=levels)
    _, gamma, w = _midpoint_2d(
        _ewoc_log_posterior(theta, x_min, data), (0.0, theta), (x_min, x_max)
    )
    cdf = np.concatenate([[0.0], np.cumsum(w.sum(axis=0))])
    edges = x_min + np.arange(gamma.size + 1) * span / gamma.size
    posterior = model.posterior(data)
    for alpha in (0.01, 0.05, 0.1, 0.25, 0.5):
        expected = float(np.interp(alpha, cdf, edges))
        assert posterior.mtd.quantile(alpha) == pytest.approx(
            expected, abs=QUANTILE_TOLERANCE * span
        ), alpha
        # P(overdose) at the dose next to the quantile, where the rule's cut-off bites
        for dose_at in (expected, expected + 0.02 * span):
            exact = float(np.interp(dose_at, edges, cdf))
            assert posterior.mtd.cdf(dose_at) == pytest.approx(exact, abs=PROBABILITY_TOLERANCE)


@pytest.mark.parametrize(
    ("rho0_prior", "mtd_prior"),
    [((1.5, 4.0), (2.0, 3.0)), ((1.0, 1.0), (1.5, 2.2))],
    ids=["whole_shape_sum", "fractional_shape_sum"],
)
def test_ewoc_mtd_quantiles_under_beta_priors_match_a_3000_grid(rho0_prior, mtd_prior):
    """Informative Beta priors: the quadrature takes a whole shape sum into the likelihood's
    product and a fractional one by its own logarithm; both are the same posterior."""
    theta, x_min, x_max, data = 0.25, 10.0, 160.0, DATA_SETS["small"]
    span = x_max - x_min
    model = EWOC(
        theta, x_min, x_max, dose_levels=LEVELS, rho0_prior=rho0_prior, mtd_prior=mtd_prior
    )
    likelihood = _ewoc_log_posterior(theta, x_min, data)

    def log_posterior(rho0, gamma):
        f1, f2 = rho0 / theta, (gamma - x_min) / span
        return (
            likelihood(rho0, gamma)
            + stats.beta.logpdf(f1, *rho0_prior)
            + stats.beta.logpdf(f2, *mtd_prior)
        )

    _, gamma, w = _midpoint_2d(log_posterior, (0.0, theta), (x_min, x_max))
    cdf = np.concatenate([[0.0], np.cumsum(w.sum(axis=0))])
    edges = x_min + np.arange(gamma.size + 1) * span / gamma.size
    posterior = model.posterior(data)
    for alpha in (0.01, 0.1, 0.25, 0.5):
        expected = float(np.interp(alpha, cdf, edges))
        assert posterior.mtd.quantile(alpha) == pytest.approx(
            expected, abs=QUANTILE_TOLERANCE * span
        ), alpha
        exact = float(np.interp(expected + 0.02 * span, edges, cdf))
        assert posterior.mtd.cdf(expected + 0.02 * span) == pytest.approx(
            exact, abs=PROBABILITY_TOLERANCE
        )


def test_ewoc_level_overdose_probabilities_match_a_3000_grid():
    # P(p_k > t) for t off the target (what summary() reads): as rho0 nears t the event's cut
    # runs off to infinity between two rows, a kink the outer rule alone erred on by up to 3e-2.
    failures = []
    for name, (theta, x_min, x_max, data) in EWOC_CASES.items():
        levels = tuple(np.linspace(x_min, x_max, 6)[1:]) if x_min == 0 else _within(x_max)
        model = EWOC(theta, x_min, x_max, dose_levels=levels)
        rho0, gamma, w = _midpoint_2d(
            _ewoc_log_posterior(theta, x_min, data), (0.0, theta), (x_min, x_max)
        )
        edges = np.linspace(x_min, x_max, gamma.size + 1)
        posterior = model.posterior(data)
        for t in (0.2, 0.33):
            # given rho0 < t, p(d) > t iff gamma < x_min + (logit theta - logit rho0)(d - x_min)
            # / (logit t - logit rho0); given rho0 >= t, always
            gap = logit(t) - logit(rho0)
            reach = np.where(
                gap > 0, (logit(theta) - logit(rho0)) / np.where(gap > 0, gap, 1), np.inf
            )
            expected = [
                float(_mass_below(w, edges, x_min + reach * (d - x_min)))
                for d in levels
                if d > x_min
            ]
            above = posterior.prob_above(t)[np.asarray(levels) > x_min]
            if not np.allclose(above, expected, atol=PROBABILITY_TOLERANCE, rtol=0):
                failures.append((name, t))
    assert not failures, failures


def test_ewoc_lowest_level_probabilities_match_a_3000_grid():
    # At the lowest dose p = rho0: P(p > t) = P(rho0 > t), an event that holds on the rows
    # above rho0 = t and on none below, a jump between two rows (the outer rule alone erred
    # by up to 7e-2).
    checked = 0
    for theta, x_min, x_max, data in EWOC_CASES.values():
        levels = _within(x_max)
        if x_min == 0 or levels[0] != x_min:
            continue
        rho0, _, w = _midpoint_2d(
            _ewoc_log_posterior(theta, x_min, data), (0.0, theta), (x_min, x_max)
        )
        cells = np.linspace(0.0, theta, rho0.size + 1)
        posterior = EWOC(theta, x_min, x_max, dose_levels=levels).posterior(data)
        for t in (0.1, 0.2):
            above = np.clip((cells[1:] - t) / np.diff(cells), 0.0, 1.0)  # a cell's share
            expected = float(above @ w.sum(axis=1))
            assert posterior.prob_above(t)[0] == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
            checked += 1
    assert checked >= 10


def _cohorts(most: int):
    """Patients and DLTs at the first levels in turn, one (n, y) per level."""
    cohort = st.integers(1, most).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))
    return st.lists(cohort, min_size=1, max_size=len(LEVELS))


def _tails_at(model, cohorts, thresholds):
    """The posterior given the cohorts at the levels, and P(p_k > t) per threshold (rows)."""
    doses, dlts = [], []
    for level, (n, y) in zip(LEVELS, cohorts, strict=False):
        doses += [level] * n
        dlts += [1] * y + [0] * (n - y)
    posterior = model.posterior(_data(doses, dlts))
    return posterior, np.array([posterior.prob_above(t) for t in sorted(thresholds)])


def _assert_ordered_probabilities(above, tolerance):
    """Within [0, 1], falling as the threshold rises (rows), rising with the dose (columns)."""
    assert np.all((above >= 0.0) & (above <= 1.0))
    assert np.all(np.diff(above, axis=0) <= tolerance)
    assert np.all(np.diff(above, axis=1) >= -tolerance)


@settings(max_examples=25, deadline=None)
@given(
    cohorts=_cohorts(6),
    theta=st.sampled_from([0.2, 0.25, 0.33]),
    thresholds=st.lists(st.floats(0.01, 0.9), min_size=2, max_size=4, unique=True),
)
def test_ewoc_tail_probabilities_are_probabilities_ordered_by_dose_and_threshold(
    cohorts, theta, thresholds
):
    # Off the target most events run off between rows and are integrated again: a probability
    # must still lie in [0, 1], and fall as t rises and rise with the dose (p_k rises with it)
    # within the rule's error (an interpolant's integral, of order 1e-7 where the posterior
    # piles up at an end of the box: every patient toxic).
    model = EWOC(theta, LEVELS[0], LEVELS[-1], dose_levels=LEVELS)
    posterior, above = _tails_at(model, cohorts, thresholds)
    _assert_ordered_probabilities(above, 1e-5)
    cdf = np.array([posterior.mtd.cdf(dose) for dose in np.linspace(10.0, 160.0, 7)])
    assert np.all((cdf >= 0.0) & (cdf <= 1.0)) and np.all(np.diff(cdf) >= -1e-5)


@settings(max_examples=40, deadline=None)
@given(
    cohorts=_cohorts(9),
    working_model=st.sampled_from(["empiric", "logistic"]),
    thresholds=st.lists(st.floats(0.001, 0.999), min_size=2, max_size=4, unique=True),
)
def test_crm_tail_probabilities_are_probabilities_ordered_by_dose_and_threshold(
    cohorts, working_model, thresholds
):
    # A fuzz of random skeletons and data found sums just past 1 (by 1.4e-7) before they
    # were clipped.
    model = CRM((0.05, 0.12, 0.25, 0.4, 0.55), 0.25, dose_levels=LEVELS, model=working_model)
    _, above = _tails_at(model, cohorts, thresholds)
    _assert_ordered_probabilities(above, 1e-6)


def test_only_an_event_whose_cut_runs_off_between_rows_is_integrated_again():
    order = 8
    cut = np.zeros((3 * order, 4))
    cut[:, 1] = np.inf  # holds nowhere: no kink
    cut[order:, 2] = np.inf  # finite up to panel 0's last row: the point may be in panel 0 or 1
    cut[order + 3 :, 3] = np.inf  # finite, then infinite within panel 1
    cut[2 * order + 5 :, 0] = -np.inf  # within panel 2
    assert _kinked(_kinds(cut), order) == {0: [2], 1: [2, 3], 2: [0]}
    jump = np.full((order, 1), np.inf)
    jump[:4] = -np.inf  # holds everywhere on some rows, nowhere on others
    assert _kinked(_kinds(jump), order) == {0: [0]}
    assert _kinked(_kinds(np.full((order, 2), -np.inf)), order) == {}


@pytest.mark.parametrize("name", ["BLRM", "EWOC"])
def test_the_memo_weighs_a_quadrature_posterior_without_computing_its_rates(name):
    # The rules read tails only; the rates at the nodes cost as much as the rule itself. A new
    # model each run: its memo would hand back a posterior whose rates an earlier run read.
    model = BLRM(LEVELS, 40.0) if name == "BLRM" else EWOC(0.33, 0.0, 200.0, dose_levels=LEVELS)
    posterior = model.posterior(DATA_SETS[next(iter(DATA_SETS))])
    assert not posterior.rates.computed
    estimated = posterior.nbytes
    assert not posterior.rates.computed and list(posterior.rates) == ["p_dlt"]
    assert posterior.rates["p_dlt"].shape == (posterior.weights.size, len(LEVELS))
    assert posterior.rates.computed and posterior.nbytes == estimated


@pytest.mark.parametrize("prior", [BLRMPrior(sd=(2.0, 1000.0)), BLRMPrior(mean=(-1.4, 720.0))])
def test_a_blrm_prior_whose_slope_overflows_is_exact_at_the_reference_dose(prior):
    """At the reference dose ``logit p = log(alpha)`` whatever the slope: where a vague or
    extreme prior's ``e^log_beta`` overflows, ``inf * 0`` made the mean there NaN and its
    tail probabilities wrong (0.518 for 0.367)."""
    levels, reference = (1.0, 2.0, 4.0, 8.0, 16.0), 4.0
    posterior = BLRM(levels, reference, prior=prior).posterior(TrialData.empty(outcomes=("dlt",)))
    at = levels.index(reference)
    mean, sd = prior.mean[0], prior.sd[0]
    for threshold in (0.2, 0.33):
        exact = stats.norm.sf((logit(threshold) - mean) / sd)
        assert posterior.prob_above(threshold)[at] == pytest.approx(exact, abs=1e-6)
    exact_mean = integrate.quad(lambda z: expit(mean + sd * z) * stats.norm.pdf(z), -12, 12)[0]
    assert np.isfinite(posterior.mean()).all()
    assert posterior.mean()[at] == pytest.approx(exact_mean, abs=1e-6)


@pytest.mark.parametrize("name", list(DATA_SETS))
@pytest.mark.parametrize("working", ["empiric", "logistic"])
def test_one_level_of_the_crm_tails_is_that_level_of_all_levels(name, working):
    # The CRM's safety rule reads the lowest level only, integrated alone: the same number.
    model = CRM((0.05, 0.12, 0.25, 0.4, 0.55), 0.25, dose_levels=LEVELS, model=working)
    thresholds = (0.01, 0.25, 0.6, 0.99)
    for threshold in thresholds:
        alone = [model.posterior(DATA_SETS[name]).prob_above_at(threshold, k) for k in range(5)]
        every = model.posterior(DATA_SETS[name]).prob_above(threshold)
        assert alone == every.tolist()
    posterior = model.posterior(DATA_SETS[name])
    posterior.prob_above(0.25)  # computed for every level: read, not integrated again
    assert posterior.prob_above_at(0.25, 3) == posterior.prob_above(0.25)[3]
    with pytest.raises(ValueError, match="prob_above_at: the threshold of 'p_dlt' is NaN"):
        posterior.prob_above_at(float("nan"), 0)
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\), got 1\.0"):
        posterior.prob_above_at(1.0, 0)
    for level in (-1, 5, True, 1.0):
        with pytest.raises(ValueError, match="prob_above_at: level must"):
            posterior.prob_above_at(0.25, level)


@pytest.mark.parametrize("name", ["BLRM", "EWOC"])
def test_one_level_of_tails_without_a_one_level_integral_is_read_from_all_levels(name):
    model = {
        "BLRM": BLRM(LEVELS, 40.0),
        "EWOC": EWOC(0.3, 0.0, LEVELS[-1], dose_levels=LEVELS),
    }[name]
    posterior = model.posterior(DATA_SETS["longer"])
    every = posterior.prob_above(0.3).tolist()
    assert [posterior.prob_above_at(0.3, k) for k in range(5)] == every


def test_a_second_posterior_mode_is_refused_by_the_quadrature_not_missed():
    # A prior correlation of -0.95 and 60 DLTs of 60 at the top dose: 14% of the posterior
    # lies on flat curves, in a mode that a valley deeper than the rule's drop parts from the
    # first. The rule, fitted around the first, gave P(p >= 0.33) = 0 at the lower levels.
    from dosezoo.models.blrm import BLRMPrior

    prior = BLRMPrior(mean=(-1.3863, 0.0), sd=(2.0, 1.0), correlation=-0.95)
    model = BLRM((10, 20, 40, 80, 160), 40, prior=prior)
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [160] * 60, "dlt": [1] * 60}))
    with pytest.raises(ValueError, match=r"the posterior has a second mode.*engine 'grid'"):
        model.posterior(data)
    # The grid spans both: against importance sampling from the prior (the draws' weights the
    # likelihood; a sd below 0.001 with their ESS, about 1.8e5); 20,000 grid draws: sd 0.0025.
    rng = np.random.default_rng(0)
    covariance = [[4.0, -0.95 * 2.0], [-0.95 * 2.0, 1.0]]
    theta = rng.multivariate_normal([-1.3863, 0.0], covariance, size=2_000_000)
    log_weight = 60 * log_expit(theta[:, 0] + np.exp(theta[:, 1]) * np.log(4.0))
    weight = np.exp(log_weight - log_weight.max())
    lowest = expit(theta[:, 0] + np.exp(theta[:, 1]) * np.log(10 / 40))
    reference = float(weight @ (lowest >= 0.33) / weight.sum())
    fit = model.fit(data, engine="grid", draws=10_000, chains=2, random_seed=1)
    rates = fit["posterior"]["p_dlt"].values.reshape(-1, 5)
    np.testing.assert_allclose((rates[:, :3] >= 0.33).mean(axis=0), reference, atol=0.012)
    assert reference > 0.1  # the mass the rule missed


# --------------------------------------------------------- means and quantiles of p_k

#: The posterior means of p_k are held to far less than the tails' requirement: the rule's
#: nodes alone erred by 0.015 under a vague prior, the refined means by about 1e-6.
MEAN_TOLERANCE = 1e-4
VAGUE_BLRM = BLRMPrior(mean=(logit(0.2), 0.0), sd=(10.0, 3.0))
BLRM_MOMENT_CASES = {
    **{
        name: (BLRMPrior(mean=(logit(0.2), 0.0), sd=(2.0, 1.0), correlation=0.3), data)
        for name, data in DATA_SETS.items()
    },
    "vague_no_data": (VAGUE_BLRM, TrialData.empty(outcomes=("dlt",))),
    "vague_one_patient": (VAGUE_BLRM, DATA_SETS["one_patient"]),
    # log alpha well known, log beta as vague as its prior: the rates away from the reference
    # dose turn with beta, across the rule's rows (the nodes erred by 0.0065 at 160)
    "vague_three_of_sixty": (VAGUE_BLRM, _data([40] * 60, [1] * 3 + [0] * 57)),
}


def _blrm_grid(prior, data):
    """The natural coordinates' cell centres and masses of the BLRM posterior, 8 sds wide."""
    dose, n, y = _counts(data) if len(data.dose) else ((), (), ())
    x = np.log(np.asarray(dose, float) / 40.0)
    (mean_a, mean_b), (sd_a, sd_b), rho = prior.mean, prior.sd, prior.correlation

    def log_posterior(lb, la):
        za, zb = (la - mean_a) / sd_a, (lb - mean_b) / sd_b
        total = -0.5 * (za**2 - 2 * rho * za * zb + zb**2) / (1 - rho**2)
        for xi, ni, yi in zip(x, n, y, strict=True):
            eta = la + np.exp(lb) * xi
            total = total - yi * np.logaddexp(0, -eta) - (ni - yi) * np.logaddexp(0, eta)
        return total

    b_range = (mean_b - 8 * sd_b, mean_b + 8 * sd_b)
    a_range = (mean_a - 8 * sd_a, mean_a + 8 * sd_a)
    b, a, w = _midpoint_2d(log_posterior, b_range, a_range)
    return b, a, np.linspace(*a_range, a.size + 1), w


@pytest.mark.parametrize("name", list(BLRM_MOMENT_CASES))
def test_blrm_means_and_quantiles_of_the_rates_match_a_3000_grid(name):
    """The summary's mean and 95% interval of each p_k, against the grid in log alpha, log beta.

    A quantile is checked where it is exact, in probability: the grid's P(p_k > t_k) at the
    quadrature's t_k (the grid's own quantile of p at the reference dose steps with its cells).
    """
    prior, data = BLRM_MOMENT_CASES[name]
    model = BLRM(LEVELS, 40.0, prior=prior)
    b, a, a_edges, w = _blrm_grid(prior, data)
    posterior = model.posterior(data)
    rates = [expit(a[None, :] + np.exp(b)[:, None] * np.log(d / 40.0)) for d in LEVELS]
    expected = [float(np.sum(w * p)) for p in rates]
    assert posterior.mean() == pytest.approx(expected, abs=MEAN_TOLERANCE)
    variances = [float(np.sum(w * (p - m) ** 2)) for p, m in zip(rates, expected, strict=True)]
    assert posterior.variance("p_dlt") == pytest.approx(variances, abs=MEAN_TOLERANCE)
    summary = model.summary(posterior, target=0.33)
    for column, q in (("q2.5", 0.025), ("q97.5", 0.975)):
        quantile = summary[column].to_numpy()
        assert quantile.tolist() == posterior.tails["p_dlt"].quantile(q).tolist()
        above = [
            1.0 - _mass_below(w, a_edges, logit(t) - np.exp(b) * np.log(d / 40.0))
            for t, d in zip(quantile, LEVELS, strict=True)
        ]
        _assert_quantiles(quantile, above, q)


def _assert_quantiles(quantile, above, q):
    """``above`` (the grid's P(p_k > t_k)) is ``1 - q``, or beyond it where ``t_k`` is a bound.

    Under the vague prior, beta's tail makes the low doses' 2.5 % point smaller than
    ``expit(-34)``: the search's bound, reported as it.
    """
    for t, mass in zip(quantile, above, strict=True):
        if t == expit(-34.0):
            assert mass <= 1.0 - q + PROBABILITY_TOLERANCE
        elif t == expit(34.0):
            assert mass >= 1.0 - q - PROBABILITY_TOLERANCE
        else:
            assert mass == pytest.approx(1.0 - q, abs=PROBABILITY_TOLERANCE)


def test_the_blrm_mean_at_the_reference_dose_under_a_vague_prior_is_a_normal_integral():
    # With no data p = expit(log alpha) there, log alpha ~ N(logit 0.2, 10^2): the nodes' mean
    # was 0.4606.
    posterior = BLRM(LEVELS, 40.0, prior=VAGUE_BLRM).posterior(TrialData.empty(outcomes=("dlt",)))
    mean, sd = VAGUE_BLRM.mean[0], VAGUE_BLRM.sd[0]
    exact = integrate.quad(lambda z: expit(mean + sd * z) * stats.norm.pdf(z), -12, 12)[0]
    assert posterior.mean()[LEVELS.index(40.0)] == pytest.approx(exact, abs=1e-6)
    assert exact == pytest.approx(0.4457, abs=1e-4)
    for q in (0.025, 0.5, 0.975):
        assert posterior.tails["p_dlt"].quantile(q)[LEVELS.index(40.0)] == pytest.approx(
            expit(mean + sd * stats.norm.ppf(q)), rel=1e-5
        )


@pytest.mark.parametrize(
    ("priors", "name"),
    [
        (((1.0, 1.0), (1.0, 1.0)), "small"),
        (((0.5, 0.5), (0.5, 0.5)), "one_patient"),
        (((0.5, 0.5), (0.5, 0.5)), "toxic_start"),
    ],
    ids=["uniform-small", "jeffreys-one_patient", "jeffreys-toxic_start"],
)
def test_ewoc_means_and_quantiles_of_the_rates_match_a_3000_grid(priors, name):
    """Against a grid in the logits of the two fractions (Beta(0.5, 0.5) densities are
    unbounded at the ends of the natural ones, where a midpoint rule errs by 4e-4); the nodes'
    means erred by 8.5e-4 with one patient under those priors."""
    theta, x_min, x_max, data = 0.25, 10.0, 160.0, DATA_SETS[name]
    (a1, b1), (a2, b2) = priors
    model = EWOC(theta, x_min, x_max, dose_levels=LEVELS, rho0_prior=priors[0], mtd_prior=priors[1])
    likelihood = _ewoc_log_posterior(theta, x_min, data)

    def log_posterior(s, t):
        # Beta densities of expit(s), expit(t) with the logits' Jacobians
        prior = a1 * log_expit(s) + b1 * log_expit(-s) + a2 * log_expit(t) + b2 * log_expit(-t)
        return likelihood(theta * expit(s), x_min + (x_max - x_min) * expit(t)) + prior

    # a logit of 30: within 1e-11 of the dose range's ends, and e^-15 of the mass beyond
    box = (-30.0, 30.0)
    s, t, w = _midpoint_2d(log_posterior, box, box)
    rho0, gamma = theta * expit(s), x_min + (x_max - x_min) * expit(t)
    slope = (logit(theta) - logit(rho0))[:, None] / (gamma[None, :] - x_min)
    posterior = model.posterior(data)
    rates = [expit(logit(rho0)[:, None] + slope * (d - x_min)) for d in LEVELS]
    expected = [float(np.sum(w * p)) for p in rates]
    assert posterior.mean() == pytest.approx(expected, abs=MEAN_TOLERANCE)
    variances = [float(np.sum(w * (p - m) ** 2)) for p, m in zip(rates, expected, strict=True)]
    assert posterior.variance("p_dlt") == pytest.approx(variances, abs=MEAN_TOLERANCE)
    edges = np.linspace(*box, s.size + 1)
    for q in (0.025, 0.975):
        quantile = posterior.tails["p_dlt"].quantile(q)
        # the lowest level's p is rho0: a cell's share of s above logit(t / theta)
        cut = logit(quantile[0] / theta)
        above = [float(np.clip((edges[1:] - cut) / np.diff(edges), 0, 1) @ w.sum(axis=1))]
        for p, d in zip(quantile[1:], LEVELS[1:], strict=True):
            # given rho0 < p, p(d) > p iff gamma < x_min + reach (d - x_min); always otherwise
            gap = logit(p) - logit(rho0)
            reach = np.where(
                gap > 0, (logit(theta) - logit(rho0)) / np.where(gap > 0, gap, 1), np.inf
            )
            share = np.clip(reach * (d - x_min) / (x_max - x_min), 0.0, 1.0)
            with np.errstate(divide="ignore"):
                above.append(float(_mass_below(w, edges, logit(share))))
        _assert_quantiles(quantile, above, q)


def test_a_rate_quantile_past_the_logit_bound_is_the_bound_and_q_is_checked():
    # Under a prior of sd 30 for log alpha, the 1e-6 quantile at the reference dose is
    # expit(-144), past the search's bound of logit 34.
    prior = BLRMPrior(mean=(logit(0.2), 0.0), sd=(30.0, 1.0))
    posterior = BLRM(LEVELS, 40.0, prior=prior).posterior(TrialData.empty(outcomes=("dlt",)))
    tails = posterior.tails["p_dlt"]
    assert tails.quantile(1e-6)[LEVELS.index(40.0)] == pytest.approx(expit(-34.0))
    assert tails.quantile(1 - 1e-6)[LEVELS.index(40.0)] == pytest.approx(expit(34.0))
    for q in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"GridTails\.quantile: q must"):
            tails.quantile(q)


@pytest.mark.parametrize("name", ["CRM", "BLRM", "EWOC", "BLRM grid", "BOIN"])
def test_events_of_the_rates_are_refused_on_quadrature_points_not_miscounted(name):
    # The nodes' weights integrate smooth functions, not an indicator: with no data the BLRM's
    # nodes gave P(p_40 > 0.33) = 0.291 for 0.367; BOIN's points put the same quantile at every
    # level, so P(p_40 > p_20) read 0.989 for 0.652 (an audit, 2026-12).
    from dosezoo.models import BOIN
    from dosezoo.models.binary import GridDoseModel

    class GridBLRM(BLRM):
        def _posterior(self, summary):  # the adaptive grid, as a model that defines it alone
            return GridDoseModel._posterior(self, summary)

    model = {
        "CRM": CRM((0.05, 0.12, 0.25, 0.4, 0.55), 0.25, dose_levels=LEVELS),
        "BLRM": BLRM(LEVELS, 40.0),
        "EWOC": EWOC(0.25, 0.0, 160.0, dose_levels=LEVELS),
        "BLRM grid": GridBLRM(LEVELS, 40.0),
        "BOIN": BOIN(0.25, dose_levels=LEVELS),
    }[name]
    posterior = model.posterior(DATA_SETS["small"])
    assert posterior.quadrature_points
    for method, call in (
        ("probability", lambda: posterior.probability(lambda r: r["p_dlt"] > 0.33)),
        ("mcse", lambda: posterior.mcse(lambda r: r["p_dlt"] > 0.33)),
        ("joint_draws", lambda: posterior.joint_draws("p_dlt", 100, random_seed=1)),
    ):
        with pytest.raises(ValueError, match=rf"{method}: this posterior's points are a quad"):
            call()
    assert 0.0 <= posterior.prob_above(0.33)[2] <= 1.0  # the exact tails stay


def test_the_boin_summary_interval_is_the_betas_own():
    # It was read from 2000 quantile points per level: off by 1e-3 in the rate at q97.5.
    from dosezoo.models import BOIN

    model = BOIN(0.25, dose_levels=LEVELS, prior_a=0.5, prior_b=1.5)
    posterior = model.posterior(DATA_SETS["longer"])
    summary = model.summary(posterior, target=0.25)
    for column, q in (("q2.5", 0.025), ("q97.5", 0.975)):
        exact = stats.beta.ppf(q, posterior.a, posterior.b)
        np.testing.assert_allclose(summary[column].to_numpy(), exact, rtol=1e-12)
