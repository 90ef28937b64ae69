"""Qdrant adapter: :class:`SSEQdrant`, helpers to create a collection and upsert/query SSE vectors.

One collection holds a named vector per chosen Matryoshka width (``"sse-64"``, ``"sse-256"``...),
all cut from one encoding; the model, widths and normalization are kept in the collection's
metadata, so a collection embedded by another model or width is refused. Works with every
``QdrantClient`` (local mode ``QdrantClient(path=...)`` or a server). Example::

    from qdrant_client import QdrantClient
    from sse_np.integrations.qdrant import SSEQdrant

    store = SSEQdrant(QdrantClient(path="qdrant-db"), "docs", dims=(64, 512))
    store.create_collection()
    store.upsert(["first document", "second document"], ids=[1, 2])
    store.query("a query", dim=64, limit=1)

Local mode searches exhaustively (exact) and ignores quantization; on a server,
``binary_quantization=True`` keeps 1-bit codes in RAM and rescoring uses the float vectors.

``create_collection(bm25=True)`` adds a sparse vector ``"bm25"`` with Qdrant's IDF modifier:
documents carry Lucene's tf/length part, queries their token counts, and Qdrant multiplies in
the idf of the live collection, so ``query(text, mode="bm25")`` scores as
:mod:`sse_np.retrieval.bm25` and ``mode="hybrid"`` fuses a dense and a sparse prefetch with
Qdrant's own fusion (DBSF or RRF). The mean document length is fixed by the first upsert and
kept in the metadata (see :mod:`sse_np.integrations._bm25_sparse`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..index.rank import MODES
from ..retrieval.bm25 import DEFAULT_B, DEFAULT_K1
from ._bm25_sparse import BM25Sparse
from ._common import StoreEmbedder, check_dim, check_same_config, missing_framework

try:
    from qdrant_client import QdrantClient, models
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_framework("qdrant", "qdrant", "qdrant-client") from exc

__all__ = ["SSEQdrant"]

META_KEY = "sse_np"
BM25_VECTOR = "bm25"
FUSIONS = {"dbsf": models.Fusion.DBSF, "rrf": models.Fusion.RRF}
DEFAULT_FUSION = "dbsf"  # normalized-score fusion; see docs/stores/qdrant.md for why not RRF
DEFAULT_CANDIDATES = 100


class SSEQdrant:
    """SSE vectors in one Qdrant collection.

    Parameters
    ----------
    client : qdrant_client.QdrantClient
    collection_name : str
    model : str, path or SSEModel, optional
        A model folder, a hub id or a loaded ``SSEModel`` (default: sse_np's default model).
    dims : sequence of int, optional
        The Matryoshka widths stored, one named vector each (default: the model's full width).
    batch_size, normalize, threads, backend
        As in :class:`sse_np.integrations.langchain.SSEEmbeddings`.
    """

    def __init__(
        self,
        client: QdrantClient,
        collection_name: str,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        dims: Sequence[int] | None = None,
        batch_size: int = 1024,
        normalize: bool = True,
        threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.client, self.collection_name = client, collection_name
        self._sse = StoreEmbedder(model, None, batch_size, normalize, threads, backend)
        self.model = self._sse.model
        widths = [self._sse.dim] if dims is None else [check_dim(self.model, d) for d in dims]
        if not widths or len(set(widths)) != len(widths):
            raise ValueError(f"dims must be distinct widths, at least one, got {list(dims or [])!r}")
        self.dims = sorted(widths)
        self._checked = False
        self._bm25: BM25Sparse | None = None  # the collection's BM25 settings, once known

    @staticmethod
    def vector_name(dim: int) -> str:
        return f"sse-{dim}"

    def config(self) -> dict[str, Any]:
        mine = {"model": self._sse.model_ref, "dims": self.dims, "normalize": self._sse.normalize}
        return mine if self._bm25 is None else {**mine, "bm25": self._bm25.settings()}

    def create_collection(
        self,
        *,
        binary_quantization: bool = False,
        on_disk: bool = False,
        bm25: bool = False,
        stopwords: bool = True,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        avgdl: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the collection: cosine named vectors, one per width, and the metadata that identifies them.

        ``bm25=True`` adds the sparse vector ``"bm25"`` (Qdrant's IDF modifier) for
        ``query(mode="bm25" | "hybrid")``: Lucene BM25 with ``k1``, ``b``, English
        ``stopwords`` left out, over the model's WordPiece tokens (as :class:`sse_np.Index`).
        ``avgdl`` (mean document length in tokens) is taken from the first upsert unless given.
        ``kwargs`` go to ``QdrantClient.create_collection`` (``hnsw_config``, ``shard_number``...).
        """
        self._bm25 = BM25Sparse(self.model, stopwords=stopwords, k1=k1, b=b, avgdl=avgdl) if bm25 else None
        if bm25:
            kwargs["sparse_vectors_config"] = {BM25_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)}
        vectors = {
            self.vector_name(d): models.VectorParams(size=d, distance=models.Distance.COSINE, on_disk=on_disk)
            for d in self.dims
        }
        if binary_quantization:
            kwargs["quantization_config"] = models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(always_ram=True)
            )
        self.client.create_collection(
            self.collection_name, vectors_config=vectors, metadata={META_KEY: self.config()}, **kwargs
        )
        self._checked = True

    def check_collection(self) -> None:
        """Raise ValueError unless the collection was created for this model, these widths and normalization."""
        info = self.client.get_collection(self.collection_name)
        stored = (info.config.metadata or {}).get(META_KEY)
        where = f"Qdrant collection {self.collection_name!r}"
        if stored is None:
            raise ValueError(f"{where} was not created by sse_np (no '{META_KEY}' metadata)")
        mine = self.config()
        check_same_config(where, {**stored, "dim": stored.get("dims")}, {**mine, "dim": mine["dims"]})
        self._bm25 = BM25Sparse.from_settings(self.model, stored["bm25"]) if stored.get("bm25") else None
        self._checked = True

    def embed(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        """Named vectors per text: one encoding at the widest width, cut and renormalized per width."""
        wide = self.model.encode(list(_texts(texts)), self.dims[-1], batch_size=self._sse.batch_size, normalize=False)
        return {self.vector_name(d): _finish(wide[:, :d], self._sse.normalize) for d in self.dims}

    def upsert(
        self,
        texts: Iterable[str],
        ids: Sequence[int | str],
        payloads: Sequence[dict[str, Any]] | None = None,
        *,
        batch_size: int = 4096,
        text_key: str = "document",
    ) -> None:
        """Embed ``texts`` and upsert them as points ``ids`` (ints or UUID strings, Qdrant's rule).

        The text is kept in each point's payload under ``text_key`` (None: not kept).
        """
        texts = _texts(texts)
        if len(ids) != len(texts) or (payloads is not None and len(payloads) != len(texts)):
            raise ValueError(f"{len(texts)} texts need as many ids and payloads, got {len(ids)} ids")
        if not self._checked:
            self.check_collection()
        sparse = self._sparse_vectors(texts)
        for start in range(0, len(texts), batch_size):
            stop = start + batch_size
            vectors: dict[str, Any] = {k: v.tolist() for k, v in self.embed(texts[start:stop]).items()}
            if sparse is not None:
                vectors[BM25_VECTOR] = [models.SparseVector(indices=i, values=v) for i, v in sparse[start:stop]]
            body = [dict(p) for p in payloads[start:stop]] if payloads is not None else [{} for _ in texts[start:stop]]
            if text_key is not None:
                for row, text in zip(body, texts[start:stop]):
                    row[text_key] = text
            self.client.upsert(
                self.collection_name, points=models.Batch(ids=list(ids[start:stop]), vectors=vectors, payloads=body)
            )

    def _sparse_vectors(self, texts: list[str]) -> list[tuple[list[int], list[float]]] | None:
        """The BM25 vectors of ``texts`` (None without BM25); the first documents fix and record ``avgdl``."""
        if self._bm25 is None:
            return None
        tokens, offsets = self._bm25.tokens(texts)
        if self._bm25.fix_avgdl(offsets):
            self.client.update_collection(self.collection_name, metadata={META_KEY: self.config()})
        if self._bm25.avgdl is None:  # no document has a token yet: nothing depends on avgdl
            return [([], []) for _ in texts]
        return self._bm25.documents(tokens, offsets)

    def query(
        self,
        text: str,
        *,
        mode: str = "dense",
        dim: int | None = None,
        limit: int = 10,
        exact: bool = False,
        fusion: str = DEFAULT_FUSION,
        candidates: int = DEFAULT_CANDIDATES,
        **kwargs: Any,
    ) -> list[Any]:
        """The ``limit`` best points (``ScoredPoint``, best first) for ``text``.

        ``mode``: "dense" (cosine on the ``dim`` vector, default the widest), "bm25" (the
        sparse vector) or "hybrid": ``candidates`` points from each, fused by Qdrant
        (``fusion`` "dbsf" or "rrf"). ``exact=True`` bypasses the HNSW index on a server
        (local mode is always exact); ``kwargs`` go to ``QdrantClient.query_points``
        (``query_filter``...).
        """
        if not isinstance(text, str):
            raise TypeError(f"query takes one str, got {type(text).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {tuple(FUSIONS)}, got {fusion!r}")
        dense = self._dense_query(text, dim, exact) if mode != "bm25" else None
        sparse = self._sparse_query(text, mode) if mode != "dense" else None
        name = self.collection_name
        if dense is None or sparse is None:
            query, using, params = dense or sparse  # type: ignore[misc]
            if params is not None:  # local mode warns on any search_params (it is exact already)
                kwargs.setdefault("search_params", params)
            return self.client.query_points(name, query=query, using=using, limit=limit, **kwargs).points
        depth = max(int(candidates), int(limit))
        prefetch = [models.Prefetch(query=q, using=u, limit=depth, params=p) for q, u, p in (dense, sparse)]
        fused = models.FusionQuery(fusion=FUSIONS[fusion])
        return self.client.query_points(name, prefetch=prefetch, query=fused, limit=limit, **kwargs).points

    def _dense_query(self, text: str, dim: int | None, exact: bool) -> tuple[list[float], str, Any]:
        dim = self.dims[-1] if dim is None else dim
        if dim not in self.dims:
            raise ValueError(f"dim {dim} is not stored in {self.collection_name!r}; stored widths: {self.dims}")
        vector = self.embed([text])[self.vector_name(dim)][0]
        return vector.tolist(), self.vector_name(dim), models.SearchParams(exact=True) if exact else None

    def _sparse_query(self, text: str, mode: str) -> tuple[models.SparseVector, str, None]:
        if not self._checked:
            self.check_collection()
        if self._bm25 is None:
            raise ValueError(
                f"Qdrant collection {self.collection_name!r} has no BM25 sparse vector, so mode={mode!r} "
                "cannot be served; create the collection with create_collection(bm25=True)"
            )
        indices, counts = self._bm25.query(text)
        return models.SparseVector(indices=indices, values=counts), BM25_VECTOR, None


def _texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("takes a list of texts, got a str (use query for one text)")
    return list(texts)


def _finish(y: np.ndarray, normalize: bool) -> np.ndarray:
    """Truncate-then-normalize, as the model does for a narrower width (zero rows stay zero)."""
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not normalize:
        return y
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    return y / np.where(norms > 0, norms, 1).astype(np.float32)
