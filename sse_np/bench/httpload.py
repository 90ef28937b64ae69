"""HTTP mode: load a running OpenAI-compatible embeddings server at concurrency 1, 8 and 64.

The load generator is stdlib asyncio: one keep-alive connection per
concurrent client, each posting ``/v1/embeddings`` with one short text and
waiting for the answer before the next; bounded by a request count and by
time. Where ``wrk`` is on the PATH it is used instead (a C client keeps up
with a fast server better than Python does). Traffic goes only to the URL
given.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .stats import percentile, summarize

ROUNDS = 3
REQUEST_TIMEOUT = 30.0


class Target:
    """The server: host, port and path prefix of ``--url``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"--url: expected http://HOST:PORT, got {url!r} (https is not supported)")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.path = self.prefix + "/v1/embeddings"


def model_name(target: Target, given: str | None) -> str:
    """``given``, else the first id of the server's ``GET /v1/models``, else "default"."""
    if given:
        return given
    try:
        with urllib.request.urlopen(target.url + "/v1/models", timeout=10) as resp:
            return str(json.load(resp)["data"][0]["id"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "default"


def _request(target: Target, body: bytes) -> bytes:
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def _client(target: Target, bodies: list[bytes], deadline: float, budget: list[int], out: dict) -> None:
    """One keep-alive connection posting until the deadline or until the shared request budget is spent."""
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    i = id(out) % len(bodies)
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        i = (i + 1) % len(bodies)
        t = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), REQUEST_TIMEOUT)
            conn[1].write(bodies[i])
            status, keep = await asyncio.wait_for(_response(conn[0]), REQUEST_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            out["errors"] += 1
            _close(conn)
            conn = None
            continue
        out["latencies"].append(time.perf_counter() - t)
        if not 200 <= status < 300:
            out["errors"] += 1
        if not keep:
            _close(conn)
            conn = None
    _close(conn)


def _close(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    if conn is not None:
        conn[1].close()


async def _round(target: Target, bodies: list[bytes], clients: int, seconds: float, requests: int) -> dict:
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    budget = [requests]
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(*(_client(target, bodies, deadline, budget, out) for _ in range(clients)))
    out["seconds"] = time.perf_counter() - t0
    return out


def _asyncio_level(target: Target, bodies: list[bytes], clients: int, seconds: float, requests: int) -> dict:
    rounds = [
        asyncio.run(_round(target, bodies, clients, seconds / ROUNDS, max(1, requests // ROUNDS)))
        for _ in range(ROUNDS)
    ]
    lat = sorted(x for r in rounds for x in r["latencies"])
    return {
        "concurrency": clients,
        "requests_per_s": summarize(len(r["latencies"]) / r["seconds"] for r in rounds),
        "p50_ms": percentile(lat, 50) * 1e3 if lat else None,
        "p99_ms": percentile(lat, 99) * 1e3 if lat else None,
        "requests": len(lat),
        "errors": sum(r["errors"] for r in rounds),
    }


_WRK_LUA = """
local bodies = {}
for line in io.lines(os.getenv("SSE_NP_BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "PATH", {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def _wrk_level(target: Target, payloads: list[str], clients: int, seconds: float) -> dict:
    """One concurrency level with wrk (one thread per 8 connections, at most the cores)."""
    threads = max(1, min(os.cpu_count() or 1, clients // 8 or 1))
    with tempfile.TemporaryDirectory() as tmp:
        script, bodies = Path(tmp) / "post.lua", Path(tmp) / "bodies.txt"
        script.write_text(_WRK_LUA.replace("PATH", target.path))
        bodies.write_text("\n".join(payloads) + "\n")
        runs = []
        for _ in range(ROUNDS):
            argv = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds / ROUNDS))}s", "--latency"]
            proc = subprocess.run(
                [*argv, "-s", str(script), target.url],
                capture_output=True,
                text=True,
                env=dict(os.environ, SSE_NP_BENCH_BODIES=str(bodies)),
                timeout=seconds + 60,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
            runs.append(_parse_wrk(proc.stdout))
    return {
        "concurrency": clients,
        "requests_per_s": summarize(r["rps"] for r in runs),
        "p50_ms": sorted(r["p50_ms"] for r in runs)[len(runs) // 2],
        "p99_ms": sorted(r["p99_ms"] for r in runs)[len(runs) // 2],
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _parse_wrk(out: str) -> dict[str, float]:
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }


def measure(opts: Any, short: list[str], step: Any) -> dict[str, Any]:
    """Every concurrency level of ``opts.concurrency`` against ``opts.url``."""
    target = Target(opts.url)
    name = model_name(target, opts.http_model)
    payloads = [json.dumps({"input": text, "model": name}) for text in short[:1000]]
    wrk = shutil.which("wrk") if opts.use_wrk else None
    seconds = opts.duration / len(opts.concurrency)
    levels = []
    for clients in opts.concurrency:
        if wrk:
            levels.append(_wrk_level(target, payloads, clients, seconds))
        else:
            bodies = [_request(target, p.encode()) for p in payloads]
            levels.append(_asyncio_level(target, bodies, clients, seconds, opts.max_requests))
        step(f"c={clients}")
    generator = "wrk" if wrk else "built-in asyncio keep-alive client"
    return {"url": target.url, "model": name, "generator": generator, "levels": levels}
