"""Loading the retrieval kernels of :mod:`sse_np.retrieval.kernels`, once, through the engine's numba set-up.

They load with the engine's numba cache folder and under its fork lock
(:func:`sse_np.engine.numba_loading`). Without numba, with
``SSE_NP_DISABLE_NUMBA`` set or under ``NUMBA_DISABLE_JIT`` (where the kernels
would run as Python loops, far slower than NumPy), :func:`get_kernels`
answers False and the NumPy paths run instead; both give the same results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, NamedTuple

from ..engine import numba_available, numba_loading


class Kernels(NamedTuple):
    """The jitted retrieval kernels (see :mod:`sse_np.retrieval.kernels`)."""

    hamming_scan: Callable[..., None]
    hamming_finish: Callable[..., None]
    merge_top_k: Callable[..., None]
    codes_dot_t: Callable[..., None]


_lock = threading.Lock()
_kernels: Kernels | Literal[False] | None = None  # None: not tried yet; False: unavailable


def get_kernels() -> Kernels | None:
    """The kernels, or None when numba is missing, switched off or not jitting (decided once)."""
    global _kernels
    if _kernels is None:
        with _lock:
            if _kernels is None:
                _kernels = _load()
    return _kernels or None


def _load() -> Kernels | Literal[False]:
    if not numba_available():
        return False
    try:
        with numba_loading() as numba:
            if numba.config.DISABLE_JIT:
                return False
            from . import kernels
    except Exception:
        return False
    return Kernels(
        kernels.hamming_top_k_scan, kernels.hamming_top_k_finish, kernels.merge_block_top_k, kernels.codes_dot_t
    )
