"""SciPy's special functions, callable from numba-compiled code.

numba has no ``scipy.special``; these bind the C entry points that SciPy exports in
``scipy.special.cython_special``, so kernels get exactly SciPy's numerics (only the ones the
kernels call are bound). Each address is registered with LLVM under a fixed symbol name and
declared as an external function, which keeps the kernels that call them cacheable
(``cache=True``): a ctypes pointer would be a dynamic global and disable numba's disk cache.
"""

from collections.abc import Callable
from typing import cast

import llvmlite.binding as llvm
from numba import types
from numba.core.typing import Signature
from numba.extending import get_cython_function_address

_UNARY = types.float64(types.float64)
_BINARY = types.float64(types.float64, types.float64)


def _bind(cython_name: str, signature: Signature) -> Callable[..., float]:
    symbol = f"dosezoo_{cython_name.removeprefix('__pyx_fuse_1')}"
    llvm.add_symbol(
        symbol, get_cython_function_address("scipy.special.cython_special", cython_name)
    )
    # numba's ExternalFunction type; compiled code, the only caller, calls it as the C function
    # (called from Python it would build a numba Signature), so it is typed as that function.
    return cast(Callable[..., float], types.ExternalFunction(symbol, signature))


#: Log of the standard normal CDF, accurate far in the lower tail.
log_ndtr = _bind("__pyx_fuse_1log_ndtr", _UNARY)
#: Inverse of ``log_ndtr``: ``ndtri_exp(log_ndtr(x)) == x``.
ndtri_exp = _bind("ndtri_exp", _UNARY)
#: Regularised lower incomplete gamma function P(a, x).
gammainc = _bind("gammainc", _BINARY)
#: Regularised upper incomplete gamma function Q(a, x) = 1 - P(a, x).
gammaincc = _bind("gammaincc", _BINARY)
#: Inverse of P(a, .) in its second argument.
gammaincinv = _bind("gammaincinv", _BINARY)
#: Inverse of Q(a, .) in its second argument.
gammainccinv = _bind("gammainccinv", _BINARY)
