import ast
import codecs
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData
from dosezoo.designs.registry import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "o6bg_accelerated.toml"
DATA = EXAMPLES / "o6bg_first_cohorts.csv"
DATA_BINARY = EXAMPLES / "binary_cohorts.csv"
FAMILY_NAMES = sorted(FAMILIES)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def _one_line_error(result, pattern):
    """Exit status 2, one line, no traceback, matching ``pattern``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert re.search(pattern, result.output), result.output


def _published_table_03() -> dict[int, tuple[int, int, int]]:
    """BOIN's published decision table for target 0.3, as tests/test_boin.py holds it."""
    tree = ast.parse((ROOT / "tests" / "test_boin.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PUBLISHED_TABLE_03" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("PUBLISHED_TABLE_03 not found in tests/test_boin.py")


# --------------------------------------------------------------------------- 3PND (O6-BG)


def test_demo_runs_the_redesign_and_saves_the_figure(tmp_path):
    figure = tmp_path / "redesign.png"
    result = _run("demo", "--figure", figure, "--replicates", "4")
    assert result.exit_code == 0, result.output
    typical = re.findall(r"the path above ends at ([0-9.]+), as (\d+)% of them do", result.output)
    assert len(typical) == 2, result.output
    # the printed path is trial 0 of the replicates, so at least 1 in 4 ends where it ends
    assert all(int(share) >= 25 for _, share in typical)
    assert "Posterior of the MTD on the real data" in result.output
    paths = re.findall(r"dose path ([0-9 >.-]+);", result.output)
    assert len(paths) == 2, result.output
    for path in paths:
        doses = [float(d) for d in path.split("->")]
        assert doses[0] == 40.0 and doses == sorted(doses)  # start dose, monotone
    assert figure.stat().st_size > 10_000


def test_next_dose_text_and_json():
    text = _run("next-dose", DATA, "--config", CONFIG)
    assert text.exit_code == 0, text.output
    assert text.output.startswith("next dose: ")
    as_json = _run("next-dose", DATA, "--config", CONFIG, "--json")
    decision = json.loads(as_json.output)
    assert decision["next_dose"] in (60.0, 80.0, 100.0, 120.0)  # monotone from 60
    assert decision["n_patients"] == 6
    assert 0.0 <= decision["quantities"]["p_overdose"] <= 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("alpha = 0.1", "alpah = 0.1"), r"\[rule\] unknown key 'alpah'"),
        (lambda s: s.replace("alpha = 0.1", "alpha = 0.9"), r"\[rule\] .*alpha must lie in"),
        (lambda s: s.replace("start_dose = 40.0", "start_dose = 50.0"), "not one of the dose"),
        (lambda s: s.replace("[conduct]", "[conduct\n"), "not valid TOML"),
        (lambda s: s + "\n[extra]\n", r"unknown section \[extra\]"),
        (lambda s: s.replace("[model]", "[[model]]"), r"\[model\] must be a table.*array of"),
        (lambda s: s.replace("eta = 55.0\n", ""), r"\[model\] missing key 'eta'"),
    ],
)
def test_bad_configs_are_one_clear_line(tmp_path, edit, message):
    config = tmp_path / "design.toml"
    config.write_text(edit(CONFIG.read_text()))
    result = _run("next-dose", DATA, "--config", config)
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_bad_data_names_the_row_and_value(tmp_path):
    data = tmp_path / "trial.csv"
    data.write_text("dose,y\n40,12.0\n60,oops\n")
    result = _run("next-dose", data, "--config", CONFIG)
    assert result.exit_code == 2
    assert "oops" in result.output and "'y'" in result.output
    missing = _run("next-dose", tmp_path / "absent.csv", "--config", CONFIG)
    assert missing.exit_code == 2


def test_an_interrupted_simulation_says_the_same_command_resumes(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dosezoo.simulate.simulate", interrupted)
    output = tmp_path / "sim.nc"
    result = _run("simulate", EXAMPLES / "boin.toml", "--output", output, "--no-progress")
    assert result.exit_code == 130
    assert f"saved in {output}.parts; the same command resumes" in result.output


def test_simulate_writes_netcdf_and_a_summary(tmp_path):
    config = tmp_path / "sim.toml"
    config.write_text(CONFIG.read_text().replace("n_trials = 200", "n_trials = 6"))
    output = tmp_path / "sim.nc"
    result = _run("simulate", config, "--output", output, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "n_agt_below_5" in result.output
    results = xr.load_dataset(output, engine="h5netcdf")
    assert results.sizes["trial"] == 6
    assert results.attrs["design_rule_alpha"] == 0.1
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.read_text().replace('type = "o6bg"', 'type = "weird"'))
    failed = _run("simulate", bad, "--output", tmp_path / "x.nc")
    assert failed.exit_code == 2
    assert "[scenario] type must be one of" in failed.output


def test_the_stopping_rule_of_the_conduct_is_read(tmp_path):
    text = CONFIG.read_text()
    active = re.sub(
        r"^# (\[\[conduct\.stopping\]\]|type = |threshold|max_toxicities)", r"\1", text, flags=re.M
    )
    assert "\n[[conduct.stopping]]" in active
    config = tmp_path / "stopping.toml"
    config.write_text(active.replace("max_toxicities = 2", "max_toxicities = 0"))
    data = tmp_path / "trial.csv"
    data.write_text("dose,cohort,y\n40,1,56.0\n40,1,10.0\n40,1,12.0\n")
    result = _run("next-dose", data, "--config", config, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stop_reason"].startswith("toxicity: 1 patients")
    config.write_text(active.replace('type = "toxicity"', 'type = "toxic"'))
    _one_line_error(
        _run("next-dose", data, "--config", config),
        r"\[conduct\.stopping\[0\]\] type = \"toxic\": must be one of 'toxicity'",
    )


# --------------------------------------------------------------------------- every family


def _example(name):
    family = FAMILIES[name]
    return EXAMPLES / family.example, EXAMPLES / family.example_data


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_next_dose_for_every_family(name):
    config, data = _example(name)
    text = _run("next-dose", data, "--config", config)
    assert text.exit_code == 0, text.output
    pattern = r"(next dose: \S+( \S+)? \(|stop: |next dose per stratum:\n)"  # a unit, if any
    assert re.match(pattern, text.output), text.output
    record = json.loads(_run("next-dose", data, "--config", config, "--json").output)
    assert record["n_patients"] == len(data.read_text().strip().splitlines()) - 1
    assert record["design"]
    if "strata" in record:  # one dose per stratum (a personalised design)
        assert record["next_dose"] is None
        going = [s for s in record["strata"] if s["next_dose"] is not None]
        assert (record["stop_reason"] is not None) == (not going)
        for stratum in record["strata"]:
            assert (stratum["next_dose"] is None) == (stratum["stop_reason"] is not None)
            label = ",".join(f"{k}={v:g}" for k, v in stratum["stratum"].items())
            assert f"  {label}: " in text.output
        return
    assert (record["next_dose"] is None) == (record["stop_reason"] is not None)
    if isinstance(record["next_dose"], list):  # a combination
        shown = "(" + ",".join(f"{v:g}" for v in record["next_dose"]) + ")"
        assert f"next dose: {shown} " in text.output
    elif record["next_dose"] is not None:
        assert f"next dose: {record['next_dose']:g} " in text.output


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_simulate_and_report_for_every_family(tmp_path, name):
    config, _ = _example(name)
    output = tmp_path / f"{name}.nc"
    result = _run(
        "simulate", config, "--output", output, "--trials", 3, "--jobs", 1, "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert "Operating characteristics over 3 trials" in result.output
    assert "stopped early:" in result.output
    results = xr.load_dataset(output, engine="h5netcdf")
    assert results.sizes["trial"] == 3
    assert results.attrs["design_name"]
    figure = tmp_path / "report.png"
    report = _run("report", output, "--figure", figure)
    assert report.exit_code == 0, report.output
    for text in ("Operating characteristics", "MCSE"):
        assert text in report.output
    tables = (
        "Selection and allocation per dose",
        "Selection per stratum (fraction of trials)",
        "Allocation per dose",  # a design that selects no dose (Weibull D-optimal)
    )
    lines = {line.strip() for line in report.output.splitlines()}
    assert sum(table in lines for table in tables) == 1
    assert figure.stat().st_size > 10_000
    record = json.loads(_run("report", output, "--figure", figure, "--json").output)
    assert record["n_trials"] == 3
    # per stratum, fractions of the trials; none and other over the trials and strata
    strata = len({row.get("stratum") for row in record["selection"]})
    selected = sum(row["fraction"] for row in record["selection"]) / strata
    assert selected + record["no_selection"]["fraction"] + record[
        "other_selection"
    ] == pytest.approx(1)
    patients = sum(row["mean"] for row in record["allocation"])
    assert patients == pytest.approx(record["patients_per_trial"])
    sizes = results["n_patients"].values
    assert record["patients_per_trial_se"] == pytest.approx(np.std(sizes, ddof=1) / np.sqrt(3))
    assert f"patients per trial: mean {sizes.mean():.2f} (MCSE " in report.output
    for metric in record["operating_characteristics"].values():
        assert set(metric) == {"median", "mcse_median", "mean", "mcse_mean", "n"}
    page = tmp_path / "report.html"
    html = _run("report", output, "--output", page)
    assert html.exit_code == 0, html.output
    text = page.read_text()
    assert f"{results.attrs['design_name']} under " in text
    assert text.count('src="data:image/png;base64,') == 2


def test_report_saves_the_figure_next_to_the_results_by_default(tmp_path):
    config, _ = _example("boin")
    output = tmp_path / "boin.nc"
    assert _run("simulate", config, "-o", output, "--trials", 20, "--no-progress").exit_code == 0
    report = _run("report", output)
    assert report.exit_code == 0, report.output
    assert (tmp_path / "boin.png").stat().st_size > 10_000
    text = report.output
    assert re.search(r"BOIN under BinaryToxicityScenario, 20 trials", text)
    assert re.search(r"│\s+none\s+│", text)
    # a figure named without a suffix is saved as PNG, under the name it is reported by
    named = _run("report", output, "--figure", tmp_path / "allocation")
    said = "".join(named.output.split())  # the console wraps a long path
    assert f"figureoftheselectionandallocation:{tmp_path / 'allocation.png'}" in said
    assert (tmp_path / "allocation.png").stat().st_size > 10_000


def test_report_takes_the_seed_of_its_bootstrap(tmp_path):
    from dosezoo.simulate import operating_characteristics

    config, _ = _example("boin")
    output = tmp_path / "boin.nc"
    assert _run("simulate", config, "-o", output, "--trials", 40, "--no-progress").exit_code == 0
    figure = tmp_path / "boin.png"

    def mcse_medians(*seed):
        record = json.loads(_run("report", output, "--figure", figure, "--json", *seed).output)
        metrics = record["operating_characteristics"]
        return {name: metric["mcse_median"] for name, metric in metrics.items()}

    default, chosen = mcse_medians(), mcse_medians("--random-seed", 5)
    assert default == mcse_medians("--random-seed", 0)
    summary = operating_characteristics(xr.load_dataset(output, engine="h5netcdf"), random_seed=5)
    expected = {
        str(metric): float(summary.sel(metric=metric)["mcse_median"])
        for metric in summary["metric"].values
    }
    assert chosen == pytest.approx(expected, nan_ok=True)
    assert chosen != default
    page = tmp_path / "report.html"
    assert _run("report", output, "-o", page, "--random-seed", 5).exit_code == 0
    assert "bootstrapped with random seed 5" in page.read_text()
    refused = _run("report", output, "--random-seed", -1)
    assert refused.exit_code == 2 and "Invalid value for '--random-seed'" in refused.output


def test_simulate_takes_a_seed_in_place_of_the_configured_one(tmp_path):
    config, _ = _example("boin")
    runs = {}
    for name, seed in (("configured", ()), ("other", ("--random-seed", "11"))):
        output = tmp_path / f"{name}.nc"
        options = ("-o", output, "--trials", 8, "--no-progress", *seed)
        assert _run("simulate", config, *options).exit_code == 0
        runs[name] = xr.load_dataset(output, engine="h5netcdf")
    configured, other = runs["configured"], runs["other"]
    assert other.attrs["random_seed"] == 11 != configured.attrs["random_seed"]
    assert other.attrs["simulate_command"].endswith("--trials 8 --random-seed 11")
    assert not np.array_equal(other["dose"].values, configured["dose"].values, equal_nan=True)


def test_report_refuses_what_is_not_a_simulation(tmp_path):
    _one_line_error(_run("report", tmp_path / "absent.nc"), "no such results file")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netCDF")
    _one_line_error(_run("report", junk), "not a netCDF file of results")


def test_simulate_trials_and_jobs_override_the_file(tmp_path):
    config, _ = _example("3+3")
    output = tmp_path / "three.nc"
    result = _run("simulate", config, "-o", output, "--trials", 8, "--jobs", 2, "--no-progress")
    assert result.exit_code == 0, result.output
    assert xr.load_dataset(output, engine="h5netcdf").sizes["trial"] == 8
    assert _run("simulate", config, "-o", output, "--trials", 0).exit_code == 2


def test_simulate_trials_stand_in_for_a_missing_n_trials(tmp_path):
    # The help says --trials takes the place of [simulation] n_trials; the file's table was
    # validated first, so a file without the key was refused however many trials were asked.
    text = (EXAMPLES / "three_plus_three.toml").read_text()
    assert "n_trials" in text
    config = tmp_path / "no_n_trials.toml"
    config.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("n_trials"))
    )
    output = tmp_path / "three.nc"
    result = _run("simulate", config, "-o", output, "--trials", 4, "--no-progress")
    assert result.exit_code == 0, result.output
    assert xr.load_dataset(output, engine="h5netcdf").sizes["trial"] == 4
    _one_line_error(_run("simulate", config, "-o", output), "missing key 'n_trials'")


# --------------------------------------------------------------------------- designs


def test_designs_lists_every_family_with_its_options():
    text = _run("designs")
    assert text.exit_code == 0, text.output
    for family in FAMILIES.values():
        assert f"{family.name}: {family.summary}" in text.output
        assert f"examples/{family.example}" in text.output
    assert 'estimate = "plugin"' in text.output  # a rule default
    # the 3+3's derived default
    assert "sample_size = (6 per dose level, plus the backfill's total_cap)" in text.output
    assert "seno2025:" in text.output and "o6bg:" in text.output  # scenario types
    record = json.loads(_run("designs", "--json").output)
    assert set(record["families"]) == set(FAMILIES)
    crm = record["families"]["crm"]
    assert {"name": "target", "type": "float", "required": True} in crm["model_options"]
    assert {"name": "safety_cutoff", "type": "float | None", "default": 0.95} in crm["rule_options"]
    assert record["families"]["ewoc"]["conduct_defaults"] == {"cohort_size": 1}
    assert record["families"]["boin"]["count_design"] is True
    assert {o["name"] for o in record["conduct"]} >= {"cohort_size", "stopping", "convergence"}
    assert "p_true" in {o["name"] for o in record["scenarios"]["binary"]["options"]}
    # The keys a scenario takes from the design were listed as required (the examples leave
    # them out).
    assert "p_true = (required), target = (the design's, else required)" in text.output
    assert record["scenarios"]["binary"]["from_design"] == [
        "dose_levels",
        "target",
        "planned_sample_size",
    ]
    # the conduct's stopping rules, with what they read
    assert "toxicity: Stop the trial when more than max_toxicities patients" in text.output
    assert "threshold = (required), max_toxicities = (required)" in text.output
    assert record["stopping"]["toxicity"]["outcomes"] == ["y"]


# --------------------------------------------------------------------------- decision-table


def test_decision_table_reproduces_boins_published_table(tmp_path):
    published = _published_table_03()
    config = tmp_path / "boin1.toml"
    text = (EXAMPLES / "boin.toml").read_text().replace("cohort_size = 3", "cohort_size = 1")
    config.write_text(text)
    record = json.loads(_run("decision-table", config, "--max-patients", 12, "--json").output)
    rows = {row["n"]: row for row in record["rows"]}
    assert sorted(rows) == list(range(1, 13))
    for n, expected in published.items():
        row = rows[n]
        assert (row["escalate"], row["deescalate"], row["eliminate"]) == expected, n
    assert rows[1]["eliminate"] is None and rows[2]["eliminate"] is None  # needs 3 patients
    example = json.loads(_run("decision-table", EXAMPLES / "boin.toml", "--json").output)
    assert [row["n"] for row in example["rows"]] == [3, 6, 9, 12]  # cohorts of 3, up to 12
    for row in example["rows"]:
        assert (row["escalate"], row["deescalate"], row["eliminate"]) == published[row["n"]]


def test_decision_table_text_and_the_three_plus_three():
    text = _run("decision-table", EXAMPLES / "boin.toml")
    assert text.exit_code == 0, text.output
    assert re.search(r"escalate if # of DLTs <=\s+│\s+0\s+│\s+1\s+│\s+2\s+│\s+2\s+│", text.output)
    assert re.search(r"eliminate if # of DLTs >=\s+│\s+3\s+│\s+4\s+│\s+5\s+│\s+7\s+│", text.output)
    record = json.loads(_run("decision-table", EXAMPLES / "three_plus_three.toml", "--json").output)
    assert record["rows"] == [
        {"n": 3, "escalate": 0, "deescalate": 2, "eliminate": 2},
        {"n": 6, "escalate": 1, "deescalate": 2, "eliminate": 2},
    ]


def test_decision_table_refuses_a_model_based_design():
    _one_line_error(
        _run("decision-table", EXAMPLES / "crm.toml"),
        r"crm\.toml: \[model\] type = \"crm\" is not a count design.*boin, boin12, 3\+3",
    )


# --------------------------------------------------------------------------- errors


def _edited(tmp_path, name, edit):
    config, data = _example(name)
    path = tmp_path / config.name
    path.write_text(edit(config.read_text()))
    return path, data


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_errors_name_the_file_section_key_and_value(tmp_path, name):
    config, data = _edited(tmp_path, name, lambda s: s.replace(f'type = "{name}"', 'type = "nope"'))
    _one_line_error(
        _run("next-dose", data, "--config", config),
        rf"{re.escape(str(config))}: \[model\] type must be one of .*'crm'.*, got \"nope\"",
    )
    config, data = _edited(tmp_path, name, lambda s: s.replace("[rule]", "[rule]\nbogus_key = 1"))
    _one_line_error(
        _run("next-dose", data, "--config", config),
        rf"{re.escape(str(config))}: \[rule\] unknown key 'bogus_key' = 1; keys: ",
    )
    config, data = _edited(
        tmp_path, name, lambda s: re.sub(r"(?m)^cohort_size = \d+", "cohort_size = 0", s)
    )
    _one_line_error(
        _run("next-dose", data, "--config", config),
        rf"{re.escape(str(config))}: \[conduct\] cohort_size = 0: .*cohort_size must be an "
        r"integer >= 1, got 0",
    )


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "crm",
            lambda s: s.replace("safety_cutoff = 0.95", "safety_cutoff = 1.5"),
            r"\[rule\] safety_cutoff = 1.5: CRMRule: safety_cutoff must lie in \(0, 1\)",
        ),
        (
            "crm",
            lambda s: s.replace('model = "empiric"', 'model = "probit"'),
            r"\[model\] model = \"probit\": CRM: model must be one of",
        ),
        (
            "crm",
            lambda s: s.replace("target = 0.25\n", ""),
            r"\[model\] missing key 'target'",
        ),
        (
            "blrm",
            lambda s: s.replace("sd = [2.0, 1.0]", "sd = [2.0, -1.0]"),
            r"\[model\.prior\] sd = \[2\.0, -1\.0\]: BLRMPrior: sd\[1\] must be > 0",
        ),
        (
            "blrm",
            lambda s: s.replace("correlation = 0.0", "corelation = 0.0"),
            r"\[model\.prior\] unknown key 'corelation' = 0\.0; keys: mean, sd, correlation",
        ),
        (
            "boin",
            lambda s: s.replace("# phi1 = 0.18", "phi1 = 0.5"),
            r"\[rule\] phi1 = 0\.5: BOINRule: phi1 must lie in \(0, target=0\.3\)",
        ),
        (
            "lse",
            lambda s: s.replace("max_rhat = 1.05", "max_rhat = 0.5"),
            r"\[conduct\.convergence\] max_rhat = 0\.5: ConvergenceCriteria: max_rhat must be a "
            r"finite number >= 1",
        ),
        (
            "lse",
            lambda s: s.replace("exclusion_threshold = 0.9", "exclusion_threshold = 0.7"),
            r"\[rule\.admissible\] single_dose_threshold = 0\.8: .*must be below "
            r"exclusion_threshold",
        ),
        (
            "3+3",
            lambda s: s.replace("cohort_size = 3", "cohort_size = 2"),
            r"\[conduct\] cohort_size = 2: ThreePlusThreeRule: the 3\+3 treats cohorts of 3",
        ),
        (
            "ewoc",
            lambda s: s.replace('doses = "levels"', 'doses = "none"'),
            r"\[rule\] doses = \"none\": EWOCRule: doses must be 'levels' or 'continuous'",
        ),
        (
            "joint-probit",
            lambda s: s.replace('engine = "imh"', 'engine = "metropolis"'),
            r"\[conduct\] engine = \"metropolis\": Design: conduct\.engine must be one of",
        ),
        (
            "3pnd",
            lambda s: re.sub(r'^type = "toxicity".*\n', "", s, flags=re.MULTILINE),
            r"\[conduct\.stopping\[0\]\] needs a key type, one of 'toxicity'",
        ),
    ],
)
def test_bad_values_are_located(tmp_path, name, edit, message):
    config, data = _edited(tmp_path, name, edit)
    _one_line_error(
        _run("next-dose", data, "--config", config), re.escape(str(config)) + ": " + message
    )


def test_none_stands_for_none(tmp_path):
    config, data = _edited(
        tmp_path, "crm", lambda s: s.replace("max_step_up = 1 ", 'max_step_up = "none" ')
    )
    result = _run("next-dose", data, "--config", config, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["next_dose"] == 80.0


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "crm",
            lambda s: s.replace("p_true = [0.05, 0.12, 0.25, 0.40, 0.55]\n", ""),
            r"\[scenario\] missing key 'p_true'",
        ),
        (
            "crm",
            lambda s: s.replace("p_true = [0.05,", "p_true = [1.5,"),
            r"\[scenario\] p_true = \[1\.5, .*\]: BinaryToxicityScenario: p_true\[0\] must lie in",
        ),
        (
            "blrm",
            lambda s: s.replace("target = 0.25            #", "#"),
            r"\[scenario\] missing key 'target'",
        ),
        (
            "lse",
            lambda s: s.replace("number = 14", "number = 21"),
            r"\[scenario\] number = 21: Seno et al\. \(2025\) scenario must be one of 1\.\.20",
        ),
        (
            "boin",
            lambda s: s.replace("n_trials = 200", "n_trials = 0"),
            r"\[simulation\] n_trials = 0: \[simulation\]: n_trials must be an integer >= 1",
        ),
        (
            "boin",
            lambda s: s.replace("n_jobs = 1", "n_job = 1"),
            r"\[simulation\] unknown key 'n_job' = 1",
        ),
        (
            # it said "an integer >= 1", though -1 is allowed (as --jobs says)
            "boin",
            lambda s: s.replace("n_jobs = 1", "n_jobs = 0"),
            r"\[simulation\] n_jobs = 0: .*n_jobs must be a positive integer or -1 \(one per CPU\)",
        ),
    ],
)
def test_scenario_and_simulation_errors_are_located(tmp_path, name, edit, message):
    config, _ = _edited(tmp_path, name, edit)
    _one_line_error(
        _run("simulate", config, "--output", tmp_path / "x.nc", "--no-progress"),
        re.escape(str(config)) + ": " + message,
    )


# --------------------------------------------------------------------------- user errors


def test_a_configuration_is_read_as_the_csv_files_are_utf8_with_a_mark_or_utf16(tmp_path):
    # A byte-order mark (Windows editors write one) gave "not valid TOML: Invalid statement
    # (at line 1, column 1)"; UTF-16 and cp1252 a byte offset only (an audit).
    text = (EXAMPLES / "crm.toml").read_text()
    expected = _run("next-dose", DATA_BINARY, "-c", EXAMPLES / "crm.toml").output
    for name, raw in [
        ("bom.toml", codecs.BOM_UTF8 + text.encode()),
        ("utf16.toml", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
    ]:
        (tmp_path / name).write_bytes(raw)
        result = _run("next-dose", DATA_BINARY, "-c", tmp_path / name)
        assert result.exit_code == 0 and result.output == expected, result.output
    latin = tmp_path / "cp1252.toml"
    latin.write_bytes(("# Besançon\n" + text).encode("cp1252"))
    _one_line_error(
        _run("next-dose", DATA_BINARY, "-c", latin),
        re.escape(f"{latin}, line 1, column 8 (byte offset 7): byte 0xe7 is not UTF-8"),
    )


def test_user_errors_are_one_line_with_exit_status_2(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\x00\xff\xfe\x89PNG\r\n")
    not_netcdf = tmp_path / "results.nc"
    not_netcdf.write_text("dose,y\n")
    folder = tmp_path / "folder.nc"
    folder.mkdir()
    simulate_3_3 = ["simulate", EXAMPLES / "three_plus_three.toml", "--trials", 3, "--no-progress"]
    cases = [
        (["next-dose", tmp_path, "-c", CONFIG], f"CSV file '{tmp_path}' is a directory"),
        (["next-dose", DATA, "-c", tmp_path], f"{tmp_path}: is a directory"),
        (["next-dose", DATA, "-c", binary], f"{binary}, line 1, column 2 (byte offset 1): byte"),
        ([*simulate_3_3, "-o", folder], f"path '{folder}' is a directory"),
        ([*simulate_3_3, "-o", tmp_path / "r.csv"], "--output .*r.csv: .* ending in .nc"),
        ([*simulate_3_3, "-o", not_netcdf], f"path '{not_netcdf}' exists and is not a netCDF"),
    ]
    for args, pattern in cases:
        _one_line_error(_run(*args), re.escape(pattern) if "*" not in pattern else pattern)


def test_a_concurrent_simulate_is_one_line_naming_the_path(tmp_path):
    from dosezoo.simulate.store import _Store

    output = tmp_path / "r.nc"
    with _Store(output, {}).locked():
        result = _run(
            "simulate",
            EXAMPLES / "three_plus_three.toml",
            "-o",
            output,
            "--trials",
            3,
            "--no-progress",
        )
    _one_line_error(result, re.escape(f"path '{output}' is in use by another simulation"))


def test_next_dose_on_empty_data_is_a_clean_line(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("dose,cohort,y\n")
    result = _run("next-dose", empty, "-c", CONFIG)
    assert result.exit_code == 0, result.output
    # the example records its dose unit, which the line names (3PND's decisions depend on it)
    assert result.output == "next dose: 40 mg/m^2 (bound by: start_dose)\n"
    as_json = json.loads(_run("next-dose", empty, "-c", CONFIG, "--json").output)
    assert as_json["next_dose"] == 40 and as_json["dose_unit"] == "mg/m^2"
    assert (
        json.loads(_run("next-dose", DATA_BINARY, "-c", EXAMPLES / "crm.toml", "--json").output)[
            "dose_unit"
        ]
        is None
    )


def test_next_dose_per_stratum_on_empty_data_says_what_bound_each(tmp_path):
    # A stratum with no quantities printed "z1=0: (1,0) ()".
    config = CONFIG.parent / "combination_bo.toml"
    empty = tmp_path / "empty.csv"
    empty.write_text("d1,d2,cohort,response,z1\n")
    result = _run("next-dose", empty, "-c", config)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "next dose per stratum:\n"
        "  z1=0: (1,0) (bound by: initial_design)\n"
        "  z1=1: (1,0) (bound by: initial_design)\n"
    )


def test_help_shows_flags_and_arguments_plainly():
    for command in ("next-dose", "simulate", "report", "decision-table"):
        result = _run(command, "--help")
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "╭" not in result.output, result.output
    assert "--json " in _run("next-dose", "--help").output


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("next-dose", "next-dose [OPTIONS] DATA_CSV"),
        ("paths", "paths [OPTIONS] DATA_CSV"),
        ("simulate", "simulate [OPTIONS] CONFIG"),
        ("decision-table", "decision-table [OPTIONS] CONFIG"),
        ("report", "report [OPTIONS] RESULTS..."),
    ],
)
def test_usage_names_the_required_arguments_plainly(command, usage):
    # typer >= 0.29 writes a required argument in braces ({DATA_CSV}), which in a usage line
    # reads as a choice; the usage line of the help and of an error names it as it is typed.
    help_text = _run(command, "--help").output
    first = help_text.splitlines()[0]
    assert first.startswith("Usage: ") and first.endswith(f" {usage}"), help_text
    assert "{" not in help_text, help_text
    missing = _run(command)
    assert missing.exit_code == 2
    assert f" {usage}\n" in missing.output and "{" not in missing.output, missing.output


def test_config_messages_name_key_and_value(tmp_path):
    text = CONFIG.read_text()
    increment = tmp_path / "increment.toml"
    increment.write_text(text.replace("monotone = true", 'monotone = true\nmax_increment = "20"'))
    _one_line_error(
        _run("next-dose", DATA, "-c", increment),
        re.escape(
            f'{increment}: [rule] max_increment = "20": MTDQuantileRule: max_increment '
            "must be a real number, got '20'"
        ),
    )
    levels = tmp_path / "levels.toml"
    levels.write_text(text.replace("[40.0, 60.0, 80.0, 100.0, 120.0]", '[40, "60", 80, 100, 120]'))
    _one_line_error(
        _run("next-dose", DATA, "-c", levels),
        re.escape(
            f'{levels}: [rule] dose_levels = [40, "60", 80, 100, 120]: MTDQuantileRule: '
            "dose_levels[1] must be a real number, got '60'"
        ),
    )
    mtd = tmp_path / "mtd.toml"
    mtd.write_text(
        text.replace(
            'type = "o6bg"', 'type = "continuous"\ntrue_mtd = 500.0\nnu = 1.0\nsigma = 5.0'
        )
    )
    _one_line_error(
        _run("simulate", mtd, "-o", tmp_path / "mtd.nc"),
        re.escape(
            "true_mtd must lie below x_max=140.0 (the end of the design's dose range), got 500.0"
        ),
    )


def test_monotone_rule_above_every_level_says_so(tmp_path):
    above = tmp_path / "above.csv"
    above.write_text("dose,cohort,y\n130,1,10\n130,1,12\n130,1,11\n")
    _one_line_error(
        _run("next-dose", above, "-c", CONFIG),
        re.escape("the last dose 130 is above every dose level, so monotone = true allows none"),
    )


def test_next_dose_never_turns_a_refused_fit_into_a_stop(tmp_path):
    # A configuration made for simulations stops a trial whose fit fails its checks; on a
    # real trial that would read as a decision to stop, so next-dose raises the refusal.
    text = (EXAMPLES / "bo.toml").read_text()
    text = text.replace("min_ess_bulk = 100.0", "min_ess_bulk = 1e9")
    text = text.replace("chains = 1\n", 'chains = 1\non_refusal = "stop"\n')
    config = tmp_path / "refusing.toml"
    config.write_text(text)
    data = EXAMPLES / "seno2025_cohorts.csv"
    design = design_from_config(read_config(config), str(config))
    decision = design.next(TrialData.from_csv(data, **design.model.data_schema()))
    assert decision.stopped and "fit refused" in decision.stop_reason
    _one_line_error(_run("next-dose", data, "-c", config), r"will not act on this fit")


def test_a_models_refusal_of_a_row_names_the_data_file(tmp_path):
    # The loader names the file in its errors; a model refusing a row named only the row.
    off = tmp_path / "off_level.csv"
    off.write_text("dose,cohort,dlt\n15,1,0\n")
    result = _run("next-dose", off, "--config", EXAMPLES / "crm.toml")
    pattern = r"off_level\.csv: CRM: column 'dose', row 0 \(CSV line 2\): dose 15\.0 is not one"
    _one_line_error(result, pattern)
    result = _run("paths", off, "--config", EXAMPLES / "crm.toml")
    _one_line_error(result, r"off_level\.csv: CRM: column 'dose', row 0 \(CSV line 2\)")
    # blank lines between cohorts: the row's line is not row + 2
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("dose,cohort,dlt\n10,1,0\n10,1,0\n\n20,2,0\n\n35,3,0\n")
    result = _run("next-dose", spaced, "--config", EXAMPLES / "crm.toml")
    _one_line_error(result, r"spaced\.csv: CRM: column 'dose', row 3 \(CSV line 7\): dose 35\.0")
    late = tmp_path / "late.csv"
    rows = (EXAMPLES / "weibull_first_stage.csv").read_text().splitlines()
    dose, _, event = rows[1].split(",")
    late.write_text("\n".join([rows[0], f"{dose},500,{event}", *rows[2:]]) + "\n")
    result = _run("next-dose", late, "--config", EXAMPLES / "weibull_d_optimal.toml")
    _one_line_error(
        result, r"late\.csv: column 'time', row 0 \(CSV line 2\): value 500 exceeds the follow-up"
    )


@pytest.mark.parametrize("name", ["missing/dir/paths.png", "paths.txt"])
def test_a_figure_that_cannot_be_written_is_a_user_error(tmp_path, name):
    result = _run(
        "paths", EXAMPLES / "binary_cohorts.csv", "--config", EXAMPLES / "boin.toml",
        "--figure", tmp_path / name,
    )  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(r"error: --figure .*paths\.(png|txt)", result.output), result.output


def test_a_scenario_without_its_type_is_named(tmp_path):
    config, _ = _edited(tmp_path, "crm", lambda s: s.replace('type = "binary"\n', ""))
    result = _run("simulate", config, "--output", tmp_path / "out.nc", "--trials", 2)
    _one_line_error(result, r"\[scenario\] needs a key type, one of 'binary', ")


def test_the_paths_table_stops_only_where_the_design_stops(tmp_path):
    # One stopping branch made pandas read every other row's stop reason as NaN, and the
    # table printed "stop" on every row.
    data = tmp_path / "first.csv"
    data.write_text("dose,cohort,dlt\n10,1,0\n10,1,1\n10,1,0\n")
    result = _run("paths", data, "--config", EXAMPLES / "boin.toml", "--cohorts", 1)
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[3]
        for line in result.output.splitlines()
        if len(cells := [cell.strip() for cell in line.split("│")[1:-1]]) == 5
    }
    assert rows["(now)"] == "10" and rows["1NNN"] == "20" and rows["1NTT"] == "10"
    assert rows["1TTT"] == "stop"
    assert list(rows.values()).count("stop") == 1
    assert "(1 cohort)" in result.output


def test_paths_help_explains_the_codes_of_efficacy(tmp_path):
    # it explained N and T alone, while a BOIN12 path reads "1NE0,NE1,TE2"
    assert "0/1/2 as E0/E1/E2" in _run("paths", "--help").output
    result = _run(
        "paths",
        EXAMPLES / "efftox_cohorts.csv",
        "-c",
        EXAMPLES / "boin12.toml",
        "--cohorts",
        1,
        "--json",
    )
    assert "NE0,NE0,TE1" in result.output and "E2" not in result.output  # it reads E >= 1


def _strict_json(text: str) -> dict:
    """Parse JSON as strict parsers do: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_the_reports_json_is_strict_json(tmp_path):
    # One trial: the allocation's standard errors are NaN, which json.dumps wrote as NaN.
    output = tmp_path / "one.nc"
    _run("simulate", EXAMPLES / "boin.toml", "--output", output, "--trials", 1, "--no-progress")
    record = _strict_json(_run("report", output, "--figure", tmp_path / "f.png", "--json").output)
    assert [row["se"] for row in record["allocation"]] == [None] * len(record["allocation"])


def test_a_damaged_batch_is_reported_in_one_line(tmp_path):
    # The warning printed Python's format: the command's source file and line, then the line
    # of code ("  results = simulate(").
    config = tmp_path / "three_plus_three.toml"
    text = (EXAMPLES / "three_plus_three.toml").read_text()
    config.write_text(re.sub(r"n_trials = \d+", "n_trials = 20", text))
    parts = tmp_path / "R.nc.parts"
    parts.mkdir()
    (parts / "trials-000000000-000000004.batch").write_text("not a batch")
    command = [str(Path(sys.executable).with_name("dosezoo")), "simulate", str(config)]
    run = subprocess.run(
        [*command, "-o", "R.nc", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == (
        "warning: simulation store 'R.nc.parts': batch 'trials-000000000-000000004.batch' is "
        "not recorded in the manifest (a run stopped before recording it, or it comes from "
        "elsewhere); it is not used and its trials are run again\n"
    )


def test_a_directory_as_figure_is_a_user_error(tmp_path):
    # 'report --figure DIR' wrote DIR.png next to the directory (an audit)
    results = tmp_path / "r.nc"
    simulate_3_3 = ["simulate", EXAMPLES / "three_plus_three.toml", "--trials", 3]
    assert _run(*simulate_3_3, "--no-progress", "-o", results).exit_code == 0
    folder = tmp_path / "figures"
    folder.mkdir()
    _one_line_error(
        _run("report", results, "--figure", folder),
        re.escape(f"--figure {folder}: is a directory; give the figure's file name"),
    )
    assert not (tmp_path / "figures.png").exists()


def test_dose_levels_outside_the_dose_range_are_located_under_rule(tmp_path):
    # The message said "dose levels", which names no key: the error was put under [conduct]
    # (an audit of the reliability fixes).
    config = tmp_path / "levels.toml"
    text = (EXAMPLES / "o6bg_accelerated.toml").read_text()
    config.write_text(
        text.replace("dose_levels = [40.0, 60.0, 80.0, 100.0, 120.0]", "dose_levels = [40, 150]")
    )
    _one_line_error(
        _run("next-dose", DATA, "-c", config),
        re.escape(f"{config}: [rule] dose_levels = [40, 150]: MTDQuantileRule: dose_levels"),
    )


def test_a_continuous_scenario_cannot_move_the_design_s_dose_range(tmp_path):
    # x_max = 300 in [scenario] replaced the design's 140, and true_mtd = 200, a dose the
    # design can never give, passed the scenario's check (an audit of the reliability fixes)
    text = CONFIG.read_text().replace('type = "o6bg"', 'type = "continuous"')
    truth = "true_mtd = 200.0\nnu = 1.0\nsigma = 10.0\nx_max = 300.0\n"
    config = tmp_path / "continuous.toml"
    config.write_text(text.replace("[simulation]", truth + "\n[simulation]"))
    _one_line_error(
        _run("simulate", config, "-o", tmp_path / "r.nc", "--trials", 2, "--no-progress"),
        re.escape(f"{config}: [scenario] x_max = 300.0: the design's is 140.0"),
    )
    config.write_text(config.read_text().replace("x_max = 300.0", "x_max = 140.0"))
    _one_line_error(
        _run("simulate", config, "-o", tmp_path / "r.nc", "--trials", 2, "--no-progress"),
        re.escape("true_mtd must lie below x_max=140.0"),
    )


def test_report_names_the_dose_unit_of_the_design(tmp_path):
    # the results record it (design_model_dose_unit); the report printed bare doses
    results = tmp_path / "o6bg.nc"
    assert _run("simulate", CONFIG, "--trials", 2, "--no-progress", "-o", results).exit_code == 0
    printed = _run("report", results, "--figure", tmp_path / "r.png")
    assert printed.exit_code == 0 and "dose (mg/m^2)" in printed.output, printed.output
    record = json.loads(_run("report", results, "--figure", tmp_path / "r.png", "--json").output)
    assert record["dose_unit"] == "mg/m^2"


def test_a_dose_off_the_levels_is_printed_to_four_digits(tmp_path):
    # EWOC's continuous rule printed "next dose: 68.2321891267295"; --json keeps every digit
    config = tmp_path / "ewoc_continuous.toml"
    text = (EXAMPLES / "ewoc.toml").read_text()
    config.write_text(re.sub(r'(?m)^doses = "levels".*$', 'doses = "continuous"', text))
    data = EXAMPLES / "binary_cohorts.csv"
    record = json.loads(_run("next-dose", data, "-c", config, "--json").output)
    assert f"{record['next_dose']:.4g}" != repr(record["next_dose"])
    printed = _run("next-dose", data, "-c", config).output
    assert printed.startswith(f"next dose: {record['next_dose']:.4g} (")
    assert _run("next-dose", data, "-c", EXAMPLES / "ewoc.toml").output.startswith(
        "next dose: 40 ("
    )
