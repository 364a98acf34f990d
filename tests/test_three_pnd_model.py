import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from dosezoo.data import DataError, TrialData
from dosezoo.models import ThreePND
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.three_pnd import ThreePNDLayout

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

GOOD = {"eta": 55.0, "gamma": 0.6, "x_min": 20.0, "x_max": 140.0, "delta": 0.5}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eta", 0.0, "eta must be > 0"),
        ("eta", -1.0, "eta must be > 0"),
        ("gamma", 0.5, r"gamma must lie in \(0.5, 1\)"),
        ("gamma", 1.0, r"gamma must lie in \(0.5, 1\)"),
        ("x_min", 140.0, "x_min must be < x_max"),
        ("x_min", -1.0, "x_min must be >= 0"),
        ("delta", 0.0, "delta must be > 0"),
        ("delta", math.inf, "delta must be finite"),
        ("eta", "55", "eta must be a real number"),
        # the quadrature overflowed, and the error blamed the responses
        ("eta", 1e300, r"eta must be below 3.397e\+153 at gamma = 0.6, got 1e\+300"),
        ("gamma", True, "gamma must be a real number"),
    ],
)
def test_hyper_parameters_are_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        ThreePND(**(GOOD | {field: value}))


def test_doses_outside_the_range_are_rejected_with_row_and_value(o6bg_model):
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [40.0, 150.0], "y": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"row 1.*150"):
        o6bg_model.fit(data, engine="kernel")


def test_fit_needs_patients_and_a_response(o6bg_model):
    with pytest.raises(DataError, match="ThreePND"):
        o6bg_model.fit(TrialData.empty(outcomes=("y",)), engine="kernel")
    with pytest.raises(DataError, match="'y'"):
        o6bg_model.fit(
            TrialData.from_dataframe(pd.DataFrame({"dose": [40.0], "dlt": [0]})), engine="kernel"
        )


def test_all_zero_responses_are_rejected(o6bg_model):
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [40.0, 60.0], "y": [0.0, 0.0]}))
    with pytest.raises(DataError, match="column 'y': all 2 responses are 0"):
        o6bg_model.fit(data, engine="kernel")


def test_a_response_beyond_double_precision_is_rejected_naming_its_row(o6bg_model):
    largest = 1e6 * o6bg_model.sigma_max
    within = pd.DataFrame({"dose": [40.0, 60.0, 80.0], "y": [5.0, 9.0, -largest]})
    o6bg_model.check_data(TrialData.from_dataframe(within))
    beyond = within.assign(y=[5.0, -1.01 * largest, 2.0 * largest])
    with pytest.raises(DataError, match=r"column 'y', row 1: response -\d.*is more than 1e\+06"):
        o6bg_model.check_data(TrialData.from_dataframe(beyond))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "gibbs"}, "engine must be one of"),
        ({"draws": 0}, "draws"),
        ({"chains": 1.5}, "chains"),
    ],
)
def test_fit_options_are_validated(o6bg_model, o6bg, kwargs, message):
    with pytest.raises(ValueError, match=message):
        o6bg_model.fit(o6bg, **kwargs)


def test_layout_decodes_like_pymc_transforms(o6bg_model, o6bg):
    model = o6bg_model.build(o6bg)
    layout = ThreePNDLayout(model)
    outputs = model.replace_rvs_by_values([model["beta"], model["sigma"], model["nu"]])
    to_constrained = model.compile_fn(outputs, inputs=model.value_vars)
    rng = np.random.default_rng(0)
    for _ in range(20):
        point = {v.name: np.asarray(rng.normal(scale=2.0)) for v in model.value_vars}
        expected = to_constrained(point)
        np.testing.assert_allclose(layout.decode(point), expected, rtol=1e-10)
        encoded = layout.encode(point, layout.decode(point), ("beta", "sigma", "nu"))
        assert list(encoded) == list(point)  # key order is what the trace relies on
        for name in point:
            np.testing.assert_allclose(encoded[name], point[name], rtol=1e-7, atol=1e-9)


def test_kernel_engine_output_schema_and_identity(o6bg_model, o6bg):
    idata = o6bg_model.fit(o6bg, engine="kernel", draws=200, tune=100, random_seed=3)
    assert list(idata.children) == ["posterior", "sample_stats", "observed_data", "constant_data"]
    assert list(idata["posterior"].data_vars) == ["sigma", "nu", "beta", "mtd"]
    for name in ("beta", "sigma", "nu", "mtd"):
        assert idata["posterior"][name].dims == ("chain", "draw")
        assert idata["posterior"][name].shape == (2, 200)
    np.testing.assert_array_equal(idata["observed_data"]["y"], o6bg.column("y"))
    np.testing.assert_array_equal(idata["constant_data"]["dose"], o6bg.dose)
    assert idata.attrs["model"] == "ThreePND"
    assert json.loads(idata.attrs["model_parameters"]) == GOOD | {"dose_unit": None}
    assert idata.attrs["engine"] == "kernel"


def test_kernel_mtd_equals_the_model_deterministic(o6bg_model, o6bg):
    raw = o6bg_model.sample_kernel(
        o6bg.dose, o6bg.column("y"), draws=50, tune=10, chains=1, random_seed=4
    )
    idata = o6bg_model.fit(o6bg, engine="kernel", draws=50, tune=10, chains=1, random_seed=4)
    np.testing.assert_allclose(idata["posterior"]["mtd"].to_numpy()[0], raw["mtd"][0], rtol=1e-12)
    np.testing.assert_array_equal(idata["posterior"]["beta"].to_numpy()[0], raw["beta"][0])


def test_same_seed_same_draws_and_new_data_without_rebuild(o6bg_model, o6bg):
    first = o6bg_model.fit(o6bg, engine="kernel", draws=100, tune=50, random_seed=11)
    again = o6bg_model.fit(o6bg, engine="kernel", draws=100, tune=50, random_seed=11)
    other = o6bg_model.fit(o6bg, engine="kernel", draws=100, tune=50, random_seed=12)
    np.testing.assert_array_equal(first["posterior"]["mtd"], again["posterior"]["mtd"])
    assert not np.array_equal(first["posterior"]["mtd"], other["posterior"]["mtd"])
    grown = o6bg.with_cohort(120.0, y=[58.0, 57.0, 59.5])
    bigger = o6bg_model.fit(grown, engine="kernel", draws=100, tune=50, random_seed=11)
    assert bigger["observed_data"]["y"].size == 27
    np.testing.assert_array_equal(bigger["constant_data"]["dose"][-3:], [120.0] * 3)


def test_pymc_engine_is_reproducible(o6bg_model, o6bg):
    a = o6bg_model.fit(o6bg, engine="pymc", draws=30, tune=10, chains=1, random_seed=5)
    b = o6bg_model.fit(o6bg, engine="pymc", draws=30, tune=10, chains=1, random_seed=5)
    np.testing.assert_array_equal(a["posterior"]["mtd"], b["posterior"]["mtd"])
    assert set(a["sample_stats"].data_vars) == {
        "sigma_slice_fallback",
        "ridge_sigma_evals",
        "ridge_nu_evals",
    }


def test_prior_mtd_matches_the_closed_form_of_theorem_2(o6bg_model):
    """The prior CDF of the MTD given (sigma, nu) is G_Z of Lee (2023)'s Appendix."""
    prior = o6bg_model.sample_prior_predictive(draws=4000, random_seed=8)["prior"]
    mtd = prior["mtd"].to_numpy().ravel()
    assert np.all((mtd > o6bg_model.x_min) & (mtd < o6bg_model.x_max))
    eta, z, x_min, span = (
        o6bg_model.eta,
        o6bg_model.z,
        o6bg_model.x_min,
        o6bg_model.x_max - o6bg_model.x_min,
    )
    grid = np.linspace(x_min + 1e-6, o6bg_model.x_max, 400)
    # Average the conditional CDF over an independent set of prior (sigma, nu) draws.
    other = o6bg_model.sample_prior_predictive(draws=4000, random_seed=9)["prior"]
    sigma2 = other["sigma"].to_numpy().ravel()[:, None]
    nu2 = other["nu"].to_numpy().ravel()[:, None]
    upper2 = eta / span**nu2 + sigma2 * z
    lower2 = (eta - sigma2 * z) / span**nu2
    cdf = np.clip(
        (upper2 - (eta - sigma2 * z) / (grid - x_min) ** nu2) / (upper2 - lower2), 0.0, 1.0
    ).mean(0)
    result = stats.kstest(mtd, lambda x: np.interp(x, grid, cdf))
    assert result.pvalue > 1e-3, result


def test_prior_and_posterior_predictive(o6bg_model, o6bg):
    prior = o6bg_model.sample_prior_predictive(o6bg, draws=200, random_seed=1)
    assert prior["prior_predictive"]["y"].shape == (1, 200, 24)
    idata = o6bg_model.fit(o6bg, engine="kernel", draws=100, tune=50, random_seed=2)
    idata = o6bg_model.sample_posterior_predictive(idata, o6bg, random_seed=3)
    assert idata["posterior_predictive"]["y"].shape == (2, 100, 24)
    curve = o6bg_model.mean_response(idata, [40.0, 100.0])
    assert curve.dims == ("chain", "draw", "dose")
    tox = o6bg_model.prob_toxicity(idata, [40.0, 100.0])
    assert float(tox.sel(dose=40.0).mean()) < float(tox.sel(dose=100.0).mean())
    # at the MTD the probability of a DLT is exactly 1 - gamma
    post = idata["posterior"]
    mean_at_mtd = post["beta"] * (post["mtd"] - o6bg_model.x_min) ** post["nu"]
    p_at_mtd = stats.norm.sf((o6bg_model.eta - mean_at_mtd) / post["sigma"])
    np.testing.assert_allclose(p_at_mtd, 1 - o6bg_model.gamma, rtol=1e-8)
    with pytest.raises(ValueError, match="outside the dose range"):
        o6bg_model.mean_response(idata, [150.0])


def test_kernel_initial_state_is_pymc_initial_point(o6bg_model, o6bg):
    model = o6bg_model.build(o6bg)
    start = ThreePNDLayout(model).decode(model.initial_point())
    np.testing.assert_allclose(start, o6bg_model.initial_state(), rtol=1e-12)
    beta, sigma, nu = start
    lower, upper = kernels.beta_bounds(sigma, nu, o6bg_model.hyper)
    assert lower < beta < upper


def test_model_pickles_without_its_cached_pymc_model(o6bg_model, o6bg):
    import pickle

    o6bg_model.fit(o6bg, engine="kernel", draws=20, tune=10, random_seed=0)  # fills the cache
    copy = pickle.loads(pickle.dumps(o6bg_model))
    assert copy == o6bg_model
    assert copy._cache == {}
    fit = copy.fit(o6bg, engine="kernel", draws=20, tune=10, random_seed=0)
    assert fit["posterior"]["mtd"].shape == (2, 20)


def test_build_uses_data_containers(o6bg_model, o6bg):
    model = o6bg_model.build(o6bg)
    pm.set_data(
        {"dose": [40.0, 60.0], "response": [10.0, 20.0]}, coords={"patient": [0, 1]}, model=model
    )
    assert model["y"].eval().shape == (2,)


def _responses(doses, ys) -> TrialData:
    return TrialData.from_dataframe(pd.DataFrame({"dose": doses, "y": ys}))


@pytest.mark.parametrize("y", [30.0, 60.0])
@pytest.mark.parametrize("n", [2, 3])
def test_equal_responses_at_one_dose_are_a_data_error_not_a_floating_point_error(n, y):
    # The curve then fits every response exactly, the likelihood grows without bound as sigma
    # shrinks and the posterior is improper: a DataError naming the column, dose and value.
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    with pytest.raises(DataError, match=rf"column 'y'.*{n} responses.*dose 40.*{y:g}.*improper"):
        model.posterior(_responses([40.0] * n, [y] * n))
    # Unequal responses, or equal ones at two doses, or negative ones, have a posterior.
    for doses, ys in (
        ([40.0] * 3, [30.0, 31.0, 30.0]),
        ([40.0, 40.0, 60.0], [y, y, y]),
        ([40.0] * 3, [-5.0] * 3),
    ):
        assert 20 < model.posterior(_responses(doses, ys)).mtd.quantile(0.1) < 140


@pytest.mark.parametrize("value", [3e9, 3e10, 3e11, 3e12, 1e300])
def test_an_outlying_response_is_a_data_error_naming_row_and_value(value):
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    frame = pd.read_csv(EXAMPLES / "o6bg_first_cohorts.csv")
    row = len(frame) - 1
    frame.loc[row, "y"] = value
    with pytest.raises(DataError) as error:
        model.posterior(TrialData.from_dataframe(frame))
    message = str(error.value)
    assert f"column 'y', row {row}" in message and f"{value:g}" in message, message
    assert "exact" not in message, message  # an outlier is not an exact fit


@pytest.mark.parametrize(("value", "refusal"), [(1e4, "did not settle"), (1e8, "improper")])
def test_a_refusal_of_the_quadrature_names_an_outlying_response(value, refusal):
    # Below the bound of double precision, a response far out of scale leaves the quadrature
    # unsettled (1e4) or its region of nu unfound (1e8); the messages named no row, and the
    # second blamed "responses that (nearly) coincide" (an audit of the reliability fixes).
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    with pytest.raises(DataError, match=refusal) as error:
        model.posterior(_responses([40.0] * 3, [33.0, 18.0, value])).mtd.quantile(0.1)
    message = str(error.value)
    assert f"row 2's response {value:g} lies" in message, message
    assert "from the median response 33 (an entry or unit error?)" in message, message
    # responses within the scale say nothing of the kind
    with pytest.raises(DataError) as error:
        model.posterior(_responses([40.0] * 3, [30.0, 30.0, 30.0001]))
    assert "lies" not in str(error.value)


def test_the_3pnd_decision_depends_on_the_dose_unit():
    # The paper's prior on beta mixes dose and response scales: the same trial in g/m^2 gives
    # another next dose than in mg/m^2 (documented in ThreePND's notes). The unit is therefore
    # recorded (describe, the fit's attributes), and a fit made in one unit is refused by a
    # model declared in another.
    from dosezoo.designs import mtd_quantile_design
    from dosezoo.designs.mtd_quantile import MTDQuantileRule
    from dosezoo.errors import FitMismatchError

    frame = pd.read_csv(EXAMPLES / "o6bg_first_cohorts.csv")
    levels = (40.0, 60.0, 80.0, 100.0, 120.0)
    doses = {}
    designs = {}
    for scale, unit in ((1.0, "mg/m^2"), (1000.0, "g/m^2")):
        model = ThreePND(55.0, 0.6, 20.0 / scale, 140.0 / scale, dose_unit=unit)
        rule = MTDQuantileRule(
            alpha=0.1, dose_levels=tuple(v / scale for v in levels), monotone=True
        )
        design = mtd_quantile_design(model, rule, start_dose=40.0 / scale, cohort_size=3)
        data = TrialData.from_dataframe(frame.assign(dose=frame["dose"] / scale))
        doses[unit] = design.next(data).next_dose * scale
        designs[unit] = design
        assert design.describe()["model_dose_unit"] == unit
    assert doses["mg/m^2"] != doses["g/m^2"]
    model = designs["mg/m^2"].model
    data = TrialData.from_dataframe(frame)
    fit = model.fit(data, engine="quadrature", draws=100, random_seed=1)
    assert json.loads(fit.attrs["model_parameters"])["dose_unit"] == "mg/m^2"
    other = ThreePND(55.0, 0.6, 20.0, 140.0, dose_unit="mg/kg")
    rule = designs["mg/m^2"].rule
    with pytest.raises(FitMismatchError, match="dose_unit"):
        mtd_quantile_design(other, rule, start_dose=40.0, cohort_size=3).decide(fit, data)
    with pytest.raises(ValueError, match="dose_unit must be a non-empty string"):
        ThreePND(55.0, 0.6, 20.0, 140.0, dose_unit="")


def test_nearly_equal_responses_at_one_dose_are_a_data_error():
    # 30, 30 and 30.0001 at 40: the quadrature refused the posterior as improper with a
    # FloatingPointError, which the command line showed as a traceback.
    model = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5)
    with pytest.raises(DataError, match=r"column 'y': these 3 responses .* nearly so"):
        model.posterior(_responses([40.0] * 3, [30.0, 30.0, 30.0001]))


def test_a_larger_response_at_a_low_dose_can_raise_the_next_dose():
    """Found by a metamorphic audit (documented in ThreePND's notes): the curve is pinned at 0
    at x_min, so a larger response at the lowest dose, with the same responses above it, is
    fitted by a more concave curve (smaller nu), lower at the higher doses."""
    from dosezoo.config import read_config
    from dosezoo.designs import design_from_config

    design = design_from_config(read_config(EXAMPLES / "o6bg_accelerated.toml"), "o6bg")
    cohorts = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 5]
    doses = [40.0] * 3 + [60.0] * 6 + [80.0] + [60.0] * 2
    y = [18.93, 23.99, 25.19, 33.98, 34.48, 35.38, 29.9, 34.88, 39.87, 61.66, 38.06, 40.66]
    decisions, overdose = [], []
    for first in (y[0], 29.65):
        frame = pd.DataFrame({"cohort": cohorts, "dose": doses, "y": [first, *y[1:]]})
        data = TrialData.from_dataframe(frame)
        decisions.append(design.next(data).next_dose)
        overdose.append(design.rule.overdose_probability(design.posterior(data), 80.0))
    assert decisions == [60.0, 80.0]
    assert overdose[0] > 0.5 > overdose[1]
