"""numba kernels: BERT WordPiece tokenization of ASCII text, without ``tokenizers``.

This is the fast path of :class:`sse_np.tokenizing.TextTokenizer`. It
follows the rules ``tokenizers`` applies for a BertNormalizer +
BertPreTokenizer + WordPiece ``tokenizer.json`` (the configuration is checked
in ``tokenizing.fast_path_spec``), restricted to what is simple and exact on
ASCII bytes:

* normalizer (``clean_text``): NUL and the other control bytes are dropped
  (tab, newline and carriage return become spaces); ``lowercase`` maps
  A-Z to a-z. Accent stripping and CJK padding never touch ASCII.
* pre-tokenizer: split on spaces, then every ASCII punctuation byte is a
  word of its own.
* WordPiece: greedy longest match from the left, continuation pieces
  carry the prefix (``##``); a word with an unmatched remainder, or longer
  than ``max_input_chars_per_word``, is one ``[UNK]``.

Texts arrive as UTF-8 bytes. They are cut into chunks at ASCII whitespace
(space, tab, newline, carriage return): a hard token boundary for these
tokenizers, so chunks tokenize independently. A chunk with a non-ASCII byte,
or one that may contain an added token such as ``[CLS]`` (which
``tokenizers`` matches before normalizing), is not tokenized here: it is
emitted as a *hole* (marker id -1 and its byte range) and the caller asks
``tokenizers`` about it. The test-suite compares the ids with
``tokenizers``' on more than a million strings.

Vocabulary lookups use an open-addressing hash table of FNV-1a hashes,
confirmed byte by byte.
"""

from __future__ import annotations

import numba as nb
import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)

# Byte classes (see ``byte_tables``).
WORD, SPACE, DROP, PUNCT, HIGH = 0, 1, 2, 3, 4


def byte_tables(lowercase: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class and normalized value of each byte value, as BertNormalizer + BertPreTokenizer see it."""
    cls = np.full(256, WORD, dtype=np.uint8)
    cls[128:] = HIGH
    for c in range(32):
        cls[c] = DROP  # control characters (category Cc) are removed by clean_text
    cls[127] = DROP
    for c in b" \t\n\r":
        cls[c] = SPACE
    for c in b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
        cls[c] = PUNCT
    low = np.arange(256, dtype=np.uint8)
    if lowercase:
        low[65:91] += 32
    return cls, low


@nb.njit(cache=True)
def build_vocab_table(vocab_bytes, vocab_off):
    """Hash table over vocabulary entries -> (slot -> entry index or -1, slot -> hash)."""
    n = vocab_off.shape[0] - 1
    n_slots = 1
    while n_slots < 4 * n:
        n_slots *= 2
    mask = np.uint64(n_slots - 1)
    slot_entry = np.full(n_slots, -1, dtype=np.int32)
    slot_hash = np.zeros(n_slots, dtype=np.uint64)
    for k in range(n):
        h = FNV_OFFSET
        for p in range(vocab_off[k], vocab_off[k + 1]):
            h = (h ^ np.uint64(vocab_bytes[p])) * FNV_PRIME
        j = h & mask
        while slot_entry[j] != -1:
            j = (j + np.uint64(1)) & mask
        slot_entry[j] = k
        slot_hash[j] = h
    return slot_entry, slot_hash


@nb.njit(cache=True, inline="always")
def _lookup(h, prefix, plen, word, s, e, slot_entry, slot_hash, vocab_bytes, vocab_off):
    """Entry index of ``prefix[:plen] + word[s:e]`` (hash ``h``), or -1."""
    mask = np.uint64(slot_entry.shape[0] - 1)
    j = h & mask
    while True:
        k = slot_entry[j]
        if k < 0:
            return -1
        if slot_hash[j] == h:
            a = vocab_off[k]
            if vocab_off[k + 1] - a == plen + e - s:
                same = True
                for q in range(plen):
                    if vocab_bytes[a + q] != prefix[q]:
                        same = False
                        break
                if same:
                    for q in range(e - s):
                        if vocab_bytes[a + plen + q] != word[s + q]:
                            same = False
                            break
                if same:
                    return k
        j = (j + np.uint64(1)) & mask


@nb.njit(cache=True, inline="always")
def _wordpiece(word, n, vocab, out, pos, hashes):
    """WordPiece of ``word[:n]`` (normalized bytes) written at ``out[pos:]``; returns the new end."""
    slot_entry, slot_hash, vocab_bytes, vocab_off, vocab_ids, prefix, prefix_hash, unk, max_chars, max_entry = vocab
    if n > max_chars:
        out[pos] = unk
        return pos + 1
    first = pos
    plen = prefix.shape[0]
    s = 0
    while s < n:
        if s == 0:
            h = FNV_OFFSET
            room = max_entry
        else:
            h = prefix_hash
            room = max_entry - plen
        hi = min(n, s + room)
        for e in range(s, hi):
            h = (h ^ np.uint64(word[e])) * FNV_PRIME
            hashes[e] = h
        found = -1
        e = hi
        while e > s:
            k = _lookup(hashes[e - 1], prefix, 0 if s == 0 else plen, word, s, e,
                        slot_entry, slot_hash, vocab_bytes, vocab_off)
            if k >= 0:
                found = k
                break
            e -= 1
        if found < 0:  # the whole word becomes [UNK]
            out[first] = unk
            return first + 1
        out[pos] = vocab_ids[found]
        pos += 1
        s = e
    return pos


@nb.njit(cache=True, inline="always")
def _added_at(buf, p, stop, cls, low, added_bytes, added_off, t):
    """Whether normalized text from byte ``p`` starts with added token ``t`` (dropped bytes skipped)."""
    q = added_off[t]
    end = added_off[t + 1]
    while q < end:
        while p < stop and cls[buf[p]] == DROP:
            p += 1
        if p >= stop or low[buf[p]] != added_bytes[q]:
            return False
        p += 1
        q += 1
    return True


@nb.njit(cache=True, inline="always")
def _may_hold_added(buf, a, b, cls, low, added_first, added_bytes, added_off):
    """Whether the normalized chunk ``buf[a:b]`` contains any added token (conservative)."""
    for p in range(a, b):
        c = buf[p]
        if added_first[low[c]] and cls[c] != DROP:
            for t in range(added_off.shape[0] - 1):
                if _added_at(buf, p, b, cls, low, added_bytes, added_off, t):
                    return True
    return False


@nb.njit(cache=True, inline="always")
def _tokenize_text(buf, a, b, cls, low, added, vocab, out, pos, hole_a, hole_b, hpos, word, hashes):
    """Tokenize ``buf[a:b]`` into ``out[pos:]``; holes go to ``hole_a/b[hpos:]``.

    Returns (ids written incl. hole markers, holes written).
    """
    added_first, added_bytes, added_off = added
    cap = word.shape[0]
    start, hstart = pos, hpos
    i = a
    while i < b:
        if cls[buf[i]] == SPACE:
            i += 1
            continue
        j = i
        plain = True
        while j < b and cls[buf[j]] != SPACE:
            if cls[buf[j]] == HIGH:
                plain = False
            j += 1
        if plain and added_off.shape[0] > 1:
            plain = not _may_hold_added(buf, i, j, cls, low, added_first, added_bytes, added_off)
        if not plain:
            out[pos] = -1
            pos += 1
            hole_a[hpos] = i
            hole_b[hpos] = j
            hpos += 1
        else:
            n = 0
            for p in range(i, j):
                c = buf[p]
                k = cls[c]
                if k == DROP:
                    continue
                if k == PUNCT:
                    if n > 0:
                        pos = _wordpiece(word, n, vocab, out, pos, hashes)
                        n = 0
                    word[0] = low[c]
                    pos = _wordpiece(word, 1, vocab, out, pos, hashes)
                else:
                    if n < cap:
                        word[n] = low[c]
                    n += 1
            if n > 0:
                pos = _wordpiece(word, n, vocab, out, pos, hashes)
        i = j
    return pos - start, hpos - hstart


@nb.njit(cache=True, inline="always")
def _tokenize_range(buf, text_off, lo, hi, cls, low, added, vocab, out, counts, hole_a, hole_b, n_holes):
    max_chars = vocab[8]
    word = np.empty(max_chars + 1, dtype=np.uint8)
    hashes = np.empty(max_chars + 1, dtype=np.uint64)
    for i in range(lo, hi):
        a, b = text_off[i], text_off[i + 1]
        counts[i], n_holes[i] = _tokenize_text(buf, a, b, cls, low, added, vocab, out, a,
                                               hole_a, hole_b, a, word, hashes)


# Parallel and serial copies of one body (numba caches per function); see
# kernels_numba.pool_parallel for ``n_parts``.
@nb.njit(cache=True, parallel=True, nogil=True)
def tokenize_parallel(buf, text_off, cls, low, added, vocab, out, counts, hole_a, hole_b, n_holes, n_parts):
    """Tokenize every text; text ``i``'s ids start at ``out[text_off[i]]`` (see module doc)."""
    n = text_off.shape[0] - 1
    for part in nb.prange(n_parts):
        _tokenize_range(buf, text_off, part * n // n_parts, (part + 1) * n // n_parts,
                        cls, low, added, vocab, out, counts, hole_a, hole_b, n_holes)


@nb.njit(cache=True, nogil=True)
def tokenize_serial(buf, text_off, cls, low, added, vocab, out, counts, hole_a, hole_b, n_holes, n_parts):
    """Single-threaded :func:`tokenize_parallel` (small batches: no thread-pool wake-up)."""
    _tokenize_range(buf, text_off, 0, text_off.shape[0] - 1,
                    cls, low, added, vocab, out, counts, hole_a, hole_b, n_holes)


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
