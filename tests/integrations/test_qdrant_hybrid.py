"""Qdrant's BM25 sparse vector and hybrid query: the real qdrant-client in local mode (on disk), BEIR scifact slice.

BM25 is checked against sse_np's own BM25 (``Index(mode="bm25")``) and the real
``bm25s`` (method "lucene") over the same tokens; hybrid against Qdrant's fusion
rules written out here from its documentation, applied to the two prefetch lists.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import bm25s
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import sse_np
from helpers.stores import DIM, TOP_K, exact_top_ids, scifact_slice
from sse_np.integrations.qdrant import SSEQdrant

DIMS = (64, DIM)
NAME = "scifact"
CANDIDATES = 50  # prefetch depth of the hybrid tests (the adapter's default is 100)
N_HYBRID = 20  # local mode scores sparse vectors in Python: a few queries keep the suite short
ATOL = 1e-5


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.default_model()


@pytest.fixture(scope="module")
def data():
    return scifact_slice()


@pytest.fixture(scope="module")
def reference(model, data) -> sse_np.Index:
    """sse_np's own BM25 over the same documents (its tokens are the ones the adapter must use)."""
    index = sse_np.Index(model, dim=DIM, lexical="pieces")  # the adapter keeps WordPiece ids
    index.add(data.texts, ids=[int(i) for i in data.ids])
    return index


@pytest.fixture(scope="module")
def built(model, data, tmp_path_factory) -> Path:
    """A persisted collection with dense widths 64 and 256 and the BM25 sparse vector, closed again."""
    path = tmp_path_factory.mktemp("qdrant-bm25")
    with _opened(path, model) as store:
        store.create_collection(bm25=True)
        store.upsert(data.texts, ids=[int(i) for i in data.ids])
    return path


@contextmanager
def _opened(path: Path, model, name: str = NAME, **kwargs) -> Iterator[SSEQdrant]:
    client = QdrantClient(path=str(path))
    try:
        yield SSEQdrant(client, name, model, dims=kwargs.pop("dims", DIMS), **kwargs)
    finally:
        client.close()


def assert_ranking(got: list[models.ScoredPoint], want: dict, k: int = TOP_K, atol: float = ATOL) -> None:
    """``got`` is the best ``k`` of ``want`` (id -> score): same scores in order, each id scored right.

    Ids may differ from ``want``'s order only inside a group of tied scores.
    """
    best = sorted(want.items(), key=lambda item: -item[1])[:k]
    assert len(got) == len(best), (len(got), len(best))
    np.testing.assert_allclose([p.score for p in got], [s for _, s in best], rtol=0, atol=atol)
    for point, (want_id, want_score) in zip(got, best):
        assert point.id in want, f"{point.id} is not a candidate"
        assert abs(want[point.id] - point.score) <= atol, (point.id, point.score, want[point.id])
        assert point.id == want_id or abs(want_score - point.score) <= atol, "only tied ids may swap"
    assert len({p.id for p in got}) == len(got)


def test_bm25_top10_ids_and_scores_equal_sse_np_and_bm25s(built, model, data, reference) -> None:
    doc_tokens, doc_offsets = reference.lexical_tokens(data.texts)
    lucene = bm25s.BM25(method="lucene", k1=1.2, b=0.75)  # bm25s defaults to k1=1.5
    lucene.index([[str(t) for t in doc_tokens[s:e]] for s, e in pairwise(doc_offsets)], show_progress=False)
    ids = [int(i) for i in data.ids]
    with _opened(built, model) as store:
        stored = store.client.get_collection(NAME).config.metadata["sse_np"]["bm25"]
        assert stored == {"stopwords": True, "k1": 1.2, "b": 0.75, "avgdl": pytest.approx(np.diff(doc_offsets).mean())}
        for query in data.queries:
            got = store.query(query, mode="bm25", limit=TOP_K)
            ours = {h["id"]: h["score"] for h in reference.search(query, k=len(ids), mode="bm25")}
            # Qdrant returns only documents that share a token with the query
            assert_ranking(got, {i: s for i, s in ours.items() if s > 0})
            q_tokens, _ = reference.lexical_tokens([query])
            known = [str(t) for t in q_tokens if str(t) in lucene.vocab_dict]
            scores = lucene.get_scores(known)
            assert_ranking(got, {i: float(s) for i, s in zip(ids, scores) if s > 0})


def _dbsf(lists: list[list[models.ScoredPoint]]) -> dict:
    """Qdrant's Distribution-Based Score Fusion, from its docs: each list's scores are mapped onto [0, 1] with
    mean - 3 std and mean + 3 std as the ends (sample std; a single point, or no spread, gets 0.5), then summed."""
    fused: dict = {}
    for points in lists:
        scores = np.array([p.score for p in points], dtype=np.float64)
        if scores.size == 0:
            continue
        sd = scores.std(ddof=1) if scores.size > 1 else 0.0
        normed = (scores - (scores.mean() - 3 * sd)) / (6 * sd) if sd > 0 else np.full(scores.size, 0.5)
        for point, value in zip(points, normed):
            fused[point.id] = fused.get(point.id, 0.0) + float(value)
    return fused


def _rrf(lists: list[list[models.ScoredPoint]], k: int = 2) -> dict:
    """Qdrant's Reciprocal Rank Fusion, from its docs: sum of 1 / (k + rank), rank from 0, k = 2 by default
    (the paper's 60 is Qdrant's 61)."""
    fused: dict = {}
    for points in lists:
        for rank, point in enumerate(points):
            fused[point.id] = fused.get(point.id, 0.0) + 1.0 / (k + rank)
    return fused


@pytest.mark.parametrize(("fusion", "dim"), [("dbsf", DIM), ("rrf", DIM), ("dbsf", 64)])
def test_hybrid_is_qdrants_fusion_of_the_two_prefetch_lists(built, model, data, fusion, dim) -> None:
    rule = {"dbsf": _dbsf, "rrf": _rrf}[fusion]
    exact = exact_top_ids(model, data, dim=dim)
    with _opened(built, model) as store:
        for qi, query in enumerate(data.queries[:N_HYBRID]):
            dense = store.query(query, mode="dense", dim=dim, limit=CANDIDATES)
            sparse = store.query(query, mode="bm25", limit=CANDIDATES)
            assert [str(p.id) for p in dense[:TOP_K]] == exact[qi]  # the dense list is sse_np's exact search
            got = store.query(query, mode="hybrid", dim=dim, fusion=fusion, candidates=CANDIDATES, limit=TOP_K)
            assert_ranking(got, rule([dense, sparse]), atol=1e-6)


def test_hybrid_defaults_dbsf_over_100_candidates_at_the_widest_width(built, model, data) -> None:
    with _opened(built, model) as store:
        query = data.queries[1]
        lists = [store.query(query, mode="dense", limit=100), store.query(query, mode="bm25", limit=100)]
        assert_ranking(store.query(query, mode="hybrid"), _dbsf(lists), atol=1e-6)


def _answers(store: SSEQdrant, queries: list[str]) -> list:
    return [
        [(p.id, p.score) for p in store.query(q, mode=mode, limit=TOP_K, candidates=CANDIDATES)]
        for q in queries
        for mode in ("bm25", "hybrid")
    ]


def _lucene(docs: list[np.ndarray], query: np.ndarray, avgdl: float, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Lucene BM25 written out: live N and df, the given avgdl in the length normalization."""
    n = len(docs)
    out = np.zeros(n)
    for term in query:
        df = sum(int(term in d) for d in docs)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = int(np.count_nonzero(d == term))
            out[i] += idf * tf / (tf + k1 * (1 - b + b * d.size / avgdl)) if tf else 0.0
    return out


def test_reopened_collection_answers_the_same_and_later_upserts_keep_avgdl(
    built, model, data, reference, tmp_path
) -> None:
    queries = data.queries[:N_HYBRID]
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    with _opened(built, model) as store:
        first = _answers(store, queries)
    with _opened(copy, model) as again:  # a new client and adapter: settings come from the metadata
        assert _answers(again, queries) == first
        avgdl = again.client.get_collection(NAME).config.metadata["sse_np"]["bm25"]["avgdl"]
        extra = ["Aspirin and aspirin again: aspirin lowers the risk of heart attack.", ""]
        again.upsert(extra, ids=[10**9, 10**9 + 1])  # longer and shorter documents: the mean would move
        assert again.client.get_collection(NAME).config.metadata["sse_np"]["bm25"]["avgdl"] == avgdl
        tokens, offsets = reference.lexical_tokens(data.texts + extra)
        docs = [tokens[s:e] for s, e in pairwise(offsets)]
        query = "aspirin heart attack risk"
        expected = _lucene(docs, reference.lexical_tokens([query])[0], avgdl)
        ids = [int(i) for i in data.ids] + [10**9, 10**9 + 1]
        assert_ranking(again.query(query, mode="bm25"), {i: s for i, s in zip(ids, expected) if s > 0})


def test_empty_documents_count_in_the_corpus_like_sse_np(model) -> None:
    texts = ["the cat sat on the mat", "", "of the and", "cat cat dog", "a dog barks"]  # 2 without a token
    store = SSEQdrant(QdrantClient(":memory:"), "tiny", model, dims=(64,))
    store.create_collection(bm25=True)
    store.upsert(texts, ids=list(range(5)))
    index = sse_np.Index(model, dim=64, lexical="pieces")
    index.add(texts)
    for query in ("cat", "dog cat", "the", "cat cat barks"):
        want = {h["id"]: h["score"] for h in index.search(query, k=5, mode="bm25") if h["score"] > 0}
        assert_ranking(store.query(query, mode="bm25", limit=5), want, k=5)
    assert store.query("the of", mode="bm25") == []  # stopwords only: no token to match


def test_avgdl_waits_for_documents_with_tokens(model) -> None:
    store = SSEQdrant(QdrantClient(":memory:"), "late", model, dims=(64,))
    store.create_collection(bm25=True)
    meta = lambda: store.client.get_collection("late").config.metadata["sse_np"]["bm25"]  # noqa: E731
    store.upsert(["", "the of and"], ids=[1, 2])
    assert meta()["avgdl"] is None
    store.upsert(["cat cat dog", "a dog barks"], ids=[3, 4])
    tokens, _ = sse_np.Index(model, lexical="pieces").lexical_tokens(["cat cat dog", "a dog barks"])
    assert meta()["avgdl"] == tokens.size / 2  # the mean over these two: the first two had no token
    given = SSEQdrant(store.client, "given", model, dims=(64,))
    given.create_collection(bm25=True, avgdl=7.0, k1=0.9, b=0.4, stopwords=False)
    given.upsert(["cat cat dog"], ids=[1])
    assert store.client.get_collection("given").config.metadata["sse_np"]["bm25"] == {
        "stopwords": False,
        "k1": 0.9,
        "b": 0.4,
        "avgdl": 7.0,
    }
    with pytest.raises(ValueError, match="BM25 needs"):
        SSEQdrant(store.client, "bad", model, dims=(64,)).create_collection(bm25=True, b=1.5)


def test_bm25_and_hybrid_need_the_sparse_vector(model) -> None:
    client = QdrantClient(":memory:")
    SSEQdrant(client, "dense-only", model, dims=(64,)).create_collection()
    store = SSEQdrant(client, "dense-only", model, dims=(64,))  # a new adapter: learns it from the metadata
    store.upsert(["a text about cats"], ids=[1])
    assert [p.id for p in store.query("cats", mode="dense")] == [1]
    for mode in ("bm25", "hybrid"):
        with pytest.raises(ValueError, match=rf"'dense-only' has no BM25 sparse vector, so mode='{mode}'.*bm25=True"):
            store.query("cats", mode=mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        store.query("cats", mode="sparse")
    with pytest.raises(ValueError, match="fusion must be one of"):
        store.query("cats", mode="hybrid", fusion="zscore")


def test_other_model_is_refused_on_a_bm25_collection(built, model, full_512, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    with _opened(copy, str(full_512[0])) as other:  # same widths, another model and tokenizer weights
        with pytest.raises(ValueError, match=r"holds vectors of model=.* this embedder gives model="):
            other.upsert(["a text"], ids=[1])
        with pytest.raises(ValueError, match=r"holds vectors of model=.* this embedder gives model="):
            other.query("a query", mode="bm25")
        assert other.client.count(NAME).count == len(scifact_slice().ids)  # nothing mixed in
    with (
        _opened(copy, model, dims=(32,)) as narrower,
        pytest.raises(ValueError, match=r"dim=\[64, 256\].*gives .*dim=\[32\]"),
    ):
        narrower.query("a query", mode="hybrid")
