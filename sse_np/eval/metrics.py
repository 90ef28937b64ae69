"""Retrieval metrics with trec_eval's definitions (as BEIR and pytrec_eval).

nDCG@10 with *linear* gain, MRR@10, MAP@100 (``map_cut_100``: divided by
all relevant documents) and Recall@100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: Metric names, in the order of the report and the printed tables.
METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "map@100", "recall@100")


def _dcg(gains: np.ndarray) -> float:
    discounts = np.log2(np.arange(2, gains.size + 2, dtype=np.float64))
    return float(np.sum(gains / discounts))


def ndcg_at_k(ranked_gains: Sequence[float], judged_gains: Iterable[float], k: int = 10) -> float:
    """nDCG@k with linear gain, as trec_eval's ``ndcg_cut_k``.

    Parameters
    ----------
    ranked_gains : sequence of float
        Judgment score of each retrieved document in rank order (0 for
        unjudged documents); scores <= 0 count as gain 0.
    judged_gains : iterable of float
        All judgment scores of the query (for the ideal ranking).
    k : int
        Cut-off.

    Returns
    -------
    float
        DCG@k / ideal DCG@k, or 0.0 when the query has no positive judgment.
    """
    ranked = np.clip(np.asarray(ranked_gains, dtype=np.float64)[:k], 0.0, None)
    ideal = np.sort(np.array([g for g in judged_gains if g > 0], dtype=np.float64))[::-1][:k]
    ideal_dcg = _dcg(ideal)
    return _dcg(ranked) / ideal_dcg if ideal_dcg > 0 else 0.0


def reciprocal_rank_at_k(ranked_relevant: Sequence[bool], k: int = 10) -> float:
    """``1 / rank`` of the first relevant document within the top k, else 0."""
    for rank, relevant in enumerate(ranked_relevant[:k], start=1):
        if relevant:
            return 1.0 / rank
    return 0.0


def average_precision_at_k(ranked_relevant: Sequence[bool], n_relevant: int, k: int = 100) -> float:
    """Average precision cut at k, as trec_eval's ``map_cut_k``.

    The sum of precision@rank over the relevant documents in the top k is
    divided by ``n_relevant`` (all relevant documents of the query), not by
    ``min(k, n_relevant)`` as sentence-transformers does.
    """
    if n_relevant <= 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, relevant in enumerate(ranked_relevant[:k], start=1):
        if relevant:
            hits += 1
            total += hits / rank
    return total / n_relevant


def recall_at_k(ranked_relevant: Sequence[bool], n_relevant: int, k: int = 100) -> float:
    """Relevant documents in the top k divided by all relevant documents."""
    if n_relevant <= 0:
        return 0.0
    return sum(bool(r) for r in ranked_relevant[:k]) / n_relevant


def query_metrics(ranked_doc_ids: Sequence[str], judgments: Mapping[str, int]) -> dict[str, float]:
    """All metrics of :data:`METRICS` for one query.

    Parameters
    ----------
    ranked_doc_ids : sequence of str
        Retrieved document ids, best first (at least 100 for exact MAP@100
        and Recall@100 when the corpus has that many documents).
    judgments : mapping
        ``doc id -> score`` of the query; score > 0 means relevant.

    Returns
    -------
    dict
        ``{"ndcg@10": ..., "mrr@10": ..., "map@100": ..., "recall@100": ...}``.
    """
    gains = [judgments.get(doc_id, 0) for doc_id in ranked_doc_ids]
    relevant = [g > 0 for g in gains]
    n_relevant = sum(1 for score in judgments.values() if score > 0)
    return {
        "ndcg@10": ndcg_at_k(gains, judgments.values(), 10),
        "mrr@10": reciprocal_rank_at_k(relevant, 10),
        "map@100": average_precision_at_k(relevant, n_relevant, 100),
        "recall@100": recall_at_k(relevant, n_relevant, 100),
    }


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each metric averaged over ``rows`` (0 for no rows)."""
    return {m: float(np.mean([row[m] for row in rows])) if rows else 0.0 for m in METRICS}
