"""Retrieval evaluation of SSE models on BEIR-layout datasets.

The evaluation follows the BEIR / ``pytrec_eval`` (trec_eval) conventions:

* **nDCG@10** with *linear* gain: a judged document contributes
  ``score / log2(rank + 1)`` (rank counted from 1), and the ideal DCG is built
  from all judgments of the query with score > 0. Judgments with score <= 0
  are non-relevant (gain 0).
* **MRR@10**: ``1 / rank`` of the first relevant document in the top 10, else 0.
* **MAP@100** (trec_eval ``map_cut_100``): sum of precision@rank over the
  relevant documents retrieved in the top 100, divided by the number of
  relevant documents of the query.
* **Recall@100**: relevant documents in the top 100 / relevant documents.

Every metric is averaged over the evaluated queries of a dataset, and the
"mean" row is the unweighted mean over datasets (like NanoBEIR's mean).

sentence-transformers' ``InformationRetrievalEvaluator`` differs in two
ways: it reads the judgments as a *set* of relevant ids, so its nDCG uses
*binary* gain (a grade-2 document counts as 1), and its MAP@k divides by
``min(k, n_relevant)`` instead of ``n_relevant``. On datasets whose judgments
are all binary (SciFact, every NanoBEIR dataset) nDCG@10, MRR@10 and
Recall@100 coincide, and MAP@100 coincides whenever no query has more than
100 relevant documents. On graded judgments the nDCG@10 figures differ a
lot (on msmarco-dl19-5k, grades 1-3, binary gain read 1.4-1.5x higher in
our tests),
so only linear-gain figures are comparable with BEIR's published tables.
sentence-transformers also breaks score ties by ascending corpus id string,
where this module uses corpus order (below).

Retrieval is exact: cosine similarity of L2-normalised float32 vectors, with
the top 100 documents per query found by BLAS matrix products over blocks of
queries and of documents, so memory stays bounded for large corpora. Ties
are broken deterministically: higher score first, then the document that
comes first in ``corpus.jsonl`` (smaller document index). Results are
bitwise reproducible for the same inputs, block sizes and BLAS library;
other block shapes may round float32 scores differently (~1e-7), which can
only swap documents whose scores are that close.

The corpus and the queries are encoded once at the model's native dimension
without normalisation; each Matryoshka dimension ``k`` then keeps the first
``k`` components and L2-normalises them, which equals
``model.encode(texts, dim=k)`` because every output component depends only
on the same component of the token mean.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .errors import DataError

__all__ = [
    "METRICS",
    "DEFAULT_DIMS",
    "DataError",
    "MissingDependencyError",
    "BeirDataset",
    "load_beir",
    "read_corpus",
    "read_queries",
    "read_qrels",
    "write_beir",
    "exact_top_k",
    "ndcg_at_k",
    "reciprocal_rank_at_k",
    "average_precision_at_k",
    "recall_at_k",
    "query_metrics",
    "evaluate",
    "format_report",
    "save_report",
    "plot_report",
]

#: Metric names, in the order of the report and the printed tables.
METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "map@100", "recall@100")
#: Matryoshka dimensions evaluated when none are given.
DEFAULT_DIMS: tuple[int, ...] = (512, 256, 128, 64, 32)
#: Depth of the ranking kept per query (the largest cut-off of METRICS).
TOP_K = 100
# Same epsilon as torch.nn.functional.normalize / sentence-transformers.
_EPS = 1e-12
_QRELS_HEADER = ("query-id", "corpus-id", "score")


class MissingDependencyError(ImportError):
    """An optional dependency (an extra of sse_np) is not installed."""


# --------------------------------------------------------------------------
# BEIR data loading
# --------------------------------------------------------------------------


@dataclass
class BeirDataset:
    """One BEIR-layout dataset, restricted to the queries that are evaluated.

    Attributes
    ----------
    name : str
        Folder name, used as the dataset's label in reports.
    path : str
        Folder as given by the caller.
    doc_ids, doc_texts : list of str
        Corpus in file order; a text is ``(title + " " + text).strip()``.
    query_ids, query_texts : list of str
        Queries with at least one judgment of score > 0, in file order.
    qrels : dict
        ``query id -> {doc id -> score}`` for the evaluated queries (all their
        judgments, including score <= 0).
    n_queries_skipped : int
        Queries of ``queries.jsonl`` without a positive judgment.
    n_qrels : int
        Judgment lines read from the qrels file.
    """

    name: str
    path: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    n_queries_skipped: int = 0
    n_qrels: int = 0


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file."""
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, encoding="utf-8") as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue  # tolerate blank lines, e.g. a trailing one
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(path, f"invalid JSON ({exc.msg})", lineno) from None
                if not isinstance(obj, dict):
                    raise DataError(path, "expected a JSON object", lineno)
                yield lineno, obj
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not valid UTF-8 ({exc.reason})") from None


def _field_id(obj: Mapping[str, Any], key: str, path: Path, lineno: int) -> str:
    """Return an id field as str (JSON integers are accepted and converted)."""
    if key not in obj:
        raise DataError(path, f"missing field {key!r}", lineno)
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(path, f"field {key!r} must be a string, got {type(value).__name__}", lineno)
    return str(value)


def _field_text(obj: Mapping[str, Any], key: str, path: Path, lineno: int, required: bool) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise DataError(path, f"missing field {key!r}", lineno)
        return ""
    if not isinstance(value, str):
        raise DataError(path, f"field {key!r} must be a string, got {type(value).__name__}", lineno)
    return value


def _records_with_unique_ids(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line number, _id, record)`` of a JSONL file; a repeated ``_id`` is a DataError."""
    seen: dict[str, int] = {}
    for lineno, obj in _jsonl_records(path):
        rec_id = _field_id(obj, "_id", path, lineno)
        if rec_id in seen:
            raise DataError(path, f"duplicate _id {rec_id!r} (first on line {seen[rec_id]})", lineno)
        seen[rec_id] = lineno
        yield lineno, rec_id, obj


def read_corpus(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Read ``corpus.jsonl``.

    Parameters
    ----------
    path : path-like
        The JSONL file; each line has ``_id``, ``text`` and optionally ``title``.

    Returns
    -------
    ids, texts : list of str
        Document ids and texts ``(title + " " + text).strip()``, in file order.
    """
    path = Path(path)
    ids: list[str] = []
    texts: list[str] = []
    for lineno, doc_id, obj in _records_with_unique_ids(path):
        title = _field_text(obj, "title", path, lineno, required=False)
        text = _field_text(obj, "text", path, lineno, required=True)
        ids.append(doc_id)
        texts.append((title + " " + text).strip())
    if not ids:
        raise DataError(path, "no documents")
    return ids, texts


def read_queries(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Read ``queries.jsonl`` (``_id``, ``text``); returns ids and texts in file order."""
    path = Path(path)
    ids: list[str] = []
    texts: list[str] = []
    for lineno, query_id, obj in _records_with_unique_ids(path):
        ids.append(query_id)
        texts.append(_field_text(obj, "text", path, lineno, required=True))
    return ids, texts


def read_qrels(
    path: str | os.PathLike[str],
    doc_ids: Iterable[str] | None = None,
    query_ids: Iterable[str] | None = None,
) -> tuple[dict[str, dict[str, int]], int]:
    """Read a BEIR qrels TSV file (``query-id  corpus-id  score``).

    Parameters
    ----------
    path : path-like
        Tab-separated file, with the BEIR header line (a file without header
        is accepted when its first line is a judgment).
    doc_ids, query_ids : iterable of str, optional
        Known ids; a judgment naming another id is an error.

    Returns
    -------
    qrels : dict
        ``query id -> {doc id -> integer score}``.
    n_lines : int
        Number of judgment lines read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    known_docs = set(doc_ids) if doc_ids is not None else None
    known_queries = set(query_ids) if query_ids is not None else None
    qrels: dict[str, dict[str, int]] = {}
    n_lines = 0
    first = True
    with open(path, encoding="utf-8") as fh:
        try:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if first:
                    first = False
                    if tuple(f.strip().lower() for f in fields) == _QRELS_HEADER:
                        continue
                if len(fields) != 3:
                    raise DataError(
                        path,
                        f"expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}",
                        lineno,
                    )
                query_id, doc_id, score_text = (f.strip() for f in fields)
                try:
                    score = int(score_text)
                except ValueError:
                    raise DataError(path, f"score {score_text!r} is not an integer", lineno) from None
                if known_queries is not None and query_id not in known_queries:
                    raise DataError(path, f"query-id {query_id!r} is not in queries.jsonl", lineno)
                if known_docs is not None and doc_id not in known_docs:
                    raise DataError(path, f"corpus-id {doc_id!r} is not in corpus.jsonl", lineno)
                judged = qrels.setdefault(query_id, {})
                if judged.get(doc_id, score) != score:
                    raise DataError(
                        path,
                        f"conflicting scores for ({query_id!r}, {doc_id!r}): {judged[doc_id]} and {score}",
                        lineno,
                    )
                judged[doc_id] = score
                n_lines += 1
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not valid UTF-8 ({exc.reason})") from None
    return qrels, n_lines


def load_beir(path: str | os.PathLike[str], split: str = "test", name: str | None = None) -> BeirDataset:
    """Load a dataset folder in BEIR layout.

    Parameters
    ----------
    path : path-like
        Folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
    split : str
        Qrels file to use (``qrels/<split>.tsv``).
    name : str, optional
        Label for reports; defaults to the folder name.

    Returns
    -------
    BeirDataset
        Queries without a positive judgment are dropped and counted in
        ``n_queries_skipped``.

    Raises
    ------
    DataError
        A file is missing or malformed, or the qrels name unknown ids.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(folder, "dataset folder not found")
    doc_ids, doc_texts = read_corpus(folder / "corpus.jsonl")
    all_query_ids, all_query_texts = read_queries(folder / "queries.jsonl")
    qrels, n_lines = read_qrels(folder / "qrels" / f"{split}.tsv", doc_ids, all_query_ids)
    query_ids: list[str] = []
    query_texts: list[str] = []
    for query_id, text in zip(all_query_ids, all_query_texts):
        if any(score > 0 for score in qrels.get(query_id, {}).values()):
            query_ids.append(query_id)
            query_texts.append(text)
    return BeirDataset(
        name=name or folder.resolve().name,
        path=str(path),
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        query_ids=query_ids,
        query_texts=query_texts,
        qrels={q: qrels[q] for q in query_ids},
        n_queries_skipped=len(all_query_ids) - len(query_ids),
        n_qrels=n_lines,
    )


def write_beir(
    folder: str | os.PathLike[str],
    corpus: Mapping[str, str | Mapping[str, str]],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    split: str = "test",
) -> Path:
    """Write a dataset in BEIR layout (e.g. after downloading NanoBEIR).

    Parameters
    ----------
    folder : path-like
        Output folder (created); gets ``corpus.jsonl``, ``queries.jsonl``
        and ``qrels/<split>.tsv``.
    corpus : mapping
        ``doc id -> text`` or ``doc id -> {"title": ..., "text": ...}``.
    queries : mapping
        ``query id -> text``.
    qrels : mapping
        ``query id -> {doc id -> integer score}``.
    split : str
        Name of the qrels file.

    Returns
    -------
    Path
        The folder.
    """
    out = Path(folder)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc_id, doc in corpus.items():
            title, text = ("", doc) if isinstance(doc, str) else (doc.get("title") or "", doc["text"])
            fh.write(json.dumps({"_id": str(doc_id), "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        for query_id, text in queries.items():
            fh.write(json.dumps({"_id": str(query_id), "text": text}, ensure_ascii=False) + "\n")
    with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
        fh.write("\t".join(_QRELS_HEADER) + "\n")
        for query_id, judged in qrels.items():
            for doc_id, score in judged.items():
                if any(c in str(x) for x in (query_id, doc_id) for c in "\t\r\n"):
                    raise ValueError(f"ids must not contain tabs or line breaks: {query_id!r}, {doc_id!r}")
                fh.write(f"{query_id}\t{doc_id}\t{int(score)}\n")
    return out


# --------------------------------------------------------------------------
# Exact blocked top-k search
# --------------------------------------------------------------------------


def _normalize_rows(block: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of a float32 block in place (eps as in torch)."""
    norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float32))
    block /= np.maximum(norms, _EPS)[:, None]
    return block


def _block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of ``scores``, ties resolved by smaller column.

    Returns unsorted ``(values, columns)`` of shape ``(rows, min(k, cols))``.
    """
    rows, cols = scores.shape
    if k >= cols:
        columns = np.broadcast_to(np.arange(cols), (rows, cols))
        return scores, columns
    # k-th largest value of each row; everything above it is in, and the
    # ties at it are taken in column order (argpartition alone would pick
    # arbitrary ties, which makes results depend on the block layout).
    threshold = np.partition(scores, cols - k, axis=1)[:, cols - k, None]
    take = scores > threshold
    need = k - take.sum(axis=1)
    tie = scores == threshold
    n_tie = tie.sum(axis=1)
    partial = np.nonzero(n_tie > need)[0]
    take |= tie
    for r in partial:  # rare: more ties at the threshold than free slots
        tie_cols = np.nonzero(tie[r])[0]
        take[r, tie_cols[need[r]:]] = False
    columns = np.nonzero(take)[1].reshape(rows, k)
    return np.take_along_axis(scores, columns, axis=1), columns


def exact_top_k(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int = TOP_K,
    *,
    normalize_docs: bool = False,
    query_block: int = 1024,
    doc_block: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over all documents.

    Parameters
    ----------
    queries : ndarray, shape (n_queries, d)
        Query vectors (normalised by the caller for cosine similarity).
    docs : ndarray, shape (n_docs, d)
        Document vectors; may be a non-contiguous view such as ``X[:, :d]``.
    k : int
        Ranking depth; ``min(k, n_docs)`` results are returned.
    normalize_docs : bool
        L2-normalise each document block before scoring (cosine similarity
        without materialising a normalised copy of the corpus).
    query_block, doc_block : int
        Block sizes; the score buffer is ``query_block x doc_block`` float32.

    Returns
    -------
    scores : ndarray, float32, shape (n_queries, min(k, n_docs))
    indices : ndarray, int64, same shape
        Document indices sorted by descending score, ties by ascending index.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_queries, n_docs = queries.shape[0], docs.shape[0]
    if docs.ndim != 2 or queries.ndim != 2 or docs.shape[1] != queries.shape[1]:
        raise ValueError(f"shape mismatch: queries {queries.shape}, docs {docs.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    depth = min(k, n_docs)
    best_scores = np.empty((n_queries, 0), dtype=np.float32)
    best_index = np.empty((n_queries, 0), dtype=np.int64)
    # Documents outside, queries inside: each document block is copied and
    # normalised once; running top-k lists of all queries are tiny (n x k).
    for d0 in range(0, n_docs, doc_block):
        block = np.array(docs[d0 : d0 + doc_block], dtype=np.float32, order="C")
        if normalize_docs:
            _normalize_rows(block)
        width = min(depth, d0 + block.shape[0])
        new_scores = np.empty((n_queries, width), np.float32)
        new_index = np.empty((n_queries, width), dtype=np.int64)
        for q0 in range(0, n_queries, query_block):
            q1 = min(q0 + query_block, n_queries)
            kept_scores, kept_index = best_scores[q0:q1], best_index[q0:q1]
            values, columns = _block_candidates(queries[q0:q1] @ block.T, kept_scores, depth)
            cand_scores = np.concatenate([kept_scores, values], axis=1)
            cand_index = np.concatenate([kept_index, columns + d0], axis=1)
            order = np.lexsort((cand_index, -cand_scores), axis=1)[:, :width]
            new_scores[q0:q1] = np.take_along_axis(cand_scores, order, axis=1)
            new_index[q0:q1] = np.take_along_axis(cand_index, order, axis=1)
        best_scores, best_index = new_scores, new_index
    return best_scores, best_index


def _block_candidates(scores: np.ndarray, kept: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a score block that can still enter the running top-k lists.

    ``kept`` holds the running lists (rows sorted best first). Once a list is
    full, only scores strictly above its k-th value can enter: a tie loses to
    the kept document, whose index is smaller. That test is one cheap pass,
    and after the first blocks few columns pass it, so the candidates are
    gathered into a small padded array (score -inf, index past the end).
    """
    rows_n = scores.shape[0]
    if kept.shape[1] < k:
        return _block_top_k(scores, k)
    rows, cols = np.nonzero(scores > kept[:, k - 1 : k])
    counts = np.bincount(rows, minlength=rows_n)
    width = int(counts.max()) if rows.size else 0
    if width > k:  # many candidates in some row: an exact top-k of the block is cheaper
        return _block_top_k(scores, k)
    values = np.full((rows_n, width), -np.inf, dtype=np.float32)
    columns = np.full((rows_n, width), np.iinfo(np.int64).max // 2, dtype=np.int64)
    # position of each candidate within its row (np.nonzero is row-major)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values[rows, pos] = scores[rows, cols]
    columns[rows, pos] = cols
    return values, columns


# --------------------------------------------------------------------------
# Metrics (trec_eval definitions)
# --------------------------------------------------------------------------


def _dcg(gains: np.ndarray) -> float:
    discounts = np.log2(np.arange(2, gains.size + 2, dtype=np.float64))
    return float(np.sum(gains / discounts))


def ndcg_at_k(ranked_gains: Sequence[float], judged_gains: Iterable[float], k: int = 10) -> float:
    """nDCG@k with linear gain, as trec_eval's ``ndcg_cut_k``.

    Parameters
    ----------
    ranked_gains : sequence of float
        Judgment score of each retrieved document in rank order (0 for
        unjudged documents); scores <= 0 count as gain 0.
    judged_gains : iterable of float
        All judgment scores of the query (for the ideal ranking).
    k : int
        Cut-off.

    Returns
    -------
    float
        DCG@k / ideal DCG@k, or 0.0 when the query has no positive judgment.
    """
    ranked = np.clip(np.asarray(ranked_gains, dtype=np.float64)[:k], 0.0, None)
    ideal = np.sort(np.array([g for g in judged_gains if g > 0], dtype=np.float64))[::-1][:k]
    ideal_dcg = _dcg(ideal)
    return _dcg(ranked) / ideal_dcg if ideal_dcg > 0 else 0.0


def reciprocal_rank_at_k(ranked_relevant: Sequence[bool], k: int = 10) -> float:
    """``1 / rank`` of the first relevant document within the top k, else 0."""
    for rank, relevant in enumerate(ranked_relevant[:k], start=1):
        if relevant:
            return 1.0 / rank
    return 0.0


def average_precision_at_k(ranked_relevant: Sequence[bool], n_relevant: int, k: int = 100) -> float:
    """Average precision cut at k, as trec_eval's ``map_cut_k``.

    The sum of precision@rank over the relevant documents in the top k is
    divided by ``n_relevant`` (all relevant documents of the query), not by
    ``min(k, n_relevant)`` as sentence-transformers does.
    """
    if n_relevant <= 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, relevant in enumerate(ranked_relevant[:k], start=1):
        if relevant:
            hits += 1
            total += hits / rank
    return total / n_relevant


def recall_at_k(ranked_relevant: Sequence[bool], n_relevant: int, k: int = 100) -> float:
    """Relevant documents in the top k divided by all relevant documents."""
    if n_relevant <= 0:
        return 0.0
    return sum(bool(r) for r in ranked_relevant[:k]) / n_relevant


def query_metrics(ranked_doc_ids: Sequence[str], judgments: Mapping[str, int]) -> dict[str, float]:
    """All metrics of :data:`METRICS` for one query.

    Parameters
    ----------
    ranked_doc_ids : sequence of str
        Retrieved document ids, best first (at least 100 for exact MAP@100
        and Recall@100 when the corpus has that many documents).
    judgments : mapping
        ``doc id -> score`` of the query; score > 0 means relevant.

    Returns
    -------
    dict
        ``{"ndcg@10": ..., "mrr@10": ..., "map@100": ..., "recall@100": ...}``.
    """
    gains = [judgments.get(doc_id, 0) for doc_id in ranked_doc_ids]
    relevant = [g > 0 for g in gains]
    n_relevant = sum(1 for score in judgments.values() if score > 0)
    return {
        "ndcg@10": ndcg_at_k(gains, judgments.values(), 10),
        "mrr@10": reciprocal_rank_at_k(relevant, 10),
        "map@100": average_precision_at_k(relevant, n_relevant, 100),
        "recall@100": recall_at_k(relevant, n_relevant, 100),
    }


# --------------------------------------------------------------------------
# Model-facing evaluation
# --------------------------------------------------------------------------


class _Progress:
    """Progress lines on a stream (stderr by default), or nothing."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream

    def __call__(self, message: str) -> None:
        if self.enabled:
            stream = self.stream or sys.stderr
            print(message, file=stream, flush=True)


def _encode_raw(model: Any, texts: Sequence[str], label: str, progress: _Progress, batch_size: int) -> np.ndarray:
    """Encode at native dimension without normalisation, in chunks (for progress)."""
    native = int(model.dim)
    out = np.empty((len(texts), native), dtype=np.float32)
    chunk = 32768
    start = time.perf_counter()
    for s in range(0, len(texts), chunk):
        e = min(s + chunk, len(texts))
        out[s:e] = model.encode(list(texts[s:e]), dim=None, batch_size=batch_size, normalize=False)
        if len(texts) > chunk:
            elapsed = time.perf_counter() - start
            progress(f"  {label}: {e}/{len(texts)} ({100.0 * e / len(texts):.0f}%) {elapsed:.1f} s")
    if not np.isfinite(out).all():
        raise ValueError(f"{label}: the model produced non-finite embeddings")
    return out


def _check_dims(dims: Iterable[int], native: int) -> list[int]:
    result: list[int] = []
    for d in dims:
        if isinstance(d, bool) or int(d) != d or int(d) < 1:
            raise ValueError(f"dimension {d!r} is not a positive integer")
        if int(d) > native:
            raise ValueError(f"dimension {int(d)} exceeds the model's native dimension {native}")
        if int(d) not in result:
            result.append(int(d))
    if not result:
        raise ValueError("no dimensions to evaluate")
    return result


def _resolve_model(model: Any) -> Any:
    """Accept an SSEModel-like object, a path, or None (the default model)."""
    import sse_np

    if model is None:
        return sse_np.default_model()
    if isinstance(model, (str, os.PathLike)):
        return sse_np.load(model)
    return model


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, str]:
    import sse_np

    return {
        "sse_np": getattr(sse_np, "__version__", None) or _package_version("sse_np"),
        "numpy": np.__version__,
        "numba": _package_version("numba"),
        "tokenizers": _package_version("tokenizers"),
        "python": platform.python_version(),
    }


def _model_dtype(model: Any) -> str | None:
    """Storage type of the embedding table, from whatever the model exposes."""
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        dtype = getattr(getattr(model, "table", None), "kind", None)
    return None if dtype is None else str(dtype)


def _model_info(model: Any) -> dict[str, Any]:
    return {
        "path": str(getattr(model, "path", "")),
        "layout": getattr(model, "layout", None),
        "dim": int(model.dim),
        "vocab_size": getattr(model, "vocab_size", None),
        "dtype": _model_dtype(model),
    }


def _mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {m: float(np.mean([row[m] for row in rows])) if rows else 0.0 for m in METRICS}


def _search_and_score(
    data: BeirDataset,
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    dim: int,
    query_block: int,
    doc_block: int,
) -> tuple[list[dict[str, float]], dict[str, dict[str, list]]]:
    """Rank the corpus for every query at one dimension and score the rankings.

    Returns the per-query metrics (in ``data.query_ids`` order) and the run
    (``query id -> {"doc_ids": [...], "scores": [...]}``).
    """
    queries = _normalize_rows(np.array(query_vecs[:, :dim], dtype=np.float32, order="C"))
    scores, index = exact_top_k(
        queries, doc_vecs[:, :dim], TOP_K, normalize_docs=True, query_block=query_block, doc_block=doc_block
    )
    rows: list[dict[str, float]] = []
    run: dict[str, dict[str, list]] = {}
    for qi, query_id in enumerate(data.query_ids):
        ranked = [data.doc_ids[j] for j in index[qi]]
        rows.append(query_metrics(ranked, data.qrels[query_id]))
        run[query_id] = {"doc_ids": ranked, "scores": scores[qi].tolist()}
    return rows, run


def _evaluate_dataset(
    model: Any,
    data: BeirDataset,
    dims: Sequence[int],
    *,
    batch_size: int,
    query_block: int,
    doc_block: int,
    per_query: bool,
    progress: _Progress,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    doc_vecs = _encode_raw(model, data.doc_texts, f"{data.name} corpus", progress, batch_size)
    t1 = time.perf_counter()
    query_vecs = _encode_raw(model, data.query_texts, f"{data.name} queries", progress, batch_size)
    t2 = time.perf_counter()
    progress(
        f"{data.name}: encoded {len(data.doc_texts)} docs in {t1 - t0:.2f} s, "
        f"{len(data.query_texts)} queries in {t2 - t1:.2f} s"
    )
    metrics: dict[int, dict[str, float]] = {}
    per_query_out: dict[int, dict[str, dict[str, float]]] = {}
    run_out: dict[int, dict[str, dict[str, list]]] = {}
    search_seconds: dict[int, float] = {}
    for dim in dims:
        s0 = time.perf_counter()
        rows, run = _search_and_score(data, query_vecs, doc_vecs, dim, query_block, doc_block)
        metrics[dim] = _mean_metrics(rows)
        if per_query:
            per_query_out[dim] = dict(zip(data.query_ids, rows))
            run_out[dim] = run
        search_seconds[dim] = time.perf_counter() - s0
    result: dict[str, Any] = {
        "path": data.path,
        "n_docs": len(data.doc_ids),
        "n_queries": len(data.query_ids),
        "n_queries_skipped": data.n_queries_skipped,
        "n_qrels": data.n_qrels,
        "metrics": metrics,
        "timing": {
            "encode_docs_seconds": t1 - t0,
            "encode_queries_seconds": t2 - t1,
            "search_seconds": search_seconds,
        },
    }
    if per_query:
        result["per_query"] = per_query_out
        result["run"] = run_out
    return result


def _unique_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = Path(p).resolve().name or str(p)
        name, n = base, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names


def evaluate(
    model: Any,
    data_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dims: Iterable[int] = DEFAULT_DIMS,
    *,
    split: str = "test",
    batch_size: int = 1024,
    query_block: int = 1024,
    doc_block: int = 8192,
    per_query: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate retrieval quality per Matryoshka dimension on BEIR datasets.

    Parameters
    ----------
    model : SSEModel, path-like or None
        A loaded model (anything with ``encode(texts, dim=None,
        normalize=False)`` and ``dim``), a path for :func:`sse_np.load`, or
        None for :func:`sse_np.default_model`.
    data_dirs : path-like or sequence of path-like
        BEIR-layout folders (see :func:`load_beir`).
    dims : iterable of int
        Dimensions to evaluate; each must be <= the model's native dimension.
        The default, :data:`DEFAULT_DIMS`, keeps those <= the native one
        (or the native one alone if none is).
    split : str
        Qrels split (``qrels/<split>.tsv``).
    batch_size : int
        Passed to ``model.encode``.
    query_block, doc_block : int
        Block sizes of the exact search (memory ~ query_block * doc_block * 4 B).
    per_query : bool
        Also return every query's metrics (``datasets[name]["per_query"][dim]
        [query_id][metric]``) and ranking (``datasets[name]["run"][dim]
        [query_id]`` with the top-100 ``doc_ids`` and their ``scores``).
    progress : bool
        Print progress lines to stderr.

    Returns
    -------
    dict
        JSON-ready report: ``model`` (path, layout, dim, vocab_size, dtype),
        ``dims``, ``metrics`` (names), ``datasets`` (name -> sizes, skipped
        query count, ``metrics[dim][metric]``, timing), ``mean``
        (``[dim][metric]`` averaged over datasets), ``settings`` and
        ``versions``. Dimension keys are ints (strings once saved as JSON).

    Raises
    ------
    DataError
        A dataset is missing or malformed.
    ValueError
        A dimension is invalid for the model.
    """
    report_progress = _Progress(progress)
    model = _resolve_model(model)
    native = int(model.dim)
    if dims is DEFAULT_DIMS:
        dims = [d for d in DEFAULT_DIMS if d <= native] or [native]
    dim_list = _check_dims(dims, native)
    paths = [data_dirs] if isinstance(data_dirs, (str, os.PathLike)) else list(data_dirs)
    if not paths:
        raise ValueError("no dataset folders given")
    names = _unique_names(paths)
    # Load (and validate) every dataset before the slow encoding starts.
    datasets = [load_beir(p, split=split, name=n) for p, n in zip(paths, names)]
    for data in datasets:
        if not data.query_ids:
            raise DataError(Path(data.path) / "qrels" / f"{split}.tsv", "no query has a judgment with score > 0")
    results: dict[str, Any] = {}
    start = time.perf_counter()
    for data in datasets:
        results[data.name] = _evaluate_dataset(
            model,
            data,
            dim_list,
            batch_size=batch_size,
            query_block=query_block,
            doc_block=doc_block,
            per_query=per_query,
            progress=report_progress,
        )
    mean = {dim: _mean_metrics([results[d.name]["metrics"][dim] for d in datasets]) for dim in dim_list}
    return {
        "model": _model_info(model),
        "dims": dim_list,
        "metrics": list(METRICS),
        "datasets": results,
        "mean": mean,
        "settings": {
            "split": split,
            "similarity": "cosine",
            "top_k": TOP_K,
            "gain": "linear (trec_eval / BEIR)",
            "tie_break": "higher score, then smaller document index (corpus.jsonl order)",
            "document_text": '(title + " " + text).strip()',
        },
        "timing": {"total_seconds": time.perf_counter() - start},
        "versions": _versions(),
    }


# --------------------------------------------------------------------------
# Output: table, JSON, plot
# --------------------------------------------------------------------------

_METRIC_LABELS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "map@100": "MAP@100", "recall@100": "Recall@100"}


def _dim_key(mapping: Mapping[Any, Any], dim: int) -> Any:
    """Look a dimension up under int or str keys (reports loaded from JSON)."""
    return mapping[dim] if dim in mapping else mapping[str(dim)]


def format_report(report: Mapping[str, Any]) -> str:
    """Render a report as plain-text tables (one per metric, datasets x dims).

    Parameters
    ----------
    report : mapping
        Result of :func:`evaluate` (or the same loaded from JSON).

    Returns
    -------
    str
        The tables, ending with a newline.
    """
    info = report["model"]
    dims = [int(d) for d in report["dims"]]
    names = list(report["datasets"])
    width = max([len(n) for n in names] + [len("dataset"), len("mean")]) + 2
    lines = [
        f"model: {info['path']} (layout {info['layout']}, V={info['vocab_size']}, D={info['dim']}"
        + (f", {info['dtype']}" if info.get("dtype") else "")
        + ")",
        "",
        f"{'dataset':<{width}}{'docs':>9}{'queries':>9}{'skipped':>9}",
    ]
    for name in names:
        d = report["datasets"][name]
        lines.append(f"{name:<{width}}{d['n_docs']:>9}{d['n_queries']:>9}{d['n_queries_skipped']:>9}")
    for metric in report["metrics"]:
        lines += ["", _METRIC_LABELS.get(metric, metric) + " by dimension", f"{'dataset':<{width}}" + "".join(f"{d:>8}" for d in dims)]
        for name in names:
            values = report["datasets"][name]["metrics"]
            lines.append(f"{name:<{width}}" + "".join(f"{_dim_key(values, d)[metric]:>8.4f}" for d in dims))
        if len(names) > 1:
            lines.append(f"{'mean':<{width}}" + "".join(f"{_dim_key(report['mean'], d)[metric]:>8.4f}" for d in dims))
    return "\n".join(lines) + "\n"


def save_report(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a report as indented JSON (dimension keys become strings)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


def _require_matplotlib() -> Any:
    """Import matplotlib with a non-interactive backend, or explain the extra."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "plotting needs matplotlib, which is not installed: pip install 'sse_np[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: Mapping[str, Any], path: str | os.PathLike[str], metric: str = "ndcg@10") -> None:
    """Save the Matryoshka curve (metric vs dimension, one line per dataset).

    Parameters
    ----------
    report : mapping
        Result of :func:`evaluate`.
    path : path-like
        Output image (format from the extension, e.g. ``.png``).
    metric : str
        One of :data:`METRICS`.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed (the ``plot`` extra).
    """
    plt = _require_matplotlib()
    dims = sorted(int(d) for d in report["dims"])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for name, data in report["datasets"].items():
        ax.plot(dims, [_dim_key(data["metrics"], d)[metric] for d in dims], marker="o", label=name)
    if len(report["datasets"]) > 1:
        mean = [_dim_key(report["mean"], d)[metric] for d in dims]
        ax.plot(dims, mean, marker="s", color="black", linewidth=2.2, label="mean")
    ax.set_xscale("log", base=2)
    ax.set_xticks(dims)
    ax.set_xticklabels([str(d) for d in dims])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel(_METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{_METRIC_LABELS.get(metric, metric)} vs dimension: {Path(str(report['model']['path'])).name}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
