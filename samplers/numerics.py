"""Exact numerical helpers shared by the compiled kernels.

`whole_within` tells a kernel whether a float count (or shape) is a whole number it may raise
a factor to by squarings.

`exp_without_errno` is ``math.exp`` to the last bit, without glibc's slow path for results
that under- or overflow (it sets ``errno``): the kernels' densities, tails and powers under- or
overflow at many of the points they visit, and that path cost the 3PND quadrature a sixth of
its time. The module loads nothing but numba and numpy, so any kernel can use it without
slowing a start-up (SciPy's special functions, :mod:`dosezoo.samplers.special`, load SciPy).
"""

import math

import numpy as np
from numba import njit

__all__ = ["EXP_OVERFLOW", "EXP_UNDERFLOW", "exp_without_errno", "whole_within"]

#: Below the first ``exp`` rounds to 0 (its smallest subnormal is ``exp(-744.4)``), above the
#: second to infinity (the largest double is ``exp(709.78)``).
EXP_UNDERFLOW, EXP_OVERFLOW = -746.0, 710.0


@njit(cache=True, error_model="numpy")
def exp_without_errno(x: float) -> float:
    """``exp(x)`` to the last bit, answered at once where it underflows to 0 or overflows.

    Between the limits and ``exp``'s own (subnormal results, and up to 710) ``exp`` is called
    as before; NaN stays NaN.
    """
    if x < EXP_UNDERFLOW:
        return 0.0
    if x > EXP_OVERFLOW:
        return np.inf
    return math.exp(x)


@njit(cache=True, error_model="numpy", inline="always")
def whole_within(value: float, limit: int) -> int:
    """``value`` as an int when it is a whole number in ``[0, limit]``, else -1.

    The cast happens only inside the range: a NaN or a float beyond int's range has no
    defined int in numba (LLVM).
    """
    whole = int(value) if 0.0 <= value <= limit else -1
    return whole if whole == value else -1
