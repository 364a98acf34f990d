"""The outcomes trial data can record, and the rule each outcome's values follow.

`dosezoo.data.TrialData` recognises an outcome column by its name in this registry and
validates its values by the registered `Outcome`. The five built-in outcomes are registered
here, in this order:

- ``y``: a continuous response, any finite number;
- ``dlt``: 0 or 1 (1 = dose-limiting toxicity), booleans accepted;
- ``efficacy``: 0, 1 or 2 (ordinal efficacy);
- ``time``: an event or censoring time, a finite number > 0, which requires ``event``;
- ``event``: 0 or 1 (1 = event observed, 0 = censored), booleans accepted, which requires
  ``time``.

A model that needs another outcome declares it in its own module with `register_outcome`,
without editing `dosezoo.data`; outcomes registered later come after the built-in ones in
`TrialData.outcomes`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Outcome", "register_outcome", "registered_outcomes"]

#: Column names of trial data that are never outcomes.
_RESERVED_COLUMNS = ("dose", "cohort")


@dataclass(frozen=True)
class Outcome:
    """An outcome column of trial data and the rule its values follow.

    Every value must be a finite number; the fields below add to that.

    Parameters
    ----------
    name : str
        Column name, e.g. ``"dlt"``; not ``dose`` nor ``cohort``.
    integer : bool, default False
        Whether the values are stored as int64 (else float64).
    allowed : tuple of int, optional
        The only values allowed, e.g. ``(0, 1)``; None allows any finite number.
    positive : bool, default False
        Whether the values must be > 0.
    allow_bool : bool, default False
        Whether booleans are accepted (as 0 and 1), e.g. a DLT column of True / False.
    requirement : str, default ""
        What a valid value is, as the end of the message naming an invalid one
        (``"value 2 must be 0 or 1 (1 = dose-limiting toxicity)"``); required with
        ``allowed`` or ``positive``.
    requires : str, optional
        The companion outcome the data must have whenever they have this one (``time``
        requires ``event``).
    requires_reason : str, default ""
        Why, appended to the message when the companion is missing.

    Raises
    ------
    ValueError
        If a field is invalid; the message names it.
    """

    name: str
    integer: bool = False
    allowed: tuple[int, ...] | None = None
    positive: bool = False
    allow_bool: bool = False
    requirement: str = ""
    requires: str | None = None
    requires_reason: str = ""

    def __post_init__(self) -> None:
        """Check the fields, naming the one at fault."""
        owner = "Outcome"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{owner}: name must be a non-empty string, got {self.name!r}")
        where = f"{owner} {self.name!r}"
        for flag in ("integer", "positive", "allow_bool"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(
                    f"{where}: {flag} must be True or False, got {getattr(self, flag)!r}"
                )
        if self.allowed is not None:
            allowed = tuple(self.allowed)
            if not allowed or any(isinstance(v, bool) or not isinstance(v, int) for v in allowed):
                raise ValueError(
                    f"{where}: allowed must be a non-empty tuple of integers or None, "
                    f"got {self.allowed!r}"
                )
            object.__setattr__(self, "allowed", allowed)
        for text in ("requirement", "requires_reason"):
            if not isinstance(getattr(self, text), str):
                raise ValueError(f"{where}: {text} must be a string, got {getattr(self, text)!r}")
        if (self.allowed is not None or self.positive) and not self.requirement:
            raise ValueError(
                f"{where}: requirement must say what a valid value is (it ends the message "
                "naming an invalid one)"
            )
        if self.requires is not None and (
            not isinstance(self.requires, str)
            or self.requires in (self.name, *_RESERVED_COLUMNS)
            or not self.requires
        ):
            raise ValueError(
                f"{where}: requires must name another outcome or be None, got {self.requires!r}"
            )


_REGISTRY: dict[str, Outcome] = {}
_VIEW: Mapping[str, Outcome] = MappingProxyType(_REGISTRY)


def registered_outcomes() -> Mapping[str, Outcome]:
    """Return the registered outcomes by name, in registration order (a read-only view).

    Returns
    -------
    Mapping of str to Outcome
        The built-in outcomes (y, dlt, efficacy, time, event), then those registered later.
    """
    return _VIEW


def register_outcome(*outcomes: Outcome) -> None:
    """Register outcomes, so that trial data recognise and validate their columns.

    Registering an outcome again with the same definition does nothing, so a module that
    registers its outcome may be imported (or reloaded) any number of times. Outcomes that
    require each other are registered in one call.

    Parameters
    ----------
    *outcomes : Outcome
        The outcomes to register.

    Raises
    ------
    TypeError
        If an argument is not an `Outcome`.
    ValueError
        If a name is ``dose`` or ``cohort``, is registered already with another definition
        (or given twice with two), or an outcome requires one that is neither registered nor
        given; nothing is registered then.
    """
    new: dict[str, Outcome] = {}
    for outcome in outcomes:
        if not isinstance(outcome, Outcome):
            raise TypeError(f"register_outcome: expected an Outcome, got {outcome!r}")
        name = outcome.name
        if name in _RESERVED_COLUMNS:
            raise ValueError(
                f"register_outcome: {name!r} is a reserved column of trial data "
                f"({', '.join(_RESERVED_COLUMNS)}), not an outcome"
            )
        existing = _REGISTRY.get(name, new.get(name))
        if existing is not None and existing != outcome:
            raise ValueError(
                f"register_outcome: outcome {name!r} is already registered as {existing!r}; "
                f"refusing the different definition {outcome!r}"
            )
        new[name] = outcome
    for outcome in new.values():
        if outcome.requires is not None and outcome.requires not in {*_REGISTRY, *new}:
            raise ValueError(
                f"register_outcome: outcome {outcome.name!r} requires {outcome.requires!r}, "
                "which is not registered; register both in one call"
            )
    for name, outcome in new.items():
        _REGISTRY.setdefault(name, outcome)


_TIME_TO_EVENT = (
    "time-to-event data need both 'time' (> 0) and 'event' (1 = event observed, 0 = censored)"
)

register_outcome(
    Outcome("y"),
    Outcome(
        "dlt",
        integer=True,
        allowed=(0, 1),
        allow_bool=True,
        requirement="must be 0 or 1 (1 = dose-limiting toxicity)",
    ),
    Outcome(
        "efficacy",
        integer=True,
        allowed=(0, 1, 2),
        requirement="must be 0, 1 or 2 (ordinal efficacy)",
    ),
    Outcome(
        "time",
        positive=True,
        requirement="must be > 0",
        requires="event",
        requires_reason=_TIME_TO_EVENT,
    ),
    Outcome(
        "event",
        integer=True,
        allowed=(0, 1),
        allow_bool=True,
        requirement="must be 0 or 1 (1 = event, 0 = censored)",
        requires="time",
        requires_reason=_TIME_TO_EVENT,
    ),
)
