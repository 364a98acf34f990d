"""The outcome registry: built-in outcomes, a model's own outcome, and the refusals."""

import re

import numpy as np
import pandas as pd
import pytest

from dosezoo import outcomes as registry
from dosezoo.data import DataError, TrialData
from dosezoo.outcomes import Outcome, register_outcome, registered_outcomes

GRADE = Outcome(
    "grade", integer=True, allowed=(0, 1, 2, 3, 4), requirement="must be a CTCAE grade 0 to 4"
)


@pytest.fixture(autouse=True)
def restore_registry():
    """Leave the registry as the test found it (other tests list the known outcomes)."""
    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


def test_builtin_outcomes_in_order():
    # Models register their own outcomes when imported (GPSurface's "response"): after these.
    assert list(registered_outcomes())[:5] == ["y", "dlt", "efficacy", "time", "event"]
    assert registered_outcomes()["time"].requires == "event"
    assert registered_outcomes()["event"].requires == "time"
    with pytest.raises(TypeError):
        registered_outcomes()["grade"] = GRADE


def test_the_pair_message_is_unchanged():
    expected = (
        "column 'time' is present but column 'event' is missing: time-to-event data need both "
        "'time' (> 0) and 'event' (1 = event observed, 0 = censored)"
    )
    with pytest.raises(DataError, match=re.escape(expected)):
        TrialData.from_dataframe(pd.DataFrame({"dose": [1.0], "time": [2.0]}))


def test_a_registered_outcome_is_recognised_and_validated():
    register_outcome(GRADE)
    assert list(registered_outcomes())[-1] == "grade"
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [1.0, 2.0], "grade": [0, 3], "y": [0.5, 1.5]})
    )
    assert data.outcomes == ("y", "grade")
    assert data.column("grade").dtype == np.int64
    grown = TrialData.empty(outcomes=("grade",)).with_cohort(10.0, grade=[0, 4, 1])
    assert grown.column("grade").tolist() == [0, 4, 1]
    with pytest.raises(
        DataError, match=re.escape("column 'grade', row 1: value 7 must be a CTCAE grade 0 to 4")
    ):
        TrialData.from_dataframe(pd.DataFrame({"dose": [1.0, 2.0], "grade": [0, 7]}))
    with pytest.raises(DataError, match=re.escape("row 4 (patient 1 of the new cohort): value 5")):
        grown.with_cohort(20.0, grade=[0, 5])


def test_a_registered_outcome_is_listed_among_the_known_ones():
    register_outcome(GRADE)
    known = r"known outcomes: y, dlt, efficacy, time, event(, \w+)*, grade$"
    with pytest.raises(DataError, match=known):
        TrialData.empty(outcomes=("qtc",))


def test_a_registered_pair_requires_its_companion():
    register_outcome(
        Outcome("onset", positive=True, requirement="must be > 0", requires="onset_seen"),
        Outcome(
            "onset_seen",
            integer=True,
            allowed=(0, 1),
            requirement="must be 0 or 1",
            requires="onset",
            requires_reason="onset data need both columns",
        ),
    )
    with pytest.raises(
        DataError,
        match=re.escape("column 'onset_seen' is present but column 'onset' is missing: onset data"),
    ):
        TrialData.from_dataframe(pd.DataFrame({"dose": [1.0], "onset_seen": [1]}))
    with pytest.raises(DataError, match=r"column 'onset' is present but column 'onset_seen'"):
        TrialData.from_dataframe(pd.DataFrame({"dose": [1.0], "onset": [2.0]}))


def test_registering_the_same_definition_again_does_nothing():
    register_outcome(GRADE)
    register_outcome(GRADE, GRADE)
    assert list(registered_outcomes()).count("grade") == 1


@pytest.mark.parametrize(
    ("outcomes", "error", "match"),
    [
        ((Outcome("dlt"),), ValueError, "outcome 'dlt' is already registered as"),
        ((GRADE, Outcome("grade")), ValueError, "outcome 'grade' is already registered as"),
        ((Outcome("dose"),), ValueError, "'dose' is a reserved column of trial data"),
        ((Outcome("cohort"),), ValueError, "'cohort' is a reserved column of trial data"),
        (
            (Outcome("onset", requires="onset_seen"),),
            ValueError,
            "outcome 'onset' requires 'onset_seen', which is not registered",
        ),
        (("grade",), TypeError, "expected an Outcome, got 'grade'"),
    ],
)
def test_register_outcome_refuses(outcomes, error, match):
    before = dict(registered_outcomes())
    with pytest.raises(error, match=match):
        register_outcome(*outcomes)
    assert dict(registered_outcomes()) == before


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"name": "g", "allowed": (0, 1.5), "requirement": "x"}, "allowed must be a non-empty"),
        ({"name": "g", "allowed": (0, 1)}, "requirement must say what a valid value is"),
        ({"name": "g", "positive": True}, "requirement must say what a valid value is"),
        ({"name": "g", "integer": 1}, "integer must be True or False"),
        ({"name": "g", "requires": "g"}, "requires must name another outcome"),
        ({"name": "g", "requires": "cohort"}, "requires must name another outcome"),
    ],
)
def test_outcome_fields_are_checked(fields, match):
    with pytest.raises(ValueError, match=match):
        Outcome(**fields)


def test_a_registered_name_cannot_become_a_covariate_or_dose_column():
    register_outcome(GRADE)
    with pytest.raises(ValueError, match="'grade' cannot be a covariate"):
        TrialData.from_dataframe(pd.DataFrame({"dose": [1.0], "grade": [1]}), covariates=("grade",))
    with pytest.raises(ValueError, match="'grade' cannot be a dose column"):
        TrialData.from_dataframe(pd.DataFrame({"grade": [1.0]}), dose_columns=("grade",))


def test_a_covariate_registered_later_as_an_outcome_stays_a_covariate():
    data = TrialData.from_dataframe(
        pd.DataFrame({"dose": [1.0], "y": [0.1], "grade": ["a"]}), covariates=("grade",)
    )
    register_outcome(GRADE)
    grown = data.with_cohort(2.0, y=[0.2], grade=["b"])
    assert grown.outcomes == ("y",) and grown.covariates == ("grade",)
    assert grown.column("grade").tolist() == ["a", "b"]


def test_csv_booleans_of_a_registered_outcome(tmp_path):
    register_outcome(
        Outcome("rash", integer=True, allowed=(0, 1), allow_bool=True, requirement="must be 0/1")
    )
    path = tmp_path / "trial.csv"
    path.write_text("dose,rash\n1.0,True\n2.0,false\n")
    assert TrialData.from_csv(path).column("rash").tolist() == [1, 0]
