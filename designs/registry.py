r"""The families of the zoo, and every design as configuration tables (the TOML of the CLI).

A **family** (:class:`Family`) is one kind of design: a model class (or none), a rule class,
the family's own conduct defaults, and its example configuration. Each family registers itself
in its rule's module (``register(Family(...))`` at the bottom of ``designs/crm.py``, ...), so
the command line, the configuration reader and the contract test reach a new family without an
edit anywhere else; :data:`FAMILIES` is the read-only registry (lazy: it reads the names from
the modules' source and imports a family's module when it is used, see :mod:`dosezoo.registry`),
keyed by the name a configuration gives as ``[model] type``. A family's name must be a string
literal in that call, where the registry can read it.

A design and its configuration are inverse (:func:`design_config`, :func:`design_from_config`)::

    [model]                     # the model's init fields, and the family's name
    type = "crm"
    skeleton = [0.08, 0.16, 0.25, 0.35, 0.46]
    target = 0.25
    [rule]                      # the rule's init fields
    max_step_up = 1
    [conduct]                   # Conduct's init fields over the family's defaults
    cohort_size = 3
    [conduct.convergence]       # a nested dataclass is a sub-table
    max_rhat = 1.01
    [[conduct.stopping]]        # stopping pieces: an array of tables, each with its type
    type = "toxicity"
    [backfill]                  # the conduct's backfill (also [conduct.backfill])
    arrival_rate = 1.0
    dlt_window = 1.0

The keys of a table are the public init fields of the dataclass it builds (the signature of
the function, for a family whose model or rule is not built by its plain constructor:
:class:`Parts`). Lists become tuples, a sub-table builds the field's dataclass, and since TOML
has no null, ``"none"`` gives None to a field that takes None (leaving the key out gives the
default). Every failure is a :class:`~dosezoo.errors.ConfigError` naming the file, the section,
the key and the value: an unknown key, a missing required key, or a value the constructor
refuses (its message names the option; that name locates the key).
"""

import dataclasses
import inspect
import itertools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from dosezoo.designs.base import Conduct, CountRule, Design, Rule, Stopping
from dosezoo.errors import ConfigError
from dosezoo.models.base import DoseModel
from dosezoo.registry import Registry
from dosezoo.scenarios.registry import search_scenarios_in

__all__ = [
    "FAMILIES",
    "REQUIRED",
    "STOPPING",
    "Derived",
    "Family",
    "Option",
    "Parts",
    "PlainParts",
    "design_config",
    "design_from_config",
    "encode",
    "family_of",
    "options_of",
    "register",
    "register_stopping",
    "table_of",
    "toml_text",
    "toml_value",
]


class _Required:
    """Marker of an option with no default."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an option that a table must give.
REQUIRED: Any = _Required()

#: The value a configuration gives for None (TOML has no null).
NONE = "none"


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """One key of a configuration table: an init field of a dataclass or a keyword parameter.

    Attributes
    ----------
    name : str
        The key.
    default : object
        The default value (:data:`REQUIRED` when the table must give the key).
    annotation : object
        The type hint (for messages and ``dosezoo designs``).
    table : type or None
        A dataclass built from a sub-table, when the option's type is one.
    pieces : bool
        Whether the option is a tuple of stopping pieces (an array of tables with a type).
    nullable : bool
        Whether the option takes None (written ``"none"``).
    """

    name: str
    default: Any = REQUIRED
    annotation: Any = None
    table: type | None = None
    pieces: bool = False
    nullable: bool = False

    @property
    def required(self) -> bool:
        """Whether a table must give the key."""
        return self.default is REQUIRED

    @property
    def type_text(self) -> str:
        """The type hint as short text (``float | None``, ``tuple[float, float]``).

        An option that takes None has ``| None``, also when None is only its default (a field
        whose ``__post_init__`` replaces the default None keeps its value's type).
        """
        text = _type_text(self.annotation)
        if self.nullable and type(None) not in typing.get_args(self.annotation) and text:
            text += " | None"
        return text


def _type_text(hint: object) -> str:
    if hint is None:
        return ""
    if isinstance(hint, type) and not typing.get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    text = str(hint)
    for prefix in ("typing.", "collections.abc.", "dosezoo.designs.base.", "dosezoo."):
        text = text.replace(prefix, "")
    return text


def _hints(spec: Callable[..., Any]) -> dict[str, Any]:
    target = (
        spec.__init__  # type: ignore[misc]  # spec is a class: its own __init__
        if isinstance(spec, type) and not dataclasses.is_dataclass(spec)
        else spec
    )
    try:
        return typing.get_type_hints(target)
    except (NameError, TypeError):  # a hint that names what the module cannot see
        return {}


def _option(name: str, default: Any, hint: Any) -> Option:
    args = typing.get_args(hint)
    nullable = default is None or type(None) in args
    candidates = (
        [hint, *args]
        if args and typing.get_origin(hint) in (typing.Union, types.UnionType)
        else [hint]
    )
    table = next(
        (c for c in candidates if isinstance(c, type) and dataclasses.is_dataclass(c)), None
    )
    pieces = typing.get_origin(hint) is tuple and bool(args) and args[0] is Stopping
    return Option(name, default, hint, table, pieces, nullable)


def options_of(spec: Callable[..., Any], *, skip: Iterable[str] = ()) -> tuple[Option, ...]:
    """Return the options of a dataclass (its public init fields) or of a function.

    Parameters
    ----------
    spec : type or callable
        A dataclass, or a function whose keyword parameters are the options.
    skip : iterable of str
        Options the caller fills itself.

    Returns
    -------
    tuple of Option
        In the order of the fields (parameters); a ``default_factory`` is called for the
        default.
    """
    skipped = set(skip)
    hints = _hints(spec)
    options = []
    if isinstance(spec, type) and dataclasses.is_dataclass(spec):
        for f in dataclasses.fields(spec):
            if not f.init or f.name.startswith("_") or f.name in skipped:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = REQUIRED
            options.append(_option(f.name, default, hints.get(f.name)))
        return tuple(options)
    for parameter in inspect.signature(spec).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name.startswith("_") or parameter.name in skipped:
            continue
        default = REQUIRED if parameter.default is parameter.empty else parameter.default
        options.append(_option(parameter.name, default, hints.get(parameter.name)))
    return tuple(options)


# --------------------------------------------------------------------------- stopping pieces

_STOPPING_PIECES: Registry[type] = Registry(
    "register_stopping", lambda cls: cls.__qualname__, packages=("dosezoo.designs",)
)

#: Stopping pieces of the conduct by their ``type`` in a configuration (read-only).
STOPPING: Mapping[str, type] = _STOPPING_PIECES.entries


def register_stopping(name: str, cls: type) -> type:
    """Register a stopping piece (a dataclass with ``reason(data)``) under ``name``.

    Returns the class, so that it can decorate it. Raises ValueError if ``name`` is taken by
    another class.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_stopping: name must be a non-empty string, got {name!r}")
    if not (dataclasses.is_dataclass(cls) and callable(getattr(cls, "reason", None))):
        raise ValueError(
            f"register_stopping: {cls!r} must be a dataclass with a reason(data) method"
        )
    return _STOPPING_PIECES.add(name, cls)


def _stopping_name(piece: object) -> str:
    # The piece's class is loaded: look among the registered pieces before importing others.
    for name, cls in itertools.chain(_STOPPING_PIECES.loaded.items(), STOPPING.items()):
        if type(piece) is cls:
            return name
    raise ValueError(
        f"stopping piece {piece!r} is not registered; use register_stopping(name, class)"
    )


# --------------------------------------------------------------------------- encoding


def encode(value: Any) -> Any:
    """Return a value as TOML-able data: tuples as lists, dataclasses as tables."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return table_of(value)
    if isinstance(value, list | tuple | np.ndarray):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def table_of(obj: object, options: Sequence[Option] | None = None) -> dict[str, Any]:
    """Return the configuration table of a dataclass instance: its options' values.

    A None whose default is None is left out; a None whose default is not is written
    ``"none"``; stopping pieces become tables with their ``type``.

    Parameters
    ----------
    obj : object
        The instance (or any object with the options as attributes).
    options : sequence of Option, optional
        Which attributes to write; the dataclass's init fields by default.

    Returns
    -------
    dict
    """
    options = options_of(type(obj)) if options is None else options
    table: dict[str, Any] = {}
    for option in options:
        value = getattr(obj, option.name)
        if value is None:
            if option.default is not None:
                table[option.name] = NONE
            continue
        if option.pieces:
            table[option.name] = [{"type": _stopping_name(p), **table_of(p)} for p in value]
        else:
            table[option.name] = encode(value)
    return table


def toml_value(value: Any) -> str:
    """Format a value as it would appear in a TOML file (``0.25``, ``"plugin"``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return json.dumps(NONE)
    return repr(value)


def toml_text(config: Mapping[str, Mapping[str, Any]]) -> str:
    """Write configuration tables as TOML text (``tomllib.loads`` reads them back).

    Parameters
    ----------
    config : Mapping
        Sections (e.g. :func:`design_config`'s), each a table of TOML values, sub-tables and
        arrays of tables.

    Returns
    -------
    str
    """
    lines: list[str] = []

    def is_tables(value: object) -> bool:
        return (
            isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
        )

    def write(name: str, table: Mapping[str, Any], header: Sequence[str]) -> None:
        lines.append(f"{header[0]}{name}{header[1]}")
        for key, value in table.items():
            if not isinstance(value, Mapping) and not is_tables(value):
                lines.append(f"{key} = {toml_value(value)}")
        for key, value in table.items():
            if isinstance(value, Mapping):
                lines.append("")
                write(f"{name}.{key}", value, "[]")
        for key, value in table.items():
            if is_tables(value):
                for item in value:
                    lines.append("")
                    write(f"{name}.{key}", item, ("[[", "]]"))

    for number, (name, table) in enumerate(config.items()):
        if number:
            lines.append("")
        write(name, table, "[]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- decoding


def _fail(where: str, section: str, text: str) -> ConfigError:
    return ConfigError(f"{where}: [{section}] {text}")


def _located(
    error: Exception,
    where: str,
    sections: Sequence[tuple[str, Mapping[str, Any], Sequence[Option]]],
) -> ConfigError:
    """Turn a constructor's error into a ConfigError naming the section, key and value.

    The option the message names first (as a word) locates the key; its value is the one the
    table gave, or the default.
    """
    message = " ".join(str(error).split())
    best: tuple[int, str, str, str] | None = None
    for section, table, options in sections:
        for name in [*table, *(o.name for o in options if o.name not in table)]:
            match = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", message)
            if match and (best is None or match.start() < best[0]):
                shown = toml_value(table[name]) if name in table else "(default)"
                best = (match.start(), section, name, shown)
    if best is None:
        return ConfigError(f"{where}: [{sections[0][0]}] {message}")
    _, section, name, shown = best
    return ConfigError(f"{where}: [{section}] {name} = {shown}: {message}")


def _as_table(value: object, where: str, section: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: [{section}] must be a table, got {toml_value(value)}")
    return value


def _plain(value: Any) -> Any:
    """Return lists (of lists) as tuples, the rest as it is."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def decode(
    options: Sequence[Option],
    table: object,
    where: str,
    section: str,
    *,
    defaults: Iterable[str] = (),
) -> dict[str, Any]:
    """Check a configuration table against ``options``; return the constructor's keywords.

    Parameters
    ----------
    options : sequence of Option
        The keys the table may give.
    table : object
        The parsed table (a ConfigError unless a mapping).
    where : str
        The file, for messages.
    section : str
        The table's name, for messages (``"rule"``, ``"model.prior"``).
    defaults : iterable of str
        Required keys the caller fills when the table leaves them out.

    Returns
    -------
    dict
        Lists as tuples, sub-tables built into their dataclasses, ``"none"`` as None.

    Raises
    ------
    ConfigError
        For an unknown key, a missing required key or a sub-table that cannot be built.
    """
    table = _as_table(table, where, section)
    known = {option.name: option for option in options}
    for key, value in table.items():
        if key not in known:
            listed = ", ".join(known) or "none"
            raise _fail(
                where, section, f"unknown key {key!r} = {toml_value(value)}; keys: {listed}"
            )
    filled = set(defaults)
    for option in options:
        if option.required and option.name not in table and option.name not in filled:
            raise _fail(where, section, f"missing key {option.name!r}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        option = known[key]
        inner = f"{section}.{key}"
        if option.nullable and value == NONE:
            values[key] = None
        elif option.pieces:
            values[key] = tuple(
                _piece(item, where, f"{inner}[{i}]")
                for i, item in enumerate(_pieces(value, where, inner))
            )
        elif option.table is not None and isinstance(value, Mapping):
            values[key] = build(option.table, value, where, inner)
        elif _takes_array(option.annotation) and not isinstance(value, list | tuple | np.ndarray):
            # The constructors' own messages (e.g. "'float' object is not iterable") name
            # neither the key nor the value.
            raise _fail(
                where, section, f"{key} = {toml_value(value)}: must be an array, e.g. [1, 2]"
            )
        else:
            values[key] = _plain(value)
    return values


def _takes_array(annotation: object) -> bool:
    """Whether an option's type is a sequence only (a tuple, list or Sequence; not text).

    A union takes an array only when each of its types does, None aside.
    """
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        return bool(kinds) and all(_takes_array(kind) for kind in kinds)
    return origin in (tuple, list, Sequence) or annotation in (tuple, list)


def _pieces(value: object, where: str, section: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(
            f"{where}: [{section}] must be an array of tables ([[{section}]]), got "
            f"{toml_value(value)}"
        )
    return value


def _piece(item: object, where: str, section: str) -> object:
    table = dict(_as_table(item, where, section))
    listed = ", ".join(repr(name) for name in STOPPING)
    if "type" not in table:
        raise ConfigError(f"{where}: [{section}] needs a key type, one of {listed}")
    kind = table.pop("type")
    if kind not in STOPPING:
        raise ConfigError(
            f"{where}: [{section}] type = {toml_value(kind)}: must be one of {listed}"
        )
    return build(STOPPING[kind], table, where, section)


def build(spec: Callable[..., Any], table: object, where: str, section: str) -> Any:
    """Build a dataclass (or call a function) from a configuration table.

    Raises
    ------
    ConfigError
        Naming the file, the section, the key and the value at fault.
    """
    options = options_of(spec)
    values = decode(options, table, where, section)
    return construct(spec, values, where, [(section, _as_table(table, where, section), options)])


def construct(
    spec: Callable[..., Any],
    values: Mapping[str, Any],
    where: str,
    sections: Sequence[tuple[str, Mapping[str, Any], Sequence[Option]]],
) -> Any:
    """Call ``spec(**values)``; a TypeError or ValueError becomes a located ConfigError."""
    try:
        return spec(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise _located(error, where, sections) from None


# --------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Derived:
    """A conduct default computed from the family's model, rule and conduct (e.g. 6 per level).

    Attributes
    ----------
    text : str
        What ``dosezoo designs`` prints.
    value : callable
        ``value(model, rule, conduct)`` gives the default; ``rule`` is an instance of the
        family's own rule class, ``conduct`` the ``[conduct]`` options the configuration gives
        (decoded: a ``backfill`` table is a :class:`~dosezoo.designs.backfill.Backfill`).
    """

    text: str
    value: Callable[[DoseModel | None, Any, Mapping[str, Any]], Any]


class Parts(Protocol):
    """How a family's model and rule are built from their tables, and written back.

    :class:`PlainParts` (the default) calls the model's and the rule's constructors; a family
    whose model or rule needs more (a prior built from quantile statements, a rule composed
    of a stage-2 rule) writes its own.
    """

    def model_options(self) -> tuple[Option, ...]:
        """Return the keys of ``[model]`` (besides ``type``)."""
        ...

    def rule_options(self) -> tuple[Option, ...]:
        """Return the keys of ``[rule]``."""
        ...

    def build_model(self, options: dict[str, Any]) -> DoseModel | None:
        """Build the model from the decoded ``[model]`` keywords."""
        ...

    def build_rule(self, options: dict[str, Any], model_options: dict[str, Any]) -> Rule:
        """Build the rule from the decoded ``[rule]`` keywords (and ``[model]``'s, if shared)."""
        ...

    def tables(self, model: DoseModel | None, rule: Rule) -> tuple[dict, dict]:
        """Return the ``[model]`` and ``[rule]`` tables of a design's parts."""
        ...

    def owns(self, model: DoseModel | None, rule: Rule) -> bool:
        """Whether a design with these parts is of this family."""
        ...


@dataclass(frozen=True)
class PlainParts:
    """Model and rule built by their constructors from ``[model]`` and ``[rule]``."""

    model: type[DoseModel] | None
    rule: type[Rule]

    def model_options(self) -> tuple[Option, ...]:
        """Return the model's init fields (none without a model)."""
        return () if self.model is None else options_of(self.model)

    def rule_options(self) -> tuple[Option, ...]:
        """Return the rule's init fields."""
        return options_of(self.rule)

    def build_model(self, options: dict[str, Any]) -> DoseModel | None:
        """Return ``model(**options)``, or None for a family without a model."""
        return None if self.model is None else self.model(**options)

    def build_rule(self, options: dict[str, Any], model_options: dict[str, Any]) -> Rule:
        """Return ``rule(**options)``."""
        return self.rule(**options)

    def tables(self, model: DoseModel | None, rule: Rule) -> tuple[dict, dict]:
        """Return the init fields of the model and the rule."""
        model_table = {} if model is None else table_of(model, self.model_options())
        return model_table, table_of(rule, self.rule_options())

    def owns(self, model: DoseModel | None, rule: Rule) -> bool:
        """Exactly this rule class, and this model class (or no model)."""
        if type(rule) is not self.rule:
            return False
        return model is None if self.model is None else type(model) is self.model


@dataclass(frozen=True)
class Family:
    """A kind of design: a model, a rule, the family's conduct defaults and its example.

    Parameters
    ----------
    name : str
        Its ``[model] type`` in a configuration (``"crm"``, ``"3+3"``, ...).
    summary : str
        One line naming the design and its paper.
    model : type or None
        The model class (None for a rule that uses no model).
    rule : type
        The rule class.
    conduct : Mapping
        The family's conduct defaults over :class:`~dosezoo.designs.base.Conduct`'s (values
        may be :class:`Derived` from the model and rule).
    example : str
        The example configuration in ``examples/``.
    example_data : str
        The example trial data (CSV) in ``examples/`` for ``dosezoo next-dose``.
    parts : Parts, optional
        How the model and the rule are built from their tables when the constructors are not
        enough (:class:`PlainParts` of ``model`` and ``rule`` by default).
    """

    name: str
    summary: str
    model: type[DoseModel] | None
    rule: type[Rule]
    conduct: Mapping[str, Any] = field(default_factory=dict)
    example: str = ""
    example_data: str = ""
    parts: Parts | None = None

    def __post_init__(self) -> None:
        """Check the parts and keep a read-only copy of the conduct defaults."""
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"Family: name must be a non-empty string, got {self.name!r}")
        if not (isinstance(self.rule, type) and issubclass(self.rule, Rule)):
            raise ValueError(f"Family {self.name!r}: rule must be a Rule class, got {self.rule!r}")
        if self.model is not None and not (
            isinstance(self.model, type) and issubclass(self.model, DoseModel)
        ):
            raise ValueError(
                f"Family {self.name!r}: model must be a DoseModel class or None, got {self.model!r}"
            )
        known = {option.name for option in options_of(Conduct)}
        unknown = sorted(set(self.conduct) - known)
        if unknown:
            raise ValueError(f"Family {self.name!r}: {unknown[0]!r} is not a Conduct option")
        object.__setattr__(self, "conduct", MappingProxyType(dict(self.conduct)))
        if self.parts is None:
            object.__setattr__(self, "parts", PlainParts(self.model, self.rule))

    @property
    def _parts(self) -> Parts:
        assert self.parts is not None
        return self.parts

    @property
    def counts_only(self) -> bool:
        """Whether the family's rule decides from the counts per level (a count design)."""
        return issubclass(self.rule, CountRule)

    def model_options(self) -> tuple[Option, ...]:
        """Return the keys of ``[model]`` (besides ``type``)."""
        return self._parts.model_options()

    def rule_options(self) -> tuple[Option, ...]:
        """Return the keys of ``[rule]``."""
        return self._parts.rule_options()

    def conduct_options(self) -> tuple[Option, ...]:
        """Return the keys of ``[conduct]``, with the family's defaults."""
        return tuple(
            dataclasses.replace(option, default=self.conduct[option.name])
            if option.name in self.conduct
            else option
            for option in options_of(Conduct)
        )

    def owns(self, design: Design) -> bool:
        """Whether ``design`` is of this family."""
        return self._parts.owns(design.model, design.rule)

    def build(
        self,
        model: Mapping[str, Any],
        rule: Mapping[str, Any],
        conduct: Mapping[str, Any],
        where: str,
    ) -> Design:
        """Build the design from its ``[model]`` (without ``type``), ``[rule]`` and ``[conduct]``.

        Raises
        ------
        ConfigError
            Naming the file, the section, the key and the value at fault.
        """
        parts = self._parts
        model_options, rule_options = parts.model_options(), parts.rule_options()
        conduct_options = options_of(Conduct)
        model_values = decode(model_options, model, where, "model")
        built_model = construct(
            parts.build_model, {"options": model_values}, where, [("model", model, model_options)]
        )
        rule_values = decode(rule_options, rule, where, "rule")
        built_rule = construct(
            parts.build_rule,
            {"options": rule_values, "model_options": model_values},
            where,
            [("rule", rule, rule_options), ("model", model, model_options)],
        )
        conduct_values = decode(conduct_options, conduct, where, "conduct")
        defaults = {
            key: (
                value.value(built_model, built_rule, conduct_values)
                if isinstance(value, Derived)
                else value
            )
            for key, value in self.conduct.items()
        }
        sections = [
            ("conduct", conduct, conduct_options),
            ("rule", rule, rule_options),
            ("model", model, model_options),
        ]
        built_conduct = construct(Conduct, defaults | conduct_values, where, sections[:1])
        return construct(
            Design,
            {"model": built_model, "rule": built_rule, "conduct": built_conduct},
            where,
            sections,
        )

    def tables(self, design: Design) -> dict[str, dict[str, Any]]:
        """Return the ``[model]`` (with ``type``), ``[rule]`` and ``[conduct]`` of a design."""
        model, rule = self._parts.tables(design.model, design.rule)
        return {
            "model": {"type": self.name, **model},
            "rule": rule,
            "conduct": table_of(design.conduct),
        }


_FAMILIES: Registry[Family] = Registry(
    "register", lambda family: f"rule {family.rule.__qualname__}", packages=("dosezoo.designs",)
)
# A rule's module may also register the scenario type its reference design needs.
search_scenarios_in("dosezoo.designs")

#: The registered families by name (read-only; :func:`register` adds one).
FAMILIES: Mapping[str, Family] = _FAMILIES.entries


def register(family: Family) -> Family:
    """Register a family under its name (done by the family's rule module).

    Registering again a family of the same name and rule class (a module imported twice)
    replaces it.

    Raises
    ------
    ValueError
        If another family has that name.
    """
    if not isinstance(family, Family):
        raise ValueError(f"register: expected a Family, got {family!r}")
    return _FAMILIES.add(family.name, family)


def family_of(design: Design) -> Family:
    """Return the registered family of a design.

    Raises
    ------
    ValueError
        If no registered family owns it.
    """
    # The design's family is registered (its rule's module is loaded): look there first, and
    # import the other families' modules only if it is not.
    for family in itertools.chain(_FAMILIES.loaded.values(), FAMILIES.values()):
        if family.owns(design):
            return family
    raise ValueError(
        f"no registered family has the rule {type(design.rule).__name__} with the model "
        f"{type(design.model).__name__}; register a Family for it"
    )


def design_config(design: Design) -> dict[str, dict[str, Any]]:
    """Return a design as configuration tables: ``model`` (with ``type``), ``rule``, ``conduct``.

    The inverse of :func:`design_from_config`: ``design_from_config(design_config(d), where)``
    equals ``d``. Every option is written, defaults included.

    Parameters
    ----------
    design : Design

    Returns
    -------
    dict
        Nested dicts and lists of TOML values.
    """
    return family_of(design).tables(design)


def design_from_config(config: Mapping[str, Any], where: str) -> Design:
    """Build the design of a parsed configuration (its ``[model]``, ``[rule]``, ``[conduct]``).

    Parameters
    ----------
    config : Mapping
        The parsed TOML; a ``[backfill]`` table is the conduct's ``backfill`` (other
        sections are left to the caller).
    where : str
        The file, named in messages.

    Returns
    -------
    Design

    Raises
    ------
    ConfigError
        Naming the file, the section, the key and the value at fault.
    """
    model = dict(_as_table(config.get("model", {}), where, "model"))
    kind = model.pop("type", None)
    listed = ", ".join(repr(name) for name in FAMILIES)
    if kind is None:
        raise _fail(where, "model", f"missing key 'type' (one of {listed})")
    family = FAMILIES.get(kind) if isinstance(kind, str) else None
    if family is None:
        raise _fail(where, "model", f"type must be one of {listed}, got {toml_value(kind)}")
    conduct = config.get("conduct", {})
    if "backfill" in config:
        conduct = dict(_as_table(conduct, where, "conduct"))
        if "backfill" in conduct:
            raise _fail(
                where, "backfill", "given twice: as [backfill] and as [conduct.backfill]; keep one"
            )
        conduct["backfill"] = config["backfill"]
    return family.build(model, config.get("rule", {}), conduct, where)
