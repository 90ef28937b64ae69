"""``sse_np.Index``: a small local index of dense vectors and BM25 postings, searched dense, BM25 or hybrid."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..defaults import default_model
from ..engine import normalize_rows
from ..errors import IndexFormatError
from ..model import load as load_model
from ..retrieval.bm25 import DEFAULT_B, DEFAULT_K1, BM25Postings, build_postings
from ..retrieval.fusion import DEFAULT_DENSE_WEIGHT, FUSIONS
from ..retrieval.quantization import PRECISIONS, check_precision, quantization_ranges, quantize_embeddings
from . import store
from .lexical import (
    WordVocabulary,
    check_lexical,
    join_tokens,
    lexical_tokens,
    pack_terms,
    pair_ids,
    stopword_ids,
    unpack_terms,
    word_pairs,
)
from .rank import MODES, Built, check_mode, rank
from .stopwords import ENGLISH_STOPWORDS

__all__ = ["DEFAULT_PAIR_WEIGHT", "MODES", "Index"]

_COV_ROWS = 8192
# BM25's third field, neighbouring words ("insulin resistance"), counts this much of its own BM25. Chosen on the
# two dev splits of scripts/build_dev_split.py: hybrid nDCG@10 over both at 512 and 256 rose 0.6305 (no pairs)
# -> 0.6326 / 0.6325 / 0.6325 / 0.6324 for 0.2 / 0.3 / 0.4 / 0.5, and fell back at 1.0 (0.6295).
DEFAULT_PAIR_WEIGHT = 0.3


class Index:
    """Documents searchable by meaning (the model's vectors), by words (BM25) or both (hybrid).

    Parameters
    ----------
    model : SSEModel, path or None
        The model that encodes documents and queries (None: the default model).
    dim : int or None
        Stored vector width (a Matryoshka prefix; None: the model's own).
    precision : str
        "float32", "int8", "uint8", "binary" or "ubinary"; quantized vectors
        are searched in their own space and the best candidates rescored with
        the float query (binary: against int8 rows), as in
        :func:`sse_np.semantic_search`.
    stopwords : bool
        Leave English stopwords out of BM25 (documents and queries).
    lexical : str or None
        BM25's tokens: "words+pieces" (None means this default: both of
        the below, as two fields whose scores add up), "words" (the model's
        normalizer and pre-tokenizer words, numbered per index) or "pieces"
        (the model's WordPiece ids). See :mod:`sse_np.index.lexical`.
    stemmer : str or None
        "english": BM25 on Snowball stems of the words (PyStemmer, the
        ``stem`` extra; lexical "words", which None then means); None: no stemming.
    k1, b : float
        Lucene BM25 parameters.
    weight : float
        Default dense weight of hybrid search (BM25 gets ``1 - weight``).
    pair_weight : float or None
        Weight of BM25's word-pair field: each two neighbouring words (after
        stopwords) are one more term, and their BM25 counts this much. None:
        :data:`DEFAULT_PAIR_WEIGHT` with words, 0 (no pairs) with "pieces".
    """

    def __init__(
        self,
        model: Any = None,
        *,
        dim: int | None = None,
        precision: str = "float32",
        stopwords: bool = True,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        weight: float = DEFAULT_DENSE_WEIGHT,
        lexical: str | None = None,
        stemmer: str | None = None,
        pair_weight: float | None = None,
    ) -> None:
        self.model = _resolve_model(model)
        self.dim = int(self.model.dim if dim is None else dim)
        if not 0 < self.dim <= self.model.dim:
            raise ValueError(f"dim must lie in [1, {self.model.dim}] for this model, got {dim}")
        self.precision = check_precision(precision, PRECISIONS)
        self.stopwords = bool(stopwords)
        self.lexical, self.stemmer = check_lexical(lexical, stemmer)
        self._words = (
            WordVocabulary(self.model, ENGLISH_STOPWORDS if self.stopwords else (), self.stemmer)
            if self.lexical != "pieces"
            else None
        )
        self.k1, self.b, self.weight = float(k1), float(b), float(weight)
        self.pair_weight = _check_pair_weight(pair_weight, self.lexical)
        pieces_stopwords = self.stopwords and self.lexical != "words"
        self._stop_ids = stopword_ids(self.model) if pieces_stopwords else np.zeros(0, dtype=np.int32)
        self._ids: list = []
        self._known: set = set()
        self._vectors: list[np.ndarray] = []
        self._tokens: list[tuple[np.ndarray, np.ndarray]] = []
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []  # each batch's word-pair keys
        self._pair_vocab = np.zeros(0, dtype=np.int64)  # the documents' pair keys, sorted: pair term i is entry i
        self._built: Built | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Index({len(self)} documents, dim={self.dim}, precision={self.precision!r})"

    @property
    def ids(self) -> list:
        """The document ids, in the order they were added."""
        return list(self._ids)

    # ------------------------------------------------------------------ building
    def add(self, texts: str | Iterable[str], ids: Sequence[Any] | None = None, *, vectors: Any = None) -> None:
        """Add documents; ``ids`` default to their positions (0, 1, ...). May be called repeatedly.

        ``vectors`` (optional): the documents' embeddings from this model,
        ``(n, >= dim)``, to skip encoding them again.
        """
        if self._built is not None and self._built.frozen:
            raise ValueError("a loaded index is read-only; build a new one to add documents")
        batch = [texts] if isinstance(texts, str) else list(texts)
        for row, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(f"texts[{row}] must be str, got {type(text).__name__}")
        new_ids = list(range(len(self._ids), len(self._ids) + len(batch))) if ids is None else list(ids)
        if len(new_ids) != len(batch):
            raise ValueError(f"{len(batch)} texts but {len(new_ids)} ids")
        for doc_id in new_ids:
            if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
                raise TypeError(f"ids must be str or int, got {doc_id!r}")
            if doc_id in self._known:
                raise ValueError(f"duplicate document id {doc_id!r}")
            self._known.add(doc_id)
        raw = self.model.encode(batch, normalize=False) if vectors is None else np.asarray(vectors, dtype=np.float32)
        if raw.ndim != 2 or raw.shape[0] != len(batch) or raw.shape[1] < self.dim:
            raise ValueError(f"vectors must have shape ({len(batch)}, >= {self.dim}), got {raw.shape}")
        self._vectors.append(normalize_rows(np.array(raw[:, : self.dim], dtype=np.float32, order="C")))
        tokens, words = self._analyze(batch, grow=True)  # documents number new words
        self._tokens.append(tokens)
        if self.pair_weight:
            self._pairs.append(word_pairs(words))
        self._ids.extend(new_ids)
        self._built = None

    def lexical_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """BM25 tokens of queries, as ``(ids, offsets)``: WordPiece ids, word ids and word pairs, without stopwords.

        Valid for the index as it is now (a later ``add`` renumbers the pairs).
        """
        tokens, words = self._analyze(list(texts), grow=False)
        if not self.pair_weight:
            return tokens
        self._build()  # the pair vocabulary
        keys, offsets = word_pairs(words)
        return join_tokens(tokens, pair_ids(keys, self._pair_vocab, offsets), self._term_count())

    def _analyze(self, texts: list[str], grow: bool) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
        """BM25's pieces and words of ``texts`` in one bag, and the words alone (None for pieces)."""
        if self.lexical == "pieces":
            return lexical_tokens(self.model, texts, self._stop_ids), None
        words = self._words.tokens(texts, grow=grow)  # type: ignore[union-attr]
        if self.lexical == "words":
            return words, words
        # Word ids after the model's vocabulary, which is fixed: ids given before a later add stay valid.
        return join_tokens(lexical_tokens(self.model, texts, self._stop_ids), words, self.model.vocab_size), words

    def _term_count(self) -> int:
        """Pieces' and words' terms (words after the pieces); pair terms come after these."""
        n_words = len(self._words) if self._words is not None else 0
        return n_words + (self.model.vocab_size if self.lexical != "words" else 0)

    def _build(self) -> Built:
        if self._built is not None:
            return self._built
        vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.dim), np.float32)
        self._vectors = [vectors]
        self._tokens = [_concat_bags(self._tokens, np.int32)]
        tok, offsets = self._tokens[0]
        # Words, pieces and word pairs are fields, each with its own lengths: a query scores the sum of their BM25s.
        starts = [self.model.vocab_size] if self.lexical == "words+pieces" else []
        n_terms = self._term_count()
        if self.pair_weight:
            self._pairs = [_concat_bags(self._pairs, np.int64)]
            keys, pair_offsets = self._pairs[0]
            self._pair_vocab, pair_terms = np.unique(keys, return_inverse=True)
            tok, offsets = join_tokens((tok, offsets), (pair_terms.astype(np.int32), pair_offsets), n_terms)
            starts.append(n_terms)
            n_terms += self._pair_vocab.shape[0]
        field_weights = [1.0] * len(starts) + [self.pair_weight] if self.pair_weight else []
        postings = build_postings(
            tok, offsets, n_terms, self.k1, self.b, field_starts=tuple(starts), field_weights=tuple(field_weights)
        )
        self._built = _quantized(vectors, self.precision, postings)
        return self._built

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: str | Iterable[str],
        k: int = 10,
        *,
        mode: str = "hybrid",
        dim: int | None = None,
        weight: float | None = None,
        fusion: str = "zscore",
    ) -> list:
        """The best ``k`` documents: ``[{"id": ..., "score": ...}, ...]`` for one query, a list of those for many.

        ``mode``: "dense" (cosine), "bm25" or "hybrid" (``fusion`` "zscore":
        ``weight * z(dense) + (1 - weight) * z(bm25)`` over all documents;
        "rrf": reciprocal rank fusion). ``dim``: a narrower Matryoshka prefix
        (float32 indexes only).
        """
        single = isinstance(queries, str)
        batch: list[str] = [queries] if isinstance(queries, str) else list(queries)
        mode = check_mode(mode)
        if not batch:
            return []
        qvecs = self.model.encode(batch, normalize=False) if mode != "bm25" else None
        tokens = self.lexical_tokens(batch) if mode != "dense" else None
        idx, scores = self.rank(qvecs, tokens, k, mode=mode, dim=dim, weight=weight, fusion=fusion)
        out = [
            [{"id": self._ids[i], "score": float(s)} for i, s in zip(ri.tolist(), rs.tolist())]
            for ri, rs in zip(idx, scores)
        ]
        return out[0] if single else out

    def rank(
        self,
        query_vectors: np.ndarray | None,
        query_tokens: tuple[np.ndarray, np.ndarray] | None,
        k: int,
        *,
        mode: str = "hybrid",
        dim: int | None = None,
        weight: float | None = None,
        fusion: str = "zscore",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Document positions and scores, ``(n_queries, min(k, len))`` each, for encoded queries.

        ``query_vectors``: the model's raw query embeddings (``(n, >= dim)``);
        ``query_tokens``: :meth:`lexical_tokens` of the queries.
        """
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        use_dim = self.dim if dim is None else int(dim)
        if not 0 < use_dim <= self.dim or (use_dim != self.dim and self.precision != "float32"):
            raise ValueError(f"dim must lie in [1, {self.dim}] (and equal {self.dim} for a quantized index), got {dim}")
        fused_weight = self.weight if weight is None else float(weight)
        return rank(self._build(), query_vectors, query_tokens, int(k), mode, use_dim, fused_weight, fusion)

    # ------------------------------------------------------------------ saving
    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write the index to ``folder`` atomically (a folder that holds something else is refused)."""
        built = self._build()
        manifest = {
            "model": {"fingerprint": store.model_fingerprint(self.model), "dim": int(self.model.dim)},
            "n_docs": len(self),
            "dim": self.dim,
            "precision": self.precision,
            "bm25": {
                "k1": self.k1,
                "b": self.b,
                "stopwords": self.stopwords,
                "vocab_size": built.postings.vocab_size,
                "lexical": self.lexical,
                "stemmer": self.stemmer,
                "pair_weight": self.pair_weight,
            },
            "weight": self.weight,
        }
        extra = {"stop_ids": self._stop_ids}
        if self._words is not None:
            extra["bm25_terms"] = pack_terms(self._words.terms())
            # Readers of version 1 would search words with pieces, and of 2, pieces or pairs as words.
            plain_words = self.lexical == "words" and not self.pair_weight
            manifest["version"] = store.WORDS_VERSION if plain_words else store.WORDS_PIECES_VERSION
        if self.pair_weight:
            extra["bm25_pairs"] = self._pair_vocab
        store.save_folder(folder, manifest, built.arrays(extra), self._ids)

    @classmethod
    def load(cls, folder: str | os.PathLike[str], model: Any = None, *, verify: bool = False) -> Index:
        """Open a saved index (arrays memory-mapped); ``model`` must be the one it was built with.

        ``verify=True`` also checks every file's SHA-256 (reads them all).
        Raises :class:`sse_np.errors.IndexFormatError` for a corrupt,
        mismatched or other-version index, or one built with another model.
        """
        path = Path(folder)
        manifest = store.read_manifest(path)
        if verify:
            store.verify_checksums(path, manifest)
        model = _resolve_model(model)
        built_with = manifest.get("model", {}).get("fingerprint") if isinstance(manifest.get("model"), dict) else None
        if built_with != store.model_fingerprint(model):
            raise IndexFormatError(
                path,
                f"built with another model (fingerprint {built_with}, this model's is "
                f"{store.model_fingerprint(model)}); load it with the model it was built with, or rebuild it",
            )
        try:
            index = cls(
                model,
                dim=int(manifest["dim"]),
                precision=manifest["precision"],
                stopwords=bool(manifest["bm25"]["stopwords"]),
                k1=float(manifest["bm25"]["k1"]),
                b=float(manifest["bm25"]["b"]),
                weight=float(manifest["weight"]),
                lexical=manifest["bm25"].get("lexical", "pieces"),
                stemmer=manifest["bm25"].get("stemmer"),
                pair_weight=float(manifest["bm25"].get("pair_weight", 0.0)),  # none before version 3
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(path / store.MANIFEST, f"incomplete or invalid manifest: {exc}") from None
        index._ids = store.load_ids(path, manifest)
        index._known = set(index._ids)
        index._built = Built.from_arrays(
            {
                name[:-4]: store.load_array(path, name[:-4], manifest)
                for name in manifest["files"]
                if name.endswith(".npy")
            },
            len(index._ids),
            index.precision,
            index.dim,
            path,
        )
        index._stop_ids = np.asarray(index._built.extra["stop_ids"])
        if index.pair_weight:
            index._pair_vocab = _load_pairs(path, index)
        if index._words is not None:
            index._words = _load_words(path, index, manifest)
        return index


def _load_words(path: Path, index: Index, manifest: dict[str, Any]) -> WordVocabulary:
    """The saved word vocabulary; its size must be the postings' (else the index is corrupt)."""
    packed = index._built.extra.get("bm25_terms") if index._built is not None else None
    if packed is None:
        raise IndexFormatError(path, "a words index without its vocabulary (bm25_terms.npy)")
    try:
        pieces = index.model.vocab_size if index.lexical == "words+pieces" else 0
        n_words = index._built.postings.vocab_size - pieces - index._pair_vocab.shape[0]  # type: ignore[union-attr]
        terms = unpack_terms(packed, n_words)
        return WordVocabulary(index.model, ENGLISH_STOPWORDS if index.stopwords else (), index.stemmer, terms)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IndexFormatError(path / "bm25_terms.npy", f"corrupt vocabulary: {exc}") from None


def _load_pairs(path: Path, index: Index) -> np.ndarray:
    """The saved word-pair vocabulary (sorted int64 keys)."""
    pairs = index._built.extra.get("bm25_pairs") if index._built is not None else None
    if pairs is None or pairs.dtype != np.int64 or pairs.ndim != 1:
        raise IndexFormatError(path, "an index with word pairs (pair_weight) without bm25_pairs.npy (int64 keys)")
    return np.asarray(pairs)


def _check_pair_weight(pair_weight: float | None, lexical: str) -> float:
    if pair_weight is None:
        return 0.0 if lexical == "pieces" else DEFAULT_PAIR_WEIGHT
    value = float(pair_weight)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"pair_weight must be a finite number >= 0, got {pair_weight!r}")
    if value and lexical == "pieces":
        raise ValueError("word pairs need words: use lexical='words' or 'words+pieces' with a pair_weight")
    return value


def _concat_bags(parts: list[tuple[np.ndarray, np.ndarray]], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Batches of ``(ids, offsets)`` as one."""
    if not parts:
        return np.zeros(0, dtype), np.zeros(1, np.int64)
    ids = np.concatenate([p[0] for p in parts]).astype(dtype, copy=False)
    starts = np.cumsum([0] + [p[0].shape[0] for p in parts[:-1]])
    offsets = np.concatenate([p[1][:-1] + s for p, s in zip(parts, starts)] + [np.array([ids.shape[0]])])
    return ids, offsets.astype(np.int64)


def _resolve_model(model: Any) -> Any:
    if model is None:
        return default_model()
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    return model


def _quantized(vectors: np.ndarray, precision: str, postings: BM25Postings) -> Built:
    """The searchable form of normalized float vectors at ``precision``."""
    if precision == "float32":
        return Built(vectors, postings, precision)
    ranges = quantization_ranges(vectors)
    codes = quantize_embeddings(vectors, precision, ranges=ranges)
    rescore = quantize_embeddings(vectors, "int8", ranges=ranges) if "binary" in precision else None
    # The covariance from at most _COV_ROWS evenly spaced rows: the dense z-score's spread
    # (sqrt(q^T S q)) to about 1.5%, where all rows would cost seconds at 100k documents.
    mean = vectors.mean(axis=0, dtype=np.float64)
    sample = vectors[:: max(1, len(vectors) // _COV_ROWS)].astype(np.float64) - mean
    cov = sample.T @ sample / max(len(sample), 1)
    return Built(codes, postings, precision, ranges=ranges, rescore=rescore, mean=mean, cov=cov)
