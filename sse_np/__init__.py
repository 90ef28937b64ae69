"""sse_np: SSE (Stable Static Embedding) text embeddings with NumPy + numba.

Quick start::

    import sse_np
    vectors = sse_np.encode(["a query", "a document"], dim=256)   # default model
    model = sse_np.load("path/to/model")                          # any SSE checkpoint
    scores = sse_np.similarity(model.encode("query"), model.encode(docs))

This module only re-exports. The layers, each importing only those below it:
:mod:`sse_np.cli`; :mod:`sse_np.serve`, :mod:`sse_np.bulk`, :mod:`sse_np.eval`,
:mod:`sse_np.bench`, :mod:`sse_np.integrations`; :mod:`sse_np.defaults`; :mod:`sse_np.model`;
:mod:`sse_np.engine`, :mod:`sse_np.checkpoint`, :mod:`sse_np.retrieval`;
:mod:`sse_np.settings`, :mod:`sse_np.errors`, :mod:`sse_np.progress`.
"""

from __future__ import annotations

from ._moved import root_getattr as __getattr__  # noqa: F401 (PEP 562: names that left the root)
from ._version import __version__
from .checkpoint.hub import download
from .defaults import default_model, default_model_path, encode
from .errors import DataError, MissingDependencyError, ModelLoadError, ModelNotFoundError
from .model import MATRYOSHKA_DIMS, SSEModel, load
from .retrieval.quantization import quantize_embeddings
from .retrieval.search import semantic_search
from .retrieval.similarity import similarity, similarity_pairwise

__all__ = [
    "MATRYOSHKA_DIMS",
    "DataError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "SSEModel",
    "__version__",
    "default_model",
    "default_model_path",
    "download",
    "encode",
    "load",
    "quantize_embeddings",
    "semantic_search",
    "similarity",
    "similarity_pairwise",
]
