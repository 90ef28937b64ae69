"""``sse-np info`` and ``sse-np warmup``: the model and the engine, and loading numba's kernels."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from typing import Any

from .._version import __version__
from ..engine import numba_available, numba_disabled_by_env
from .common import load_model


def info(args: argparse.Namespace) -> int:
    """Print the model and engine facts, as aligned lines or ``--json``."""
    facts = model_facts(load_model(args.model), warm=args.warmup)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif value is None:  # JSON keeps null; a printed "None" reads as a bug
            value = _ABSENT.get(key, "-")
        print(f"{key:<16}{value}")
    return 0


# What a plain `info` prints for a fact that does not apply (``--json`` gives null).
_ABSENT = {"numba cache": "not used (the NumPy back-end compiles nothing)"}


def model_facts(model: Any, warm: bool = False) -> dict[str, Any]:
    """The model and engine facts ``sse-np info`` prints."""
    facts: dict[str, Any] = {
        "path": model.path,
        "format": model.format,
        "layout": model.layout,
        "vocab_size (V)": model.vocab_size,
        "dim (D)": model.dim,
        "dtype": model.dtype,
        "table bytes": int(model.table.data.nbytes),
        "tokenizer": _tokenizer_facts(model),
        "defaults": {
            "normalize": model.normalize,
            "max_length": model.max_length if model.max_length is not None else "all tokens",
            "truncate_dim": model.truncate_dim if model.truncate_dim is not None else "off",
            "token mapping": model.engine.mapping is not None,
            "token weights": model.engine.weights is not None,
        },
    }
    if warm:
        model.warmup()
    facts["backend"] = _backend(model)
    facts["numba"] = _numba_version()
    facts["numba cache"] = _numba_cache() if numba_available() and model.backend != "numpy" else None
    facts["threads"] = model.threads if model.threads is not None else f"all cores ({model._threads()})"
    facts["sse_np"] = __version__
    return facts


def _tokenizer_facts(model: Any) -> dict[str, Any]:
    trunc = model.tokenizer.truncation
    tokenizer = model.engine.tokenizer
    keep = "end" if trunc and trunc.get("direction") == "left" else "start"
    return {
        "vocab": model.tokenizer.get_vocab_size(with_added_tokens=True),
        "lowercase": _lowercases(model.tokenizer),
        "truncation": f"{trunc['max_length']} tokens, keep {keep}" if trunc else "off",
        "numba fast path": _fast_path(tokenizer),
        "chunk cache": f"{tokenizer.cache_bytes:,} bytes at most",
    }


def _fast_path(tokenizer: Any) -> str:
    """Which jitted tokenizer the numba back-end uses for this tokenizer.json, if any."""
    if tokenizer.fast_spec is not None:
        return "supported"
    if tokenizer.word_spec is not None:
        return "supported (word path, ASCII texts)"
    return "not supported (tokenizers)"


def _backend(model: Any) -> str:
    """The back-end asked for and the one answering now; before numba loads, when it will."""
    status = model.engine.status
    if status == model.backend:
        return status
    if status == "numpy":  # "auto" before the first call: loading numba is deferred, not broken
        return f"{model.backend} (now: numpy; numba loads in the background at the first encode)"
    if status == "loading":
        return f"{model.backend} (now: numpy; numba is loading)"
    if status == "failed":
        return f"{model.backend} (now: numpy; numba failed to load)"
    return f"{model.backend} (now: {status})"


def _numba_version() -> str:
    if numba_disabled_by_env():
        return "off (SSE_NP_DISABLE_NUMBA)"
    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return "not installed (NumPy back-end)"


def _numba_cache() -> str:
    """The folder numba keeps (or will keep) this package's compiled kernels in."""
    import numba

    from ..engine import cache

    return cache.cache_dir(numba) or "a private temporary folder, made when the kernels load (no writable cache)"


def _lowercases(tokenizer: Any) -> bool | None:
    normalizer = json.loads(tokenizer.to_str()).get("normalizer") or {}
    return normalizer.get("lowercase") if normalizer.get("type") == "BertNormalizer" else None


def warmup(args: argparse.Namespace) -> int:
    """Load (compiling once) the model's numba kernels; say where they are cached."""
    model = load_model(args.model, args.threads)
    backend = model.warmup()
    where = _numba_cache() if backend == "numba" else None
    print(f"backend {backend}" + (f"; numba kernels cached in {where}" if where else ""))
    return 0
