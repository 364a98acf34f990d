"""The scenario types a configuration names (``[scenario] type = "binary"``), registered here.

Each scenario module registers its types (``register_scenario(ScenarioType(...))`` at its
bottom), so the configuration reader (:mod:`dosezoo.config`) reaches a new scenario file
without an edit anywhere else. A type is a builder whose keyword parameters (or, for a
dataclass, whose init fields) are the keys of ``[scenario]``, and the defaults a design
implies (its dose levels, its sample size as the planned one, its target): the truth a design
is simulated against need only state what the design does not already say.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dosezoo.protocols import Scenario
from dosezoo.registry import Registry

__all__ = [
    "SCENARIO_TYPES",
    "ScenarioType",
    "design_attribute",
    "register_scenario",
    "search_scenarios_in",
]


def _nothing(design: object) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ScenarioType:
    """A kind of scenario a configuration can name.

    Parameters
    ----------
    name : str
        Its ``[scenario] type``.
    summary : str
        One line naming the setting and its paper.
    build : callable
        Returns the scenario from the ``[scenario]`` keys (its keyword parameters, or a
        dataclass's init fields).
    from_design : callable
        ``from_design(design)`` returns defaults of the keys that the design implies (e.g. its
        dose levels); a key the configuration gives wins, except those of ``of_design``.
    design_keys : tuple of str
        Every key ``from_design`` may return (``dosezoo designs`` shows their defaults as the
        design's).
    of_design : tuple of str
        Keys of ``from_design`` that describe the design itself (e.g. the end of its dose
        range): a configuration may repeat the design's value, not give another.
    """

    name: str
    summary: str
    build: Callable[..., Scenario]
    from_design: Callable[[Any], dict[str, Any]] = _nothing
    design_keys: tuple[str, ...] = ()
    of_design: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check the name, the builder and that the design's keys include ``of_design``."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ScenarioType: name must be a non-empty string, got {self.name!r}")
        if not callable(self.build) or not callable(self.from_design):
            raise ValueError(f"ScenarioType {self.name!r}: build and from_design must be callable")
        if not set(self.of_design) <= set(self.design_keys):
            raise ValueError(
                f"ScenarioType {self.name!r}: of_design {self.of_design} must be among "
                f"design_keys {self.design_keys}"
            )


_TYPES: Registry[ScenarioType] = Registry(
    "register_scenario",
    lambda kind: f"builder {kind.build.__qualname__}",
    packages=("dosezoo.scenarios",),
)

#: Registered scenario types by name (read-only; :func:`register_scenario` adds one).
SCENARIO_TYPES: Mapping[str, ScenarioType] = _TYPES.entries


def register_scenario(kind: ScenarioType) -> ScenarioType:
    """Register a scenario type under its name (done by the scenario's module).

    Registering again a type of the same name and builder name (a module imported twice)
    replaces it.

    Raises
    ------
    ValueError
        If another builder has that name.
    """
    if not isinstance(kind, ScenarioType):
        raise ValueError(f"register_scenario: expected a ScenarioType, got {kind!r}")
    _TYPES.add(kind.name, kind)
    return kind


def search_scenarios_in(package: str) -> None:
    """Also read the scenario types that the modules of ``package`` declare.

    The scenario modules are searched by default; a higher layer whose modules register a
    scenario type (a design's reference scenario) adds its package.
    """
    _TYPES.search(package)


def design_attribute(design: object, *names: str) -> Any:
    """Return the first of ``names`` that the design, its model or its rule has (None if none).

    Scenario defaults read a design through this, without naming a model or rule class (the
    scenarios sit below the designs).
    """
    for owner in (design, getattr(design, "model", None), getattr(design, "rule", None)):
        if owner is None:
            continue
        for name in names:
            try:
                value = getattr(owner, name)
            except (AttributeError, ValueError):  # an unbound rule's property may refuse
                continue
            if value is not None:
                return value
    return None
