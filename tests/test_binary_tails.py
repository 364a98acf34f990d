"""Tail quantities of the binary models' exact posteriors against brute-force integration.

The rules act on tails: CRM's safety rule on ``P(p_1 > target)``, BLRM on ``P(p_k >= 0.33)``
near its 0.25 cut-off, EWOC on the MTD's alpha-quantile (alpha down to 0.01). Each is compared
here with an integration written from the model's equations in its natural parameters, with
no adaptivity and no whitening: ``scipy.integrate.quad`` for CRM's one parameter, a 3000 x 3000
midpoint rule for the two of BLRM and EWOC. Required: 1e-3 in probability and 0.1 % of the
dose range for a quantile.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, logit, xlog1py, xlogy

from dosezoo.data import TrialData
from dosezoo.models import BLRM, CRM, EWOC, BLRMPrior

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
PROBABILITY_TOLERANCE = 1e-3
QUANTILE_TOLERANCE = 1e-3  # of the dose range


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


# ----------------------------------------------------------------------------------- EWOC

#: The example of the R package ewoc (``ewoc_d1classic``): one patient at 20 without a DLT,
#: theta 0.33, doses 0 to 100, uniform priors; and the data sets above on 10 to 160.
EWOC_CASES = {
    "ewoc_package_example": (0.33, 0.0, 100.0, _data([20], [0])),
    **{name: (0.25, 10.0, 160.0, data) for name, data in DATA_SETS.items()},
}


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
    levels = tuple(np.linspace(x_min, x_max, 6)[1:]) if x_min == 0 else LEVELS
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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "EWOC's per-level P(p_k > t) (read by summary(), not by the EWOC rule) still errs by "
        "up to 1e-2 at 160 cells: along a row the cut meets the curved ridge of the posterior "
        "where the density is not log-linear over a cell; a per-row inner rule is needed"
    ),
)
def test_ewoc_level_overdose_probabilities_match_a_3000_grid():
    failures = []
    for name, (theta, x_min, x_max, data) in EWOC_CASES.items():
        levels = tuple(np.linspace(x_min, x_max, 6)[1:]) if x_min == 0 else LEVELS
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
