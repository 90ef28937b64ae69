"""The jitted twins of ``sse_np.engine.dyt``: DyT's tanh and the L2 norm, one row at a time.

Line for line the operations of the NumPy versions in ``dyt`` (which also
documents the formulas), on scalars: the same float32 bits (tested on
every float32 tanh input class and on rows of every width).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .dyt import (
    CLAMP,
    E1,
    E2,
    E3,
    E4,
    E5,
    E6,
    E7,
    EPS,
    HALF,
    LANES,
    LN2_HI,
    LN2_LO,
    LOG2E,
    ONE,
    P0,
    P1,
    P2,
    P3,
    P4,
    SMALL,
    TWO,
)
from .intrinsics import bits_to_float


@nb.njit(cache=True, inline="always", error_model="numpy")
def tanh32(x):
    """tanh of a float32, from float32 operations only (see the module docstring)."""
    a = abs(x)
    z = x * x
    small = x + x * z * ((((P4 * z + P3) * z + P2) * z + P1) * z + P0)
    y = -TWO * min(a, CLAMP)
    k = np.floor(y * LOG2E + HALF)
    r = (y - k * LN2_HI) - k * LN2_LO
    q = (((((E7 * r + E6) * r + E5) * r + E4) * r + E3) * r + E2) * r + E1
    scale = bits_to_float(np.uint32((np.int32(k) + np.int32(127)) << np.int32(23)))  # 2**k, k in [-26, 0]
    t = (ONE + r * q) * scale
    big = (ONE - t) / (ONE + t)
    if a < SMALL:
        return small
    return big if x >= 0 else -big


@nb.njit(cache=True, inline="always", error_model="numpy")
def _norm(row, lanes):
    """L2 norm of ``row``: squares in 16 lanes (``lanes``: scratch), then the lanes pairwise."""
    dim = row.shape[0]
    lanes[:] = 0.0
    full = dim - dim % LANES
    for j0 in range(0, full, LANES):
        for lane in range(LANES):
            v = row[j0 + lane]
            lanes[lane] += v * v
    for j in range(full, dim):
        v = row[j]
        lanes[j - full] += v * v
    width = LANES // 2
    while width:
        for lane in range(width):
            lanes[lane] += lanes[lane + width]
        width //= 2
    return np.sqrt(lanes[0])


@nb.njit(cache=True, error_model="numpy")
def finish_row(row, count, alpha, bias, beta, dyt, normalize, lanes):
    """In place: the row sum of ``count`` tokens -> mean -> head -> L2-normalized (if ``normalize``).

    ``lanes`` is float32 scratch of ``LANES`` entries (one per thread, not per row).
    """
    inv = ONE / np.float32(count) if count > 0 else np.float32(0.0)
    dim = row.shape[0]
    if dyt:
        for j in range(dim):
            row[j] = beta[j] * tanh32(alpha[j] * (row[j] * inv) + bias[j])
    else:
        for j in range(dim):
            row[j] *= inv
    if normalize:
        norm = max(_norm(row, lanes), EPS)
        for j in range(dim):
            row[j] /= norm
