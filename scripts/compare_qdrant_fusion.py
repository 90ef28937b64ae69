"""Which Qdrant fusion to default to in ``SSEQdrant.query(mode="hybrid")``: DBSF or RRF, on the dev split.

    python scripts/compare_qdrant_fusion.py DEV_DIR [--dim 512] [--candidates 100]

DEV_DIR is the docstring split of ``scripts/build_dev_split.py`` (never evaluation
data). Each side's prefetch list is what the adapter asks Qdrant for: the
``candidates`` best by cosine, and the ``candidates`` best BM25 documents that share
a token with the query (Qdrant's sparse search returns no others). The lists are
fused by Qdrant's rules (tests/integrations/test_qdrant_hybrid.py checks that Qdrant
fuses exactly so): DBSF maps each list onto [0, 1] by mean +- 3 sample std and sums;
RRF sums 1 / (2 + rank from 0). sse_np's own z-score hybrid is printed for reference.
"""

from __future__ import annotations

import argparse

import numpy as np

from sse_np import Index, default_model
from sse_np.eval import load_beir, mean_metrics, query_metrics
from sse_np.retrieval.bm25 import bm25_scores
from sse_np.retrieval.fusion import convex_fusion, zscore


def _dbsf(lists: list[tuple[np.ndarray, np.ndarray]]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for docs, scores in lists:
        sd = scores.std(ddof=1) if scores.size > 1 else 0.0
        normed = (scores - scores.mean() + 3 * sd) / (6 * sd) if sd > 0 else np.full(scores.size, 0.5)
        for d, s in zip(docs.tolist(), normed.tolist()):
            fused[d] = fused.get(d, 0.0) + s
    return fused


def _rrf(lists: list[tuple[np.ndarray, np.ndarray]], k: int = 2) -> dict[int, float]:
    fused: dict[int, float] = {}
    for docs, _ in lists:
        for rank, d in enumerate(docs.tolist()):
            fused[d] = fused.get(d, 0.0) + 1.0 / (k + rank)
    return fused


def _top(scores: np.ndarray, n: int, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((np.arange(scores.shape[0]), -scores))[:n]
    if positive:
        order = order[scores[order] > 0]
    return order, scores[order].astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args()
    model = default_model()
    data = load_beir(args.dev)
    dense = model.encode(data.query_texts, dim=args.dim) @ model.encode(data.doc_texts, dim=args.dim).T
    index = Index(model, lexical="pieces")  # the Qdrant adapter's BM25 tokens (WordPiece ids)
    index.add(data.doc_texts, vectors=np.ones((len(data.doc_texts), model.dim), np.float32))
    ids, off = index.lexical_tokens(data.query_texts)
    postings = index._build().postings
    lexical = [bm25_scores(postings, ids[off[i] : off[i + 1]]) for i in range(len(data.query_ids))]

    def ndcg(rankings: list[list[int]]) -> float:
        rows = [query_metrics([data.doc_ids[j] for j in r], data.qrels[q]) for q, r in zip(data.query_ids, rankings)]
        return mean_metrics(rows)["ndcg@10"]

    def fused_by(rule) -> list[list[int]]:
        out = []
        for d, b in zip(dense, lexical):
            f = rule([_top(d, args.candidates), _top(b, args.candidates, positive=True)])
            out.append(sorted(f, key=lambda doc: -f[doc])[:10])
        return out

    print(f"dev split: {len(data.query_ids)} queries, {len(data.doc_ids)} documents, dim {args.dim}")
    print(f"dense          nDCG@10 {ndcg([_top(d, 10)[0].tolist() for d in dense]):.4f}")
    print(f"bm25           nDCG@10 {ndcg([_top(b, 10)[0].tolist() for b in lexical]):.4f}")
    for name, rule in (("qdrant dbsf", _dbsf), ("qdrant rrf(2)", _rrf)):
        print(f"{name:14} nDCG@10 {ndcg(fused_by(rule)):.4f}  ({args.candidates} candidates per side)")
    z = [_top(convex_fusion(zscore(d), zscore(b)), 10)[0].tolist() for d, b in zip(dense, lexical)]
    print(f"sse_np zscore  nDCG@10 {ndcg(z):.4f}  (all documents, weight 0.5)")


if __name__ == "__main__":
    main()
