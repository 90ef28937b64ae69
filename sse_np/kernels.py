"""Pooling kernels: token ids -> bag mean -> DyT -> (normalized) vectors.

Two interchangeable back-ends compute the same float32 bits (the same
operations in the same order; tests check it):

* numba: fused, parallel over texts, see ``kernels_numba``;
* pure NumPy: always available, so slim deployments can drop numba and
  llvmlite (or set ``SSE_NP_DISABLE_NUMBA=1``).

Importing numba and loading its cached machine code takes about half a
second, longer than a whole cold start on the NumPy path; so numba is
never imported by ``import sse_np`` and ``SSEModel`` decides when to load
it (see ``SSEModel.warmup``). Callers here say which back-end to use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from .loading import Q4_LEVELS, Table

_EPS = np.float32(1e-12)
_BLOCK_VALUES = 1 << 22  # gathered floats per NumPy block (16 MB): bounded memory
# Below this much work (tokens x dims) a parallel launch costs more than it saves.
_SERIAL_WORK = 1 << 20
_TRUE = ("1", "true", "yes", "on")

_lock = threading.Lock()  # numba loading, and parallel launches
_numba_module = None
_numba_state = "unknown"  # "unknown" | "on" | "off"


def numba_disabled_by_env() -> bool:
    """``SSE_NP_DISABLE_NUMBA`` is set to a true value."""
    return os.environ.get("SSE_NP_DISABLE_NUMBA", "").strip().lower() in _TRUE


def numba_available() -> bool:
    """numba is installed and not switched off; cheap: does not import it."""
    global _numba_state
    if _numba_state != "unknown":
        return _numba_state == "on"
    if numba_disabled_by_env():
        return False
    if find_spec("numba") is None:  # a path search: remember the answer, calls ask every time
        _numba_state = "off"
        return False
    return True


def numba_loaded() -> bool:
    """numba's kernels are imported (never blocks, never imports)."""
    return _numba_state == "on"


def numba_enabled() -> bool:
    """Load numba's kernels if possible (blocking); whether numba is in use."""
    global _numba_module, _numba_state
    if _numba_state == "unknown":
        with _lock:
            if _numba_state == "unknown":
                if numba_disabled_by_env():
                    _numba_state = "off"
                else:
                    # GNU OpenMP threads spin after each parallel region by
                    # default, stealing the CPU the tokenizer needs next
                    # (parallel launches took ms on a busy 2-core machine).
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    try:
                        import numba

                        _ensure_cache_dir(numba)
                        from . import kernels_numba

                        _numba_module, _numba_state = kernels_numba, "on"
                    except ImportError:
                        _numba_state = "off"
    return _numba_state == "on"


def backend() -> str:
    """Name of the back-end large batches use: ``"numba"`` or ``"numpy"`` (loads numba)."""
    return "numba" if numba_enabled() else "numpy"


# -- numba's on-disk cache -------------------------------------------------
def _writable_dir(path: Path) -> bool:
    """Whether ``path`` exists or can be made, and takes a file: numba's own test."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
        return True
    except OSError:
        return False


def _private_temp_dir() -> Path:
    """``<tmp>/sse_np-numba-cache-<uid>``, made 0700; a fresh one if that is not ours alone.

    Cached kernels are machine code numba will run: never reuse a folder
    another user could have written.
    """
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"sse_np-numba-cache-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
        if path.is_symlink() or (hasattr(os, "getuid") and st.st_uid != uid) or st.st_mode & 0o022:
            raise PermissionError(path)
        tempfile.TemporaryFile(dir=path).close()
        return path
    except OSError:
        return Path(tempfile.mkdtemp(prefix="sse_np-numba-cache-"))


def numba_cache_dir() -> str | None:
    """Where numba keeps (or would keep) the compiled kernels of this package.

    numba writes next to the source (``sse_np/__pycache__``), else under the
    user's cache folder, else (e.g. AWS Lambda: read-only package and home)
    nowhere, and it raises. :func:`_ensure_cache_dir` adds a last resort.
    """
    import numba

    if numba.config.CACHE_DIR:
        return str(numba.config.CACHE_DIR)
    here = Path(__file__).parent / "__pycache__"
    if _writable_dir(here):
        return str(here)
    from numba.misc.appdirs import AppDirs

    user = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    return str(user) if _writable_dir(user) else None


def _ensure_cache_dir(numba) -> None:
    """Point numba at a private temporary folder when it has nowhere to write.

    Kernels shipped pre-compiled in a read-only ``sse_np/__pycache__`` (an
    image built with a warm cache) are copied there first, so a read-only
    install still starts warm: numba only reads caches from a folder it
    can write.
    """
    if numba_cache_dir() is not None:
        return
    target = _private_temp_dir()
    shipped = Path(__file__).parent / "__pycache__"
    if shipped.is_dir():
        from numba.core import caching

        # numba's folder for sources under sse_np/ inside CACHE_DIR (the class
        # was private before numba 0.6x).
        locator = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
        dest = target / locator.get_suitable_cache_subpath(str(Path(__file__)))
        try:
            dest.mkdir(parents=True, exist_ok=True)
            for f in shipped.glob("*.nb[ic]"):
                if not (dest / f.name).exists():
                    shutil.copy2(f, dest / f.name)
        except OSError:
            pass  # a partial copy only means some kernels compile again
    numba.config.CACHE_DIR = str(target)


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
    use_numba: bool | None = None,
    force_parallel: bool = False,
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
    use_numba : bool, optional
        Back-end; default: numba when it can be loaded (same bits either way).
    force_parallel : bool
        Use numba's parallel kernel even for a small batch (warm-up).

    Returns
    -------
    ndarray (n, dim) float32
    """
    if use_numba is None:
        use_numba = numba_enabled()
    n = starts.shape[0]
    if out is None:
        out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    _pool_affine(table, dyt, ids, starts, stops, out, threads, use_numba, force_parallel)
    finish(out, dyt, normalize, use_numba)
    return out


def _pool_affine(table, dyt, ids, starts, stops, out, threads, use_numba: bool, force_parallel=False) -> None:
    """out <- alpha * mean + bias (or the mean): everything before tanh."""
    if use_numba:
        _pool_numba(table, dyt, ids, starts, stops, out, threads, force_parallel)
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
    use_numba: bool = True,
    force_parallel: bool = False,
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
    use_numba : bool
        numba kernels (loaded by the caller) or NumPy; the same bits.
    force_parallel : bool
        Use numba's parallel kernels even for a small batch (warm-up).

    Returns
    -------
    ndarray
        ``out``.
    """
    fast = tokenizer.fast_tables
    if fast is None or not use_numba or not texts:
        ids, starts, stops = tokenizer.bags(texts, start, threads)
        return pool(table, dyt, ids, starts, stops, out.shape[1], normalize, out=out, threads=threads,
                    use_numba=use_numba)
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
    parallel = force_parallel or (n > 1 and size * (out.shape[1] // 4 + 8) >= _SERIAL_WORK)
    run_numba(_numba_module.embed_parallel, _numba_module.embed_serial, parallel, threads,
              np.frombuffer(data, dtype=np.uint8), text_off, fast.cls, fast.low, fast.added, fast.vocab,
              max_len, keep_end, table.data, scales, Q4_LEVELS, alpha, bias, dyt is not None, out,
              ids, counts, hole_a, hole_b, n_holes)
    rest = np.flatnonzero(n_holes)
    if rest.size:  # texts with holes: splice tokenizers' ids in, then pool them
        sub_ids, offsets = tokenizer.fill_holes(data, texts, start, threads, ids, text_off[rest],
                                                text_off[rest] + counts[rest], hole_a, hole_b, n_holes[rest])
        sub = np.empty((rest.size, out.shape[1]), dtype=np.float32)
        _pool_affine(table, dyt, sub_ids, *tokenizer.window(offsets[:-1], offsets[1:]), sub, threads, True)
        out[rest] = sub
    finish(out, dyt, normalize, True)
    return out


def finish(out: np.ndarray, dyt, normalize: bool, use_numba: bool) -> None:
    """In place: ``beta * tanh(.)`` on ``alpha * mean + bias``, then L2-normalize rows.

    tanh is NumPy's (vectorized float32; numba's scalar tanh costs 10x);
    the rest is one jitted pass when numba is on (fewer NumPy calls: this
    is most of the cost of a single short text).
    """
    if use_numba:
        if dyt is not None:
            np.tanh(out, out=out)
        _numba_module.scale_normalize(out, dyt[1] if dyt is not None else _DUMMY, dyt is not None, normalize)
        return
    dim = out.shape[1]
    if dyt is not None:
        np.tanh(out, out=out)
        np.multiply(out, dyt[1][:dim], out=out)
    if normalize:
        # A running float32 sum, term by term, as kernels_numba.scale_normalize
        # adds: both back-ends then give the same bits (einsum's pairwise
        # order would differ in the last place).
        norms = np.sqrt(np.add.accumulate(out * out, axis=1)[:, -1])
        out /= np.maximum(norms, _EPS)[:, None]


def _pool_numba(table, dyt, ids, starts, stops, out, threads, force_parallel=False) -> None:
    """out <- alpha * mean + bias (or the mean), fused in one pass over the tokens."""
    scales = table.scales if table.scales is not None else _DUMMY
    alpha, _, bias = dyt if dyt is not None else (_DUMMY, _DUMMY, _DUMMY)
    parallel = force_parallel or (ids.shape[0] * out.shape[1] >= _SERIAL_WORK and out.shape[0] > 1)
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
    # 1/count in float32 directly (as the numba kernel): via float64 it could round twice.
    np.divide(np.float32(1.0), counts.astype(np.float32), out=inv, where=counts > 0)
    out *= inv[:, None]
    if dyt is not None:
        np.multiply(out, dyt[0][:dim], out=out)
        np.add(out, dyt[2][:dim], out=out)
