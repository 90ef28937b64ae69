"""The word path: BPE, Unigram and WordLevel tokenizers whose pipeline is reproducible on ASCII text.

``tokenizers`` runs normalizer -> pre-tokenizer -> model, and the model sees
one pre-token (a *word*) at a time: a text's ids are the concatenation of
its words' ids. So where the normalizer and the pre-tokenizer can be
reproduced exactly, a kernel can split texts into words and look each word's
ids up in a table, and only words never seen before need the model itself
(``sse_np.engine.word_backend``). On ASCII text:

* normalizers NFC, NFD, NFKC, NFKD and StripAccents change nothing, and
  Lowercase lowers A-Z (a ``Sequence`` of these is supported);
* pre-tokenizers Whitespace, WhitespaceSplit, ByteLevel (GPT-2 regex) and
  Metaspace (``split`` on) are simple scanners over byte classes.

:func:`word_path_spec` detects such a ``tokenizer.json``; anything else
(another normalizer or pre-tokenizer, BPE dropout, an unknown
post-processor) keeps the ``tokenizers`` path. A text with non-ASCII
characters is cut into chunks the pipeline tokenizes as if alone
(``sse_np.engine.word_kernels.chunk_end``); its non-ASCII chunks are learned
whole. A text holding an added token's text goes to ``tokenizers``.
:class:`WordResolver` gives a word's ids from the model alone, exactly as the
pipeline gives them. This module never imports numba.
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import Tokenizer

__all__ = ["MODES", "WordResolver", "byte_level_chars", "word_path_spec"]

#: Pre-tokenizer kinds the kernel reproduces (its ``mode`` argument).
MODES = {"Whitespace": 0, "WhitespaceSplit": 1, "ByteLevel": 2, "Metaspace": 3}
_IDENTITY_ON_ASCII = {"NFC", "NFD", "NFKC", "NFKD", "StripAccents"}
_MODELS = {"BPE", "Unigram", "WordLevel"}
# Post-processors add only special tokens, which encode(add_special_tokens=False) leaves out.
_POST = {"ByteLevel", "TemplateProcessing", "RobertaProcessing", "BertProcessing"}


def _lowercases(normalizer: Any) -> bool | None:
    """Whether the normalizer lowers ASCII text (else leaves it alone); None: not reproducible."""
    if not normalizer:
        return False
    kind = normalizer.get("type")
    if kind in _IDENTITY_ON_ASCII:
        return False
    if kind == "Lowercase":
        return True
    if kind == "Sequence":
        parts = [_lowercases(n) for n in normalizer.get("normalizers") or []]
        return None if None in parts else any(parts)
    return None


def _pre_tokenizer(pre: Any) -> dict | None:
    if not isinstance(pre, dict):
        return None
    kind = pre.get("type")
    if kind == "Sequence":
        parts = pre.get("pretokenizers") or []
        return _pre_tokenizer(parts[0]) if len(parts) == 1 else None
    if kind in ("Whitespace", "WhitespaceSplit"):
        return {"mode": MODES[kind], "prefix": False, "replacement": ""}
    if kind == "ByteLevel":
        if not pre.get("use_regex", True):
            return None
        return {"mode": MODES[kind], "prefix": bool(pre.get("add_prefix_space", True)), "replacement": ""}
    if kind == "Metaspace":
        replacement = pre.get("replacement", "\u2581")
        scheme = pre.get("prepend_scheme", "always")
        # An ASCII replacement would also split where the text has that character.
        if not pre.get("split", True) or len(replacement) != 1 or replacement.isascii():
            return None
        if scheme not in ("always", "first", "never"):
            return None
        return {"mode": MODES[kind], "prefix": scheme != "never", "replacement": replacement}
    return None


def _post_ok(post: Any) -> bool:
    if not post:
        return True
    if post.get("type") == "Sequence":
        return all(_post_ok(p) for p in post.get("processors") or [])
    return post.get("type") in _POST


def word_path_spec(spec: dict) -> dict | None:
    """Settings of the word path if ``tokenizer.json`` (parsed) is a pipeline it reproduces, else None.

    Returns ``mode`` (see ``MODES``), ``lower``, ``prefix`` (ByteLevel's
    ``add_prefix_space``, Metaspace's prepend), ``replacement`` (Metaspace)
    and ``added`` (the added tokens' texts, which send a text holding one to
    ``tokenizers``).
    """
    model = spec.get("model") or {}
    if model.get("type") not in _MODELS or model.get("dropout") not in (None, 0, 0.0):
        return None
    lower = _lowercases(spec.get("normalizer"))
    pre = _pre_tokenizer(spec.get("pre_tokenizer"))
    if lower is None or pre is None or not _post_ok(spec.get("post_processor")):
        return None
    added = sorted({t.get("content", "") for t in spec.get("added_tokens") or []} - {""})
    return {**pre, "lower": lower, "added": added}


def byte_level_chars() -> str:
    """GPT-2's byte -> character map (``tokenizers``' ByteLevel), as a 256-character string."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return "".join(chars[b] for b in range(256))


class WordResolver:
    """A word's ids from the model alone, as the pipeline gives them for that pre-token.

    The words are the kernel's keys: normalized ASCII bytes of one pre-token
    (a Metaspace replacement held as a space). They are mapped to the
    pre-token string the model sees (ByteLevel's byte characters, the
    replacement) and encoded by a tokenizer holding only the model: no
    normalizer, pre-tokenizer, added tokens, post-processor or truncation,
    so each word is one pre-token given to the model as is. A chunk of a
    text with non-ASCII characters (``sse_np.engine.word_kernels.chunk_end``)
    goes through the whole pipeline alone, which gives the ids it has in
    its text (its ends are where the pre-tokenizer always splits and the
    normalizers join nothing).
    """

    def __init__(self, spec: dict, word_spec: dict) -> None:
        bare = {**spec, "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None}
        bare.update(added_tokens=[], truncation=None, padding=None)
        self._tokenizer = Tokenizer.from_str(json.dumps(bare))
        # Chunks of texts with non-ASCII characters go through the whole pipeline, alone (untruncated).
        self._pipeline = Tokenizer.from_str(json.dumps({**spec, "truncation": None, "padding": None}))
        if word_spec["mode"] == MODES["ByteLevel"]:
            self._map = {b: c for b, c in enumerate(byte_level_chars())}
        elif word_spec["mode"] == MODES["Metaspace"]:
            self._map = {ord(" "): word_spec["replacement"]}
        else:
            self._map = {}

    def __call__(self, words: list[bytes]) -> list[list[int]]:
        """Ids of each key: a word (normalized ASCII bytes) or a chunk (raw UTF-8 with non-ASCII bytes)."""
        chunks = [k for k, w in enumerate(words) if not w.isascii()]
        if len(chunks) == len(words):
            strs = []
        else:
            strs = [w.decode("latin-1").translate(self._map) for w in words if w.isascii()]
        out = [e.ids for e in self._tokenizer.encode_batch_fast(strs, add_special_tokens=False)] if strs else []
        if not chunks:
            return out
        texts = [words[k].decode("utf-8") for k in chunks]
        found = iter(e.ids for e in self._pipeline.encode_batch_fast(texts, add_special_tokens=False))
        plain = iter(out)
        chunk_set = set(chunks)
        return [next(found) if k in chunk_set else next(plain) for k in range(len(words))]
