"""POST /v1/search over indexes given with `--index NAME=DIR` (in process, and through `sse-np serve`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

import sse_np
from helpers.models import make_random_model
from sse_np import Index
from sse_np.errors import IndexFormatError

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from sse_np.serve import app  # noqa: E402

DOCS = ["The cat sat on the mat.", "Stock markets fell sharply today.", "A recipe for chocolate cake."]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ix") / "docs"
    index = Index(sse_np.default_model())
    index.add(DOCS, ids=["cat", "stock", "cake"])
    index.save(folder)
    return folder, index


@pytest.fixture(scope="module")
def client(saved):
    with TestClient(app(sse_np.default_model(), indexes=[f"docs={saved[0]}"])) as c:
        yield c


def test_search_answers_what_index_search_gives(client, saved):
    resp = client.post("/v1/search", json={"query": ["chocolate dessert", "cats"], "k": 2, "mode": "hybrid"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["index"] == "docs" and body["mode"] == "hybrid"
    assert [d["hits"] for d in body["data"]] == saved[1].search(["chocolate dessert", "cats"], k=2)
    one = client.post("/v1/search", json={"index": "docs", "query": "stock", "mode": "bm25", "k": 1}).json()
    assert one["data"][0]["hits"][0]["id"] == "stock"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"index": "nope", "query": "x"}, 404, "no index named 'nope'"),
        ({"query": "x", "mode": "sparse"}, 400, "mode must be one of"),
        ({"query": "x", "k": 0}, 400, "k must be an int"),
        ({"query": "x", "dimensions": 4096}, 400, "dimensions must be an int"),
        ({"query": 5}, 400, "query"),
        ([1, 2], 400, "expected an object"),
    ],
)
def test_bad_requests(client, body, status, fragment):
    resp = client.post("/v1/search", json=body)
    assert resp.status_code == status
    assert fragment in resp.json()["error"]["message"]


def test_an_index_of_another_model_is_refused_at_start(saved, tmp_path):
    other = sse_np.load(make_random_model(tmp_path / "other", dim=32))
    with pytest.raises(IndexFormatError, match="none of the served models"):
        app(other, indexes=[f"docs={saved[0]}"])


def test_sse_np_serve_index_flag(saved, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "sse_np", "serve", "--port", str(port), "--index", f"docs={saved[0]}"]
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        body = httpx.post(url + "/v1/search", json={"query": "cake", "k": 1}, timeout=30).json()
        assert body["data"][0]["hits"][0]["id"] == "cake"
    finally:
        proc.terminate()
        proc.wait(20)
