"""examples/lambda_handler.py with an index shipped inside the function (SSE_NP_INDEX)."""

from __future__ import annotations

import importlib.util
import json

import pytest

import sse_np
from helpers.paths import REPO

HANDLER_FILE = REPO / "examples" / "lambda_handler.py"
DOCS = ["A recipe for apple pie.", "Cats purr when content.", "Stock markets fell on Monday."]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The handler imported with SSE_NP_INDEX naming a saved index beside it."""
    folder = tmp_path_factory.mktemp("package") / "index"
    index = sse_np.Index(sse_np.default_model())
    index.add(DOCS, ids=["pie", "cats", "stocks"])
    index.save(folder)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("SSE_NP_MODEL", "MAX_TEXTS", "MAX_VALUES", "SSE_NP_TRUNCATE_DIM"):
            mp.delenv(name, raising=False)
        mp.setenv("SSE_NP_INDEX", str(folder))
        spec = importlib.util.spec_from_file_location("lambda_handler_index_example", HANDLER_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module, index


def test_search_direct_and_proxy(shipped):
    lh, index = shipped
    direct = lh.handler({"search": "purring cats", "k": 2, "mode": "hybrid"})
    assert direct["results"] == index.search("purring cats", k=2)
    assert direct["results"][0]["id"] == "cats" and direct["mode"] == "hybrid"
    proxy = lh.handler({"body": json.dumps({"search": ["apple", "markets"], "k": 1, "mode": "bm25"})})
    assert proxy["statusCode"] == 200
    assert [r[0]["id"] for r in json.loads(proxy["body"])["results"]] == ["pie", "stocks"]
    assert lh.handler({"texts": ["still embeds"]})["count"] == 1


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"search": 3}, "search is"),
        ({"search": "x", "k": 0}, "k must be an int"),
        ({"search": "x", "mode": "sparse"}, "mode must be"),
        ({"search": "x", "dim": 8}, "unknown field 'dim'"),
    ],
)
def test_bad_search_requests(shipped, request_, message):
    lh, _ = shipped
    assert message in lh.handler(request_)["error"]
