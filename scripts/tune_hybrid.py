"""Sweep hybrid search's dense weight on the dev split (scripts/build_dev_split.py), never on evaluation data.

    python scripts/tune_hybrid.py DEV_DIR [--weights 0.3,0.4,0.5,0.6,0.7] [--dims 512,256] [--stemmer english]

Prints mean nDCG@10 of BM25, dense and hybrid at each weight; the default
(:data:`sse_np.retrieval.fusion.DEFAULT_DENSE_WEIGHT`) is the best of these.
"""

from __future__ import annotations

import argparse

from sse_np import default_model
from sse_np.eval import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev", nargs="+")
    parser.add_argument("--weights", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("--dims", default="512,256")
    parser.add_argument("--stemmer", default=None, help="BM25 over stemmed words (the stem extra)")
    args = parser.parse_args()
    dims = [int(d) for d in args.dims.split(",")]
    model = default_model()
    base = evaluate(model, args.dev, dims, retrieval="dense,bm25", stemmer=args.stemmer)
    for mode in ("bm25", "dense"):
        print(mode, " ".join(f"@{d}={base['mean_by_retrieval'][mode][d]['ndcg@10']:.4f}" for d in dims))
    for weight in (float(w) for w in args.weights.split(",")):
        report = evaluate(model, args.dev, dims, retrieval="hybrid", hybrid_weight=weight, stemmer=args.stemmer)
        means = report["mean_by_retrieval"]["hybrid"]
        print(f"hybrid w={weight:.2f}", " ".join(f"@{d}={means[d]['ndcg@10']:.4f}" for d in dims))


if __name__ == "__main__":
    main()
