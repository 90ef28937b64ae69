"""BM25's lexical tokens: whole words, the model's WordPiece ids, or both, English stopwords optionally left out.

Shared by :class:`sse_np.Index` and the store adapters (the Qdrant sparse
vector), so every BM25 in the package counts the same tokens.

``lexical="words+pieces"`` (the default) counts each text's words and its
WordPiece ids as two BM25 fields (each with its own document lengths; the
scores add up): the pieces match what the words miss (``photosynthesis`` is
``photos ##yn ##thesis``), as a stemmer would, with no extra dependency.
:class:`sse_np.Index` adds a third field, neighbouring words (``pair_weight``;
:func:`word_pairs`). Chosen on the two dev splits of
``scripts/build_dev_split.py`` (neither is evaluation data), hybrid nDCG@10
at 512: Python docstrings 0.4672 vs words 0.4611 and pieces 0.4533; manual
pages 0.7903 vs 0.7848 and 0.7873 (docs/retrieval.md has the rest).
``lexical="words"`` numbers the words of the documents in the
order they are first seen (the vocabulary is saved with the index); a query
word the documents never had matches nothing and is dropped.
``lexical="pieces"`` counts the model's own WordPiece ids (indexes saved
before words became the default, and the Qdrant adapter, whose sparse
indices need a fixed id space). ``stemmer="english"`` (words only)
reduces each word to its Snowball stem with PyStemmer (the ``stem`` extra),
after the stopwords are dropped, as ``bm25s.tokenize`` does. Words without a
letter or digit (the pre-tokenizer's punctuation) are not terms.

BERT-style tokenizers (most static models) take a faster path with the same
words (the tokenizers' own calls cost ~40 µs per short ASCII document and
~150 µs per non-ASCII one): on ASCII without control characters
``BertNormalizer`` only lower-cases, and ``BertPreTokenizer`` splits on
whitespace and ASCII punctuation, which one regular expression does. In text
with other characters, only the whitespace-separated chunks that hold one go
through the tokenizer's own normalizer and pre-tokenizer (both act on each
character alone, and split at every whitespace). Text with a control
character, and other tokenizer types, go through them whole.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat
from typing import Any

import numpy as np

from ..errors import missing_extra
from .stopwords import ENGLISH_STOPWORDS

__all__ = [
    "DEFAULT_LEXICAL",
    "LEXICAL",
    "STEMMERS",
    "WordVocabulary",
    "check_lexical",
    "join_tokens",
    "lexical_tokens",
    "load_stemmer",
    "pair_ids",
    "stopword_ids",
    "word_pairs",
]

LEXICAL = ("pieces", "words", "words+pieces")
DEFAULT_LEXICAL = "words+pieces"
STEMMERS = ("english",)
_HAS_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit
# What BertNormalizer's clean_text removes (control characters) where Python's str.isspace sees a space,
# or where it joins two neighbours: text with one goes through the tokenizer whole.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85]")
# A chunk between ASCII whitespace that holds a non-ASCII character (the rest is pure ASCII). It starts only
# after ASCII whitespace, so an ASCII word costs one try, not one per character (Python 3.10 has no
# possessive quantifiers).
_NON_ASCII_CHUNK = re.compile(r"((?<![^\t\n\r ])[\x21-\x7e]*[^\x00-\x7f][^\t\n\r ]*)")
_UNSEEN = -2  # a word not yet in WordVocabulary's cache
# BertPreTokenizer on ASCII: whitespace (Unicode White_Space) and ASCII punctuation split; punctuation is no term.
_ASCII_WORD = re.compile("[^ \t\n\r\x0b\x0c" + re.escape(string.punctuation) + "]+")


def stopword_ids(model: Any) -> np.ndarray:
    """Ids of the stopwords that are one WordPiece token each (the others have no id to drop)."""
    ids, offsets = model.tokenize(ENGLISH_STOPWORDS)
    single = np.diff(offsets) == 1
    return np.unique(ids[offsets[:-1][single]]).astype(np.int32)


def lexical_tokens(model: Any, texts: Sequence[str], stop_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's token ids of ``texts`` without ``stop_ids``, as ``(ids int32, offsets int64)``."""
    ids, offsets = model.tokenize(list(texts))
    if stop_ids.size == 0:
        return ids.astype(np.int32), offsets.astype(np.int64)
    keep = ~np.isin(ids, stop_ids)
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return ids[keep].astype(np.int32), kept_before[offsets]


def join_tokens(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], shift: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's ``first`` ids, then its ``second`` ids + ``shift`` (two id spaces in one): ``(ids, offsets)``."""
    (a, a_off), (b, b_off) = first, second
    len_a, len_b = np.diff(a_off), np.diff(b_off)
    offsets = np.concatenate(([0], np.cumsum(len_a + len_b))).astype(np.int64)
    ids = np.empty(offsets[-1], dtype=np.int32)
    text_a = np.repeat(np.arange(len_a.shape[0]), len_a)  # the text of each id
    text_b = np.repeat(np.arange(len_b.shape[0]), len_b)
    ids[offsets[text_a] + np.arange(a.shape[0]) - a_off[text_a]] = a
    ids[offsets[text_b] + len_a[text_b] + np.arange(b.shape[0]) - b_off[text_b]] = b + shift
    return ids, offsets


def word_pairs(words: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's neighbouring word ids (stopwords already out) as int64 keys ``first << 31 | second``."""
    ids, offsets = words
    ids = ids.astype(np.int64)
    lengths = np.diff(offsets)
    doc_of = np.repeat(np.arange(lengths.shape[0]), lengths)
    same_text = doc_of[:-1] == doc_of[1:]  # a pair never spans two texts
    keys = (ids[:-1] << 31 | ids[1:])[same_text]
    counts = np.maximum(lengths - 1, 0)
    return keys, np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def pair_ids(keys: np.ndarray, vocabulary: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` in the sorted pair ``vocabulary``; a pair not in it is dropped (queries)."""
    at = np.searchsorted(vocabulary, keys)
    found = at < vocabulary.shape[0]
    found[found] = vocabulary[at[found]] == keys[found]
    kept_before = np.concatenate(([0], np.cumsum(found, dtype=np.int64)))
    return at[found].astype(np.int32), kept_before[offsets]


def check_lexical(lexical: str | None, stemmer: str | None) -> tuple[str, str | None]:
    """The lexical tokens and stemmer asked for (``lexical=None``: words with a stemmer, else the default)."""
    if stemmer is not None and stemmer not in STEMMERS:
        raise ValueError(f"stemmer must be one of {', '.join(STEMMERS)} or None, got {stemmer!r}")
    if lexical is None:
        lexical = "words" if stemmer is not None else DEFAULT_LEXICAL
    if lexical not in LEXICAL:
        raise ValueError(f"lexical must be one of {', '.join(LEXICAL)}, got {lexical!r}")
    if stemmer is not None and lexical != "words":
        raise ValueError("stemming applies to whole words: use lexical='words' (or leave lexical unset) with a stemmer")
    return lexical, stemmer


def load_stemmer(name: str) -> Callable[[str], str]:
    """PyStemmer's Snowball stemmer for ``name`` (it needs the ``stem`` extra)."""
    try:
        import Stemmer  # type: ignore[import-not-found]
    except ImportError:
        raise missing_extra(f"stemming (stemmer={name!r})", "stem") from None
    stemmer, lock = Stemmer.Stemmer(name), threading.Lock()

    def stem(word: str) -> str:
        with lock:  # a PyStemmer object is not safe to share between threads (servers search from several)
            return stemmer.stemWord(word)

    return stem


class WordVocabulary:
    """The model's words of texts, numbered: ``tokens(texts)`` gives ``(ids, offsets)`` in EmbeddingBag form."""

    def __init__(self, model: Any, stopwords: Iterable[str], stemmer: str | None, terms: Sequence[str] = ()) -> None:
        tokenizer = model.tokenizer
        norm, pre = tokenizer.normalizer, tokenizer.pre_tokenizer
        self._normalize = norm.normalize_str if norm is not None else str
        self._bert = type(norm).__name__ == "BertNormalizer" and type(pre).__name__ == "BertPreTokenizer"
        self._lower = bool(getattr(norm, "lowercase", True))
        self._split = (lambda s: [w for w, _ in pre.pre_tokenize_str(s)]) if pre is not None else str.split
        self._stopwords = frozenset(stopwords)
        self._stem = load_stemmer(stemmer) if stemmer is not None else None
        self.ids: dict[str, int] = {term: i for i, term in enumerate(terms)}
        if len(self.ids) != len(terms):
            raise ValueError("the vocabulary has a word twice")
        self._id_of: dict[str, int] = {}  # a word as split -> its term's id (-1: not a term)

    def __len__(self) -> int:
        return len(self.ids)

    def terms(self) -> list[str]:
        """The vocabulary, in id order."""
        return list(self.ids)

    def _term(self, word: str) -> str | None:
        if word in self._stopwords or not _HAS_WORD_CHAR.search(word):
            return None
        return self._stem(word) if self._stem is not None else word

    def _split_words(self, text: str) -> list[str]:
        """The normalizer's and pre-tokenizer's words of one text (stopwords and punctuation still in)."""
        if not self._bert or _CONTROL.search(text):
            return self._split(self._normalize(text))
        if text.isascii():
            return _ASCII_WORD.findall(text.lower() if self._lower else text)
        out: list[str] = []
        for i, part in enumerate(_NON_ASCII_CHUNK.split(text)):  # ASCII stretches and non-ASCII chunks alternate
            if i % 2:
                out += self._split(self._normalize(part))
            elif part:
                out += _ASCII_WORD.findall(part.lower() if self._lower else part)
        return out

    def words(self, text: str) -> list[str]:
        """The terms of one text, in order (unknown ones included)."""
        terms = map(self._term, self._split_words(text))
        return [t for t in terms if t is not None]

    def tokens(self, texts: Sequence[str], grow: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Term ids of each text; ``grow``: number new terms (documents), else drop them (queries)."""
        flat: list[str] = []
        bounds = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            flat += self._split_words(text)
            bounds[i + 1] = len(flat)
        ids = self._ids(flat, grow)
        keep = ids >= 0
        kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
        return ids[keep].astype(np.int32), kept_before[bounds]

    def _ids(self, words: list[str], grow: bool) -> np.ndarray:
        """Each word's term id (-1: none), from the cache in C loops; Python only for words not seen before."""
        cache = self._id_of
        got = np.fromiter(map(cache.get, words, repeat(_UNSEEN)), dtype=np.int64, count=len(words))
        unseen = got == _UNSEEN
        if not unseen.any():
            return got
        for word in dict.fromkeys(compress(words, unseen)):  # each new word once, in first-seen order
            term = self._term(word)
            tid = -1 if term is None else self.ids.get(term)
            if tid is None:
                if not grow:
                    continue  # a query word no document has: dropped, and not remembered
                tid = self.ids[term] = len(self.ids)  # type: ignore[index]
            cache[word] = tid
        n_unseen = int(unseen.sum())
        got[unseen] = np.fromiter(map(cache.get, compress(words, unseen), repeat(-1)), dtype=np.int64, count=n_unseen)
        return got


def pack_terms(terms: list[str]) -> np.ndarray:
    """The vocabulary as one uint8 array (UTF-8, newline-separated: words never hold whitespace)."""
    return np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8).copy()


def unpack_terms(packed: np.ndarray, n_terms: int) -> list[str]:
    terms = bytes(np.asarray(packed, dtype=np.uint8)).decode("utf-8").split("\n") if n_terms else []
    if len(terms) != n_terms:
        raise ValueError(f"{len(terms)} words stored, {n_terms} expected")
    return terms
