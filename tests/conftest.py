import os

# Each pytest-xdist worker keeps numba's compiled kernels in a cache of its own (set before
# anything imports numba). Two workers sharing one cache write and load the same entries at
# once; a fresh clone's run once crashed (a segfault in a numba kernel of the GP surface),
# which its rerun did not repeat.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".numba_cache", _WORKER
    )

import pytest  # noqa: E402  (after the cache directory, which numba reads on import)

from dosezoo.datasets import load_o6bg  # noqa: E402
from dosezoo.models import ThreePND  # noqa: E402


@pytest.fixture(scope="session")
def o6bg():
    return load_o6bg()


@pytest.fixture(scope="session")
def o6bg_model():
    return ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
