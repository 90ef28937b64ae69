"""In CI (``CI=1``) a skipped test fails the run unless it is on :data:`ALLOWED`.

A skip hides a test: a broken torch install would otherwise skip the whole parity layer while
the run stays green. Only the skips that CI cannot avoid are listed, each with its reason.
``tests/conftest.py`` re-exports the hooks below; ``pytest -p helpers.skips`` loads them alone.
"""

from __future__ import annotations

import os
import re
from typing import Any

# (test id pattern, skip reason pattern): both must match (re.search).
ALLOWED: list[tuple[str, str]] = [
    # sse-np bench --url uses wrk when it is on the PATH (a Debian package, not a Python one); the built-in
    # client's tests run everywhere
    (r"^tests/bench/test_bench_http\.py::test_wrk_when_on_the_path", r"wrk is not installed"),
]

_unexpected: list[tuple[str, str]] = []


def active() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def allowed(nodeid: str, reason: str) -> bool:
    return any(re.search(node, nodeid) and re.search(why, reason) for node, why in ALLOWED)


def _record(report: Any) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if not allowed(report.nodeid, reason):
        _unexpected.append((report.nodeid, reason))


def pytest_runtest_logreport(report: Any) -> None:
    _record(report)


def pytest_collectreport(report: Any) -> None:
    _record(report)  # a module skipped at import (importorskip at module level)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if active() and _unexpected and session.exitstatus in (0, 5):  # 5: nothing else collected
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if active() and _unexpected:
        terminalreporter.section("skips not on the allow-list (tests/helpers/skips.py): the run fails")
        for nodeid, reason in _unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
