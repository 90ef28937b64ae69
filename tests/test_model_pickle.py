"""SSEModel pickles as its folder and settings (issue 27 item 18): multiprocessing works, the child memory-maps."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

import sse_np
from helpers.models import make_random_model


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> sse_np.SSEModel:
    return sse_np.load(make_random_model(tmp_path_factory.mktemp("pickle_model"), dim=16, seed=3), backend="numpy")


def _child_view(model: sse_np.SSEModel) -> tuple[bool, str, int | None, int | None, str]:
    return isinstance(model.table.data, np.memmap), model.path, model.threads, model.truncate_dim, model.backend


def test_pickle_is_small_and_round_trips(model):
    model.threads, model.truncate_dim = 1, 8
    try:
        blob = pickle.dumps(model)
        assert len(blob) < 1000  # the path and settings, not the table
        again = pickle.loads(blob)
        assert (again.path, again.threads, again.truncate_dim, again.backend) == (model.path, 1, 8, "numpy")
        np.testing.assert_array_equal(again.encode(["a cat", "dogs"]), model.encode(["a cat", "dogs"]))
    finally:
        model.threads, model.truncate_dim = None, None


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_map_encode(model, method):
    chunks = [["a cat sat"], ["dogs bark", "rain"], ["the end"]]
    with multiprocessing.get_context(method).Pool(2) as pool:
        got = pool.map(model.encode, chunks)
        view = pool.apply(_child_view, (model,))
    for chunk, vectors in zip(chunks, got):
        np.testing.assert_array_equal(vectors, model.encode(chunk))
    assert view == (True, model.path, None, None, "numpy")
