"""Efficacy-toxicity scenarios: rates, correlation, common random numbers, metrics, protocol."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import ndtri

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs.boin import boin_design
from dosezoo.models.joint_probit import cell_probabilities
from dosezoo.scenarios import EffToxScenario, standard_efftox_scenarios
from dosezoo.simulate import run_trial

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def scenario(**kwargs) -> EffToxScenario:
    options = {
        "dose_levels": LEVELS,
        "p_tox": (0.05, 0.1, 0.2, 0.3, 0.5),
        "p_response": (0.1, 0.3, 0.4, 0.15, 0.1),
        "p_high_response": (0.05, 0.1, 0.2, 0.05, 0.02),
        "rho": 0.5,
        "planned_sample_size": 12,
    } | kwargs
    return EffToxScenario(
        options.pop("dose_levels"),
        options.pop("p_tox"),
        options.pop("p_response"),
        options.pop("p_high_response"),
        **options,
    )


def test_joint_outcomes_follow_the_rectangle_probabilities():
    truth = scenario()
    n = 100_000
    out = truth.respond(np.full(n, 40.0), np.random.default_rng(1))
    counts = np.bincount(3 * out["dlt"] + out["efficacy"], minlength=6)
    # The same latent model: mu_T = Phi^-1(p_T), mu_E = Phi^-1(p_R), c = mu_E - Phi^-1(p_H).
    mu_t, mu_e = ndtri(0.2), ndtri(0.4)
    cells = cell_probabilities(np.array(mu_t), np.array(mu_e), mu_e - ndtri(0.2), 0.5, lib=np)
    assert stats.chisquare(counts, n * cells).pvalue > 1e-3


def test_common_random_numbers():
    truth = scenario()
    # Cohorts of 3 + 3 or one of 6: patient i gets the same latent pair.
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    a = [truth.respond(np.full(3, 20.0), rng_a) for _ in range(2)]
    b = truth.respond(np.full(6, 20.0), rng_b)
    for name in ("dlt", "efficacy"):
        np.testing.assert_array_equal(np.concatenate([part[name] for part in a]), b[name])
    # The same patients at every dose: a DLT at one dose means a DLT at every higher dose.
    latent = truth.latent_pairs(2000, np.random.default_rng(6))
    dlt = np.array([truth.outcomes_of(np.full(2000, d), latent)["dlt"] for d in LEVELS])
    assert np.all(np.diff(dlt, axis=0) >= 0)
    assert np.corrcoef(latent.T)[0, 1] == pytest.approx(0.5, abs=0.05)


def test_target_levels_follow_lin2023s_criterion():
    assert scenario().target_levels == (2,)
    shapes = standard_efftox_scenarios()
    assert shapes["monotone"].target_levels == (3,)
    assert shapes["plateau"].target_levels == (2, 3)
    assert shapes["bell"].target_levels == (2,)
    futile = scenario(p_response=(0.05, 0.1, 0.1, 0.1, 0.1), p_high_response=None)
    assert futile.target_levels == ()
    assert futile.p_high_response == (0.025, 0.05, 0.05, 0.05, 0.05)


def test_trial_metrics_score_selection_allocation_and_the_range():
    truth = scenario()
    data = TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 3 + [80.0] * 3,
                "dlt": [0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0],
                "efficacy": [0, 1, 0, 1, 2, 0, 1, 2, 2, 0, 0, 1],
            }
        )
    )
    ranged = Decision(40.0, quantities={f"in_range_{k}": float(k in (1, 2)) for k in range(5)})
    metrics = truth.trial_metrics(data, ranged)
    assert metrics["correct_selection"] == 1.0 and metrics["selected_2"] == 1.0
    assert metrics["selected_p_response"] == 0.4
    assert metrics["n_at_target_fraction"] == 3 / 12
    assert metrics["n_overtoxic_fraction"] == 0.0  # 0.3 is inside the interval
    assert metrics["dlt_rate"] == 4 / 12 and metrics["response_rate"] == 7 / 12
    assert metrics["high_response_rate"] == 3 / 12
    assert metrics["range_size"] == 2.0 and metrics["range_has_target"] == 1.0
    assert metrics["stopped_early"] == 0.0
    none = truth.trial_metrics(data, Decision(None, stop_reason="safety"))
    assert none["correct_selection"] == 0.0 and none["no_selection"] == 1.0
    assert math.isnan(none["selected_p_tox"]) and math.isnan(none["range_size"])
    wrong = truth.trial_metrics(data, Decision(80.0))
    assert wrong["correct_selection"] == 0.0 and wrong["selected_3"] == 1.0


def test_scenario_runs_in_the_engine_with_a_toxicity_only_design():
    truth = scenario()
    design = boin_design(0.25, LEVELS, sample_size=12)
    record = run_trial(design, truth, np.random.default_rng(3))
    assert record["n_patients"] <= 12
    assert set(record["outcomes"]) == {"dlt", "efficacy"}
    assert set(np.unique(record["outcomes"]["efficacy"])) <= {0.0, 1.0, 2.0}
    assert truth.describe()["target_levels"] == "2"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p_tox": (0.1, 0.2)}, "p_tox has 2 values"),
        ({"p_tox": (0.1, 0.2, 0.3, 0.4, 1.0)}, r"p_tox\[4\] must lie in \(0, 1\)"),
        ({"p_high_response": (0.05, 0.3, 0.2, 0.05, 0.02)}, r"p_high_response\[1\] = 0.3"),
        ({"rho": 1.0}, "rho must lie in"),
        ({"planned_sample_size": 0}, "planned_sample_size"),
        ({"tox_interval": (0.3, 0.2)}, "low < high"),
        # Were "but dose_levels has 2" and "efficacy_threshold[0]" (an index of a scalar).
        ({"tox_interval": (0.2,)}, r"tox_interval has 1 values but it must be a pair \(low"),
        ({"efficacy_threshold": 1.2}, r"efficacy_threshold must lie in \(0, 1\), got 1.2"),
        ({"dose_levels": (10.0, 5.0, 20.0, 30.0, 40.0)}, "strictly increasing"),
    ],
)
def test_bad_truth_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        scenario(**kwargs)


def test_doses_off_the_levels_are_refused():
    with pytest.raises(ValueError, match=r"dose 15\.0 is not one of the dose levels"):
        scenario().respond(np.array([15.0]), np.random.default_rng(0))


# --------------------------------------------------------------------------- OBD (BOIN12)


def test_the_true_utility_is_the_mean_utility_of_the_patients():
    # at rho = 0, BOIN12's own formula, which takes toxicity and response independent
    from dosezoo.designs.boin12 import boin12_utility

    p_tox, p_response = (0.04, 0.10, 0.20, 0.32, 0.45), (0.10, 0.40, 0.45, 0.46, 0.46)
    independent = EffToxScenario(
        LEVELS,
        p_tox,
        p_response,
        planned_sample_size=36,
        utility=(60, 40),
        utility_limits=(0.35, 0.25),
    )
    expected = [boin12_utility(e, t, 60, 40) for t, e in zip(p_tox, p_response, strict=True)]
    np.testing.assert_allclose(independent.utilities, expected, rtol=1e-12)
    # at rho = 0.6, with u11 + u00 != 100 (where the joint law matters), against the patients
    # the scenario draws: 200,000 per level, the utility's sd is <= 50, its MC error <= 0.12
    correlated = EffToxScenario(
        LEVELS,
        p_tox,
        p_response,
        rho=0.6,
        planned_sample_size=36,
        utility=(20, 30),
        utility_limits=(0.35, 0.25),
    )
    rng = np.random.default_rng(3)
    for level in range(len(LEVELS)):
        levels = np.full(200_000, level)
        drawn = correlated.outcomes_at_levels(levels, correlated.draw_latent(rng, levels.size))
        tox, response = drawn["dlt"] == 1, drawn["efficacy"] >= 1
        patients = np.select(
            [response & ~tox, response & tox, ~response & ~tox], [100.0, 20.0, 30.0], 0.0
        )
        assert correlated.utilities[level] == pytest.approx(patients.mean(), abs=0.5)


def test_the_obd_is_the_admissible_level_of_highest_utility_and_scored_so():
    plateau = standard_efftox_scenarios(utility=(60.0, 40.0), utility_limits=(0.35, 0.25))[
        "plateau"
    ]
    # admissible: p_tox <= 0.35 and p_response >= 0.25, levels 1-3; level 1 has utility 60
    assert plateau.obd_level == 1 and plateau.target_levels == (2, 3)
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [20.0] * 3 + [40.0] * 3, "dlt": [0] * 6, "efficacy": [1] * 6})
    )
    at_obd = plateau.trial_metrics(data, Decision(20.0))
    assert (at_obd["obd_selection"], at_obd["correct_selection"]) == (1.0, 0.0)
    assert at_obd["n_at_obd_fraction"] == 0.5 and at_obd["selected_utility"] == 60.0
    none = plateau.trial_metrics(data, Decision(None, stop_reason="no OBD"))
    assert none["obd_selection"] == 0.0 and math.isnan(none["selected_utility"])
    toxic = EffToxScenario(
        LEVELS,
        (0.5, 0.6, 0.7, 0.8, 0.9),
        (0.3,) * 5,
        planned_sample_size=36,
        utility=(60.0, 40.0),
        utility_limits=(0.35, 0.25),
    )
    assert toxic.obd_level == -1  # no admissible level: selecting none is right
    assert toxic.trial_metrics(data, Decision(None, stop_reason="x"))["obd_selection"] == 1.0
    assert "obd_selection" not in scenario().trial_metrics(data, Decision(20.0))
    with pytest.raises(ValueError, match="a utility needs its utility_limits"):
        scenario(utility=(60.0, 40.0))
    with pytest.raises(ValueError, match=r"utility_limits\[1\] must lie in \(0, 1\)"):
        scenario(utility=(60.0, 40.0), utility_limits=(0.35, 1.5))


def test_a_boin12_configuration_scores_its_own_obd():
    from dosezoo.config import design_from_config, read_config, simulation_from_config

    config = EXAMPLES / "boin12.toml"
    raw = read_config(config)
    design = design_from_config(raw, str(config))
    scenario = simulation_from_config(raw, design, str(config)).scenario
    assert scenario.utility == (60.0, 40.0) and scenario.utility_limits == (0.35, 0.25)
