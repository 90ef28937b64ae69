"""One entry point for every checkpoint format: SSE's layouts, model2vec, StaticEmbedding.

The format is detected from the files (see :func:`read_model`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .layout import is_model2vec
from .model2vec import read_model2vec
from .read import Checkpoint, read_checkpoint

__all__ = ["read_model"]


def read_model(root: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint in any supported format.

    * model2vec -- ``model.safetensors`` at the root holding ``embeddings``;
    * sentence-transformers StaticEmbedding -- ``modules.json`` naming a
      StaticEmbedding module (its ``Normalize`` and ``truncate_dim`` honoured);
    * SSE -- full, 4-bit or static layouts.

    An unknown format is refused with a :class:`~sse_np.errors.ModelLoadError`
    naming the files found.
    """
    root = Path(root)
    if root.is_dir() and is_model2vec(root):
        return read_model2vec(root)
    return read_checkpoint(root)
