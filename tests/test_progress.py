"""One progress report: on a terminal a notice never lands glued to a bar, before it starts or while it is drawn."""

from __future__ import annotations

import io
import logging
import re

import pytest

from sse_np.cli import _notices_shown
from sse_np.progress import Progress

pytest.importorskip("tqdm")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (tqdm then draws its bar on it)."""

    def isatty(self) -> bool:
        return True


def _screen_lines(text: str) -> list[str]:
    """What a terminal shows as separate lines: ``\\n`` ends a line, ``\\r`` starts it over."""
    return [part.strip() for part in re.split(r"[\r\n]", text) if part.strip()]


def test_a_notice_before_any_progress_comes_first_on_its_own_line() -> None:
    term = Terminal()
    with Progress(10, "encoded", stream=term) as bar:
        bar.note("compiling kernels for this machine (one time, ~5 s)")
        bar.update(10)
    out = term.getvalue()
    assert out.startswith("compiling kernels for this machine (one time, ~5 s)\n"), out
    assert "encoded: 100%" in out


def test_nothing_is_drawn_before_the_first_update() -> None:
    term = Terminal()
    bar = Progress(10, "encoded", stream=term)
    assert term.getvalue() == ""
    bar.update(1)
    assert "encoded" in term.getvalue()
    bar.close()


def test_the_cli_notice_goes_above_a_drawn_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library notice (logged by the engine, from any thread) while a bar is drawn: a line of its own."""
    term = Terminal()
    monkeypatch.setattr("sys.stderr", term)
    with _notices_shown(), Progress(10, "encoded") as bar:
        bar.update(3)
        logging.getLogger("sse_np").info("compiling kernels for this machine (one time, ~5 s)")
        bar.update(7)
    assert "sse-np: compiling kernels for this machine (one time, ~5 s)" in _screen_lines(term.getvalue())


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(4, "encoded", stream=stream, interval=0.0) as bar:
        bar.note("a notice")
        bar.update(2)
        bar.update(2)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "a notice" and lines[-1].startswith("encoded 4/4 texts (100.0%)")
    assert "\r" not in stream.getvalue()


def test_rows_done_counts_bytes_of_a_sized_input() -> None:
    stream = io.StringIO()
    progress = Progress(desc="encode", stream=stream, interval=0.0)
    progress.total_bytes, progress.bytes_read = 1000, 250
    progress.rows_done(10)
    progress.bytes_read = 1000
    progress.rows_done(40)
    progress.close()
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("encode 1,000/1,000 B (100.0%)") and last.endswith("40 texts"), last
