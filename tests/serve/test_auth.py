"""``--api-key`` / ``$SSE_NP_API_KEY`` (issue 27 item 13): Bearer keys on every route but /health,
401 in OpenAI's error shape, compared in constant time, never logged."""

from __future__ import annotations

import hmac

import httpx
import pytest

pytest.importorskip("starlette", reason="the 'serve' extra is not installed")
openai = pytest.importorskip("openai", reason="the openai client is not installed (test extra)")

from helpers.models import make_random_model  # noqa: E402
from helpers.server import Server  # noqa: E402
from sse_np.serve.auth import BearerAuth  # noqa: E402

KEY_A, KEY_B = "sk-test-A-7f3e9c0d51", "sk-test-B-very-long-key-2b8e6a41c9d0"
ROUTES = [
    ("POST", "/v1/embeddings", {"input": "hi"}),
    ("POST", "/embeddings", {"input": "hi"}),
    ("POST", "/embed", {"inputs": "hi"}),
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/m", None),
    ("GET", "/metrics", None),
    ("GET", "/nowhere", None),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_random_model(tmp_path_factory.mktemp("auth") / "m", dim=16, seed=7)


def _assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in error["message"]


def _check(srv: Server, keys: list[str]) -> None:
    assert httpx.get(srv.url + "/health").status_code == 200  # probes need no key
    for method, path, body in ROUTES:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {keys[0]}"}):
            _assert_401(httpx.request(method, srv.url + path, json=body, headers=headers))
        for key in keys:
            resp = httpx.request(method, srv.url + path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert resp.status_code == (404 if path == "/nowhere" else 200), (path, resp.text)
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=keys[-1], max_retries=0)
    assert len(client.embeddings.create(input=["a", "b"], model="m").data) == 2
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.url + "/v1", api_key="nope", max_retries=0).embeddings.create(input="a", model="m")


def test_api_keys_from_the_command_line_and_never_logged(model, tmp_path) -> None:
    args = ["--model", str(model), "--api-key", KEY_A, "--api-key", KEY_B, "--log-level", "debug"]
    with Server(args, tmp_path) as srv:
        _check(srv, [KEY_A, KEY_B])
        # an authorised but malformed request too: still no key in the log
        httpx.post(srv.url + "/v1/embeddings", content=b"{", headers={"Authorization": f"Bearer {KEY_A}"})
    log = srv.log.read_text()
    assert KEY_A not in log and KEY_B not in log and "wrong" not in log, log


def test_api_keys_from_the_environment(model, tmp_path) -> None:
    with Server(["--model", str(model)], tmp_path, env={"SSE_NP_API_KEY": f"{KEY_A}, {KEY_B}"}) as srv:
        _check(srv, [KEY_A, KEY_B])


def test_no_key_means_no_check(model, tmp_path) -> None:
    with Server(["--model", str(model)], tmp_path) as srv:
        assert httpx.post(srv.url + "/v1/embeddings", json={"input": "hi"}).status_code == 200


def test_every_key_is_compared_in_constant_time(monkeypatch) -> None:
    """The check hashes the offered token and compares it with every key by hmac.compare_digest,
    the same number of comparisons whichever key (if any) matches: no early exit."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    auth = BearerAuth(lambda *a: None, [KEY_A, KEY_B, "third"])
    for header, expected in [
        (f"Bearer {KEY_A}".encode(), True),
        (f"Bearer {KEY_B}".encode(), True),
        (b"Bearer x", False),
        (b"Bearer " + KEY_A.encode() + b"x", False),
        (None, False),
    ]:
        calls.clear()
        assert auth.allowed(header) is expected
        assert len(calls) == 3
        assert all(len(a) == len(b) == 32 for a, b in calls)  # digests: the keys' lengths do not show
