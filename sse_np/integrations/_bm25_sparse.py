"""BM25 as sparse vectors for a store that multiplies in the idf at query time (Qdrant's IDF modifier).

A document's vector holds, per distinct lexical token, Lucene's document part
``tf / (tf + k1 * (1 - b + b * |d| / avgdl))``; a query's holds each token's
count. The store multiplies each query weight by ``ln(1 + (N - df + 0.5) /
(df + 0.5))`` from its live collection, so the dot product is
:mod:`sse_np.retrieval.bm25`'s score, exactly, while ``avgdl`` is the corpus
mean: it is baked into the document vectors, fixed once and kept with the store.
Tokens are those of ``sse_np.Index(lexical="pieces")`` (:mod:`sse_np.index.lexical`): the model's
WordPiece ids, not Index's default whole words, because sparse indices need a fixed id space that
every upsert and query shares, which a word list numbered per index does not give.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from ..index.lexical import lexical_tokens, stopword_ids
from ..retrieval.bm25 import DEFAULT_B, DEFAULT_K1, term_saturations

__all__ = ["BM25Sparse"]


class BM25Sparse:
    """Sparse BM25 vectors of one model's tokens; ``settings()`` is what a store persists."""

    def __init__(
        self,
        model: Any,
        *,
        stopwords: bool = True,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        avgdl: float | None = None,
    ) -> None:
        if not (k1 >= 0 and 0 <= b <= 1) or (avgdl is not None and not avgdl > 0):
            raise ValueError(f"BM25 needs k1 >= 0, 0 <= b <= 1 and avgdl > 0 (or None), got {k1}, {b}, {avgdl}")
        self.model, self.stopwords = model, bool(stopwords)
        self.k1, self.b = float(k1), float(b)
        self.avgdl = None if avgdl is None else float(avgdl)
        self._stop_ids = stopword_ids(model) if self.stopwords else np.zeros(0, dtype=np.int32)

    @classmethod
    def from_settings(cls, model: Any, settings: dict[str, Any]) -> BM25Sparse:
        return cls(model, stopwords=settings["stopwords"], k1=settings["k1"], b=settings["b"], avgdl=settings["avgdl"])

    def settings(self) -> dict[str, Any]:
        return {"stopwords": self.stopwords, "k1": self.k1, "b": self.b, "avgdl": self.avgdl}

    def tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return lexical_tokens(self.model, texts, self._stop_ids)

    def fix_avgdl(self, offsets: np.ndarray) -> bool:
        """Take the mean length of these documents as ``avgdl`` unless one is set; True if it was set now.

        Documents without a token leave it unset (nothing to average yet).
        """
        if self.avgdl is not None or int(offsets[-1]) == 0:
            return False
        self.avgdl = float(offsets[-1]) / (offsets.shape[0] - 1)
        return True

    def documents(self, ids: np.ndarray, offsets: np.ndarray) -> list[tuple[list[int], list[float]]]:
        """``(indices, values)`` per document (ascending indices; an empty one for a document without tokens)."""
        if self.avgdl is None:
            raise ValueError("avgdl is not fixed yet: call fix_avgdl with the first documents")
        indptr, terms, values = term_saturations(ids, offsets, self.avgdl, self.k1, self.b)
        bounds = indptr.tolist()
        terms_l, values_l = terms.tolist(), values.tolist()
        return [(terms_l[s:e], values_l[s:e]) for s, e in pairwise(bounds)]

    def query(self, text: str) -> tuple[list[int], list[float]]:
        """``(indices, counts)``: a token given twice weighs twice, as in :func:`sse_np.retrieval.bm25.bm25_scores`."""
        ids, _ = self.tokens([text])
        terms, counts = np.unique(ids.astype(np.int64), return_counts=True)
        return terms.tolist(), counts.astype(np.float64).tolist()
