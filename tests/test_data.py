"""Tests of dosezoo.data: validation, construction, growth and immutability of TrialData."""

import dataclasses
import io
import pickle
import re
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from dosezoo.data import DataError, TrialData, _plain_csv_columns


def frame(**columns):
    return pd.DataFrame(columns)


def message(text):
    """Regex matching `text` literally (column, row and value)."""
    return re.escape(text)


@pytest.fixture
def data():
    return TrialData.from_dataframe(
        frame(
            dose=[10.0, 10.0, 20.0, 20.0, 40.0],
            cohort=[1, 1, 2, 2, 3],
            y=[0.1, 0.2, 0.8, 1.1, 2.5],
        )
    )


# --------------------------------------------------------------------------- validation errors


def test_missing_required_column():
    with pytest.raises(
        DataError, match=message("missing required column 'dose'; the data have: y")
    ):
        TrialData.from_dataframe(frame(y=[1.0, 2.0]))


def test_missing_combination_dose_column():
    with pytest.raises(DataError, match=message("missing required column 'dose_b'")):
        TrialData.from_dataframe(frame(dose_a=[1.0]), dose_columns=("dose_a", "dose_b"))


def test_nan_is_named():
    with pytest.raises(DataError, match=message("column 'y', row 2: value nan is NaN (missing)")):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0, 3.0], y=[0.1, 0.2, np.nan]))


def test_none_is_missing():
    with pytest.raises(DataError, match=message("column 'dose', row 1: value None is missing")):
        TrialData.from_dataframe(frame(dose=[1.0, None, "x"]))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_is_named(value):
    shown = repr(float(value))
    with pytest.raises(DataError, match=message(f"column 'y', row 1: value {shown} is infinite")):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0], y=[0.5, value]))


def test_an_integer_beyond_the_floats_is_infinite():
    # float() overflows on it: the check said nothing of the column, row or value
    with pytest.raises(DataError, match=message("column 'dose', row 1: value -1000")):
        TrialData({"dose": [1.0, -(10**400)], "y": [0.5, 0.5]})
    with pytest.raises(DataError, match=message("column 'cohort', row 1: value 1000")):
        TrialData({"dose": [1.0, 1.0], "cohort": [1, 10**400], "y": [0.5, 0.5]})


def test_non_numeric_value():
    with pytest.raises(
        DataError, match=message("column 'dose', row 3: value 'abc' is not numeric")
    ):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0, 3.0, "abc"]))


def test_numeric_string_is_not_coerced():
    with pytest.raises(DataError, match=message("column 'y', row 0: value '1.5' is not numeric")):
        TrialData.from_dataframe(frame(dose=[1.0], y=["1.5"]))


def test_boolean_dose_is_rejected():
    with pytest.raises(DataError, match=message("column 'dose', row 0: value True is boolean")):
        TrialData.from_dataframe(frame(dose=[True, False]))


@pytest.mark.parametrize("value", [-5.0, -1e-9])
def test_dose_must_not_be_negative(value):
    with pytest.raises(
        DataError,
        match=message(f"column 'dose', row 3: value {value} must be >= 0 (0 = placebo or control)"),
    ):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0, 3.0, value]))


def test_dose_zero_is_a_placebo_arm():
    data = TrialData.from_dataframe(frame(dose=[0.0, 0.5, 1.0], y=[0.1, 0.2, 0.3]))
    assert data.dose.tolist() == [0.0, 0.5, 1.0]
    assert data.with_cohort(0.0, y=[0.1]).dose[-1] == 0.0


def test_dose_outside_declared_range():
    pattern = message("column 'dose', row 2: value 100.0 is outside the declared dose range")
    with pytest.raises(DataError, match=pattern + ".*" + message("(0.0, 100.0)")):
        TrialData.from_dataframe(frame(dose=[10.0, 50.0, 100.0]), dose_range=(0, 100))


def test_dose_range_is_open():
    with pytest.raises(DataError, match=message("column 'dose', row 0: value 1.0 is outside")):
        TrialData.from_dataframe(frame(dose=[1.0, 50.0]), dose_range=(1.0, 100.0))


def test_dose_inside_declared_range():
    data = TrialData.from_dataframe(frame(dose=[10.0, 99.5]), dose_range=(0, 100))
    assert data.dose_range == (0.0, 100.0)


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_cohort_must_be_positive_integer(value):
    pattern = message(f"column 'cohort', row 1: value {value} must be a positive integer")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0, 3.0], cohort=[1, value, 7]))


def test_cohort_order_decreasing():
    pattern = message("column 'cohort', row 3: value 1 is lower than cohort 2 in row 2")
    with pytest.raises(DataError, match=pattern + ".*unknown cohort order"):
        TrialData.from_dataframe(frame(dose=[1.0, 1.0, 2.0, 2.0], cohort=[1, 1, 2, 1]))


def test_non_numeric_cohort():
    with pytest.raises(
        DataError, match=message("column 'cohort', row 0: value 'A' is not numeric")
    ):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0], cohort=["A", "B"]))


@pytest.mark.parametrize("column", ["dlt", "event"])
@pytest.mark.parametrize("value", [1.5, 2, -1])
def test_binary_outcome_must_be_0_or_1(column, value):
    columns = {"dose": [1.0, 2.0], column: [0, value]}
    if column == "event":
        columns["time"] = [1.0, 2.0]
    pattern = message(f"column '{column}', row 1: value {value} must be 0 or 1")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(pd.DataFrame(columns))


def test_binary_outcomes_accept_float_and_bool():
    data = TrialData.from_dataframe(
        frame(dose=[1.0, 2.0], dlt=[1.0, 0.0], time=[3.0, 4.5], event=[True, False])
    )
    assert data.column("dlt").dtype == np.int64
    np.testing.assert_array_equal(data.column("dlt"), [1, 0])
    np.testing.assert_array_equal(data.column("event"), [1, 0])
    assert data.outcomes == ("dlt", "time", "event")


@pytest.mark.parametrize("value", [3, -1, 0.5])
def test_efficacy_must_be_ordinal(value):
    pattern = message(f"column 'efficacy', row 2: value {value} must be 0, 1 or 2")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0, 3.0], efficacy=[0, 2, value]))


@pytest.mark.parametrize("value", [0.0, -2.5])
def test_time_must_be_positive(value):
    pattern = message(f"column 'time', row 1: value {value} must be > 0")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0], time=[3.0, value], event=[1, 0]))


def test_time_without_event():
    with pytest.raises(DataError, match="column 'time' is present but column 'event' is missing"):
        TrialData.from_dataframe(frame(dose=[1.0], time=[2.0]))


def test_event_without_time():
    with pytest.raises(DataError, match="column 'event' is present but column 'time' is missing"):
        TrialData.from_dataframe(frame(dose=[1.0], event=[1]))


def test_missing_covariate_column():
    with pytest.raises(DataError, match=message("missing covariate column 'age'")):
        TrialData.from_dataframe(frame(dose=[1.0], y=[0.0]), covariates=("age",))


def test_missing_stratum_value():
    # pandas stores the missing string as NaN.
    pattern = message("column 'stratum', row 1: value nan is missing")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(
            frame(dose=[1.0, 2.0, 3.0], stratum=["a", None, "b"]), covariates=("stratum",)
        )


def test_numeric_covariate_must_be_finite():
    pattern = message("column 'age', row 2: value nan is NaN (missing)")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(
            frame(dose=[1.0, 2.0, 3.0], age=[50.0, 61.0, np.nan]), covariates="age"
        )


def test_first_offending_row_is_reported():
    # Row 1 is the lowest bad row although its column comes after 'dose'.
    df = frame(dose=[1.0, 2.0, -3.0], cohort=[1, 1, 2], y=[0.0, np.nan, 1.0])
    with pytest.raises(DataError, match=message("column 'y', row 1: value nan")):
        TrialData.from_dataframe(df)
    df = frame(dose=[1.0, "abc", -3.0, 0.0])
    with pytest.raises(DataError, match=message("column 'dose', row 1: value 'abc'")):
        TrialData.from_dataframe(df)


def test_unequal_column_lengths():
    with pytest.raises(DataError, match=message("column 'y' has 2 rows but column 'dose' has 3")):
        TrialData({"dose": [1.0, 2.0, 3.0], "y": [1.0, 2.0]})


def test_duplicated_column():
    df = pd.DataFrame([[1.0, 2.0]], columns=["dose", "dose"])
    with pytest.raises(DataError, match="column 'dose' appears more than once"):
        TrialData.from_dataframe(df)


# --------------------------------------------------------------------------- require / ranges


def test_require_missing_column():
    data = TrialData.from_dataframe(frame(dose=[1.0], dlt=[0]))
    pattern = message("model 'ThreePND' needs column 'y'; the data have: dose, cohort, dlt")
    with pytest.raises(DataError, match=pattern):
        data.require("y", model="ThreePND")


def test_require_empty_data():
    pattern = message("empty data: model 'ThreePND' needs at least 1 patient")
    with pytest.raises(DataError, match=pattern):
        TrialData.empty().require("dose", "y", model="ThreePND")


def test_require_too_few_patients(data):
    with pytest.raises(DataError, match="needs at least 6 patients; the data have 5"):
        data.require("y", min_patients=6, model="ThreePND")
    data.require("dose", "cohort", "y", min_patients=5, model="ThreePND")


def test_check_dose_range(data):
    data.check_dose_range(0.0, 50.0, model="ThreePND")
    pattern = message(
        "column 'dose', row 4: value 40.0 is outside the dose range of model 'ThreePND'"
    )
    with pytest.raises(DataError, match=pattern + ".*" + message("(0.0, 40.0)")):
        data.check_dose_range(0.0, 40.0, model="ThreePND")
    with pytest.raises(DataError, match=message("column 'dose', row 0: value 10.0")):
        data.check_dose_range(10.0, 50.0)


# --------------------------------------------------------------------------- construction & export


def test_properties(data):
    assert data.n_patients == len(data) == 5
    assert data.n_cohorts == 3
    assert data.last_dose == 40.0
    assert data.outcomes == ("y",)
    assert data.dose_columns == ("dose",)
    assert data.covariates == ()
    assert data.dose_range is None
    assert data.columns == ("dose", "cohort", "y")
    assert data.dose.dtype == np.float64
    assert data.cohort.dtype == np.int64
    np.testing.assert_array_equal(data.cohort, [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(data.doses, data.dose[:, None])
    assert repr(data) == "TrialData(5 patients in 3 cohorts; dose; outcomes: y)"


def test_column_lookup(data):
    np.testing.assert_array_equal(data.column("y"), [0.1, 0.2, 0.8, 1.1, 2.5])
    with pytest.raises(DataError, match=message("no column 'dlt'; the data have: dose, cohort, y")):
        data.column("dlt")


def test_cohort_defaults_to_one_per_patient():
    data = TrialData.from_dataframe(frame(dose=[1.0, 2.0, 4.0], y=[0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(data.cohort, [1, 2, 3])
    assert data.n_cohorts == 3


def test_the_data_say_whether_the_cohorts_were_given():
    # without a cohort column each patient is a cohort, and the data say so through every
    # way they grow, are cut and are pickled; with_cohort and counts give cohorts
    given = TrialData.from_dataframe(frame(dose=[1.0, 1.0], cohort=[1, 1], y=[0.0, 1.0]))
    made = TrialData.from_dataframe(frame(dose=[1.0, 1.0], y=[0.0, 1.0]))
    assert given.cohorts_given and not made.cohorts_given
    assert made == TrialData.from_dataframe(frame(dose=[1.0, 1.0], cohort=[1, 2], y=[0, 1]))
    assert not made.with_cohort(2.0, y=[0.5]).cohorts_given
    assert given.with_cohort(2.0, y=[0.5]).cohorts_given
    assert not given.append(frame(dose=[2.0], y=[0.5])).cohorts_given
    assert given.append(frame(dose=[2.0], cohort=[2], y=[0.5])).cohorts_given
    assert TrialData.empty().with_cohort(1.0, y=[0.1, 0.2]).cohorts_given
    assert TrialData.empty().append(frame(dose=[1.0], cohort=[1], y=[0.1])).cohorts_given
    assert not TrialData.empty().append(frame(dose=[1.0], y=[0.1])).cohorts_given
    assert not made.head(1).cohorts_given and given.head(1).cohorts_given
    assert not pickle.loads(pickle.dumps(made)).cohorts_given


def test_unknown_columns_are_ignored():
    data = TrialData.from_dataframe(frame(dose=[1.0], y=[2.0], note=["first patient"]))
    assert data.columns == ("dose", "cohort", "y")
    assert data.ignored_columns == ("note",)
    # a misspelt outcome is ignored too, and a model that needs it names it
    misspelt = TrialData.from_dataframe(frame(dose=[1.0], cohort=[1], DLT=[1]))
    with pytest.raises(DataError, match=r"needs column 'dlt'; .*: dose, cohort \(and ignored: DLT"):
        misspelt.with_cohort(2.0).require("dlt")
    assert "note" not in data.to_dataframe()


def test_dataframe_round_trip():
    df = frame(dose=[5.0, 5.0, 10.0], cohort=[1, 1, 2], y=[0.5, -1.25, 3.0], dlt=[0, 0, 1])
    out = TrialData.from_dataframe(df).to_dataframe()
    pd.testing.assert_frame_equal(out, df[["dose", "cohort", "y", "dlt"]])


def test_csv_round_trip(tmp_path, data):
    path = tmp_path / "trial.csv"
    data.to_dataframe().to_csv(path, index=False)
    assert TrialData.from_csv(path) == data


def test_csv_round_trip_with_covariates(tmp_path):
    df = frame(
        dose=[0.1, 1 / 3, 2.0], cohort=[1, 1, 2], y=[1e-300, -0.7, 2.2], stratum=["a", "b", "a"]
    )
    df["age"] = [50, 61, 70]
    path = tmp_path / "trial.csv"
    df.to_csv(path, index=False)
    data = TrialData.from_csv(path, covariates=("stratum", "age"))
    pd.testing.assert_frame_equal(data.to_dataframe(), df)


def test_csv_error_names_line(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,y\n1,0.5\n2,0.7\n3,0.1\nabc,0.2\n")
    pattern = message("column 'dose', row 3 (CSV line 5): value 'abc' is not numeric")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)


def test_csv_negative_dose_names_line(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,cohort,dlt\n1,1,0\n2,2,1\n-5,3,0\n")
    with pytest.raises(
        DataError, match=message("column 'dose', row 2 (CSV line 4): value -5 must be >= 0")
    ):
        TrialData.from_csv(path)


def test_csv_empty_cell_is_missing(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,y\n1,0.5\n2,\n")
    with pytest.raises(
        DataError, match=message("column 'y', row 1 (CSV line 3): value nan is NaN")
    ):
        TrialData.from_csv(path)


def test_to_dataframe_is_a_copy(data):
    df = data.to_dataframe()
    df.loc[0, "dose"] = 999.0
    assert data.dose[0] == 10.0
    assert data.to_dataframe().loc[0, "dose"] == 10.0


def test_input_frame_is_copied():
    df = frame(dose=[1.0, 2.0], y=[0.0, 1.0])
    data = TrialData.from_dataframe(df)
    df.loc[0, "dose"] = 50.0
    assert data.dose[0] == 1.0


def test_equality(data):
    same = TrialData.from_dataframe(data.to_dataframe())
    assert same == data
    assert data.with_cohort(5.0, y=[1.0]) != data
    assert TrialData.from_dataframe(data.to_dataframe(), dose_range=(0, 100)) != data
    assert data != "not trial data"


def test_pickle_keeps_arrays_read_only(data):
    copy = pickle.loads(pickle.dumps(data))
    assert copy == data
    with pytest.raises(ValueError, match="read-only"):
        copy.dose[0] = 1.0


# --------------------------------------------------------------------------- immutability


@pytest.mark.parametrize("name", ["dose", "cohort", "doses"])
def test_arrays_are_read_only(data, name):
    array = getattr(data, name)
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 1


def test_column_is_read_only(data):
    with pytest.raises(ValueError, match="read-only"):
        data.column("y")[0] = 1.0


def test_attributes_are_frozen(data):
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.outcomes = ("dlt",)


def test_with_cohort_leaves_original_unchanged(data):
    before = data.to_dataframe()
    grown = data.with_cohort(80.0, y=[3.0, 4.0, 5.0])
    pd.testing.assert_frame_equal(data.to_dataframe(), before)
    assert len(data) == 5
    assert len(grown) == 8


# --------------------------------------------------------------------------- growing


def test_with_cohort_numbering(data):
    grown = data.with_cohort(80.0, y=[3.0, 4.0, 5.0])
    np.testing.assert_array_equal(grown.cohort, [1, 1, 2, 2, 3, 4, 4, 4])
    np.testing.assert_array_equal(grown.dose[-3:], [80.0, 80.0, 80.0])
    assert grown.n_cohorts == 4
    assert grown.last_dose == 80.0
    gapped = TrialData.from_dataframe(frame(dose=[1.0, 1.0], cohort=[3, 7], y=[0.0, 0.0]))
    np.testing.assert_array_equal(gapped.with_cohort(2.0, y=[1.0]).cohort, [3, 7, 8])


def test_with_cohort_per_patient_doses(data):
    grown = data.with_cohort([50.0, 60.0], y=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(grown.dose[-2:], [50.0, 60.0])
    np.testing.assert_array_equal(grown.cohort[-2:], [4, 4])


def test_with_cohort_unknown_outcome(data):
    with pytest.raises(DataError, match="unknown outcome 'toxicity'"):
        data.with_cohort(40.0, y=[1.0], toxicity=[1])


def test_with_cohort_outcome_not_in_data(data):
    with pytest.raises(DataError, match="outcome 'dlt' is not an outcome of these data"):
        data.with_cohort(40.0, y=[1.0], dlt=[0])


def test_with_cohort_missing_outcome():
    data = TrialData.from_dataframe(frame(dose=[1.0], y=[0.2], dlt=[0]))
    with pytest.raises(DataError, match="with_cohort: outcome 'dlt' is missing"):
        data.with_cohort(40.0, y=[1.0])


def test_with_cohort_mismatched_lengths():
    data = TrialData.from_dataframe(frame(dose=[1.0], y=[0.2], dlt=[0]))
    pattern = message("with_cohort: outcome 'dlt' has 2 values but outcome 'y' has 3")
    with pytest.raises(DataError, match=pattern):
        data.with_cohort(40.0, y=[1.0, 2.0, 3.0], dlt=[0, 1])
    pattern = message("with_cohort: dose has 2 values but outcome 'y' has 3")
    with pytest.raises(DataError, match=pattern):
        data.with_cohort([40.0, 50.0], y=[1.0, 2.0, 3.0], dlt=[0, 1, 0])


def test_with_cohort_validates_new_rows(data):
    pattern = message("column 'y', row 6 (patient 1 of the new cohort): value nan is NaN")
    with pytest.raises(DataError, match=pattern):
        data.with_cohort(40.0, y=[1.0, np.nan])
    with pytest.raises(
        DataError, match=message("column 'dose', row 5 (patient 0 of the new cohort)")
    ):
        data.with_cohort(-1.0, y=[1.0])
    with pytest.raises(
        DataError, match=message("column 'dose', row 5 (patient 0 of the new cohort)")
    ):
        data.with_cohort("abc", y=[1.0])


def test_with_cohort_respects_dose_range():
    data = TrialData.empty(dose_range=(0.0, 100.0))
    with pytest.raises(
        DataError, match=message("column 'dose', row 0 (patient 0 of the new cohort): value 150.0")
    ):
        data.with_cohort(150.0, y=[1.0])


def test_with_cohort_empty_cohort(data):
    with pytest.raises(DataError, match="at least one patient"):
        data.with_cohort(40.0, y=[])


def test_empty_then_with_cohort():
    empty = TrialData.empty(outcomes=("y",))
    assert len(empty) == 0
    assert empty.n_cohorts == 0
    assert empty.last_dose is None
    assert empty.outcomes == ("y",)
    assert repr(empty) == "TrialData(0 patients in 0 cohorts; dose; outcomes: y)"
    first = empty.with_cohort(10.0, y=[0.1, 0.2, 0.3])
    second = first.with_cohort(20.0, y=[0.4, 0.5, 0.6])
    np.testing.assert_array_equal(second.cohort, [1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(second.dose, [10.0] * 3 + [20.0] * 3)
    assert len(empty) == 0
    with pytest.raises(DataError, match="outcome 'dlt' is not an outcome of these data"):
        empty.with_cohort(10.0, y=[0.1], dlt=[0])
    with pytest.raises(DataError, match="outcome 'y' is missing"):
        empty.with_cohort(10.0, dlt=[0])


def test_empty_without_outcomes_adopts_the_first_cohorts():
    data = TrialData.empty(outcomes=()).with_cohort(10.0, dlt=[0, 0, 1])
    assert data.outcomes == ("dlt",)
    np.testing.assert_array_equal(data.column("dlt"), [0, 0, 1])


def test_empty_rejects_unknown_outcome():
    with pytest.raises(DataError, match="unknown outcome 'toxicity'"):
        TrialData.empty(outcomes=("toxicity",))


def test_empty_to_dataframe():
    df = TrialData.empty(outcomes=("dlt",)).to_dataframe()
    assert list(df.columns) == ["dose", "cohort", "dlt"]
    assert len(df) == 0


def test_append(data):
    grown = data.append(frame(dose=[80.0, 80.0], cohort=[4, 4], y=[3.0, 3.5]))
    np.testing.assert_array_equal(grown.cohort[-2:], [4, 4])
    sequential = data.append(frame(dose=[80.0, 90.0], y=[3.0, 3.5]))
    np.testing.assert_array_equal(sequential.cohort[-2:], [4, 5])
    assert len(data) == 5


def test_append_cohort_must_continue(data):
    pattern = message("column 'cohort', row 5 (appended row 0): value 2 is lower than cohort 3")
    with pytest.raises(DataError, match=pattern):
        data.append(frame(dose=[80.0], cohort=[2], y=[3.0]))


def test_append_outcomes_must_match(data):
    with pytest.raises(DataError, match="append: outcome 'y' is missing"):
        data.append(frame(dose=[80.0], dlt=[1]))


# --------------------------------------------------------------------------- combinations


@pytest.fixture
def combo():
    return TrialData.from_dataframe(
        frame(dose_a=[1.0, 1.0, 2.0], dose_b=[0.0, 0.5, 0.5], cohort=[1, 1, 2], dlt=[0, 0, 1]),
        dose_columns=("dose_a", "dose_b"),
    )


def test_combination_doses(combo):
    assert combo.dose_columns == ("dose_a", "dose_b")
    assert combo.doses.shape == (3, 2)
    np.testing.assert_array_equal(combo.doses, [[1.0, 0.0], [1.0, 0.5], [2.0, 0.5]])
    np.testing.assert_array_equal(combo.column("dose_b"), [0.0, 0.5, 0.5])
    assert combo.last_dose == (2.0, 0.5)
    with pytest.raises(DataError, match="use `doses`"):
        _ = combo.dose
    assert repr(combo) == "TrialData(3 patients in 2 cohorts; dose_a, dose_b; outcomes: dlt)"


def test_combination_all_zero_row():
    pattern = message("columns 'dose_a', 'dose_b', row 1: values (0.0, 0.0) are all 0")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(
            frame(dose_a=[1.0, 0.0], dose_b=[0.0, 0.0]), dose_columns=("dose_a", "dose_b")
        )


def test_combination_negative_component():
    pattern = message("column 'dose_b', row 0: value -1.0 must be >= 0")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_dataframe(
            frame(dose_a=[1.0], dose_b=[-1.0]), dose_columns=("dose_a", "dose_b")
        )


def test_combination_with_cohort(combo):
    grown = combo.with_cohort((2.0, 1.0), dlt=[0, 1])
    np.testing.assert_array_equal(grown.doses[-2:], [[2.0, 1.0], [2.0, 1.0]])
    np.testing.assert_array_equal(grown.cohort[-2:], [3, 3])
    per_patient = combo.with_cohort(np.array([[2.0, 1.0], [3.0, 0.0]]), dlt=[0, 1])
    np.testing.assert_array_equal(per_patient.doses[-2:], [[2.0, 1.0], [3.0, 0.0]])
    with pytest.raises(DataError, match="needs 2 components"):
        combo.with_cohort(2.0, dlt=[0])


def test_combination_dose_ranges():
    df = frame(dose_a=[1.0, 0.0], dose_b=[5.0, 20.0])
    columns = ("dose_a", "dose_b")
    ranges = {"dose_a": (0.0, 10.0), "dose_b": (0.0, 50.0)}
    data = TrialData.from_dataframe(df, dose_columns=columns, dose_range=ranges)
    assert dict(data.dose_range) == ranges
    with pytest.raises(DataError, match=message("column 'dose_b', row 1: value 20.0 is outside")):
        TrialData.from_dataframe(df, dose_columns=columns, dose_range={"dose_b": (0.0, 10.0)})
    # A zero component (drug not given) is exempt from the range.
    data.check_dose_range(0.5, 30.0)
    with pytest.raises(DataError, match=message("column 'dose_a', row 0: value 1.0")):
        data.check_dose_range(2.0, 30.0, columns=("dose_a",))


# --------------------------------------------------------------------------- covariates


def test_covariates_are_stored():
    df = frame(dose=[1.0, 2.0], y=[0.0, 1.0], stratum=["A", "B"], age=[54.0, 61.5], other=[1, 2])
    data = TrialData.from_dataframe(df, covariates=("stratum", "age"))
    assert data.covariates == ("stratum", "age")
    assert data.columns == ("dose", "cohort", "y", "stratum", "age")
    assert list(data.column("stratum")) == ["A", "B"]
    np.testing.assert_array_equal(data.column("age"), [54.0, 61.5])
    assert "covariates: stratum, age" in repr(data)


def test_with_cohort_covariates():
    data = TrialData.empty(outcomes=("dlt",), covariates=("stratum",))
    data = data.with_cohort(10.0, dlt=[0, 1], stratum="A").with_cohort(
        20.0, dlt=[0, 0], stratum=["A", "B"]
    )
    assert list(data.column("stratum")) == ["A", "A", "A", "B"]
    with pytest.raises(DataError, match="covariate 'stratum' is missing"):
        data.with_cohort(20.0, dlt=[0])
    with pytest.raises(
        DataError,
        match=message(
            "column 'stratum', row 4 (patient 0 of the new cohort): value None is missing"
        ),
    ):
        data.with_cohort(20.0, dlt=[0], stratum=[None])


def test_covariate_names_must_not_clash():
    with pytest.raises(ValueError, match="cannot be a covariate"):
        TrialData.from_dataframe(frame(dose=[1.0], y=[0.0]), covariates=("y",))


# --------------------------------------------------------------------------- property test


@st.composite
def valid_frames(draw):
    n = draw(st.integers(min_value=0, max_value=25))
    doses = draw(
        st.lists(
            st.floats(min_value=0.0, exclude_min=True, allow_infinity=False, allow_nan=False),
            min_size=n,
            max_size=n,
        )
    )
    ys = draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(min_value=0, max_value=3), min_size=n, max_size=n))
    first = draw(st.integers(min_value=1, max_value=5))
    cohorts = first + np.cumsum(np.asarray(steps, dtype=np.int64)) if n else []
    return pd.DataFrame(
        {
            "dose": np.asarray(doses, dtype=np.float64),
            "cohort": np.asarray(cohorts, dtype=np.int64),
            "y": np.asarray(ys, dtype=np.float64),
        }
    )


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(valid_frames())
def test_valid_frames_round_trip(df):
    data = TrialData.from_dataframe(df)
    assert len(data) == len(df)
    pd.testing.assert_frame_equal(data.to_dataframe(), df, check_exact=True)
    assert TrialData.from_dataframe(data.to_dataframe()) == data


# --------------------------------------------------------------------------- quick acceptance


def _validate(source, dose_columns, ranges, previous, coded=False, previous_enrolled=None):
    from dosezoo import data as module

    return module._validate(
        source,
        dose_columns=dose_columns,
        covariates=(),
        ranges=ranges,
        row_label=module._default_row_label,
        previous_cohort=previous,
        coded=coded,
        previous_enrolled=previous_enrolled,
    )


#: Values that pass each column's rules. The property test draws its rows from these and then
#: replaces up to two values by one of `_FAULTS` (mostly failing a rule, some at its edge), so
#: that its rows pass every rule, or fail one or two.
_VALID = {
    "dose": [1.0, 2.0, 10.0, 39.5, 80.0, 0.0],  # 80: outside (0.5, 40); 0: drug not given
    "cohort": [1, 2, 3, 4],
    "y": [-1.5, 0.0, 2.0],
    "dlt": [0, 1],
    "efficacy": [0, 1, 2],
    "time": [0.5, 3.0],
    "event": [0, 1],
    "enrolled": [0.0, 0.5, 2.0, 3.0],  # 0.5: before a previous enrolment at 2.0
    "role": ["escalation", "backfill"],
}
_NOT_FINITE = [np.nan, np.inf, -np.inf]
_FAULTS = {
    "dose": [-1, 0, -0.0, 0.5, 40.0, 40, 1e300, *_NOT_FINITE],
    "cohort": [0, -1, 0.5, 2.5, 2.0**53, 2.0**53 + 2, 1e300, *_NOT_FINITE],
    "y": [1e300, -1e300, *_NOT_FINITE],
    "dlt": [2, -1, 0.5, 1.0, *_NOT_FINITE],
    "efficacy": [3, -1, 1.5, 2.0, *_NOT_FINITE],
    "time": [0, -0.5, 1e-300, 1e300, *_NOT_FINITE],
    "event": [2, -1, 0.5, 0.0, *_NOT_FINITE],
    "enrolled": [-1.0, -0.0, 1e300, *_NOT_FINITE],
    "role": ["expansion", "Backfill", "", None, 1, 0.5],
}


@settings(max_examples=1000, deadline=None)
@given(
    n=st.integers(1, 4),
    combination=st.booleans(),
    outcome=st.sampled_from(["y", "dlt", "efficacy", "time"]),
    integer_dtype=st.booleans(),
    sorted_cohorts=st.booleans(),
    previous=st.one_of(st.none(), st.integers(1, 3)),
    dose_range=st.one_of(st.none(), st.just((0.5, 40.0))),
    coded=st.booleans(),
    timed=st.booleans(),
    previous_enrolled=st.one_of(st.none(), st.just(0.0), st.just(2.0)),
    draw=st.data(),
)
def test_quick_acceptance_agrees_with_the_detailed_checks(
    n,
    combination,
    outcome,
    integer_dtype,
    sorted_cohorts,
    previous,
    dose_range,
    coded,
    timed,
    previous_enrolled,
    draw,
):
    """Quick acceptance accepts exactly what the detailed checks accept, with identical data.

    The same rows are validated twice: as they come, where a few rows of plain numbers are
    accepted quickly if they pass (the detailed checks never run then), and with the quick
    acceptance switched off. Timed rows (a simulation run in time) have the schedule columns
    ``enrolled`` and ``role`` too, and may follow a patient enrolled earlier.
    """
    from dosezoo import data as module

    dose_columns = ("a", "b") if combination else ("dose",)
    ranges = {name: dose_range for name in dose_columns} if dose_range else {}
    kinds = dict.fromkeys(dose_columns, "dose") | {"cohort": "cohort", outcome: outcome}
    if outcome == "time":
        kinds["event"] = "event"
    if timed:
        kinds |= {"enrolled": "enrolled", "role": "role"}
    values = {
        name: draw.draw(st.lists(st.sampled_from(_VALID[kind]), min_size=n, max_size=n))
        for name, kind in kinds.items()
    }
    if sorted_cohorts:
        values["cohort"].sort()
        values.get("enrolled", []).sort()
    for _ in range(draw.draw(st.integers(0, 2))):
        name = draw.draw(st.sampled_from(list(kinds)))
        values[name][draw.draw(st.integers(0, n - 1))] = draw.draw(
            st.sampled_from(_FAULTS[kinds[name]])
        )

    def column(name):
        if name == "role":
            return np.array(values[name], dtype=object)
        array = np.array(values[name], dtype=float)
        if integer_dtype and np.isfinite(array).all() and (np.abs(array) < 2**62).all():
            return array.astype(np.int64)
        return array

    source = {name: column(name) for name in kinds}
    previous_enrolled = previous_enrolled if timed else None

    with mock.patch.object(module, "_number_checks", wraps=module._number_checks) as detailed:
        try:
            quick = _validate(source, dose_columns, ranges, previous, coded, previous_enrolled)
        except DataError:
            quick = None
    with mock.patch.object(module, "_QUICK_ROWS", -1):
        try:
            full = _validate(source, dose_columns, ranges, previous, coded, previous_enrolled)
        except DataError:
            full = None
    assert (quick is not None and not detailed.called) == (full is not None)
    if full is not None:
        assert quick.outcomes == full.outcomes and quick.schedule == full.schedule
        np.testing.assert_array_equal(quick.doses, full.doses)
        assert quick.doses.dtype == full.doses.dtype and not quick.doses.flags.writeable
        assert quick.columns.keys() == full.columns.keys()
        for name, array in quick.columns.items():
            assert array.dtype == full.columns[name].dtype, name
            np.testing.assert_array_equal(array, full.columns[name])
            assert not array.flags.writeable


def test_quick_acceptance_declines_a_negative_combination_component():
    """Found by the property test above: -1 in a combination without a dose range."""
    source = {
        "a": np.array([0.0]),
        "b": np.array([-1.0]),
        "cohort": np.array([1]),
        "y": np.array([0.0]),
    }
    with pytest.raises(
        DataError, match=message("column 'b', row 0: value -1.0 must be >= 0 (0 = drug not given)")
    ):
        _validate(source, ("a", "b"), {}, None)


def test_quick_acceptance_leaves_many_rows_to_the_vectorised_checks():
    from dosezoo import data as module

    n = module._QUICK_ROWS + 1
    frame_ = frame(dose=np.full(n, 10.0), cohort=np.arange(1, n + 1), dlt=np.zeros(n, int))
    with mock.patch.object(module, "_number_checks", wraps=module._number_checks) as checks:
        data = TrialData.from_dataframe(frame_)
    assert checks.called and data.n_patients == n
    with mock.patch.object(module, "_number_checks", wraps=module._number_checks) as checks:
        data.with_cohort(20.0, dlt=[0, 1, 0])
    assert not checks.called


def test_timed_rows_are_accepted_quickly_and_a_bad_one_named_by_its_global_row():
    """A simulation run in time adds one patient at a time, with its enrolment and role."""
    from dosezoo import data as module

    data = TrialData.empty(("dlt",)).with_cohort(
        10.0, dlt=[0, 0, 1], enrolled=[0.5, 1.0, 2.0], role="escalation"
    )
    with mock.patch.object(module, "_number_checks", wraps=module._number_checks) as checks:
        grown = data.with_cohort(10.0, dlt=np.array([0]), enrolled=[2.5], role="backfill")
    assert not checks.called
    assert grown.column("role").tolist() == ["escalation"] * 3 + ["backfill"]
    assert grown.column("enrolled").dtype == np.float64 and grown.cohort.tolist() == [1, 1, 1, 2]
    pattern = message(
        "column 'enrolled', row 4 (patient 0 of the new cohort): value 2.0 is earlier than 2.5 "
        "in row 3: patients are listed in enrolment order"
    )
    with pytest.raises(DataError, match=pattern):
        grown.with_cohort(10.0, dlt=[0], enrolled=[2.0], role="backfill")
    pattern = message(
        "column 'role', row 4 (patient 0 of the new cohort): value 'expansion' must be "
        "'escalation' or 'backfill'"
    )
    with pytest.raises(DataError, match=pattern):
        grown.with_cohort(10.0, dlt=[0], enrolled=[3.0], role="expansion")


def test_with_cohort_names_the_bad_row_after_the_quick_check_declines(data):
    with pytest.raises(DataError, match=message("column 'dose', row 6 (patient 1 of the new")):
        data.with_cohort([20.0, -1.0], y=[0.1, 0.2])


# --------------------------------------------------------------------------- hostile CSV files


def test_csv_row_with_an_extra_field_is_refused(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,y\n40,33.6,101\n")
    pattern = message(
        f"CSV file {str(path)!r}, row 0 (CSV line 2): 3 fields but the header has 2 columns "
        "(dose, y); the extra value '101' belongs to no column"
    )
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)


def test_csv_duplicated_column_is_refused(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,y,dose\n40,33.6,60\n")
    pattern = message(
        f"CSV file {str(path)!r}, line 1: column 'dose' appears twice (columns 1 and 3"
    )
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)


def test_csv_in_utf8_with_a_byte_order_mark_and_utf16_is_read(tmp_path):
    text = "dose,y,centre\n40,33.6,Besançon\n60,40.1,Lyon\n"
    expected = TrialData.from_dataframe(
        pd.DataFrame({"dose": [40, 60], "y": [33.6, 40.1], "centre": ["Besançon", "Lyon"]}),
        covariates=("centre",),
    )
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        path = tmp_path / f"trial-{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        assert TrialData.from_csv(path, covariates=("centre",)) == expected, encoding


def test_csv_not_in_utf8_names_file_line_and_encoding(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_bytes("dose,y,centre\n40,33.6,Besançon\n".encode("cp1252"))
    pattern = message(
        f"CSV file {str(path)!r}, line 2, column 14 (byte offset 27): byte 0xe7 is not UTF-8; "
        "dosezoo reads CSV files as UTF-8"
    )
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path, covariates=("centre",))


@pytest.mark.parametrize(
    ("header", "pair"),
    [("Dose,dose,y", "'Dose' and 'dose'"), ('"dose ",dose,y', "'dose ' and 'dose'")],
)
def test_csv_columns_that_differ_only_in_case_or_spaces_are_refused(tmp_path, header, pair):
    # 'Dose,dose,y' / '40,60,33' read dose 60 and dropped the other column without a word
    # (an audit of the reliability fixes).
    path = tmp_path / "trial.csv"
    path.write_text(f"{header}\n40,60,33\n")
    pattern = message(
        f"CSV file {str(path)!r}, line 1: columns {pair} (columns 1 and 2 of the header) "
        "differ only in case or surrounding spaces"
    )
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)


def test_csv_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=message(f"CSV file {str(tmp_path)!r} is a directory")):
        TrialData.from_csv(tmp_path)


@pytest.mark.parametrize("text", ["1_000", "\u0664\u0660", "\uff14\uff10", "0x10", "1,000"])
def test_csv_number_is_ascii_decimal_only(tmp_path, text):
    path = tmp_path / "trial.csv"
    path.write_text(f'dose,y\n40,1.0\n"{text}",2.0\n', encoding="utf-8")
    pattern = message(f"column 'dose', row 1 (CSV line 3): value {text!r} is not numeric")
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)
    # the same rule as a DataFrame: text is never a number
    with pytest.raises(DataError, match=message(f"value {text!r} is not numeric")):
        TrialData.from_dataframe(frame(dose=[40.0, text]))


def _as_pandas_reads(text: str, columns: dict[str, np.ndarray]) -> None:
    """Check that ``columns`` are what pd.read_csv makes of ``text``: names, dtypes, bits."""
    expected = pd.read_csv(io.StringIO(text), index_col=False, low_memory=False)
    assert list(columns) == list(expected.columns)
    for name, values in columns.items():
        theirs = expected[name].to_numpy()
        assert values.dtype == theirs.dtype, (name, values, theirs)
        assert np.array_equal(values, theirs, equal_nan=True), (name, values, theirs)
        assert np.array_equal(np.signbit(values), np.signbit(theirs)), (name, values, theirs)


_INTEGERS = st.from_regex(r"-?[0-9]{1,18}", fullmatch=True)
_DECIMALS = st.one_of(
    st.from_regex(r"-?[0-9]{1,15}", fullmatch=True),
    st.from_regex(r"-?[0-9]{0,8}\.[0-9]{0,7}", fullmatch=True).filter(lambda t: t.strip("-.")),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.8f}"),
    st.just(""),
)


@st.composite
def _plain_csv(draw) -> str:
    """A CSV text of plain numbers: columns of integers, or of decimals and empty fields."""
    n_rows = draw(st.integers(1, 6))
    names = draw(
        st.lists(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    columns = [
        draw(
            st.lists(
                draw(st.sampled_from([_INTEGERS, _DECIMALS])), min_size=n_rows, max_size=n_rows
            )
        )
        for _ in names
    ]
    rows = [",".join(row) for row in zip(*columns, strict=True)]
    assume(any(rows))  # a file whose every row is blank has no rows (pandas skips them)
    lines = [",".join(names), *rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))


@settings(max_examples=200, deadline=None)
@given(_plain_csv())
@example("A,B\n,0\n-0,0")  # pandas: integers and empty fields are parsed as integers (0.0)
@example("A,B\n,0\n-0.0,0")  # but a decimal point keeps the sign (-0.0)
def test_a_plain_csv_file_is_read_without_pandas_as_pandas_reads_it(text):
    columns = _plain_csv_columns(text)
    assert columns is not None, text
    _as_pandas_reads(text, columns)


#: Fields near the plain ones that pandas reads otherwise (or that need its rules): signs,
#: exponents, spaces, NA spellings, booleans, long numbers, quotes.
_NEAR_MISSES = st.sampled_from(
    [
        "+1",
        "1e5",
        "1E-3",
        " 1",
        "1 ",
        "NA",
        "nan",
        "inf",
        "True",
        "x",
        '"1"',
        "1.0000000000000001",
        "12345678901234567890",
        "0.30000000000000004",
        "-",
        ".",
        "",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(_NEAR_MISSES, _INTEGERS, _DECIMALS), min_size=2, max_size=2),
        min_size=1,
        max_size=4,
    )
)
def test_a_csv_file_that_is_not_plain_is_left_to_pandas(rows):
    text = "dose,y\n" + "".join(",".join(row) + "\n" for row in rows)
    columns = _plain_csv_columns(text)
    if columns is not None:
        _as_pandas_reads(text, columns)
    if any(
        field in {"+1", "1e5", "NA", "True", '"1"', "12345678901234567890"}
        for row in rows
        for field in row
    ):
        assert columns is None, text


@pytest.mark.parametrize("cohort", [2**53 + 1, 2**62])
def test_cohort_above_2_to_the_53_is_refused(tmp_path, cohort):
    pattern = f"value {cohort} must be a positive integer up to 2\\*\\*53"
    with pytest.raises(DataError, match="column 'cohort', row 1: " + pattern):
        TrialData.from_dataframe(frame(dose=[1.0, 2.0], cohort=[1, cohort]))
    path = tmp_path / "trial.csv"
    path.write_text(f"dose,cohort\n1,1\n2,{cohort}\n")
    with pytest.raises(DataError, match=r"column 'cohort', row 1 \(CSV line 3\): " + pattern):
        TrialData.from_csv(path)


@pytest.mark.parametrize("text", ["9007199254740993.0", "9.007199254740993e15", "1e16"])
def test_a_cohort_written_as_a_decimal_from_2_to_the_53_on_is_refused(tmp_path, text):
    # 9007199254740993.0 is read as 2**53: a cohort number that was not written, accepted
    # where 9007199254740993 is refused.
    path = tmp_path / "trial.csv"
    path.write_text(f"dose,cohort,dlt\n10,1,0\n20,{text},0\n")
    with pytest.raises(DataError, match=r"column 'cohort', row 1 \(CSV line 3\): value "):
        TrialData.from_csv(path)
    with pytest.raises(DataError, match=r"column 'cohort', row 1: value .* up to 2\*\*53"):
        TrialData.from_dataframe(frame(dose=[10.0, 20.0], cohort=[1.0, float(text)], dlt=[0, 0]))
    assert TrialData.from_csv(_written(tmp_path, "9007199254740992")).cohort.tolist() == [1, 2**53]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        # Row r is line r + 2 only without blank lines above it; the readers skip those.
        (
            "dose,cohort,dlt\n10,1,0\n\n   \n10,1,0\n20,2,x\n",
            r"row 2 \(CSV line 6\): value 'x' is not numeric",
        ),
        ("dose,cohort,dlt\n\n10,1,0,5\n", r"row 0 \(CSV line 3\): 4 fields but the header has 3"),
        # " dose" is not the column the model needs; the message said the data lacked it,
        # showing the names with their spaces collapsed.
        (" dose,cohort,dlt \n10,1,0\n", r"column ' dose' has spaces around its name"),
        # a line the csv module cannot parse ends the line count; the parse error names it
        ("dose\n\r0", r"line 2: cannot be parsed: new-line character seen in unquoted field"),
        # pandas refused it without a line: "EOF inside string starting at row 1"
        ('dose\n"', r"line 2: a quoted field opened here is never closed"),
        # a line of empty fields is a row (a header of unnamed columns here), not a blank line
        (",\n0,1,-1", r"line 1: column '' appears twice"),
        # decimals a double rounds onto a whole number were read as it: a DLT, cohort 2
        (
            "dose,cohort,dlt\n10,1,0\n10,1,0.99999999999999999\n",
            r"column 'dlt', row 1 \(CSV line 3\): value '0.99999999999999999' is not a whole "
            r"number, though a double rounds it to 1",
        ),
        (
            "dose,cohort,dlt\n10,1,0\n20,1.9999999999999999,0\n",
            r"column 'cohort', row 1 \(CSV line 3\): value '1.9999999999999999' is not a whole",
        ),
        (
            "dose,cohort,efficacy,dlt\n10,1,1e-400,0\n",
            r"column 'efficacy', row 0 \(CSV line 2\): value '1e-400' is not a whole",
        ),
    ],
    ids=[
        "past-blank-lines",
        "extra-field-past-a-blank-line",
        "spaces-around-a-name",
        "unparsable-line",
        "unclosed-quote",
        "empty-fields-are-not-blank",
        "dlt-rounding-to-1",
        "cohort-rounding-to-2",
        "efficacy-underflowing-to-0",
    ],
)
def test_csv_errors_name_the_line_and_the_column_as_written(tmp_path, text, pattern):
    path = tmp_path / "trial.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=pattern):
        TrialData.from_csv(path)


@pytest.mark.parametrize(
    ("text", "covariates", "pattern"),
    [
        ("dose,cohort,dlt\n10,1,0\nN/A,1,0\n", (), r"column 'dose', row 1 \(CSV line 3\)"),
        ("dose,cohort,dlt\n10,1,0\n\n10,1,NULL\n", (), r"column 'dlt', row 1 \(CSV line 4\)"),
        ("dose,cohort,dlt,site\n10,1,0,NA\n", ("site",), r"column 'site', row 0 \(CSV line 2\)"),
    ],
    ids=["dose", "dlt-past-a-blank-line", "covariate"],
)
def test_csv_missing_value_markers_are_named_as_written(tmp_path, text, covariates, pattern):
    # pandas reads them as NaN: the message said "value nan", not what the file says
    marker = next(m for m in ("N/A", "NULL", "NA") if m in text.split("\n", 1)[1])
    path = tmp_path / "trial.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"{pattern}: value '{marker}' is missing \(a missing"):
        TrialData.from_csv(path, covariates=covariates)


def test_csv_whole_numbers_written_as_decimals_are_read(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,cohort,dlt\n10,1.0,0.000000000000000000\n10,1.00,1e0\n20,2e0,TRUE\n")
    data = TrialData.from_csv(path)
    np.testing.assert_array_equal(data.column("dlt"), [0, 1, 1])
    np.testing.assert_array_equal(data.cohort, [1, 1, 2])


@pytest.mark.parametrize(
    ("columns", "covariates", "pattern"),
    [
        ({"dose": [True, 20.0]}, (), r"column 'dose', row 0: value True is boolean"),
        ({"cohort": [1, np.True_]}, (), r"column 'cohort', row 1: value True is boolean"),
        ({"age": [50.5, True]}, ("age",), r"column 'age', row 1: value True is boolean"),
        (
            {"age": pd.Series([50.5, True], dtype=object)},
            ("age",),
            r"column 'age', row 1: value True is boolean",
        ),
    ],
    ids=["dose-list", "cohort-list", "covariate-list", "covariate-series"],
)
def test_a_bool_among_numbers_is_refused(columns, covariates, pattern):
    # numpy made a dose of 1.0 of it, a cohort of 1, a covariate value of 1.0
    source = {"dose": [10.0, 20.0], "cohort": [1, 2], "dlt": [0, 1]} | columns
    with pytest.raises(DataError, match=pattern):
        TrialData(source, covariates=covariates)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("dose,cohort,dlt,age\n10,1,0,61\n10,1,0,72\n10,1,1,6O\n", r"row 2 \(CSV line 4\)"),
        ("dose,cohort,dlt,age\n10,1,0,6O\n10,1,0,72\n10,1,1,61\n", r"row 0 \(CSV line 2\)"),
    ],
    ids=["typo-last", "typo-first"],
)
def test_a_csv_covariate_of_numbers_with_a_typo_names_the_typo(tmp_path, text, pattern):
    # pandas read the column as text, so the ages became three labels without a word
    path = tmp_path / "trial.csv"
    path.write_text(text)
    with pytest.raises(
        DataError, match=rf"column 'age', {pattern}: value '6O' is text, while 2 of 3 values"
    ):
        TrialData.from_csv(path, covariates=("age",))


def test_a_csv_covariate_of_labels_stays_labels(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,cohort,dlt,site\n10,1,0,Leeds\n10,1,0,York\n")
    data = TrialData.from_csv(path, covariates=("site",))
    assert list(data.column("site")) == ["Leeds", "York"]


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        (["m", 1, "f"], r"row 1: value 1 is a number, while 2 of 3 values of the column are text"),
        (["1", 1], r"row 1: value 1 is a number, while 1 of 2 values of the column are text"),
        (["a", True, "b"], r"row 1: value True is of type bool, while 2 of 3 values"),
    ],
    ids=["number-among-labels", "same-label-twice", "bool-among-labels"],
)
def test_a_covariate_mixing_kinds_of_value_is_refused(values, pattern):
    source = {"dose": [10.0] * len(values), "dlt": [0] * len(values), "z": values}
    with pytest.raises(DataError, match=rf"column 'z', {pattern}"):
        TrialData(source, covariates=("z",))


def test_rows_read_from_a_csv_file_are_named_with_their_line(tmp_path):
    path = tmp_path / "trial.csv"
    path.write_text("dose,cohort,dlt\n10,1,0\n\n20,2,0\n20,2,1\n")
    data = TrialData.from_csv(path)
    assert [data.row_name(row) for row in range(3)] == [
        "row 0 (CSV line 2)",
        "row 1 (CSV line 4)",
        "row 2 (CSV line 5)",
    ]
    assert pickle.loads(pickle.dumps(data)).row_name(2) == "row 2 (CSV line 5)"
    assert data.head(2).row_name(1) == "row 1 (CSV line 4)"
    grown = data.with_cohort(40.0, dlt=[0])
    assert (grown.row_name(2), grown.row_name(3)) == ("row 2 (CSV line 5)", "row 3")
    assert TrialData.from_dataframe(data.to_dataframe()).row_name(2) == "row 2"


def test_bools_stay_what_they_are_where_they_are_allowed():
    source = {"dose": [10.0, 20.0], "cohort": [1, 2], "dlt": [True, 0], "fit": [True, False]}
    data = TrialData(source, covariates=("fit",))
    np.testing.assert_array_equal(data.column("dlt"), [1, 0])
    assert data.column("fit").dtype == bool


def test_a_data_frame_column_with_spaces_around_its_name_is_named():
    frame = pd.DataFrame({"dose": [10.0], "dlt ": [0]})
    with pytest.raises(DataError, match=r"column 'dlt ' has spaces around its name"):
        TrialData.from_dataframe(frame)


def _written(tmp_path, cohort: str):
    path = tmp_path / "exact.csv"
    path.write_text(f"dose,cohort,dlt\n10,1,0\n20,{cohort},0\n")
    return path


def test_pandas_series_with_different_indexes_are_refused_not_paired_by_position():
    # Columns of a mapping were paired by position: P3's DLT went to P1's dose.
    dose = pd.Series({"P1": 10.0, "P2": 10.0, "P3": 20.0})
    dlt = pd.Series({"P3": 1, "P1": 0, "P2": 0})
    with pytest.raises(DataError, match=r"columns 'dose' and 'dlt' are pandas Series with"):
        TrialData({"dose": dose, "dlt": dlt})
    aligned = TrialData({"dose": dose, "dlt": dlt.reindex(dose.index)})
    assert aligned.column("dlt").tolist() == [0, 0, 1]
    assert TrialData({"dose": dose.to_numpy(), "dlt": dlt}).n_patients == 3  # one Series
