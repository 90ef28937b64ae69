"""Loading numba: whether it may be used, its cache folder, and forks while it loads.

Importing numba and loading cached kernels takes about half a second, so
the engine does it late and, by default, in a background thread. A fork
in the middle of that import would leave the child with a half-done one:
:data:`phase_lock` is held while numba is imported or kernels are loaded,
and a fork waits for it (``os.register_at_fork``). Every part of sse_np
that compiles kernels (the engine, ``sse_np.retrieval``'s search kernels)
loads numba through :func:`import_numba`.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 (see the fork hooks below)
import contextlib
import logging  # noqa: F401 (imported before the fork hooks are registered, see below)
import os
import threading
from collections.abc import Callable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..settings import numba_disabled

__all__ = ["numba_available", "numba_disabled_by_env", "numba_loading", "on_fork_in_child", "phase_lock"]

_numba_state = "unknown"  # "unknown" | "on" | "off"
#: Held while numba is imported or kernels are loaded; a fork waits for it.
phase_lock = threading.RLock()
_child_hooks: list[Callable[[], None]] = []


def numba_disabled_by_env() -> bool:
    """``SSE_NP_DISABLE_NUMBA`` is set to a true value (see :mod:`sse_np.settings`)."""
    return numba_disabled()


def numba_available() -> bool:
    """numba is installed and not switched off; cheap: does not import it."""
    global _numba_state
    if _numba_state == "unknown" and find_spec("numba") is None:  # a path search: remember the answer
        _numba_state = "off"
    return _numba_state != "off" and not numba_disabled_by_env()


@contextlib.contextmanager
def numba_loading() -> Iterator[Any]:
    """numba, set up as sse_np uses it, with the fork lock held for the block.

    numba's cache folder is settled first (a private temp folder on read-only
    installs), which ``@njit(cache=True)`` needs. Import modules of jitted
    kernels inside the block: a fork waits until it ends, so a child never
    inherits a half-done import. Raises ``ImportError`` when numba is missing.
    """
    global _numba_state
    with phase_lock:
        # Only the OpenMP layer would read this; we use none, but a user's
        # other numba code in this process is then as polite to our threads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import numba
        except ImportError:
            _numba_state = "off"
            raise
        from . import cache

        cache.ensure_cache_dir(numba)  # before the kernels' modules: @njit(cache=True) needs it
        _numba_state = "on"
        yield numba


def cache_folder() -> str:
    """numba's cache folder for sse_np (numba must be imported)."""
    import numba

    from . import cache

    return cache.ensure_cache_dir(numba)


def write_stamp(stamp: Path) -> None:
    """Mark kernels as compiled (see ``cache.stamp_path``); a missing stamp only costs a quick child compile."""
    try:
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("compiled\n")
        os.replace(tmp, stamp)
    except OSError:
        pass


def on_fork_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child, after the lock is released."""
    _child_hooks.append(hook)


def _before_fork() -> None:
    phase_lock.acquire()


def _after_fork_in_parent() -> None:
    phase_lock.release()


def _after_fork_in_child() -> None:
    phase_lock.release()
    for hook in list(_child_hooks):
        hook()


if hasattr(os, "register_at_fork"):
    # logging and concurrent.futures pair a before-fork hook with an after-fork
    # one; were one first imported by a warm-up thread while a fork waits in
    # our hook, only its second half would run. Both are imported above.
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
