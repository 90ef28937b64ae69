"""Jitted word path: texts -> pre-token words (or chunks) -> ids from a word table -> pooled rows.

The pipelines (``sse_np.tokenizer.words``) are reproduced on ASCII bytes:
the normalizer lowers A-Z or does nothing, and the pre-tokenizer is one of
four scanners over the *logical* text, a per-thread copy of the text (cut to
``max_chars``, lowered if the normalizer lowers) with, for ByteLevel
``add_prefix_space`` and Metaspace's prepend, a space before it when it does
not start with one. A word's key is its bytes there (a Metaspace replacement
held as a space); the word table maps keys to the ids the model gives that
pre-token. A text with non-ASCII bytes is cut into chunks the pipeline
tokenizes as if alone (``chunk_end``): ASCII chunks are split as above, and
a non-ASCII chunk is one key, its raw bytes (never equal to an ASCII word),
whose ids are the whole pipeline's on that chunk.

Few, plain jitted functions (no IR-level inlining): compiling them is most
of a BPE/Unigram model's first load on a machine (bench/results/RESULTS.md).

Per text, ``status`` says what happened: ``OK``; ``FALLBACK`` (an added
token's text, a word or chunk over ``MAX_WORD`` bytes, more ids than room:
only ``tokenizers`` gives its ids); ``MISS`` (a word the table lacks: the caller
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
NOT_ASCII, ADDED = -1, -2
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
    added: np.ndarray  # uint8: the added tokens' UTF-8 bytes, ASCII lowered
    added_off: np.ndarray  # int64[k + 1]
    added_first: np.ndarray  # uint8[256]: 1 where an added token may start (ASCII lowered)


class WordTable(NamedTuple):
    """Open addressing: ``keys[s]`` a hash (0: empty), ``slots[s]`` its entry; entries' words and ids pooled."""

    keys: np.ndarray  # uint64[capacity], capacity a power of two
    slots: np.ndarray  # int32[capacity]
    words: np.ndarray  # uint8
    word_off: np.ndarray  # int64[entries + 1 or more]
    ids: np.ndarray  # int32
    id_off: np.ndarray  # int64[entries + 1 or more]


@nb.njit(cache=True)
def _added_at(buf, p, b, words):
    """Whether an added token's text starts at ``buf[p]`` (matched ignoring ASCII case)."""
    added, added_off = words.added, words.added_off
    for t in range(added_off.shape[0] - 1):
        t0, t1 = added_off[t], added_off[t + 1]
        same = t1 - t0 <= b - p
        for k in range(t1 - t0):
            if not same:
                break
            d = buf[p + k]
            same = (d + 32 if 65 <= d <= 90 else d) == added[t0 + k]
        if same:
            return True
    return False


@nb.njit(cache=True)
def has_added(buf, a, b, words):
    """Whether ``buf[a:b]`` holds an added token's text."""
    for p in range(a, b):
        c = buf[p]
        if words.added_first[c + 32 if 65 <= c <= 90 else c] and _added_at(buf, p, b, words):
            return True
    return False


@nb.njit(cache=True)
def normalized(buf, a, b, words, prefix, norm):
    """The logical text of ``buf[a:b]`` into ``norm`` (lowered if asked; a space before it if ``prefix`` and it
    does not start with one); its length, or NOT_ASCII, or ADDED (it holds an added token's text)."""
    first, lower = words.added_first, words.lower
    virt = 1 if prefix and b > a and buf[a] != 32 else 0
    norm[0] = 32
    for p in range(a, b):
        c = buf[p]
        if c >= 128:
            return NOT_ASCII
        low = c + 32 if 65 <= c <= 90 else c
        norm[p - a + virt] = low if lower else c
        if first[low] and _added_at(buf, p, b, words):
            return ADDED
    return b - a + virt


@nb.njit(cache=True)
def chunk_end(buf, p, b, words):
    """End of the chunk at ``p`` of a text with non-ASCII bytes: a stretch the pipeline tokenizes as if alone.

    Whitespace, WhitespaceSplit: ASCII whitespace bounds chunks (it splits, and no normalizer joins
    across it). ByteLevel: before an ASCII space followed by an ASCII non-space (the regex always starts
    a word there). Metaspace: before every ASCII space (each replacement starts a piece).
    """
    mode, classes = words.mode, words.classes
    q = p + 1
    if mode <= WHITESPACE_SPLIT:  # Whitespace or WhitespaceSplit
        while q < b and not (buf[q] < 128 and classes[buf[q]] & WS):
            q += 1
        return q
    while q < b:
        if buf[q] == 32:
            if mode == METASPACE:
                return q
            if q + 1 < b and buf[q + 1] < 128 and not classes[buf[q + 1]] & WS:
                return q
        q += 1
    return b


@nb.njit(cache=True)
def char_cut(buf, a, b, max_chars):
    """End of the first ``max_chars`` characters of the UTF-8 text ``buf[a:b]`` (-1: all)."""
    if max_chars < 0 or b - a <= max_chars:
        return b
    chars = 0
    for p in range(a, b):
        if buf[p] & 0xC0 != 0x80:
            if chars == max_chars:
                return p
            chars += 1
    return b


@nb.njit(cache=True)
def next_word(norm, length, i, mode, classes):
    """The next word ``(start, stop)`` of ``norm[:length]`` at or after ``i``; ``(-1, -1)`` when none is left.

    ``mode`` and ``classes`` come from ``Words`` (passed alone: a tuple per word call costs).
    """
    if mode == BYTE_LEVEL:
        # 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
        if i >= length:
            return -1, -1
        c = norm[i]
        if c == 39 and i + 1 < length:
            d = norm[i + 1]
            if d == 115 or d == 116 or d == 109 or d == 100:  # s t m d
                return i, i + 2
            if i + 2 < length:
                e = norm[i + 2]
                if (d == 114 and e == 101) or (d == 118 and e == 101) or (d == 108 and e == 108):  # re ve ll
                    return i, i + 3
        j = i
        if c == 32 and i + 1 < length and classes[norm[i + 1]] & 7 != WS:
            j = i + 1
        k = classes[norm[j]] & 7  # WS, LETTER, DIGIT or 0 (anything else)
        j += 1
        while j < length and classes[norm[j]] & 7 == k:
            j += 1
        if k != WS or j == length or j - i == 1:
            return i, j
        return i, j - 1  # \s+(?!\S): the run but its last byte, which goes with the next word
    if mode == METASPACE:  # split on the replacement (a space here), merged with the next piece
        if i >= length:
            return -1, -1
        j = i + 1
        while j < length and norm[j] != 32:
            j += 1
        return i, j
    while i < length and classes[norm[i]] & WS:
        i += 1
    if i >= length:
        return -1, -1
    j = i + 1
    if mode == WHITESPACE_SPLIT:
        while j < length and not classes[norm[j]] & WS:
            j += 1
        return i, j
    # Whitespace: \w+|[^\w\s]+
    word = classes[norm[i]] & (LETTER | DIGIT | UNDER) != 0
    while j < length:
        cls = classes[norm[j]]
        if cls & WS or (cls & (LETTER | DIGIT | UNDER) != 0) != word:
            break
        j += 1
    return i, j


@nb.njit(cache=True)
def word_hash(key, ws, we):
    """FNV-1a of ``key[ws:we]``, never 0 (0 marks an empty slot)."""
    h = _FNV_OFFSET
    for k in range(ws, we):
        h = (h ^ np.uint64(key[k])) * _FNV_PRIME
    return h if h != 0 else np.uint64(1)


@nb.njit(cache=True)
def find(keys, slots, words, word_off, key, ws, we):
    """The entry of the word ``key[ws:we]``, or -1; and its hash."""
    h = word_hash(key, ws, we)
    n = we - ws
    mask = keys.shape[0] - 1
    s = np.int64(h & np.uint64(mask))
    while True:
        stored = keys[s]
        if stored == 0:
            return -1, h
        if stored == h:
            e = slots[s]
            w0 = word_off[e]
            if word_off[e + 1] - w0 == n:
                same = True
                for k in range(n):
                    if words[w0 + k] != key[ws + k]:
                        same = False
                        break
                if same:
                    return e, h
        s = (s + 1) & mask


@nb.njit(cache=True)
def index_entries(keys, slots, words, word_off, first, last):
    """Put entries ``first .. last - 1`` into the hash slots (serial; the caller holds the table's lock)."""
    mask = keys.shape[0] - 1
    for e in range(first, last):
        h = word_hash(words, np.int64(word_off[e]), np.int64(word_off[e + 1]))
        s = np.int64(h & np.uint64(mask))
        while keys[s] != 0:
            s = (s + 1) & mask
        keys[s] = h
        slots[s] = e


class Sink(NamedTuple):
    """Distinct missing words found so far (``missing_words``); empty arrays: not collecting."""

    keys: np.ndarray  # uint64: hash slots
    slots: np.ndarray  # int32
    found: np.ndarray  # uint8: the words' bytes
    found_off: np.ndarray  # int64
    used: np.ndarray  # int64[1]: words found


@nb.njit(cache=True)
def _lookup(key, ws, we, table, ids, n, room, sink):
    """Append the ids of the word ``key[ws:we]``; ``(status, count)``. Collecting, a missing word goes to ``sink``."""
    e, _ = find(table.keys, table.slots, table.words, table.word_off, key, ws, we)
    if sink.found.shape[0] > 0:
        if e < 0 and find(sink.keys, sink.slots, sink.found, sink.found_off, key, ws, we)[0] < 0:
            c = sink.used[0]
            at = sink.found_off[c]
            for k in range(ws, we):
                sink.found[at + k - ws] = key[k]
            sink.found_off[c + 1] = at + we - ws
            index_entries(sink.keys, sink.slots, sink.found, sink.found_off, c, c + 1)
            sink.used[0] = c + 1
        return OK, n
    if e < 0:
        return MISS, n
    i0, i1 = table.id_off[e], table.id_off[e + 1]
    if n + i1 - i0 > room:
        return FALLBACK, n
    for t in range(i0, i1):
        ids[n] = table.ids[t]
        n += 1
    return OK, n


@nb.njit(cache=True)
def _word_ids(norm, length, words, table, ids, n, room, sink):
    """Append the ids of the words of the logical text ``norm[:length]``; ``(status, count)``."""
    i = np.int64(0)  # not a literal 0: one compiled next_word for every caller
    mode, classes = words.mode, words.classes
    keys, slots, word_bytes, word_off, id_off, id_pool = (
        table.keys,
        table.slots,
        table.words,
        table.word_off,
        table.id_off,
        table.ids,
    )
    while True:
        ws, we = next_word(norm, length, i, mode, classes)
        if ws < 0:
            return OK, n
        i = we
        if we - ws > MAX_WORD:
            return FALLBACK, n
        if sink.found.shape[0] > 0:  # collecting (missing_words)
            _lookup(norm, ws, we, table, ids, n, room, sink)
            continue
        e, _ = find(keys, slots, word_bytes, word_off, norm, ws, we)  # the hot loop: here, not in _lookup
        if e < 0:
            return MISS, n
        i0, i1 = id_off[e], id_off[e + 1]
        if n + i1 - i0 > room:
            return FALLBACK, n
        for t in range(i0, i1):
            ids[n] = id_pool[t]
            n += 1


@nb.njit(cache=True)
def text_ids(buf, a, b, words, table, norm, ids, room, sink):
    """Text ``buf[a:b]``'s ids into ``ids`` (at most ``room``); ``(status, count)``.

    An ASCII text is split into words at once. A text with non-ASCII bytes is cut into chunks
    (``chunk_end``): ASCII chunks into words, and a non-ASCII chunk is one key, its raw bytes, whose ids
    are the whole pipeline's on that chunk alone (they never collide with ASCII words).
    """
    length = normalized(buf, a, b, words, words.prefix, norm)
    if length >= 0:
        return _word_ids(norm, length, words, table, ids, np.int64(0), room, sink)
    if length == ADDED or has_added(buf, a, b, words):
        return FALLBACK, 0
    n = np.int64(0)
    p = a
    spaced = words.mode <= WHITESPACE_SPLIT  # Whitespace or WhitespaceSplit
    while True:
        if spaced:
            while p < b and buf[p] < 128 and words.classes[buf[p]] & WS:
                p += 1
        if p >= b:
            return OK, n
        q = chunk_end(buf, p, b, words)
        length = normalized(buf, p, q, words, words.prefix and p == a, norm)
        if length >= 0:
            st, n = _word_ids(norm, length, words, table, ids, n, room, sink)
        elif q - p > MAX_WORD:
            return FALLBACK, 0
        else:  # its raw bytes are its key (copied: one compiled _lookup, on the scratch, for every caller)
            for k in range(p, q):
                norm[k - p] = buf[k]
            st, n = _lookup(norm, np.int64(0), q - p, table, ids, n, room, sink)
        if st != OK:
            return st, 0
        p = q


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
    sink,
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
    lanes = np.empty(LANES, dtype=np.float32)
    room = np.int64(1)
    for k in range(order.shape[0]):
        i = order[k]
        room = max(room, text_off[i + 1] - text_off[i] + 1)
    norm = np.empty(room, dtype=np.uint8)  # the logical text, per thread
    ids = np.empty(room, dtype=np.int32)  # scratch per thread, not per text
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
            b = char_cut(buf, a, b, max_chars)
            st, n = text_ids(buf, a, b, words, table, norm, ids, room, sink)
            if ids_only and n > text_off[i + 1] - text_off[i] + 1:
                st = FALLBACK  # more ids than its room in ``tokens`` (an NFKC expansion)
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
                for t in range(start, stop):
                    tokens[at + t - start] = ids[t]
                token_counts[i] = stop - start
                continue
            _pool_one(pool_table, bag, head, ids, start, stop, max_tokens, normalize, out[i], lanes)


@nb.njit(cache=True)
def missing_words(buf, text_off, texts, words, table, max_chars):
    """Distinct words (and non-ASCII chunks) of ``texts`` the table lacks: ``(bytes, offsets)`` (serial)."""
    total = room = 0
    for t in range(texts.shape[0]):
        i = texts[t]
        total += text_off[i + 1] - text_off[i] + 1
        room = max(room, text_off[i + 1] - text_off[i] + 1)
    cap = 64
    while cap < 2 * total + 2:
        cap *= 2
    sink = Sink(
        np.zeros(cap, dtype=np.uint64),
        np.zeros(cap, dtype=np.int32),
        np.empty(total + 1, dtype=np.uint8),
        np.zeros(total + 2, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    )
    norm = np.empty(room + 1, dtype=np.uint8)
    ids = np.empty(1, dtype=np.int32)
    for t in range(texts.shape[0]):
        i = texts[t]
        a = text_off[i]
        b = char_cut(buf, a, text_off[i + 1], max_chars)
        text_ids(buf, a, b, words, table, norm, ids, np.int64(0), sink)
    count = sink.used[0]
    return sink.found[: sink.found_off[count]].copy(), sink.found_off[: count + 1].copy()
