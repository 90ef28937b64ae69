"""sse_np's one thread pool, and the rule that keeps it from oversubscribing the cores.

A parallel call is one *region*: ``work()`` runs on the calling thread and
on up to ``threads - 1`` helper threads at once, and returns when every
started copy returned. ``work`` takes its own items from a shared counter
(inside a nogil kernel, see :func:`sse_np.engine.intrinsics.fetch_add`), so
the region needs no Python per item, and uneven items still balance.

Helpers are taken from a budget of ``cores - 1`` for the whole process:
callers running at once (a server's threads, a Ray actor with concurrency)
split the cores between them instead of each starting ``threads`` of its
own. A caller always works on its own thread too, so it never waits for a
helper that has not started: when it runs out of items it cancels the
helpers still queued, and waits only for those already running. That also
makes a region inside a pool thread (a server's executor) safe: it cannot
deadlock on the pool.

There is no OpenMP/TBB layer: nothing spins, nothing breaks in a forked
child (the pool is recreated there), and a call that needs one thread never
wakes another.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["cores", "helpers_free", "pool", "run"]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_cores = _usable_cores()
_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_free = _cores - 1  # helper threads not lent to a region right now


def cores() -> int:
    """CPU cores this process may use (its affinity mask), read at import and after a fork."""
    return _cores


def helpers_free() -> int:
    """Helper threads no region holds now (for tests and diagnostics)."""
    return _free


def pool() -> ThreadPoolExecutor:
    """The process-wide pool (one worker per core), created on first use."""
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=_cores, thread_name_prefix="sse_np")
    return _executor


def _take(wanted: int) -> int:
    global _free
    with _lock:
        got = max(0, min(wanted, _free))
        _free -= got
    return got


def _give(count: int) -> None:
    global _free
    with _lock:
        _free += count


def run(work: Callable[[], None], threads: int, first: Callable[[], None] | None = None) -> None:
    """Run ``work()`` on this thread and on up to ``threads - 1`` helpers; return when all started copies return.

    ``work`` must be safe to call several times at once and must return once
    no work is left (it takes items from a shared counter). ``first``, if
    given, runs on this thread after the helpers are started and before its
    own ``work()``: it produces the work the helpers wait for. The first
    error raised by any copy is raised here, after every running copy has
    returned.
    """
    extra = _take(threads - 1) if threads > 1 else 0
    if extra == 0:
        if first is not None:
            first()
        work()
        return
    done = threading.Event()
    remaining = [extra]

    def helper() -> None:
        try:
            work()
        finally:
            _give(1)
            with _lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

    futures: list[Future] = [pool().submit(helper) for _ in range(extra)]
    try:
        if first is not None:
            first()
        work()
    finally:
        for f in futures:
            if f.cancel():  # still queued: no item is left for it
                _give(1)
                with _lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()
        done.wait()  # every running copy writes into the caller's arrays
    for f in futures:
        if not f.cancelled() and f.exception() is not None:
            raise f.exception()  # type: ignore[misc]


def _after_fork_in_child() -> None:
    # A forked child has none of the parent's worker threads and owes nothing to its regions.
    global _executor, _lock, _free, _cores
    _executor, _lock = None, threading.Lock()
    _cores = _usable_cores()
    _free = _cores - 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
