"""The public model object: ``SSEModel`` and ``load``.

``SSEModel`` (``core``) validates input (``inputs``), batches it and hands each
batch to its :class:`sse_np.engine.Engine`. ``load`` reads any supported
checkpoint format (SSE, model2vec, sentence-transformers StaticEmbedding)
from a folder or a hub id.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoint.formats import read_model
from .core import DEFAULT_BATCH_SIZE, MATRYOSHKA_DIMS, SSEModel

__all__ = ["DEFAULT_BATCH_SIZE", "MATRYOSHKA_DIMS", "SSEModel", "load"]


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
        from ..checkpoint.hub import download

        local = download(str(path))
    return SSEModel(read_model(local), threads=threads, backend=backend, source=local, truncate_dim=truncate_dim)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name
