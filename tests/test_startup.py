"""The package starts without PyMC: only a PyMC engine, a fit's schema or a diagnostic loads it.

Importing PyMC and PyTensor costs seconds, which the command line and every simulation worker
would pay for nothing when the design's posterior is exact (a grid or a quadrature). Each check
runs in a fresh interpreter and reads ``sys.modules`` (never a clock).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pymc", "pytensor", "arviz")

#: The families whose next dose needs no PyMC: the exact posteriors (the binary families' grid,
#: 3PND's quadrature), no model (3+3), and the latent GP's numba kernel (LSE, BO).
WITHOUT_PYMC = ("crm", "boin", "blrm", "ewoc", "3pnd", "3+3", "lse", "bo")

#: Imports every entry point, builds every registered family's example design, and decides
#: the next dose on the example data of each family of WITHOUT_PYMC; prints, after each step,
#: which heavy libraries are loaded.
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
designs = {{}}
for name, family in FAMILIES.items():
    path = examples / family.example
    design = design_from_config(read_config(path), str(path))
    designs[name] = (design, examples / family.example_data)
report["build every family's design"] = loaded()
report["families"] = sorted(FAMILIES)
for name in {deciding!r}:
    design, data_path = designs[name]
    schema = {{}} if design.model is None else design.model.data_schema()
    design.next(TrialData.from_csv(data_path, **schema))
    report[f"next dose by {{name}}"] = loaded()
print(json.dumps(report))
"""


def _probe() -> dict:
    code = PROBE.format(heavy=HEAVY, examples=str(ROOT / "examples"), deciding=WITHOUT_PYMC)
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


def test_exact_and_kernel_posteriors_decide_without_pymc(report):
    for name in WITHOUT_PYMC:
        assert name in report["families"], name
        assert report[f"next dose by {name}"] == [], name


def test_the_probe_sees_pymc_when_it_is_loaded():
    code = "import sys, dosezoo.samplers; dosezoo.samplers.RidgeMove; print('pymc' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert run.stdout.strip() == "True"


@pytest.mark.parametrize(
    "make_seed",
    [
        lambda: 12345,
        lambda: None,
        lambda: np.random.SeedSequence(7),
        lambda: np.random.default_rng(3),
        lambda: np.random.PCG64(11),
        lambda: np.random.Generator(np.random.Philox(5)),
    ],
    ids=["int", "None", "SeedSequence", "Generator", "BitGenerator", "Philox"],
)
def test_random_generator_matches_pymc(make_seed):
    from pymc.util import get_random_generator

    from dosezoo.models.base import chain_generators, random_generator

    seed = make_seed()
    if seed is None:  # fresh entropy each time: both give a Generator, nothing to compare
        assert isinstance(random_generator(None), np.random.Generator)
        return
    ours, theirs = random_generator(seed), get_random_generator(make_seed())
    assert np.array_equal(ours.random(5), theirs.random(5))
    children = [g.random(3) for g in random_generator(seed).spawn(2)]
    expected = [g.random(3) for g in get_random_generator(make_seed()).spawn(2)]
    assert np.array_equal(children, expected)
    if isinstance(seed, np.random.Generator):  # copied: the caller's generator did not move
        assert np.array_equal(seed.random(2), make_seed().random(2))
    chains = [g.random(2) for g in chain_generators(make_seed(), 2)]
    reference = []
    for g in get_random_generator(make_seed()).spawn(2):
        g.integers(2**30)
        reference.append(g.random(2))
    assert np.array_equal(chains, reference)


def test_random_generator_refuses_a_random_state():
    from dosezoo.models.base import random_generator

    with pytest.raises(TypeError, match="RandomState"):
        random_generator(np.random.RandomState(1))


def test_the_entry_points_load_neither_scipy_stats_nor_scipy_optimize():
    # scipy.stats and scipy.optimize cost about half a second of every cold command line.
    code = (
        "import sys, dosezoo, dosezoo.models, dosezoo.designs, dosezoo.cli\n"
        "print(sorted(m for m in ('scipy.stats', 'scipy.optimize') if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "[]", run.stdout


#: What the command line's start may not load: PyMC, the numerical stack behind the designs and
#: rich (which prints tables).
STARTUP_HEAVY = (
    "pymc",
    "pytensor",
    "arviz",
    "numba",
    "pandas",
    "xarray",
    "scipy",
    "scipy.special",
    "rich",
)
#: What the next dose of an exact engine may not load: PyMC, xarray (a fit's container, which
#: an exact posterior never builds; about a tenth of a second of every command line) and rich
#: (it prints one line).
NEXT_DOSE_HEAVY = {"pymc", "pytensor", "arviz", "xarray", "rich"}

#: Runs command lines one after the other in one fresh interpreter (as ``dosezoo ARGS`` would,
#: in process), and prints, after each, the heavy libraries and the design modules loaded.
CLI_PROBE = """
import json, sys

def loaded():
    return {{
        "heavy": sorted(m for m in {heavy!r} if m in sys.modules),
        "designs": sorted(m for m in sys.modules if m.startswith("dosezoo.designs.")),
    }}

report = {{}}
import dosezoo
report["import dosezoo"] = loaded()
from dosezoo.cli import app
for args in {commands!r}:
    try:
        app(args, prog_name="dosezoo")
    except SystemExit as stop:
        assert not stop.code, (args, stop.code)
    report[" ".join(args)] = loaded()
print(json.dumps(report))
"""


def _cli_probe(*commands: list[str]) -> dict:
    code = CLI_PROBE.format(heavy=STARTUP_HEAVY, commands=list(commands))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_the_package_and_the_help_load_no_heavy_library():
    report = _cli_probe(["--help"], ["next-dose", "--help"], ["simulate", "--help"])
    assert report["import dosezoo"] == {"heavy": [], "designs": []}
    for command in ("--help", "next-dose --help", "simulate --help"):
        assert report[command]["heavy"] == [], command
        assert report[command]["designs"] == [], command


def test_next_dose_loads_its_family_only_and_no_pymc():
    from dosezoo.designs.registry import _FAMILIES

    declaring = set(_FAMILIES.declared().values())
    o6bg = ["next-dose", "examples/o6bg_first_cohorts.csv", "-c", "examples/o6bg_accelerated.toml"]
    crm = ["next-dose", "examples/binary_cohorts.csv", "-c", "examples/crm.toml"]
    report = _cli_probe(crm, o6bg)
    grid, quadrature = report[" ".join(crm)], report[" ".join(o6bg)]
    for after in (grid, quadrature):
        assert not NEXT_DOSE_HEAVY & set(after["heavy"]), after["heavy"]
    # The empiric CRM uses no special function (3PND's kernels bind SciPy's: they load it).
    assert "scipy.special" not in grid["heavy"]
    # A CSV file of plain numbers is read without pandas (a fifth of a second of a start).
    assert "pandas" not in grid["heavy"]
    # Only the configured family's module is imported (the registry reads the others' names).
    assert declaring & set(grid["designs"]) == {"dosezoo.designs.crm"}
    assert declaring & set(quadrature["designs"]) == {
        "dosezoo.designs.crm",
        "dosezoo.designs.mtd_quantile",
    }


def test_next_dose_collects_garbage_rarely_and_leaves_its_objects_to_the_os_at_exit():
    # Loading numba and the kernels allocates objects that live to the end: next-dose collects
    # every 50 000 allocations (the default threshold, 700, walks them some 300 times) and
    # freezes them at exit (the interpreter's final collections would walk them all). The
    # probe's handler is registered first, so it runs after the command's (atexit runs its
    # handlers last in, first out).
    code = (
        "import atexit, gc, json\n"
        "start, collections = gc.get_freeze_count(), []\n"  # not 0: the interpreter's own
        "gc.callbacks.append(lambda phase, info: collections.append(phase == 'stop'))\n"
        "def report():\n"
        "    frozen = gc.get_freeze_count() > start + 1000\n"
        "    print(json.dumps([frozen, sum(collections), gc.get_threshold()]))\n"
        "atexit.register(report)\n"
        "from dosezoo.cli import app\n"
        "collections.clear()\n"
        "app(['next-dose', 'examples/binary_cohorts.csv', '-c', 'examples/crm.toml'],"
        " prog_name='dosezoo')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("next dose: 80 (")
    frozen, collections, thresholds = json.loads(run.stdout.splitlines()[-1])
    assert frozen
    assert collections < 50  # about 230 with the default threshold
    assert thresholds == list(gc_defaults())  # restored after the command


def gc_defaults() -> tuple[int, int, int]:
    """The collector's thresholds in a fresh interpreter."""
    code = "import gc; print(*gc.get_threshold())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second, third = map(int, run.stdout.split())
    return first, second, third
