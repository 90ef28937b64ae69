"""Tokenization through ``tokenizers``, exactly as the reference does it.

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

This is the NumPy back-end's tokenizer, and the numba back-end's for
tokenizers its kernels do not cover (BPE, Unigram, other normalizers) and
for the rare text its kernels leave to ``tokenizers``. For BERT
configurations (:func:`~sse_np.tokenizer.fast_path_spec`) the numba
back-end tokenizes in its own kernels (``sse_np.engine.wordpiece``). This
module never imports numba.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
from tokenizers import Tokenizer

from ..settings import token_cache_bytes
from .config import chunkable, fast_path_spec
from .words import word_path_spec


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
        self.chunked = self.cache_bytes > 0 and chunkable(spec)
        #: Settings for the jitted WordPiece, or None when this configuration is not supported.
        self.fast_spec = fast_path_spec(spec) if self.chunked else None
        #: Settings of the jitted word path (BPE, Unigram, ...; ``sse_np.tokenizer.words``), or None.
        self.word_spec = word_path_spec(spec) if self.cache_bytes > 0 and not self.chunked else None
        #: ``tokenizer.json`` parsed, kept for the word path (its model alone resolves new words).
        self.spec = spec if self.word_spec is not None else None
        self._cache: dict[str, bytes] = {}
        self._cache_used = 0
        if self.chunked:
            # Chunks are cached whole; truncation applies to texts, afterwards.
            self._chunk_tokenizer = Tokenizer.from_str(tokenizer.to_str())
            self._chunk_tokenizer.no_truncation()
        trunc = tokenizer.truncation
        self._max_len = trunc["max_length"] if trunc else None
        self._keep_end = trunc is not None and trunc.get("direction") == "left"
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
        if not self.chunked:
            # One C-level pass over all ids (no array per text): BPE/Unigram batches are large.
            per_ids = self._encode_checked(list(texts), start)
            offsets = np.zeros(len(per_ids) + 1, dtype=np.int64)
            np.cumsum(list(map(len, per_ids)), out=offsets[1:])
            flat = np.fromiter(chain.from_iterable(per_ids), dtype=np.int32, count=int(offsets[-1]))
            return flat, offsets
        per_text = self._by_chunks(texts, start, threads)
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
