"""The engine: which back-end computes a model's vectors, and its lifecycle.

Two back-ends give the same float32 bits:

* ``reference`` -- NumPy only; always there, nothing to compile;
* ``numba_backend`` -- serial jitted kernels (``pooling``, ``wordpiece``)
  run on ranges of texts by a Python thread pool; 3-10x faster.

Importing numba and loading its cached machine code takes about half a
second, longer than a whole cold start on NumPy; compiling the kernels the
first time takes a few seconds more. So ``backend="auto"`` (the default)
answers on NumPy while a background thread loads numba, and compiling, when
needed, happens in a child process (``python -m sse_np.engine.compile``)
so this process's GIL stays free for the calls being answered. A stamp
beside numba's cache (``cache.stamp_path``) says whether compiling is
needed. ``backend="numba"`` loads (or compiles) before the first call;
``backend="numpy"`` never imports numba.

Fork safety: there is no OpenMP/TBB layer (threads are Python's); a fork
waits while this module imports numba or loads kernels, so a child never
inherits a half-done import, and a child restarts its own warm-up.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 (see the fork hooks below)
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint.read import Table
from ..settings import BACKENDS, numba_disabled
from ..tokenizing import TextTokenizer
from . import reference

__all__ = ["BACKENDS", "Engine", "normalize_rows", "numba_available", "numba_disabled_by_env", "numba_loading"]

log = logging.getLogger("sse_np")
#: What compiling every kernel one model needs took on a 2-core AMD EPYC (bench/results/RESULTS.md).
COMPILE_SECONDS = 5
# In "auto", a call with at least this many characters waits for numba
# (~0.5 s to load) rather than running on NumPy (3-5x slower per text).
WAIT_FOR_NUMBA_CHARS = 1 << 20

normalize_rows = reference.normalize_rows

_numba_state = "unknown"  # "unknown" | "on" | "off"
# Held while numba is imported or kernels are loaded; a fork waits for it.
_phase_lock = threading.RLock()
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def numba_disabled_by_env() -> bool:
    """``SSE_NP_DISABLE_NUMBA`` is set to a true value (see :mod:`sse_np.settings`)."""
    return numba_disabled()


def numba_available() -> bool:
    """numba is installed and not switched off; cheap: does not import it."""
    global _numba_state
    if _numba_state == "unknown" and find_spec("numba") is None:  # a path search: remember the answer
        _numba_state = "off"
    return _numba_state != "off" and not numba_disabled_by_env()


@contextlib.contextmanager
def numba_loading() -> Iterator[Any]:
    """numba, set up as the engine uses it, with the fork lock held for the block.

    numba's cache folder is settled first (a private temp folder on read-only
    installs), which ``@njit(cache=True)`` needs. Import modules of jitted
    kernels inside the block: a fork waits until it ends, so a child never
    inherits a half-done import. Raises ``ImportError`` when numba is missing.
    """
    global _numba_state
    with _phase_lock:
        # Only the OpenMP layer would read this; we use none, but a user's
        # other numba code in this process is then as polite to our threads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import numba
        except ImportError:
            _numba_state = "off"
            raise
        from . import cache

        cache.ensure_cache_dir(numba)  # before the kernels' modules: @njit(cache=True) needs it
        _numba_state = "on"
        yield numba


def _import_numba():
    """numba and our kernel modules (see :func:`numba_loading`)."""
    with numba_loading() as numba:
        from . import numba_backend  # noqa: F401 (imported under the lock: forks wait for it)

        return numba


def _before_fork() -> None:
    _phase_lock.acquire()


def _after_fork_in_parent() -> None:
    _phase_lock.release()


def _after_fork_in_child() -> None:
    _phase_lock.release()
    for engine in list(_engines):
        engine._forget_thread()


if hasattr(os, "register_at_fork"):
    # logging and concurrent.futures pair a before-fork hook with an after-fork
    # one; were one first imported by a warm-up thread while a fork waits in
    # our hook, only its second half would run. Both are imported above.
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class Engine:
    """Computes vectors for one model's arrays on the back-end in force.

    Parameters
    ----------
    table : Table
    dyt : (alpha, beta, bias) float32 vectors, or None (identity)
    tokenizer : TextTokenizer
    backend : {"auto", "numba", "numpy"}
    source : Path
        The folder the model was loaded from (a child process compiles from it).
    """

    def __init__(self, table: Table, dyt, tokenizer: TextTokenizer, backend: str, source: Path) -> None:
        self.table, self.dyt, self.tokenizer = table, dyt, tokenizer
        self.backend = backend
        self.source = Path(source).resolve()
        self._numba = None  # NumbaBackend once loaded
        self._error: Exception | None = None
        self._load_lock = threading.Lock()  # held while loading; warmup() callers wait on it
        self._start_lock = threading.Lock()  # only to start one background thread
        self._thread: threading.Thread | None = None
        self._notice: Callable[[str], None] | None = None
        _engines.add(self)
        if backend == "numba":
            self.warmup()

    # -- state -------------------------------------------------------------
    @property
    def status(self) -> str:
        """ "numba" (kernels loaded), "loading", "numpy" (for now or for good) or "failed"."""
        if self._numba is not None:
            return "numba"
        if self._error is not None:
            return "failed"
        if self._thread is not None:
            return "loading"
        return "numpy"

    @property
    def fast(self) -> bool:
        """Whether the jitted WordPiece tokenizes (numba loaded, plain BERT configuration)."""
        return self._numba is not None and self._numba.fast

    def _forget_thread(self) -> None:
        # In a forked child: the warm-up thread is gone; a later call starts another.
        self._thread, self._start_lock, self._load_lock = None, threading.Lock(), threading.Lock()

    def _signature(self) -> str:
        data = self.table.data
        return (
            f"{data.dtype.str}|{data.ndim}|{data.flags.writeable}|{self.dyt is not None}|"
            f"{self.tokenizer.fast_spec is not None}|{self.tokenizer.chunked}"
        )

    # -- loading -------------------------------------------------------------
    def warmup(self, notice: Callable[[str], None] | None = None) -> str:
        """Load the numba kernels now (compiling them the first time), and wait.

        Returns
        -------
        str
            The back-end calls use from now on: "numba", or "numpy" when numba
            is not installed, switched off, or ``backend="numpy"``.
        """
        if self.backend == "numpy":
            return "numpy"
        if not numba_available():
            if self.backend == "numba":
                raise ImportError("backend='numba' needs numba installed (and SSE_NP_DISABLE_NUMBA unset)")
            return "numpy"
        with self._load_lock:
            if self._numba is None:
                self._load(in_child=False, notice=notice or self._notice)
        return "numba"

    def _load(self, in_child: bool, notice) -> None:
        numba = _import_numba()
        from . import cache, numba_backend

        stamp = cache.stamp_path(numba, self._signature())
        compiled = False
        if not stamp.exists():
            message = f"compiling kernels for this machine (one time, ~{COMPILE_SECONDS} s)"
            log.info(message)
            if notice is not None:
                notice(message)
            compiled = in_child and self._compile_in_child(stamp, numba)
        started = time.perf_counter()
        with _phase_lock:
            backend = numba_backend.NumbaBackend(self.table, self.dyt, self.tokenizer)
            exercise(backend)
        if not compiled and not stamp.exists():
            log.debug("sse_np: kernels compiled in-process in %.1f s", time.perf_counter() - started)
            _write_stamp(stamp)
        self._numba = backend

    def _compile_in_child(self, stamp: Path, numba) -> bool:
        """Compile into numba's cache in a child process (so our GIL stays free); whether it worked."""
        package_parent = str(Path(__file__).resolve().parents[2])
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from sse_np.engine.compile import main; sys.exit(main(sys.argv[2:]))"
        )
        env = {**os.environ, "NUMBA_CACHE_DIR": str(numba.config.CACHE_DIR or "")}
        if not env["NUMBA_CACHE_DIR"]:
            del env["NUMBA_CACHE_DIR"]
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, package_parent, str(self.source), str(stamp)],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("sse_np: compiling in a child process failed (%r); compiling here", exc)
            return False
        if done.returncode != 0 or not stamp.exists():
            log.debug("sse_np: child compile exited %s: %s", done.returncode, done.stderr[-2000:])
            return False
        return True

    def start_background(self, notice: Callable[[str], None] | None = None) -> None:
        """Start loading numba's kernels in a background thread (if not loaded or loading)."""
        if self._thread is not None or self._numba is not None or self._error is not None:
            return
        with self._start_lock:
            if self._thread is not None or self._numba is not None:
                return
            self._notice = notice
            thread = threading.Thread(target=self._background, name="sse_np-warmup", daemon=True)
            self._thread = thread
        thread.start()

    def _background(self) -> None:
        try:
            with self._load_lock:
                if self._numba is None:
                    self._load(in_child=True, notice=self._notice)
        except Exception as exc:  # NumPy gives the same vectors, only more slowly
            self._error = exc
            warnings.warn(f"sse_np: numba kernels failed to load ({exc!r}); using NumPy", RuntimeWarning, stacklevel=2)

    def _numba_for(self, texts: list[str], notice=None):
        """The numba back-end for this call, or None for NumPy (see ``backend``)."""
        if self._numba is not None:
            return self._numba
        if self.backend == "numpy" or self._error is not None or not numba_available():
            return None
        if self.backend == "numba" or _size(texts) >= WAIT_FOR_NUMBA_CHARS:
            try:
                self.warmup(notice)
            except Exception as exc:
                if self.backend == "numba":
                    raise
                self._error = exc
                warnings.warn(
                    f"sse_np: numba kernels failed to load ({exc!r}); using NumPy", RuntimeWarning, stacklevel=3
                )
            return self._numba
        self.start_background(notice)
        return None

    # -- computing -------------------------------------------------------------
    def embed(
        self, texts: list[str], start: int, out: np.ndarray, normalize: bool, threads: int, notice=None
    ) -> np.ndarray:
        """Texts -> vectors in ``out`` (n, dim), truncated to ``out``'s width, normalized or not."""
        numba = self._numba_for(texts, notice)
        if numba is not None:
            numba.embed(texts, start, out, normalize, threads)
            return out
        ids, offsets = self.tokenizer(texts, start, threads)
        reference.pool(self.table, self.dyt, ids, *self.tokenizer.window(offsets[:-1], offsets[1:]), out)
        reference.finish(out, self.dyt, normalize)
        return out

    def tokenize(self, texts: list[str], start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids in EmbeddingBag form (ids, offsets), as the reference tokenizes."""
        numba = self._numba_for(texts)
        if numba is not None:
            return numba.tokenize(texts, start, threads)
        ids, offsets = self.tokenizer(texts, start, threads)
        starts, stops = self.tokenizer.window(offsets[:-1], offsets[1:])
        if np.array_equal(starts, offsets[:-1]) and np.array_equal(stops, offsets[1:]):
            return ids, offsets
        new = np.zeros_like(offsets)
        np.cumsum(stops - starts, out=new[1:])
        return np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())]).astype(np.int32), new


def _size(texts) -> int:
    """Characters (bytes, for texts held as UTF-8) to encode: the work a call asks for."""
    nbytes = getattr(texts, "nbytes", None)
    return int(nbytes) if nbytes is not None else sum(map(len, texts))


def exercise(backend) -> None:
    """Call every kernel a model uses once, so numba loads (or compiles) its machine code now."""
    texts = ["warm up", "warm up café"]  # the fast path, and a hole for tokenizers
    out = np.empty(
        (len(texts), backend.table.data.shape[1] * (2 if backend.table.data.dtype == np.uint8 else 1)), dtype=np.float32
    )
    backend.embed(texts, 0, out, True, 1)
    backend.tokenize(texts, 0, 1)


def _write_stamp(stamp: Path) -> None:
    try:
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("compiled\n")
        os.replace(tmp, stamp)
    except OSError:  # no stamp only means the next process compiles in a child again (quickly, from cache)
        pass
