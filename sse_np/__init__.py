"""sse_np: SSE (Stable Static Embedding) text embeddings with NumPy + numba.

Quick start::

    import sse_np
    vectors = sse_np.encode(["a query", "a document"], dim=256)   # default model
    model = sse_np.load("path/to/model")                          # any SSE checkpoint
    scores = sse_np.similarity(model.encode("query"), model.encode(docs))
"""

from __future__ import annotations

from .api import default_model, default_model_path, encode, similarity
from .errors import ModelLoadError, ModelNotFoundError
from .evaluate import (
    DEFAULT_DIMS,
    METRICS,
    DataError,
    MissingDependencyError,
    evaluate,
    format_report,
    load_beir,
    plot_report,
    save_report,
    write_beir,
)
from .hub import download
from .model import MATRYOSHKA_DIMS, SSEModel, load

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DIMS",
    "METRICS",
    "DataError",
    "MissingDependencyError",
    "evaluate",
    "format_report",
    "load_beir",
    "plot_report",
    "save_report",
    "write_beir",
    "MATRYOSHKA_DIMS",
    "ModelLoadError",
    "ModelNotFoundError",
    "SSEModel",
    "default_model",
    "default_model_path",
    "download",
    "encode",
    "load",
    "similarity",
    "__version__",
]

# --- retrieval toolkit (issue 16): quantized vectors and exact search
from .quantization import quantize_embeddings  # noqa: E402
from .search import semantic_search  # noqa: E402

__all__ += ["quantize_embeddings", "semantic_search"]
# --- end retrieval toolkit
