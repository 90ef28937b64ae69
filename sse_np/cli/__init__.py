"""Command-line interface: ``sse-np encode | eval | serve | info | download | warmup | quantize | bench``.

Also ``python -m sse_np``. Every subcommand is a thin wrapper over the
public API, in a module of its own imported only when the command runs
(:mod:`~sse_np.cli.parser` holds the arguments of all of them):

* ``encode``   -- texts (plain lines or JSONL, file or stdin, ``.gz`` too)
  to ``.npy`` or JSONL, streamed in chunks, written atomically;
* ``eval``     -- :func:`sse_np.eval.evaluate` on BEIR-layout folders,
  table on stdout, progress on stderr, optional JSON report and plot;
* ``serve``    -- :mod:`sse_np.serve`: the OpenAI-compatible embeddings server;
* ``info``     -- the model (layout, V, D, dtype, tokenizer) and the engine
  (back-end, numba, its cache folder, threads);
* ``download`` -- :func:`sse_np.download` from the Hugging Face hub;
* ``warmup``   -- load (compiling once) the numba kernels, e.g. while
  building a container image, so later processes start warm;
* ``quantize`` -- write a model in the 4-bit layout;
* ``bench``    -- :mod:`sse_np.bench`: speed on this machine (latency, throughput,
  threads, callers, memory), or of a running server (``--url``).

``--model`` defaults to :func:`sse_np.default_model` (the repository's
``weights/`` folder, the installed copy, or ``$SSE_NP_MODEL``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from ..progress import note
from .parser import PROG, build_parser

__all__ = ["PROG", "build_parser", "main"]


class _Notices(logging.Handler):
    """The library's one-line notices (e.g. that kernels compile, once) on stderr, as ``sse-np: ...``.

    Written through :func:`sse_np.progress.note`: on a line of their own,
    above any progress bar being drawn, never glued to its end.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note(self.format(record), sys.stderr)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _notices_shown() -> Iterator[None]:
    """Show the library's INFO notices while a command runs; leave the logger as it was after."""
    log = logging.getLogger("sse_np")
    handler = _Notices()
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    level = log.level
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with _notices_shown(), _terminations_unwind(args.command != "serve"):
        return _run(args)


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so partial outputs are removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _terminations_unwind(wanted: bool) -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`Terminated` (the server has its own handlers)."""
    import signal
    import threading

    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    before = {name: signal.signal(getattr(signal, name), _raise_terminated) for name in names}
    try:
        yield
    finally:
        for name, handler in before.items():
            signal.signal(getattr(signal, name), handler)


def _run(args: argparse.Namespace) -> int:
    """The command's exit status; the errors a user can fix are one line on stderr."""
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `sse-np encode ... -o - | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        _remove_partials()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        import signal

        _remove_partials()

        print(f"{PROG}: terminated ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except (ValueError, OSError, ImportError) as exc:
        # DataError, ModelLoadError (ValueError subclasses), missing files
        # and a missing optional extra: one clear line instead of a traceback.
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except RecursionError:  # Python's json on input nested too deeply, wherever it is read
        print(f"{PROG}: error: input nested too deeply to read (RecursionError)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _remove_partials() -> None:
    """A signal can land between an output's creation and the code that would abort it: remove what is left."""
    from ..bulk.writers import remove_partials

    remove_partials()
