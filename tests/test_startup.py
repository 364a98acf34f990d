"""The package starts without PyMC: only a PyMC engine, a fit's schema or a diagnostic loads it.

Importing PyMC and PyTensor costs seconds, which the command line and every simulation worker
would pay for nothing when the design's posterior is exact (a grid or a quadrature). Each check
runs in a fresh interpreter and reads ``sys.modules`` (never a clock).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pymc", "pytensor", "arviz")

#: Imports every entry point, builds every registered family's example design, and decides
#: the next dose on the example data of each design whose posterior is exact; prints, after
#: each step, which heavy libraries are loaded.
PROBE = """
import json, sys
from pathlib import Path

HEAVY = {heavy!r}
report = {{}}

def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)

import dosezoo
report["import dosezoo"] = loaded()
import dosezoo.cli, dosezoo.config, dosezoo.designs, dosezoo.models, dosezoo.samplers
import dosezoo.scenarios, dosezoo.simulate
report["import the entry points"] = loaded()

from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData
from dosezoo.designs.registry import FAMILIES

examples = Path({examples!r})
exact = []
for name, family in FAMILIES.items():
    path = examples / family.example
    design = design_from_config(read_config(path), str(path))
    model = design.model
    if model is None or design.conduct.engine in (None, model.fast_engine) and (
        model.fast_engine in ("grid", "quadrature")
    ):
        exact.append((name, design, examples / family.example_data))
report["build every family's design"] = loaded()
report["families"] = sorted(FAMILIES)
report["exact"] = [name for name, _, _ in exact]
for name, design, data_path in exact:
    schema = {{}} if design.model is None else design.model.data_schema()
    design.next(TrialData.from_csv(data_path, **schema))
    report[f"next dose by {{name}}"] = loaded()
print(json.dumps(report))
"""


def _probe() -> dict:
    code = PROBE.format(heavy=HEAVY, examples=str(ROOT / "examples"))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def report() -> dict:
    return _probe()


def test_the_package_and_its_entry_points_import_without_pymc(report):
    assert report["import dosezoo"] == []
    assert report["import the entry points"] == []


def test_every_family_builds_its_design_without_pymc(report):
    assert len(report["families"]) >= 10
    assert report["build every family's design"] == []


def test_exact_posteriors_decide_without_pymc(report):
    # The binary families (grid), 3PND (quadrature) and 3+3 (no model) are the exact ones.
    assert {"crm", "boin", "blrm", "ewoc", "3pnd", "3+3"} <= set(report["exact"])
    for name in report["exact"]:
        assert report[f"next dose by {name}"] == [], name


def test_the_probe_sees_pymc_when_it_is_loaded():
    code = "import sys, dosezoo.samplers; dosezoo.samplers.RidgeMove; print('pymc' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert run.stdout.strip() == "True"
