"""BEIR-layout datasets: reading (with line-numbered errors) and writing.

A dataset folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``; a
document is ``(title + " " + text).strip()``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..jsonl import json_line

_QRELS_HEADER = ("query-id", "corpus-id", "score")


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
                # Also deep nesting (RecursionError) and over-long integers (ValueError): FILE:LINE.
                obj = json_line(line, str(path), lineno)
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
        if folder.exists():  # e.g. corpus.jsonl given instead of its folder
            raise DataError(
                folder,
                "is a file; eval takes a BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)"
                + (f": try {folder.parent}" if folder.name in ("corpus.jsonl", "queries.jsonl") else ""),
            )
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
