"""Lazy exports of a package: its names are imported from their modules on first access.

A package ``__init__`` that re-exports the names of its modules would import every module, and
with them numba, scipy, pandas and xarray, whenever any one module of the package is imported
(``import dosezoo.designs.registry`` runs ``dosezoo/designs/__init__.py`` first). Instead, the
``__init__`` lists its exports as imports under ``if TYPE_CHECKING:`` (what type checkers and
readers see) and hands its own source to :func:`attach`, which reads those imports and returns
the module's ``__getattr__`` and ``__dir__`` (PEP 562): ``dosezoo.designs.crm_design`` imports
``dosezoo.designs.crm`` when it is first read, and only then. The same idea as the stub files
of ``lazy_loader`` (Scientific Python SPEC 1), with the stub inside the ``__init__``::

    from typing import TYPE_CHECKING

    from dosezoo.lazy import attach

    if TYPE_CHECKING:
        from dosezoo.designs.crm import CRMRule, crm_design

    __all__ = ["CRMRule", "crm_design"]
    __getattr__, __dir__ = attach(__name__, __file__)

Kernels are lazy too: :func:`compiled` compiles a function with numba when it first runs, so
that a module of rules or diagnostics loads numba only where a kernel of it is used.
"""

import ast
import functools
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["attach", "compiled", "exports_of"]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def exports_of(source: str) -> dict[str, str]:
    """Return ``{name: module}`` of the absolute imports under ``if TYPE_CHECKING:``.

    Parameters
    ----------
    source : str
        The text of a package's ``__init__``.

    Returns
    -------
    dict
        Each imported name (its alias, if any) and the module it comes from, in source order.
    """
    exports: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                for alias in statement.names:
                    exports[alias.asname or alias.name] = statement.module
    return exports


def attach(package: str, init_file: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return the ``__getattr__`` and ``__dir__`` of a package with lazy exports.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    init_file : str
        Its ``__file__``, whose ``if TYPE_CHECKING:`` imports name the exports.

    Returns
    -------
    tuple of callable
        ``__getattr__(name)`` imports the module of an export, stores the value on the package
        (so the next access is a plain attribute) and returns it; any other name raises
        AttributeError. ``__dir__()`` lists the exports with the package's own names.
    """
    exports = exports_of(Path(init_file).read_text(encoding="utf-8"))
    # Importing a submodule sets the package's attribute of its name to the module, after
    # any __getattr__: an export named as its own module would turn into that module.
    shadowed = [name for name, module in exports.items() if module == f"{package}.{name}"]
    if shadowed:
        raise ImportError(
            f"{package}: the exports {shadowed} are named as the modules they come from; "
            "rename the modules"
        )

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


@functools.cache
def compiled(kernel: Callable) -> Callable:
    """Return ``kernel`` compiled with numba (``njit``, cached on disk), compiling it once.

    numba is imported here, on a kernel's first use: the modules that define such kernels
    (the simulation engine's diagnostics, the designs' rules) do not load it otherwise.
    """
    from numba import njit

    return njit(cache=True, error_model="numpy")(kernel)
