"""`evaluate(..., retrieval=...)` and `sse-np eval --retrieval`: one table per mode, every mode in the JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sse_np
from sse_np.cli import main
from sse_np.eval import evaluate, format_report, query_metrics, write_beir
from sse_np.index import Index

CORPUS = {
    "d1": "Aspirin reduces the risk of heart attacks in adults.",
    "d2": "The Eiffel tower is in Paris, France.",
    "d3": "Photosynthesis turns sunlight into chemical energy in plants.",
    "d4": "Heart disease is a leading cause of death worldwide.",
    "d5": "Volcanoes erupt when magma reaches the surface.",
}
QUERIES = {"q1": "does aspirin prevent heart attacks", "q2": "how do plants use sunlight", "q3": "famous towers"}
QRELS = {"q1": {"d1": 2, "d4": 1}, "q2": {"d3": 1}, "q3": {"d2": 1}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_beir(tmp_path_factory.mktemp("beir") / "tiny", CORPUS, QUERIES, QRELS)


def test_every_mode_is_reported(data):
    model = sse_np.default_model()
    report = evaluate(model, data, [64, 32], retrieval="dense,bm25,hybrid")
    assert report["retrieval"] == ["dense", "bm25", "hybrid"]
    by_mode = report["datasets"]["tiny"]["metrics_by_retrieval"]
    # The index's dense ranking is the evaluation's own exact search, by another code path.
    for dim in (64, 32):
        assert by_mode["dense"][dim] == pytest.approx(report["datasets"]["tiny"]["metrics"][dim])
    # BM25 nDCG@10, recomputed from the index's own bm25 ranking.
    index = Index(model)
    index.add(list(CORPUS.values()), list(CORPUS))
    ndcg = [
        query_metrics([h["id"] for h in index.search(QUERIES[q], k=5, mode="bm25")], QRELS[q])["ndcg@10"]
        for q in QUERIES
    ]
    assert by_mode["bm25"][64]["ndcg@10"] == pytest.approx(np.mean(ndcg))
    text = format_report(report)
    for mode in ("dense", "bm25", "hybrid"):
        assert f"== retrieval: {mode} ==" in text and f"{mode}: nDCG@10 by dimension" in text


def test_unknown_mode_is_refused(data):
    with pytest.raises(ValueError, match="retrieval mode must be one of"):
        evaluate(sse_np.default_model(), data, [64], retrieval="dense,sparse")


def test_cli_json_carries_every_mode(data, tmp_path):
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "sse_np", "eval", str(data), "--dims", "64", "--retrieval", "bm25,hybrid"]
    done = subprocess.run([*cmd, "--json", str(out), "-q"], capture_output=True, text=True, check=True)
    assert "== retrieval: hybrid ==" in done.stdout
    report = json.loads(out.read_text())
    assert set(report["mean_by_retrieval"]) == {"bm25", "hybrid"}
    assert set(report["mean_by_retrieval"]["hybrid"]["64"]) == {"ndcg@10", "mrr@10", "map@100", "recall@100"}


def _eval_json(tmp_path, folder, *extra: str) -> dict:
    out = tmp_path / "report.json"
    assert main(["eval", str(folder), "--dims", "64", "-q", "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_cli_split_and_per_query(data, tmp_path):
    """--split reads qrels/<SPLIT>.tsv (here judging q2 and q3 only); --per-query adds every query's metrics
    and ranking to the JSON, which has neither without it."""
    data = shutil.copytree(data, tmp_path / "tiny")
    (data / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td3\t1\nq3\td2\t1\n", encoding="utf-8")
    plain = _eval_json(tmp_path, data)["datasets"]["tiny"]
    assert plain["n_queries"] == 3 and "per_query" not in plain and "run" not in plain
    dev = _eval_json(tmp_path, data, "--split", "dev", "--per-query")
    assert dev["settings"]["split"] == "dev" and dev["datasets"]["tiny"]["n_queries"] == 2
    per_query, run = dev["datasets"]["tiny"]["per_query"]["64"], dev["datasets"]["tiny"]["run"]["64"]
    assert set(per_query) == set(run) == {"q2", "q3"}
    for qid, row in per_query.items():
        assert row == pytest.approx(query_metrics(run[qid]["doc_ids"], QRELS[qid]))
    mean = np.mean([row["ndcg@10"] for row in per_query.values()])
    assert dev["datasets"]["tiny"]["metrics"]["64"]["ndcg@10"] == pytest.approx(mean)


def test_cli_hybrid_weight_1_is_dense_and_0_is_bm25(data, tmp_path):
    """The fused score is weight * z(dense) + (1 - weight) * z(bm25): the ends give each ranking alone. Dense
    and BM25 rank this corpus differently, so no single weight (the default, say) can give both."""
    modes = "dense,bm25,hybrid"
    dense_end = _eval_json(tmp_path, data, "--retrieval", modes, "--hybrid-weight", "1")["mean_by_retrieval"]
    bm25_end = _eval_json(tmp_path, data, "--retrieval", modes, "--hybrid-weight", "0")["mean_by_retrieval"]
    assert dense_end["dense"] == bm25_end["dense"] != bm25_end["bm25"] == dense_end["bm25"]
    assert dense_end["hybrid"]["64"] == pytest.approx(dense_end["dense"]["64"])
    assert bm25_end["hybrid"]["64"] == pytest.approx(bm25_end["bm25"]["64"])


def test_cli_precision_adds_each_precision_and_its_bytes(data, tmp_path, capsys):
    report = _eval_json(tmp_path, data, "--precision", "float32,binary")
    assert report["precisions"] == ["float32", "binary"]
    assert report["bytes_per_doc"] == {"float32": {"64": 256}, "binary": {"64": 8}}  # 64 x 4 bytes; 64 bits
    by_precision = report["datasets"]["tiny"]["metrics_by_precision"]
    assert by_precision["float32"] == report["datasets"]["tiny"]["metrics"]
    assert set(by_precision["binary"]["64"]) == {"ndcg@10", "mrr@10", "map@100", "recall@100"}
    assert "nDCG@10 by precision" in capsys.readouterr().out


def test_cli_stemmer_ranks_stemmed_words(data, tmp_path):
    pytest.importorskip("Stemmer", reason="PyStemmer is the stem extra (in the test extra)")
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "sse_np", "eval", str(data), "--dims", "64", "--retrieval", "bm25"]
    subprocess.run([*cmd, "--stemmer", "english", "--json", str(out), "-q"], capture_output=True, check=True)
    report = json.loads(out.read_text())
    assert report["retrieval_stemmer"] == "english"
    stemmed = evaluate(sse_np.default_model(), data, [64], retrieval="bm25", stemmer="english")
    plain = evaluate(sse_np.default_model(), data, [64], retrieval="bm25")
    got = report["mean_by_retrieval"]["bm25"]["64"]
    assert got == pytest.approx(stemmed["mean_by_retrieval"]["bm25"][64])
    assert got != pytest.approx(plain["mean_by_retrieval"]["bm25"][64])  # "towers", "plants" meet their stems


def test_cli_lexical_pieces_counts_wordpieces(tmp_path):
    """Words and pieces by default; "photos", a WordPiece of "photosynthesis", matches unless --lexical words."""
    corpus = {"a": "A dog sleeps in the sun.", "b": "Holiday photos of sunsets."}
    data = write_beir(tmp_path / "pieces", corpus, {"q": "photosynthesis"}, {"q": {"b": 1}})
    default = _eval_json(tmp_path, data, "--retrieval", "bm25")
    words = _eval_json(tmp_path, data, "--retrieval", "bm25", "--lexical", "words")
    pieces = _eval_json(tmp_path, data, "--retrieval", "bm25", "--lexical", "pieces")
    lexical = [r["retrieval_lexical"] for r in (default, words, pieces)]
    assert lexical == ["words+pieces", "words", "pieces"]
    assert pieces["mean_by_retrieval"]["bm25"]["64"]["ndcg@10"] == 1.0
    assert default["mean_by_retrieval"]["bm25"]["64"]["ndcg@10"] == 1.0
    assert words["mean_by_retrieval"]["bm25"]["64"]["ndcg@10"] < 1.0  # no word in common: "b" is not first
    assert main(["eval", str(data), "--retrieval", "bm25", "--lexical", "pieces", "--stemmer", "english"]) == 1
