"""Checks of options shared by every model, rule, conduct and scenario.

Each check returns the value in its canonical type (a float, an int, a bool) or raises a
ValueError whose message names the owner (the class or function), the option and the value,
e.g. ``"CRM: target must lie in (0, 1), got 1.5"``. Nothing is coerced silently: a bool is not
a number, a float is not an integer, a string is not a probability.
"""

import math
from collections.abc import Collection
from typing import TypeGuard

import numpy as np

__all__ = [
    "choice",
    "doses_within",
    "flag",
    "integer",
    "positive_int",
    "positive_number",
    "probability",
    "probability_array",
    "real_array",
    "real_number",
    "worker_count",
]


def _is_real(value: object) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``value`` is a real number: a bool is not, nor is text that reads as one."""
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def real_number(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float; raise a ValueError naming ``owner.name`` unless finite real."""
    if not _is_real(value):
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def real_array(owner: str, name: str, values: object) -> np.ndarray:
    """Return ``values`` as a 1-D float array; a ValueError unless every one is a real number.

    Text and bools are refused (numpy would read ``"0.5"`` and ``True`` as 0.5 and 1.0),
    naming the first value at fault; finiteness is the caller's to check.
    """
    items = number_array(owner, name, values)
    if items.ndim > 1:
        raise ValueError(
            f"{owner}: {name} must be one sequence of numbers, got {items.ndim} dimensions"
        )
    return np.atleast_1d(items).astype(float)


def number_array(owner: str, name: str, values: object, *, entry: str = "row") -> np.ndarray:
    """Return ``values`` as an array of numbers; a ValueError naming the first that is not one.

    Text and bools are refused (numpy would read ``"3"`` and ``True`` as 3 and 1), naming the
    value and its ``entry`` (the first index). The shape is kept; an array of integers or
    floats is returned as it is, other values that are all numbers as floats. A sequence is
    read item by item (``np.asarray([True, 0.5])`` would be floats already).
    """
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.dtype.kind in "iuf":
        return array
    items = array.astype(object)
    for index in np.ndindex(items.shape):
        if not _is_real(items[index]):
            where = f" ({entry} {index[0]})" if items.ndim else ""
            raise ValueError(f"{owner}: {name}{where} holds {items[index]!r}, not a number")
    return items.astype(float)


def check_quantile_level(p: object) -> None:
    """Raise ValueError unless ``p`` is a real number in [0, 1] (not NaN, a bool or text)."""
    if not (_is_real(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"quantile: p must lie in [0, 1], got {p!r}")


def check_cdf_point(x: object) -> None:
    """Raise ValueError unless ``x`` is a real number (a NaN reads as below or above every draw)."""
    if not _is_real(x) or x != x:
        raise ValueError(f"cdf: x must be a number, got {x!r}")


def doses_within(
    owner: str,
    doses: object,
    low: float,
    high: float,
    *,
    entry: str = "patient",
    space: str = "the scenario's dose range",
) -> np.ndarray:
    """Return ``doses`` as a float array; a ValueError unless each is finite in [low, high].

    For a scenario, whose truth is defined on its dose range only (outside it a curve may be
    NaN, or extrapolated silently), or a model's design space; the message names the first
    dose at fault, its ``entry`` (its row) and the ``space`` it lies outside.
    """
    values = np.asarray(number_array(owner, "dose", doses, entry=entry), dtype=float)
    outside = ~(np.isfinite(values) & (values >= low) & (values <= high))
    if outside.any():
        first = int(np.argmax(outside.ravel()))
        row = int(np.unravel_index(first, values.shape)[0]) if values.ndim else 0
        raise ValueError(
            f"{owner}: dose {float(values.ravel()[first])!r} ({entry} {row}) lies outside "
            f"{space} [{low:g}, {high:g}]"
        )
    return values


def first_not_whole(values: np.ndarray, minimum: float = -np.inf) -> tuple[int, ...] | None:
    """Index of the first value that is not a whole number >= ``minimum``, or None.

    NaN and infinities are not whole numbers. For counts given as floats: a cast alone
    truncates 3.5 patients to 3, reads NaN as -2**63, and a NaN fails every comparison.
    """
    return first_true(~(np.isfinite(values) & (values >= minimum) & (values == np.round(values))))


def first_true(mask: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first True of ``mask`` (in C order), or None when there is none."""
    if not mask.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask.ravel())), mask.shape))


def index_text(index: tuple[int, ...]) -> str:
    """``index`` as a message names an entry: ``"[2]"``, ``"[1, 0]"``; ``""`` for a scalar."""
    return f"[{', '.join(map(str, index))}]" if index else ""


def positive_number(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float; raise a ValueError unless it is a finite real number > 0."""
    number = real_number(owner, name, value)
    if number <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}")
    return number


def probability(owner: str, name: str, value: object, *, closed: bool = False) -> float:
    """Return ``value`` as a float in (0, 1), or in [0, 1] when ``closed``; else a ValueError."""
    number = real_number(owner, name, value)
    if not (0 <= number <= 1 if closed else 0 < number < 1):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{owner}: {name} must lie in {interval}, got {value!r}")
    return number


def probability_array(owner: str, name: str, values: object) -> np.ndarray:
    """Return ``values`` as a float array of probabilities, each in [0, 1]; else a ValueError.

    The shape is kept. Text and bools are refused as :func:`number_array` refuses them; a NaN,
    an infinity or a value off [0, 1] is named with its index.
    """
    array = np.asarray(number_array(owner, name, values, entry="index"), dtype=float)
    index = first_true(~((array >= 0.0) & (array <= 1.0)))
    if index is not None:
        raise ValueError(
            f"{owner}: {name}{index_text(index)} must lie in [0, 1], got {float(array[index])!r}"
        )
    return array


#: The largest integer an option may take: a 64-bit count (numpy's, and the sizes, seeds and
#: draws the samplers pass to compiled code). A larger one overflowed there, or ran for ever.
LARGEST_INTEGER = 2**63 - 1


def integer(owner: str, name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int; raise a ValueError unless it is an integer >= ``minimum``.

    At most :data:`LARGEST_INTEGER`.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    if value > LARGEST_INTEGER:
        raise ValueError(f"{owner}: {name} must be at most 2**63 - 1, got {value!r}")
    return int(value)


def positive_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as an int; raise a ValueError naming ``owner.name`` unless an int >= 1."""
    return integer(owner, name, value, minimum=1)


def sampler_sizes(owner: str, draws: object, tune: object, chains: object) -> tuple[int, int, int]:
    """Return a sampler's ``draws`` (>= 1), ``tune`` (>= 0) and ``chains`` (>= 1) as ints.

    A ValueError names the one at fault: a float would be truncated (or fail inside a compiled
    kernel), a bool read as 1, and no draws or chains leave an empty posterior.
    """
    return (
        positive_int(owner, "draws", draws),
        integer(owner, "tune", tune, minimum=0),
        positive_int(owner, "chains", chains),
    )


def worker_count(owner: str, name: str, value: object) -> int:
    """Return a number of worker processes: an integer >= 1, or -1 for one per CPU."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value == -1:
        return -1
    try:
        return positive_int(owner, name, value)
    except ValueError:
        raise ValueError(
            f"{owner}: {name} must be a positive integer or -1 (one per CPU); got {value!r}"
        ) from None


def flag(owner: str, name: str, value: object) -> bool:
    """Return ``value`` as a bool; raise a ValueError unless it is True or False."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def choice(owner: str, name: str, value: object, options: Collection[object]) -> object:
    """Return ``value`` if it is one of ``options``; else a ValueError listing them.

    One of them means of its type and equal to it: ``1`` is not ``True``, and an array holding
    an option is not the option.
    """
    if not any(isinstance(value, type(option)) and value == option for option in options):
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{owner}: {name} must be one of {listed}, got {value!r}")
    return value
