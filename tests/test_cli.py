import re

from typer.testing import CliRunner

from dosezoo.cli import app


def test_demo_prints_the_mtd_posterior_and_the_next_dose():
    result = CliRunner().invoke(
        app, ["demo", "--draws", "1000", "--random-seed", "1"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "Posterior of the MTD" in result.output
    match = re.search(r"Next dose at alpha = 0.1: ([0-9.]+) mg/m\^2", result.output)
    assert match is not None, result.output
    assert 20.0 < float(match.group(1)) < 140.0


def test_demo_rejects_an_unknown_engine():
    result = CliRunner().invoke(app, ["demo", "--engine", "gibbs"])
    assert result.exit_code != 0
    assert "engine must be one of" in str(result.exception)
