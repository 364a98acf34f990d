"""dosezoo: Bayesian dose-finding models and trial designs built on PyMC.

Subpackages
-----------
dosezoo.data
    ``TrialData``, the validated one-row-per-patient container.
dosezoo.models
    Dose-response models, each a PyMC model (e.g. ``ThreePND``).
dosezoo.samplers
    Custom PyMC step methods and the numba kernels behind them.
dosezoo.designs
    Dose-finding rules that turn a posterior into the next dose.
"""

#: The installed version (read from the package metadata on first access: importing
#: ``importlib.metadata`` and scanning the installed distributions would cost every start).
__version__: str


def __getattr__(name: str) -> str:
    """Return ``__version__`` on first access (PEP 562)."""
    if name != "__version__":
        raise AttributeError(f"module 'dosezoo' has no attribute {name!r}")
    from importlib.metadata import version

    value = globals()["__version__"] = version("dosezoo")
    return value
