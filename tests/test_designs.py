import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.designs import Decision, MTDQuantileRule
from dosezoo.diagnostics import ConvergenceCriteria, convergence_table
from dosezoo.errors import ConvergenceError


def _posterior(mtd):
    dataset = xr.Dataset({"mtd": (("chain", "draw"), np.asarray(mtd))})
    return xr.DataTree.from_dict({"posterior": dataset})


def _trial(last_dose):
    return TrialData.from_dataframe(
        pd.DataFrame({"dose": [40.0, last_dose], "y": [1.0, 2.0], "cohort": [1, 2]})
    )


@pytest.fixture(scope="module")
def well_mixed():
    return _posterior(np.random.default_rng(0).normal(90.0, 6.0, size=(4, 2000)))


def test_next_dose_is_the_alpha_quantile(well_mixed):
    decision = MTDQuantileRule(alpha=0.1).decide(well_mixed, _trial(60.0))
    mtd = well_mixed["posterior"]["mtd"].to_numpy().ravel()
    assert decision.next_dose == pytest.approx(np.quantile(mtd, 0.1))
    assert decision.quantities["p_overdose"] == pytest.approx(0.1, abs=1e-3)
    assert decision.bound_by == ()
    assert not decision.stopped
    assert list(decision.diagnostics.index) == ["mtd"]


def test_max_increment_then_levels(well_mixed):
    rule = MTDQuantileRule(alpha=0.1, max_increment=20.0, dose_levels=[40, 60, 80, 100, 120])
    decision = rule.decide(well_mixed, _trial(40.0))
    assert decision.next_dose == 60.0
    assert decision.bound_by == ("max_increment",)
    mtd = well_mixed["posterior"]["mtd"].to_numpy().ravel()
    assert decision.quantities["p_overdose"] == pytest.approx(np.mean(mtd < 60.0))


def test_levels_take_the_nearest(well_mixed):
    decision = MTDQuantileRule(alpha=0.1, dose_levels=[40, 60, 80, 100, 120]).decide(
        well_mixed, _trial(60.0)
    )
    quantile = decision.quantities["mtd_quantile"]
    assert decision.next_dose == min(
        [40, 60, 80, 100, 120], key=lambda level: abs(level - quantile)
    )
    assert decision.bound_by == ("dose_levels",)


def test_monotone_never_deescalates(well_mixed):
    decision = MTDQuantileRule(alpha=0.1, monotone=True).decide(well_mixed, _trial(100.0))
    assert decision.next_dose == 100.0
    assert decision.bound_by == ("monotone",)
    assert decision.quantities["p_overdose"] > 0.5


def test_refuses_a_fit_that_did_not_converge():
    rng = np.random.default_rng(1)
    stuck = np.stack([rng.normal(80.0, 2.0, 1000), rng.normal(95.0, 2.0, 1000)])
    with pytest.raises(ConvergenceError, match="mtd: R-hat"):
        MTDQuantileRule().decide(_posterior(stuck), _trial(60.0))
    loose = MTDQuantileRule(
        convergence=ConvergenceCriteria(max_rhat=10.0, min_ess_bulk=0, min_ess_tail=0)
    )
    assert loose.decide(_posterior(stuck), _trial(60.0)).next_dose is not None


def test_refuses_divergences(well_mixed):
    tree = well_mixed.copy()
    tree["sample_stats"] = xr.DataTree(
        xr.Dataset({"diverging": (("chain", "draw"), np.eye(4, 2000, dtype=bool))})
    )
    with pytest.raises(ConvergenceError, match="4 divergent transitions"):
        MTDQuantileRule().decide(tree, _trial(60.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.7}, "alpha"),
        ({"dose_levels": [60, 40]}, "increasing"),
        ({"dose_levels": [0, 40]}, "dose_levels"),
        ({"dose_levels": ["low", "high"]}, "dose_levels must be numbers"),
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
    decision = MTDQuantileRule(alpha=0.05).decide(idata, o6bg)
    assert o6bg_model.x_min < decision.next_dose < o6bg_model.x_max
    assert decision.quantities["p_overdose"] == pytest.approx(0.05, abs=2e-3)
