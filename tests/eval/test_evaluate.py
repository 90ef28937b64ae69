"""Tests of sse_np.eval: BEIR loading, exact top-k, metrics, end-to-end runs.

Metrics are checked on hand-computed cases and against pytrec_eval (the
trec_eval bindings BEIR uses) on real runs over the shared datasets.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import sse_np
from helpers.extras import install_commands
from helpers.models import make_random_model
from helpers.paths import SHARED_DATA
from sse_np.eval import (
    DEFAULT_DIMS,
    METRICS,
    DataError,
    MissingDependencyError,
    average_precision_at_k,
    evaluate,
    exact_top_k,
    format_report,
    load_beir,
    ndcg_at_k,
    plot_report,
    query_metrics,
    recall_at_k,
    reciprocal_rank_at_k,
    save_report,
)

DATA = SHARED_DATA


def _dataset(name: str) -> Path:
    path = DATA / name
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"shared evaluation data not found at {path}")
    return path


# --------------------------------------------------------------------------
# Fixtures: a random SSE checkpoint and a tiny BEIR dataset
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("sse_random") / "model")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> sse_np.SSEModel:
    return sse_np.load(model_dir)


def write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple], header: bool = True) -> Path:
    """Write a BEIR-layout dataset folder."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for obj in corpus:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as fh:
        for obj in queries:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
        if header:
            fh.write("query-id\tcorpus-id\tscore\n")
        for q, d, s in qrels:
            fh.write(f"{q}\t{d}\t{s}\n")
    return folder


TINY_CORPUS = [
    {"_id": "d1", "title": "Cats", "text": "cats purr and sleep all day"},
    {"_id": "d2", "title": "", "text": "dogs bark at the mail carrier"},
    {"_id": "d3", "title": "Stock markets", "text": "shares fell sharply on monday"},
    {"_id": "d4", "text": "a recipe for apple pie with cinnamon"},
    {"_id": "d5", "title": "Kittens", "text": "young cats are called kittens"},
]
TINY_QUERIES = [
    {"_id": "q1", "text": "what sound do cats make"},
    {"_id": "q2", "text": "why do dogs bark"},
    {"_id": "q3", "text": "apple pie recipe"},
    {"_id": "q4", "text": "no judgments at all"},
]
TINY_QRELS = [("q1", "d1", 2), ("q1", "d5", 1), ("q2", "d2", 1), ("q2", "d3", 0), ("q3", "d4", 1), ("q3", "d1", 0)]


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)


# --------------------------------------------------------------------------
# Metrics on hand-computed cases
# --------------------------------------------------------------------------


def test_ndcg_hand_computed() -> None:
    # ranked gains 0, 2, 1; judged gains 2, 1, 1 (one relevant doc not retrieved)
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k([0, 2, 1], [2, 1, 1], 10) == pytest.approx(dcg / idcg, abs=1e-12)
    assert ndcg_at_k([2, 1, 1], [2, 1, 1], 10) == pytest.approx(1.0)
    # cut-off: the relevant doc at rank 3 is outside the top 2
    assert ndcg_at_k([0, 0, 1], [1], 2) == 0.0
    # linear gain: a grade-3 document is worth 3x a grade-1 one
    assert ndcg_at_k([1, 3], [3, 1], 10) == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    # score-0 and negative judgments are non-relevant; no positive judgment -> 0
    assert ndcg_at_k([0, 1], [0, 1], 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([-1, 0], [-1, 0], 10) == 0.0


def test_rank_metrics_hand_computed() -> None:
    assert reciprocal_rank_at_k([False, False, True], 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k([False] * 10 + [True], 10) == 0.0
    assert reciprocal_rank_at_k([True, True], 10) == 1.0
    # relevant at ranks 1 and 3 of 4 relevant: (1/1 + 2/3) / 4
    assert average_precision_at_k([True, False, True, False], 4, 100) == pytest.approx((1 + 2 / 3) / 4)
    # cut at 2 keeps only the first hit, still divided by all relevant
    assert average_precision_at_k([True, False, True], 4, 2) == pytest.approx(1 / 4)
    assert average_precision_at_k([True], 0, 100) == 0.0
    assert recall_at_k([True, False, True, False], 4, 100) == 0.5
    assert recall_at_k([True, False, True], 4, 2) == 0.25


def test_query_metrics_uses_ids_and_grades() -> None:
    judgments = {"a": 2, "b": 1, "c": 0}
    got = query_metrics(["c", "x", "a", "y"], judgments)
    assert set(got) == set(METRICS)
    assert got["ndcg@10"] == pytest.approx((2 / math.log2(4)) / (2 + 1 / math.log2(3)))
    assert got["mrr@10"] == pytest.approx(1 / 3)
    assert got["map@100"] == pytest.approx((1 / 3) / 2)
    assert got["recall@100"] == pytest.approx(0.5)


def _pytrec_metrics(qrels: dict, run: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Reference figures from pytrec_eval for ranked lists (rank-derived scores).

    trec_eval re-sorts a run by score and breaks ties by document id, so the
    run is given strictly decreasing scores to fix the order; MRR@10 is
    trec_eval's ``recip_rank`` on the run cut to 10.
    """
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier (test extra) not installed")
    full = {q: {d: float(len(ids) - r) for r, d in enumerate(ids)} for q, ids in run.items()}
    top10 = {q: {d: float(len(ids) - r) for r, d in enumerate(ids[:10])} for q, ids in run.items()}
    main = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map_cut.100", "recall.100"}).evaluate(full)
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        q: {
            "ndcg@10": main[q]["ndcg_cut_10"],
            "mrr@10": rr[q]["recip_rank"],
            "map@100": main[q]["map_cut_100"],
            "recall@100": main[q]["recall_100"],
        }
        for q in run
    }


def test_metrics_match_pytrec_eval_on_synthetic_runs() -> None:
    rng = np.random.default_rng(1)
    docs = [f"doc{i}" for i in range(300)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for q in range(40):
        judged = rng.choice(300, size=int(rng.integers(1, 150)), replace=False)
        # grades 0..3 with at least one positive
        grades = rng.integers(0, 4, size=judged.size)
        grades[0] = max(grades[0], 1)
        qrels[f"q{q}"] = {docs[j]: int(g) for j, g in zip(judged, grades)}
        run[f"q{q}"] = [docs[j] for j in rng.permutation(300)[:100]]
    ref = _pytrec_metrics(qrels, run)
    for q, ids in run.items():
        got = query_metrics(ids, qrels[q])
        for metric in METRICS:
            assert got[metric] == pytest.approx(ref[q][metric], abs=1e-6), (q, metric)


# --------------------------------------------------------------------------
# Exact top-k
# --------------------------------------------------------------------------


def _brute_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    return np.array([sorted(range(scores.shape[1]), key=lambda j: (-row[j], j))[:k] for row in scores])


@pytest.mark.parametrize("query_block,doc_block", [(1024, 8192), (3, 7), (1, 50), (5, 1)])
def test_exact_top_k_matches_brute_force_with_ties(query_block: int, doc_block: int) -> None:
    rng = np.random.default_rng(2)
    # small integer vectors: many exactly tied scores, also across blocks
    docs = rng.integers(-1, 2, size=(120, 4)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(9, 4)).astype(np.float32)
    scores, index = exact_top_k(queries, docs, 10, query_block=query_block, doc_block=doc_block)
    expected = _brute_top_k(queries @ docs.T, 10)
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_array_equal(scores, np.take_along_axis(queries @ docs.T, expected, axis=1))
    assert scores.dtype == np.float32 and index.dtype == np.int64


def test_exact_top_k_normalizes_views_and_caps_k() -> None:
    rng = np.random.default_rng(3)
    full = rng.standard_normal((30, 16)).astype(np.float32)
    view = full[:, :8]  # non-contiguous, like a Matryoshka slice of the corpus
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    scores, index = exact_top_k(queries, view, 100, normalize_docs=True, doc_block=7)
    assert index.shape == (4, 30)  # k capped at the corpus size
    normed = view / np.linalg.norm(view, axis=1, keepdims=True)
    cos = queries @ normed.T
    np.testing.assert_array_equal(index, _brute_top_k(cos, 30))
    np.testing.assert_allclose(scores, np.take_along_axis(cos, index, axis=1), atol=1e-6)


# --------------------------------------------------------------------------
# BEIR loading and data errors
# --------------------------------------------------------------------------


def test_load_beir_texts_and_skipped_queries(tiny: Path) -> None:
    data = load_beir(tiny)
    assert data.name == "tiny"
    assert data.doc_ids == ["d1", "d2", "d3", "d4", "d5"]
    assert data.doc_texts[0] == "Cats cats purr and sleep all day"
    assert data.doc_texts[1] == "dogs bark at the mail carrier"  # empty title: stripped
    assert data.doc_texts[3] == "a recipe for apple pie with cinnamon"  # no title field
    assert data.query_ids == ["q1", "q2", "q3"]  # q4 has no judgment
    assert data.n_queries_skipped == 1
    assert data.n_qrels == len(TINY_QRELS)
    assert data.qrels["q2"] == {"d2": 1, "d3": 0}


def test_query_with_only_zero_judgments_is_skipped(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "z", TINY_CORPUS, TINY_QUERIES, [("q1", "d1", 1), ("q2", "d2", 0)])
    data = load_beir(folder)
    assert data.query_ids == ["q1"] and data.n_queries_skipped == 3


def test_qrels_without_header_accepted(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "nh", TINY_CORPUS, TINY_QUERIES, TINY_QRELS, header=False)
    assert load_beir(folder).n_qrels == len(TINY_QRELS)


def _error(folder: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load_beir(folder)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize(
    "line,needle",
    [
        ('{"_id": "d9", "text": "ok"', "invalid JSON"),
        ('{"_id": "d9", "title": "t"}', "missing field 'text'"),
        ('{"text": "no id"}', "missing field '_id'"),
        ('{"_id": "d1", "text": "again"}', "duplicate _id 'd1'"),
        ('{"_id": ["x"], "text": "t"}', "must be a string"),
        ('["not", "an", "object"]', "expected a JSON object"),
    ],
)
def test_malformed_corpus_line_named(tmp_path: Path, line: str, needle: str) -> None:
    folder = write_beir(tmp_path / "bad", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    err = _error(folder)
    assert str(folder / "corpus.jsonl") in str(err) and err.line == 6
    assert "corpus.jsonl:6: " in str(err) and needle in str(err)


@pytest.mark.parametrize(
    "row,needle",
    [
        ("q1\tnope\t1", "corpus-id 'nope' is not in corpus.jsonl"),
        ("q9\td1\t1", "query-id 'q9' is not in queries.jsonl"),
        ("q1\td2\thigh", "score 'high' is not an integer"),
        ("q1 d2 1", "expected 3 tab-separated fields"),
        ("q1\td1\t0", "conflicting scores"),
    ],
)
def test_malformed_qrels_line_named(tmp_path: Path, row: str, needle: str) -> None:
    folder = write_beir(tmp_path / "bad", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    with open(folder / "qrels" / "test.tsv", "a", encoding="utf-8") as fh:
        fh.write(row + "\n")
    err = _error(folder)
    line = len(TINY_QRELS) + 2  # header + rows + the bad one
    assert f"test.tsv:{line}: " in str(err) and needle in str(err), str(err)


def test_malformed_queries_line_named(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "bad", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    with open(folder / "queries.jsonl", "a", encoding="utf-8") as fh:
        fh.write("\n")  # blank lines are tolerated (not counted as errors)
        fh.write('{"_id": "q7", "text": 3}\n')
    err = _error(folder)
    assert "queries.jsonl:6: " in str(err) and "'text' must be a string" in str(err)


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_file_named(tmp_path: Path, missing: str) -> None:
    folder = write_beir(tmp_path / "m", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    (folder / missing).unlink()
    err = _error(folder)
    assert str(folder / missing) in str(err) and "file not found" in str(err)


def test_missing_folder_and_split(tmp_path: Path, tiny: Path) -> None:
    assert "dataset folder not found" in str(_error(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"dev\.tsv: file not found"):
        load_beir(tiny, split="dev")


def test_invalid_utf8_named(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "u", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    with open(folder / "corpus.jsonl", "ab") as fh:
        fh.write(b'{"_id": "d9", "text": "\xff\xfe"}\n')
    assert "not valid UTF-8" in str(_error(folder))


# --------------------------------------------------------------------------
# Model-facing evaluation
# --------------------------------------------------------------------------


def test_evaluate_tiny_report_structure(model: sse_np.SSEModel, tiny: Path) -> None:
    report = evaluate(model, tiny)  # default dims: those <= D=64
    assert report["dims"] == [d for d in DEFAULT_DIMS if d <= 64] == [64, 32]
    assert report["metrics"] == list(METRICS)
    assert report["model"] == {
        "path": model.path,
        "layout": "full",
        "dim": 64,
        "vocab_size": 30522,
        "dtype": "float32",
    }
    ds = report["datasets"]["tiny"]
    assert (ds["n_docs"], ds["n_queries"], ds["n_queries_skipped"], ds["n_qrels"]) == (5, 3, 1, 6)
    for dim in (64, 32):
        assert set(ds["metrics"][dim]) == set(METRICS)
        assert all(0.0 <= v <= 1.0 for v in ds["metrics"][dim].values())
        # 5 docs < 100: every relevant document is retrieved
        assert ds["metrics"][dim]["recall@100"] == 1.0
        assert report["mean"][dim] == ds["metrics"][dim]
    assert set(report["versions"]) == {"sse_np", "numpy", "numba", "tokenizers", "python"}
    assert report["versions"]["sse_np"] == sse_np.__version__


def test_evaluate_rejects_bad_dims(model: sse_np.SSEModel, tiny: Path) -> None:
    with pytest.raises(ValueError, match="exceeds the model's native dimension 64"):
        evaluate(model, tiny, dims=(128, 64))
    with pytest.raises(ValueError, match="positive integer"):
        evaluate(model, tiny, dims=(0,))


def test_evaluate_accepts_model_path(model_dir: Path, tiny: Path) -> None:
    report = evaluate(str(model_dir), [tiny], dims=(16,))
    assert report["dims"] == [16] and report["model"]["dim"] == 64


def test_save_and_format_report(model: sse_np.SSEModel, tiny: Path, tmp_path: Path) -> None:
    report = evaluate(model, [tiny, tiny], dims=(32, 8))
    assert list(report["datasets"]) == ["tiny", "tiny#2"]
    out = tmp_path / "r.json"
    save_report(report, out)
    loaded = json.loads(out.read_text(encoding="utf-8"))
    assert loaded["datasets"]["tiny"]["metrics"]["32"] == report["datasets"]["tiny"]["metrics"][32]
    text = format_report(report)
    assert format_report(loaded) == text  # works on the JSON form too
    for label in ("nDCG@10", "MRR@10", "MAP@100", "Recall@100", "tiny#2", "mean"):
        assert label in text
    lines = text.splitlines()
    start = lines.index("nDCG@10 by dimension")
    row = next(line for line in lines[start:] if line.startswith("tiny "))
    assert f"{report['datasets']['tiny']['metrics'][32]['ndcg@10']:.4f}" in row


def test_plot_report(model: sse_np.SSEModel, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = evaluate(model, tiny, dims=(64, 32, 16))
    if importlib.util.find_spec("matplotlib") is not None:
        plot_report(report, tmp_path / "curve.png")
        assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now fails
    with pytest.raises(MissingDependencyError, match=re.escape(install_commands("plot"))):
        plot_report(report, tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()


@pytest.mark.parametrize("name", ["nfcorpus", "msmarco-dl19-5k"])
def test_evaluate_agrees_with_pytrec_eval_per_query(model: sse_np.SSEModel, name: str) -> None:
    """Every metric of every query equals pytrec_eval's on the same run (graded qrels)."""
    path = _dataset(name)
    report = evaluate(model, [path], dims=(64, 16), per_query=True)
    data = load_beir(path)
    ds = report["datasets"][name]
    for dim in (64, 16):
        run = {q: ds["run"][dim][q]["doc_ids"] for q in data.query_ids}
        assert all(len(ids) == 100 for ids in run.values())
        ref = _pytrec_metrics(data.qrels, run)
        assert set(ds["per_query"][dim]) == set(ref)
        worst = max(abs(ds["per_query"][dim][q][m] - ref[q][m]) for q in ref for m in METRICS)
        assert worst <= 1e-6
        for metric in METRICS:
            mean = np.mean([ref[q][metric] for q in ref])
            assert ds["metrics"][dim][metric] == pytest.approx(mean, abs=1e-9)
        # a random bag-of-tokens model still retrieves something: the check is not vacuous
        assert ds["metrics"][dim]["recall@100"] > 0.02


def test_end_to_end_scifact_deterministic(model: sse_np.SSEModel) -> None:
    path = _dataset("scifact")
    report = evaluate(model, [path], dims=(64, 16), per_query=True)
    ds = report["datasets"]["scifact"]
    assert (ds["n_docs"], ds["n_queries"], ds["n_queries_skipped"], ds["n_qrels"]) == (5183, 300, 0, 339)
    assert report["dims"] == [64, 16] and list(report["datasets"]) == ["scifact"]
    assert set(ds["metrics"][64]) == set(METRICS) and report["mean"][64] == ds["metrics"][64]
    assert set(ds["timing"]) == {"encode_docs_seconds", "encode_queries_seconds", "search_seconds"}
    json.dumps(report)  # JSON-ready as returned

    # An independent recomputation: vectors from model.encode at dim=k directly (not sliced from the full-D
    # encoding), scores in float64 with NumPy, rankings by argsort, metrics by pytrec_eval: none of the
    # runner's own search or metric code. Only documents whose float32 and float64 scores are within
    # rounding of each other can swap places, hence the few differing rankings and the small tolerance.
    data = load_beir(path)
    doc_pos = {d: i for i, d in enumerate(data.doc_ids)}
    dim = 64
    docs = model.encode(data.doc_texts, dim=dim).astype(np.float64)
    queries = model.encode(data.query_texts, dim=dim).astype(np.float64)
    scores = queries @ docs.T
    index = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    same_ids = 0
    for qi, q in enumerate(data.query_ids):
        hit = ds["run"][dim][q]
        same_ids += hit["doc_ids"] == [data.doc_ids[j] for j in index[qi]]
        np.testing.assert_allclose(hit["scores"], scores[qi, [doc_pos[d] for d in hit["doc_ids"]]], atol=2e-6)
    assert same_ids >= 297, same_ids
    ref = _pytrec_metrics(data.qrels, {q: [data.doc_ids[j] for j in row] for q, row in zip(data.query_ids, index)})
    for metric in METRICS:
        assert ds["metrics"][dim][metric] == pytest.approx(np.mean([ref[q][metric] for q in ref]), abs=2e-3)
    # The runner's blocked search gives its unblocked result (a consistency check of exact_top_k, not independent).
    docs32, queries32 = docs.astype(np.float32), queries.astype(np.float32)
    whole, blocked = (
        exact_top_k(queries32, docs32, 100),
        exact_top_k(queries32, docs32, 100, query_block=37, doc_block=1000),
    )
    np.testing.assert_allclose(whole[0], blocked[0], atol=2e-6)
    # dim 16: spot checks of the top 10 against model.encode(dim=16)
    for qi in range(0, 300, 60):
        hit = ds["run"][16][data.query_ids[qi]]
        q_vec = model.encode(data.query_texts[qi], dim=16)
        d_vecs = model.encode([data.doc_texts[doc_pos[d]] for d in hit["doc_ids"][:10]], dim=16)
        np.testing.assert_allclose(hit["scores"][:10], d_vecs @ q_vec, atol=2e-6)
        assert hit["scores"] == sorted(hit["scores"], reverse=True)


def test_evaluate_is_deterministic(model: sse_np.SSEModel) -> None:
    """Same inputs and settings: bitwise identical rankings, scores and metrics."""
    path = _dataset("msmarco-dl19-5k")
    first = evaluate(model, [path], dims=(64, 8), per_query=True)
    again = evaluate(model, [path], dims=(64, 8), per_query=True)
    for key in ("metrics", "per_query", "run"):
        assert first["datasets"]["msmarco-dl19-5k"][key] == again["datasets"]["msmarco-dl19-5k"][key], key
    assert first["mean"] == again["mean"]


class _SentenceTransformersAdapter:
    """Just what InformationRetrievalEvaluator calls on a model, backed by SSEModel."""

    similarity_fn_name = "cosine"

    def __init__(self, model: sse_np.SSEModel) -> None:
        self.model = model

    def encode_query(self, sentences, truncate_dim=None, **kwargs):
        import torch

        return torch.from_numpy(self.model.encode(list(sentences), dim=truncate_dim))

    encode_document = encode_query


def test_sentence_transformers_evaluator_differences(model: sse_np.SSEModel) -> None:
    """ST's InformationRetrievalEvaluator = binary gain and MAP over min(k, R), on graded qrels.

    MRR@10 and Recall@100 agree with ours; its nDCG@10 equals ours computed
    with binary gain, its MAP@100 equals ours rescaled by R / min(100, R).
    """
    pytest.importorskip("torch", reason="torch (test extra) not installed")
    st_eval = pytest.importorskip(
        "sentence_transformers.sentence_transformer.evaluation",
        reason="sentence-transformers (test extra) not installed",
    )
    from sentence_transformers.util import cos_sim

    path = _dataset("msmarco-dl19-5k")
    data = load_beir(path)
    relevant = {q: {d for d, s in judged.items() if s > 0} for q, judged in data.qrels.items()}
    dim = 32
    ours = evaluate(model, [path], dims=(dim,), per_query=True)["datasets"]["msmarco-dl19-5k"]
    evaluator = st_eval.InformationRetrievalEvaluator(
        queries=dict(zip(data.query_ids, data.query_texts)),
        corpus=dict(zip(data.doc_ids, data.doc_texts)),
        relevant_docs=relevant,
        score_functions={"cosine": cos_sim},
        truncate_dim=dim,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[10],
        precision_recall_at_k=[100],
        map_at_k=[100],
        write_csv=False,
    )
    st = evaluator.compute_all_metrics(_SentenceTransformersAdapter(model))["cosine"]
    assert st["mrr@k"][10] == pytest.approx(ours["metrics"][dim]["mrr@10"], abs=1e-6)
    assert st["recall@k"][100] == pytest.approx(ours["metrics"][dim]["recall@100"], abs=1e-6)
    binary_ndcg, st_map = [], []
    for q in data.query_ids:
        ranked = ours["run"][dim][q]["doc_ids"]
        n_rel = len(relevant[q])
        binary_ndcg.append(ndcg_at_k([float(d in relevant[q]) for d in ranked], [1.0] * n_rel, 10))
        st_map.append(ours["per_query"][dim][q]["map@100"] * n_rel / min(100, n_rel))
    assert st["ndcg@k"][10] == pytest.approx(np.mean(binary_ndcg), abs=1e-6)
    assert st["map@k"][100] == pytest.approx(np.mean(st_map), abs=1e-6)
    # graded judgments (1..3): binary gain reads much higher than BEIR's linear gain
    assert st["ndcg@k"][10] > ours["metrics"][dim]["ndcg@10"] + 0.02


def test_write_beir_round_trip(tmp_path: Path) -> None:
    from sse_np.eval import write_beir

    folder = write_beir(
        tmp_path / "nano",
        corpus={"d1": "plain text", "d2": {"title": "T\u00eftle", "text": "body"}},
        queries={"q1": "question?", "q2": "unjudged"},
        qrels={"q1": {"d1": 1, "d2": 0}},
    )
    data = load_beir(folder)
    assert data.doc_texts == ["plain text", "T\u00eftle body"]
    assert data.query_ids == ["q1"] and data.n_queries_skipped == 1
    assert data.qrels == {"q1": {"d1": 1, "d2": 0}}
    with pytest.raises(ValueError, match="tabs or line breaks"):
        write_beir(tmp_path / "bad", {"d\t1": "x"}, {"q": "y"}, {"q": {"d\t1": 1}})


def test_evaluate_refuses_dataset_without_judged_queries(model: sse_np.SSEModel, tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "nojudged", TINY_CORPUS, TINY_QUERIES, [("q1", "d1", 0)])
    with pytest.raises(DataError, match=r"test\.tsv: no query has a judgment with score > 0"):
        evaluate(model, folder, dims=(8,))


def test_precisions_report_quality_and_bytes(model: sse_np.SSEModel, tmp_path: Path) -> None:
    """--precision: every precision x dim has metrics and bytes per document; rankings follow the recipes."""
    try:
        from sentence_transformers.util.quantization import quantize_embeddings as st_quantize
    except ImportError:  # older releases
        from sentence_transformers.quantization import quantize_embeddings as st_quantize

    from sse_np.eval.runner import _search_and_score

    rng = np.random.default_rng(4)
    words = "cat dog pie stock market recipe bark purr kitten apple share fell sleep day young".split()
    corpus = [{"_id": f"d{i}", "text": " ".join(rng.choice(words, 6))} for i in range(300)]
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choice(words, 3))} for i in range(20)]
    qrels = [(f"q{i}", f"d{rng.integers(300)}", 1) for i in range(20)]
    path = write_beir(tmp_path / "rand", corpus, queries, qrels)
    report = evaluate(model, [path], dims=(64, 16), precisions=("float32", "int8", "binary"))
    assert report["precisions"] == ["float32", "int8", "binary"]
    assert report["bytes_per_doc"] == {"float32": {64: 256, 16: 64}, "int8": {64: 64, 16: 16}, "binary": {64: 8, 16: 2}}
    assert report["mean_by_precision"]["float32"] == report["mean"]
    for p in ("int8", "binary"):
        for dim in (64, 16):
            assert set(report["mean_by_precision"][p][dim]) == set(METRICS)
    assert "nDCG@10 by precision" in format_report(report)
    plot_report(report, tmp_path / "p.png")  # quality against bytes per document
    assert (tmp_path / "p.png").stat().st_size > 0
    # int8 ranks by the integer dot product of sentence-transformers' codes (ranges from the corpus) before
    # rescoring the top 400: with fewer documents than that, the rescored order is the float order of the
    # dequantized rows, so every ranked document appears.
    data = load_beir(path)
    docs = model.encode(data.doc_texts, None, normalize=False)
    qv = model.encode(data.query_texts, None, normalize=False)
    _rows, run = _search_and_score(data, qv, docs, 16, 1024, 8192, "int8")
    unit = docs[:, :16] / np.linalg.norm(docs[:, :16], axis=1, keepdims=True)
    codes = st_quantize(unit, "int8")
    ranges = np.vstack([unit.min(0), unit.max(0)])
    deq = ranges[0] + (codes.astype(np.float32) + 128) * ((ranges[1] - ranges[0]) / 255)
    q = qv[:, :16] / np.linalg.norm(qv[:, :16], axis=1, keepdims=True)
    for qi, query_id in enumerate(data.query_ids):
        want = np.argsort(-(deq @ q[qi]), kind="stable")[:100]
        got = [data.doc_ids.index(d) for d in run[query_id]["doc_ids"]]
        assert len(got) == 100 and set(got[:10]) <= set(want[:20].tolist())
    with pytest.raises(ValueError, match="precision"):
        evaluate(model, [path], dims=(16,), precisions=("float16",))
