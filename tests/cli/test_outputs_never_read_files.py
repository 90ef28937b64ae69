"""No command writes over a file it reads: inputs, ``--ranges``, ``--calibration``, a Parquet folder's files,
``eval``'s data, and every file of the model (issue 27 items 1-3, 16, 22; issue 30 items 1-3).

Each refusal is checked to leave every file byte-identical; each is tried by path, symlink and hard link.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
import sse_np.eval
from helpers.cli import Files, fails
from helpers.models import make_random_model
from sse_np.cli import main


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("guard_model"), dim=8, seed=5)


@pytest.fixture()
def st_dir(tmp_path, model_dir) -> Path:
    """A sentence-transformers layout: tokenizer.json and modules.json at the root, the weights in a module."""
    root = tmp_path / "st"
    module = root / "0_StaticEmbedding"
    module.mkdir(parents=True)
    table = np.random.default_rng(0).standard_normal((30522, 8)).astype(np.float32)
    save_file({"embedding.weight": table}, str(module / "model.safetensors"))
    (root / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    (root / "config_sentence_transformers.json").write_text("{}")
    (root / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "StaticEmbedding"}])
    )
    return root


def _linked(tmp_path: Path, target: Path, how: str) -> Path:
    """``target`` itself, a symlink to it or a hard link to it (outside its folder)."""
    if how == "path":
        return target
    link = tmp_path / f"{how}-{target.name}"
    (link.symlink_to if how == "symlink" else link.hardlink_to)(target)
    return link


def _model_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- 27.1 / 27.2: a model's own files are never outputs ------------------------------------------------
@pytest.mark.parametrize("how", ["path", "symlink", "hard link"])
def test_eval_json_over_the_tokenizer_is_refused(capsys, tmp_path, model_dir, how):
    tiny = sse_np.eval.write_beir(tmp_path / "tiny", {"d1": "cats purr"}, {"q1": "cats"}, {"q1": {"d1": 1}})
    out = _linked(tmp_path, model_dir / "tokenizer.json", how)
    files = Files(*_model_files(model_dir))
    for option in ("--json", "--plot"):
        fails(capsys, ["eval", str(tiny), "--model", str(model_dir), "-q", option, str(out)], r"model")
    files.assert_unchanged()
    assert sse_np.load(model_dir).dim == 8  # still loads


@pytest.mark.parametrize("name", ["tokenizer.json", "modules.json", "config_sentence_transformers.json"])
@pytest.mark.parametrize("how", ["path", "symlink", "hard link"])
def test_sentence_transformers_layout_root_files_are_never_outputs(capsys, tmp_path, st_dir, name, how):
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    files = Files(*_model_files(st_dir))
    out = _linked(tmp_path, st_dir / name, how)
    fails(capsys, ["encode", str(src), "-o", str(out), "--format", "jsonl", "--model", str(st_dir)], r"model")
    files.assert_unchanged()


def test_no_new_file_in_a_model_folder(capsys, tmp_path, st_dir):
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    for out in (st_dir / "vectors.npy", st_dir / "0_StaticEmbedding" / "vectors.npy"):
        fails(capsys, ["encode", str(src), "-o", str(out), "--model", str(st_dir)], r"is in the model folder")
        assert not out.exists()


def test_quantize_into_a_module_folder_is_refused(capsys, tmp_path, model_dir):
    files = Files(*_model_files(model_dir))
    fails(capsys, ["quantize", str(model_dir), "--model", str(model_dir)], r"is the model folder")
    files.assert_unchanged()


def test_quantize_output_follows_the_umask(capsys, tmp_path, model_dir):
    """27.22: an image built as root must be readable by other users (0755 folder, 0644 files under umask 022)."""
    old = os.umask(0o022)
    try:
        assert main(["quantize", str(tmp_path / "q4"), "--model", str(model_dir)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "q4").stat().st_mode) == 0o755
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "q4").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


# -- 30.1 / 30.3: side inputs are never outputs; the checks on --ranges and --calibration ---------------
@pytest.mark.parametrize("how", ["path", "symlink", "hard link"])
def test_ranges_file_is_never_the_output(capsys, tmp_path, model_dir, how):
    src = tmp_path / "in.txt"
    src.write_text("a\nb\n")
    ranges = tmp_path / "r.npy"
    np.save(ranges, np.array([[-1.0] * 8, [1.0] * 8], dtype=np.float32))
    out = _linked(tmp_path, ranges, how)
    files = Files(ranges, src)
    args = ["encode", str(src), "-o", str(out), "--precision", "int8", "--ranges", str(ranges)]
    fails(capsys, [*args, "--model", str(model_dir)], r"is .*the input .*r\.npy")
    files.assert_unchanged()


@pytest.mark.parametrize("how", ["path", "symlink", "hard link"])
def test_calibration_file_is_never_the_output(capsys, tmp_path, model_dir, how):
    src = tmp_path / "in.txt"
    src.write_text("a\nb\n")
    cal = tmp_path / "cal.txt"
    cal.write_text("one\ntwo\nthree\n")
    out = _linked(tmp_path, cal, how)
    files = Files(cal, src)
    args = ["encode", str(src), "-o", str(out), "--format", "jsonl", "--precision", "uint8", "--calibration", str(cal)]
    fails(capsys, [*args, "--model", str(model_dir)], r"is .*the input .*cal\.txt")
    files.assert_unchanged()


def test_calibration_gives_sentence_transformers_codes(capsys, tmp_path, model_dir):
    """--calibration: the int8 codes of sentence-transformers' quantize_embeddings with those calibration texts."""
    st_quant = pytest.importorskip("sentence_transformers.quantization")
    texts, cal_texts = ["a cat", "the dog barks", "rain"], ["one", "two words", "three little words", "x"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "cal.txt").write_text("\n".join(cal_texts) + "\n")
    args = ["encode", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o.npy"), "--model", str(model_dir)]
    assert main([*args, "--precision", "int8", "--calibration", str(tmp_path / "cal.txt")]) == 0
    model = sse_np.load(model_dir, backend="numpy")
    want = st_quant.quantize_embeddings(model.encode(texts), "int8", calibration_embeddings=model.encode(cal_texts))
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), want)
    capsys.readouterr()
    (tmp_path / "one.txt").write_text("alone\n")
    fails(
        capsys,
        [*args, "--precision", "int8", "--calibration", str(tmp_path / "one.txt")],
        r"one\.txt: needs at least two texts",
    )


@pytest.mark.parametrize(
    "ranges,pattern",
    [
        (np.zeros((3, 8), np.float32), r"shape \(3, 8\)"),
        (np.array([[np.nan] * 8, [1.0] * 8], np.float32), r"finite"),
        (np.array([["a"] * 8, ["b"] * 8]), r"dtype <U1"),
        (np.zeros((2, 8), bool), r"dtype bool"),
        (np.zeros((2, 8), "datetime64[s]"), r"dtype datetime64"),
        (np.zeros((2, 8), np.complex64), r"dtype complex64"),
    ],
)
def test_ranges_file_is_checked(capsys, tmp_path, model_dir, ranges, pattern):
    """27.16 / 30.3: a ranges file of the wrong shape, non-finite or not real numbers is refused, naming it."""
    (tmp_path / "in.txt").write_text("a\n")
    np.save(tmp_path / "r.npy", ranges)
    args = ["encode", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o.npy"), "--model", str(model_dir)]
    fails(capsys, [*args, "--precision", "int8", "--ranges", str(tmp_path / "r.npy")], r"r\.npy: .*" + pattern)
    assert not (tmp_path / "o.npy").exists()


# -- 30.2: a Parquet folder input keeps its files -----------------------------------------------------
def test_parquet_folder_input_keeps_its_files(capsys, tmp_path, model_dir):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(2):
        pq.write_table(pa.table({"_id": [f"d{i}"], "text": ["hello"]}), corpus / f"part-{i}.parquet")
    files = Files(*sorted(corpus.iterdir()))
    for out in (corpus / "part-1.parquet", corpus / "new.parquet", corpus / "v.npy"):
        fails(capsys, ["encode", str(corpus), "-o", str(out), "--model", str(model_dir)], r"input")
    (tmp_path / "hard.parquet").hardlink_to(corpus / "part-0.parquet")
    (tmp_path / "link.parquet").symlink_to(corpus / "part-1.parquet")
    for out in (tmp_path / "hard.parquet", tmp_path / "link.parquet"):
        fails(capsys, ["encode", str(corpus), "-o", str(out), "--model", str(model_dir)], r"input")
    files.assert_unchanged()


def test_save_q4_refuses_the_model_folder(tmp_path, model_dir):
    """The library writer too: ``save_q4(model, model's folder)`` would add a second layout beside the first."""
    from sse_np.checkpoint.write import save_q4

    model = sse_np.load(model_dir, backend="numpy")
    files = Files(*_model_files(model_dir))
    with pytest.raises(ValueError, match="is the model's own folder"):
        save_q4(model, model_dir)
    files.assert_unchanged()
