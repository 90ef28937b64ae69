"""Small helpers shared by the orchestrator and the workers.

Nothing here imports numpy at module level: the cold-start worker imports
this module before it starts its clock for the engine's imports.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Every results file of the benchmarks (git keeps their history: no per-commit copies).
RESULTS_DIR = REPO_ROOT / "bench" / "results"
RESULT_PREFIX = "BENCH_RESULT "

# Every knob that sizes a thread pool in the stacks we measure. Each thread
# setting runs in its own subprocess, so these take effect before any import.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",  # rayon (the tokenizers thread pool)
    "RAYON_RS_NUM_CPUS",  # older rayon spelling, still honoured by some builds
)


def thread_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return an environment that caps every thread pool at ``threads``.

    Parameters
    ----------
    threads : int
        Thread budget for the subprocess.
    base : dict, optional
        Environment to start from (default: a copy of ``os.environ``).

    Returns
    -------
    dict
        The new environment.
    """
    env = dict(os.environ if base is None else base)
    for var in THREAD_ENV_VARS:
        env[var] = str(threads)
    # With parallelism off, tokenizers' encode_batch stays on the caller thread.
    env["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return env


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Median and spread of repeated measurements.

    Parameters
    ----------
    values : iterable of float
        One value per repeat.

    Returns
    -------
    dict
        ``median``, ``min``, ``max``, ``q1``, ``q3`` and ``n``.
    """
    vals = sorted(float(v) for v in values)
    if not vals:
        return {
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "q1": float("nan"),
            "q3": float("nan"),
            "n": 0,
        }
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "q1": q1, "q3": q3, "n": len(vals)}


def proc_status_kib(field: str) -> int:
    """Read one ``/proc/self/status`` field (e.g. ``VmHWM``, ``VmRSS``) in KiB.

    Parameters
    ----------
    field : str
        Field name without the colon.

    Returns
    -------
    int
        Value in KiB, or -1 where /proc is unavailable.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process.

    Returns
    -------
    bool
        Whether the reset worked (Linux >= 4.0 with writable clear_refs).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def emit(result: dict[str, Any]) -> None:
    """Print a worker's result as one prefixed JSON line on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_result(stdout: str) -> dict[str, Any] | None:
    """Find the result line a worker printed; None if it printed none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def write_results_section(section: str, begin: str, end: str) -> None:
    """Put ``section`` (starting with ``begin``, ending with ``end``) into bench/results/RESULTS.md, replacing its
    last version."""
    results = RESULTS_DIR / "RESULTS.md"
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    results.write_text(text, encoding="utf-8")
