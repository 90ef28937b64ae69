"""CI fails on a skip that is not on the allow-list (tests/helpers/skips.py; issue 30 item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.paths import REPO
from helpers.skips import ALLOWED, allowed

TESTS = """
import pytest

def test_ok():
    pass

def test_skipped():
    pytest.skip("torch is broken")
"""


def _run(tmp_path: Path, ci: str | None, body: str = TESTS) -> subprocess.CompletedProcess:
    (tmp_path / "test_x.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO / "tests")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "helpers.skips", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )


def test_an_unexpected_skip_fails_in_ci(tmp_path) -> None:
    done = _run(tmp_path, "1")
    assert done.returncode == 1, done.stdout
    assert "skips not on the allow-list" in done.stdout and "torch is broken" in done.stdout


def test_a_module_skipped_at_import_fails_in_ci(tmp_path) -> None:
    done = _run(tmp_path, "1", 'import pytest\npytest.importorskip("no_such_module_xyz")\n')
    assert done.returncode == 1, done.stdout
    assert "no_such_module_xyz" in done.stdout


def test_outside_ci_a_skip_is_a_skip(tmp_path) -> None:
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout


def test_the_allow_list_is_narrow() -> None:
    wrk = "tests/bench/test_bench_http.py::test_wrk_when_on_the_path"
    assert allowed(wrk, "wrk is not installed (apt-get install wrk)")
    assert not allowed(wrk, "torch is broken")
    assert not allowed("tests/engine/test_parity.py::test_x", "wrk is not installed (apt-get install wrk)")
    assert len(ALLOWED) == 1
