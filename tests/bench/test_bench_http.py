"""``sse-np bench --url``: the built-in load generator against a real ``sse-np serve`` on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers.models import make_random_model
from helpers.serve_process import ServeProcess, free_port
from sse_np.bench.httpload import Target, _parse_wrk
from sse_np.bench.report import compare
from sse_np.cli import main

pytest.importorskip("uvicorn", reason="the 'serve' extra is not installed")
pytest.importorskip("starlette", reason="the 'serve' extra is not installed")

FAST = ["--duration", "1.5", "--concurrency", "1,4", "--no-wrk"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = make_random_model(tmp_path_factory.mktemp("http") / "m", dim=16, seed=21)
    srv = ServeProcess(["--model", f"small={model}", "--strict-model"], tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


def test_measures_a_running_server(server, tmp_path, capsys) -> None:
    out = tmp_path / "http.json"
    assert main(["bench", "--url", server.url, *FAST, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    http = res["http"]
    assert http["url"] == server.url and http["model"] == "small"  # named by the server's /v1/models
    assert http["generator"] == "built-in asyncio keep-alive client"
    assert [lv["concurrency"] for lv in http["levels"]] == [1, 4]
    for level in http["levels"]:
        assert level["errors"] == 0 and level["requests"] > 0
        assert level["requests_per_s"]["n"] == 3 and level["requests_per_s"]["median"] > 0
        assert 0 < level["p50_ms"] <= level["p99_ms"]
    assert res["machine"]["cores_usable"] >= 1 and res["model"] is None
    printed = capsys.readouterr().out
    assert f"HTTP {server.url}" in printed and "req/s" in printed
    same = compare(res, res)["rows"]
    assert [r["figure"] for r in same] == ["HTTP c=1 req/s", "HTTP c=4 req/s"] and not any(r["flag"] for r in same)


def test_bounded_in_requests_and_counts_errors(server, tmp_path) -> None:
    """A model name the server refuses (404 with --strict-model): every answer is an error, none is lost."""
    out = tmp_path / "err.json"
    args = ["bench", "--url", server.url, "--http-model", "nope", *FAST, "--max-requests", "30", "--json", str(out)]
    assert main(args) == 0
    for level in json.loads(out.read_text())["http"]["levels"]:
        assert level["requests"] == level["errors"] <= 30 and level["errors"] > 0


def test_nothing_listening_is_errors_not_a_hang(tmp_path) -> None:
    out = tmp_path / "down.json"
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["bench", "--url", url, *FAST, "--max-requests", "12", "--json", str(out)]) == 0
    levels = json.loads(out.read_text())["http"]["levels"]
    assert all(lv["requests"] == 0 and 0 < lv["errors"] <= 12 for lv in levels)


def test_only_plain_http_urls(capsys) -> None:
    assert main(["bench", "--url", "https://example.invalid"]) == 1
    assert "expected http://HOST:PORT" in capsys.readouterr().err
    assert Target("http://127.0.0.1:8080/prefix/").path == "/prefix/v1/embeddings"


def test_wrk_output_is_read() -> None:
    sample = """Running 2s test @ http://127.0.0.1:8080
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.20ms  20.00ms   90.00%
  Latency Distribution
     50%    2.03ms
     75%    2.50ms
     90%    3.00ms
     99%   12.79ms
  6394 requests in 2.00s, 1.20MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3197.00
Transfer/sec:    600.00KB
"""
    assert _parse_wrk(sample) == {"rps": 3197.0, "p50_ms": 2.03, "p99_ms": 12.79, "requests": 6394, "errors": 7}


def test_wrk_when_on_the_path(server, tmp_path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    out = tmp_path / "wrk.json"
    args = ["bench", "--url", server.url, "--duration", "1.5", "--concurrency", "1,4", "--json", str(out)]
    assert main(args) == 0
    http = json.loads(out.read_text())["http"]
    assert http["generator"] == "wrk" and [lv["concurrency"] for lv in http["levels"]] == [1, 4]
    assert all(lv["errors"] == 0 and lv["requests"] > 0 and lv["requests_per_s"]["n"] == 3 for lv in http["levels"])
