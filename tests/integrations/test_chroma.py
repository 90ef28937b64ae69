"""Chroma adapter with the real chromadb, persisted on disk, on a BEIR scifact slice."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest

import sse_np
from helpers.stores import DIM, TOP_K, exact_top_ids, scifact_slice
from sse_np.integrations.chroma import SSEEmbeddingFunction

# HNSW is approximate; with ef_search at the corpus size every node is visited, so the
# top-10 is exact here (and the test asserts it, not a recall).
HNSW = {"space": "cosine", "ef_construction": 400, "ef_search": 400, "max_neighbors": 32}


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.default_model()


@pytest.fixture(scope="module")
def data():
    return scifact_slice()


def _query_ids(collection, queries: list[str]) -> list[list[str]]:
    return collection.query(query_texts=queries, n_results=TOP_K)["ids"]


def test_vectors_are_the_models(model) -> None:
    ef = SSEEmbeddingFunction(model, dim=DIM)
    texts = ["Aspirin lowers the risk of heart attack.", "", "Paris is in France."]
    got = np.asarray(ef(texts))
    np.testing.assert_array_equal(got, model.encode(texts, DIM))
    assert ef.name() == "sse_np" and ef.get_config() == {"model": str(model.path), "dim": DIM, "normalize": True}
    assert not ef.is_legacy()


def test_top10_equals_semantic_search_and_reopens(model, data, tmp_path) -> None:
    want = exact_top_ids(model, data)
    client = chromadb.PersistentClient(path=str(tmp_path))
    ef = SSEEmbeddingFunction(model, dim=DIM)
    docs = client.create_collection("scifact", embedding_function=ef, configuration={"hnsw": HNSW})
    docs.add(ids=data.ids, documents=data.texts)
    assert _query_ids(docs, data.queries) == want
    del docs, client

    # a new client, no embedding_function: Chroma rebuilds ours from the persisted config
    reopened = chromadb.PersistentClient(path=str(tmp_path)).get_collection("scifact")
    assert reopened.count() == len(data.ids)
    assert _query_ids(reopened, data.queries) == want
    stored = reopened.configuration_json["embedding_function"]
    assert stored == {"type": "known", "name": "sse_np", "config": ef.get_config()}
    ef.check_collection(reopened)


def test_wrong_dims_and_other_model_are_refused(model, full_512, tmp_path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    docs = client.create_collection("col", embedding_function=SSEEmbeddingFunction(model, dim=64))
    docs.add(ids=["a"], documents=["a first document"])

    narrower = SSEEmbeddingFunction(model, dim=32)
    with pytest.raises(ValueError, match=r"holds vectors of .*dim=64.*gives .*dim=32"):
        narrower.check_collection(docs)
    with pytest.raises(Exception, match="expecting embedding with dimension of 64, got 32"):
        client.get_collection("col", embedding_function=narrower).add(ids=["b"], documents=["b"])

    other = SSEEmbeddingFunction(str(full_512[0]), dim=64)  # same width, another model
    with pytest.raises(ValueError, match=r"holds vectors of model=.* this embedder gives model="):
        other.check_collection(client.get_collection("col"))
    assert client.get_collection("col").count() == 1  # nothing was mixed in


def test_bad_input(model) -> None:
    ef = SSEEmbeddingFunction(model, dim=8)
    with pytest.raises(TypeError, match="got a str"):
        ef("one text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dim must be an int in 1\.\.512"):
        SSEEmbeddingFunction(model, dim=0)
    with pytest.raises(ValueError, match="config lacks dim"):
        SSEEmbeddingFunction.build_from_config({"model": None, "normalize": True})
