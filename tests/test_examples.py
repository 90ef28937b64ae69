"""Tests of examples/lambda_handler.py: in-process calls and fresh subprocesses."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sse_np
from helpers.paths import REPO

HANDLER_FILE = REPO / "examples" / "lambda_handler.py"

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "naïve café — 東京 🙂",
    "SSE static embeddings on AWS Lambda",
]
ENV_KNOBS = ("SSE_NP_MODEL", "MAX_TEXTS", "MAX_VALUES", "SSE_NP_TRUNCATE_DIM")


def _default_model_present() -> bool:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SSE_NP_MODEL", raising=False)
        return (sse_np.default_model_path() / "model.safetensors").is_file()


pytestmark = pytest.mark.skipif(not _default_model_present(), reason="no default model in weights/")


@pytest.fixture(scope="module")
def lh():
    """The handler module, imported from its file with the default model and default limits."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_KNOBS:
            mp.delenv(name, raising=False)
        spec = importlib.util.spec_from_file_location("lambda_handler_example", HANDLER_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(lh) -> sse_np.SSEModel:
    """The handler's model, loaded again independently of the handler."""
    return sse_np.load(lh.MODEL.path)


def _vectors(response: dict) -> np.ndarray:
    return np.asarray(response["vectors"], dtype=np.float32)


def _meta(response: dict) -> dict:
    return {k: response[k] for k in ("model", "dim", "count")}


def _proxy(request, *, b64: bool = False, v2: bool = False) -> dict:
    body = json.dumps(request)
    if b64:
        body = base64.b64encode(body.encode("utf-8")).decode("ascii")
    if v2:  # HTTP API / Function URL (payload format 2.0)
        return {
            "version": "2.0",
            "rawPath": "/",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": body,
            "isBase64Encoded": b64,
        }
    return {
        "resource": "/embed",
        "path": "/embed",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"stage": "prod"},
        "body": body,
        "isBase64Encoded": b64,
    }


# ---------------------------------------------------------------------------
# direct invocation


@pytest.mark.parametrize("dim", [None, 256, 32, 7, 512])
def test_direct_vectors_equal_encode(lh, model, dim):
    request = {"texts": TEXTS} if dim is None else {"texts": TEXTS, "dim": dim}
    response = lh.handler(request, None)
    want_dim = model.get_embedding_dimension() if dim is None else dim  # the model's default: full width
    assert set(response) == {"model", "dim", "count", "vectors"}
    assert response["model"] == "sse_np-default"
    assert response["dim"] == want_dim and response["count"] == len(TEXTS)
    assert len(response["vectors"]) == len(TEXTS) and all(len(row) == want_dim for row in response["vectors"])
    assert all(type(x) is float for row in response["vectors"] for x in row)
    got = _vectors(response)
    want = model.encode(TEXTS, dim=want_dim)
    assert got.shape == (len(TEXTS), want_dim)
    np.testing.assert_array_equal(got, want)  # bit for bit, via Python floats
    np.testing.assert_allclose(np.linalg.norm(got.astype(np.float64), axis=1), 1.0, atol=1e-6)
    # ... and still bit for bit after a trip through JSON text, as a client sees it
    np.testing.assert_array_equal(_vectors(json.loads(json.dumps(response))), want)


def test_direct_order_preserved(lh):
    forward = _vectors(lh.handler({"texts": TEXTS, "dim": 64}, None))
    backward = _vectors(lh.handler({"texts": TEXTS[::-1], "dim": 64}, None))
    np.testing.assert_array_equal(backward, forward[::-1])
    assert len({row.tobytes() for row in forward}) == len(TEXTS)  # distinct texts, distinct rows


def test_direct_single_text_and_empty_list(lh, model):
    one = lh.handler({"text": TEXTS[1], "dim": 128}, None)
    assert one["count"] == 1 and one["dim"] == 128
    np.testing.assert_array_equal(_vectors(one), model.encode([TEXTS[1]], dim=128))
    assert lh.handler({"texts": []}, None) == {
        "model": "sse_np-default",
        "dim": model.get_embedding_dimension(),
        "count": 0,
        "vectors": [],
    }


def test_warm_invocations_reuse_the_model(lh):
    model = lh.MODEL
    lh.handler({"texts": ["a"]}, None)
    lh.handler({"texts": ["b"]}, None)
    assert lh.MODEL is model


# ---------------------------------------------------------------------------
# proxy events (API Gateway REST / HTTP API / Function URL)


@pytest.mark.parametrize("b64", [False, True], ids=["plain", "base64"])
@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_proxy_matches_direct(lh, b64, v2):
    request = {"texts": TEXTS, "dim": 64}
    direct = lh.handler(request, None)
    response = lh.handler(_proxy(request, b64=b64, v2=v2), None)
    assert response["statusCode"] == 200
    assert response["headers"] == {"Content-Type": "application/json"}
    assert isinstance(response["body"], str)
    body = json.loads(response["body"])
    assert _meta(body) == {"model": "sse_np-default", "dim": 64, "count": len(TEXTS)}
    np.testing.assert_array_equal(_vectors(body), _vectors(direct))


# ---------------------------------------------------------------------------
# bad requests

BAD_REQUESTS = [
    ({"texts": "hello"}, "texts is str, expected a list of str"),
    ({"texts": ["a", "b", "c", 3]}, "texts[3] is int, expected str"),
    ({"texts": ["a", None]}, "texts[1] is None, expected str"),
    ({"texts": [["nested"]]}, "texts[0] is list, expected str"),
    ({"text": 5}, "text is int, expected str"),
    ({"texts": ["a"], "dim": 1024}, "dim must be in 1..512"),
    ({"texts": ["a"], "dim": 0}, "dim must be in 1..512"),
    ({"texts": ["a"], "dim": "256"}, "dim is str"),
    ({"texts": ["a"], "dim": 32.0}, "dim is float"),
    ({"texts": ["a"], "dim": True}, "dim is bool"),
    ({}, "missing 'texts'"),
    ({"texts": ["a"], "dims": 32}, "unknown field 'dims'"),
    ({"texts": ["a"], "text": "b"}, "not both"),
    ({"texts": ["ok", "bad \ud800 surrogate"]}, "lone surrogate"),
    (["not", "an", "object"], "request must be a JSON object, got list"),
]


@pytest.mark.parametrize("request_, message", BAD_REQUESTS)
def test_bad_request_direct_and_proxy(lh, request_, message):
    direct = lh.handler(request_, None)
    assert list(direct) == ["error"] and message in direct["error"], direct
    response = lh.handler(_proxy(request_), None)
    assert response["statusCode"] == 400
    assert response["headers"] == {"Content-Type": "application/json"}
    assert json.loads(response["body"]) == direct


@pytest.mark.parametrize(
    "event, message",
    [
        ({"body": None, "requestContext": {}}, "empty request body"),
        ({"body": "{not json", "isBase64Encoded": False}, "body is not valid JSON"),
        ({"body": "%%%", "isBase64Encoded": True}, "not valid base64"),
        ({"body": base64.b64encode(b"\xff\xfe").decode(), "isBase64Encoded": True}, "not valid UTF-8"),
    ],
)
def test_bad_proxy_body(lh, event, message):
    response = lh.handler(event, None)
    assert response["statusCode"] == 400
    assert message in json.loads(response["body"])["error"]


def test_limits(lh, monkeypatch):
    monkeypatch.setattr(lh, "MAX_TEXTS", 3)
    error = lh.handler({"texts": ["a"] * 4}, None)["error"]
    assert "4 > MAX_TEXTS=3" in error
    assert lh.handler({"texts": ["a"] * 3, "dim": 32}, None)["count"] == 3
    monkeypatch.setattr(lh, "MAX_VALUES", 100)
    error = lh.handler({"texts": ["a"] * 3, "dim": 64}, None)["error"]
    assert "3 texts x dim 64 = 192 values > MAX_VALUES=100" in error
    assert lh.handler({"texts": ["a"] * 3, "dim": 32}, None)["count"] == 3


def test_internal_errors_raise_direct_and_give_500_proxy(lh, monkeypatch):
    def broken(texts, dim):
        raise RuntimeError("boom")

    monkeypatch.setattr(lh, "_embed", broken)
    with pytest.raises(RuntimeError, match="boom"):
        lh.handler({"texts": ["a"]}, None)
    response = lh.handler(_proxy({"texts": ["a"]}), None)
    assert response["statusCode"] == 500 and json.loads(response["body"]) == {"error": "internal error"}


# ---------------------------------------------------------------------------
# as a script in a fresh interpreter


def _run_script(args: list[str], cwd: Path, stdin: str | None = None, **env_extra: str):
    env = {k: v for k, v in os.environ.items() if k not in ENV_KNOBS}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, str(HANDLER_FILE), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("numba", ["default", "disabled"])
def test_subprocess_matches_in_process(lh, tmp_path, numba):
    event = {"texts": TEXTS, "dim": 32}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if numba == "disabled":  # event from a file argument, NumPy back-end
        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        proc = _run_script([str(event_file)], cwd, SSE_NP_DISABLE_NUMBA="1")
    else:  # event on stdin, numba back-end (unless numba is missing)
        proc = _run_script([], cwd, stdin=json.dumps(event))
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    assert _meta(response) == {"model": "sse_np-default", "dim": 32, "count": len(TEXTS)}
    # both back-ends give the in-process vectors bit for bit
    np.testing.assert_array_equal(_vectors(response), _vectors(lh.handler(event, None)))
    assert list(cwd.iterdir()) == []  # nothing written to the working directory


def test_subprocess_errors_exit_1(tmp_path):
    event = {"texts": ["a", "b", "c"]}
    proc = _run_script([], tmp_path, stdin=json.dumps(event), SSE_NP_DISABLE_NUMBA="1", MAX_TEXTS="2")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout) == {"error": "too many texts: 3 > MAX_TEXTS=2; split the request"}
    proxy = _run_script([], tmp_path, stdin=json.dumps(_proxy({"texts": [1]})), SSE_NP_DISABLE_NUMBA="1")
    assert proxy.returncode == 1
    response = json.loads(proxy.stdout)
    assert response["statusCode"] == 400 and json.loads(response["body"]) == {"error": "texts[0] is int, expected str"}


# ---------------------------------------------------------------------------
# client mistakes that Python's json reports as RecursionError / ValueError


@pytest.mark.parametrize("b64", [False, True])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"texts": ' + "[" * 100_000 + "]" * 100_000 + "}", "body is not valid JSON: nested too deeply"),
        ('{"texts": ["a"], "dim": ' + "1" * 5000 + "}", "body is not valid JSON: Exceeds the limit"),
        ("[" * 100_000, "body is not valid JSON: nested too deeply"),
    ],
    ids=["deep", "long-int", "deep-unclosed"],
)
def test_client_json_mistakes_are_400(lh, body, message, b64):
    event = {
        "body": base64.b64encode(body.encode()).decode() if b64 else body,
        "isBase64Encoded": b64,
        "requestContext": {},
    }
    response = lh.handler(event, None)
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"])["error"].startswith(message)


def test_local_runner_bad_events(tmp_path):
    missing = _run_script(["missing.json"], tmp_path, SSE_NP_DISABLE_NUMBA="1")
    assert missing.returncode == 1 and missing.stdout == ""
    assert (
        missing.stderr == "lambda_handler.py: error: cannot read event file missing.json: No such file or directory\n"
    )
    folder = _run_script([str(tmp_path)], tmp_path, SSE_NP_DISABLE_NUMBA="1")
    assert folder.returncode == 1 and folder.stderr.count("\n") == 1 and "Is a directory" in folder.stderr
    deep = _run_script([], tmp_path, stdin='{"texts": ' + "[" * 100_000, SSE_NP_DISABLE_NUMBA="1")
    assert deep.returncode == 1 and "Traceback" not in deep.stderr
    assert json.loads(deep.stdout) == {"error": "event is not valid JSON: nested too deeply"}
    long_int = _run_script([], tmp_path, stdin='{"texts": [], "dim": ' + "7" * 5000 + "}", SSE_NP_DISABLE_NUMBA="1")
    assert long_int.returncode == 1 and "Traceback" not in long_int.stderr
    assert json.loads(long_int.stdout)["error"].startswith("event is not valid JSON: Exceeds the limit")
