"""The jitted word path (BPE, Unigram, WordLevel): token ids equal to ``tokenizers``' own, on every pre-tokenizer edge.

Tokenizers are trained here with ``tokenizers``' trainers, one per model x
pre-tokenizer x normalizer, saved as model2vec folders, and compared with
``Tokenizer.encode_batch(add_special_tokens=False)`` on random ASCII texts
built from the pieces each pre-tokenizer treats specially. A spy on the
``tokenizers`` fallback proves the kernel produced the ids: only texts with
a non-ASCII byte, an added token's text or a very long word reach it.
"""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

import sse_np
from helpers import static_models as sm
from sse_np.tokenizer.words import word_path_spec

pytest.importorskip("numba", reason="the word path is the numba back-end's")
pytest.importorskip("model2vec", reason="the test models are saved by model2vec (the test extra)")

PIECES = [
    *["the", "The", "DOG", "cat's", "it'S", "Don't", "we'LL", "I'm", "they've", "you'RE", "he'd"],
    *["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", "''", "'", "'S", "' s", "!'s", " 's"],
    *["123", "4.5", "1e-10", "!!!", "...", "-", "_", "x_y", "__", "a1b2", "$%^&*", "(x)"],
    *[" ", "  ", "   ", "\t", "\n", "\r\n", "\x0b", "\x0c", " \t ", "\n\n", "\x1c", "\x1f", "\x00", "\x07", "\x7f"],
    *["~", "{}", "`", "Qz", "|", "zq" * 20, "b" * 100, "ab" * 70],
]
OTHER = ["[UNK]", "<unk>", "[unk]", "café", "中", "\u00a0", "\u2581"]  # fall back: added tokens, non-ASCII
PRE = {
    "whitespace": pre_tokenizers.Whitespace,
    "whitespace_split": pre_tokenizers.WhitespaceSplit,
    "byte_level_prefix": lambda: pre_tokenizers.ByteLevel(add_prefix_space=True),
    "byte_level": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
    "metaspace": pre_tokenizers.Metaspace,
    "metaspace_first": lambda: pre_tokenizers.Metaspace(prepend_scheme="first"),
    "metaspace_never": lambda: pre_tokenizers.Metaspace(prepend_scheme="never"),
}
NORMALIZERS = {
    "none": lambda: None,
    "nfkc_lower": lambda: normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
    "lower": normalizers.Lowercase,
}


def edge_texts(n: int = 1500, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    fixed = ["", " ", "  ", "\t", "\n ", "a", " a", "a ", "  a  ", "'s", " 's", "A's", "'", "x" * 97, "x" * 96]
    out = fixed + ["".join(rng.choice(PIECES, size=rng.integers(1, 14))) for _ in range(n)]
    out += ["".join(rng.choice(PIECES + OTHER, size=rng.integers(1, 8))) for _ in range(n // 5)]
    return out


def train(kind: str, pre: str, normalizer: str) -> Tokenizer:
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"], show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=200, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
        )
    norm = NORMALIZERS[normalizer]()
    if norm is not None:
        tok.normalizer = norm
    tok.pre_tokenizer = PRE[pre]()
    # Runs of whitespace too, so that merging or splitting them wrongly changes the ids.
    extra = ["Don't we'll I'm you're they've he'd 123 4.5 !!! ... x_y", "a  b   c    d\t\te\n\nf  \t g   "] * 20
    tok.train_from_iterator([*sm.corpus(), *extra], trainer=trainer)
    return tok


def load(tmp_path, tok: Tokenizer, **kwargs):
    vectors = np.random.default_rng(1).standard_normal((tok.get_vocab_size(), 8)).astype(np.float32)
    folder = sm.save_model2vec(tmp_path / "m", tok, vectors, normalize=False)
    return sse_np.load(folder, backend="numba", **kwargs), folder


def reference_ids(folder, texts: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def spy_fallbacks(model, monkeypatch) -> list[str]:
    """Record every text the word path leaves to ``tokenizers``."""
    path = model.engine._numba.word_path
    seen: list[str] = []
    real = path.tokenizer

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def __call__(self, texts, start=0, threads=None):
            seen.extend(texts)
            return real(texts, start, threads)

    monkeypatch.setattr(path, "tokenizer", Spy())
    return seen


def ids_of(model, texts):
    ids, offsets = model.engine.tokenize(texts, 0, 2)
    return [ids[a:b].tolist() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def must_fall_back(text: str) -> bool:
    low = text.lower()
    return not text.isascii() or "[unk]" in low or "<unk>" in low or any(len(w) > 90 for w in text.split(" "))


@pytest.mark.parametrize("normalizer", list(NORMALIZERS))
@pytest.mark.parametrize("pre", list(PRE))
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_ids_equal_tokenizers(tmp_path, monkeypatch, kind, pre, normalizer):
    tok = train(kind, pre, normalizer)
    model, folder = load(tmp_path, tok)
    model.encode(["warm up"])
    assert model.engine.word_path and not model.engine.fast
    texts = edge_texts(seed=len(pre) + len(normalizer))
    fallbacks = spy_fallbacks(model, monkeypatch)
    got = ids_of(model, texts)
    want = reference_ids(folder, texts)
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} texts differ, first: {bad[0]!r}"
    assert fallbacks and all(must_fall_back(t) for t in fallbacks)
    assert len(fallbacks) < len(texts) // 4  # the rest came from the kernel
    # A second pass reads every word from the table: same ids, nothing new to learn.
    entries = model.engine._numba.word_path.holder.entries
    assert ids_of(model, texts) == want and model.engine._numba.word_path.holder.entries == entries


UNICODE = [
    *["café", "CAFÉ", "naïve", "e\u0301", "\u0301", " \u0301x", "中文", "日本語", "ｶﾀｶﾅ", "🙂", "👨\u200d👩\u200d👧"],
    *["\u00a0", "\u2002", "\u3000", "\u2028", "\u0085", "\u200b", "\ufeff", "\u1680", " \u00a0", "\u00a0 "],
    *["ﬁ", "ﬀ", "Σ", "ΣΑΣ", "İ", "ß", "ẞ", "１２３", "Ａｂ", "½", "²", "\ufdfa", "\u2581", "Ġ", "ĉ"],
    *["’s", "’", "“x”", "—", "…", "x’ll", "\u00e9'S", "é's", "'é"],
]


def unicode_texts(n: int = 1200, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    fixed = ["é", " é", "é ", "\u00a0x", "x\u00a0", " \u00a0 x", "\u00a0\u00a0", "ﬁ" * 40, "é" * 60]
    pool = PIECES + UNICODE + UNICODE
    return fixed + ["".join(rng.choice(pool, size=rng.integers(1, 14))) for _ in range(n)]


@pytest.mark.parametrize("normalizer", ["none", "nfkc_lower"])
@pytest.mark.parametrize("pre", list(PRE))
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_ids_equal_tokenizers_on_non_ascii_texts(tmp_path, monkeypatch, kind, pre, normalizer):
    """Texts with non-ASCII characters: ASCII chunks split by the kernel, other chunks through the pipeline alone."""
    tok = train(kind, pre, normalizer)
    model, folder = load(tmp_path, tok)
    model.encode(["warm up"])
    texts = unicode_texts(seed=len(pre))
    fallbacks = spy_fallbacks(model, monkeypatch)
    got = ids_of(model, texts)
    want = reference_ids(folder, texts)
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} texts differ, first: {bad[0]!r}"
    assert len(fallbacks) < len(texts) // 4
    assert ids_of(model, texts) == want  # from the table


@pytest.mark.parametrize("direction", ["right", "left"])
def test_tokenizer_truncation_both_directions(tmp_path, monkeypatch, direction):
    """An SSE-layout folder keeps tokenizer.json's truncation: ids as tokenizers cuts them, vectors as NumPy's."""
    from safetensors.numpy import save_file

    from helpers.models import random_weights

    tok = train("bpe", "byte_level_prefix", "nfkc_lower")
    tok.enable_truncation(7, direction=direction)
    tok.no_padding()
    folder = tmp_path / "sse"
    folder.mkdir()
    save_file(random_weights(tok.get_vocab_size(), 16, 0), str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    model = sse_np.load(folder, backend="numba")
    assert model.engine.tokenizer.truncation == (7, direction == "left")
    texts = edge_texts(400, seed=5)
    assert ids_of(model, texts) == reference_ids(folder, texts)
    assert model.engine.word_path
    got = model.encode(texts)
    monkeypatch.setenv("SSE_NP_DISABLE_NUMBA", "1")
    np.testing.assert_allclose(got, sse_np.load(folder, backend="numpy").encode(texts), rtol=0, atol=1e-6)


def test_vectors_equal_model2vec_with_max_length(tmp_path):
    """model2vec's max_length: characters cut, tokens truncated, then unknown tokens dropped."""
    import model2vec

    tok = train("bpe", "byte_level_prefix", "nfkc_lower")
    model, folder = load(tmp_path, tok)
    texts = [*edge_texts(400, seed=5), *unicode_texts(300, seed=6), "the dog " * 400, "café dog " * 300]
    ref = model2vec.StaticModel.from_pretrained(folder)
    np.testing.assert_allclose(model.encode(texts), ref.encode(texts), rtol=0, atol=1e-6)  # default: 512
    for max_length in (3, 40, 2000):
        want = ref.encode(texts, max_length=max_length)
        np.testing.assert_allclose(model.encode(texts, max_length=max_length), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.encode(texts[7]), ref.encode(texts[7]), rtol=0, atol=1e-6)
    assert model.engine.word_path
    # Single queries take their own latency path: same vectors, texts it cannot do included.
    for max_length in (None, 3):
        want = model.encode(texts, max_length=max_length)
        for i in range(0, len(texts), 7):
            np.testing.assert_array_equal(model.encode(texts[i], max_length=max_length), want[i], err_msg=texts[i])


def test_a_small_table_starts_afresh_and_stays_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("SSE_NP_TOKEN_CACHE_BYTES", str(300_000))
    tok = train("unigram", "metaspace", "nfkc_lower")
    model, folder = load(tmp_path, tok)
    holder = model.engine._numba.word_path.holder
    assert holder.budget == 300_000
    texts = [" ".join(f"w{i}x{j}" for j in range(30)) for i in range(800)]  # 24,000 distinct words
    want = reference_ids(folder, texts)
    for part in range(0, 800, 100):
        assert ids_of(model, texts[part : part + 100]) == want[part : part + 100]
        assert holder.nbytes <= 300_000
    assert ids_of(model, texts) == want


def test_threads_share_one_table(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    tok = train("bpe", "whitespace", "lower")
    model, folder = load(tmp_path, tok)
    texts = edge_texts(2000, seed=9)
    want = reference_ids(folder, texts)
    chunks = [texts[i::6] for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda c: ids_of(model, c), chunks))
    for i, c in enumerate(got):
        assert c == want[i::6]


def _spec(tok: Tokenizer) -> dict:
    import json

    return json.loads(tok.to_str())


def test_detection_from_tokenizer_json():
    supported = _spec(train("bpe", "byte_level_prefix", "nfkc_lower"))
    assert word_path_spec(supported) == {
        "mode": 2,
        "prefix": True,
        "replacement": "",
        "lower": True,
        "added": ["[UNK]"],
    }
    assert word_path_spec(_spec(train("unigram", "metaspace_never", "none")))["prefix"] is False
    # Pipelines it does not reproduce keep the tokenizers path.
    for change in (
        {"normalizer": {"type": "Replace", "pattern": {"String": "a"}, "content": "b"}},
        {"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Strip"}]}},
        {"pre_tokenizer": {"type": "Punctuation", "behavior": "Isolated"}},
        {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}},
        {"pre_tokenizer": {"type": "Metaspace", "replacement": "_", "prepend_scheme": "always", "split": True}},
        {"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False}},
        {"pre_tokenizer": None},
        {"model": {**supported["model"], "dropout": 0.1}},
        {"post_processor": {"type": "Mystery"}},
    ):
        assert word_path_spec({**supported, **change}) is None, change
    wordpiece = _spec(Tokenizer.from_file(str(sm.minilm_folder() / "tokenizer.json")))
    assert word_path_spec(wordpiece) is None


def test_unsupported_pipeline_stays_on_tokenizers_and_exact(tmp_path):
    import model2vec

    tok = train("bpe", "whitespace", "none")
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Lowercase()])
    model, folder = load(tmp_path, tok)
    texts = edge_texts(300, seed=2)
    model.encode(texts)
    assert model.engine.status == "numba" and not model.engine.word_path
    assert ids_of(model, texts) == reference_ids(folder, texts)
    ref = model2vec.StaticModel.from_pretrained(folder)
    np.testing.assert_allclose(model.encode(texts), ref.encode(texts), rtol=0, atol=1e-6)


def test_arrow_columns_and_packed_texts_take_the_same_path(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from sse_np.engine.texts import Utf8Texts

    tok = train("unigram", "metaspace", "nfkc_lower")
    model, folder = load(tmp_path, tok)
    texts = edge_texts(300, seed=4)
    want = model.encode(texts)
    np.testing.assert_array_equal(model.encode(pa.array(texts)), want)
    np.testing.assert_array_equal(model.encode(pa.chunked_array([texts[:7], texts[7:]])), want)
    packed = Utf8Texts.from_strs(texts)
    ids, offsets = model.engine.tokenize(packed, 0, 2)
    got = [ids[a:b].tolist() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    assert got == reference_ids(folder, texts)


@pytest.mark.parametrize("pre", ["byte_level_prefix", "metaspace", "whitespace"])
def test_added_tokens_of_any_text_send_their_texts_to_tokenizers(tmp_path, monkeypatch, pre):
    from tokenizers import AddedToken

    tok = train("bpe", pre, "nfkc_lower")
    tok.add_tokens([AddedToken("é x", lstrip=True), AddedToken("the dog", rstrip=True), "ｍａｓｋ"])
    tok.add_special_tokens(["<é>"])
    model, folder = load(tmp_path, tok)
    model.encode(["warm up"])
    texts = [
        *unicode_texts(300, seed=8),
        *["a é x b", "café x", "é  x", "The DOG barks", "the  dog", "<é>", "a <é> b", "ｍａｓｋ", "MASK ｍａｓｋ"],
    ]
    fallbacks = spy_fallbacks(model, monkeypatch)
    assert ids_of(model, texts) == reference_ids(folder, texts)
    assert {"a é x b", "The DOG barks", "<é>", "a <é> b", "ｍａｓｋ"} <= set(fallbacks)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_fork_while_the_table_is_locked_still_learns_in_the_child(tmp_path):
    import os
    import time

    tok = train("bpe", "whitespace", "lower")
    model, folder = load(tmp_path, tok)
    texts = ["fresh words only the child sees", "zebra quokka"]
    want = reference_ids(folder, texts)
    path = model.engine._numba.word_path
    path.resolver()  # built in the parent, as a server would have it
    read, write = os.pipe()
    with path.holder._lock:  # another thread adding to the table at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: learns the new words, reports, exits
            try:
                ok = ids_of(model, texts) == want
            except BaseException:
                ok = False
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    deadline = time.monotonic() + 60
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child hung on a lock copied from the parent")
        time.sleep(0.05)
    assert os.read(read, 1) == b"1"
