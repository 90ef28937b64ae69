"""Haystack 2 adapter: the ``SSETextEmbedder`` and ``SSEDocumentEmbedder`` components.

They follow Haystack's embedder interface (``run`` / ``run_async``, ``warm_up``, ``to_dict`` /
``from_dict``, ``prefix``/``suffix``, ``meta_fields_to_embed``), so pipelines written for
``SentenceTransformersTextEmbedder`` and its document twin work with them swapped in. Example::

    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from sse_np.integrations.haystack import SSEDocumentEmbedder, SSETextEmbedder

    store = InMemoryDocumentStore()
    docs = SSEDocumentEmbedder(dim=256).run([Document(content="first document")])["documents"]
    store.write_documents(docs)
    store.embedding_retrieval(SSETextEmbedder(dim=256).run("a query")["embedding"], top_k=1)
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import Any

from ._common import StoreEmbedder, missing_framework, model_ref

try:
    from haystack import Document, component, default_from_dict, default_to_dict
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("haystack", "haystack", "haystack-ai") from exc

__all__ = ["SSEDocumentEmbedder", "SSETextEmbedder"]


class _SSEComponent:
    """Settings, lazy model loading and serialization shared by both components."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        dim: int | None = None,
        batch_size: int = 1024,
        normalize: bool = True,
        prefix: str = "",
        suffix: str = "",
        threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.model = model_ref(model)  # what to_dict writes: a path or hub id (None: the default model)
        self._given = model
        self.dim, self.batch_size, self.normalize = dim, batch_size, normalize
        self.prefix, self.suffix = prefix, suffix
        self.threads, self.backend = threads, backend
        self._sse: StoreEmbedder | None = None

    def warm_up(self) -> None:
        """Load the model (a pipeline calls this once; ``run`` does it when needed)."""
        if self._sse is None:
            self._sse = StoreEmbedder(
                self._given, self.dim, self.batch_size, self.normalize, self.threads, self.backend
            )

    def _embed(self, texts: list[str]) -> list[list[float]]:
        self.warm_up()
        assert self._sse is not None
        return self._sse.encode([self.prefix + t + self.suffix for t in texts]).tolist()

    def _meta(self) -> dict[str, Any]:
        assert self._sse is not None
        return {"model": self.model, "dim": self._sse.dim}

    def _init_parameters(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dim": self.dim,
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "threads": self.threads,
            "backend": self.backend,
        }


@component
class SSETextEmbedder(_SSEComponent):
    """Embeds one text (a query) into ``embedding``: list of float.

    Parameters: ``model`` (a path, hub id or ``SSEModel``; default: sse_np's default model),
    ``dim`` (Matryoshka width), ``batch_size``, ``normalize``, ``prefix``, ``suffix``,
    ``threads``, ``backend``.
    """

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(
                f"SSETextEmbedder takes one str; for Documents use SSEDocumentEmbedder, got {type(text).__name__}"
            )
        return {"embedding": self._embed([text])[0], "meta": self._meta()}

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    async def run_async(self, text: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.run, text)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SSETextEmbedder:
        return default_from_dict(cls, data)


@component
class SSEDocumentEmbedder(_SSEComponent):
    """Embeds Documents: each gets ``embedding`` from its content, after its ``meta_fields_to_embed``.

    Same parameters as :class:`SSETextEmbedder`, plus ``meta_fields_to_embed`` (meta keys whose
    values are joined before the content) and ``embedding_separator`` (default ``"\\n"``).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **kwargs: Any,
    ) -> None:
        # @component rebuilds the class, so zero-argument super() would not find it
        _SSEComponent.__init__(self, model, **kwargs)
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def _text(self, doc: Document) -> str:
        """Haystack's rule: the listed meta values that are present and not None, then the content."""
        meta = [str(doc.meta[k]) for k in self.meta_fields_to_embed if doc.meta.get(k) is not None]
        return self.embedding_separator.join([*meta, doc.content or ""])

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise TypeError("SSEDocumentEmbedder takes a list of Documents; for one text use SSETextEmbedder")
        vectors = self._embed([self._text(d) for d in documents])
        return {"documents": [replace(d, embedding=v) for d, v in zip(documents, vectors)], "meta": self._meta()}

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    async def run_async(self, documents: list[Document]) -> dict[str, Any]:
        return await asyncio.to_thread(self.run, documents)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            **self._init_parameters(),
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SSEDocumentEmbedder:
        return default_from_dict(cls, data)
