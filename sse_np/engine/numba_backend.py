"""The numba back-end: serial jitted kernels run on ranges of texts by a Python thread pool.

Each kernel is compiled once, serial, for the storage kind in use
(``pooling``, ``wordpiece``); it releases the GIL, so the threads of
``concurrent.futures`` run it truly in parallel. There is no OpenMP/TBB
layer: nothing to spin, nothing that breaks a forked child, and a call
that needs one thread never wakes another.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..checkpoint.q4 import Q4_LEVELS
from ..checkpoint.read import Table
from ..tokenizing import TextTokenizer, utf8, wordpiece_tables
from . import pooling, wordpiece
from .pooling import Affine, TableArrays

# Below this much work (bytes or tokens x dims) a second thread costs more than it saves.
SERIAL_WORK = 1 << 20
_PARTS_PER_THREAD = 8  # ranges a thread, taken dynamically: uneven texts still balance
_DUMMY = np.zeros(1, dtype=np.float32)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="sse_np")
    return _executor


def _forget_pool_in_child() -> None:
    # A forked child has none of the parent's worker threads; a new pool starts on demand.
    global _executor, _executor_lock
    _executor, _executor_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def run_ranges(fn, bounds: np.ndarray, threads: int) -> None:
    """``fn(lo, hi)`` for every consecutive pair of ``bounds``, on ``threads`` threads (this one included).

    Each thread takes the next range as it finishes one (dynamic scheduling): uneven texts
    then cannot leave one core idle while the other still has a long range to go.
    """
    pairs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    threads = min(threads, len(pairs))
    if threads <= 1:
        for a, b in pairs:
            fn(a, b)
        return
    queue = iter(pairs)
    take = threading.Lock()
    errors: list[BaseException] = []

    def drain() -> None:
        while not errors:
            with take:
                pair = next(queue, None)
            if pair is None:
                return
            try:
                fn(*pair)
            except BaseException as exc:  # the others stop taking ranges; the first error is raised
                errors.append(exc)

    futures = [_pool().submit(drain) for _ in range(threads - 1)]
    drain()
    for f in futures:  # always wait: every range writes into the caller's arrays
        f.result()
    if errors:
        raise errors[0]


def _entry_point(dispatcher, args: tuple):
    """The machine code compiled for exactly these argument types, or None.

    Calling it skips numba's per-call type dispatch, which for the named
    tuples costs ~5 µs a call, as much as pooling a short query. Only for
    calls whose argument types never change (the caller checks what could).
    """
    try:
        key = tuple(dispatcher.typeof_pyval(a) for a in args)
        return dispatcher.overloads[key].entry_point
    except (AttributeError, KeyError):  # NUMBA_DISABLE_JIT: a plain function
        return None


def _wordpiece_buffers(texts: list[str], start: int):
    """The texts' UTF-8 bytes and offsets, and the jitted WordPiece's output arrays (one slot per byte:
    a text never has more tokens or holes than bytes)."""
    data, text_off = utf8(texts, start)
    n, size = len(texts), len(data)
    return (
        data,
        text_off,
        np.frombuffer(data, dtype=np.uint8),
        np.empty(size, dtype=np.int32),
        np.empty(n, dtype=np.int64),
        np.empty(size, dtype=np.int64),
        np.empty(size, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )


def _serial(n: int, work: int, threads: int) -> bool:
    """Whether one range on the calling thread is best (small work, one text or one thread)."""
    return threads <= 1 or n <= 1 or work < SERIAL_WORK


def _bounds(weights_cum: np.ndarray, n: int, parts: int) -> np.ndarray:
    """Split ``n`` items into ``parts`` ranges of about equal weight (``weights_cum``: n + 1 running totals)."""
    if parts <= 1 or n <= 1:
        return np.array([0, n], dtype=np.int64)
    targets = np.linspace(0, weights_cum[-1], parts + 1)
    bounds = np.searchsorted(weights_cum, targets[1:-1], side="left")
    return np.unique(np.concatenate([[0], np.clip(bounds, 0, n), [n]])).astype(np.int64)


class NumbaBackend:
    """Kernels bound to one model's arrays.

    Parameters
    ----------
    table : Table
    dyt : (alpha, beta, bias) or None
    tokenizer : TextTokenizer
    """

    def __init__(self, table: Table, dyt, tokenizer: TextTokenizer) -> None:
        self.table = TableArrays(table.data, table.scales if table.scales is not None else _DUMMY, Q4_LEVELS)
        self.affine = Affine(dyt[0], dyt[2], True) if dyt is not None else Affine(_DUMMY, _DUMMY, False)
        self.beta = dyt[1] if dyt is not None else _DUMMY
        self.dyt = dyt
        self.tokenizer = tokenizer
        self.tables = wordpiece_tables(tokenizer.fast_spec) if tokenizer.fast_spec is not None else None
        self._embed_entry = None  # embed_range's machine code for this model's argument types

    @property
    def fast(self) -> bool:
        """Whether the jitted WordPiece tokenizes (the plain BERT configuration)."""
        return self.tables is not None

    # -- the steps ---------------------------------------------------------
    def embed(self, texts: list[str], start: int, out: np.ndarray, normalize: bool, threads: int) -> None:
        """Texts -> vectors in ``out`` (n, dim): tokenize, pool, DyT, normalize."""
        if self.tables is None or not texts:
            ids, offsets = self.tokenizer(texts, start, threads)
            self.pool(ids, *self.tokenizer.window(offsets[:-1], offsets[1:]), out, threads)
            self.finish(out, normalize, threads)
            return
        data, text_off, buf, ids, counts, hole_a, hole_b, n_holes = _wordpiece_buffers(texts, start)
        n, size = len(texts), len(data)
        max_len, keep_end = self.tokenizer.truncation
        classes, vocab = self.tables
        table, affine = self.table, self.affine

        # Work estimate: ~4.5 bytes a token, each token adds dim floats, each byte is scanned.
        if _serial(n, size * (out.shape[1] // 4 + 8), threads):
            args = (
                buf,
                text_off,
                0,
                n,
                classes,
                vocab,
                max_len,
                keep_end,
                table,
                affine,
                out,
                ids,
                counts,
                hole_a,
                hole_b,
                n_holes,
            )
            if self._embed_entry is not None and out.flags.c_contiguous and out.flags.writeable:
                self._embed_entry(*args)  # every other argument is made here, always of the same type
            else:
                pooling.embed_range(*args)
                if out.flags.c_contiguous and out.flags.writeable:
                    self._embed_entry = _entry_point(pooling.embed_range, args)
            finished = False
        else:

            def work(lo: int, hi: int) -> None:
                pooling.embed_range(
                    buf,
                    text_off,
                    lo,
                    hi,
                    classes,
                    vocab,
                    max_len,
                    keep_end,
                    table,
                    affine,
                    out,
                    ids,
                    counts,
                    hole_a,
                    hole_b,
                    n_holes,
                )
                self._finish_rows(out, lo, hi, normalize)  # while the rows are in cache, and in parallel

            run_ranges(work, _bounds(text_off, n, threads * _PARTS_PER_THREAD), threads)
            finished = True
        rest = np.flatnonzero(n_holes)
        if rest.size:  # texts with holes: splice tokenizers' ids in, then pool them
            sub_ids, offsets = self._fill_holes(
                data,
                texts,
                start,
                threads,
                ids,
                text_off[rest],
                text_off[rest] + counts[rest],
                hole_a,
                hole_b,
                n_holes[rest],
            )
            sub = np.empty((rest.size, out.shape[1]), dtype=np.float32)
            self.pool(sub_ids, *self.tokenizer.window(offsets[:-1], offsets[1:]), sub, threads)
            if finished:
                self.finish(sub, normalize, threads)
            out[rest] = sub
        if not finished:
            self.finish(out, normalize, threads)

    def pool(self, ids, starts, stops, out: np.ndarray, threads: int) -> None:
        """``out[i] <- alpha * mean + bias`` of bag ``ids[starts[i]:stops[i]]`` (before tanh)."""
        n = out.shape[0]
        if n == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        stops = np.ascontiguousarray(stops, dtype=np.int64)
        table, affine = self.table, self.affine
        lengths = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=lengths[1:])
        if _serial(n, int(lengths[-1]) * out.shape[1], threads):
            pooling.pool_range(table, affine, ids, starts, stops, 0, n, out)
            return

        def work(lo: int, hi: int) -> None:
            pooling.pool_range(table, affine, ids, starts, stops, lo, hi, out)

        run_ranges(work, _bounds(lengths, n, threads * _PARTS_PER_THREAD), threads)

    def finish(self, out: np.ndarray, normalize: bool, threads: int) -> None:
        """In place: ``beta * tanh(.)``, then L2-normalize (NumPy's vectorized tanh, then one jitted pass)."""
        n = out.shape[0]
        if _serial(n, n * out.shape[1] * 4, threads):
            self._finish_rows(out, 0, n, normalize)
            return
        run_ranges(
            lambda lo, hi: self._finish_rows(out, lo, hi, normalize),
            _bounds(np.arange(n + 1, dtype=np.int64), n, threads * _PARTS_PER_THREAD),
            threads,
        )

    def _finish_rows(self, out: np.ndarray, lo: int, hi: int, normalize: bool) -> None:
        """``finish`` for rows ``lo..hi-1`` (NumPy's tanh releases the GIL too)."""
        if self.dyt is not None:
            rows = out[lo:hi]
            np.tanh(rows, out=rows)
        elif not normalize:
            return
        pooling.scale_normalize(out, lo, hi, self.beta, self.dyt is not None, normalize)

    def tokenize(self, texts: list[str], start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (EmbeddingBag form) by the jitted WordPiece, holes through ``tokenizers``."""
        if self.tables is None or not texts:
            return self.tokenizer(texts, start, threads)
        data, text_off, buf, ids, counts, hole_a, hole_b, n_holes = _wordpiece_buffers(texts, start)
        n, size = len(texts), len(data)
        classes, vocab = self.tables

        if _serial(n, size * 8, threads):
            wordpiece.tokenize_range(buf, text_off, 0, n, classes, vocab, ids, counts, hole_a, hole_b, n_holes)
        else:

            def work(lo: int, hi: int) -> None:
                wordpiece.tokenize_range(buf, text_off, lo, hi, classes, vocab, ids, counts, hole_a, hole_b, n_holes)

            run_ranges(work, _bounds(text_off, n, threads * _PARTS_PER_THREAD), threads)
        starts = text_off[:-1]
        stops = starts + counts
        if n_holes.any():
            ids, offsets = self._fill_holes(data, texts, start, threads, ids, starts, stops, hole_a, hole_b, n_holes)
            starts, stops = offsets[:-1], offsets[1:]
        starts, stops = self.tokenizer.window(starts, stops)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=offsets[1:])
        if n and (starts[0] != 0 or not np.array_equal(starts[1:], stops[:-1])):
            ids = np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())]).astype(np.int32)
        else:
            ids = ids[: offsets[-1]]
        return ids, offsets

    # -- helpers -------------------------------------------------------------
    def _fill_holes(self, data, texts, start, threads, ids, starts, stops, hole_a, hole_b, n_holes):
        """Put the ids ``tokenizers`` gives each hole chunk (through the cache) in place of its marker.

        Returns the compacted ``(ids, offsets)``, not truncated.
        """
        first = np.cumsum(n_holes) - n_holes
        where = np.repeat(starts - first, n_holes) + np.arange(int(first[-1] + n_holes[-1]))
        view = memoryview(data)  # bytes, or an Arrow column's buffer
        chunks = [str(view[a:b], "utf-8") for a, b in zip(hole_a[where].tolist(), hole_b[where].tolist())]
        get = self.tokenizer.chunk_ids(chunks, texts, start, threads)
        pieces = list(map(get, chunks))
        hole_off = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum([len(p) // 4 for p in pieces], out=hole_off[1:])
        hole_ids = np.frombuffer(b"".join(pieces), dtype=np.int32).copy()
        return wordpiece.splice(ids, np.ascontiguousarray(starts), np.ascontiguousarray(stops), hole_ids, hole_off)
