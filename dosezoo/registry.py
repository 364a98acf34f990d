"""Named entries that the modules defining them register: design families, scenario types.

A family or scenario module registers its entry when it is imported, so that adding one is a
new file and edits no list. :class:`Registry` keeps the names unique: registering a name again
is allowed only for the same entry (a module imported twice), never for another one.
"""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

__all__ = ["Registry"]


class Registry[T]:
    """A name -> entry mapping with unique names.

    Parameters
    ----------
    owner : str
        The registering function, named in error messages.
    identity : callable
        What makes two entries the same entry (e.g. the qualified name of their class), shown
        in the message when a name is taken.
    """

    def __init__(self, owner: str, identity: Callable[[T], str]) -> None:
        self._owner = owner
        self._identity = identity
        self._entries: dict[str, T] = {}
        #: The registered entries by name (read-only).
        self.entries: Mapping[str, T] = MappingProxyType(self._entries)

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
                f"{self._owner}: {name!r} is already registered to {self._identity(known)}, "
                f"not {self._identity(entry)}"
            )
        self._entries[name] = entry
        return entry

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Undo, on exit, whatever is registered inside the block (for tests)."""
        saved = dict(self._entries)
        try:
            yield
        finally:
            self._entries.clear()
            self._entries.update(saved)
