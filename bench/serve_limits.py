"""5,000 idle and slowloris connections against ``sse-np serve``: does ``/health`` still answer, and
are the connections closed at ``--client-timeout``? Against the same app on stock uvicorn (the peer).

Usage (repository root, the serve extra installed)::

    flock /tmp/sse_np_bench.lock python bench/serve_limits.py            # ~1 minute
    python bench/serve_limits.py --render                                 # rewrite the markdown

Per server: open 2,500 connections that send nothing and 2,500 that send half a request head and
then one more header byte a second (slowloris); while all are held, time 50 ``GET /health`` on new
connections (connect to last byte, one at a time, 20 ms apart); then wait up to 3x the timeout
for the server to close the held connections and record when each closed (from its opening).
``sse-np serve`` runs with ``--client-timeout 5 --max-connections 6000`` (so that the timeout, not
the cap's eviction, closes them); the peer is ``app_from`` on ``uvicorn.run(..., timeout_keep_alive=5)``.
Writes bench/results/serve_limits.json and SERVE_LIMITS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TIMEOUT = 5.0
N_IDLE = N_SLOW = 2500

PEER = (
    "import sys, uvicorn; from sse_np.serve.application import app_from; from sse_np.serve import ServeConfig; "
    "uvicorn.run(app_from(ServeConfig()), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning', "
    f"timeout_keep_alive={TIMEOUT})"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _health(port: int) -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    return time.perf_counter() - start


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            _health(port)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def measure(name: str, argv: list[str], port: int) -> dict:
    env = dict(os.environ, SSE_NP_DISABLE_NUMBA="1")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_up(port, proc)
        held, opened, slow = [], {}, set()
        for i in range(N_IDLE + N_SLOW):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            if i % 2:
                sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.add(sock)
            held.append(sock)
            opened[sock] = time.perf_counter()
        latencies = []
        for _ in range(50):
            latencies.append(_health(port))
            time.sleep(0.02)
        sel = selectors.DefaultSelector()
        for sock in held:
            sel.register(sock, selectors.EVENT_READ)
        closed_after: list[float] = []
        end = time.perf_counter() + 3 * TIMEOUT
        next_trickle = time.perf_counter() + 1
        while len(closed_after) < len(held) and time.perf_counter() < end:
            for key, _ in sel.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError) as exc:
                    data = b"" if isinstance(exc, ConnectionResetError) else b"x"
                if not data:
                    closed_after.append(time.perf_counter() - opened[sock])
                    sel.unregister(sock)
                    slow.discard(sock)
            if time.perf_counter() >= next_trickle:  # slowloris: one more byte a second
                next_trickle += 1
                for sock in list(slow):
                    try:
                        sock.send(b"a")
                    except OSError:
                        slow.discard(sock)
        for sock in held:
            sock.close()
        ms = np.array(latencies) * 1000
        return {
            "server": name,
            "held": len(held),
            "health_ms_p50": round(float(np.percentile(ms, 50)), 2),
            "health_ms_p99": round(float(np.percentile(ms, 99)), 2),
            "health_ms_max": round(float(ms.max()), 2),
            "closed": len(closed_after),
            "closed_by_s_max": round(max(closed_after), 2) if closed_after else None,
            "waited_s": 3 * TIMEOUT,
        }
    finally:
        proc.terminate()
        proc.wait(60)


def render(data: dict) -> str:
    lines = [
        "## Idle and slowloris connections (`bench/serve_limits.py`)",
        "",
        f"{data['held']} connections held ({N_IDLE} idle, {N_SLOW} slowloris), client timeout {TIMEOUT} s; "
        f"{data['machine']}, {data['date']}. `/health` timed on new connections while they are held.",
        "",
        "| server | /health p50 ms | p99 ms | max ms | held connections closed | last closed after s |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        last = "-" if r["closed_by_s_max"] is None else r["closed_by_s_max"]
        lines.append(
            f"| {r['server']} | {r['health_ms_p50']} | {r['health_ms_p99']} | {r['health_ms_max']} | "
            f"{r['closed']} of {r['held']} (waited {r['waited_s']} s) | {last} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    out = RESULTS / "serve_limits.json"
    if not args.render:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
        port_a, port_b = _free_port(), _free_port()
        ours = [sys.executable, "-m", "sse_np", "serve", "--port", str(port_a), "--log-level", "warning"]
        ours += ["--client-timeout", str(TIMEOUT), "--max-connections", "6000"]
        rows = [
            measure("sse-np serve", ours, port_a),
            measure("stock uvicorn (peer)", [sys.executable, "-c", PEER, str(port_b)], port_b),
        ]
        data = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
            "held": N_IDLE + N_SLOW,
            "rows": rows,
        }
        out.write_text(json.dumps(data, indent=1) + "\n")
    data = json.loads(out.read_text())
    (RESULTS / "SERVE_LIMITS.md").write_text(render(data))
    print(render(data))


if __name__ == "__main__":
    main()
