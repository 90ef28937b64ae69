"""Embed + insert throughput into each vector store: sse_np's adapter against the same store fed by
sentence-transformers on the same model, in one run.

``python bench/stores.py [--docs 10000] [--dim 256] [--batch 1000] [--repeat 3]``
``[--stores chroma,lancedb,qdrant,qdrant-bm25,haystack]``

Per store, three kinds of ingest of the same documents (BEIR scifact + nfcorpus + msmarco-dl19-5k, title and
text, from ``../shared/data``, read only), each into a fresh store in a temporary folder:

* **sse_np** -- the adapter of :mod:`sse_np.integrations` the way a user writes it (Chroma's
  ``SSEEmbeddingFunction``, LanceDB's registered ``sse-np`` function, ``SSEQdrant.upsert``,
  ``SSEDocumentEmbedder`` + Haystack's ``DocumentWriter``);
* **store alone** -- the same ingest with precomputed vectors looked up: the store's own cost, which
  bounds what any embedder can gain;
* **sentence-transformers** -- sse_np's default weights as an ST ``StaticEmbedding`` + DyT module
  (bench/engines.py's ``STPipeline``), feeding the same store through the same door (a Chroma
  embedding function, a LanceDB registered function, ``QdrantClient.upsert``, Documents written).

``qdrant-bm25`` is Qdrant with the BM25 sparse vector too (``create_collection(bm25=True)``, dense + sparse
per point); sentence-transformers has no BM25, so its feeder (and the store-alone one) get the same sparse
vectors from sse_np's helper: that row shows what the hybrid ingest costs and what the dense side still gains.

Both embed in batches of ``--batch`` documents and insert each batch; both use every core (numba's
threads, torch's threads). sse_np's tokenizer cache is cleared before each ingest so repeated texts
across stores are not remembered. Writes ``bench/results/stores.json`` and the "Vector stores"
section of ``bench/results/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS_DIR, write_results_section  # noqa: E402
from bench.data import DATASETS, _read_jsonl  # noqa: E402
from bench.engines import STPipeline  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
STORES = ("chroma", "lancedb", "qdrant", "qdrant-bm25", "haystack")
BEGIN, END = "<!-- stores:begin -->", "<!-- stores:end -->"


def load_documents(n: int) -> tuple[list[str], list[str]]:
    """(ids, title + text) of the first ``n`` BEIR documents over the three corpora, in file order."""
    ids, texts = [], []
    for name in DATASETS:
        for row in _read_jsonl(DATA / name / "corpus.jsonl"):
            ids.append(f"{name}-{row['_id']}")
            texts.append(f"{row.get('title', '')}\n{row['text']}".strip())
    if n > len(texts):
        raise SystemExit(f"--docs {n}: only {len(texts)} distinct BEIR documents here (repeats would be cached)")
    return ids[:n], texts[:n]


class STEncoder:
    """sentence-transformers on sse_np's default weights: StaticEmbedding + DyT (bench/engines.py's modules).

    The table is handed over as float32: given the stored float16 table, sentence-transformers would run
    the whole model (DyT included, its parameters rounded) in float16, which is neither the model's
    semantics nor torch's fast path on a CPU.
    """

    def __init__(self, model_dir: str, dim: int) -> None:
        from bench.engines import _sse_params

        self.pipe = STPipeline()
        self.pipe.imports()
        self.pipe.torch.set_num_threads(os.cpu_count() or 1)
        table, dyt = _sse_params(model_dir)
        tok = self.pipe.Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        static = self.pipe.StaticEmbedding(tok, embedding_weights=table.astype(np.float32))
        head = self.pipe.DyT(dyt["dyt.alpha"], dyt["dyt.beta"], dyt["dyt.bias"])
        self.pipe.model = self.pipe.ST(modules=[static, head], device="cpu")
        self.pipe.model.eval()
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.pipe.encode(list(texts), self.dim)


# ------------------------------------------------------------------ one ingest per store and feeder
def ingest_chroma(folder: str, ids: list[str], texts: list[str], batch: int, feeder: Any) -> None:
    import chromadb
    from chromadb.api.types import EmbeddingFunction

    class STFunction(EmbeddingFunction):  # the ST side: a Chroma embedding function like ours
        def __init__(self) -> None:
            pass

        def __call__(self, input):
            return list(feeder(list(input)))

        @staticmethod
        def name() -> str:
            return "bench-st"

        def get_config(self) -> dict:
            return {}

        @staticmethod
        def build_from_config(config: dict) -> Any:
            raise NotImplementedError

    ef = feeder if feeder.__class__.__name__ == "SSEEmbeddingFunction" else STFunction()  # ST or lookup
    col = chromadb.PersistentClient(path=folder).create_collection("bench", embedding_function=ef)
    for i in range(0, len(texts), batch):
        col.add(ids=ids[i : i + batch], documents=texts[i : i + batch])


def ingest_lancedb(folder: str, ids: list[str], texts: list[str], batch: int, func: Any) -> None:
    import lancedb
    from lancedb.pydantic import LanceModel, Vector

    class Doc(LanceModel):
        doc_id: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    table = lancedb.connect(folder).create_table("bench", schema=Doc)
    for i in range(0, len(texts), batch):
        table.add([{"doc_id": d, "text": t} for d, t in zip(ids[i : i + batch], texts[i : i + batch])])


def ingest_qdrant(
    folder: str, ids: list[str], texts: list[str], batch: int, feeder: Any, dim: int, bm25: bool = False
) -> None:
    from qdrant_client import QdrantClient, models

    from sse_np.integrations.qdrant import BM25_VECTOR, SSEQdrant

    client = QdrantClient(path=folder)
    numeric = list(range(len(ids)))
    if isinstance(feeder, SSEQdrant):
        store = SSEQdrant(client, "bench", feeder.model, dims=(dim,))
        store.create_collection(bm25=bm25)
        store.upsert(texts, ids=numeric, payloads=[{"doc_id": d} for d in ids], batch_size=batch)
    else:
        params = models.VectorParams(size=dim, distance=models.Distance.COSINE)
        sparse_params = {BM25_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)} if bm25 else None
        client.create_collection("bench", vectors_config={f"sse-{dim}": params}, sparse_vectors_config=sparse_params)
        sparse = _bm25_vectors(texts) if bm25 else None
        for i in range(0, len(texts), batch):
            vectors: dict[str, Any] = {f"sse-{dim}": feeder(texts[i : i + batch]).tolist()}
            if sparse is not None:
                vectors[BM25_VECTOR] = [models.SparseVector(indices=a, values=b) for a, b in sparse[i : i + batch]]
            body = [{"doc_id": d, "document": t} for d, t in zip(ids[i : i + batch], texts[i : i + batch])]
            client.upsert("bench", points=models.Batch(ids=numeric[i : i + batch], vectors=vectors, payloads=body))
    client.close()


def _bm25_vectors(texts: list[str]) -> list[tuple[list[int], list[float]]]:
    """The sparse BM25 vectors SSEQdrant makes (a peer without BM25 of its own gets the same ones)."""
    import sse_np
    from sse_np.integrations._bm25_sparse import BM25Sparse

    sparse = BM25Sparse(sse_np.default_model())
    tokens, offsets = sparse.tokens(texts)
    sparse.fix_avgdl(offsets)
    return sparse.documents(tokens, offsets)


def ingest_haystack(folder: str, ids: list[str], texts: list[str], batch: int, feeder: Any) -> None:
    from dataclasses import replace

    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    for i in range(0, len(texts), batch):
        docs = [Document(id=d, content=t) for d, t in zip(ids[i : i + batch], texts[i : i + batch])]
        if hasattr(feeder, "run"):
            docs = feeder.run(docs)["documents"]
        else:
            docs = [replace(d, embedding=v) for d, v in zip(docs, feeder([d.content for d in docs]).tolist())]
        store.write_documents(docs)


# ------------------------------------------------------------------ the run
def sse_feeder(store: str, model: Any, dim: int) -> Any:
    if store == "chroma":
        from sse_np.integrations.chroma import SSEEmbeddingFunction

        return SSEEmbeddingFunction(model, dim=dim)
    if store == "lancedb":
        from lancedb.embeddings import get_registry

        import sse_np.integrations.lancedb  # noqa: F401 (registers sse-np)

        return get_registry().get("sse-np").create(dim=dim)
    if store in ("qdrant", "qdrant-bm25"):
        from qdrant_client import QdrantClient

        from sse_np.integrations.qdrant import SSEQdrant

        return SSEQdrant(QdrantClient(":memory:"), "x", model, dims=(dim,))
    from sse_np.integrations.haystack import SSEDocumentEmbedder

    embedder = SSEDocumentEmbedder(model, dim=dim)
    embedder.warm_up()
    return embedder


class Precomputed:
    """Vectors looked up, not computed: what the store alone costs (the bound on any ratio)."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.rows = dict(zip(texts, vectors))
        self.dim = vectors.shape[1]

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.rows[t] for t in texts])


def plain_feeder(store: str, encoder: Any, name: str) -> Any:
    """``encoder`` (texts -> vectors) behind the store's door: as is, or a LanceDB registered function."""
    if store != "lancedb":
        return encoder
    from lancedb.embeddings import TextEmbeddingFunction, get_registry, register

    @register(f"bench-{name}")
    class BenchFunction(TextEmbeddingFunction):
        def ndims(self) -> int:
            return encoder.dim

        def generate_embeddings(self, texts, *args, **kwargs):
            return list(encoder(list(texts)))

    return get_registry().get(f"bench-{name}").create()


def timed_ingest(store: str, ids: list[str], texts: list[str], batch: int, feeder: Any, dim: int) -> float:
    with tempfile.TemporaryDirectory(prefix=f"bench-{store}-") as folder:
        t0 = time.perf_counter()
        if store in ("qdrant", "qdrant-bm25"):
            ingest_qdrant(folder, ids, texts, batch, feeder, dim, bm25=store == "qdrant-bm25")
        else:
            {"chroma": ingest_chroma, "lancedb": ingest_lancedb, "haystack": ingest_haystack}[store](
                folder, ids, texts, batch, feeder
            )
        return time.perf_counter() - t0


def run(args: argparse.Namespace) -> dict[str, Any]:
    import sse_np

    ids, texts = load_documents(args.docs)
    model = sse_np.default_model()
    st = STEncoder(str(model.path), args.dim)
    model.encode(texts[:256], args.dim), st(texts[:256])  # numba's kernels and torch warmed up
    model.clear_cache()
    t0 = time.perf_counter()
    model.encode(texts, args.dim, batch_size=args.batch)
    embed_sse = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, len(texts), args.batch):
        st(texts[i : i + args.batch])
    embed_st = time.perf_counter() - t0
    rows = {"embed only": {"sse_np_s": embed_sse, "sentence_transformers_s": embed_st}}
    lookup = Precomputed(texts, model.encode(texts, args.dim))
    for store in args.stores:
        feeders = {
            "sse_np": sse_feeder(store, model, args.dim),
            "sentence_transformers": plain_feeder(store, st, "st"),
            "store_only": plain_feeder(store, lookup, "lookup"),
        }
        for feeder in feeders.values():  # the store's one-time costs (imports, first client) paid untimed
            timed_ingest(store, ids[:100], texts[:100], args.batch, feeder, args.dim)
        model.clear_cache()
        runs: dict[str, list[float]] = {name: [] for name in feeders}
        for rep in range(args.repeat):  # the order turns each round: a noisy neighbour hits each feeder alike
            order = list(feeders)[rep % len(feeders) :] + list(feeders)[: rep % len(feeders)]
            for name in order:
                model.clear_cache()
                runs[name].append(timed_ingest(store, ids, texts, args.batch, feeders[name], args.dim))
        times = {name: statistics.median(v) for name, v in runs.items()}
        rows[store] = {f"{name}_s": t for name, t in times.items()}
        rows[store]["runs_s"] = runs
        sse_s, st_s, alone = times["sse_np"], times["sentence_transformers"], times["store_only"]
        print(
            f"{store:9s} sse_np {sse_s:6.2f} s  ST {st_s:6.2f} s  {st_s / sse_s:5.2f}x  alone {alone:6.2f} s",
            flush=True,
        )
    for row in rows.values():
        row["sse_np_docs_per_s"] = args.docs / row["sse_np_s"]
        row["sentence_transformers_docs_per_s"] = args.docs / row["sentence_transformers_s"]
        row["ratio"] = row["sentence_transformers_s"] / row["sse_np_s"]
        if "store_only_s" in row:  # the most any embedder could gain: ST's time over the store's own
            row["ratio_bound"] = row["sentence_transformers_s"] / row["store_only_s"]
    return {
        "docs": args.docs,
        "dim": args.dim,
        "batch": args.batch,
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": _versions(),
        "rows": rows,
    }


def _versions() -> dict[str, str]:
    from importlib import metadata

    names = ("sse_np", "sentence-transformers", "torch", "chromadb", "lancedb", "qdrant-client", "haystack-ai")
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _alone(docs: int, row: dict[str, Any]) -> str:
    if "store_only_s" not in row:
        return "| "
    return f"{docs / row['store_only_s']:,.0f} | {row['ratio_bound']:.2f}x"


def render(res: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Vector stores: embed + insert throughput (bench/stores.py)",
        "",
        f"{res['docs']:,} BEIR documents (title + text), width {res['dim']}, batches of {res['batch']}, "
        f"median of {res['repeat']} ingests per feeder (order rotated each round), "
        f"{res['machine']['cpus']} CPUs; each store fed by sse_np's adapter and by sentence-transformers "
        "(StaticEmbedding + DyT on the same weights), same run. Ratio = sentence-transformers time / sse_np time. "
        "Store alone = the same ingest with the vectors looked up (no embedding): no embedder can beat it, so "
        "sentence-transformers time / store-alone time bounds the ratio.",
        "",
        "| store | sse_np docs/s | sentence-transformers docs/s | ratio | store alone docs/s | bound on ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in res["rows"].items():
        lines.append(
            f"| {name} | {row['sse_np_docs_per_s']:,.0f} | {row['sentence_transformers_docs_per_s']:,.0f} "
            f"| {row['ratio']:.2f}x | {_alone(res['docs'], row)} |"
        )
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()), END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="ingests per feeder and store (the median is shown)")
    parser.add_argument("--stores", type=lambda s: s.split(","), default=list(STORES))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "stores.json")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/results/ alone")
    args = parser.parse_args(argv)
    res = run(args)
    section = render(res)
    print(section)
    if not args.no_write:
        args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        write_results_section(section, BEGIN, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
