"""Rarer garbage collections for code that allocates many objects which live on.

CPython's cyclic collector runs a young collection every 700 net allocations of container
objects and, every tenth of those, an older one that walks what survived. A command that loads
numba, SciPy and a family's kernels, or a simulation that keeps the posteriors of thousands of
count states, allocates hundreds of thousands of objects that live to its end: the collector
walks them again and again without finding garbage. Reference counting frees almost everything
at once either way; the collector only finds reference cycles, which wait a little longer.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between two young collections inside `rare_collections` (CPython's default: 700).
RARE_THRESHOLD = 50_000


@contextmanager
def rare_collections() -> Iterator[None]:
    """Run the block with the collector's first threshold at :data:`RARE_THRESHOLD`.

    The thresholds are restored after the block (a nested block restores the outer one's).
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(RARE_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
