"""Tests of the ``sse-np`` command line (sse_np.cli and ``python -m sse_np``)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sse_np
from conftest import make_random_model
from sse_np.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random full-precision SSE checkpoint, D=32, bert-base-uncased vocabulary."""
    return make_random_model(tmp_path_factory.mktemp("cli_model"), dim=32, seed=7)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> sse_np.SSEModel:
    return sse_np.load(model_dir)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = ["cats purr softly", "dogs bark loudly", "stock prices fell", "apple pie recipe", "kittens are young cats"]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(docs)),
        encoding="utf-8",
    )
    queries = ["do cats purr", "why dogs bark", "how to bake a pie"]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(queries)), encoding="utf-8"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\td0\t2\nq0\td4\t1\nq1\td1\t1\nq2\td3\t1\n", encoding="utf-8"
    )
    return folder


def _run_module(args: list[str], env_extra: dict[str, str] | None = None, stdin: str | None = None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "sse_np", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------


def test_info(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    fields = {line[:16].strip(): line[16:].strip() for line in out.splitlines()}
    assert fields["path"] == str(model_dir)
    assert fields["layout"] == "full" and fields["dtype"] == "float32"
    assert fields["vocab_size (V)"] == "30522" and fields["dim (D)"] == "32"


def test_python_m_uses_default_model_from_env(model_dir: Path) -> None:
    done = _run_module(["info"], {"SSE_NP_MODEL": str(model_dir)})
    assert done.returncode == 0, done.stderr
    assert str(model_dir) in done.stdout and "30522" in done.stdout


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sse-np: error: ") and "absent" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["eval"], ["eval", "x", "--dims", "a,b"], ["eval", "x", "--dims", "0"], ["encode"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    capsys.readouterr()


# --------------------------------------------------------------------------
# encode
# --------------------------------------------------------------------------


def test_encode_file(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    texts = ["first line", "", "zweite Zeile \u2028 with a unicode separator", "last\r"]
    src = tmp_path / "texts.txt"
    src.write_bytes("\n".join(texts).encode("utf-8") + b"\n")
    out = tmp_path / "vecs.npy"
    assert main(["encode", str(src), "-o", str(out), "--dim", "16", "--model", str(model_dir)]) == 0
    got = np.load(out)
    one = tmp_path / "one_thread.npy"
    assert main(["encode", str(src), "-o", str(one), "--dim", "16", "--model", str(model_dir), "--threads", "1"]) == 0
    np.testing.assert_array_equal(np.load(one), got)
    assert got.shape == (4, 16) and got.dtype == np.float32
    # "\r\n" line ends are stripped; the Unicode separator stays inside its text
    expected = model.encode(["first line", "", "zweite Zeile \u2028 with a unicode separator", "last"], dim=16)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_encode_stdin_raw(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("alpha beta\ngamma"))
    out = tmp_path / "raw.npy"
    assert main(["encode", "-o", str(out), "--no-normalize", "--model", str(model_dir)]) == 0
    got = np.load(out)
    assert got.shape == (2, 32)
    np.testing.assert_allclose(got, model.encode(["alpha beta", "gamma"], normalize=False), atol=1e-6)


def test_encode_stdin_subprocess(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npy"
    done = _run_module(["encode", "-", "-o", str(out), "--dim", "8", "--model", str(model_dir)], stdin="caf\u00e9 au lait\n")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(out), model.encode(["caf\u00e9 au lait"], dim=8), atol=1e-6)


def test_encode_dim_too_large(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.txt"
    src.write_text("x\n", encoding="utf-8")
    assert main(["encode", str(src), "-o", str(tmp_path / "o.npy"), "--dim", "64", "--model", str(model_dir)]) == 1
    assert "exceeds the model's native dimension 32" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()


# --------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------


def test_eval_table_json_plot(model_dir: Path, tiny: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (plot extra) not installed")
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    argv = ["eval", str(tiny), "--dims", "32,16,8", "--model", str(model_dir), "--json", str(out_json),
            "--plot", str(out_png)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "nDCG@10 by dimension" in captured.out and "Recall@100 by dimension" in captured.out
    assert "tiny: encoded 5 docs" in captured.err  # progress goes to stderr
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert report["dims"] == [32, 16, 8]
    assert set(report["datasets"]["tiny"]["metrics"]) == {"32", "16", "8"}
    assert report["model"]["path"] == str(model_dir)
    for name in ("sse_np", "numpy", "numba", "tokenizers", "python"):
        assert report["versions"][name]
    ndcg = report["datasets"]["tiny"]["metrics"]["32"]["ndcg@10"]
    assert f"{ndcg:.4f}" in captured.out
    assert out_png.read_bytes()[:4] == b"\x89PNG"


def test_eval_default_dims_and_quiet(model_dir: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tiny), "--model", str(model_dir), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    header = captured.out.splitlines()[captured.out.splitlines().index("nDCG@10 by dimension") + 1]
    assert header.split() == ["dataset", "32"]  # default 512,...,32 cut to D=32


def test_eval_bad_data_names_file_and_line(model_dir: Path, tiny: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with open(tiny / "qrels" / "test.tsv", "a", encoding="utf-8") as fh:
        fh.write("q0\tmissing-doc\t1\n")
    assert main(["eval", str(tiny), "--model", str(model_dir), "--dims", "8"]) == 1
    err = capsys.readouterr().err
    assert "test.tsv:6: corpus-id 'missing-doc' is not in corpus.jsonl" in err


def test_eval_plot_without_matplotlib_fails_early(model_dir: Path, tiny: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["eval", str(tiny), "--model", str(model_dir), "--plot", str(tmp_path / "p.png")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "pip install 'sse_np[plot]'" in captured.err
    assert captured.out == ""  # failed before evaluating


def test_quantize_writes_loadable_q4(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "q4"
    assert main(["quantize", str(out), "--model", str(model_dir)]) == 0
    q4 = sse_np.load(out)
    assert (q4.layout, q4.dim, q4.vocab_size) == ("q4", model.dim, model.vocab_size)
    a, b = q4.encode("a quantized model"), model.encode("a quantized model")
    assert float(a @ b) > 0.95  # 4-bit rounding keeps the direction
    assert main(["quantize", str(tmp_path / "again"), "--model", str(out)]) == 1  # already 4-bit
