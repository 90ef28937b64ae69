"""Each ``sse-np serve`` option at its boundary (issue 30 item 4): N passes, N+1 is refused.

How each was checked to fail with its option's code disabled is in OPTION_TESTS' comments
(tests/test_option_table.py holds the table for every command).
"""

from __future__ import annotations

import asyncio
import json
import signal

import httpx
import pytest

pytest.importorskip("starlette", reason="the 'serve' extra is not installed")

from helpers.models import make_random_model
from helpers.server import Server
from sse_np.serve import ServeConfig
from sse_np.serve.batching import ServerState

# The defaults as documented (`sse-np serve --help`, README), written out: a changed default must fail here.
DEFAULT_MAX_INPUTS, DEFAULT_MAX_TEXT_CHARS, DEFAULT_MAX_BODY_BYTES = 2048, 200_000, 32 * 2**20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("opts") / "m", dim=16, seed=10)


def _post(srv: Server, body: object) -> httpx.Response:
    return httpx.post(srv.url + "/v1/embeddings", content=json.dumps(body).encode(), timeout=120)


def _code(resp: httpx.Response) -> str | None:
    return resp.json()["error"]["code"] if resp.status_code != 200 else None


def _padded(size: int) -> bytes:
    """A valid request body of exactly ``size`` bytes (padded in its ``user`` field)."""
    bare = len(json.dumps({"input": "a", "user": ""}).encode())
    return json.dumps({"input": "a", "user": "p" * (size - bare)}).encode()


def test_limits_at_n_and_n_plus_one(model, tmp_path) -> None:
    n_inputs, n_chars, n_body = 3, 50, 1000
    args = ["--model", str(model), "--max-inputs", "3", "--max-text-chars", "50", "--max-body-bytes", "1000"]
    with Server(args, tmp_path) as srv:
        assert _post(srv, {"input": ["a"] * n_inputs}).status_code == 200
        assert _code(_post(srv, {"input": ["a"] * (n_inputs + 1)})) == "too_many_inputs"
        assert _post(srv, {"input": "x" * n_chars}).status_code == 200
        assert _code(_post(srv, {"input": ["x" * (n_chars + 1)]})) == "text_too_long"
        body = _padded(n_body)
        assert len(body) == n_body
        assert httpx.post(srv.url + "/v1/embeddings", content=body).status_code == 200
        assert _code(httpx.post(srv.url + "/v1/embeddings", content=_padded(n_body + 1))) == "body_too_large"

        def chunked(data: bytes):  # no Content-Length: counted while read
            yield data

        assert httpx.post(srv.url + "/v1/embeddings", content=chunked(body)).status_code == 200
        assert _code(httpx.post(srv.url + "/v1/embeddings", content=chunked(_padded(n_body + 1)))) == "body_too_large"


def test_default_limits(model, tmp_path) -> None:
    with Server(["--model", str(model)], tmp_path) as srv:
        assert _post(srv, {"input": ["a"] * DEFAULT_MAX_INPUTS}).status_code == 200
        assert _code(_post(srv, {"input": ["a"] * (DEFAULT_MAX_INPUTS + 1)})) == "too_many_inputs"
        assert _post(srv, {"input": "y" * DEFAULT_MAX_TEXT_CHARS}).status_code == 200
        assert _code(_post(srv, {"input": "y" * (DEFAULT_MAX_TEXT_CHARS + 1)})) == "text_too_long"
        sock = srv.connect()  # declared one byte over: refused before any of it is read
        sock.sendall(
            f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        assert b"413" in sock.recv(4096).split(b"\r\n")[0]
        sock.close()


def test_strict_model(model, tmp_path) -> None:
    with Server(["--model", f"m={model}", "--strict-model"], tmp_path) as srv:
        assert _post(srv, {"input": "a", "model": "m"}).status_code == 200
        resp = _post(srv, {"input": "a", "model": "text-embedding-3-small"})
        assert resp.status_code == 404 and _code(resp) == "model_not_found"
    with Server(["--model", f"m={model}"], tmp_path) as srv:  # without it, any name reaches the one model
        assert _post(srv, {"input": "a", "model": "text-embedding-3-small"}).status_code == 200


def _route(model, inline_chars: int, batching: bool, texts: list[str]) -> ServerState:
    """Encode ``texts`` through a ServerState; what it created tells where they went."""
    import sse_np

    m = sse_np.load(model, backend="numpy")
    state = ServerState({"m": m}, ServeConfig(inline_chars=inline_chars, batching=batching))
    asyncio.run(state.encode("m", m, texts, 16, True, True))
    return state


def test_inline_chars_and_no_batching(model) -> None:
    on_loop = _route(model, 5, True, ["ab", "cde"])  # 5 characters: on the loop, through the coalescer
    assert on_loop.pool is None and "m" in on_loop.coalescers
    pooled = _route(model, 5, True, ["ab", "cdef"])  # 6: in the thread pool
    assert pooled.pool is not None and not pooled.coalescers
    pooled.pool.shutdown()
    alone = _route(model, 5, False, ["ab", "cde"])  # --no-batching: on the loop, no coalescer
    assert alone.pool is None and not alone.coalescers
    zero = _route(model, 0, True, ["a"])  # --inline-chars 0: everything in the pool
    assert zero.pool is not None
    zero.pool.shutdown()


def test_backend_overrides_the_environment(model, tmp_path) -> None:
    """The helper's servers run with numba switched off (SSE_NP_DISABLE_NUMBA=1), so a model cannot load on
    numba there. --backend numpy serves even with $SSE_NP_BACKEND=numba; --backend numba is refused at start
    where the default (auto) would have fallen back to NumPy."""
    import numpy as np

    import sse_np

    with Server(["--model", str(model), "--backend", "numpy"], tmp_path, env={"SSE_NP_BACKEND": "numba"}) as srv:
        resp = _post(srv, {"input": ["which back-end?"], "encoding_format": "float"})
        assert resp.status_code == 200, resp.text
        want = sse_np.load(model, backend="numpy").encode(["which back-end?"])
        np.testing.assert_allclose(np.array(resp.json()["data"][0]["embedding"]), want[0], atol=1e-6)
    with pytest.raises(RuntimeError, match=r"backend='numba' needs numba installed"):
        Server(["--model", str(model), "--backend", "numba"], tmp_path)


def test_threads_reach_every_served_model(model, monkeypatch) -> None:
    """``sse-np serve --threads 3``: the application the command would run serves models of 3 threads
    (the default: all cores). ``serve.run`` is replaced by building that application, so nothing listens."""
    from helpers.server import free_port
    from sse_np import serve
    from sse_np.cli import main
    from sse_np.serve.application import app_from

    built = []
    monkeypatch.setattr(serve, "run", lambda config, **kwargs: built.append(app_from(config)))
    monkeypatch.setenv("SSE_NP_BACKEND", "numpy")
    monkeypatch.delenv("SSE_NP_THREADS", raising=False)
    args = ["serve", "--model", f"a={model}", "--model", f"b={model}", "--port", str(free_port())]
    assert main(args) == 0
    assert main([*args, "--threads", "3"]) == 0
    default, three = (app.state.sse_np.models for app in built)
    assert [m.threads for m in default.values()] == [None, None]
    assert [m.threads for m in three.values()] == [3, 3]


def test_log_level(model, tmp_path) -> None:
    """uvicorn's start-up lines are INFO: shown at the default level, not at --log-level warning."""
    with Server(["--model", str(model)], tmp_path) as default:
        pass
    with Server(["--model", str(model), "--log-level", "warning"], tmp_path) as srv:
        assert _post(srv, {"input": "a"}).status_code == 200
    assert "Application startup complete" in default.log.read_text()
    assert "Application startup complete" not in srv.log.read_text()
    assert "INFO" not in srv.log.read_text()


def test_drain_timeout_bounds_shutdown(model, tmp_path) -> None:
    """SIGTERM with a request that can never finish (its body never comes): the server still exits,
    after --drain-timeout; without the bound it would wait for that request forever."""
    args = ["--model", str(model), "--drain-timeout", "0.5", "--client-timeout", "3600"]
    srv = Server(args, tmp_path)
    try:
        sock = srv.connect()
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert httpx.get(srv.url + "/metrics").text.count("sse_np_requests_in_flight 2") == 1  # it and /metrics
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(120) in (0, -signal.SIGTERM)  # hang guard only
        assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in srv.log.read_text()
    finally:
        srv.stop()


def test_workers_both_answer(model, tmp_path) -> None:
    """--workers 2: each worker answers. The other one is stopped (SIGSTOP) while a request is sent, so the
    request can only be accepted by the one under test: no reliance on how the kernel spreads connections."""
    import os

    import numpy as np

    import sse_np
    from helpers.sockets import descendants, listening

    with Server(["--model", str(model), "--workers", "2"], tmp_path) as srv:
        workers = sorted({pid for pid, _, _, port in listening(descendants(srv.proc.pid)) if port == srv.port})
        assert len(workers) == 2, workers
        want = sse_np.load(model, backend="numpy").encode(["which worker?"])
        for worker in workers:
            others = [w for w in workers if w != worker]
            for other in others:
                os.kill(other, signal.SIGSTOP)
            try:
                resp = _post(srv, {"input": ["which worker?"], "encoding_format": "float"})
                assert resp.status_code == 200, resp.text
                np.testing.assert_allclose(np.array(resp.json()["data"][0]["embedding"]), want[0], atol=1e-6)
                assert (
                    httpx.get(srv.url + "/metrics").text.count('endpoint="/v1/embeddings",method="POST",status="200"')
                    == 1
                )
            finally:
                for other in others:
                    os.kill(other, signal.SIGCONT)


def test_host_default_is_loopback_and_host_binds_there(model, tmp_path) -> None:
    from helpers.sockets import listening

    with Server(["--model", str(model)], tmp_path) as srv:
        assert {(ip, port) for _, _, ip, port in listening({srv.proc.pid})} == {("127.0.0.1", srv.port)}
    with Server(["--model", str(model), "--host", "127.0.0.2"], tmp_path, health_host="127.0.0.2") as srv:
        assert {(ip, port) for _, _, ip, port in listening({srv.proc.pid})} == {("127.0.0.2", srv.port)}
