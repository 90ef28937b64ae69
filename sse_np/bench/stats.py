"""Medians with their spread, percentiles, and the time budget the workloads share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

Summary = dict[str, Any]


def summarize(values: Iterable[float]) -> Summary:
    """Median of repeated measurements, with their min, max and every run (``runs``)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0, "runs": []}
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
        "runs": [round(v, 6) for v in vals],
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, nearest rank (as wrk and most load tools report)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), -(-q * len(sorted_values) // 100)))
    return sorted_values[int(rank) - 1]


def spread(s: Summary) -> float:
    """(max - min) / median: the relative spread of a summary (0 for one run)."""
    if not s.get("median"):
        return 0.0
    return (s["max"] - s["min"]) / s["median"]


class Budget:
    """Seconds given to each workload: ``total`` split by weights, at least ``floor`` each."""

    def __init__(self, total: float, weights: dict[str, float], floor: float = 0.05) -> None:
        whole = sum(weights.values()) or 1.0
        self.slots = {name: max(floor, total * w / whole) for name, w in weights.items()}

    def __getitem__(self, name: str) -> float:
        return self.slots[name]


def rate(fn: Callable[[], object], items: int, seconds: float, repeats: int) -> Summary:
    """Items per second of ``fn`` (one call handles ``items``): ``repeats`` runs sharing ``seconds``.

    The first call warms up (and is timed to size the runs); each run then
    calls ``fn`` as often as fits its share of the time, at least once.
    """
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-6)
    calls = max(1, int(seconds / repeats / once))
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(items * calls / (time.perf_counter() - t))
    return summarize(rates)
