"""Exact top-k search over float, int8/uint8 and packed binary corpora.

* :func:`semantic_search`: the interface and result format of
  ``sentence_transformers.util.semantic_search`` (a list per query of
  ``{"corpus_id": int, "score": float}`` dicts, best first), for float
  corpora and for corpora quantized by :func:`sse_np.quantization.quantize_embeddings`,
  with the binary-then-rescore recipe of sentence-transformers'
  ``semantic_search_faiss`` / ``semantic_search_usearch``.
* :func:`top_k`: exact inner-product top-k as ``(scores, indices)`` arrays,
  with bounded memory (the evaluation's search).
* :func:`hamming_top_k`: exact Hamming top-k on packed bits, as
  ``(distances, indices)``.

Ties are deterministic everywhere: a higher score (a smaller Hamming
distance) first, then the lower corpus index; results never depend on the
block sizes. (One exception to bit-identical scores: float queries against an
int8/uint8 corpus with ``asymmetric=True`` are summed in another order for
1-3 queries than for a batch, which can move the last float32 bit.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .engine import normalize_rows

from .quantization import (
    check_precision,
    dequantize_embeddings,
    popcount,
    quantization_ranges,
    quantize_embeddings,
    to_ubinary,
)

__all__ = ["hamming_top_k", "semantic_search", "top_k"]

# Same epsilon as torch.nn.functional.normalize / sentence-transformers.
_EPS = 1e-12
# Score buffer of the float/int8 search: query_block x doc_block float32 (32 MB).
QUERY_BLOCK = 1024
DOC_BLOCK = 8192
# XOR buffer of the NumPy Hamming search (bytes).
_HAMMING_XOR_BUDGET = 16 << 20
_FAR = np.iinfo(np.int64).max // 2  # index of padding candidates: loses every tie


# --------------------------------------------------------------------------
# Exact inner-product top-k (float), blocked
# --------------------------------------------------------------------------


def _normalize_rows(block: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of a float32 block in place, with the engine's bits.

    The engine's own normalization (squares added left to right), so a
    normalized prefix ``X[:, :k]`` of raw full-width vectors is bit for bit
    ``encode(dim=k)``: the evaluation relies on it.
    """
    return normalize_rows(block)


def _block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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
        return _block_top_k(scores, k)
    rows, cols = np.nonzero(scores > kept[:, k - 1 : k])
    counts = np.bincount(rows, minlength=rows_n)
    width = int(counts.max()) if rows.size else 0
    if width > k:  # many candidates in some row: an exact top-k of the block is cheaper
        return _block_top_k(scores, k)
    values = np.full((rows_n, width), -np.inf, dtype=scores.dtype)
    columns = np.full((rows_n, width), _FAR, dtype=np.int64)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values[rows, pos] = scores[rows, cols]
    columns[rows, pos] = cols
    return values, columns


def _blocked_top_k(
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
    kernels = _get_numba_kernel()
    if kernels and depth > 0:
        # numba: one compare per score, an insertion only for the few that enter.
        merge = kernels[2]
        best_scores = np.empty((n_queries, depth), dtype=dtype)
        best_index = np.empty((n_queries, depth), dtype=np.int64)
        filled = np.zeros(n_queries, dtype=np.int64)
        few = codes is not None and n_queries <= 3
        scores_t = np.empty((doc_block, n_queries), dtype=dtype) if few else None
        for d0 in range(0, n_docs, doc_block):
            if few:
                d1 = min(d0 + doc_block, n_docs)
                kernels[3](codes[d0:d1], queries, scores_t[: d1 - d0])
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


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def _check_block(value: Any, name: str) -> int:
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
    k = _check_k(k)
    query_block, doc_block = _check_block(query_block, "query_block"), _check_block(doc_block, "doc_block")

    def doc_block_of(d0: int, d1: int) -> np.ndarray:
        block = docs[d0:d1]
        if not normalize_docs and block.dtype == np.float32 and block.flags.c_contiguous:
            return block  # scored as it is: no copy
        block = np.array(block, dtype=np.float32, order="C")
        return _normalize_rows(block) if normalize_docs else block

    return _blocked_top_k(queries, docs.shape[0], k, doc_block_of, query_block, doc_block)


_top_k = top_k  # semantic_search's argument `top_k` shadows the function


def _scalar_top_k(
    query_codes: np.ndarray, doc_codes: np.ndarray, k: int, query_block: int, doc_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of integer dot products between int8/uint8 codes.

    Blocks are widened to float32 for BLAS; sums stay exact integers while
    they fit in float32's 24-bit mantissa, else float64 is used.
    """
    bound = int(np.abs(query_codes.astype(np.int64)).max(initial=0)) * 255 * query_codes.shape[1]
    dtype = np.float32 if bound < 2**24 else np.float64
    queries = query_codes.astype(dtype)
    return _blocked_top_k(
        queries,
        doc_codes.shape[0],
        k,
        lambda d0, d1: doc_codes[d0:d1].astype(dtype),
        query_block,
        doc_block,
        codes=doc_codes,
    )


# --------------------------------------------------------------------------
# Exact Hamming top-k on packed bits
# --------------------------------------------------------------------------

_numba_lock = threading.Lock()
_numba_kernel: Any = None  # None: not tried yet; False: unavailable


def _numba_disabled() -> bool:
    return os.environ.get("SSE_NP_DISABLE_NUMBA", "").strip().lower() in ("1", "true", "yes", "on")


def _get_numba_kernel() -> Any:
    """The jitted kernels (Hamming scan, Hamming finish, top-k merge, codes dot), or False when numba is
    missing, switched off (SSE_NP_DISABLE_NUMBA) or not jitting (NUMBA_DISABLE_JIT)."""
    global _numba_kernel
    if _numba_kernel is not None:
        return _numba_kernel
    with _numba_lock:
        if _numba_kernel is None:
            _numba_kernel = False
            if not _numba_disabled():
                try:
                    import numba

                    # Under NUMBA_DISABLE_JIT the kernel would run as Python loops:
                    # the NumPy path is far faster then.
                    if not numba.config.DISABLE_JIT:
                        from . import _search_numba

                        _numba_kernel = (
                            _search_numba.hamming_top_k_scan,
                            _search_numba.hamming_top_k_finish,
                            _search_numba.merge_block_top_k,
                            _search_numba.codes_dot_t,
                        )
                except Exception:  # noqa: BLE001 - missing numba, or no usable cache: NumPy still works
                    _numba_kernel = False
    return _numba_kernel


def _threads(threads: int | None) -> int:
    """``threads``, else ``$SSE_NP_THREADS``, else the number of cores."""
    if threads is None:
        env = os.environ.get("SSE_NP_THREADS", "").strip()
        threads = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    return _check_block(threads, "threads")


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
    k = _check_k(k)
    doc_block = _check_block(doc_block, "doc_block")
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    q_words = np.ascontiguousarray(_as_words(np.ascontiguousarray(q)))
    kernel = _get_numba_kernel() if backend != "numpy" else False
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
    scan, finish = kernel[:2]
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


# --------------------------------------------------------------------------
# semantic_search
# --------------------------------------------------------------------------


def _score_kind(score_function: Any) -> str | Callable[[np.ndarray, np.ndarray], Any]:
    """'cos', 'dot' or a custom callable (sentence-transformers' cos_sim/dot_score are recognised)."""
    if score_function is None:
        return "cos"
    if isinstance(score_function, str):
        if score_function in ("cos", "cosine", "cos_sim"):
            return "cos"
        if score_function in ("dot", "dot_score"):
            return "dot"
        raise ValueError(f"score_function must be 'cos', 'dot' or a callable, got {score_function!r}")
    if not callable(score_function):
        raise TypeError(f"score_function must be 'cos', 'dot' or a callable, got {type(score_function).__name__}")
    name = getattr(score_function, "__name__", "")
    from .api import similarity

    if score_function is similarity or name == "cos_sim":
        return "cos"
    if name == "dot_score":
        return "dot"
    return score_function


def _infer_precision(corpus: np.ndarray, query_dim: int | None) -> str:
    if np.issubdtype(corpus.dtype, np.floating):
        return "float32"
    if corpus.dtype not in (np.int8, np.uint8):
        raise TypeError(f"corpus_embeddings must be float, int8 or uint8, got {corpus.dtype}")
    scalar = "int8" if corpus.dtype == np.int8 else "uint8"
    packed = "binary" if corpus.dtype == np.int8 else "ubinary"
    if query_dim is None or corpus.shape[1] == query_dim == (query_dim + 7) // 8:
        raise ValueError(
            f"{corpus.dtype} corpus: pass corpus_precision={scalar!r} or {packed!r} (cannot tell from the shapes)"
        )
    return scalar if corpus.shape[1] == query_dim else packed


def _results(scores: np.ndarray, indices: np.ndarray) -> list[list[dict[str, int | float]]]:
    return [
        [{"corpus_id": int(i), "score": float(s)} for s, i in zip(row_s.tolist(), row_i.tolist())]
        for row_s, row_i in zip(scores, indices)
    ]


def _sort_candidates(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row by score descending, then index ascending."""
    order = np.lexsort((indices, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


def _rescore(
    queries: np.ndarray,
    indices: np.ndarray,
    rescore_docs: np.ndarray,
    rescore_precision: str,
    ranges: np.ndarray | None,
    dim: int,
    kind: str,
    k: int,
    query_block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Score each query's candidates with the float query, keep the best ``k``.

    float documents: the search's score (cosine or dot), in float32.
    int8/uint8 documents: ``query . dequantized(doc)``; binary documents:
    ``query . bits(doc)`` (0/1) -- both in float64, as sentence-transformers'
    ``semantic_search_faiss``/``_usearch`` rescore.
    """
    n_q = queries.shape[0]
    out_s = np.empty((n_q, min(k, indices.shape[1])), dtype=np.float64)
    out_i = np.empty(out_s.shape, dtype=np.int64)
    for q0 in range(0, n_q, query_block):
        q1 = min(q0 + query_block, n_q)
        idx = indices[q0:q1]
        cand = np.asarray(rescore_docs[idx.ravel()])  # (rows * c, width): one gather, works on memory maps
        if rescore_precision == "float32":
            cand = cand.astype(np.float32, copy=False).reshape(idx.shape[0], idx.shape[1], -1)
            if kind == "cos":
                cand = cand / np.maximum(np.linalg.norm(cand, axis=-1, keepdims=True), np.float32(_EPS))
            scores = np.einsum("ij,ikj->ik", queries[q0:q1], cand).astype(np.float64)
        else:
            if rescore_precision in ("binary", "ubinary"):
                cand = np.unpackbits(to_ubinary(cand), axis=-1, count=dim)
                values = cand.astype(np.float64)
            else:
                values = dequantize_embeddings(cand, rescore_precision, ranges)
            values = values.reshape(idx.shape[0], idx.shape[1], -1)
            scores = np.einsum("ij,ikj->ik", queries[q0:q1].astype(np.float64), values)
        out_s[q0:q1], out_i[q0:q1] = _sort_candidates(scores, idx, k)
    return out_s, out_i


def semantic_search(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray,
    top_k: int = 10,
    query_chunk_size: int | None = None,
    corpus_chunk_size: int | None = None,
    score_function: str | Callable[[np.ndarray, np.ndarray], Any] | None = None,
    *,
    corpus_precision: str | None = None,
    rescore: bool = True,
    rescore_multiplier: int = 4,
    rescore_embeddings: np.ndarray | None = None,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
    asymmetric: bool = False,
    threads: int | None = None,
) -> list[list[dict[str, int | float]]]:
    """Exact top-k search, in the result format of ``sentence_transformers.util.semantic_search``.

    Parameters
    ----------
    query_embeddings : ndarray, shape (n_queries, dim) or (dim,)
        Float queries (a 1-D array is one query). For a quantized corpus they
        are quantized here with the corpus' ``ranges``; already-quantized
        queries (same precision as the corpus) are taken as they are and
        disable rescoring.
    corpus_embeddings : ndarray, shape (n_docs, dim) or (n_docs, ceil(dim / 8))
        Float vectors, or codes from :func:`sse_np.quantization.quantize_embeddings`.
        A memory map works (read one block at a time).
    top_k : int
        Results per query (fewer when the corpus is smaller). Note the
        position: third here, after the chunk sizes in sentence-transformers;
        pass it by keyword to write code that runs on both.
    query_chunk_size, corpus_chunk_size : int, optional
        Block sizes (memory only; never change the result). Default 1024
        queries x 8192 documents for float/int8, 1024 documents for binary.
    score_function : "cos", "dot" or callable, optional
        Float corpora only: cosine similarity (default; also for
        ``sse_np.similarity`` or sentence-transformers' ``cos_sim``), dot
        product (``"dot"`` or ``dot_score``), or any ``f(queries, docs) ->
        (n_q, n_d)`` scores, called per block.
    corpus_precision : {"float32", "int8", "uint8", "binary", "ubinary"}, optional
        Precision of ``corpus_embeddings``; inferred from the dtype and width
        when omitted (float -> float32; int8/uint8 of width ``dim`` -> int8 /
        uint8; of width ``ceil(dim / 8)`` -> binary / ubinary).
    rescore : bool
        For a quantized corpus and float queries: search ``top_k *
        rescore_multiplier`` candidates in the quantized space, then score
        them with the float queries and keep ``top_k``.
    rescore_multiplier : int
        Oversampling factor of the rescoring.
    rescore_embeddings : ndarray, optional
        Higher-precision documents to rescore against (float32 ``(n_docs,
        dim)``, or int8/uint8 codes with ``ranges``), e.g. a memory map of
        int8 vectors on disk behind a binary corpus in RAM. Default: the
        corpus codes themselves.
    ranges, calibration_embeddings : ndarray, optional
        int8/uint8: the ``(2, dim)`` ranges the codes were made with (or the
        calibration embeddings they came from). Required for an int8/uint8
        corpus or int8/uint8 ``rescore_embeddings``.
    asymmetric : bool
        int8/uint8 corpus with float queries: score the float queries against
        the dequantized codes in the scan itself (one float matrix product
        per block, like FAISS's ``IndexScalarQuantizer``) instead of
        quantizing the queries. This ranks by the rescore score directly, so
        no rescoring pass is needed (``rescore_embeddings`` still applies).
    threads : int, optional
        Threads of the binary scan (default ``$SSE_NP_THREADS``, else the
        cores); float/int8 products use NumPy's BLAS threads.

    Returns
    -------
    list of list of dict
        One list per query of ``{"corpus_id": int, "score": float}``, best
        first. Scores: float corpus -- the score function (float32
        precision); int8/uint8 without rescoring -- the integer dot product
        of the codes; binary/ubinary without rescoring -- ``1 - 2 h / dim``
        (the cosine of the +-1 sign vectors, ``h`` = Hamming distance);
        rescored -- see ``rescore_embeddings`` (float documents: the score
        function; int8: query . dequantized doc; binary: query . bits).
        Ties: higher score, then lower ``corpus_id``.

    Raises
    ------
    ValueError
        Shape mismatches, unknown precision, ``top_k < 1``, an int8/uint8
        corpus without ranges.
    """
    k = _check_k(top_k, "top_k")
    q = np.asarray(query_embeddings)
    corpus = corpus_embeddings if isinstance(corpus_embeddings, np.ndarray) else np.asarray(corpus_embeddings)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"query_embeddings must be (n_queries, dim) or (dim,), got shape {q.shape}")
    if corpus.ndim != 2:
        raise ValueError(f"corpus_embeddings must be (n_docs, width), got shape {corpus.shape}")
    query_block = _check_block(query_chunk_size, "query_chunk_size") if query_chunk_size is not None else QUERY_BLOCK
    queries_quantized = q.dtype in (np.int8, np.uint8)
    if corpus_precision is None:
        # quantized queries give no float dim to tell int8 from binary by
        corpus_precision = _infer_precision(corpus, None if queries_quantized else q.shape[1])
    check_precision(corpus_precision)
    kind = _score_kind(score_function)

    if corpus_precision == "float32":
        if queries_quantized:
            raise ValueError("a float corpus needs float queries, got int8/uint8 query codes")
        if not np.issubdtype(corpus.dtype, np.floating):
            raise TypeError(
                f"corpus_precision='float32' needs a float corpus, got {corpus.dtype} "
                "(pass the precision the codes were made with)"
            )
        if q.shape[1] != corpus.shape[1]:
            raise ValueError(f"queries have dim {q.shape[1]}, corpus has dim {corpus.shape[1]}")
        doc_block = _check_block(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        if callable(kind):
            scores, indices = _callable_top_k(q, corpus, k, kind, query_block, doc_block)
        else:
            queries = np.array(q, dtype=np.float32, order="C")
            if kind == "cos":
                _normalize_rows(queries)
            scores, indices = _top_k(
                queries, corpus, k, normalize_docs=kind == "cos", query_block=query_block, doc_block=doc_block
            )
        return _results(scores, indices)

    if callable(kind):
        raise ValueError("a custom score_function works on float corpora only")
    if corpus.dtype != np.dtype(np.int8 if corpus_precision in ("int8", "binary") else np.uint8):
        raise TypeError(
            f"{corpus_precision} corpus must be {'int8' if corpus_precision in ('int8', 'binary') else 'uint8'}, "
            f"got {corpus.dtype}"
        )
    scalar = corpus_precision.endswith("int8")
    dim = corpus.shape[1] if scalar else (q.shape[1] if not queries_quantized else 8 * corpus.shape[1])
    if not queries_quantized:
        width = dim if scalar else (dim + 7) // 8
        if corpus.shape[1] != width:
            raise ValueError(
                f"{corpus_precision} corpus of width {corpus.shape[1]} does not match queries of dim "
                f"{q.shape[1]} (expected width {width})"
            )
    elif q.shape[1] != corpus.shape[1] or q.dtype != corpus.dtype:
        raise ValueError(
            f"quantized queries {q.dtype} {q.shape} do not match the corpus codes {corpus.dtype} {corpus.shape}"
        )
    if ranges is None and calibration_embeddings is not None:
        ranges = quantization_ranges(None, calibration_embeddings, corpus_precision)
    if scalar and ranges is None and not queries_quantized:
        raise ValueError(
            f"an {corpus_precision} corpus needs the ranges= (or calibration_embeddings=) "
            "its codes were made with, to quantize the queries the same way"
        )

    if asymmetric and not (scalar and not queries_quantized):
        raise ValueError("asymmetric=True needs an int8/uint8 corpus and float queries")
    # asymmetric scores already are the rescore of the own codes
    do_rescore = rescore and not queries_quantized and (not asymmetric or rescore_embeddings is not None)
    if rescore_embeddings is not None:
        if not do_rescore:
            raise ValueError("rescore_embeddings needs rescore=True and float queries")
        if rescore_embeddings.shape[0] != corpus.shape[0]:
            raise ValueError(f"rescore_embeddings has {rescore_embeddings.shape[0]} rows, corpus has {corpus.shape[0]}")
        if np.issubdtype(rescore_embeddings.dtype, np.floating):
            rescore_precision = "float32"
        elif rescore_embeddings.dtype in (np.int8, np.uint8):
            rescore_precision = "int8" if rescore_embeddings.dtype == np.int8 else "uint8"
        else:
            raise TypeError(f"rescore_embeddings must be float, int8 or uint8, got {rescore_embeddings.dtype}")
        if rescore_embeddings.shape[1] != dim:
            raise ValueError(f"rescore_embeddings has width {rescore_embeddings.shape[1]}, expected dim {dim}")
        if rescore_precision != "float32" and ranges is None:
            raise ValueError(f"{rescore_precision} rescore_embeddings need the ranges= they were quantized with")
    else:
        rescore_docs, rescore_precision = corpus, corpus_precision
    if rescore_embeddings is not None:
        rescore_docs = rescore_embeddings
    depth = k * _check_k(rescore_multiplier, "rescore_multiplier") if do_rescore else k

    if queries_quantized:
        q_codes = q
    elif not asymmetric:
        q_codes = quantize_embeddings(q, corpus_precision, ranges=ranges if scalar else None)
    if asymmetric:
        doc_block = _check_block(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        scores, indices = _asymmetric_top_k(q, corpus, corpus_precision, ranges, depth, query_block, doc_block)
    elif scalar:
        doc_block = _check_block(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        scores, indices = _scalar_top_k(q_codes, corpus, depth, query_block, doc_block)
    else:
        blocks = {"doc_block": _check_block(corpus_chunk_size, "corpus_chunk_size")} if corpus_chunk_size else {}
        dist, indices = hamming_top_k(q_codes, corpus, depth, threads=threads, **blocks)
        scores = 1.0 - 2.0 * dist.astype(np.float64) / dim
    if not do_rescore:
        return _results(scores, indices)
    queries = np.array(q, dtype=np.float32, order="C")
    if rescore_precision == "float32" and kind == "cos":
        _normalize_rows(queries)
    scores, indices = _rescore(
        queries,
        indices,
        rescore_docs,
        rescore_precision,
        ranges,
        dim,
        "cos" if kind == "cos" else "dot",
        k,
        query_block,
    )
    return _results(scores, indices)


def _asymmetric_top_k(
    q: np.ndarray, codes: np.ndarray, precision: str, ranges: np.ndarray, k: int, query_block: int, doc_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of ``q . dequantize(codes)``: ``(q * step) . code + q . (min + offset * step)``.

    The second term is one constant per query, added after the search.
    """
    r = np.asarray(ranges).astype(np.float32, copy=False)
    if r.shape != (2, codes.shape[1]):
        raise ValueError(f"ranges must have shape (2, {codes.shape[1]}), got {r.shape}")
    steps = (r[1] - r[0]) / 255
    steps = np.where(steps == 0, 1, steps).astype(np.float64)
    q64 = q.astype(np.float64)
    offset = 128.0 if precision == "int8" else 0.0
    const = q64 @ (r[0].astype(np.float64) + offset * steps)
    scaled = np.ascontiguousarray(q64 * steps, dtype=np.float32)
    scores, index = _blocked_top_k(
        scaled, codes.shape[0], k, lambda d0, d1: codes[d0:d1].astype(np.float32), query_block, doc_block, codes=codes
    )
    return scores.astype(np.float64) + const[:, None], index


def _callable_top_k(
    q: np.ndarray,
    corpus: np.ndarray,
    k: int,
    fn: Callable[[np.ndarray, np.ndarray], Any],
    query_block: int,
    doc_block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k for a custom score function, called on each (query block, document block)."""
    n_q, n_docs = q.shape[0], corpus.shape[0]
    depth = min(k, n_docs)
    best_s = np.empty((n_q, 0), dtype=np.float64)
    best_i = np.empty((n_q, 0), dtype=np.int64)
    for d0 in range(0, n_docs, doc_block):
        block = np.asarray(corpus[d0 : d0 + doc_block])
        new_s, new_i = [], []
        for q0 in range(0, n_q, query_block):
            raw = fn(q[q0 : q0 + query_block], block)
            raw = raw.detach().cpu().numpy() if hasattr(raw, "detach") else raw
            s = np.asarray(raw, dtype=np.float64)
            if s.shape != (min(query_block, n_q - q0), block.shape[0]):
                raise ValueError(
                    f"score_function returned shape {s.shape}, expected {(min(query_block, n_q - q0), block.shape[0])}"
                )
            values, cols = _block_top_k(s, depth)
            cs = np.concatenate([best_s[q0 : q0 + query_block], values], axis=1)
            ci = np.concatenate([best_i[q0 : q0 + query_block], cols + d0], axis=1)
            ss, si = _sort_candidates(cs, ci, depth)
            new_s.append(ss)
            new_i.append(si)
        best_s, best_i = np.concatenate(new_s), np.concatenate(new_i)
    return best_s, best_i
