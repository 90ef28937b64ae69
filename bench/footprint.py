"""Installed size of run-time dependency sets, read from package metadata.

Sizes are the sum of the files each installed distribution's RECORD lists
(its package folder, bundled ``*.libs`` and its ``.dist-info``), so they
are what ``pip install`` put on disk in this environment.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

# Dependency sets to compare. "direct" = exactly these distributions;
# the closure adds everything they require (no extras), as pip would.
SETS: list[tuple[str, str, list[str]]] = [  # (engine key, label, root distributions)
    (
        "sse_np",
        "sse_np (numpy, tokenizers, safetensors, numba + llvmlite)",
        ["numpy", "tokenizers", "safetensors", "numba", "llvmlite"],
    ),
    ("sse_np_numpy", "sse_np without numba (numpy, tokenizers, safetensors)", ["numpy", "tokenizers", "safetensors"]),
    (
        "torch_ref",
        "PyTorch reference (torch, tokenizers, safetensors, numpy)",
        ["torch", "tokenizers", "safetensors", "numpy"],
    ),
    ("sentence_transformers", "sentence-transformers", ["sentence-transformers"]),
    ("static_embed_runner", "static-embed-runner (numpy only)", ["static-embed-runner"]),
    ("", "static-embed-runner[rust] (+ tokenizers)", ["static-embed-runner", "tokenizers"]),
    ("model2vec", "model2vec", ["model2vec"]),
]
PACKAGES = [
    "numpy",
    "tokenizers",
    "safetensors",
    "numba",
    "llvmlite",
    "huggingface-hub",
    "torch",
    "sentence-transformers",
    "transformers",
    "static-embed-runner",
    "model2vec",
]
_SKIP = {"pip", "setuptools", "wheel"}  # installer tooling, present in every venv


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def dist_size(name: str) -> int | None:
    """Bytes on disk of one installed distribution, or None if not installed."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    total = 0
    for f in dist.files or []:
        p = Path(str(dist.locate_file(f)))
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def _requires(name: str) -> list[str]:
    """Names of the run-time requirements of an installed distribution (no extras)."""
    try:
        reqs = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        return []
    try:
        from packaging.requirements import Requirement
    except ImportError:  # rough fallback: drop anything behind an extra marker
        return [re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in reqs if "extra" not in r]
    out = []
    for spec in reqs:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req.name)
    return out


def closure(roots: list[str]) -> tuple[list[str], list[str]]:
    """Installed distributions reachable from ``roots``, and the missing ones."""
    seen: set[str] = set()
    missing: list[str] = []
    stack = list(roots)
    while stack:
        name = _norm(stack.pop())
        if name in seen or name in _SKIP:
            continue
        seen.add(name)
        if dist_size(name) is None:
            missing.append(name)
            continue
        stack.extend(_requires(name))
    return sorted(seen - set(missing)), sorted(missing)


def measure() -> dict[str, Any]:
    """Sizes of the single packages and of each dependency set (MiB)."""
    mib = 2.0**20
    packages = {}
    for name in PACKAGES:
        size = dist_size(name)
        packages[name] = None if size is None else size / mib
    sets = {}
    for engine, label, roots in SETS:
        dists, missing = closure(roots)
        roots_missing = [r for r in roots if _norm(r) in missing]
        sets[label] = {
            "engine": engine,
            "installed": not roots_missing,
            "direct_mib": sum((dist_size(r) or 0) for r in roots) / mib,
            "closure_mib": sum((dist_size(d) or 0) for d in dists) / mib,
            "closure": dists,
            "missing": missing,
        }
    return {"packages_mib": packages, "sets": sets}
