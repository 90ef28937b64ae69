"""Looking words up in the WordPiece vocabulary (``wordpiece_tables.Vocab``), for the jitted tokenizer.

* :func:`whole_word` -- a word of at most 8 bytes, packed in a uint64, in
  the table keyed by the bytes themselves: exact, one compare, no hashing;
* :func:`wordpiece` -- the greedy longest match from the left, whose
  candidate pieces are FNV-1a hashes: a 64 KiB Bloom filter turns most
  non-entries away, the rest probe an open-addressing table and are
  confirmed byte by byte. Byte-wise matching finds the same pieces as
  ``tokenizers``' character-wise one: an entry is whole UTF-8, so it can
  only match up to a character boundary.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .wordpiece_tables import FNV_PRIME, GOLDEN

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(FNV_PRIME)
_GOLDEN = np.uint64(GOLDEN)


# The hot calls are inlined at numba's IR level: called apart, each call
# passes the whole Vocab tuple (a few dozen machine arguments); with
# ``wordpiece`` called apart, documents tokenized 1.5x slower.
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
def wordpiece(word, n, chars, vocab, out, pos, hashes):
    """WordPiece of ``word[:n]`` (normalized UTF-8, ``chars`` characters) written at ``out[pos:]``; the new end."""
    if chars > vocab.max_chars:
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
def whole_word(key, word_keys, word_ids, shift):
    """Token id of the whole word packed in ``key`` (1-8 bytes, byte ``i`` at bits ``8i``), or -1."""
    mask = np.uint64(word_keys.shape[0] - 1)
    j = (key * _GOLDEN) >> shift
    while True:
        k = word_keys[j]
        if k == key:
            return word_ids[j]
        if k == np.uint64(0):
            return -1
        j = (j + np.uint64(1)) & mask
