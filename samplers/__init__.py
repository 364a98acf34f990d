"""Custom PyMC step methods and the numba kernels behind them."""

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
