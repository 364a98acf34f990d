"""BLRM and EWOC decisions against posteriors integrated here by brute force.

The posteriors are integrated on fixed grids in the models' natural coordinates, with nothing of
dosezoo's engines (its quadratures, its whitened tensor rules), and the rules are applied as
Neuenschwander, Branson and Gsponer (2008) and Babb, Rogatko and Zacks (1998) state them, with
the options of ``examples/blrm.toml`` and ``examples/ewoc.toml``: overdose control, the escalation
limits, the stops and the final recommendation, on data from a first patient to a long trial.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import cumulative_trapezoid, simpson
from scipy.special import log_expit, logit

from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
#: Agreement of the probabilities: the grids' own error is some 1e-5.
TOLERANCE = 2e-4


def _design(name: str):
    return design_from_config(read_config(EXAMPLES / name), name)


def _data(cohorts: list[tuple[float, list[int]]]) -> TrialData:
    rows = [
        {"dose": dose, "cohort": number, "dlt": dlt}
        for number, (dose, dlts) in enumerate(cohorts, start=1)
        for dlt in dlts
    ]
    return TrialData.from_dataframe(pd.DataFrame(rows))


def _counts(cohorts: list[tuple[float, list[int]]]) -> tuple[np.ndarray, np.ndarray]:
    n, y = np.zeros(len(LEVELS), int), np.zeros(len(LEVELS), int)
    for dose, dlts in cohorts:
        n[LEVELS.index(dose)] += len(dlts)
        y[LEVELS.index(dose)] += sum(dlts)
    return n, y


def _outcome(decision) -> tuple[str, float | None]:
    return ("stop", None) if decision.stopped else ("dose", decision.next_dose)


# --------------------------------------------------------------------------- BLRM

BLRM_MEAN, BLRM_SD, BLRM_REFERENCE = (-1.3863, 0.0), (2.0, 1.0), 40.0
UNDER, OVER, CUTOFF, STOP_PATIENTS, STOP_TARGET = 0.16, 0.33, 0.25, 6, 0.5


def _blrm_interval_probabilities(n, y) -> tuple[np.ndarray, np.ndarray]:
    """P(target interval) and P(excessive) per level: logit p = a + e^b log(d / d*).

    (a, b) ~ N(mean, diag(sd^2)) on +-9 sds; along a, the cumulative trapezoid of the density
    read at each event's exact cut a > logit(t) - e^b x; along b, Simpson's rule.
    """
    x = np.log(np.array(LEVELS) / BLRM_REFERENCE)
    a = np.linspace(BLRM_MEAN[0] - 9 * BLRM_SD[0], BLRM_MEAN[0] + 9 * BLRM_SD[0], 1601)
    b = np.linspace(BLRM_MEAN[1] - 9 * BLRM_SD[1], BLRM_MEAN[1] + 9 * BLRM_SD[1], 801)
    grid_a, grid_b = np.meshgrid(a, b, indexing="ij")
    log_density = -0.5 * ((grid_a - BLRM_MEAN[0]) / BLRM_SD[0]) ** 2
    log_density -= 0.5 * ((grid_b - BLRM_MEAN[1]) / BLRM_SD[1]) ** 2
    for k in np.flatnonzero(n):
        eta = grid_a + np.exp(grid_b) * x[k]
        log_density += y[k] * log_expit(eta) + (n[k] - y[k]) * log_expit(-eta)
    density = np.exp(log_density - log_density.max())
    cumulative = cumulative_trapezoid(density, a, axis=0, initial=0.0)
    total = cumulative[-1]
    mass = simpson(total, x=b)

    def above(t: float) -> np.ndarray:
        probabilities = []
        for k in range(len(LEVELS)):
            cut = logit(t) - np.exp(b) * x[k]
            below = [np.interp(c, a, cumulative[:, j]) for j, c in enumerate(cut)]
            probabilities.append(simpson(total - np.array(below), x=b) / mass)
        return np.array(probabilities)

    over_under, excessive = above(UNDER), above(OVER)
    return over_under - excessive, excessive


def _blrm_rule(cohorts, target, excessive) -> tuple[tuple[str, float | None], float | None]:
    """Neuenschwander et al. (2008) with the example's options: the next dose and the final one."""
    n, _ = _counts(cohorts)
    current = LEVELS.index(cohorts[-1][0])
    highest = int(np.flatnonzero(n).max())
    allowed = [
        k
        for k in range(len(LEVELS))
        if excessive[k] < CUTOFF and LEVELS[k] <= 2 * LEVELS[current] and k <= highest + 1
    ]
    if not allowed:
        following = ("dose", LEVELS[0]) if n[0] < 3 else ("stop", None)
    else:
        best = max(allowed, key=lambda k: (target[k], -k))
        stops = n[best] >= STOP_PATIENTS and target[best] >= STOP_TARGET
        following = ("stop", None) if stops else ("dose", LEVELS[best])
    given = [k for k in np.flatnonzero(n) if excessive[k] < CUTOFF]
    final = LEVELS[max(given, key=lambda k: (target[k], -k))] if given else None
    return following, final


BLRM_CASES = {
    "no DLT in 3 at 10": [(10.0, [0, 0, 0])],
    "3 DLTs in 3 at 10": [(10.0, [1, 1, 1])],
    "1 DLT in 3 at 10, then 3 in 3 at 20": [(10.0, [0, 1, 0]), (20.0, [1, 1, 1])],
    "examples/binary_cohorts.csv": [
        (10.0, [0, 0, 0]),
        (20.0, [0, 0, 0]),
        (40.0, [0, 0, 0]),
        (80.0, [0, 1, 0]),
        (80.0, [0, 1, 0]),
    ],
    "12 at 40 (the stopping rule)": [
        (10.0, [0, 0, 0]),
        (20.0, [0, 0, 0]),
        (40.0, [0, 0, 0]),
        (80.0, [1, 0, 1]),
        (40.0, [0, 1, 0]),
        (40.0, [0, 0, 0]),
        (40.0, [1, 0, 0]),
    ],
    "a de-escalation, then the doubling limit": [
        (10.0, [0, 0, 0]),
        (20.0, [0, 0, 0]),
        (40.0, [1, 0, 1]),
        (20.0, [0, 0, 0]),
    ],
    "2 DLTs in 6 at 160": [
        (10.0, [0, 0, 0]),
        (20.0, [0, 0, 0]),
        (40.0, [0, 0, 0]),
        (80.0, [0, 0, 0]),
        (160.0, [0, 1, 0]),
        (160.0, [0, 0, 1]),
    ],
}


@pytest.mark.parametrize("cohorts", BLRM_CASES.values(), ids=BLRM_CASES)
def test_blrm_decisions_agree_with_an_integrated_posterior(cohorts):
    design = _design("blrm.toml")
    data = _data(cohorts)
    target, excessive = _blrm_interval_probabilities(*_counts(cohorts))
    posterior = design.posterior(data)
    np.testing.assert_allclose(posterior.prob_above(OVER), excessive, atol=TOLERANCE)
    in_target = posterior.prob_above(UNDER) - posterior.prob_above(OVER)
    np.testing.assert_allclose(in_target, target, atol=TOLERANCE)
    # no probability the rules read lies within the tolerance of its cutoff
    assert np.all(np.abs(excessive - CUTOFF) > TOLERANCE)
    assert np.all(np.abs(target - STOP_TARGET) > TOLERANCE)
    following, final = _blrm_rule(cohorts, target, excessive)
    assert _outcome(design.next(data)) == following
    recommended = design.recommend(data)
    assert recommended.next_dose == final and recommended.stopped == (final is None)


# --------------------------------------------------------------------------- EWOC

THETA, X_MIN, X_MAX, ALPHA, OVERDOSE_LIMIT = 0.25, 0.0, 160.0, 0.25, 0.5


def _ewoc_mtd_cdf(n, y) -> np.ndarray:
    """P(MTD < d) per level: rho0 ~ U(0, theta), MTD ~ U(x_min, x_max), by the midpoint rule.

    logit p(x) = logit rho0 + (logit theta - logit rho0) (x - x_min) / (MTD - x_min).
    """
    rho = (np.arange(600) + 0.5) / 600 * THETA
    mtd = X_MIN + (np.arange(6000) + 0.5) / 6000 * (X_MAX - X_MIN)
    grid_rho, grid_mtd = np.meshgrid(rho, mtd, indexing="ij")
    slope = (logit(THETA) - logit(grid_rho)) / (grid_mtd - X_MIN)
    log_likelihood = np.zeros_like(grid_rho)
    for k in np.flatnonzero(n):
        eta = logit(grid_rho) + slope * (LEVELS[k] - X_MIN)
        log_likelihood += y[k] * log_expit(eta) + (n[k] - y[k]) * log_expit(-eta)
    weights = np.exp(log_likelihood - log_likelihood.max()).sum(axis=0)
    edges = np.linspace(X_MIN, X_MAX, mtd.size + 1)
    cdf = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return np.interp(LEVELS, edges, cdf)


def _ewoc_rule(cohorts, cdf) -> tuple[tuple[str, float | None], float | None]:
    """Babb et al. (1998) on the levels, no skipping, and the hard overdose limit of 0.5."""
    n, _ = _counts(cohorts)
    highest = int(np.flatnonzero(n).max())
    feasible = [k for k in range(len(LEVELS)) if cdf[k] <= ALPHA]
    level = max(feasible) if feasible else 0
    within = [k for k in range(min(level, highest + 1) + 1) if cdf[k] <= OVERDOSE_LIMIT]
    if within:
        following = ("dose", LEVELS[max(within)])
    else:
        following = ("dose", LEVELS[0]) if n[0] < 3 else ("stop", None)
    unsafe = n[0] >= 3 and cdf[0] > OVERDOSE_LIMIT
    final = None if unsafe else LEVELS[min(level, highest)]
    return following, final


EWOC_CASES = {
    "no DLT in 1 at 10": [(10.0, [0])],
    "a DLT in 1 at 10": [(10.0, [1])],
    "3 DLTs in 3 at 10": [(10.0, [1]), (10.0, [1]), (10.0, [1])],
    "2 DLTs in 3 at 10": [(10.0, [1]), (10.0, [0]), (10.0, [1])],
    "no DLT in 9, up to 80": [(10.0, [0])] * 3
    + [(20.0, [0])] * 2
    + [(40.0, [0])] * 2
    + [(80.0, [0])] * 2,
    "2 DLTs at 80, the highest level given": [
        (10.0, [0]),
        (20.0, [0]),
        (40.0, [0]),
        (80.0, [1]),
        (80.0, [1]),
    ],
    "a DLT at 40 after a clean escalation": [(10.0, [0]), (20.0, [0]), (20.0, [0]), (40.0, [1])],
}


@pytest.mark.parametrize("cohorts", EWOC_CASES.values(), ids=EWOC_CASES)
def test_ewoc_decisions_agree_with_an_integrated_posterior(cohorts):
    design = _design("ewoc.toml")
    data = _data(cohorts)
    cdf = _ewoc_mtd_cdf(*_counts(cohorts))
    posterior = design.posterior(data)
    computed = np.array([posterior.mtd.cdf(dose) for dose in LEVELS])
    np.testing.assert_allclose(computed, cdf, atol=TOLERANCE)
    assert np.all(np.abs(cdf - ALPHA) > TOLERANCE)
    assert np.all(np.abs(cdf - OVERDOSE_LIMIT) > TOLERANCE)
    following, final = _ewoc_rule(cohorts, cdf)
    assert _outcome(design.next(data)) == following
    recommended = design.recommend(data)
    assert recommended.next_dose == final and recommended.stopped == (final is None)
