"""Lucene BM25 over token ids: a CSR inverted index built with NumPy, scored with numba (or NumPy).

The index holds, per term, its documents and each (term, document) pair's
precomputed score (``idf * tf-part``, Lucene's formula, as ``bm25s``
``method="lucene"`` computes it)::

    idf(t)     = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(t,d) = idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))

A query's score for a document is the sum of its tokens' pair scores (a
token given twice counts twice, as in ``bm25s``). Tokens are whatever ids the
caller chose (here: the model's own WordPiece ids, see :mod:`sse_np.index`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..engine import numba_available, numba_loading

__all__ = [
    "DEFAULT_B",
    "DEFAULT_K1",
    "BM25Postings",
    "bm25_idf",
    "bm25_scores",
    "build_postings",
    "term_saturations",
]

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75


@dataclass(frozen=True)
class BM25Postings:
    """A CSR inverted index: term ``t`` owns ``doc_ids/weights[indptr[t]:indptr[t + 1]]`` (doc ids ascending)."""

    indptr: np.ndarray  # int64, (vocab_size + 1,)
    doc_ids: np.ndarray  # int32, (n_postings,)
    weights: np.ndarray  # float32, (n_postings,)
    n_docs: int

    @property
    def vocab_size(self) -> int:
        return int(self.indptr.shape[0] - 1)


def build_postings(
    ids: np.ndarray,
    offsets: np.ndarray,
    vocab_size: int,
    k1: float = DEFAULT_K1,
    b: float = DEFAULT_B,
    field_starts: tuple[int, ...] = (),
    field_weights: tuple[float, ...] = (),
) -> BM25Postings:
    """The index of ``n`` documents given in EmbeddingBag form: document ``i`` is ``ids[offsets[i]:offsets[i+1]]``.

    Every id must be in ``[0, vocab_size)``. Document lengths count every
    token given (filter stopwords before calling). ``field_starts``: ascending
    ids where another field's terms begin; each field's tokens then have
    their own document lengths and average, so a query scores the sum of
    each field's BM25 (Elasticsearch's ``most_fields``), each times its
    ``field_weights`` entry (default 1).
    """
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_docs = int(offsets.shape[0] - 1)
    if n_docs < 0 or (ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size)):
        raise ValueError(f"token ids must lie in [0, {vocab_size}) and offsets must have n + 1 entries")
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(offsets))
    # One sort of (term, doc) keys gives the postings in term-then-doc order and each pair's tf.
    keys, tf = np.unique(ids * max(n_docs, 1) + doc_of, return_counts=True)
    terms = keys // max(n_docs, 1)
    docs = (keys - terms * max(n_docs, 1)).astype(np.int32)
    df = np.bincount(terms, minlength=vocab_size)
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    n_fields = len(field_starts) + 1
    field_of_term, field_of_token = _field_of(terms, field_starts), _field_of(ids, field_starts)
    if n_fields == 1:
        lengths = np.diff(offsets)[:, None]
    else:
        lengths = np.bincount(doc_of * n_fields + field_of_token, minlength=n_docs * n_fields)
        lengths = lengths.reshape(n_docs, n_fields)
    avgdl = lengths.mean(axis=0) if n_docs else np.ones(n_fields)
    idf = bm25_idf(df, n_docs)
    # k1 * (1 - b + b * |d| / avgdl) per document and field first: one gather per pair, not several.
    length_norm = k1 * (1.0 - b + b * lengths / np.where(avgdl > 0, avgdl, 1.0))
    tf = tf.astype(np.float64)
    weights = idf[terms] * (tf / (tf + length_norm[docs, field_of_term]))
    if field_weights:
        if len(field_weights) != n_fields:
            raise ValueError(f"{n_fields} fields but {len(field_weights)} field weights")
        weights *= np.asarray(field_weights, dtype=np.float64)[field_of_term]
    weights = weights.astype(np.float32)
    return BM25Postings(indptr, docs, weights, n_docs)


def _field_of(ids: np.ndarray, field_starts: tuple[int, ...]) -> np.ndarray:
    """Each id's field: how many field starts lie at or below it (int64; a few comparisons, no search)."""
    field = np.zeros(ids.shape[0], dtype=np.int64)
    for start in field_starts:
        field += ids >= start
    return field


def bm25_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Lucene's ``ln(1 + (N - df + 0.5) / (df + 0.5))`` (float64), per document frequency."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _saturation(tf: np.ndarray, length: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """The document side of a pair score: ``tf / (tf + k1 * (1 - b + b * |d| / avgdl))`` (float64)."""
    tf = np.asarray(tf, dtype=np.float64)
    return tf / (tf + k1 * (1.0 - b + b * np.asarray(length, dtype=np.float64) / (avgdl or 1.0)))


def term_saturations(
    ids: np.ndarray, offsets: np.ndarray, avgdl: float, k1: float = DEFAULT_K1, b: float = DEFAULT_B
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each document's distinct terms and their BM25 document part, without the idf.

    Documents in EmbeddingBag form as for :func:`build_postings`; returns
    ``(indptr, terms, values)``: document ``i`` owns the ascending term ids
    ``terms[indptr[i]:indptr[i + 1]]`` (int64) and their saturations ``values``
    (float64). A store that multiplies in ``bm25_idf`` at query time (Qdrant's
    IDF modifier) then scores exactly as :func:`build_postings` with the same
    ``avgdl`` -- which must be the corpus mean length, fixed when the weights are made.
    """
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_docs = int(offsets.shape[0] - 1)
    lengths = np.diff(offsets)
    vocab = int(ids.max()) + 1 if ids.size else 1
    # One sort of (doc, term) keys gives each document's terms in ascending order and their tf.
    keys, tf = np.unique(np.repeat(np.arange(n_docs, dtype=np.int64), lengths) * vocab + ids, return_counts=True)
    docs = keys // vocab
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(docs, minlength=n_docs), out=indptr[1:])
    return indptr, keys - docs * vocab, _saturation(tf, lengths[docs], avgdl, k1, b)


def bm25_scores(postings: BM25Postings, terms: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Every document's BM25 score (float32, ``(n_docs,)``) for one query's token ids.

    Ids outside the vocabulary are ignored (they match no document).
    """
    terms = np.asarray(terms, dtype=np.int64)
    terms = terms[(terms >= 0) & (terms < postings.vocab_size)]
    if out is None:
        out = np.zeros(postings.n_docs, dtype=np.float32)
    else:
        out[:] = 0.0
    kernel = _kernel()
    if kernel is not None:
        kernel(postings.indptr, postings.doc_ids, postings.weights, terms, out)
        return out
    # NumPy: one bincount over the query's posting slices (a repeated term's slice comes twice).
    starts, ends = postings.indptr[terms], postings.indptr[terms + 1]
    if terms.size:
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts.tolist(), ends.tolist())])
        out += np.bincount(postings.doc_ids[take], weights=postings.weights[take], minlength=postings.n_docs).astype(
            np.float32
        )
    return out


_lock = threading.Lock()
_loaded: Callable[..., None] | Literal[False] | None = None  # None: not tried; False: unavailable


def _kernel() -> Callable[..., None] | None:
    """The numba kernel, or None without numba or under NUMBA_DISABLE_JIT (decided once)."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded or None


def _load() -> Callable[..., None] | Literal[False]:
    if not numba_available():
        return False
    try:
        with numba_loading() as numba:
            if numba.config.DISABLE_JIT:
                return False
            from .bm25_kernels import bm25_accumulate
    except Exception:
        return False
    return bm25_accumulate
