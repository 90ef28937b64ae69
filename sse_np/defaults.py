"""Module-level conveniences: the default model, ``encode`` and ``similarity``."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError
from .model import DEFAULT_BATCH_SIZE, SSEModel, load

#: Environment variable naming a model folder (or hub id) to use by default.
MODEL_ENV = "SSE_NP_MODEL"

_default: SSEModel | None = None
_default_lock = threading.Lock()


def default_model_path() -> Path:
    """Folder of the default model.

    ``$SSE_NP_MODEL`` if set; else the checkout's ``weights/`` (source tree or
    editable install); else the copy a wheel installs under
    ``<prefix>/share/sse_np/weights``, where the prefix is the environment's
    or, for ``pip install --target DIR`` (Lambda zips), DIR itself.
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parent.parent
    checkout = beside / "weights"
    for installed in (Path(sys.prefix) / "share" / "sse_np" / "weights", beside / "share" / "sse_np" / "weights"):
        if not (checkout / "model.safetensors").is_file() and (installed / "model.safetensors").is_file():
            return installed
    return checkout


def default_model() -> SSEModel:
    """The default model, loaded once (lazily, thread-safely).

    Returns
    -------
    SSEModel

    Raises
    ------
    sse_np.ModelNotFoundError
        The default folder holds no model yet.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                path = default_model_path()
                try:
                    _default = load(path)
                except ModelNotFoundError as exc:
                    raise ModelNotFoundError(
                        f"no default model: {exc}. Build it with `python weights/build.py`, set "
                        f"{MODEL_ENV} to a model folder, or use sse_np.load(path)"
                    ) from None
    return _default


def encode(
    texts: str | Iterable[str],
    dim: int | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    normalize: bool = True,
    **kwargs,
) -> np.ndarray:
    """Embed texts with the default model (see :meth:`SSEModel.encode`).

    Parameters
    ----------
    texts : str or sequence of str
    dim : int, optional
        Matryoshka truncation, 1..D; default the model's ``truncate_dim``,
        else its full width (as everywhere in sse_np and in
        sentence-transformers). Trained sizes 512/256/128/64/32.
    batch_size : int
    normalize : bool
    **kwargs
        Every other :meth:`SSEModel.encode` keyword (``precision``,
        ``truncate_dim``, ``normalize_embeddings``, ``show_progress_bar``...).

    Returns
    -------
    ndarray float32, (dim,) for one str, else (n, dim)
    """
    return default_model().encode(texts, dim, batch_size=batch_size, normalize=normalize, **kwargs)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix, as ``sentence_transformers.util.cos_sim``.

    Parameters
    ----------
    a : ndarray (n, d) or (d,)
    b : ndarray (m, d) or (d,)

    Returns
    -------
    ndarray float32, shape (n, m) (1-D inputs count as one row)
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"similarity needs (n, d) and (m, d) arrays with the same d, got {a.shape} and {b.shape}")
    eps = np.float32(1e-12)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), eps)
    return a @ b.T


def similarity_pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``, as
    ``sentence_transformers.util.pairwise_cos_sim``.

    Parameters
    ----------
    a, b : ndarray (n, d) (1-D inputs count as one row)

    Returns
    -------
    ndarray float32, shape (n,)
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"similarity_pairwise needs two (n, d) arrays of the same shape, got {a.shape} and {b.shape}")
    eps = np.float32(1e-12)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), eps)
    return np.einsum("ij,ij->i", a, b)
