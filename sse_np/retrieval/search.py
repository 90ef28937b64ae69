"""``semantic_search``: exact top-k over float, int8/uint8 and packed binary corpora, with rescoring.

The interface and result format of ``sentence_transformers.util.semantic_search``
(a list per query of ``{"corpus_id": int, "score": float}`` dicts, best
first), for float corpora and for corpora quantized by
:func:`sse_np.retrieval.quantization.quantize_embeddings`, with the
binary-then-rescore recipe of sentence-transformers' ``semantic_search_faiss``
/ ``semantic_search_usearch``. The scans are :func:`~sse_np.retrieval.topk.top_k`
and :func:`~sse_np.retrieval.hamming.hamming_top_k`.

Ties are deterministic everywhere: a higher score (a smaller Hamming
distance) first, then the lower corpus index; results never depend on the
block sizes. (One exception to bit-identical scores: float queries against an
int8/uint8 corpus with ``asymmetric=True`` are summed in another order for
1-3 queries than for a batch, which can move the last float32 bit.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import normalize_rows
from .hamming import hamming_top_k
from .quantization import check_precision, dequantize_embeddings, quantization_ranges, quantize_embeddings, to_ubinary
from .similarity import similarity
from .topk import (
    DOC_BLOCK,
    QUERY_BLOCK,
    block_top_k,
    blocked_top_k,
    positive_int,
    scalar_top_k,
    sort_candidates,
)
from .topk import top_k as exact_top_k  # semantic_search's argument `top_k` shadows the name

__all__ = ["semantic_search"]

# Same epsilon as torch.nn.functional.normalize / sentence-transformers.
_EPS = 1e-12


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
                assert ranges is not None  # semantic_search refuses int8/uint8 rescoring without them
                values = dequantize_embeddings(cand, rescore_precision, ranges)
            values = values.reshape(idx.shape[0], idx.shape[1], -1)
            scores = np.einsum("ij,ikj->ik", queries[q0:q1].astype(np.float64), values)
        out_s[q0:q1], out_i[q0:q1] = sort_candidates(scores, idx, k)
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
        Float vectors, or codes from :func:`sse_np.retrieval.quantization.quantize_embeddings`.
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
    k = positive_int(top_k, "top_k")
    q = np.asarray(query_embeddings)
    corpus = corpus_embeddings if isinstance(corpus_embeddings, np.ndarray) else np.asarray(corpus_embeddings)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"query_embeddings must be (n_queries, dim) or (dim,), got shape {q.shape}")
    if corpus.ndim != 2:
        raise ValueError(f"corpus_embeddings must be (n_docs, width), got shape {corpus.shape}")
    query_block = positive_int(query_chunk_size, "query_chunk_size") if query_chunk_size is not None else QUERY_BLOCK
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
        doc_block = positive_int(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        if callable(kind):
            scores, indices = _callable_top_k(q, corpus, k, kind, query_block, doc_block)
        else:
            queries = np.array(q, dtype=np.float32, order="C")
            if kind == "cos":
                normalize_rows(queries)
            scores, indices = exact_top_k(
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
    depth = k * positive_int(rescore_multiplier, "rescore_multiplier") if do_rescore else k

    if queries_quantized:
        q_codes = q
    elif not asymmetric:
        q_codes = quantize_embeddings(q, corpus_precision, ranges=ranges if scalar else None)
    if asymmetric:
        assert ranges is not None  # checked above: a scalar corpus with float queries has its ranges
        doc_block = positive_int(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        scores, indices = _asymmetric_top_k(q, corpus, corpus_precision, ranges, depth, query_block, doc_block)
    elif scalar:
        doc_block = positive_int(corpus_chunk_size, "corpus_chunk_size") if corpus_chunk_size else DOC_BLOCK
        scores, indices = scalar_top_k(q_codes, corpus, depth, query_block, doc_block)
    else:
        blocks: dict[str, Any] = (
            {"doc_block": positive_int(corpus_chunk_size, "corpus_chunk_size")} if corpus_chunk_size else {}
        )
        dist, indices = hamming_top_k(q_codes, corpus, depth, threads=threads, **blocks)
        scores = 1.0 - 2.0 * dist.astype(np.float64) / dim
    if not do_rescore:
        return _results(scores, indices)
    queries = np.array(q, dtype=np.float32, order="C")
    if rescore_precision == "float32" and kind == "cos":
        normalize_rows(queries)
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
    scores, index = blocked_top_k(
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
            values, cols = block_top_k(s, depth)
            cs = np.concatenate([best_s[q0 : q0 + query_block], values], axis=1)
            ci = np.concatenate([best_i[q0 : q0 + query_block], cols + d0], axis=1)
            ss, si = sort_candidates(cs, ci, depth)
            new_s.append(ss)
            new_i.append(si)
        best_s, best_i = np.concatenate(new_s), np.concatenate(new_i)
    return best_s, best_i
