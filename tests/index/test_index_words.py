"""sse_np.Index with whole-word BM25 tokens (lexical="words") and stemming (stemmer="english", the stem extra)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import sse_np
from sse_np import Index
from sse_np.errors import MissingDependencyError

pytest.importorskip("Stemmer", reason="PyStemmer is the stem extra (in the test extra)")

DOCS = [
    "The cats were running quickly across the gardens.",
    "A recipe for apple pies and baked apples.",
    "Markets fell on Monday's trading session.",
    "Café owners complained about rising rents.",
]


@pytest.fixture(scope="module")
def model():
    return sse_np.default_model()


def _bm25_ids(index: Index, query: str) -> list:
    return [h["id"] for h in index.search(query, k=len(index), mode="bm25") if h["score"] > 0]


def test_stemming_matches_other_forms_of_a_word(model):
    words, stems = Index(model, lexical="words"), Index(model, stemmer="english")
    for ix in (words, stems):
        ix.add(DOCS)
    assert stems.lexical == "words" and words.stemmer is None
    assert _bm25_ids(words, "cat runs") == []  # "cats", "running" are other words
    assert _bm25_ids(stems, "cat runs") == [0]
    assert _bm25_ids(stems, "apple pie") == [1]
    assert _bm25_ids(words, "cafe") == [3]  # the model's normalizer strips accents, in words too


def test_words_need_no_model_vocabulary_entry(model):
    ix = Index(model, lexical="words")
    ix.add(["zxqvbnm is not a wordpiece", "something else"])
    assert _bm25_ids(ix, "zxqvbnm") == [0]
    assert ix.search("unseenword", k=1, mode="bm25")[0]["score"] == 0.0  # a word no document has matches nothing


def test_stopwords_and_punctuation_are_not_terms(model):
    ix = Index(model, lexical="words")
    ix.add(["the cat.", "a dog!"])
    assert ix._words is not None and sorted(ix._words.terms()) == ["cat", "dog"]
    with_stop = Index(model, lexical="words", stopwords=False)
    with_stop.add(["the cat.", "a dog!"])
    assert with_stop._words is not None and sorted(with_stop._words.terms()) == ["a", "cat", "dog", "the"]


def test_save_load_keeps_the_analyzer(model, tmp_path):
    ix = Index(model, stemmer="english", precision="int8")
    ix.add(DOCS[:2])
    ix.add(DOCS[2:], ids=["m", "c"])
    ix.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["version"] == 3 and manifest["bm25"]["stemmer"] == "english"  # 3: with word pairs
    loaded = Index.load(tmp_path / "ix", model, verify=True)
    assert (loaded.lexical, loaded.stemmer) == ("words", "english")
    for mode in ("bm25", "hybrid"):
        assert loaded.search(["cat runs", "falling market"], k=3, mode=mode) == ix.search(
            ["cat runs", "falling market"], k=3, mode=mode
        )


def test_each_lexical_setting_saves_its_own_format_version(model, tmp_path):
    """Pieces stay version 1, plain words 2, words+pieces or word pairs 3: older readers refuse the newer."""
    default = Index(model)
    assert (default.lexical, default.stemmer, default.pair_weight) == ("words+pieces", None, 0.3)
    settings = (
        ("pieces", {"lexical": "pieces"}, 1, False),
        ("words", {"lexical": "words", "pair_weight": 0}, 2, True),
        ("pairs", {"lexical": "words"}, 3, True),
        ("default", {}, 3, True),
    )
    for name, kwargs, version, has_terms in settings:
        ix = Index(model, **kwargs)
        ix.add(DOCS)
        ix.save(tmp_path / name)
        assert json.loads((tmp_path / name / "manifest.json").read_text())["version"] == version
        assert (tmp_path / name / "bm25_terms.npy").exists() == has_terms
        assert (tmp_path / name / "bm25_pairs.npy").exists() == (version == 3)


def test_an_older_pieces_index_loads_as_pieces(model, tmp_path):
    """An index saved before the analyzer was recorded (no bm25.lexical) is WordPiece BM25, as it was built."""
    ix = Index(model, lexical="pieces")
    ix.add(DOCS)
    ix.save(tmp_path / "ix")
    manifest_path = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["bm25"]["lexical"], manifest["bm25"]["stemmer"]  # what format version 1 wrote before
    manifest_path.write_text(json.dumps(manifest))
    loaded = Index.load(tmp_path / "ix", model, verify=True)
    assert (loaded.lexical, loaded.stemmer) == ("pieces", None)
    queries = ["cat runs", "falling market", "cafe"]
    assert loaded.search(queries, k=4, mode="bm25") == ix.search(queries, k=4, mode="bm25")
    assert loaded.lexical_tokens(["cats"])[0].tolist() == model.tokenize(["cats"])[0].tolist()  # piece ids


def test_without_the_extra_one_line_error_names_it(model, tmp_path, monkeypatch):
    ix = Index(model, stemmer="english")
    ix.add(DOCS)
    ix.save(tmp_path / "ix")
    monkeypatch.setitem(sys.modules, "Stemmer", None)  # as if PyStemmer were not installed
    for make in (lambda: Index(model, stemmer="english"), lambda: Index.load(tmp_path / "ix", model)):
        with pytest.raises(MissingDependencyError, match=r"'stem' extra: pip install -e '\.\[stem\]'") as err:
            make()
        assert "\n" not in str(err.value)


def test_bad_analyzer_arguments(model):
    with pytest.raises(ValueError, match="stemmer must be one of"):
        Index(model, stemmer="klingon")
    with pytest.raises(ValueError, match="lexical must be one of"):
        Index(model, lexical="letters")
    with pytest.raises(ValueError, match="stemming applies to whole words"):
        Index(model, lexical="pieces", stemmer="english")


@pytest.mark.parametrize("lexical", ["words", "words+pieces"])
def test_corrupt_vocabulary_is_refused(model, tmp_path, lexical):
    from sse_np.errors import IndexFormatError
    from sse_np.index import store

    ix = Index(model, lexical=lexical)
    ix.add(DOCS)
    ix.save(tmp_path / "ix")
    path = tmp_path / "ix" / "bm25_terms.npy"
    terms = np.load(path)
    np.save(path, terms[: terms.tolist().index(ord("\n"))])  # one word left of many
    manifest_path = tmp_path / "ix" / store.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["bm25_terms.npy"]["bytes"] = path.stat().st_size
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match=r"bm25_terms\.npy: corrupt vocabulary"):
        Index.load(tmp_path / "ix", model)


def test_fast_ascii_path_gives_the_tokenizers_own_words(model):
    """Words equal the model's normalizer + pre-tokenizer's (less stopwords and punctuation), any text (the
    ASCII stretches of non-ASCII text take the fast path too)."""
    import re

    from sse_np.index.stopwords import ENGLISH_STOPWORDS

    norm, pre = model.tokenizer.normalizer, model.tokenizer.pre_tokenizer
    rng = np.random.default_rng(3)
    alphabet = [chr(c) for c in range(128)] + list("éÅß–μ°€©¶_中文") + ["Hello", "The", "don't", "e-mail"] * 20
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 60)))) for _ in range(400)]
    texts += ["Tab\tsep\x0bvt\x1cfs_under_score", "CAFÉ au lait", "x\x00y\x7fz", ""]
    # Non-ASCII chunks go to the tokenizer alone: Unicode spaces inside and beside them, CJK, combining marks,
    # a C1 control that Python splits at and BERT deletes, zero-width characters.
    texts += ["é\u200ax y", "abc\u200a1.55; CI", "x\u3000y  z\u00a0w", "中文abc def", " \u0301a Ünïcödé-wörds"]
    texts += ["a\x85b c", "zero\u200bwidth joiner\u200d!", "l’été — «quotes» ok.", "\u2028line\u2029para"]
    ix = Index(model, lexical="words")
    assert ix._words is not None
    for text in texts:
        expected = [
            w
            for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))
            if w not in ENGLISH_STOPWORDS and re.search(r"[^\W_]", w)
        ]
        assert ix._words.words(text) == expected, repr(text)


def test_a_query_word_no_document_had_is_found_once_one_has_it(model):
    ix = Index(model)
    ix.add(["Cats purr when content."])
    assert _bm25_ids(ix, "zebras") == []  # looked up, not numbered and not remembered as unknown
    assert ix._words is not None and len(ix._words) == 4
    ix.add(["Zebras graze on the plains."])
    assert _bm25_ids(ix, "zebras") == [1]
    assert ix._words.terms() == ["cats", "purr", "when", "content", "zebras", "graze", "plains"]
