"""The hard overdose limit: no decision gives a dose whose P(overdose) exceeds the limit.

``Conduct.max_overdose_probability`` (0.5 by default) is enforced by ``Design`` for every rule
that reports :meth:`~dosezoo.designs.base.Rule.overdose_probability`: whatever the rule's
options asked for (monotone, no skipping, coherence, rounding), the design de-escalates to the
highest dose within the limit, or stops with the reason "overdose limit".
"""

import json
import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData
from dosezoo.designs import Design, crm_design, ewoc_design
from dosezoo.designs.base import Conduct, closest_levels, mtd_level_below
from dosezoo.designs.registry import FAMILIES
from dosezoo.errors import ConvergenceError
from dosezoo.models import CRM, EWOC
from dosezoo.report import html_report, selections_over_overdose_limit
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate
from dosezoo.studies import o6bg_arms

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
O6BG = EXAMPLES / "o6bg_accelerated.toml"


def _example(name: str) -> Design:
    path = EXAMPLES / FAMILIES[name].example
    return design_from_config(read_config(path), str(path))


def _o6bg_after_a_toxic_cohort() -> TrialData:
    frame = pd.read_csv(EXAMPLES / "o6bg_first_cohorts.csv")
    toxic = pd.DataFrame({"dose": [80.0] * 3, "cohort": [3] * 3, "y": [58.0, 60.0, 57.0]})
    return TrialData.from_dataframe(pd.concat([frame, toxic], ignore_index=True))


def test_the_monotone_3pnd_example_de_escalates_after_a_toxic_cohort():
    # The rule alone (monotone) keeps 80, where P(MTD < 80) is about 0.8; the design may not,
    # even without the example's stopping rule (which stops this trial).
    shipped = design_from_config(read_config(O6BG), str(O6BG))
    design = Design(shipped.model, shipped.rule, replace(shipped.conduct, stopping=()))
    data = _o6bg_after_a_toxic_cohort()
    alone = design.rule.choose(design.posterior(data), data)
    assert alone.next_dose == 80.0 and alone.quantities["p_overdose"] > 0.5
    decision = design.next(data)
    assert decision.next_dose == 60.0 and "overdose_limit" in decision.bound_by
    assert decision.quantities["overdose_probability"] <= 0.5
    # the rule's p_overdose speaks of its own dose, which the record names
    assert decision.quantities["rule_dose"] == 80.0
    assert decision.quantities["p_overdose"] == alone.quantities["p_overdose"]
    assert design.conduct.max_overdose_probability == 0.5


def test_the_3pnd_example_ships_with_its_stopping_rule():
    design = design_from_config(read_config(O6BG), str(O6BG))
    assert design.conduct.stopping, "the example has no stopping rule"
    data = _o6bg_after_a_toxic_cohort()
    assert design.conduct.stopping[0].reason(data).startswith("toxicity: 3 patients")


def test_no_dose_within_the_limit_stops_the_trial_once_three_patients_had_the_lowest():
    # The CRM after two DLTs in two patients at the lowest dose: P(MTD below it), that is
    # P(p_1 > 2 * target), exceeds 0.5, but (as the rules' own safety stops) the trial goes on
    # at the lowest dose until 3 had it.
    example = _example("crm")  # without its own safety stop, which would stop first
    design = crm_design(example.model, safety_cutoff=None, **example.conduct.__dict__)
    one = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 2, "dlt": [1, 1]}))
    decision = design.next(one)
    assert decision.next_dose == 10.0 and "overdose_min_patients" in decision.bound_by
    assert decision.quantities["overdose_probability"] > 0.5
    three = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 3, "dlt": [1, 1, 1]}))
    decision = design.next(three)
    assert decision.stopped and decision.stop_reason.startswith("overdose limit: P(overdose) > 0.5")
    assert decision.quantities["overdose_probability"] > 0.5
    off = Design(design.model, design.rule, replace(design.conduct, max_overdose_probability=1.0))
    assert off.next(three).next_dose == 10.0
    never = replace(design.conduct, overdose_min_patients=0)
    assert Design(design.model, design.rule, never).next(one).stopped


def test_a_trial_the_limit_stopped_recommends_no_dose():
    # Stopped because even the lowest dose more likely than not overdoses, the trial ends
    # without an MTD (the rule alone would select the lowest level).
    example = _example("crm")
    design = crm_design(example.model, safety_cutoff=None, **example.conduct.__dict__)
    three = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 3, "dlt": [1, 1, 1]}))
    assert design.next(three).stop_reason.startswith("overdose limit")
    assert design.rule.select(design.posterior(three, final=True), three).next_dose == 10.0
    final = design.recommend(three)
    assert final.next_dose is None
    assert final.stop_reason.startswith("no MTD: overdose limit: P(overdose) > 0.5 at the lowest")
    assert final.quantities["overdose_probability"] > 0.5
    # Before three patients had the lowest dose the limit neither stops nor withholds the MTD.
    two = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 2, "dlt": [1, 1]}))
    assert design.recommend(two).next_dose == 10.0
    off = Design(design.model, design.rule, replace(design.conduct, max_overdose_probability=1.0))
    assert off.recommend(three).next_dose == 10.0


def test_simulated_trials_the_limit_stopped_select_no_dose():
    # Every trial of a scenario toxic at every level stops by the limit; each ends without an
    # MTD, in the lockstep engine as in design.recommend.
    levels = (10.0, 20.0, 40.0, 80.0, 160.0)
    design = ewoc_design(EWOC(0.25, 0.0, 200.0, dose_levels=levels), sample_size=12)
    toxic = BinaryToxicityScenario(levels, (0.6, 0.7, 0.8, 0.9, 0.95), 0.25, planned_sample_size=12)
    results = simulate(design, toxic, 40, random_seed=3, progress=False)
    limited = np.char.startswith(results["stop_reason"].values.astype(str), "overdose limit")
    assert limited.sum() >= 20
    assert np.isnan(results["recommended_dose"].values[limited]).all()
    assert (results["no_selection"].values[limited] == 1.0).all()
    # Their P(overdose) > 0.5 at the lowest level is recorded, but they selected no dose.
    final = results["decision_kind"].values == "recommend"
    assert (results["decision_overdose_probability"].values[final][limited] > 0.5).all()
    assert not selections_over_overdose_limit(results).any()


def test_the_recommendation_records_its_overdose_probability_and_may_be_held_to_the_limit():
    # Lee (2023)'s nearest rounding selects 80 after the toxic cohort, with P(MTD < 80) about
    # 0.8: by default the selection stands and says so; held to the limit it moves to 60.
    shipped = design_from_config(read_config(O6BG), str(O6BG))
    data = _o6bg_after_a_toxic_cohort()
    design = Design(shipped.model, shipped.rule, replace(shipped.conduct, stopping=()))
    rule_selection = design.rule.select(design.posterior(data, final=True), data)
    selection = design.recommend(data)
    assert selection.next_dose == rule_selection.next_dose == 80.0
    assert selection.quantities["overdose_probability"] > 0.5
    assert "conduct_select_within_overdose_limit" not in design.describe()
    held = Design(
        shipped.model,
        shipped.rule,
        replace(shipped.conduct, stopping=(), select_within_overdose_limit=True),
    )
    selection = held.recommend(data)
    assert selection.next_dose == 60.0 and "overdose_limit" in selection.bound_by
    assert selection.quantities["overdose_probability"] <= 0.5
    assert selection.quantities["rule_dose"] == 80.0
    assert held.describe()["conduct_select_within_overdose_limit"] is True


def test_a_held_recommendation_with_no_dose_within_the_limit_is_no_mtd():
    example = _example("crm")
    options = example.conduct.__dict__ | {"select_within_overdose_limit": True}
    design = crm_design(example.model, safety_cutoff=None, **options)
    three = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 3, "dlt": [1, 1, 1]}))
    final = design.recommend(three)
    assert final.next_dose is None
    assert final.stop_reason.startswith("no MTD: overdose limit: P(overdose) > 0.5")
    # As a next dose: before three patients had the lowest level, the lowest level.
    two = TrialData.from_dataframe(pd.DataFrame({"dose": [10.0] * 2, "dlt": [1, 1]}))
    final = design.recommend(two)
    assert final.next_dose == 10.0 and "overdose_min_patients" in final.bound_by


@pytest.mark.parametrize("value", [1, "yes", None])
def test_holding_the_recommendation_is_true_or_false(value):
    with pytest.raises(ValueError, match="select_within_overdose_limit must be True or False"):
        Conduct(select_within_overdose_limit=value)


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, "0.5"])
def test_the_limit_is_a_probability(value):
    with pytest.raises(ValueError, match="max_overdose_probability"):
        Conduct(max_overdose_probability=value)


#: Every registered family whose rule reports a probability of overdosing (a model-based rule
#: on single-agent doses); the combination and Weibull D-optimal designs report none.
LIMITED = ("3pnd", "blrm", "bo", "crm", "ewoc", "joint-probit", "lse")
NOT_LIMITED = frozenset({"combination-bo", "weibull-d-optimal"})


def test_every_model_family_with_single_doses_is_limited():
    for name in LIMITED:
        design = _example(name)
        data = _data_for(design, name, [0, 0, 0], [1, 0, 0], np.random.default_rng(0))
        p = design.rule.overdose_probability(design.posterior(data), design.start_dose)
        assert 0 <= p <= 1, name
    # The others: count rules (BOIN, 3+3: no posterior; BOIN's own elimination rule), the
    # combination design (a dose per stratum) and the Weibull designs (no toxicity model).
    for name in sorted(set(FAMILIES) - set(LIMITED)):
        design = _example(name)
        assert design.model is None or FAMILIES[name].counts_only or name in NOT_LIMITED, name


def _data_for(design: Design, name: str, levels, outcomes, rng) -> TrialData:
    """Patients at the design's levels (index per patient) with toxic outcomes as given.

    In cohorts of the design's size, in order (some rules read them).
    """
    doses = np.asarray(design.dose_levels, float)[np.asarray(levels)]
    tox = np.asarray(outcomes, int)
    columns = {"dose": doses, "cohort": np.arange(doses.size) // design.cohort_size + 1}
    if name == "3pnd":
        eta = design.model.eta
        columns["y"] = np.where(
            tox == 1, eta + rng.uniform(1, 10, tox.size), rng.uniform(5, 50, tox.size)
        )
    elif name == "joint-probit":
        columns |= {"dlt": tox, "efficacy": rng.integers(0, 3, tox.size)}
    else:
        columns["dlt"] = tox
    return TrialData.from_dataframe(pd.DataFrame(columns))


@pytest.mark.parametrize("name", (*LIMITED, "boin", "3+3"))
def test_every_example_stops_without_an_mtd_after_three_toxicities_at_the_lowest_dose(name):
    # The shipped configurations, as a statistician would run them: three patients at the
    # lowest dose, all with a toxicity, end the trial, whatever stops it (the rule's own
    # safety stop, the conduct's stopping rule or the overdose limit), and no dose is the MTD.
    design = _example(name)
    trial = _data_for(design, name, [0, 0, 0], [1, 1, 1], np.random.default_rng(0))
    assert design.next(trial).stopped, name
    assert design.recommend(trial).next_dose is None, name


def _random_trial(design: Design, name: str, data) -> TrialData:
    k = len(design.dose_levels)
    n = data.draw(st.integers(1, 9), label="patients")
    levels = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n), label="levels")
    outcomes = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n), label="toxic")
    return _data_for(design, name, sorted(levels), outcomes, np.random.default_rng(n))


def _assert_within_the_limit(design: Design, trial: TrialData, *, final: bool) -> None:
    """The next dose (``final``: the recommendation) is within the limit, or the lowest level."""
    try:
        decision = design.recommend(trial) if final else design.next(trial)
    except ConvergenceError:
        return  # the design refuses to act on a fit that failed its checks: no dose assigned
    if decision.stopped or not design.rule.needs_posterior(trial, final=final):
        return  # a stop, or a decision that reads no posterior (the two-stage GP's stage 1)
    dose = float(decision.next_dose)
    # The decision's own fit: one too close to the limit for its Monte Carlo error is refitted.
    attempt = int(decision.quantities.get("refits", 0))
    posterior = design.posterior(trial, final=final, attempt=attempt)
    p = design.rule.overdose_probability(posterior, dose)
    lowest = design.dose_levels[0] if design.dose_levels else None
    if dose == lowest and np.sum(trial.dose == lowest) < design.conduct.overdose_min_patients:
        # The one dose the limit lets through: the lowest, before 3 patients had it.
        assert "overdose_min_patients" in decision.bound_by or p <= 0.5, (decision, p)
    else:
        assert p <= design.conduct.max_overdose_probability, (decision, p)
    assert decision.quantities["overdose_probability"] == pytest.approx(p)


@pytest.mark.parametrize("name", LIMITED)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_assigned_dose_has_p_overdose_above_the_limit(name, data):
    design = _example(name)
    _assert_within_the_limit(design, _random_trial(design, name, data), final=False)


@pytest.mark.parametrize("name", LIMITED)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_held_recommendation_has_p_overdose_above_the_limit(name, data):
    example = _example(name)
    held = replace(example.conduct, select_within_overdose_limit=True)
    design = Design(example.model, example.rule, held)
    _assert_within_the_limit(design, _random_trial(design, name, data), final=True)


def test_results_and_reports_count_the_recommendations_over_the_limit(tmp_path):
    # Lee (2023)'s increasing feasibility bound recommends, in most trials of the O6-BG
    # re-design, a level whose P(MTD < level) exceeds 0.5; held to the limit, none does.
    design, scenario = o6bg_arms()["3PND increasing alpha, accelerated"]
    path = tmp_path / "over.nc"
    results = simulate(design, scenario, 12, random_seed=2023, progress=False, path=path)
    over = selections_over_overdose_limit(results)
    final = results["decision_kind"].values == "recommend"
    assert final.sum(axis=1).tolist() == [1] * 12
    probability = results["decision_overdose_probability"].values[final]
    assert over.tolist() == (probability > 0.5).tolist() and over.any()
    assert "dose selected with P(overdose) &gt; the overdose limit" in html_report([("x", results)])
    # the printed report and its JSON too: the README says reports count them
    report = ["report", str(path), "--figure", str(tmp_path / "over.png")]
    share = over.mean()
    printed = CliRunner().invoke(app, report).output
    assert f"P(overdose) > the overdose limit 0.5: {share:.3f} (MCSE " in printed
    record = json.loads(CliRunner().invoke(app, [*report, "--json"]).output)
    assert record["selected_over_overdose_limit"]["fraction"] == pytest.approx(share)
    conduct = replace(design.conduct, select_within_overdose_limit=True)
    held = simulate(
        Design(design.model, design.rule, conduct), scenario, 12, random_seed=2023, progress=False
    )
    assert not selections_over_overdose_limit(held).any()
    # The same patients and doses: only the recommendations over the limit move, downwards.
    assert held["dose"].equals(results["dose"])
    before, after = results["recommended_dose"].values, held["recommended_dose"].values
    assert (after[over] < before[over]).all() and (after[~over] == before[~over]).all()


def test_draws_with_vanishing_rates_do_not_put_the_mtd_below_every_dose():
    # Under a vague prior, after 12 patients without a DLT, most draws of the CRM's rates are
    # below 1e-17: |p - target| was the target itself, every level tied with the placebo,
    # and P(MTD < dose) from the draws was 0.57 at every dose (decide stopped the trial).
    levels = [10.0, 20.0, 30.0, 40.0]
    model = CRM([0.1, 0.2, 0.3, 0.45], 0.3, model="logistic", prior_sd=4.0, dose_levels=levels)
    doses = [dose for dose in levels for _ in range(3)]
    data = TrialData.from_dataframe(pd.DataFrame({"dose": doses, "dlt": [0] * 12}))
    exact = model.posterior(data)
    idata = model.fit(data, engine="grid", draws=2000, chains=2, random_seed=1)
    sampled = model.posterior_from_idata(idata)
    assert np.mean(np.all(0.3 - sampled.rate("p_dlt") == 0.3, axis=1)) > 0.5
    for dose in levels:
        from_draws = mtd_level_below(sampled, dose, 0.3)
        assert from_draws == pytest.approx(mtd_level_below(exact, dose, 0.3), abs=0.003)
    design = crm_design(model, sample_size=36, estimate="mean")
    assert design.decide(idata, data).next_dose == design.next(data).next_dose == 40.0


@settings(max_examples=200, deadline=None)
@given(
    rates=st.lists(
        st.one_of(st.floats(0, 1e-15), st.floats(0, 1)), min_size=1, max_size=6, unique=True
    ),
    target=st.floats(0.05, 0.5),
)
def test_the_closest_level_is_the_exact_nearest(rates, target):
    # Increasing rates (a CRM's, a BLRM's) compared in exact arithmetic, a placebo of rate 0
    # below the lowest level.
    ordered = sorted(rates)
    exact = [abs(Fraction(0) - Fraction(target))]
    exact += [abs(Fraction(rate) - Fraction(target)) for rate in ordered]
    nearest = min(exact)
    if exact.count(nearest) > 1:
        return  # an exact tie: no level is the nearest
    expected = exact.index(nearest) - 1
    assert closest_levels(np.array([ordered]), target).tolist() == [expected]


def _closest_level_by_the_stated_rule(row: list[float], target: float) -> int:
    # closest_levels' Notes, rule by rule: the largest rate at or below the target (highest
    # level among equal ones; the placebo -1, rate 0, when none is finite) against the
    # smallest above it (lowest level among equal ones; none when a rate is NaN or the
    # smallest is +inf); the closer, the lower on a tie.
    below = [(rate, k) for k, rate in enumerate(row) if rate <= target and rate > -math.inf]
    below_rate, below_level = max(below) if below else (0.0, -1)
    if any(math.isnan(rate) for rate in row):
        return below_level
    above = [(rate, k) for k, rate in enumerate(row) if rate > target]
    if not above or min(above)[0] == math.inf:
        return below_level
    above_rate, above_level = min(above)
    gap_below, gap_above = target - below_rate, above_rate - target
    if gap_above < gap_below or (gap_above == gap_below and above_level < below_level):
        return above_level
    return below_level


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 4).flatmap(
        lambda k: st.lists(
            st.lists(
                st.sampled_from([0.0, 1e-300, 0.1, 0.2, 0.25, 0.3, 0.4, 1.0, math.inf])
                | st.sampled_from([-math.inf, math.nan])
                | st.floats(0, 1),
                min_size=k,
                max_size=k,
            ),
            min_size=1,
            max_size=8,
        )
    ),
    target=st.sampled_from([0.0, 0.2, 0.25, 0.3, 1.0]) | st.floats(0.01, 0.99),
)
# Exact ties in floating point (0.25 - 0.2 == 0.3 - 0.25; 0.4 - 0.2 == 0.2 - 0), where the
# lower of the two is taken: an above-target level listed first, and the placebo.
@example(rows=[[0.3, 0.2]], target=0.25)
@example(rows=[[0.4]], target=0.2)
def test_the_closest_level_follows_its_rule_on_any_rates(rows, target):
    # Rates in any order, with ties, zeros, ones and non-finite values (a sampled posterior's
    # draws): the compiled kernel row by row against the rule as its docstring states it.
    expected = [_closest_level_by_the_stated_rule(row, target) for row in rows]
    assert closest_levels(np.array(rows), target).tolist() == expected
