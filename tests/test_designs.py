import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from dosezoo.data import TrialData
from dosezoo.designs import (
    Conduct,
    CRMRule,
    Decision,
    Design,
    MTDQuantileRule,
    ToxicityStopping,
    mtd_quantile_design,
)
from dosezoo.designs.registry import design_config, design_from_config
from dosezoo.diagnostics import ConvergenceCriteria, convergence_table
from dosezoo.errors import ConfigError, ConvergenceError
from dosezoo.models import CRM, ThreePND
from dosezoo.posterior import DosePosterior, SampledDistribution

#: The O6-BG model (as the ``o6bg_model`` fixture): its dose range holds every dose below.
MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)


def _posterior(mtd):
    dataset = xr.Dataset({"mtd": (("chain", "draw"), np.asarray(mtd))})
    return xr.DataTree.from_dict({"posterior": dataset})


def _trial(last_dose):
    return TrialData.from_dataframe(
        pd.DataFrame({"dose": [40.0, last_dose], "y": [1.0, 2.0], "cohort": [1, 2]})
    )


def _decide(rule, idata, data, model=MODEL, **conduct):
    """The rule's decision on a fit, through the design that judges the fit first.

    A hand-made posterior is stamped as the model's fit to ``data`` (``model.fit`` stamps its
    own fits), so that the design's fingerprint check lets it through.
    """
    design = mtd_quantile_design(model, rule, start_dose=40.0, **conduct)
    if isinstance(idata, xr.DataTree) and isinstance(data, TrialData):
        if "data_fingerprint" not in idata.attrs:
            idata = model.stamp(idata.copy(), data)
    return design.decide(idata, data)


@pytest.fixture(scope="module")
def well_mixed():
    return _posterior(np.random.default_rng(0).normal(90.0, 6.0, size=(4, 2000)))


def test_next_dose_is_the_alpha_quantile(well_mixed):
    decision = _decide(MTDQuantileRule(alpha=0.1), well_mixed, _trial(60.0))
    mtd = well_mixed["posterior"]["mtd"].to_numpy().ravel()
    assert decision.next_dose == pytest.approx(np.quantile(mtd, 0.1))
    assert decision.quantities["p_overdose"] == pytest.approx(0.1, abs=1e-3)
    assert decision.bound_by == ()
    assert not decision.stopped
    assert list(decision.diagnostics.index) == ["mtd"]


def test_max_increment_then_levels(well_mixed):
    rule = MTDQuantileRule(alpha=0.1, max_increment=20.0, dose_levels=[40, 60, 80, 100, 120])
    decision = _decide(rule, well_mixed, _trial(40.0))
    assert decision.next_dose == 60.0
    assert decision.bound_by == ("max_increment",)
    mtd = well_mixed["posterior"]["mtd"].to_numpy().ravel()
    assert decision.quantities["p_overdose"] == pytest.approx(np.mean(mtd < 60.0))


def test_levels_take_the_nearest(well_mixed):
    decision = _decide(
        MTDQuantileRule(alpha=0.1, dose_levels=[40, 60, 80, 100, 120]), well_mixed, _trial(60.0)
    )
    quantile = decision.quantities["mtd_quantile"]
    assert decision.next_dose == min(
        [40, 60, 80, 100, 120], key=lambda level: abs(level - quantile)
    )
    assert decision.bound_by == ("dose_levels",)


def test_monotone_never_deescalates_but_for_the_overdose_limit(well_mixed):
    rule = MTDQuantileRule(alpha=0.1, monotone=True)
    decision = _decide(rule, well_mixed, _trial(100.0), max_overdose_probability=1.0)
    assert decision.next_dose == 100.0
    assert decision.bound_by == ("monotone",)
    assert decision.quantities["p_overdose"] > 0.5
    # With the design's hard limit (0.5 by default) the dose is the MTD's median instead.
    limited = _decide(rule, well_mixed, _trial(100.0))
    assert limited.bound_by == ("monotone", "overdose_limit")
    assert limited.next_dose < 100.0
    assert limited.quantities["overdose_probability"] == pytest.approx(0.5, abs=1e-3)


def test_refuses_a_fit_that_did_not_converge():
    rng = np.random.default_rng(1)
    stuck = np.stack([rng.normal(80.0, 2.0, 1000), rng.normal(95.0, 2.0, 1000)])
    with pytest.raises(ConvergenceError, match="mtd: R-hat"):
        _decide(MTDQuantileRule(), _posterior(stuck), _trial(60.0))
    loose = ConvergenceCriteria(max_rhat=10.0, min_ess_bulk=0, min_ess_tail=0)
    decision = _decide(MTDQuantileRule(), _posterior(stuck), _trial(60.0), convergence=loose)
    assert decision.next_dose is not None


def test_refuses_divergences(well_mixed):
    tree = well_mixed.copy()
    tree["sample_stats"] = xr.DataTree(
        xr.Dataset({"diverging": (("chain", "draw"), np.eye(4, 2000, dtype=bool))})
    )
    with pytest.raises(ConvergenceError, match="4 divergent transitions"):
        _decide(MTDQuantileRule(), tree, _trial(60.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.7}, "alpha"),
        ({"dose_levels": [60, 40]}, "increasing"),
        ({"dose_levels": [0, 40]}, "dose_levels"),
        ({"dose_levels": ["low", "high"]}, r"dose_levels\[0\] must be a real number, got .low."),
        ({"dose_levels": [40, "60", 80]}, r"dose_levels\[1\] must be a real number, got .60."),
        ({"max_increment": "20"}, "max_increment must be a real number, got .20."),
        ({"max_increment": -1.0}, "max_increment"),
    ],
)
def test_options_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MTDQuantileRule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_rhat": 0.9}, "max_rhat"),
        ({"min_ess_bulk": -1}, "min_ess_bulk"),
        ({"max_divergences": 0.5}, "max_divergences"),
    ],
)
def test_convergence_criteria_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvergenceCriteria(**kwargs)


def test_decision_has_a_dose_or_a_reason():
    with pytest.raises(ValueError, match="either a next_dose or a stop_reason"):
        Decision(next_dose=None)
    with pytest.raises(ValueError, match="either a next_dose or a stop_reason"):
        Decision(next_dose=40.0, stop_reason="done")
    assert Decision(next_dose=None, stop_reason="safety").stopped


def test_scalar_dose_of_a_single_agent_decision():
    assert Decision(np.float64(40.0)).scalar_dose("test") == 40.0
    assert type(Decision(40).scalar_dose("test")) is float
    assert Decision(None, stop_reason="safety").scalar_dose("test") is None
    per_stratum = Decision(None, strata=(Decision(40.0, stratum={"z": 0}),))
    assert per_stratum.scalar_dose("test") is None
    with pytest.raises(
        TypeError, match=r"test: expected the dose of a single agent.*\(0.25, 0.5\)"
    ):
        Decision((0.25, 0.5)).scalar_dose("test")


def test_convergence_table_reports_each_variable_and_worst_element():
    rng = np.random.default_rng(2)
    good = rng.normal(size=(2, 1000))
    bad = np.stack([rng.normal(0, 1, 1000), rng.normal(3, 1, 1000)])
    dataset = xr.Dataset(
        {
            "a": (("chain", "draw"), good),
            "p": (("chain", "draw", "dose"), np.stack([good, bad], axis=-1)),
        }
    )
    table = convergence_table(xr.DataTree.from_dict({"posterior": dataset}))
    assert table.loc["a", "r_hat"] < 1.01
    assert table.loc["p", "r_hat"] > 1.5
    with pytest.raises(KeyError, match="'b' is not in the posterior"):
        convergence_table(xr.DataTree.from_dict({"posterior": dataset}), ["b"])


def test_on_a_real_fit(o6bg_model, o6bg):
    idata = o6bg_model.fit(o6bg, engine="kernel", draws=2000, tune=500, random_seed=7)
    decision = _decide(MTDQuantileRule(alpha=0.05), idata, o6bg, model=o6bg_model)
    assert o6bg_model.x_min < decision.next_dose < o6bg_model.x_max
    assert decision.quantities["p_overdose"] == pytest.approx(0.05, abs=2e-3)


# ------------------------------------------------------------- rule options, any posterior

LEVELS = (40.0, 60.0, 80.0, 100.0, 120.0)


@st.composite
def _rule_cases(draw):
    draws = np.asarray(
        draw(
            st.lists(
                st.floats(21.0, 139.0, allow_nan=False), min_size=20, max_size=200, unique=True
            )
        )
    )
    levels = draw(st.one_of(st.none(), st.just(LEVELS)))
    last = draw(st.sampled_from(LEVELS)) if levels else draw(st.floats(25.0, 135.0))
    rule = MTDQuantileRule(
        alpha=draw(st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.25, 0.5])),
        dose_levels=levels,
        rounding=draw(st.sampled_from(["nearest", "down"])),
        monotone=draw(st.booleans()),
        max_increment=draw(st.one_of(st.none(), st.floats(1.0, 60.0))),
        no_skipping=draw(st.booleans()) if levels else False,
    )
    return rule, draws, last


@settings(max_examples=300, deadline=None)
@given(_rule_cases())
def test_rule_options_hold_for_any_posterior(case):
    rule, draws, last = case
    posterior = DosePosterior(
        dose_levels=(),
        rates={},
        mtd=SampledDistribution(draws[None, :]),
        report=ConvergenceCriteria().check(_posterior(draws[None, :]), []),
    )
    decision = rule.choose(posterior, _trial(last))
    dose, quantile = decision.next_dose, decision.quantities["mtd_quantile"]
    if rule.monotone:
        assert dose >= last
    if rule.max_increment is not None:
        assert dose <= last + rule.max_increment or (
            # the only levels within reach are below the last dose and monotone forbids them
            rule.dose_levels and rule.monotone and dose == last
        )
    if rule.dose_levels:
        assert dose in rule.dose_levels
    if rule.no_skipping:  # _trial gives 40 and ``last``: at most one level above the higher
        assert LEVELS.index(dose) <= LEVELS.index(max(40.0, last)) + 1 or (
            rule.monotone and dose == last
        )
    assert decision.quantities["p_overdose"] == pytest.approx(np.mean(draws < dose))
    if dose <= quantile:
        # overdose control holds up to the resolution of the draws
        assert decision.quantities["p_overdose"] <= rule.alpha + 1 / draws.size
    else:
        assert {"monotone", "dose_levels"} & set(decision.bound_by)
    if rule.dose_levels and rule.rounding == "down" and dose > quantile:
        assert "monotone" in decision.bound_by or dose == min(
            v for v in rule.dose_levels if v >= (last if rule.monotone else -np.inf)
        )
    if rule.dose_levels:
        # A level other than the quantile's own rounding is named by the options that moved it.
        free = MTDQuantileRule(alpha=rule.alpha, dose_levels=LEVELS, rounding=rule.rounding)
        if dose != free.choose(posterior, _trial(last)).next_dose:
            assert {"max_increment", "monotone", "no_skipping"} & set(decision.bound_by)


def test_an_increment_that_moves_the_rounded_level_is_named(o6bg):
    # The first O6-BG cohort (3 patients at 40): the 0.25-quantile of the MTD is 52.4, within
    # max_increment = 15 of 40; its nearest level is 60, out of reach, so the rule gives 40.
    data = TrialData.from_dataframe(o6bg.to_dataframe().head(3))
    rule = MTDQuantileRule(alpha=0.25, dose_levels=LEVELS, max_increment=15.0)
    decision = mtd_quantile_design(MODEL, rule, start_dose=40.0).next(data)
    assert 40.0 < decision.quantities["mtd_quantile"] < 55.0
    assert decision.next_dose == 40.0
    assert decision.bound_by == ("max_increment", "dose_levels")


def test_rounding_down_keeps_overdose_control(well_mixed):
    rule = MTDQuantileRule(alpha=0.1, dose_levels=LEVELS, rounding="down")
    decision = _decide(rule, well_mixed, _trial(60.0))
    assert decision.next_dose == 80.0  # the 0.1-quantile is about 82
    assert decision.quantities["p_overdose"] <= 0.1


def _sampled(draws):
    """A posterior of the MTD given by its draws (the rule reads only ``posterior.mtd``)."""
    draws = np.asarray(draws, dtype=float)[None, :]
    return DosePosterior(
        dose_levels=(),
        rates={},
        mtd=SampledDistribution(draws),
        report=ConvergenceCriteria().check(_posterior(draws), []),
    )


def _level_aware_by_hand(draws, alpha, given, last, monotone):
    """EWOC's escalation on levels, computed from the draws without the rule's code.

    The highest level whose share of draws below it is at most ``alpha``, at most one level
    above the highest level given and (monotone) not below the last dose; else the lowest of
    those levels.
    """
    cap = max(i for i, v in enumerate(LEVELS) if v <= max(given)) + 1
    allowed = [v for i, v in enumerate(LEVELS) if i <= cap and (not monotone or v >= last)]
    within = [v for v in allowed if np.mean(draws < v) <= alpha]
    return max(within) if within else min(allowed)


@pytest.mark.parametrize(("centre", "last"), [(85.0, 60.0), (85.0, 40.0), (95.0, 40.0)])
def test_level_aware_escalation_keeps_the_bound_where_nearest_rounding_does_not(centre, last):
    draws = np.random.default_rng(3).normal(centre, 8.0, 4000)
    posterior, data = _sampled(draws), _trial(last)
    aware = MTDQuantileRule(alpha=0.1, dose_levels=LEVELS, rounding="down", no_skipping=True)
    decision = aware.choose(posterior, data)
    assert decision.next_dose == _level_aware_by_hand(draws, 0.1, [40.0, last], last, False)
    assert decision.quantities["p_overdose"] <= 0.1
    if centre == 95.0:  # the quantile (about 85) is above 80; 60 is as far as it may go
        assert decision.next_dose == 60.0 and "no_skipping" in decision.bound_by
    nearest = MTDQuantileRule(alpha=0.1, dose_levels=LEVELS).choose(posterior, data)
    if centre == 85.0 and last == 60.0:
        # the 0.1-quantile (about 75) is nearest to 80, where P(MTD < 80) is about 0.27
        assert nearest.next_dose == 80.0 and nearest.quantities["p_overdose"] > 0.2
        assert decision.next_dose == 60.0


def test_no_skipping_caps_any_rounding_one_level_above_the_highest_given(well_mixed):
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [40.0, 60.0, 40.0], "y": [1.0] * 3}))
    rule = MTDQuantileRule(alpha=0.1, dose_levels=LEVELS, no_skipping=True)
    draws = np.random.default_rng(4).normal(110.0, 5.0, 4000)  # quantile about 104
    decision = rule.choose(_sampled(draws), data)
    # the highest level given is 60 (not the last dose, 40): at most 80
    assert decision.next_dose == 80.0
    assert decision.bound_by == ("no_skipping", "dose_levels")
    assert (
        MTDQuantileRule(alpha=0.1, dose_levels=LEVELS).choose(_sampled(draws), data).next_dose
        == 100.0
    )


def test_increasing_feasibility_bound_grows_with_the_patients(well_mixed):
    mtd = well_mixed["posterior"]["mtd"].to_numpy().ravel()
    rule = MTDQuantileRule(alpha=0.1, alpha_step=0.05, alpha_max=0.3)
    two = _trial(60.0)  # 2 patients: 0.1 + 2 * 0.05
    decision = _decide(rule, well_mixed, two)
    assert decision.quantities["alpha"] == pytest.approx(0.2)
    assert decision.next_dose == pytest.approx(np.quantile(mtd, 0.2))
    six = TrialData.from_dataframe(pd.DataFrame({"dose": [40.0] * 6, "y": [1.0] * 6}))
    assert rule.alpha_for(six) == pytest.approx(0.3)  # 0.4, capped at alpha_max
    assert rule.choose(_sampled(mtd), six).next_dose == pytest.approx(np.quantile(mtd, 0.3))
    assert rule.alpha_for(TrialData.empty(outcomes=("y",))) == 0.1
    assert MTDQuantileRule(alpha=0.1).alpha_for(six) == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha_max": 0.6}, r"alpha_max must lie in \(0, 0.5\]"),
        ({"alpha": 0.3, "alpha_max": 0.2}, "alpha 0.3 exceeds alpha_max 0.2"),
        ({"alpha_step": -0.01}, "alpha_step must be >= 0"),
        ({"alpha_step": "fast"}, "alpha_step must be a real number"),
        ({"no_skipping": True}, "no_skipping needs dose_levels"),
        ({"no_skipping": "yes", "dose_levels": LEVELS}, "no_skipping must be True or False"),
    ],
)
def test_new_rule_options_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MTDQuantileRule(**kwargs)


def test_new_rule_options_read_from_a_configuration():
    config = {
        "model": {"type": "3pnd", "eta": 55.0, "gamma": 0.6, "x_min": 20.0, "x_max": 140.0},
        "rule": {
            "alpha": 0.1,
            "dose_levels": list(LEVELS),
            "rounding": "down",
            "no_skipping": True,
            "alpha_step": 0.015,
        },
        "conduct": {"start_dose": 40.0, "cohort_size": 3},
    }
    design = design_from_config(config, "o6bg.toml")
    assert (design.rule.no_skipping, design.rule.alpha_step, design.rule.alpha_max) == (
        True,
        0.015,
        0.5,
    )
    assert design_from_config(design_config(design), "again") == design
    assert design.rule.describe()["alpha_step"] == 0.015
    assert "no_skipping" not in MTDQuantileRule().describe()  # earlier records still match
    config["rule"]["alpha_max"] = 0.7
    with pytest.raises(ConfigError, match="alpha_max"):
        design_from_config(config, "o6bg.toml")


def test_rule_rejects_bad_inputs(well_mixed):
    with pytest.raises(TypeError, match="needs a TrialData"):
        _decide(MTDQuantileRule(), well_mixed, pd.DataFrame({"dose": [40.0]}))
    with pytest.raises(TypeError, match="InferenceData"):
        _decide(MTDQuantileRule(), {"mtd": [1.0]}, _trial(60.0))
    with pytest.raises(ValueError, match="monotone must be True or False"):
        MTDQuantileRule(monotone="yes")
    with pytest.raises(ValueError, match="rounding must be"):
        MTDQuantileRule(rounding="up")


# ------------------------------------------------------------------------------ designs


@pytest.fixture(scope="module")
def seed_model():
    return ThreePND(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, delta=0.1)


def _data(doses, ys):
    return TrialData.from_dataframe(pd.DataFrame({"dose": doses, "y": ys}))


def test_design_starts_at_the_start_dose_then_follows_the_rule(seed_model):
    design = mtd_quantile_design(seed_model, MTDQuantileRule(alpha=0.01), start_dose=6.0)
    first = design.next(TrialData.empty(outcomes=("y",)))
    assert first.next_dose == 6.0 and first.bound_by == ("start_dose",)
    data = _data([6.0, 10.0, 20.0], [0.06, 0.3, 0.9])
    decision = design.next(data)
    assert decision.next_dose == pytest.approx(seed_model.mtd_posterior(data).quantile(0.01))
    assert decision.quantities["p_overdose"] == pytest.approx(0.01, rel=1e-6)


def test_design_stops_at_the_sample_size_and_on_toxicity(seed_model):
    design = mtd_quantile_design(
        seed_model,
        MTDQuantileRule(alpha=0.01),
        start_dose=6.0,
        sample_size=4,
        stopping=ToxicityStopping(threshold=3.0, max_toxicities=1),
    )
    full = _data([6.0, 10.0, 20.0, 30.0], [0.06, 0.3, 0.9, 1.5])
    assert design.next(full).stop_reason == "sample size reached: 4 of 4"
    assert design.recommend(full).next_dose is not None
    toxic = _data([6.0, 40.0, 40.0], [0.1, 3.2, 3.1])
    for decision in (design.next(toxic), design.recommend(toxic)):
        assert decision.stop_reason == "toxicity: 2 patients with y >= 3, more than 1"


def test_a_stopping_rule_reading_an_outcome_the_model_lacks_is_refused():
    # it failed at the first decision on binary data, "no column 'y'"
    crm = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.25, dose_levels=(10, 20, 40, 80, 160))
    conduct = Conduct(stopping=(ToxicityStopping(threshold=3.0, max_toxicities=1),))
    with pytest.raises(
        ValueError, match=r"stopping\[0\] \(ToxicityStopping\) reads the outcome 'y'"
    ):
        Design(crm, CRMRule(), conduct)


def test_a_design_whose_fast_posterior_is_sampled_records_its_mcse_margin():
    # Left out without an engine: a store of one margin was resumed, or returned, as another's
    from dosezoo.models.joint_probit import JointProbit

    def design(model, rule, **conduct):
        return Design(model, rule, Conduct(**conduct))

    probit = JointProbit((10.0, 20.0, 40.0, 80.0, 160.0))
    rule = design_from_config(
        {"model": {"type": "joint-probit", "dose_levels": [10, 20, 40, 80, 160]}}, "x"
    ).rule
    records = [design(probit, rule, mcse_margin=m).describe() for m in (2.0, 1.0)]
    assert [r["conduct_mcse_margin"] for r in records] == [2.0, 1.0]
    crm = CRM((0.05, 0.12, 0.25, 0.40, 0.55), 0.25, dose_levels=(10, 20, 40, 80, 160))
    exact = design(crm, CRMRule(), mcse_margin=1.0).describe()
    assert "conduct_mcse_margin" not in exact  # its grid posterior has no Monte Carlo error
    assert design(crm, CRMRule(), engine="nuts").describe()["conduct_mcse_margin"] == 2.0


def test_mcmc_design_decisions_are_a_function_of_the_data(seed_model):
    design = mtd_quantile_design(
        seed_model,
        MTDQuantileRule(alpha=0.1),
        start_dose=6.0,
        engine="kernel",
        draws=1000,
        tune=200,
    )
    data = _data([6.0, 10.0, 20.0, 25.0], [0.06, 0.3, 0.9, 1.2])
    first, again = design.next(data), design.next(data)
    assert first.next_dose == again.next_dose
    exact = seed_model.mtd_posterior(data)
    assert exact.cdf(first.next_dose) == pytest.approx(0.1, abs=0.03)
    # Patients are exchangeable: the same trial with its rows in another order gets the same
    # fit (its seed was a hash of the rows in order), but other data another one.
    shuffled = _data([20.0, 6.0, 25.0, 10.0], [0.9, 0.06, 1.2, 0.3])
    decision = design.next(shuffled)
    assert decision.next_dose == first.next_dose
    assert decision.quantities == first.quantities
    seed = design.conduct.seed_for(data, seed_model.outcomes)
    assert design.conduct.seed_for(shuffled, seed_model.outcomes) == seed
    other = _data([6.0, 10.0, 20.0, 25.0], [0.06, 0.3, 0.9, 1.3])
    assert design.conduct.seed_for(other, seed_model.outcomes) != seed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_dose": 5.0}, r"start_dose must lie in \(5, 80\)"),
        ({"start_dose": 7.0, "rule": MTDQuantileRule(dose_levels=[6.0, 10.0])}, "not one of"),
        ({"cohort_size": 0}, "cohort_size must be an integer >= 1"),
        ({"cohort_size": 3, "sample_size": 2}, "cohort_size 3 exceeds sample_size 2"),
        ({"engine": "grid"}, "engine must be"),
        ({"start_dose": True}, "start_dose must be a real number"),
        ({"random_seed": -1}, "random_seed must be an integer >= 0"),
        ({"tune": 1.5}, "tune must be an integer >= 0"),
        ({"rule": MTDQuantileRule(dose_levels=[6.0, 90.0])}, "must lie in"),
    ],
)
def test_design_is_validated(seed_model, kwargs, message):
    options = {"rule": MTDQuantileRule(), "start_dose": 6.0} | kwargs
    with pytest.raises(ValueError, match=message):
        mtd_quantile_design(seed_model, **options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": float("nan"), "max_toxicities": 1}, "threshold must be finite"),
        ({"threshold": 3.0, "max_toxicities": -1}, "max_toxicities must be an integer >= 0"),
    ],
)
def test_stopping_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToxicityStopping(**kwargs)


def test_the_conduct_record_tells_apart_every_setting_a_run_depends_on():
    # Stopping rules were recorded under one prefix (a second overwrote the first), and the
    # convergence criteria, refits' growth and on_refusal not at all: two different conducts
    # had one fingerprint, and a result store returned one's trials for the other's.
    from dosezoo.designs.base import Conduct
    from dosezoo.designs.mtd_quantile import ToxicityStopping

    def record(**options):
        return Conduct(**options).describe()

    first, second = ToxicityStopping(55.0, 0), ToxicityStopping(100.0, 29)
    other = ToxicityStopping(55.0, 29)
    assert record(stopping=(first, second)) != record(stopping=(other, second))
    assert record(stopping=(first, second)) != record(stopping=(second, first))
    assert record(stopping=(first,))["stopping_0"] == "ToxicityStopping"
    fitted = {"engine": "nuts", "refits": 1}
    variants = [
        record(**fitted),
        record(**fitted, convergence=ConvergenceCriteria(max_rhat=1.05)),
        record(**fitted, refit_factor=3),
        record(**fitted, refit_tune=not Conduct().refit_tune),
        record(**fitted, on_refusal="stop"),
    ]
    assert len({tuple(sorted(v.items())) for v in variants}) == len(variants)
    # Without an engine too: a sampled fast posterior (the latent GP's, the joint probit's)
    # fits with these settings, and the Weibull D-optimal rule randomises from the seed; a
    # store resumed a run of seed 2018 with seed 7.
    unfitted = [
        record(),
        record(random_seed=7),
        record(draws=500),
        record(tune=100),
        record(chains=4),
        record(refits=1),
    ]
    assert len({tuple(sorted(v.items())) for v in unfitted}) == len(unfitted)


def test_decisions_on_a_sampled_fit_carry_its_convergence_table(monkeypatch):
    # Decision.diagnostics was None on every CRM, BLRM and EWOC decision with engine="nuts".
    # The model's own independent draws ("grid") stand for the MCMC fit: the same code path.
    from dosezoo.designs import crm_design
    from dosezoo.models import CRM

    model = CRM(
        (0.084, 0.157, 0.25, 0.355, 0.46), 0.25, dose_levels=(10.0, 20.0, 40.0, 80.0, 160.0)
    )
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 3, "dlt": [0] * 6 + [1, 0, 0]})
    )
    grid_fit = CRM.fit

    def fit(self, data, *, engine=None, **settings):
        return grid_fit(self, data, engine="grid", **settings)

    monkeypatch.setattr(CRM, "fit", fit)
    sampled = {"engine": "nuts", "draws": 500, "random_seed": 1}
    design = crm_design(model, **sampled)
    table = design.posterior(data).report.table
    assert list(table.index) == ["p_dlt"]
    for decision in (design.next(data), design.recommend(data)):
        assert decision.next_dose is not None
        pd.testing.assert_frame_equal(decision.diagnostics, table)
    fitted = model.fit(data, engine="nuts", draws=500, random_seed=1)
    decided = design.decide(fitted, data)
    assert decided.next_dose is not None
    pd.testing.assert_frame_equal(decided.diagnostics, convergence_table(fitted, ["p_dlt"]))
    refusing = crm_design(
        model, on_refusal="stop", convergence=ConvergenceCriteria(min_ess_bulk=1e6), **sampled
    )
    refused = refusing.next(data)
    assert refused.stop_reason.startswith("fit refused: p_dlt: bulk ESS")
    pd.testing.assert_frame_equal(refused.diagnostics, refusing.posterior(data).report.table)
    # The exact (quadrature) posterior has no Monte Carlo error and no table.
    assert crm_design(model).next(data).diagnostics is None
