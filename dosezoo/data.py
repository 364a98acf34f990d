"""Validated phase-I trial data: one row per patient, in enrolment order.

`TrialData` is the input of every dose-finding model of dosezoo. It holds the
dose(s) given to each patient, the cohort each patient was enrolled in, the
observed outcomes and any declared covariates, all as read-only numpy arrays.
Every constructor validates the data and raises `DataError` naming the column,
the row and the offending value; nothing is coerced silently.

Columns
-------
dose
    Dose given to the patient, a finite float >= 0 (0: placebo or control arm;
    each model refuses the doses it cannot use). Drug combinations use
    several dose columns named by ``dose_columns`` instead; a component of a
    combination may be 0 (drug not given) but not all components of a row.
    Doses on a coded (standardised) scale, ``coded_doses=True``, are any finite
    numbers: 0 is then a dose level like any other (e.g. the lowest dose of
    interest of a combination standardised to [0, 1]), not "drug not given".
cohort
    Optional positive integers, non-decreasing in row order. When absent, every
    patient is a cohort of their own, numbered 1..n (`TrialData.cohorts_given` is then
    False, and a design whose rule reads the cohorts, with cohorts of more than one
    patient, refuses the data rather than read each patient as a cohort).
y, dlt, efficacy, time, event
    Outcome columns, detected by name: ``y`` any finite float (continuous
    response), ``dlt`` 0/1, ``efficacy`` 0/1/2 (ordinal), ``time`` a finite
    float > 0 that requires ``event`` 0/1 (1 = event observed, 0 = censored) and
    vice versa. These are the built-in outcomes of `dosezoo.outcomes`; an outcome
    registered there (`dosezoo.outcomes.register_outcome`) is recognised the same way.
covariates
    Extra columns named by ``covariates``: numeric ones must be finite,
    non-numeric ones (strata) must not be missing, and no column mixes numbers and text.
enrolled, role
    Optional schedule columns of a trial run in time (backfill): ``enrolled`` the
    time the patient was enrolled, a finite float >= 0, non-decreasing in row order
    (named so, not ``time``, because ``time`` is the event-time outcome of
    time-to-event data); ``role`` ``"escalation"`` or ``"backfill"`` (a patient given
    a lower, cleared dose while an escalation cohort's outcomes were pending). Data
    without them are escalation patients only.

Columns that are neither known nor declared are ignored and not stored. Rows
are numbered from 0 in messages; for CSV files the line number is given too
(row r is line r + 2, the header being line 1).
"""

import codecs
import csv
import functools
import hashlib
import io
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt

from dosezoo.errors import DataError
from dosezoo.outcomes import Outcome, registered_outcomes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataError", "TrialData", "reserved_columns"]

DoseRange = tuple[float, float] | Mapping[str, tuple[float, float]]
"""A dose range: one open interval ``(lo, hi)`` or one per dose column."""

RowLabel = Callable[[int], str]

_COHORT = "cohort"
_ENROLLED = "enrolled"
_ROLE = "role"
#: The schedule columns, in their order among the columns.
_SCHEDULE = (_ENROLLED, _ROLE)
#: The values of the ``role`` column.
ROLES = ("escalation", "backfill")
_MAX_EXACT_INT = 2.0**53
#: Types of column values that are not pandas objects (what a simulation passes).
_NOT_PANDAS = frozenset({np.ndarray, list, tuple, float, int, bool, str})
#: Rows up to which `_validate` tries its quick acceptance on Python floats; with more rows its
#: vectorised checks are as fast.
_QUICK_ROWS = 64
#: The text of a number in a CSV file: what pandas' parser reads as one (ASCII only).
_CSV_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_CSV_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
#: A CSV field that `_plain_csv_columns` reads as an integer (at most 18 digits: an int64).
_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)
#: A CSV field that it reads as a float (with at most 15 digits): no exponent, no "+".
_PLAIN_DECIMAL = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)
#: A column name that it takes as pandas does (pandas renames an empty one, for instance).
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_CSV_BOOLS = {
    "True": True,
    "TRUE": True,
    "true": True,
    "False": False,
    "FALSE": False,
    "false": False,
}


class _Check(NamedTuple):
    """One validity check: the rows where it fails and how to describe a failure."""

    where: str
    mask: npt.NDArray[np.bool_]
    message: Callable[[int], str]


# --------------------------------------------------------------------------- helpers


def _default_row_label(row: int) -> str:
    return f"row {row}"


def _csv_row_label(lines: Sequence[int]) -> RowLabel:
    """Label row ``r`` with its CSV line, ``lines[r]`` (a row added since has none)."""

    def label(row: int) -> str:
        if 0 <= row < len(lines):
            return f"row {row} (CSV line {lines[row]})"
        return _default_row_label(row)

    return label


def _fmt(value: object) -> str:
    """Show a value as the user wrote it (numpy scalars as Python scalars)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    """Normalise a column-name argument to a tuple of distinct non-empty strings."""
    names = (value,) if isinstance(value, str) else tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must be column names (non-empty strings); got {name!r}")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"{what} names column {duplicated[0]!r} more than once")
    return names


def _pair(value: Any, what: str) -> tuple[float, float]:
    """Normalise ``(lo, hi)`` to floats with lo < hi."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (lo, hi) of numbers; got {value!r}") from None
    if not lo < hi:
        raise ValueError(f"{what} must satisfy lo < hi; got ({lo!r}, {hi!r})")
    return lo, hi


def _normalize_dose_range(
    dose_range: DoseRange | None, dose_columns: tuple[str, ...]
) -> tuple[DoseRange | None, dict[str, tuple[float, float]]]:
    """Return the public form of a dose range and the interval of each dose column."""
    if dose_range is None:
        return None, {}
    if isinstance(dose_range, Mapping):
        ranges: dict[str, tuple[float, float]] = {}
        for name, pair in dose_range.items():
            if name not in dose_columns:
                raise ValueError(
                    f"dose_range names {name!r}, which is not a dose column "
                    f"(dose columns: {', '.join(dose_columns)})"
                )
            ranges[name] = _pair(pair, f"dose_range[{name!r}]")
        return MappingProxyType(dict(ranges)), ranges
    pair = _pair(dose_range, "dose_range")
    return pair, dict.fromkeys(dose_columns, pair)


def _present_outcomes(
    columns: Collection[str],
    rules: Mapping[str, Outcome],
    dose_columns: tuple[str, ...],
    covariates: tuple[str, ...],
) -> tuple[str, ...]:
    """Return the outcomes among ``columns`` in registry order (never a dose or covariate)."""
    return tuple(
        [
            name
            for name in rules
            if name in columns and name not in dose_columns and name not in covariates
        ]
    )


def _loaded_pandas() -> ModuleType | None:
    """Return pandas if it is loaded: no value can be a pandas object before it is.

    This module imports pandas only where it needs it (a CSV file that is not plain numbers, a
    DataFrame in or out): importing it costs a fifth of a second of every command line.
    """
    return sys.modules.get("pandas")


def _pandas_to_numpy(values: "pd.Series") -> np.ndarray:
    """Copy a pandas column to numpy without losing missing values or coercing strings."""
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biuf":
            return values.to_numpy(dtype=dtype, copy=True)
        return values.to_numpy(dtype=object, copy=True)
    has_missing = bool(values.isna().any())
    if pd.api.types.is_bool_dtype(dtype):
        return values.to_numpy(dtype=object if has_missing else bool, copy=True)
    if pd.api.types.is_integer_dtype(dtype) and not has_missing:
        return values.to_numpy(dtype=np.int64, copy=True)
    if pd.api.types.is_numeric_dtype(dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    return values.to_numpy(dtype=object, copy=True)


def _refuse_unaligned_series(source: Mapping[str, Any], names: Sequence[str]) -> None:
    """Raise a DataError where pandas Series of the columns have different indexes.

    Columns are paired by position; pandas would pair Series by their index labels, so
    Series indexed differently (e.g. by patient, in different orders) would mix patients.
    """
    pd = _loaded_pandas()
    if pd is None:
        return
    # The plain types first, as in _to_numpy: every cohort a simulation adds comes here.
    indexed = [
        (name, value.index)
        for name in names
        if type(value := source[name]) not in _NOT_PANDAS and isinstance(value, pd.Series)
    ]
    for name, index in indexed[1:]:
        first, first_index = indexed[0]
        if index is not first_index and not index.equals(first_index):
            raise DataError(
                f"columns {first!r} and {name!r} are pandas Series with different indexes; "
                "columns are paired by position, so give them one index (or a DataFrame, "
                "which aligns them)"
            )


def _to_numpy(values: Any) -> np.ndarray:
    """Convert column values to a numeric or an object numpy array (any shape)."""
    if type(values) is str:
        return np.asarray(values, dtype=object)  # as below, without the text array first
    if type(values) not in _NOT_PANDAS and (pd := _loaded_pandas()) is not None:
        # Not one of the plain types (whose pandas checks are slow): maybe a pandas object.
        if isinstance(values, pd.Index):
            values = values.to_series()
        if isinstance(values, pd.api.extensions.ExtensionArray):
            values = pd.Series(values)
        if isinstance(values, pd.Series):
            return _pandas_to_numpy(values)
    array = np.asarray(values)
    if array.dtype.kind not in "biuf" or (
        array.dtype.kind != "b" and isinstance(values, list | tuple) and _holds_a_bool(values)
    ):
        # Keep the caller's objects: np.asarray([40, "abc"]) would turn 40 into "40", and
        # np.asarray([True, 20.0]) True into a dose of 1.0.
        array = np.asarray(values, dtype=object)
    return array


def _holds_a_bool(values: list | tuple) -> bool:
    """Whether a list of values (nested for the doses of combinations) holds a bool."""
    return any(
        _holds_a_bool(value)
        if isinstance(value, list | tuple)
        else isinstance(value, bool | np.bool_)
        for value in values
    )


def _column_array(values: Any, name: str) -> np.ndarray:
    """Convert one column to a one-dimensional numpy array."""
    if type(values) is np.ndarray and values.ndim == 1 and values.dtype.kind in "biufO":
        return values  # what _to_numpy returns for it, without its checks of pandas types
    if (pd := _loaded_pandas()) is not None and isinstance(values, pd.DataFrame):
        raise DataError(f"column {name!r} appears more than once")
    array = _to_numpy(values)
    if array.ndim != 1:
        raise DataError(
            f"column {name!r} must be one-dimensional (one value per patient); "
            f"got shape {array.shape}"
        )
    return array


def _available(source: "Mapping[str, Any] | pd.DataFrame") -> str:
    """List the columns of raw data for a message."""
    return ", ".join(str(name) for name in source.keys()) or "no columns"


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    pd = _loaded_pandas()
    return pd is not None and (value is pd.NA or value is pd.NaT)


def _numeric(raw: np.ndarray, *, allow_bool: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float values of a column and the mask of its non-numeric entries.

    Missing entries (None, NA, NaN) become NaN; non-numeric entries are NaN too
    and flagged in the mask.
    """
    n = raw.shape[0]
    kind = raw.dtype.kind
    if kind == "b":
        if allow_bool:
            return raw.astype(np.float64), np.zeros(n, dtype=bool)
        return np.full(n, np.nan), np.ones(n, dtype=bool)
    if kind in "iuf":
        return raw.astype(np.float64), np.zeros(n, dtype=bool)
    values = np.full(n, np.nan)
    non_numeric = np.zeros(n, dtype=bool)
    for i, value in enumerate(raw):
        if _is_missing(value):
            continue
        if isinstance(value, bool | np.bool_):
            if allow_bool:
                values[i] = float(value)
            else:
                non_numeric[i] = True
        elif isinstance(value, numbers.Real):
            try:
                values[i] = float(value)
            except OverflowError:  # an int beyond the floats; copysign would convert it too
                values[i] = -math.inf if value < 0 else math.inf
        else:
            non_numeric[i] = True
    return values, non_numeric


def _is_numeric_like(raw: np.ndarray) -> bool:
    """Whether a covariate column holds numbers (possibly with missing entries)."""
    if raw.dtype.kind in "biuf":
        return True
    import pandas as pd

    return all(_is_missing(v) or isinstance(v, numbers.Real) for v in raw) and not bool(
        np.all(pd.isna(raw))
    )


def _value_kind(value: object) -> str:
    """Describe a covariate value's kind for `_mixed_kinds_check`."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return "a number"
    return f"of type {type(value).__name__}"


def _mixed_kinds_check(where: str, raw: np.ndarray, missing: np.ndarray) -> _Check:
    """Refuse a covariate that mixes numbers and text (or other kinds of value).

    A covariate holds numbers or labels. One typo among numbers (``6O`` among ages) would
    otherwise turn the whole column into labels without a word, and ``'1'`` and ``1`` would be
    two labels. The values of a kind other than the column's most common one are refused (on
    a tie, the kind of the first value is kept), so the message names the typo, not the values
    around it. In a CSV file numbers are read as numbers here (`_pandas_csv_columns`), so
    labels that read as numbers must be written as text that does not (``group 1``).
    """
    kinds = np.array(["" if gone else _value_kind(v) for v, gone in zip(raw, missing, strict=True)])
    present = kinds[~missing]
    if np.unique(present).size <= 1:
        return _Check(where, np.zeros(raw.shape[0], dtype=bool), str)
    names, counts = np.unique(present, return_counts=True)
    tied = names[counts == counts.max()]
    usual = present[0] if present[0] in tied else tied[0]
    usual_count = int(counts[names == usual][0])

    def message(i: int) -> str:
        return (
            f"value {_fmt(raw[i])} is {kinds[i]}, while {usual_count} of {present.size} values "
            f"of the column are {'numbers' if usual == 'a number' else usual}: a covariate "
            "holds numbers or text labels, not both; correct the value, or write every label "
            "as text that does not read as a number (e.g. 'group 1')"
        )

    return _Check(where, ~missing & (kinds != usual), message)


def _number_checks(
    where: str, raw: np.ndarray, *, allow_bool: bool = False
) -> tuple[np.ndarray, list[_Check]]:
    """Float values of a numeric column and its non-numeric / NaN / inf checks."""
    values, non_numeric = _numeric(raw, allow_bool=allow_bool)

    def not_numeric(i: int) -> str:
        if isinstance(raw[i], bool | np.bool_):
            return f"value {_fmt(raw[i])} is boolean, not numeric"
        return f"value {_fmt(raw[i])} is not numeric"

    def not_a_number(i: int) -> str:
        value = raw[i]
        if isinstance(value, float | np.floating):
            return f"value {_fmt(value)} is NaN (missing)"
        return f"value {_fmt(value)} is missing (NaN)"

    def infinite(i: int) -> str:
        return f"value {_fmt(raw[i])} is infinite"

    checks = [
        _Check(where, non_numeric, not_numeric),
        _Check(where, np.isnan(values) & ~non_numeric, not_a_number),
        _Check(where, np.isinf(values), infinite),
    ]
    return values, checks


def _beyond_exact(raw: np.ndarray) -> np.ndarray:
    """Mask of the integers a float64 (every column's type) may have rounded.

    Integers above 2**53, and floats from 2**53 on: ``9007199254740993.0`` is read as
    ``2**53``, an integer that was not written.
    """
    if raw.dtype.kind in "iu":
        return raw > int(_MAX_EXACT_INT)  # an int bound: numpy would compare in float64
    if raw.dtype.kind == "f":
        return np.abs(raw) >= _MAX_EXACT_INT
    if raw.dtype.kind != "O":
        return np.zeros(raw.shape[0], dtype=bool)
    return np.array([not _exact_integer(v) for v in raw], dtype=bool)


def _exact_integer(value: object) -> bool:
    """Whether ``value``, if a number, is an integer as written: not one 2**53 may have rounded."""
    if isinstance(value, numbers.Integral):
        return abs(int(value)) <= _MAX_EXACT_INT
    return not (isinstance(value, numbers.Real) and abs(float(value)) >= _MAX_EXACT_INT)


def _value_check(where: str, raw: np.ndarray, mask: np.ndarray, requirement: str) -> _Check:
    """Build a check whose message is ``value <v> <requirement>``."""
    return _Check(where, mask, lambda i: f"value {_fmt(raw[i])} {requirement}")


def _raise_first(checks: Sequence[_Check], row_label: RowLabel) -> None:
    """Raise a DataError for the lowest failing row of all checks (first check on ties)."""
    first: tuple[int, _Check] | None = None
    for check in checks:
        if not check.mask.any():
            continue
        rows = np.flatnonzero(check.mask)
        if rows.size and (first is None or rows[0] < first[0]):
            first = (int(rows[0]), check)
    if first is not None:
        row, check = first
        raise DataError(f"{check.where}, {row_label(row)}: {check.message(row)}")


def _range_text(lo: float, hi: float) -> str:
    return f"the open interval ({lo!r}, {hi!r})"


@functools.cache
def _empty_with_dlt() -> "TrialData":
    """Empty data with the outcome ``dlt``: the schema of the data of count states."""
    return TrialData.empty(outcomes=("dlt",))


def _lock(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class _Validated(NamedTuple):
    outcomes: tuple[str, ...]
    columns: dict[str, np.ndarray]
    doses: np.ndarray
    schedule: tuple[str, ...] = ()
    #: Whether the source had a cohort column (otherwise each patient is a cohort).
    cohorts_given: bool = True
    #: The source's columns that were not stored (unknown, e.g. a misspelt outcome).
    ignored: tuple[str, ...] = ()


def _validate(
    source: "Mapping[str, Any] | pd.DataFrame",
    *,
    dose_columns: tuple[str, ...],
    covariates: tuple[str, ...],
    ranges: Mapping[str, tuple[float, float]],
    row_label: RowLabel,
    previous_cohort: int | None = None,
    coded: bool = False,
    previous_enrolled: float | None = None,
) -> _Validated:
    """Validate raw columns and return clean, read-only arrays.

    Every constructor of `TrialData` and every growth (`TrialData.with_cohort`,
    `TrialData.append`) goes through this one function, in three parts:

    1. Structure. Missing columns, an outcome without the companion it requires, and
       columns that are not one-dimensional or have unequal lengths are reported first.
    2. Quick acceptance. A few rows of plain numbers (integer or float arrays, with a cohort
       column and no covariates; a ``role`` column of text), such as the cohort or the
       backfill patient a simulation appends, are checked by the rules of part 3 evaluated
       on Python floats and strings, which for a handful of values is several times faster
       than numpy's per-call overhead. If every value passes, the rows are accepted here,
       with the data part 3 would return.
    3. Detailed checks. Otherwise (other data, or a value failing a rule) every rule is a
       vectorised mask over the rows, and the lowest row that fails any of them is reported,
       naming the column, the row and the value (the first rule on ties).

    Parts 2 and 3 apply the same rules, no stricter and no looser: ``tests/test_data.py``
    checks that data accepted quickly are accepted by the detailed checks with identical
    arrays, and that data declined quickly are refused by them. When the rows extend existing
    data, ``previous_cohort`` is the cohort of the last existing row (``row_label(-1)``): the
    first new cohort may not be lower. With ``coded`` (doses on a coded scale) a dose is any
    finite number in its range, and a combination may be all zeros. Likewise
    ``previous_enrolled`` is the enrolment time of the last existing row, if the data have one.
    """
    # 1. Structure.
    rules = registered_outcomes()
    known = {*dose_columns, *covariates, _COHORT, _ENROLLED, *rules}
    for raw in source.keys():
        name = str(raw)
        if name != name.strip() and name.strip() in known and name.strip() not in source:
            raise DataError(
                f"column {name!r} has spaces around its name; the data would lack column "
                f"{name.strip()!r}: remove the spaces"
            )
    for name in dose_columns:
        if name not in source:
            raise DataError(
                f"missing required column {name!r}; the data have: {_available(source)}"
            )
    for name in covariates:
        if name not in source:
            raise DataError(
                f"missing covariate column {name!r} (declared in covariates); "
                f"the data have: {_available(source)}"
            )
    outcomes = _present_outcomes(source, rules, dose_columns, covariates)
    for name in outcomes:
        companion = rules[name].requires
        if companion is not None and companion not in outcomes:
            reason = rules[name].requires_reason
            raise DataError(
                f"column {name!r} is present but column {companion!r} is missing"
                + (f": {reason}" if reason else "")
            )
    has_cohort = _COHORT in source
    schedule = tuple(name for name in _SCHEDULE if name in source and name not in covariates)
    names = [
        *dose_columns,
        *([_COHORT] if has_cohort else []),
        *outcomes,
        *covariates,
        *schedule,
    ]
    _refuse_unaligned_series(source, names)
    raw = {name: _column_array(source[name], name) for name in names}
    ignored = tuple(str(name) for name in source.keys() if name not in raw)
    n = raw[dose_columns[0]].shape[0]
    plain = True
    for name, array in raw.items():
        if array.shape[0] != n:
            raise DataError(
                f"column {name!r} has {array.shape[0]} rows but column {dose_columns[0]!r} has {n}"
            )
        # A role is text: it has a quick check of its own.
        plain = plain and (array.dtype.kind in "iuf" or name == _ROLE)

    # 2. Quick acceptance: the rules of part 3 on Python floats.
    combination = len(dose_columns) > 1
    if plain and has_cohort and not covariates and n <= _QUICK_ROWS:
        dose_lists = [[float(v) for v in raw[name].tolist()] for name in dose_columns]
        accepted = True
        for name, dose_list in zip(dose_columns, dose_lists, strict=True):
            lo, hi = ranges.get(name, (-math.inf, math.inf))
            if coded:
                accepted = accepted and all(
                    -math.inf < v < math.inf and lo < v < hi for v in dose_list
                )
            else:
                accepted = accepted and all(
                    (v == 0 and (combination or lo < v)) or (0 < v < math.inf and lo < v < hi)
                    for v in dose_list
                )
        if combination and not coded:
            accepted = accepted and not any(all(v == 0 for v in row) for row in zip(*dose_lists))
        # Compared as given (Python ints stay exact): 2**53 + 1 as a float would be 2**53.
        cohort_list = raw[_COHORT].tolist()
        previous = -math.inf if previous_cohort is None else previous_cohort
        for value in cohort_list if accepted else ():
            if not (
                1 <= value <= _MAX_EXACT_INT
                and value == math.floor(value)
                and value >= previous
                and _exact_integer(value)
            ):
                accepted = False
                break
            previous = value
        for name in outcomes if accepted else ():
            rule, outcome_list = rules[name], raw[name].tolist()
            accepted = (
                rule.allowed is None or all(v in rule.allowed for v in outcome_list)
            ) and all(math.isfinite(v) and (v > 0 or not rule.positive) for v in outcome_list)
            if not accepted:
                break
        enrolled_list = [float(v) for v in raw[_ENROLLED].tolist()] if _ENROLLED in raw else []
        previous = -math.inf if previous_enrolled is None else previous_enrolled
        for value in enrolled_list if accepted else ():
            if not (0 <= value < math.inf and value >= previous):
                accepted = False
                break
            previous = value
        if accepted and _ROLE in schedule:
            accepted = all(isinstance(v, str) and v in ROLES for v in raw[_ROLE].tolist())
        if accepted:
            quick_doses = _lock(np.array(dose_lists, dtype=np.float64).T.copy())
            columns = {name: quick_doses[:, j] for j, name in enumerate(dose_columns)}
            columns[_COHORT] = _lock(np.array(cohort_list, dtype=np.int64))
            for name in outcomes:
                dtype = np.int64 if rules[name].integer else np.float64
                columns[name] = _lock(np.array(raw[name], dtype=dtype))
            if _ENROLLED in schedule:
                columns[_ENROLLED] = _lock(np.array(enrolled_list, dtype=np.float64))
            if _ROLE in schedule:
                columns[_ROLE] = _lock(raw[_ROLE].astype(object))
            return _Validated(outcomes, columns, quick_doses, schedule, True, ignored)

    # 3. Detailed checks.
    checks: list[_Check] = []
    clean: dict[str, np.ndarray] = {}

    # Doses.
    dose_values: list[np.ndarray] = []
    for name in dose_columns:
        where = f"column {name!r}"
        values, value_checks = _number_checks(where, raw[name])
        checks += value_checks
        if combination and not coded:
            checks.append(
                _value_check(where, raw[name], values < 0, "must be >= 0 (0 = drug not given)")
            )
        elif not coded:
            checks.append(
                _value_check(where, raw[name], values < 0, "must be >= 0 (0 = placebo or control)")
            )
        if name in ranges:
            lo, hi = ranges[name]
            outside = np.isfinite(values) & ~((values > lo) & (values < hi))
            if combination and not coded:
                outside &= values != 0
            checks.append(
                _value_check(
                    where,
                    raw[name],
                    outside,
                    f"is outside the declared dose range: doses must lie in {_range_text(lo, hi)}",
                )
            )
        dose_values.append(values)
    doses = np.column_stack(dose_values) if n else np.empty((0, len(dose_columns)))
    if combination and not coded:
        all_zero = np.all(doses == 0, axis=1)
        where = "columns " + ", ".join(repr(name) for name in dose_columns)
        checks.append(
            _Check(
                where,
                all_zero,
                lambda i: (
                    f"values ({', '.join(_fmt(raw[c][i]) for c in dose_columns)}) are all 0: "
                    "at least one drug of a combination must be given at a dose > 0"
                ),
            )
        )

    # Cohorts.
    if has_cohort:
        where = f"column {_COHORT!r}"
        cohort_raw = raw[_COHORT]
        cohorts, value_checks = _number_checks(where, cohort_raw)
        checks += value_checks
        not_positive_int = (
            np.isfinite(cohorts)
            & ((cohorts != np.floor(cohorts)) | (cohorts < 1) | (cohorts > _MAX_EXACT_INT))
        ) | _beyond_exact(cohort_raw)
        checks.append(
            _value_check(
                where,
                cohort_raw,
                not_positive_int,
                "must be a positive integer up to 2**53 (written as an integer from 2**53 on)",
            )
        )
        decreasing = np.zeros(n, dtype=bool)
        decreasing[1:] = cohorts[1:] < cohorts[:-1]
        if previous_cohort is not None and n:
            decreasing[0] = cohorts[0] < previous_cohort

        def lower_cohort(i: int) -> str:
            previous = _fmt(cohort_raw[i - 1]) if i else _fmt(previous_cohort)
            return (
                f"value {_fmt(cohort_raw[i])} is lower than cohort {previous} in "
                f"{row_label(i - 1)}: patients are listed in enrolment order, so cohort "
                "numbers cannot decrease (unknown cohort order)"
            )

        checks.append(_Check(where, decreasing, lower_cohort))

    # Outcomes.
    outcome_values: dict[str, np.ndarray] = {}
    for name in outcomes:
        rule = rules[name]
        where = f"column {name!r}"
        values, value_checks = _number_checks(where, raw[name], allow_bool=rule.allow_bool)
        checks += value_checks
        finite = np.isfinite(values)
        if rule.allowed is not None:
            invalid = finite & ~np.isin(values, rule.allowed)
            checks.append(_value_check(where, raw[name], invalid, rule.requirement))
        if rule.positive:
            checks.append(_value_check(where, raw[name], finite & (values <= 0), rule.requirement))
        outcome_values[name] = values

    # Covariates.
    covariate_values: dict[str, np.ndarray] = {}
    for name in covariates:
        where = f"column {name!r}"
        array = raw[name]
        if array.dtype.kind in "biu":
            covariate_values[name] = array.copy()
        elif _is_numeric_like(array):
            # A column of bools (with missing entries) is a yes/no covariate; a bool among
            # numbers is a slip, which 1.0 or 0.0 would hide.
            only_bools = all(
                isinstance(value, bool | np.bool_) for value in array if not _is_missing(value)
            )
            values, value_checks = _number_checks(where, array, allow_bool=only_bools)
            checks += value_checks
            covariate_values[name] = values
        else:
            import pandas as pd

            missing = np.asarray(pd.isna(array), dtype=bool)
            checks.append(
                _value_check(
                    where, array, missing, "is missing: covariate values must not be missing"
                )
            )
            checks.append(_mixed_kinds_check(where, array, missing))
            covariate_values[name] = array.copy()

    # Schedule (enrolment time, role).
    schedule_values: dict[str, np.ndarray] = {}
    if _ENROLLED in schedule:
        where = f"column {_ENROLLED!r}"
        raw_enrolled = raw[_ENROLLED]
        enrolled, value_checks = _number_checks(where, raw_enrolled)
        checks += value_checks
        checks.append(
            _value_check(
                where,
                raw_enrolled,
                np.isfinite(enrolled) & (enrolled < 0),
                "must be >= 0 (the time the patient was enrolled)",
            )
        )
        earlier = np.zeros(n, dtype=bool)
        earlier[1:] = enrolled[1:] < enrolled[:-1]
        if previous_enrolled is not None and n:
            earlier[0] = enrolled[0] < previous_enrolled

        def earlier_time(i: int) -> str:
            previous = _fmt(raw_enrolled[i - 1]) if i else _fmt(previous_enrolled)
            return (
                f"value {_fmt(raw_enrolled[i])} is earlier than {previous} in "
                f"{row_label(i - 1)}: patients are listed in enrolment order"
            )

        checks.append(_Check(where, earlier, earlier_time))
        schedule_values[_ENROLLED] = enrolled
    if _ROLE in schedule:
        raw_role = raw[_ROLE]
        bad_role = np.array([not (isinstance(v, str) and v in ROLES) for v in raw_role], bool)
        checks.append(
            _value_check(
                f"column {_ROLE!r}",
                raw_role,
                bad_role,
                "must be " + " or ".join(repr(role) for role in ROLES),
            )
        )
        schedule_values[_ROLE] = raw_role.astype(object)

    _raise_first(checks, row_label)

    doses = _lock(np.ascontiguousarray(doses, dtype=np.float64))
    for j, name in enumerate(dose_columns):
        clean[name] = doses[:, j]
    if has_cohort:
        clean[_COHORT] = _lock(cohorts.astype(np.int64))
    else:
        clean[_COHORT] = _lock(np.arange(1, n + 1, dtype=np.int64))
    for name, values in outcome_values.items():
        clean[name] = _lock(values.astype(np.int64 if rules[name].integer else np.float64))
    for name, values in covariate_values.items():
        clean[name] = _lock(values)
    for name, values in schedule_values.items():
        clean[name] = _lock(values.astype(np.float64) if name == _ENROLLED else values)
    return _Validated(outcomes, clean, doses, schedule, has_cohort, ignored)


def _parse_csv_numbers(
    values: "pd.Series", *, allow_bool: bool, whole: tuple[str, RowLabel] | None = None
) -> np.ndarray:
    """Parse the number-like strings of a CSV column that pandas left as text.

    A number is what pandas' own parser reads as one (`_CSV_NUMBER`: ASCII digits, a sign, a
    decimal point, an exponent); Python's ``float`` is not used, since it also takes ``1_000``
    and non-ASCII digits, so the same text would be a number in one column and not in
    another. Integers are parsed exactly (a cohort number above 2**53 must not round). Entries
    that are not numbers stay strings, so validation reports them.

    ``whole``, the column's name and the label of its rows, marks a column of whole numbers (a
    cohort, a 0/1 outcome). There a decimal that a double rounds onto a whole number
    (``0.99999999999999999`` onto 1) is refused: as written, it is not one.

    Raises
    ------
    DataError
        For such a decimal, naming the column, the row and the value as written.
    """
    array = values.to_numpy(dtype=object, copy=True)
    for i, value in enumerate(array):
        if not isinstance(value, str):
            continue
        text = value.strip()
        if allow_bool and text in _CSV_BOOLS:
            array[i] = _CSV_BOOLS[text]
        elif _CSV_INTEGER.fullmatch(text):
            array[i] = int(text)
        elif _CSV_NUMBER.fullmatch(text):
            number = float(text)
            if whole is not None and number.is_integer() and Decimal(text) != Decimal(number):
                name, row_label = whole
                raise DataError(
                    f"column {name!r}, {row_label(i)}: value {text!r} is not a whole number, "
                    f"though a double rounds it to {number:g} (it has more digits than a double "
                    "holds); write the value meant"
                )
            array[i] = number
    return array


def _csv_text(path: str | os.PathLike[str]) -> str:
    """Return the text of a CSV file: UTF-8 (a byte-order mark allowed) or UTF-16 with its mark.

    Other encodings are refused rather than guessed: a cp1252 (Excel "CSV") file decodes as
    Latin text without error whatever its real encoding, so a guess could silently change the
    labels of a covariate.

    Raises
    ------
    DataError
        Naming the file, and for bytes that are not UTF-8 their offset, line and column.
    """
    where = f"CSV file {os.fspath(path)!r}"
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{where} is a directory, not a CSV file") from None
    except FileNotFoundError:
        raise DataError(f"{where} does not exist") from None
    return decode_text(raw, where, DataError, "CSV", "save the file as UTF-8 (Excel: 'CSV UTF-8')")


def reserved_columns() -> frozenset[str]:
    """Names that are no dose column nor covariate: ``cohort``, the schedule's, the outcomes'."""
    return frozenset({_COHORT, *_SCHEDULE, *registered_outcomes()})


def decode_text(raw: bytes, where: str, error: type[Exception], kind: str, advice: str) -> str:
    """Decode a text file: UTF-8 (a byte-order mark allowed) or UTF-16 with its mark.

    Raises ``error`` naming ``where`` and, for bytes that are not UTF-8, their offset, line
    and column, what ``kind`` of file dosezoo reads as UTF-8, and ``advice`` (what to do).
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as problem:
            raise error(
                f"{where} starts with a UTF-16 byte-order mark but byte offset {problem.start} "
                "is not UTF-16; save the file as UTF-8"
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = raw.count(b"\n", 0, problem.start) + 1
        column = problem.start - (raw.rfind(b"\n", 0, problem.start) + 1) + 1
        raise error(
            f"{where}, line {line}, column {column} (byte offset {problem.start}): byte "
            f"0x{raw[problem.start]:02x} is not UTF-8; dosezoo reads {kind} files as UTF-8 (or "
            f"UTF-16 with a byte-order mark): {advice}"
        ) from None


def _check_csv_shape(text: str, where: str) -> tuple[int, ...]:
    """Refuse duplicated column names and rows with more fields than the header; number rows.

    pandas would rename a duplicate (``dose.1``) and make the extra field of a row the index,
    shifting every value of that row one column left. Returns the line each data row ends on:
    the rows are those the readers keep, the header and every line that is not blank (pandas
    and the plain reader skip empty and whitespace-only lines), so that an error names the
    line a user finds the row on, blank lines or quoted line breaks above it or not.
    """
    if text.count('"') % 2:
        # quotes come in pairs (an escaped one is doubled): the last one opens a field that
        # never closes, which the csv module reads to the end and pandas refuses
        line = text.count("\n", 0, text.rindex('"')) + 1
        raise DataError(f"{where}, line {line}: a quoted field opened here is never closed")
    reader = csv.reader(io.StringIO(text))
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if len(fields) > 1 or "".join(fields).strip():  # not a blank line
                rows.append(fields)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{where}, line {reader.line_num}: cannot be parsed: {error}") from None
    data_lines = tuple(lines[1:])
    label = _csv_row_label(data_lines)
    if not rows:
        return data_lines
    header = rows[0]
    seen: dict[str, int] = {}
    # 'Dose' next to 'dose' (or ' dose'): the reader would take one and drop the other silently
    folded: dict[str, tuple[str, int]] = {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(
                f"{where}, line {lines[0]}: column {name!r} appears twice (columns "
                f"{seen[name]} and {number} of the header); rename or remove one"
            )
        seen[name] = number
        key = name.strip().casefold()
        if key in folded:
            other, column = folded[key]
            raise DataError(
                f"{where}, line {lines[0]}: columns {other!r} and {name!r} (columns {column} "
                f"and {number} of the header) differ only in case or surrounding spaces; "
                "rename or remove one"
            )
        folded[key] = (name, number)
    for row, fields in enumerate(rows[1:]):
        if len(fields) > len(header):
            raise DataError(
                f"{where}, {label(row)}: {len(fields)} fields but the "
                f"header has {len(header)} columns ({', '.join(header)}); the extra value "
                f"{fields[len(header)]!r} belongs to no column"
            )
    return data_lines


def _plain_csv_columns(text: str) -> dict[str, np.ndarray] | None:
    """Read a CSV file of plain numbers as pandas would, without pandas; None for any other.

    Most trial files are a few lines of numbers, for which importing pandas would cost more
    than everything else that the command line does with them. A file is plain when it has no
    quote, a header of names such as ``dose`` or ``dose_a``, at least one row, every row as long
    as the header, and every field empty, an integer of at most 18 digits, or a decimal of at
    most 15 digits without an exponent. Its columns are what ``pd.read_csv`` makes of them: a
    column of integers is int64, any other float64 (an empty field is NaN; in a column of
    integers and empty fields, the integers converted, so that ``-0`` is 0.0). A decimal of at
    most 15 digits is ``m / 10**k`` with ``m < 2**53`` and ``k <= 15``, a quotient of two exact
    doubles, which ``float`` and pandas' parser both round correctly (Clinger 1990): the same
    double. A test compares the two readers on generated files.
    """
    if '"' in text:
        return None
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2 or not all(_PLAIN_NAME.fullmatch(name) for name in rows[0]):
        return None
    header = rows[0]
    if any(len(row) != len(header) for row in rows):
        return None
    columns: dict[str, np.ndarray] = {}
    for name, fields in zip(header, zip(*rows[1:], strict=True), strict=True):
        if all(_PLAIN_INTEGER.fullmatch(field) for field in fields):
            columns[name] = np.array([int(field) for field in fields], dtype=np.int64)
        elif all(
            not field or (_PLAIN_DECIMAL.fullmatch(field) and sum(c.isdigit() for c in field) <= 15)
            for field in fields
        ):
            # pandas parses a column of integers and empty fields as integers, then converts
            # them: "-0" is 0.0 there, and -0.0 in a column with a decimal point.
            integers = all(not field or _PLAIN_INTEGER.fullmatch(field) for field in fields)
            columns[name] = np.array(
                [
                    (float(int(field)) if integers else float(field)) if field else math.nan
                    for field in fields
                ]
            )
        else:
            return None
    return columns


def _pandas_csv_columns(
    text: str,
    where: str,
    dose_columns: tuple[str, ...],
    covariates: tuple[str, ...],
    row_label: RowLabel,
) -> dict[str, Any]:
    """Read a CSV file with pandas: its columns, those of numbers parsed (`_parse_csv_numbers`).

    The columns of whole numbers (the cohort, an outcome stored as integers) are read as text
    and parsed there, so that a decimal written with more digits than a double holds cannot
    round onto a valid value unseen.

    Raises
    ------
    DataError
        If the file is empty or cannot be parsed, or a whole number is not one as written.
    """
    import pandas as pd

    rules = registered_outcomes()
    whole = {_COHORT, *(name for name, rule in rules.items() if rule.integer)}
    try:
        df = pd.read_csv(
            io.StringIO(text),
            index_col=False,
            low_memory=False,
            dtype={name: str for name in whole},
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} is empty (no header line)") from None
    except pd.errors.ParserError as error:
        raise DataError(f"{where} cannot be parsed: {error}") from None
    source: dict[str, Any] = {str(name): df[name] for name in df.columns}
    complete = [
        name for name in (*dose_columns, _COHORT, _ENROLLED, *rules, *covariates) if name in source
    ]
    _refuse_missing_markers(text, source, complete, where, row_label)
    # A covariate is parsed too: a column of numbers with one typo must read as numbers and
    # the typo, which validation refuses (`_mixed_kinds_check`), not as labels.
    for name in (*dose_columns, _COHORT, _ENROLLED, *rules, *covariates):
        column = source.get(name)
        if column is not None and not pd.api.types.is_numeric_dtype(column.dtype):
            allow_bool = name in rules and rules[name].allow_bool
            try:
                source[name] = _parse_csv_numbers(
                    column,
                    allow_bool=allow_bool,
                    whole=(name, row_label) if name in whole else None,
                )
            except DataError as error:
                raise DataError(f"{where}: {error}") from None
    return source


def _refuse_missing_markers(
    text: str, source: dict[str, Any], names: list[str], where: str, row_label: RowLabel
) -> None:
    """Refuse a missing-value marker (``N/A``, ``NULL``, ...) in a column that must be complete.

    pandas reads such markers as NaN, which validation refused as "value nan": true, but not
    what the file says. Only the columns with a NaN are read again, from the text.

    Raises
    ------
    DataError
        Naming the column, the row and the marker.
    """
    import pandas as pd

    missing = {name: np.flatnonzero(pd.isna(source[name]).to_numpy()) for name in names}
    if not any(rows.size for rows in missing.values()):
        return
    # the rows the readers keep: every line that is not blank (`_check_csv_shape`)
    lines = [row for row in csv.reader(io.StringIO(text)) if len(row) > 1 or "".join(row).strip()]
    header = lines[0] if lines else []
    for name, rows in missing.items():
        if name not in header:
            continue
        column = header.index(name)
        for row in rows:
            # Where pandas kept a row the csv module reads otherwise (a line of a control
            # character), the field found is not the one pandas read: validation names the NaN.
            fields = lines[row + 1] if row + 1 < len(lines) else []
            written = fields[column] if column < len(fields) else ""
            if written.strip() and _pandas_reads_missing(written):
                raise DataError(
                    f"{where}: column {name!r}, {row_label(int(row))}: value {written!r} is "
                    "missing (a missing-value marker); every value of this column must be given"
                )


def _pandas_reads_missing(field: str) -> bool:
    """Whether pandas reads the CSV field ``field`` (as the csv module gives it) as missing."""
    import pandas as pd

    line = io.StringIO()
    csv.writer(line).writerow([field])
    read = pd.read_csv(io.StringIO("field\n" + line.getvalue()), dtype=str, index_col=False)
    return read.shape == (1, 1) and bool(pd.isna(read.iloc[0, 0]))


# --------------------------------------------------------------------------- TrialData


@dataclass(frozen=True, eq=False)
class TrialData:
    """Validated, immutable phase-I trial data: one row per patient in enrolment order.

    Prefer the constructors `from_dataframe`, `from_csv` and `empty`; calling the
    class directly with a mapping of column arrays validates the data the same way.

    Parameters
    ----------
    source : Mapping[str, array_like] or pandas.DataFrame
        Columns by name. Known columns (dose column(s), ``cohort``, the outcomes of
        `dosezoo.outcomes`: ``y``, ``dlt``, ``efficacy``, ``time``, ``event`` and any
        registered one) and declared covariates are stored; other columns are ignored.
    dose_columns : tuple of str, default ("dose",)
        Names of the dose columns; more than one for drug combinations.
    covariates : tuple of str, default ()
        Names of covariate / stratum columns to keep.
    dose_range : (float, float) or Mapping[str, (float, float)], optional
        Open interval ``(lo, hi)`` every dose must lie in, or one interval per dose
        column. For combinations a component equal to 0 (drug not given) is exempt.
    coded_doses : bool, default False
        Whether the doses are on a coded (standardised) scale, where any finite number
        is a dose and 0 is a level like any other (e.g. the lowest dose of interest of a
        combination standardised to [0, 1]); by default a dose is > 0, and a component
        of a combination may be 0 (drug not given) but not all of them.

    Attributes
    ----------
    dose_columns : tuple of str
        Names of the dose columns.
    covariates : tuple of str
        Names of the covariate columns.
    dose_range : (float, float) or Mapping[str, (float, float)] or None
        Declared dose range, as given.
    coded_doses : bool
        Whether the doses are on a coded scale.
    outcomes : tuple of str
        Outcome columns present, in the order y, dlt, efficacy, time, event, then the
        registered outcomes in the order of their registration.
    schedule : tuple of str
        Schedule columns present: ``enrolled`` and / or ``role`` (empty for data that are not
        timed).
    cohorts_given : bool
        Whether every patient's cohort was given (a ``cohort`` column, `with_cohort`),
        rather than each patient made a cohort of their own.
    ignored_columns : tuple of str
        Columns of the source that are not stored (not a known column nor a declared
        covariate; named by :meth:`require` when a needed one is missing).

    Raises
    ------
    DataError
        If the data are invalid; the message names the column, the row and the value.

    Examples
    --------
    >>> data = TrialData.from_dataframe(
    ...     pd.DataFrame({"dose": [10.0, 10.0, 20.0], "cohort": [1, 1, 2], "y": [0.1, 0.3, 0.9]})
    ... )
    >>> data
    TrialData(3 patients in 2 cohorts; dose; outcomes: y)
    >>> data.with_cohort(40.0, y=[1.2, 3.4])
    TrialData(5 patients in 3 cohorts; dose; outcomes: y)
    """

    source: InitVar["Mapping[str, Any] | pd.DataFrame"]
    _: KW_ONLY
    dose_columns: tuple[str, ...] = ("dose",)
    covariates: tuple[str, ...] = ()
    dose_range: DoseRange | None = None
    coded_doses: bool = False
    _csv_lines: InitVar[Sequence[int] | None] = None
    outcomes: tuple[str, ...] = field(init=False)
    schedule: tuple[str, ...] = field(init=False)
    _columns: dict[str, np.ndarray] = field(init=False, repr=False)
    _doses: np.ndarray = field(init=False, repr=False)
    _ranges: dict[str, tuple[float, float]] = field(init=False, repr=False)
    cohorts_given: bool = field(init=False, repr=False)
    ignored_columns: tuple[str, ...] = field(init=False, repr=False)
    _lines: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(
        self, source: "Mapping[str, Any] | pd.DataFrame", _csv_lines: Sequence[int] | None
    ) -> None:
        """Normalise the schema and validate the columns."""
        dose_columns = _names(self.dose_columns, "dose_columns")
        if not dose_columns:
            raise ValueError("dose_columns must name at least one column")
        covariates = _names(self.covariates, "covariates")
        reserved = reserved_columns()
        for name in dose_columns:
            if name in reserved:
                raise ValueError(f"{name!r} cannot be a dose column: it is a reserved column name")
        for name in covariates:
            if name in reserved or name in dose_columns:
                raise ValueError(
                    f"{name!r} cannot be a covariate: it is a dose, cohort, schedule or "
                    "outcome column"
                )
        dose_range, ranges = _normalize_dose_range(self.dose_range, dose_columns)
        if not isinstance(self.coded_doses, bool | np.bool_):
            raise ValueError(f"coded_doses must be True or False, got {self.coded_doses!r}")
        object.__setattr__(self, "coded_doses", bool(self.coded_doses))
        validated = _validate(
            source,
            dose_columns=dose_columns,
            covariates=covariates,
            ranges=ranges,
            row_label=_default_row_label if _csv_lines is None else _csv_row_label(_csv_lines),
            coded=self.coded_doses,
        )
        object.__setattr__(self, "dose_columns", dose_columns)
        object.__setattr__(self, "covariates", covariates)
        object.__setattr__(self, "dose_range", dose_range)
        object.__setattr__(self, "outcomes", validated.outcomes)
        object.__setattr__(self, "schedule", validated.schedule)
        object.__setattr__(self, "_columns", validated.columns)
        object.__setattr__(self, "_doses", validated.doses)
        object.__setattr__(self, "_ranges", ranges)
        object.__setattr__(self, "cohorts_given", validated.cohorts_given)
        object.__setattr__(self, "ignored_columns", validated.ignored)
        object.__setattr__(self, "_lines", () if _csv_lines is None else tuple(_csv_lines))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_dataframe(
        cls,
        df: "pd.DataFrame",
        *,
        dose_columns: Sequence[str] = ("dose",),
        covariates: Sequence[str] = (),
        dose_range: DoseRange | None = None,
        coded_doses: bool = False,
    ) -> Self:
        """Build validated trial data from a DataFrame with one row per patient.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per patient in enrolment order. The index is ignored; rows are
            numbered 0..n-1 in error messages.
        dose_columns : sequence of str, default ("dose",)
            Names of the dose columns; more than one for drug combinations.
        covariates : sequence of str, default ()
            Names of covariate / stratum columns to keep.
        dose_range : (float, float) or Mapping[str, (float, float)], optional
            Open interval every dose must lie in (or one per dose column).
        coded_doses : bool, default False
            Whether the doses are on a coded (standardised) scale (see the class).

        Returns
        -------
        TrialData
            The validated data.

        Raises
        ------
        DataError
            If a required column is missing or a value is invalid.
        """
        if (pd := _loaded_pandas()) is None or not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_dataframe needs a pandas DataFrame; got {type(df).__name__}")
        return cls(
            df,
            dose_columns=tuple(_names(dose_columns, "dose_columns")),
            covariates=tuple(_names(covariates, "covariates")),
            dose_range=dose_range,
            coded_doses=coded_doses,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        dose_columns: Sequence[str] = ("dose",),
        covariates: Sequence[str] = (),
        dose_range: DoseRange | None = None,
        coded_doses: bool = False,
    ) -> Self:
        """Read validated trial data from a CSV file with a header line.

        Error messages give the CSV line number as well as the row (counted from 0): the
        line the row is on, blank lines above it or not.

        Parameters
        ----------
        path : str or os.PathLike
            CSV file, one line per patient in enrolment order.
        dose_columns : sequence of str, default ("dose",)
            Names of the dose columns; more than one for drug combinations.
        covariates : sequence of str, default ()
            Names of covariate / stratum columns to keep.
        dose_range : (float, float) or Mapping[str, (float, float)], optional
            Open interval every dose must lie in (or one per dose column).
        coded_doses : bool, default False
            Whether the doses are on a coded (standardised) scale (see the class).

        Returns
        -------
        TrialData
            The validated data.

        Raises
        ------
        DataError
            If the file cannot be parsed, a required column is missing or a value
            is invalid.
        """
        where = f"CSV file {os.fspath(path)!r}"
        text = _csv_text(path)
        lines = _check_csv_shape(text, where)
        dose_columns = _names(dose_columns, "dose_columns")
        covariates = _names(covariates, "covariates")
        source = _plain_csv_columns(text)
        if source is None:
            source = _pandas_csv_columns(
                text, where, dose_columns, covariates, _csv_row_label(lines)
            )
        try:
            return cls(
                source,
                dose_columns=dose_columns,
                covariates=covariates,
                dose_range=dose_range,
                coded_doses=coded_doses,
                _csv_lines=lines,
            )
        except DataError as error:
            raise DataError(f"{where}: {error}") from None

    @classmethod
    def empty(
        cls,
        outcomes: Sequence[str] = ("y",),
        dose_columns: Sequence[str] = ("dose",),
        *,
        covariates: Sequence[str] = (),
        dose_range: DoseRange | None = None,
        coded_doses: bool = False,
    ) -> Self:
        """Trial data with no patients yet, the starting point of a design.

        Parameters
        ----------
        outcomes : sequence of str, default ("y",)
            Outcome columns the trial will record (``y``, ``dlt``, ``efficacy``,
            ``time`` and ``event``, or a registered outcome). With no outcomes, the first
            `with_cohort` call decides them.
        dose_columns : sequence of str, default ("dose",)
            Names of the dose columns; more than one for drug combinations.
        covariates : sequence of str, default ()
            Names of covariate / stratum columns the trial will record.
        dose_range : (float, float) or Mapping[str, (float, float)], optional
            Open interval every dose must lie in (or one per dose column).
        coded_doses : bool, default False
            Whether the doses are on a coded (standardised) scale (see the class).

        Returns
        -------
        TrialData
            Data with zero patients.

        Raises
        ------
        DataError
            If an outcome name is unknown, or only one of ``time`` and ``event`` is given.
        """
        outcome_names = _names(outcomes, "outcomes")
        rules = registered_outcomes()
        for name in outcome_names:
            if name not in rules:
                raise DataError(f"unknown outcome {name!r}; known outcomes: {', '.join(rules)}")
        dose_columns = _names(dose_columns, "dose_columns")
        covariates = _names(covariates, "covariates")
        source: dict[str, np.ndarray] = {name: np.empty(0) for name in dose_columns}
        source[_COHORT] = np.empty(0, dtype=np.int64)
        for name in outcome_names:
            source[name] = np.empty(0, np.int64 if rules[name].integer else np.float64)
        for name in covariates:
            source[name] = np.empty(0)
        return cls(
            source,
            dose_columns=dose_columns,
            covariates=covariates,
            dose_range=dose_range,
            coded_doses=coded_doses,
        )

    # ------------------------------------------------------------------ properties

    @property
    def n_patients(self) -> int:
        """Number of patients (rows)."""
        return int(self._doses.shape[0])

    @property
    def dose(self) -> np.ndarray:
        """Dose of each patient, a read-only float array of shape (n,).

        Raises
        ------
        DataError
            For drug combinations, which have several dose columns (use `doses`).
        """
        if len(self.dose_columns) > 1:
            raise DataError(
                f"combination data have {len(self.dose_columns)} dose columns "
                f"({', '.join(self.dose_columns)}): use `doses` (an (n, "
                f"{len(self.dose_columns)}) array) or `column(name)` instead of `dose`"
            )
        return self._columns[self.dose_columns[0]]

    @property
    def doses(self) -> np.ndarray:
        """Doses as a read-only float array of shape (n, number of dose columns)."""
        return self._doses

    @property
    def cohort(self) -> np.ndarray:
        """Cohort number of each patient, a read-only int64 array of shape (n,)."""
        return self._columns[_COHORT]

    @property
    def n_cohorts(self) -> int:
        """Number of distinct cohorts."""
        cohort = self.cohort
        return 0 if cohort.size == 0 else 1 + int(np.count_nonzero(np.diff(cohort)))

    @property
    def escalation(self) -> np.ndarray:
        """Whether each patient was enrolled in the escalation (not as a backfill patient).

        All True for data without a ``role`` column; a read-only bool array of shape (n,).
        """
        if _ROLE not in self.schedule:
            return _lock(np.ones(self.n_patients, dtype=bool))
        return _lock(self._columns[_ROLE] == "escalation")

    @property
    def last_dose(self) -> float | tuple[float, ...] | None:
        """Dose of the last escalation patient (a tuple for combinations), or None if none.

        Backfill patients (``role`` ``"backfill"``) are given lower doses while the escalation
        goes on, so the current dose of the escalation is the last escalation patient's.
        """
        if _ROLE in self.schedule:
            # Found from the end on Python strings: a trial's rows, few for numpy's calls.
            roles = self._columns[_ROLE].tolist()
            if "escalation" not in roles:
                return None
            last = self._doses[len(roles) - 1 - roles[::-1].index("escalation")]
        elif self.n_patients:  # every patient is an escalation patient: no mask to build
            last = self._doses[-1]
        else:
            return None
        if len(self.dose_columns) > 1:
            return tuple(float(value) for value in last)
        return float(last[0])

    @property
    def last_cohort(self) -> np.ndarray:
        """Whether each patient is in the last escalation cohort (bool, shape (n,)).

        The cohort of the last escalation patient; backfill patients are never in it.
        """
        escalation = self.escalation
        rows = np.flatnonzero(escalation)
        if rows.size == 0:
            return _lock(np.zeros(self.n_patients, dtype=bool))
        return _lock(escalation & (self.cohort == self.cohort[rows[-1]]))

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the stored columns: dose column(s), cohort, outcomes, covariates, schedule."""
        return (*self.dose_columns, _COHORT, *self.outcomes, *self.covariates, *self.schedule)

    # ------------------------------------------------------------------ access

    def fingerprint(self, columns: Sequence[str], *, exchangeable: bool = False) -> str:
        """Return a SHA-256 hex digest of the doses, ``columns`` and covariates, in order.

        What a model reads of the data (every dose column, its outcome ``columns``, the
        covariates), patient by patient: two data sets with the same fingerprint give a
        model the same posterior. Fits record it (see
        :meth:`dosezoo.models.base.DoseModel.check_fit`). With ``exchangeable``, the patients
        are taken in a canonical order (sorted by those values), so data that differ only in
        the order of their rows have one fingerprint: the conduct seeds its fits from it, and
        the models treat patients as exchangeable.
        """
        doses = np.asarray(self.doses, float)
        values = [np.asarray(self.column(name), float) for name in columns]
        labels = [np.asarray(self.column(name)).astype(str) for name in self.covariates]
        if exchangeable and self.n_patients > 1:
            # lexsort sorts by its last key first: doses, then outcomes, then covariates.
            keys = [*labels[::-1], *values[::-1], *doses.T[::-1]]
            order = np.lexsort(keys)
            doses, values, labels = (
                doses[order],
                [v[order] for v in values],
                [v[order] for v in labels],
            )
        digest = hashlib.sha256(np.ascontiguousarray(doses).tobytes())
        for array in values:
            digest.update(array.tobytes())
        for array in labels:
            digest.update(array.tobytes())
        return digest.hexdigest()

    def column(self, name: str) -> np.ndarray:
        """Return one column as a read-only numpy array.

        Parameters
        ----------
        name : str
            Column name (a dose column, ``cohort``, an outcome or a covariate).

        Returns
        -------
        numpy.ndarray
            The column values, one per patient.

        Raises
        ------
        DataError
            If the data have no such column; the message lists the available ones.
        """
        try:
            return self._columns[name]
        except KeyError:
            raise DataError(
                f"no column {name!r}; the data have: {', '.join(self.columns)}"
            ) from None

    def head(self, n: int) -> Self:
        """Return the data of the first ``n`` patients (all of them if ``n`` is larger).

        The rows were validated when these data were built, so nothing is checked again. A
        trial run in time decides on the first patients, those whose outcomes are known.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"head: n must be an integer >= 0, got {n!r}")
        if n >= self.n_patients:
            return self
        columns = {name: _lock(values[:n]) for name, values in self._columns.items()}
        doses = _lock(self._doses[:n])
        for j, name in enumerate(self.dose_columns):
            columns[name] = doses[:, j]
        return self._with_rows(
            self.outcomes, columns, doses, self.schedule, cohorts_given=self.cohorts_given
        )

    def row_name(self, row: int) -> str:
        """Name a row as an error does: ``row 7``, or ``row 7 (CSV line 11)`` if read from a file.

        The line is the one the row ends on in the CSV file the data were read from
        (`from_csv`), blank lines above it counted; rows added since (`with_cohort`) have none.
        """
        return _csv_row_label(self._lines)(row)

    def require(self, *columns: str, min_patients: int = 1, model: str | None = None) -> None:
        """Check that the data have what a model needs.

        Parameters
        ----------
        *columns : str
            Columns the model needs.
        min_patients : int, default 1
            Minimum number of patients the model needs.
        model : str, optional
            Name of the model, used in the error message.

        Raises
        ------
        DataError
            If a column is missing or there are fewer than `min_patients` patients.
        """
        who = f"model {model!r}" if model else "the model"
        for name in columns:
            if name not in self._columns:
                ignored = self.ignored_columns
                raise DataError(
                    f"{who} needs column {name!r}; the data have: {', '.join(self.columns)}"
                    + (f" (and ignored: {', '.join(ignored)})" if ignored else "")
                )
        n = self.n_patients
        if n < min_patients:
            needed = _plural(min_patients, "patient")
            if n == 0:
                raise DataError(f"empty data: {who} needs at least {needed}")
            raise DataError(f"too few patients: {who} needs at least {needed}; the data have {n}")

    def check_dose_range(
        self,
        lo: float,
        hi: float,
        *,
        model: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        """Check that every dose lies in the open interval (lo, hi).

        Models call this because their dose range is a model hyper-parameter. For
        combinations a component equal to 0 (drug not given) is exempt.

        Parameters
        ----------
        lo, hi : float
            Bounds of the open interval, lo < hi.
        model : str, optional
            Name of the model, used in the error message.
        columns : sequence of str, optional
            Dose columns to check (default: all of them), e.g. to give each drug of
            a combination its own range.

        Raises
        ------
        DataError
            For the first row with a dose outside (lo, hi), naming row and value.
        """
        lo, hi = _pair((lo, hi), "dose range")
        names = self.dose_columns if columns is None else _names(columns, "columns")
        for name in names:
            if name not in self.dose_columns:
                raise ValueError(
                    f"{name!r} is not a dose column (dose columns: {', '.join(self.dose_columns)})"
                )
        whose = f" of model {model!r}" if model else ""
        checks = []
        for name in names:
            values = self._columns[name]
            outside = ~((values > lo) & (values < hi))
            if len(self.dose_columns) > 1 and not self.coded_doses:
                outside &= values != 0
            checks.append(
                _value_check(
                    f"column {name!r}",
                    values,
                    outside,
                    f"is outside the dose range{whose}: doses must lie in {_range_text(lo, hi)}",
                )
            )
        _raise_first(checks, _default_row_label)

    # ------------------------------------------------------------------ growing

    def with_cohort(self, dose: npt.ArrayLike, **values: npt.ArrayLike) -> Self:
        """Return new data with one more cohort of patients appended.

        The new patients get cohort number last cohort + 1 (1 if the data are
        empty). The original object is unchanged.

        Parameters
        ----------
        dose : float or array_like
            Dose of the cohort: a scalar for every patient or one value per patient.
            For combinations, one value per dose column (broadcast to every patient)
            or an array of shape (n, number of dose columns).
        **values : array_like
            Outcomes, one value per patient (e.g. ``y=[1.2, 3.4, 5.0]``), and the
            declared covariates (one value per patient, or a scalar for all). The
            outcomes must be exactly those of the data, unless the data are empty
            and declare no outcomes.

        Returns
        -------
        TrialData
            New data with the cohort appended.

        Raises
        ------
        DataError
            If an outcome is missing or unknown, lengths disagree, or a new value is
            invalid (the message names its row in the new data).
        """
        names = tuple(
            name for name in values if name not in self.covariates and name not in _SCHEDULE
        )
        outcomes = self._check_new_outcomes(names, "with_cohort")
        for name in self.covariates:
            if name not in values:
                raise DataError(f"with_cohort: covariate {name!r} is missing")
        schedule = self._check_new_schedule(
            tuple(name for name in _SCHEDULE if name in values), "with_cohort"
        )

        lengths: list[tuple[str, int]] = []
        arrays: dict[str, np.ndarray] = {}
        for name in outcomes:
            array = _to_numpy(values[name])
            if array.ndim == 0:
                array = array.reshape(1)
            if array.ndim != 1:
                raise DataError(
                    f"with_cohort: outcome {name!r} must be one-dimensional; "
                    f"got shape {array.shape}"
                )
            arrays[name] = array
            lengths.append((f"outcome {name!r}", array.shape[0]))

        k = len(self.dose_columns)
        dose_array = _to_numpy(dose)
        if k == 1:
            if dose_array.ndim == 2 and dose_array.shape[1] == 1:
                dose_array = dose_array[:, 0]
            if dose_array.ndim > 1:
                raise DataError(
                    "with_cohort: dose must be a scalar or one value per patient; "
                    f"got shape {dose_array.shape}"
                )
            if dose_array.ndim == 1:
                lengths.append(("dose", dose_array.shape[0]))
        else:
            if dose_array.ndim == 1 and dose_array.shape[0] == k:
                dose_array = dose_array.reshape(1, k)
                broadcast = True
            elif dose_array.ndim == 2 and dose_array.shape[1] == k:
                broadcast = False
                lengths.append(("dose", dose_array.shape[0]))
            else:
                raise DataError(
                    f"with_cohort: a combination dose needs {k} components "
                    f"({', '.join(self.dose_columns)}), as a sequence of length {k} or an "
                    f"(n, {k}) array; got shape {dose_array.shape}"
                )

        for name in (*self.covariates, *schedule):
            kind = "schedule column" if name in _SCHEDULE else "covariate"
            array = _to_numpy(values[name])
            if array.ndim > 1:
                raise DataError(
                    f"with_cohort: {kind} {name!r} must be a scalar or one value per "
                    f"patient; got shape {array.shape}"
                )
            if array.ndim == 1:
                lengths.append((f"{kind} {name!r}", array.shape[0]))
            arrays[name] = array

        if lengths:
            reference, n = lengths[0]
            for label, length in lengths[1:]:
                if length != n:
                    raise DataError(
                        f"with_cohort: {label} has {_plural(length, 'value')} "
                        f"but {reference} has {n}"
                    )
        else:
            n = 1
        if n == 0:
            raise DataError("with_cohort: a cohort needs at least one patient; got 0 values")

        new: dict[str, np.ndarray] = {}
        if k == 1:
            # ndarray.repeat of a scalar array: np.full's array, in half the time.
            new[self.dose_columns[0]] = dose_array.repeat(n) if dose_array.ndim == 0 else dose_array
        else:
            if broadcast:
                dose_array = np.repeat(dose_array, n, axis=0)
            for j, name in enumerate(self.dose_columns):
                new[name] = dose_array[:, j]
        last = int(self.cohort[-1]) if self.n_patients else 0
        new[_COHORT] = np.array([last + 1] * n, dtype=np.int64)
        for name in outcomes:
            new[name] = arrays[name]
        for name in (*self.covariates, *schedule):
            array = arrays[name]
            new[name] = array.repeat(n) if array.ndim == 0 else array
        return self._extend(new, "patient {} of the new cohort")

    def append(self, df: "pd.DataFrame") -> Self:
        """Return new data with the rows of a DataFrame appended.

        Parameters
        ----------
        df : pandas.DataFrame
            New patients in enrolment order, with the same dose columns, outcomes and
            covariates as the data. Cohort numbers, if given, must not be lower than
            the last cohort of the data; if absent, each new patient is a cohort of
            their own. Other columns (not a known outcome, e.g. a grade) are not stored.

        Returns
        -------
        TrialData
            New data with the rows appended; the original object is unchanged.

        Raises
        ------
        DataError
            If a column is missing, an outcome the data do not have, or a new value is
            invalid (the message names its row in the new data).
        """
        if (pd := _loaded_pandas()) is None or not isinstance(df, pd.DataFrame):
            raise TypeError(f"append needs a pandas DataFrame; got {type(df).__name__}")
        available = ", ".join(str(name) for name in df.columns) or "no columns"
        for name in (*self.dose_columns, *self.covariates):
            if name not in df.columns:
                raise DataError(
                    f"append: missing required column {name!r}; the new rows have: {available}"
                )
        outcomes = self._check_new_outcomes(
            _present_outcomes(
                df.columns, registered_outcomes(), self.dose_columns, self.covariates
            ),
            "append",
        )
        schedule = self._check_new_schedule(
            tuple(name for name in _SCHEDULE if name in df.columns), "append"
        )
        new = {
            name: _column_array(df[name], name)
            for name in (*self.dose_columns, *outcomes, *self.covariates, *schedule)
        }
        cohorts_given = _COHORT in df.columns
        if cohorts_given:
            new[_COHORT] = _column_array(df[_COHORT], _COHORT)
        else:
            last = int(self.cohort[-1]) if self.n_patients else 0
            new[_COHORT] = np.arange(last + 1, last + 1 + len(df), dtype=np.int64)
        return self._extend(new, "appended row {}", cohorts_given=cohorts_given)

    def _check_new_outcomes(self, names: tuple[str, ...], what: str) -> tuple[str, ...]:
        """Check the outcome names of new rows; return them in canonical order."""
        rules = registered_outcomes()
        for name in names:
            if name not in rules:
                covariates = ", ".join(self.covariates)
                covariates = f"; covariates: {covariates}" if covariates else ""
                raise DataError(
                    f"{what}: unknown outcome {name!r}; known outcomes: "
                    f"{', '.join(rules)}{covariates}"
                )
        if self.n_patients == 0 and not self.outcomes:
            return tuple(name for name in rules if name in names)
        have = ", ".join(self.outcomes) or "none"
        for name in self.outcomes:
            if name not in names:
                raise DataError(
                    f"{what}: outcome {name!r} is missing; the data have outcomes: {have}"
                )
        for name in names:
            if name not in self.outcomes:
                raise DataError(
                    f"{what}: outcome {name!r} is not an outcome of these data "
                    f"(they have outcomes: {have})"
                )
        return self.outcomes

    def _check_new_schedule(self, names: tuple[str, ...], what: str) -> tuple[str, ...]:
        """Check the schedule columns of new rows against the data's; return them in order.

        Empty data take the schedule of their first rows; other data need the same one.
        """
        if self.n_patients == 0 and not self.schedule:
            return names
        if names != self.schedule:
            have = ", ".join(self.schedule) or "none"
            given = ", ".join(names) or "none"
            raise DataError(
                f"{what}: the new rows have schedule columns {given}; the data have {have}"
            )
        return names

    def _extend(
        self, new: dict[str, np.ndarray], new_row: str, *, cohorts_given: bool = True
    ) -> Self:
        """Validate only the new rows and append them to a copy of the data.

        The existing rows were validated when these data were built, so growing a
        trial by one cohort costs the new rows' checks, not the whole trial's.
        ``cohorts_given``: whether the new rows' cohorts were given (not one per patient);
        the data's cohorts are given when both the old rows' and the new rows' were.
        """
        n_old = self.n_patients
        if n_old:
            for name in self.covariates:
                old, array = self._columns[name], new[name]
                if not array.shape[0]:
                    continue
                old_numeric, new_numeric = _is_numeric_like(old), _is_numeric_like(array)
                if old_numeric != new_numeric:
                    kinds = ("numeric", "non-numeric")
                    raise DataError(
                        f"covariate {name!r} is {kinds[not old_numeric]} in the data but the new "
                        f"values are {kinds[not new_numeric]} (first new value "
                        f"{_fmt(array[0])})"
                    )

        def row_label(row: int) -> str:
            if row < 0:
                return f"row {n_old + row}"
            return f"row {n_old + row} ({new_row.format(row)})"

        validated = _validate(
            new,
            dose_columns=self.dose_columns,
            covariates=self.covariates,
            ranges=self._ranges,
            row_label=row_label,
            previous_cohort=int(self.cohort[-1]) if n_old else None,
            coded=self.coded_doses,
            previous_enrolled=(
                float(self._columns[_ENROLLED][-1])
                if n_old and _ENROLLED in self.schedule
                else None
            ),
        )
        if not n_old:
            return self._with_rows(
                validated.outcomes,
                validated.columns,
                validated.doses,
                validated.schedule,
                cohorts_given=cohorts_given,
            )
        doses = _lock(np.concatenate([self._doses, validated.doses]))
        columns = {name: doses[:, j] for j, name in enumerate(self.dose_columns)}
        for name, values in validated.columns.items():
            if name not in columns:
                columns[name] = _lock(np.concatenate([self._columns[name], values]))
        return self._with_rows(
            self.outcomes,
            columns,
            doses,
            self.schedule,
            cohorts_given=cohorts_given and self.cohorts_given,
        )

    @staticmethod
    def _from_counts(dose: np.ndarray, dlt: np.ndarray, cohort: np.ndarray) -> "TrialData":
        """Return the data of patients with these doses, DLTs and cohorts, one row each.

        ``dose`` (positive, finite floats), ``dlt`` (0/1) and ``cohort`` (1, 2, ...,
        non-decreasing), 1-D arrays of one length (float64, int64, int64) that no one else
        holds, come from count states that were checked already
        (:func:`dosezoo.levels.data_from_counts`). The data are those
        ``TrialData({"dose": dose, "dlt": dlt, "cohort": cohort})`` returns, without validating
        them again (the validation cost more than the posterior of a count design;
        ``tests/test_vectorised_simulation.py`` checks both give the same data).
        """
        doses = _lock(dose.reshape(-1, 1))
        columns = {"dose": doses[:, 0], _COHORT: _lock(cohort), "dlt": _lock(dlt)}
        return _empty_with_dlt()._with_rows(("dlt",), columns, doses, (), cohorts_given=True)

    def _with_rows(
        self,
        outcomes: tuple[str, ...],
        columns: dict[str, np.ndarray],
        doses: np.ndarray,
        schedule: tuple[str, ...],
        *,
        cohorts_given: bool,
    ) -> Self:
        """Return data of the same schema holding already-validated, read-only columns."""
        grown = object.__new__(type(self))
        # The fields of a frozen dataclass, set as its __post_init__ does, in one step.
        grown.__dict__.update(
            dose_columns=self.dose_columns,
            covariates=self.covariates,
            dose_range=self.dose_range,
            coded_doses=self.coded_doses,
            outcomes=outcomes,
            schedule=schedule,
            _columns=columns,
            _doses=doses,
            _ranges=self._ranges,
            cohorts_given=cohorts_given,
            ignored_columns=self.ignored_columns,
            _lines=self._lines,
        )
        return grown

    # ------------------------------------------------------------------ export

    def to_dataframe(self) -> "pd.DataFrame":
        """Return the data as a new DataFrame.

        Returns
        -------
        pandas.DataFrame
            A fresh copy with columns dose column(s), cohort, outcomes, covariates.
        """
        import pandas as pd

        return pd.DataFrame({name: self._columns[name].copy() for name in self.columns})

    # ------------------------------------------------------------------ dunder

    def __len__(self) -> int:
        """Return the number of patients."""
        return self.n_patients

    def __eq__(self, other: object) -> bool:
        """Compare schema (columns, dose range) and values."""
        if not isinstance(other, TrialData):
            return NotImplemented
        if self.columns != other.columns or self.n_patients != other.n_patients:
            return False
        if self._ranges != other._ranges or self.coded_doses != other.coded_doses:
            return False
        return all(np.array_equal(self._columns[n], other._columns[n]) for n in self.columns)

    def __repr__(self) -> str:
        """Summarise size and schema, e.g. ``TrialData(12 patients in 4 cohorts; ...)``."""
        parts = [
            f"{_plural(self.n_patients, 'patient')} in {_plural(self.n_cohorts, 'cohort')}",
            ", ".join(self.dose_columns),
            f"outcomes: {', '.join(self.outcomes) or 'none'}",
        ]
        if self.covariates:
            parts.append(f"covariates: {', '.join(self.covariates)}")
        if self.schedule:
            parts.append(f"schedule: {', '.join(self.schedule)}")
        if self.coded_doses:
            parts.append("coded doses")
        if self.dose_range is not None:
            if isinstance(self.dose_range, Mapping):
                ranges = ", ".join(f"{k} {v}" for k, v in self.dose_range.items())
                parts.append(f"dose range: {ranges}")
            else:
                parts.append(f"dose range: {self.dose_range}")
        return f"TrialData({'; '.join(parts)})"

    def __getstate__(self) -> dict[str, Any]:
        """Return picklable state (mapping proxies become dicts)."""
        state = dict(self.__dict__)
        if isinstance(state["dose_range"], MappingProxyType):
            state["dose_range"] = dict(state["dose_range"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore state from a pickle, making the arrays read-only again."""
        state.setdefault("coded_doses", False)
        state.setdefault("schedule", ())
        state.setdefault("cohorts_given", True)
        state.setdefault("ignored_columns", ())
        state.setdefault("_lines", ())
        if isinstance(state["dose_range"], dict):
            state["dose_range"] = MappingProxyType(state["dose_range"])
        self.__dict__.update(state)
        _lock(self._doses)
        for array in self._columns.values():
            array.flags.writeable = False
