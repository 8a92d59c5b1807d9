"""Kernel-wide services made on first use, one per kernel, forgotten with the kernel.

Several services are reached from code that holds only the kernel (a route handler, a job, a
hook of another plugin) and are first asked for while the built-in plugins' routes are
collected at boot, so that a bad declaration stops boot naming its plugin. Tests boot many
kernels in one process: each gets its own, and none outlives its kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from ..kernel import Kernel

T = TypeVar("T")


def per_kernel(make: Callable[[Kernel], T]) -> Callable[[Kernel], T]:
    """``make(kernel)`` once per kernel; later calls return what the first one made."""
    made: WeakKeyDictionary[Any, T] = WeakKeyDictionary()

    @functools.wraps(make)
    def get(kernel: Kernel) -> T:
        try:
            return made[kernel]
        except KeyError:
            value = made[kernel] = make(kernel)
            return value

    return get
