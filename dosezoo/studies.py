"""The designs and scenarios of Lee (2023)'s simulation study and of its O6-BG re-design.

Shared by the benchmark scripts that reproduce them (``benchmarks/lee2023_study.py``,
``benchmarks/o6bg_redesign.py``) and by ``dosezoo demo``, so that each is defined once.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from dosezoo.datasets import O6BG_RESPONSE_OFFSET
from dosezoo.designs import Design, MTDQuantileRule, mtd_quantile_design
from dosezoo.models import ThreePND
from dosezoo.scenarios import ContinuousToxicityScenario, O6BGResampling
from dosezoo.simulate import run_trial, simulate

# ------------------------------------------------------- Lee (2023), "Simulation experiments"

#: Accelerated and standard dosing: (gamma, alpha).
LEE2023_STRATEGIES = {"acc": (0.9, 0.01), "std": (0.99, 0.001)}
#: Fully and cohort sequential adaptive designs: cohort size.
LEE2023_SCHEDULES = {"FSAD": 1, "CSAD": 3}
LEE2023_SAMPLE_SIZES = (18, 30, 45)
LEE2023_NU0 = (0.6, 1.0, 1.4)
LEE2023_SHARED: dict[str, Any] = {"delta": 0.1, "eta": 3.0, "x_min": 5.0, "x_max": 80.0}
LEE2023_START_DOSE = 6.0
LEE2023_TRUE_MTD = 50.0
LEE2023_SIGMA0 = 0.1


@dataclass(frozen=True)
class StudyConfiguration:
    """One cell of a simulation study: a design, a scenario and their labels."""

    name: str
    labels: dict
    design: Design
    scenario: ContinuousToxicityScenario


def lee2023_configurations() -> list[StudyConfiguration]:
    """Return the 36 configurations of Lee (2023)'s Table 1: 4 designs x N x nu0."""
    configurations = []
    for schedule, cohort_size in LEE2023_SCHEDULES.items():
        for strategy, (gamma, alpha) in LEE2023_STRATEGIES.items():
            model = ThreePND(gamma=gamma, **LEE2023_SHARED)
            for n in LEE2023_SAMPLE_SIZES:
                design = mtd_quantile_design(
                    model,
                    MTDQuantileRule(alpha=alpha),
                    start_dose=LEE2023_START_DOSE,
                    cohort_size=cohort_size,
                    sample_size=n,
                )
                for nu0 in LEE2023_NU0:
                    scenario = ContinuousToxicityScenario(
                        true_mtd=LEE2023_TRUE_MTD,
                        nu=nu0,
                        sigma=LEE2023_SIGMA0,
                        eta=model.eta,
                        gamma=gamma,
                        x_min=model.x_min,
                    )
                    label = f"{schedule} ({strategy})"
                    configurations.append(
                        StudyConfiguration(
                            name=f"{schedule}-{strategy}-N{n}-nu{nu0:g}",
                            labels={"design": label, "N": n, "nu0": nu0},
                            design=design,
                            scenario=scenario,
                        )
                    )
    return configurations


# --------------------------------------------------------------- Lee (2023), "Application"

O6BG_MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5, dose_unit="mg/m^2")
O6BG_LEVELS = (40.0, 60.0, 80.0, 100.0, 120.0)
#: Feasibility bound of the accelerated and the standard re-design.
O6BG_ALPHAS = {"accelerated": 0.1, "standard": 0.05}


def o6bg_design(alpha: float) -> Design:
    """Return the O6-BG re-design: CSAD (C = 3), N = 30, dose levels, monotone, ``x_1 = 40``."""
    return mtd_quantile_design(
        O6BG_MODEL,
        MTDQuantileRule(alpha=alpha, dose_levels=O6BG_LEVELS, monotone=True),
        start_dose=40.0,
        cohort_size=3,
        sample_size=30,
    )


def o6bg_scenario() -> O6BGResampling:
    """Return the scenario of resampled, perturbed AGT responses of the O6-BG trial."""
    return O6BGResampling()


def o6bg_trial(alpha: float, random_seed: int) -> dict:
    """One seeded re-designed O6-BG trial: trial 0 of ``simulate(..., random_seed)``.

    Returns
    -------
    dict
        ``cohort_doses``, ``agt`` (per patient), ``p_overdose`` (posterior P(MTD < dose) of
        each cohort's dose when it was chosen; none for the start dose), ``final_dose`` (the
        last cohort's dose), ``recommended`` (the dose the design would give next),
        ``n_agt_below_5`` and ``n_above_100``.
    """
    design, scenario = o6bg_design(alpha), o6bg_scenario()
    record = run_trial(
        design, scenario, np.random.default_rng(np.random.SeedSequence(random_seed).spawn(1)[0])
    )
    kinds = record["decision_kind"]
    doses = record["decision_dose"][kinds == "next"]
    p_overdose = record["decision_quantities"]["p_overdose"][kinds == "next"]
    return {
        "alpha": alpha,
        "random_seed": random_seed,
        "cohort_doses": doses.tolist(),
        "p_overdose": [None if np.isnan(p) else round(float(p), 4) for p in p_overdose],
        "agt": np.round(O6BG_RESPONSE_OFFSET - record["outcomes"]["y"], 2).tolist(),
        "final_dose": float(record["dose"][-1]),
        "recommended": record["recommended_dose"],
        "n_agt_below_5": int(record["metrics"]["n_agt_below_5"]),
        "n_above_100": int(record["metrics"]["n_above_100"]),
    }


def o6bg_replicates(alpha: float, n_trials: int, random_seed: int, n_jobs: int = 1) -> dict:
    """Distribution of the final and recommended doses over replicated re-designed trials."""
    results = simulate(
        o6bg_design(alpha),
        o6bg_scenario(),
        n_trials,
        random_seed=random_seed,
        n_jobs=n_jobs,
        progress=False,
    )

    def shares(values: np.ndarray) -> dict[str, float]:
        return {f"{level:g}": float(np.mean(values == level)) for level in O6BG_LEVELS}

    return {
        "alpha": alpha,
        "n_trials": n_trials,
        "random_seed": random_seed,
        "final_dose": shares(results["final_dose"].values),
        "recommended": shares(results["recommended"].values),
        "mean_n_agt_below_5": float(results["n_agt_below_5"].mean()),
        "mean_n_above_100": float(results["n_above_100"].mean()),
        "p_any_patient_above_100": float(np.mean(results["n_above_100"].values > 0)),
    }
