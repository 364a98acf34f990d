"""The quadrature posterior of the 3PND MTD against independent calculations."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtri

from dosezoo.data import DataError, TrialData
from dosezoo.designs import MTDQuantileRule
from dosezoo.models import ThreePND
from dosezoo.samplers.three_pnd_quadrature import (
    BASE_PHI_PANELS,
    MTD_TOLERANCE,
    QUANTILE_TOLERANCE,
    _solve_quantile,
    phi_panels,
    weighted_quantile,
)

PROBABILITIES = (0.01, 0.1, 0.5, 0.9)


def _importance_sampled_cdf(model, dose, y, x, size=2_000_000, seed=11):
    """P(MTD <= x) by importance sampling from the prior of eqs (7)-(9), written from scratch.

    Returns the estimates and the effective sample size of the weights.
    """
    rng = np.random.default_rng(seed)
    z = ndtri(model.gamma)
    span = model.x_max - model.x_min
    sigma = np.tan(rng.random(size) * np.arctan(model.eta / z))  # half-Cauchy on (0, eta / z)
    nu = np.exp(model.delta * rng.standard_normal(size))
    lower = (model.eta - sigma * z) / span**nu
    upper = model.eta / span**nu + sigma * z
    beta = rng.uniform(lower, upper)
    log_weight = sum(
        stats.norm.logpdf(response, beta * (d - model.x_min) ** nu, sigma)
        for d, response in zip(dose, y, strict=True)
    )
    weight = np.exp(log_weight - log_weight.max())
    mtd = model.x_min + ((model.eta - sigma * z) / beta) ** (1 / nu)
    estimates = np.array([weight[mtd <= point].sum() for point in x]) / weight.sum()
    return estimates, weight.sum() ** 2 / np.sum(weight**2)


@pytest.fixture(scope="module")
def small_trial():
    return TrialData.from_dataframe(
        pd.DataFrame({"dose": [40.0, 60.0, 80.0, 80.0], "y": [30.0, 41.0, 47.0, 50.0]})
    )


def test_cdf_agrees_with_importance_sampling_from_the_prior(o6bg_model, small_trial):
    grid = o6bg_model.mtd_posterior(small_trial)
    probabilities = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    points = [grid.quantile(p) for p in probabilities]
    reference, ess = _importance_sampled_cdf(
        o6bg_model, small_trial.dose, small_trial.column("y"), points
    )
    assert ess > 10000
    np.testing.assert_array_less(
        np.abs(reference - probabilities), 4 * np.sqrt(probabilities * (1 - probabilities) / ess)
    )


def test_quantiles_agree_with_a_long_kernel_run(o6bg_model, o6bg):
    grid = o6bg_model.mtd_posterior(o6bg)
    draws = o6bg_model.sample_kernel(
        o6bg.dose, o6bg.column("y"), draws=20000, tune=500, chains=4, random_seed=5
    )["mtd"].ravel()
    sd = draws.std()
    for p in PROBABILITIES:
        assert grid.quantile(p) == pytest.approx(np.quantile(draws, p), abs=0.06 * sd)


def test_a_tighter_tolerance_changes_quantiles_by_less_than_the_tolerance(o6bg_model, o6bg):
    coarse = o6bg_model.mtd_posterior(o6bg)
    fine = o6bg_model.mtd_posterior(o6bg, tolerance=1e-6)
    span = o6bg_model.x_max - o6bg_model.x_min
    for p in (0.001, *PROBABILITIES):
        assert coarse.quantile(p) == pytest.approx(fine.quantile(p), abs=MTD_TOLERANCE * span)
    assert fine.levels > coarse.levels


def test_without_patients_it_is_the_prior_of_the_pymc_model(o6bg_model):
    grid = o6bg_model.mtd_posterior(TrialData.empty(outcomes=("y",)))
    prior = o6bg_model.sample_prior_predictive(draws=20000, random_seed=3)
    mtd = prior["prior"]["mtd"].to_numpy().ravel()
    for p in PROBABILITIES:
        x = grid.quantile(p)
        assert np.mean(mtd <= x) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / mtd.size))


def test_cdf_inverts_the_quantile_and_is_monotone(o6bg_model, o6bg):
    grid = o6bg_model.mtd_posterior(o6bg)
    # each answer is stable to the tolerance; the CDF at a quantile may come from a finer level
    for p in (1e-4, 0.001, 0.3, 0.999):
        assert grid.cdf(grid.quantile(p)) == pytest.approx(p, abs=MTD_TOLERANCE)
    values = [grid.cdf(x) for x in np.linspace(20.0, 140.0, 60)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert np.all(np.diff(values) >= 0)
    with pytest.raises(ValueError, match="p must lie in"):
        grid.quantile(1.0)
    with pytest.raises(ValueError, match="x must be a number, got nan"):
        grid.cdf(float("nan"))


def test_quadrature_fit_has_the_schema_and_the_distribution(o6bg_model, o6bg):
    idata = o6bg_model.fit(o6bg, engine="quadrature", draws=2000, chains=2, random_seed=1)
    kernel = o6bg_model.fit(o6bg, engine="kernel", draws=50, tune=50, random_seed=1)
    for name in ("beta", "sigma", "nu", "mtd"):
        assert idata["posterior"][name].dims == kernel["posterior"][name].dims
    assert idata.attrs["engine"] == "quadrature"
    grid = o6bg_model.mtd_posterior(o6bg)
    mtd = idata["posterior"]["mtd"].to_numpy().ravel()
    assert stats.kstest(mtd, np.vectorize(grid.cdf)).pvalue > 1e-3


def test_rule_on_the_quadrature_posterior_is_exact(o6bg_model, o6bg):
    posterior = o6bg_model.posterior(o6bg)
    grid = posterior.mtd
    decision = MTDQuantileRule(alpha=0.05).choose(posterior, o6bg)
    assert decision.next_dose == pytest.approx(grid.quantile(0.05))
    assert decision.quantities["p_overdose"] == pytest.approx(0.05, rel=1e-6)
    assert decision.diagnostics.loc["mtd", "engine"] == "quadrature"


@pytest.mark.parametrize("tolerance", [0.0, 0.5, True, "1e-3"])
def test_tolerance_is_validated(o6bg_model, o6bg, tolerance):
    with pytest.raises(ValueError, match="tolerance must be a number in"):
        o6bg_model.mtd_posterior(o6bg, tolerance=tolerance)


#: Smallest difference between the two responses at the repeated dose, as a fraction of eta.
RESPONSE_GAP = 1e-3


@st.composite
def _models_and_data(draw):
    """A model and data that no 3PND curve fits exactly.

    The first two patients share a dose and their responses differ by at least
    ``RESPONSE_GAP * eta``: whatever the curve, its residual sum of squares is at least half
    that gap squared, so the posterior of sigma cannot pile up at 0. Noise alone cannot
    promise this: drawn noise can be an exact power of the dose (e.g. equal to the unit dose,
    which makes ``y = c * dose``), and such noiseless data give the improper case of
    :func:`test_responses_fitted_exactly_give_a_clear_error`.
    """
    x_min = draw(st.floats(0.0, 10.0))
    model = ThreePND(
        eta=draw(st.floats(0.5, 60.0)),
        gamma=draw(st.floats(0.55, 0.995)),
        x_min=x_min,
        x_max=x_min + draw(st.floats(5.0, 200.0)),
        delta=draw(st.sampled_from([0.05, 0.1, 0.5, 1.0])),
    )
    span = model.x_max - model.x_min
    n = draw(st.integers(2, 30))
    unit = draw(st.lists(st.floats(0.01, 0.99), min_size=n, max_size=n))
    unit[1] = unit[0]  # two patients at one dose
    unit = np.asarray(unit)
    dose = model.x_min + span * unit
    scale = draw(st.floats(-1.0, 2.0)) * model.eta
    power = draw(st.floats(0.3, 3.0))
    amplitude = draw(st.floats(0.01, 1.0)) * model.eta
    # Every response off the curve: noise shrunk to 0 put all but one response on one line,
    # which the quadrature refuses (test_a_posterior_nearly_on_one_curve_is_refused_clearly).
    size = np.asarray(draw(st.lists(st.floats(0.05, 2.0), min_size=n, max_size=n)))
    sign = np.asarray(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    noise = size * sign
    # their noise differs by at least 0.1, so their responses by at least RESPONSE_GAP * eta
    gap = draw(st.floats(0.1, 2.0)) * draw(st.sampled_from([-1.0, 1.0]))
    noise[1] = noise[0] + gap
    y = scale * unit**power + amplitude * noise
    return model, dose, y


@pytest.mark.parametrize(
    ("eta", "gamma", "dose", "slope"),
    [
        # ten patients at one dose with one response each (a fresh clone's hypothesis run)
        (7.0, 0.75, [2.5, 3.75] + [2.5] * 9, 1.4),
        # responses an exact line through the doses 1.25 and 2.5 (another fresh run)
        (1.0, 0.55, [1.25] * 4 + [2.5] + [1.25] * 6 + [2.5, 1.25, 2.5], 0.2),
    ],
)
def test_responses_fitted_exactly_give_a_clear_error(eta, gamma, dose, slope):
    """Found by the property test below: noiseless responses on a 3PND curve (nu = 1)."""
    model = ThreePND(eta=eta, gamma=gamma, x_min=0.0, x_max=5.0, delta=0.05)
    dose = np.asarray(dose)
    data = TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": slope * dose}))
    with pytest.raises(DataError, match=r"column 'y': these .* improper .*fits exactly"):
        model.mtd_posterior(data)


def test_a_posterior_that_almost_fits_the_data_exactly_settles():
    """Found by the property test below: 27 of 28 responses on the line y = -0.2 dose under
    gamma = 0.995; the median of the MTD moved by 6e-3 between the 5th and 6th levels (the
    tolerance is 5e-3 of the range) and the quadrature gave up, where the 7th settles."""
    model = ThreePND(eta=1.0, gamma=0.995, x_min=0.0, x_max=5.0, delta=0.05)
    dose = np.array([2.5] * 25 + [3.75, 3.75, 4.375])
    y = np.array([-0.5, -1.5] + [-0.5] * 23 + [-0.75, -0.75, -0.875])
    posterior = model.mtd_posterior(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    assert posterior.quantile(0.5) == pytest.approx(1.824, abs=0.005)
    assert posterior.levels == 7


def test_a_posterior_nearly_on_one_curve_is_refused_clearly():
    """Found by the property test below: 26 of 27 responses on y = -0.2 dose; the MTD's
    0.1-quantile still moves by 1e-2 between the 7th and 8th levels. It raised a bare
    FloatingPointError, a traceback on the command line."""
    model = ThreePND(eta=1.0, gamma=0.995, x_min=0.0, x_max=5.0, delta=0.05)
    dose = np.array([2.5] * 20 + [3.75, 3.75, 3.125, 3.125, 4.375, 3.4375, 4.6875])
    y = np.concatenate([[-0.5, -1.5], -0.2 * dose[2:]])
    posterior = model.mtd_posterior(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    with pytest.raises(
        DataError, match=r"column 'y': .* 27 responses concentrate .*nearly all on one"
    ):
        posterior.quantile(0.1)


def test_a_posterior_at_the_bound_of_sigma_refuses_the_quantiles_it_does_not_resolve():
    """Found by the property test below: 20 of 21 responses of -1 at one dose under eta = 1
    lie below every curve the prior allows; the posterior of sigma piles up at its bound,
    P(MTD <= 0.1) grows from 3e-4 to 0.023 over the eight levels (0.06 by importance
    sampling), and levels 0 and 1, whose normalising constants differ by 0.067, agreed on a
    0.1-quantile of 0.59 where P(MTD <= 0.59) is 0.27. Answers now wait for the constants to
    settle, and this quantile never does. The median settles, and agrees with importance
    sampling (P(MTD <= 1.352) = 0.47 and 0.50 with two seeds of 4e6 draws)."""
    model = ThreePND(eta=1.0, gamma=0.96875, x_min=0.0, x_max=5.0, delta=0.05)
    y = np.full(21, -1.0)
    y[1] = -2.0
    posterior = model.mtd_posterior(
        TrialData.from_dataframe(pd.DataFrame({"dose": np.full(21, 2.5), "y": y}))
    )
    with pytest.raises(DataError, match=r"quantile at 0.1 did not settle .* below every curve"):
        posterior.quantile(0.1)
    assert posterior.quantile(0.5) == pytest.approx(1.352, abs=0.005)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known limitation of the quadrature: at sigma's bound the MTD's far lower tail is "
    "a boundary layer the levels do not resolve, and they agree on a wrong 1e-4-quantile",
)
def test_a_posterior_at_the_bound_of_sigma_answers_its_far_tail_wrongly():
    """The data above: the levels agree on a 1e-4-quantile of 0.030, where P(MTD <= 0.0287)
    is 0.022 to 0.026 by importance sampling; grading sigma's panels towards its bound would
    resolve it."""
    model = ThreePND(eta=1.0, gamma=0.96875, x_min=0.0, x_max=5.0, delta=0.05)
    y = np.full(21, -1.0)
    y[1] = -2.0
    dose = np.full(21, 2.5)
    posterior = model.mtd_posterior(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    quantile = posterior.quantile(1e-4)
    reference, ess = _importance_sampled_cdf(model, dose, y, [quantile], size=4_000_000)
    assert ess > 300
    assert reference[0] < 0.005


@settings(max_examples=40, deadline=None)
@given(_models_and_data())
def test_quantiles_stay_inside_the_dose_range_for_any_data(case):
    model, dose, y = case
    assume(np.any(y))  # all-zero responses are refused (improper posterior), tested elsewhere
    # No curve fits the data exactly (the strategy's promise; the exact case is tested above).
    assert dose[0] == dose[1] and abs(y[0] - y[1]) >= RESPONSE_GAP * model.eta * (1 - 1e-9)
    grid = model.mtd_posterior(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    quantiles = []
    for p in (1e-4, 0.001, 0.1, 0.5, 0.9999):
        try:
            quantiles.append(grid.quantile(p))
        except DataError as refusal:
            # The documented refusal of a tail quantile the levels do not settle (20 of 21
            # responses of -1 at one dose under eta = 1, a fresh clone's run:
            # test_a_posterior_at_the_bound_of_sigma_refuses_the_quantiles_it_does_not_resolve).
            # The median always settles.
            assert p != 0.5 and "did not settle" in str(refusal)
    assert all(model.x_min < q < model.x_max for q in quantiles)
    resolution = 2 * QUANTILE_TOLERANCE * (model.x_max - model.x_min)
    assert np.all(np.diff(quantiles) >= -resolution)
    assert abs(grid.weight.sum() - 1.0) < 1e-9


def test_a_quantile_started_where_f_rounds_to_one_is_still_found():
    """Found by the property test above when the Newton steps started near the root's estimate:
    at the top of the dose range F is 1 but for its rounding, its probit's slope is huge, and
    the step from there (a few ulps) passed for convergence at the wrong end of the range."""
    model = ThreePND(eta=5.0, gamma=0.55, x_min=0.0, x_max=5.0, delta=0.05)
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [1.25, 1.25], "y": [0.0, -5.0]}))
    posterior = model.mtd_posterior(data)
    level = posterior.level(0)
    top = np.nextafter(model.x_max, model.x_min)
    assert 1.0 - level.cdf_and_density(top, posterior.obs, posterior.hyper)[0] < 1e-12
    from_top = _solve_quantile(level, 1e-4, top, posterior.obs, posterior.hyper)
    from_middle = _solve_quantile(level, 1e-4, 2.5, posterior.obs, posterior.hyper)
    assert abs(from_top - from_middle) <= 2 * QUANTILE_TOLERANCE * (model.x_max - model.x_min)
    assert level.cdf_and_density(from_top, posterior.obs, posterior.hyper)[0] < 2e-4


def test_the_cdf_at_a_quantile_is_the_same_asked_before_or_after_it(o6bg_model, small_trial):
    """A level keeps F at the points it was asked (a quantile's last step, then the CDF there):
    the kept value is the one computed afresh."""
    first = o6bg_model.mtd_posterior(small_trial)
    point = first.quantile(0.1)
    after = first.cdf(point)
    second = o6bg_model.mtd_posterior(small_trial)
    before = second.cdf(point)
    assert second.quantile(0.1) == point
    assert before == after
    assert abs(after - 0.1) < 1e-4


def test_the_region_of_log_nu_settles_around_a_sharp_peak():
    """Found by the property test above at 1500 examples: six equal responses at one dose nearly
    fit by a curve through (x_max, eta) make the marginal of log(nu) a spike that one scan's
    points hit and the next one's miss; the region moved back and forth between two intervals
    until the search gave up ("did not settle in 12 refits")."""
    model = ThreePND(eta=7.0, gamma=0.75, x_min=0.0, x_max=49.0, delta=1.0)
    dose = np.array([24.5] * 7 + [36.75])
    y = np.array([5.63671616, 5.52734116] + [5.63671616] * 5 + [6.39815394])
    posterior = model.mtd_posterior(TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y})))
    probabilities = np.array([0.1, 0.5, 0.9])
    points = [posterior.quantile(p) for p in probabilities]
    with np.errstate(over="ignore"):  # prior draws far from the data: a log density of -inf
        reference, ess = _importance_sampled_cdf(model, dose, y, points)
    assert ess > 300
    np.testing.assert_array_less(
        np.abs(reference - probabilities), 4 * np.sqrt(probabilities * (1 - probabilities) / ess)
    )


def _sorted_weighted_quantile(values, weights, p):
    """The definition: sort, accumulate, take the first value whose cumulative weight reaches p."""
    kept = ~np.isnan(values) & (weights > 0)
    if not kept.any():
        return np.nan
    order = np.argsort(values[kept], kind="stable")
    cumulative = np.cumsum(weights[kept][order])
    k = min(int(np.searchsorted(cumulative, p * cumulative[-1])), order.size - 1)
    return values[kept][order][k]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([np.nan, -2.5, 0.0, 1.0, 1.0, 3.25, 7.0, 7.0, 11.5, 40.0]),
            st.integers(0, 5),
        ),
        min_size=1,
        max_size=60,
    ),
    st.floats(0.001, 0.999),
)
@example([(1.0, 1), (2.0, 1), (3.0, 1)], 2.0 / 3.0)  # p of the total is the weight up to 2.0
def test_the_weighted_quickselect_is_the_sorted_weighted_quantile(pairs, p):
    """Whole weights sum exactly in any order, so the selection must match the sort exactly,
    ties, NaN values and weightless entries included (NaN when nothing is left)."""
    values = np.array([value for value, _ in pairs])
    weights = np.array([float(weight) for _, weight in pairs])
    expected = _sorted_weighted_quantile(values, weights, p)
    found = weighted_quantile(values, weights, p)
    assert found == expected or (np.isnan(found) and np.isnan(expected))


@pytest.mark.parametrize("small", range(4, 12))
def test_the_weighted_quickselect_survives_a_total_that_rounding_left_short(small):
    """Tiny weights added to 1 one by one vanish, added together first they count: the total
    (``small`` of 1e-16 first, then 1, in index order) exceeds every partial sum the selection
    forms (1 first), so no value reaches p = 1 - 2^-53 of it. The largest value is returned, as
    documented, where a search off the end read past the array (a crash)."""
    values = np.arange(small + 1, dtype=float)[::-1].copy()
    weights = np.array([1e-16] * small + [1.0])
    assert weighted_quantile(values, weights, np.nextafter(1.0, 0.0)) == small


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-5.0, 5.0),
    st.floats(0.1, 10.0),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(1e-6, 2.0)), max_size=3),
    st.integers(0, 3),
)
def test_phi_panels_tile_the_region_and_narrow_to_each_sharp_point(lo, span, relative, level):
    """The panels of log(nu) cover the region edge to edge (to rounding: a panel graded from a
    sharp point ends at ``centre - (centre - lo)``), in order, none wider than the level's width,
    and the panels next to a sharp point inside it are no wider than its scale."""
    hi = lo + span
    points = tuple((lo + span * at, span * scale) for at, scale in relative)
    assume(len({centre for centre, _ in points}) == len(points))  # each its own panels
    edges = phi_panels((lo, hi), points, level)
    rounding = 1e-14 * (abs(lo) + abs(hi))
    assert abs(edges[0, 0] - lo) <= rounding and abs(edges[-1, 1] - hi) <= rounding
    np.testing.assert_allclose(edges[1:, 0], edges[:-1, 1], rtol=0, atol=rounding)
    assert np.all(edges[:, 1] >= edges[:, 0])
    widths = edges[:, 1] - edges[:, 0]
    assert widths.max() <= span / (BASE_PHI_PANELS * 2**level) + rounding
    for centre, scale in points:
        if lo < centre < hi:
            touching = (edges[:, 0] == centre) | (edges[:, 1] == centre)
            assert touching.any()
            assert widths[touching].max() <= scale + rounding


def test_the_per_node_tuples_carry_every_column_and_hyper_parameter(o6bg_model):
    """`_row` and `_constants` spell their tuples out (no array view per node): a column of the
    slice table or a hyper-parameter added later must be added to them too."""
    from dosezoo.samplers import three_pnd_kernels as kernels
    from dosezoo.samplers.three_pnd_quadrature import _constants, _row, slice_table

    obs = kernels.summarise(np.array([40.0, 60.0]), np.array([5.0, 9.0]), o6bg_model.x_min)
    hyper = o6bg_model.hyper
    table = slice_table(np.array([-0.2, 0.3]), np.zeros(2), obs, hyper)
    assert _constants(hyper) == tuple(hyper)
    for j in range(table.shape[0]):
        assert _row(table, j) == tuple(table[j])


def test_the_plug_in_mtd_is_the_kernels_mtd_at_the_clipped_conditional_mean(o6bg_model):
    """`_plug_in_mtd` writes out `beta_bounds` and `mtd` with the factors of nu hoisted per
    slice: each value must be theirs to the last bit (NaN where no MTD exists)."""
    from dosezoo.samplers import three_pnd_kernels as kernels
    from dosezoo.samplers.three_pnd_quadrature import ORDER, _plug_in_mtd, slice_table

    hyper = o6bg_model.hyper
    obs = kernels.summarise(np.array([40.0, 60.0, 60.0]), np.array([5.0, 9.0, 30.0]), 20.0)
    table = slice_table(np.array([-1.0, -0.2, 0.3, 1.5]), np.zeros(4), obs, hyper)
    offsets = np.array([0, 1, 2, 3, 4])
    sigma = np.geomspace(0.5, 2.0 * o6bg_model.sigma_max, 4 * ORDER)
    found = _plug_in_mtd(table, offsets, sigma, hyper, ORDER)
    assert np.isnan(found).any() and np.isfinite(found).any()
    for k, value in enumerate(found):
        j = k // ORDER
        nu = table[j, 0]
        lower, upper = kernels.beta_bounds(sigma[k], nu, hyper)
        beta = min(max(table[j, 2], lower), upper)
        if beta > 0.0 and hyper[kernels.ETA] - sigma[k] * hyper[kernels.Z] > 0.0:
            assert value == kernels.mtd(beta, sigma[k], nu, hyper)
        else:
            assert np.isnan(value)


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(-1e3, 1e3, allow_nan=False),
    span=st.floats(1e-12, 1e3),
    panels=st.integers(1, 64),
)
def test_the_even_edges_are_numpys_linspace_to_the_last_bit(a, span, panels):
    """The split panels of log(nu) and the scan of its region were linspace's: a rule of the
    data, so each edge must be the same float for every answer to stay the same."""
    from dosezoo.samplers.three_pnd_quadrature import _even_edges, _even_panels

    b = a + span
    assume(b > a)
    expected = np.linspace(a, b, panels + 1)
    assert np.array_equal(_even_edges(a, b, panels), expected)
    assert np.array_equal(
        _even_panels(a, b, panels), np.column_stack([expected[:-1], expected[1:]])
    )
