"""BM25 scores equal bm25s' (method "lucene") for the same tokens; fusion rules; numba and NumPy agree."""

from __future__ import annotations

import numpy as np
import pytest

from sse_np.retrieval import bm25 as bm25_module
from sse_np.retrieval.bm25 import bm25_scores, build_postings
from sse_np.retrieval.fusion import convex_fusion, rrf_fusion, zscore

bm25s = pytest.importorskip("bm25s", reason="bm25s is in the test extra")


def _corpus(seed: int, n_docs: int = 300, vocab: int = 80) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    # Zipf-ish term draws and varied lengths, so idf and length normalization both matter.
    probs = 1.0 / np.arange(1, vocab + 1)
    probs /= probs.sum()
    return [rng.choice(vocab, size=int(rng.integers(1, 40)), p=probs).tolist() for _ in range(n_docs)]


def _csr(docs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([t for d in docs for t in d], dtype=np.int32)
    offsets = np.concatenate(([0], np.cumsum([len(d) for d in docs])))
    return ids, offsets


@pytest.mark.parametrize(("seed", "k1", "b"), [(0, 1.2, 0.75), (1, 0.9, 0.4), (2, 2.0, 1.0)])
def test_scores_equal_bm25s_lucene(seed, k1, b):
    docs = _corpus(seed)
    ids, offsets = _csr(docs)
    vocab = 80
    postings = build_postings(ids, offsets, vocab, k1=k1, b=b)
    reference = bm25s.BM25(method="lucene", k1=k1, b=b)
    reference.index([[str(t) for t in d] for d in docs], show_progress=False)
    rng = np.random.default_rng(seed + 100)
    for _ in range(20):
        query = rng.choice(vocab, size=int(rng.integers(1, 6))).tolist()
        known = [t for t in query if str(t) in reference.vocab_dict]  # bm25s drops unseen tokens
        expected = reference.get_scores([str(t) for t in known])
        got = bm25_scores(postings, np.array(query))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_numpy_path_equals_numba_path(monkeypatch):
    docs = _corpus(3)
    postings = build_postings(*_csr(docs), 80)
    query = np.array([1, 5, 5, 30, 79])
    fast = bm25_scores(postings, query)
    monkeypatch.setattr(bm25_module, "_loaded", False)  # as without numba / under NUMBA_DISABLE_JIT
    slow = bm25_scores(postings, query)
    np.testing.assert_allclose(slow, fast, rtol=1e-6, atol=1e-6)


def test_unknown_and_out_of_range_terms_score_nothing():
    postings = build_postings(np.array([0, 1, 1]), np.array([0, 2, 3]), vocab_size=4)
    assert bm25_scores(postings, np.array([3, 7, -1])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="token ids"):
        build_postings(np.array([5]), np.array([0, 1]), vocab_size=4)


def test_zscore_and_convex_fusion():
    z = zscore(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(z, [-1.224744871, 0.0, 1.224744871])
    assert zscore(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]  # no spread: no preference
    np.testing.assert_allclose(convex_fusion([1.0, 0.0], [0.0, 1.0], 0.25), [0.25, 0.75])
    with pytest.raises(ValueError, match="weight"):
        convex_fusion([1.0], [1.0], 1.5)


def test_rrf_fusion():
    fused = rrf_fusion(np.array([2, 0]), np.array([0, 1]), n_docs=3, k=60)
    np.testing.assert_allclose(fused, [1 / 62 + 1 / 61, 1 / 62, 1 / 61])


_WORDS = (
    "cat cats running runs ran runner quickly quick garden gardens apple apples pie pies baked baking "
    "market markets fell falling trade trading traded rents rising rose café naïve connection connected "
    "connecting the a of and is was were to in on for with"
).split()


def test_stemmed_words_equal_bm25s_lucene_with_pystemmer():
    """Index(stemmer="english") scores every document as bm25s does with stemmer=Stemmer.Stemmer("english").

    bm25s gets the same words (the model's normalizer and pre-tokenizer, split on whitespace) and does
    its own stopword removal ("en") and stemming; our index does ours.
    """
    Stemmer = pytest.importorskip("Stemmer", reason="PyStemmer is the stem extra (in the test extra)")
    import re

    import sse_np
    from sse_np import Index

    model = sse_np.default_model()
    norm, pre = model.tokenizer.normalizer, model.tokenizer.pre_tokenizer
    rng = np.random.default_rng(7)
    docs = [
        " ".join(rng.choice(_WORDS, size=int(rng.integers(2, 30)))) + rng.choice([".", "!", ", ok."])
        for _ in range(200)
    ]
    queries = [" ".join(rng.choice(_WORDS, size=int(rng.integers(1, 6)))) for _ in range(30)]

    def words(text: str) -> str:
        return " ".join(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)) if re.search(r"[^\W_]", w))

    def bm25s_tokens(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            [words(t) for t in texts],
            token_pattern=r"\S+",
            stopwords="en",
            stemmer=Stemmer.Stemmer("english"),
            return_ids=False,
            show_progress=False,
        )

    reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75)  # Lucene's defaults (bm25s' own k1 is 1.5)
    reference.index(bm25s_tokens(docs), show_progress=False)
    index = Index(model, stemmer="english", pair_weight=0)  # stems alone (word pairs: test_index_words_pieces)
    index.add(docs)
    positions, scores = index.rank(None, index.lexical_tokens(queries), len(docs), mode="bm25")
    for qi, tokens in enumerate(bm25s_tokens(queries)):
        known = [t for t in tokens if t in reference.vocab_dict]  # bm25s drops unseen tokens (and fails on none)
        expected = reference.get_scores(known) if known else np.zeros(len(docs))
        got = np.zeros(len(docs))
        got[positions[qi]] = scores[qi]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert index._words is not None and set(index._words.terms()) == set(reference.vocab_dict) - {""}  # its empty token


def test_fields_score_the_sum_of_their_own_bm25s():
    """field_starts: each field's own lengths and average, as two indexes built apart and their scores summed."""
    docs_a, docs_b = _corpus(4), _corpus(5)[: len(_corpus(4))]
    joined = [a + [t + 80 for t in b] for a, b in zip(docs_a, docs_b)]
    both = build_postings(*_csr(joined), 160, field_starts=(80,))
    apart = build_postings(*_csr(docs_a), 80), build_postings(*_csr(docs_b), 80)
    rng = np.random.default_rng(9)
    for _ in range(10):
        query = rng.choice(160, size=4)
        expected = bm25_scores(apart[0], query[query < 80]) + bm25_scores(apart[1], query[query >= 80] - 80)
        np.testing.assert_allclose(bm25_scores(both, query), expected, rtol=0, atol=1e-5)
    assert not np.allclose(
        bm25_scores(build_postings(*_csr(joined), 160), np.arange(160)), bm25_scores(both, np.arange(160))
    )
