"""The options of ``sse-np index build`` and ``sse-np index search`` that tests/cli/test_cli_index.py does not
reach: each one changes what the command does, and each test fails when its option is ignored.

``--threads`` and ``--model`` do not show in the results, so a spy on :class:`sse_np.SSEModel` records the
model's folder and ``threads`` and the number of texts each time the command encodes (NumPy back-end, so
nothing compiles).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.models import make_random_model
from sse_np import Index, SSEModel, load
from sse_np.cli import main

TEXTS = ["the cat sat on the mat", "stock markets fell sharply", "a recipe for chocolate cake", "the of and a"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("index_model"), dim=16, seed=5)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.data"  # no suffix the readers know: --input-format must say what it is
    path.write_text("".join(t + "\n" for t in TEXTS), encoding="utf-8")
    return path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, int | None, int]]:
    """(model folder, the model's threads, number of texts) of every encode."""
    monkeypatch.delenv("SSE_NP_THREADS", raising=False)
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    seen: list[tuple[Path, int | None, int]] = []
    real_encode = SSEModel.encode

    def encode(self, texts, *args, **kwargs):
        seen.append((Path(self.path), self.threads, len(texts)))
        return real_encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(SSEModel, "encode", encode)
    return seen


def _build(corpus: Path, out: Path, model_dir: Path, *extra: str) -> Index:
    args = ["index", "build", str(corpus), "-o", str(out), "--input-format", "lines", "--model", str(model_dir)]
    assert main([*args, *extra]) == 0
    return Index.load(out, load(model_dir))


def test_build_input_format_model_threads_and_batch_size(corpus, model_dir, tmp_path, calls) -> None:
    """--batch-size is the records per chunk (4 lines in 3 + 1); --model and --threads reach the encoder."""
    _build(corpus, tmp_path / "ix", model_dir, "--threads", "1", "--batch-size", "3")
    assert calls == [(model_dir, 1, 3), (model_dir, 1, 1)]


def test_build_input_format_overrides_the_suffix(model_dir, tmp_path) -> None:
    """JSON records in a .txt file: read as lines, the field name "text" is a term of every document; read
    with --input-format jsonl, only the field's values are."""
    src = tmp_path / "corpus.txt"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:3]), encoding="utf-8")
    for fmt, matches in (("lines", 3), ("jsonl", 0)):
        out = tmp_path / fmt
        assert main(["index", "build", str(src), "-o", str(out), "--model", str(model_dir), "--input-format", fmt]) == 0
        hits = Index.load(out, load(model_dir)).search("text", k=3, mode="bm25")
        assert sum(h["score"] > 0 for h in hits) == matches, (fmt, hits)


def test_build_no_stopwords_keeps_them_in_bm25(corpus, model_dir, tmp_path, calls) -> None:
    """The fourth text is stopwords only: BM25 finds it with --no-stopwords and not without."""
    for extra, found in (((), False), (("--no-stopwords",), True)):
        out = tmp_path / f"ix{len(extra)}"
        index = _build(corpus, out, model_dir, *extra)
        assert index.stopwords is not found
        hits = index.search("the of and a", k=4, mode="bm25")
        assert any(h["id"] == 3 and h["score"] > 0 for h in hits) is found, hits


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal: progress is then on by default."""

    def isatty(self) -> bool:
        return True


def test_build_progress_and_no_progress(corpus, model_dir, tmp_path, monkeypatch) -> None:
    """On a terminal the bar is on by default and --no-progress turns it off; elsewhere --progress turns it on."""
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    args = ["index", "build", str(corpus), "--input-format", "lines", "--model", str(model_dir)]
    for n, (terminal, extra, shown) in enumerate(
        ((True, [], True), (True, ["--no-progress"], False), (False, [], False), (False, ["--progress"], True))
    ):
        stderr = _Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stderr)
        assert main([*args, "-o", str(tmp_path / f"ix{n}"), *extra]) == 0
        lines = stderr.getvalue().splitlines()
        assert lines[-1].startswith("indexed 4 documents")
        assert any(line.startswith("index") for line in lines[:-1]) is shown, (extra, lines)


def test_search_model_threads_and_dim(corpus, model_dir, tmp_path, calls, capsys) -> None:
    """--model and --threads reach the query encoder; --dim ranks by a narrower prefix of the vectors."""
    _build(corpus, tmp_path / "ix", model_dir)
    calls.clear()
    capsys.readouterr()
    search = ["index", "search", str(tmp_path / "ix"), "chocolate", "--mode", "dense", "--k", "4", "--json"]
    assert main([*search, "--model", str(model_dir), "--threads", "1"]) == 0
    assert calls == [(model_dir, 1, 1)]
    full = json.loads(capsys.readouterr().out)
    assert main([*search, "--model", str(model_dir), "--dim", "4"]) == 0
    narrow = json.loads(capsys.readouterr().out)
    enc = load(model_dir).encode([*TEXTS, "chocolate"], dim=4)
    want = np.argsort(-(enc[:4] @ enc[4]), kind="stable")
    assert [h["id"] for h in narrow] == want.tolist()
    assert [h["score"] for h in narrow] != [h["score"] for h in full]
