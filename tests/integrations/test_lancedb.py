"""LanceDB adapter with the real lancedb (on disk), on a BEIR scifact slice."""

from __future__ import annotations

import lancedb
import numpy as np
import pytest
from lancedb.embeddings import get_registry
from lancedb.pydantic import LanceModel, Vector

import sse_np
from helpers.stores import DIM, TOP_K, exact_top_ids, scifact_slice
from sse_np.integrations.lancedb import SSETextEmbeddings


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.default_model()


@pytest.fixture(scope="module")
def data():
    return scifact_slice()


def _schema(func: SSETextEmbeddings) -> type[LanceModel]:
    class Doc(LanceModel):
        doc_id: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    return Doc


def _top_ids(table, queries: list[str]) -> list[list[str]]:
    # no vector index: LanceDB scans every row (exact); cosine as semantic_search
    return [
        [r["doc_id"] for r in table.search(q).distance_type("cosine").limit(TOP_K).select(["doc_id"]).to_list()]
        for q in queries
    ]


def test_registered_function_gives_the_models_vectors(model) -> None:
    func = get_registry().get("sse-np").create(name=str(model.path), dim=DIM)
    assert isinstance(func, SSETextEmbeddings) and func.ndims() == DIM
    assert get_registry().get("sse-np").create(name=str(model.path), dim=64).model is func.model  # loaded once
    texts = ["Aspirin lowers the risk of heart attack.", "", "Paris is in France."]
    np.testing.assert_array_equal(np.asarray(func.compute_source_embeddings(texts)), model.encode(texts, DIM))
    np.testing.assert_array_equal(func.compute_query_embeddings(texts[0])[0], model.encode(texts[0], DIM))


def test_top10_equals_semantic_search_and_reopens(model, data, tmp_path) -> None:
    want = exact_top_ids(model, data)
    func = get_registry().get("sse-np").create(dim=DIM)  # the default model, as a user writes it
    table = lancedb.connect(tmp_path).create_table("scifact", schema=_schema(func))
    table.add([{"doc_id": i, "text": t} for i, t in zip(data.ids, data.texts)])  # embedded on insert
    assert _top_ids(table, data.queries) == want
    del table

    reopened = lancedb.connect(tmp_path).open_table("scifact")
    stored = reopened.embedding_functions["vector"].function  # rebuilt from the table's metadata
    assert isinstance(stored, SSETextEmbeddings) and stored.config() == func.config()
    assert reopened.count_rows() == len(data.ids)
    assert _top_ids(reopened, data.queries) == want
    func.check_table(reopened)


def test_wrong_dims_and_other_model_are_refused(model, full_512, tmp_path) -> None:
    db = lancedb.connect(tmp_path)
    func = get_registry().get("sse-np").create(dim=64)
    table = db.create_table("col", schema=_schema(func))
    table.add([{"doc_id": "a", "text": "a first document"}])

    narrower = get_registry().get("sse-np").create(dim=32)
    with pytest.raises(ValueError, match="does not match existing table schema"):
        db.create_table("col", schema=_schema(narrower), exist_ok=True)
    with pytest.raises(ValueError, match=r"holds vectors of .*dim=64.*gives .*dim=32"):
        narrower.check_table(table)
    with pytest.raises(Exception, match="variable length vectors"):  # LanceDB's own check
        table.add([{"doc_id": "b", "text": "b", "vector": [0.1] * 32}])

    other = get_registry().get("sse-np").create(name=str(full_512[0]), dim=64)  # same width, another model
    with pytest.raises(ValueError, match=r"holds vectors of model=None.* this embedder gives model="):
        other.check_table(db.open_table("col"))
    assert db.open_table("col").count_rows() == 1  # nothing was mixed in


def test_bad_input(model) -> None:
    func = get_registry().get("sse-np").create(dim=8)
    with pytest.raises(TypeError, match="got a str"):
        func.generate_embeddings("one text")
    with pytest.raises(ValueError, match=r"dim must be an int in 1\.\.512"):
        get_registry().get("sse-np").create(dim=600)
