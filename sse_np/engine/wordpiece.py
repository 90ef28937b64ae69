"""Jitted BERT tokenization -- normalizer, pre-tokenizer and WordPiece -- for all of Unicode.

It follows the rules ``tokenizers`` applies for a BertNormalizer +
BertPreTokenizer + WordPiece ``tokenizer.json`` (checked by
``sse_np.tokenizer.fast_path_spec``):

* normalizer: ``clean_text`` drops control characters and maps whitespace
  to spaces, CJK ideographs become words of their own, accents are
  stripped (NFD, then nonspacing marks dropped), text is lowercased. ASCII
  bytes take a byte table (``ByteClasses``); other characters are decoded
  from UTF-8 and looked up per code point (``UnicodeTables``, derived from
  ``tokenizers`` itself, see ``sse_np.engine.unicode_tables``);
* pre-tokenizer: split at whitespace, punctuation is a word of its own;
* WordPiece: greedy longest match from the left, continuation pieces carry
  the prefix (``##``); a word with an unmatched remainder, or longer than
  ``max_input_chars_per_word`` characters, is one ``[UNK]``.

Texts arrive as one UTF-8 buffer and are scanned in chunks between ASCII
whitespace bytes. A chunk that may hold an added token such as ``[CLS]``
(which ``tokenizers`` matches in the raw text, before normalizing), or a
character whose table entry is ``HOLE``, makes the whole text a
*fallback*: :func:`tokenize_text` returns -1 and the caller tokenizes that
text with ``tokenizers``. The tests compare the words and ids with
``tokenizers``' on every code point and on more than a million strings.

Lookups:

* a word of at most 8 bytes is first looked up whole in a table keyed by
  its bytes packed in a uint64: exact, one compare, no hashing. Four
  English words in five end there, as one token, without leaving the
  scanning loop;
* any other word goes out of line to the greedy longest match, whose
  candidate pieces are FNV-1a hashes: a 64 KiB Bloom filter turns most
  non-entries away, the rest probe an open-addressing table and are
  confirmed byte by byte. Byte-wise matching finds the same pieces as
  ``tokenizers``' character-wise one: an entry is whole UTF-8, so it can
  only match up to a character boundary.

With ``words=True`` the kernels write each word's normalized UTF-8 bytes
(then -1) instead of token ids: the pre-tokenizer's output, for lexical
search and for the tests. Kernels take the named tuples ``ByteClasses``,
``UnicodeTables`` and ``Vocab`` and run as plain Python under
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .intrinsics import fetch_add, unowned
from .unicode_tables import BLOCK, ISOLATE, KIND_BITS, MAPPED, WORDS_ROOM
from .unicode_tables import SPACE as U_SPACE
from .unicode_tables import WORD as U_WORD
from .wordpiece_lookup import whole_word, wordpiece
from .wordpiece_tables import DROP, HIGH, PUNCT, SPACE, WORD_KEY_BYTES

FALLBACK = -1  # tokenize_text's answer for a text that only tokenizers can tokenize exactly
_U_HOLE = 5
_WORD, _BOUND, _ISO, _END = 0, 1, 2, 3  # units of the non-ASCII scan


@nb.njit(cache=True)
def _put_word(word, n, out, pos):
    """``words`` mode: the word's bytes, then a -1 separator."""
    for q in range(n):
        out[pos + q] = word[q]
    out[pos + n] = -1
    return pos + n + 1


@nb.njit(cache=True)
def _ascii_word(buf, p, q, classes, vocab, out, pos, word, hashes, words):
    """The word in ``buf[p:q]`` (ASCII, dropped bytes skipped): its ids at ``out[pos:]``; the new end.

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
    if words:
        return _put_word(word, min(n, cap), out, pos)
    return wordpiece(word, np.int64(n), np.int64(n), vocab, out, pos, hashes)


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
    """Whether the chunk ``buf[a:b]`` may contain an added token (conservative: case and dropped bytes ignored)."""
    for p in range(a, b):
        c = buf[p]
        if classes.added_first[classes.low[c]] and classes.cls[c] != DROP:
            for t in range(classes.added_off.shape[0] - 1):
                if _added_at(buf, p, b, classes, t):
                    return True
    return False


@nb.njit(cache=True, inline="always")
def _decode(buf, p):
    """(code point, byte length) of the UTF-8 character at ``buf[p]`` (valid UTF-8 assumed)."""
    c = np.int64(buf[p])
    if c < 0xE0:
        return ((c & 0x1F) << 6) | (np.int64(buf[p + 1]) & 0x3F), 2
    if c < 0xF0:
        return ((c & 0x0F) << 12) | ((np.int64(buf[p + 1]) & 0x3F) << 6) | (np.int64(buf[p + 2]) & 0x3F), 3
    return (
        ((c & 0x07) << 18)
        | ((np.int64(buf[p + 1]) & 0x3F) << 12)
        | ((np.int64(buf[p + 2]) & 0x3F) << 6)
        | (np.int64(buf[p + 3]) & 0x3F)
    ), 4


@nb.njit(cache=True, inline="always")
def _append_from(word, n, key, src, buf, out_bytes, low, a, b):
    """Append one character's bytes -- ``buf[a:b]`` (src 0), ``out_bytes[a:b]`` (1) or ``low[a:b]`` (2) -- to
    the word; returns (n, key)."""
    cap = word.shape[0]
    for q in range(a, b):
        v = buf[q] if src == 0 else (out_bytes[q] if src == 1 else low[q])
        if n < cap:
            word[n] = v
        if n < WORD_KEY_BYTES:
            key |= np.uint64(v) << np.uint64(8 * n)
        n += 1
    return n, key


@nb.njit(cache=True)
def tokenize_texts(buf, text_off, lo, hi, base, classes, uni, vocab, out, counts, words, max_text_chars):
    """Tokenize texts ``lo .. hi - 1``: text ``i`` (``buf[text_off[i]:text_off[i + 1]]``, cut to its first
    ``max_text_chars`` characters unless -1) writes its ids at ``out[room * (text_off[i] - base):]`` and
    ``counts[i - lo]`` = their number (at most the text's bytes), or ``FALLBACK``.

    ``words``: each word's bytes followed by -1 instead of ids (``room`` = ``WORDS_ROOM``, else 1).

    One function on purpose, texts included: each array of the named tuples
    is taken out once per call. Calls that took the tuples (or read arrays
    out of them) per text, chunk or word cost a reference-count update per
    array and ran 4-5x slower; only the rare slow paths are calls.
    """
    cls, low, added_first = classes.cls, classes.low, classes.added_first
    word_keys, word_ids, shift = vocab.word_keys, vocab.word_ids, vocab.word_shift
    stage1, stage2, map_first = uni.stage1, uni.stage2, uni.map_first
    out_kind, out_off, out_bytes = uni.out_kind, uni.out_off, uni.out_bytes
    max_chars = vocab.max_chars
    short = min(WORD_KEY_BYTES, max_chars)  # longer words never take the one-lookup path
    check_added = classes.added_off.shape[0] > 1
    unicode = stage1.shape[0] > 0
    room = WORDS_ROOM if words else 1
    word = np.empty(4 * max_chars + 8, dtype=np.uint8)  # scratch per call, not per text
    hashes = np.empty(4 * max_chars + 8, dtype=np.uint64)
    for text in range(lo, hi):
        a = text_off[text]
        b = _char_cut(buf, a, text_off[text + 1], max_text_chars)
        start = pos = room * (a - base)
        counts[text - lo] = _one_text(
            buf,
            a,
            b,
            classes,
            uni,
            vocab,
            out,
            pos,
            word,
            hashes,
            words,
            cls,
            low,
            added_first,
            word_keys,
            word_ids,
            shift,
            stage1,
            stage2,
            map_first,
            out_kind,
            out_off,
            out_bytes,
            max_chars,
            short,
            check_added,
            unicode,
            start,
        )


@nb.njit(cache=True, inline="always")
def _char_cut(buf, a, b, max_chars):
    """End of the first ``max_chars`` characters of ``buf[a:b]`` (model2vec cuts texts before tokenizing)."""
    if max_chars < 0 or b - a <= max_chars:
        return b
    chars = 0
    for p in range(a, b):
        if buf[p] & 0xC0 != 0x80:  # a character starts here
            if chars == max_chars:
                return p
            chars += 1
    return b


@nb.njit(cache=True)
def _one_text(
    buf,
    a,
    b,
    classes,
    uni,
    vocab,
    out,
    pos,
    word,
    hashes,
    words,
    cls,
    low,
    added_first,
    word_keys,
    word_ids,
    shift,
    stage1,
    stage2,
    map_first,
    out_kind,
    out_off,
    out_bytes,
    max_chars,
    short,
    check_added,
    unicode,
    start,
):
    """The ids of ``buf[a:b]`` at ``out[pos:]``: their number, or ``FALLBACK``."""
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
        if added and check_added and _may_hold_added(buf, i, j, classes):
            return FALLBACK
        if plain:
            # ASCII: the chunk's words are runs of bytes between punctuation bytes
            p = i
            while p < j:
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
                    t = whole_word(key, word_keys, word_ids, shift) if n <= short and not words else -1
                    if t >= 0:
                        out[pos] = t
                        pos += 1
                    else:
                        pos = _ascii_word(buf, w, p, classes, vocab, out, pos, word, hashes, words)
                if p < j:  # a punctuation byte: a word of its own
                    t = (
                        whole_word(np.uint64(low[buf[p]]), word_keys, word_ids, shift)
                        if short >= 1 and not words
                        else -1
                    )
                    if t >= 0:
                        out[pos] = t
                        pos += 1
                    else:
                        pos = _ascii_word(buf, p, p + 1, classes, vocab, out, pos, word, hashes, words)
                    p += 1
            i = j
            continue
        if not unicode:
            return FALLBACK
        pos = _unicode_chunk(
            buf,
            i,
            j,
            cls,
            low,
            word_keys,
            word_ids,
            shift,
            stage1,
            stage2,
            map_first,
            out_kind,
            out_off,
            out_bytes,
            max_chars,
            vocab,
            out,
            pos,
            word,
            hashes,
            words,
        )
        if pos < 0:
            return FALLBACK
        i = j
    return pos - start


@nb.njit(cache=True)
def _unicode_chunk(
    buf,
    i,
    j,
    cls,
    low,
    word_keys,
    word_ids,
    shift,
    stage1,
    stage2,
    map_first,
    out_kind,
    out_off,
    out_bytes,
    max_chars,
    vocab,
    out,
    pos,
    word,
    hashes,
    words,
):
    """The ids of the chunk ``buf[i:j]``, which holds non-ASCII bytes, at ``out[pos:]``: the new end, or -1
    (``FALLBACK``) when only ``tokenizers`` can tokenize it exactly.

    Out of line: English text rarely comes here, and ``_one_text``, which
    runs for every text, stays small.
    """
    # Non-ASCII: one unit at a time -- a character of a word, a boundary, an
    # isolated character (punctuation, CJK) or the end -- ASCII bytes by the
    # byte tables, others by the Unicode tables, a MAPPED character's outputs
    # one after another.
    p = i
    n = 0  # bytes, characters and packed key of the word being built
    chars = 0
    key = np.uint64(0)
    mk = 0  # a MAPPED character's outputs still to take: mk .. mend - 1
    mend = 0
    while True:
        src = 0  # the unit's bytes: 0 buf, 1 out_bytes, 2 the byte table (ASCII)
        ua = 0
        ub = 0
        if mk < mend:
            okind = out_kind[mk]
            unit = _WORD if okind == U_WORD else (_BOUND if okind == U_SPACE else _ISO)
            src, ua, ub = 1, out_off[mk], out_off[mk + 1]
            mk += 1
        elif p >= j:
            unit = _END
        else:
            c = buf[p]
            if c < 0x80:
                k = cls[c]
                p += 1
                if k == DROP:
                    continue
                unit = _ISO if k == PUNCT else _WORD
                src, ua, ub = 2, c, c + 1
            else:
                cp, size = _decode(buf, p)
                entry = stage2[np.int64(stage1[cp >> 8]) * BLOCK + (cp & (BLOCK - 1))]
                kind = entry & np.uint32((1 << KIND_BITS) - 1)
                if kind == _U_HOLE:
                    return FALLBACK
                if kind == MAPPED:
                    m = np.int64(entry >> np.uint32(KIND_BITS))
                    mk, mend = map_first[m], map_first[m + 1]
                    p += size
                    continue
                if kind == U_WORD or kind == ISOLATE:  # noqa: SIM109 (two compares in jitted code)
                    unit = _WORD if kind == U_WORD else _ISO
                    src, ua, ub = 0, p, p + size
                elif kind == U_SPACE:
                    unit = _BOUND
                else:  # DROP
                    p += size
                    continue
                p += size
        if unit == _WORD:
            n, key = _append_from(word, n, key, src, buf, out_bytes, low, ua, ub)
            chars += 1
            continue
        # A boundary, an isolated character or the end: the word so far is
        # done (step 0), then the isolated character is a word (step 1).
        for step in range(2):
            if step == 1:
                if unit != _ISO:
                    break
                n, key = _append_from(word, 0, np.uint64(0), src, buf, out_bytes, low, ua, ub)
                chars = 1
            if chars == 0:
                continue
            t = -1
            if n <= WORD_KEY_BYTES and chars <= max_chars and not words:
                t = whole_word(key, word_keys, word_ids, shift)
            if t >= 0:
                out[pos] = t
                pos += 1
            elif words:
                pos = _put_word(word, min(n, word.shape[0]), out, pos)
            else:
                pos = wordpiece(word, np.int64(n), np.int64(chars), vocab, out, pos, hashes)
            n, chars, key = 0, 0, np.uint64(0)
        if unit == _END:
            break
    return pos


@nb.njit(cache=True, nogil=True)
def tokenize_items(buf, text_off, item_off, counter, classes, uni, vocab, out, counts, words):
    """Tokenize texts item by item, items taken from ``counter`` until none is left (one call per thread).

    Item ``k`` holds texts ``item_off[k] .. item_off[k + 1] - 1``. Text ``i``'s
    ids start at ``out[text_off[i]]`` (``words``: at ``out[WORDS_ROOM * text_off[i]]``);
    ``counts[i]`` is their number, or ``FALLBACK``.
    """
    buf, text_off, item_off, classes, uni, vocab = (
        unowned(buf),
        unowned(text_off),
        unowned(item_off),
        unowned(classes),
        unowned(uni),
        unowned(vocab),
    )
    out, counts = unowned(out), unowned(counts)
    n_items = item_off.shape[0] - 1
    while True:
        k = fetch_add(counter, 1)
        if k >= n_items:
            return
        lo = item_off[k]
        # (np.int64: a literal 0 or -1 would compile a second copy of tokenize_texts)
        tokenize_texts(
            buf, text_off, lo, item_off[k + 1], np.int64(0), classes, uni, vocab, out, counts[lo:], words, np.int64(-1)
        )
