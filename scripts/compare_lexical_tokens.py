"""BM25 tokens on a dev split: WordPiece pieces, whole words (stemmed or not) or both, word pairs and stopwords on/off.

    python scripts/compare_lexical_tokens.py DEV_DIR [--dims 512,256]

Every variant is an :class:`sse_np.Index` setting (``lexical``, ``stemmer``,
``stopwords``); words and pieces both come from the model's own normalizer
(lower-casing, accents) and pre-tokenizer. Prints mean nDCG@10 of BM25 alone
and of hybrid (the default weight) per dimension. Stemming needs the ``stem``
extra. Only a dev split (scripts/build_dev_split.py) may decide a default.
"""

from __future__ import annotations

import argparse

from sse_np import Index, default_model
from sse_np.eval import load_beir, mean_metrics, query_metrics

VARIANTS = (  # lexical, stemmer, stopwords, pair_weight (None: the Index default)
    ("words+pieces", None, True, None),
    ("words+pieces", None, True, 0.0),
    ("words+pieces", None, False, None),
    ("pieces", None, True, None),
    ("pieces", None, False, None),
    ("words", None, True, 0.0),
    ("words", None, True, None),
    ("words", None, False, 0.0),
    ("words", "english", True, 0.0),
    ("words", "english", False, 0.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    parser.add_argument("--dims", default="512,256")
    args = parser.parse_args()
    dims = [int(d) for d in args.dims.split(",")]
    model = default_model()
    data = load_beir(args.dev)
    doc_vecs = model.encode(data.doc_texts, normalize=False)
    query_vecs = model.encode(data.query_texts, normalize=False)
    for lexical, stemmer, stopwords, pair_weight in VARIANTS:
        index = Index(
            model, dim=max(dims), lexical=lexical, stemmer=stemmer, stopwords=stopwords, pair_weight=pair_weight
        )
        index.add(data.doc_texts, vectors=doc_vecs)
        tokens = index.lexical_tokens(data.query_texts)
        cells = []
        for mode, mode_dims in (("bm25", dims[:1]), ("hybrid", dims)):
            for dim in mode_dims:
                positions, _ = index.rank(query_vecs, tokens, 100, mode=mode, dim=dim)
                rows = [
                    query_metrics([data.doc_ids[j] for j in ranked], data.qrels[qid])
                    for qid, ranked in zip(data.query_ids, positions.tolist())
                ]
                cells.append(f"{mode}@{dim} {mean_metrics(rows)['ndcg@10']:.4f}")
        pairs = f"pairs={index.pair_weight:g}"
        label = f"{lexical:12} stemmer={stemmer or '-':7} stopwords={'on ' if stopwords else 'off'} {pairs:9}"
        print(label, " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
