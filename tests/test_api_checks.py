"""Values the records and posteriors of the API refuse by name, rather than carry silently.

A NaN risk compared with its cutoff would take the side opposite to caution; a NaN dose, a
text dose or a ``bound_by`` string would travel into simulation results; a decision per stratum
stacked as a count rule's row would read as a stop.
"""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dosezoo.checks import choice, doses_within, real_array
from dosezoo.data import TrialData
from dosezoo.decision import CountDecisions, Decision
from dosezoo.designs import blrm_design
from dosezoo.errors import DataError
from dosezoo.levels import count_state, data_from_counts, level_index
from dosezoo.models import BLRM, CRM, EWOC, ThreePND
from dosezoo.posterior import DosePosterior, SampledDistribution
from dosezoo.scenarios import BinaryToxicityScenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

LEVELS = (10.0, 20.0, 40.0, 60.0, 80.0)


@pytest.mark.parametrize(
    "dose", [math.nan, math.inf, -math.inf, True, "1.0", {"a": 1}, (1.0, math.nan)]
)
def test_a_decision_refuses_a_dose_that_is_not_a_finite_number(dose):
    with pytest.raises(ValueError, match="next_dose must be a finite number"):
        Decision(dose)


def test_a_decision_takes_numbers_combinations_and_stops():
    assert Decision(np.int64(2)).next_dose == 2
    assert Decision(np.float32(2.5)).next_dose == 2.5
    assert Decision([1.0, 2.0]).next_dose == (1.0, 2.0)
    assert Decision(None, stop_reason="safety").stopped


def test_a_decision_refuses_bound_by_given_as_one_string():
    with pytest.raises(ValueError, match=r"bound_by .* the string 'max_step_up'"):
        Decision(20.0, bound_by="max_step_up")


def test_a_decision_per_stratum_has_no_count_row():
    """Its strata would otherwise read as a stop with no reason."""
    per_stratum = Decision(None, strata=(Decision(20.0, stratum={"z": 1}),))
    with pytest.raises(ValueError, match="row 1 is not a Decision of one dose or a stop"):
        CountDecisions.from_decisions([Decision(10.0), per_stratum], LEVELS)


def _crm_posterior():
    model = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS)
    return model.posterior(TrialData({"dose": [10.0] * 3, "dlt": [0, 0, 1]}))


def _blrm_posterior():
    return BLRM(LEVELS, 40.0).posterior(TrialData({"dose": [10.0] * 3, "dlt": [0, 0, 1]}))


@pytest.mark.parametrize("posterior", [_crm_posterior, _blrm_posterior])
def test_a_nan_risk_or_cutoff_is_refused_not_read_as_safe(posterior):
    deciding = posterior().deciding(2.0)
    with pytest.raises(ValueError, match="p_overdose_0 = nan"):
        deciding.exceeds(["p_overdose_0"], [math.nan], 0.25, lambda: [0.01])
    with pytest.raises(ValueError, match="cutoff nan"):
        deciding.exceeds(["p_overdose_0"], [0.3], math.nan, lambda: [0.01])
    with pytest.raises(ValueError, match="p_lowest = nan"):
        deciding.exceeds_value("p_lowest", math.nan, 0.95, lambda: 0.01)
    assert deciding.exceeds(["a", "b"], [0.1, 0.4], 0.25, lambda: [0.0, 0.0]).tolist() == [
        False,
        True,
    ]


@pytest.mark.parametrize("posterior", [_crm_posterior, _blrm_posterior])
def test_probabilities_of_the_rates_refuse_a_nan_threshold_and_a_reversed_interval(posterior):
    fitted = posterior()
    with pytest.raises(ValueError, match="prob_above: the threshold of 'p_dlt' is NaN"):
        fitted.prob_above(math.nan)
    with pytest.raises(ValueError, match="prob_below: the threshold of 'p_dlt' is NaN"):
        fitted.prob_below(math.nan)
    with pytest.raises(ValueError, match=r"lower <= upper, got 0\.4 and 0\.1"):
        fitted.prob_between(0.4, 0.1)
    between = fitted.prob_between(0.1, 0.4)
    assert np.all((between >= 0) & (between <= 1))


@pytest.mark.parametrize(
    ("levels", "problem"),
    [
        ((math.nan, 20.0), r"dose_levels\[0\] must be finite"),
        ((20.0, 20.0), "dose_levels must be strictly increasing"),
        ((-1.0, 20.0), r"dose_levels\[0\] must be > 0"),
    ],
)
def test_data_from_counts_refuses_dose_levels_no_design_has(levels, problem):
    with pytest.raises(ValueError, match=f"data_from_counts: {problem}"):
        data_from_counts(np.array([3, 1]), np.array([1, 0]), 0, levels)


def test_data_from_counts_takes_lists_of_counts_and_refuses_fractions():
    """Lists of counts raised an AttributeError (``'list' object has no attribute 'tolist'``)."""
    from_lists = data_from_counts([3, 1], [1, 0], 1, (10.0, 20.0))
    from_arrays = data_from_counts(np.array([3, 1]), np.array([1, 0]), 1, (10.0, 20.0))
    for column in ("dose", "dlt", "cohort"):
        assert np.array_equal(from_lists.column(column), from_arrays.column(column))
    with pytest.raises(ValueError, match=r"the count state n=\[3\.0, 1\.5\].* is impossible"):
        data_from_counts([3.0, 1.5], [1, 0], 1, (10.0, 20.0))


@pytest.mark.parametrize("posterior", [_crm_posterior, _blrm_posterior])
@pytest.mark.parametrize("threshold", [0.0, 1.0, -1.0, 2.0])
def test_exact_tails_refuse_a_threshold_outside_the_probabilities(posterior, threshold):
    """CRM raised a bare 'math domain error', BLRM answered 1.0 for P(p > 2)."""
    fitted = posterior()
    for method in (fitted.prob_above, fitted.prob_below):
        with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
            method(threshold)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"x_min": -10.0, "x_max": -1.0}, r"x_min must be >= 0 .* got -10\.0"),
        ({"x_min": 0.0, "x_max": 10.0, "dose_levels": 5.0}, "dose_levels must be a sequence"),
        ({"x_min": 0.0, "x_max": 10.0, "dose_levels": {2: "a"}}, "dose_levels must be a sequence"),
    ],
)
def test_ewoc_refuses_a_negative_dose_range_and_levels_that_are_no_sequence(options, problem):
    with pytest.raises(ValueError, match=f"EWOC: {problem}"):
        EWOC(0.3, **options)


def test_the_blrm_rule_refuses_a_target_interval_that_is_no_pair():
    with pytest.raises(ValueError, match=r"target_interval must be a pair, got 0\.3"):
        blrm_design(BLRM(LEVELS, 40.0), target_interval=0.3)


def test_a_summary_names_a_target_given_as_text():
    model = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.3, dose_levels=LEVELS)
    posterior = model.posterior(TrialData.empty(outcomes=("dlt",)))
    with pytest.raises(ValueError, match=r"CRM\.summary: target must be a real number, got '0\.3'"):
        model.summary(posterior, target="0.3")


@pytest.mark.parametrize("levels", [[-1], [3], [1.0]])
def test_the_binary_scenario_refuses_levels_it_does_not_have(levels):
    """numpy read level -1 as the top level's true DLT probability."""
    scenario = BinaryToxicityScenario(
        (1.0, 2.0, 3.0), (0.1, 0.2, 0.3), 0.25, planned_sample_size=30
    )
    with pytest.raises(ValueError, match=r"levels must be integers in \[0, 3\)"):
        scenario.outcomes_at_levels(np.array(levels), np.full(len(levels), 0.05))


@pytest.mark.parametrize("value", [np.array(["plugin"]), 1, True, ["plugin"]])
def test_an_option_is_one_of_its_choices_by_type_as_well(value):
    """An array holding a choice, or 1 among bools, passed as the choice itself."""
    with pytest.raises(ValueError, match="x must be one of 'plugin', 'mean'"):
        choice("Owner", "x", value, ("plugin", "mean"))
    assert choice("Owner", "x", np.str_("mean"), ("plugin", "mean")) == "mean"


def test_a_real_array_is_one_sequence_not_a_table_flattened():
    with pytest.raises(ValueError, match="support must be one sequence of numbers, got 2"):
        real_array("Owner", "support", [[1.0, 2.0], [3.0, 4.0]])
    assert real_array("Owner", "support", [1, 2.5]).tolist() == [1.0, 2.5]


@pytest.mark.parametrize(
    ("values", "shown"),
    [(np.array([[True, False, False]]), "True"), (np.array([["1", "0", "0"]]), "'1'")],
)
def test_counts_given_as_text_or_bools_are_refused_not_read_as_numbers(values, shown):
    zeros = np.zeros((1, 3), dtype=np.int64)
    with pytest.raises(ValueError, match=rf"BOIN: n \(row 0\) holds {shown}, not a number"):
        count_state("BOIN", values, zeros, np.array([0]), 3)
    with pytest.raises(ValueError, match=rf"BOIN: y \(row 0\) holds {shown}, not a number"):
        count_state("BOIN", np.ones((1, 3), dtype=np.int64), values, np.array([0]), 3)
    states = count_state("BOIN", [[1, 0, 0]], [[1.0, 0.0, 0.0]], [0], 3)
    assert states.y.tolist() == [[1, 0, 0]] and states.y.dtype == np.int64


@pytest.mark.parametrize("dose", [["10", "20"], [True, False], np.array(["10.0"])])
def test_doses_given_as_text_or_bools_are_refused_naming_the_row(dose):
    with pytest.raises(DataError, match=r"CRM: column 'dose' \(row 0\) holds .*, not a number"):
        level_index(np.asarray(dose), LEVELS, owner="CRM")
    with pytest.raises(ValueError, match=r"scenario: dose \(patient 0\) holds .*, not a number"):
        doses_within("scenario", dose, 0.0, 100.0)
    assert level_index(np.array([20, 10]), LEVELS, owner="CRM").tolist() == [1, 0]
    assert doses_within("scenario", np.array([20, 10]), 0.0, 100.0).tolist() == [20.0, 10.0]


@pytest.mark.parametrize("p", [1.5, -0.1, math.nan])
def test_an_mtd_quantile_outside_the_probabilities_is_refused_not_nan(p):
    model = EWOC(0.3, 0.0, 100.0, dose_levels=LEVELS)
    mtd = model.posterior(TrialData({"dose": [10.0] * 3, "dlt": [0, 0, 1]})).mtd
    with pytest.raises(ValueError, match=r"quantile: p must lie in \[0, 1\]"):
        mtd.quantile(p)
    sampled = SampledDistribution(np.linspace(0.0, 1.0, 11))
    with pytest.raises(ValueError, match=r"quantile: p must lie in \[0, 1\]"):
        sampled.quantile(p)
    with pytest.raises(ValueError, match="cdf: x must be a number, got nan"):
        mtd.cdf(math.nan)
    with pytest.raises(ValueError, match="cdf: x must be a number, got nan"):
        sampled.cdf(math.nan)
    assert 0.0 < mtd.quantile(0.5) < 100.0 and sampled.quantile(0.5) == 0.5


@pytest.mark.parametrize("posterior", [_crm_posterior, _blrm_posterior])
def test_caution_is_a_number_of_mcses_and_an_mcse_names_its_rate(posterior):
    fitted = posterior()
    for caution, problem in [(-1.0, ">= 0"), (math.nan, "finite"), (True, "a real number")]:
        with pytest.raises(ValueError, match=f"deciding: caution must be {problem}"):
            fitted.deciding(caution)
    assert fitted.deciding(np.int64(2)).caution == 2.0
    with pytest.raises(KeyError, match="the posterior has no rate 'p_tox'; it has"):
        fitted.mcse_above(0.3, "p_tox")
    assert fitted.mcse_above(0.3).tolist() == [0.0] * len(LEVELS)


def test_a_posterior_built_by_hand_with_its_fields_wrong_is_refused_naming_the_field():
    levels = (1.0, 2.0, 3.0)
    rates = np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]])
    good = DosePosterior(dose_levels=levels, rates={"p_dlt": rates}, weights=np.array([0.4, 0.6]))
    assert good.prob_above(0.25)[1] == pytest.approx(0.6)
    assert good.mean().tolist() == pytest.approx([0.16, 0.26, 0.36])
    engines = replace(good, means={"p_dlt": np.array([0.1, 0.2, 0.3])})
    assert engines.mean().tolist() == [0.1, 0.2, 0.3]  # the engine's own means are read first
    cases = [
        ({"rates": {"p_dlt": rates.T}}, r"rate 'p_dlt' has shape \(3, 2\), not \(points, levels\)"),
        ({"rates": {"p_dlt": np.where(rates > 0.35, np.nan, rates)}}, r"p_dlt'\[1, 2\] must be"),
        ({"weights": np.array([0.4, 0.4])}, "weights must sum to 1, got 0.8"),
        ({"weights": np.array([1.2, -0.2])}, r"weights\[1\] must be a finite number >= 0"),
        ({"weights": np.array([0.5, 0.3, 0.2])}, r"has shape \(2, 3\), not \(points, levels\)"),
        ({"weights": None, "chains": 4}, "2 draws do not split into 4 chains"),
        ({"dose_levels": [1.0, 2.0, 3.0]}, "dose_levels must be a tuple, got list"),
        ({"chains": 0}, "chains must be an integer >= 1"),
        ({"caution": -1.0}, "caution must be >= 0"),
        ({"means": {"p_dlt": rates}}, r"means\['p_dlt'\] must be an array of shape \(3,\)"),
        (
            {"means": {"p_dlt": np.array([0.1, np.inf, 0.3])}},
            r"means\['p_dlt'\]\[1\] must be finite",
        ),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            DosePosterior(
                **{"dose_levels": levels, "rates": {"p_dlt": rates}, "weights": np.ones(2) / 2}
                | change
            )


def test_an_engine_posterior_built_with_a_name_that_is_no_field_is_refused():
    # DosePosterior._of_engine skips __init__ for speed; a misspelt field would otherwise sit
    # beside the default one (weights None: the nodes read as draws).
    with pytest.raises(AssertionError, match=r"not DosePosterior fields: \{'weight'\}"):
        DosePosterior._of_engine(dose_levels=(1.0,), weight=np.ones(1))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"drawz": 10}, r"engine 'grid' has no option 'drawz' \(it takes no options"),
        ({"engine": "nuts", "target_accept": 0.9}, r"engine 'nuts' has no option 'target_accept'"),
        ({"random_seed": -1}, r"random_seed must be an integer >= 0, a numpy Generator or None"),
        ({"random_seed": "a"}, r"random_seed must be an integer >= 0, a numpy Generator or None"),
        ({"random_seed": 1.5}, r"random_seed must be an integer >= 0, a numpy Generator or None"),
    ],
)
def test_fit_refuses_an_option_no_engine_reads_and_a_bad_seed(options, message):
    # A misspelt option (drawz=10) was ignored, the fit made with 1000 draws; a bad seed
    # failed in numpy's words, naming no argument.
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 3, "dlt": [0, 0, 1]}))
    with pytest.raises(ValueError, match=rf"^BLRM\.fit: {message}"):
        BLRM((10.0, 20.0, 40.0), 20.0).fit(data, **options)


def test_fit_takes_an_engines_own_option():
    model = ThreePND(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [10.0, 20.0, 40.0], "y": [0.3, 0.8, 2.1]})
    )
    fit = model.fit(data, engine="kernel", ridge=False, draws=20, tune=20, random_seed=1)
    assert fit["posterior"].sizes["draw"] == 20
    with pytest.raises(ValueError, match=r"engine 'quadrature' has no option 'ridge'"):
        model.fit(data, engine="quadrature", ridge=False)


def _weibull_fit_draws(seed):
    from dosezoo.config import design_from_config, read_config

    config = EXAMPLES / "weibull_d_optimal.toml"
    model = design_from_config(read_config(config), str(config)).model
    data = TrialData.from_csv(EXAMPLES / "weibull_first_stage.csv", **model.data_schema())
    fit = model.fit(data, engine="laplace", draws=50, chains=2, random_seed=seed)
    return fit["posterior"]["b"].values


def _crm_and_data():
    crm = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.25, dose_levels=(10, 20, 40, 80, 160))
    return crm, TrialData.from_csv(EXAMPLES / "binary_cohorts.csv")


def _crm_fit_posterior():
    """The posterior of a grid fit's draws (joint draws; the exact posterior's nodes are not)."""
    crm, data = _crm_and_data()
    return DosePosterior.from_idata(crm.fit(data, engine="grid", draws=50, random_seed=1))


@pytest.mark.parametrize(
    "draw",
    [
        lambda seed: (
            (lambda m, d: m.fit(d, engine="grid", draws=50, random_seed=seed))(*_crm_and_data())[
                "posterior"
            ]["beta"].values
        ),
        _weibull_fit_draws,
        lambda seed: _crm_fit_posterior().joint_draws("p_dlt", 50, random_seed=seed),
        lambda seed: (
            _crm_and_data()[0]
            .prior_predictive_summary(draws=100, random_seed=seed)["p_dlt_mean"]
            .values
        ),
    ],
    ids=["grid-fit", "laplace-fit", "joint-draws", "prior-predictive"],
)
def test_a_generator_as_seed_is_read_alike_everywhere(draw):
    # Fits copied a Generator; the Laplace fit, joint_draws and the predictive checks advanced
    # it (each call new draws), and there Generator(5) and 5 drew differently.
    generator = np.random.default_rng(5)
    state = generator.bit_generator.state
    first = draw(generator)
    assert generator.bit_generator.state == state  # the caller's generator does not advance
    np.testing.assert_array_equal(draw(generator), first)
    np.testing.assert_array_equal(draw(5), first)


def test_the_predictive_checks_refuse_a_bad_seed_by_name():
    crm, _ = _crm_and_data()
    for seed in (-1, np.random.SeedSequence(1), 1.5):
        with pytest.raises(ValueError, match=r"CRM\.sample_prior_predictive: random_seed must"):
            crm.prior_predictive_summary(draws=10, random_seed=seed)
        with pytest.raises(ValueError, match=r"joint_draws: random_seed must"):
            _crm_fit_posterior().joint_draws("p_dlt", 10, random_seed=seed)
