"""The engine: which back-end computes a model's vectors, and its lifecycle.

Two back-ends give the same float32 bits:

* ``numpy_backend`` -- NumPy only; always there, nothing to compile;
* ``numba_backend`` -- jitted kernels (tokenizer, pooling, head) in one
  parallel region per call; 5-20x faster.

Importing numba and loading its cached machine code takes about half a
second, longer than a whole cold start on NumPy; compiling the kernels the
first time takes a few seconds more. So ``backend="auto"`` (the default)
answers on NumPy while a background thread loads numba, and compiling, when
needed, happens in a child process (``python -m sse_np.engine.compile``)
so this process's GIL stays free for the calls being answered. A stamp
beside numba's cache (``cache.stamp_path``) says whether compiling is
needed. ``backend="numba"`` loads (or compiles) before the first call;
``backend="numpy"`` never imports numba.

Fork safety: the thread pool is recreated in a child (``parallel``); a fork
waits while numba is imported or kernels load (``jit.phase_lock``), and a
child restarts its own warm-up.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import BACKENDS
from ..tokenizer import TextTokenizer
from . import jit, numpy_backend
from .texts import Utf8Texts

__all__ = ["BACKENDS", "Engine", "import_numba"]

log = logging.getLogger("sse_np")
#: What compiling every kernel one model needs took on a 2-core AMD EPYC (bench/results/RESULTS.md).
COMPILE_SECONDS = 5
# In "auto", a call with at least this many characters waits for numba
# (~0.5 s to load) rather than running on NumPy (3-5x slower per text).
WAIT_FOR_NUMBA_CHARS = 1 << 20

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_threads_in_child() -> None:
    for engine in list(_engines):
        engine._forget_thread()


jit.on_fork_in_child(_forget_threads_in_child)


def import_numba():
    """numba and the engine's kernel modules, under the fork lock (see ``jit.numba_loading``)."""
    with jit.numba_loading() as numba:
        from . import numba_backend  # noqa: F401 (imported under the lock: forks wait for it)

        return numba


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
    mapping, weights : ndarray, optional
        Token id -> table row (vocabulary quantization); per-token weights.
    drop_id : int
        A token id removed before pooling (model2vec's unknown token); -1: none.
    """

    def __init__(
        self,
        table,
        dyt,
        tokenizer: TextTokenizer,
        backend: str,
        source: Path,
        mapping: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        drop_id: int = -1,
    ) -> None:
        self.table, self.dyt, self.tokenizer = table, dyt, tokenizer
        self.mapping, self.weights, self.drop_id = mapping, weights, int(drop_id)
        self.head = None if dyt is None else (dyt[0], dyt[2], dyt[1])  # (alpha, bias, beta)
        self.backend = backend
        self.source = Path(source).resolve()
        self._numba: Any = None  # NumbaBackend once loaded
        self._error: Exception | None = None
        self._load_lock = threading.Lock()  # held while loading; warmup() callers wait on it
        self._start_lock = threading.Lock()  # only to start one background thread
        self._thread: threading.Thread | None = None
        self._notice: Callable[[str], None] | None = None
        _engines.add(self)
        if backend == "numba":
            self.warmup()

    @classmethod
    def from_checkpoint(cls, checkpoint, backend: str, source, tokenizer: TextTokenizer | None = None) -> Engine:
        """The engine for a checkpoint's arrays (``sse_np.loading.Checkpoint``), its tokenizer loaded unless given."""
        if tokenizer is None:
            from ..tokenizer import load_tokenizer

            raw = load_tokenizer(
                checkpoint.tokenizer_path,
                checkpoint.table.vocab_size if getattr(checkpoint, "mapping", None) is None else None,
                checkpoint.tokenizer_json,
                checkpoint.tokenizer_spec,
            )
            tokenizer = TextTokenizer(raw, spec=checkpoint.tokenizer_spec)
        dyt = None if checkpoint.alpha is None else (checkpoint.alpha, checkpoint.beta, checkpoint.bias)
        return cls(
            checkpoint.table,
            dyt,
            tokenizer,
            backend,
            Path(source),
            getattr(checkpoint, "mapping", None),
            getattr(checkpoint, "weights", None),
            getattr(checkpoint, "drop_id", -1),
        )

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
        """Whether the jitted tokenizer tokenizes (numba loaded, a BERT configuration)."""
        return self._numba is not None and self._numba.fast

    @property
    def word_path(self) -> bool:
        """Whether the jitted word path tokenizes ASCII texts (numba loaded, a BPE/Unigram/WordLevel pipeline
        it reproduces; ``sse_np.tokenizer.words``)."""
        return self._numba is not None and self._numba.word_path is not None

    def _forget_thread(self) -> None:
        # In a forked child: the warm-up thread is gone; a later call starts another.
        self._thread, self._start_lock, self._load_lock = None, threading.Lock(), threading.Lock()

    def _signature(self) -> str:
        data = self.table.data
        return (
            f"{data.dtype.str}|{data.ndim}|{data.flags.writeable}|{self.dyt is not None}|"
            f"{self.tokenizer.fast_spec is not None}|{self.mapping is not None}|{self.weights is not None}|"
            f"{self.tokenizer.word_spec is not None}"
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
        if not jit.numba_available():
            if self.backend == "numba":
                raise ImportError("backend='numba' needs numba installed (and SSE_NP_DISABLE_NUMBA unset)")
            return "numpy"
        with self._load_lock:
            if self._numba is None:
                self._load(in_child=False, notice=notice or self._notice)
        return "numba"

    def _load(self, in_child: bool, notice) -> None:
        numba = import_numba()
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
        with jit.phase_lock:
            backend = numba_backend.NumbaBackend(
                self.table, self.dyt, self.tokenizer, self.mapping, self.weights, self.drop_id, jit.cache_folder()
            )
            exercise(backend)
        if not compiled and not stamp.exists():
            log.debug("sse_np: kernels compiled in-process in %.1f s", time.perf_counter() - started)
            jit.write_stamp(stamp)
        self._numba = backend

    def _compile_in_child(self, stamp: Path, numba) -> bool:
        """Compile into numba's cache in a child process (so our GIL stays free); whether it worked."""
        package_parent = str(Path(__file__).resolve().parents[2])
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from sse_np.engine.compile import main; sys.exit(main(sys.argv[2:]))"
        )
        import os

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

    def _numba_for(self, texts, notice=None):
        """The numba back-end for this call, or None for NumPy (see ``backend``)."""
        if self._numba is not None:
            return self._numba
        if self.backend == "numpy" or self._error is not None or not jit.numba_available():
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
    def encode(
        self,
        texts,
        out: np.ndarray,
        normalize: bool,
        threads: int,
        batch_size: int,
        limits: tuple[int, int] = (-1, -1),
        progress: Callable[[int], None] | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> np.ndarray:
        """Texts (list of str, or ``Utf8Texts``) -> vectors in ``out`` (n, dim), truncated to ``out``'s width.

        ``limits`` is ``(max_tokens, max_chars)`` (-1: none): keep each text's
        first ``max_tokens`` tokens, after cutting it to its first
        ``max_chars`` characters. ``progress(k)`` is called as ``k`` more texts are done.
        """
        numba = self._numba_for(texts, notice)
        if numba is not None:
            numba.encode(texts, out, normalize, threads, batch_size, limits, progress)
            return out
        for a in range(0, len(texts), batch_size):
            chunk = texts[a : a + batch_size]
            strs = list(chunk) if isinstance(chunk, Utf8Texts) else chunk
            if limits[1] >= 0:
                strs = [t[: limits[1]] for t in strs]
            ids, offsets = self._bags(strs, a, threads)
            if limits[0] >= 0 or self.drop_id >= 0:
                ids, offsets = numpy_backend.bags(ids, offsets, self.drop_id, limits[0])
            numpy_backend.embed(
                self.table, self.head, self.mapping, self.weights, ids, offsets, out[a : a + len(strs)], normalize
            )
            if progress is not None:
                progress(len(strs))
        return out

    def _bags(self, texts, start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids as the tokenizer gives them, truncation applied, compacted."""
        ids, offsets = self.tokenizer(texts, start, threads)
        starts, stops = self.tokenizer.window(offsets[:-1], offsets[1:])
        if np.array_equal(starts, offsets[:-1]) and np.array_equal(stops, offsets[1:]):
            return ids, offsets
        new = np.zeros_like(offsets)
        np.cumsum(stops - starts, out=new[1:])
        parts = [ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())]
        return np.concatenate(parts or [ids[:0]]).astype(np.int32), new

    def tokenize(self, texts, start: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids in EmbeddingBag form (ids, offsets), as the reference tokenizes."""
        numba = self._numba_for(texts)
        if numba is not None:
            return numba.tokenize(texts, start, threads)
        strs = list(texts) if isinstance(texts, Utf8Texts) else texts
        return self._bags(strs, start, threads)


def _size(texts) -> int:
    """Characters (bytes, for texts held as UTF-8) to encode: the work a call asks for."""
    nbytes = getattr(texts, "nbytes", None)
    return int(nbytes) if nbytes is not None else sum(map(len, texts))


def exercise(backend) -> None:
    """Call every kernel a model uses once, so numba loads (or compiles) its machine code now."""
    texts = ["warm up", "warm up café 中 [CLS]"]  # ASCII, Unicode, and a fallback to tokenizers
    width = backend.table.data.shape[1] * (2 if backend.table.data.dtype == np.uint8 else 1)
    out = np.empty((len(texts), width), dtype=np.float32)
    backend.encode(texts, out, True, 1, 1024, (-1, -1))
    backend.encode(Utf8Texts.from_strs(texts), out, True, 1, 1024, (-1, -1))
    backend.tokenize(texts, 0, 1)  # the same kernel in its ids mode: nothing more to compile
