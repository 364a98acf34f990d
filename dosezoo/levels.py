"""Checks and counts shared by the dose-level models and designs.

Options are validated with messages that name the class, the field and the value; dose levels
are finite, positive and strictly increasing; data are mapped to 0-based levels with errors that
name the row and the dose.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dosezoo.data import TrialData
from dosezoo.errors import DataError

__all__ = [
    "LevelCounts",
    "level_counts",
    "level_index",
    "positive_int",
    "real_number",
    "validate_dose_levels",
    "validate_start_dose",
]


def real_number(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float; raise a ValueError naming ``owner.name`` unless finite real."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def positive_int(owner: str, name: str, value: object) -> int:
    """Return ``value`` as an int; raise a ValueError naming ``owner.name`` unless an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def validate_dose_levels(owner: str, levels: object) -> tuple[float, ...]:
    """Validate dose levels: finite, positive, strictly increasing; return them as floats.

    Parameters
    ----------
    owner : str
        Class named in error messages.
    levels : sequence of float
        The candidate doses, lowest first.

    Returns
    -------
    tuple of float

    Raises
    ------
    ValueError
        Naming ``dose_levels`` and the offending value.
    """
    if isinstance(levels, str | bytes) or not isinstance(levels, Sequence | np.ndarray):
        raise ValueError(f"{owner}: dose_levels must be a sequence of doses, got {levels!r}")
    values = tuple(real_number(owner, f"dose_levels[{i}]", v) for i, v in enumerate(levels))
    if not values:
        raise ValueError(f"{owner}: dose_levels must hold at least one dose, got {levels!r}")
    for i, value in enumerate(values):
        if value <= 0:
            raise ValueError(f"{owner}: dose_levels[{i}] must be > 0, got {value!r}")
        if i and value <= values[i - 1]:
            raise ValueError(
                f"{owner}: dose_levels must be strictly increasing, got {value!r} after "
                f"{values[i - 1]!r} (dose_levels[{i}])"
            )
    return values


def validate_start_dose(owner: str, start_dose: object, levels: tuple[float, ...]) -> float:
    """Return the start dose as a float: one of ``levels``, the lowest when ``None``."""
    if start_dose is None:
        return levels[0]
    start = real_number(owner, "start_dose", start_dose)
    if start not in levels:
        raise ValueError(
            f"{owner}: start_dose {start_dose!r} is not one of the dose levels {levels}"
        )
    return start


class LevelCounts(NamedTuple):
    """Patients and DLTs per dose level, and the level of the current (last) dose."""

    n: np.ndarray
    """Patients per level, int64, shape (K,)."""
    y: np.ndarray
    """DLTs per level, int64, shape (K,)."""
    current: int
    """Level index of the last patient's dose (-1 when there are no patients)."""


def level_index(dose: np.ndarray, dose_levels: tuple[float, ...], *, owner: str) -> np.ndarray:
    """Return each patient's 0-based dose level.

    Parameters
    ----------
    dose : numpy.ndarray
        Each patient's dose, shape (n,).
    dose_levels : tuple of float
        The levels, increasing.
    owner : str
        Class named in error messages.

    Returns
    -------
    numpy.ndarray
        int64, shape (n_patients,).

    Raises
    ------
    DataError
        If a dose is not one of ``dose_levels`` (naming the row and the value).
    """
    dose = np.asarray(dose, dtype=float)
    levels = np.asarray(dose_levels, dtype=float)
    index = np.minimum(np.searchsorted(levels, dose), levels.size - 1)
    off = levels[index] != dose
    if off.any():
        row = int(np.argmax(off))
        raise DataError(
            f"{owner}: column 'dose', row {row}: dose {float(dose[row])!r} is not one of the "
            f"dose levels {dose_levels}"
        )
    return index.astype(np.int64)


def level_counts(data: TrialData, dose_levels: tuple[float, ...], *, owner: str) -> LevelCounts:
    """Count patients and DLTs per dose level.

    Parameters
    ----------
    data : TrialData
        One dose column and a ``dlt`` outcome (0/1, validated by TrialData).
    dose_levels : tuple of float
        The design's levels, increasing.
    owner : str
        Design named in error messages.

    Returns
    -------
    LevelCounts

    Raises
    ------
    DataError
        If the data lack ``dlt`` or a dose is not one of ``dose_levels`` (naming row and
        value).
    """
    if not isinstance(data, TrialData):
        raise TypeError(f"{owner} needs a TrialData, got {type(data).__name__}")
    data.require("dlt", min_patients=0, model=owner)
    index = level_index(data.dose, dose_levels, owner=owner)
    dlt = np.asarray(data.column("dlt"), dtype=np.int64)
    size = len(dose_levels)
    return LevelCounts(
        n=np.bincount(index, minlength=size).astype(np.int64),
        y=np.bincount(index, weights=dlt, minlength=size).astype(np.int64),
        current=int(index[-1]) if index.size else -1,
    )
