"""Scenarios of every family: the truth simulated trials are drawn from, and how a trial is scored.

A scenario offers the `dosezoo.protocols.Scenario` protocol (``respond``, ``trial_metrics``,
``describe``, ``empty_data``), and some the `dosezoo.protocols.LevelScenario` capability with
which `dosezoo.simulate.simulate` runs count rules in lockstep. One module per family:

- `dosezoo.scenarios.continuous`: continuous toxicity, the 3PND setting of Lee (2023)
  (`ContinuousToxicityScenario`) and its O6-benzylguanine re-design (`O6BGResampling`);
- `dosezoo.scenarios.binary`: binary DLTs, true probabilities per dose level with common
  random numbers (`BinaryToxicityScenario`);
- `dosezoo.scenarios.efftox`: binary toxicity and ordinal efficacy, correlated, after Lin
  (2023) (`EffToxScenario`, `standard_efftox_scenarios`);
- `dosezoo.scenarios.seno2025`: the 20 scenarios of Table 1 of Seno et al. (2025)
  (`seno2025_scenario`, `seno2025_target`, `SENO2025_SCENARIOS`, `SENO2025_DOSE_LEVELS`);
- `dosezoo.scenarios.willard2024`: dose-combination surfaces per stratum, Table 1 of Willard
  et al. (2024) (`CombinationSurfaceScenario`, `willard2024_scenario`).
- `dosezoo.scenarios.weibull`: censored time-to-event outcomes, the 24 scenarios of the Weibull
  D-optimal paper (`WeibullScenario`, `weibull_scenario`, `weibull_scenarios`, `calibrate_tau`).

Each module registers the types a configuration names (``[scenario] type = "binary"``) in
`dosezoo.scenarios.registry` (`SCENARIO_TYPES`, `register_scenario`): a new scenario module
registers its own types and edits nothing else.
"""

from typing import TYPE_CHECKING

from dosezoo.lazy import attach

if TYPE_CHECKING:
    from dosezoo.scenarios.binary import BinaryToxicityScenario
    from dosezoo.scenarios.continuous import (
        O6BG_PERTURBATION,
        ContinuousToxicityScenario,
        O6BGResampling,
        o6bg_resampling,
    )
    from dosezoo.scenarios.efftox import (
        EffToxScenario,
        standard_efftox_scenario,
        standard_efftox_scenarios,
    )
    from dosezoo.scenarios.registry import (
        SCENARIO_TYPES,
        ScenarioType,
        design_attribute,
        register_scenario,
    )
    from dosezoo.scenarios.seno2025 import (
        SENO2025_DOSE_LEVELS,
        SENO2025_SCENARIOS,
        seno2025_scenario,
        seno2025_target,
    )
    from dosezoo.scenarios.weibull import (
        WEIBULL_B,
        WEIBULL_SHAPES,
        WeibullScenario,
        calibrate_tau,
        weibull_scenario,
        weibull_scenarios,
    )
    from dosezoo.scenarios.willard2024 import (
        WILLARD2024_SCENARIOS,
        CombinationSurfaceScenario,
        willard2024_scenario,
    )


__all__ = [
    "O6BG_PERTURBATION",
    "SCENARIO_TYPES",
    "SENO2025_DOSE_LEVELS",
    "SENO2025_SCENARIOS",
    "WEIBULL_B",
    "WEIBULL_SHAPES",
    "WILLARD2024_SCENARIOS",
    "BinaryToxicityScenario",
    "CombinationSurfaceScenario",
    "ContinuousToxicityScenario",
    "EffToxScenario",
    "O6BGResampling",
    "ScenarioType",
    "WeibullScenario",
    "calibrate_tau",
    "design_attribute",
    "o6bg_resampling",
    "register_scenario",
    "seno2025_scenario",
    "seno2025_target",
    "standard_efftox_scenario",
    "standard_efftox_scenarios",
    "weibull_scenario",
    "weibull_scenarios",
    "willard2024_scenario",
]

#: Each name is imported from its module on first access (:mod:`dosezoo.lazy`).
__getattr__, __dir__ = attach(__name__, __file__)
