"""numba kernel of BM25 scoring (imported by :mod:`sse_np.retrieval.bm25` only when numba is usable).

Serial and GIL-free, like the other retrieval kernels (no numba threading layer).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def bm25_accumulate(indptr, doc_ids, weights, terms, out):  # pragma: no cover - jitted
    """``out[d] += weights[p]`` for every posting ``p`` of every term in ``terms`` (repeats count again)."""
    for t in terms:
        for p in range(indptr[t], indptr[t + 1]):
            out[doc_ids[p]] += weights[p]
