"""Dose transition pathways: every registered design, memoisation, and checks of the tree."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData
from dosezoo.designs.pathways import cohort_outcomes, dose_paths
from dosezoo.designs.registry import FAMILIES
from tests.test_contract import EXAMPLES, FAMILY_NAMES, _case

#: Families whose pathways are not defined, and why (the error must say so).
UNDEFINED = {
    "3pnd": "continuous",
    "weibull-d-optimal": "continuous",
    "combination-bo": "covariates",
}


#: Families whose one-cohort pathways take more than ~20 s: the joint probit's 56 outcomes of a
#: cohort of three (toxicity 0/1 by efficacy 0/1/2), each an MCMC fit.
PATHS_SLOW = frozenset({"joint-probit"})


def _path_cases():
    for name in FAMILY_NAMES:
        marks = [pytest.mark.slow] if name in PATHS_SLOW else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_path_cases()))
def test_every_design_has_pathways_or_says_why_not(name):
    case = _case(name)
    if name in UNDEFINED:
        with pytest.raises(ValueError, match=UNDEFINED[name]):
            dose_paths(case.design, case.data, 1)
        return
    paths = dose_paths(case.design, case.data, 1)
    table = paths.table
    assert len(table) >= 1
    root = table.iloc[0]
    assert root["parent"] == -1 and root["n_patients"] == case.data.n_patients
    children = table[table["parent"] == 0]
    if not root["stop_reason"]:
        model_outcomes = case.design.model.outcomes if case.design.model else ("dlt",)
        counted = getattr(case.design.rule, "counted_outcomes", ())
        outcomes = tuple(dict.fromkeys((*model_outcomes, *counted)))
        read = case.design.rule.outcome_values
        assert len(children) == len(cohort_outcomes(outcomes, case.design.cohort_size, read))
        assert (children["n_patients"] == case.data.n_patients + case.design.cohort_size).all()


def test_the_families_without_pathways_are_registered():
    assert set(UNDEFINED) <= set(FAMILIES)


def test_a_cohort_of_three_with_binary_outcomes_has_four_outcomes():
    codes = [code for code, _ in cohort_outcomes(("dlt",), 3)]
    assert codes == ["NNN", "NNT", "NTT", "TTT"]
    # Joint toxicity (0/1) and ordinal efficacy (0/1/2): 6 kinds of patient, C(6 + 1, 2) pairs.
    assert len(cohort_outcomes(("dlt", "efficacy"), 2)) == 21


def _crm():
    design = design_from_config(read_config(EXAMPLES / "crm.toml"), "crm")
    return design, TrialData.from_csv(EXAMPLES / "binary_cohorts.csv")


def test_crm_pathways_agree_with_the_design_on_each_extended_trial():
    design, data = _crm()
    paths = dose_paths(design, data, 2)
    table = paths.table.set_index("node")
    assert len(table) == 1 + 4 + 16  # no stop within two cohorts here
    # Distinct states: orders of outcomes at the same dose share one posterior.
    assert paths.posteriors < len(table)
    for node, row in table.iterrows():
        # Rebuild the trial from the codes, with the dose the tree gave each cohort.
        trial = data
        codes = row["path"].split()
        ancestors = []
        current = node
        while current != 0:
            ancestors.append(current)
            current = int(table.loc[current, "parent"])
        for member, code in zip(reversed(ancestors), codes, strict=True):
            dlt = [1 if c == "T" else 0 for c in code[1:]]
            trial = trial.with_cohort(table.loc[member, "dose"], dlt=dlt)
        expected = design.next(trial)  # no memo: computed afresh
        assert row["next_dose"] == expected.next_dose, (row["path"], expected)


def test_boin12_pathways_tell_a_response_from_none_only():
    # BOIN12 reads efficacy >= 1: the tree enumerated efficacy 1 and 2 apart, 56 branches of a
    # cohort of 3 (about 3000 rows for 2 cohorts) where 20 differ.
    config = EXAMPLES / "boin12.toml"
    design = design_from_config(read_config(config), str(config))
    data = TrialData.from_csv(EXAMPLES / "efftox_cohorts.csv")
    table = dose_paths(design, data, 1).table
    branches = table[table["cohort"] == 1]
    assert len(branches) == 20 and not branches["path"].str.contains("E2").any()
    for row in branches.itertuples():
        codes = row.path[1:].split(",")
        dlt = [1 if code[0] == "T" else 0 for code in codes]
        for high in (1, 2):  # a high response decides as a response
            efficacy = [high if code.endswith("E1") else 0 for code in codes]
            trial = data.with_cohort(row.dose, dlt=dlt, efficacy=efficacy)
            decision = design.next(trial)
            assert (row.next_dose, row.stop_reason or None) == (
                decision.next_dose,
                decision.stop_reason,
            ), (row.path, high)


def test_three_plus_three_pathways_follow_the_rule():
    design = design_from_config(read_config(EXAMPLES / "three_plus_three.toml"), "3+3")
    levels = design.dose_levels
    empty = TrialData.empty(outcomes=("dlt",))
    table = dose_paths(design, empty, 2).table
    first = table[table["cohort"] == 1].set_index("outcomes")
    # 0/3 escalates; 1/3 treats 3 more at the same dose; 2 or 3 of 3 exceed the MTD at the
    # first dose, so no dose is recommended and the trial stops.
    assert first.loc["1NNN", "next_dose"] == levels[1]
    assert first.loc["1NNT", "next_dose"] == levels[0]
    assert np.isnan(first.loc["1NTT", "next_dose"]) and first.loc["1NTT", "stop_reason"]
    assert np.isnan(first.loc["1TTT", "next_dose"])
    after_one = table[table["path"].str.startswith("1NNT ")].set_index("outcomes")
    assert after_one.loc["2NNN", "next_dose"] == levels[1]  # 1/6 escalates


def test_the_paths_command_prints_json_records(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "paths",
            str(EXAMPLES / "binary_cohorts.csv"),
            "--config",
            str(EXAMPLES / "crm.toml"),
            "--cohorts",
            "1",
            "--json",
            "--figure",
            str(tmp_path / "paths.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["outcomes"] for r in records] == ["", "1NNN", "1NNT", "1NTT", "1TTT"]
    assert (tmp_path / "paths.png").stat().st_size > 0
    design, data = _crm()
    assert records[0]["next_dose"] == design.next(data).next_dose


def test_the_paths_command_names_a_continuous_outcome(tmp_path):
    frame = pd.read_csv(EXAMPLES / FAMILIES["3pnd"].example_data)
    data_csv = tmp_path / "o6bg.csv"
    frame.to_csv(data_csv, index=False)
    result = CliRunner().invoke(
        app, ["paths", str(data_csv), "--config", str(EXAMPLES / FAMILIES["3pnd"].example)]
    )
    assert result.exit_code == 2
    assert "'y' is continuous" in result.output
