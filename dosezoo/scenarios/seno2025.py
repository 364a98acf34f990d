"""The 20 toxicity scenarios of the comparison study of Seno et al. (2025) (Section 5.2, Table 1).

Five dose levels; the target DLT rate is 0.2 in scenarios 1-10 and 0.3 in scenarios 11-20
(following Yan et al. 2017). The true MTD of each scenario is the level whose rate is closest
to the target (:class:`dosezoo.scenarios.binary.BinaryToxicityScenario`).
"""

from dosezoo.scenarios.binary import BinaryToxicityScenario
from dosezoo.scenarios.registry import ScenarioType, design_attribute, register_scenario

__all__ = ["SENO2025_DOSE_LEVELS", "SENO2025_SCENARIOS", "seno2025_scenario", "seno2025_target"]

#: Dose levels 1..5 (the designs only use their order).
SENO2025_DOSE_LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)

#: True DLT probabilities per level, keyed by scenario number (Table 1 of Seno et al. 2025).
SENO2025_SCENARIOS: dict[int, tuple[float, ...]] = {
    1: (0.20, 0.26, 0.40, 0.45, 0.46),
    2: (0.20, 0.29, 0.35, 0.35, 0.58),
    3: (0.10, 0.20, 0.25, 0.35, 0.40),
    4: (0.08, 0.20, 0.30, 0.45, 0.65),
    5: (0.04, 0.06, 0.20, 0.32, 0.50),
    6: (0.01, 0.10, 0.20, 0.26, 0.35),
    7: (0.05, 0.06, 0.07, 0.20, 0.31),
    8: (0.02, 0.04, 0.10, 0.20, 0.25),
    9: (0.01, 0.02, 0.07, 0.08, 0.20),
    10: (0.01, 0.02, 0.03, 0.04, 0.20),
    11: (0.30, 0.36, 0.42, 0.45, 0.46),
    12: (0.30, 0.40, 0.55, 0.60, 0.70),
    13: (0.08, 0.30, 0.38, 0.42, 0.52),
    14: (0.13, 0.30, 0.42, 0.50, 0.80),
    15: (0.04, 0.07, 0.30, 0.35, 0.42),
    16: (0.01, 0.12, 0.30, 0.41, 0.55),
    17: (0.06, 0.07, 0.12, 0.30, 0.40),
    18: (0.02, 0.05, 0.16, 0.30, 0.36),
    19: (0.01, 0.02, 0.04, 0.06, 0.30),
    20: (0.06, 0.07, 0.08, 0.12, 0.30),
}


def seno2025_target(number: int) -> float:
    """Target DLT rate of scenario ``number``: 0.2 for 1-10, 0.3 for 11-20."""
    if isinstance(number, bool) or number not in SENO2025_SCENARIOS:
        raise ValueError(f"Seno et al. (2025) scenario must be one of 1..20, got number {number!r}")
    return 0.2 if number <= 10 else 0.3


def seno2025_scenario(number: int, *, planned_sample_size: int = 36) -> BinaryToxicityScenario:
    """Scenario ``number`` of Table 1 as a simulation scenario.

    ``planned_sample_size`` is the denominator of the metrics over the planned size (and of
    ``stopped_early``): 36, the paper's, unless given; give a design of another size its own.
    """
    target = seno2025_target(number)
    return BinaryToxicityScenario(
        SENO2025_DOSE_LEVELS,
        SENO2025_SCENARIOS[number],
        target,
        planned_sample_size=planned_sample_size,
    )


def _from_design(design: object) -> dict[str, object]:
    """Return the design's sample size, as the planned one."""
    planned = design_attribute(design, "sample_size")
    return {} if planned is None else {"planned_sample_size": planned}


register_scenario(
    ScenarioType(
        name="seno2025",
        summary=(
            "scenario 1-20 of Table 1 of Seno et al. (2025): five dose levels, target 0.2 "
            "(1-10) or 0.3 (11-20)"
        ),
        build=seno2025_scenario,
        from_design=_from_design,
        design_keys=("planned_sample_size",),
    )
)
