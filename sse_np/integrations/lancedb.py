"""LanceDB adapter: ``"sse-np"`` in the ``lancedb.embeddings`` registry (:class:`SSETextEmbeddings`).

A schema with ``SourceField``/``VectorField`` embeds on insert and on query; LanceDB stores the
function's arguments in the table, so reopening the table (in a process that has imported this
module, which registers the function) embeds queries with the same model and width. Example::

    import lancedb
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector
    import sse_np.integrations.lancedb  # registers "sse-np"

    sse = get_registry().get("sse-np").create(dim=256)

    class Doc(LanceModel):
        text: str = sse.SourceField()
        vector: Vector(sse.ndims()) = sse.VectorField()

    table = lancedb.connect("lance-db").create_table("docs", schema=Doc)
    table.add([{"text": "first document"}, {"text": "second document"}])
    table.search("a query").limit(1).to_list()
"""

from __future__ import annotations

from typing import Any

from ._common import check_dim, check_same_config, missing_framework, shared_model

try:
    from lancedb.embeddings import TextEmbeddingFunction, register
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("lancedb", "lancedb", "lancedb") from exc

__all__ = ["SSETextEmbeddings"]


@register("sse-np")
class SSETextEmbeddings(TextEmbeddingFunction):
    """SSE embeddings for LanceDB; create with ``get_registry().get("sse-np").create(...)``.

    Parameters
    ----------
    name : str, optional
        A model folder or Hugging Face hub id (default: sse_np's default model).
    dim : int, optional
        Matryoshka width of the vectors (default: the model's full width).
    normalize : bool
        Unit-length vectors (cosine, dot and L2 rank alike).
    batch_size, threads, backend
        Texts per encoding step; passed to ``sse_np.load``.
    """

    name: str | None = None
    dim: int | None = None
    normalize: bool = True
    batch_size: int = 1024
    threads: int | None = None
    backend: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ndims = check_dim(self.model, self.dim)

    @property
    def model(self) -> Any:
        """The loaded ``SSEModel`` (shared by every function with the same name, threads and backend)."""
        return shared_model(self.name, self.threads, self.backend)

    def ndims(self) -> int:
        return self._ndims

    def generate_embeddings(self, texts: Any, *args: Any, **kwargs: Any) -> list[Any]:
        """One float32 vector per text, in order."""
        if isinstance(texts, str):
            raise TypeError("generate_embeddings takes a list of texts, got a str")
        vectors = self.model.encode(list(texts), self._ndims, batch_size=self.batch_size, normalize=self.normalize)
        return list(vectors)

    def config(self) -> dict[str, Any]:
        return {"model": self.name, "dim": self._ndims, "normalize": self.normalize}

    def check_table(self, table: Any) -> None:
        """Raise ValueError unless ``table``'s vectors come from this model at this width.

        LanceDB re-embeds queries with the table's own function; call this before adding
        vectors computed elsewhere (or opening the table under another schema).
        """
        found = [
            conf.function for conf in table.embedding_functions.values() if isinstance(conf.function, SSETextEmbeddings)
        ]
        where = f"LanceDB table {table.name!r}"
        if not found:
            raise ValueError(f"{where} has no sse-np embedding function")
        check_same_config(where, found[0].config(), self.config())
