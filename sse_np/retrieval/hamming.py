"""Exact Hamming-distance top-k between packed binary codes.

The numba kernel (:mod:`sse_np.retrieval.kernels`) keeps per query a
histogram of the kept distances and a threshold, so after the first blocks
almost nothing is stored; the NumPy path merges ``distance << 40 | index``
keys per block. Both give the same results: ascending distance, ties by
ascending index, whatever the block size.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..settings import threads as settings_threads
from .jit import get_kernels
from .quantization import popcount, to_ubinary
from .topk import positive_int

# XOR buffer of the NumPy Hamming search (bytes).
_HAMMING_XOR_BUDGET = 16 << 20


def _threads(threads: int | None) -> int:
    """``threads``, else ``$SSE_NP_THREADS``, else the number of cores."""
    if threads is None:
        threads = settings_threads() or os.cpu_count() or 1
    return positive_int(threads, "threads")


def _as_words(codes: np.ndarray) -> np.ndarray:
    """Packed uint8 codes (n, B) as uint64 words (n, ceil(B / 8)), zero-padded (XOR of pads is 0)."""
    n, nbytes = codes.shape
    n_words = (nbytes + 7) // 8
    if nbytes == n_words * 8 and codes.flags.c_contiguous:
        return codes.view(np.uint64)
    words = np.zeros((n, n_words * 8), dtype=np.uint8)
    words[:, :nbytes] = codes
    return words.view(np.uint64)


def _hamming_top_k_numpy(q: np.ndarray, d: np.ndarray, k: int, doc_block: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocked XOR + popcount; the running top-k uses unique ``distance << 40 | index`` keys."""
    n_q, n_words = q.shape
    n_docs = d.shape[0]
    depth = min(k, n_docs)
    q_block = max(1, _HAMMING_XOR_BUDGET // (8 * n_words * doc_block))
    best = np.empty((n_q, 0), dtype=np.int64)
    for d0 in range(0, n_docs, doc_block):
        block = _as_words(np.ascontiguousarray(d[d0 : d0 + doc_block]))
        ids = np.arange(d0, d0 + block.shape[0], dtype=np.int64)
        merged = []
        for q0 in range(0, n_q, q_block):
            xor = q[q0 : q0 + q_block, None, :] ^ block[None, :, :]
            dist = popcount(xor).sum(axis=-1, dtype=np.int64)
            keys = np.concatenate([best[q0 : q0 + q_block], (dist << 40) | ids], axis=1)
            width = min(depth, keys.shape[1])
            if width < keys.shape[1]:
                keys = np.partition(keys, width - 1, axis=1)[:, :width]
            merged.append(keys)
        best = np.concatenate(merged, axis=0)
    best.sort(axis=1)
    return (best >> 40).astype(np.int32), best & ((1 << 40) - 1)


def hamming_top_k(
    query_codes: np.ndarray,
    corpus_codes: np.ndarray,
    k: int = 10,
    *,
    backend: str = "auto",
    doc_block: int = 1024,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hamming-distance top-k between packed binary codes.

    Parameters
    ----------
    query_codes : ndarray int8 or uint8, shape (n_queries, B)
        ``"binary"`` (int8) or ``"ubinary"`` (uint8) codes, ``B = ceil(dim / 8)``.
    corpus_codes : ndarray int8 or uint8, shape (n_docs, B)
        Codes of the corpus (may be a memory map).
    k : int
        Ranking depth; ``min(k, n_docs)`` results are returned.
    backend : {"auto", "numba", "numpy"}
        "auto" uses the numba kernel when numba is installed, jitting and not
        switched off (``SSE_NP_DISABLE_NUMBA``); both give identical results.
    doc_block : int
        Documents per block (bounded memory; never changes the result).
    threads : int, optional
        Most threads (numba path): default ``$SSE_NP_THREADS``, else the
        cores. Queries are split into ranges of at least 4.

    Returns
    -------
    distances : ndarray int32, shape (n_queries, min(k, n_docs))
        Ascending; ties by ascending index.
    indices : ndarray int64, same shape
    """
    q = np.atleast_2d(to_ubinary(query_codes))
    d = to_ubinary(corpus_codes)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"shape mismatch: query codes {q.shape}, corpus codes {d.shape} (bytes per vector must agree)")
    if d.shape[0] >= 1 << 40:
        raise ValueError("at most 2**40 documents")
    k = positive_int(k, "k")
    doc_block = positive_int(doc_block, "doc_block")
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    q_words = np.ascontiguousarray(_as_words(np.ascontiguousarray(q)))
    kernel = get_kernels() if backend != "numpy" else None
    if backend == "numba" and not kernel:
        raise ImportError("backend='numba' needs numba installed, jitting, and SSE_NP_DISABLE_NUMBA unset")
    if not kernel:
        return _hamming_top_k_numpy(q_words, d, k, doc_block)
    n_q, n_docs = q.shape[0], d.shape[0]
    depth = min(k, n_docs)
    out_dist = np.empty((n_q, depth), dtype=np.int32)
    out_idx = np.empty((n_q, depth), dtype=np.int64)
    if depth == 0:
        return out_dist, out_idx
    scan, finish = kernel.hamming_scan, kernel.hamming_finish
    n_bits = 8 * d.shape[1]
    aligned = d.shape[1] % 8 == 0 and d.flags.c_contiguous
    chunk = n_docs if aligned else max(doc_block, 1 << 16)  # unaligned codes: widened to words chunk by chunk
    cap = max(2 * depth, 256)

    def part(p0: int, p1: int) -> None:
        # Queries in blocks: the corpus is streamed once per block, and the
        # per-query state (histogram, candidates) stays small.
        for q0 in range(p0, p1, 256):
            q1 = min(q0 + 256, p1)
            m = q1 - q0
            hist = np.zeros((m, n_bits + 1), dtype=np.int64)
            thr = np.full(m, n_bits + 1, dtype=np.int64)
            count_lt = np.zeros(m, dtype=np.int64)
            cand_d = np.empty((m, cap), dtype=np.int64)
            cand_i = np.empty((m, cap), dtype=np.int64)
            n_cand = np.zeros(m, dtype=np.int64)
            buf = np.empty((m, doc_block), dtype=np.int32)
            for c0 in range(0, n_docs, chunk):
                words = d.view(np.uint64) if aligned else _as_words(d[c0 : c0 + chunk])
                scan(
                    q_words[q0:q1],
                    words,
                    c0,
                    depth,
                    n_bits,
                    doc_block,
                    hist,
                    thr,
                    count_lt,
                    cand_d,
                    cand_i,
                    n_cand,
                    buf,
                )
            finish(depth, thr, count_lt, cand_d, cand_i, n_cand, out_dist[q0:q1], out_idx[q0:q1])

    # The kernels release the GIL: ranges of queries (4+ each, so the
    # transposed path pays off) run on Python threads, as the engine does.
    parts = max(1, min(_threads(threads), n_q // 4))
    bounds = [n_q * i // parts for i in range(parts + 1)]
    if parts == 1:
        part(0, n_q)
    else:
        with ThreadPoolExecutor(max_workers=parts) as pool:  # per call: nothing to break across a fork
            for f in [pool.submit(part, bounds[i], bounds[i + 1]) for i in range(parts)]:
                f.result()
    return out_dist, out_idx
