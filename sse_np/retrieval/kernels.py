"""numba kernels of the retrieval search (imported by :mod:`sse_np.retrieval.jit`, only when numba is usable).

Serial, GIL-free kernels (no numba threading layer: fork-safe, like the
engine's); :mod:`sse_np.retrieval.hamming` runs them on Python threads.

Hamming top-k: one pass over the documents (in cache-sized blocks) keeps, per
query, a histogram of the kept distances and the threshold T: the smallest
distance with at least k kept documents at or below it. A
later document enters only with a distance below T (a tie loses to the
earlier, lower index), so after the first blocks almost nothing is stored.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always")
def _popcount64(x: np.uint64) -> np.uint64:
    # The SWAR idiom, which LLVM turns into one popcnt instruction where the CPU has it.
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(cache=True, inline="always")
def _block_distances(q, scratch, m, row):  # pragma: no cover - jitted
    """``row[j] = popcount(q ^ document j)`` for the ``m`` documents of a transposed block.

    Word-major order makes the inner loop contiguous, so LLVM vectorizes the
    popcounts (about 3x faster than a loop over documents' words).
    """
    a = q[0]
    s0 = scratch[0]
    for j in range(m):
        row[j] = np.int32(_popcount64(a ^ s0[j]))
    for w in range(1, q.shape[0]):
        a = q[w]
        sw = scratch[w]
        for j in range(m):
            row[j] += np.int32(_popcount64(a ^ sw[j]))


@njit(cache=True)
def _compact(cand_d, cand_i, n, thr, count_lt, depth):  # pragma: no cover - jitted
    """Keep, in index order, the candidates below ``thr`` and the first ``depth - count_lt`` at ``thr``."""
    room_at_thr = depth - count_lt
    m = 0
    for c in range(n):
        v = cand_d[c]
        if v < thr or (v == thr and room_at_thr > 0):
            if v == thr:
                room_at_thr -= 1
            cand_d[m] = v
            cand_i[m] = cand_i[c]
            m += 1
    return m


@njit(cache=True, inline="always")
def _distance(q, d_words, j):  # pragma: no cover - jitted
    if q.shape[0] == 4:  # 256 bits, unrolled
        return np.int64(
            _popcount64(q[0] ^ d_words[j, 0])
            + _popcount64(q[1] ^ d_words[j, 1])
            + _popcount64(q[2] ^ d_words[j, 2])
            + _popcount64(q[3] ^ d_words[j, 3])
        )
    s = np.uint64(0)
    for w in range(q.shape[0]):
        s += _popcount64(q[w] ^ d_words[j, w])
    return np.int64(s)


@njit(cache=True)
def _scan_rows(q, d_words, offset, depth, hist, cand_d, cand_i, t, lt, n):  # pragma: no cover - jitted
    """One query over all rows, distance and filter fused (few queries: no transposition)."""
    cap = cand_d.shape[0]
    for j in range(d_words.shape[0]):
        v = _distance(q, d_words, j)
        if v < t:
            if n == cap:
                n = _compact(cand_d, cand_i, n, t, lt, depth)
            cand_d[n] = v
            cand_i[n] = offset + j
            n += 1
            hist[v] += 1
            lt += 1
            while lt >= depth:
                t -= 1
                lt -= hist[t]
    return t, lt, n


@njit(cache=True, nogil=True)
def hamming_top_k_scan(
    q_words, d_words, offset, depth, n_bits, doc_block, hist, thr, count_lt, cand_d, cand_i, n_cand, buf
):  # pragma: no cover - jitted
    """Feed documents ``offset + j`` (``d_words[j]``) to the running top-``depth`` state of every query.

    Serial and GIL-free: callers split the queries across Python threads.
    Four or more queries walk the documents in blocks of ``doc_block``,
    transposed to word-major order; ``buf`` (n_q, doc_block) int32 holds a
    block's distances before they are filtered. Fewer queries stream the
    rows directly.
    """
    n_q, n_words = q_words.shape
    n_d = d_words.shape[0]
    cap = cand_d.shape[1]
    if n_q < 4:
        # Few queries: each streams the rows once, distance and filter fused.
        for i in range(n_q):
            thr[i], count_lt[i], n_cand[i] = _scan_rows(
                q_words[i], d_words, offset, depth, hist[i], cand_d[i], cand_i[i], thr[i], count_lt[i], n_cand[i]
            )
        return
    # Many queries: each block is transposed to word-major order once, so
    # the popcount loop vectorizes (about 3x faster) for every query.
    scratch = np.empty((n_words, doc_block), dtype=np.uint64)
    for j0 in range(0, n_d, doc_block):
        j1 = min(j0 + doc_block, n_d)
        for j in range(j1 - j0):
            for w in range(n_words):
                scratch[w, j] = d_words[j0 + j, w]
        for i in range(n_q):
            t = thr[i]
            lt = count_lt[i]
            n = n_cand[i]
            row = buf[i]
            _block_distances(q_words[i], scratch, j1 - j0, row)
            for j in range(j0, j1):
                v = np.int64(row[j - j0])
                if v < t:
                    if n == cap:
                        n = _compact(cand_d[i], cand_i[i], n, t, lt, depth)
                    cand_d[i, n] = v
                    cand_i[i, n] = offset + j
                    n += 1
                    hist[i, v] += 1
                    lt += 1
                    while lt >= depth:
                        t -= 1
                        lt -= hist[i, t]
            thr[i] = t
            count_lt[i] = lt
            n_cand[i] = n


@njit(cache=True, nogil=True)
def hamming_top_k_finish(depth, thr, count_lt, cand_d, cand_i, n_cand, out_dist, out_idx):  # pragma: no cover
    """Final top-``depth`` of each query, ordered by (distance, index)."""
    for i in range(cand_d.shape[0]):
        m = _compact(cand_d[i], cand_i[i], n_cand[i], thr[i], count_lt[i], depth)
        order = np.argsort(cand_d[i, :m], kind="mergesort")  # stable: equal distances keep index order
        for r in range(m):
            out_dist[i, r] = cand_d[i, order[r]]
            out_idx[i, r] = cand_i[i, order[r]]


@njit(cache=True, nogil=True)
def merge_block_top_k(scores_t, d0, best_s, best_i, filled):  # pragma: no cover - jitted
    """Merge a score block into running top-k lists, in place.

    ``scores_t[j, i]`` is the score of document ``d0 + j`` for query ``i``
    (documents x queries: the BLAS product ``docs @ queries.T``, which is
    faster than ``queries @ docs.T`` for few queries and gives the same bits).
    Each row of ``best_s``/``best_i`` is sorted by (score desc, index asc) and
    holds ``filled[i]`` entries. A document enters a full list only with a
    score strictly above its last entry: a tie loses to the kept document,
    whose index is smaller, exactly as the NumPy path decides. Serial: one
    compare per score is cheap next to the matrix product that made the block.
    """
    n_d, n_q = scores_t.shape
    k = best_s.shape[1]
    for j in range(n_d):
        for i in range(n_q):
            s = scores_t[j, i]
            f = filled[i]
            if f == k and not s > best_s[i, k - 1]:
                continue
            # insertion point: after every entry with a score >= s (their indices are smaller)
            p = f if f < k else k - 1
            while p > 0 and best_s[i, p - 1] < s:
                if p < k:
                    best_s[i, p] = best_s[i, p - 1]
                    best_i[i, p] = best_i[i, p - 1]
                p -= 1
            best_s[i, p] = s
            best_i[i, p] = d0 + j
            if f < k:
                filled[i] = f + 1


@njit(cache=True, nogil=True, fastmath=True)
def codes_dot_t(codes, queries, out_t):  # pragma: no cover - jitted
    """``out_t[j, i] = queries[i] . codes[j]`` straight from int8/uint8 codes (few queries).

    Reads each code once instead of widening the block to float first. With
    integer-valued queries (quantized) the sums are exact integers, so the
    summation order (vectorized) does not matter.
    """
    n_d, dim = codes.shape
    n_q = queries.shape[0]
    for j in range(n_d):
        for i in range(n_q):
            s = queries.dtype.type(0)
            for w in range(dim):
                s += queries[i, w] * codes[j, w]
            out_t[j, i] = s
