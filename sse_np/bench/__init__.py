"""``sse-np bench``: what sse_np does on this machine, from any install (wheel, editable, without numba).

One command, honest numbers, the machine named (after ``redis-benchmark``
and ``openssl speed``). :func:`run` measures, in one process, on the user's
model and either the built-in texts or the user's file:

* single-text latency, p50/p90/p99/p99.9;
* calls of 1, 32 and 1,024 short texts;
* documents in one call;
* a sweep of threads 1, 2, 4, ... up to the cores, each row against the
  forked-process ceiling (that many processes of one thread);
* concurrent callers (Python threads each making calls of 32);
* peak memory;
* optionally the same model in sentence-transformers / model2vec, checked
  to give the same vectors, timed interleaved (:mod:`.peers`).

:func:`run_http` measures a running OpenAI-compatible server instead
(:mod:`.httpload`). Every figure is the median of repeated runs with its
min and max; ``--duration`` bounds the time the workloads share.

The repository's ``bench/`` (peers, plots, RESULTS.md) is for the
project's own work and may import this package; never the reverse.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__

SCHEMA = "sse_np.bench/1"
CALL_SIZES = (1, 32, 1024)
# Shares of --duration (seconds) for each workload.
WEIGHTS = {"latency": 0.12, "calls": 0.18, "documents": 0.07, "sweep": 0.38, "callers": 0.25}

__all__ = ["SCHEMA", "Options", "run", "run_http"]


@dataclass
class Options:
    """What ``sse-np bench`` was asked for (see ``sse-np bench --help``)."""

    model: str | None = None
    data: str | None = None
    dim: int | None = None
    duration: float = 40.0
    repeats: int = 5
    threads: int | None = None
    backend: str | None = None
    peers: list[str] = field(default_factory=list)
    url: str | None = None
    http_model: str | None = None
    concurrency: tuple[int, ...] = (1, 8, 64)
    max_requests: int = 100_000
    use_wrk: bool = True


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run(opts: Options, progress: Any) -> dict[str, Any]:
    """Run every in-process workload; the JSON-ready result (``progress``: a :class:`sse_np.progress.Progress`)."""
    from ..model import load
    from . import machine, texts, workloads

    started, t0 = _now(), time.perf_counter()
    if opts.peers:
        from .peers import check

        check(opts.peers)
    sample = texts.load(opts.data)
    model = _load_model(opts, load)
    backend = model.warmup()
    rss_loaded = machine.rss_mib()  # the model ready to encode: numba's kernels loaded too
    dim = opts.dim or model.truncate_dim or model.dim
    cores = workloads.parallel.cores()
    steps = len(CALL_SIZES) + len(workloads.thread_counts(cores)) + len(workloads.caller_counts(cores))
    progress.set_total(2 + steps + len(opts.peers))

    def step(label: str) -> None:
        progress.update(1, label)

    step("loaded")
    peak_reset = machine.reset_peak()
    out = _workloads(model, sample, dim, opts, step)
    out["memory"] = {
        "table_MiB": round(model.table.nbytes / (1 << 20), 1),
        "rss_after_load_MiB": rss_loaded,
        # Linux: the peak while the workloads ran; elsewhere the process's peak, loading (and compiling) included.
        "peak_rss_MiB": machine.rss_mib("VmHWM") if peak_reset else machine.peak_rss_mib(),
        "peak_counts_loading": not peak_reset,
    }
    result = _envelope(opts, started, machine.machine(), machine.model_facts(model, backend), sample.describe())
    result.update(dim=dim, workloads=out)
    if opts.peers:
        from .peers import compare_peers

        seconds = opts.duration * WEIGHTS["documents"] * 2
        result["peers"] = compare_peers(model, opts.peers, sample, dim, seconds, opts.repeats, step)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return result


def _workloads(model: Any, sample: Any, dim: int, opts: Options, step: Callable[[str], None]) -> dict[str, Any]:
    """Latency, calls of N, documents in one call, the threads sweep and the callers, in that order."""
    from . import workloads
    from .stats import Budget

    budget, reps = Budget(opts.duration, WEIGHTS), opts.repeats
    docs1 = workloads.one_call_seconds(model, sample.documents, dim)
    short1 = workloads.one_call_seconds(model, sample.short, dim)
    out: dict[str, Any] = {"latency": workloads.latency(model, sample.short, dim, budget["latency"], reps)}
    step("latency")
    out["calls"] = {}
    for size in CALL_SIZES:
        share = budget["calls"] / len(CALL_SIZES)
        out["calls"][str(size)] = workloads.calls_of(model, sample.short, size, dim, share, reps)
        step(f"calls of {size}")
    docs = workloads.sized(sample.documents, docs1, workloads.parallel.cores())
    out["documents"] = workloads.one_call(model, docs, dim, budget["documents"], reps)
    out["documents"].update(texts=len(docs), MB=round(sum(len(d.encode()) for d in docs) / 1e6, 3))
    kinds = {"documents": (sample.documents, docs1), "short": (sample.short, short1)}
    out["threads"] = workloads.sweep(model, kinds, dim, budget["sweep"], reps, step)
    counts = workloads.caller_counts(workloads.parallel.cores())
    out["callers"] = []
    for count in counts:
        figure = workloads.callers(model, sample.short, count, dim, budget["callers"] / len(counts), reps)
        out["callers"].append({"callers": count, "texts_per_s": figure})
        step(f"{count} callers")
    return out


def _load_model(opts: Options, load: Callable[..., Any]) -> Any:
    if opts.model is None:
        from ..defaults import default_model_path

        path: Any = default_model_path()
    else:
        path = opts.model
    return load(path, threads=opts.threads, backend=opts.backend)


def _envelope(opts: Options, started: str, machine: dict, model: dict | None, texts: dict | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "sse_np": __version__,
        "started": started,
        "settings": {
            "duration_s": opts.duration,
            "repeats": opts.repeats,
            "threads": opts.threads,
            "dim": opts.dim,
            "backend": opts.backend,
            "data": opts.data,
            "peers": opts.peers,
        },
        "machine": machine,
        "model": model,
        "texts": texts,
    }


def run_http(opts: Options, progress: Any) -> dict[str, Any]:
    """Load a running embeddings server at ``opts.url`` (and nothing else) at each concurrency."""
    from . import httpload, machine, texts

    assert opts.url is not None
    started, t0 = _now(), time.perf_counter()
    sample = texts.load(opts.data)
    progress.set_total(len(opts.concurrency))
    result = _envelope(opts, started, machine.machine(), None, sample.describe())
    result["http"] = httpload.measure(opts, sample.short, lambda label: progress.update(1, label))
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return result
