"""Named entries that the modules defining them register: design families, scenario types.

A family or scenario module registers its entry when it is imported, so that adding one is a
new file and edits no list. :class:`Registry` keeps the names unique: registering a name again
is allowed only for the same entry (a module imported twice), never for another one.

The registries are lazy. Importing every family's module to learn the names would load numba,
scipy, pandas and xarray for every command, so a registry reads its names from the source of
the modules of its packages instead: a registration is a call at the top level of a module,
``register(Family(name="crm", ...))`` or ``register_stopping("toxicity", ToxicityStopping)``,
whose name is a string literal (the call's first argument, or the ``name`` (first argument)
of the entry built in it). :func:`declarations` finds those calls without importing the
module; looking a name up (``FAMILIES["crm"]``) imports the one module that declares it, which
registers its entries as before. Listing the names imports nothing; reading the entries
(``FAMILIES.values()``) imports each declaring module. A contract test checks that the names
read from the source are exactly those that importing every module registers.
"""

import ast
import functools
import importlib
import importlib.util
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["Declaration", "Registry", "declarations"]

#: A call at the top level of a module (its first line; the statement may go on).
_TOP_LEVEL_CALL = re.compile(r"^[A-Za-z_]\w*\(", re.MULTILINE)
#: The first line of the next top-level statement (not a continuation, a closing bracket or a
#: comment).
_NEXT_STATEMENT = re.compile(r"^[^\s)\]}#]", re.MULTILINE)


class Declaration(NamedTuple):
    """A registration read from a module's source: which function, which name, which module."""

    function: str
    name: str
    module: str


def _literal_name(call: ast.Call) -> str | None:
    """Return the registered name: a string first argument, or the ``name`` of the entry."""
    if not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    if isinstance(first, ast.Call):
        for keyword in first.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                value = keyword.value.value
                return value if isinstance(value, str) else None
        if first.args and isinstance(first.args[0], ast.Constant):
            value = first.args[0].value
            return value if isinstance(value, str) else None
    return None


def _calls(source: str) -> Iterator[tuple[str, str]]:
    """Yield ``(function, name)`` of the top-level registration calls of a module's source.

    Only the statements that start with a call at column 0 are parsed (a fraction of the file,
    so that reading the names of every family costs milliseconds, not a parse of every
    module); the whole module is parsed when such a statement cannot be parsed alone.
    """
    statements = []
    for match in _TOP_LEVEL_CALL.finditer(source):
        end = _NEXT_STATEMENT.search(source, match.end())
        snippet = source[match.start() : end.start() if end else len(source)]
        try:
            statements.extend(ast.parse(snippet).body)
        except SyntaxError:
            statements = list(ast.parse(source).body)
            break
    for statement in statements:
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            continue
        call = statement.value
        name = _literal_name(call)
        if isinstance(call.func, ast.Name) and name is not None:
            yield call.func.id, name


@functools.cache
def declarations(package: str) -> tuple[Declaration, ...]:
    """Return the registrations that the modules of ``package`` make, read from their source.

    Parameters
    ----------
    package : str
        A package's name (``"dosezoo.designs"``); its modules are not imported.

    Returns
    -------
    tuple of Declaration
        In the order in which importing the modules, sorted by name, registers them.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"declarations: {package!r} is not a package")
    found = []
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location).glob("*.py")):
            if path.stem == "__init__":
                continue
            source = path.read_text(encoding="utf-8")
            module = f"{package}.{path.stem}"
            found += [Declaration(function, name, module) for function, name in _calls(source)]
    return tuple(found)


class _LazyEntries[T](Mapping[str, T]):
    """The read-only view of a registry: names without imports, entries on demand."""

    def __init__(self, registry: "Registry[T]") -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> T:
        return self._registry.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names())

    def __len__(self) -> int:
        return len(self._registry.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._registry.names()

    def __repr__(self) -> str:
        return f"<registry of {self._registry.owner}: {', '.join(self)}>"


class Registry[T]:
    """A name -> entry mapping with unique names, filled lazily from the declaring modules.

    Parameters
    ----------
    owner : str
        The registering function, named in error messages; a module declares a name by a
        top-level call to it.
    identity : callable
        What makes two entries the same entry (e.g. the qualified name of their class), shown
        in the message when a name is taken.
    packages : tuple of str
        The packages whose modules declare entries (:meth:`search` adds one).
    """

    def __init__(
        self, owner: str, identity: Callable[[T], str], packages: tuple[str, ...] = ()
    ) -> None:
        self.owner = owner
        self._identity = identity
        self._packages: list[str] = list(packages)
        self._entries: dict[str, T] = {}
        #: Registered entries only, in registration order (read-only; imports nothing).
        self.loaded: Mapping[str, T] = MappingProxyType(self._entries)
        #: Every entry by name (read-only): declared names are listed without an import, and
        #: reading an entry imports the module that declares it.
        self.entries: Mapping[str, T] = _LazyEntries(self)

    def search(self, package: str) -> None:
        """Also read declarations from the modules of ``package`` (a higher layer's)."""
        if package not in self._packages:
            self._packages.append(package)

    def declared(self) -> dict[str, str]:
        """Return ``{name: module}`` of the names the packages' modules declare (no import)."""
        return {
            found.name: found.module
            for package in self._packages
            for found in declarations(package)
            if found.function == self.owner
        }

    def names(self) -> list[str]:
        """Return the declared names, then those registered by other code (tests, users)."""
        declared = self.declared()
        return [*declared, *(name for name in self._entries if name not in declared)]

    def get(self, name: str) -> T:
        """Return the entry of ``name``, importing the module that declares it if needed.

        Raises
        ------
        KeyError
            If no module declares the name and none registered it.
        RuntimeError
            If the declaring module, once imported, did not register the name.
        """
        if name not in self._entries:
            module = self.declared().get(name)
            if module is None:
                raise KeyError(name)
            importlib.import_module(module)
            if name not in self._entries:
                raise RuntimeError(
                    f"{self.owner}: {module} declares {name!r} in its source, but importing it "
                    "did not register it"
                )
        return self._entries[name]

    def load_all(self) -> None:
        """Import every declaring module (what reading every entry does)."""
        for module in dict.fromkeys(self.declared().values()):
            importlib.import_module(module)

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` and return it.

        Raises
        ------
        ValueError
            If another entry has that name, naming both.
        """
        known = self._entries.get(name)
        if known is not None and self._identity(known) != self._identity(entry):
            raise ValueError(
                f"{self.owner}: {name!r} is already registered to {self._identity(known)}, "
                f"not {self._identity(entry)}"
            )
        self._entries[name] = entry
        return entry

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Undo, on exit, whatever is registered inside the block (for tests).

        Every declaring module is imported first, so that the entries a module registers when
        the block first reads them are not undone with the block's own.
        """
        self.load_all()
        saved = dict(self._entries)
        try:
            yield
        finally:
            self._entries.clear()
            self._entries.update(saved)
