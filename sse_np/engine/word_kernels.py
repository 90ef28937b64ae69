"""Jitted word path: ASCII texts -> pre-token words -> ids from a word table -> pooled rows.

The pipelines (``sse_np.tokenizer.words``) are reproduced on ASCII bytes:
the normalizer lowers A-Z or does nothing, and the pre-tokenizer is one of
four scanners over the *logical* text, which is the text (cut to
``max_chars``) with, for ByteLevel ``add_prefix_space`` and Metaspace's
prepend, a space before it when it does not start with one. A word's key is
its normalized bytes (a Metaspace replacement held as a space); the word
table maps keys to the ids the model gives that pre-token.

Per text, ``status`` says what happened: ``OK``; ``FALLBACK`` (a non-ASCII
byte, an added token's text, a word over ``MAX_WORD`` bytes: only
``tokenizers`` gives its ids); ``MISS`` (a word the table lacks: the caller
resolves the missing words, ``missing_words``, and runs the text again).

Kernels are serial and release the GIL; threads share items through a
counter, as in ``sse_np.engine.pooling``. This module is imported only when a
model takes the word path, so WordPiece models never compile it.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from .dyt import LANES
from .intrinsics import fetch_add, unowned
from .pooling import _pool_one

OK, FALLBACK, MISS = 0, 1, 2
#: Words longer than this many bytes are left to ``tokenizers`` (they rarely repeat).
MAX_WORD = 96
WS, LETTER, DIGIT, UNDER = 1, 2, 4, 8
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
WHITESPACE, WHITESPACE_SPLIT, BYTE_LEVEL, METASPACE = 0, 1, 2, 3


def byte_classes() -> np.ndarray:
    """Class bits of each ASCII byte: Unicode White_Space, letter, digit, underscore (as the regexes see them)."""
    classes = np.zeros(128, dtype=np.uint8)
    classes[[9, 10, 11, 12, 13, 32]] = WS
    classes[ord("a") : ord("z") + 1] = LETTER
    classes[ord("A") : ord("Z") + 1] = LETTER
    classes[ord("0") : ord("9") + 1] = DIGIT
    classes[ord("_")] = UNDER
    return classes


class Words(NamedTuple):
    """How to split: the pre-tokenizer, lowering, prefix space; byte classes; added tokens (lowered bytes)."""

    mode: np.int64
    lower: bool
    prefix: bool
    classes: np.ndarray  # uint8[128]
    added: np.ndarray  # uint8: the added tokens' bytes, lowered
    added_off: np.ndarray  # int64[k + 1]
    added_first: np.ndarray  # uint8[128]: 1 where an added token may start (lowered)


class WordTable(NamedTuple):
    """Open addressing: ``keys[s]`` a hash (0: empty), ``slots[s]`` its entry; entries' words and ids pooled."""

    keys: np.ndarray  # uint64[capacity], capacity a power of two
    slots: np.ndarray  # int32[capacity]
    words: np.ndarray  # uint8
    word_off: np.ndarray  # int64[entries + 1 or more]
    ids: np.ndarray  # int32
    id_off: np.ndarray  # int64[entries + 1 or more]


@nb.njit(inline="always")
def _at(buf, a, virt, k, lower):
    """Byte ``k`` of the logical text (after a virtual leading space when ``virt``), lowered if asked."""
    if virt:
        if k == 0:
            return np.uint8(32)
        k -= 1
    c = buf[a + k]
    if lower and 65 <= c <= 90:
        c += 32
    return c


@nb.njit(inline="always")
def _kind(classes, c):
    """WS, LETTER, DIGIT or 0 (anything else), as the GPT-2 regex classes bytes."""
    return classes[c] & 7


@nb.njit(cache=True, inline="always")
def _byte_level_word(buf, a, virt, length, i, lower, classes):
    """End of the GPT-2 regex match starting at ``i``:
    ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``."""
    c = _at(buf, a, virt, i, lower)
    if c == 39 and i + 1 < length:
        d = _at(buf, a, virt, i + 1, lower)
        if d == 115 or d == 116 or d == 109 or d == 100:  # s t m d
            return i + 2
        if i + 2 < length:
            e = _at(buf, a, virt, i + 2, lower)
            if (d == 114 and e == 101) or (d == 118 and e == 101) or (d == 108 and e == 108):  # re ve ll
                return i + 3
    j = i
    if c == 32 and i + 1 < length and _kind(classes, _at(buf, a, virt, i + 1, lower)) != WS:
        j = i + 1
    k = _kind(classes, _at(buf, a, virt, j, lower))
    if k != WS:
        j += 1
        while j < length and _kind(classes, _at(buf, a, virt, j, lower)) == k:
            j += 1
        return j
    j = i + 1
    while j < length and _kind(classes, _at(buf, a, virt, j, lower)) == WS:
        j += 1
    if j == length or j - i == 1:
        return j
    return j - 1  # \s+(?!\S): the run but its last byte, which goes with the next word


@nb.njit(cache=True, inline="always")
def next_word(buf, a, virt, length, i, words):
    """The next word ``(start, stop)`` of the logical text at or after ``i``; ``(-1, -1)`` when none is left."""
    mode, lower, classes = words.mode, words.lower, words.classes
    if mode == BYTE_LEVEL:
        if i >= length:
            return -1, -1
        return i, _byte_level_word(buf, a, virt, length, i, lower, classes)
    if mode == METASPACE:  # split on the replacement (a space here), merged with the next piece
        if i >= length:
            return -1, -1
        j = i + 1
        while j < length and _at(buf, a, virt, j, lower) != 32:
            j += 1
        return i, j
    while i < length and classes[_at(buf, a, virt, i, lower)] & WS:
        i += 1
    if i >= length:
        return -1, -1
    j = i + 1
    if mode == WHITESPACE_SPLIT:
        while j < length and not classes[_at(buf, a, virt, j, lower)] & WS:
            j += 1
        return i, j
    # Whitespace: \w+|[^\w\s]+
    word = classes[_at(buf, a, virt, i, lower)] & (LETTER | DIGIT | UNDER) != 0
    while j < length:
        cls = classes[_at(buf, a, virt, j, lower)]
        if cls & WS or (cls & (LETTER | DIGIT | UNDER) != 0) != word:
            break
        j += 1
    return i, j


@nb.njit(cache=True, inline="always")
def key_of(buf, a, virt, ws, we, lower, key):
    """Copy the word's normalized bytes into ``key``; their FNV-1a hash (never 0: 0 marks an empty slot)."""
    h = _FNV_OFFSET
    for k in range(ws, we):
        c = _at(buf, a, virt, k, lower)
        key[k - ws] = c
        h = (h ^ np.uint64(c)) * _FNV_PRIME
    return h if h != 0 else np.uint64(1)


@nb.njit(cache=True, inline="always")
def find(keys, slots, words, word_off, key, n, h):
    """The entry of ``key[:n]`` (hash ``h``), or -1."""
    mask = keys.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        stored = keys[s]
        if stored == 0:
            return -1
        if stored == h:
            e = slots[s]
            w0 = word_off[e]
            if word_off[e + 1] - w0 == n:
                same = True
                for k in range(n):
                    if words[w0 + k] != key[k]:
                        same = False
                        break
                if same:
                    return e
        s = (s + 1) & mask


@nb.njit(cache=True)
def index_entries(keys, slots, words, word_off, first, last):
    """Put entries ``first .. last - 1`` into the hash slots (serial; the caller holds the table's lock)."""
    mask = keys.shape[0] - 1
    for e in range(first, last):
        h = _FNV_OFFSET
        for k in range(word_off[e], word_off[e + 1]):
            h = (h ^ np.uint64(words[k])) * _FNV_PRIME
        if h == 0:
            h = np.uint64(1)
        s = np.int64(h & np.uint64(mask))
        while keys[s] != 0:
            s = (s + 1) & mask
        keys[s] = h
        slots[s] = e


@nb.njit(cache=True, inline="always")
def _plain(buf, a, b, words):
    """Whether ``buf[a:b]`` is ASCII without an added token's text (matched ignoring case)."""
    added, added_off, first = words.added, words.added_off, words.added_first
    for p in range(a, b):
        c = buf[p]
        if c >= 128:
            return False
        if 65 <= c <= 90:
            c += 32
        if first[c]:
            for t in range(added_off.shape[0] - 1):
                t0, t1 = added_off[t], added_off[t + 1]
                if t1 - t0 > b - p:
                    continue
                same = True
                for k in range(t1 - t0):
                    d = buf[p + k]
                    if 65 <= d <= 90:
                        d += 32
                    if d != added[t0 + k]:
                        same = False
                        break
                if same:
                    return False
    return True


@nb.njit(cache=True, inline="always")
def text_ids(buf, a, b, words, table, key, ids, at, room):
    """Text ``buf[a:b]``'s ids appended to ``ids[at:]`` (at most ``room`` more); ``(status, count)``."""
    if not _plain(buf, a, b, words):
        return FALLBACK, 0
    virt = words.prefix and b > a and buf[a] != 32
    length = b - a + (1 if virt else 0)
    keys, slots, word_bytes, word_off, id_pool, id_off = (
        table.keys,
        table.slots,
        table.words,
        table.word_off,
        table.ids,
        table.id_off,
    )
    n = 0
    i = 0
    while True:
        ws, we = next_word(buf, a, virt, length, i, words)
        if ws < 0:
            return OK, n
        i = we
        if we - ws > MAX_WORD:
            return FALLBACK, 0
        h = key_of(buf, a, virt, ws, we, words.lower, key)
        e = find(keys, slots, word_bytes, word_off, key, we - ws, h)
        if e < 0:
            return MISS, 0
        i0, i1 = id_off[e], id_off[e + 1]
        if n + i1 - i0 > room:
            return FALLBACK, 0
        for t in range(i0, i1):
            ids[at + n] = id_pool[t]
            n += 1


@nb.njit(cache=True, nogil=True, error_model="numpy")
def embed_words(
    buf,
    text_off,
    order,
    item_off,
    counter,
    words,
    table,
    trunc,
    pool_table,
    bag,
    head,
    limits,
    normalize,
    out,
    status,
    tokens,
    token_counts,
):
    """Texts ``order[item_off[k]:item_off[k + 1]]`` of each item taken from ``counter`` -> rows of ``out``.

    Text ``i`` is ``buf[text_off[i]:text_off[i + 1]]``. ``trunc`` is the
    tokenizer's truncation, ``limits`` ``(max_tokens, max_chars)`` (-1: none),
    as in ``pooling.embed_items``. With a non-empty ``tokens`` nothing is
    pooled: text ``i``'s ids go to ``tokens[text_off[i] + i:]`` (room: its
    bytes + 1) and their number to ``token_counts[i]``. ``status[i]``: see
    the module; a row whose status is not OK is left for the caller.
    """
    buf, text_off, order, item_off = unowned(buf), unowned(text_off), unowned(order), unowned(item_off)
    words, table, pool_table, bag, head = (
        unowned(words),
        unowned(table),
        unowned(pool_table),
        unowned(bag),
        unowned(head),
    )
    out, status, tokens, token_counts = unowned(out), unowned(status), unowned(tokens), unowned(token_counts)
    ids_only = tokens.shape[0] > 0
    key = np.empty(MAX_WORD + 1, dtype=np.uint8)
    lanes = np.empty(LANES, dtype=np.float32)
    room = 1
    for k in range(order.shape[0]):
        i = order[k]
        room = max(room, text_off[i + 1] - text_off[i] + 1)
    ids = np.empty(1 if ids_only else room, dtype=np.int32)  # scratch per thread, not per text
    max_len, keep_end = trunc
    max_tokens, max_chars = limits
    n_items = item_off.shape[0] - 1
    while True:
        k = fetch_add(counter, 1)
        if k >= n_items:
            return
        for j in range(item_off[k], item_off[k + 1]):
            i = order[j]
            a, b = text_off[i], text_off[i + 1]
            if 0 <= max_chars < b - a:
                b = a + max_chars  # ASCII: a byte a character (any other text falls back)
            if ids_only:
                st, n = text_ids(buf, a, b, words, table, key, tokens, text_off[i] + i, text_off[i + 1] - a + 1)
                start = text_off[i] + i
            else:
                st, n = text_ids(buf, a, b, words, table, key, ids, 0, room)
                start = 0
            status[i] = st
            if st != OK:
                continue
            stop = start + n
            if 0 <= max_len < n:
                if keep_end:
                    start = stop - max_len
                else:
                    stop = start + max_len
            if ids_only:
                at = text_off[i] + i
                for t in range(start, stop):  # keep_end: move the kept tail to the front
                    tokens[at + t - start] = tokens[t]
                token_counts[i] = stop - start
                continue
            _pool_one(pool_table, bag, head, ids, start, stop, max_tokens, normalize, out[i], lanes)


@nb.njit(cache=True)
def missing_words(buf, text_off, texts, words, table, max_chars):
    """Distinct words of ``texts`` the table lacks: ``(bytes, offsets)``, each word once (serial)."""
    total = 0
    for i in texts:
        total += text_off[i + 1] - text_off[i] + 1
    cap = 64
    while cap < 2 * total + 2:
        cap *= 2
    seen_keys = np.zeros(cap, dtype=np.uint64)
    seen_slots = np.zeros(cap, dtype=np.int32)
    found = np.empty(total + 1, dtype=np.uint8)
    found_off = np.zeros(total + 2, dtype=np.int64)
    count = 0
    key = np.empty(MAX_WORD + 1, dtype=np.uint8)
    for i in texts:
        a, b = text_off[i], text_off[i + 1]
        if 0 <= max_chars < b - a:
            b = a + max_chars
        virt = words.prefix and b > a and buf[a] != 32
        length = b - a + (1 if virt else 0)
        w = 0
        while True:
            ws, we = next_word(buf, a, virt, length, w, words)
            if ws < 0 or we - ws > MAX_WORD:
                break
            w = we
            n = we - ws
            h = key_of(buf, a, virt, ws, we, words.lower, key)
            if find(table.keys, table.slots, table.words, table.word_off, key, n, h) >= 0:
                continue
            if find(seen_keys, seen_slots, found, found_off, key, n, h) >= 0:
                continue
            at = found_off[count]
            found[at : at + n] = key[:n]
            found_off[count + 1] = at + n
            index_entries(seen_keys, seen_slots, found, found_off, count, count + 1)
            count += 1
    return found[: found_off[count]].copy(), found_off[: count + 1].copy()
