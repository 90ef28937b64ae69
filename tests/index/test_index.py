"""sse_np.Index: add/search in every mode and precision, save/load round trips, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sse_np
from helpers.models import make_random_model
from sse_np import Index
from sse_np.errors import IndexFormatError

DOCS = [
    "The cat sat on the mat.",
    "Dogs are loyal animals that love walks.",
    "Python is a programming language.",
    "The stock market fell sharply today.",
    "Cats and dogs can be good friends.",
    "A recipe for chocolate cake with cream.",
]


@pytest.fixture(scope="module")
def model():
    return sse_np.default_model()


@pytest.fixture(scope="module", params=["float32", "int8", "binary"])
def index(request, model) -> Index:
    ix = Index(model, precision=request.param)
    ix.add(DOCS[:3])
    ix.add(DOCS[3:], ids=["d3", "d4", "d5"])
    return ix


def test_bm25_mode_ranks_by_shared_words(index):
    hits = index.search("chocolate cake recipe", k=2, mode="bm25")
    assert hits[0]["id"] == "d5"
    assert hits[0]["score"] > 0 and hits[1]["score"] == 0.0


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_modes_find_the_obvious_document(index, mode):
    assert index.search("stock market", k=1, mode=mode)[0]["id"] == "d3"


def test_hybrid_is_the_convex_combination_of_z_scores(model):
    ix = Index(model, weight=0.3)
    ix.add(DOCS)
    n = len(DOCS)
    dense = {h["id"]: h["score"] for h in ix.search("cats and dogs", k=n, mode="dense")}
    lexical = {h["id"]: h["score"] for h in ix.search("cats and dogs", k=n, mode="bm25")}
    d = np.array([dense[i] for i in range(n)])
    b = np.array([lexical[i] for i in range(n)])
    expected = 0.3 * (d - d.mean()) / d.std() + 0.7 * (b - b.mean()) / b.std()
    got = ix.search("cats and dogs", k=n)
    assert [h["id"] for h in got] == sorted(range(n), key=lambda i: (-expected[i], i))
    np.testing.assert_allclose([h["score"] for h in got], sorted(expected, reverse=True), atol=1e-5)


def test_dense_mode_matches_semantic_search(model):
    ix = Index(model, dim=256)
    ix.add(DOCS)
    q = model.encode("pets", dim=256)
    expected = sse_np.semantic_search(q[None], model.encode(DOCS, dim=256), top_k=3)[0]
    got = ix.search("pets", k=3, mode="dense")
    assert [h["id"] for h in got] == [h["corpus_id"] for h in expected]
    np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in expected], atol=1e-5)


def test_narrower_dim_equals_an_index_built_at_that_dim(model):
    wide, narrow = Index(model), Index(model, dim=128)
    wide.add(DOCS)
    narrow.add(DOCS)
    for mode in ("dense", "hybrid"):
        a = wide.search("a tasty dessert", k=4, mode=mode, dim=128)
        b = narrow.search("a tasty dessert", k=4, mode=mode)
        assert [h["id"] for h in a] == [h["id"] for h in b]
        np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-5)


def test_many_queries_and_rrf(index):
    many = index.search(["stock market", "programming language"], k=2, fusion="rrf")
    assert [hits[0]["id"] for hits in many] == ["d3", 2]
    assert index.search([], k=3) == []


def test_stopwords_are_left_out_of_bm25(model):
    with_stop, without = Index(model), Index(model, stopwords=False)
    for ix in (with_stop, without):
        ix.add(["the the the the", "apples"])
    assert with_stop.search("the", k=1, mode="bm25")[0]["score"] == 0.0
    assert without.search("the", k=1, mode="bm25")[0]["score"] > 0.0


def test_save_load_round_trip(index, tmp_path):
    index.save(tmp_path / "ix")
    loaded = Index.load(tmp_path / "ix", index.model, verify=True)
    assert loaded.ids == index.ids and loaded.precision == index.precision
    for mode in ("dense", "bm25", "hybrid"):
        assert loaded.search("friendly pets", k=4, mode=mode) == index.search("friendly pets", k=4, mode=mode)
    assert isinstance(loaded._build().vectors, np.memmap)
    with pytest.raises(ValueError, match="read-only"):
        loaded.add(["more"])


def test_save_replaces_an_index_but_not_other_folders(model, tmp_path):
    ix = Index(model)
    ix.add(DOCS[:2])
    ix.save(tmp_path / "ix")
    ix.add(DOCS[2:])
    ix.save(tmp_path / "ix")
    assert len(Index.load(tmp_path / "ix", model)) == len(DOCS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # no temporary folder left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(IndexFormatError, match="not an sse_np index"):
        ix.save(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def _saved(model, folder):
    ix = Index(model)
    ix.add(DOCS)
    ix.save(folder)
    return folder


def test_truncated_file_is_refused(model, tmp_path):
    folder = _saved(model, tmp_path / "ix")
    data = (folder / "vectors.npy").read_bytes()
    (folder / "vectors.npy").write_bytes(data[:-10])
    with pytest.raises(IndexFormatError, match=r"vectors\.npy.*corrupt"):
        Index.load(folder, model)


def test_flipped_byte_is_refused_when_verifying(model, tmp_path):
    folder = _saved(model, tmp_path / "ix")
    data = bytearray((folder / "bm25_weights.npy").read_bytes())
    data[-1] ^= 0xFF
    (folder / "bm25_weights.npy").write_bytes(bytes(data))
    Index.load(folder, model)  # sizes agree: only the checksums see it
    with pytest.raises(IndexFormatError, match=r"bm25_weights\.npy.*SHA-256"):
        Index.load(folder, model, verify=True)


def test_other_version_and_missing_manifest_are_refused(model, tmp_path):
    folder = _saved(model, tmp_path / "ix")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="version 99"):
        Index.load(folder, model)
    (folder / "manifest.json").unlink()
    with pytest.raises(IndexFormatError, match="not an sse_np index"):
        Index.load(folder, model)


def test_shape_mismatch_is_refused(model, tmp_path):
    folder = _saved(model, tmp_path / "ix")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["n_docs"] = 3
    (folder / "ids.json").write_text(json.dumps([0, 1, 2]))
    manifest["files"]["ids.json"]["bytes"] = (folder / "ids.json").stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match=r"vectors\.npy has shape"):
        Index.load(folder, model)


def test_index_of_another_model_is_refused(model, tmp_path):
    folder = _saved(model, tmp_path / "ix")
    other = sse_np.load(make_random_model(tmp_path / "other_model", dim=64))
    with pytest.raises(IndexFormatError, match="another model"):
        Index.load(folder, other)


def test_bad_arguments(model):
    ix = Index(model)
    with pytest.raises(ValueError, match="duplicate document id 'x'"):
        ix.add(["a", "b"], ids=["x", "x"])
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        ix.add(["a", "b"], ids=["y"])
    ix.add(["a"])
    with pytest.raises(ValueError, match="mode must be one of"):
        ix.search("a", mode="sparse")
    with pytest.raises(ValueError, match="k must be a positive int"):
        ix.search("a", k=0)
    with pytest.raises(ValueError, match="dim must lie"):
        Index(model, dim=1024)


def test_quantized_hybrid_z_statistics_are_those_of_all_documents(model):
    """A quantized index keeps the float vectors' moments: q.mu and sqrt(q^T S q) are every score's mean and std."""
    ix = Index(model, precision="int8")
    texts = [f"document number {i} about {w}" for i, w in enumerate(["cats", "dogs", "pie", "stocks"] * 10)]
    ix.add(texts)
    built = ix._build()
    floats = model.encode(texts)
    q = model.encode("a query about pets")
    scores = floats @ q
    assert float(q @ built.mean) == pytest.approx(scores.mean(), abs=1e-6)
    assert float(np.sqrt(q @ built.cov @ q)) == pytest.approx(scores.std(), rel=1e-4)


def test_top_k_breaks_ties_by_position():
    from sse_np.index.rank import top_k

    rng = np.random.default_rng(0)
    for _ in range(50):
        scores = rng.integers(0, 4, size=200).astype(np.float32)  # many ties
        k = int(rng.integers(1, 200))
        order, best = top_k(scores, k)
        expected = sorted(range(200), key=lambda i: (-scores[i], i))[:k]
        assert order.tolist() == expected and best.tolist() == scores[expected].tolist()


def test_hybrid_and_top_k_without_numba_kernels_rank_the_same(model, monkeypatch):
    from sse_np.retrieval import fusion

    ix = Index(model)
    ix.add(DOCS)
    queries = ["cats and dogs", "stock market", "a tasty dessert"]
    fast = {mode: ix.search(queries, k=4, mode=mode) for mode in ("dense", "bm25", "hybrid")}
    monkeypatch.setattr(fusion, "_loaded", False)  # NumPy's fusion and argpartition
    for mode, want in fast.items():
        got = ix.search(queries, k=4, mode=mode)
        assert [[h["id"] for h in hits] for hits in got] == [[h["id"] for h in hits] for hits in want]
        for a, b in zip(got, want):
            np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], rtol=1e-9, atol=1e-9)
