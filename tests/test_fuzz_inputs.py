"""Fuzzing the user-facing inputs: CSV files, TOML configurations and command lines.

Every input either loads correctly (checked against an independent reading) or is refused with
a `DataError` / `ConfigError` whose message names the file, the row or line, the column or key
and the value; the command line never shows a traceback for user input. Each property runs
twice: a short profile in the default test run and a long one marked ``slow`` (``make
test-slow``).
"""

import contextlib
import csv
import io
import math
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.config import design_from_config, read_config, simulation_from_config
from dosezoo.data import TrialData
from dosezoo.designs.registry import toml_text
from dosezoo.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

SHORT = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LONG = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _both(check, strategy_args: dict):
    """Return the short and the long (slow) test of one property."""
    short = SHORT(given(**strategy_args)(check))
    long = pytest.mark.slow(LONG(given(**strategy_args)(check)))
    return short, long


# --------------------------------------------------------------------------- CSV

_NAMES = st.sampled_from(["dose", "cohort", "y", "dlt", "note", "dose", " dose", "Dose", ""])
_FIELDS = st.one_of(
    st.integers(-5, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "",
            "nan",
            "NA",
            "inf",
            "1_000",
            "\u0664\u0660",
            "1e400",
            "0x10",
            "40.0",
            " 40",
            "True",
            "abc",
            '"4,0"',
            "1e-320",
            "9007199254740993",
            "-0",
            "Besançon",
        ]
    ),
    st.text(max_size=4),
)


@st.composite
def valid_csv_texts(draw) -> str:
    """Plausible trial data, written in any of the ways a number can be written."""
    n = draw(st.integers(0, 6))
    doses = draw(st.lists(st.floats(0.01, 1e4), min_size=n, max_size=n))
    dlts = draw(st.lists(st.sampled_from(["0", "1", "0.0", "1.0"]), min_size=n, max_size=n))
    number = st.sampled_from([repr, str, lambda v: f"{v:.6e}", lambda v: f" {v!r}"])
    lines = ["dose,cohort,dlt"]
    for i, (dose, dlt) in enumerate(zip(doses, dlts, strict=True)):
        lines.append(f"{draw(number)(dose)},{i // 3 + 1},{dlt}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))


@st.composite
def csv_texts(draw) -> str:
    if draw(st.booleans()):
        return draw(valid_csv_texts())
    header = draw(st.lists(_NAMES, min_size=1, max_size=4))
    rows = draw(
        st.lists(
            st.lists(_FIELDS, min_size=max(0, len(header) - 1), max_size=len(header) + 1),
            max_size=5,
        )
    )
    lines = [",".join(header), *(",".join(row) for row in rows)]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


def _independent_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows as Python's csv module reads them (blank lines left out)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    return header, [row for row in reader if row]


def _check_csv(tmp_path_factory, text: str, encoding: str) -> None:
    path = tmp_path_factory.mktemp("csv") / "trial.csv"
    try:
        payload = text.encode(encoding)
    except UnicodeEncodeError:
        return
    path.write_bytes(payload)
    try:
        data = TrialData.from_csv(path)
    except DataError as error:
        event("CSV refused")
        message = str(error)
        assert repr(str(path)) in message, message
        # a value error names the column, the row, the CSV line and the value; a structural
        # error the line or the missing column
        assert re.search(r"line \d+|column '|is empty", message), message
        if ": value " in message:
            assert re.search(r"column '[^']*', row \d+ \(CSV line \d+\): value ", message), message
        return
    event("CSV loaded")
    # Loaded: the doses and outcomes are exactly the fields of the file.
    header, rows = _independent_rows(payload.decode("utf-8-sig"))
    assert data.n_patients == len(rows)
    for name in ("dose", *data.outcomes):
        column = header.index(name)
        expected = [float(row[column]) for row in rows]
        got = data.column(name) if name != "dose" else data.dose
        assert [float(v) for v in got] == expected, (name, text)
        assert all(math.isfinite(v) for v in expected)


def check_csv_loads_or_names_the_problem(tmp_path_factory, text, encoding):
    _check_csv(tmp_path_factory, text, encoding)


test_csv_fuzz, test_csv_fuzz_long = _both(
    check_csv_loads_or_names_the_problem,
    {"text": csv_texts(), "encoding": st.sampled_from(["utf-8", "utf-8-sig", "cp1252"])},
)


def check_csv_bytes_never_escape(tmp_path_factory, payload):
    path = tmp_path_factory.mktemp("bytes") / "trial.csv"
    path.write_bytes(b"dose,dlt\n" + payload)
    try:
        TrialData.from_csv(path)
    except DataError as error:
        assert repr(str(path)) in str(error), str(error)


test_csv_bytes_fuzz, test_csv_bytes_fuzz_long = _both(
    check_csv_bytes_never_escape, {"payload": st.binary(max_size=40)}
)


# --------------------------------------------------------------------------- TOML

_BASES = {
    name: tomllib.loads((EXAMPLES / name).read_text())
    for name in ("boin.toml", "three_plus_three.toml", "crm.toml")
}
_VALUES = st.recursive(
    st.one_of(
        st.integers(-10, 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.sampled_from(["none", "20", "", "abc", "nearest", "toxicity"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.sampled_from(["type", "x", "threshold"]), inner, max_size=2),
    ),
    max_leaves=8,
)


@st.composite
def mutated_configs(draw) -> tuple[dict, str, str]:
    """An example configuration with one key set to a random value (or a new key)."""
    base = draw(st.sampled_from(sorted(_BASES)))
    config = {section: dict(table) for section, table in _BASES[base].items()}
    section = draw(st.sampled_from(sorted(config)))
    keys = [*sorted(config[section]), "unknown_key"]
    key = draw(st.sampled_from(keys))
    original = config[section].get(key)
    plausible = st.one_of(
        st.integers(1, 60), st.floats(0.01, 0.99), st.just(original), st.just([original])
    )
    config[section][key] = draw(st.one_of(_VALUES, plausible))
    return config, section, key


def check_toml_builds_or_names_file_section_key(tmp_path_factory, mutation):
    config, section, key = mutation
    path = tmp_path_factory.mktemp("toml") / "design.toml"
    try:
        path.write_text(toml_text(config))
    except (TypeError, ValueError):
        event("TOML not writable")
        return  # a value TOML cannot hold (e.g. a mixed nested value toml_text refuses)
    try:
        parsed = read_config(path)
        design = design_from_config(parsed, str(path))
        simulation_from_config(parsed, design, str(path))
    except ConfigError as error:
        event("TOML refused")
        message = str(error)
        assert message.startswith(f"{path}: "), message
        assert re.search(r"\[[a-z.]+\]", message), message
        if key == "unknown_key":
            assert section in message, message
        return
    event("TOML built")
    # Built: the mutated value is what the design reads (or the key was an ignorable no-op).
    assert design.label


test_toml_fuzz, test_toml_fuzz_long = _both(
    check_toml_builds_or_names_file_section_key, {"mutation": mutated_configs()}
)


# --------------------------------------------------------------------------- command line

_COMMANDS = st.sampled_from(
    ["next-dose", "simulate", "decision-table", "report", "designs", "nope"]
)


@st.composite
def command_lines(draw, folder: Path) -> list[str]:
    files = [
        str(EXAMPLES / "three_plus_three.toml"),
        str(EXAMPLES / "boin.toml"),
        str(EXAMPLES / "binary_cohorts.csv"),
        str(folder),
        str(folder / "missing.csv"),
        str(folder / "binary.bin"),
        str(folder / "out.nc"),
        str(folder / "out.csv"),
    ]
    pieces = st.one_of(
        st.sampled_from(files),
        st.sampled_from(
            [
                "--config",
                "-c",
                "--json",
                "--trials",
                "--jobs",
                "-o",
                "--output",
                "--figure",
                "--max-patients",
                "--no-progress",
            ]
        ),
        st.sampled_from(["0", "1", "2", "-1", "-3", "abc", "1e9", ""]),
    )
    if draw(st.booleans()):
        return [draw(_COMMANDS), *draw(st.lists(pieces, max_size=6))]
    # Well formed, with any file or number in each place.
    file, number = st.sampled_from(files), st.sampled_from(["0", "1", "3", "-1", "x", "2.5"])
    flag = st.lists(st.sampled_from(["--json", "--no-progress"]), max_size=1, unique=True)
    forms = {
        "next-dose": [draw(file), "-c", draw(file), *draw(flag)],
        "simulate": [draw(file), "-o", draw(file), "--trials", draw(number), "--no-progress"],
        "decision-table": [draw(file), "--max-patients", draw(number), *draw(flag)],
        "report": [draw(file), "--figure", str(folder / "figure.png")],
    }
    command = draw(st.sampled_from(sorted(forms)))
    return [command, *forms[command]]


def _cli_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "binary.bin").write_bytes(b"\x00\xff\xfe\x89PNG")
    return folder


_FOLDER: list[Path] = []


def check_cli_never_shows_a_traceback(tmp_path_factory, data):
    if not _FOLDER:
        _FOLDER.append(_cli_folder(tmp_path_factory))
    args = data.draw(command_lines(_FOLDER[0]))
    if "simulate" in args[:1] and "--trials" not in args:
        args += ["--trials", "2"]  # keep a run short
    # In the scratch folder: a drawn "--figure 1" wrote 1.png where the tests ran (the
    # checkout), and so would any other relative output path.
    with contextlib.chdir(_FOLDER[0]):
        result = CliRunner().invoke(app, args)
    event(f"CLI exit {result.exit_code}")
    assert "Traceback" not in result.output, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert result.output.strip(), args


test_cli_fuzz, test_cli_fuzz_long = _both(check_cli_never_shows_a_traceback, {"data": st.data()})


def test_options_that_toml_could_coerce_are_refused_by_name():
    # TOML's true is a Python int and a table iterates as its keys: neither may pass for a
    # number, a scenario or column names; nor an integer beyond 64 bits (it overflowed in
    # compiled code, or ran for ever).
    from dosezoo.checks import positive_int
    from dosezoo.designs import adaptive_d_optimal_design
    from dosezoo.diagnostics import ConvergenceCriteria
    from dosezoo.models import WeibullAFT
    from dosezoo.models.gp_surface import GPSurface
    from dosezoo.scenarios.seno2025 import seno2025_scenario

    for field in ("max_rhat", "min_ess_bulk", "min_ess_tail", "max_divergences"):
        with pytest.raises(ValueError, match=f"ConvergenceCriteria: {field} must be"):
            ConvergenceCriteria(**{field: True})
    with pytest.raises(ValueError, match=r"scenario must be one of 1\.\.20, got number True"):
        seno2025_scenario(True)
    with pytest.raises(ValueError, match="covariates must be column names"):
        GPSurface(dose_columns=("d1", "d2"), covariates={"z": 1})
    with pytest.raises(ValueError, match=r"draws must be at most 2\*\*63 - 1"):
        positive_int("Conduct", "draws", 10**20)
    with pytest.raises(ValueError, match="no dose effect"):
        adaptive_d_optimal_design(WeibullAFT(degree=0), first_stage=90, sample_size=300)
