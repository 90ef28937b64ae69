"""LangChain and LlamaIndex adapters, with the real packages, offline."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest

import sse_np
from helpers.extras import install_commands

DOCS = [
    "Aspirin reduces the risk of heart attack in older adults.",
    "The Eiffel Tower is in Paris, France.",
    "Photosynthesis turns light into chemical energy in plants.",
    "Python is a programming language with dynamic typing.",
    "",
]
QUERY = "which drug lowers heart attack risk"


@pytest.fixture(scope="module")
def model() -> sse_np.SSEModel:
    return sse_np.load(sse_np.default_model_path(), backend="numpy")


def _close(a: list, b: np.ndarray) -> None:
    arr = np.asarray(a, dtype=np.float64)
    assert arr.shape == b.shape
    np.testing.assert_array_equal(arr.astype(np.float32), b)  # float32 -> Python float -> float32 is exact


# --------------------------------------------------------------------------- LangChain


def test_langchain_vectors_equal_model_encode(model: sse_np.SSEModel) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.embeddings import Embeddings

    from sse_np.integrations.langchain import SSEEmbeddings

    emb = SSEEmbeddings(model, dim=64)
    assert isinstance(emb, Embeddings)
    docs = emb.embed_documents(DOCS)
    assert all(type(x) is float for x in docs[0])
    _close(docs, model.encode(DOCS, 64))
    _close(emb.embed_query(QUERY), model.encode(QUERY, 64))
    _close(asyncio.run(emb.aembed_documents(DOCS)), model.encode(DOCS, 64))
    _close(asyncio.run(emb.aembed_query(QUERY)), model.encode(QUERY, 64))
    # full width by default; a path loads the model
    full = SSEEmbeddings(str(model.path), backend="numpy")
    _close(full.embed_query(QUERY), model.encode(QUERY))
    assert emb.embed_documents([]) == []


def test_langchain_in_memory_vector_store(model: sse_np.SSEModel) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.vectorstores import InMemoryVectorStore

    from sse_np.integrations.langchain import SSEEmbeddings

    store = InMemoryVectorStore(SSEEmbeddings(model, dim=256))
    store.add_texts(DOCS[:4])
    hits = store.similarity_search_with_score(QUERY, k=2)
    assert hits[0][0].page_content == DOCS[0]
    expected = sse_np.similarity(model.encode(QUERY, 256), model.encode(DOCS[0], 256))[0, 0]
    assert hits[0][1] == pytest.approx(float(expected), abs=1e-5)
    async_hits = asyncio.run(store.asimilarity_search(QUERY, k=2))
    assert [d.page_content for d in async_hits] == [d.page_content for d, _ in hits]


def test_langchain_bad_input(model: sse_np.SSEModel) -> None:
    pytest.importorskip("langchain_core")
    from sse_np.integrations.langchain import SSEEmbeddings

    with pytest.raises(ValueError, match=r"dim must be an int in 1\.\.512"):
        SSEEmbeddings(model, dim=1000)
    emb = SSEEmbeddings(model, dim=32)
    with pytest.raises(TypeError, match="got a str"):
        emb.embed_documents("one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        emb.embed_documents(["ok", 3])
    with pytest.raises(TypeError, match="model must be a path, a hub id or an SSEModel"):
        SSEEmbeddings(object())


# --------------------------------------------------------------------------- LlamaIndex


def test_llamaindex_vectors_equal_model_encode(model: sse_np.SSEModel) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from sse_np.integrations.llamaindex import SSEEmbedding

    emb = SSEEmbedding(model, dim=128, batch_size=2)
    assert isinstance(emb, BaseEmbedding) and emb.dim == 128 and emb.model is model
    expected = model.encode(DOCS, 128)
    _close(emb.get_text_embedding_batch(DOCS), expected)  # batches of 2 through LlamaIndex
    _close(emb.get_text_embedding(DOCS[1]), expected[1])
    _close(emb.get_query_embedding(QUERY), model.encode(QUERY, 128))
    _close(asyncio.run(emb.aget_query_embedding(QUERY)), model.encode(QUERY, 128))
    _close(asyncio.run(emb.aget_text_embedding(DOCS[2])), expected[2])
    _close(asyncio.run(emb.aget_text_embedding_batch(DOCS)), expected)
    _close(asyncio.run(emb._aget_text_embeddings(DOCS)), expected)


def test_llamaindex_vector_store_index(model: sse_np.SSEModel) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.schema import TextNode

    from sse_np.integrations.llamaindex import SSEEmbedding

    previous = Settings._llm
    Settings.llm = None  # MockLLM: nothing leaves the machine
    try:
        nodes = [TextNode(text=t, id_=f"doc{i}") for i, t in enumerate(DOCS[:4])]
        index = VectorStoreIndex(nodes, embed_model=SSEEmbedding(model, dim=256))
        hits = index.as_retriever(similarity_top_k=2).retrieve(QUERY)
        assert hits[0].node.node_id == "doc0"
        expected = sse_np.similarity(model.encode(QUERY, 256), model.encode(DOCS[0], 256))[0, 0]
        assert hits[0].score == pytest.approx(float(expected), abs=1e-5)
        async_hits = asyncio.run(index.as_retriever(similarity_top_k=2).aretrieve(QUERY))
        assert [h.node.node_id for h in async_hits] == [h.node.node_id for h in hits]
    finally:
        Settings._llm = previous


def test_missing_extras_give_one_line_errors() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "sys.modules['llama_index'] = None\n"
        "for mod in ('langchain', 'llamaindex'):\n"
        "    try:\n"
        "        __import__('sse_np.integrations.' + mod)\n"
        "    except ImportError as e:\n"
        "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"sse_np.integrations.langchain (langchain-core) needs the 'langchain' extra: {install_commands('langchain')}",
        "sse_np.integrations.llamaindex (llama-index-core) needs the 'llamaindex' extra: "
        + install_commands("llamaindex"),
    ]
