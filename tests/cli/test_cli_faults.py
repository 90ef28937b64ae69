"""Hostile inputs and outputs of ``sse-np``, one class at a time.

Each case checks the message (one line ``sse-np: error: FILE[:LINE]: ...``),
the exit status (1), and that the input and any pre-existing output are
byte-identical afterwards, with their permission bits and no temporary file
left behind.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import sse_np
import sse_np.cli.evaluate as cli_eval
import sse_np.eval
from helpers.cli import Files, fails
from helpers.models import make_random_model
from sse_np.cli import main

SSE_NP = Path(sys.executable).with_name("sse-np")


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    """The faults are not about numba: the NumPy back-end (same bits), read by sse_np.load at each call."""
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("faults_model"), dim=8, seed=11)


@pytest.fixture(scope="module")
def model(model_dir) -> sse_np.SSEModel:
    return sse_np.load(model_dir, backend="numpy")


def encode(capsys, args: list[str], model_dir: Path) -> None:
    assert main(["encode", *args, "--model", str(model_dir)]) == 0, capsys.readouterr().err
    capsys.readouterr()


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


OLD = b"previous output, must survive\n"


# -- confirmed failure 2: the output is the input -------------------------------------
@pytest.mark.parametrize("how", ["same path", "hard link", "symlink", "symlink chain", "relative path"])
def test_output_that_is_the_input_is_refused(capsys, tmp_path, model_dir, monkeypatch, how):
    src = write(tmp_path / "in.txt", b"hello\nworld\n")
    out = {
        "same path": src,
        "hard link": tmp_path / "hard.txt",
        "symlink": tmp_path / "link.npy",
        "symlink chain": tmp_path / "link2.npy",
        "relative path": Path("sub/../in.txt"),
    }[how]
    if how == "hard link":
        os.link(src, out)
    elif how in ("symlink", "symlink chain"):
        (tmp_path / "link.npy").symlink_to(src)
        if how == "symlink chain":
            out.symlink_to(tmp_path / "link.npy")
    elif how == "relative path":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path)
    files = Files(src, tmp_path / "link.npy", tmp_path / "hard.txt")
    fails(
        capsys,
        ["encode", str(src), "-o", str(out), "--format", "npy", "--model", str(model_dir)],
        {
            "hard link": "is a hard link to",
            "symlink": r"is \(through a symlink\)",
            "symlink chain": r"is \(through a symlink\)",
        }.get(how, ": is")
        + r" the input .*in\.txt; refusing to overwrite an input",
    )
    files.assert_unchanged()


def test_output_that_is_redirected_stdin_is_refused(tmp_path, model_dir):
    src = write(tmp_path / "in.txt", b"hello\n")
    files = Files(src)
    with open(src, "rb") as stdin:
        proc = subprocess.run(
            [str(SSE_NP), "encode", "-", "-o", str(src), "--format", "jsonl", "--model", str(model_dir)],
            stdin=stdin,
            capture_output=True,
            env={**os.environ, "SSE_NP_DISABLE_NUMBA": "1"},
        )
    assert proc.returncode == 1 and b"the input standard input; refusing" in proc.stderr, proc.stderr
    files.assert_unchanged()


def test_output_that_is_a_model_file_is_refused(capsys, tmp_path, model_dir):
    src = write(tmp_path / "in.txt", b"hello\n")
    files = Files(model_dir / "model.safetensors", model_dir / "tokenizer.json")
    fails(
        capsys,
        ["encode", str(src), "-o", str(model_dir / "tokenizer.json"), "--format", "jsonl", "--model", str(model_dir)],
        r"tokenizer\.json: is in the model folder",
    )
    files.assert_unchanged()


# -- gzip ------------------------------------------------------------------------------
def _gz(lines: list[str]) -> bytes:
    return gzip.compress("".join(line + "\n" for line in lines).encode())


@pytest.mark.parametrize(
    "case,data,pattern",
    [
        ("truncated", _gz([f"text {i}" for i in range(2000)])[:-40], r"in\.txt\.gz:\d+: truncated gzip data"),
        ("cut in the header", _gz(["a"])[:5], r"in\.txt\.gz:1: truncated gzip data"),
        ("empty", b"", r"in\.txt\.gz: empty file, not gzip data"),
        ("not gzip", b"plain text\n", r"in\.txt\.gz:1: not gzip data"),
        (
            "corrupt",
            _gz(["hello world"] * 50)[:12] + b"\xff" * 30 + _gz(["x"])[-8:],
            r"in\.txt\.gz:1: (corrupt|truncated) gzip data",
        ),
    ],
)
def test_bad_gzip_input(capsys, tmp_path, model_dir, case, data, pattern):
    src = write(tmp_path / "in.txt.gz", data)
    old = write(tmp_path / "out.npy", OLD, 0o600)
    files = Files(src, old)
    fails(capsys, ["encode", str(src), "-o", str(old), "--model", str(model_dir)], pattern)
    files.assert_unchanged()


# -- JSON that Python's json rejects only deep inside ---------------------------------
@pytest.mark.parametrize(
    "line,pattern",
    [
        (
            '{"text": "a", "n": ' + "9" * 5000 + "}",
            r"in\.jsonl:2: invalid JSON \(Exceeds the limit .* integer string conversion",
        ),
        (
            '{"text": "a", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
            r"in\.jsonl:2: invalid JSON \(nested too deeply",
        ),
        ('{"text": ' + "[" * 100_000, r"in\.jsonl:2: invalid JSON \(nested too deeply"),
    ],
)
def test_json_rejected_deep_inside(capsys, tmp_path, model_dir, line, pattern):
    src = write(tmp_path / "in.jsonl", ('{"text": "fine"}\n' + line + "\n").encode())
    old = write(tmp_path / "out.jsonl", OLD)
    files = Files(src, old)
    fails(capsys, ["encode", str(src), "-o", str(old), "--model", str(model_dir)], pattern)
    files.assert_unchanged()


# -- ids that strict JSON output cannot hold: refused with FILE:LINE -------------------
@pytest.mark.parametrize(
    "record,pattern",
    [
        ('{"_id": NaN, "text": "a"}', r"in\.jsonl:2: field '_id' holds NaN or Infinity"),
        ('{"_id": Infinity, "text": "a"}', r"in\.jsonl:2: field '_id' holds NaN or Infinity"),
        ('{"id": -1e400, "text": "a"}', r"in\.jsonl:2: field 'id' holds NaN or Infinity"),
        ('{"_id": {"x": [NaN]}, "text": "a"}', r"in\.jsonl:2: field '_id' holds NaN or Infinity"),
        ('{"_id": "a\\ud800b", "text": "a"}', r"in\.jsonl:2: field '_id' holds a lone surrogate '\\ud800'"),
        ('{"_id": "1", "text": "x\\udfffy"}', r"in\.jsonl:2: .*lone surrogate"),
    ],
)
def test_ids_that_cannot_be_written_as_json(capsys, tmp_path, model_dir, record, pattern):
    src = write(tmp_path / "in.jsonl", ('{"_id": "0", "text": "fine"}\n' + record + "\n").encode())
    old = write(tmp_path / "out.jsonl", OLD)
    files = Files(src, old)
    fails(capsys, ["encode", str(src), "-o", str(old), "--model", str(model_dir)], pattern)
    files.assert_unchanged()


def test_ids_are_not_checked_for_npy_output(capsys, tmp_path, model_dir, model):
    """.npy holds only vectors: an id that JSON could not hold does not matter there."""
    src = write(tmp_path / "in.jsonl", b'{"_id": NaN, "text": "a"}\n{"_id": "\\ud800", "text": "b"}\n')
    encode(capsys, [str(src), "-o", str(tmp_path / "out.npy")], model_dir)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model.encode(["a", "b"]))


# -- non-regular inputs are streams ------------------------------------------------------
def test_named_pipe_input(capsys, tmp_path, model_dir, model):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    texts = [f"text number {i}" for i in range(300)]
    feeder = threading.Thread(target=lambda: fifo.write_bytes("".join(t + "\n" for t in texts).encode()), daemon=True)
    feeder.start()
    encode(capsys, [str(fifo), "-o", str(tmp_path / "out.npy")], model_dir)
    feeder.join(10)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model.encode(texts))


def test_named_pipe_gzip_input(capsys, tmp_path, model_dir, model):
    fifo = tmp_path / "in.txt.gz"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(_gz(["a b", "c"])), daemon=True)
    feeder.start()
    encode(capsys, [str(fifo), "-o", str(tmp_path / "out.npy")], model_dir)
    feeder.join(10)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model.encode(["a b", "c"]))


def test_process_substitution_input(tmp_path, model_dir, model):
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        ["bash", "-c", f'"$0" encode <(printf "one\\ntwo\\n") -o "{out}" --model "{model_dir}"', str(SSE_NP)],
        capture_output=True,
        env={**os.environ, "SSE_NP_DISABLE_NUMBA": "1"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line)["embedding"] for line in out.read_text().splitlines()]
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32), model.encode(["one", "two"]))


def test_input_that_is_a_folder_or_missing(capsys, tmp_path, model_dir):
    # A folder is read as a folder of Parquet files (issue 15); this one holds none.
    fails(
        capsys,
        ["encode", str(tmp_path), "-o", str(tmp_path / "o.npy"), "--model", str(model_dir)],
        r": folder holds no \.parquet files",
    )
    fails(
        capsys,
        ["encode", str(tmp_path / "absent.txt"), "-o", str(tmp_path / "o.npy"), "--model", str(model_dir)],
        r"absent\.txt: no such file",
    )
    assert sorted(os.listdir(tmp_path)) == []


# -- outputs: devices, pipes, symlinks, permissions ----------------------------------------
def _private_null(tmp_path: Path) -> Path:
    """A character device like /dev/null, made in tmp_path: a broken build replaces it, not the machine's."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc}); not testing on the real /dev/null")
    return node


def test_device_output_is_written_through(capsys, tmp_path, model_dir):
    src = write(tmp_path / "in.txt", b"a\nb\n")
    null = _private_null(tmp_path)
    for fmt in ("npy", "jsonl"):
        encode(capsys, [str(src), "-o", str(null), "--format", fmt], model_dir)
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.major(os.lstat(null).st_rdev) == 1
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "null"]


def test_stdout_descriptor_output_is_written_through(tmp_path, model_dir, model):
    """``-o /dev/stdout`` (a symlink to /proc/self/fd/1); tested as /proc/self/fd/1, which a broken build
    cannot replace."""
    src = write(tmp_path / "in.txt", b"a\nb\n")
    env = {**os.environ, "SSE_NP_DISABLE_NUMBA": "1"}
    args = [str(SSE_NP), "encode", str(src), "-o", "/proc/self/fd/1", "--model", str(model_dir)]
    proc = subprocess.run([*args, "--format", "jsonl"], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line)["embedding"] for line in proc.stdout.decode().splitlines()]
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32), model.encode(["a", "b"]))
    with open(tmp_path / "redirected.jsonl", "wb") as out:  # `> file`: written through the descriptor, not renamed
        proc = subprocess.run([*args, "--format", "jsonl"], stdout=out, stderr=subprocess.PIPE, env=env)
    assert proc.returncode == 0 and len((tmp_path / "redirected.jsonl").read_text().splitlines()) == 2
    proc = subprocess.run([*args, "--format", "npy"], capture_output=True, env=env)
    assert proc.returncode == 1 and proc.stdout == b""
    assert (
        proc.stderr.decode()
        .strip()
        .endswith(
            "npy output needs a seekable file (its header is completed at the "
            "end), not a pipe or terminal; use --format jsonl"
        )
    )
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "redirected.jsonl"]


def test_fifo_output_is_written_through(capsys, tmp_path, model_dir, model):
    src = write(tmp_path / "in.txt", b"a\nb\n")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    encode(capsys, [str(src), "-o", str(fifo), "--format", "jsonl"], model_dir)
    reader.join(10)
    rows = [json.loads(line)["embedding"] for line in got[0].decode().splitlines()]
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32), model.encode(["a", "b"]))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_output_replaces_its_target(capsys, tmp_path, model_dir, model):
    src = write(tmp_path / "in.txt", b"a\nb\n")
    (tmp_path / "data").mkdir()
    target = write(tmp_path / "data" / "real.npy", OLD, 0o640)
    link = tmp_path / "link.npy"
    link.symlink_to(Path("data") / "real.npy")  # relative link
    encode(capsys, [str(src), "-o", str(link)], model_dir)
    assert link.is_symlink() and os.readlink(link) == str(Path("data") / "real.npy")
    np.testing.assert_array_equal(np.load(target), model.encode(["a", "b"]))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path / "data")) == ["real.npy"]
    dangling = tmp_path / "dangling.npy"
    dangling.symlink_to(tmp_path / "data" / "new.npy")
    encode(capsys, [str(src), "-o", str(dangling)], model_dir)
    assert dangling.is_symlink() and np.load(tmp_path / "data" / "new.npy").shape == (2, 8)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_replacing_an_output_keeps_its_permissions(capsys, tmp_path, model_dir, mode):
    src = write(tmp_path / "in.txt", b"a\n")
    out = write(tmp_path / "out.npy", OLD, mode)
    encode(capsys, [str(src), "-o", str(out)], model_dir)
    assert stat.S_IMODE(out.stat().st_mode) == mode and np.load(out).shape == (1, 8)


def test_new_output_gets_the_umask_mode(capsys, tmp_path, model_dir):
    src = write(tmp_path / "in.txt", b"a\n")
    old = os.umask(0o027)
    try:
        encode(capsys, [str(src), "-o", str(tmp_path / "out.npy")], model_dir)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.npy").stat().st_mode) == 0o640


# -- eval --json / --plot --------------------------------------------------------------------
@pytest.fixture()
def tiny(tmp_path) -> Path:
    return sse_np.eval.write_beir(
        tmp_path / "tiny", {"d1": "cats purr", "d2": "dogs bark"}, {"q1": "cats"}, {"q1": {"d1": 1}}
    )


def test_eval_outputs_are_checked_before_the_run(capsys, tmp_path, tiny, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError("the evaluation ran before its outputs were checked")

    monkeypatch.setattr(cli_eval, "evaluate", no_run)
    monkeypatch.setattr(cli_eval, "load_model", no_run)
    fails(
        capsys,
        ["eval", str(tiny), "--json", str(tmp_path / "absent" / "r.json")],
        r"r\.json: folder .*absent does not exist",
    )
    fails(
        capsys,
        ["eval", str(tiny), "--plot", str(tmp_path / "absent" / "p.png")],
        r"p\.png: folder .*absent does not exist",
    )
    fails(capsys, ["eval", str(tiny), "--json", str(tmp_path)], r": is a folder")
    files = Files(tiny / "queries.jsonl", tiny / "corpus.jsonl")
    fails(capsys, ["eval", str(tiny), "--json", str(tiny / "queries.jsonl")], r"queries\.jsonl: is the input")
    fails(
        capsys,
        ["eval", str(tiny), "--json", str(tmp_path / "r.out"), "--plot", str(tmp_path / "r.out")],
        r"--json and --plot name the same file",
    )
    files.assert_unchanged()


@pytest.mark.parametrize("option,writer", [("--json", "save_report"), ("--plot", "plot_report")])
def test_eval_outputs_are_atomic(capsys, tmp_path, tiny, model_dir, monkeypatch, option, writer):
    """An error while writing the report leaves the previous one byte-identical, and no partial file."""
    pytest.importorskip("matplotlib")
    out = write(tmp_path / ("r.json" if option == "--json" else "p.png"), OLD, 0o600)
    files = Files(out)
    real = getattr(cli_eval, writer)

    def half_then_fail(report, path, *args):
        real(report, path, *args)
        with open(path, "r+b") as fh:
            fh.truncate(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_eval, writer, half_then_fail)
    fails(
        capsys,
        ["eval", str(tiny), "--dims", "8", "--model", str(model_dir), "-q", option, str(out)],
        r"No space left on device",
    )
    files.assert_unchanged()
    monkeypatch.setattr(cli_eval, writer, real)
    assert main(["eval", str(tiny), "--dims", "8", "--model", str(model_dir), "-q", option, str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = out.read_bytes()
    assert (json.loads(data)["dims"] == [8]) if option == "--json" else data.startswith(b"\x89PNG")
    assert sorted(os.listdir(tmp_path)) == sorted([out.name, "tiny"])


# -- quantize ------------------------------------------------------------------------------
def test_quantize_into_the_model_folder_is_refused(capsys, tmp_path, model_dir):
    model = tmp_path / "m"
    model.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (model / name).write_bytes((model_dir / name).read_bytes())
    files = Files(model / "model.safetensors", model / "tokenizer.json")
    fails(capsys, ["quantize", str(model), "--model", str(model)], r"m: is the model folder .*; a model.s files")
    fails(capsys, ["quantize", str(tmp_path), "--model", str(model)], r"is the model folder .*m or holds it")
    (tmp_path / "link").symlink_to(model)
    fails(capsys, ["quantize", str(tmp_path / "link"), "--model", str(model)], r"is the model folder")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"someone's model")
    fails(capsys, ["quantize", str(other), "--model", str(model)], r"other: already holds model\.safetensors")
    assert (other / "model.safetensors").read_bytes() == b"someone's model" and os.listdir(other) == [
        "model.safetensors"
    ]
    files.assert_unchanged()
    assert sorted(os.listdir(tmp_path)) == ["link", "m", "other"]


def test_quantize_writes_atomically(capsys, tmp_path, model_dir, monkeypatch):
    import sse_np.checkpoint.write as convert

    def broken(model, dest):
        (Path(dest) / "model_rest.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convert, "save_q4", broken)
    fails(capsys, ["quantize", str(tmp_path / "q4"), "--model", str(model_dir)], r"No space left on device")
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    assert main(["quantize", str(tmp_path / "q4"), "--model", str(model_dir)]) == 0
    assert sorted(os.listdir(tmp_path / "q4")) == ["embedding.q4_k_m.bin", "model_rest.safetensors", "tokenizer.json"]
    assert sse_np.load(tmp_path / "q4", backend="numpy").layout == "q4"
    # a folder inside the model's (as weights/q4 beside weights/model.safetensors) is allowed
    inner = tmp_path / "m"
    inner.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (inner / name).write_bytes((model_dir / name).read_bytes())
    assert main(["quantize", str(inner / "q4"), "--model", str(inner)]) == 0
    assert sse_np.load(inner, backend="numpy").layout == "full" and sse_np.load(inner / "q4").layout == "q4"


def test_ctrl_c_leaves_the_previous_output(capsys, tmp_path, model_dir, monkeypatch):
    """Ctrl-C after the first chunk was written: exit 130, no partial file, the previous output byte-identical."""
    src = write(tmp_path / "in.txt", "".join(f"text {i}\n" for i in range(10_000)).encode())
    out = write(tmp_path / "out.jsonl", OLD, 0o600)
    files = Files(src, out)
    real, calls = sse_np.SSEModel.encode, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(sse_np.SSEModel, "encode", interrupted)
    assert main(["encode", str(src), "-o", str(out), "--model", str(model_dir)]) == 130
    assert capsys.readouterr().err == "sse-np: interrupted\n" and len(calls) == 2
    files.assert_unchanged()


def test_dataset_json_rejected_deep_inside(capsys, tmp_path, model_dir):
    """The evaluation's BEIR reader: deep nesting and over-long integers are FILE:LINE errors too."""
    folder = sse_np.eval.write_beir(tmp_path / "deep", {"d1": "cats"}, {"q1": "cats"}, {"q1": {"d1": 1}})
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"_id": "d2", "text": ' + "[" * 100_000 + "}\n")
    files = Files(folder / "corpus.jsonl")
    fails(
        capsys,
        ["eval", str(folder), "--dims", "8", "-q", "--model", str(model_dir)],
        r"deep/corpus\.jsonl:2: invalid JSON \(nested too deeply",
    )
    files.assert_unchanged()
    other = sse_np.eval.write_beir(tmp_path / "long", {"d1": "cats"}, {"q1": "cats"}, {"q1": {"d1": 1}})
    with open(other / "queries.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"_id": ' + "7" * 5000 + ', "text": "x"}\n')
    fails(
        capsys,
        ["eval", str(other), "--dims", "8", "-q", "--model", str(model_dir)],
        r"long/queries\.jsonl:2: invalid JSON \(Exceeds the limit",
    )


def test_eval_outputs_through_symlinks_and_devices(capsys, tmp_path, tiny, model_dir):
    pytest.importorskip("matplotlib")
    null = _private_null(tmp_path)
    (tmp_path / "reports").mkdir()
    target = write(tmp_path / "reports" / "r.json", OLD, 0o640)
    (tmp_path / "r.json").symlink_to(target)
    assert (
        main(
            [
                "eval",
                str(tiny),
                "--dims",
                "8",
                "-q",
                "--model",
                str(model_dir),
                "--json",
                str(tmp_path / "r.json"),
                "--plot",
                str(null),
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert (tmp_path / "r.json").is_symlink() and json.loads(target.read_text())["dims"] == [8]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert sorted(os.listdir(tmp_path / "reports")) == ["r.json"]


# -- property: any bytes as input give records or a DataError naming FILE:LINE ----------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sse_np.bulk import readers as streams  # noqa: E402

_JSONISH = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b'{"text": "a"}',
                b'{"text": 1}',
                b'{"_id": NaN, "text": "x"}',
                b'{"_id": "\\ud800", "text": "x"}',
                b'{"text": "' + b"[" * 5000 + b'"}',
                b"[" * 50_000,
                b'{"text": "a", "n": ' + b"9" * 5000 + b"}",
                b"\xff\xfe",
                b"",
                b"\r",
                b'{"text": "a"}\r',
                b"null",
                b"[]",
                b'"just a string"',
            ]
        ),
    ),
    max_size=12,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(lines=_JSONISH, fmt=st.sampled_from(["lines", "jsonl"]), gz=st.booleans(), cut=st.integers(0, 30))
def test_any_input_gives_records_or_a_located_data_error(tmp_path, lines, fmt, gz, cut):
    raw = b"\n".join(lines)
    if gz:
        raw = gzip.compress(raw)
        raw = raw[: max(len(raw) - cut, 0)] if cut % 3 == 0 else raw  # sometimes truncated
    path = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    path.write_bytes(raw)
    try:
        count = sum(len(c.texts) for c in streams.read_chunks(str(path), fmt, "text", ("_id", "id"), chunk_lines=4))
    except sse_np.DataError as exc:
        assert re.match(re.escape(str(path)) + r"(:\d+)?: ", str(exc)), str(exc)
        return
    if not gz:  # every line is a record
        assert count == raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
