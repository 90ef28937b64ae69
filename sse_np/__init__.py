"""sse_np: SSE (Stable Static Embedding) text embeddings with NumPy + numba.

Quick start::

    import sse_np
    vectors = sse_np.encode(["a query", "a document"], dim=256)   # default model
    model = sse_np.load("path/to/model")                          # any SSE checkpoint
    scores = sse_np.similarity(model.encode("query"), model.encode(docs))

Evaluation lives in :mod:`sse_np.eval`; the back-ends in :mod:`sse_np.engine`.
"""

from __future__ import annotations

import warnings

from .api import default_model, default_model_path, encode, similarity, similarity_pairwise
from .errors import DataError, MissingDependencyError, ModelLoadError, ModelNotFoundError
from .hub import download
from .model import MATRYOSHKA_DIMS, SSEModel, load
from .quantization import quantize_embeddings
from .search import semantic_search

__version__ = "0.1.0"

__all__ = [
    "MATRYOSHKA_DIMS",
    "DataError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "SSEModel",
    "default_model",
    "default_model_path",
    "download",
    "encode",
    "load",
    "similarity",
    "similarity_pairwise",
    "quantize_embeddings",
    "semantic_search",
    "__version__",
]

# Evaluation names that lived here before sse_np.eval; importable from here
# for one more release, with a DeprecationWarning.
_MOVED_TO_EVAL = (
    "DEFAULT_DIMS",
    "METRICS",
    "evaluate",
    "format_report",
    "load_beir",
    "plot_report",
    "save_report",
    "write_beir",
)


def __getattr__(name: str):
    if name in _MOVED_TO_EVAL:
        warnings.warn(
            f"sse_np.{name} moved to sse_np.eval.{name}; the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        from . import eval as _eval

        return getattr(_eval, name)
    raise AttributeError(f"module 'sse_np' has no attribute {name!r}")
