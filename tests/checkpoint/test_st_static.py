"""sentence-transformers StaticEmbedding repositories: ``Normalize`` and ``truncate_dim`` as SentenceTransformer."""

from __future__ import annotations

import numpy as np
import pytest

import sse_np
from helpers import static_models as sm
from helpers.texts import EDGE_TEXTS

st = pytest.importorskip("sentence_transformers", reason="parity needs sentence-transformers (the test extra)")
TOL = 1e-6
TEXTS = EDGE_TEXTS + sm.corpus(40, seed=11) + ["word " * 700]
CASES = [
    ("wordpiece", False, None),
    ("wordpiece", True, 16),
    ("bpe", True, None),
    ("bpe", False, 8),
    ("unigram", True, 12),
    ("unigram", False, None),
]


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("st")
    return {
        case: sm.st_static(root / f"{case[0]}-{case[1]}-{case[2]}", case[0], normalize=case[1], truncate_dim=case[2])[0]
        for case in CASES
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-norm{int(c[1])}-trunc{c[2]}")
def test_parity_with_sentence_transformers(backend, repos, case):
    folder = repos[case]
    model = sse_np.load(folder)
    assert model.format == "sentence-transformers" and model.truncate_dim == case[2]
    ref = st.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(model.encode(TEXTS), ref.encode(TEXTS), rtol=0, atol=TOL)
    for dim in (32, 16, 4):
        for normalize in (False, True):
            want = ref.encode(TEXTS, truncate_dim=dim, normalize_embeddings=normalize)
            got = model.encode(TEXTS, truncate_dim=dim, normalize_embeddings=normalize)
            np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=f"dim={dim} normalize={normalize}")
    np.testing.assert_allclose(model.encode(TEXTS[3]), ref.encode(TEXTS[3]), atol=TOL)
    if backend == "numba":  # measured on the jitted tokenizers: WordPiece's, or the word path for BPE/Unigram
        assert model.engine.fast if case[0] == "wordpiece" else model.engine.word_path


def test_normalize_module_normalizes_before_truncation(repos):
    model = sse_np.load(repos[("bpe", True, None)])
    full = model.encode("a cat and a dog")
    np.testing.assert_allclose(model.encode("a cat and a dog", dim=8), full[:8], atol=TOL)
    assert np.linalg.norm(full[:8]) < 1 - 1e-3


def test_bare_static_folder_keeps_sse_defaults(repos, tmp_path):
    """Without modules.json a StaticEmbedding folder is SSE's static layout: normalized by default."""
    bare = tmp_path / "0_StaticEmbedding"
    bare.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (bare / name).write_bytes((repos[("bpe", False, 8)] / name).read_bytes())
    model = sse_np.load(bare)
    assert model.format == "sse" and model.normalize and model.layout == "static"
