"""``sse-np encode --ray`` refuses, before any work and without a cluster, what it cannot do safely
(issue 27 items 1, 3, 4, 5): outputs overlapping the input or the model, options it cannot honour, and a
resume whose model or vector options changed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("ray")

import pyarrow as pa
import pyarrow.parquet as pq

import sse_np
from helpers.cli import Files, fails
from helpers.models import make_random_model
from sse_np.bulk import ray as bulk_ray
from sse_np.bulk import ray_job
from sse_np.cli.parser import build_parser


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch):
    """Every case must be refused before Ray starts: starting it fails the test."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init called: the refusal came after work started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")


@pytest.fixture()
def model_dir(tmp_path) -> Path:
    return make_random_model(tmp_path / "model", dim=8, seed=2)


@pytest.fixture()
def corpus(tmp_path) -> Path:
    folder = tmp_path / "in1"
    folder.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"_id": [f"d{i}"], "text": ["hello"]}), folder / f"part-{i}.parquet")
    return folder


def _encode(corpus: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["encode", str(corpus), "-o", str(out), "--model", str(model_dir), "--ray", *extra]


def test_output_equal_to_or_inside_the_input_is_refused(capsys, tmp_path, corpus, model_dir):
    files = Files(*sorted(corpus.iterdir()))
    fails(capsys, _encode(corpus, corpus, model_dir), r"in1: overlaps the input folder")
    fails(capsys, _encode(corpus, corpus / "out", model_dir), r"out: overlaps the input folder")
    fails(capsys, _encode(corpus, tmp_path, model_dir), r"overlaps the input folder")  # holds the input
    fails(capsys, _encode(corpus / "part-0.parquet", corpus, model_dir), r"is the folder of the input")
    files.assert_unchanged()
    assert not (corpus / "out").exists()


def test_output_in_the_model_folder_is_refused(capsys, tmp_path, corpus, model_dir):
    files = Files(*sorted(model_dir.iterdir()))
    for out in (model_dir, model_dir / "vectors"):
        fails(capsys, _encode(corpus, out, model_dir), r"is in the model folder")
    files.assert_unchanged()


@pytest.mark.parametrize(
    "extra",
    [
        ["--precision", "ubinary", "--format", "jsonl"],
        ["--precision", "int8"],
        ["--format", "npy"],
        ["--input-format", "jsonl"],
        ["--ranges", "r.npy"],
        ["--calibration", "c.txt"],
    ],
)
def test_options_ray_cannot_honour_are_refused(capsys, tmp_path, corpus, model_dir, extra):
    out = tmp_path / "out"
    fails(capsys, _encode(corpus, out, model_dir, *extra), r"--ray .* cannot honour " + extra[0])
    assert not out.exists()


def _done_job(corpus: Path, out: Path, model_dir: Path, *extra: str) -> None:
    """The state a finished job leaves: its manifest and one output per input file."""
    args = build_parser().parse_args(_encode(corpus, out, model_dir, *extra))
    model = sse_np.load(model_dir, backend="numpy")
    files = sorted(corpus.glob("*.parquet"))
    out.mkdir()
    ray_job._check_manifest(out, ray_job._manifest(args, model, model.get_embedding_dimension(), files, corpus))
    for path in files:
        pq.write_table(pa.table({"embedding": [[0.0] * 8]}), out / path.name)


def test_resume_with_changed_weights_is_refused(capsys, tmp_path, corpus, model_dir):
    out = tmp_path / "out"
    _done_job(corpus, out, model_dir)
    assert sse_np.cli.main(_encode(corpus, out, model_dir)) == 0  # same model: nothing to do
    capsys.readouterr()
    weights = model_dir / "model.safetensors"
    size, data = weights.stat().st_size, bytearray(weights.read_bytes())
    data[-4:] = np.float32(0.25).tobytes()  # the last table value, changed in place: same size
    weights.write_bytes(bytes(data))
    assert weights.stat().st_size == size
    fails(capsys, _encode(corpus, out, model_dir), r"different arguments \(model: ")


def test_resume_with_changed_tokenizer_is_refused(capsys, tmp_path, corpus, model_dir):
    out = tmp_path / "out"
    _done_job(corpus, out, model_dir)
    tokenizer = model_dir / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes() + b"\n")  # any change to the file's bytes
    fails(capsys, _encode(corpus, out, model_dir), r"different arguments \(model: ")


@pytest.mark.parametrize("extra", [["--dim", "4"], ["--no-normalize"], ["--field", "title,text"]])
def test_resume_with_other_vector_options_is_refused(capsys, tmp_path, corpus, model_dir, extra):
    out = tmp_path / "out"
    _done_job(corpus, out, model_dir)
    fails(capsys, _encode(corpus, out, model_dir, *extra), r"different arguments")


def test_a_moved_model_with_the_same_content_resumes(capsys, tmp_path, corpus, model_dir):
    out = tmp_path / "out"
    _done_job(corpus, out, model_dir)
    moved = tmp_path / "moved"
    os.rename(model_dir, moved)
    assert sse_np.cli.main(_encode(corpus, out, moved)) == 0
    assert "nothing to do" in capsys.readouterr().err


def test_actor_on_a_full_disk_names_its_output_and_leaves_nothing(tmp_path, corpus, model_dir, monkeypatch):
    """The --ray actor's write error reaches the driver as a DataError naming the file (shown as one line)."""
    import io

    import sse_np.bulk.writers as writers
    from sse_np.errors import DataError

    class Full(io.RawIOBase):
        def __init__(self, fd: int) -> None:
            self.fd = fd

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            if not self.closed:
                os.close(self.fd)
            super().close()

    monkeypatch.setattr(writers, "_fdopen", lambda fd, mode: io.BufferedWriter(Full(fd)))
    actor = bulk_ray.FileEncoder(str(model_dir), 8, ("text",), (), None, True, 64, 1, backend="numpy")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match=r"part-0\.parquet: cannot be written \(No space left on device\)"):
        actor({"input": str(corpus / "part-0.parquet"), "output": str(out / "part-0.parquet")})
    assert os.listdir(out) == []
