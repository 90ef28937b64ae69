"""``sse-np serve``: a real server in a subprocess on 127.0.0.1, driven by the real OpenAI client.

Vectors are compared with ``SSEModel.encode`` of the same weights (float
JSON <= 1e-6, base64 bit for bit), usage with ``SSEModel.tokenize``; every
error path is checked for its status and message; SIGTERM with requests in
flight must lose none. The servers run the NumPy back-end (same bits as
numba, no compile time). Every request loop is bounded in count and time.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sse_np

pytest.importorskip("starlette", reason="the 'serve' extra is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (from the openai client) is not installed")
openai = pytest.importorskip("openai", reason="the openai client is not installed (test extra)")

from helpers.extras import install_commands  # noqa: E402
from helpers.models import make_random_model  # noqa: E402
from helpers.paths import SHARED_DATA  # noqa: E402

TEXTS = [
    "what is a static embedding?",
    "",
    "héllo wörld 日本語 🙂",
    "a\x00b",
    "The quick brown fox. " * 40,
    "[UNK] [CLS] tokens",
    "x",
]
WORDS = "the of and a to in is was for on with as by at from retrieval embedding static model vector".split()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``python -m sse_np serve ...`` in a subprocess, waited for on /health (bounded)."""

    def __init__(self, args: list[str], tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SSE_NP_DISABLE_NUMBA="1", PYTHONUNBUFFERED="1")
        self.log = tmp / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sse_np", "serve", "--port", str(self.port), "--log-level", "warning", *args],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}): {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in 60 s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    small = make_random_model(root / "small", dim=64, seed=3)
    tiny = make_random_model(root / "tiny", dim=16, seed=4)
    return {"small": small, "tiny": tiny}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """Two models, small limits so that the 413 paths are cheap to reach."""
    srv = Server(
        [
            "--model",
            f"small={models['small']}",
            "--model",
            f"tiny={models['tiny']}",
            "--max-inputs",
            "8",
            "--max-text-chars",
            "5000",
            "--max-body-bytes",
            "65536",
        ],
        tmp_path_factory.mktemp("logs"),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def local(models):
    return {name: sse_np.load(path, backend="numpy") for name, path in models.items()}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=30)


def _post(server: Server, path: str, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(
        server.url + path, content=content, headers={"content-type": "application/json"}, timeout=30, **kwargs
    )


def _tokens(model, texts: list[str]) -> int:
    ids, _ = model.tokenize(texts)
    return len(ids)


# --------------------------------------------------------------------------- the OpenAI API


def test_openai_client_float(client, local):
    got = client.embeddings.create(model="small", input=TEXTS, encoding_format="float")
    want = local["small"].encode(TEXTS)
    assert got.model == "small" and got.object == "list"
    assert [d.index for d in got.data] == list(range(len(TEXTS)))
    assert all(d.object == "embedding" for d in got.data)
    np.testing.assert_allclose(np.array([d.embedding for d in got.data], dtype=np.float32), want, rtol=0, atol=1e-6)
    assert got.usage.prompt_tokens == got.usage.total_tokens == _tokens(local["small"], TEXTS)


def test_openai_client_base64_default_is_bit_identical(client, server, local):
    # The client asks for base64 unless told otherwise and decodes it as little-endian float32.
    got = client.embeddings.create(model="tiny", input=TEXTS)
    want = local["tiny"].encode(TEXTS)
    assert np.array([d.embedding for d in got.data], dtype=np.float32).tobytes() == want.tobytes()
    raw = _post(server, "/v1/embeddings", {"model": "tiny", "input": TEXTS[0], "encoding_format": "base64"}).json()
    assert base64.b64decode(raw["data"][0]["embedding"]) == want[0].astype("<f4").tobytes()


@pytest.mark.parametrize("dims", [1, 8, 32, 64])
def test_dimensions(client, local, dims):
    got = client.embeddings.create(model="small", input=TEXTS[:3], dimensions=dims, encoding_format="float")
    vectors = np.array([d.embedding for d in got.data], dtype=np.float32)
    assert vectors.shape == (3, dims)
    np.testing.assert_allclose(vectors, local["small"].encode(TEXTS[:3], dims), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_single_string_and_real_queries(client, local):
    queries = _real_queries(8)
    got = client.embeddings.create(model="small", input=queries, encoding_format="float")
    np.testing.assert_allclose(
        np.array([d.embedding for d in got.data], dtype=np.float32), local["small"].encode(queries), rtol=0, atol=1e-6
    )
    one = client.embeddings.create(model="small", input=queries[0], encoding_format="float")
    assert len(one.data) == 1 and one.usage.prompt_tokens == _tokens(local["small"], queries[:1])


def test_concurrent_requests_each_get_their_own_vectors(server, local):
    # Small requests that arrive together are encoded as one call (micro-batching), large ones in the
    # pool; with different dims and models mixed in, every answer must still be its own request's.
    queries = _real_queries(24)
    jobs = [("small" if i % 3 else "tiny", queries[i : i + 1 + i % 3], [None, 8, 16][i % 3]) for i in range(24)]
    jobs.append(("small", [TEXTS[4]] * 3, None))  # > inline_chars: the thread pool
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def call(i: int) -> None:
        name, texts, dims = jobs[i]
        body = {"model": name, "input": texts, "encoding_format": "base64"}
        if dims:
            body["dimensions"] = dims
        barrier.wait(10)
        results[i] = _post(server, "/v1/embeddings", body).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for (name, texts, dims), got in zip(jobs, results):
        want = local[name].encode(texts, dims)
        vectors = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in got["data"]])
        assert vectors.tobytes() == want.tobytes() and got["model"] == name
        assert got["usage"]["prompt_tokens"] == _tokens(local[name], texts)


def test_coalescer_makes_one_call_of_requests_ready_together(local):
    import asyncio

    from sse_np.serve.batching import Coalescer

    model = local["small"]
    calls = []

    class Counting:
        def encode(self, texts, dim=None, normalize=True):
            calls.append(len(texts))
            if "boom" in texts:
                raise ValueError("boom")
            return model.encode(texts, dim, normalize=normalize)

        def tokenize(self, texts):
            return model.tokenize(texts)

    async def go(groups):
        coalescer = Coalescer(Counting())
        return await asyncio.gather(*(coalescer.submit(t, d, True, True) for t, d in groups), return_exceptions=True)

    groups = [(["a b"], 64), (["c", "d e f"], 64), (["g"], 8), (["h"], 64)]
    out = asyncio.run(go(groups))
    assert sorted(calls) == [1, 4]  # dim 64 together (4 texts), dim 8 alone
    for (texts, dim), (vectors, tokens) in zip(groups, out):
        assert vectors.tobytes() == model.encode(texts, dim).tobytes() and tokens == _tokens(model, texts)
    calls.clear()
    out = asyncio.run(go([(["fine"], 64), (["boom"], 64)]))  # a failing group retries one by one
    assert calls == [2, 1, 1] and isinstance(out[1], ValueError)
    assert out[0][0].tobytes() == model.encode(["fine"]).tobytes()


def test_models_endpoint(client, server):
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["small", "tiny"]
    card = httpx.get(server.url + "/v1/models/tiny", timeout=10).json()
    assert card["id"] == "tiny" and card["dimensions"] == 16
    assert httpx.get(server.url + "/v1/models/nope", timeout=10).status_code == 404
    # clients configured with a base URL without /v1 post to /embeddings
    assert _post(server, "/embeddings", {"model": "tiny", "input": "a"}).json()["model"] == "tiny"


def test_langchain_openai_embeddings(server, local):
    lc = pytest.importorskip("langchain_openai", reason="langchain-openai not installed")
    # check_embedding_ctx_length=False: send texts, not tiktoken ids (and fetch no tiktoken files).
    emb = lc.OpenAIEmbeddings(
        model="small",
        base_url=server.url + "/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        max_retries=0,
        timeout=30,
    )
    docs = TEXTS[:4]
    np.testing.assert_allclose(
        np.array(emb.embed_documents(docs), dtype=np.float32), local["small"].encode(docs), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        np.array(emb.embed_query(docs[0]), dtype=np.float32), local["small"].encode(docs[0]), rtol=0, atol=1e-6
    )


# --------------------------------------------------------------------------- errors


def _error(resp: httpx.Response, status: int, fragment: str, param: str | None = "input") -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"], error["message"]
    assert error["param"] == param
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    return error


@pytest.mark.parametrize(
    "body, status, fragment, param",
    [
        (b"{not json", 400, "not valid JSON", None),
        (b'{"input": "a", "model": "small"', 400, "not valid JSON", None),
        (b"\xff\xfe{}", 400, "not valid UTF-8 (byte 0)", None),
        (b'{"input": "caf\xe9"}', 400, "not valid UTF-8 (byte 14)", None),
        ([1, 2], 400, "JSON array, expected an object", None),
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply", None),
        ({"model": "small"}, 400, "input is required", "input"),
        ({"model": "small", "input": {"text": "a"}}, 400, "input is object, expected str", "input"),
        ({"model": "small", "input": ["a", "b", 3]}, 400, "input[2] is int, expected str", "input"),
        ({"model": "small", "input": ["a", None]}, 400, "input[1] is null, expected str", "input"),
        ({"model": "small", "input": []}, 400, "empty list", "input"),
        ({"model": "small", "input": [101, 2023, 102]}, 400, "token ids", "input"),
        ({"model": "small", "input": [[101, 2023], [7]]}, 400, "token ids", "input"),
        ({"model": "small", "input": "a", "dimensions": 0}, 400, "dimensions must be in 1..64", "dimensions"),
        ({"model": "small", "input": "a", "dimensions": 65}, 400, "got 65", "dimensions"),
        ({"model": "small", "input": "a", "dimensions": "8"}, 400, "dimensions is str", "dimensions"),
        ({"model": "small", "input": "a", "dimensions": True}, 400, "dimensions is bool", "dimensions"),
        ({"model": "small", "input": "a", "dimensions": 8.0}, 400, "dimensions is float", "dimensions"),
        ({"model": "small", "input": "a", "encoding_format": "hex"}, 400, "encoding_format", "encoding_format"),
        ({"model": "small", "input": "a", "user": 5}, 400, "user is int", "user"),
        ({"model": 7, "input": "a"}, 400, "model is int", "model"),
        ({"input": "a"}, 400, "model is required: one of small, tiny", "model"),
        ({"model": "gpt-4", "input": "a"}, 404, "'gpt-4' does not exist", "model"),
        ({"model": "small", "input": ["a"] * 9}, 413, "9 texts, limit 8", "input"),
        ({"model": "small", "input": ["a", "b" * 5001]}, 413, "input[1] has 5001 characters, limit 5000", "input"),
    ],
)
def test_error_paths(server, body, status, fragment, param):
    error = _error(_post(server, "/v1/embeddings", body), status, fragment, param)
    if status == 404:
        assert error["code"] == "model_not_found"


def test_lone_surrogate_names_the_item(server):
    resp = _post(server, "/v1/embeddings", b'{"model": "small", "input": ["ok", "bad \\ud800 text"]}')
    _error(resp, 400, "input[1] holds a lone surrogate", "input")


def test_body_limit_with_and_without_content_length(server):
    big = json.dumps({"model": "small", "input": ["word " * 999] * 14}).encode()
    assert len(big) > 65536
    _error(_post(server, "/v1/embeddings", big), 413, "limit 65536", None)

    def chunks():  # no Content-Length: the server stops reading at the limit
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    resp = httpx.post(server.url + "/v1/embeddings", content=chunks(), timeout=30)
    _error(resp, 413, "exceeds 65536 bytes", None)


def test_openai_client_raises_the_errors(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.embeddings.create(model="nope", input="a")
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model="small", input="a", dimensions=999)


def test_internal_error_is_a_500_that_leaks_nothing():
    from starlette.testclient import TestClient

    from sse_np import serve

    class Broken:
        path, dim, vocab_size = "/secret/place/model", 8, 10

        def warmup(self):
            return "numpy"

        def encode(self, texts, dim=None, normalize=True):
            if texts != ["warm up"]:
                raise RuntimeError("kernel failure in /secret/place/model.safetensors")
            return np.zeros((1, 8), np.float32)

        def tokenize(self, texts):
            return np.zeros(0, np.int32), np.zeros(len(texts) + 1, np.int64)

    with TestClient(serve.app({"broken": Broken()}), raise_server_exceptions=False) as tc:
        resp = tc.post("/v1/embeddings", json={"model": "broken", "input": "a"})
        error = _error(resp, 500, "internal server error", None)
        assert "secret" not in resp.text and "Traceback" not in resp.text and error["code"] is None
        resp = tc.post("/embed", json={"inputs": "a"})
        assert resp.status_code == 500 and "secret" not in resp.text
        assert resp.json() == {"error": "internal server error", "error_type": "Backend"}


# --------------------------------------------------------------------------- TEI /embed, health, metrics


def test_tei_embed(server, local):
    got = _post(server, "/embed", {"inputs": TEXTS, "model": "small"})
    assert got.status_code == 200
    np.testing.assert_allclose(np.array(got.json(), dtype=np.float32), local["small"].encode(TEXTS), rtol=0, atol=1e-6)
    raw = _post(
        server,
        "/embed",
        {
            "inputs": "one text",
            "model": "small",
            "normalize": False,
            "dimensions": 8,
            "truncate": True,
            "truncation_direction": "Right",
        },
    ).json()
    np.testing.assert_allclose(
        np.array(raw, dtype=np.float32), local["small"].encode(["one text"], 8, normalize=False), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"model": "small"}, 422, "inputs is required"),
        ({"model": "small", "inputs": ["a", 1]}, 422, "inputs[1] is int, expected str"),
        ({"model": "small", "inputs": "a", "normalize": "yes"}, 422, "normalize is str"),
        ({"model": "small", "inputs": "a", "prompt_name": "query"}, 422, "no prompts"),
        ({"model": "small", "inputs": "a", "truncation_direction": "up"}, 422, "truncation_direction"),
        ({"model": "small", "inputs": "a", "dimensions": 100}, 422, "dimensions must be in 1..64"),
        ({"model": "small", "inputs": ["a"] * 9}, 413, "limit 8"),
        ({"model": "unknown", "inputs": "a"}, 404, "does not exist"),
    ],
)
def test_tei_errors(server, body, status, fragment):
    resp = _post(server, "/embed", body)
    assert resp.status_code == status, resp.text
    assert set(resp.json()) == {"error", "error_type"} and fragment in resp.json()["error"]


def test_health_and_metrics(server, local):
    assert httpx.get(server.url + "/health", timeout=10).json() == {"status": "ok"}
    before = _metrics(server)
    texts = _real_queries(5)
    for _ in range(3):
        assert _post(server, "/v1/embeddings", {"model": "tiny", "input": texts}).status_code == 200
    _post(server, "/v1/embeddings", {"model": "tiny", "input": ["a"] * 9})
    after = _metrics(server)
    key = 'sse_np_requests_total{endpoint="/v1/embeddings",method="POST",status="200"}'
    assert after[key] - before.get(key, 0) == 3
    key413 = 'sse_np_requests_total{endpoint="/v1/embeddings",method="POST",status="413"}'
    assert after[key413] - before.get(key413, 0) == 1
    assert after['sse_np_texts_total{model="tiny"}'] - before.get('sse_np_texts_total{model="tiny"}', 0) == 15
    tokens = 'sse_np_tokens_total{model="tiny"}'
    assert after[tokens] - before.get(tokens, 0) == 3 * _tokens(local["tiny"], texts)
    count = 'sse_np_request_duration_seconds_count{endpoint="/v1/embeddings"}'
    inf = 'sse_np_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="+Inf"}'
    assert after[count] == after[inf] and after[count] - before.get(count, 0) == 4
    assert after["sse_np_requests_in_flight"] == 1  # the /metrics request itself
    text = httpx.get(server.url + "/metrics", timeout=10).text
    assert "# TYPE sse_np_request_duration_seconds histogram" in text


def _metrics(server: Server) -> dict[str, float]:
    resp = httpx.get(server.url + "/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for line in resp.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _real_queries(n: int) -> list[str]:
    path = SHARED_DATA / "scifact" / "queries.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line)["text"] for line, _ in zip(fh, range(n))]
    rng = random.Random(n)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(n)]


# --------------------------------------------------------------------------- one model, shutdown, CLI


def test_single_model_any_name_then_sigterm_loses_nothing(models, local, tmp_path):
    srv = Server(["--model", str(models["tiny"]), "--threads", "2"], tmp_path)
    try:
        # One model: any name reaches it, and the response names the model served (its folder name).
        resp = _post(srv, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "hello"}).json()
        assert resp["model"] == "tiny"

        # Four requests held in flight deterministically: headers and half of each body are sent, the
        # rest only after SIGTERM has closed the listening socket. The server must answer all four.
        rng = random.Random(0)
        texts = [" ".join(rng.choice(WORDS) for _ in range(200)) for _ in range(6)]
        want = local["tiny"].encode(texts)
        body = json.dumps({"model": "x", "input": texts, "encoding_format": "base64"}).encode()
        half = len(body) // 2
        conns = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            conn.putrequest("POST", "/v1/embeddings")
            conn.putheader("content-type", "application/json")
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body[:half])
            conns.append(conn)
        deadline = time.monotonic() + 20
        while _metrics(srv)["sse_np_requests_in_flight"] < 5:  # the 4 held requests + this one
            assert time.monotonic() < deadline, "the 4 requests never reached the app"
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while True:  # shutdown has begun once new connections are refused
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "the server kept listening after SIGTERM"
            time.sleep(0.02)
        for conn in conns:
            conn.send(body[half:])
        for conn in conns:
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status == 200, payload
            got = np.stack(
                [np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in json.loads(payload)["data"]]
            )
            assert got.tobytes() == want.tobytes()
            conn.close()
        late = None
        with contextlib.suppress(httpx.TransportError):  # refused: the listening socket is closed
            late = httpx.get(srv.url + "/health", timeout=5)
        assert late is None or late.status_code == 503
        assert srv.proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        srv.stop()


def test_missing_extra_is_one_line(tmp_path):
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from sse_np.cli import main; sys.exit(main(['serve', '--port', '1']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"sse-np: error: sse_np.serve needs the 'serve' extra: {install_commands('serve')}"


def test_app_names_and_limits(models):
    from sse_np import serve

    application = serve.app([f"a={models['tiny']}", str(models["small"])], backend="numpy")
    assert sorted(application.state.sse_np.models) == ["a", "small"]
    with pytest.raises(ValueError, match="two models are named"):
        serve.app([str(models["tiny"]), f"tiny={models['small']}"], backend="numpy")
    with pytest.raises(ValueError, match="max_inputs must be a positive int"):
        serve.app(str(models["tiny"]), max_inputs=0, backend="numpy")


def test_workers_share_the_work_and_stop_on_sigterm(models, local, tmp_path):
    srv = Server(["--model", f"tiny={models['tiny']}", "--workers", "2", "--max-inputs", "4"], tmp_path)
    try:
        queries = _real_queries(8)
        for i in range(8):
            got = _post(srv, "/v1/embeddings", {"model": "tiny", "input": queries[i], "encoding_format": "base64"})
            assert base64.b64decode(got.json()["data"][0]["embedding"]) == local["tiny"].encode(queries[i]).tobytes()
        _error(_post(srv, "/v1/embeddings", {"model": "tiny", "input": ["a"] * 5}), 413, "limit 4", "input")
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        srv.stop()


def test_cli_parses_serve_without_importing_the_stack():
    code = (
        "import sys; from sse_np.cli import build_parser\n"
        "a = build_parser().parse_args(['serve', '--model', 'a=x', '--model', 'y', '--port', '9', '--workers', '2',"
        " '--threads', '3', '--max-inputs', '5', '--inline-chars', '0', '--no-batching', '--strict-model'])\n"
        "assert (a.model, a.port, a.workers, a.threads, a.max_inputs, a.inline_chars, a.batching, a.strict_model)"
        " == (['a=x', 'y'], 9, 2, 3, 5, 0, False, True), a\n"
        "assert 'starlette' not in sys.modules and 'sse_np.serve' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_python_m_sse_np_serve_is_the_serve_command() -> None:
    """``python -m sse_np.serve ARGS`` is ``sse-np serve ARGS`` (the server package never imports the CLI)."""
    done = subprocess.run([sys.executable, "-m", "sse_np.serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: sse-np serve ") and "--max-body-bytes" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "sse_np.serve", "--port", "0x"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "sse-np serve: error: argument --port" in bad.stderr


def test_serves_a_model2vec_model_beside_an_sse_model(models, tmp_path):
    """`serve --model potion=DIR --model sse=weights`: the request's `model` picks the format."""
    pytest.importorskip("model2vec")
    from helpers.static_models import minilm_model2vec

    potion = minilm_model2vec(tmp_path / "potion", "mapped")
    srv = Server(["--model", f"potion={potion}", "--model", f"sse={models['small']}"], tmp_path)
    try:
        texts = ["what is a static embedding?", "café 日本"]
        for name, folder in (("potion", potion), ("sse", models["small"])):
            body = _post(srv, "/v1/embeddings", {"model": name, "input": texts}).json()
            got = np.array([row["embedding"] for row in body["data"]], dtype=np.float32)
            want = sse_np.load(folder, backend="numpy").encode(texts, normalize=True)
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)
        assert got.shape[1] != 48  # the SSE model's width, not potion's
    finally:
        srv.stop()


def test_max_length_applies_to_every_served_model(models, tmp_path):
    srv = Server(["--model", f"small={models['small']}", "--max-length", "2"], tmp_path)
    try:
        texts = ["one two three four five", "six"]
        body = _post(srv, "/v1/embeddings", {"model": "small", "input": texts}).json()
        got = np.array([row["embedding"] for row in body["data"]], dtype=np.float32)
        local = sse_np.load(models["small"], backend="numpy")
        np.testing.assert_allclose(got, local.encode(texts, max_length=2, normalize=True), atol=1e-6)
        assert not np.allclose(got[0], local.encode(texts[0], normalize=True), atol=1e-3)
    finally:
        srv.stop()
