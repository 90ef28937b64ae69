"""A small BEIR slice (scifact) and the exact top-10 every store adapter is compared with."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

import sse_np

from .paths import SHARED_DATA

N_DOCS = 400  # a few hundred documents keep each store's suite fast
N_QUERIES = 40
TOP_K = 10
DIM = 256  # a Matryoshka width below the model's 512, so truncation is exercised too


@dataclass
class Slice:
    ids: list[str]
    texts: list[str]
    titles: list[str]
    queries: list[str]


def scifact_slice() -> Slice:
    """The first N_DOCS documents and N_QUERIES queries of BEIR scifact, in file order."""
    folder = SHARED_DATA / "scifact"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the BEIR data beside the checkout (../shared/data) is needed")
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(N_DOCS), fh)]
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["text"] for _, line in zip(range(N_QUERIES), fh)]
    return Slice([r["_id"] for r in rows], [r["text"] for r in rows], [r["title"] for r in rows], queries)


def exact_top_ids(model: sse_np.SSEModel, data: Slice, doc_texts: list[str] | None = None, dim: int = DIM) -> list:
    """Per query, the TOP_K document ids of sse_np.semantic_search over the same vectors."""
    docs = model.encode(doc_texts if doc_texts is not None else data.texts, dim)
    queries = model.encode(data.queries, dim)
    hits = sse_np.semantic_search(queries, docs, top_k=TOP_K)
    return [[data.ids[int(h["corpus_id"])] for h in row] for row in hits]


def recall_at_k(got: list[list[str]], want: list[list[str]]) -> float:
    """Mean share of the exact top-k found, for stores whose index is approximate."""
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want)]))
