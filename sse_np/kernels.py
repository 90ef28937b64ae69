"""Pooling kernels: token ids -> bag mean -> DyT -> (normalized) vectors.

Two interchangeable back-ends compute the same numbers (to float32
rounding):

* numba (default): fused, parallel over texts, see ``kernels_numba``;
* pure NumPy: used when numba is not installed, or when the environment
  variable ``SSE_NP_DISABLE_NUMBA=1`` is set, so slim deployments can drop
  numba and llvmlite.

numba is imported lazily, on the first call, so ``import sse_np`` stays fast.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .loading import Q4_LEVELS, Table

_EPS = np.float32(1e-12)
_BLOCK_VALUES = 1 << 22  # gathered floats per NumPy block (16 MB): bounded memory
# Below this much work (tokens x dims) a parallel launch costs more than it saves.
_SERIAL_WORK = 1 << 20

_lock = threading.Lock()
_numba_module = None
_numba_state = "unknown"  # "unknown" | "on" | "off"


def numba_enabled() -> bool:
    """Whether the numba back-end is in use (installed and not switched off)."""
    global _numba_module, _numba_state
    if _numba_state == "unknown":
        with _lock:
            if _numba_state == "unknown":
                if os.environ.get("SSE_NP_DISABLE_NUMBA", "").strip().lower() in ("1", "true", "yes", "on"):
                    _numba_state = "off"
                else:
                    # GNU OpenMP threads spin after each parallel region by
                    # default, stealing the CPU the tokenizer needs next
                    # (parallel launches took ms on a busy 2-core machine).
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    try:
                        from . import kernels_numba

                        _numba_module, _numba_state = kernels_numba, "on"
                    except ImportError:
                        _numba_state = "off"
    return _numba_state == "on"


def backend() -> str:
    """Name of the active back-end: ``"numba"`` or ``"numpy"``."""
    return "numba" if numba_enabled() else "numpy"


def run_numba(parallel_fn, serial_fn, parallel: bool, threads: int | None, *args) -> None:
    """Call a numba kernel pair: the serial one, or the parallel one on ``threads`` threads.

    The kernels take one more argument after ``args``: how many ranges to
    split the texts into (8 per thread; the serial kernel ignores it).
    Serial kernels release the GIL and run concurrently from several Python
    threads; parallel launches hold a lock (numba's workqueue layer is not
    re-entrant) and set numba's thread count for the call.
    """
    if not parallel or threads == 1:
        serial_fn(*args, 1)
        return
    import numba

    with _lock:
        threads = min(threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(threads)
        parallel_fn(*args, 8 * threads)


_DUMMY = np.zeros(1, dtype=np.float32)


def pool(
    table: Table,
    dyt: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ids: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    dim: int,
    normalize: bool,
    out: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Embed a tokenized batch.

    Parameters
    ----------
    table : Table
        Embedding table (any storage kind).
    dyt : (alpha, beta, bias) or None
        DyT vectors of length D; None means identity (StaticEmbedding).
    ids : ndarray int32
        Token ids.
    starts, stops : ndarray int64, shape (n,)
        Text ``i`` is the bag ``ids[starts[i]:stops[i]]`` (for EmbeddingBag
        offsets, pass ``offsets[:-1]`` and ``offsets[1:]``).
    dim : int
        Leading dimensions to compute, ``1 <= dim <= D``.
    normalize : bool
        L2-normalize each row of the truncated vector.
    out : ndarray (n, dim) float32, optional
        C-contiguous destination.
    threads : int, optional
        Most threads to use (default: numba's setting); 1 never starts the pool.

    Returns
    -------
    ndarray (n, dim) float32
    """
    n = starts.shape[0]
    if out is None:
        out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    _pool_affine(table, dyt, ids, starts, stops, out, threads)
    finish(out, dyt, normalize)
    return out


def _pool_affine(table, dyt, ids, starts, stops, out, threads) -> None:
    """out <- alpha * mean + bias (or the mean): everything before tanh."""
    if numba_enabled():
        _pool_numba(table, dyt, ids, starts, stops, out, threads)
    else:
        _pool_numpy(table, dyt, ids, starts, stops, out)


def embed(
    tokenizer,
    texts: list[str],
    start: int,
    table: Table,
    dyt: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    normalize: bool,
    out: np.ndarray,
    threads: int | None = None,
) -> np.ndarray:
    """Texts -> vectors in ``out`` (n, dim): tokenize, pool, DyT, normalize.

    With numba and the tokenizer's fast path, tokenizing and pooling run in
    one jitted pass (``kernels_numba.embed_*``); only texts with chunks the
    fast path leaves to ``tokenizers`` (non-ASCII, added tokens) take a
    second step. Otherwise: ``tokenizer.bags`` then :func:`pool`.

    Parameters
    ----------
    tokenizer : sse_np.tokenizing.TextTokenizer
    texts : list of str
        Validated texts; ``start`` is the index of ``texts[0]`` for error messages.
    table, dyt, normalize, threads
        As for :func:`pool`.
    out : ndarray (n, dim) float32
        C-contiguous destination; ``dim`` is the truncation.

    Returns
    -------
    ndarray
        ``out``.
    """
    fast = tokenizer.fast_tables
    if fast is None or not numba_enabled() or not texts:
        ids, starts, stops = tokenizer.bags(texts, start, threads)
        return pool(table, dyt, ids, starts, stops, out.shape[1], normalize, out=out, threads=threads)
    data, text_off = tokenizer.utf8(texts, start)
    n, size = len(texts), len(data)
    ids = np.empty(size, dtype=np.int32)
    hole_a = np.empty(size, dtype=np.int64)
    hole_b = np.empty(size, dtype=np.int64)
    counts = np.empty(n, dtype=np.int64)
    n_holes = np.empty(n, dtype=np.int64)
    scales = table.scales if table.scales is not None else _DUMMY
    alpha, _, bias = dyt if dyt is not None else (_DUMMY, _DUMMY, _DUMMY)
    max_len, keep_end = tokenizer.truncation
    # Work estimate: ~4.5 bytes a token, each token adds dim floats, each byte is scanned.
    parallel = n > 1 and size * (out.shape[1] // 4 + 8) >= _SERIAL_WORK
    run_numba(_numba_module.embed_parallel, _numba_module.embed_serial, parallel, threads,
              np.frombuffer(data, dtype=np.uint8), text_off, fast.cls, fast.low, fast.added, fast.vocab,
              max_len, keep_end, table.data, scales, Q4_LEVELS, alpha, bias, dyt is not None, out,
              ids, counts, hole_a, hole_b, n_holes)
    rest = np.flatnonzero(n_holes)
    if rest.size:  # texts with holes: splice tokenizers' ids in, then pool them
        sub_ids, offsets = tokenizer.fill_holes(data, texts, start, threads, ids, text_off[rest],
                                                text_off[rest] + counts[rest], hole_a, hole_b, n_holes[rest])
        sub = np.empty((rest.size, out.shape[1]), dtype=np.float32)
        _pool_affine(table, dyt, sub_ids, *tokenizer.window(offsets[:-1], offsets[1:]), sub, threads)
        out[rest] = sub
    finish(out, dyt, normalize)
    return out


def finish(out: np.ndarray, dyt, normalize: bool) -> None:
    """In place: ``beta * tanh(.)`` on ``alpha * mean + bias``, then L2-normalize rows.

    tanh is NumPy's (vectorized float32; numba's scalar tanh costs 10x);
    the rest is one jitted pass when numba is on (fewer NumPy calls: this
    is most of the cost of a single short text).
    """
    if numba_enabled():
        if dyt is not None:
            np.tanh(out, out=out)
        _numba_module.scale_normalize(out, dyt[1] if dyt is not None else _DUMMY, dyt is not None, normalize)
        return
    dim = out.shape[1]
    if dyt is not None:
        np.tanh(out, out=out)
        np.multiply(out, dyt[1][:dim], out=out)
    if normalize:
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))
        out /= np.maximum(norms, _EPS)[:, None]


def _pool_numba(table, dyt, ids, starts, stops, out, threads) -> None:
    """out <- alpha * mean + bias (or the mean), fused in one pass over the tokens."""
    scales = table.scales if table.scales is not None else _DUMMY
    alpha, _, bias = dyt if dyt is not None else (_DUMMY, _DUMMY, _DUMMY)
    parallel = ids.shape[0] * out.shape[1] >= _SERIAL_WORK and out.shape[0] > 1
    run_numba(_numba_module.pool_parallel, _numba_module.pool_serial, parallel, threads,
              table.data, scales, Q4_LEVELS, ids, starts, stops, alpha, bias, dyt is not None, out)


def _pool_numpy(table, dyt, ids, starts, stops, out) -> None:
    """out <- alpha * mean + bias (or the mean), NumPy only, in bounded blocks of tokens."""
    if starts.shape[0] > 1 and not np.array_equal(starts[1:], stops[:-1]):
        # Bags not back to back (truncated or spliced): copy them together first.
        ids = np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())])
        counts = stops - starts
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        stops = starts + counts
    offsets = np.append(starts, stops[-1:]) - starts[0]
    ids = ids[starts[0] : stops[-1]]
    n, dim = out.shape
    counts = np.diff(offsets)
    out[:] = 0.0
    step = max(1, _BLOCK_VALUES // dim)
    for t0 in range(0, ids.shape[0], step):
        t1 = min(t0 + step, ids.shape[0])
        rows = table.rows(ids[t0:t1], dim)
        first = int(np.searchsorted(offsets, t0, side="right")) - 1
        last = int(np.searchsorted(offsets, t1 - 1, side="right")) - 1
        for i in range(first, last + 1):
            a, b = max(offsets[i], t0) - t0, min(offsets[i + 1], t1) - t0
            if b <= a:
                continue
            # sum(axis=0) adds rows one after another, in token order, as
            # EmbeddingBag does (np.add.reduceat does not, and long texts
            # would round differently). A text that began in an earlier
            # block carries its running sum in as the first row.
            part = rows[a:b] if offsets[i] >= t0 else np.concatenate([out[i : i + 1], rows[a:b]])
            part.sum(axis=0, out=out[i])
    inv = np.zeros(n, dtype=np.float32)
    np.divide(np.float32(1.0), counts, out=inv, where=counts > 0, casting="unsafe")
    out *= inv[:, None]
    if dyt is not None:
        np.multiply(out, dyt[0][:dim], out=out)
        np.add(out, dyt[2][:dim], out=out)
