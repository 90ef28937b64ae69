"""The evaluation driver: encode a dataset once, search and score at every dimension.

The conventions (shared with BEIR and pytrec_eval):

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

import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..engine import normalize_rows
from ..errors import DataError
from ..index.lexical import check_lexical
from ..progress import Progress
from ..retrieval.quantization import (
    PRECISIONS,
    bytes_per_vector,
    check_precision,
    quantization_ranges,
    quantize_embeddings,
)
from ..retrieval.search import semantic_search
from ..retrieval.topk import top_k as exact_top_k
from .beir import BeirDataset, load_beir
from .metrics import METRICS, mean_metrics, query_metrics
from .modes import check_modes, evaluate_modes

#: Depth of the ranking kept per query (the largest cut-off of the metrics).
TOP_K = 100
#: Matryoshka dimensions evaluated when none are given.
DEFAULT_DIMS: tuple[int, ...] = (512, 256, 128, 64, 32)


class _Say:
    """Progress lines on stderr, or nothing; also makes the per-text progress bars."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)


_ENCODE_CHUNK = 4096  # texts per encode call: the progress bar moves at least this often


def _encode_raw(model: Any, texts: Sequence[str], label: str, say: _Say, batch_size: int) -> np.ndarray:
    """Encode at native dimension without normalisation, in chunks (for progress)."""
    native = int(model.dim)
    out = np.empty((len(texts), native), dtype=np.float32)
    with Progress(len(texts), f"{label}", enabled=say.enabled and len(texts) > _ENCODE_CHUNK) as bar:
        for s in range(0, len(texts), _ENCODE_CHUNK):
            e = min(s + _ENCODE_CHUNK, len(texts))
            # dim=native: a model whose truncate_dim is set would otherwise answer narrower rows
            out[s:e] = model.encode(list(texts[s:e]), dim=native, batch_size=batch_size, normalize=False)
            bar.update(e - s)
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
    from ..defaults import default_model
    from ..model import load

    if model is None:
        return default_model()
    if isinstance(model, (str, os.PathLike)):
        return load(model)
    return model


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, str]:
    return {
        "sse_np": __version__,
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


def model_info(model: Any) -> dict[str, Any]:
    return {
        "path": str(getattr(model, "path", "")),
        "layout": getattr(model, "layout", None),
        "dim": int(model.dim),
        "vocab_size": getattr(model, "vocab_size", None),
        "dtype": _model_dtype(model),
    }


def _search_and_score(
    data: BeirDataset,
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    dim: int,
    query_block: int,
    doc_block: int,
    precision: str = "float32",
) -> tuple[list[dict[str, float]], dict[str, dict[str, list]]]:
    """Rank the corpus for every query at one dimension and precision and score the rankings.

    float32 is exact cosine. int8/uint8: the corpus quantized with ranges from
    the corpus itself (sentence-transformers' default), the top-400 in the
    quantized space rescored with the float queries. binary/ubinary: the
    Hamming top-400 on packed sign bits (the index in memory), rescored with
    the float queries against int8 rows of the same documents (kept on
    disk): sentence-transformers' binary + int8 rescore recipe.

    Returns the per-query metrics (in ``data.query_ids`` order) and the run
    (``query id -> {"doc_ids": [...], "scores": [...]}``).
    """
    # The engine's normalization: each prefix gets the bits of encode(dim=k).
    queries = normalize_rows(np.array(query_vecs[:, :dim], dtype=np.float32, order="C"))
    if precision == "float32":
        scores, index = exact_top_k(
            queries, doc_vecs[:, :dim], TOP_K, normalize_docs=True, query_block=query_block, doc_block=doc_block
        )
        ranked_lists = [(index[qi].tolist(), scores[qi].tolist()) for qi in range(len(data.query_ids))]
    else:
        docs = normalize_rows(np.array(doc_vecs[:, :dim], dtype=np.float32, order="C"))
        ranges = quantization_ranges(docs)
        codes = quantize_embeddings(docs, precision, ranges=ranges)
        # binary: the index in memory, int8 rows (on disk, say) for the rescoring.
        rescore_rows = quantize_embeddings(docs, "int8", ranges=ranges) if "binary" in precision else None
        del docs
        found = semantic_search(
            queries,
            codes,
            top_k=TOP_K,
            corpus_precision=precision,
            ranges=ranges,
            rescore=True,
            rescore_multiplier=4,
            rescore_embeddings=rescore_rows,
        )
        ranked_lists = [([hit["corpus_id"] for hit in hits], [hit["score"] for hit in hits]) for hits in found]
    rows: list[dict[str, float]] = []
    run: dict[str, dict[str, list]] = {}
    for query_id, (index, scores) in zip(data.query_ids, ranked_lists):
        ranked = [data.doc_ids[j] for j in index]
        rows.append(query_metrics(ranked, data.qrels[query_id]))
        run[query_id] = {"doc_ids": ranked, "scores": scores}
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
    progress: _Say,
    precisions: Sequence[str] = ("float32",),
    retrieval: Sequence[str] = (),
    hybrid_weight: float | None = None,
    stemmer: str | None = None,
    lexical: str | None = None,
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
    by_precision: dict[str, dict[int, dict[str, float]]] = {p: {} for p in precisions if p != "float32"}
    for dim in dims:
        s0 = time.perf_counter()
        rows, run = _search_and_score(data, query_vecs, doc_vecs, dim, query_block, doc_block)
        metrics[dim] = mean_metrics(rows)
        if per_query:
            per_query_out[dim] = dict(zip(data.query_ids, rows))
            run_out[dim] = run
        search_seconds[dim] = time.perf_counter() - s0
        for precision in by_precision:
            rows, _ = _search_and_score(data, query_vecs, doc_vecs, dim, query_block, doc_block, precision)
            by_precision[precision][dim] = mean_metrics(rows)
    r0 = time.perf_counter()
    by_mode = (
        evaluate_modes(model, data, query_vecs, doc_vecs, dims, retrieval, TOP_K, hybrid_weight, stemmer, lexical)
        if retrieval
        else {}
    )
    result: dict[str, Any] = {
        "path": data.path,
        "n_docs": len(data.doc_ids),
        "n_queries": len(data.query_ids),
        "n_queries_skipped": data.n_queries_skipped,
        "n_qrels": data.n_qrels,
        "metrics": metrics,
        **({"metrics_by_precision": {"float32": metrics, **by_precision}} if by_precision else {}),
        **({"metrics_by_retrieval": by_mode} if by_mode else {}),
        "timing": {
            "encode_docs_seconds": t1 - t0,
            "encode_queries_seconds": t2 - t1,
            "search_seconds": search_seconds,
            **({"retrieval_seconds": time.perf_counter() - r0} if retrieval else {}),
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
    precisions: Iterable[str] = ("float32",),
    retrieval: Iterable[str] | str | None = None,
    hybrid_weight: float | None = None,
    stemmer: str | None = None,
    lexical: str | None = None,
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
    precisions : iterable of str
        Vector precisions to evaluate (``"float32"``, ``"int8"``, ``"uint8"``,
        ``"binary"``, ``"ubinary"``; see :func:`sse_np.quantize_embeddings`).
        Beyond float32 the report gains ``precisions``, ``bytes_per_doc
        [precision][dim]``, ``mean_by_precision[precision][dim][metric]`` and
        per dataset ``metrics_by_precision``. int8/uint8 rank in the
        quantized space and rescore the top 400 with the float queries;
        binary/ubinary take the Hamming top 400 and rescore them against
        int8 rows (the sentence-transformers recipes). ``bytes_per_doc`` is
        the searched index's size (binary: the bits in memory).
    retrieval : iterable of str, str or None
        Also rank with :class:`sse_np.Index` modes ("dense", "bm25",
        "hybrid"; a list or "dense,bm25"): the report gains ``retrieval``,
        ``mean_by_retrieval[mode][dim][metric]`` and per dataset
        ``metrics_by_retrieval``.
    hybrid_weight : float or None
        Dense weight of hybrid fusion (None: the index's default).
    stemmer : str or None
        BM25 of the retrieval modes over stemmed words ("english", the
        ``stem`` extra; see :class:`sse_np.Index`); None: no stemming.
    lexical : str or None
        BM25's tokens in the retrieval modes: "words" or "pieces" (None: the
        index's default, words); the report's ``retrieval_lexical`` names them.

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
    report_progress = _Say(progress)
    precision_list = list(dict.fromkeys(check_precision(p) for p in precisions))
    if not precision_list:
        raise ValueError(f"no precision to evaluate; choose from {', '.join(PRECISIONS)}")
    modes = check_modes(retrieval) if retrieval is not None else []
    check_lexical(lexical, stemmer)  # a bad pair fails before the slow encoding
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
            precisions=precision_list,
            retrieval=modes,
            hybrid_weight=hybrid_weight,
            stemmer=stemmer,
            lexical=lexical,
        )
    mean = {dim: mean_metrics([results[d.name]["metrics"][dim] for d in datasets]) for dim in dim_list}
    extra: dict[str, Any] = {}
    if precision_list != ["float32"]:
        by = {
            p: {
                dim: mean_metrics([results[d.name]["metrics_by_precision"][p][dim] for d in datasets])
                for dim in dim_list
            }
            for p in precision_list
            if p != "float32"
        }
        extra = {
            "precisions": precision_list,
            "bytes_per_doc": {p: {dim: bytes_per_vector(dim, p) for dim in dim_list} for p in precision_list},
            "mean_by_precision": {p: (mean if p == "float32" else by[p]) for p in precision_list},
        }
    if modes:
        extra["retrieval"] = modes
        extra["retrieval_lexical"] = check_lexical(lexical, stemmer)[0]
        extra["retrieval_stemmer"] = stemmer
        extra["mean_by_retrieval"] = {
            m: {
                dim: mean_metrics([results[d.name]["metrics_by_retrieval"][m][dim] for d in datasets])
                for dim in dim_list
            }
            for m in modes
        }
    return {
        "model": model_info(model),
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
        **extra,
        "timing": {"total_seconds": time.perf_counter() - start},
        "versions": _versions(),
    }
