"""The public model object: ``SSEModel`` and ``load``.

``SSEModel`` validates input, batches it and hands each batch to its
:class:`sse_np.engine.Engine`, which owns the back-end (NumPy or numba) and
its lifecycle.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Mapping, Set
from pathlib import Path

import numpy as np

from .checkpoint.read import Checkpoint, read_checkpoint
from .engine import BACKENDS, Engine, Utf8Texts, numba_disabled_by_env
from .progress import Progress
from .settings import backend as backend_from_env
from .settings import threads as threads_from_env
from .tokenizer import TextTokenizer, load_tokenizer

#: Matryoshka sizes the SSE models were trained for; any 1..D works.
MATRYOSHKA_DIMS = (512, 256, 128, 64, 32)
DEFAULT_BATCH_SIZE = 1024


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
        alike; None: all cores (``os.sched_getaffinity``). 1 never wakes a
        second thread. Set at :func:`load` or assign later.
    backend : {"auto", "numba", "numpy"}
        Kernels to run; both give the same bits. "auto" answers on NumPy
        until numba is loaded, which starts in a background thread at the
        first call (a call of over 1M characters waits for it instead).
    engine : sse_np.engine.Engine
        The back-end and its state (``engine.status``: "numpy", "loading",
        "numba" or "failed"); the one seam tests and servers look at.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        threads: int | None = None,
        backend: str | None = None,
        source: str | os.PathLike | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        self._ckpt = checkpoint
        self.dim: int = checkpoint.table.dim
        self.vocab_size: int = checkpoint.table.vocab_size
        self.layout: str = checkpoint.layout
        self.path: str = str(checkpoint.model_dir)
        self.threads: int | None = _check_threads(threads)
        self.dtype: str = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "q4": "q4"}[checkpoint.table.kind]
        self.backend: str = _check_backend(backend)
        self._tokenizer = load_tokenizer(
            checkpoint.tokenizer_path, checkpoint.table.vocab_size, checkpoint.tokenizer_json, checkpoint.tokenizer_spec
        )
        self._truncate_dim: int | None = None
        self.truncate_dim = truncate_dim
        tokenizer = TextTokenizer(self._tokenizer, spec=checkpoint.tokenizer_spec)
        self.engine = Engine.from_checkpoint(
            checkpoint, self.backend, Path(source) if source is not None else checkpoint.model_dir, tokenizer
        )

    def __repr__(self) -> str:
        return (
            f"SSEModel(path={self.path!r}, layout={self.layout!r}, vocab_size={self.vocab_size}, "
            f"dim={self.dim}, dtype={self.dtype!r})"
        )

    # ------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The underlying ``tokenizers.Tokenizer`` (padding off)."""
        return self._tokenizer

    @property
    def table(self):
        """The embedding table in storage form (see :class:`sse_np.checkpoint.read.Table`)."""
        return self._ckpt.table

    @property
    def dyt(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(alpha, beta, bias)`` float32 vectors, or None for identity."""
        return self.engine.dyt

    @property
    def tokenizer_path(self) -> Path:
        """The ``tokenizer.json`` file the model was loaded with."""
        return self._ckpt.tokenizer_path

    def clear_cache(self) -> None:
        """Forget the tokenizer's remembered chunk ids (see ``sse_np.tokenizer``)."""
        self.engine.tokenizer.clear_cache()

    def warmup(self) -> str:
        """Load the numba kernels for this model now, and wait for them.

        Servers call this at start-up so that no request waits; it is what
        ``backend="numba"`` does in :func:`load`. Loading reads the compiled
        kernels from numba's cache (compiling them the first time, a few
        seconds once per machine).

        Returns
        -------
        str
            The back-end ``encode`` uses from now on: "numba", or "numpy"
            when numba is not installed, switched off, or ``backend="numpy"``.
        """
        return self.engine.warmup()

    def _threads(self) -> int:
        return self.threads if self.threads is not None else _CORES

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
        return self.engine.tokenize(batch, 0, self._threads())

    def encode(
        self,
        texts: str | Iterable[str],
        dim: int | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        normalize: bool = True,
        show_progress_bar: bool = False,
        precision: str = "float32",
        ranges: np.ndarray | None = None,
        calibration_embeddings: np.ndarray | None = None,
        truncate_dim: int | None = None,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        prompt: str | None = None,
        prompt_name: str | None = None,
        device: str | None = None,
        output_value: str | None = "sentence_embedding",
        max_length: int | None = None,
        **kwargs,
    ) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : str or sequence of str
            One text gives a 1-D vector; a list, tuple, 1-D array or other
            ordered collection of texts gives one row per text, in input
            order. Mappings and sets are refused (``TypeError``). A pyarrow
            string column (``Array`` or ``ChunkedArray``, e.g. a Parquet
            column) is read in place: no Python string per row.
        dim : int, optional
            Matryoshka truncation, any int in ``1..D``; default the model's
            ``truncate_dim``, else D. The trained sizes are 512, 256, 128, 64
            and 32. Truncation happens before normalization, as in
            sentence-transformers.
        batch_size : int
            Texts packed per step (at least 1 MiB of text a step): it only
            bounds temporary memory. Speed does not depend on it: one call is
            one parallel region over the whole input.
        normalize : bool
            L2-normalize each vector (after truncation).
        max_length : int, optional
            Keep each text's first ``max_length`` tokens (after the
            tokenizer's own truncation), as sentence-transformers' and
            model2vec's ``max_length``; default: all.
        show_progress_bar : bool
            Progress on stderr (a bar on a terminal, plain lines otherwise),
            and a line if numba's kernels compile meanwhile.
        precision : {"float32", "int8", "uint8", "binary", "ubinary"}
            Quantized output, exactly as sentence-transformers'
            ``quantize_embeddings`` (see :mod:`sse_np.retrieval.quantization`).
        ranges, calibration_embeddings : ndarray, optional
            For int8/uint8: per-dimension ``(2, dim)`` ranges, or embeddings
            to take them from (default: these embeddings themselves).
        truncate_dim, normalize_embeddings
            sentence-transformers names for ``dim`` and ``normalize``.
        convert_to_numpy, convert_to_tensor, prompt, prompt_name, device, output_value
            Accepted with the values that mean what sse_np does (NumPy
            arrays, no prompt, the CPU, sentence embeddings); any other
            value is refused with the reason, never ignored.

        Returns
        -------
        ndarray, shape (dim,) or (n, dim) (packed bits: dim/8), C-contiguous
            float32, or the ``precision``'s dtype.

        Raises
        ------
        TypeError
            A text is not a ``str`` (the message names its index and type),
            or an unknown keyword.
        ValueError
            ``dim`` or ``batch_size`` out of range, a refused keyword value,
            or a text ``tokenizers`` cannot take (a lone surrogate).
        """
        _refuse_unsupported(convert_to_numpy, convert_to_tensor, prompt, prompt_name, device, output_value, kwargs)
        dim = self._check_dim(dim, truncate_dim)
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        batch_size = _check_positive_int(batch_size, "batch_size")
        quantize = None
        if precision != "float32" or ranges is not None or calibration_embeddings is not None:
            from .retrieval.quantization import check_precision, quantize_embeddings

            check_precision(precision)
            quantize = quantize_embeddings
        limits = (_check_limit(max_length, "max_length"), -1)
        batch, single = _as_text_list(texts)
        out = np.empty((len(batch), dim), dtype=np.float32)
        threads, normalize = self._threads(), bool(normalize)
        if not show_progress_bar:
            self.engine.encode(batch, out, normalize, threads, batch_size, limits)
        else:
            with Progress(len(batch), "encoded", enabled=bool(batch)) as bar:
                self.engine.encode(batch, out, normalize, threads, batch_size, limits, bar.update, bar.note)
        if quantize is not None:
            out = quantize(out, precision, ranges=ranges, calibration_embeddings=calibration_embeddings)
        return out[0] if single else out

    # -- sentence-transformers names -------------------------------------
    def encode_query(self, texts: str | Iterable[str], **kwargs) -> np.ndarray:
        """:meth:`encode` for queries (SSE has no prompts: the same vectors as :meth:`encode_document`)."""
        return self.encode(texts, **kwargs)

    def encode_document(self, texts: str | Iterable[str], **kwargs) -> np.ndarray:
        """:meth:`encode` for documents (the same vectors as :meth:`encode_query`)."""
        return self.encode(texts, **kwargs)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity matrix (n, m), as ``SentenceTransformer.similarity``; see :func:`sse_np.similarity`."""
        from .retrieval.similarity import similarity

        return similarity(a, b)

    def similarity_pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity of row ``i`` of ``a`` with row ``i`` of ``b``: shape (n,)."""
        from .retrieval.similarity import similarity_pairwise

        return similarity_pairwise(a, b)

    def get_embedding_dimension(self) -> int:
        """Width of the vectors :meth:`encode` returns by default (``truncate_dim``, else D)."""
        return self.truncate_dim or self.dim

    get_sentence_embedding_dimension = get_embedding_dimension  # sentence-transformers < 6 spelling

    @property
    def truncate_dim(self) -> int | None:
        """Default Matryoshka truncation of every ``encode`` (None: the full width D)."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        self._truncate_dim = None if value is None else self._check_dim(value, None)

    def _check_dim(self, dim: int | None, truncate_dim: int | None) -> int:
        if dim is not None and truncate_dim is not None and dim != truncate_dim:
            raise ValueError(f"dim={dim} and truncate_dim={truncate_dim} disagree; pass one of them")
        dim = truncate_dim if dim is None else dim
        if dim is None:
            return self.truncate_dim or self.dim
        if isinstance(dim, bool):
            raise TypeError("dim must be an int, not bool")
        try:
            dim = operator.index(dim)
        except TypeError:
            raise TypeError(f"dim must be an int in 1..{self.dim}, got {type(dim).__name__}") from None
        if not 1 <= dim <= self.dim:
            trained = ", ".join(str(d) for d in MATRYOSHKA_DIMS if d <= self.dim)
            sizes = f"; trained Matryoshka sizes are {trained}" if trained else ""  # a narrow model has none
            raise ValueError(f"dim must be in 1..{self.dim} (this model's width{sizes}), got {dim}")
        return dim


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CORES = _usable_cores()  # the default thread count (read once: a system call per encode adds up)


def _refuse_unsupported(
    convert_to_numpy, convert_to_tensor, prompt, prompt_name, device, output_value, extra: dict
) -> None:
    """sentence-transformers keywords: the values that mean what sse_np does pass, others say why not."""
    if extra:
        name = next(iter(extra))
        raise TypeError(f"encode() got an unexpected keyword argument {name!r}")
    if convert_to_tensor or not convert_to_numpy:
        raise ValueError(
            "sse_np returns NumPy arrays (convert_to_numpy=True); torch tensors would need torch: "
            "use torch.from_numpy(vectors)"
        )
    if prompt or prompt_name:
        raise ValueError(
            "SSE models have no prompts (prompt/prompt_name): queries and documents are encoded "
            "alike; prepend any text yourself"
        )
    if device not in (None, "cpu"):
        raise ValueError(f"sse_np runs on the CPU; device={device!r} is not supported")
    if output_value not in (None, "sentence_embedding"):
        raise ValueError(
            f"output_value={output_value!r}: a static model has no token embeddings; "
            "only 'sentence_embedding' is supported"
        )


def _check_threads(threads: int | None) -> int | None:
    """``threads`` argument, else ``$SSE_NP_THREADS``, else None (numba's default)."""
    if threads is None:
        return threads_from_env()
    return _check_positive_int(threads, "threads")


def _check_backend(backend: str | None) -> str:
    """``backend`` argument, else ``$SSE_NP_BACKEND``, else "auto"; numpy if numba is switched off."""
    if backend is None:
        backend = backend_from_env() or "auto"
    elif backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto" and numba_disabled_by_env():
        return "numpy"
    return backend


def _check_limit(value: int | None, name: str) -> int:
    """A positive int limit, or None (-1: no limit)."""
    return -1 if value is None else _check_positive_int(value, name)


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


def _as_text_list(texts: str | Iterable[str]) -> tuple[list[str] | Utf8Texts, bool]:
    """Validate input at the boundary. Returns (list of str, was a single str).

    Only ordered collections of texts are taken: a mapping would give its
    keys and a set an arbitrary order, silently.
    """
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, Utf8Texts):
        return texts, False
    if _is_arrow_array(texts):  # read in place: no Python string per row
        return Utf8Texts.from_arrow(texts), False
    if texts is None:
        raise TypeError("texts must be a str or a sequence of str, got None")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError("texts must be str, got bytes; decode it first (e.g. data.decode('utf-8'))")
    if isinstance(texts, Mapping) or _is_dataframe_row(texts):
        raise TypeError(
            f"texts must be a str or a sequence of str, got a mapping ({type(texts).__name__}); "
            "pass its values, e.g. list(d.values()), or the text field, e.g. d['text']"
        )
    if isinstance(texts, (Set, frozenset)):
        raise TypeError(
            f"texts must be a str or a sequence of str, got an unordered {type(texts).__name__}; "
            "rows would come back in no defined order: pass sorted(texts) or a list"
        )
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise TypeError(f"texts must be a 1-D array of str, got an array of shape {texts.shape}")
    if not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
    batch = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
    if not set(map(type, batch)) <= {str}:  # a C loop over the types; the error path finds the text
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return batch, False


def _is_arrow_array(texts) -> bool:
    """A pyarrow Array or ChunkedArray (checked without importing pyarrow)."""
    return type(texts).__module__.startswith("pyarrow") and hasattr(texts, "null_count") and hasattr(texts, "type")


def _is_dataframe_row(texts) -> bool:
    """pandas/polars data frames iterate over column names, not texts."""
    return type(texts).__name__ == "DataFrame"


def load(
    path: str | os.PathLike, *, threads: int | None = None, backend: str | None = None, truncate_dim: int | None = None
) -> SSEModel:
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
    truncate_dim : int, optional
        Default Matryoshka truncation of every ``encode`` (as
        sentence-transformers' ``truncate_dim``); default the full width D.

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
        from .checkpoint.hub import download

        local = download(str(path))
    return SSEModel(read_checkpoint(local), threads=threads, backend=backend, source=local, truncate_dim=truncate_dim)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name
