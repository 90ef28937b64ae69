"""Exact inner-product top-k over float and int8/uint8 corpora, in blocks of bounded memory.

:func:`top_k` is the evaluation's search and the float scan of
:func:`sse_np.retrieval.search.semantic_search`. Ties are deterministic: a
higher score first, then the lower corpus index; results never depend on the
block sizes. With numba, a jitted merge keeps the running lists
(:mod:`sse_np.retrieval.kernels`); without it, NumPy selects per block. Both
give the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import normalize_rows
from .jit import get_kernels

# Score buffer of the float/int8 search: query_block x doc_block float32 (32 MB).
QUERY_BLOCK = 1024
DOC_BLOCK = 8192
_FAR = np.iinfo(np.int64).max // 2  # index of padding candidates: loses every tie


def block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of ``scores``, ties resolved by smaller column.

    Returns unsorted ``(values, columns)`` of shape ``(rows, min(k, cols))``.
    """
    rows, cols = scores.shape
    if k >= cols:
        return scores, np.broadcast_to(np.arange(cols), (rows, cols))
    # k-th largest value of each row; everything above it is in, and the ties
    # at it are taken in column order (argpartition alone would pick arbitrary
    # ties, which makes results depend on the block layout).
    threshold = np.partition(scores, cols - k, axis=1)[:, cols - k, None]
    take = scores > threshold
    need = k - take.sum(axis=1)
    tie = scores == threshold
    partial = np.nonzero(tie.sum(axis=1) > need)[0]
    take |= tie
    for r in partial:  # rare: more ties at the threshold than free slots
        tie_cols = np.nonzero(tie[r])[0]
        take[r, tie_cols[need[r] :]] = False
    columns = np.nonzero(take)[1].reshape(rows, k)
    return np.take_along_axis(scores, columns, axis=1), columns


def _block_candidates(scores: np.ndarray, kept: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a score block that can still enter the running top-k lists.

    ``kept`` holds the running lists (rows sorted best first). Once a list is
    full, only scores strictly above its k-th value can enter: a tie loses to
    the kept document, whose index is smaller. After the first blocks few
    columns pass that test, so they are gathered into a small padded array
    (score -inf, index past the end).
    """
    rows_n = scores.shape[0]
    if kept.shape[1] < k:
        return block_top_k(scores, k)
    rows, cols = np.nonzero(scores > kept[:, k - 1 : k])
    counts = np.bincount(rows, minlength=rows_n)
    width = int(counts.max()) if rows.size else 0
    if width > k:  # many candidates in some row: an exact top-k of the block is cheaper
        return block_top_k(scores, k)
    values = np.full((rows_n, width), -np.inf, dtype=scores.dtype)
    columns = np.full((rows_n, width), _FAR, dtype=np.int64)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values[rows, pos] = scores[rows, cols]
    columns[rows, pos] = cols
    return values, columns


def blocked_top_k(
    queries: np.ndarray,
    n_docs: int,
    k: int,
    doc_block_of: Callable[[int, int], np.ndarray],
    query_block: int,
    doc_block: int,
    codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Running top-k of ``queries @ doc_block_of(d0, d1).T`` over document blocks.

    ``codes``: the int8/uint8 rows behind ``doc_block_of``; with numba and at
    most 3 queries they are scored directly, without widening each block.
    """
    n_queries = queries.shape[0]
    dtype = queries.dtype
    depth = min(k, n_docs)
    kernels = get_kernels()
    if kernels and depth > 0:
        # numba: one compare per score, an insertion only for the few that enter.
        merge = kernels.merge_top_k
        best_scores = np.empty((n_queries, depth), dtype=dtype)
        best_index = np.empty((n_queries, depth), dtype=np.int64)
        filled = np.zeros(n_queries, dtype=np.int64)
        few = codes is not None and n_queries <= 3
        scores_t = np.empty((doc_block if few else 0, n_queries), dtype=dtype)
        for d0 in range(0, n_docs, doc_block):
            if codes is not None and few:
                d1 = min(d0 + doc_block, n_docs)
                kernels.codes_dot_t(codes[d0:d1], queries, scores_t[: d1 - d0])
                merge(scores_t[: d1 - d0], d0, best_scores, best_index, filled)
                continue
            block = doc_block_of(d0, min(d0 + doc_block, n_docs))
            for q0 in range(0, n_queries, query_block):
                q1 = min(q0 + query_block, n_queries)
                merge(block @ queries[q0:q1].T, d0, best_scores[q0:q1], best_index[q0:q1], filled[q0:q1])
        return best_scores, best_index
    best_scores = np.empty((n_queries, 0), dtype=dtype)
    best_index = np.empty((n_queries, 0), dtype=np.int64)
    # Documents outside, queries inside: each document block is prepared once;
    # the running top-k lists of all queries are tiny (n x k).
    for d0 in range(0, n_docs, doc_block):
        block = doc_block_of(d0, min(d0 + doc_block, n_docs))
        width = min(depth, d0 + block.shape[0])
        new_scores = np.empty((n_queries, width), dtype)
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


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int if it is a positive int (not a bool), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def top_k(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int = 10,
    *,
    normalize_docs: bool = False,
    query_block: int = QUERY_BLOCK,
    doc_block: int = DOC_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over all documents.

    Parameters
    ----------
    queries : ndarray, shape (n_queries, d)
        Query vectors (normalised by the caller for cosine similarity).
    docs : ndarray, shape (n_docs, d)
        Document vectors, any float dtype; may be a non-contiguous view such
        as ``X[:, :d]`` or a memory map (read one block at a time).
    k : int
        Ranking depth; ``min(k, n_docs)`` results are returned.
    normalize_docs : bool
        L2-normalise each document block before scoring (cosine similarity
        without materialising a normalised copy of the corpus).
    query_block, doc_block : int
        Block sizes; the score buffer is ``query_block x doc_block`` float32.
        They never change the result.

    Returns
    -------
    scores : ndarray, float32, shape (n_queries, min(k, n_docs))
    indices : ndarray, int64, same shape
        Document indices sorted by descending score, ties by ascending index.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if docs.ndim != 2 or queries.ndim != 2 or docs.shape[1] != queries.shape[1]:
        raise ValueError(f"shape mismatch: queries {queries.shape}, docs {docs.shape}")
    k = positive_int(k, "k")
    query_block, doc_block = positive_int(query_block, "query_block"), positive_int(doc_block, "doc_block")

    def doc_block_of(d0: int, d1: int) -> np.ndarray:
        block = docs[d0:d1]
        if not normalize_docs and block.dtype == np.float32 and block.flags.c_contiguous:
            return block  # scored as it is: no copy
        block = np.array(block, dtype=np.float32, order="C")
        return normalize_rows(block) if normalize_docs else block

    return blocked_top_k(queries, docs.shape[0], k, doc_block_of, query_block, doc_block)


def scalar_top_k(
    query_codes: np.ndarray, doc_codes: np.ndarray, k: int, query_block: int, doc_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of integer dot products between int8/uint8 codes.

    Blocks are widened to float32 for BLAS; sums stay exact integers while
    they fit in float32's 24-bit mantissa, else float64 is used.
    """
    bound = int(np.abs(query_codes.astype(np.int64)).max(initial=0)) * 255 * query_codes.shape[1]
    dtype = np.float32 if bound < 2**24 else np.float64
    queries = query_codes.astype(dtype)
    return blocked_top_k(
        queries,
        doc_codes.shape[0],
        k,
        lambda d0, d1: doc_codes[d0:d1].astype(dtype),
        query_block,
        doc_block,
        codes=doc_codes,
    )


def sort_candidates(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row by score descending, then index ascending."""
    order = np.lexsort((indices, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)
