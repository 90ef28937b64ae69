"""Every ``SSE_NP_*`` environment variable, parsed and checked in one place.

Each function reads the environment when called, not at import, so a value
set by a test, a server's worker or a user's script before the call counts.
A malformed value raises ``ValueError`` naming the variable, wherever it is
read: a typo never silently falls back to a default.

==============================  =================================================
variable                        meaning
==============================  =================================================
``SSE_NP_MODEL``                the default model's folder or hub id
``SSE_NP_THREADS``              most threads one call uses (a positive int)
``SSE_NP_BACKEND``              ``auto``, ``numba`` or ``numpy``
``SSE_NP_DISABLE_NUMBA``        a true value (1/true/yes/on) never imports numba
``SSE_NP_TOKEN_CACHE_BYTES``    bound of the tokenizer's chunk cache and of the word path's table (an int >= 0)
``SSE_NP_SERVE_CONFIG``         the server's configuration as JSON (worker processes)
``SSE_NP_API_KEY``              the server's API keys (comma-separated), as ``--api-key``
==============================  =================================================
"""

from __future__ import annotations

import json
import os
from typing import Any

MODEL = "SSE_NP_MODEL"
THREADS = "SSE_NP_THREADS"
BACKEND = "SSE_NP_BACKEND"
DISABLE_NUMBA = "SSE_NP_DISABLE_NUMBA"
TOKEN_CACHE_BYTES = "SSE_NP_TOKEN_CACHE_BYTES"
SERVE_CONFIG = "SSE_NP_SERVE_CONFIG"
API_KEY = "SSE_NP_API_KEY"

#: The engine back-ends a model can be loaded with.
BACKENDS = ("auto", "numba", "numpy")
_TRUE = ("1", "true", "yes", "on")


def _read(name: str) -> str:
    return os.environ.get(name, "").strip()


def _int(name: str, smallest: int, what: str) -> int | None:
    text = _read(name)
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = smallest - 1
    if value < smallest:
        raise ValueError(f"{name} must be {what}, got {text!r}")
    return value


def model() -> str | None:
    """``$SSE_NP_MODEL``: a model folder or hub id to use by default, or None."""
    return _read(MODEL) or None


def threads() -> int | None:
    """``$SSE_NP_THREADS`` as a positive int, or None when unset."""
    return _int(THREADS, 1, "a positive int")


def backend() -> str | None:
    """``$SSE_NP_BACKEND`` (lower-cased), one of :data:`BACKENDS`, or None when unset."""
    value = _read(BACKEND).lower()
    if value and value not in BACKENDS:
        raise ValueError(f"{BACKEND} must be one of {', '.join(BACKENDS)}; got {value!r}")
    return value or None


def numba_disabled() -> bool:
    """``$SSE_NP_DISABLE_NUMBA`` is set to a true value."""
    return _read(DISABLE_NUMBA).lower() in _TRUE


def token_cache_bytes(default: int) -> int:
    """``$SSE_NP_TOKEN_CACHE_BYTES`` as an int >= 0, else ``default``."""
    value = _int(TOKEN_CACHE_BYTES, 0, "a non-negative int")
    return default if value is None else value


def serve_config() -> dict[str, Any]:
    """``$SSE_NP_SERVE_CONFIG``: the server's configuration, a JSON object (empty when unset)."""
    text = _read(SERVE_CONFIG)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{SERVE_CONFIG} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{SERVE_CONFIG} must be a JSON object, got {type(value).__name__}")
    return value


def api_keys() -> list[str]:
    """``$SSE_NP_API_KEY``: the server's API keys, comma-separated (empty when unset)."""
    return [key.strip() for key in _read(API_KEY).split(",") if key.strip()]
