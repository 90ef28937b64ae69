"""Ranking encoded queries against an index's arrays: dense, BM25, or the two fused.

float32 indexes score every document both ways, so hybrid z-scores use
every document's scores exactly. Quantized indexes keep the quantized scan:
the dense candidates (rescored, as :func:`sse_np.semantic_search` does) and
the BM25 candidates are scored with the float query against the
dequantized rows, and the dense z-score takes its mean and standard
deviation from the float vectors' mean and covariance (``q . mu`` and
``sqrt(q^T S q)``, the statistics over all documents, without scoring them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import normalize_rows
from ..errors import IndexFormatError
from ..retrieval.bm25 import BM25Postings, bm25_scores
from ..retrieval.fusion import convex_fusion, rrf_fusion, scan_top_k, zscore, zscore_fusion_top_k
from ..retrieval.quantization import dequantize_embeddings
from ..retrieval.search import semantic_search

MODES = ("dense", "bm25", "hybrid")
_QUERY_BLOCK = 64  # dense scores of a block: 64 x n_docs float32
_RRF_DEPTH = 1000  # each ranking's depth for reciprocal rank fusion


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


@dataclass
class Built:
    """An index's searchable arrays (in memory, or memory-mapped from a saved index)."""

    vectors: np.ndarray
    postings: BM25Postings
    precision: str
    ranges: np.ndarray | None = None
    rescore: np.ndarray | None = None
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    frozen: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    norms: dict[int, np.ndarray] = field(default_factory=dict)  # prefix width -> document norms

    def arrays(self, extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {
            "vectors": self.vectors,
            "bm25_indptr": self.postings.indptr,
            "bm25_docs": self.postings.doc_ids,
            "bm25_weights": self.postings.weights,
            **extra,
        }
        optional = {"ranges": self.ranges, "rescore": self.rescore, "dense_mean": self.mean, "dense_cov": self.cov}
        out.update({name: value for name, value in optional.items() if value is not None})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_docs: int, precision: str, dim: int, path: Path) -> Built:
        """Check the loaded arrays against each other and the manifest (a mismatch is a corrupt index)."""
        need = ["vectors", "bm25_indptr", "bm25_docs", "bm25_weights", "stop_ids"]
        if precision != "float32":
            need += ["ranges", "dense_mean", "dense_cov"] + (["rescore"] if "binary" in precision else [])
        missing = [name for name in need if name not in arrays]
        if missing:
            raise IndexFormatError(path, f"missing arrays: {', '.join(missing)}")
        vectors, indptr = arrays["vectors"], arrays["bm25_indptr"]
        width = dim if precision in ("float32", "int8", "uint8") else (dim + 7) // 8
        problems = []
        if vectors.shape != (n_docs, width):
            problems.append(f"vectors.npy has shape {vectors.shape}, expected {(n_docs, width)}")
        if indptr.ndim != 1 or indptr.shape[0] < 1 or int(indptr[-1]) != arrays["bm25_docs"].shape[0]:
            problems.append("bm25_indptr.npy does not match bm25_docs.npy")
        if arrays["bm25_docs"].shape != arrays["bm25_weights"].shape:
            problems.append("bm25_docs.npy and bm25_weights.npy differ in length")
        if problems:
            raise IndexFormatError(path, "corrupt index: " + "; ".join(problems))
        postings = BM25Postings(indptr, arrays["bm25_docs"], arrays["bm25_weights"], n_docs)
        return cls(
            vectors,
            postings,
            precision,
            ranges=arrays.get("ranges"),
            rescore=arrays.get("rescore"),
            mean=arrays.get("dense_mean"),
            cov=arrays.get("dense_cov"),
            frozen=True,
            extra={name: arrays[name] for name in ("stop_ids", "bm25_terms", "bm25_pairs") if name in arrays},
        )


def rank(
    built: Built,
    query_vectors: np.ndarray | None,
    query_tokens: tuple[np.ndarray, np.ndarray] | None,
    k: int,
    mode: str,
    dim: int,
    weight: float,
    fusion: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the best ``k`` documents per query (see :meth:`sse_np.Index.rank`)."""
    n_docs = built.postings.n_docs
    if mode != "bm25" and query_vectors is None:
        raise ValueError(f"mode {mode!r} needs query vectors")
    if mode != "dense" and query_tokens is None:
        raise ValueError(f"mode {mode!r} needs query tokens")
    n_q = len(query_vectors) if query_vectors is not None else len(query_tokens[1]) - 1  # type: ignore[index]
    k = min(k, n_docs)
    out_i = np.zeros((n_q, k), dtype=np.int64)
    out_s = np.zeros((n_q, k), dtype=np.float64)
    if k == 0 or n_q == 0:
        return out_i, out_s
    queries = None
    if query_vectors is not None:
        queries = normalize_rows(np.array(np.asarray(query_vectors)[:, :dim], dtype=np.float32, order="C"))
    for q0 in range(0, n_q, _QUERY_BLOCK):
        q1 = min(q0 + _QUERY_BLOCK, n_q)
        dense = (
            _dense_block(built, queries[q0:q1], dim) if queries is not None and built.precision == "float32" else None
        )
        for qi in range(q0, q1):
            lexical = None
            if query_tokens is not None and mode != "dense":
                ids, offsets = query_tokens
                lexical = bm25_scores(built.postings, ids[offsets[qi] : offsets[qi + 1]])
            q = queries[qi] if queries is not None else None
            row = dense[qi - q0] if dense is not None else None
            out_i[qi], out_s[qi] = _rank_one(built, q, row, lexical, k, mode, weight, fusion)
    return out_i, out_s


def _dense_block(built: Built, queries: np.ndarray, dim: int) -> np.ndarray:
    """Cosine scores of a block of normalized queries against every document (float32 index)."""
    vectors = built.vectors
    if dim == vectors.shape[1]:
        return queries @ np.asarray(vectors).T
    if dim not in built.norms:
        prefix = np.asarray(vectors[:, :dim], dtype=np.float32)
        built.norms[dim] = np.maximum(np.linalg.norm(prefix, axis=1), np.float32(1e-12))
    return (queries @ np.asarray(vectors[:, :dim]).T) / built.norms[dim]


def _rank_one(
    built: Built,
    q: np.ndarray | None,
    dense: np.ndarray | None,
    lexical: np.ndarray | None,
    k: int,
    mode: str,
    weight: float,
    fusion: str,
) -> tuple[np.ndarray, np.ndarray]:
    if mode == "bm25":
        return top_k(lexical, k)  # type: ignore[arg-type]
    if dense is None:  # quantized index
        return _rank_quantized(built, q, lexical, k, mode, weight, fusion)  # type: ignore[arg-type]
    if mode == "dense":
        return top_k(dense, k)
    assert lexical is not None
    if fusion == "rrf":
        depth = min(_RRF_DEPTH, dense.shape[0])
        fused = rrf_fusion(top_k(dense, depth)[0], top_k(lexical, depth)[0], n_docs=dense.shape[0])
        return top_k(fused, k)
    best = zscore_fusion_top_k(dense, lexical, weight, k)  # numba: no float64 temporaries
    if best is not None:
        return best
    return top_k(convex_fusion(zscore(dense), zscore(lexical), weight), k)


def _rank_quantized(
    built: Built, q: np.ndarray, lexical: np.ndarray | None, k: int, mode: str, weight: float, fusion: str
) -> tuple[np.ndarray, np.ndarray]:
    depth = k if mode == "dense" else max(4 * k, 100)
    hits = semantic_search(
        q[None, :],
        built.vectors,
        top_k=depth,
        corpus_precision=built.precision,
        ranges=built.ranges,
        rescore=True,
        rescore_embeddings=built.rescore,
    )[0]
    dense_ids = np.array([h["corpus_id"] for h in hits], dtype=np.int64)
    if mode == "dense":
        return dense_ids, np.array([h["score"] for h in hits], dtype=np.float64)
    assert lexical is not None and built.mean is not None and built.cov is not None and built.ranges is not None
    lexical_ids = top_k(lexical, depth)[0]
    union = np.union1d(dense_ids, lexical_ids)
    if fusion == "rrf":
        fused = rrf_fusion(dense_ids, lexical_ids, n_docs=lexical.shape[0])[union]
    else:
        rows = built.rescore if built.rescore is not None else built.vectors
        kind = "int8" if built.rescore is not None else built.precision
        scores = dequantize_embeddings(np.asarray(rows[union]), kind, built.ranges).astype(np.float64) @ q
        q64 = q.astype(np.float64)
        std = float(np.sqrt(max(q64 @ built.cov @ q64, 0.0)))
        z_dense = zscore(scores, float(q64 @ built.mean), std)
        z_lex = zscore(lexical[union], float(lexical.mean()), float(lexical.std()))
        fused = convex_fusion(z_dense, z_lex, weight)
    order, best = top_k(fused, k)
    return union[order], best


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best positions (higher score first, then the lower position) and their scores."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[0])
    scanned = scan_top_k(scores, k) if k < scores.shape[0] else None  # numba, small k: one pass
    if scanned is not None:
        return scanned
    if k < scores.shape[0]:
        threshold = scores[np.argpartition(-scores, k - 1)[:k]].min()
        above = np.flatnonzero(scores > threshold)
        # Ties at the boundary: the lowest positions (BM25 gives most documents the same 0).
        candidates = np.concatenate([above, np.flatnonzero(scores == threshold)[: k - above.shape[0]]])
    else:
        candidates = np.arange(scores.shape[0])
    order = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
    return order, scores[order].astype(np.float64)
