"""Compare fusion normalizations and weights on the dev split (scripts/build_dev_split.py), never on evaluation data.

    python scripts/tune_fusion.py DEV_DIR [--dim 512]

Normalizations of each side's per-query scores before the convex combination:
z-score over all documents (the default), min-max over all documents, and
z-score over each side's top 1000; and RRF(60) for reference.
"""

from __future__ import annotations

import argparse

import numpy as np

from sse_np import Index, default_model
from sse_np.eval import load_beir, mean_metrics, query_metrics
from sse_np.retrieval.bm25 import bm25_scores
from sse_np.retrieval.fusion import rrf_fusion


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _z_top(x: np.ndarray, n: int = 1000) -> np.ndarray:
    top = np.sort(x)[-n:]
    sd = top.std()
    return (x - top.mean()) / sd if sd > 0 else np.zeros_like(x)


NORMS = {"zscore": _z, "minmax": _minmax, "zscore-top1000": _z_top}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--lexical", choices=("words", "pieces"), default=None, help="BM25 tokens (default: Index's)")
    args = parser.parse_args()
    model = default_model()
    data = load_beir(args.dev)
    dense = model.encode(data.query_texts, dim=args.dim) @ model.encode(data.doc_texts, dim=args.dim).T
    index = Index(model, lexical=args.lexical)
    index.add(data.doc_texts, vectors=np.zeros((len(data.doc_texts), model.dim), np.float32) + 1)
    ids, off = index.lexical_tokens(data.query_texts)
    postings = index._build().postings
    lexical = np.stack([bm25_scores(postings, ids[off[i] : off[i + 1]]) for i in range(len(data.query_ids))])

    def ndcg(fused_rows) -> float:
        rows = []
        for qid, scores in zip(data.query_ids, fused_rows):
            order = np.lexsort((np.arange(scores.shape[0]), -scores))[:100]
            rows.append(query_metrics([data.doc_ids[j] for j in order], data.qrels[qid]))
        return mean_metrics(rows)["ndcg@10"]

    for name, norm in NORMS.items():
        for w in (float(x) for x in args.weights.split(",")):
            fused = [
                w * norm(d.astype(np.float64)) + (1 - w) * norm(b.astype(np.float64)) for d, b in zip(dense, lexical)
            ]
            print(f"{name:15} w={w:.1f} nDCG@10 {ndcg(fused):.4f}")
    n = dense.shape[1]
    rrf = [
        rrf_fusion(np.argsort(-d, kind="stable"), np.argsort(-b, kind="stable"), n_docs=n)
        for d, b in zip(dense, lexical)
    ]
    print(f"{'rrf(60)':15}       nDCG@10 {ndcg(rrf):.4f}")


if __name__ == "__main__":
    main()
