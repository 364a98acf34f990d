"""Custom PyMC step methods and the numba kernels behind them.

The step methods subclass PyMC's, so importing them imports PyMC (seconds): they load on first
use (``dosezoo.samplers.RidgeMove``), and the kernels (``dosezoo.samplers.three_pnd_kernels``,
...) and the exact engines (``grid``, ``three_pnd_quadrature``) load without PyMC.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dosezoo.samplers.three_pnd import (
        BetaTruncatedNormalGibbs,
        NuEllipticalSlice,
        RidgeMove,
        SigmaAuxiliarySlice,
        three_pnd_steps,
    )

__all__ = [
    "BetaTruncatedNormalGibbs",
    "NuEllipticalSlice",
    "RidgeMove",
    "SigmaAuxiliarySlice",
    "three_pnd_steps",
]


def __getattr__(name: str) -> Any:
    """Load the step methods on first access (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module 'dosezoo.samplers' has no attribute {name!r}")
    from dosezoo.samplers import three_pnd

    return getattr(three_pnd, name)
