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

from .tokenizing_numba import _tokenize_text

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


# ---------------------------------------------------------------------------
# Tokenize and pool in one pass (the fast path of ``kernels.embed``).

@nb.njit(cache=True, inline="always")
def _embed_range(buf, text_off, lo, hi, cls, low, added, vocab, max_len, keep_end,
                 table, scales, levels, alpha, bias, dyt, out, ids, counts, hole_a, hole_b, n_holes):
    max_chars = vocab[8]
    word = np.empty(max_chars + 1, dtype=np.uint8)  # scratch per range of texts, not per text
    hashes = np.empty(max_chars + 1, dtype=np.uint64)
    bits = np.empty(out.shape[1], dtype=np.uint32)
    for i in range(lo, hi):
        a = text_off[i]
        count, holes = _tokenize_text(buf, a, text_off[i + 1], cls, low, added, vocab, ids, a,
                                      hole_a, hole_b, a, word, hashes)
        counts[i] = count
        n_holes[i] = holes
        if holes:
            continue  # the caller completes this text with tokenizers' ids for its holes
        start, stop = a, a + count
        if 0 <= max_len < count:
            if keep_end:
                start = stop - max_len
            else:
                stop = start + max_len
        row = out[i]
        row[:] = 0.0
        _accumulate(table, scales, levels, ids, start, stop, out.shape[1], row, bits)
        _mean_affine(stop - start, alpha, bias, dyt, row)


@nb.njit(cache=True, parallel=True, nogil=True)
def embed_parallel(buf, text_off, cls, low, added, vocab, max_len, keep_end,
                   table, scales, levels, alpha, bias, dyt, out, ids, counts, hole_a, hole_b, n_holes, n_parts):
    """Tokenize text ``i`` (UTF-8 bytes ``buf[text_off[i]:text_off[i + 1]]``) and pool it into ``out[i]``.

    Texts with holes (see ``tokenizing_numba``) get ``n_holes[i] > 0`` and
    their ids, with -1 markers, at ``ids[text_off[i]:][:counts[i]]``; their
    ``out`` rows are left for the caller.
    """
    n = out.shape[0]
    for part in nb.prange(n_parts):
        _embed_range(buf, text_off, part * n // n_parts, (part + 1) * n // n_parts, cls, low, added, vocab,
                     max_len, keep_end, table, scales, levels, alpha, bias, dyt, out, ids, counts,
                     hole_a, hole_b, n_holes)


@nb.njit(cache=True, nogil=True)
def embed_serial(buf, text_off, cls, low, added, vocab, max_len, keep_end,
                 table, scales, levels, alpha, bias, dyt, out, ids, counts, hole_a, hole_b, n_holes, n_parts):
    """Single-threaded :func:`embed_parallel`."""
    _embed_range(buf, text_off, 0, out.shape[0], cls, low, added, vocab, max_len, keep_end,
                 table, scales, levels, alpha, bias, dyt, out, ids, counts, hole_a, hole_b, n_holes)


@nb.njit(cache=True, nogil=True)
def scale_normalize(out, beta, dyt, normalize):
    """After NumPy's tanh: ``out *= beta``, then L2-normalize each row (in place)."""
    dim = out.shape[1]
    for i in range(out.shape[0]):
        row = out[i]
        if dyt:
            for j in range(dim):
                row[j] *= beta[j]
        if normalize:
            total = np.float32(0.0)
            for j in range(dim):
                total += row[j] * row[j]
            norm = max(np.sqrt(total), np.float32(1e-12))  # as torch's F.normalize
            for j in range(dim):
                row[j] /= norm
