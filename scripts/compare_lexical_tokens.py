"""BM25 on the dev split with the model's WordPiece pieces vs its pre-tokenizer's whole words (and stopwords on/off).

    python scripts/compare_lexical_tokens.py DEV_DIR

Both use the model's own normalizer (lower-casing, accent stripping); words are
the pre-tokenizer's pieces of the normalized text, numbered in a vocabulary of
the corpus. Prints mean nDCG@10 of BM25 alone and of hybrid (weight 0.5) at 512.
"""

from __future__ import annotations

import argparse

import numpy as np

from sse_np import Index, default_model
from sse_np.eval import load_beir, mean_metrics, query_metrics
from sse_np.index.stopwords import ENGLISH_STOPWORDS
from sse_np.retrieval.bm25 import bm25_scores, build_postings
from sse_np.retrieval.fusion import convex_fusion, zscore


def _words(model, texts, vocab, stop, grow):
    norm, pre = model.tokenizer.normalizer, model.tokenizer.pre_tokenizer
    ids, offsets = [], [0]
    for text in texts:
        for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)):
            if word in stop:
                continue
            if word not in vocab and grow:
                vocab[word] = len(vocab)
            if word in vocab:
                ids.append(vocab[word])
        offsets.append(len(ids))
    return np.array(ids, dtype=np.int64), np.array(offsets, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dev")
    args = parser.parse_args()
    model = default_model()
    data = load_beir(args.dev)
    doc_vecs = model.encode(data.doc_texts)
    q_vecs = model.encode(data.query_texts)
    dense = q_vecs @ doc_vecs.T
    for stopwords in (True, False):
        stop = set(ENGLISH_STOPWORDS) if stopwords else set()
        vocab: dict[str, int] = {}
        d_ids, d_off = _words(model, data.doc_texts, vocab, stop, True)
        q_ids, q_off = _words(model, data.query_texts, vocab, stop, False)
        index = Index(model, stopwords=stopwords)
        p_docs = index.lexical_tokens(data.doc_texts)
        p_queries = index.lexical_tokens(data.query_texts)
        runs = {
            "words": (build_postings(d_ids, d_off, len(vocab)), q_ids, q_off),
            "pieces": (build_postings(*p_docs, model.vocab_size), *p_queries),
        }
        for name, (postings, ids, off) in runs.items():
            for fused in (False, True):
                rows = []
                for qi, qid in enumerate(data.query_ids):
                    lexical = bm25_scores(postings, ids[off[qi] : off[qi + 1]])
                    scores = convex_fusion(zscore(dense[qi]), zscore(lexical), 0.5) if fused else lexical
                    order = np.lexsort((np.arange(scores.shape[0]), -scores))[:100]
                    rows.append(query_metrics([data.doc_ids[j] for j in order], data.qrels[qid]))
                label = f"{name:6} stopwords={'on ' if stopwords else 'off'} {'hybrid' if fused else 'bm25  '}"
                print(label, f"nDCG@10 {mean_metrics(rows)['ndcg@10']:.4f}")


if __name__ == "__main__":
    main()
