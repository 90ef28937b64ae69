"""Tables of the jitted WordPiece (``sse_np.engine.wordpiece``): plain NumPy data, no numba.

* :class:`ByteClasses` -- what BertNormalizer + BertPreTokenizer do to each
  ASCII byte (non-ASCII bytes are ``HIGH``: the kernel decodes them and asks
  the Unicode tables, ``sse_np.engine.unicode_tables``), and the added
  tokens to look out for;
* :class:`Vocab` -- the WordPiece vocabulary as an open-addressing table of
  FNV-1a hashes behind a Bloom filter, and a second table of the entries of
  at most 8 bytes keyed by the bytes themselves (see ``_word_table``).

Building them takes ~75 ms for a 30k vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# Byte classes (see ``byte_classes``).
WORD, SPACE, DROP, PUNCT, HIGH = 0, 1, 2, 3, 4
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


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
    word_keys: np.ndarray  # uint64[word_slots]: an entry of 1-8 UTF-8 bytes, packed; 0: empty
    word_ids: np.ndarray  # int32[word_slots]: its token id
    word_shift: np.uint64  # slot = (key * GOLDEN mod 2**64) >> word_shift
    bloom: np.ndarray  # uint64[]: bit ``hash >> bloom_shift`` is set for every entry's FNV-1a hash
    bloom_shift: np.uint64


GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: multiplicative hashing of word keys
WORD_KEY_BYTES = 8


def _word_table(raw: Sequence[bytes], ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.uint64]:
    """Open-addressing table (load <= 1/4) of the entries of 1-8 UTF-8 bytes.

    An entry's key is its bytes as a little-endian uint64 (byte ``i`` at bits
    ``8i``), exactly as the kernel packs a word while scanning it: no hash, no
    collisions. Normalized text never holds NUL, so 0 marks an empty slot.
    """
    short = [(r, i) for r, i in zip(raw, ids) if 0 < len(r) <= WORD_KEY_BYTES and 0 not in r]
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
