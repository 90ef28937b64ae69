"""The public model object: ``SSEModel`` and ``load``.

``SSEModel`` validates input, batches it and hands each batch to its
:class:`sse_np.engine.Engine`, which owns the back-end (NumPy or numba) and
its lifecycle.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..checkpoint.read import Checkpoint
from ..engine import Engine
from ..progress import Progress
from ..tokenizer import TextTokenizer, load_tokenizer
from .inputs import as_text_list, check_backend, check_limit, check_positive_int, check_threads, refuse_unsupported

#: Matryoshka sizes the SSE models were trained for; any 1..D works.
MATRYOSHKA_DIMS = (512, 256, 128, 64, 32)
DEFAULT_BATCH_SIZE = 1024
_DTYPE_NAMES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "i8": "int8", "q4": "q4"}


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
        self.source: str = str(source if source is not None else checkpoint.model_dir)  # as given to load()
        self.threads: int | None = check_threads(threads)
        self.dtype: str = _DTYPE_NAMES[checkpoint.table.kind]
        self.backend: str = check_backend(backend)
        style = checkpoint.style
        #: The checkpoint format: "sse", "model2vec" or "sentence-transformers".
        self.format: str = style.format
        #: ``encode``'s default for ``normalize`` (the format's own library's default).
        self.normalize: bool = style.normalize
        #: ``encode``'s default ``max_length`` (model2vec: 512; None: no limit).
        self.max_length: int | None = style.max_length
        ids = checkpoint.table.vocab_size if checkpoint.mapping is None else len(checkpoint.mapping)
        self._tokenizer = load_tokenizer(
            checkpoint.tokenizer_path, ids, checkpoint.tokenizer_json, checkpoint.tokenizer_spec
        )
        self._engine_length = self.max_length  # the truncation self.engine's tokenizer carries (model2vec)
        if style.format == "model2vec":
            _truncate_at(self._tokenizer, self.max_length)
        self._siblings: dict[int | None, Engine] = {}  # model2vec: an engine per other max_length
        self._truncate_dim: int | None = None
        self.truncate_dim = truncate_dim if truncate_dim is not None else style.truncate_dim
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

    def files(self) -> list[Path]:
        """Every file in the model's folders (weights, tokenizer, configs): never an output of a command."""
        from ..checkpoint.layout import model_files

        return model_files(Path(self.source), self._ckpt.model_dir)

    def folders(self) -> list[Path]:
        """The model's folders (resolved): a command writes no file into them."""
        from ..checkpoint.layout import model_folders

        return model_folders(Path(self.source), self._ckpt.model_dir)

    def __reduce__(self):
        # Pickled as its folder and settings (for multiprocessing): the child loads it again, memory-mapped.
        return (_reload, (self.source, self.threads, self.backend, self.truncate_dim))

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
        batch, _ = as_text_list(texts)
        return self.engine.tokenize(batch, 0, self._threads())

    def encode(
        self,
        texts: str | Iterable[str],
        dim: int | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        normalize: bool | None = None,
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
        normalize : bool, optional
            L2-normalize each vector (after truncation). Default: the
            format's own (SSE: True; model2vec: its ``config.json``;
            sentence-transformers: whether it has a ``Normalize`` module,
            which normalizes the full width before ``dim`` truncates).
        max_length : int, optional
            Keep each text's first ``max_length`` tokens (after the
            tokenizer's own truncation), as sentence-transformers' and
            model2vec's ``max_length``. Default: the format's own
            (model2vec: 512, each text first cut to 512 times the
            vocabulary's median token length in characters, as model2vec
            does; others: all).
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
        refuse_unsupported(convert_to_numpy, convert_to_tensor, prompt, prompt_name, device, output_value, kwargs)
        dim = self._check_dim(dim, truncate_dim)
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        keep, renormalize = dim, False
        if self._ckpt.style.normalize_module:
            # sentence-transformers' Normalize module always runs, on the full width; truncation
            # comes after it, and normalize_embeddings=True normalizes once more after truncating.
            renormalize, normalize, dim = bool(normalize) and dim < self.dim, True, self.dim
        elif normalize is None:
            normalize = self.normalize
        batch_size = check_positive_int(batch_size, "batch_size")
        quantize = None
        if precision != "float32" or ranges is not None or calibration_embeddings is not None:
            from ..retrieval.quantization import check_precision, quantize_embeddings

            check_precision(precision)
            quantize = quantize_embeddings
        engine, limits = self._engine_for(max_length)
        batch, single = as_text_list(texts)
        out = np.empty((len(batch), dim), dtype=np.float32)
        threads, normalize = self._threads(), bool(normalize)
        if not show_progress_bar:
            engine.encode(batch, out, normalize, threads, batch_size, limits)
        else:
            with Progress(len(batch), "encoded", enabled=bool(batch)) as bar:
                engine.encode(batch, out, normalize, threads, batch_size, limits, bar.update, bar.note)
        if keep < dim:
            out = np.ascontiguousarray(out[:, :keep])
            if renormalize:
                out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        if quantize is not None:
            out = quantize(out, precision, ranges=ranges, calibration_embeddings=calibration_embeddings)
        return out[0] if single else out

    def _engine_for(self, max_length: int | None) -> tuple[Engine, tuple[int, int]]:
        """The engine and its ``(max_tokens, max_chars)`` limits (-1: none) for a call's ``max_length``.

        model2vec truncates in its tokenizer, before it removes unknown tokens,
        and first cuts each text to ``max_length`` times the median token
        length in characters: its engines carry the truncation in their
        tokenizer, one engine per ``max_length`` asked for.
        """
        if self.format != "model2vec":
            return self.engine, (
                check_limit(max_length if max_length is not None else self.max_length, "max_length"),
                -1,
            )
        length = self.max_length if max_length is None else check_positive_int(max_length, "max_length")
        per_token = self._ckpt.style.chars_per_token
        limits = (-1, length * per_token if length is not None and per_token > 0 else -1)
        if length == self._engine_length:
            return self.engine, limits
        engine = self._siblings.get(length)
        if engine is None:
            raw = load_tokenizer(self._ckpt.tokenizer_path, None, self._ckpt.tokenizer_json)
            _truncate_at(raw, length)
            tokenizer = TextTokenizer(raw, spec=self._ckpt.tokenizer_spec)
            engine = Engine.from_checkpoint(self._ckpt, self.backend, Path(self.engine.source), tokenizer)
            self._siblings[length] = engine
        return engine, limits

    # -- sentence-transformers names -------------------------------------
    def encode_query(self, texts: str | Iterable[str], **kwargs) -> np.ndarray:
        """:meth:`encode` for queries (SSE has no prompts: the same vectors as :meth:`encode_document`)."""
        return self.encode(texts, **kwargs)

    def encode_document(self, texts: str | Iterable[str], **kwargs) -> np.ndarray:
        """:meth:`encode` for documents (the same vectors as :meth:`encode_query`)."""
        return self.encode(texts, **kwargs)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity matrix (n, m), as ``SentenceTransformer.similarity``; see :func:`sse_np.similarity`."""
        from ..retrieval.similarity import similarity

        return similarity(a, b)

    def similarity_pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity of row ``i`` of ``a`` with row ``i`` of ``b``: shape (n,)."""
        from ..retrieval.similarity import similarity_pairwise

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


def _truncate_at(tokenizer, max_length: int | None) -> None:
    """Truncate to ``max_length`` tokens in the tokenizer, as model2vec's ``encode`` does (None: not at all)."""
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CORES = _usable_cores()  # the default thread count (read once: a system call per encode adds up)


def _reload(source: str, threads: int | None, backend: str, truncate_dim: int | None) -> SSEModel:
    """An unpickled ``SSEModel``: loaded again from its folder (memory-mapped)."""
    from ..checkpoint.formats import read_model

    return SSEModel(
        read_model(Path(source)), threads=threads, backend=backend, source=source, truncate_dim=truncate_dim
    )
