"""Configuration files (TOML) of the command line: a design, a scenario and simulation settings.

A configuration names a design by its family (``[model] type``) and gives the options of the
family's model, rule and conduct; ``dosezoo simulate`` also reads the scenario and the
simulation settings. Example (the accelerated O6-BG re-design of Lee 2023, Trials 24:745)::

    [model]                 # the family, and the options of its model (ThreePND)
    type = "3pnd"
    eta = 55.0
    gamma = 0.6
    x_min = 20.0
    x_max = 140.0

    [rule]                  # the options of its rule (MTDQuantileRule)
    alpha = 0.1
    dose_levels = [40, 60, 80, 100, 120]
    monotone = true

    [conduct]               # Conduct's options over the family's defaults
    cohort_size = 3
    sample_size = 30

    [[conduct.stopping]]    # a stopping piece (an array of tables, each with its type)
    type = "toxicity"
    threshold = 55.0
    max_toxicities = 2

    [scenario]              # simulate only: a registered scenario type and its options
    type = "o6bg"

    [simulation]            # simulate only
    n_trials = 200
    random_seed = 2023
    n_jobs = 1

The keys of ``[model]``, ``[rule]`` and ``[conduct]`` are the init fields of the family's
dataclasses (``dosezoo designs`` lists them with their defaults; see
:mod:`dosezoo.designs.registry`); those of ``[scenario]`` the options of the scenario type
(:mod:`dosezoo.scenarios.registry`), whose defaults the design implies where it can (its dose
levels, its sample size as the planned one, its target). A nested dataclass is a sub-table
(``[conduct.convergence]``, ``[model.prior]``, ``[rule.admissible]``), lists become tuples, and
``"none"`` stands for None. Every key is checked: an unknown section or key, a missing key or a
bad value raises :class:`dosezoo.errors.ConfigError` naming the file, the section, the key and
the value.
An optional ``[backfill]`` table (or ``[conduct.backfill]``) gives the conduct's backfill
(:class:`dosezoo.designs.backfill.Backfill`: ``arrival_rate``, ``dlt_window``, the caps, the
allocation) for a design whose outcomes include ``dlt``.

Families register themselves in their rule's module and scenario types in their scenario's
module, so a new family or scenario file is found without an edit to any list. The registries
read the names from the modules' source (:mod:`dosezoo.registry`) and import only the module of
the family and of the scenario type a configuration names: a configuration of the CRM loads
neither the GP designs nor PyMC.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dosezoo.checks import integer, positive_int, worker_count
from dosezoo.data import decode_text
from dosezoo.designs import Design
from dosezoo.designs.registry import (
    build,
    construct,
    decode,
    design_config,
    design_from_config,
    options_of,
    toml_value,
)
from dosezoo.errors import ConfigError
from dosezoo.protocols import Scenario
from dosezoo.scenarios.registry import SCENARIO_TYPES

__all__ = [
    "SECTIONS",
    "Simulation",
    "SimulationSettings",
    "design_config",
    "design_from_config",
    "read_config",
    "scenario_from_config",
    "simulation_from_config",
]

#: The sections a configuration may have.
SECTIONS = ("model", "rule", "conduct", "backfill", "scenario", "simulation")


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse a TOML configuration, reporting a missing file, bad TOML or an unknown section.

    Raises
    ------
    ConfigError
        Naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    # As the CSV files: a byte-order mark (Windows editors write one) or UTF-16 is read, other
    # encodings are named with the line and column of the first byte that is not UTF-8.
    text = decode_text(raw, str(path), ConfigError, "TOML", "save the configuration as UTF-8")
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    for name, value in config.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{name}]; known sections: "
                + ", ".join(f"[{section}]" for section in SECTIONS)
            )
        if not isinstance(value, Mapping):
            shown = "an array of tables" if isinstance(value, list) else repr(value)
            raise ConfigError(f"{path}: [{name}] must be a table (a [{name}] section), got {shown}")
    return config


def scenario_from_config(config: Mapping[str, Any], design: Design, where: str) -> Scenario:
    """Build the scenario of a parsed configuration (its ``[scenario]``) for ``design``.

    Keys the scenario type takes from the design (dose levels, sample size, target) may be
    left out.

    Raises
    ------
    ConfigError
        Naming the file, the section, the key and the value at fault.
    """
    if "scenario" not in config:
        raise ConfigError(f"{where}: a simulation needs a [scenario] section")
    table = dict(config["scenario"])
    listed = ", ".join(repr(name) for name in SCENARIO_TYPES)
    if "type" not in table:
        raise ConfigError(f"{where}: [scenario] needs a key type, one of {listed}")
    kind = table.pop("type")
    if not isinstance(kind, str) or kind not in SCENARIO_TYPES:
        raise ConfigError(
            f"{where}: [scenario] type must be one of {listed}, got {toml_value(kind)}"
        )
    scenario_type = SCENARIO_TYPES[kind]
    options = options_of(scenario_type.build)
    names = {option.name for option in options}
    from_design = scenario_type.from_design(design)
    for key in scenario_type.of_design:
        if key in table and key in from_design and table[key] != from_design[key]:
            raise ConfigError(
                f"{where}: [scenario] {key} = {toml_value(table[key])}: the design's is "
                f"{toml_value(from_design[key])}, which the scenario takes (leave the key out)"
            )
    implied = {
        key: value for key, value in from_design.items() if key in names and key not in table
    }
    values = decode(options, table, where, "scenario", defaults=implied)
    return construct(scenario_type.build, implied | values, where, [("scenario", table, options)])


@dataclass(frozen=True)
class SimulationSettings:
    """The ``[simulation]`` section: how many trials, the random seed and the worker processes.

    Parameters
    ----------
    n_trials : int
        Number of simulated trials (>= 1).
    random_seed : int
        Seed of the simulation (>= 0).
    n_jobs : int
        Worker processes (>= 1, or -1 for one per CPU).
    """

    n_trials: int
    random_seed: int
    n_jobs: int = 1

    def __post_init__(self) -> None:
        """Validate the settings, naming the one at fault."""
        owner = "[simulation]"
        positive_int(owner, "n_trials", self.n_trials)
        integer(owner, "random_seed", self.random_seed, minimum=0)
        worker_count(owner, "n_jobs", self.n_jobs)


@dataclass(frozen=True)
class Simulation:
    """What ``dosezoo simulate`` runs: a scenario and the simulation settings."""

    scenario: Scenario
    n_trials: int
    random_seed: int
    n_jobs: int


def simulation_from_config(
    config: Mapping[str, Any],
    design: Design,
    where: str,
    *,
    n_trials: int | None = None,
    random_seed: int | None = None,
) -> Simulation:
    """Build the scenario and the settings of a parsed configuration for ``design``.

    ``n_trials`` and ``random_seed`` (the command line's ``--trials`` and ``--random-seed``)
    stand in for ``[simulation] n_trials`` and ``random_seed``.

    Raises
    ------
    ConfigError
        Naming the file, the section, the key and the value at fault.
    """
    scenario = scenario_from_config(config, design, where)
    table = dict(config.get("simulation", {}))
    if n_trials is not None:
        table["n_trials"] = n_trials
    if random_seed is not None:
        table["random_seed"] = random_seed
    settings = build(SimulationSettings, table, where, "simulation")
    return Simulation(scenario, settings.n_trials, settings.random_seed, settings.n_jobs)
