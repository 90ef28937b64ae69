"""Weights that cannot give finite unit vectors are refused at load, naming the file (issue 27 item 17).

Before: a table of 3e38 with alpha = 0 loaded, and ``encode`` returned NaN; ``beta = 1e20`` gave all-zero
vectors. Each refused case is shown to be a real failure (the NumPy reference gives NaN or zero vectors),
and the real checkpoints and ordinary random weights still load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.models import bert_tokenizer_json
from sse_np import ModelLoadError
from sse_np.checkpoint.read import read_checkpoint
from sse_np.checkpoint.write import save_q4

V, D = 30522, 8


@pytest.fixture(scope="module")
def tokenizer() -> bytes:
    path = bert_tokenizer_json()
    if path is None:
        pytest.skip("no bert-base-uncased tokenizer.json")
    return path.read_bytes()


def _weights(table_value=None, alpha=0.5, beta=1.0, bias=0.1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((V, D)).astype(np.float32)
    if table_value is not None:
        table[:] = table_value
    full = lambda v: np.full(D, v, np.float32)  # noqa: E731
    return {"embedding.weight": table, "dyt.alpha": full(alpha), "dyt.beta": full(beta), "dyt.bias": full(bias)}


def _folder(tmp_path: Path, tokenizer: bytes, tensors: dict, name: str = "m") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_bytes(tokenizer)
    return folder


def _reference(tensors: dict, ids: list[int]) -> np.ndarray:
    """float32 mean -> beta * tanh(alpha * x + bias) -> x / max(|x|, 1e-12), as the spec says (NumPy, no sse_np)."""
    with np.errstate(all="ignore"):
        x = tensors["embedding.weight"][ids].sum(axis=0, dtype=np.float32) / np.float32(len(ids))
        if "dyt.alpha" in tensors:
            x = tensors["dyt.beta"] * np.tanh(tensors["dyt.alpha"] * x + tensors["dyt.bias"])
        return x / max(np.float32(np.sqrt(np.sum(x * x, dtype=np.float32))), np.float32(1e-12))


CASES = {
    "table 3e38, alpha 0": (dict(table_value=3e38, alpha=0.0), r"values up to 3e\+38"),
    "table 1e35 (4000 tokens overflow), alpha 0": (dict(table_value=1e35, alpha=0.0), r"overflow float32"),
    "beta 1e20": (dict(beta=1e20), r"dyt\.beta has norm"),
    "beta 0": (dict(beta=0.0), r"dyt\.beta is \(near\) zero"),
    "alpha 0, bias 0": (dict(alpha=0.0, bias=0.0), r"dyt\.alpha is zero and beta \* tanh\(bias\) is \(near\) zero"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_weights_without_unit_vectors_are_refused(tmp_path, tokenizer, case):
    change, pattern = CASES[case]
    tensors = _weights(**change)
    vector = _reference(tensors, [7592, 2088] * 2000)  # a text of 4000 tokens
    assert not (np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1) < 1e-3)  # really broken
    folder = _folder(tmp_path, tokenizer, tensors)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: .*" + pattern):
        sse_np.load(folder, backend="numpy")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_tables_are_checked_too(tmp_path, tokenizer, dtype):
    tensors = _weights(table_value=0.0)
    codes = np.zeros((V, D), np.uint16)  # all +0.0
    tensors["embedding.weight"] = codes.view(np.float16) if dtype == "float16" else codes
    folder = tmp_path / "static"
    folder.mkdir()
    if dtype == "bfloat16":
        pytest.importorskip("torch")
        import torch
        from safetensors.torch import save_file as save_torch

        save_torch({"embedding.weight": torch.zeros((V, D), dtype=torch.bfloat16)}, str(folder / "model.safetensors"))
    else:
        save_file({"embedding.weight": tensors["embedding.weight"]}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_bytes(tokenizer)
    with pytest.raises(ModelLoadError, match=r"embedding table is all \(near\) zero"):
        read_checkpoint(_static(tmp_path, folder))


def _static(tmp_path: Path, folder: Path) -> Path:
    """``folder`` read as a StaticEmbedding module (no DyT)."""
    module = tmp_path / "0_StaticEmbedding"
    folder.rename(module)
    return module


def test_q4_scales_are_checked(tmp_path, tokenizer):
    good = sse_np.load(_folder(tmp_path, tokenizer, _weights()), backend="numpy")
    save_q4(good, tmp_path / "q4")
    binary = tmp_path / "q4" / "embedding.q4_k_m.bin"
    data = bytearray(binary.read_bytes())
    data[-4:] = np.float32(1e35).tobytes()  # the last row's scale
    binary.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"embedding\.q4_k_m\.bin: embedding table holds values up to 1e\+35"):
        sse_np.load(tmp_path / "q4", backend="numpy")


def test_ordinary_weights_still_load(tmp_path, tokenizer):
    tensors = _weights(alpha=0.0)  # alpha 0 with a non-zero bias: constant, but unit, vectors
    model = sse_np.load(_folder(tmp_path, tokenizer, tensors), backend="numpy")
    vectors = model.encode(["hello world", "something else"])
    assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
