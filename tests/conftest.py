import pytest

from dosezoo.datasets import load_o6bg
from dosezoo.models import ThreePND


@pytest.fixture(scope="session")
def o6bg():
    return load_o6bg()


@pytest.fixture(scope="session")
def o6bg_model():
    return ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
