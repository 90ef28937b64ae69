"""What a ``tokenizer.json`` says: loading it as the reference does, and whether the kernels reproduce it.

* :func:`load_tokenizer` -- the ``tokenizers.Tokenizer`` with padding off,
  refused if it can emit ids beyond the embedding table;
* :func:`chunkable` -- whether ASCII whitespace is a hard token boundary
  (the chunk cache of :class:`~sse_np.tokenizer.TextTokenizer` needs it);
* :func:`fast_path_spec` -- the settings of the jitted BERT tokenizer
  (``sse_np.engine.wordpiece``) when it reproduces this configuration.
"""

from __future__ import annotations

import re
from pathlib import Path

from tokenizers import Tokenizer

from ..errors import ModelLoadError

_CHUNKS = re.compile(r"[^ \t\n\r]+").findall


def load_tokenizer(
    path: Path, vocab_size: int | None = None, text: str | None = None, spec: dict | None = None
) -> Tokenizer:
    """Load ``tokenizer.json`` configured as the reference uses it.

    Parameters
    ----------
    path : Path
        The ``tokenizer.json`` file.
    vocab_size : int, optional
        Rows of the embedding table; the tokenizer is refused if it can emit
        an id at or beyond it.
    text, spec : str and dict, optional
        The file's text and its parsed JSON when already read (saves reading
        and parsing it again).

    Returns
    -------
    tokenizers.Tokenizer
    """
    try:
        tokenizer = Tokenizer.from_file(str(path)) if text is None else Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises a bare Exception subclass
        raise ModelLoadError(f"{path}: cannot load tokenizer ({exc})") from None
    tokenizer.no_padding()
    if vocab_size is not None:
        top = _max_id(spec)
        if top is None:
            top = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
        if top >= vocab_size:
            raise ModelLoadError(
                f"{path}: tokenizer can emit ids up to {top}, but the embedding table has only "
                f"{vocab_size} rows (tokenizer and weights from different models?)"
            )
    return tokenizer


def _max_id(spec: dict | None) -> int | None:
    """Largest id ``tokenizer.json`` can emit, from its parsed JSON (None if it cannot tell)."""
    if spec is None:
        return None
    try:
        vocab = spec["model"]["vocab"]
        ids = list(vocab.values()) if isinstance(vocab, dict) else [len(vocab) - 1]
        ids += [t["id"] for t in spec.get("added_tokens") or []]
        if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return max(ids, default=-1)
    except (KeyError, TypeError, AttributeError):
        pass
    return None


def chunkable(spec: dict) -> bool:
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
    """Settings for the jitted WordPiece if ``tokenizer.json`` is a configuration it reproduces, else None.

    Supported: BertNormalizer with ``clean_text`` on (any ``lowercase``,
    ``strip_accents`` and ``handle_chinese_chars``), BertPreTokenizer,
    WordPiece with its unknown token in the vocabulary, and added tokens
    that are plain ASCII without whitespace, control bytes or
    ``lstrip``/``rstrip``/``single_word``. Any vocabulary: bert-base's,
    a cased one, a multilingual one, a model2vec model's.
    """
    if not chunkable(spec):
        return None
    normalizer, model = spec.get("normalizer") or {}, spec.get("model") or {}
    if normalizer.get("type") != "BertNormalizer" or not normalizer.get("clean_text", True):
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
        if (
            not content
            or not content.isascii()
            or not content.isprintable()
            or " " in content
            or token.get("lstrip")
            or token.get("rstrip")
            or token.get("single_word")
        ):
            return None
        added.append(content.lower() if lowercase else content)
    return {
        "vocab": vocab,
        "unk": unk,
        "prefix": prefix,
        "max_chars": max_chars,
        "lowercase": lowercase,
        "added": sorted(set(added)),
        "normalizer": normalizer_settings(normalizer),
    }


def normalizer_settings(normalizer: dict) -> dict:
    """A BertNormalizer's four settings with ``tokenizer.json``'s defaults filled in."""
    lowercase = bool(normalizer.get("lowercase", True))
    strip = normalizer.get("strip_accents")
    return {
        "clean_text": bool(normalizer.get("clean_text", True)),
        "handle_chinese_chars": bool(normalizer.get("handle_chinese_chars", True)),
        "strip_accents": lowercase if strip is None else bool(strip),
        "lowercase": lowercase,
    }
