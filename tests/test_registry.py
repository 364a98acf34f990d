"""The family and scenario registries, and the configuration tables they read and write."""

import importlib
import json
import subprocess
import sys
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

import dosezoo.config
import dosezoo.designs
import dosezoo.scenarios
from dosezoo.cli import app
from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.designs import (
    Design,
    ModelRule,
    boin_design,
    crm_design,
    registry,
    three_plus_three_design,
)
from dosezoo.designs.registry import (
    FAMILIES,
    REQUIRED,
    Family,
    design_config,
    design_from_config,
    family_of,
    options_of,
    register,
    register_stopping,
)
from dosezoo.designs.three_plus_three import ThreePlusThreeRule
from dosezoo.errors import ConfigError
from dosezoo.models import CRM
from dosezoo.registry import Declaration, declarations
from dosezoo.scenarios import SCENARIO_TYPES, ScenarioType, design_attribute, register_scenario

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
SKELETON = (0.05, 0.12, 0.25, 0.4, 0.55)


@pytest.fixture
def restored():
    """Restore the registries after a test that registers into them."""
    with registry._FAMILIES.restored(), dosezoo.scenarios.registry._TYPES.restored():
        yield


@dataclass(frozen=True)
class LowestDoseRule(ModelRule):
    """A toy rule: always the lowest dose of the CRM's levels, unless ``stop_after`` patients."""

    label: ClassVar[str] = "Lowest"
    model_type: ClassVar[type] = CRM

    _: KW_ONLY
    stop_after: int | None = None

    def choose(self, posterior, data):
        if self.stop_after is not None and data.n_patients >= self.stop_after:
            return Decision(None, stop_reason="enough")
        return Decision(self.model.dose_levels[0])

    def select(self, posterior, data):
        return Decision(self.model.dose_levels[0])

    def describe(self):
        return {"stop_after": self.stop_after}


def test_a_new_family_is_a_rule_and_a_registration(restored, tmp_path):
    family = register(
        Family(
            name="lowest",
            summary="a toy family (this test)",
            model=CRM,
            rule=LowestDoseRule,
            conduct={"cohort_size": 2},
        )
    )
    assert FAMILIES["lowest"] is family
    config = {
        "model": {"type": "lowest", "skeleton": list(SKELETON), "target": 0.25},
        "rule": {"stop_after": 4},
    }
    design = design_from_config(config, "toy.toml")
    assert design.cohort_size == 2 and family_of(design) is family
    assert design_from_config(design_config(design), "again") == design
    data = TrialData.empty(outcomes=("dlt",)).with_cohort([1.0, 1.0], dlt=[0, 0])
    assert design.next(data).next_dose == 1.0
    listed = CliRunner().invoke(app, ["designs"], terminal_width=200)
    assert "lowest: a toy family (this test)" in listed.output
    assert "[rule] LowestDoseRule: stop_after = none" in listed.output


def test_register_refuses_a_name_taken_by_another_rule(restored):
    with pytest.raises(ValueError, match="'crm' is already registered to rule CRMRule"):
        register(Family(name="crm", summary="x", model=CRM, rule=LowestDoseRule))
    register(FAMILIES["crm"])  # the same family again (a module imported twice) is fine
    with pytest.raises(ValueError, match="'bogus' is not a Conduct option"):
        Family(name="x", summary="x", model=CRM, rule=LowestDoseRule, conduct={"bogus": 1})
    with pytest.raises(ValueError, match="rule must be a Rule class"):
        Family(name="x", summary="x", model=CRM, rule=CRM)
    with pytest.raises(ValueError, match="must be a dataclass with a reason"):
        register_stopping("lowest", LowestDoseRule)

    @dataclass(frozen=True)
    class Never:
        def reason(self, data):
            return None

    with pytest.raises(ValueError, match="'toxicity' is already registered to ToxicityStopping"):
        register_stopping("toxicity", Never)


#: In a fresh interpreter: the names the registries read from the source (importing the
#: configuration reader only), which of the declaring modules that loaded, then the names that
#: importing every module of dosezoo.designs and dosezoo.scenarios registers (the old way).
CONTRACT = """
import importlib, json, pkgutil, sys
import dosezoo.config
from dosezoo.designs import registry as designs
from dosezoo.scenarios import registry as scenarios

registries = {
    "families": designs._FAMILIES,
    "stopping": designs._STOPPING_PIECES,
    "scenarios": scenarios._TYPES,
}
report = {"declared": {key: list(r.entries) for key, r in registries.items()}}
modules = {m for r in registries.values() for m in r.declared().values()}
report["declaring modules loaded"] = sorted(modules & set(sys.modules))
report["declaring modules"] = sorted(modules)
for package in ("dosezoo.designs", "dosezoo.scenarios"):
    path = importlib.import_module(package).__path__
    for module in pkgutil.iter_modules(path, package + "."):
        importlib.import_module(module.name)
report["registered"] = {key: list(r.loaded) for key, r in registries.items()}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def contract() -> dict:
    run = subprocess.run(
        [sys.executable, "-c", CONTRACT], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def test_the_lazy_registries_list_what_importing_every_module_registers(contract):
    # The contract of a lazy registry: the names read from the source, without an import,
    # are exactly those that importing every module registers (in the same order for the
    # families: by module name, then in the module's order).
    declared, registered = contract["declared"], contract["registered"]
    assert declared["families"] == registered["families"]
    for key in ("stopping", "scenarios"):
        assert sorted(declared[key]) == sorted(registered[key]), key
    assert len(declared["families"]) >= 12
    assert set(declared["scenarios"]) >= {"binary", "continuous", "o6bg", "efftox", "seno2025"}
    assert declared["stopping"] == ["toxicity"]


def test_listing_the_names_imports_no_family(contract):
    assert contract["declaring modules loaded"] == []
    assert "dosezoo.designs.crm" in contract["declaring modules"]
    assert "dosezoo.designs.d_optimal" in contract["declaring modules"]  # a scenario type too


def test_every_family_is_reached_through_the_registry():
    assert {f.rule.__module__ for f in FAMILIES.values()} >= {
        "dosezoo.designs.crm",
        "dosezoo.designs.lse",
        "dosezoo.designs.three_plus_three",
    }
    assert set(SCENARIO_TYPES) >= {"binary", "continuous", "o6bg", "efftox", "seno2025"}


TOY_INIT = """
from dosezoo.registry import Registry

REGISTRY = Registry("register", repr, packages=("toyzoo",))


def register(name, entry):
    return REGISTRY.add(name, entry)
"""
TOY_MODULE = '''"""A toy module.

register(this line is prose in a docstring, not a call
"""

from toyzoo import register

register("alpha", 1)
register(
    "beta",
    2,
)
if True:
    register("hidden", 3)
'''
TOY_GHOST = '''"""A docstring that shows a registration at column 0:

register("ghost", 0)
"""
'''


def test_a_registry_reads_its_names_from_the_source_and_imports_on_lookup(tmp_path, monkeypatch):
    package = tmp_path / "toyzoo"
    package.mkdir()
    (package / "__init__.py").write_text(TOY_INIT)
    (package / "animals.py").write_text(TOY_MODULE)
    (package / "ghost.py").write_text(TOY_GHOST)
    monkeypatch.syspath_prepend(str(tmp_path))
    toyzoo = importlib.import_module("toyzoo")
    try:
        entries = toyzoo.REGISTRY.entries
        assert declarations("toyzoo")[0] == Declaration("register", "alpha", "toyzoo.animals")
        assert list(entries) == ["alpha", "beta", "ghost"]  # read, not imported
        assert "toyzoo.animals" not in sys.modules and "beta" in entries
        assert entries["beta"] == 2 and "toyzoo.animals" in sys.modules
        # A registration the source does not show at the top level is found only once its
        # module is loaded: the contract test above keeps the package's modules free of them.
        assert list(entries) == ["alpha", "beta", "ghost", "hidden"]
        with pytest.raises(RuntimeError, match=r"toyzoo\.ghost declares 'ghost'.*did not register"):
            entries["ghost"]
        with pytest.raises(KeyError):
            entries["nothing"]
    finally:
        for name in ("toyzoo", "toyzoo.animals", "toyzoo.ghost"):
            sys.modules.pop(name, None)
        declarations.cache_clear()


def test_options_come_from_the_init_fields():
    options = {o.name: o for o in options_of(CRM)}
    assert options["skeleton"].default is REQUIRED and options["skeleton"].required
    assert options["dose_levels"].nullable and options["dose_levels"].default is None
    blrm = {o.name: o for o in FAMILIES["blrm"].model_options()}
    assert blrm["prior"].table is not None and not blrm["prior"].required
    conduct = {o.name: o for o in FAMILIES["ewoc"].conduct_options()}
    assert conduct["stopping"].pieces and conduct["convergence"].table is not None
    assert conduct["cohort_size"].default == 1  # the family's default over Conduct's
    assert [o.name for o in options_of(ThreePlusThreeRule)] == ["dose_levels"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, r"x\.toml: \[model\] missing key 'type'"),
        ({"model": 3}, r"x\.toml: \[model\] must be a table, got 3"),
        ({"model": {"type": 3}}, r"\[model\] type must be one of .*, got 3"),
        ({"model": {"type": "3+3"}}, r"\[rule\] missing key 'dose_levels'"),
        (
            {"model": {"type": "3+3", "eta": 1.0}, "rule": {"dose_levels": [1, 2, 3]}},
            r"\[model\] unknown key 'eta' = 1\.0; keys: none",
        ),
        (
            {"model": {"type": "3+3"}, "rule": {"dose_levels": [1, 2, 3]}, "conduct": []},
            r"\[conduct\] must be a table, got \[\]",
        ),
        (
            {
                "model": {"type": "3+3"},
                "rule": {"dose_levels": [1, 2, 3]},
                "conduct": {"stopping": {"type": "toxicity"}},
            },
            r"\[conduct\.stopping\] must be an array of tables \(\[\[conduct\.stopping\]\]\)",
        ),
        (
            {
                "model": {"type": "crm", "skeleton": [0.1, 0.2], "target": 0.25},
                "rule": {"estimate": "none"},
            },
            r"\[rule\] estimate = \"none\": CRMRule: estimate must be one of 'plugin', 'mean'",
        ),
        (
            {"model": {"type": "crm", "skeleton": [0.1, 0.2], "target": 0.25}, "rule": {}},
            None,
        ),
        # A scalar where an array is expected ("'float' object is not iterable" named neither).
        (
            {"model": {"type": "3+3"}, "rule": {"dose_levels": 10.0}},
            r"\[rule\] dose_levels = 10\.0: must be an array",
        ),
        (
            {"model": {"type": "combination-bo", "covariates": "z1"}},
            r"\[model\] covariates = \"z1\": must be an array",
        ),
    ],
)
def test_configuration_errors_name_the_section_key_and_value(config, message):
    if message is None:
        assert design_from_config(config, "x.toml").rule.max_step_up == 1
        return
    with pytest.raises(ConfigError, match=message):
        design_from_config(config, "x.toml")


def test_design_config_needs_a_registered_family():
    tables = design_config(crm_design(CRM(SKELETON, 0.25)))
    assert tables["model"]["type"] == "crm"
    assert "max_step_down" not in tables["rule"]  # None by default: left out
    assert tables["rule"]["max_step_up"] == 1
    no_skipping = design_config(crm_design(CRM(SKELETON, 0.25), max_step_up=None))
    assert no_skipping["rule"]["max_step_up"] == "none"  # None over a default that is not
    with pytest.raises(ValueError, match="no registered family has the rule LowestDoseRule"):
        design_config(Design(CRM(SKELETON, 0.25), LowestDoseRule()))


def test_the_factories_and_the_configuration_agree():
    assert design_from_config(design_config(boin_design(0.3, LEVELS)), "x") == boin_design(
        0.3, LEVELS
    )
    three = three_plus_three_design(LEVELS)
    rebuilt = design_from_config({"model": {"type": "3+3"}, "rule": {"dose_levels": LEVELS}}, "x")
    assert rebuilt == three and rebuilt.sample_size == 30  # 6 per dose level, derived


def test_decision_table_errors():
    with pytest.raises(ValueError, match="at least 3 dose levels"):
        boin_design(0.3, (10.0, 20.0)).decision_table()
    with pytest.raises(ValueError, match="max_patients 2 is below the cohort size 3"):
        boin_design(0.3, LEVELS).decision_table(2)
    rows = boin_design(0.3, LEVELS, sample_size=6).decision_table()
    assert [row.n for row in rows] == [3, 6]  # the sample size, when below 12


def test_scenario_registry(restored):
    def toy(number: int) -> object:
        return number

    with pytest.raises(ValueError, match="'binary' is already registered"):
        register_scenario(ScenarioType("binary", "x", toy))
    register_scenario(ScenarioType("toy", "a toy", toy))
    assert SCENARIO_TYPES["toy"].build is toy
    design = boin_design(0.3, LEVELS)
    assert design_attribute(design, "target") == 0.3  # from the model
    assert design_attribute(design, "sample_size") == 36  # from the design
    assert design_attribute(design, "nothing") is None


def test_an_export_named_as_its_own_module_is_refused(tmp_path):
    """Importing the module would turn the package's attribute into the module."""
    from dosezoo.lazy import attach

    init = tmp_path / "__init__.py"
    init.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from fakepkg.winner import winner\n    from fakepkg.rules import Rule\n"
    )
    with pytest.raises(ImportError, match=r"fakepkg: the exports \['winner'\]"):
        attach("fakepkg", str(init))
