"""A small local index: the model's vectors and BM25 postings, searched dense, BM25 or hybrid.

* :mod:`~sse_np.index.core`  -- :class:`Index` (add, search, save, load);
* :mod:`~sse_np.index.rank`  -- the ranking of encoded queries per mode;
* :mod:`~sse_np.index.store` -- the versioned on-disk format;
* :mod:`~sse_np.index.lexical` -- BM25's tokens (also used by the Qdrant adapter's sparse vector).
"""

from __future__ import annotations

from .core import MODES, Index

__all__ = ["MODES", "Index"]
