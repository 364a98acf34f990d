"""Exact numerical helpers shared by the compiled kernels.

`whole_within` tells a kernel whether a float count (or shape) is a whole number it may raise
a factor to by squarings.

`numpy_sum` is ``numpy.sum`` of a 1-D float array to the last bit (its pairwise summation),
for a kernel that takes over a sum numpy formed before.

`exp_without_errno` is ``math.exp`` to the last bit, without glibc's slow path for results
that under- or overflow (it sets ``errno``): the kernels' densities, tails and powers under- or
overflow at many of the points they visit, and that path cost the 3PND quadrature a sixth of
its time. The module loads nothing but numba and numpy, so any kernel can use it without
slowing a start-up (SciPy's special functions, :mod:`dosezoo.samplers.special`, load SciPy).
"""

import math

import numpy as np
from numba import njit

__all__ = ["EXP_OVERFLOW", "EXP_UNDERFLOW", "exp_without_errno", "numpy_sum", "whole_within"]

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


#: Numpy's pairwise summation: blocks of up to this many terms are summed in 8 partial sums.
_PAIRWISE_BLOCK = 128


@njit(cache=True, error_model="numpy")
def numpy_sum(values: np.ndarray) -> float:
    """``numpy.sum`` of a contiguous 1-D float64 array, the same float.

    Numpy adds in pairs: under 8 terms one after another from 0; up to
    :data:`_PAIRWISE_BLOCK` in 8 interleaved partial sums, added as
    ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the rest one by one; more
    terms are split in two (the first part a multiple of 8), each part summed so, and the two
    sums added. A plain loop rounds differently from 8 terms on. The splits are walked with a
    stack (a recursive kernel does not load from numba's cache in another module's).
    """
    if values.size <= _PAIRWISE_BLOCK:
        return _block_sum(values, 0, values.size)
    # (start, count) of the parts still to sum; count -1 marks "add the last two sums"
    parts = np.empty((256, 2), dtype=np.int64)
    sums = np.empty(128)
    parts[0] = (0, values.size)
    pending, done = 1, 0
    while pending:
        pending -= 1
        start, count = parts[pending]
        if count < 0:
            done -= 1
            sums[done - 1] += sums[done]
        elif count <= _PAIRWISE_BLOCK:
            sums[done] = _block_sum(values, start, count)
            done += 1
        else:
            half = count // 2
            half -= half % 8
            parts[pending] = (0, -1)
            parts[pending + 1] = (start + half, count - half)
            parts[pending + 2] = (start, half)
            pending += 3
    return sums[0]


@njit(cache=True, error_model="numpy")
def _block_sum(values, start, count):
    """Numpy's sum of ``count`` <= :data:`_PAIRWISE_BLOCK` terms from ``start``."""
    if count < 8:
        total = 0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    partial = values[start : start + 8].copy()
    i = 8
    while i < count - count % 8:
        for j in range(8):
            partial[j] += values[start + i + j]
        i += 8
    total = ((partial[0] + partial[1]) + (partial[2] + partial[3])) + (
        (partial[4] + partial[5]) + (partial[6] + partial[7])
    )
    while i < count:
        total += values[start + i]
        i += 1
    return total
