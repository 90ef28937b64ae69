"""Qdrant adapter with the real qdrant-client in local mode (on disk), on a BEIR scifact slice."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import sse_np
from helpers.stores import DIM, TOP_K, exact_top_ids, scifact_slice
from sse_np.integrations.qdrant import SSEQdrant

DIMS = (64, DIM)


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.default_model()


@pytest.fixture(scope="module")
def data():
    return scifact_slice()


def _top_ids(store: SSEQdrant, queries: list[str], dim: int) -> list[list[str]]:
    # local mode searches exhaustively: exact by construction (exact=True would ask a server for the same)
    return [[str(p.id) for p in store.query(q, dim=dim, limit=TOP_K)] for q in queries]


def test_named_vectors_are_the_models_at_each_width(model) -> None:
    store = SSEQdrant(QdrantClient(":memory:"), "v", model, dims=DIMS)
    texts = ["Aspirin lowers the risk of heart attack.", "", "Paris is in France."]
    vectors = store.embed(texts)
    assert sorted(vectors) == ["sse-256", "sse-64"]
    for dim in DIMS:
        np.testing.assert_allclose(vectors[f"sse-{dim}"], model.encode(texts, dim), rtol=0, atol=1e-6)


def test_top10_equals_semantic_search_and_reopens(model, data, tmp_path) -> None:
    want = {dim: exact_top_ids(model, data, dim=dim) for dim in DIMS}
    client = QdrantClient(path=str(tmp_path))
    store = SSEQdrant(client, "scifact", model, dims=DIMS)
    store.create_collection(binary_quantization=True)  # accepted; local mode keeps searching the floats
    store.upsert(data.texts, ids=[int(i) for i in data.ids], payloads=[{"title": t} for t in data.titles])
    for dim in DIMS:
        assert _top_ids(store, data.queries, dim) == want[dim]
    first = store.query(data.queries[0], limit=1)[0]
    assert first.payload == {
        "title": data.titles[data.ids.index(str(first.id))],
        "document": data.texts[data.ids.index(str(first.id))],
    }
    client.close()

    reopened = SSEQdrant(QdrantClient(path=str(tmp_path)), "scifact", model, dims=DIMS)
    reopened.check_collection()
    assert reopened.client.count("scifact").count == len(data.ids)
    for dim in DIMS:
        assert _top_ids(reopened, data.queries, dim) == want[dim]
    reopened.client.close()


def test_wrong_dims_and_other_model_are_refused(model, full_512) -> None:
    client = QdrantClient(":memory:")
    SSEQdrant(client, "col", model, dims=(64,)).create_collection()
    narrower = SSEQdrant(client, "col", model, dims=(32,))
    with pytest.raises(ValueError, match=r"holds vectors of .*dim=\[64\].*gives .*dim=\[32\]"):
        narrower.upsert(["a text"], ids=[1])
    other = SSEQdrant(client, "col", str(full_512[0]), dims=(64,))  # same width, another model
    with pytest.raises(ValueError, match=r"holds vectors of model=.* this embedder gives model="):
        other.upsert(["a text"], ids=[1])
    with pytest.raises(Exception, match="64"):  # Qdrant's own check on a raw vector of the wrong size
        client.upsert("col", points=[models.PointStruct(id=2, vector={"sse-64": [0.1] * 32})])
    client.create_collection("plain", vectors_config=models.VectorParams(size=64, distance=models.Distance.COSINE))
    with pytest.raises(ValueError, match="was not created by sse_np"):
        SSEQdrant(client, "plain", model, dims=(64,)).upsert(["a"], ids=[1])
    assert client.count("col").count == 0  # nothing was mixed in


def test_bad_input(model) -> None:
    store = SSEQdrant(QdrantClient(":memory:"), "b", model, dims=(64,))
    store.create_collection()
    with pytest.raises(TypeError, match="got a str"):
        store.upsert("one text", ids=[1])
    with pytest.raises(ValueError, match="2 texts need as many ids"):
        store.upsert(["a", "b"], ids=[1])
    with pytest.raises(ValueError, match=r"dim 128 is not stored in 'b'; stored widths: \[64\]"):
        store.query("q", dim=128)
    with pytest.raises(ValueError, match="dims must be distinct"):
        SSEQdrant(QdrantClient(":memory:"), "c", model, dims=(64, 64))
    with pytest.raises(ValueError, match=r"dim must be an int in 1\.\.512"):
        SSEQdrant(QdrantClient(":memory:"), "c", model, dims=(1024,))
