"""Evaluating the retrieval modes of :class:`sse_np.Index` (dense, BM25, hybrid) on a BEIR dataset.

The documents' vectors are the ones the dense evaluation already encoded;
one float32 index at the widest dimension serves every narrower one (its
prefixes are renormalized, which is what ``encode(dim=k)`` gives).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..index import MODES, Index
from .beir import BeirDataset
from .metrics import mean_metrics, query_metrics

__all__ = ["RETRIEVAL_MODES", "check_modes", "evaluate_modes"]

RETRIEVAL_MODES = MODES


def check_modes(modes: Iterable[str] | str) -> list[str]:
    """The modes asked for, in order, once each ("dense,bm25" or a list)."""
    items = modes.split(",") if isinstance(modes, str) else list(modes)
    out = list(dict.fromkeys(m.strip() for m in items if m.strip()))
    for mode in out:
        if mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not out:
        raise ValueError(f"no retrieval mode; choose from {', '.join(MODES)}")
    return out


def evaluate_modes(
    model: Any,
    data: BeirDataset,
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    dims: Sequence[int],
    modes: Sequence[str],
    top_k: int,
    weight: float | None = None,
    stemmer: str | None = None,
    lexical: str | None = None,
) -> dict[str, dict[int, dict[str, float]]]:
    """``{mode: {dim: mean metrics}}`` over the dataset's queries (``lexical``, ``stemmer``: BM25's tokens)."""
    index = Index(model, dim=max(dims), lexical=lexical, stemmer=stemmer)
    index.add(data.doc_texts, vectors=doc_vecs)
    tokens = index.lexical_tokens(data.query_texts)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for mode in modes:
        out[mode] = {}
        for dim in dims:
            if mode == "bm25" and dim != dims[0]:
                out[mode][dim] = out[mode][dims[0]]  # BM25 has no dimension
                continue
            positions, _ = index.rank(query_vecs, tokens, top_k, mode=mode, dim=dim, weight=weight)
            rows = [
                query_metrics([data.doc_ids[j] for j in ranked], data.qrels[qid])
                for qid, ranked in zip(data.query_ids, positions.tolist())
            ]
            out[mode][dim] = mean_metrics(rows)
    return out
