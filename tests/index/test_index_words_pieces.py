"""The default BM25: each text's words, WordPiece ids and word pairs as three fields, scores summed (pairs weighted)."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pytest

import sse_np
from sse_np import Index

bm25s = pytest.importorskip("bm25s", reason="bm25s is in the test extra")
from bm25s.stopwords import STOPWORDS_EN  # noqa: E402  (after the skip: bm25s is a test dependency)

_WORDS = (
    "photosynthesis photos vaccination vaccines genomic genome diabetic diabetes insulin cell cells "
    "protein proteins café naïve running runs the a of and is was to in on for with"
).split()


@pytest.fixture(scope="module")
def model():
    return sse_np.default_model()


def _texts(seed: int, n: int, most: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(_WORDS, size=int(rng.integers(1, most)))) + rng.choice([".", "!", ""]) for _ in range(n)
    ]


def test_scores_are_bm25s_lucene_over_words_plus_pieces_plus_weighted_pairs(model):
    """Three bm25s indexes, all without English stopwords: the model's words, its WordPiece tokens, and each two
    neighbouring words; the index's score is their sum, the pairs' times the index's pair_weight."""
    docs = ["genome cells " + t for t in _texts(11, 150, 25)]  # every text has a word pair (bm25s needs a token)
    queries = _texts(12, 25, 5)
    norm, pre = model.tokenizer.normalizer, model.tokenizer.pre_tokenizer
    stop = set(STOPWORDS_EN)

    def words(text: str) -> list[str]:
        split = [w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))]
        return [w for w in split if re.search(r"[^\W_]", w) and w not in stop]

    def pieces(text: str) -> list[str]:
        return [p for p in model.tokenizer.encode(text, add_special_tokens=False).tokens if p not in stop]

    def pairs(text: str) -> list[str]:
        kept = words(text)
        return [f"{a} {b}" for a, b in pairwise(kept)]

    index = Index(model)
    references = []
    for field, weight in ((words, 1.0), (pieces, 1.0), (pairs, index.pair_weight)):
        reference = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
        reference.index([field(d) for d in docs], show_progress=False)
        references.append((field, weight, reference))
    index.add(docs[:60])
    index.add(docs[60:])  # in two batches: word ids numbered later must not move the earlier ones
    positions, scores = index.rank(None, index.lexical_tokens(queries), len(docs), mode="bm25")
    for qi, query in enumerate(queries):
        expected = np.zeros(len(docs))
        for field, weight, reference in references:
            known = [t for t in field(query) if t in reference.vocab_dict]  # bm25s drops unseen tokens
            if known:
                expected += weight * reference.get_scores(known)
        got = np.zeros(len(docs))
        got[positions[qi]] = scores[qi]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def _bm25_ids(index: Index, query: str) -> list:
    return [h["id"] for h in index.search(query, k=len(index), mode="bm25") if h["score"] > 0]


def test_pieces_match_what_whole_words_miss_and_exact_words_rank_first(model):
    docs = ["vaccination rates in children", "the vaccines we studied", "photos of the photosynthesis lab"]
    words, both = Index(model, lexical="words"), Index(model)
    for ix in (words, both):
        ix.add(docs)
    assert _bm25_ids(words, "vaccination") == [0]
    assert _bm25_ids(both, "vaccination") == [0]  # "va ##cci ##nation" shares no piece with "vaccines"
    assert _bm25_ids(words, "photosynthesis") == [2]
    assert _bm25_ids(both, "photos") == [2]
    assert _bm25_ids(words, "zxqvbnm") == []
    # "photosynthesis" is "photos ##yn ##thesis": its pieces reach a document that only says "photos"
    words.add(["photos only"])
    both.add(["photos only"])
    assert _bm25_ids(words, "photosynthesis") == [2]
    assert _bm25_ids(both, "photosynthesis") == [2, 3]  # the whole word outranks the one shared piece


def test_save_and_load_keep_both_fields(model, tmp_path):
    ix = Index(model, precision="int8")
    ix.add(_texts(3, 40, 12), ids=[f"d{i}" for i in range(40)])
    ix.save(tmp_path / "ix")
    loaded = Index.load(tmp_path / "ix", model, verify=True)
    assert loaded.lexical == "words+pieces"
    queries = ["photosynthesis in cells", "diabetic genome", "café"]
    for mode in ("bm25", "hybrid"):
        assert loaded.search(queries, k=5, mode=mode) == ix.search(queries, k=5, mode=mode)


def test_no_stemmer_with_pieces_in_the_bag(model):
    with pytest.raises(ValueError, match="stemming applies to whole words"):
        Index(model, lexical="words+pieces", stemmer="english")


def test_neighbouring_words_outrank_the_same_words_apart(model):
    docs = ["resistance to insulin was low in the study", "insulin resistance in the study was low"]
    plain, pairs = Index(model, pair_weight=0), Index(model)
    for ix in (plain, pairs):
        ix.add(docs)
    hits = [ix.search("insulin resistance", k=2, mode="bm25") for ix in (plain, pairs)]
    assert hits[0][0]["score"] == pytest.approx(hits[0][1]["score"])  # the same words: a tie without pairs
    assert hits[1][0]["id"] == 1 and hits[1][0]["score"] > hits[1][1]["score"]


def test_bad_pair_weights_are_refused(model):
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="pair_weight must be"):
            Index(model, pair_weight=bad)
    with pytest.raises(ValueError, match="word pairs need words"):
        Index(model, lexical="pieces", pair_weight=0.3)
    assert Index(model, lexical="pieces").pair_weight == 0.0
