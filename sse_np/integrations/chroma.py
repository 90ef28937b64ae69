"""Chroma adapter: :class:`SSEEmbeddingFunction`, a registered ``chromadb`` ``EmbeddingFunction``.

Chroma persists the function's name and :meth:`~SSEEmbeddingFunction.get_config` with the
collection, so ``client.get_collection(name)`` (with no ``embedding_function``) rebuilds the same
model and width. Example::

    import chromadb
    from sse_np.integrations.chroma import SSEEmbeddingFunction

    client = chromadb.PersistentClient(path="chroma-db")
    docs = client.create_collection("docs", embedding_function=SSEEmbeddingFunction(dim=256))
    docs.add(ids=["a", "b"], documents=["first document", "second document"])
    docs.query(query_texts=["a query"], n_results=1)
"""

from __future__ import annotations

import os
from typing import Any

from ._common import StoreEmbedder, check_same_config, missing_framework, shared_model

try:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("chroma", "chroma", "chromadb") from exc

__all__ = ["SSEEmbeddingFunction"]


@register_embedding_function
class SSEEmbeddingFunction(EmbeddingFunction[Documents]):
    """SSE embeddings for Chroma.

    Parameters
    ----------
    model : str, path or SSEModel, optional
        A model folder, a Hugging Face hub id, or a loaded ``SSEModel`` (default: sse_np's default
        model). Chroma records it as given (a loaded model as its folder) to rebuild the function.
    dim : int, optional
        Matryoshka width of the vectors (default: the model's full width).
    batch_size, normalize, threads, backend
        As in :class:`sse_np.integrations.langchain.SSEEmbeddings` (not persisted: run-time settings).
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
        self._sse = StoreEmbedder(model, dim, batch_size, normalize, threads, backend)
        self.model, self.dim = self._sse.model, self._sse.dim

    def __call__(self, input: Documents) -> Embeddings:
        """One float32 vector per text, in order."""
        return list(self._sse.encode(input, "input"))

    @staticmethod
    def name() -> str:
        return "sse_np"

    def default_space(self) -> Space:
        # unit-length vectors: cosine ranks like inner product; Chroma's own default (l2) would too
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return self._sse.config()

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> SSEEmbeddingFunction:
        SSEEmbeddingFunction.validate_config(config)
        # Chroma rebuilds the function on every collection handle (and to test is_legacy): load once
        function = SSEEmbeddingFunction(shared_model(config["model"]), dim=config["dim"], normalize=config["normalize"])
        function._sse.model_ref = config["model"]  # recorded as it was given, not as the loaded folder
        return function

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        missing = [k for k in ("model", "dim", "normalize") if k not in config]
        if missing:
            raise ValueError(f"sse_np embedding function config lacks {', '.join(missing)}: {config!r}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        check_same_config("the collection", old_config, {**old_config, **new_config})

    def check_collection(self, collection: Any) -> None:
        """Raise ValueError unless ``collection`` was embedded by this model at this width.

        Chroma itself only compares function names when a collection is opened with an
        ``embedding_function``; call this (or open it without one) before adding to it.
        """
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != self.name():
            raise ValueError(f"collection {collection.name!r} was not embedded by sse_np: {stored.get('name')!r}")
        check_same_config(f"collection {collection.name!r}", stored.get("config") or {}, self.get_config())

    def __repr__(self) -> str:
        return f"SSEEmbeddingFunction(model={self._sse.model_ref!r}, dim={self.dim})"
