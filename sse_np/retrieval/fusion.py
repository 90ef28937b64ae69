"""Fusing dense and BM25 rankings: a convex combination of per-query z-scores (default), or RRF.

Bruch et al. (arXiv 2210.11934) found a convex combination of normalized
scores better than reciprocal rank fusion, in and out of domain. Each score
vector is z-scored over *all* documents of the query (mean and population
standard deviation), so neither side's scale matters; the fused score is
``weight * z_dense + (1 - weight) * z_bm25``. The default weight was chosen on
a dev split built from non-evaluation data (``scripts/build_dev_split.py``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..engine import numba_available, numba_loading

__all__ = [
    "DEFAULT_DENSE_WEIGHT",
    "FUSIONS",
    "RRF_K",
    "SCAN_MAX_K",
    "convex_fusion",
    "rrf_fusion",
    "scan_top_k",
    "zscore",
    "zscore_fusion_top_k",
]

FUSIONS = ("zscore", "rrf")
# Chosen on the docstring dev split (scripts/build_dev_split.py), never on BEIR data; see docs/retrieval.md.
DEFAULT_DENSE_WEIGHT = 0.5
RRF_K = 60


def zscore(scores: np.ndarray, mean: float | None = None, std: float | None = None) -> np.ndarray:
    """``(scores - mean) / std`` in float64; the statistics default to those of ``scores`` (0 std: all zero)."""
    scores = np.asarray(scores, dtype=np.float64)
    mu = float(scores.mean()) if mean is None else mean
    sd = float(scores.std()) if std is None else std
    if not sd > 0.0:
        return np.zeros_like(scores)
    return (scores - mu) / sd


def convex_fusion(z_dense: np.ndarray, z_bm25: np.ndarray, weight: float = DEFAULT_DENSE_WEIGHT) -> np.ndarray:
    """``weight * z_dense + (1 - weight) * z_bm25``: weight 1 is dense alone, 0 is BM25 alone."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the dense weight must lie in [0, 1], got {weight}")
    return weight * np.asarray(z_dense, dtype=np.float64) + (1.0 - weight) * np.asarray(z_bm25, dtype=np.float64)


def rrf_fusion(*rankings: np.ndarray, n_docs: int, k: int = RRF_K) -> np.ndarray:
    """Reciprocal rank fusion: ``sum over rankings of 1 / (k + rank)`` (rank from 1) for every document.

    Each ranking is an array of document indices, best first; a document
    missing from a ranking gains nothing from it.
    """
    fused = np.zeros(n_docs, dtype=np.float64)
    for ranking in rankings:
        ranking = np.asarray(ranking, dtype=np.int64)
        fused[ranking] += 1.0 / (k + np.arange(1, ranking.shape[0] + 1))
    return fused


# Up to this k the numba kernels keep a sorted list (one compare per score, an insertion for the few
# that enter); beyond it NumPy's argpartition is the better choice.
SCAN_MAX_K = 64


def zscore_fusion_top_k(
    dense: np.ndarray, lexical: np.ndarray, weight: float, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The best ``k`` positions and scores of ``convex_fusion(zscore(dense), zscore(lexical), weight)``.

    Higher score first, ties by lower position (as :func:`sse_np.index.rank.top_k`). One numba pass
    per statistic and one for the fusion, without temporaries; None without numba or for
    ``k > SCAN_MAX_K`` (then fuse with NumPy).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the dense weight must lie in [0, 1], got {weight}")
    kernels = _kernels()
    k = min(k, dense.shape[0])
    if kernels is None or not 0 < k <= SCAN_MAX_K or dense.shape != lexical.shape:
        return None
    out_i, out_s = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.float64)
    kernels.zscore_fusion_top_k(np.ascontiguousarray(dense), np.ascontiguousarray(lexical), float(weight), out_i, out_s)
    return out_i, out_s


def scan_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The best ``k`` positions and scores (higher first, ties by lower position); None as above."""
    kernels = _kernels()
    k = min(k, scores.shape[0])
    if kernels is None or not 0 < k <= SCAN_MAX_K:
        return None
    out_i, out_s = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.float64)
    kernels.scan_top_k(np.ascontiguousarray(scores), out_i, out_s)
    return out_i, out_s


_lock = threading.Lock()
_loaded: Any = None  # None: not tried; False: unavailable; else the kernels module


def _kernels() -> Any:
    """The numba kernels module, or None without numba or under NUMBA_DISABLE_JIT (decided once)."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded or None


def _load() -> Any:
    if not numba_available():
        return False
    try:
        with numba_loading() as numba:
            if numba.config.DISABLE_JIT:
                return False
            from . import fusion_kernels
    except Exception:
        return False
    return fusion_kernels
