"""Every SSE_NP_* variable is read in one place, with one behaviour: a malformed value raises, naming it."""

from __future__ import annotations

import numpy as np
import pytest

import sse_np
from sse_np import settings
from sse_np.retrieval import hamming_top_k


@pytest.mark.parametrize("value", ["two", "0", "-3", "1.5"])
def test_a_bad_thread_count_raises_everywhere(monkeypatch: pytest.MonkeyPatch, full_small, value: str) -> None:
    """The model and the Hamming search used to disagree (one raised, the other fell back silently)."""
    monkeypatch.setenv("SSE_NP_THREADS", value)
    message = rf"SSE_NP_THREADS must be a positive int, got '{value}'"
    with pytest.raises(ValueError, match=message):
        sse_np.load(full_small[0])
    codes = np.zeros((8, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match=message):
        hamming_top_k(codes, codes, 2)
    assert hamming_top_k(codes, codes, 2, threads=1)[1].shape == (8, 2)  # an argument needs no variable


def test_a_good_thread_count_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSE_NP_THREADS", " 3 ")
    assert settings.threads() == 3
    monkeypatch.delenv("SSE_NP_THREADS")
    assert settings.threads() is None


@pytest.mark.parametrize(
    ("name", "value", "read", "message"),
    [
        ("SSE_NP_BACKEND", "gpu", settings.backend, r"SSE_NP_BACKEND must be one of auto, numba, numpy; got 'gpu'"),
        ("SSE_NP_TOKEN_CACHE_BYTES", "-1", lambda: settings.token_cache_bytes(10), r"non-negative int, got '-1'"),
        ("SSE_NP_TOKEN_CACHE_BYTES", "1e6", lambda: settings.token_cache_bytes(10), r"non-negative int, got '1e6'"),
        ("SSE_NP_SERVE_CONFIG", "{threads: 2", settings.serve_config, r"SSE_NP_SERVE_CONFIG is not valid JSON"),
        ("SSE_NP_SERVE_CONFIG", "[1, 2]", settings.serve_config, r"SSE_NP_SERVE_CONFIG must be a JSON object"),
    ],
)
def test_malformed_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name, value, read, message) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        read()


def test_values_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSE_NP_BACKEND", "SSE_NP_TOKEN_CACHE_BYTES", "SSE_NP_SERVE_CONFIG", "SSE_NP_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert (settings.backend(), settings.token_cache_bytes(10), settings.serve_config(), settings.model()) == (
        None,
        10,
        {},
        None,
    )
    monkeypatch.setenv("SSE_NP_BACKEND", "NumPy")
    monkeypatch.setenv("SSE_NP_TOKEN_CACHE_BYTES", "0")
    monkeypatch.setenv("SSE_NP_SERVE_CONFIG", '{"threads": 2}')
    monkeypatch.setenv("SSE_NP_MODEL", "owner/name")
    assert (settings.backend(), settings.token_cache_bytes(10), settings.serve_config(), settings.model()) == (
        "numpy",
        0,
        {"threads": 2},
        "owner/name",
    )
    for value, disabled in (("1", True), ("yes", True), ("ON", True), ("0", False), ("", False)):
        monkeypatch.setenv("SSE_NP_DISABLE_NUMBA", value)
        assert settings.numba_disabled() is disabled
