"""Checking what callers pass: texts, thread counts, back-ends, limits, sentence-transformers keywords."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Set

import numpy as np

from ..engine import BACKENDS, Utf8Texts, numba_disabled_by_env
from ..settings import backend as backend_from_env
from ..settings import threads as threads_from_env


def refuse_unsupported(
    convert_to_numpy, convert_to_tensor, prompt, prompt_name, device, output_value, extra: dict
) -> None:
    """sentence-transformers keywords: the values that mean what sse_np does pass, others say why not."""
    if extra:
        name = next(iter(extra))
        raise TypeError(f"encode() got an unexpected keyword argument {name!r}")
    if convert_to_tensor or not convert_to_numpy:
        raise ValueError(
            "sse_np returns NumPy arrays (convert_to_numpy=True); torch tensors would need torch: "
            "use torch.from_numpy(vectors)"
        )
    if prompt or prompt_name:
        raise ValueError(
            "SSE models have no prompts (prompt/prompt_name): queries and documents are encoded "
            "alike; prepend any text yourself"
        )
    if device not in (None, "cpu"):
        raise ValueError(f"sse_np runs on the CPU; device={device!r} is not supported")
    if output_value not in (None, "sentence_embedding"):
        raise ValueError(
            f"output_value={output_value!r}: a static model has no token embeddings; "
            "only 'sentence_embedding' is supported"
        )


def check_threads(threads: int | None) -> int | None:
    """``threads`` argument, else ``$SSE_NP_THREADS``, else None (numba's default)."""
    if threads is None:
        return threads_from_env()
    return check_positive_int(threads, "threads")


def check_backend(backend: str | None) -> str:
    """``backend`` argument, else ``$SSE_NP_BACKEND``, else "auto"; numpy if numba is switched off."""
    if backend is None:
        backend = backend_from_env() or "auto"
    elif backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto" and numba_disabled_by_env():
        return "numpy"
    return backend


def check_limit(value: int | None, name: str) -> int:
    """A positive int limit, or None (-1: no limit)."""
    return -1 if value is None else check_positive_int(value, name)


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, not bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__}") from None
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def as_text_list(texts: str | Iterable[str]) -> tuple[list[str] | Utf8Texts, bool]:
    """Validate input at the boundary. Returns (list of str, was a single str).

    Only ordered collections of texts are taken: a mapping would give its
    keys and a set an arbitrary order, silently.
    """
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, Utf8Texts):
        return texts, False
    if _is_arrow_array(texts):  # read in place: no Python string per row
        return Utf8Texts.from_arrow(texts), False
    if texts is None:
        raise TypeError("texts must be a str or a sequence of str, got None")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError("texts must be str, got bytes; decode it first (e.g. data.decode('utf-8'))")
    if isinstance(texts, Mapping) or _is_dataframe_row(texts):
        raise TypeError(
            f"texts must be a str or a sequence of str, got a mapping ({type(texts).__name__}); "
            "pass its values, e.g. list(d.values()), or the text field, e.g. d['text']"
        )
    if isinstance(texts, (Set, frozenset)):
        raise TypeError(
            f"texts must be a str or a sequence of str, got an unordered {type(texts).__name__}; "
            "rows would come back in no defined order: pass sorted(texts) or a list"
        )
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise TypeError(f"texts must be a 1-D array of str, got an array of shape {texts.shape}")
    if not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
    batch = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
    if not set(map(type, batch)) <= {str}:  # a C loop over the types; the error path finds the text
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return batch, False


def _is_arrow_array(texts) -> bool:
    """A pyarrow Array or ChunkedArray (checked without importing pyarrow)."""
    return type(texts).__module__.startswith("pyarrow") and hasattr(texts, "null_count") and hasattr(texts, "type")


def _is_dataframe_row(texts) -> bool:
    """pandas/polars data frames iterate over column names, not texts."""
    return type(texts).__name__ == "DataFrame"
