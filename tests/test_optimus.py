"""Lin (2023)'s selection rule and the Optimus design: never an excluded or skipped dose."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from dosezoo.data import DataError, TrialData
from dosezoo.designs import boin12_design
from dosezoo.designs.base import Design
from dosezoo.designs.optimus import optimus_design
from dosezoo.diagnostics import ConvergenceCriteria, ConvergenceReport
from dosezoo.errors import ConvergenceError
from dosezoo.models.joint_probit import JointProbit
from dosezoo.posterior import DosePosterior
from dosezoo.scenarios import standard_efftox_scenarios
from dosezoo.simulate import run_trial, simulate, simulate_designs
from dosezoo.studies import optimus_scenarios

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
OK = ConvergenceReport(table=pd.DataFrame(), divergences=0, failures=())
MODEL = JointProbit(LEVELS)


def posterior_of(p_tox, p_response, report=OK) -> DosePosterior:
    """Equally weighted posterior draws of the two rates, with a convergence report."""
    return DosePosterior(LEVELS, {"p_tox": p_tox, "p_response": p_response}, report=report)


def rule_of(**options):
    """Lin's rule bound to the joint model on LEVELS (the design's rule)."""
    return optimus_design(MODEL, **options).rule


def rates_from(rng, centre_tox, slope_tox, centre_eff, curvature, n_draws=400) -> DosePosterior:
    """Random posterior draws of monotone toxicity and quadratic efficacy curves."""
    x = np.linspace(-1, 1, len(LEVELS))
    a = centre_tox + 0.5 * rng.normal(size=(n_draws, 1))
    b = np.abs(slope_tox + 0.3 * rng.normal(size=(n_draws, 1))) + 1e-3
    c = centre_eff + 0.5 * rng.normal(size=(n_draws, 1))
    q = curvature + 0.3 * rng.normal(size=(n_draws, 1))
    return posterior_of(ndtr(a + b * x), ndtr(c + q * x**2))


def data_with(levels_given: list[int], rng) -> TrialData:
    doses = [LEVELS[k] for k in levels_given for _ in range(3)]
    return TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": doses,
                "dlt": rng.integers(0, 2, len(doses)),
                "efficacy": rng.integers(0, 3, len(doses)),
            }
        )
    )


def _no_skipping(steps: list[int]) -> list[int]:
    """A realistic path: each cohort at most one level above the highest so far."""
    path: list[int] = []
    for step in steps:
        path.append(min(step, max(path, default=-1) + 1))
    return path


escalations = st.lists(st.integers(0, 4), min_size=1, max_size=8).map(_no_skipping)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=escalations,
    centre_tox=st.floats(-2.5, 1.0),
    slope_tox=st.floats(0.0, 2.0),
    centre_eff=st.floats(-2.0, 1.5),
    curvature=st.floats(-1.5, 1.0),
    seed=st.integers(0, 2**16),
)
def test_rule_never_picks_an_excluded_or_skipped_dose(
    path, centre_tox, slope_tox, centre_eff, curvature, seed
):
    rng = np.random.default_rng(seed)
    rule = rule_of(futility_cutoff=0.05)
    rates = rates_from(rng, centre_tox, slope_tox, centre_eff, curvature)
    data = data_with(path, rng)
    summary = rule.summaries(rates)
    decision = rule.choose(rates, data)
    if decision.stopped:
        assert decision.stop_reason.startswith(("safety", "futility"))
        if decision.stop_reason.startswith("safety"):
            assert summary["excluded"][0]
        return
    level = LEVELS.index(decision.next_dose)
    assert not summary["excluded"][level]
    assert level <= max(path) + 1
    allowed = [k for k in range(len(LEVELS)) if not summary["excluded"][k] and k <= max(path) + 1]
    # ... and it is the admissible dose with the largest posterior probability of the target.
    assert summary["p_target"][level] == max(summary["p_target"][k] for k in allowed)
    assert decision.quantities[f"p_target_{level}"] == summary["p_target"][level]

    final = rule.select(rates, data)
    members = [k for k in range(len(LEVELS)) if final.quantities[f"in_range_{k}"]]
    for k in members:
        assert k in path and not summary["excluded"][k]
        assert summary["p_target"][k] >= rule.range_probability
    if final.stopped:
        assert not members
    else:
        assert LEVELS.index(final.next_dose) in members
        assert final.quantities["range_lowest_dose"] == LEVELS[min(members)]
        assert final.quantities["range_highest_dose"] == LEVELS[max(members)]


def test_lowest_dose_overdosed_stops_for_safety():
    rng = np.random.default_rng(1)
    rates = rates_from(rng, centre_tox=1.5, slope_tox=0.5, centre_eff=0.5, curvature=0.0)
    decision = rule_of().choose(rates, data_with([0], rng))
    assert decision.stopped and decision.stop_reason.startswith("safety: the lowest dose 10")


def test_futility_stop_needs_enough_patients():
    rng = np.random.default_rng(2)
    rates = rates_from(rng, centre_tox=-1.0, slope_tox=0.5, centre_eff=-3.0, curvature=0.0)
    rule = rule_of(futility_cutoff=0.1, futility_min_patients=6)
    assert not rule.choose(rates, data_with([0], rng)).stopped
    decision = rule.choose(rates, data_with([0, 1], rng))
    assert decision.stopped and decision.stop_reason.startswith("futility")


def test_no_skipping_is_recorded():
    rng = np.random.default_rng(3)
    # P(toxicity in the interval) grows with dose and efficacy is good everywhere, so the
    # unconstrained choice is the top dose; after the lowest dose only the next one is allowed.
    share = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    p_tox = np.where(np.linspace(0, 1, 400)[:, None] < share, 0.25, 0.05)
    rates = posterior_of(p_tox, np.full((400, 5), 0.5))
    decision = rule_of().choose(rates, data_with([0], rng))
    assert decision.next_dose == LEVELS[1] and decision.bound_by == ("no_skipping",)
    assert decision.quantities["p_target_4"] > decision.quantities["p_target_1"]


def test_design_refuses_a_fit_that_failed_convergence(monkeypatch):
    """The conduct (not the rule) refuses a fit that failed its checks, in next and decide."""
    failed = ConvergenceReport(table=pd.DataFrame(), divergences=0, failures=("p_tox: R-hat 1.2",))
    rates = rates_from(np.random.default_rng(4), -1.0, 1.0, 0.0, 0.0)
    rates = posterior_of(rates.rate("p_tox"), rates.rate("p_response"), failed)
    data = data_with([0], np.random.default_rng(4))
    design = optimus_design(MODEL)
    monkeypatch.setattr(Design, "posterior", lambda self, data, final=False: rates)
    with pytest.raises(ConvergenceError, match=r"R-hat 1\.2"):
        design.next(data)
    monkeypatch.setattr(JointProbit, "check_fit", lambda self, idata, data: None)
    monkeypatch.setattr(JointProbit, "posterior_from_idata", lambda self, *a, **k: rates)
    with pytest.raises(ConvergenceError, match=r"R-hat 1\.2"):
        design.decide(None, data)


@pytest.fixture(scope="module")
def fitted():
    data = TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": np.repeat(LEVELS[:3], 3),
                "dlt": [0, 0, 0, 0, 0, 1, 0, 1, 0],
                "efficacy": [0, 0, 1, 0, 1, 1, 1, 2, 1],
            }
        )
    )
    model = JointProbit(LEVELS)
    return model, data, model.fit(data, engine="kernel", draws=1000, tune=500, random_seed=8)


def test_decide_reads_a_fit_and_agrees_with_the_model_deterministic(fitted):
    model, data, idata = fitted
    decision = optimus_design(model).decide(idata, data)
    target = idata["posterior"]["target_met"].mean(("chain", "draw")).to_numpy()
    for k in range(len(LEVELS)):
        assert decision.quantities[f"p_target_{k}"] == pytest.approx(target[k], abs=1e-12)
    assert set(decision.diagnostics.index) == {"p_tox", "p_response"}
    assert decision.next_dose in LEVELS[:4]


def test_design_conducts_a_trial(fitted):
    model, data, _ = fitted
    design = optimus_design(model, sample_size=12, draws=400, tune=200)
    empty = TrialData.empty(outcomes=("dlt", "efficacy"))
    assert design.next(empty).next_dose == LEVELS[0]
    assert design.recommend(empty).stop_reason == "no OBD: no patients"  # and no fit
    first, again = design.next(data), design.next(data)
    # A deterministic function of the data.
    assert (first.next_dose, first.quantities) == (again.next_dose, again.quantities)
    assert first.quantities["refits"] in (0.0, 1.0)
    full = data.with_cohort(LEVELS[2], dlt=[0, 0, 1], efficacy=[1, 1, 0])
    assert design.next(full).stop_reason == "sample size reached: 12 of 12"
    described = design.describe()
    assert described["name"] == "Optimus" and described["rule_overdose_limit"] == 0.4
    scenario = standard_efftox_scenarios(planned_sample_size=6)["bell"]
    record = run_trial(
        optimus_design(model, sample_size=6, draws=300, tune=100),
        scenario,
        np.random.default_rng(1),
    )
    assert record["n_patients"] == 6
    assert record["decision_kind"][-1] == "recommend"
    assert "range_size" in record["metrics"]


def test_design_refits_then_refuses():
    model = JointProbit(LEVELS)
    impossible = ConvergenceCriteria(min_ess_bulk=10**9)
    design = optimus_design(model, convergence=impossible, draws=50, tune=20)
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [10.0] * 3, "dlt": [0, 0, 0], "efficacy": [0, 1, 0]})
    )
    assert design.posterior(data).refits == 1
    with pytest.raises(ConvergenceError, match="bulk ESS"):
        design.next(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tox_interval": (0.3, 0.2)}, "low < high"),
        ({"overdose_cutoff": 1.0}, "overdose_cutoff"),
        ({"futility_cutoff": 0.0}, "futility_cutoff"),
        ({"futility_min_patients": 0}, "futility_min_patients"),
        ({"convergence": "strict"}, "ConvergenceCriteria"),
    ],
)
def test_bad_rule_options_name_the_field(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        optimus_design(MODEL, **kwargs)


def test_bad_design_options_name_the_field():
    model = JointProbit(LEVELS)
    with pytest.raises(ValueError, match="start_dose 15"):
        optimus_design(model, start_dose=15.0)
    # The rule has no dose levels of its own: a rule made for other levels takes the model's.
    other = optimus_design(JointProbit((10.0, 20.0))).rule
    assert Design(model, other).rule.dose_levels == model.dose_levels
    with pytest.raises(ValueError, match="cohort_size 4 exceeds"):
        optimus_design(model, cohort_size=4, sample_size=3)
    with pytest.raises(ValueError, match="engine must be"):
        optimus_design(model, engine="grid")


def test_design_refuses_data_off_the_levels_or_without_efficacy():
    design = optimus_design(JointProbit(LEVELS))
    off = TrialData.from_dataframe(
        pd.DataFrame({"dose": [15.0] * 3, "dlt": [0, 0, 0], "efficacy": [0, 1, 0]})
    )
    with pytest.raises(
        DataError, match=r"OptimusRule: .* dose 15\.0 is not one of the dose levels"
    ):
        design.next(off)
    no_eff = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0], "dlt": [0]}))
    with pytest.raises(DataError, match="needs column 'efficacy'"):
        design.next(no_eff)


def test_safety_stop_needs_three_patients_at_the_lowest_dose():
    # Like the CRM's, BOIN's and the two-stage GP's safety stops, Lin's rule stops the trial
    # only once the lowest dose has safety_min_patients (3) patients: with one patient there it
    # stays at the lowest dose, even when the posterior already excludes it.
    rng = np.random.default_rng(1)
    rates = rates_from(rng, centre_tox=1.5, slope_tox=0.5, centre_eff=0.5, curvature=0.0)
    one = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0], "dlt": [1], "efficacy": [0]}))
    rule = rule_of()
    assert rule.summaries(rates)["excluded"][0]
    decision = rule.choose(rates, one)
    assert not decision.stopped and decision.next_dose == LEVELS[0]
    assert "safety_min_patients" in decision.bound_by
    assert rule_of(safety_min_patients=1).choose(rates, one).stopped
    three = data_with([0], rng)
    assert rule.choose(rates, three).stop_reason.startswith("safety: the lowest dose 10")


def test_cutoff_variants_run_together_share_the_posteriors_and_keep_their_results(monkeypatch):
    scenario = optimus_scenarios(planned_sample_size=12)["monotone"]
    model = JointProbit(LEVELS)
    options = {"sample_size": 12, "draws": 700, "tune": 50, "on_refusal": "stop", "random_seed": 3}
    designs = {
        f"od{cutoff}": optimus_design(model, overdose_cutoff=cutoff, **options)
        for cutoff in (0.2, 0.35)
    }
    designs["boin12"] = boin12_design(0.33, LEVELS, efficacy_limit=0.2, sample_size=12)
    fits = []
    sample = JointProbit.sample_imh
    monkeypatch.setattr(
        JointProbit, "sample_imh", lambda self, *a, **k: fits.append(1) or sample(self, *a, **k)
    )
    together = simulate_designs(designs, scenario, 4, random_seed=5, progress=False)
    shared = len(fits)
    for name, design in designs.items():
        model._cache.clear()
        alone = simulate(design, scenario, 4, random_seed=5, progress=False)
        xr.testing.assert_identical(together[name], alone)
    # Both variants start at the same dose on the same patients: their first fits coincide.
    assert 0 < shared < len(fits) - shared


def test_the_rule_refuses_targets_other_than_its_models():
    # The model's target_met deterministic and the rule's decisions must speak of one target.
    model = JointProbit((10.0, 20.0, 40.0), tox_interval=(0.05, 0.10))
    with pytest.raises(ValueError, match=r"tox_interval \(0.16, 0.33\) differs from the model's"):
        optimus_design(model)
    assert optimus_design(model, tox_interval=(0.05, 0.10)).rule.tox_interval == (0.05, 0.10)
    other = JointProbit((10.0, 20.0, 40.0), efficacy_threshold=0.3)
    with pytest.raises(ValueError, match=r"efficacy_threshold 0\.2 differs"):
        optimus_design(other)
