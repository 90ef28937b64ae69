"""The public model object: ``SSEModel`` and ``load``."""

from __future__ import annotations

import operator
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import kernels
from .loading import Checkpoint, read_checkpoint
from .tokenizing import TextTokenizer, load_tokenizer

#: Matryoshka sizes the SSE models were trained for; any 1..D works.
MATRYOSHKA_DIMS = (512, 256, 128, 64, 32)
DEFAULT_BATCH_SIZE = 1024
BACKENDS = ("auto", "numba", "numpy")
# In "auto", a call with at least this many characters waits for numba
# (~0.5 s to load) rather than running on NumPy (3-5x slower per text).
_WAIT_FOR_NUMBA_CHARS = 1 << 20

# Warm-up threads still running; joined before os.fork so that a child
# never inherits an import half done by a thread it does not have.
_warming: weakref.WeakSet = weakref.WeakSet()


def _join_warmups() -> None:
    for thread in list(_warming):
        if thread is not threading.current_thread():  # a fork from the warm-up itself waits for nothing
            thread.join()


if hasattr(os, "register_at_fork"):
    # logging pairs a before-fork hook with an after-fork one; were it first
    # imported by a warm-up thread while _join_warmups waits, only the
    # second would run. Importing it here orders the hooks safely.
    import logging  # noqa: F401

    os.register_at_fork(before=_join_warmups)


class SSEModel:
    """An SSE static embedding model ready to encode text.

    Create one with :func:`sse_np.load`. Encoding is pure: the model holds
    read-only (mostly memory-mapped) arrays and a tokenizer, and may be used
    from several threads.

    Attributes
    ----------
    dim : int
        Native embedding width D.
    vocab_size : int
        Rows of the embedding table V.
    layout : {"full", "q4", "static"}
        On-disk layout the model was read from.
    dtype : str
        Storage of the table: "float32", "float16", "bfloat16" or "q4".
    path : str
        Folder holding the weight files.
    threads : int or None
        Most threads one ``encode`` call uses, for tokenizing and pooling
        alike; None lets numba decide (all cores, or ``NUMBA_NUM_THREADS``).
        1 never wakes a thread pool. Set at :func:`load` or assign later.
    backend : {"auto", "numba", "numpy"}
        Kernels to run; both give the same bits. "auto" answers on NumPy
        until numba is loaded, which starts in a background thread at the
        first call (a call of over 1M characters waits for it instead).
    """

    def __init__(self, checkpoint: Checkpoint, threads: int | None = None, backend: str | None = None) -> None:
        self._ckpt = checkpoint
        self._table = checkpoint.table
        self._dyt = None if checkpoint.alpha is None else (checkpoint.alpha, checkpoint.beta, checkpoint.bias)
        self._tokenizer = load_tokenizer(checkpoint.tokenizer_path, self._table.vocab_size)
        self.backend: str = _check_backend(backend)
        self._tokenize = TextTokenizer(self._tokenizer, fast=False if self.backend == "numpy" else None)
        self._warm = threading.Event()  # numba kernels loaded for this model's table and tokenizer
        self._warm_lock = threading.Lock()  # held while loading: warmup() callers wait on it
        self._start_lock = threading.Lock()  # only to start one background thread
        self._warm_thread: threading.Thread | None = None
        self._warm_error: Exception | None = None
        self.dim: int = self._table.dim
        self.vocab_size: int = self._table.vocab_size
        self.layout: str = checkpoint.layout
        self.path: str = str(checkpoint.model_dir)
        self.threads: int | None = _check_threads(threads)
        self.dtype: str = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "q4": "q4"}[self._table.kind]
        if self.backend == "numba":
            self.warmup()

    def __repr__(self) -> str:
        return (f"SSEModel(path={self.path!r}, layout={self.layout!r}, vocab_size={self.vocab_size}, "
                f"dim={self.dim}, dtype={self.dtype!r})")

    # ------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The underlying ``tokenizers.Tokenizer`` (padding off)."""
        return self._tokenizer

    @property
    def table(self):
        """The embedding table in storage form (see ``sse_np.loading.Table``)."""
        return self._table

    @property
    def dyt(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(alpha, beta, bias)`` float32 vectors, or None for identity."""
        return self._dyt

    def clear_cache(self) -> None:
        """Forget the tokenizer's remembered chunk ids (see ``sse_np.tokenizing``)."""
        self._tokenize.clear_cache()

    # -- back-end ------------------------------------------------------
    def warmup(self) -> str:
        """Load the numba kernels for this model now, and wait for them.

        Servers call this at start-up so that no request waits; it is
        what ``backend="numba"`` does in :func:`load`. Loading reads the
        compiled kernels from numba's cache (compiling them the first
        time, which takes a while once).

        Returns
        -------
        str
            The back-end ``encode`` uses from now on: "numba", or "numpy"
            when numba is not installed, switched off, or ``backend="numpy"``.
        """
        if self.backend == "numpy":
            return "numpy"
        with self._warm_lock:
            if not self._warm.is_set():
                if not kernels.numba_enabled():
                    if self.backend == "numba":
                        raise ImportError("backend='numba' needs numba installed (and SSE_NP_DISABLE_NUMBA unset)")
                    return "numpy"
                self._tokenize.enable_fast()
                self._run_kernels_once()
                self._warm.set()
        return "numba"

    def _run_kernels_once(self) -> None:
        """Call each kernel this model uses once, so numba loads its machine code now."""
        texts = ["warm up", "warm up café"]  # fast path, and a hole for tokenizers
        for parallel in (False, True) if self.threads != 1 else (False,):
            out = np.empty((len(texts), self.dim), dtype=np.float32)
            kernels.embed(self._tokenize, texts, 0, self._table, self._dyt, True, out,
                          threads=None if parallel else 1, use_numba=True, force_parallel=parallel)
            ids, starts, stops = self._tokenize.bags(texts, 0, 1)
            kernels.pool(self._table, self._dyt, ids, starts, stops, self.dim, True,
                         threads=None if parallel else 1, use_numba=True, force_parallel=parallel)

    def _warm_in_background(self) -> None:
        if self._warm_thread is not None:
            return
        with self._start_lock:  # not _warm_lock: a call must never wait for the loading here
            if self._warm_thread is not None or self._warm.is_set():
                return
            thread = threading.Thread(target=self._background_warmup, name="sse_np-warmup", daemon=True)
            self._warm_thread = thread
            _warming.add(thread)
        thread.start()

    def _background_warmup(self) -> None:
        self._warmup_or_numpy()

    def _warmup_or_numpy(self) -> bool:
        """warmup(), but a failure to load numba's kernels only means staying on NumPy (once warned)."""
        if self._warm_error is not None:
            return False
        try:
            return self.warmup() == "numba"
        except Exception as exc:  # NumPy gives the same vectors, only more slowly
            self._warm_error = exc
            warnings.warn(f"sse_np: numba kernels failed to load ({exc!r}); using NumPy", RuntimeWarning,
                          stacklevel=2)
            return False

    def _use_numba(self, batch: list[str]) -> bool:
        """Back-end for this call (see the ``backend`` attribute)."""
        if self._warm.is_set():
            return True
        if self.backend == "numpy" or self._warm_error is not None or not kernels.numba_available():
            return False
        if self.backend == "numba" or sum(map(len, batch)) >= _WAIT_FOR_NUMBA_CHARS:
            return self._warmup_or_numpy()
        self._warm_in_background()
        return False

    def tokenize(self, texts: str | Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids as the reference produces them, in EmbeddingBag form.

        Parameters
        ----------
        texts : str or iterable of str

        Returns
        -------
        ids : ndarray int32
            All token ids, text after text.
        offsets : ndarray int64, shape (n + 1,)
            Text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
        """
        batch, _ = _as_text_list(texts)
        return self._tokenize(batch, threads=self.threads)

    def encode(
        self,
        texts: str | Iterable[str],
        dim: int | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        normalize: bool = True,
        show_progress_bar: bool = False,
        truncate_dim: int | None = None,
        normalize_embeddings: bool | None = None,
    ) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : str or iterable of str
            One text gives a 1-D vector; a list, tuple or other iterable of
            texts gives one row per text, in input order.
        dim : int, optional
            Matryoshka truncation, any int in ``1..D`` (default D). The
            trained sizes are 512, 256, 128, 64 and 32. Truncation happens
            before normalization, as in sentence-transformers.
        batch_size : int
            Texts tokenized and pooled per step; bounds temporary memory.
        normalize : bool
            L2-normalize each vector (after truncation).
        show_progress_bar : bool
            Print progress to stderr.
        truncate_dim, normalize_embeddings
            sentence-transformers names for ``dim`` and ``normalize``.

        Returns
        -------
        ndarray float32, shape (dim,) or (n, dim), C-contiguous

        Raises
        ------
        TypeError
            A text is not a ``str`` (the message names its index and type).
        ValueError
            ``dim`` or ``batch_size`` out of range, or a text ``tokenizers``
            cannot take (a lone surrogate).
        """
        dim = self._check_dim(dim, truncate_dim)
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        batch_size = _check_positive_int(batch_size, "batch_size")
        batch, single = _as_text_list(texts)
        out = np.empty((len(batch), dim), dtype=np.float32)
        use_numba = self._use_numba(batch)
        for start in range(0, len(batch), batch_size):
            chunk = batch[start : start + batch_size]
            if not use_numba:  # the background warm-up may finish mid-call
                use_numba = self._warm.is_set()
            kernels.embed(self._tokenize, chunk, start, self._table, self._dyt, bool(normalize),
                          out[start : start + len(chunk)], self.threads, use_numba)
            if show_progress_bar:
                print(f"\rencoded {start + len(chunk)}/{len(batch)}", end="", file=sys.stderr, flush=True)
        if show_progress_bar and batch:
            print(file=sys.stderr)
        return out[0] if single else out

    def _check_dim(self, dim: int | None, truncate_dim: int | None) -> int:
        if dim is not None and truncate_dim is not None and dim != truncate_dim:
            raise ValueError(f"dim={dim} and truncate_dim={truncate_dim} disagree; pass one of them")
        dim = truncate_dim if dim is None else dim
        if dim is None:
            return self.dim
        if isinstance(dim, bool):
            raise TypeError("dim must be an int, not bool")
        try:
            dim = operator.index(dim)
        except TypeError:
            raise TypeError(f"dim must be an int in 1..{self.dim}, got {type(dim).__name__}") from None
        if not 1 <= dim <= self.dim:
            raise ValueError(
                f"dim must be in 1..{self.dim} (this model's width; trained Matryoshka sizes are "
                f"{', '.join(str(d) for d in MATRYOSHKA_DIMS if d <= self.dim)}), got {dim}"
            )
        return dim


def _check_threads(threads: int | None) -> int | None:
    """``threads`` argument, else ``$SSE_NP_THREADS``, else None (numba's default)."""
    if threads is None:
        env = os.environ.get("SSE_NP_THREADS", "").strip()
        if not env:
            return None
        try:
            threads = int(env)
        except ValueError:
            raise ValueError(f"SSE_NP_THREADS must be a positive int, got {env!r}") from None
        if threads < 1:
            raise ValueError(f"SSE_NP_THREADS must be a positive int, got {env!r}")
        return threads
    return _check_positive_int(threads, "threads")


def _check_backend(backend: str | None) -> str:
    """``backend`` argument, else ``$SSE_NP_BACKEND``, else "auto"; numpy if numba is switched off."""
    source = "backend"
    if backend is None:
        backend, source = os.environ.get("SSE_NP_BACKEND", "").strip().lower() or "auto", "SSE_NP_BACKEND"
    if backend not in BACKENDS:
        raise ValueError(f"{source} must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto" and kernels.numba_disabled_by_env():
        return "numpy"
    return backend


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, not bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _as_text_list(texts: str | Iterable[str]) -> tuple[list[str], bool]:
    """Validate input at the boundary. Returns (list of str, was a single str)."""
    if isinstance(texts, str):
        return [texts], True
    if texts is None:
        raise TypeError("texts must be a str or an iterable of str, got None")
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be str, got bytes; decode it first (e.g. data.decode('utf-8'))")
    try:
        batch = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a str or an iterable of str, got {type(texts).__name__}") from None
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return batch, False


def load(path: str | os.PathLike, *, threads: int | None = None, backend: str | None = None) -> SSEModel:
    """Load an SSE model from a folder, or from the Hugging Face hub.

    Parameters
    ----------
    path : str or PathLike
        A local folder in any supported layout (full precision, 4-bit,
        sentence-transformers repository, StaticEmbedding), or a hub
        repository id such as ``"RikkaBotan/stable-static-embedding-fast-retrieval-mrl-en-v2"``
        (downloaded once to the local cache, see :func:`sse_np.download`).
    threads : int, optional
        Most threads per ``encode`` call (tokenizer and kernel); default
        ``$SSE_NP_THREADS`` or, if unset, numba's thread count.
    backend : {"auto", "numba", "numpy"}, optional
        Default ``$SSE_NP_BACKEND`` or "auto": NumPy until numba has loaded
        in the background (fast cold start). "numba" loads it now (steady
        latency from the first call); "numpy" never imports it. All three
        give the same vectors, bit for bit.

    Returns
    -------
    SSEModel

    Raises
    ------
    sse_np.ModelLoadError
        Missing, corrupt or inconsistent files; the message names the file.
    """
    local = Path(path)
    if not local.exists() and _looks_like_repo_id(str(path)):
        from .hub import download

        local = download(str(path))
    return SSEModel(read_checkpoint(local), threads=threads, backend=backend)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name
