"""Exact top-k search by blocked BLAS products (bounded memory).

Ties are broken deterministically: higher score first, then the document
that comes first (smaller index). Results are bitwise reproducible for the
same inputs, block sizes and BLAS library.
"""

from __future__ import annotations

import numpy as np

from ..engine import normalize_rows

#: Depth of the ranking kept per query (the largest cut-off of the metrics).
TOP_K = 100


def _block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of ``scores``, ties resolved by smaller column.

    Returns unsorted ``(values, columns)`` of shape ``(rows, min(k, cols))``.
    """
    rows, cols = scores.shape
    if k >= cols:
        columns = np.broadcast_to(np.arange(cols), (rows, cols))
        return scores, columns
    # k-th largest value of each row; everything above it is in, and the
    # ties at it are taken in column order (argpartition alone would pick
    # arbitrary ties, which makes results depend on the block layout).
    threshold = np.partition(scores, cols - k, axis=1)[:, cols - k, None]
    take = scores > threshold
    need = k - take.sum(axis=1)
    tie = scores == threshold
    n_tie = tie.sum(axis=1)
    partial = np.nonzero(n_tie > need)[0]
    take |= tie
    for r in partial:  # rare: more ties at the threshold than free slots
        tie_cols = np.nonzero(tie[r])[0]
        take[r, tie_cols[need[r]:]] = False
    columns = np.nonzero(take)[1].reshape(rows, k)
    return np.take_along_axis(scores, columns, axis=1), columns


def exact_top_k(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int = TOP_K,
    *,
    normalize_docs: bool = False,
    query_block: int = 1024,
    doc_block: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over all documents.

    Parameters
    ----------
    queries : ndarray, shape (n_queries, d)
        Query vectors (normalised by the caller for cosine similarity).
    docs : ndarray, shape (n_docs, d)
        Document vectors; may be a non-contiguous view such as ``X[:, :d]``.
    k : int
        Ranking depth; ``min(k, n_docs)`` results are returned.
    normalize_docs : bool
        L2-normalise each document block before scoring (cosine similarity
        without materialising a normalised copy of the corpus).
    query_block, doc_block : int
        Block sizes; the score buffer is ``query_block x doc_block`` float32.

    Returns
    -------
    scores : ndarray, float32, shape (n_queries, min(k, n_docs))
    indices : ndarray, int64, same shape
        Document indices sorted by descending score, ties by ascending index.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_queries, n_docs = queries.shape[0], docs.shape[0]
    if docs.ndim != 2 or queries.ndim != 2 or docs.shape[1] != queries.shape[1]:
        raise ValueError(f"shape mismatch: queries {queries.shape}, docs {docs.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    depth = min(k, n_docs)
    best_scores = np.empty((n_queries, 0), dtype=np.float32)
    best_index = np.empty((n_queries, 0), dtype=np.int64)
    # Documents outside, queries inside: each document block is copied and
    # normalised once; running top-k lists of all queries are tiny (n x k).
    for d0 in range(0, n_docs, doc_block):
        block = np.array(docs[d0 : d0 + doc_block], dtype=np.float32, order="C")
        if normalize_docs:
            normalize_rows(block)
        width = min(depth, d0 + block.shape[0])
        new_scores = np.empty((n_queries, width), np.float32)
        new_index = np.empty((n_queries, width), dtype=np.int64)
        for q0 in range(0, n_queries, query_block):
            q1 = min(q0 + query_block, n_queries)
            kept_scores, kept_index = best_scores[q0:q1], best_index[q0:q1]
            values, columns = _block_candidates(queries[q0:q1] @ block.T, kept_scores, depth)
            cand_scores = np.concatenate([kept_scores, values], axis=1)
            cand_index = np.concatenate([kept_index, columns + d0], axis=1)
            order = np.lexsort((cand_index, -cand_scores), axis=1)[:, :width]
            new_scores[q0:q1] = np.take_along_axis(cand_scores, order, axis=1)
            new_index[q0:q1] = np.take_along_axis(cand_index, order, axis=1)
        best_scores, best_index = new_scores, new_index
    return best_scores, best_index


def _block_candidates(scores: np.ndarray, kept: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a score block that can still enter the running top-k lists.

    ``kept`` holds the running lists (rows sorted best first). Once a list is
    full, only scores strictly above its k-th value can enter: a tie loses to
    the kept document, whose index is smaller. That test is one cheap pass,
    and after the first blocks few columns pass it, so the candidates are
    gathered into a small padded array (score -inf, index past the end).
    """
    rows_n = scores.shape[0]
    if kept.shape[1] < k:
        return _block_top_k(scores, k)
    rows, cols = np.nonzero(scores > kept[:, k - 1 : k])
    counts = np.bincount(rows, minlength=rows_n)
    width = int(counts.max()) if rows.size else 0
    if width > k:  # many candidates in some row: an exact top-k of the block is cheaper
        return _block_top_k(scores, k)
    values = np.full((rows_n, width), -np.inf, dtype=np.float32)
    columns = np.full((rows_n, width), np.iinfo(np.int64).max // 2, dtype=np.int64)
    # position of each candidate within its row (np.nonzero is row-major)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values[rows, pos] = scores[rows, cols]
    columns[rows, pos] = cols
    return values, columns
