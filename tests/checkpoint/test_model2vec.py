"""model2vec checkpoints: loaded by format detection, vectors equal to model2vec's own ``StaticModel.encode``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import sse_np
from helpers import static_models as sm
from helpers.texts import EDGE_TEXTS

model2vec = pytest.importorskip("model2vec", reason="parity needs model2vec (the test extra)")
TOL = 1e-6
TEXTS = EDGE_TEXTS + sm.corpus(40, seed=9) + ["word " * 700, "café " * 300 + "[UNK] tail"]


@pytest.fixture(scope="module")
def m2v(tmp_path_factory):
    """Folders by name: MiniLM-based variants and models on trained BPE / Unigram tokenizers."""
    root = tmp_path_factory.mktemp("m2v")
    out = {v: sm.minilm_model2vec(root / v, v) for v in ("plain", "weighted", "mapped", "float16", "int8")}
    out["raw"] = sm.minilm_model2vec(root / "raw", "plain", normalize=False)
    out["bpe"] = sm.trained_model2vec(root / "bpe", "bpe")
    out["unigram"] = sm.trained_model2vec(root / "unigram", "unigram", normalize=True)
    return out


def reference(folder, dim=None, as_float32=False):
    ref = model2vec.StaticModel.from_pretrained(folder, dimensionality=dim)
    if as_float32:  # model2vec averages float16 rows in float16; compare the same values in float32
        ref.embedding = ref.embedding.astype(np.float32)
    return ref


@pytest.mark.parametrize("name", ["plain", "weighted", "mapped", "float16", "int8", "raw", "bpe", "unigram"])
def test_parity_with_static_model_at_every_dim(backend, m2v, name):
    model = sse_np.load(m2v[name])
    assert model.format == "model2vec" and model.layout == "model2vec"
    for dim in sorted({model.dim, 32, 16, 5}):
        ref = reference(m2v[name], dim, as_float32=name == "float16").encode(TEXTS)
        got = model.encode(TEXTS, dim)
        scale = 1.0 if name != "int8" or model.normalize else float(np.abs(ref).max())
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL * scale, err_msg=f"{name} dim={dim}")
    if backend == "numba":  # the parity above was measured on the jitted tokenizers
        assert model.engine.fast if name not in ("bpe", "unigram") else model.engine.word_path


def test_float16_matches_model2vec_as_it_computes(m2v):
    """model2vec returns float16 means for float16 tables: equal up to that rounding."""
    ref = reference(m2v["float16"]).encode(TEXTS)
    assert ref.dtype == np.float16
    np.testing.assert_allclose(sse_np.load(m2v["float16"]).encode(TEXTS), ref.astype(np.float32), atol=2e-3)


def test_variants_keep_their_storage(m2v):
    assert sse_np.load(m2v["float16"]).dtype == "float16"
    int8 = sse_np.load(m2v["int8"])
    assert int8.dtype == "int8" and int8.table.data.dtype == np.int8
    mapped = sse_np.load(m2v["mapped"])
    assert mapped.vocab_size == 4000 and mapped.engine.mapping is not None and mapped.engine.weights is not None


@pytest.mark.parametrize("max_length", [1, 3, 16, 600])
def test_max_length_as_model2vec(backend, m2v, max_length):
    """Characters cut to max_length x median token length, tokens truncated, then unknown tokens removed."""
    for name in ("plain", "bpe"):
        model = sse_np.load(m2v[name])
        ref = reference(m2v[name]).encode(TEXTS, max_length=max_length)
        np.testing.assert_allclose(model.encode(TEXTS, max_length=max_length), ref, atol=TOL, err_msg=name)


def test_default_max_length_is_512_and_config_overrides_it(m2v, tmp_path):
    long = ["alpha beta " * 400 + "gamma " * 400]
    model = sse_np.load(m2v["plain"])
    assert model.max_length == 512
    np.testing.assert_allclose(model.encode(long), reference(m2v["plain"]).encode(long), atol=TOL)
    assert not np.allclose(model.encode(long), model.encode(long, max_length=2000), atol=1e-3)
    folder = sm.minilm_model2vec(tmp_path / "m", "plain")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_length": 8}))
    assert sse_np.load(folder).max_length == 8
    np.testing.assert_allclose(sse_np.load(folder).encode(long), reference(folder).encode(long), atol=TOL)


def test_unknown_tokens_are_removed(m2v):
    model = sse_np.load(m2v["plain"])
    unk = model.tokenizer.token_to_id("[UNK]")
    assert model.engine.drop_id == unk
    # A text of only unknown tokens has no tokens left: the zero vector, as model2vec returns.
    assert not model.encode("\u2603\u2603 [UNK]").any()
    np.testing.assert_allclose(model.encode("cat \u2603"), model.encode("cat"), atol=TOL)


def test_normalize_default_follows_config(m2v):
    assert sse_np.load(m2v["plain"]).normalize is True
    raw = sse_np.load(m2v["raw"])
    assert raw.normalize is False
    assert abs(np.linalg.norm(raw.encode("a document about cats")) - 1) > 1e-3
    np.testing.assert_allclose(np.linalg.norm(raw.encode("a cat", normalize=True)), 1, atol=1e-6)


def test_wordpiece_takes_the_jitted_wordpiece_bpe_and_unigram_the_word_path(m2v):
    pytest.importorskip("numba")
    wordpiece = sse_np.load(m2v["plain"], backend="numba")
    assert wordpiece.engine.fast and not wordpiece.engine.word_path
    for name in ("bpe", "unigram"):
        model = sse_np.load(m2v[name], backend="numba")
        assert model.engine.word_path and not model.engine.fast


def test_unsupported_pipeline_keeps_tokenizers_and_parity(m2v, tmp_path):
    """A normalizer the word path does not reproduce (Strip): tokenizers tokenizes, vectors still model2vec's."""
    pytest.importorskip("numba")
    from tokenizers import normalizers

    tok = sm.trained_tokenizer("bpe")
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Lowercase()])
    vectors = np.random.default_rng(4).standard_normal((tok.get_vocab_size(), 16)).astype(np.float32)
    folder = sm.save_model2vec(tmp_path / "strip", tok, vectors)
    model = sse_np.load(folder, backend="numba")
    assert model.engine.status == "numba" and not model.engine.word_path and not model.engine.fast
    np.testing.assert_allclose(model.encode(TEXTS), reference(folder).encode(TEXTS), rtol=0, atol=TOL)


def _copy(folder, dest):
    dest.mkdir()
    for f in folder.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def test_mapping_out_of_range_is_refused(m2v, tmp_path):
    folder = _copy(m2v["mapped"], tmp_path / "bad")
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    tensors["mapping"] = tensors["mapping"].copy()
    tensors["mapping"][7] = 4000
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(sse_np.ModelLoadError, match=r"mapping points at rows 0\.\.4000.*4000 rows"):
        sse_np.load(folder)


def test_short_weights_and_missing_tokenizer_are_refused(m2v, tmp_path):
    folder = _copy(m2v["weighted"], tmp_path / "w")
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    tensors["weights"] = tensors["weights"][:100]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(sse_np.ModelLoadError, match=r"weights has shape \[100\], expected \[30522\]"):
        sse_np.load(folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(sse_np.ModelLoadError, match=r"tokenizer\.json: missing"):
        sse_np.load(folder)


def test_unknown_format_is_refused(tmp_path):
    save_file({"something": np.zeros((4, 4), dtype=np.float32)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "tokenizer.json").write_text((sm.minilm_folder() / "tokenizer.json").read_text())
    with pytest.raises(sse_np.ModelLoadError, match="unexpected keys"):
        sse_np.load(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "weights.npy").write_bytes(b"x")
    with pytest.raises(sse_np.ModelLoadError, match="unrecognised model layout"):
        sse_np.load(other)


def test_arrow_column_gives_the_same_vectors(backend, m2v):
    """A Parquet/Arrow string column (read in place by the numba path) on a model2vec model."""
    pa = pytest.importorskip("pyarrow")
    model = sse_np.load(m2v["weighted"])
    np.testing.assert_array_equal(model.encode(pa.array(TEXTS)), model.encode(TEXTS))
    np.testing.assert_allclose(
        model.encode(pa.chunked_array([TEXTS[:5], TEXTS[5:]])), reference(m2v["weighted"]).encode(TEXTS), atol=TOL
    )


def test_setting_max_length_on_the_model_changes_the_default(m2v):
    model = sse_np.load(m2v["plain"])
    model.max_length = 3
    np.testing.assert_allclose(model.encode(TEXTS), reference(m2v["plain"]).encode(TEXTS, max_length=3), atol=TOL)


def test_other_wordpiece_vocabulary_with_bert_settings_takes_the_fast_path(tmp_path):
    """Not bert-base's vocabulary: the fast path is chosen from tokenizer.json's normalizer and pre-tokenizer."""
    pytest.importorskip("numba")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)  # a cased vocabulary
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        sm.corpus(300) + [t.upper() for t in sm.corpus(50, seed=1)],
        trainers.WordPieceTrainer(vocab_size=400, special_tokens=["[UNK]"], show_progress=False),
    )
    vectors = np.random.default_rng(8).standard_normal((tok.get_vocab_size(), 24)).astype(np.float32)
    folder = sm.save_model2vec(tmp_path / "cased", tok, vectors, normalize=True)
    model = sse_np.load(folder, backend="numba")
    assert model.engine.fast and model.engine.tokenizer.fast_spec["lowercase"] is False
    texts = TEXTS + [t.upper() for t in TEXTS]
    np.testing.assert_allclose(model.encode(texts), reference(folder).encode(texts), atol=TOL)
