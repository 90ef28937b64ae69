"""WordPiece tokenization exactly as the SSE reference does it.

The reference calls ``tokenizer.no_padding()`` and then
``encode_batch(texts, add_special_tokens=False)``; truncation stays as
``tokenizer.json`` configures it and ``[UNK]`` ids are kept. The ids of a
batch are returned flat with offsets, the EmbeddingBag input format.
"""

from __future__ import annotations

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


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` as an EmbeddingBag input.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        As returned by :func:`load_tokenizer`.
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
    # encode_batch_fast skips character offsets we do not need; same ids.
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    try:
        encodings = encode(list(texts), add_special_tokens=False)
    except TypeError:
        raise _explain_failure(texts, start) from None
    per_text = [e.ids for e in encodings]
    offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in per_text], out=offsets[1:])
    ids = np.fromiter(chain.from_iterable(per_text), dtype=np.int32, count=int(offsets[-1]))
    return ids, offsets
