"""Jitted pooling: bag mean + the affine part of DyT, one text a row.

Every kernel reads only the first ``dim`` columns of the table: DyT is
elementwise, so ``y[:dim]`` depends on nothing else and the cost of a text
scales with ``dim``. Rows are summed in float32 in token order, like
``torch.nn.EmbeddingBag(mode="mean")`` and the NumPy reference
(``sse_np.engine.reference``), so both back-ends give the same bits.

Kernels are serial and release the GIL; the driver
(``sse_np.engine.numba_backend``) runs them on ranges of texts from a
Python thread pool. They take the named tuples ``TableArrays`` and
``Affine`` and run as plain Python under ``NUMBA_DISABLE_JIT=1``.

The gather loop is chosen by the table's storage dtype when a kernel is
compiled, so only the storage kind a model uses is ever compiled:

* float32  -- plain rows;
* uint16   -- float16 codes, widened exactly: compiled, by LLVM's
              ``fpext half -> float`` (one F16C instruction per 8 or 16
              codes on x86); in Python, with integer shifts and one
              multiply (tables are known finite);
* int16    -- bfloat16 codes: the upper half of a float32;
* uint8    -- packed 4-bit codes, high nibble = even column,
              ``w = levels[q] * scale`` as the reference dequantizes.

Compiled, every loop also asks for the row a few tokens ahead
(``prefetch_row``): the next row's address depends on the token id, so
the hardware cannot guess it, and when the table misses the caches the
gather otherwise waits on memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import from_dtype

from .wordpiece import tokenize_text


class TableArrays(NamedTuple):
    """A table in storage form for the kernels (``scales``/``levels`` unused but for 4-bit)."""

    data: np.ndarray
    scales: np.ndarray
    levels: np.ndarray


class Affine(NamedTuple):
    """``alpha * mean + bias`` when ``on``; the plain mean (StaticEmbedding) otherwise."""

    alpha: np.ndarray
    bias: np.ndarray
    on: bool


@intrinsic
def _prefetch(typingctx, address):
    """Ask the CPU to bring the cache line at ``address`` (an integer) in: LLVM's ``prefetch`` (jitted code only)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.inttoptr(args[0], i8p), i32(0), i32(3), i32(1)])  # read, keep in all caches, data
        return context.get_dummy_value()

    return types.none(address), codegen


# Rows are requested this many tokens ahead. Which row comes next is
# unknowable to the hardware prefetcher, and the table (15-31 MB) misses
# the caches often, most of all beside other busy processes: on a real
# token stream the float16 gather ran 1.3x faster (65 -> 49 ns a token;
# 2, 4 and 8 ahead were within noise of each other, every second line only
# was slower).
_AHEAD = 4


def prefetch_row(data, ids, t, stop, nbytes):
    """Request the first ``nbytes`` of the row of token ``t + _AHEAD``, if the bag has one.

    Compiled code only (overload below); plain Python has nothing to gain from it.
    """


@overload(prefetch_row, inline="always")
def _prefetch_row_jit(data, ids, t, stop, nbytes):
    def impl(data, ids, t, stop, nbytes):
        if t + _AHEAD < stop:
            address = data.ctypes.data + ids[t + _AHEAD] * data.strides[0]
            for line in range(0, nbytes, 64):
                _prefetch(address + line)

    return impl


def _add_f32(table, ids, start, stop, dim, acc, bits):
    for t in range(start, stop):
        prefetch_row(table.data, ids, t, stop, 4 * dim)
        row = table.data[ids[t]]
        for j in range(dim):
            acc[j] += row[j]


def _add_f16(table, ids, start, stop, dim, acc, bits):
    # Sign to bit 31, exponent+mantissa to bits 13..27, then scale by 2**112
    # to rebias the exponent (15 -> 127): exact for every finite half,
    # subnormals included. NaN/inf were refused at load.
    as_float = bits.view(np.float32)
    rebias = np.float32(2.0**112)
    for t in range(start, stop):
        row = table.data[ids[t]]
        for j in range(dim):
            h = np.uint32(row[j])
            bits[j] = ((h & np.uint32(0x8000)) << np.uint32(16)) | ((h & np.uint32(0x7FFF)) << np.uint32(13))
        for j in range(dim):
            acc[j] += as_float[j] * rebias


@intrinsic
def _half_to_float(typingctx, code):
    """float16 code (uint16) -> float32, exactly, as one LLVM ``fpext`` (jitted code only)."""
    if code != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


def _add_f16_jit(table, ids, start, stop, dim, acc, bits):
    # One fused loop: the shift-and-multiply version above stores and
    # reloads a scratch row per token and pooled 1.7x slower.
    for t in range(start, stop):
        prefetch_row(table.data, ids, t, stop, 2 * dim)
        row = table.data[ids[t]]
        for j in range(dim):
            acc[j] += _half_to_float(row[j])


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float32 whose bits are ``bits`` (uint32), as one LLVM ``bitcast`` (jitted code only)."""
    if bits != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


def _add_bf16_jit(table, ids, start, stop, dim, acc, bits):
    for t in range(start, stop):
        prefetch_row(table.data, ids, t, stop, 2 * dim)
        row = table.data[ids[t]]
        for j in range(dim):
            acc[j] += _bits_to_float(np.uint32(np.uint32(np.uint16(row[j])) << np.uint32(16)))


def _add_bf16(table, ids, start, stop, dim, acc, bits):
    as_float = bits.view(np.float32)
    for t in range(start, stop):
        row = table.data[ids[t]]
        for j in range(dim):
            bits[j] = np.uint32(np.uint16(row[j])) << np.uint32(16)
        for j in range(dim):
            acc[j] += as_float[j]


def _add_q4(table, ids, start, stop, dim, acc, bits):
    half = dim // 2
    levels = table.levels
    for t in range(start, stop):
        prefetch_row(table.data, ids, t, stop, half + 1)
        r = ids[t]
        row = table.data[r]
        s = table.scales[r]
        for k in range(half):
            b = row[k]
            acc[2 * k] += levels[b >> 4] * s
            acc[2 * k + 1] += levels[b & 15] * s
        if dim & 1:
            acc[dim - 1] += levels[row[half] >> 4] * s


_BY_DTYPE = {
    np.dtype(np.float32): _add_f32,
    np.dtype(np.uint16): _add_f16,
    np.dtype(np.int16): _add_bf16,
    np.dtype(np.uint8): _add_q4,
}
# Jitted code uses the fused float16/bfloat16 loops: the same sums in the same order.
_JIT_BY_DTYPE = {**_BY_DTYPE, np.dtype(np.uint16): _add_f16_jit, np.dtype(np.int16): _add_bf16_jit}


def add_rows(table, ids, start, stop, dim, acc, bits):
    """Add rows ``ids[start:stop]`` (first ``dim`` columns) into ``acc``; ``bits`` is uint32 scratch.

    In Python (``NUMBA_DISABLE_JIT``) this dispatches on the dtype at run
    time; jitted code picks the loop when it is compiled (overload below).
    """
    _BY_DTYPE[table.data.dtype](table, ids, start, stop, dim, acc, bits)


@overload(add_rows)
def _add_rows_jit(table, ids, start, stop, dim, acc, bits):
    dtype = table.types[0].dtype  # TableArrays.data
    for numpy_dtype, impl in _JIT_BY_DTYPE.items():
        if dtype == from_dtype(numpy_dtype):
            return impl
    return None


@nb.njit(cache=True)
def _mean_affine(count, affine, row):
    """Row sum in ``row`` -> mean -> ``alpha * mean + bias`` (the part of DyT before tanh).

    tanh, beta and the normalization run afterwards on the whole batch
    (NumPy's float32 tanh is vectorized; a scalar tanh here cost more than
    the gather for short texts).
    """
    inv = np.float32(1.0) / np.float32(count) if count > 0 else np.float32(0.0)
    if affine.on:
        for j in range(row.shape[0]):
            row[j] = affine.alpha[j] * (row[j] * inv) + affine.bias[j]
    else:
        for j in range(row.shape[0]):
            row[j] *= inv


@nb.njit(cache=True, nogil=True)
def pool_range(table, affine, ids, starts, stops, lo, hi, out):
    """Text ``i`` in ``lo..hi-1`` pools ``ids[starts[i]:stops[i]]`` into ``out[i]`` (before tanh)."""
    bits = np.empty(out.shape[1], dtype=np.uint32)  # one scratch row per range, not per text
    for i in range(lo, hi):
        row = out[i]
        row[:] = 0.0
        add_rows(table, ids, starts[i], stops[i], out.shape[1], row, bits)
        _mean_affine(stops[i] - starts[i], affine, row)


@nb.njit(cache=True, nogil=True)
def embed_range(
    buf, text_off, lo, hi, classes, vocab, max_len, keep_end, table, affine, out, ids, counts, hole_a, hole_b, n_holes
):
    """Tokenize text ``i`` in ``lo..hi-1`` (UTF-8 ``buf[text_off[i]:text_off[i + 1]]``) and pool it into ``out[i]``.

    Texts with holes (see ``wordpiece``) get ``n_holes[i] > 0`` and their
    ids, with -1 markers, at ``ids[text_off[i]:][:counts[i]]``; their
    ``out`` rows are zeros, left for the caller.
    """
    # Two loops over the range, not one fused loop: with the WordPiece and
    # the gather in one loop body, documents pooled 1.3-1.5x slower (the
    # range's ids are still in cache for the second loop).
    word = np.empty(vocab.max_chars + 1, dtype=np.uint8)  # scratch per range of texts, not per text
    hashes = np.empty(vocab.max_chars + 1, dtype=np.uint64)
    for i in range(lo, hi):
        a = text_off[i]
        counts[i], n_holes[i] = tokenize_text(
            buf, a, text_off[i + 1], classes, vocab, ids, a, hole_a, hole_b, a, word, hashes
        )
    bits = np.empty(out.shape[1], dtype=np.uint32)
    for i in range(lo, hi):
        if n_holes[i]:
            out[i, :] = 0.0  # defined values until the caller completes this text with tokenizers' ids
            continue
        start = text_off[i]
        stop = start + counts[i]
        if 0 <= max_len < counts[i]:
            if keep_end:
                start = stop - max_len
            else:
                stop = start + max_len
        row = out[i]
        row[:] = 0.0
        add_rows(table, ids, start, stop, out.shape[1], row, bits)
        _mean_affine(stop - start, affine, row)


@nb.njit(cache=True, nogil=True)
def scale_normalize(out, lo, hi, beta, dyt, normalize):
    """After tanh, rows ``lo..hi-1``: ``row *= beta``, then L2-normalize (in place).

    The squares are added one after another in float32, as the NumPy
    reference does, so both give the same bits.
    """
    dim = out.shape[1]
    for i in range(lo, hi):
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
