"""Jitted pooling: token ids -> bag mean -> head (DyT or none) -> L2 normalization, one text a row.

Every kernel reads only the first ``dim`` columns of the table: the head
is elementwise, so ``y[:dim]`` depends on nothing else and the cost of a
text scales with ``dim``. Rows are summed in float32 in token order, like
``torch.nn.EmbeddingBag(mode="mean")`` and the NumPy back-end
(``sse_np.engine.numpy_backend``), with which these kernels agree bit for
bit: both compute tanh and the norm with the same float32 operations in
the same order (``sse_np.engine.dyt``).

A model's arrays reach the kernels as three named tuples:

* ``TableArrays`` -- the table in storage form;
* ``Bag``  -- how a text's token ids become rows: an optional id -> row
  map (vocabulary quantization), per-token weights, a token id to drop
  (model2vec drops its unknown token);
* ``Head`` -- ``beta * tanh(alpha * mean + bias)`` (DyT) or the plain mean.

The gather loop is chosen by the table's storage dtype when a kernel is
compiled, so only the storage kind a model uses is ever compiled:

* float32  -- plain rows;
* uint16   -- float16 codes, widened exactly (F16C on x86);
* int16    -- bfloat16 codes: the upper half of a float32;
* int8     -- integer codes (model2vec's int8 tables), widened exactly;
* uint8    -- packed 4-bit codes, high nibble = even column,
              ``w = levels[q] * scale`` as the reference dequantizes.

Compiled, every loop also asks for the row a few tokens ahead: the next
row's address depends on the token id, so the hardware cannot guess it,
and when the table misses the caches the gather otherwise waits on memory
(65 -> 49 ns a token on a real token stream, float16).

Kernels are serial and release the GIL; several threads run one kernel
call each on the same arrays, taking items from a shared counter
(``sse_np.engine.parallel``). They run as plain Python under
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np
from numba.extending import overload
from numba.np.numpy_support import from_dtype

from .dyt import LANES
from .dyt_kernels import finish_row
from .intrinsics import bits_to_float, fetch_add, half_to_float, prefetch, unowned
from .wordpiece import FALLBACK, tokenize_texts


class TableArrays(NamedTuple):
    """A table in storage form for the kernels (``scales``/``levels`` unused but for 4-bit)."""

    data: np.ndarray
    scales: np.ndarray
    levels: np.ndarray


class Bag(NamedTuple):
    """Token ids -> rows: ``rows[id]`` if ``mapped`` (else the id), times ``weights[id]`` if ``weighted``."""

    rows: np.ndarray  # int32[V]
    weights: np.ndarray  # float32[V]
    mapped: bool
    weighted: bool
    drop_id: np.int64  # a token id removed before pooling; -1: none


class Head(NamedTuple):
    """After the mean: ``beta * tanh(alpha * x + bias)`` when ``dyt``, else ``x`` (StaticEmbedding)."""

    alpha: np.ndarray
    bias: np.ndarray
    beta: np.ndarray
    dyt: bool


# Rows are requested this many tokens ahead (2, 4 and 8 were within noise
# of each other; every second line only was slower).
_AHEAD = 4

# The loops take the named tuples' arrays one by one: reading an array out
# of a tuple inside a loop, or handing a tuple to an inlined helper, costs a
# reference-count update per token (measured: 4x slower).


@nb.njit(inline="always")
def _prefetch_row(data, rows, mapped, ids, t, stop, nbytes):
    """Request the first ``nbytes`` of the row of token ``t + _AHEAD``, if the bag has one."""
    if t + _AHEAD < stop:
        tok = ids[t + _AHEAD]
        address = data.ctypes.data + np.int64(rows[tok] if mapped else tok) * data.strides[0]
        for line in range(0, nbytes, 64):
            prefetch(address + line)


# Each loop multiplies by the token's weight: 1.0 for unweighted bags,
# which is exact, so one loop serves both (and the NumPy back-end, which
# weights the gathered rows, gives the same bits).
def _add_f32(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    for t in range(start, stop):
        _prefetch_row(data, rows, mapped, ids, t, stop, 4 * dim)
        tok = ids[t]
        row = data[rows[tok] if mapped else tok]
        w = weights[tok] if weighted else np.float32(1.0)
        for j in range(dim):
            acc[j] += row[j] * w


def _add_f16(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    for t in range(start, stop):
        _prefetch_row(data, rows, mapped, ids, t, stop, 2 * dim)
        tok = ids[t]
        row = data[rows[tok] if mapped else tok]
        w = weights[tok] if weighted else np.float32(1.0)
        for j in range(dim):
            acc[j] += half_to_float(row[j]) * w


def _add_bf16(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    for t in range(start, stop):
        _prefetch_row(data, rows, mapped, ids, t, stop, 2 * dim)
        tok = ids[t]
        row = data[rows[tok] if mapped else tok]
        w = weights[tok] if weighted else np.float32(1.0)
        for j in range(dim):
            acc[j] += bits_to_float(np.uint32(np.uint32(np.uint16(row[j])) << np.uint32(16))) * w


def _add_i8(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    for t in range(start, stop):
        _prefetch_row(data, rows, mapped, ids, t, stop, dim)
        tok = ids[t]
        row = data[rows[tok] if mapped else tok]
        w = weights[tok] if weighted else np.float32(1.0)
        for j in range(dim):
            acc[j] += np.float32(row[j]) * w


def _add_q4(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    half = dim // 2
    for t in range(start, stop):
        _prefetch_row(data, rows, mapped, ids, t, stop, half + 1)
        tok = ids[t]
        r = rows[tok] if mapped else tok
        row, s = data[r], scales[r]
        w = weights[tok] if weighted else np.float32(1.0)
        for k in range(half):  # (level * scale) * weight: the dequantized row, then weighted, as NumPy does
            b = row[k]
            acc[2 * k] += levels[b >> 4] * s * w
            acc[2 * k + 1] += levels[b & 15] * s * w
        if dim & 1:
            acc[dim - 1] += levels[row[half] >> 4] * s * w


_BY_DTYPE = {
    np.dtype(np.float32): _add_f32,
    np.dtype(np.uint16): _add_f16,
    np.dtype(np.int16): _add_bf16,
    np.dtype(np.int8): _add_i8,
    np.dtype(np.uint8): _add_q4,
}


def add_rows(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    """Add the rows of tokens ``ids[start:stop]`` (first ``dim`` columns, weighted) into ``acc``.

    In Python (``NUMBA_DISABLE_JIT``) this dispatches on the dtype at run
    time; jitted code picks the loop when it is compiled (overload below).
    """
    _BY_DTYPE[data.dtype](data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc)


@overload(add_rows, inline="always")
def _add_rows_jit(data, scales, levels, rows, weights, mapped, weighted, ids, start, stop, dim, acc):
    for numpy_dtype, impl in _BY_DTYPE.items():
        if data.dtype == from_dtype(numpy_dtype):
            return impl
    return None


@nb.njit(cache=True, inline="always", error_model="numpy")
def _drop(ids, start, stop, drop_id):
    """Remove ``drop_id`` from ``ids[start:stop]`` in place; the new stop."""
    out = start
    for t in range(start, stop):
        if ids[t] != drop_id:
            ids[out] = ids[t]
            out += 1
    return out


@nb.njit(cache=True, error_model="numpy")
def _pool_one(table, bag, head, ids, start, stop, max_tokens, normalize, row, lanes):
    """One text: its tokens ``ids[start:stop]`` (after the tokenizer's own truncation) -> ``row``.

    ``bag.drop_id`` is removed (in place), then the first ``max_tokens`` kept
    (-1: all), as model2vec does. Inlined into the kernels, whose tuples
    hold unowned arrays (``intrinsics.unowned``): no reference counting per text.
    """
    if bag.drop_id >= 0:
        stop = _drop(ids, start, stop, bag.drop_id)
    if 0 <= max_tokens < stop - start:
        stop = start + max_tokens
    row[:] = 0.0
    add_rows(
        table.data,
        table.scales,
        table.levels,
        bag.rows,
        bag.weights,
        bag.mapped,
        bag.weighted,
        ids,
        start,
        stop,
        row.shape[0],
        row,
    )
    finish_row(row, stop - start, head.alpha, head.bias, head.beta, head.dyt, normalize, lanes)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def pool_items(table, bag, head, ids, starts, stops, item_off, counter, max_tokens, normalize, out):
    """Texts with ids already made (``tokenizers``): text ``i`` pools ``ids[starts[i]:stops[i]]`` into ``out[i]``.

    Items are taken from ``counter`` until none is left (one call per thread).
    """
    table, bag, head, ids, starts, stops, out = (
        unowned(table),
        unowned(bag),
        unowned(head),
        unowned(ids),
        unowned(starts),
        unowned(stops),
        unowned(out),
    )
    lanes = np.empty(LANES, dtype=np.float32)
    n_items = item_off.shape[0] - 1
    while True:
        k = fetch_add(counter, 1)
        if k >= n_items:
            return
        for i in range(item_off[k], item_off[k + 1]):
            _pool_one(table, bag, head, ids, starts[i], stops[i], max_tokens, normalize, out[i], lanes)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def embed_items(
    buf,
    text_off,
    item_off,
    counter,
    room,
    classes,
    uni,
    vocab,
    trunc,
    table,
    bag,
    head,
    limits,
    normalize,
    out,
    status,
    tokens,
    token_counts,
):
    """Tokenize and pool texts item by item, items taken from ``counter`` until none is left (one call per thread).

    Text ``i`` is ``buf[text_off[i]:text_off[i + 1]]`` (UTF-8); item ``k``
    holds texts ``item_off[k] .. item_off[k + 1] - 1``; ``room`` is at least
    the bytes of the largest item (the ids scratch). ``trunc`` is the
    tokenizer's truncation ``(max_length or -1, keep the end)``; ``limits``
    is ``(max_tokens, max_chars)``, -1 for none. ``status[i]`` becomes 1
    for a text only ``tokenizers`` can tokenize exactly (its row is left
    zero for the caller), else 0.

    With a non-empty ``tokens`` (``sse_np``'s ``tokenize``) nothing is
    pooled: text ``i``'s ids, truncated as the tokenizer truncates, go to
    ``tokens[text_off[i]:]`` and their number to ``token_counts[i]``.
    """
    # Every array shared by the threads is viewed without an owner: no
    # thread updates a reference count another thread's core holds.
    buf, text_off, item_off, classes, uni, vocab = (
        unowned(buf),
        unowned(text_off),
        unowned(item_off),
        unowned(classes),
        unowned(uni),
        unowned(vocab),
    )
    table, bag, head, out, status = unowned(table), unowned(bag), unowned(head), unowned(out), unowned(status)
    tokens, token_counts = unowned(tokens), unowned(token_counts)
    ids_only = tokens.shape[0] > 0
    ids = np.empty(room, dtype=np.int32)  # scratch per thread, not per text
    lanes = np.empty(LANES, dtype=np.float32)
    n_items = item_off.shape[0] - 1
    most = 1
    for k in range(n_items):
        most = max(most, item_off[k + 1] - item_off[k])
    counts = np.empty(most, dtype=np.int64)  # per text of the item: ids, or FALLBACK
    max_len, keep_end = trunc
    max_tokens, max_chars = limits
    while True:
        k = fetch_add(counter, 1)
        if k >= n_items:
            return
        lo, hi = item_off[k], item_off[k + 1]
        base = text_off[lo]
        # Two passes over the item, not one fused loop: with the WordPiece and
        # the gather in one loop body, documents pooled 1.3-1.5x slower (the
        # item's ids are still in cache for the second pass).
        tokenize_texts(buf, text_off, lo, hi, base, classes, uni, vocab, ids, counts, np.bool_(False), max_chars)
        for i in range(lo, hi):
            n = counts[i - lo]
            if n == FALLBACK:
                status[i] = 1
                if not ids_only:
                    out[i, :] = 0.0
                continue
            status[i] = 0
            start = text_off[i] - base
            stop = start + n
            if 0 <= max_len < n:
                if keep_end:
                    start = stop - max_len
                else:
                    stop = start + max_len
            if ids_only:
                at = text_off[i]
                for t in range(start, stop):
                    tokens[at + t - start] = ids[t]
                token_counts[i] = stop - start
                continue
            _pool_one(table, bag, head, ids, start, stop, max_tokens, normalize, out[i], lanes)
