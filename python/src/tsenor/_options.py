"""Keyword checks shared by the wrappers: Python types, and explicit values that the C
library would read as "use the default" (0). The library checks the rest and names it."""
import functools
import math
import operator
from typing import Any, NamedTuple, Tuple

import numpy as np

from . import _arrays, _core

INT_MAX = 2**31 - 1
NO_CUDA = ("tsenor was built without CUDA, so it cannot take CUDA tensors: reinstall it where nvcc is "
           "found (TSENOR_CUDA=1 makes the build fail without nvcc), or pass CPU tensors (.cpu())")


class MaskOptions(NamedTuple):
    """_core's mask keywords, in the order the entry points take them."""
    n: int
    m: int
    method: str
    iterations: int   # 0 = the library's default
    tau: float        # 0 = the library's default
    threads: int      # 0 = all cores


class PruneOptions(NamedTuple):
    """_core's pruning keywords after the mask's, in the order the entry points take them."""
    method: str
    damping: float      # 0 = the library's default
    iterations: int     # 0 = the library's default
    cg_iterations: int  # 0 = the library's default, -1 = none
    rho: float          # 0 = the library's default


def integer(name: str, value: Any, optional: bool = False) -> int:
    """value as a C int; optional: None is 0 (the default) and explicit values are >= 1."""
    if optional and value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("%s must be an int, not bool" % name)
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__)) from None
    if not -INT_MAX <= number <= INT_MAX or (optional and number < 1):
        raise _arrays.invalid("%s=%d (need %s)" % (name, number, ">= 1" if optional else "a C int"))
    return number


def positive(name: str, value: Any) -> float:
    """value as a float > 0, None as 0.0 (the default); NaN is left for the library to refuse."""
    if value is None:
        return 0.0
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError("%s must be a float, not %s" % (name, type(value).__name__))
    number = float(value)
    if not number > 0.0 and not math.isnan(number):
        raise _arrays.invalid("%s=%g (need > 0)" % (name, number))
    return number


def method_name(name: str, value: Any, known: Tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError("%s must be a str (one of %s), not %s" % (name, ", ".join(known), type(value).__name__))
    return value


def mask_options(n: Any, m: Any, method: Any, iterations: Any, tau: Any, threads: Any) -> MaskOptions:
    try:
        return _mask_options_cached(n, m, method, iterations, tau, threads)
    except TypeError:
        if all(_hashable(v) for v in (n, m, method, iterations, tau, threads)):
            raise                                     # the options' own TypeError
        return _mask_options(n, m, method, iterations, tau, threads)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _mask_options(n: Any, m: Any, method: Any, iterations: Any, tau: Any, threads: Any) -> MaskOptions:
    return MaskOptions(integer("n", n), integer("m", m), method_name("method", method, tuple(_core.METHODS)),
                       integer("iterations", iterations, True), positive("tau", tau),
                       integer("threads", threads, True))


# a mask call's options are checked once per distinct set (typed: 8 and 8.0 are kept
# apart, so a float n is refused every time); errors are not cached
_mask_options_cached = functools.lru_cache(maxsize=64, typed=True)(_mask_options)


def prune_options(method: Any, damping: Any, iterations: Any, cg_iterations: Any, rho: Any) -> PruneOptions:
    if cg_iterations is None:
        cg = 0
    else:
        cg = integer("cg_iterations", cg_iterations)
        if cg < 0:
            raise _arrays.invalid("cg_iterations=%d (need >= 0; 0 = none)" % cg)
        cg = cg if cg > 0 else -1     # the C library's "none"; its 0 means the default
    return PruneOptions(method_name("method", method, tuple(_core.PRUNE_METHODS)), positive("damping", damping),
                        integer("iterations", iterations, True), cg, positive("rho", rho))
