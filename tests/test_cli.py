import json
import re
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from dosezoo.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIG = EXAMPLES / "o6bg_accelerated.toml"
DATA = EXAMPLES / "o6bg_first_cohorts.csv"


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def test_demo_runs_the_redesign_and_saves_the_figure(tmp_path):
    figure = tmp_path / "redesign.png"
    result = _run("demo", "--figure", figure)
    assert result.exit_code == 0, result.output
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
