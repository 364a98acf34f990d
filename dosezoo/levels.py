"""Checks and counts shared by the dose-level models and designs.

Options are validated with messages that name the class, the field and the value; dose levels
are finite, positive and strictly increasing; data are mapped to 0-based levels with errors that
name the row and the dose.
"""

import functools
import operator
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from dosezoo.checks import first_not_whole, number_array, real_number
from dosezoo.data import TrialData
from dosezoo.errors import DataError
from dosezoo.lazy import compiled

__all__ = [
    "NO_EVENTS",
    "CountStates",
    "LastCohorts",
    "LevelCounts",
    "checked_events",
    "checked_last_cohorts",
    "count_state",
    "data_from_counts",
    "format_rows",
    "last_true",
    "level_counts",
    "level_index",
    "validate_dose_levels",
    "validate_start_dose",
]


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


#: The event counts of a count state that counts DLTs only.
NO_EVENTS: Mapping[str, np.ndarray] = MappingProxyType({})


class CountStates(NamedTuple):
    """A batch of ``m`` count states: patients and DLTs per level, and the current level.

    A rule that counts more than DLTs (e.g. responses, for a phase I/II design) keeps the
    other counts in ``events``, each of the shape of ``n``.
    """

    n: np.ndarray
    """Patients per level, int64, shape (m, K)."""
    y: np.ndarray
    """DLTs per level, int64, shape (m, K)."""
    current: np.ndarray
    """Level of each state's last cohort, -1 before the first patient, int64, shape (m,)."""
    events: Mapping[str, np.ndarray] = NO_EVENTS
    """Other events per level by name (e.g. ``"eff"``), int64, shape (m, K) each."""


class LastCohorts(NamedTuple):
    """The last cohort of each of ``m`` count states: its patients and DLTs.

    The last cohort was given the state's current level. A rule that reads it besides the
    counts (dfcrm's coherent CRM: no escalation after a cohort with too many DLTs) decides on
    the count state with these.
    """

    n: np.ndarray
    """Patients of the last cohort, int64, shape (m,); 0 before the first patient."""
    y: np.ndarray
    """DLTs of the last cohort, int64, shape (m,)."""


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
    return np.array(_level_list(dose, dose_levels, owner), dtype=np.int64)


def _level_list(dose: np.ndarray, dose_levels: tuple[float, ...], owner: str) -> list[int]:
    """Return each patient's 0-based dose level as a list (see :func:`level_index`)."""
    # On Python floats, by a lookup of each dose: the arrays are a trial's patients or the
    # distinct doses of its summary, for which numpy's calls cost several times the lookups.
    position = _positions(tuple(dose_levels))
    try:
        doses = np.asarray(number_array(owner, "column 'dose'", dose), dtype=float).tolist()
    except ValueError as error:  # text or a bool: numpy would read "10" and True as doses
        raise DataError(str(error)) from None
    index = [position.get(value, -1) for value in doses]
    if -1 in index:
        row = index.index(-1)
        raise DataError(
            f"{owner}: column 'dose', row {row}: dose {doses[row]!r} is not one of the "
            f"dose levels {dose_levels}"
        )
    return index


@functools.lru_cache(maxsize=64)
def _positions(dose_levels: tuple[float, ...]) -> dict[float, int]:
    """Return ``{dose: 0-based level}`` of the levels (do not modify: it is shared)."""
    return {float(dose): k for k, dose in enumerate(dose_levels)}


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
        Its arrays are read-only: the counts of the last data asked about are kept and shared
        by every caller asking about the same data again.

    Raises
    ------
    DataError
        If the data lack ``dlt`` or a dose is not one of ``dose_levels`` (naming row and
        value).
    """
    global _last_counts
    if not isinstance(data, TrialData):
        raise TypeError(f"{owner} needs a TrialData, got {type(data).__name__}")
    levels = tuple(dose_levels)
    last = _last_counts
    if last is not None and last[0] is data and last[1] == levels:
        return last[2]
    counts = _counted(data, dose_levels, owner)  # the levels as given, for the messages
    _last_counts = (data, levels, counts)
    return counts


#: The last data :func:`level_counts` counted, their levels and the counts: a decision asks for
#: the counts of the same data several times (the rule, the conduct, the backfill). Data are
#: immutable and the data kept cannot be freed, so ``is`` cannot mistake other data for them;
#: the counts are read-only, being shared.
_last_counts: tuple[TrialData, tuple[float, ...], LevelCounts] | None = None


def _counted(data: TrialData, dose_levels: tuple[float, ...], owner: str) -> LevelCounts:
    data.require("dlt", min_patients=0, model=owner)
    index = _level_list(data.dose, dose_levels, owner)
    # Counted on Python ints, as the levels are looked up: a trial has a few dozen patients.
    n, y = [0] * len(dose_levels), [0] * len(dose_levels)
    for level, dlt in zip(index, data.column("dlt").tolist(), strict=True):
        n[level] += 1
        y[level] += dlt
    # The current level is the escalation's: backfill patients get lower doses meanwhile.
    last = data.last_dose
    assert not isinstance(last, tuple)  # one dose column: data.dose above
    counts = LevelCounts(
        n=np.array(n, dtype=np.int64),
        y=np.array(y, dtype=np.int64),
        current=-1 if last is None else _positions(tuple(dose_levels))[last],
    )
    counts.n.flags.writeable = counts.y.flags.writeable = False
    return counts


def format_rows(template: str, rows: np.ndarray, **columns: ArrayLike) -> list[str]:
    """Format ``template`` once for each selected row, with that row's values.

    Array rules (decisions for a batch of trials at once) explain their stops in text; this
    builds the text of just the rows that need it, so that one template serves a batch of
    any size, a batch of one included.

    Parameters
    ----------
    template : str
        A `str.format` template naming the columns, e.g. ``"{y} DLTs in {n} patients"``.
    rows : numpy.ndarray
        Boolean mask, shape (m,), of the rows to format.
    **columns : numpy.ndarray or scalar
        Values named in the template: arrays of shape (m,), or scalars shared by every row.

    Returns
    -------
    list of str
        One text per selected row, in row order.
    """
    selected = np.flatnonzero(rows)
    if not selected.size:  # the common case in a decision: no row stops
        return []
    per_row = {name: np.asarray(value) for name, value in columns.items() if np.ndim(value)}
    shared = {name: value for name, value in columns.items() if not np.ndim(value)}
    return [
        template.format(**shared, **{name: value[i] for name, value in per_row.items()})
        for i in selected
    ]


def checked_counts(owner: str, name: str, values: object) -> np.ndarray:
    """Return counts as int64; a ValueError naming the first one that is not a whole number.

    (:func:`~dosezoo.checks.first_not_whole`: a cast alone would truncate or wrap it), or
    that is not a number (text or a bool, which numpy would read as one).
    """
    array = number_array(owner, name, values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    numbers = np.asarray(array, dtype=float)
    index = first_not_whole(numbers)
    if index is not None:
        row = f" row {index[0]}" if numbers.ndim else ""
        raise ValueError(
            f"{owner}: {name}{row} holds {float(numbers[index])!r}, not a whole number"
        )
    return numbers.astype(np.int64)


def checked_level_indices(owner: str, levels: object, n_levels: int) -> np.ndarray:
    """Return 0-based dose levels (any shape) as an array; a ValueError unless integers in [0, K).

    numpy would read -1 as the top level and truncate 1.7 to level 1.
    """
    array = np.asarray(levels)
    if array.size and (array.dtype.kind not in "iu" or array.min() < 0 or array.max() >= n_levels):
        raise ValueError(
            f"{owner}: levels must be integers in [0, {n_levels}), got "
            f"{array.ravel()[:10].tolist()}"
        )
    return array


def checked_trial_counts(
    owner: str, n: object, y: object, selected: object, treated: object, n_levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the counts of ``m`` finished trials a scenario scores; return them as int64.

    ``n`` and ``y`` (m, K) patients and DLTs per level with ``0 <= y <= n``, ``selected``
    (m,) the level of each recommendation (-1: none) and ``treated`` (m,) each trial's
    patients, ``n``'s row sums. A ValueError names the first trial at fault.
    """
    n, y = checked_counts(owner, "n", n), checked_counts(owner, "y", y)
    selected = checked_counts(owner, "selected", selected)
    treated = checked_counts(owner, "treated", treated)
    m = selected.shape[0] if selected.ndim == 1 else -1
    if n.shape != (m, n_levels) or y.shape != n.shape or treated.shape != (m,):
        raise ValueError(
            f"{owner}: n and y must have shape (m, {n_levels}), selected and treated (m,); got "
            f"{n.shape}, {y.shape}, {selected.shape} and {treated.shape}"
        )
    bad = (
        np.any((y < 0) | (y > n), axis=1)
        | (selected < -1)
        | (selected >= n_levels)
        | (treated != n.sum(axis=1))
    )
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: trial {row} has n={n[row].tolist()}, y={y[row].tolist()}, "
            f"selected={int(selected[row])}, treated={int(treated[row])} (need 0 <= y <= n, "
            f"selected a level or -1, treated the patients of n)"
        )
    return n, y, selected, treated


def checked_level_pair(
    owner: str, n: object, y: object, n_levels: int, *, events: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Check patients ``n`` and events ``y`` per level; return them as float arrays, (K,) each.

    Whole numbers (not text or bools) with ``0 <= y <= n``, one per level; a ValueError
    names the level and the values at fault. For the kernels that take counts per level
    directly (their simulation loops), whose data checks do not run.
    """
    patients, counted = checked_counts(owner, "n", n), checked_counts(owner, events, y)
    if patients.shape != (n_levels,) or counted.shape != (n_levels,):
        raise ValueError(
            f"{owner}: n and {events} must hold one count per dose level ({n_levels}), got "
            f"shapes {patients.shape} and {counted.shape}"
        )
    bad = (patients < 0) | (counted < 0) | (counted > patients)
    if bad.any():
        level = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: level {level} has n = {int(patients[level])} and {events} = "
            f"{int(counted[level])}; counts need 0 <= {events} <= n"
        )
    return patients.astype(float), counted.astype(float)


def count_state(
    owner: str,
    n: object,
    y: object,
    current: object,
    n_levels: int,
    events: Mapping[str, object] | None = None,
) -> CountStates:
    """Check a batch of count states and return it as int64 arrays.

    Parameters
    ----------
    owner : str
        Rule named in error messages.
    n, y : array_like
        Patients and DLTs per level, shape (m, n_levels), with ``0 <= y <= n``.
    current : array_like
        Level of each state's last cohort, shape (m,): a level with patients, or -1 when
        there are no patients.
    n_levels : int
        The rule's number of dose levels.
    events : mapping of str to array_like, optional
        Other event counts per level, each of the shape of ``n`` with ``0 <= count <= n``.

    Returns
    -------
    CountStates
        ``(n, y, current, events)`` as int64.

    Raises
    ------
    ValueError
        If a shape is wrong, or naming the first row whose counts are impossible.
    """
    n, y = checked_counts(owner, "n", n), checked_counts(owner, "y", y)
    current = checked_counts(owner, "current", current)
    if n.ndim != 2 or n.shape[1] != n_levels or y.shape != n.shape or current.shape != n.shape[:1]:
        raise ValueError(
            f"{owner}: counts n and y must have shape (m, {n_levels}) and current (m,), got "
            f"{n.shape}, {y.shape} and {current.shape}"
        )
    rows = np.arange(current.size)
    bad = (
        np.any((y < 0) | (y > n), axis=1)
        | (current < -1)
        | (current >= n_levels)
        | ((current >= 0) & (n[rows, np.clip(current, 0, n_levels - 1)] == 0))
        | ((current == -1) & np.any(n > 0, axis=1))
    )
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: count state row {row} is impossible: n={n[row].tolist()}, "
            f"y={y[row].tolist()}, current={int(current[row])} (need 0 <= y <= n, and current "
            "a level with patients, or -1 when there are none)"
        )
    return CountStates(n, y, current, checked_events(owner, n, events))


def checked_events(
    owner: str, n: np.ndarray, events: Mapping[str, object] | None
) -> Mapping[str, np.ndarray]:
    """Check the event counts of count states with patients ``n`` (m, K); return them as int64.

    Each of the shape of ``n`` with ``0 <= count <= n`` (:func:`count_state`); a read-only
    mapping, `NO_EVENTS` when there are none.

    Raises
    ------
    ValueError
        If a shape is wrong, or naming the first row whose counts are impossible.
    """
    checked: dict[str, np.ndarray] = {}
    for name, values in (events or {}).items():
        counts = checked_counts(owner, f"event counts {name!r}", values)
        if counts.shape != n.shape:
            raise ValueError(
                f"{owner}: event counts {name!r} must have shape {n.shape}, got {counts.shape}"
            )
        wrong = np.any((counts < 0) | (counts > n), axis=1)
        if wrong.any():
            row = int(np.argmax(wrong))
            raise ValueError(
                f"{owner}: count state row {row} is impossible: {name}={counts[row].tolist()} "
                f"with n={n[row].tolist()} (need 0 <= {name} <= n)"
            )
        checked[name] = counts
    return MappingProxyType(checked) if checked else NO_EVENTS


def checked_last_cohorts(
    owner: str, states: CountStates, last_cohort: tuple[ArrayLike, ArrayLike]
) -> LastCohorts:
    """Check the last cohorts of count states ``states``; return them as int64.

    Parameters
    ----------
    owner : str
        Rule named in error messages.
    states : CountStates
        Checked count states (:func:`count_state`).
    last_cohort : pair of array_like
        Patients and DLTs of each state's last cohort, each of shape (m,): at least one
        patient at the current level (none before the first patient), with
        ``0 <= DLTs <= patients`` and both parts of the level's counts.

    Raises
    ------
    ValueError
        If a shape is wrong, or naming the first row whose last cohort is impossible.
    """
    patients, dlts = (
        checked_counts(owner, f"the last cohorts' {name}", part)
        for name, part in zip(("patients", "DLTs"), last_cohort, strict=True)
    )
    m = states.current.size
    if patients.shape != (m,) or dlts.shape != (m,):
        raise ValueError(
            f"{owner}: the last cohorts' patients and DLTs must have shape ({m},), got "
            f"{patients.shape} and {dlts.shape}"
        )
    at = np.maximum(states.current, 0)
    rows = np.arange(m)
    n_current, y_current = states.n[rows, at], states.y[rows, at]
    started = states.current >= 0
    bad = (
        (dlts < 0)
        | (dlts > patients)
        | np.where(started, (patients < 1) | (patients > n_current), patients != 0)
        | (dlts > y_current)
        | (patients - dlts > n_current - y_current)
    )
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: count state row {row} has an impossible last cohort: "
            f"{int(patients[row])} patients with {int(dlts[row])} DLTs at level "
            f"{int(states.current[row])}, where n={states.n[row].tolist()}, "
            f"y={states.y[row].tolist()} (need 0 <= DLTs <= patients, at least one patient "
            "once the trial started, and no more patients or DLTs than the level has)"
        )
    return LastCohorts(patients, dlts)


def last_true(mask: np.ndarray) -> np.ndarray:
    """Return the index of the last True of each row of a 2-d mask, -1 for a row with none."""
    columns = mask.shape[1]
    return np.where(mask.any(axis=1), columns - 1 - np.argmax(mask[:, ::-1], axis=1), -1)


def selected_level(owner: str, dose: float | None, levels: Sequence[float]) -> int:
    """Return the 0-based level of a recommended dose, -1 for none (a stop).

    Raises
    ------
    ValueError
        If ``dose`` is not one of ``levels``, naming the owner and the dose.
    """
    if dose is None:
        return -1
    if float(dose) not in levels:
        raise ValueError(f"{owner}: selected dose {dose!r} is not one of the dose levels {levels}")
    return list(levels).index(float(dose))


@functools.lru_cache(maxsize=64)
def _checked_levels(levels: tuple) -> tuple[float, ...]:
    """Return the dose levels of :func:`data_from_counts`, validated once per tuple."""
    return validate_dose_levels("data_from_counts", levels)


#: The types of a whole number given as a level or a count: Python's and numpy's integers.
_INTEGERS = (int, np.integer)


def _check_count_state(
    n: np.ndarray,
    y: np.ndarray,
    patients: list,
    dlts: list,
    current: int,
    n_levels: int,
    last_cohort: tuple[int, int] | None,
) -> None:
    """Raise ValueError unless one count state can be turned into data.

    ``patients`` and ``dlts`` are ``n`` and ``y`` as lists.

    On Python values, for one state (the lockstep engine checks its batches with
    :func:`count_state` and skips this): integers with ``0 <= y <= n`` per level, ``current``
    a level with patients (-1 with none), and a last cohort of at least one patient within the
    current level's patients and DLTs (none, or ``(0, 0)``, before the first patient), as
    :func:`count_state` and :func:`checked_last_cohorts` check a batch.
    """
    if (
        n.dtype.kind in "iu"
        and y.dtype.kind in "iu"
        and n.ndim == y.ndim == 1
        and isinstance(current, _INTEGERS)
        and len(patients) == len(dlts) == n_levels
        and min(dlts, default=0) >= 0
        and all(map(operator.le, dlts, patients))
    ):
        if current == -1:  # no patients, and no last cohort (or one of none)
            possible = not any(patients) and tuple(last_cohort or (0, 0)) == (0, 0)
        else:
            possible = 0 <= current < n_levels and patients[current] > 0
        if possible and last_cohort is not None and current != -1:
            size, events = last_cohort
            possible = (
                isinstance(size, _INTEGERS)
                and isinstance(events, _INTEGERS)
                and 1 <= size <= patients[current]
                and 0 <= events <= min(size, dlts[current])
                and size - events <= patients[current] - dlts[current]
            )
        if possible:
            return
    raise ValueError(
        f"data_from_counts: the count state n={patients}, y={dlts}, current={current!r}, "
        f"last_cohort={last_cohort!r} is impossible on {n_levels} levels (need integers "
        "with 0 <= y <= n per level, current a level with patients or -1 when there are "
        "none, and a last cohort of at least one patient within that level's counts)"
    )


def data_from_counts(
    n: ArrayLike,
    y: ArrayLike,
    current: int,
    dose_levels: Sequence[float],
    last_cohort: tuple[int, int] | None = None,
    *,
    checked: bool = False,
) -> TrialData:
    """Return trial data with the given patients and DLTs per level, ``current`` the last dose.

    The patients of each level come in level order, those of the current level last, each in
    a cohort of its own but the last cohort, of ``last_cohort`` patients and DLTs, its DLTs
    first; a design whose decisions depend on the counts per level, the current level and the
    last cohort only decides on these data as on any data with those counts.

    Parameters
    ----------
    n, y : array_like
        Patients and DLTs per level, (K,) integers with ``0 <= y <= n`` (arrays when
        ``checked``).
    current : int
        Level of the last cohort (with patients), or -1 when there are none.
    dose_levels : sequence of float
        The dose of each level.
    last_cohort : (int, int), optional
        Patients and DLTs of the last cohort, part of the current level's counts (as
        :func:`checked_last_cohorts` checks); by default one patient, without a DLT unless
        every patient of the current level had one.
    checked : bool
        Whether the counts are a state :func:`count_state` (and :func:`checked_last_cohorts`)
        checked already, on validated ``dose_levels``, as the lockstep engine's are: then they
        are not checked again (the check cost a lockstep simulation several percent).

    Raises
    ------
    ValueError
        If the counts are not a possible state (as :func:`count_state` and
        :func:`checked_last_cohorts` check), naming them.
    """
    if not checked:
        dose_levels = _checked_levels(tuple(dose_levels))
        n, y = np.asarray(n), np.asarray(y)  # lists of counts too
        _check_count_state(n, y, n.tolist(), y.tolist(), current, len(dose_levels), last_cohort)
    if current < 0:
        return TrialData.empty(outcomes=("dlt",))
    patients = np.asarray(n, dtype=np.int64)
    dlts = np.asarray(y, dtype=np.int64)
    size, events = last_cohort or (1, int(dlts[current] == patients[current]))
    rows = compiled(_count_rows)(
        patients, dlts, current, _level_values(tuple(dose_levels)), size, events
    )
    return TrialData._from_counts(*rows)


@functools.lru_cache(maxsize=64)
def _level_values(dose_levels: tuple[float, ...]) -> np.ndarray:
    """Return the levels as a read-only float array (shared: do not modify)."""
    values = np.array(dose_levels, dtype=float)
    values.flags.writeable = False
    return values


def _count_rows(patients, dlts, current, doses, size, events):
    """Lay out a count state's patients as :func:`data_from_counts` describes them.

    Returns each patient's dose, DLT (0/1) and cohort, in compiled code: a lockstep simulation
    lays out every count state it decides, and Python lists of a trial's patients cost
    several times these loops.
    """
    total = 0
    for k in range(patients.size):
        total += patients[k]
    dose = np.empty(total)
    dlt = np.zeros(total, dtype=np.int64)
    cohort = np.empty(total, dtype=np.int64)
    row = 0
    for k in range(patients.size):
        if k != current:
            for j in range(patients[k]):
                dose[row] = doses[k]
                dlt[row] = 1 if j < dlts[k] else 0
                row += 1
    before, before_dlts = patients[current] - size, dlts[current] - events
    for j in range(patients[current]):
        dose[row] = doses[current]
        if j < before:
            dlt[row] = 1 if j < before_dlts else 0
        else:
            dlt[row] = 1 if j - before < events else 0
        row += 1
    for i in range(total):
        cohort[i] = min(i + 1, total - size + 1)
    return dose, dlt, cohort
