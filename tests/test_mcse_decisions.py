"""Decisions within Monte Carlo error of a threshold: more draws, else the cautious side.

``Conduct.mcse_margin``: a comparison of a posterior probability with its cutoff (here the
overdose control of BLRM and of the Optimus design, BOIN's elimination read from a fit, the
CRM's safety stop, EWOC's feasibility bound at a level, the hard overdose limit on every rule's
overdose probability) that lies within that many MCSEs of it is made again on a refit with more
draws, and, still that close, on its cautious side. The fits are draws made up to sit at a
threshold.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dosezoo.config import read_config
from dosezoo.data import TrialData
from dosezoo.designs import design_from_config
from dosezoo.designs.base import Conduct, Design
from dosezoo.designs.blrm import BLRMRule
from dosezoo.designs.boin import boin_design
from dosezoo.designs.crm import CRMRule
from dosezoo.designs.ewoc import EWOCRule
from dosezoo.designs.lse import bo_design
from dosezoo.designs.optimus import OptimusRule
from dosezoo.diagnostics import ConvergenceReport
from dosezoo.models import BLRM, CRM, EWOC, JointProbit
from dosezoo.posterior import DosePosterior, SampledDistribution

ROOT = Path(__file__).resolve().parents[1]
LEVELS = [10.0, 20.0, 40.0, 80.0, 160.0]
MODEL = BLRM(LEVELS, 40)
# The audit's trial: exactly, P(p >= 0.33 at dose 10) = 0.2511, just inadmissible: a stop.
DOSES = [10.0] * 6 + [20.0] * 6 + [40.0] * 3
DLTS = [1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0]
DATA = TrialData({"dose": DOSES, "dlt": DLTS, "cohort": [1 + i // 3 for i in range(len(DOSES))]})


def _draws(fraction_excessive: float, draws: int, seed: int = 0) -> DosePosterior:
    """Independent draws (2 chains) whose lowest level is excessive in ``fraction_excessive``.

    The lowest level is 0.5 (excessive) or 0.1 (underdosing: BLRM's stopping rule for a
    target probability of 0.5 stays out of the way); every other level is excessive in every
    draw (inadmissible, so the lowest level alone decides).
    """
    rng = np.random.default_rng(seed)
    excessive = rng.permutation(np.arange(draws) < round(fraction_excessive * draws))
    rates = np.full((draws, len(LEVELS)), 0.9)
    rates[:, 0] = np.where(excessive, 0.5, 0.1)
    return DosePosterior(tuple(LEVELS), {"p_dlt": rates}, chains=2)


def _design(monkeypatch, posteriors: dict[int, DosePosterior], **conduct) -> tuple[Design, list]:
    """A BLRM design on an MCMC engine whose fits (by attempt) are ``posteriors``."""
    asked: list[int] = []

    def posterior(self, data, *, final=False, attempt=0):
        asked.append(attempt)
        return replace(posteriors[attempt], refits=attempt)

    monkeypatch.setattr(Design, "posterior", posterior)
    return Design(MODEL, BLRMRule(), Conduct(engine="nuts", **conduct)), asked


def test_a_decision_near_its_threshold_refits_one_far_from_it_does_not(monkeypatch):
    # 0.245 of 4000 draws (MCSE 0.0068): 0.74 MCSE below the cutoff 0.25, so the estimate
    # admits dose 10; the refit's 16000 draws put it at 0.20, 7 MCSEs below: admitted.
    near = {0: _draws(0.245, 4000), 1: _draws(0.20, 16000, seed=1)}
    design, asked = _design(monkeypatch, near, refits=2)
    decision = design.next(DATA)
    assert decision.next_dose == 10.0
    assert asked == [0, 1]
    assert decision.quantities["refits"] == 1.0
    assert "mcse" not in decision.bound_by and "mcse_margin" not in decision.quantities
    # Far from the cutoff (0.10: 12 MCSEs below), the first fit decides: no refit.
    design, asked = _design(monkeypatch, {0: _draws(0.10, 4000)}, refits=2)
    decision = design.next(DATA)
    assert (decision.next_dose, asked, decision.quantities["refits"]) == (10.0, [0], 0.0)
    assert "mcse" not in decision.bound_by


def test_a_decision_still_near_its_threshold_takes_the_cautious_side(monkeypatch):
    # Every refit as close (0.745 MCSE at 4000 draws, 1.5 at 16000): dose 10 is not given.
    near = {0: _draws(0.245, 4000), 1: _draws(0.245, 16000, seed=1)}
    design, asked = _design(monkeypatch, near, refits=1)
    decision = design.next(DATA)
    assert asked == [0, 1]
    assert decision.next_dose is None
    assert decision.stop_reason.startswith("no admissible dose")
    assert decision.stop_reason.endswith(">= 0.25 or within 2 MCSEs of it")
    assert decision.bound_by == ("mcse",)
    assert decision.quantities["mcse_margin"] == pytest.approx(
        0.005 / np.sqrt(0.245 * 0.755 / 16000), rel=0.1
    )
    # Without refits, the first fit's decision is the cautious one; with no margin, the
    # estimate decides, as before.
    design, asked = _design(monkeypatch, near)
    assert (design.next(DATA).next_dose, asked) == (None, [0])
    design, _ = _design(monkeypatch, near, mcse_margin=0.0)
    assert design.next(DATA).next_dose == 10.0


def test_a_refit_for_precision_that_fails_its_checks_leaves_the_cautious_side_of_the_good_fit(
    monkeypatch,
):
    """The first fit passed its checks; the refit asked for because it lay near the cutoff did
    not: that fit decides, on its cautious side, where the decision used to be refused (a
    stopped trial with ``on_refusal="stop"``)."""
    failed = ConvergenceReport(table=None, divergences=3, failures=("p_dlt: R-hat 1.2",))
    near = {0: _draws(0.245, 4000), 1: replace(_draws(0.20, 16000, seed=1), report=failed)}
    for on_refusal in ("raise", "stop"):
        design, asked = _design(monkeypatch, near, refits=1, on_refusal=on_refusal)
        decision = design.next(DATA)
        assert asked == [0, 1]
        assert decision.next_dose is None
        assert decision.stop_reason.startswith("no admissible dose")
        assert decision.bound_by == ("mcse",)
        assert decision.quantities["refits_refused"] == 1.0
        assert decision.quantities["refits"] == 0.0  # the fit that decided
    # A refit that passes its checks decides as before, and nothing was refused.
    design, _ = _design(monkeypatch, {**near, 1: _draws(0.20, 16000, seed=1)}, refits=1)
    decision = design.next(DATA)
    assert decision.next_dose == 10.0 and "refits_refused" not in decision.quantities


def test_the_audit_trial_stops_from_any_fit():
    # The audit's reproducer on draws from the grid (independent, MCSE about 0.01 at 2000 x 2):
    # the estimates fall on both sides of 0.25, the decisions all stop as the exact one does,
    # through the margin where the estimate alone admitted dose 10.
    design = Design(MODEL, BLRMRule(), Conduct())
    exact = design.next(DATA)
    assert exact.next_dose is None and exact.quantities["p_excessive_0"] == pytest.approx(
        0.2511, abs=5e-5
    )
    estimates = []
    for seed in (0, 2):
        idata = MODEL.fit(DATA, engine="grid", draws=2000, chains=2, random_seed=seed)
        decision = design.decide(idata, DATA)
        estimates.append(decision.quantities["p_excessive_0"])
        assert decision.next_dose is None, seed
        assert decision.quantities["mcse_margin"] < 2
        assert ("mcse" in decision.bound_by) == (estimates[-1] < 0.25)
        # Where the estimate is below the cutoff the reason says why it still stops.
        near = " or within 2 MCSEs of it" if estimates[-1] < 0.25 else ""
        assert decision.stop_reason == exact.stop_reason + near
    assert min(estimates) < 0.25 < max(estimates)


def test_exact_posteriors_decide_by_their_values_alone():
    # A posterior without Monte Carlo error never asks for an MCSE and records nothing: the
    # margin leaves the exact engines' decisions as they were.
    exact = MODEL.posterior(DATA).deciding(2.0)

    def never() -> np.ndarray:
        raise AssertionError("an exact posterior has no Monte Carlo error")

    assert exact.exceeds(["p"], [0.2511], 0.25, never, inclusive=True).tolist() == [True]
    assert exact.exceeds(["p"], [0.2499], 0.25, never, inclusive=True).tolist() == [False]
    assert exact.comparisons == ()
    for data in (DATA, TrialData({"dose": [10.0] * 3, "dlt": [0, 0, 1], "cohort": [1] * 3})):
        default = Design(MODEL, BLRMRule(), Conduct()).next(data)
        off = Design(MODEL, BLRMRule(), Conduct(mcse_margin=0.0)).next(data)
        assert default == off
        assert "mcse_margin" not in default.quantities


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "2"])
def test_the_margin_is_validated(value):
    with pytest.raises(ValueError, match="mcse_margin"):
        Conduct(mcse_margin=value)


def _mtd_draws(values_and_counts: list[tuple[float, int]]) -> DosePosterior:
    """An MTD posterior of 4000 draws (2 chains), ``count`` of them at each ``value``."""
    draws = np.concatenate([np.full(count, value) for value, count in values_and_counts])
    draws = np.random.default_rng(0).permutation(draws)
    return DosePosterior((), {}, chains=2, mtd=SampledDistribution(draws.reshape(2, -1)))


def test_ewoc_feasibility_and_the_overdose_limit_near_their_bounds(monkeypatch):
    model = EWOC(0.25, 0.0, 200.0, dose_levels=LEVELS)
    data = TrialData(
        {
            "dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 3,
            "dlt": [0] * 9,
            "cohort": [1] * 3 + [2] * 3 + [3] * 3,
        }
    )
    # P(MTD < 40) = 0.245, 0.75 MCSE under alpha = 0.25: the quantile's level 40 is not given.
    near_alpha = _mtd_draws([(30.0, 980), (60.0, 200), (100.0, 2820)])
    monkeypatch.setattr(Design, "posterior", lambda self, data, **_: near_alpha)
    design = Design(model, EWOCRule(), Conduct(engine="nuts"))
    assert (
        Design(model, EWOCRule(), Conduct(engine="nuts", mcse_margin=0.0)).next(data).next_dose
        == 40.0
    )
    decision = design.next(data)
    assert (decision.next_dose, decision.bound_by) == (20.0, ("mcse",))
    # The hard limit (0.3 here) at 40: P(MTD < 40) = 0.295, 0.7 MCSE under it: de-escalate.
    near_limit = _mtd_draws([(30.0, 1180), (60.0, 200), (100.0, 2620)])
    monkeypatch.setattr(Design, "posterior", lambda self, data, **_: near_limit)
    rule = EWOCRule(alpha=0.4, alpha_max=0.4)
    off = Design(model, rule, Conduct(engine="nuts", max_overdose_probability=0.3, mcse_margin=0.0))
    assert (off.next(data).next_dose, off.next(data).bound_by) == (40.0, ("overdose_limit",))
    decision = Design(model, rule, Conduct(engine="nuts", max_overdose_probability=0.3)).next(data)
    assert (decision.next_dose, decision.bound_by) == (20.0, ("overdose_limit", "mcse"))


def test_crm_safety_stop_near_its_cutoff(monkeypatch):
    model = CRM([0.05, 0.12, 0.25, 0.4, 0.55], 0.25, dose_levels=LEVELS)
    data = TrialData({"dose": [10.0] * 3, "dlt": [1, 1, 0], "cohort": [1] * 3})
    # P(p_1 > 0.25) = 0.945, 1.4 MCSE under the cutoff 0.95.
    too_toxic = np.random.default_rng(0).permutation(np.arange(4000) < 3780)
    rates = np.where(too_toxic[:, None], [0.4, 0.5, 0.6, 0.7, 0.8], [0.1, 0.2, 0.3, 0.4, 0.5])
    posterior = DosePosterior(
        tuple(LEVELS),
        {"p_dlt": rates},
        chains=2,
        parameter_mean={"beta": 0.0},
        point_estimates={"p_dlt": rates.mean(axis=0)},
    )
    monkeypatch.setattr(Design, "posterior", lambda self, data, **_: posterior)
    off = Design(model, CRMRule(), Conduct(engine="nuts", mcse_margin=0.0)).next(data)
    assert off.next_dose == 10.0
    decision = Design(model, CRMRule(), Conduct(engine="nuts")).next(data)
    assert decision.next_dose is None and decision.stop_reason.startswith("safety")
    assert decision.bound_by == ("mcse",)
    assert decision.quantities["mcse_margin"] == pytest.approx(
        0.005 / np.sqrt(0.945 * 0.055 / 4000), rel=0.1
    )


def test_optimus_overdose_control_near_its_cutoff(monkeypatch):
    # Lin (2023)'s overdose control excludes a dose with P(p_tox > 0.4) > 0.25. At the lowest
    # dose, with 3 patients there, 0.245 of 4000 draws is 0.74 MCSE under the cut-off: the
    # estimate admits it, the margin excludes it (a safety stop).
    model = JointProbit(LEVELS)
    data = TrialData(
        {"dose": [10.0] * 3, "dlt": [1, 0, 0], "efficacy": [0, 1, 0], "cohort": [1] * 3}
    )
    too_toxic = np.random.default_rng(0).permutation(np.arange(4000) < 980)
    p_tox = np.where(too_toxic[:, None], 0.5, 0.2) * np.ones(len(LEVELS))
    p_tox[:, 1:] = 0.9  # every higher level excluded in every draw
    posterior = DosePosterior(
        tuple(LEVELS), {"p_tox": p_tox, "p_response": np.full_like(p_tox, 0.5)}, chains=2
    )
    monkeypatch.setattr(Design, "posterior", lambda self, data, **_: posterior)
    off = Design(model, OptimusRule(), Conduct(engine="imh", mcse_margin=0.0)).next(data)
    assert off.next_dose == 10.0 and off.quantities["p_overdose_0"] == pytest.approx(0.245)
    decision = Design(model, OptimusRule(), Conduct(engine="imh")).next(data)
    assert decision.next_dose is None and decision.bound_by == ("mcse",)
    assert decision.stop_reason == (
        "safety: the lowest dose 10 is overdosed, P(p_tox > 0.4) = 0.245 within 2 MCSEs of "
        "0.25 with 3 patients there"
    )
    assert decision.quantities["mcse_margin"] == pytest.approx(
        0.005 / np.sqrt(0.245 * 0.755 / 4000), rel=0.1
    )


def test_boin_elimination_on_a_fit_near_its_cutoff():
    # BOIN read from a fit (decide): 3/3 DLTs at the lowest dose and P(p_1 > 0.3) estimated at
    # 0.945, 0.6 MCSE under the elimination cut-off 0.95: the estimate keeps the dose, the
    # margin eliminates it (the trial stops; the exact posterior stops it too).
    levels = [10.0, 20.0, 40.0]
    data = TrialData({"dose": [10.0] * 3, "dlt": [1, 1, 1], "cohort": [1] * 3})
    rng = np.random.default_rng(1)
    toxic = rng.random(1000) < 0.945
    first = np.where(toxic, rng.uniform(0.5, 0.7, 1000), rng.uniform(0.05, 0.15, 1000))
    rates = np.stack([first, rng.uniform(0.65, 0.75, 1000), rng.uniform(0.75, 0.85, 1000)], -1)
    fit = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {"p_dlt": (("chain", "draw", "dose"), rates.reshape(2, 500, 3))},
                coords={"dose": levels},
            )
        }
    )
    design = boin_design(0.3, levels)
    fit = design.model.stamp(fit, data)
    estimate_alone = boin_design(0.3, levels, mcse_margin=0.0).decide(fit, data)
    assert estimate_alone.next_dose == 10.0
    decision = design.decide(fit, data)
    assert decision.next_dose is None and decision.bound_by == ("mcse",)
    assert decision.stop_reason == (
        "lowest dose 10 eliminated: 3 DLTs in 3 patients, P(p > 0.3) > 0.95 or within 2 MCSEs of it"
    )
    assert design.next(data).stopped


def _independent_rates(rates: np.ndarray, fraction: float, draws: int = 4000) -> np.ndarray:
    """Draws of two rate vectors (2 chains' worth), the first in ``fraction`` of them."""
    first = np.random.default_rng(0).permutation(np.arange(draws) < round(fraction * draws))
    return np.where(first[:, None], rates[0], rates[1])


def test_the_gp_and_joint_probit_rules_give_the_mcse_of_their_overdose_probability():
    """The hard overdose limit reads these rules' own overdose probabilities (the MTD level
    below a dose; Lin's P(p_tox > overdose_limit)); their MCSE was 0, so the limit was
    decided by the estimate alone (the BO case below)."""
    levels = (1.0, 2.0, 3.0, 4.0, 5.0)
    # MTD (closest to 0.3) at level 1 in 49% of the draws, at level 3 otherwise: below 3.
    rates = _independent_rates(
        np.array([[0.1, 0.3, 0.6, 0.7, 0.8], [0.05, 0.1, 0.15, 0.3, 0.5]]), 0.49
    )
    gp = DosePosterior(levels, {"p_dlt": rates}, chains=2)
    rule = bo_design(0.3, levels).rule
    assert rule.overdose_probability(gp, 3.0) == pytest.approx(0.49)
    binomial = np.sqrt(0.49 * 0.51 / 4000)
    assert rule.overdose_mcse(gp, 3.0) == pytest.approx(binomial, rel=0.15)
    tox = _independent_rates(np.array([[0.5] * 5, [0.2] * 5]), 0.49)
    joint = DosePosterior(levels, {"p_tox": tox, "p_eff": np.full_like(tox, 0.5)}, chains=2)
    optimus = OptimusRule()
    assert optimus.overdose_probability(joint, 3.0) == pytest.approx(0.49)
    assert optimus.overdose_mcse(joint, 3.0) == pytest.approx(binomial, rel=0.15)


def test_a_bo_escalation_within_mcse_of_the_overdose_limit_is_made_on_more_draws():
    """Found by a metamorphic audit: the BO design (examples/bo.toml, seed 0) escalated to 3
    after a third DLT at dose 1, on P(MTD < 3) = 0.479 from 1000 draws, under the limit 0.5
    by less than its MCSE (seeds 1 and 2 put it at 0.546 and 0.523, and gave 2). Under the
    model's own prior: BOIN's extra-safe stop after 2 DLTs in 3 at dose 1 now puts the prior
    MTD at dose 1, where the escalation is not near the limit."""
    config = read_config(ROOT / "examples" / "bo.toml")
    config["rule"] = config["rule"] | {"prior_mtd_from_stage1": False}
    data = TrialData(
        {
            "cohort": [1, 1, 1, 2, 2, 2, 3, 4, 4, 5, 6, 7, 7, 8],
            "dose": [1.0] * 6 + [2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 5.0],
            "dlt": [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        }
    )

    def decision(margin: float):
        conduct = config["conduct"] | {"random_seed": 0, "mcse_margin": margin}
        return design_from_config(config | {"conduct": conduct}, "bo").next(data)

    estimate_alone = decision(0.0)
    assert estimate_alone.next_dose == 3.0
    assert 0.45 < estimate_alone.quantities["overdose_probability"] < 0.5
    resolved = decision(2.0)
    assert resolved.next_dose == 2.0 and resolved.quantities["refits"] >= 1
