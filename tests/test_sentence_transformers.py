"""Parity through sentence-transformers itself: its StaticEmbedding, its truncate_dim, its normalization.

Tokenization, Matryoshka truncation and normalization order come from
sentence-transformers' code here, not from ours.
"""

from __future__ import annotations

import numpy as np
import pytest

import sse_np

torch = pytest.importorskip("torch", reason="torch not installed: install the test extra")
st = pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed: install the test extra")
from tokenizers import Tokenizer  # noqa: E402

try:  # sentence-transformers >= 6
    from sentence_transformers.base.modules import Module
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
except ImportError:  # older releases
    from sentence_transformers.models import Module, StaticEmbedding


class DyT(Module):
    """y = beta * tanh(alpha * x + bias) on the sentence embedding (the SSE module's head)."""

    def __init__(self, alpha: np.ndarray, beta: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.from_numpy(alpha.copy()))
        self.beta = torch.nn.Parameter(torch.from_numpy(beta.copy()))
        self.bias = torch.nn.Parameter(torch.from_numpy(bias.copy()))

    def forward(self, features: dict, **kwargs) -> dict:
        x = features["sentence_embedding"]
        features["sentence_embedding"] = self.beta * torch.tanh(self.alpha * x + self.bias)
        return features

    def save(self, output_path: str, *args, **kwargs) -> None:  # not needed by the test
        raise NotImplementedError


def _st_model(folder, weights, truncate_dim=None):
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    static = StaticEmbedding(tokenizer, embedding_weights=weights["embedding.weight"])
    dyt = DyT(weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"])
    return st.SentenceTransformer(modules=[static, dyt], device="cpu", truncate_dim=truncate_dim)


def _st_texts(texts):
    # sentence-transformers sorts by length and batches; keep the set moderate.
    return [t for t in texts if len(t) < 20_000][:1500]


@pytest.mark.parametrize("dim", [512, 256, 128, 64, 32])
def test_sentence_transformers_pipeline(backend, full_512, texts, dim):
    folder, weights = full_512
    ours = sse_np.load(folder)
    model = _st_model(folder, weights)
    sample = _st_texts(texts)
    want = model.encode(sample, truncate_dim=dim, normalize_embeddings=True, batch_size=64, convert_to_numpy=True)
    got = ours.encode(sample, truncate_dim=dim, normalize_embeddings=True, batch_size=64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_sentence_transformers_unnormalized(backend, full_small, texts):
    folder, weights = full_small  # tokenizer.json as shipped, truncation at 128
    ours = sse_np.load(folder)
    sample = _st_texts(texts)
    want = _st_model(folder, weights).encode(sample, truncate_dim=32, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode(sample, 32, normalize=False), want, rtol=0, atol=1e-6)


def test_sentence_transformers_cos_sim(full_512):
    folder, _ = full_512
    ours = sse_np.load(folder)
    a = ours.encode(["a query about cats", "another"], normalize=False)
    b = ours.encode(["cats are mammals", "", "dogs"], normalize=False)
    want = st.util.cos_sim(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(sse_np.similarity(a, b), want, rtol=0, atol=1e-6)


def test_drop_in_surface_matches_sentence_transformers(full_512, tmp_path):
    """The same calls on SentenceTransformer and SSEModel give the same vectors, dims and scores."""
    folder, w = full_512
    st = _st_model(folder, w, truncate_dim=256)
    ours = sse_np.load(folder, truncate_dim=256, backend="numpy")
    texts = ["what is static embedding", "a document about embeddings", "CJK 日本"]
    st_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    assert ours.get_embedding_dimension() == ours.get_sentence_embedding_dimension() == st_dim() == 256
    for name in ("encode", "encode_query", "encode_document"):
        a = getattr(st, name)(texts, normalize_embeddings=True, convert_to_numpy=True)
        b = getattr(ours, name)(texts, normalize_embeddings=True, convert_to_numpy=True, device="cpu", prompt=None)
        np.testing.assert_allclose(b, a, atol=1e-6)
    q, d = ours.encode(texts[:1]), ours.encode(texts)
    np.testing.assert_allclose(
        ours.similarity(q, d), st.similarity(torch.from_numpy(q), torch.from_numpy(d)).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        ours.similarity_pairwise(d, d[::-1]),
        st.similarity_pairwise(torch.from_numpy(d), torch.from_numpy(d[::-1].copy())).numpy(),
        atol=1e-6,
    )
    for bad, why in [
        ({"convert_to_tensor": True}, "torch"),
        ({"prompt": "query: "}, "no prompts"),
        ({"prompt_name": "query"}, "no prompts"),
        ({"device": "cuda"}, "CPU"),
        ({"output_value": "token_embeddings"}, "token embeddings"),
    ]:
        with pytest.raises(ValueError, match=why):
            ours.encode(texts, **bad)
    with pytest.raises(TypeError, match="unexpected keyword argument 'pool'"):
        ours.encode(texts, pool=object())
