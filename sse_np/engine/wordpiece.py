"""Jitted BERT WordPiece for ASCII text: the fast path of the numba back-end.

It follows the rules ``tokenizers`` applies for a BertNormalizer +
BertPreTokenizer + WordPiece ``tokenizer.json`` (checked by
``sse_np.tokenizing.fast_path_spec``), restricted to what is simple and
exact on ASCII bytes:

* normalizer (``clean_text``): NUL and the other control bytes are dropped
  (tab, newline and carriage return become spaces); ``lowercase`` maps
  A-Z to a-z. Accent stripping and CJK padding never touch ASCII.
* pre-tokenizer: split on spaces, then every ASCII punctuation byte is a
  word of its own.
* WordPiece: greedy longest match from the left, continuation pieces carry
  the prefix (``##``); a word with an unmatched remainder, or longer than
  ``max_input_chars_per_word``, is one ``[UNK]``.

Texts arrive as one UTF-8 buffer. They are cut into chunks at ASCII
whitespace, a hard token boundary for these tokenizers. A chunk with a
non-ASCII byte, or one that may hold an added token such as ``[CLS]``
(which ``tokenizers`` matches before normalizing), is not tokenized here:
it becomes a *hole* (marker id -1 plus its byte range) that the caller
fills with ``tokenizers``' ids. The tests compare the ids with
``tokenizers``' on more than a million strings.

Lookups (tables built in ``sse_np.tokenizing``):

* a word of at most 8 bytes is first looked up whole in a table keyed by
  its bytes packed in a uint64: exact, one compare, no hashing. Four words
  in five end there, as one token, without leaving the scanning loop;
* any other word goes out of line to the greedy longest match, whose
  candidate pieces are FNV-1a hashes: a 64 KiB Bloom filter turns most
  non-entries away, the rest probe an open-addressing table and are
  confirmed byte by byte.

Together these tokenized 16,384 sentences 1.45x faster than one hash
lookup per candidate did (whole encode: ``bench/ab_engine.py``). Kernels take the named tuples ``Vocab`` and
``ByteClasses`` and run as plain Python under ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..tokenizing import (
    DROP,
    FNV_PRIME,
    GOLDEN,
    HIGH,
    PUNCT,
    SPACE,
    WORD_KEY_BYTES,
)

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(FNV_PRIME)
_GOLDEN = np.uint64(GOLDEN)


# The hot inner calls are inlined at numba's IR level: called apart, each
# call passes the whole Vocab tuple (a few dozen machine arguments).
@nb.njit(cache=True, inline="always")
def _lookup(h, vocab, plen, word, s, e):
    """Entry index of ``vocab.prefix[:plen] + word[s:e]`` (hash ``h``), or -1."""
    mask = np.uint64(vocab.slot_entry.shape[0] - 1)
    j = h & mask
    while True:
        k = vocab.slot_entry[j]
        if k < 0:
            return -1
        if vocab.slot_hash[j] == h:
            a = vocab.offsets[k]
            if vocab.offsets[k + 1] - a == plen + e - s:
                same = True
                for q in range(plen):
                    if vocab.data[a + q] != vocab.prefix[q]:
                        same = False
                        break
                if same:
                    for q in range(e - s):
                        if vocab.data[a + plen + q] != word[s + q]:
                            same = False
                            break
                if same:
                    return k
        j = (j + np.uint64(1)) & mask


@nb.njit(cache=True, inline="always")
def _wordpiece(word, n, vocab, out, pos, hashes):
    """WordPiece of ``word[:n]`` (normalized bytes) written at ``out[pos:]``; returns the new end."""
    if n > vocab.max_chars:
        out[pos] = vocab.unk
        return pos + 1
    first = pos
    plen = vocab.prefix.shape[0]
    s = 0
    while s < n:
        if s == 0:
            h = _FNV_OFFSET
            room = vocab.max_entry
        else:
            h = np.uint64(vocab.prefix_hash)
            room = vocab.max_entry - plen
        hi = min(n, s + room)
        for e in range(s, hi):
            h = (h ^ np.uint64(word[e])) * _FNV_PRIME
            hashes[e] = h
        found = -1
        e = hi
        while e > s:
            h = hashes[e - 1]
            bit = h >> vocab.bloom_shift
            if vocab.bloom[bit >> np.uint64(6)] & (np.uint64(1) << (bit & np.uint64(63))):
                k = _lookup(h, vocab, np.int64(0) if s == 0 else np.int64(plen), word, s, e)
                if k >= 0:
                    found = k
                    break
            e -= 1
        if found < 0:  # the whole word becomes [UNK]
            out[first] = vocab.unk
            return first + 1
        out[pos] = vocab.ids[found]
        pos += 1
        s = e
    return pos


@nb.njit(cache=True, inline="always")
def _whole_word(key, word_keys, word_ids, shift):
    """Token id of the whole word packed in ``key`` (1-8 ASCII bytes, byte ``i`` at bits ``8i``), or -1."""
    mask = np.uint64(word_keys.shape[0] - 1)
    j = (key * _GOLDEN) >> shift
    while True:
        k = word_keys[j]
        if k == key:
            return word_ids[j]
        if k == np.uint64(0):
            return -1
        j = (j + np.uint64(1)) & mask


@nb.njit(cache=True)
def _slow_word(buf, p, q, classes, vocab, out, pos, word, hashes):
    """WordPiece of the word in ``buf[p:q]`` (dropped bytes skipped) at ``out[pos:]``; returns the new end.

    Out of line: only words that are not one whole entry come here, and
    keeping this code apart keeps the fast loop small.
    """
    cap = word.shape[0]
    n = 0
    for r in range(p, q):
        c = buf[r]
        if classes.cls[c] != DROP:
            if n < cap:
                word[n] = classes.low[c]
            n += 1
    return _wordpiece(word, n, vocab, out, pos, hashes)


@nb.njit(cache=True)
def _added_at(buf, p, stop, classes, t):
    """Whether normalized text from byte ``p`` starts with added token ``t`` (dropped bytes skipped)."""
    q = classes.added_off[t]
    end = classes.added_off[t + 1]
    while q < end:
        while p < stop and classes.cls[buf[p]] == DROP:
            p += 1
        if p >= stop or classes.low[buf[p]] != classes.added_bytes[q]:
            return False
        p += 1
        q += 1
    return True


@nb.njit(cache=True)
def _may_hold_added(buf, a, b, classes):
    """Whether the normalized chunk ``buf[a:b]`` contains any added token (conservative)."""
    for p in range(a, b):
        c = buf[p]
        if classes.added_first[classes.low[c]] and classes.cls[c] != DROP:
            for t in range(classes.added_off.shape[0] - 1):
                if _added_at(buf, p, b, classes, t):
                    return True
    return False


@nb.njit(cache=True)
def tokenize_text(buf, a, b, classes, vocab, out, pos, hole_a, hole_b, hpos, word, hashes):
    """Tokenize ``buf[a:b]`` into ``out[pos:]``; holes go to ``hole_a/b[hpos:]``.

    ``word`` and ``hashes`` are scratch of ``vocab.max_chars + 1`` entries.
    Returns (ids written incl. hole markers, holes written).
    """
    cls, low, added_first = classes.cls, classes.low, classes.added_first
    word_keys, word_ids, shift = vocab.word_keys, vocab.word_ids, vocab.word_shift
    short = min(WORD_KEY_BYTES, vocab.max_chars)  # longer words never take the one-lookup path
    start, hstart = pos, hpos
    check_added = classes.added_off.shape[0] > 1
    i = a
    while i < b:
        if cls[buf[i]] == SPACE:
            i += 1
            continue
        j = i
        plain = True
        added = False  # a byte that may start an added token (a call per chunk cost as much as its words)
        while j < b:
            c = buf[j]
            k = cls[c]
            if k == SPACE:
                break
            if k == HIGH:
                plain = False
            added |= added_first[low[c]]
            j += 1
        if plain and added and check_added:
            plain = not _may_hold_added(buf, i, j, classes)
        if not plain:
            out[pos] = -1
            pos += 1
            hole_a[hpos] = i
            hole_b[hpos] = j
            hpos += 1
            i = j
            continue
        p = i
        while p < j:  # the chunk's words: runs of bytes between punctuation bytes
            w = p
            n = 0
            key = np.uint64(0)  # the word's first 8 bytes, packed
            while p < j:
                c = buf[p]
                k = cls[c]
                if k == PUNCT:
                    break
                if k != DROP:
                    if n < WORD_KEY_BYTES:
                        key |= np.uint64(low[c]) << np.uint64(8 * n)
                    n += 1
                p += 1
            if n > 0:
                t = _whole_word(key, word_keys, word_ids, shift) if n <= short else -1
                if t >= 0:
                    out[pos] = t
                    pos += 1
                else:
                    pos = _slow_word(buf, w, p, classes, vocab, out, pos, word, hashes)
            if p < j:  # a punctuation byte: a word of its own
                t = _whole_word(np.uint64(low[buf[p]]), word_keys, word_ids, shift) if short >= 1 else -1
                if t >= 0:
                    out[pos] = t
                    pos += 1
                else:
                    pos = _slow_word(buf, p, p + 1, classes, vocab, out, pos, word, hashes)
                p += 1
        i = j
    return pos - start, hpos - hstart


@nb.njit(cache=True, nogil=True)
def tokenize_range(buf, text_off, lo, hi, classes, vocab, out, counts, hole_a, hole_b, n_holes):
    """Tokenize texts ``lo..hi-1``; text ``i``'s ids (hole marker -1) start at ``out[text_off[i]]``."""
    word = np.empty(vocab.max_chars + 1, dtype=np.uint8)
    hashes = np.empty(vocab.max_chars + 1, dtype=np.uint64)
    for i in range(lo, hi):
        a = text_off[i]
        counts[i], n_holes[i] = tokenize_text(
            buf, a, text_off[i + 1], classes, vocab, out, a, hole_a, hole_b, a, word, hashes
        )


@nb.njit(cache=True, nogil=True)
def splice(ids, starts, stops, hole_ids, hole_off):
    """Compact the bags ``ids[starts[i]:stops[i]]``, replacing each hole marker (-1), in
    order, by the next piece ``hole_ids[hole_off[h]:hole_off[h + 1]]``.

    Returns (ids, offsets): text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
    """
    n = starts.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    h = 0
    for i in range(n):
        size = 0
        for p in range(starts[i], stops[i]):
            if ids[p] < 0:
                size += hole_off[h + 1] - hole_off[h]
                h += 1
            else:
                size += 1
        offsets[i + 1] = offsets[i] + size
    out = np.empty(offsets[n], dtype=np.int32)
    pos = 0
    h = 0
    for i in range(n):
        for p in range(starts[i], stops[i]):
            if ids[p] < 0:
                for q in range(hole_off[h], hole_off[h + 1]):
                    out[pos] = hole_ids[q]
                    pos += 1
                h += 1
            else:
                out[pos] = ids[p]
                pos += 1
    return out, offsets
