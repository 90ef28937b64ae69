"""WordPiece tokenization exactly as the SSE reference does it.

The reference calls ``tokenizer.no_padding()`` and then
``encode_batch(texts, add_special_tokens=False)``; truncation stays as
``tokenizer.json`` configures it and ``[UNK]`` ids are kept. Ids of a batch
are returned flat with offsets, the EmbeddingBag input format.

Speed: for BERT-style tokenizers (BertNormalizer, BertPreTokenizer,
WordPiece) ASCII whitespace (space, tab, newline, carriage return) is a hard
boundary: the normalizer works character by character and the
pre-tokenizer always splits there. So a text's ids are the concatenation of
the ids of its whitespace-separated chunks, each tokenized alone. Chunks
repeat heavily in real text, so :class:`TextTokenizer` remembers each short
chunk's ids (a cache bounded in bytes) and asks ``tokenizers`` only about
new chunks. Any other tokenizer goes through ``encode_batch`` unchanged.

The numba back-end has a faster path still for the plain BERT
configuration (:func:`fast_path_spec`): a jitted WordPiece
(``sse_np.engine.wordpiece``) over the tables :func:`wordpiece_tables`
builds here. This module never imports numba.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tokenizers import Tokenizer

from .errors import ModelLoadError
from .settings import token_cache_bytes
from .utf8_texts import Utf8Texts

# Byte classes of the jitted WordPiece (see ``byte_classes``).
WORD, SPACE, DROP, PUNCT, HIGH = 0, 1, 2, 3, 4
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def load_tokenizer(
    path: Path, vocab_size: int | None = None, text: str | None = None, spec: dict | None = None
) -> Tokenizer:
    """Load ``tokenizer.json`` configured as the reference uses it.

    Parameters
    ----------
    path : Path
        The ``tokenizer.json`` file.
    vocab_size : int, optional
        Rows of the embedding table; the tokenizer is refused if it can emit
        an id at or beyond it.
    text, spec : str and dict, optional
        The file's text and its parsed JSON when already read (saves reading
        and parsing it again).

    Returns
    -------
    tokenizers.Tokenizer
    """
    try:
        tokenizer = Tokenizer.from_file(str(path)) if text is None else Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises a bare Exception subclass
        raise ModelLoadError(f"{path}: cannot load tokenizer ({exc})") from None
    tokenizer.no_padding()
    if vocab_size is not None:
        top = _max_id(spec)
        if top is None:
            top = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
        if top >= vocab_size:
            raise ModelLoadError(
                f"{path}: tokenizer can emit ids up to {top}, but the embedding table has only "
                f"{vocab_size} rows (tokenizer and weights from different models?)"
            )
    return tokenizer


def _max_id(spec: dict | None) -> int | None:
    """Largest id ``tokenizer.json`` can emit, from its parsed JSON (None if it cannot tell)."""
    try:
        vocab = spec["model"]["vocab"]
        ids = list(vocab.values()) if isinstance(vocab, dict) else [len(vocab) - 1]
        ids += [t["id"] for t in spec.get("added_tokens") or []]
        if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return max(ids, default=-1)
    except (KeyError, TypeError, AttributeError):
        pass
    return None


def explain_failure(texts: Sequence[str], start: int) -> ValueError:
    """Name the text ``tokenizers`` refused; it only says 'TextEncodeInput must be ...'."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return ValueError(
                f"text {start + i} cannot be tokenized: it contains a lone surrogate "
                f"{text[exc.start]!r} at character {exc.start} (not valid Unicode; "
                f"decode your input with errors='replace' or clean it)"
            )
    return ValueError(f"tokenizers refused texts {start}..{start + len(texts) - 1}")


def utf8(texts: Sequence[str], start: int = 0) -> tuple[bytes, np.ndarray]:
    """All texts as one UTF-8 buffer and the ``n + 1`` byte offsets of each."""
    if isinstance(texts, Utf8Texts):  # already in this form (an Arrow column)
        return texts.data, texts.offsets
    try:
        if len(texts) == 1:  # a single query: the latency path
            data = texts[0].encode("utf-8")
            return data, np.array([0, len(data)], dtype=np.int64)
        raw = [t.encode("utf-8") for t in texts]
    except UnicodeEncodeError:
        raise explain_failure(texts, start) from None
    text_off = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), out=text_off[1:])
    return b"".join(raw), text_off


_CHUNKS = re.compile(r"[^ \t\n\r]+").findall
#: Default bound of the chunk cache in bytes (``$SSE_NP_TOKEN_CACHE_BYTES`` overrides).
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
# Chunks longer than this are tokenized but not remembered: long chunks
# (URLs, base64, tables) rarely repeat and would fill the cache.
_CACHE_CHUNK_CHARS = 64
_ENTRY_OVERHEAD = 120  # dict slot + object headers, per cached chunk (measured: ~100-130 bytes)
# Fewer new chunks than this are tokenized as one joined text: a batch call
# wakes the tokenizer's thread pool, which costs more than it saves here.
_JOIN_BELOW = 256


def _default_cache_bytes() -> int:
    return token_cache_bytes(DEFAULT_CACHE_BYTES)


def _chunkable(spec: dict) -> bool:
    """Whether ASCII whitespace is a hard token boundary for this ``tokenizer.json``."""
    normalizer, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if normalizer and normalizer.get("type") != "BertNormalizer":
        return False
    if pre.get("type") != "BertPreTokenizer" or model.get("type") != "WordPiece":
        return False
    # Added tokens are matched in the raw text; they must fit inside a chunk.
    for added in spec.get("added_tokens") or []:
        content = added.get("content", "")
        if not content or added.get("lstrip") or added.get("rstrip") or _CHUNKS(content) != [content]:
            return False
    return True


def fast_path_spec(spec: dict) -> dict | None:
    """Settings for the jitted WordPiece if ``tokenizer.json`` is a configuration it reproduces, else None.

    Supported: BertNormalizer with ``clean_text`` on (any ``lowercase``; accent
    and CJK options never touch ASCII), BertPreTokenizer, WordPiece with its
    unknown token in the vocabulary, and added tokens that are plain ASCII
    without whitespace, control bytes or ``lstrip``/``rstrip``/``single_word``.
    """
    if not _chunkable(spec):
        return None
    normalizer, model = spec.get("normalizer") or {}, spec.get("model") or {}
    if normalizer.get("type") != "BertNormalizer" or not normalizer.get("clean_text", True):
        return None
    vocab, unk = model.get("vocab") or {}, model.get("unk_token", "[UNK]")
    prefix = model.get("continuing_subword_prefix", "##")
    max_chars = model.get("max_input_chars_per_word", 100)
    if unk not in vocab or not isinstance(prefix, str) or not isinstance(max_chars, int) or max_chars < 1:
        return None
    lowercase = bool(normalizer.get("lowercase", True))
    added = []
    for token in spec.get("added_tokens") or []:
        content = token.get("content", "")
        if (
            not content
            or not content.isascii()
            or not content.isprintable()
            or " " in content
            or token.get("lstrip")
            or token.get("rstrip")
            or token.get("single_word")
        ):
            return None
        added.append(content.lower() if lowercase else content)
    return {
        "vocab": vocab,
        "unk": unk,
        "prefix": prefix,
        "max_chars": max_chars,
        "lowercase": lowercase,
        "added": sorted(set(added)),
    }


# -- tables of the jitted WordPiece (plain data; the kernels take them as named tuples)
class ByteClasses(NamedTuple):
    """Class and normalized value of each byte, and the added tokens to look out for."""

    cls: np.ndarray  # uint8[256]: WORD, SPACE, DROP, PUNCT or HIGH
    low: np.ndarray  # uint8[256]: the byte after lowercasing (if the tokenizer lowercases)
    added_first: np.ndarray  # bool[256]: an added token starts with this (normalized) byte
    added_bytes: np.ndarray  # uint8: the added tokens, normalized, back to back
    added_off: np.ndarray  # int64[n + 1]


class Vocab(NamedTuple):
    """WordPiece vocabulary as an open-addressing hash table of FNV-1a hashes, and a second
    table for whole words of at most 8 ASCII bytes keyed by the bytes themselves (see ``_word_table``)."""

    slot_entry: np.ndarray  # int32[slots]: entry index or -1
    slot_hash: np.ndarray  # uint64[slots]
    data: np.ndarray  # uint8: entries' UTF-8 bytes back to back
    offsets: np.ndarray  # int64[n + 1]
    ids: np.ndarray  # int32[n]: token id of each entry
    prefix: np.ndarray  # uint8: continuing-subword prefix ("##")
    prefix_hash: np.uint64
    unk: np.int32
    max_chars: np.int64  # max_input_chars_per_word
    max_entry: np.int64  # longest entry in bytes
    word_keys: np.ndarray  # uint64[word_slots]: an entry of 1-8 ASCII bytes, packed; 0: empty
    word_ids: np.ndarray  # int32[word_slots]: its token id
    word_shift: np.uint64  # slot = (key * GOLDEN mod 2**64) >> word_shift
    bloom: np.ndarray  # uint64[]: bit ``hash >> bloom_shift`` is set for every entry's FNV-1a hash
    bloom_shift: np.uint64


GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: multiplicative hashing of word keys
WORD_KEY_BYTES = 8


def _word_table(raw: Sequence[bytes], ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.uint64]:
    """Open-addressing table (load <= 1/4) of the entries of 1-8 ASCII bytes.

    An entry's key is its bytes as a little-endian uint64 (byte ``i`` at bits
    ``8i``), exactly as the kernel packs a word while scanning it: no hash, no
    collisions. Normalized text never holds NUL, so 0 marks an empty slot.
    """
    short = [(r, i) for r, i in zip(raw, ids) if 0 < len(r) <= WORD_KEY_BYTES and r.isascii() and 0 not in r]
    bits = max(1, (4 * len(short) - 1).bit_length())
    size, shift = 1 << bits, 64 - bits
    packed = np.frombuffer(b"".join(r.ljust(WORD_KEY_BYTES, b"\0") for r, _ in short), dtype="<u8")
    homes = ((packed * np.uint64(GOLDEN)) >> np.uint64(shift)).tolist()  # uint64 arrays wrap silently
    taken, where, mask = bytearray(size), [], size - 1
    for j in homes:
        while taken[j]:
            j = (j + 1) & mask
        taken[j] = 1
        where.append(j)
    keys, out = np.zeros(size, dtype=np.uint64), np.full(size, -1, dtype=np.int32)
    keys[where] = packed
    out[where] = [i for _, i in short]
    return keys, out, np.uint64(shift)


BLOOM_BITS = 1 << 19  # 64 KiB: most candidate pieces that are not entries stop here, in cache


def _bloom(slot_hash: np.ndarray, slot_entry: np.ndarray) -> tuple[np.ndarray, np.uint64]:
    """A one-hash Bloom filter of the entries' FNV-1a hashes (no false negatives: exact)."""
    shift = np.uint64(64 - (BLOOM_BITS.bit_length() - 1))
    bits = slot_hash[slot_entry >= 0] >> shift
    words = np.zeros(BLOOM_BITS // 64, dtype=np.uint64)
    np.bitwise_or.at(words, (bits >> np.uint64(6)).astype(np.int64), np.uint64(1) << (bits & np.uint64(63)))
    return words, shift


def _fnv1a(data: bytes, h: int = FNV_OFFSET) -> int:
    for c in data:
        h = ((h ^ c) * FNV_PRIME) & _MASK64
    return h


def byte_classes(lowercase: bool, added: Sequence[str] = ()) -> ByteClasses:
    """How BertNormalizer + BertPreTokenizer see each ASCII byte (non-ASCII bytes are HIGH)."""
    cls = np.full(256, WORD, dtype=np.uint8)
    cls[128:] = HIGH
    cls[:32] = DROP  # control characters (category Cc) are removed by clean_text
    cls[127] = DROP
    for c in b" \t\n\r":
        cls[c] = SPACE
    for c in b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
        cls[c] = PUNCT
    low = np.arange(256, dtype=np.uint8)
    if lowercase:
        low[65:91] += 32
    raw = [a.encode("ascii") for a in added]
    first = np.zeros(256, dtype=np.bool_)
    for a in raw:
        first[a[0]] = True
    added_off = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in raw], out=added_off[1:])
    return ByteClasses(cls, low, first, np.frombuffer(b"".join(raw), dtype=np.uint8).copy(), added_off)


def wordpiece_tables(settings: dict) -> tuple[ByteClasses, Vocab]:
    """The jitted WordPiece's tables for :func:`fast_path_spec` settings (NumPy only, ~70 ms)."""
    entries = sorted(settings["vocab"].items(), key=lambda kv: kv[1])
    raw = [text.encode("utf-8") for text, _ in entries]
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    n_slots = 1 << max(1, (4 * len(raw) - 1).bit_length())
    slot_entry = np.full(n_slots, -1, dtype=np.int32)
    slot_hash = np.zeros(n_slots, dtype=np.uint64)
    mask = n_slots - 1
    entry_list, hash_list = slot_entry.tolist(), slot_hash.tolist()  # Python lists: fast scalar writes
    for k, r in enumerate(raw):
        h = _fnv1a(r)
        j = h & mask
        while entry_list[j] != -1:
            j = (j + 1) & mask
        entry_list[j], hash_list[j] = k, h
    prefix = settings["prefix"].encode("utf-8")
    token_ids = [i for _, i in entries]
    slot_entry, slot_hash = np.array(entry_list, dtype=np.int32), np.array(hash_list, dtype=np.uint64)
    vocab = Vocab(
        slot_entry,
        slot_hash,
        np.frombuffer(b"".join(raw), dtype=np.uint8).copy(),
        offsets,
        np.array(token_ids, dtype=np.int32),
        np.frombuffer(prefix, dtype=np.uint8).copy(),
        np.uint64(_fnv1a(prefix)),
        np.int32(settings["vocab"][settings["unk"]]),
        np.int64(settings["max_chars"]),
        np.int64(max(map(len, raw))),
        *_word_table(raw, token_ids),
        *_bloom(slot_hash, slot_entry),
    )
    return byte_classes(settings["lowercase"], settings["added"]), vocab


class TextTokenizer:
    """Texts -> token ids, exactly as ``encode_batch(add_special_tokens=False)``.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        As returned by :func:`load_tokenizer` (padding off).
    cache_bytes : int, optional
        Most memory the chunk cache may hold, in bytes (default
        ``$SSE_NP_TOKEN_CACHE_BYTES`` or 64 MiB); 0 disables the chunk path.
        When full, the cache starts afresh. Chunks over 64 characters are
        never cached.
    spec : dict, optional
        ``tokenizer.json`` parsed, when the caller has it (else read back
        from ``tokenizer``).
    """

    def __init__(self, tokenizer: Tokenizer, cache_bytes: int | None = None, spec: dict | None = None) -> None:
        self.tokenizer = tokenizer
        self.cache_bytes = _default_cache_bytes() if cache_bytes is None else int(cache_bytes)
        if spec is None:
            spec = json.loads(tokenizer.to_str())
        self.chunked = self.cache_bytes > 0 and _chunkable(spec)
        #: Settings for the jitted WordPiece, or None when this configuration is not supported.
        self.fast_spec = fast_path_spec(spec) if self.chunked else None
        self._cache: dict[str, bytes] = {}
        self._cache_used = 0
        if self.chunked:
            # Chunks are cached whole; truncation applies to texts, afterwards.
            self._chunk_tokenizer = Tokenizer.from_str(tokenizer.to_str())
            self._chunk_tokenizer.no_truncation()
        trunc = tokenizer.truncation
        self._max_len = trunc["max_length"] if trunc else None
        self._keep_end = bool(trunc) and trunc.get("direction") == "left"
        # encode_batch_fast skips character offsets we do not need; same ids.
        self._encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    @property
    def cache_used(self) -> int:
        """Bytes the chunk cache holds now (estimated from object sizes)."""
        return self._cache_used

    def clear_cache(self) -> None:
        """Forget remembered chunks."""
        self._cache, self._cache_used = {}, 0

    @property
    def truncation(self) -> tuple[int, bool]:
        """(max_length or -1, keep the end) as ``tokenizer.json`` configures truncation."""
        return (-1 if self._max_len is None else self._max_len), self._keep_end

    def window(self, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Truncate the bags ``[starts, stops)`` as the tokenizer would."""
        if self._max_len is not None:
            if self._keep_end:
                starts = np.maximum(starts, stops - self._max_len)
            else:
                stops = np.minimum(stops, starts + self._max_len)
        return starts, stops

    def __call__(
        self, texts: Sequence[str], start: int = 0, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` as an EmbeddingBag input.

        Parameters
        ----------
        texts : sequence of str
            Already validated strings.
        start : int
            Index of ``texts[0]`` in the caller's input, used in error messages.
        threads : int, optional
            1 keeps ``tokenizers`` on the calling thread for small batches.

        Returns
        -------
        ids : ndarray (total_tokens,) int32
        offsets : ndarray (len(texts) + 1,) int64
            Text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
        """
        if self.chunked:
            per_text = self._by_chunks(texts, start, threads)
        else:
            per_text = [np.asarray(ids, dtype=np.int32).tobytes() for ids in self._encode_checked(list(texts), start)]
        offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
        np.cumsum([len(p) // 4 for p in per_text], out=offsets[1:])
        return np.frombuffer(b"".join(per_text), dtype=np.int32), offsets

    def _encode_checked(self, texts: list[str], start: int) -> list[list[int]]:
        try:
            return [e.ids for e in self._encode(texts, add_special_tokens=False)]
        except TypeError:
            raise explain_failure(texts, start) from None

    def _encode_chunks(self, chunks: list[str], threads: int | None = None) -> list[list[int]]:
        """Ids of each chunk on its own (no truncation)."""
        tok = self._chunk_tokenizer
        if len(chunks) >= _JOIN_BELOW and threads != 1:
            return [e.ids for e in tok.encode_batch_fast(chunks, add_special_tokens=False)]
        # One call on the chunks joined by spaces (a hard boundary), then
        # each token goes back to the chunk its first character lies in.
        enc = tok.encode(" ".join(chunks), add_special_tokens=False)
        starts = np.cumsum([0] + [len(c) + 1 for c in chunks[:-1]])
        owner = np.searchsorted(starts, [a for a, _ in enc.offsets], side="right") - 1
        out: list[list[int]] = [[] for _ in chunks]
        for token, k in zip(enc.ids, owner.tolist()):
            out[k].append(token)
        return out

    def chunk_ids(self, chunks: Iterable[str], texts: Sequence[str], start: int, threads: int | None):
        """A lookup ``chunk -> int32 ids as bytes`` covering every chunk in ``chunks``.

        ``texts``/``start`` only serve to name a text ``tokenizers`` refuses.
        """
        cache = self._cache
        wanted = set(chunks)
        new = [c for c in wanted if c not in cache]
        if not new:
            return cache.__getitem__
        try:
            found = self._encode_chunks(new, threads)
        except (TypeError, ValueError):
            self._encode_checked(list(texts), start)  # names the offending text
            raise
        fresh = {c: np.asarray(ids, dtype=np.int32).tobytes() for c, ids in zip(new, found)}
        added = sum(
            sys.getsizeof(c) + sys.getsizeof(ids) + _ENTRY_OVERHEAD
            for c, ids in fresh.items()
            if len(c) <= _CACHE_CHUNK_CHARS
        )
        if self._cache_used + added > self.cache_bytes:
            # Full: start afresh (a cheap, hard bound on memory); this batch's
            # chunks already cached stay in its own lookup.
            batch = {c: cache[c] for c in wanted if c in cache}
            batch.update(fresh)
            cache = self._cache = {}
            self._cache_used = 0
            if added > self.cache_bytes:  # this batch alone is larger: remember none of it
                return batch.__getitem__
        else:
            batch = None
        for c, ids in fresh.items():
            if len(c) <= _CACHE_CHUNK_CHARS:
                cache[c] = ids
        self._cache_used += added
        if batch is not None:
            return batch.__getitem__
        return lambda c: fresh[c] if c in fresh else cache[c]

    def _by_chunks(self, texts: Sequence[str], start: int, threads: int | None) -> list[bytes]:
        chunked = [_CHUNKS(t) for t in texts]
        get = self.chunk_ids(chain.from_iterable(chunked), texts, start, threads)
        per_text = [b"".join(map(get, chunks)) for chunks in chunked]
        if self._max_len is not None:
            n = 4 * self._max_len
            per_text = [ids[len(ids) - n :] if self._keep_end and len(ids) > n else ids[:n] for ids in per_text]
        return per_text


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` without a chunk cache (see :class:`TextTokenizer`)."""
    return TextTokenizer(tokenizer, cache_bytes=0)(texts, start)
