"""``python -m sse_np serve ...`` in a subprocess on 127.0.0.1, and raw sockets to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """The server in a subprocess (NumPy back-end: same bits, no compile), waited for on /health.

    The wait for start-up is bounded (60 s) so that a broken server fails the test instead of hanging it;
    nothing is asserted about how long anything takes.
    """

    def __init__(
        self, args: list[str], tmp: Path, env: dict[str, str] | None = None, health_host: str = "127.0.0.1"
    ) -> None:
        self.port = free_port()
        self.host = health_host
        self.url = f"http://{health_host}:{self.port}"
        full_env = dict(os.environ, SSE_NP_DISABLE_NUMBA="1", PYTHONUNBUFFERED="1")
        full_env.pop("SSE_NP_API_KEY", None)
        full_env.update(env or {})
        self.log = tmp / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sse_np", "serve", "--port", str(self.port), *args],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=full_env,
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

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port))
        sock.settimeout(120)  # a hang guard only: the events waited for come much sooner
        return sock

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_by_server(sock: socket.socket) -> bool:
    """Block until the server closes ``sock`` (EOF or reset): True; False if data came instead."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
            if b"HTTP/1.1" in data:
                return False
    except ConnectionResetError:
        return True


def still_open(sock: socket.socket) -> bool:
    """Whether ``sock`` is still open (no EOF, no reset), without waiting; what was sent to it is read."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return False  # EOF
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.setblocking(True)
        sock.settimeout(120)
