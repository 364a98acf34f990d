"""Design and simulation configuration files (TOML) for the command line.

A configuration names a design and, for ``dosezoo simulate``, a scenario and the
simulation settings. Example (the accelerated O6-BG re-design of seed 001)::

    [model]                 # ThreePND
    eta = 55.0
    gamma = 0.6
    x_min = 20.0
    x_max = 140.0
    delta = 0.5

    [rule]                  # MTDQuantileRule
    alpha = 0.1
    dose_levels = [40, 60, 80, 100, 120]
    monotone = true
    # rounding = "nearest" | "down";  max_increment = 20.0

    [conduct]               # MTDQuantileDesign
    start_dose = 40.0
    cohort_size = 3
    sample_size = 30
    # engine = "quadrature" | "kernel" | "pymc" | "nuts"

    # [stopping]            # ToxicityStopping
    # threshold = 55.0
    # max_toxicities = 2

    [scenario]              # simulate only
    type = "o6bg"           # or "continuous" with true_mtd, nu, sigma

    [simulation]            # simulate only
    n_trials = 1000
    random_seed = 2023
    n_jobs = 2

Every key is checked: an unknown section or key, a missing key or a bad value raises
:class:`ConfigError` naming the file, the section, the key and the value.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosezoo.designs import Design, MTDQuantileRule, ToxicityStopping, mtd_quantile_design
from dosezoo.models import ThreePND
from dosezoo.scenarios import ContinuousToxicityScenario, O6BGResampling

MODEL_KEYS = {"eta", "gamma", "x_min", "x_max", "delta"}
RULE_KEYS = {"alpha", "dose_levels", "rounding", "monotone", "max_increment"}
CONDUCT_KEYS = {
    "start_dose",
    "cohort_size",
    "sample_size",
    "engine",
    "draws",
    "tune",
    "chains",
    "random_seed",
}
STOPPING_KEYS = {"threshold", "max_toxicities"}
SCENARIO_KEYS = {"continuous": {"true_mtd", "nu", "sigma"}, "o6bg": set()}
SIMULATION_KEYS = {"n_trials", "random_seed", "n_jobs"}
SECTIONS = {"model", "rule", "conduct", "stopping", "scenario", "simulation"}


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the place and value at fault."""


@dataclass(frozen=True)
class Simulation:
    """What ``dosezoo simulate`` runs: a scenario and the simulation settings."""

    scenario: ContinuousToxicityScenario | O6BGResampling
    n_trials: int
    random_seed: int
    n_jobs: int


def _section(
    config: dict, name: str, allowed: set[str], required: set[str], where: str
) -> dict[str, Any]:
    section = config.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [{name}] must be a table, got {section!r}")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: [{name}] unknown key {unknown[0]!r}; "
            f"known keys: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(section))
    if missing:
        raise ConfigError(f"{where}: [{name}] missing key {missing[0]!r}")
    return dict(section)


def _build(where: str, section: str, factory, options: dict) -> Any:
    try:
        return factory(**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: [{section}] {error}") from None


def read_config(path: str | Path) -> dict:
    """Parse a TOML file, reporting syntax errors with the file name."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            config = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(config) - SECTIONS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown section [{unknown[0]}]; known sections: {', '.join(sorted(SECTIONS))}"
        )
    return config


def design_from_config(config: dict, where: str) -> Design:
    """Build the design of a parsed configuration."""
    model = _build(
        where,
        "model",
        ThreePND,
        _section(config, "model", MODEL_KEYS, MODEL_KEYS - {"delta"}, where),
    )
    rule = _build(
        where, "rule", MTDQuantileRule, _section(config, "rule", RULE_KEYS, {"alpha"}, where)
    )
    conduct = _section(config, "conduct", CONDUCT_KEYS, {"start_dose"}, where)
    stopping = None
    if "stopping" in config:
        stopping = _build(
            where,
            "stopping",
            ToxicityStopping,
            _section(config, "stopping", STOPPING_KEYS, STOPPING_KEYS, where),
        )
    return _build(
        where,
        "conduct",
        mtd_quantile_design,
        {"model": model, "rule": rule, "stopping": stopping, **conduct},
    )


def simulation_from_config(config: dict, design: Design, where: str) -> Simulation:
    """Build the scenario and settings of a parsed configuration."""
    if "scenario" not in config:
        raise ConfigError(f"{where}: a simulation needs a [scenario] section")
    raw = config["scenario"]
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in SCENARIO_KEYS:
        raise ConfigError(
            f"{where}: [scenario] type must be one of {sorted(SCENARIO_KEYS)}, got {kind!r}"
        )
    keys = SCENARIO_KEYS[kind]
    options = _section(config, "scenario", keys | {"type"}, keys | {"type"}, where)
    del options["type"]
    if kind == "o6bg":
        scenario = O6BGResampling()
    else:
        model = design.model
        scenario = _build(
            where,
            "scenario",
            ContinuousToxicityScenario,
            {"eta": model.eta, "gamma": model.gamma, "x_min": model.x_min, **options},
        )
    settings = _section(config, "simulation", SIMULATION_KEYS, {"n_trials", "random_seed"}, where)
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: [simulation] {key} must be an integer, got {value!r}")
    return Simulation(scenario=scenario, n_jobs=settings.pop("n_jobs", 1), **settings)
