"""WordPiece tokenization exactly as the SSE reference does it.

The reference calls ``tokenizer.no_padding()`` and then
``encode_batch(texts, add_special_tokens=False)``; truncation stays as
``tokenizer.json`` configures it and ``[UNK]`` ids are kept. The ids of a
batch are returned flat with offsets, the EmbeddingBag input format.

Speed: for BERT-style tokenizers (BertNormalizer, BertPreTokenizer,
WordPiece) ASCII whitespace (space, tab, newline, carriage return) is a hard
boundary: the normalizer works character by character and the
pre-tokenizer always splits there. So a text's ids are the concatenation of
the ids of its whitespace-separated chunks, each tokenized alone. Chunks
repeat heavily in real text, so :class:`TextTokenizer` remembers each
chunk's ids (a bounded cache) and asks ``tokenizers`` only about new chunks.
Any other tokenizer goes through ``encode_batch`` unchanged.

Fast path: with numba, the ASCII chunks of texts for a plain BERT
configuration (see :func:`fast_path_spec`) are tokenized by a jitted
WordPiece (``tokenizing_numba``), in parallel over texts; only chunks with
non-ASCII bytes or a possible added token (``[CLS]``...) go through the
cache and ``tokenizers``. The tests check the ids against ``tokenizers``'
own output on more than a million strings.
"""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tokenizers import Tokenizer

from . import kernels
from .errors import ModelLoadError


def load_tokenizer(path: Path, vocab_size: int | None = None) -> Tokenizer:
    """Load ``tokenizer.json`` configured as the reference uses it.

    Parameters
    ----------
    path : Path
        The ``tokenizer.json`` file.
    vocab_size : int, optional
        Rows of the embedding table; the tokenizer is refused if it can emit
        an id at or beyond it.

    Returns
    -------
    tokenizers.Tokenizer
    """
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception subclass
        raise ModelLoadError(f"{path}: cannot load tokenizer ({exc})") from None
    tokenizer.no_padding()
    if vocab_size is not None:
        top = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
        if top >= vocab_size:
            raise ModelLoadError(
                f"{path}: tokenizer can emit ids up to {top}, but the embedding table has only "
                f"{vocab_size} rows (tokenizer and weights from different models?)"
            )
    return tokenizer


def _explain_failure(texts: Sequence[str], start: int) -> ValueError:
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


_CHUNKS = re.compile(r"[^ \t\n\r]+").findall
DEFAULT_CACHE_SIZE = 200_000  # chunks; roughly 40 MB when full
# Fewer new chunks than this are tokenized as one joined text: a batch call
# wakes the tokenizer's thread pool, which costs more than it saves here.
_JOIN_BELOW = 256


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
    """Settings for the numba WordPiece if ``tokenizer.json`` is a configuration it reproduces, else None.

    Supported: BertNormalizer with ``clean_text`` on (any ``lowercase``; accent
    and CJK options never touch ASCII), BertPreTokenizer, WordPiece with its
    unknown token in the vocabulary, and added tokens that are plain ASCII
    without whitespace, control bytes or ``lstrip``/``rstrip``/``single_word``.
    """
    normalizer, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if normalizer.get("type") != "BertNormalizer" or not normalizer.get("clean_text", True):
        return None
    if pre.get("type") != "BertPreTokenizer" or model.get("type") != "WordPiece":
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
        if (not content or not content.isascii() or not content.isprintable() or " " in content
                or token.get("lstrip") or token.get("rstrip") or token.get("single_word")):
            return None
        added.append(content.lower() if lowercase else content)
    return {"vocab": vocab, "unk": unk, "prefix": prefix, "max_chars": max_chars,
            "lowercase": lowercase, "added": sorted(set(added))}


class _FastWordPiece:
    """Tables for ``tokenizing_numba`` and the call that fills a batch's ids."""

    def __init__(self, settings: dict) -> None:
        from . import tokenizing_numba as tn

        self._tn = tn
        entries = sorted(settings["vocab"].items(), key=lambda kv: kv[1])
        raw = [text.encode("utf-8") for text, _ in entries]
        vocab_bytes = np.frombuffer(b"".join(raw), dtype=np.uint8)
        vocab_off = np.zeros(len(raw) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in raw], out=vocab_off[1:])
        vocab_ids = np.array([i for _, i in entries], dtype=np.int32)
        slot_entry, slot_hash = tn.build_vocab_table(vocab_bytes, vocab_off)
        prefix = np.array(list(settings["prefix"].encode("utf-8")), dtype=np.uint8)
        prefix_hash = int(tn.FNV_OFFSET)
        for c in prefix.tolist():
            prefix_hash = ((prefix_hash ^ c) * int(tn.FNV_PRIME)) & 0xFFFFFFFFFFFFFFFF
        self.vocab = (slot_entry, slot_hash, vocab_bytes, vocab_off, vocab_ids, prefix, np.uint64(prefix_hash),
                      np.int32(settings["vocab"][settings["unk"]]), np.int64(settings["max_chars"]),
                      np.int64(max(len(r) for r in raw)))
        self.cls, self.low = tn.byte_tables(settings["lowercase"])
        added = [a.encode("ascii") for a in settings["added"]]
        first = np.zeros(256, dtype=np.bool_)
        for a in added:
            first[a[0]] = True
        added_off = np.zeros(len(added) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in added], out=added_off[1:])
        self.added = (first, np.array(list(b"".join(added)), dtype=np.uint8), added_off)

    def __call__(self, data: bytes, text_off: np.ndarray, threads: int | None):
        """Ids (hole marker -1) at ``text_off[i]``, their counts, hole byte ranges and hole counts."""
        n = text_off.shape[0] - 1
        buf = np.frombuffer(data, dtype=np.uint8)
        ids = np.empty(buf.shape[0], dtype=np.int32)
        hole_a = np.empty(buf.shape[0], dtype=np.int64)
        hole_b = np.empty(buf.shape[0], dtype=np.int64)
        counts = np.empty(n, dtype=np.int64)
        n_holes = np.empty(n, dtype=np.int64)
        tn = self._tn
        parallel = n > 1 and buf.shape[0] >= _PARALLEL_BYTES
        kernels.run_numba(tn.tokenize_parallel, tn.tokenize_serial, parallel, threads,
                          buf, text_off, self.cls, self.low, self.added, self.vocab, ids, counts, hole_a, hole_b, n_holes)
        return ids, counts, hole_a, hole_b, n_holes

    def splice(self, ids, starts, stops, hole_ids, hole_off):
        return self._tn.splice(ids, starts, stops, hole_ids, hole_off)


# Below this many bytes a batch is tokenized on the calling thread alone.
_PARALLEL_BYTES = 1 << 15


class TextTokenizer:
    """Texts -> token ids, exactly as ``encode_batch(add_special_tokens=False)``.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        As returned by :func:`load_tokenizer` (padding off).
    cache_size : int
        Most whitespace-separated chunks remembered; 0 disables the chunk
        path (and the fast path). The cache is emptied when it outgrows this size.
    fast : bool, optional
        Use the numba WordPiece for ASCII chunks (True loads numba now).
        Default: when the configuration is supported (:func:`fast_path_spec`)
        and numba is loaded, now or later by :meth:`enable_fast`.
    """

    def __init__(self, tokenizer: Tokenizer, cache_size: int = DEFAULT_CACHE_SIZE, fast: bool | None = None) -> None:
        self.tokenizer = tokenizer
        self.cache_size = cache_size
        spec = json.loads(tokenizer.to_str())
        self._chunked = cache_size > 0 and _chunkable(spec)
        self._cache: dict[str, list[int]] = {}
        self._fast = None
        self._fast_settings = settings = fast_path_spec(spec) if self._chunked and fast is not False else None
        if fast and settings is None:
            raise ValueError("the fast path needs cache_size > 0 and a tokenizer.json configuration it "
                             "reproduces (see sse_np.tokenizing.fast_path_spec); this one is not")
        if self._chunked:
            # Chunks are cached whole; truncation applies to texts, afterwards.
            self._chunk_tokenizer = Tokenizer.from_str(tokenizer.to_str())
            self._chunk_tokenizer.no_truncation()
            if fast and not kernels.numba_enabled():
                raise ValueError("fast=True needs numba (installed, and SSE_NP_DISABLE_NUMBA not set)")
            if settings is not None and kernels.numba_loaded():
                self._fast = _FastWordPiece(settings)
        trunc = tokenizer.truncation
        self._max_len = trunc["max_length"] if trunc else None
        self._keep_end = bool(trunc) and trunc.get("direction") == "left"
        # encode_batch_fast skips character offsets we do not need; same ids.
        self._encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    @property
    def fast(self) -> bool:
        """Whether the numba WordPiece fast path is in use."""
        return self._fast is not None

    def enable_fast(self) -> bool:
        """Build the fast path's tables if the configuration allows it (loads numba).

        Returns whether the fast path is now in use. Safe to call from any
        thread: the tables are published in one assignment when complete.
        """
        if self._fast is None and self._fast_settings is not None and kernels.numba_enabled():
            self._fast = _FastWordPiece(self._fast_settings)
        return self._fast is not None

    def clear_cache(self) -> None:
        """Forget remembered chunks."""
        self._cache = {}

    def __call__(self, texts: Sequence[str], start: int = 0, threads: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` as an EmbeddingBag input.

        Parameters
        ----------
        texts : sequence of str
            Already validated strings.
        start : int
            Index of ``texts[0]`` in the caller's input, used in error messages.
        threads : int, optional
            Most threads for the fast path (1: the calling thread only).

        Returns
        -------
        ids : ndarray (total_tokens,) int32
        offsets : ndarray (len(texts) + 1,) int64
            Text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
        """
        ids, starts, stops = self.bags(texts, start, threads)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(stops - starts, out=offsets[1:])
        if len(texts) and (starts[0] != 0 or not np.array_equal(starts[1:], stops[:-1])):
            ids = np.concatenate([ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())]).astype(np.int32)
        else:
            ids = ids[: offsets[-1]]
        return ids, offsets

    def bags(self, texts: Sequence[str], start: int = 0, threads: int | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like ``__call__`` but without compacting: text ``i`` is ``ids[starts[i]:stops[i]]``."""
        if self._fast is not None:
            ids, starts, stops = self._by_fast_path(texts, start, threads)
            return (ids, *self.window(starts, stops))
        per_text = self._by_chunks(texts, start, threads) if self._chunked else self._encode_checked(list(texts), start)
        starts = np.zeros(len(per_text), dtype=np.int64)
        stops = np.cumsum([len(x) for x in per_text], dtype=np.int64)
        starts[1:] = stops[:-1]
        ids = np.fromiter(chain.from_iterable(per_text), dtype=np.int32, count=int(stops[-1]) if len(stops) else 0)
        return ids, starts, stops  # already truncated

    def _encode_checked(self, texts: list[str], start: int) -> list[list[int]]:
        try:
            return [e.ids for e in self._encode(texts, add_special_tokens=False)]
        except TypeError:
            raise _explain_failure(texts, start) from None

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

    def _chunk_ids(self, chunks: Iterable[str], texts: Sequence[str], start: int, threads: int | None):
        """``cache.__getitem__`` after making sure every chunk in ``chunks`` is cached."""
        cache = self._cache
        batch_chunks = set(chunks)
        new = batch_chunks.difference(cache)
        if new and len(cache) + len(new) > self.cache_size:
            # Full: start afresh with this batch's chunks (a cheap bound on memory).
            cache = self._cache = {}
            new = batch_chunks
        if new:
            new = list(new)
            try:
                found = self._encode_chunks(new, threads)
            except (TypeError, ValueError):
                self._encode_checked(list(texts), start)  # names the offending text
                raise
            cache.update(zip(new, found))
        return cache.__getitem__

    def _by_chunks(self, texts: Sequence[str], start: int, threads: int | None) -> list[list[int]]:
        chunked = [_CHUNKS(t) for t in texts]
        get = self._chunk_ids(chain.from_iterable(chunked), texts, start, threads)
        per_text = [list(chain.from_iterable(map(get, chunks))) for chunks in chunked]
        if self._max_len is not None:
            n = self._max_len
            per_text = [ids[-n:] if self._keep_end and len(ids) > n else ids[:n] for ids in per_text]
        return per_text

    def _by_fast_path(self, texts: Sequence[str], start: int, threads: int | None):
        data, text_off = self.utf8(texts, start)
        ids, counts, hole_a, hole_b, n_holes = self._fast(data, text_off, threads)
        starts = text_off[:-1]
        stops = starts + counts
        if n_holes.any():
            ids, offsets = self.fill_holes(data, texts, start, threads, ids, starts, stops, hole_a, hole_b, n_holes)
            starts, stops = offsets[:-1], offsets[1:]
        return ids, starts, stops

    # -- pieces of the fast path, also used by ``kernels.embed`` -------------
    @property
    def fast_tables(self):
        """The fast path's tables (``_FastWordPiece``), or None when it is off."""
        return self._fast

    @staticmethod
    def utf8(texts: Sequence[str], start: int = 0) -> tuple[bytes, np.ndarray]:
        """All texts as one UTF-8 buffer and the ``n + 1`` byte offsets of each."""
        try:
            raw = [t.encode("utf-8") for t in texts]
        except UnicodeEncodeError:
            raise _explain_failure(texts, start) from None
        text_off = np.zeros(len(raw) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in raw], out=text_off[1:])
        return b"".join(raw), text_off

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

    def fill_holes(self, data, texts, start, threads, ids, starts, stops, hole_a, hole_b, n_holes):
        """Put the ids ``tokenizers`` gives each hole chunk (through the cache) in place of its marker.

        ``ids[starts[i]:stops[i]]`` is text i's fast-path output, with its
        ``n_holes[i]`` holes' byte ranges at ``hole_a/hole_b[starts[i]:]``.
        Returns the compacted ``(ids, offsets)``, not truncated.
        """
        first = np.cumsum(n_holes) - n_holes
        where = np.repeat(starts - first, n_holes) + np.arange(int(first[-1] + n_holes[-1]))
        chunks = [data[a:b].decode("utf-8") for a, b in zip(hole_a[where].tolist(), hole_b[where].tolist())]
        get = self._chunk_ids(chunks, texts, start, threads)
        pieces = list(map(get, chunks))
        hole_off = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in pieces], out=hole_off[1:])
        hole_ids = np.fromiter(chain.from_iterable(pieces), dtype=np.int32, count=int(hole_off[-1]))
        return self._fast.splice(ids, starts, stops, hole_ids, hole_off)


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` without a chunk cache (see :class:`TextTokenizer`)."""
    return TextTokenizer(tokenizer, cache_size=0)(texts, start)
