"""Parity with an actual torch computation of the reference, every layout, both code paths."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers.models import random_weights, write_tokenizer
from helpers.reference import TorchSSE, dequantize_q4, quantize_q4, reference_tokenize, torch

DIMS = (512, 256, 128, 64, 32)
TOL = 1e-6


def _valid(texts):
    """Texts tokenizers accepts (lone surrogates are tested separately)."""
    out = []
    for t in texts:
        try:
            t.encode("utf-8")
            out.append(t)
        except UnicodeEncodeError:
            pass
    return out


@pytest.fixture(scope="module")
def ref_ids_512(full_512, texts):
    folder, _ = full_512
    return reference_tokenize(folder / "tokenizer.json", texts)


def test_token_ids_match_tokenizers(full_512, texts, ref_ids_512):
    model = sse_np.load(full_512[0])
    ids, offsets = model.tokenize(texts)
    assert offsets.shape == (len(texts) + 1,) and offsets[0] == 0
    ours = [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]
    assert ours == ref_ids_512
    assert any(100 in row for row in ours), "[UNK] ids must be kept"
    assert max(len(r) for r in ours) > 100_000, "the 1 MB text is not truncated when the file says so"


def test_token_ids_follow_configured_truncation(full_small, texts):
    folder, _ = full_small
    model = sse_np.load(folder)
    ids, offsets = model.tokenize(texts)
    ref = reference_tokenize(folder / "tokenizer.json", texts)
    assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))] == ref
    assert np.diff(offsets).max() == 128  # the shipped tokenizer.json truncates at 128


@pytest.mark.parametrize("normalize", [True, False])
def test_full_layout_parity(backend, full_512, texts, ref_ids_512, normalize):
    folder, weights = full_512
    model = sse_np.load(folder)
    ref = TorchSSE(weights["embedding.weight"], (weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"]))
    y = ref.pooled(ref_ids_512)
    for dim in DIMS:
        want = ref.finish(y, dim, normalize)
        got = model.encode(texts, dim=dim, normalize=normalize, batch_size=257)
        assert got.shape == (len(texts), dim) and got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=f"dim={dim}")


def test_small_dim_parity_with_truncating_tokenizer(backend, full_small, texts):
    folder, weights = full_small
    model = sse_np.load(folder)
    ids = reference_tokenize(folder / "tokenizer.json", texts)
    y = TorchSSE(weights["embedding.weight"], (weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"])).pooled(
        ids
    )
    for dim in (48, 32, 17, 1):
        for normalize in (True, False):
            np.testing.assert_allclose(
                model.encode(texts, dim, normalize=normalize), TorchSSE.finish(y, dim, normalize), rtol=0, atol=TOL
            )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_tables(backend, tmp_path, tokenizer_json, texts, dtype):
    weights = random_weights(30522, 64, seed=3)
    t = {k: torch.from_numpy(v).to(getattr(torch, dtype)) for k, v in weights.items()}
    from safetensors.torch import save_file as save_torch

    save_torch(t, str(tmp_path / "model.safetensors"))
    write_tokenizer(tokenizer_json, tmp_path / "tokenizer.json", None)
    model = sse_np.load(tmp_path)
    assert model.dtype == dtype
    # The reference computes in float32 from the stored (rounded) values.
    f32 = {k: v.to(torch.float32).numpy() for k, v in t.items()}
    ref = TorchSSE(f32["embedding.weight"], (f32["dyt.alpha"], f32["dyt.beta"], f32["dyt.bias"]))
    y = ref.pooled(reference_tokenize(tmp_path / "tokenizer.json", texts))
    for dim in (64, 32):
        np.testing.assert_allclose(model.encode(texts, dim), ref.finish(y, dim, True), rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def q4_512(tmp_path_factory, tokenizer_json):
    weights = random_weights(30522, 512, seed=4)
    folder = tmp_path_factory.mktemp("q4")
    (folder / "embedding.q4_k_m.bin").write_bytes(quantize_q4(weights["embedding.weight"]))
    save_file({k: v for k, v in weights.items() if k.startswith("dyt.")}, str(folder / "model_rest.safetensors"))
    write_tokenizer(tokenizer_json, folder / "tokenizer.json", None)
    return folder, weights


@pytest.mark.parametrize("normalize", [True, False])
def test_q4_layout_parity(backend, q4_512, texts, normalize):
    folder, weights = q4_512
    model = sse_np.load(folder)
    assert model.layout == "q4" and model.vocab_size == 30522 and model.dim == 512
    table = dequantize_q4(folder / "embedding.q4_k_m.bin", 512)
    ref = TorchSSE(table, (weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"]))
    y = ref.pooled(reference_tokenize(folder / "tokenizer.json", texts))
    for dim in (*DIMS, 31):
        np.testing.assert_allclose(
            model.encode(texts, dim, normalize=normalize),
            ref.finish(y, dim, normalize),
            rtol=0,
            atol=TOL,
            err_msg=f"dim={dim}",
        )
    # The packed codes stay packed: 8 MB, not a 62 MB float table.
    assert model.table.data.dtype == np.uint8 and model.table.data.nbytes == 30522 * 256


def test_q4_dequantization_matches_reference(q4_512):
    folder, _ = q4_512
    model = sse_np.load(folder)
    np.testing.assert_array_equal(model.table.dense(), dequantize_q4(folder / "embedding.q4_k_m.bin", 512))


@pytest.fixture(scope="module")
def static_repo(tmp_path_factory, tokenizer_json):
    """A sentence-transformers repository with a 0_StaticEmbedding module (no DyT)."""
    root = tmp_path_factory.mktemp("static")
    weight = np.random.default_rng(5).standard_normal((30522, 128), dtype=np.float32)
    module = root / "0_StaticEmbedding"
    module.mkdir()
    save_file({"embedding.weight": weight}, str(module / "model.safetensors"))
    write_tokenizer(tokenizer_json, module / "tokenizer.json", None)
    (root / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}]'
    )
    return root, weight


def test_static_layout_parity(backend, static_repo, texts):
    root, weight = static_repo
    model = sse_np.load(root)
    assert model.layout == "static" and model.dyt is None
    ref = TorchSSE(weight, None)
    y = ref.pooled(reference_tokenize(root / "0_StaticEmbedding" / "tokenizer.json", texts))
    for dim in (128, 64, 32):
        for normalize in (True, False):
            np.testing.assert_allclose(
                model.encode(texts, dim, normalize=normalize), ref.finish(y, dim, normalize), rtol=0, atol=TOL
            )


def test_empty_text_is_normalized_dyt_of_bias(backend, full_512):
    folder, w = full_512
    model = sse_np.load(folder)
    for text in ("", "   ", "\n\t"):
        raw = model.encode(text, normalize=False)
        np.testing.assert_allclose(raw, w["dyt.beta"] * np.tanh(w["dyt.bias"]), atol=TOL)
        y = (w["dyt.beta"] * np.tanh(w["dyt.bias"]))[:64]
        np.testing.assert_allclose(model.encode(text, 64), y / np.linalg.norm(y), atol=TOL)


def test_module_level_encode_matches_torch(monkeypatch, backend, full_512):
    """sse_np.encode on a model named by SSE_NP_MODEL, through the default-model path."""
    import sse_np.defaults as api

    folder, w = full_512
    monkeypatch.setenv("SSE_NP_MODEL", str(folder))
    monkeypatch.setattr(api, "_default", None)
    texts = ["what is static embedding", "", "CJK 日本"]
    ids = reference_tokenize(folder / "tokenizer.json", texts)
    ref = TorchSSE(w["embedding.weight"], (w["dyt.alpha"], w["dyt.beta"], w["dyt.bias"]))
    np.testing.assert_allclose(sse_np.encode(texts), ref(ids, 512, True), atol=TOL)  # default: the full width
    np.testing.assert_allclose(sse_np.encode(texts, dim=256), ref(ids, 256, True), atol=TOL)
    np.testing.assert_allclose(sse_np.encode(texts[0], dim=64), ref(ids, 64, True)[0], atol=TOL)


def test_our_quantizer_is_the_reference_quantizer(full_512, tmp_path, texts):
    """sse_np.checkpoint.write.save_q4 writes the bytes the torch reference quantizer writes."""
    from sse_np.checkpoint.write import save_q4

    folder, weights = full_512
    out = save_q4(sse_np.load(folder), tmp_path / "q4")
    assert (out / "embedding.q4_k_m.bin").read_bytes() == quantize_q4(weights["embedding.weight"])
    model = sse_np.load(out)
    assert model.layout == "q4"
    table = dequantize_q4(out / "embedding.q4_k_m.bin", 512)
    ref = TorchSSE(table, (weights["dyt.alpha"], weights["dyt.beta"], weights["dyt.bias"]))
    sample = texts[:500]
    want = ref(reference_tokenize(out / "tokenizer.json", sample), 256, True)
    np.testing.assert_allclose(model.encode(sample, 256), want, rtol=0, atol=TOL)
