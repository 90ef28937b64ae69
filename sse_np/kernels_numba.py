"""numba kernels: bag mean + the affine part of DyT, one text a row.

Every kernel reads only the first ``dim`` columns of the table: DyT is
elementwise, so ``y[:dim]`` depends on nothing else and the cost of a text
scales with ``dim``. Rows are summed in float32 in token order, like
``torch.nn.EmbeddingBag(mode="mean")``. The gather loop is chosen by the
table's storage dtype at compile time:

* float32         -- plain rows;
* uint16          -- float16 codes, widened exactly with integer shifts and
                     one multiply (vectorizes; tables are known finite);
* int16           -- bfloat16 codes: the upper half of a float32;
* uint8           -- packed 4-bit codes, high nibble = even column,
                     ``w = levels[q] * scale`` as the reference dequantizes.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

def _accumulate(table, scales, levels, ids, start, stop, dim, acc, bits):
    """Add rows ``ids[start:stop]`` (first ``dim`` columns) into ``acc``; ``bits`` is uint32 scratch."""
    raise NotImplementedError("jitted only")


@overload(_accumulate, inline="always")
def _accumulate_impl(table, scales, levels, ids, start, stop, dim, acc, bits):
    if table.dtype == types.float32:

        def plain(table, scales, levels, ids, start, stop, dim, acc, bits):
            for t in range(start, stop):
                row = table[ids[t]]
                for j in range(dim):
                    acc[j] += row[j]

        return plain
    if table.dtype == types.uint16:

        def float16(table, scales, levels, ids, start, stop, dim, acc, bits):
            # Sign to bit 31, exponent+mantissa to bits 13..27, then scale by
            # 2**112 to rebias the exponent (15 -> 127): exact for every
            # finite half, subnormals included. NaN/inf were refused at load.
            as_float = bits.view(np.float32)
            rebias = np.float32(2.0**112)
            for t in range(start, stop):
                row = table[ids[t]]
                for j in range(dim):
                    h = np.uint32(row[j])
                    bits[j] = ((h & np.uint32(0x8000)) << np.uint32(16)) | ((h & np.uint32(0x7FFF)) << np.uint32(13))
                for j in range(dim):
                    acc[j] += as_float[j] * rebias

        return float16
    if table.dtype == types.int16:

        def bfloat16(table, scales, levels, ids, start, stop, dim, acc, bits):
            as_float = bits.view(np.float32)
            for t in range(start, stop):
                row = table[ids[t]]
                for j in range(dim):
                    bits[j] = np.uint32(np.uint16(row[j])) << np.uint32(16)
                for j in range(dim):
                    acc[j] += as_float[j]

        return bfloat16
    if table.dtype == types.uint8:

        def packed4(table, scales, levels, ids, start, stop, dim, acc, bits):
            half = dim // 2
            for t in range(start, stop):
                r = ids[t]
                row = table[r]
                s = scales[r]
                for k in range(half):
                    b = row[k]
                    acc[2 * k] += levels[b >> 4] * s
                    acc[2 * k + 1] += levels[b & 15] * s
                if dim & 1:
                    acc[dim - 1] += levels[row[half] >> 4] * s

        return packed4
    return None


@nb.njit(cache=True, inline="always")
def _mean_affine(count, alpha, bias, dyt, out_row):
    """Row sum in ``out_row`` -> mean -> ``alpha * mean + bias`` (the part of DyT before tanh).

    tanh, beta and the normalization run afterwards on the whole batch in
    NumPy, whose float32 tanh is vectorized (a scalar tanh a value here
    cost more than the gather for short texts).
    """
    inv = np.float32(1.0) / np.float32(count) if count > 0 else np.float32(0.0)
    if dyt:
        for j in range(out_row.shape[0]):
            out_row[j] = alpha[j] * (out_row[j] * inv) + bias[j]
    else:
        for j in range(out_row.shape[0]):
            out_row[j] *= inv


@nb.njit(cache=True, inline="always")
def _pool_range(table, scales, levels, ids, starts, stops, lo, hi, alpha, bias, dyt, out):
    bits = np.empty(out.shape[1], dtype=np.uint32)  # one scratch row per range, not per text
    for i in range(lo, hi):
        row = out[i]
        row[:] = 0.0
        _accumulate(table, scales, levels, ids, starts[i], stops[i], out.shape[1], row, bits)
        _mean_affine(stops[i] - starts[i], alpha, bias, dyt, row)


# Parallel and serial copies of one body: numba keys its on-disk cache by
# function, so the low-latency serial variant must be a function of its own.
# ``n_parts`` ranges (a few per thread) balance uneven text lengths; the
# serial variant ignores it. (Asking numba for the thread count inside the
# kernel would stop it from being cached on disk.)
@nb.njit(cache=True, parallel=True, nogil=True)
def pool_parallel(table, scales, levels, ids, starts, stops, alpha, bias, dyt, out, n_parts):
    """Text ``i`` pools ``ids[starts[i]:stops[i]]`` into ``out[i]`` (before tanh), texts split over threads."""
    n = out.shape[0]
    for part in nb.prange(n_parts):
        _pool_range(table, scales, levels, ids, starts, stops, part * n // n_parts, (part + 1) * n // n_parts,
                    alpha, bias, dyt, out)


@nb.njit(cache=True, nogil=True)
def pool_serial(table, scales, levels, ids, starts, stops, alpha, bias, dyt, out, n_parts):
    """Single-threaded :func:`pool_parallel`."""
    _pool_range(table, scales, levels, ids, starts, stops, 0, out.shape[0], alpha, bias, dyt, out)
