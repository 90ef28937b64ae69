"""The jitted BERT normalizer and pre-tokenizer against ``tokenizers`` on every Unicode code point.

``sse_np.engine.unicode_tables`` says, per code point, what BertNormalizer +
BertPreTokenizer do to it, and ``engine.wordpiece`` applies that in the
kernel. Here every code point (surrogates aside) goes through both, alone
and inside words (where a combining mark meets a letter and NFD may
reorder), under three normalizer settings: the token ids must equal
``tokenizers``', and at most 1% of the code points may leave the kernel for
``tokenizers`` (the exact slow path), so the kernel, not the fallback, is
what the ids check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

import sse_np.engine
from helpers.models import write_tokenizer
from sse_np.checkpoint.read import Table
from sse_np.tokenizer import TextTokenizer, load_tokenizer

pytest.importorskip("numba", reason="the kernels need numba")

SETTINGS = {  # BertNormalizer flags (clean_text and handle_chinese_chars on, as in every BERT)
    "uncased": {"lowercase": True, "strip_accents": None},  # bert-base-uncased: strips accents too
    "cased": {"lowercase": False, "strip_accents": False},
    "lower-keep-accents": {"lowercase": True, "strip_accents": False},
}
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
MAX_FALLBACK = 0.01  # of the code points: more would mean the tables lost coverage
GROUP = 32  # code points a text


def _forms(c: str) -> str:
    """One text per code point: alone, inside a word, doubled, after a space and next to a punctuation."""
    return f"{c} a{c}b {c}{c}x .{c}"


@pytest.fixture(scope="module", params=sorted(SETTINGS))
def setting(request, tmp_path_factory, tokenizer_json) -> tuple[str, Path]:
    if not sse_np.engine.numba_available():
        pytest.skip("numba disabled (SSE_NP_DISABLE_NUMBA?): no kernel to test")
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    write_tokenizer(tokenizer_json, path, None)
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["normalizer"].update(SETTINGS[request.param])
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return request.param, path


def _backend(tok: Tokenizer):
    from sse_np.engine.numba_backend import NumbaBackend

    backend = NumbaBackend(Table("f32", np.zeros((1, 1), dtype=np.float32)), None, TextTokenizer(tok))
    assert backend.fast
    return backend


def test_every_code_point_matches_tokenizers(setting) -> None:
    name, path = setting
    tok = load_tokenizer(path)
    backend = _backend(tok)
    forms = [_forms(chr(c)) for c in CODE_POINTS]

    # The code points whose text the kernel leaves to tokenizers (words mode gives None for them).
    left = [i for i, w in enumerate(backend.words(forms)) if w is None]
    assert len(left) <= MAX_FALLBACK * len(forms), f"{name}: {len(left)} code points leave the kernel"

    # Token ids through the back-end: the others GROUP to a text (spaces between them, which
    # nothing crosses), the ones left to tokenizers one a text (a whole text falls back).
    kept = np.setdiff1d(np.arange(len(forms)), left)
    groups = [kept[a : a + GROUP] for a in range(0, len(kept), GROUP)] + [[i] for i in left]
    texts = [" ".join(forms[i] for i in g) for g in groups]
    ids, offsets = backend.tokenize(texts, 0, os.cpu_count() or 1)
    expected = tok.encode_batch(texts, add_special_tokens=False)
    lens = np.array([len(e.ids) for e in expected])
    flat = np.fromiter((t for e in expected for t in e.ids), dtype=np.int64, count=int(lens.sum()))
    if not (np.array_equal(np.diff(offsets), lens) and np.array_equal(ids, flat)):
        wrong = [
            [hex(CODE_POINTS[i]) for i in g]
            for g, e, a, b in zip(groups, expected, offsets[:-1], offsets[1:])
            if e.ids != ids[a:b].tolist()
        ]
        pytest.fail(f"{name}: {len(wrong)} texts with other ids, first of their code points: {wrong[:3]}")
