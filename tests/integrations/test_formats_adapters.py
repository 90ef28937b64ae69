"""The LangChain and LlamaIndex adapters on a model2vec model and a StaticEmbedding model."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import static_models as sm

pytest.importorskip("model2vec", reason="building the model2vec model needs model2vec (the test extra)")
st = pytest.importorskip("sentence_transformers", reason="the StaticEmbedding model needs sentence-transformers")
TEXTS = ["a cat sat on the mat", "", "static embeddings for search", "café 日本"]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """(folder, vectors its own library returns, normalized) per format."""
    from model2vec import StaticModel

    root = tmp_path_factory.mktemp("adapters")
    potion = sm.minilm_model2vec(root / "potion", "mapped", normalize=True)
    static, _ = sm.st_static(root / "st", "bpe", normalize=True)
    return {
        "model2vec": (potion, StaticModel.from_pretrained(potion).encode(TEXTS)),
        "sentence-transformers": (static, st.SentenceTransformer(str(static), device="cpu").encode(TEXTS)),
    }


@pytest.mark.parametrize("fmt", ["model2vec", "sentence-transformers"])
def test_langchain(references, fmt):
    pytest.importorskip("langchain_core")
    from sse_np.integrations.langchain import SSEEmbeddings

    folder, want = references[fmt]
    emb = SSEEmbeddings(str(folder))
    np.testing.assert_allclose(np.array(emb.embed_documents(TEXTS)), want, atol=1e-6)
    np.testing.assert_allclose(np.array(emb.embed_query(TEXTS[0])), want[0], atol=1e-6)


@pytest.mark.parametrize("fmt", ["model2vec", "sentence-transformers"])
def test_llamaindex(references, fmt):
    pytest.importorskip("llama_index.core")
    from sse_np.integrations.llamaindex import SSEEmbedding

    folder, want = references[fmt]
    emb = SSEEmbedding(str(folder))
    np.testing.assert_allclose(np.array(emb.get_text_embedding_batch(TEXTS)), want, atol=1e-6)
