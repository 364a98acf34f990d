"""The package's layers, read from the source: imports point down, never up, with no cycle.

Layers, lowest first: the core vocabulary in ``dosezoo/`` (data, decisions, posteriors,
protocols, checks, diagnostics, the simulation engine and the scenarios), ``samplers/``,
``models/``, ``designs/``, then the entry points (command line, configuration, studies and the
validation code, which may use everything). A module may import modules of its own layer or a
lower one; no import of a package module hides inside a function (the usual way to dodge a
cycle), except of a module bound to PyMC (one that imports PyMC or PyTensor at its top, such as
the step methods, which subclass PyMC's): the PyMC engine imports it where it runs, so the exact
and kernel engines never load PyMC; and the import graph has no cycle. Two more places may
import inside a block: ``if TYPE_CHECKING:`` (never run; a lazy package's exports, see
:mod:`dosezoo.lazy`), and the command line, whose commands import what they run so that
``dosezoo --help`` loads nothing heavy (nothing imports the command line: no cycle hides there).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folder of each mapped subpackage (pyproject's package-dir).
FOLDERS = {
    "dosezoo": ROOT / "dosezoo",
    "dosezoo.samplers": ROOT / "samplers",
    "dosezoo.models": ROOT / "models",
    "dosezoo.designs": ROOT / "designs",
}
#: Modules of dosezoo/ above the designs: they may import everything.
ENTRY_POINTS = {"dosezoo.cli", "dosezoo.config", "dosezoo.studies", "dosezoo.validation"}
LAYERS = {"core": 0, "dosezoo.samplers": 1, "dosezoo.models": 2, "dosezoo.designs": 3, "entry": 4}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if package == "dosezoo" and parts and f"dosezoo.{parts[0]}" in FOLDERS:
                continue
            modules[name] = path
    return modules


MODULES = _modules()
#: Modules that import their machinery inside the functions that run it (the command line).
LAZY_ENTRY_POINTS = {"dosezoo.cli"}
#: Libraries whose import costs seconds: only the code that runs them may load them.
HEAVY = ("pymc", "pytensor")


def _imports_heavy_at_top(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots = [node.module.split(".")[0]]
        else:
            continue
        if any(root in HEAVY for root in roots):
            return True
    return False


def _pymc_bound() -> set[str]:
    """The modules that load PyMC or PyTensor when imported, directly or through another."""
    trees = {m: ast.parse(p.read_text(), filename=str(p)) for m, p in MODULES.items()}
    bound = {m for m, tree in trees.items() if _imports_heavy_at_top(tree)}
    top = {
        m: {target for node, target, nested in _imports(tree) if not nested}
        for m, tree in trees.items()
    }
    grew = True
    while grew:
        grew = False
        for module, targets in top.items():
            if module not in bound and targets & bound:
                bound.add(module)
                grew = True
    return bound


def _layer(module: str) -> int:
    for package in ("dosezoo.samplers", "dosezoo.models", "dosezoo.designs"):
        if module == package or module.startswith(package + "."):
            return LAYERS[package]
    if module in ENTRY_POINTS:
        return LAYERS["entry"]
    return LAYERS["core"]


def _resolve(name: str) -> str | None:
    """The package module an imported name refers to (the longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under a top-level ``if TYPE_CHECKING:`` (never run)."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            found |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return found


def _imports(tree: ast.Module) -> Iterator[tuple[ast.stmt, str, bool]]:
    """Yield every import of a dosezoo module: the node, the module, whether it is nested.

    An import under ``if TYPE_CHECKING:`` is not nested: it never runs, and a type checker
    reads it as if it were at the top.
    """
    top_level = set(map(id, tree.body)) | _type_checking_only(tree)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if not name.startswith("dosezoo"):
                continue
            module = _resolve(name)
            if module is not None:
                yield node, module, id(node) not in top_level


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[module] = {target for _, target, _ in _imports(tree) if target != module}
    return graph


def test_the_modules_are_found():
    assert "dosezoo.samplers.three_pnd" in _pymc_bound()
    assert "dosezoo.models.crm" not in _pymc_bound()
    for module in ("dosezoo.data", "dosezoo.samplers.grid", "dosezoo.models.crm", "dosezoo.cli"):
        assert module in MODULES
    assert _layer("dosezoo.models.crm") == 2
    assert _layer("dosezoo.decision") == 0


PYMC_BOUND = _pymc_bound()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_and_sit_at_the_top(module):
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node, target, nested in _imports(tree):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        assert not nested or target in PYMC_BOUND or module in LAZY_ENTRY_POINTS, (
            f"{where}: import of {target} inside a function or block"
        )
        if target == module:
            continue
        assert _layer(target) <= _layer(module), (
            f"{where}: {module} (layer {_layer(module)}) imports {target} "
            f"(layer {_layer(target)}), a higher layer"
        )


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [node, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])


def test_a_violation_is_detected(tmp_path):
    tree = ast.parse("def f():\n    from dosezoo.designs import crm\n")
    found = list(_imports(tree))
    assert found and found[0][2], "a nested import must be reported as nested"
    assert _layer(found[0][1]) > _layer("dosezoo.models.crm")


def test_an_import_for_type_checkers_only_is_not_nested():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dosezoo.models.crm import CRM\n"
        "def f():\n    from dosezoo.models.crm import CRM\n"
    )
    assert [nested for _, _, nested in _imports(tree)] == [False, True]
