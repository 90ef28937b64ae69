"""One progress report for every long job (encode, the CLI, the evaluation).

On a terminal it is a tqdm bar (rate and ETA; tqdm comes with
huggingface_hub, which tokenizers requires). When stderr is a file or a
pipe, or tqdm is missing, it writes plain lines instead of redrawing one
with ``\\r``: at most one every ``interval`` seconds, plus the final one.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO


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
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
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
        self._bar = None
        self._start = self._last = time.perf_counter()
        self._closed = False
        if enabled and _isatty(self.stream):
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total,
                    desc=desc,
                    unit=f" {unit}",
                    unit_scale=True,
                    file=self.stream,
                    mininterval=0.2,
                    maxinterval=1.0,
                    leave=True,
                    **_size(self.stream),
                )
            except ImportError:
                pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, n: int, postfix: str | None = None) -> None:
        """``n`` more done; ``postfix`` (e.g. "1,024 texts") is shown after the counts."""
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

    def note(self, message: str) -> None:
        """A line of its own (e.g. that kernels compile), without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()

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
            self._bar.close()
        elif self.enabled:
            self._line(time.perf_counter())


def _size(stream) -> dict:
    """The terminal's size for tqdm; 80x24 where it says 0 (a new pseudo-terminal does, and tqdm
    would then draw nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return {"ncols": size.columns or 80, "nrows": size.lines or 24}
    except (AttributeError, OSError, ValueError):
        return {"ncols": 80, "nrows": 24}


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
