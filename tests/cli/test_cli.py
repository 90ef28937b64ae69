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
from helpers.cli import without_compile_notice
from helpers.models import make_random_model
from helpers.paths import REPO
from sse_np.cli import main


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
    err = without_compile_notice(capsys.readouterr().err)
    assert err.startswith("sse-np: error: ") and "absent" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        [],
        ["eval"],
        ["eval", "x", "--dims", "a,b"],
        ["eval", "x", "--dims", "0"],
        ["encode"],
        ["encode", "x", "-o", "y.npy", "--format", "csv"],
        ["info", "--bogus"],
        ["download"],
    ):
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


def test_encode_stdin_raw(
    model: sse_np.SSEModel, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("alpha beta\ngamma"))
    out = tmp_path / "raw.npy"
    assert main(["encode", "-o", str(out), "--no-normalize", "--model", str(model_dir)]) == 0
    got = np.load(out)
    assert got.shape == (2, 32)
    np.testing.assert_allclose(got, model.encode(["alpha beta", "gamma"], normalize=False), atol=1e-6)


def test_encode_stdin_subprocess(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npy"
    done = _run_module(
        ["encode", "-", "-o", str(out), "--dim", "8", "--model", str(model_dir)], stdin="caf\u00e9 au lait\n"
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(out), model.encode(["caf\u00e9 au lait"], dim=8), atol=1e-6)


def test_encode_dim_too_large(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.txt"
    src.write_text("x\n", encoding="utf-8")
    assert main(["encode", str(src), "-o", str(tmp_path / "o.npy"), "--dim", "64", "--model", str(model_dir)]) == 1
    assert "exceeds the model's native dimension 32" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _read_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_encode_jsonl_in_jsonl_out_keeps_ids(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    docs = [{"_id": "d1", "body": "cats purr", "x": 1}, {"_id": "d2", "body": ""}, {"_id": 3, "body": "caf\u00e9"}]
    src = _jsonl(tmp_path / "docs.jsonl", docs)
    out = tmp_path / "v.jsonl"
    assert main(["encode", str(src), "--field", "body", "-o", str(out), "--dim", "16", "--model", str(model_dir)]) == 0
    rows = _read_jsonl(out.read_text(encoding="utf-8"))
    assert [r["_id"] for r in rows] == ["d1", "d2", 3] and all(set(r) == {"_id", "embedding"} for r in rows)
    # 9 significant digits read back as the same float32 bits
    got = np.array([r["embedding"] for r in rows], dtype=np.float32)
    assert got.tobytes() == model.encode([d["body"] for d in docs], 16).tobytes()
    # --keep adds fields after the id (as Parquet input does); .npy output of the same input has the same rows
    assert main(["encode", str(src), "--field", "body", "--keep", "x", "-o", str(out), "--model", str(model_dir)]) == 0
    assert [list(r) for r in _read_jsonl(out.read_text(encoding="utf-8"))] == [
        ["_id", "x", "embedding"],
        ["_id", "embedding"],
        ["_id", "embedding"],
    ]
    npy = tmp_path / "v.npy"
    assert main(["encode", str(src), "--field", "body", "-o", str(npy), "--dim", "16", "--model", str(model_dir)]) == 0
    assert np.load(npy).tobytes() == got.tobytes()


def test_encode_gzip_and_chunk_boundaries(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    import gzip

    texts = [f"line {i} " + "word " * (i % 13) for i in range(20_000)]  # > 2 chunks of 8192 lines
    src = tmp_path / "many.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    out = tmp_path / "many.npy"
    assert (
        main(["encode", str(src), "-o", str(out), "--dim", "8", "--batch-size", "333", "--model", str(model_dir)]) == 0
    )
    assert np.load(out).tobytes() == model.encode(texts, 8).tobytes()


def test_each_command_loads_only_its_own_modules(model_dir: Path, tmp_path: Path) -> None:
    """`sse-np encode` runs without the evaluation, the server or the other commands' modules."""
    src = tmp_path / "in.txt"
    src.write_text("one\ntwo\n", encoding="utf-8")
    argv = ["encode", str(src), "-o", str(tmp_path / "out.npy"), "--model", str(model_dir)]
    code = (
        "import sys; from sse_np.cli import main\n"
        f"assert main({argv!r}) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sse_np.eval', 'sse_np.serve', 'sse_np.cli.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    parsing = ["sse_np.cli.arguments", "sse_np.cli.parser", "sse_np.cli.parser_servers"]  # argparse only
    assert done.stdout.strip() == str(sorted(["sse_np.cli.common", "sse_np.cli.encode", *parsing]))


def test_read_chunks_streams(tmp_path: Path) -> None:
    """The reader holds one chunk at a time: the first arrives after reading a small part of the file."""
    from sse_np.bulk.readers import read_chunks
    from sse_np.progress import Progress

    src = tmp_path / "big.txt"
    src.write_text("".join(f"text number {i}\n" for i in range(50_000)), encoding="utf-8")
    progress = Progress(enabled=False)
    chunks = read_chunks(str(src), "lines", chunk_lines=1000, progress=progress)
    first = next(chunks)
    assert len(first.texts) == 1000 and first.texts[0] == "text number 0" and first.first_line == 1
    assert progress.bytes_read < src.stat().st_size / 10
    rest = list(chunks)
    assert sum(len(c.texts) for c in rest) == 49_000 and rest[-1].texts[-1] == "text number 49999"


def test_encode_jsonl_to_stdout_subprocess(model: sse_np.SSEModel, model_dir: Path) -> None:
    stdin = json.dumps({"id": "q1", "text": "what is a cat"}) + "\n" + json.dumps({"id": "q2", "text": "dogs"}) + "\n"
    done = _run_module(
        ["encode", "-", "--input-format", "jsonl", "-o", "-", "--dim", "8", "--model", str(model_dir)], stdin=stdin
    )
    assert done.returncode == 0, done.stderr
    rows = _read_jsonl(done.stdout)
    assert [r["id"] for r in rows] == ["q1", "q2"]
    got = np.array([r["embedding"] for r in rows], dtype=np.float32)
    assert got.tobytes() == model.encode(["what is a cat", "dogs"], 8).tobytes()
    assert "wrote 2 x 8 float32 (jsonl) to stdout" in done.stderr and "encoded" not in done.stderr  # no TTY


BAD_INPUTS = [
    ("bad.jsonl", b'{"text": "ok"}\n{"text": "ok too"}\n{"text": oops}\n', "bad.jsonl:3: invalid JSON"),
    ("bad.jsonl", b'{"text": "ok"}\n{"body": "no text"}\n', "bad.jsonl:2: no field 'text' (fields: 'body')"),
    ("bad.jsonl", b'{"text": "ok"}\n{"text": 42}\n', "bad.jsonl:2: field 'text' is int, expected a string"),
    ("bad.jsonl", b'{"text": "ok"}\n\n{"text": "ok"}\n', "bad.jsonl:2: empty line"),
    ("bad.jsonl", b'{"text": "ok"}\n["text"]\n', "bad.jsonl:2: expected a JSON object, got list"),
    (
        "bad.jsonl",
        b'{"text": "ok"}\n{"text": "lone \\ud800 surrogate"}\n',
        "bad.jsonl:2: the text cannot be tokenized: it contains a lone surrogate",
    ),
    ("bad.txt", b"fine\nalso fine\nbroken \xff byte\n", "bad.txt:3: not valid UTF-8 (byte 0xff at column 8)"),
]


@pytest.mark.parametrize("name,data,message", BAD_INPUTS)
def test_encode_bad_line_names_it_and_keeps_the_old_output(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, message: str
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.npy"
    np.save(out, np.arange(6, dtype=np.float32))  # a previous result
    before = out.read_bytes()
    assert main(["encode", str(src), "-o", str(out), "--batch-size", "1", "--model", str(model_dir)]) == 1
    err = without_compile_notice(capsys.readouterr().err)
    assert err.startswith("sse-np: error: ") and message in err, err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.npy"])  # no partial file left


def test_encode_output_errors(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "t.txt"
    src.write_text("x\n", encoding="utf-8")
    cases = [
        (["-o", str(tmp_path / "vectors.bin")], "cannot tell the output format"),
        (["-o", "-", "--format", "npy"], "npy output needs a file"),
        (["-o", str(tmp_path)], "is a folder"),
        (["-o", str(tmp_path / "missing" / "v.npy")], "does not exist"),
        (["-o", str(tmp_path / "v.npy"), "--field", "text", "--input-format", "lines"], "apply to JSONL input"),
        (["-o", str(tmp_path / "v.npy"), "--model", str(tmp_path / "nowhere")], "nowhere"),
    ]
    for extra, message in cases:
        args = ["encode", str(src), *extra]
        if "--model" not in extra:
            args += ["--model", str(model_dir)]
        assert main(args) == 1, extra
        assert message in capsys.readouterr().err, extra
    assert main(["encode", str(tmp_path / "absent.txt"), "-o", str(tmp_path / "v.npy"), "--model", str(model_dir)]) == 1
    assert "absent.txt: no such file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_encode_empty_input_and_progress(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "empty.txt"
    src.write_bytes(b"")
    out = tmp_path / "e.npy"
    assert main(["encode", str(src), "-o", str(out), "--dim", "8", "--model", str(model_dir), "--progress"]) == 0
    assert np.load(out).shape == (0, 8)
    src.write_text("a\nb\nc\n", encoding="utf-8")
    assert main(["encode", str(src), "-o", str(out), "--model", str(model_dir), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "encode 6/6 B (100.0%)" in err and "3 texts" in err  # plain lines: stderr is not a terminal
    assert "\r" not in err
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # a normal file mode, not mkstemp's


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_shows_on_a_terminal_by_default(model_dir: Path, tmp_path: Path) -> None:
    import pty

    src = tmp_path / "t.txt"
    src.write_text("".join(f"text {i}\n" for i in range(3000)), encoding="utf-8")
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sse_np",
                "encode",
                str(src),
                "-o",
                str(tmp_path / "v.npy"),
                "--model",
                str(model_dir),
            ],
            stderr=slave,
            stdout=subprocess.DEVNULL,
            cwd=REPO,
            timeout=300,
        )
        os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert done.returncode == 0
    text = err.decode()
    assert "100%|" in text and "3,000 texts" in text and "\r" in text  # tqdm's bar, redrawn in place


def _peak_rss_mib(lines: int, model_dir: Path, tmp_path: Path) -> float:
    src = tmp_path / f"{lines}.txt"
    with src.open("w", encoding="utf-8") as fh:
        # Words recur (as in real text), so the tokenizer's chunk cache (bounded at
        # 200k chunks) stays small and only the streaming is measured.
        fh.writelines(f"text number {i % 1000} about things\n" for i in range(lines))
    code = (
        "import resource, sys; from sse_np.cli import main; "
        f"assert main(['encode', {str(src)!r}, '-o', {str(tmp_path / 'v.npy')!r}, '--dim', '32', "
        f"'--model', {str(model_dir)!r}, '--threads', '1']) == 0; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**os.environ, "SSE_NP_BACKEND": "numpy"},
    )
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "v.npy", mmap_mode="r").shape == (lines, 32)
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_encode_memory_does_not_grow_with_the_input(model_dir: Path, tmp_path: Path) -> None:
    """10x the lines (400k: ~80 MB of texts and vectors if held at once) adds next to nothing to peak RSS."""
    small = _peak_rss_mib(40_000, model_dir, tmp_path)
    large = _peak_rss_mib(400_000, model_dir, tmp_path)
    assert large - small < 25, (small, large)


def test_encode_to_a_closed_pipe_is_quiet(model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "t.txt"
    src.write_text("".join(f"text {i}\n" for i in range(50_000)), encoding="utf-8")
    cmd = f"{sys.executable} -m sse_np encode {src} -o - --dim 4 --model {model_dir} | head -n 1"
    done = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "Error" not in done.stderr


# --------------------------------------------------------------------------
# info, warmup, bench
# --------------------------------------------------------------------------


def test_info_json_engine_facts(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", str(model_dir), "--json", "--warmup"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "full" and info["dim (D)"] == 32 and info["vocab_size (V)"] == 30522
    assert info["table bytes"] == 30522 * 32 * 4
    assert info["tokenizer"]["lowercase"] is True and info["tokenizer"]["numba fast path"] == "supported"
    assert info["tokenizer"]["truncation"] == "128 tokens, keep start"
    if importlib.util.find_spec("numba") and not os.environ.get("SSE_NP_DISABLE_NUMBA"):
        assert info["backend"] == "auto (now: numba)"
        assert Path(info["numba cache"]).is_dir()
    assert info["sse_np"] == sse_np.__version__


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")
def test_info_before_numba_loads_says_when_it_will(model_dir: Path) -> None:
    """Without --warmup nothing is broken: NumPy answers now, numba loads at the first encode, into the cache
    folder that `warmup` then reports."""
    env = {"SSE_NP_DISABLE_NUMBA": "", "SSE_NP_BACKEND": ""}
    plain = _run_module(["info", "--model", str(model_dir)], env)
    assert plain.returncode == 0, plain.stderr
    fields = {line[:16].strip(): line[16:].strip() for line in plain.stdout.splitlines()}
    assert fields["backend"] == "auto (now: numpy; numba loads in the background at the first encode)"
    assert "None" not in plain.stdout
    info = json.loads(_run_module(["info", "--json", "--model", str(model_dir)], env).stdout)
    warm = _run_module(["warmup", "--model", str(model_dir)], env)
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.strip() == f"backend numba; numba kernels cached in {info['numba cache']}"
    assert Path(info["numba cache"]).is_dir()


def test_info_and_warmup_without_numba(model_dir: Path) -> None:
    env = {"SSE_NP_DISABLE_NUMBA": "1", "SSE_NP_MODEL": str(model_dir)}
    done = _run_module(["info", "--json"], env)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["backend"] == "numpy" and info["numba"].startswith("off") and info["numba cache"] is None
    plain = _run_module(["info"], env).stdout
    assert "None" not in plain and "numba cache     not used (the NumPy back-end compiles nothing)" in plain
    done = _run_module(["warmup"], env)
    assert done.returncode == 0 and done.stdout.strip() == "backend numpy"


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")
def test_warmup_loads_numba_kernels(model_dir: Path) -> None:
    done = _run_module(["warmup", "--model", str(model_dir)], {"SSE_NP_DISABLE_NUMBA": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backend numba; numba kernels cached in ")
    assert Path(done.stdout.split(" in ", 1)[1].strip()).is_dir()


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")
def test_cli_says_once_that_kernels_compile(model_dir: Path, tmp_path: Path) -> None:
    """An empty numba cache: one line on stderr while compiling; a warm one: silence."""
    env = {"SSE_NP_DISABLE_NUMBA": "", "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = _run_module(["warmup", "--model", str(model_dir)], env)
    assert first.returncode == 0, first.stderr
    notes = [line for line in first.stderr.splitlines() if "compiling" in line]
    assert notes == ["sse-np: compiling kernels for this machine (one time, ~5 s)"], first.stderr
    again = _run_module(["warmup", "--model", str(model_dir)], env)
    assert again.returncode == 0 and "compiling" not in again.stderr


def test_bench_is_part_of_the_package() -> None:
    """``sse-np bench`` is sse_np.bench's own command (it used to hand over to a checkout's bench/run.py)."""
    done = _run_module(["bench", "--help"])
    assert done.returncode == 0, done.stderr
    for option in ("--model", "--data", "--duration", "--json", "--compare", "--peers", "--url"):
        assert option in done.stdout
    assert "bench/run.py" not in done.stdout


# --------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------


def test_eval_table_json_plot(model_dir: Path, tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (plot extra) not installed")
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    argv = [
        "eval",
        str(tiny),
        "--dims",
        "32,16,8",
        "--model",
        str(model_dir),
        "--json",
        str(out_json),
        "--plot",
        str(out_png),
    ]
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


def test_eval_bad_data_names_file_and_line(model_dir: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open(tiny / "qrels" / "test.tsv", "a", encoding="utf-8") as fh:
        fh.write("q0\tmissing-doc\t1\n")
    assert main(["eval", str(tiny), "--model", str(model_dir), "--dims", "8"]) == 1
    err = capsys.readouterr().err
    assert "test.tsv:6: corpus-id 'missing-doc' is not in corpus.jsonl" in err


def test_eval_plot_without_matplotlib_fails_early(
    model_dir: Path, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["eval", str(tiny), "--model", str(model_dir), "--plot", str(tmp_path / "p.png")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "pip install -e '.[plot]'" in captured.err
    assert f"pip install 'sse_np-{sse_np.__version__}-py3-none-any.whl[plot]'" in captured.err
    assert captured.out == ""  # failed before evaluating


def test_quantize_writes_loadable_q4(model: sse_np.SSEModel, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "q4"
    assert main(["quantize", str(out), "--model", str(model_dir)]) == 0
    q4 = sse_np.load(out)
    assert (q4.layout, q4.dim, q4.vocab_size) == ("q4", model.dim, model.vocab_size)
    a, b = q4.encode("a quantized model"), model.encode("a quantized model")
    assert float(a @ b) > 0.95  # 4-bit rounding keeps the direction
    assert main(["quantize", str(tmp_path / "again"), "--model", str(out)]) == 1  # already 4-bit
