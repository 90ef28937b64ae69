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
Any other tokenizer goes through ``encode_batch`` unchanged. The tests check
the ids against ``tokenizers``' own output on thousands of texts.
"""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

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


def _chunkable(tokenizer: Tokenizer) -> bool:
    """Whether ASCII whitespace is a hard token boundary for this tokenizer."""
    spec = json.loads(tokenizer.to_str())
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


class TextTokenizer:
    """Texts -> (ids, offsets), exactly as ``encode_batch(add_special_tokens=False)``.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        As returned by :func:`load_tokenizer` (padding off).
    cache_size : int
        Most whitespace-separated chunks remembered; 0 disables the chunk
        path. The cache is emptied when it outgrows this size.
    """

    def __init__(self, tokenizer: Tokenizer, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.tokenizer = tokenizer
        self.cache_size = cache_size
        self._chunked = cache_size > 0 and _chunkable(tokenizer)
        self._cache: dict[str, list[int]] = {}
        if self._chunked:
            # Chunks are cached whole; truncation applies to texts, afterwards.
            self._chunk_tokenizer = Tokenizer.from_str(tokenizer.to_str())
            self._chunk_tokenizer.no_truncation()
        trunc = tokenizer.truncation
        self._max_len = trunc["max_length"] if trunc else None
        self._keep_end = bool(trunc) and trunc.get("direction") == "left"
        # encode_batch_fast skips character offsets we do not need; same ids.
        self._encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def clear_cache(self) -> None:
        """Forget remembered chunks."""
        self._cache = {}

    def __call__(self, texts: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` as an EmbeddingBag input.

        Parameters
        ----------
        texts : sequence of str
            Already validated strings.
        start : int
            Index of ``texts[0]`` in the caller's input, used in error messages.

        Returns
        -------
        ids : ndarray (total_tokens,) int32
        offsets : ndarray (len(texts) + 1,) int64
            Text ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``.
        """
        per_text = self._by_chunks(texts, start) if self._chunked else self._by_text(texts, start)
        offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in per_text], out=offsets[1:])
        ids = np.fromiter(chain.from_iterable(per_text), dtype=np.int32, count=int(offsets[-1]))
        return ids, offsets

    def _encode_checked(self, texts: list[str], start: int) -> list[list[int]]:
        try:
            return [e.ids for e in self._encode(texts, add_special_tokens=False)]
        except TypeError:
            raise _explain_failure(texts, start) from None

    def _encode_chunks(self, chunks: list[str]) -> list[list[int]]:
        """Ids of each chunk on its own (no truncation)."""
        tok = self._chunk_tokenizer
        if len(chunks) >= _JOIN_BELOW:
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

    def _by_text(self, texts: Sequence[str], start: int) -> list[list[int]]:
        return self._encode_checked(list(texts), start)

    def _by_chunks(self, texts: Sequence[str], start: int) -> list[list[int]]:
        chunked = [_CHUNKS(t) for t in texts]
        cache = self._cache
        batch_chunks = set(chain.from_iterable(chunked))
        new = batch_chunks.difference(cache)
        if new and len(cache) + len(new) > self.cache_size:
            # Full: start afresh with this batch's chunks (a cheap bound on memory).
            cache = self._cache = {}
            new = batch_chunks
        if new:
            new = list(new)
            try:
                found = self._encode_chunks(new)
            except (TypeError, ValueError):
                self._encode_checked(list(texts), start)  # names the offending text
                raise
            cache.update(zip(new, found))
        get = cache.__getitem__
        per_text = [list(chain.from_iterable(map(get, chunks))) for chunks in chunked]
        if self._max_len is not None:
            n = self._max_len
            per_text = [ids[-n:] if self._keep_end and len(ids) > n else ids[:n] for ids in per_text]
        return per_text


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` without a chunk cache (see :class:`TextTokenizer`)."""
    return TextTokenizer(tokenizer, cache_size=0)(texts, start)
