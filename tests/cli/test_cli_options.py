"""``--threads`` and ``--model`` of encode, eval and warmup, and ``--batch-size``, reach the model that does the work.

The vectors do not show the threads or the batch size (and a warmup shows no vectors), so a spy on
:class:`sse_np.SSEModel` records the model's ``threads`` and folder, the batch size and the number of texts
each time the command encodes or warms up.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from helpers.cli import without_compile_notice
from helpers.models import make_random_model
from sse_np import SSEModel
from sse_np.cli import main
from sse_np.eval import write_beir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("threads_model"), dim=16, seed=4)


class _Calls(list):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[Path] = []
        self.sizes: list[int] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None, int | None]]:
    """(method, the model's threads, batch_size) of every encode and warmup, NumPy back-end (no compile);
    ``calls.paths``: the model folders, ``calls.sizes``: the number of texts of each encode."""
    monkeypatch.delenv("SSE_NP_THREADS", raising=False)
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    seen = _Calls()
    real_encode, real_warmup = SSEModel.encode, SSEModel.warmup

    def encode(self, texts, *args, **kwargs):
        seen.append(("encode", self.threads, kwargs.get("batch_size")))
        seen.paths.append(Path(self.path))
        seen.sizes.append(len(texts))
        return real_encode(self, texts, *args, **kwargs)

    def warmup(self):
        seen.append(("warmup", self.threads, None))
        seen.paths.append(Path(self.path))
        return real_warmup(self)

    monkeypatch.setattr(SSEModel, "encode", encode)
    monkeypatch.setattr(SSEModel, "warmup", warmup)
    return seen


def test_encode_threads_and_model(model_dir, tmp_path, calls) -> None:
    src = tmp_path / "t.txt"
    src.write_text("one\ntwo\n", encoding="utf-8")
    args = ["encode", str(src), "-o", str(tmp_path / "v.npy"), "--model", str(model_dir)]
    assert main(args) == 0
    assert main([*args, "--threads", "1"]) == 0
    assert calls == [("encode", None, 1024), ("encode", 1, 1024)]  # None: all cores
    assert calls.paths == [model_dir] * 2


def test_warmup_model_and_threads(model_dir, calls, capsys) -> None:
    assert main(["warmup", "--model", str(model_dir), "--threads", "1"]) == 0
    assert calls == [("warmup", 1, None)] and calls.paths == [model_dir]
    assert capsys.readouterr().out == "backend numpy\n"


def test_eval_model_threads_and_batch_size(model_dir, tmp_path, calls) -> None:
    data = write_beir(tmp_path / "tiny", {"d1": "a cat", "d2": "a dog"}, {"q1": "cat"}, {"q1": {"d1": 1}})
    assert main(["eval", str(data), "--model", str(model_dir), "--dims", "8", "-q", "--threads", "1"]) == 0
    assert main(["eval", str(data), "--model", str(model_dir), "--dims", "8", "-q", "--batch-size", "7"]) == 0
    assert calls == [("encode", 1, 1024)] * 2 + [("encode", None, 7)] * 2  # documents, then queries
    assert calls.paths == [model_dir] * 4


def test_encode_batch_size(model_dir, tmp_path, calls) -> None:
    """--batch-size is also the number of lines read per chunk: 5 lines in chunks of 2, 2 and 1."""
    src = tmp_path / "t.txt"
    src.write_text("one\ntwo\nthree\nfour\nfive\n", encoding="utf-8")
    args = ["encode", str(src), "-o", str(tmp_path / "v.npy"), "--model", str(model_dir), "--batch-size", "2"]
    assert main(args) == 0
    assert calls == [("encode", None, 2)] * 3 and calls.sizes == [2, 2, 1]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal: progress is then on by default."""

    def isatty(self) -> bool:
        return True


def test_encode_no_progress_on_a_terminal(model_dir, tmp_path, monkeypatch) -> None:
    """On a terminal the bar is on by default; --no-progress leaves only the closing line."""
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    src = tmp_path / "t.txt"
    src.write_text("one\ntwo\n", encoding="utf-8")
    args = ["encode", str(src), "-o", str(tmp_path / "v.npy"), "--model", str(model_dir)]
    for extra, shown in (([], True), (["--no-progress"], False)):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        assert main([*args, *extra]) == 0
        lines = without_compile_notice(terminal.getvalue()).splitlines()
        assert lines[-1].startswith("wrote 2 x 16 float32 (npy)")
        assert any(line.startswith("encode") for line in lines) is shown, lines


def test_threads_leave_the_shared_default_model_alone(monkeypatch, capsys) -> None:
    """--threads without --model applies to the command's own copy of the default model: a library caller
    in the same process keeps the default model's setting."""
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    monkeypatch.delenv("SSE_NP_THREADS", raising=False)
    import sse_np

    before = sse_np.default_model().threads
    assert main(["warmup", "--threads", "1"]) == 0
    assert sse_np.default_model().threads == before != 1
