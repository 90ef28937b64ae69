"""Retrieval evaluation of SSE models on BEIR-layout datasets, one file per concern.

* ``beir``    -- reading and writing BEIR-layout folders;
* search     -- :func:`sse_np.retrieval.topk.top_k`, the exact search of :func:`sse_np.semantic_search`;
* ``metrics`` -- trec_eval's nDCG@10 (linear gain), MRR@10, MAP@100, Recall@100;
* ``runner``  -- :func:`evaluate`: encode once, search and score per dimension;
* ``report``  -- tables, JSON and the plot.

sentence-transformers' ``InformationRetrievalEvaluator`` differs on graded
judgments: its nDCG uses *binary* gain and its MAP@k divides by
``min(k, n_relevant)``. On binary qrels (SciFact, NanoBEIR) the figures agree.
"""

from __future__ import annotations

from ..errors import DataError, MissingDependencyError
from ..retrieval.topk import top_k as exact_top_k
from .beir import BeirDataset, load_beir, read_corpus, read_qrels, read_queries, write_beir
from .metrics import (
    METRICS,
    average_precision_at_k,
    mean_metrics,
    ndcg_at_k,
    query_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
)
from .report import format_report, plot_report, require_matplotlib, save_report
from .runner import DEFAULT_DIMS, TOP_K, evaluate, model_info

__all__ = [
    "DEFAULT_DIMS",
    "METRICS",
    "TOP_K",
    "BeirDataset",
    "DataError",
    "MissingDependencyError",
    "average_precision_at_k",
    "evaluate",
    "exact_top_k",
    "format_report",
    "load_beir",
    "mean_metrics",
    "model_info",
    "ndcg_at_k",
    "plot_report",
    "query_metrics",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "require_matplotlib",
    "save_report",
    "write_beir",
]
