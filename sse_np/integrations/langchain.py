"""LangChain adapter: :class:`SSEEmbeddings`, a ``langchain_core.embeddings.Embeddings``.

Example::

    from sse_np.integrations.langchain import SSEEmbeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(SSEEmbeddings(dim=256))
    store.add_texts(["first document", "second document"])
    store.similarity_search("a query", k=1)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ._common import check_dim, check_texts, missing_framework, resolve_model

try:
    from langchain_core.embeddings import Embeddings
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("langchain", "langchain", "langchain-core") from exc

__all__ = ["SSEEmbeddings"]


class SSEEmbeddings(Embeddings):
    """SSE embeddings for LangChain (sync and async).

    Parameters
    ----------
    model : str, path or SSEModel, optional
        A model folder, a Hugging Face hub id, or a loaded ``SSEModel``
        (default: sse_np's default model).
    dim : int, optional
        Matryoshka width of the vectors (default: the model's full width).
    batch_size : int
        Texts per encoding step.
    normalize : bool
        Unit-length vectors (cosine = dot product).
    threads, backend
        Passed to ``sse_np.load`` when ``model`` is a path or hub id.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        dim: int | None = None,
        batch_size: int = 1024,
        normalize: bool = True,
        threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model = resolve_model(model, threads, backend)
        self.dim = check_dim(self.model, dim)
        self.batch_size = batch_size
        self.normalize = normalize

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, self.dim, batch_size=self.batch_size, normalize=self.normalize)
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector (list of float) per text, in order."""
        return self._encode(check_texts(texts, "embed_documents"))

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query (SSE has no query prompt: same as a document)."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes one str, got {type(text).__name__}")
        return self._encode([text])[0]

    # A worker thread keeps the event loop responsive while the batch encodes.
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_query, text)

    def __repr__(self) -> str:
        return f"SSEEmbeddings(model={str(getattr(self.model, 'path', self.model))!r}, dim={self.dim})"
