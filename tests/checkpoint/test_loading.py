"""Every layout loads; every broken checkpoint is refused with a message naming file and problem."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.models import make_full, random_weights, write_tokenizer
from sse_np import ModelLoadError, ModelNotFoundError

V, D = 30522, 16


@pytest.fixture
def weights():
    return random_weights(V, D, seed=11)


@pytest.fixture
def good(tmp_path, tokenizer_json, weights):
    return make_full(tmp_path / "m", tokenizer_json, weights)


def _refuse(path, *needles):
    with pytest.raises(ModelLoadError) as info:
        sse_np.load(path)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    return str(info.value)


def test_full_layout_loads_memory_mapped(good):
    model = sse_np.load(good)
    assert (model.layout, model.vocab_size, model.dim, model.dtype) == ("full", V, D, "float32")
    assert isinstance(model.table.data, np.memmap)  # mapped, not copied
    assert model.encode(["x"]).shape == (1, D)


def test_repository_root_module_and_subfolder(tmp_path, tokenizer_json, weights):
    root = tmp_path / "repo"
    make_full(root, tokenizer_json, weights)
    (root / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sse.SSE"}]))
    assert sse_np.load(root).layout == "full"
    nested = tmp_path / "nested"
    make_full(nested / "0_SSE", tokenizer_json, weights)
    (nested / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "0_SSE", "type": "sse.SSE"},
                {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    model = sse_np.load(nested)
    assert model.path.endswith("0_SSE")
    np.testing.assert_array_equal(model.encode(["same vectors"]), sse_np.load(root).encode(["same vectors"]))


def test_static_layout_without_modules_json(tmp_path, tokenizer_json):
    module = tmp_path / "0_StaticEmbedding"
    module.mkdir()
    save_file({"embedding.weight": np.ones((V, 8), np.float32)}, str(module / "model.safetensors"))
    write_tokenizer(tokenizer_json, module / "tokenizer.json", None)
    model = sse_np.load(tmp_path)
    assert model.layout == "static" and model.dyt is None


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        sse_np.load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="empty"):
        sse_np.load(tmp_path / "empty")


def test_unrecognised_layout(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    _refuse(tmp_path, "unrecognised model layout", "pytorch_model.bin")


def test_missing_tokenizer(good):
    (good / "tokenizer.json").unlink()
    _refuse(good, "tokenizer.json", "missing")


def test_corrupt_tokenizer(good):
    (good / "tokenizer.json").write_text("{not json")
    _refuse(good, "tokenizer.json", "cannot load tokenizer")


@pytest.mark.parametrize("drop", ["dyt.beta", "embedding.weight"])
def test_missing_key(tmp_path, tokenizer_json, weights, drop):
    del weights[drop]
    folder = make_full(tmp_path / "m", tokenizer_json, weights)
    _refuse(folder, "model.safetensors", "missing keys", drop)


def test_unexpected_key(tmp_path, tokenizer_json, weights):
    weights["extra.thing"] = np.zeros(3, np.float32)
    _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "model.safetensors", "unexpected keys", "extra.thing")


def test_dyt_length_mismatch(tmp_path, tokenizer_json, weights):
    weights["dyt.alpha"] = np.ones(D + 1, np.float32)
    _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "model.safetensors", "dyt.alpha", f"[{D}]")


def test_table_not_2d(tmp_path, tokenizer_json, weights):
    weights["embedding.weight"] = weights["embedding.weight"].reshape(-1)
    _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "embedding.weight", "shape")


@pytest.mark.parametrize("key", ["embedding.weight", "dyt.bias"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values(tmp_path, tokenizer_json, weights, key, bad):
    weights[key].reshape(-1)[7] = bad
    _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "model.safetensors", "NaN or infinite")


def test_non_finite_half_precision(tmp_path, tokenizer_json, weights):
    weights["embedding.weight"] = weights["embedding.weight"].astype(np.float16)
    weights["embedding.weight"][123, 4] = np.inf
    msg = _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "NaN or infinite")
    assert "123" in msg


def test_unsupported_dtype(tmp_path, tokenizer_json, weights):
    weights["embedding.weight"] = weights["embedding.weight"].astype(np.float64)
    _refuse(make_full(tmp_path / "m", tokenizer_json, weights), "embedding.weight", "F64")


def test_truncated_safetensors(good):
    path = good / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    _refuse(good, "model.safetensors", "truncated or corrupt")


def test_garbage_safetensors(good):
    (good / "model.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{abc}" + b"\x00" * 64)
    _refuse(good, "model.safetensors", "corrupt safetensors header")


def test_tokenizer_ids_beyond_table(tmp_path, tokenizer_json):
    small = random_weights(1000, D, seed=1)
    _refuse(make_full(tmp_path / "m", tokenizer_json, small), "tokenizer.json", "30521", "1000 rows")


def _q4(folder, tokenizer_json, weights, vocab=V):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v for k, v in weights.items() if k.startswith("dyt.")}, str(folder / "model_rest.safetensors"))
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(vocab, D // 2), dtype=np.uint8).tobytes()
    scales = rng.uniform(0.1, 1, vocab).astype("<f4").tobytes()
    (folder / "embedding.q4_k_m.bin").write_bytes(codes + scales)
    write_tokenizer(tokenizer_json, folder / "tokenizer.json", None)
    return folder


def test_q4_loads(tmp_path, tokenizer_json, weights):
    model = sse_np.load(_q4(tmp_path / "q", tokenizer_json, weights))
    assert (model.layout, model.vocab_size, model.dim, model.dtype) == ("q4", V, D, "q4")


def test_q4_size_does_not_fit(tmp_path, tokenizer_json, weights):
    folder = _q4(tmp_path / "q", tokenizer_json, weights)
    with open(folder / "embedding.q4_k_m.bin", "ab") as fh:
        fh.write(b"\x00" * 3)
    _refuse(folder, "embedding.q4_k_m.bin", "not a multiple of D/2+4 = 12")


def test_q4_missing_rest(tmp_path, tokenizer_json, weights):
    folder = _q4(tmp_path / "q", tokenizer_json, weights)
    (folder / "model_rest.safetensors").unlink()
    _refuse(folder, "model_rest.safetensors", "missing")


def test_q4_non_finite_scale(tmp_path, tokenizer_json, weights):
    folder = _q4(tmp_path / "q", tokenizer_json, weights)
    raw = bytearray((folder / "embedding.q4_k_m.bin").read_bytes())
    raw[V * D // 2 + 4 * 9 : V * D // 2 + 4 * 10] = np.array([np.nan], "<f4").tobytes()
    (folder / "embedding.q4_k_m.bin").write_bytes(bytes(raw))
    assert "[9]" in _refuse(folder, "embedding.q4_k_m.bin", "NaN or infinite scales")


def test_q4_wrong_vocab_for_tokenizer(tmp_path, tokenizer_json, weights):
    _refuse(_q4(tmp_path / "q", tokenizer_json, weights, vocab=500), "tokenizer.json", "500 rows")


def test_modules_json_pointing_nowhere(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "0_Gone", "type": "x"}]))
    _refuse(tmp_path, "modules.json", "none of the listed module folders")


def test_modules_json_corrupt(tmp_path):
    (tmp_path / "modules.json").write_text("[{")
    _refuse(tmp_path, "modules.json", "cannot read module list")


def test_a_file_is_not_a_model_folder(good):
    _refuse(good / "model.safetensors", "expected a model folder")


def test_copy_of_model_loads_identically(tmp_path, good):
    shutil.copytree(good, tmp_path / "copy")
    np.testing.assert_array_equal(sse_np.load(tmp_path / "copy").encode(["abc"]), sse_np.load(good).encode(["abc"]))
