"""Haystack 2 components with the real haystack-ai, on a BEIR scifact slice."""

from __future__ import annotations

import asyncio
from inspect import signature

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.in_memory import InMemoryDocumentStore

import sse_np
from helpers.stores import DIM, TOP_K, exact_top_ids, scifact_slice
from sse_np.integrations.haystack import SSEDocumentEmbedder, SSETextEmbedder


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.default_model()


@pytest.fixture(scope="module")
def data():
    return scifact_slice()


def _query_pipeline(store: InMemoryDocumentStore) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("embedder", SSETextEmbedder(dim=DIM))
    pipe.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=TOP_K))  # exhaustive: exact
    pipe.connect("embedder.embedding", "retriever.query_embedding")
    return pipe


def _top_ids(pipe: Pipeline, queries: list[str]) -> list[list[str]]:
    return [[d.id for d in pipe.run({"embedder": {"text": q}})["retriever"]["documents"]] for q in queries]


def test_vectors_are_the_models_with_meta_fields(model) -> None:
    docs = [Document(content="Aspirin lowers heart attack risk.", meta={"title": "Aspirin", "year": None}), Document()]
    embedder = SSEDocumentEmbedder(model, dim=64, meta_fields_to_embed=["title", "year", "absent"])
    out = embedder.run(docs)
    assert out["meta"] == {"model": str(model.path), "dim": 64}
    want = model.encode(["Aspirin\nAspirin lowers heart attack risk.", ""], 64)  # Haystack's joining rule
    np.testing.assert_array_equal(np.array([d.embedding for d in out["documents"]], dtype=np.float32), want)
    assert docs[0].embedding is None  # inputs are not modified
    text = SSETextEmbedder(model, dim=64, prefix="query: ")
    np.testing.assert_array_equal(np.float32(text.run("heart")["embedding"]), model.encode("query: heart", 64))
    async_out = asyncio.run(text.run_async("heart"))["embedding"]
    assert async_out == text.run("heart")["embedding"]


def test_top10_equals_semantic_search_and_reopens(model, data, tmp_path) -> None:
    want = exact_top_ids(model, data, doc_texts=[f"{t}\n{x}" for t, x in zip(data.titles, data.texts)])
    docs = [Document(id=i, content=x, meta={"title": t}) for i, x, t in zip(data.ids, data.texts, data.titles)]
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    indexing = Pipeline()
    indexing.add_component("embedder", SSEDocumentEmbedder(dim=DIM, meta_fields_to_embed=["title"]))
    indexing.add_component("writer", _writer(store))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": docs}})
    query = _query_pipeline(store)
    assert _top_ids(query, data.queries) == want

    # the store saved and loaded, the query pipeline rebuilt from its own to_dict
    store.save_to_disk(str(tmp_path / "store.json"))
    loaded = InMemoryDocumentStore.load_from_disk(str(tmp_path / "store.json"))
    spec = _query_pipeline(loaded).to_dict()
    assert spec["components"]["embedder"]["init_parameters"]["dim"] == DIM
    # Haystack 3 deserializes only allow-listed modules (Haystack 2 has no such argument)
    allow = {"allowed_modules": ["sse_np.integrations.haystack"]}
    rebuilt = Pipeline.from_dict(
        spec, **(allow if "allowed_modules" in signature(Pipeline.from_dict).parameters else {})
    )
    assert _top_ids(rebuilt, data.queries) == want


def _writer(store: InMemoryDocumentStore):
    from haystack.components.writers import DocumentWriter

    return DocumentWriter(store)


def test_serialization_round_trip() -> None:
    doc = SSEDocumentEmbedder("some/hub-id", dim=128, meta_fields_to_embed=["title"], embedding_separator=" | ")
    data = doc.to_dict()
    assert data["type"] == "sse_np.integrations.haystack.SSEDocumentEmbedder"
    assert data["init_parameters"]["model"] == "some/hub-id"
    again = SSEDocumentEmbedder.from_dict(data)  # no model is loaded until warm_up or run
    assert again.to_dict() == data and again.embedding_separator == " | "
    text = SSETextEmbedder(None, dim=32, suffix="!")
    assert SSETextEmbedder.from_dict(text.to_dict()).to_dict() == text.to_dict()


def test_wrong_dims_are_refused_by_the_store(model) -> None:
    store = InMemoryDocumentStore()
    store.write_documents(SSEDocumentEmbedder(model, dim=64).run([Document(content="a document")])["documents"])
    query = SSETextEmbedder(model, dim=32).run("a query")["embedding"]
    with pytest.raises(DocumentStoreError, match="same model as the Documents"):
        store.embedding_retrieval(query, top_k=1)


def test_bad_input(model) -> None:
    with pytest.raises(TypeError, match="SSETextEmbedder takes one str"):
        SSETextEmbedder(model).run(["a list"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a list of Documents"):
        SSEDocumentEmbedder(model).run(["not a Document"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"dim must be an int in 1\.\.512"):
        SSETextEmbedder(model, dim=513).warm_up()
