"""BM25's lexical tokens: the model's own WordPiece ids, English stopwords left out.

Shared by :class:`sse_np.Index` and the store adapters (the Qdrant sparse
vector), so every BM25 in the package counts the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .stopwords import ENGLISH_STOPWORDS

__all__ = ["lexical_tokens", "stopword_ids"]


def stopword_ids(model: Any) -> np.ndarray:
    """Ids of the stopwords that are one WordPiece token each (the others have no id to drop)."""
    ids, offsets = model.tokenize(ENGLISH_STOPWORDS)
    single = np.diff(offsets) == 1
    return np.unique(ids[offsets[:-1][single]]).astype(np.int32)


def lexical_tokens(model: Any, texts: Sequence[str], stop_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's token ids of ``texts`` without ``stop_ids``, as ``(ids int32, offsets int64)``."""
    ids, offsets = model.tokenize(list(texts))
    if stop_ids.size == 0:
        return ids.astype(np.int32), offsets.astype(np.int64)
    keep = ~np.isin(ids, stop_ids)
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return ids[keep].astype(np.int32), kept_before[offsets]
