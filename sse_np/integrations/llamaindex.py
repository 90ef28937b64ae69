"""LlamaIndex adapter: :class:`SSEEmbedding`, a ``llama_index.core`` ``BaseEmbedding``.

Example::

    from llama_index.core import Document, Settings, VectorStoreIndex
    from sse_np.integrations.llamaindex import SSEEmbedding

    Settings.embed_model = SSEEmbedding(dim=256)
    index = VectorStoreIndex.from_documents([Document(text="first document")])
    index.as_retriever(similarity_top_k=1).retrieve("a query")
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ._common import check_dim, check_texts, missing_framework, resolve_model

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("llamaindex", "llamaindex", "llama-index-core") from exc

__all__ = ["SSEEmbedding"]


class SSEEmbedding(BaseEmbedding):
    """SSE embeddings for LlamaIndex (sync and async).

    Parameters
    ----------
    model : str, path or SSEModel, optional
        A model folder, a Hugging Face hub id, or a loaded ``SSEModel``
        (default: sse_np's default model).
    dim : int, optional
        Matryoshka width of the vectors (default: the model's full width).
    batch_size : int
        Texts per call from LlamaIndex (its ``embed_batch_size``) and per
        encoding step.
    normalize : bool
        Unit-length vectors.
    threads, backend
        Passed to ``sse_np.load`` when ``model`` is a path or hub id.
    """

    _model: Any = PrivateAttr()
    _dim: int = PrivateAttr()
    _normalize: bool = PrivateAttr()

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        dim: int | None = None,
        batch_size: int = 1024,
        normalize: bool = True,
        threads: int | None = None,
        backend: str | None = None,
        **kwargs: Any,
    ) -> None:
        loaded = resolve_model(model, threads, backend)
        width = check_dim(loaded, dim)
        kwargs.setdefault("model_name", f"sse_np:{getattr(loaded, 'path', 'model')}@{width}")
        super().__init__(embed_batch_size=batch_size, **kwargs)
        self._model = loaded
        self._dim = width
        self._normalize = normalize

    @classmethod
    def class_name(cls) -> str:
        return "SSEEmbedding"

    @property
    def model(self) -> Any:
        """The ``SSEModel``."""
        return self._model

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return self._dim

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts, self._dim, batch_size=max(1, self.embed_batch_size), normalize=self._normalize
        )
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        return self._encode([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(check_texts(texts, "_get_text_embeddings"))

    # A worker thread keeps the event loop responsive while the batch encodes.
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
