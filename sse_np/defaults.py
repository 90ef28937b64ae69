"""The default model and the module-level ``encode`` that uses it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import ModelNotFoundError
from .model import DEFAULT_BATCH_SIZE, SSEModel, load
from .settings import MODEL as MODEL_ENV
from .settings import model as model_from_env

_default: SSEModel | None = None
_default_lock = threading.Lock()


def default_model_path() -> Path:
    """Folder of the default model.

    ``$SSE_NP_MODEL`` if set; else the checkout's ``weights/`` (source tree or
    editable install); else the copy a wheel installs under
    ``<prefix>/share/sse_np/weights``, where the prefix is the environment's
    or, for ``pip install --target DIR`` (Lambda zips), DIR itself.
    """
    env = model_from_env()
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
                        f"no default model: {exc}. Build it with `python scripts/build_default_model.py`, set "
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
