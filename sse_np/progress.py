"""One progress report for every long job (encode, the CLI, the evaluation).

On a terminal it is a tqdm bar (rate and ETA; tqdm comes with
huggingface_hub, which tokenizers requires). When stderr is a file or a
pipe, or tqdm is missing, it writes plain lines instead of redrawing one
with ``\\r``: at most one every ``interval`` seconds, plus the final one.

The bar starts at the first :meth:`Progress.update`, not when it is made:
a notice written before any work is done (numba compiling its kernels, say)
then gets a line of its own instead of landing after a bar stuck at 0%.
:func:`note` writes such a line at any time, above whatever bar is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any

_drawn: list[Progress] = []  # bars on a terminal now, innermost last
_drawn_lock = threading.Lock()


def note(message: str, stream: IO[str] | None = None) -> None:
    """``message`` on a line of its own on ``stream`` (stderr): above the bar drawn there, if any."""
    stream = stream or sys.stderr
    with _drawn_lock:
        bar = next((p._bar for p in reversed(_drawn) if p.stream is stream), None)
    if bar is not None:
        bar.write(message, file=stream)
        return
    stream.write(message + "\n")
    stream.flush()


class Progress:
    """Counts done out of ``total`` (None: unknown), reported on ``stream``.

    Parameters
    ----------
    total : int or None
    desc : str
        What is counted, e.g. "encoded".
    unit : str
    enabled : bool
    stream : text stream, default sys.stderr
    interval : float
        Seconds between plain lines (terminals redraw at tqdm's pace).

    Attributes
    ----------
    total_bytes, bytes_read : int or None, int
        Set by the readers of a streamed input (its size when known, the
        bytes read so far); :meth:`rows_done` reports them.
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        unit: str = "texts",
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.enabled = enabled
        self.n = 0
        self.postfix: str | None = None
        self.total_bytes: int | None = None
        self.bytes_read = 0
        self._bar: Any = None
        self._started = False
        self._closed = False
        self._start = self._last = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _begin(self) -> None:
        """Start reporting: the tqdm bar on a terminal (see the module notes on why not earlier)."""
        self._started = True
        self._start = self._last = time.perf_counter()
        if not (self.enabled and _isatty(self.stream)):
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(
            total=self.total,
            desc=self.desc,
            unit=f" {self.unit}",
            unit_scale=True,
            file=self.stream,
            mininterval=0.2,
            maxinterval=1.0,
            leave=True,
            **_size(self.stream),
        )
        with _drawn_lock:
            _drawn.append(self)

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int, postfix: str | None = None) -> None:
        """``n`` more done; ``postfix`` (e.g. "1,024 texts") is shown after the counts."""
        if not self._started:
            self._begin()
        self.n += n
        self.postfix = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def rows_done(self, rows: int) -> None:
        """Progress of a streamed input: ``rows`` written so far.

        Counted in bytes of the input when a reader set :attr:`total_bytes`
        (the rows then follow as a postfix), else in rows.
        """
        if not self._started and self.total_bytes:
            self.total, self.unit = self.total_bytes, "B"
        if self.unit == "B":
            self.update(self.bytes_read - self.n, f"{rows:,} texts")
        else:
            self.update(rows - self.n)

    def note(self, message: str) -> None:
        """A line of its own (e.g. that kernels compile), without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            note(message, self.stream)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        done = f"{self.n:,}" if self.total is None else f"{self.n:,}/{self.total:,}"
        line = f"{self.desc} {done} {self.unit}"
        if self.total:
            line += f" ({min(self.n / self.total, 1.0):.1%})"
        line += f", {rate:,.0f} {self.unit}/s, {elapsed:.1f} s"
        if self.total and rate > 0 and self.n < self.total:
            line += f", ETA {(self.total - self.n) / rate:.0f} s"
        if self.postfix:
            line += f", {self.postfix}"
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            with _drawn_lock:
                _drawn.remove(self)
            self._bar.close()
        elif self.enabled and self._started:
            self._line(time.perf_counter())


def _size(stream: IO[str]) -> dict[str, int]:
    """The terminal's size for tqdm; 80x24 where it says 0 (a new pseudo-terminal does, and tqdm
    would then draw nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return {"ncols": size.columns or 80, "nrows": size.lines or 24}
    except (AttributeError, OSError, ValueError):
        return {"ncols": 80, "nrows": 24}


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
