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

from importlib.metadata import version

__version__ = version("dosezoo")
