"""`sse-np index build` (lines, JSONL, Parquet) and `sse-np index search` (text and JSON)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sse_np
from sse_np import Index

DOCS = [
    {"_id": "cat", "text": "The cat sat on the mat."},
    {"_id": "stock", "text": "Stock markets fell sharply today."},
    {"_id": "cake", "text": "A recipe for chocolate cake with cream."},
]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sse_np", *args], capture_output=True, text=True, check=check)


@pytest.fixture()
def jsonl(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return path


def test_build_jsonl_and_search(jsonl, tmp_path):
    out = tmp_path / "ix"
    done = _cli("index", "build", str(jsonl), "-o", str(out), "--id-field", "_id", "--progress")
    assert "indexed 3 documents" in done.stderr and "index" in done.stderr
    loaded = Index.load(out)
    assert loaded.ids == ["cat", "stock", "cake"]
    hits = json.loads(_cli("index", "search", str(out), "chocolate dessert", "--k", "2", "--json").stdout)
    assert hits == loaded.search("chocolate dessert", k=2)
    assert hits[0]["id"] == "cake"
    text = _cli("index", "search", str(out), "stock market", "--mode", "bm25", "--k", "1").stdout
    assert text.split()[0] == "1" and text.split()[-1] == "stock"
    many = json.loads(_cli("index", "search", str(out), "cat", "cake", "--k", "1", "--json").stdout)
    assert [h[0]["id"] for h in many] == ["cat", "cake"]


def test_build_lines_gives_row_numbers(tmp_path):
    src = tmp_path / "corpus.txt"
    src.write_text("".join(d["text"] + "\n" for d in DOCS))
    _cli("index", "build", str(src), "-o", str(tmp_path / "ix"), "--precision", "int8", "--dim", "256")
    loaded = Index.load(tmp_path / "ix")
    assert loaded.ids == [0, 1, 2] and loaded.precision == "int8" and loaded.dim == 256


def test_build_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc": [d["_id"] for d in DOCS], "body": [d["text"] for d in DOCS]}), path)
    _cli("index", "build", str(path), "-o", str(tmp_path / "ix"), "--field", "body", "--id-field", "doc")
    assert Index.load(tmp_path / "ix").ids == ["cat", "stock", "cake"]


def test_bad_id_is_named_by_line(tmp_path):
    src = tmp_path / "corpus.jsonl"
    src.write_text(json.dumps(DOCS[0]) + "\n" + json.dumps({"text": "no id"}) + "\n")
    done = _cli("index", "build", str(src), "-o", str(tmp_path / "ix"), "--id-field", "_id", check=False)
    assert done.returncode != 0
    assert f"{src}:2" in done.stderr and "--id-field '_id'" in done.stderr
    assert not (tmp_path / "ix").exists()


def test_search_refuses_a_corrupt_index(jsonl, tmp_path):
    out = tmp_path / "ix"
    _cli("index", "build", str(jsonl), "-o", str(out))
    (out / "vectors.npy").write_bytes(b"junk")
    done = _cli("index", "search", str(out), "cat", check=False)
    assert done.returncode != 0 and "vectors.npy" in done.stderr and "corrupt" in done.stderr


def test_default_model_is_what_load_uses(jsonl, tmp_path):
    _cli("index", "build", str(jsonl), "-o", str(tmp_path / "ix"))
    assert len(Index.load(tmp_path / "ix", sse_np.default_model())) == 3


def test_build_with_stemmer(jsonl, tmp_path):
    pytest.importorskip("Stemmer", reason="PyStemmer is the stem extra (in the test extra)")
    out = tmp_path / "ix"
    done = _cli("index", "build", str(jsonl), "-o", str(out), "--id-field", "_id", "--stemmer", "english")
    assert "BM25 on english stems" in done.stderr
    assert Index.load(out).stemmer == "english"
    hits = json.loads(_cli("index", "search", str(out), "cakes recipes", "--mode", "bm25", "--k", "1", "--json").stdout)
    assert hits[0]["id"] == "cake" and hits[0]["score"] > 0  # "cakes" finds "cake" only through the stem


def test_build_lexical_default_words_or_pieces(tmp_path):
    """Words and pieces by default; --lexical words or pieces alone ("photos" is a piece of "photosynthesis",
    no word of it); pieces with a stemmer is refused."""
    src = tmp_path / "corpus.txt"
    src.write_text("A dog sleeps in the sun.\nHoliday photos of sunsets.\n")
    default, words, pieces = tmp_path / "default", tmp_path / "words", tmp_path / "pieces"
    assert "BM25 on words+pieces" in _cli("index", "build", str(src), "-o", str(default)).stderr
    assert "BM25 on words)" in _cli("index", "build", str(src), "-o", str(words), "--lexical", "words").stderr
    assert "BM25 on pieces" in _cli("index", "build", str(src), "-o", str(pieces), "--lexical", "pieces").stderr
    loaded = [Index.load(p).lexical for p in (default, words, pieces)]
    assert loaded == ["words+pieces", "words", "pieces"]
    assert json.loads((pieces / "manifest.json").read_text())["version"] == 1
    query = ["index", "search", "photosynthesis", "--mode", "bm25", "--k", "1", "--json"]
    for folder in (pieces, default):
        hit = json.loads(_cli(*query[:2], str(folder), *query[2:]).stdout)[0]
        assert hit["id"] == 1 and hit["score"] > 0
    assert json.loads(_cli(*query[:2], str(words), *query[2:]).stdout)[0]["score"] == 0.0
    both = ("--lexical", "pieces", "--stemmer", "english")
    bad = _cli("index", "build", str(src), "-o", str(tmp_path / "bad"), *both, check=False)
    assert bad.returncode == 1 and "stemming applies to whole words" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_parser_stemmers_and_tokens_are_the_index_ones():
    from sse_np.cli import parser
    from sse_np.index import lexical

    assert parser._STEMMERS == lexical.STEMMERS
    assert parser._LEXICAL == lexical.LEXICAL
