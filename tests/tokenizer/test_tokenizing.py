"""The chunk-cached tokenizer gives exactly tokenizers' ids, on adversarial text too."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import Tokenizer

from helpers.models import write_tokenizer
from sse_np.tokenizer import TextTokenizer, load_tokenizer

ALPHABET = (
    [chr(c) for c in range(128)]  # every ASCII char, controls included
    + list("\u00a0\u3000\u2028\u2029\x85\u200b\u200d\ufeff\ufffd\u1680\u202f")  # unicode spaces, zero-width
    + list("\u0301\u0308\u0327")  # combining marks
    + list("éÉßøÅñçİıΣσς")  # accents, special case mappings
    + list("日本語中文한국")  # CJK
    + list("–—‘’“”…¿¡«»·•€£")  # unicode punctuation / symbols
    + ["🙂", "👍🏽", "👨‍👩‍👧", "🇫🇷"]
    + ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "##", "x" * 120]
    + ["the", "The", "THE", "running", "embedding", "12", " ", " ", "  ", "\n", "\t"]
)


def fuzz_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def reference_ids(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def ours(tt: TextTokenizer, texts: list[str]) -> list[list[int]]:
    ids, offsets = tt(texts)
    return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]


@pytest.mark.parametrize("truncation", [None, ("right", 16), ("left", 16)])
def test_fuzz_matches_tokenizers(tmp_path, tokenizer_json, truncation):
    path = tmp_path / "tokenizer.json"
    write_tokenizer(tokenizer_json, path, None)
    tok = load_tokenizer(path)
    if truncation:
        tok.enable_truncation(truncation[1], direction=truncation[0])
    tt = TextTokenizer(tok, cache_bytes=100_000)
    assert tt.chunked, "the bert-base-uncased tokenizer should take the chunk path"
    for seed in range(4):
        texts = fuzz_texts(1500, seed)
        assert ours(tt, texts) == reference_ids(tok, texts)
        assert tt.cache_used <= 100_000


def test_varied_texts_match(tokenizer_json, texts):
    tok = load_tokenizer(tokenizer_json)  # as shipped: truncation at 128
    valid = [t for t in texts if t.isascii() or all(not 0xD800 <= ord(c) <= 0xDFFF for c in t)]
    tt = TextTokenizer(tok)
    assert ours(tt, valid) == reference_ids(tok, valid)
    assert ours(tt, valid) == reference_ids(tok, valid)  # warm cache


def test_non_bert_tokenizer_goes_through_tokenizers(tmp_path, tokenizer_json):
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    tok = load_tokenizer(path)
    tt = TextTokenizer(tok)
    assert not tt.chunked
    texts = fuzz_texts(300, 9)
    assert ours(tt, texts) == reference_ids(tok, texts)


def test_lone_surrogate_named_on_chunk_path(tokenizer_json):
    tt = TextTokenizer(load_tokenizer(tokenizer_json))
    with pytest.raises(ValueError, match="text 7 cannot be tokenized"):
        tt(["ok", "bad \udc00"], start=6)


def test_small_batches_take_the_joined_path(tokenizer_json):
    """Few new chunks are tokenized as one joined text; ids must not change."""
    tok = load_tokenizer(tokenizer_json)
    tt = TextTokenizer(tok, cache_bytes=60_000)
    texts = fuzz_texts(1200, 11)
    for i in range(0, len(texts), 3):
        batch = texts[i : i + 3]
        assert ours(tt, batch) == reference_ids(tok, batch)


def test_chunk_cache_is_bounded_in_bytes(tokenizer_json):
    """20k distinct long chunks (the pathological case) and 20k short ones: the cache stays under its byte bound."""
    import random as _random
    import tracemalloc

    tok = load_tokenizer(tokenizer_json)
    bound = 2_000_000
    tt = TextTokenizer(tok, cache_bytes=bound)
    rng = _random.Random(3)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12))) for _ in range(20_000)
    ]
    long_chunks = ["".join(rng.choice("abcdefghij0123456789") for _ in range(8000)) for _ in range(200)]
    tracemalloc.start()
    for i in range(0, len(words), 500):
        batch = [" ".join(words[i : i + 500]), *long_chunks[i // 100 : i // 100 + 1]]
        assert ours(tt, batch) == reference_ids(tok, batch)
        assert tt.cache_used <= bound
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current < 3 * bound, f"{current} bytes still allocated with a {bound}-byte cache"


@pytest.mark.parametrize("bound", [0, 5_000])
def test_token_cache_bytes_environment_variable(tmp_path, tokenizer_json, monkeypatch, bound):
    """$SSE_NP_TOKEN_CACHE_BYTES bounds a tokenizer built without cache_bytes (the Guarantees' promise)."""
    monkeypatch.setenv("SSE_NP_TOKEN_CACHE_BYTES", str(bound))
    path = tmp_path / "tokenizer.json"
    write_tokenizer(tokenizer_json, path, None)
    tt = TextTokenizer(load_tokenizer(path))
    assert tt.cache_bytes == bound
    texts = [f"word{i} other{i}" for i in range(3000)]
    assert ours(tt, texts) == reference_ids(load_tokenizer(path), texts)
    assert 0 <= tt.cache_used <= bound
