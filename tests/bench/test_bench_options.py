"""``sse-np bench`` options that need no server and no timed workloads: ``--no-wrk``, ``--progress``,
``--no-progress``.

Each run is ``--url`` pointed at a closed port on 127.0.0.1: the built-in client counts refused
connections as errors, at most ``--max-requests`` of them, so a run takes a fraction of a second.
A stand-in ``wrk`` on the PATH shows which load generator ran.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from helpers.serve_process import free_port
from sse_np.cli import main

# What wrk prints (the shape sse_np.bench.httpload._parse_wrk reads).
WRK_OUTPUT = """Running 1s test @ URL
  Latency Distribution
     50%    2.03ms
     99%   12.79ms
  10 requests in 1.00s, 1.20KB read
Requests/sec:     10.00
"""


@pytest.fixture
def fake_wrk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``wrk`` first on the PATH that logs each call and prints a fixed report; returns the log."""
    folder, log = tmp_path / "bin", tmp_path / "wrk.log"
    folder.mkdir()
    script = folder / "wrk"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> '{log}'\ncat <<'EOF'\n{WRK_OUTPUT}EOF\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def _bench(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "run.json"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = ["bench", "--url", url, "--duration", "0.3", "--concurrency", "1,2", "--max-requests", "6"]
    assert main([*args, "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())["http"]


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in wrk is a shell script")
def test_no_wrk_keeps_the_built_in_client(fake_wrk, tmp_path) -> None:
    used = _bench(tmp_path)
    assert used["generator"] == "wrk" and [lv["requests"] for lv in used["levels"]] == [30, 30]  # 3 rounds of 10
    assert len(fake_wrk.read_text().splitlines()) == 6  # 3 rounds x 2 levels
    fake_wrk.unlink()
    built_in = _bench(tmp_path, "--no-wrk")
    assert built_in["generator"] == "built-in asyncio keep-alive client"
    assert not fake_wrk.exists()  # wrk never ran
    assert all(lv["requests"] == 0 and 0 < lv["errors"] <= 6 for lv in built_in["levels"])  # the closed port


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal: progress is then on by default."""

    def isatty(self) -> bool:
        return True


def test_progress_options_override_the_terminal(tmp_path, monkeypatch, capsys) -> None:
    _bench(tmp_path, "--no-wrk", "--progress")  # stderr is captured: not a terminal
    err = capsys.readouterr().err
    assert "bench 2/2 steps (100.0%)" in err and "c=2" in err
    _bench(tmp_path, "--no-wrk")
    assert capsys.readouterr().err == ""  # the default off a terminal: silent
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _bench(tmp_path, "--no-wrk")
    assert "bench" in terminal.getvalue()  # the default on a terminal: a bar
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _bench(tmp_path, "--no-wrk", "--no-progress")
    assert terminal.getvalue() == ""
