"""Large bodies (issue 27 items 11, 12): parsed off the event loop after a cheap shape check, and
``--max-bytes-in-flight`` bounding the request bytes read, parsed and encoded at once."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import httpx
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the 'serve' extra is not installed")

import sse_np
from helpers.models import make_random_model
from helpers.server import Server
from sse_np.serve.admission import ByteBudget
from sse_np.serve.protocol import SMALL_BODY


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("adm") / "m", dim=16, seed=9)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    args = ["--model", str(model), "--max-text-chars", "1000000", "--max-bytes-in-flight", "300000"]
    with Server(args, tmp_path_factory.mktemp("logs")) as srv:
        yield srv


def test_budget_admits_in_order_and_gives_back_on_cancel() -> None:
    async def scenario() -> list[str]:
        budget, order = ByteBudget(10), []
        release_a = asyncio.Event()

        async def job(name: str, size: int, until: asyncio.Event | None = None) -> None:
            async with budget.hold(size):
                order.append(name)
                if until is not None:
                    await until.wait()

        a = asyncio.create_task(job("a", 6, release_a))
        await asyncio.sleep(0)
        b = asyncio.create_task(job("b", 6))
        c = asyncio.create_task(job("c", 1))  # fits, but waits behind b: first come, first served
        gone = asyncio.create_task(job("gone", 2))
        await asyncio.sleep(0)
        assert order == ["a"] and budget.used == 6 and len(budget.waiting) == 3
        gone.cancel()
        big = asyncio.create_task(job("big", 50))  # larger than the budget: runs alone
        release_a.set()
        await asyncio.gather(a, b, c, big)
        assert gone.cancelled() and budget.used == 0 and not budget.waiting
        return order

    assert asyncio.run(scenario()) == ["a", "b", "c", "big"]


def _body(texts) -> dict:
    return {"input": texts, "encoding_format": "base64"}


def test_bodies_that_cannot_be_valid_are_refused_before_parsing(server) -> None:
    for values in ("[]", "{}", "1"):
        raw = b'{"input": [' + b",".join([values.encode()] * 40_000) + b"]}"
        assert len(raw) > SMALL_BODY
        resp = httpx.post(server.url + "/v1/embeddings", content=raw)
        assert resp.status_code == 413, resp.text
        assert resp.json()["error"]["code"] == "too_many_values"
        assert "--max-inputs" in resp.json()["error"]["message"]
    raw = b"[" + b",".join([b"{}"] * 40_000) + b"]"
    assert httpx.post(server.url + "/embed", content=raw).status_code == 413


def test_large_valid_bodies_are_parsed_and_answered(server, model) -> None:
    """Brackets, commas and escaped quotes inside strings are not counted; the vectors are the library's."""
    texts = ['a "quoted" [list], {obj}, ' * 4000, "café, 日本 [" * 3000, "plain"]
    raw = json.dumps(_body(texts)).encode()
    assert SMALL_BODY < len(raw) < 300_000
    resp = httpx.post(server.url + "/v1/embeddings", content=raw)
    assert resp.status_code == 200, resp.text
    got = [np.frombuffer(__import__("base64").b64decode(d["embedding"]), "<f4") for d in resp.json()["data"]]
    want = sse_np.load(model, backend="numpy").encode(texts)
    np.testing.assert_array_equal(np.stack(got), want)
    for bad, status in ((b"{" + b" " * SMALL_BODY + b'"input": "x"', 400), (b"\xff" * (SMALL_BODY + 1), 400)):
        assert httpx.post(server.url + "/v1/embeddings", content=bad).status_code == status


def _until(condition) -> bool:
    """Poll ``condition`` (a hang guard of 20,000 polls, not a time limit on the server)."""
    for _ in range(20_000):
        if condition():
            return True
        time.sleep(0.001)
    return False


def _gauge(server: Server, name: str) -> int:
    text = httpx.get(server.url + "/metrics").text
    return int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))


def test_max_bytes_in_flight_makes_large_requests_wait(server) -> None:
    """A holds 200,000 of the 300,000 bytes (its body half sent); B (200,000) must wait until A is done."""
    body_a = json.dumps(_body(["a" * 199_950])).encode()
    body_b = json.dumps(_body(["b" * 199_950])).encode()
    sock = server.connect()
    head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body_a)}"
    sock.sendall(head.encode() + b"\r\n\r\n" + body_a[:1000])
    assert _until(lambda: _gauge(server, "sse_np_request_bytes_admitted") == len(body_a))  # A is reading its body
    answer: dict = {}
    b = threading.Thread(target=lambda: answer.update(b=httpx.post(server.url + "/v1/embeddings", content=body_b)))
    b.start()
    assert _until(lambda: _gauge(server, "sse_np_requests_waiting") == 1 or "b" in answer)
    assert "b" not in answer, "B was answered while A held the budget"
    sock.sendall(body_a[1000:])
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200")
    b.join()
    assert answer["b"].status_code == 200
    assert _gauge(server, "sse_np_requests_waiting") == 0 and _gauge(server, "sse_np_request_bytes_admitted") == 0


def test_a_request_larger_than_the_budget_runs_alone(server) -> None:
    raw = json.dumps(_body(["z" * 400_000])).encode()
    assert httpx.post(server.url + "/v1/embeddings", content=raw, timeout=120).status_code == 200
