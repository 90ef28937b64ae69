"""Tokenization as the reference does it, through ``tokenizers`` (the jitted tokenizer is in ``sse_np.engine``)."""

from .config import chunkable, fast_path_spec, load_tokenizer, normalizer_settings
from .reference import DEFAULT_CACHE_BYTES, TextTokenizer, explain_failure, tokenize

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "TextTokenizer",
    "chunkable",
    "explain_failure",
    "fast_path_spec",
    "load_tokenizer",
    "normalizer_settings",
    "tokenize",
]
