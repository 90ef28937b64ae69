"""``sse-np encode`` when things go wrong mid-run (issue 27 items 6-8, 20, 21): a full disk, SIGTERM/SIGHUP,
Parquet values JSON cannot hold, --keep on JSONL, and a missing Parquet extra. Each leaves no partial file and
says one line naming the file."""

from __future__ import annotations

import decimal
import errno
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sse_np.bulk.writers as writers
from helpers.cli import Files, fails, without_compile_notice
from helpers.models import make_random_model
from sse_np.cli import main

OLD = b"previous output, must survive\n"


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("failures_model"), dim=8, seed=7)


# -- 27.6: a full disk ---------------------------------------------------------------------------------
class _FullDisk(io.RawIOBase):
    """A file on a disk with ``room`` bytes left: writes past it fail with ENOSPC, as a full tmpfs does."""

    def __init__(self, fd: int, room: int) -> None:
        self.fd, self.room = fd, room

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.read(self.fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        return os.lseek(self.fd, pos, whence)

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return os.write(self.fd, data)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_full_disk_leaves_no_partial_file_and_names_the_output(capsys, tmp_path, model_dir, monkeypatch, suffix):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"text number {i}\n" for i in range(5000)))
    out = tmp_path / f"o{suffix}"
    out.write_bytes(OLD)
    files = Files(src, out)
    monkeypatch.setattr(writers, "_fdopen", lambda fd, mode: io.BufferedRandom(_FullDisk(fd, 20_000)))
    fails(capsys, ["encode", str(src), "-o", str(out), "--model", str(model_dir)], rf"o\{suffix}: cannot be written")
    files.assert_unchanged()  # also: no hidden .partial file beside it


# -- 27.7: SIGTERM / SIGHUP ----------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signal_removes_the_partial_file(tmp_path, model_dir, signum):
    """The input is a FIFO nobody writes yet: encode has made its partial file and waits; then the signal."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "o.npy"
    out.write_bytes(OLD)
    env = {**os.environ, "SSE_NP_BACKEND": "numpy"}
    code = "import sys; from sse_np.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["encode", str(fifo), "-o", str(out), "--input-format", "lines", "--model", str(model_dir)]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        # An event, not a clock: the partial file exists once encode is waiting on the FIFO.
        while not any(p.name.endswith(".partial.npy") for p in tmp_path.iterdir()):
            assert proc.poll() is None, proc.communicate()[1]
            os.sched_yield()
        proc.send_signal(signum)
        err = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"sse-np: terminated ({signal.Signals(signum).name})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fifo", "o.npy"]
    assert out.read_bytes() == OLD


# -- 27.8: Parquet values that JSON output cannot hold ---------------------------------------------------
def _ids(pa):
    return [
        ("nan", pa.array([1.0, float("nan")]), r"nan"),
        ("inf", pa.array([1.0, float("inf")]), r"inf"),
        ("binary", pa.array([b"a", b"b"]), r"binary"),
        ("timestamp", pa.array([0, 1], pa.timestamp("s")), r"timestamp"),
        ("decimal", pa.array([decimal.Decimal("1.5"), decimal.Decimal("2")]), r"decimal"),
    ]


@pytest.mark.parametrize("case", ["nan", "inf", "binary", "timestamp", "decimal"])
def test_parquet_ids_json_cannot_hold_are_refused_by_file_and_row(capsys, tmp_path, model_dir, case):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    column, pattern = next((c, p) for name, c, p in _ids(pa) if name == case)
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"_id": column, "text": ["a", "b"]}), src)
    out = tmp_path / "o.jsonl"
    fails(capsys, ["encode", str(src), "-o", str(out), "--model", str(model_dir)], r"in\.parquet:\d: column '_id'")
    assert not out.exists()
    # A later row, to check the row number: the first row is writable in every case but binary/timestamp/decimal.
    if case in ("nan", "inf"):
        fails(capsys, ["encode", str(src), "-o", str(out), "--model", str(model_dir)], rf"in\.parquet:2: .*{pattern}")
    # Parquet output holds them as they are.
    assert main(["encode", str(src), "-o", str(tmp_path / "o.parquet"), "--model", str(model_dir)]) == 0


# -- 27.20: --keep on JSONL keeps the id, as on Parquet ---------------------------------------------------
def test_keep_on_jsonl_keeps_the_id(capsys, tmp_path, model_dir):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"_id": "d1", "title": "T", "text": "hello", "x": 1}) + "\n")
    out = tmp_path / "o.jsonl"
    assert main(["encode", str(src), "-o", str(out), "--keep", "title", "--model", str(model_dir)]) == 0
    row = json.loads(out.read_text())
    assert list(row) == ["_id", "title", "embedding"] and row["_id"] == "d1"


# -- 27.21: Parquet output without the extra is one line, and nothing more ----------------------------------
def test_parquet_output_without_pyarrow_is_one_line(tmp_path, model_dir):
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from sse_np.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["encode", str(src), "-o", str(tmp_path / "o.parquet"), "--model", str(model_dir)]
    env = {**os.environ, "SSE_NP_BACKEND": "numpy"}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    err = without_compile_notice(done.stderr)
    assert err.count("\n") == 1 and err.startswith("sse-np: error: "), done.stderr
    assert "'parquet' extra" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
    np.testing.assert_equal(done.stdout, "")
