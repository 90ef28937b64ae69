"""The in-process workloads of ``sse-np bench``; each returns medians of repeated runs with their spread.

All rates are texts per second of one process. The threads sweep and the
forked-process ceiling follow ``bench/scaling.py`` of the repository: the
ceiling is ``N`` processes of one thread each (forked after loading, so they
share the memory-mapped table), each encoding 1/N of the same texts, which
is what ``N`` threads could reach if nothing were shared.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from typing import Any

from ..engine import parallel
from .stats import Summary, percentile, rate, summarize

# A call the sweep times should last about this long at full speed, so that waking the helper threads
# (or releasing the forked processes) is a small part of it; the texts are repeated to reach it.
MIN_CALL_SECONDS = 0.05
# A forked process that has not answered in this long has died (its call lasts about MIN_CALL_SECONDS).
_CHILD_TIMEOUT = 120.0


def thread_counts(cores: int) -> list[int]:
    """1, 2, 4, ... up to ``cores``, and ``cores`` itself."""
    counts = [1]
    while counts[-1] * 2 <= cores:
        counts.append(counts[-1] * 2)
    return counts if counts[-1] == cores else [*counts, cores]


def caller_counts(cores: int) -> list[int]:
    """Concurrent callers: 1, 2, 4, ... up to twice the cores (at least 4), as a server's threads would be."""
    counts = [1]
    while counts[-1] * 2 <= max(4, 2 * cores):
        counts.append(counts[-1] * 2)
    return counts


def sized(texts: list[str], seconds_at_one_thread: float, threads: int) -> list[str]:
    """``texts`` repeated so that one call on ``threads`` threads lasts about MIN_CALL_SECONDS."""
    if seconds_at_one_thread <= 0:
        return texts
    times = max(1, round(MIN_CALL_SECONDS * threads / seconds_at_one_thread))
    return texts * times


def one_call_seconds(model: Any, texts: list[str], dim: int) -> float:
    """Seconds of one warm call on one thread (the second of two calls)."""
    saved = model.threads
    model.threads = 1
    try:
        model.encode(texts, dim)
        t = time.perf_counter()
        model.encode(texts, dim)
        return time.perf_counter() - t
    finally:
        model.threads = saved


def latency(model: Any, short: list[str], dim: int, seconds: float, repeats: int) -> dict[str, Any]:
    """One short text per call: percentiles (µs) per round, and the texts/s of those calls (calls of 1)."""
    rounds: list[list[float]] = []
    per_round = seconds / repeats
    i = 0
    for _ in range(repeats):
        times = []
        end = time.perf_counter() + per_round
        while True:
            text = short[i % len(short)]
            i += 1
            t = time.perf_counter()
            model.encode(text, dim)
            done = time.perf_counter()
            times.append(done - t)
            if done >= end:
                break
        rounds.append(sorted(times))
    out: dict[str, Any] = {}
    for q in (50, 90, 99, 99.9):
        out[f"p{q:g}_us"] = summarize(percentile(r, q) * 1e6 for r in rounds)
    out["calls_per_round"] = summarize(len(r) for r in rounds)
    out["texts_per_s"] = summarize(len(r) / sum(r) for r in rounds)
    return out


def calls_of(model: Any, short: list[str], size: int, dim: int, seconds: float, repeats: int) -> Summary:
    """Texts/s of calls of ``size`` short texts, one caller, default threads."""
    pool = short * (-(-size * 4 // len(short)))  # at least 4 distinct calls
    batches = [pool[i : i + size] for i in range(0, len(pool) - size + 1, size)]

    def run() -> None:
        for batch in batches:
            model.encode(batch, dim)

    return rate(run, size * len(batches), seconds, repeats)


def one_call(model: Any, texts: list[str], dim: int, seconds: float, repeats: int) -> Summary:
    """Texts/s of ``texts`` in one call."""
    return rate(lambda: model.encode(texts, dim), len(texts), seconds, repeats)


def callers(model: Any, short: list[str], count: int, dim: int, seconds: float, repeats: int) -> Summary:
    """Texts/s of ``count`` Python threads, each making calls of 32 short texts."""
    batches = [short[i : i + 32] for i in range(0, len(short) - 31, 32)] or [short[:32]]
    while len(batches) < 4 * count:
        batches += batches
    parts = [batches[k::count] for k in range(count)]

    def work(part: list[list[str]]) -> None:
        for batch in part:
            model.encode(batch, dim)

    def run() -> None:
        threads = [threading.Thread(target=work, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return rate(run, sum(map(len, batches)), seconds, repeats)


def fork_available() -> bool:
    return "fork" in mp.get_all_start_methods()


def ceiling(model: Any, texts: list[str], dim: int, procs: int, repeats: int) -> Summary:
    """Texts/s of ``procs`` forked processes of one thread, each encoding 1/procs of ``texts`` in one call."""
    ctx = mp.get_context("fork")
    rates = []
    for _ in range(repeats):
        start = ctx.Barrier(procs + 1)
        done: Any = ctx.Queue()
        kids = [ctx.Process(target=_child, args=(model, texts[i::procs], dim, start, done)) for i in range(procs)]
        for k in kids:
            k.start()
        try:
            start.wait(timeout=60)
            t0 = time.perf_counter()
            ends = [done.get(timeout=_CHILD_TIMEOUT) for _ in kids]
        finally:
            for k in kids:
                k.join(timeout=60)
        if any(e is None for e in ends):
            raise RuntimeError("a forked benchmark process failed")
        rates.append(len(texts) / (max(ends) - t0))
    return summarize(rates)


def _child(model: Any, part: list[str], dim: int, start: Any, done: Any) -> None:
    """One ceiling process: wait for the others, encode its share on one thread, report when it ended."""
    try:
        model.threads = 1
        model.encode(part[:8], dim)  # its pool and caches are new after the fork
        start.wait(timeout=60)
        model.encode(part, dim)
        done.put(time.perf_counter())
    except BaseException:
        done.put(None)
        raise


def sweep(
    model: Any,
    texts: dict[str, tuple[list[str], float]],
    dim: int,
    seconds: float,
    repeats: int,
    step: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Threads 1, 2, 4, ... cores: each kind of ``texts`` (name: (texts, seconds of one call on one thread))
    in one call, against its ceiling. Each row repeats the texts for its own thread count, so that a row's
    call lasts about MIN_CALL_SECONDS whatever the cores (the time of the run does not grow with them)."""
    saved = model.threads
    rows = []
    counts = thread_counts(parallel.cores())
    share = seconds / (len(counts) * len(texts))
    forking = fork_available()
    try:
        for t in counts:
            model.threads = t
            row: dict[str, Any] = {"threads": t}
            for key, (sample, once) in texts.items():
                items = sized(sample, once, t)
                row[f"{key}_texts"] = len(items)
                row[f"{key}_per_s"] = one_call(model, items, dim, share, repeats)
                if forking:
                    row[f"ceiling_{key}_per_s"] = ceiling(model, items, dim, t, max(3, repeats // 2))
                    row[f"ratio_{key}"] = row[f"{key}_per_s"]["median"] / row[f"ceiling_{key}_per_s"]["median"]
            rows.append(row)
            step(f"threads={t}")
    finally:
        model.threads = saved
    return rows
