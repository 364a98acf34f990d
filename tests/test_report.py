"""The HTML report of a simulation: its content as HTML, and as headless Chromium renders it."""

import base64
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.config import design_from_config, read_config, simulation_from_config
from dosezoo.report import COMMAND_ATTR, CONFIG_ATTR, html_report, load_results
from dosezoo.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
BOIN = ROOT / "examples" / "boin.toml"
THREE = ROOT / "examples" / "three_plus_three.toml"
CHROMIUM = shutil.which("chromium")
N_TRIALS = 20


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def _one_line_error(result, pattern):
    """Exit status 2, one line, no traceback, matching ``pattern``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert re.search(pattern, result.output), result.output


class _Page(HTMLParser):
    """What a test reads from a page: headings, tables by id, images, references, <pre>s."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.references: list[tuple[str, str, str]] = []
        self.pre: dict[str, str] = {}
        self.tags: set[str] = set()
        self.classes: dict[str, str] = {}
        self._open: list[tuple[str, dict[str, str | None]]] = []
        self._text: list[str] = []
        self._table: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action", "poster") and value:
                self.references.append((tag, name, value))
        if tag == "img":
            self.images.append(attributes.get("src") or "")
        if tag == "table":
            self._table = attributes.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        if tag in ("h1", "h2", "h3", "td", "th", "pre", "span"):
            self._open.append((tag, attributes))
            self._text = []

    def handle_data(self, data):
        self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        if not self._open or self._open[-1][0] != tag:
            return
        _, attributes = self._open.pop()
        text = "".join(self._text).strip()
        if tag in self.headings:
            self.headings[tag].append(" ".join(text.split()))
        elif tag in ("td", "th") and self._table is not None:
            self.tables[self._table][-1].append(text)
        elif tag == "pre":
            self.pre[attributes.get("class") or f"pre-{len(self.pre)}"] = text
        elif tag == "span" and attributes.get("class"):
            self.classes[attributes["class"]] = text

    def row(self, table: str, first: str) -> dict[str, str]:
        """The row of ``table`` whose first cell is ``first``, by column header."""
        header, *rows = self.tables[table]
        for cells in rows:
            if cells[0] == first:
                return dict(zip(header, cells, strict=True))
        raise AssertionError(f"no row {first!r} in table {table!r}: {rows}")


def _png_size(source: str) -> tuple[int, int, int]:
    """Bytes, width and height of an inline base64 PNG (``data:image/png;base64,...``)."""
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix), source[:40]
    payload = base64.b64decode(source[len(prefix) :], validate=True)
    assert payload[:8] == b"\x89PNG\r\n\x1a\n" and payload[12:16] == b"IHDR"
    width, height = struct.unpack(">II", payload[16:24])
    return len(payload), width, height


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[Path, Path]:
    """20 BOIN trials simulated, and their report, both written through the CLI."""
    directory = tmp_path_factory.mktemp("report")
    results = directory / "boin.nc"
    run = _run("simulate", BOIN, "-o", results, "--trials", N_TRIALS, "--no-progress")
    assert run.exit_code == 0, run.output
    report = directory / "boin.html"
    written = _run("report", results, "--output", report)
    assert written.exit_code == 0, written.output
    assert str(report) in written.output
    return results, report


def _check_page(page: _Page, results: xr.Dataset) -> None:
    """What every rendering of the BOIN report must show, against the results file."""
    title = f"BOIN under BinaryToxicityScenario, {N_TRIALS} trials"
    assert title in page.headings["h1"][0]
    assert page.headings["h2"] == [f"1. {title}"]
    for heading in (
        "Operating characteristics",
        "Dose paths of example trials",
        "Design and scenario",
        "Software",
        "Reproduce",
    ):
        assert heading in page.headings["h3"]
    assert page.classes["design-name"] == "BOIN"
    # Selection, allocation and DLTs at the MTD (40), from the results file, independently.
    dose = results["dose"].values
    at_mtd = np.isclose(dose, 40.0)
    row = page.row("per-dose-1", "40 (target)")
    selected = np.mean(np.isclose(results["recommended_dose"].values, 40.0))
    assert row["selected (fraction)"] == f"{selected:.3f}"
    assert row["MCSE (selected)"] == f"{np.sqrt(selected * (1 - selected) / N_TRIALS):.3f}"
    assert row["patients per trial (mean)"] == f"{at_mtd.sum(axis=1).mean():.2f}"
    dlts = np.nansum(np.where(at_mtd, results["dlt"].values, 0.0), axis=1)
    assert row["DLTs per trial (mean)"] == f"{dlts.mean():.2f}"
    assert row["true p_true"] == "0.3"
    none = page.row("per-dose-1", "none")
    no_dose = np.mean(~np.isfinite(results["recommended_dose"].values))
    assert none["selected (fraction)"] == f"{no_dose:.3f}"
    trials = page.row("trials-1", "patients per trial (sample size)")
    assert trials["mean"] == f"{results['n_patients'].values.mean():.2f}"
    stopped = page.row("trials-1", "stopped before the sample size (fraction of trials)")
    assert stopped["mean"] == f"{np.mean(results['stop_reason'].values != ''):.3f}"
    correct = page.row("metrics-1", "correct_selection")
    assert correct["mean"] == f"{results['correct_selection'].values.mean():.4f}"
    # The design's options, as recorded (describe()), and the versions.
    assert page.row("design-1", "rule_phi1")["value"] == "0.18"
    assert page.row("design-1", "conduct_sample_size")["value"] == "36"
    versions = page.row("versions-1", "dosezoo")
    assert versions["simulated with"] == results.attrs["version_dosezoo"] != ""
    assert page.row("versions-1", "pymc")["this report written with"]
    # The command that reproduces the results, read back from the file.
    command = results.attrs[COMMAND_ATTR]
    assert command.startswith("dosezoo simulate ") and f"--trials {N_TRIALS}" in command
    assert page.pre["command"] == command
    assert "[scenario]" in page.pre["config"]
    # Two figures, inline, and nothing the page would fetch.
    assert len(page.images) == 2
    for source in page.images:
        size, width, height = _png_size(source)
        assert size > 10_000 and width > 400 and height > 200
    for tag, name, value in page.references:
        assert value.startswith(("data:", "#")), (tag, name, value[:60])
    assert not page.tags & {"link", "script", "iframe", "object", "embed"}


def test_simulate_records_its_command_and_configuration(simulated):
    results = xr.load_dataset(simulated[0], engine="h5netcdf")
    assert results.attrs[CONFIG_ATTR] == BOIN.read_text()
    command = results.attrs[COMMAND_ATTR].split()
    assert command[:3] == ["dosezoo", "simulate", str(BOIN)]
    assert command[3:] == ["--output", str(simulated[0]), "--trials", str(N_TRIALS)]


def test_html_report_content(simulated):
    results_path, report = simulated
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"url\(|@import|https?://", text), "an external reference"
    _check_page(_Page(text), xr.load_dataset(results_path, engine="h5netcdf"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_html_report_renders_in_chromium(simulated, tmp_path):
    results_path, report = simulated
    # The report has no script; a copy with one records what Chromium decoded of each image.
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { document.body.dataset.images = "
        "JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, "
        "i.naturalHeight, i.getBoundingClientRect().width])); });</script>"
    )
    probe.write_text(report.read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r'data-images="([^"]*)"', dom)
    assert match, dom[:500]
    images = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(images) == 2
    for complete, width, height, shown in images:
        assert complete and width > 400 and height > 200 and shown > 400
    page = _Page(dom.replace(script, ""))
    _check_page(page, xr.load_dataset(results_path, engine="h5netcdf"))


def test_report_of_several_simulations_has_a_section_each(simulated, tmp_path):
    three = tmp_path / "three.nc"
    assert _run("simulate", THREE, "-o", three, "--trials", 3, "--no-progress").exit_code == 0
    report = tmp_path / "both.html"
    result = _run("report", simulated[0], three, "-o", report)
    assert result.exit_code == 0, result.output
    page = _Page(report.read_text())
    assert page.headings["h2"] == [
        f"1. BOIN under BinaryToxicityScenario, {N_TRIALS} trials",
        "2. 3+3 under BinaryToxicityScenario, 3 trials",
    ]
    assert len(page.images) == 4
    assert page.row("design-2", "conduct_sample_size")["value"] == "30"
    assert page.row("design-1", "conduct_sample_size")["value"] == "36"


def test_report_without_a_recorded_command_gives_the_python_call(simulated):
    results = load_results(simulated[0])
    for key in (COMMAND_ATTR, CONFIG_ATTR):
        del results.attrs[key]
    page = _Page(html_report([("old.nc", results)]))
    call = f"dosezoo.simulate.simulate(design, scenario, {N_TRIALS}, random_seed=2025)"
    assert page.pre["command"] == call
    assert "config" not in page.pre


def test_dlts_per_patient_leave_out_the_trials_without_a_patient(simulated):
    # Such trials were averaged in as 0 DLTs per patient.
    results = load_results(simulated[0])
    empty = np.arange(N_TRIALS) % 4 == 0
    results["n_patients"].values[empty] = 0
    for name in ("dose", "dlt"):
        results[name].values[empty] = np.nan
    page = _Page(html_report([("some_empty.nc", results)]))
    row = page.row("trials-1", "DLTs per patient (per trial, averaged)")
    treated = ~empty
    rates = (
        np.nansum(results["dlt"].values[treated], axis=1) / results["n_patients"].values[treated]
    )
    assert row["mean"] == f"{rates.mean():.3f}"
    assert row["MCSE"] == f"{rates.std(ddof=1) / np.sqrt(treated.sum()):.3f}"
    assert row["note"] == f"over the {treated.sum()} trials with a patient"


def test_a_recommendation_off_the_listed_doses_has_a_row_of_its_own(simulated, tmp_path):
    # The selection column sums to 1: doses, none, and any dose off the levels.
    results = load_results(simulated[0])
    results["recommended_dose"].values[:3] = 30.0  # between the levels 20 and 40
    se = f"{np.sqrt(0.15 * 0.85 / N_TRIALS):.3f}"
    other = _Page(html_report([("off.nc", results)])).row("per-dose-1", "other dose")
    assert other["selected (fraction)"] == f"{3 / N_TRIALS:.3f}" == "0.150"
    assert other["MCSE (selected)"] == se
    path = tmp_path / "off.nc"
    results.to_netcdf(path, engine="h5netcdf")
    printed = _run("report", path, "--figure", tmp_path / "off.png")
    assert printed.exit_code == 0, printed.output
    line = next(line for line in printed.output.splitlines() if "other dose" in line)
    assert "0.150" in line and se in line
    # Without one, no such row.
    plain = _run("report", simulated[0], "--figure", tmp_path / "plain.png")
    assert plain.exit_code == 0 and "other dose" not in plain.output


def test_a_trial_that_ran_to_its_end_and_selected_no_dose_has_its_reason_reported(
    simulated, tmp_path
):
    # A stopping rule met by the last cohort leaves the trial's stop_reason empty (it was not
    # stopped early): the reports counted its "none" with no reason anywhere.
    results = load_results(simulated[0])
    ran = np.flatnonzero(
        (results["stop_reason"].values == "") & np.isfinite(results["recommended_dose"].values)
    )[:2]
    final = results["decision_kind"].values == "recommend"
    reason = "toxicity: 3 patients with y >= 55, more than 2"
    results["decision_stop_reason"] = results["decision_stop_reason"].astype(object)
    for trial in ran:
        results["recommended_dose"].values[trial] = np.nan
        results["decision_stop_reason"].values[trial, final[trial]] = reason
    table = _Page(html_report([("ended.nc", results)])).row("unselected-1", reason)
    assert table["trials"] == "2" and table["fraction"] == f"{2 / N_TRIALS:.3f}"
    path = tmp_path / "ended.nc"
    results.to_netcdf(path, engine="h5netcdf")
    printed = _run("report", path, "--figure", tmp_path / "ended.png")
    assert f"ran to the end, selected no dose: 2 trials ({reason})" in printed.output
    record = json.loads(_run("report", path, "--json").output)
    assert record["unselected_at_the_end"] == {reason: 2}
    plain = _Page(html_report([("plain.nc", load_results(simulated[0]))]))
    assert "unselected-1" not in plain.tables


def test_the_per_dose_truths_are_values_per_dose_not_sets_of_doses():
    # Two levels tied for closest to the target: the true MTDs are both doses, a list as long
    # as the levels, which the table showed as a column of truths ("true mtd_doses").
    from dosezoo.designs.boin import boin_design
    from dosezoo.scenarios import BinaryToxicityScenario

    levels = (10.0, 20.0)
    scenario = BinaryToxicityScenario(levels, (0.25, 0.35), 0.3, planned_sample_size=12)
    results = simulate(
        boin_design(0.3, levels, sample_size=12), scenario, 5, random_seed=1, progress=False
    )
    assert results.attrs["scenario_mtd_doses"] == "10,20"
    header = _Page(html_report([("tied.nc", results)])).tables["per-dose-1"][0]
    assert "true p_true" in header and not any("mtd" in column for column in header)


def test_report_refuses_bad_input(simulated, tmp_path):
    results, _ = simulated
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
    output = tmp_path / "r.html"
    _one_line_error(_run("report", foreign, "-o", output), "not the results of dosezoo simulate")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netCDF")
    _one_line_error(_run("report", junk, "-o", output), "not a netCDF file of results")
    _one_line_error(_run("report", tmp_path, "-o", output), "is a directory, not a results file")
    _one_line_error(_run("report", results, "-o", tmp_path), r"--output .*: is a directory")
    _one_line_error(_run("report", results, "-o", tmp_path / "r.pdf"), "ending in .html")
    _one_line_error(_run("report", results, results), "--output REPORT.html")
    _one_line_error(_run("report", results, "-o", output, "--json"), "--figure and --json")
    assert not output.exists()


def test_simulate_refuses_a_record_that_would_replace_an_attribute():
    raw = read_config(BOIN)
    design = design_from_config(raw, str(BOIN))
    scenario = simulation_from_config(raw, design, str(BOIN)).scenario
    for record in ({"design_name": "x"}, {"metrics": "x"}, {"note": 3}):
        with pytest.raises(ValueError, match="record"):
            simulate(design, scenario, 2, random_seed=1, progress=False, record=record)
    results = simulate(design, scenario, 2, random_seed=1, progress=False, record={"note": "a"})
    assert results.attrs["note"] == "a"


@pytest.mark.parametrize(
    "levels",
    [
        (1e-9, 2e-9, 4e-9, 8e-9, 1.6e-8),  # within numpy's isclose tolerance of each other
        (1000000.0, 1000001.0, 1000002.0, 1000003.0, 1000004.0),  # one text with :g
    ],
)
def test_the_report_keeps_every_dose_level_apart(levels):
    from dosezoo.designs.boin import boin_design
    from dosezoo.report import dose_levels, dose_text, per_dose
    from dosezoo.scenarios import BinaryToxicityScenario

    design = boin_design(0.3, levels)
    scenario = BinaryToxicityScenario(
        levels, (0.05, 0.1, 0.3, 0.45, 0.6), 0.3, planned_sample_size=design.sample_size
    )
    results = simulate(design, scenario, 40, random_seed=3, progress=False)
    assert dose_levels(results).tolist() == list(levels)  # read back exactly
    table = per_dose(results)
    assert len({dose_text(row["dose"]) for row in table["selection"]}) == len(levels)
    chosen = sum(row["fraction"] for row in table["selection"])
    assert chosen + table["no_selection"]["fraction"] == pytest.approx(1)
    patients = sum(row["mean"] for row in table["allocation"])
    assert patients == pytest.approx(table["patients_per_trial"])
    assert results.attrs["scenario_mtd_dose"] == levels[2]


def test_continuous_doses_are_reported_in_intervals_of_a_round_width():
    # Each trial of a design without dose levels gives doses of its own: the tables had a row
    # per distinct dose, about one per trial, each printed with 16 digits.
    from dosezoo.designs import MTDQuantileRule, mtd_quantile_design
    from dosezoo.models import ThreePND
    from dosezoo.report import MAX_DOSE_ROWS, per_dose, row_label
    from dosezoo.scenarios import ContinuousToxicityScenario

    model = ThreePND(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)
    design = mtd_quantile_design(model, MTDQuantileRule(alpha=0.2), start_dose=10.0, sample_size=6)
    scenario = ContinuousToxicityScenario(
        true_mtd=50.0, nu=1.4, sigma=0.5, eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0
    )
    results = simulate(design, scenario, 30, random_seed=4, progress=False)
    picks = results["recommended_dose"].values
    doses = results["dose"].values[np.isfinite(results["dose"].values)]
    assert np.unique(np.concatenate([doses, picks])).size > MAX_DOSE_ROWS
    table = per_dose(results)
    rows = table["selection"]
    edges = [rows[0]["interval"][0]] + [row["interval"][1] for row in rows]
    width = edges[1] - edges[0]
    assert np.allclose(np.diff(edges), width) and len(rows) <= 10
    assert width / 10 ** np.floor(np.log10(width)) in (1.0, 2.0, 2.5, 5.0)
    assert edges[0] <= min(doses.min(), picks.min()) and edges[-1] >= max(doses.max(), picks.max())
    # numpy's histogram counts as the rows do: half-open bins, the last one closed
    chosen, _ = np.histogram(picks, bins=edges)
    np.testing.assert_allclose([row["fraction"] for row in rows], chosen / picks.size)
    given, _ = np.histogram(doses, bins=edges)
    np.testing.assert_allclose([row["mean"] for row in table["allocation"]], given / picks.size)
    assert row_label(rows[0]).startswith("[") and row_label(rows[-1]).endswith("]")
    page = _Page(html_report([("continuous.nc", results)])).tables["per-dose-1"]
    marked = [cells[0] for cells in page[1:] if "(target)" in cells[0]]
    holding = [row_label(row) for row in rows if row["interval"][0] <= 50.0 < row["interval"][1]]
    assert marked == [f"{holding[0]} (target)"]


def test_a_stratified_selection_is_a_fraction_of_the_trials_per_stratum(tmp_path):
    # It was divided by trials times strata: 3 of 4 trials choosing a combination in a stratum
    # read 0.375; the printed report put the allocation over every stratum on one stratum's
    # rows.
    from dosezoo.report import per_dose

    config = ROOT / "examples" / "combination_bo.toml"
    output = tmp_path / "cb.nc"
    _run("simulate", config, "--output", output, "--trials", 4, "--no-progress")
    results = load_results(output)
    table = per_dose(results)
    for row in table["selection"]:
        picks = results["recommended_dose_stratum"].sel(stratum=row["stratum"]).values
        chosen = np.all(picks == np.asarray(row["dose"]), axis=-1).mean()
        assert row["fraction"] == pytest.approx(chosen)
    # No selection in either stratum of the first trial: a quarter of the trials and strata,
    # with the MCSE over the 4 trials (their strata share them), not over 8 independent units.
    results["recommended_dose_stratum"].values[0] = np.nan
    none = per_dose(results)["no_selection"]
    assert none["fraction"] == pytest.approx(0.25)
    assert none["se"] == pytest.approx(np.std([1, 0, 0, 0], ddof=1) / 2)
    printed = _run("report", output, "--figure", tmp_path / "cb.png").output
    assert "Selection per stratum (fraction of trials)" in printed
    assert "Allocation per dose (every stratum)" in printed


def test_results_recorded_with_six_digits_still_match_their_levels():
    # Files written before described numbers were kept exactly hold their levels to six
    # significant digits (33.3333 for 100 / 3); matching doses exactly must not lose them.
    from dosezoo.designs.boin import boin_design
    from dosezoo.report import dose_levels, per_dose
    from dosezoo.scenarios import BinaryToxicityScenario

    levels = (100 / 3, 200 / 3, 100.0)
    design = boin_design(0.3, levels)
    scenario = BinaryToxicityScenario(
        levels, (0.1, 0.3, 0.5), 0.3, planned_sample_size=design.sample_size
    )
    results = simulate(design, scenario, 20, random_seed=3, progress=False)
    for key in ("design_model_dose_levels", "design_rule_dose_levels", "scenario_dose_levels"):
        if key in results.attrs:
            results.attrs[key] = ",".join(f"{v:g}" for v in levels)  # as older files did
    assert dose_levels(results).tolist() == list(levels)
    table = per_dose(results)
    chosen = sum(row["fraction"] for row in table["selection"])
    assert chosen + table["no_selection"]["fraction"] == pytest.approx(1)
    assert table["other_selection"] == 0.0


def test_a_design_that_selects_no_dose_is_reported_by_its_allocation(tmp_path):
    # The Weibull D-optimal design ends with an estimate of the curve: its report had a
    # selection column of zeros, "none 1.000" and a line of trials that "selected no dose".
    from dosezoo.report import per_dose, unselected_at_the_end

    output = tmp_path / "weibull.nc"
    config = ROOT / "examples" / "weibull_d_optimal.toml"
    result = _run("simulate", config, "--output", output, "--trials", 3, "--no-progress")
    assert result.exit_code == 0, result.output
    results = load_results(output)
    assert results.attrs["design_selects_dose"] == 0
    assert per_dose(results)["selects_dose"] is False and unselected_at_the_end(results) == {}
    printed = _run("report", output, "--figure", tmp_path / "w.png").output
    assert "Allocation per dose" in printed and "selected" not in printed
    assert "figure of the allocation:" in printed
    page = _Page(html_report([("weibull.nc", results)])).tables["per-dose-1"]
    assert page[0] == ["dose", "patients per trial (mean)", "MCSE (patients)"]
    assert all(cells[0] != "none" for cells in page)
    _run("simulate", BOIN, "--output", tmp_path / "boin.nc", "--trials", 3, "--no-progress")
    boin = load_results(tmp_path / "boin.nc")
    assert "design_selects_dose" not in boin.attrs and per_dose(boin)["selects_dose"] is True
