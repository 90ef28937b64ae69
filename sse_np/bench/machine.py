"""What ``sse-np bench`` ran on: the machine, the software, the back-end and the model."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..engine import numba_available, numba_disabled_by_env, parallel

# The fingerprint reads at most this much of the table: a large table is sampled, not read whole.
_FINGERPRINT_BYTES = 64 << 20


def machine() -> dict[str, Any]:
    """CPU, cores, caches, OS and the versions that decide the speed."""
    return {
        "cpu": _cpu_model(),
        "cores_usable": parallel.cores(),
        "cpus_online": os.cpu_count(),
        "caches": _caches(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sse_np": __version__,
        "numpy": np.__version__,
        "numba": _numba(),
        "numba_threading_layer": _threading_layer(),
        "tokenizers": _version("tokenizers"),
    }


def _numba() -> str:
    if numba_disabled_by_env():
        return "off (SSE_NP_DISABLE_NUMBA)"
    return _version("numba") or "not installed"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _caches() -> dict[str, str]:
    """Cache sizes of CPU 0 from sysfs (Linux), e.g. {"L1d": "48K", "L2": "2048K", "L3": "32768K"}."""
    found: dict[str, str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        found[f"L{level}{suffix}"] = size
    return found


def _threading_layer() -> str | None:
    """numba's configured threading layer. sse_np's kernels do not use it (sse_np has its own pool,
    see sse_np.engine.parallel), but other numba code in the process does."""
    if not numba_available():
        return None
    import numba

    return str(getattr(numba.config, "THREADING_LAYER", None))


def model_facts(model: Any, backend: str) -> dict[str, Any]:
    """The model, how its table is stored, and a fingerprint of the numbers it computes with."""
    data = model.table.data
    return {
        "path": model.path,
        "layout": model.layout,
        "dtype": model.dtype,
        "dim": model.dim,
        "vocab_size": model.vocab_size,
        "table_bytes": int(model.table.nbytes),
        "storage": "memory-mapped file" if isinstance(_base(data), np.memmap) else "in memory",
        "fingerprint": fingerprint(model),
        "backend": backend,
        "threads": model.threads if model.threads is not None else f"all cores ({parallel.cores()})",
    }


def _base(array: np.ndarray) -> Any:
    while isinstance(array, np.ndarray) and array.base is not None and not isinstance(array, np.memmap):
        array = array.base
    return array


def fingerprint(model: Any) -> str:
    """sha256 (first 16 hex digits) of the table, the DyT vectors and the tokenizer: equal fingerprints,
    equal vectors. A table over 64 MiB is sampled in evenly spaced 1 MiB blocks."""
    h = hashlib.sha256()
    raw = np.ascontiguousarray(model.table.data).reshape(-1).view(np.uint8)
    if raw.size <= _FINGERPRINT_BYTES:
        h.update(raw.tobytes())
    else:
        block = 1 << 20
        for start in np.linspace(0, raw.size - block, _FINGERPRINT_BYTES // block).astype(np.int64):
            h.update(raw[start : start + block].tobytes())
    h.update(str(raw.size).encode())
    if model.table.scales is not None:
        h.update(np.ascontiguousarray(model.table.scales).tobytes())
    for vector in model.dyt or ():
        h.update(np.ascontiguousarray(vector).tobytes())
    h.update(model.tokenizer.to_str().encode())
    return h.hexdigest()[:16]


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far (MiB), or None where the OS does not say."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def rss_mib(field: str = "VmRSS") -> float | None:
    """A /proc/self/status memory field in MiB (Linux): VmRSS now, VmHWM the peak since the last reset."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Start the peak-RSS count (VmHWM) again, so that loading and compiling do not count (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
